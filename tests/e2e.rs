//! End to end against moto: the real binary, real HTTP, independent checks.

mod harness;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use aws_sdk_ec2::types::Filter;
use harness::{Moto, Scratch, path_str, repo, rt, stack_variant, wait_for_lines};

const STACK: &str = "stacks/gitlab-ha.yaml";
/// Resources of the staging stack (72; production adds a second NAT
/// gateway and its address).
const STAGING: usize = 72;
/// Of those, what AWS cannot tag: the two mount targets and the scaling
/// policy.
const UNTAGGED: usize = 3;
/// A database password the tests pass through the environment.
const DB_PASSWORD: &str = harness::DB_PASSWORD;
const BUCKETS: [&str; 4] = [
    "acme-gitlab-staging-config",
    "acme-gitlab-staging-registry",
    "acme-gitlab-staging-objects",
    "acme-gitlab-staging-runner-cache",
];

fn filters(env: &str) -> Vec<Filter> {
    vec![
        Filter::builder().name("tag:converge:stack").values("gitlab-ha").build(),
        Filter::builder().name("tag:converge:env").values(env).build(),
    ]
}

type Tags = BTreeMap<String, String>;

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter().map(|t| (t.key.clone().unwrap_or_default(), t.value.clone().unwrap_or_default())).collect()
}

/// Everything tagged for gitlab-ha/`env`, read with an independent client:
/// (kind, converge:resource tag) → count.
fn tagged(moto: &Moto, env: &str) -> BTreeMap<(String, String), usize> {
    let ec2 = moto.ec2();
    let s3 = moto.s3();
    rt().block_on(async {
        let mut out: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut add = |kind: &str, tags: Tags| {
            if tags.get("converge:env").map(String::as_str) != Some(env) {
                return; // another environment's (EC2 reads filter by tag)
            }
            assert_eq!(tags.get("converge:stack").map(String::as_str), Some("gitlab-ha"));
            let name = tags.get("converge:resource").cloned().expect("converge:resource tag");
            *out.entry((kind.to_string(), name)).or_default() += 1;
        };
        for v in ec2.describe_vpcs().set_filters(Some(filters(env))).send().await.unwrap().vpcs() {
            add("vpc", ec2_tags(v.tags()));
        }
        for s in ec2.describe_subnets().set_filters(Some(filters(env))).send().await.unwrap().subnets() {
            add("subnet", ec2_tags(s.tags()));
        }
        for g in ec2.describe_security_groups().set_filters(Some(filters(env))).send().await.unwrap().security_groups()
        {
            add("sg", ec2_tags(g.tags()));
        }
        let rds = moto.rds();
        for db in rds.describe_db_instances().send().await.unwrap().db_instances() {
            add(
                "db_instance",
                db.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        for g in rds.describe_db_subnet_groups().send().await.unwrap().db_subnet_groups() {
            let tags =
                rds.list_tags_for_resource().resource_name(g.db_subnet_group_arn().unwrap()).send().await.unwrap();
            add(
                "db_subnet_group",
                tags.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        for g in rds.describe_db_parameter_groups().send().await.unwrap().db_parameter_groups() {
            if g.db_parameter_group_name().unwrap().starts_with("default.") {
                continue;
            }
            let tags =
                rds.list_tags_for_resource().resource_name(g.db_parameter_group_arn().unwrap()).send().await.unwrap();
            add(
                "db_parameter_group",
                tags.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        let ec = moto.elasticache();
        for g in ec.describe_replication_groups().send().await.unwrap().replication_groups() {
            let tags = ec.list_tags_for_resource().resource_name(g.arn().unwrap()).send().await.unwrap();
            add(
                "replication_group",
                tags.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        for g in ec.describe_cache_subnet_groups().send().await.unwrap().cache_subnet_groups() {
            if g.cache_subnet_group_name() == Some("default") {
                continue;
            }
            let tags = ec.list_tags_for_resource().resource_name(g.arn().unwrap()).send().await.unwrap();
            add(
                "cache_subnet_group",
                tags.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        for t in
            ec2.describe_launch_templates().set_filters(Some(filters(env))).send().await.unwrap().launch_templates()
        {
            add("launch_template", ec2_tags(t.tags()));
        }
        for g in moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap().auto_scaling_groups() {
            add(
                "autoscaling_group",
                g.tags().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        let elb = moto.elbv2();
        let lbs = elb.describe_load_balancers().send().await.unwrap();
        let mut arns: Vec<(&str, String)> = Vec::new();
        for lb in lbs.load_balancers() {
            let arn = lb.load_balancer_arn().unwrap().to_string();
            for l in elb.describe_listeners().load_balancer_arn(&arn).send().await.unwrap().listeners() {
                arns.push(("listener", l.listener_arn().unwrap().to_string()));
            }
            arns.push(("load_balancer", arn));
        }
        for g in elb.describe_target_groups().send().await.unwrap().target_groups() {
            arns.push(("target_group", g.target_group_arn().unwrap().to_string()));
        }
        for (kind, arn) in arns {
            let t = elb.describe_tags().resource_arns(&arn).send().await.unwrap();
            let tags = t.tag_descriptions()[0]
                .tags()
                .iter()
                .map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap()))
                .collect();
            add(kind, tags);
        }
        for f in moto.efs().describe_file_systems().send().await.unwrap().file_systems() {
            add("file_system", f.tags().iter().map(|t| (t.key.clone(), t.value.clone())).collect());
        }
        for g in
            ec2.describe_internet_gateways().set_filters(Some(filters(env))).send().await.unwrap().internet_gateways()
        {
            add("internet_gateway", ec2_tags(g.tags()));
        }
        for a in ec2.describe_addresses().set_filters(Some(filters(env))).send().await.unwrap().addresses() {
            add("elastic_ip", ec2_tags(a.tags()));
        }
        for n in ec2.describe_nat_gateways().set_filter(Some(filters(env))).send().await.unwrap().nat_gateways() {
            if n.state().map(|s| s.as_str()) != Some("deleted") {
                add("nat_gateway", ec2_tags(n.tags()));
            }
        }
        for t in ec2.describe_route_tables().set_filters(Some(filters(env))).send().await.unwrap().route_tables() {
            add("route_table", ec2_tags(t.tags()));
        }
        for e in ec2.describe_vpc_endpoints().set_filters(Some(filters(env))).send().await.unwrap().vpc_endpoints() {
            if !e.state().is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted")) {
                add("vpc_endpoint", ec2_tags(e.tags()));
            }
        }
        for v in ec2.describe_volumes().set_filters(Some(filters(env))).send().await.unwrap().volumes() {
            add("volume", ec2_tags(v.tags()));
        }
        let iam = moto.iam();
        let path = format!("/converge/gitlab-ha/{env}/");
        for r in iam.list_roles().path_prefix(&path).send().await.unwrap().roles() {
            let role = iam.get_role().role_name(r.role_name()).send().await.unwrap();
            add(
                "role",
                role.role().unwrap().tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
            );
        }
        for p in iam.list_instance_profiles().path_prefix(&path).send().await.unwrap().instance_profiles() {
            let p = iam.get_instance_profile().instance_profile_name(p.instance_profile_name()).send().await.unwrap();
            let tags =
                p.instance_profile().unwrap().tags().iter().map(|t| (t.key().to_string(), t.value().to_string()));
            add("instance_profile", tags.collect());
        }
        for sec in moto.secretsmanager().list_secrets().send().await.unwrap().secret_list() {
            let tags: Tags =
                sec.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect();
            if tags.contains_key("converge:stack") {
                add("secret", tags);
            }
        }
        for g in ec.describe_cache_parameter_groups().send().await.unwrap().cache_parameter_groups() {
            let tags = ec.list_tags_for_resource().resource_name(g.arn().unwrap()).send().await.unwrap();
            add(
                "cache_parameter_group",
                tags.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap())).collect(),
            );
        }
        for b in s3.list_buckets().send().await.unwrap().buckets() {
            let name = b.name().unwrap();
            let tags = s3.get_bucket_tagging().bucket(name).send().await.map(|t| t.tag_set).unwrap_or_default();
            let tags: Tags = tags.into_iter().map(|t| (t.key, t.value)).collect();
            if tags.get("converge:env").map(String::as_str) == Some(env) {
                add("bucket", tags);
                for o in s3.list_objects_v2().bucket(name).send().await.unwrap().contents() {
                    let t = s3.get_object_tagging().bucket(name).key(o.key().unwrap()).send().await.unwrap();
                    add("object", t.tag_set.into_iter().map(|t| (t.key, t.value)).collect());
                }
            }
        }
        out
    })
}

fn plan(moto: &Moto, stack: &str) -> harness::Run {
    moto.run(&["plan", stack, "--env", "staging", "--detailed-exitcode"])
}

fn apply(moto: &Moto, stack: &str) -> harness::Run {
    moto.run(&["apply", stack, "--env", "staging", "--auto-approve"]).expect(0)
}

#[test]
fn create_noop_update_drift_replace_delete_destroy() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("e2e");

    // 1. Empty account: every resource is a create.
    let r = plan(&moto, STACK).expect(2);
    let graph = moto.run(&["graph", STACK, "--env", "staging"]).expect(0);
    let names: Vec<&str> = graph.stdout.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(names.len(), STAGING);
    for name in names {
        assert!(r.stdout.contains(&format!("  + {name} (")), "{name} not planned for creation:\n{}", r.stdout);
    }
    assert!(
        r.stdout.contains(&format!("Plan: {STAGING} to add, 0 to change, 0 to replace, 0 to destroy.")),
        "{}",
        r.stdout
    );
    assert!(moto.calls().iter().all(|c| !c.mutating), "plan mutated AWS");
    assert!(r.stdout.contains("+ manage_master_user_password = true"), "{}", r.stdout);

    // 2. Apply creates them, each carrying the three identity tags.
    let r = apply(&moto, STACK);
    assert!(
        r.stdout.contains(&format!("Apply complete: {STAGING} created, 0 updated, 0 replaced, 0 destroyed.")),
        "{}",
        r.stdout
    );
    let found = tagged(&moto, "staging");
    // Every resource but those AWS cannot tag, each of every kind.
    assert_eq!(found.len(), STAGING - UNTAGGED, "{found:?}");
    assert!(found.values().all(|n| *n == 1), "duplicates: {found:?}");
    let ec2 = moto.ec2();
    let s3 = moto.s3();
    rt().block_on(async {
        // The spec's settings, read back independently.
        let sg = ec2
            .describe_security_groups()
            .filters(Filter::builder().name("tag:converge:resource").values("db_sg").build())
            .send()
            .await
            .unwrap();
        let perms = sg.security_groups()[0].ip_permissions();
        assert_eq!(perms.len(), 1);
        assert_eq!((perms[0].from_port, perms[0].to_port), (Some(5432), Some(5432)));
        assert_eq!(perms[0].user_id_group_pairs().len(), 1, "db_sg admits the app group");
        for b in BUCKETS {
            let pab = s3.get_public_access_block().bucket(b).send().await.unwrap();
            let c = pab.public_access_block_configuration().unwrap();
            assert_eq!(
                (c.block_public_acls, c.ignore_public_acls, c.block_public_policy, c.restrict_public_buckets),
                (Some(true), Some(true), Some(true), Some(true)),
                "{b}"
            );
            let enc = s3.get_bucket_encryption().bucket(b).send().await.unwrap();
            assert!(enc.server_side_encryption_configuration().is_some(), "{b} encrypted");
        }
        let v = s3.get_bucket_versioning().bucket("acme-gitlab-staging-config").send().await.unwrap();
        assert_eq!(v.status().map(|s| s.as_str()), Some("Enabled"));
        let lc =
            s3.get_bucket_lifecycle_configuration().bucket("acme-gitlab-staging-runner-cache").send().await.unwrap();
        assert_eq!(lc.rules()[0].expiration().and_then(|e| e.days), Some(3), "staging overrides runner_cache_days");
    });

    // 3. Nothing to do: plan exits 0, apply makes no mutating call.
    let r = plan(&moto, STACK).expect(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let mark = moto.calls().len();
    let r = apply(&moto, STACK);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    assert_eq!(moto.mutating_since(mark).len(), 0, "{:?}", moto.mutating_since(mark));

    // 4a. One more ingress rule: exactly one in-place update.
    let more_rules = (
        "          description: PostgreSQL from GitLab nodes\n",
        "          description: PostgreSQL from GitLab nodes\n        - protocol: tcp\n          port: 5432\n          cidr_blocks: [\"10.30.0.0/24\"]\n          description: PostgreSQL from the admin subnet\n",
    );
    let more = stack_variant(&dir, "more.yaml", &[more_rules]);
    let r = plan(&moto, path_str(&more)).expect(2);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    assert!(r.stdout.contains("  ~ db_sg (ec2.security_group, sg-"), "{}", r.stdout);
    assert!(
        r.stdout.contains("+ { protocol = \"tcp\", from_port = 5432, to_port = 5432, cidr = \"10.30.0.0/24\""),
        "{}",
        r.stdout
    );
    let mark = moto.calls().len();
    apply(&moto, path_str(&more));
    let muts: Vec<String> = moto.mutating_since(mark).into_iter().map(|c| c.operation).collect();
    // The rule, then the record of what was applied (`converge:applied`).
    assert_eq!(muts, ["AuthorizeSecurityGroupIngress", "CreateTags"]);
    plan(&moto, path_str(&more)).expect(0);

    // 4b. Out-of-band change: the rule removed behind converge's back is
    // planned back, and applying restores it.
    rt().block_on(async {
        let g = ec2
            .describe_security_groups()
            .filters(Filter::builder().name("tag:converge:resource").values("db_sg").build())
            .send()
            .await
            .unwrap();
        let g = &g.security_groups()[0];
        ec2.revoke_security_group_ingress()
            .group_id(g.group_id().unwrap())
            .ip_permissions(postgres_from("10.30.0.0/24"))
            .send()
            .await
            .unwrap();
    });
    let r = plan(&moto, path_str(&more)).expect(2);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    assert!(
        r.stdout.contains("+ { protocol = \"tcp\", from_port = 5432, to_port = 5432, cidr = \"10.30.0.0/24\""),
        "{}",
        r.stdout
    );
    insta::with_settings!({filters => vec![
        (r"sg-[0-9a-f]+", "sg-[ID]"),
        (r"ami-[0-9a-f]+", "ami-[ID]"),
        (r"certificate/[0-9a-f-]+", "certificate/[ID]"),
    ]}, {
        insta::assert_snapshot!("drift_plan", r.stdout);
    });
    apply(&moto, path_str(&more));
    plan(&moto, path_str(&more)).expect(0);

    // 4c. A replace-forcing change: -/+ with the attribute named. A new
    // subnet CIDR replaces the subnet, and what names the subnet follows:
    // its mount target is replaced; the DB and cache subnet groups, the
    // three load balancers, its route table and the four auto-scaling groups
    // that use it are updated.
    let moved = stack_variant(
        &dir,
        "moved.yaml",
        &[more_rules, ("      subnet_b_cidr: 10.30.2.0/24", "      subnet_b_cidr: 10.30.3.0/24")],
    );
    let r = plan(&moto, path_str(&moved)).expect(2);
    assert!(r.stdout.contains("-/+ private_b (ec2.subnet, subnet-"), "{}", r.stdout);
    assert!(r.stdout.contains("must be replaced (cidr_block forces replacement)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("~ cidr_block = \"10.30.2.0/24\" → \"10.30.3.0/24\"  # forces replacement"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("-/+ efs_b (efs.mount_target, fsmt-"), "{}", r.stdout);
    assert!(r.stdout.contains("  ~ db_subnets (rds.db_subnet_group, "), "{}", r.stdout);
    assert!(r.stdout.contains("  ~ redis_subnets (elasticache.subnet_group, "), "{}", r.stdout);
    for lb in ["alb", "ssh_nlb", "gitaly_nlb"] {
        assert!(r.stdout.contains(&format!("  ~ {lb} (elbv2.load_balancer, ")), "{lb}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("  ~ private_b_rt (ec2.route_table, "), "{}", r.stdout);
    for group in ["gitlab_migrate", "gitlab_app", "runner_workers", "runner_manager"] {
        assert!(r.stdout.contains(&format!("  ~ {group} (autoscaling.group, ")), "{group}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("Plan: 0 to add, 10 to change, 2 to replace, 0 to destroy."), "{}", r.stdout);

    // Applied on a resource without dependents: a group's description
    // cannot be edited, so it is replaced.
    let described = stack_variant(
        &dir,
        "described.yaml",
        &[more_rules, ("      description: GitLab runners\n", "      description: GitLab CI runners\n")],
    );
    let r = plan(&moto, path_str(&described)).expect(2);
    assert!(r.stdout.contains("+/- runners_sg (ec2.security_group, sg-"), "{}", r.stdout);
    assert!(
        r.stdout.contains("~ name        = \"gitlab-ha-staging-runners-sg\" → \"gitlab-ha-staging-runners-sg-2\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("must be replaced (description forces replacement)"), "{}", r.stdout);
    // The workers' launch template names the group: a new version, and
    // their group follows.
    for follower in ["runner_worker_lt", "runner_workers"] {
        assert!(r.stdout.contains(&format!("  ~ {follower} (")), "{follower}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("Plan: 0 to add, 2 to change, 1 to replace, 0 to destroy."), "{}", r.stdout);
    let before = sg_id(&moto, "runners_sg");
    let r = apply(&moto, path_str(&described));
    assert!(r.stdout.contains("Apply complete: 0 created, 2 updated, 1 replaced, 0 destroyed."), "{}", r.stdout);
    plan(&moto, path_str(&described)).expect(0);
    assert_ne!(sg_id(&moto, "runners_sg"), before, "a new group replaced the old one");

    // 4d. A resource removed from the spec is planned for deletion.
    let text = std::fs::read_to_string(&described).unwrap();
    let start = text.find("  http_listener:").unwrap();
    let end = text.find("  # ── Git over SSH").unwrap();
    let removed = dir.write("removed.yaml", &format!("{}{}", &text[..start], &text[end..]));
    let r = plan(&moto, path_str(&removed)).expect(2);
    assert!(r.stdout.contains("  - http_listener (elbv2.listener, arn:"), "{}", r.stdout);
    assert!(r.stdout.contains("will be destroyed (no longer in the spec)"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 0 to change, 0 to replace, 1 to destroy."), "{}", r.stdout);
    apply(&moto, path_str(&removed));
    assert_eq!(tagged(&moto, "staging").len(), STAGING - UNTAGGED - 1);

    // 5. Destroy leaves nothing tagged for the stack/env, of any kind.
    let r = moto
        .run(&["destroy", path_str(&removed), "--env", "staging", "--auto-approve", "--allow-destroy", "*"])
        .expect(0);
    assert!(
        r.stdout.contains(&format!("Destroy complete: 0 created, 0 updated, 0 replaced, {} destroyed.", STAGING - 1)),
        "{}",
        r.stdout
    );
    assert!(tagged(&moto, "staging").is_empty());
    let left = rt().block_on(async { moto.s3().list_buckets().send().await.unwrap().buckets().len() });
    assert_eq!(left, 0);
    let mount_targets = rt().block_on(async {
        let efs = moto.efs();
        let mut n = 0;
        for f in efs.describe_file_systems().send().await.unwrap().file_systems() {
            n += efs
                .describe_mount_targets()
                .file_system_id(f.file_system_id())
                .send()
                .await
                .unwrap()
                .mount_targets()
                .len();
        }
        n
    });
    assert_eq!(mount_targets, 0);
}

fn sg_id(moto: &Moto, resource: &str) -> String {
    rt().block_on(async {
        let g = moto
            .ec2()
            .describe_security_groups()
            .filters(Filter::builder().name("tag:converge:resource").values(resource).build())
            .send()
            .await
            .unwrap();
        g.security_groups()[0].group_id().unwrap().to_string()
    })
}

#[test]
fn data_tier_load_balancer_and_gitlab_rb() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("data");
    apply(&moto, STACK);

    rt().block_on(async {
        let db = moto.rds().describe_db_instances().send().await.unwrap();
        let db = &db.db_instances()[0];
        assert_eq!(db.engine(), Some("postgres"));
        assert_eq!((db.multi_az(), db.storage_encrypted()), (Some(true), Some(true)), "Multi-AZ and encrypted");
        assert_eq!(db.db_instance_class(), Some("db.t4g.medium"), "staging's class");
        assert_eq!(db.db_subnet_group().and_then(|g| g.db_subnet_group_name()), Some("gitlab-ha-staging-db-subnets"));
        assert_eq!(db.db_parameter_groups()[0].db_parameter_group_name(), Some("gitlab-ha-staging-db-params"));

        let ec = moto.elasticache().describe_replication_groups().send().await.unwrap();
        let g = &ec.replication_groups()[0];
        assert_eq!(g.automatic_failover().map(|f| f.as_str()), Some("enabled"));
        assert_eq!(g.multi_az().map(|m| m.as_str()), Some("enabled"));
        assert_eq!(g.cluster_enabled(), Some(false), "GitLab needs cluster mode disabled");
        assert_eq!((g.transit_encryption_enabled(), g.at_rest_encryption_enabled()), (Some(true), Some(true)));
        assert_eq!(g.member_clusters().len(), 2, "a primary and a replica");

        let efs = moto.efs();
        let fs = efs.describe_file_systems().send().await.unwrap();
        let fs = &fs.file_systems()[0];
        assert_eq!(fs.encrypted(), Some(true));
        let mts = efs.describe_mount_targets().file_system_id(fs.file_system_id()).send().await.unwrap();
        let mut subnets: Vec<&str> = mts.mount_targets().iter().map(|m| m.subnet_id()).collect();
        subnets.sort();
        let ec2 = moto.ec2();
        let private = ec2
            .describe_subnets()
            .filters(Filter::builder().name("tag:converge:env").values("staging").build())
            .filters(Filter::builder().name("tag:converge:resource").values("private_a").values("private_b").build())
            .send()
            .await
            .unwrap();
        let mut ids: Vec<&str> = private.subnets().iter().filter_map(|s| s.subnet_id()).collect();
        ids.sort();
        assert_eq!(subnets, ids, "one mount target per private subnet");
    });

    // The internal ALB, its target group's readiness check, and listeners:
    // HTTPS forwarding to the target group, HTTP redirecting to HTTPS.
    rt().block_on(async {
        let elb = moto.elbv2();
        let lbs = elb.describe_load_balancers().names("gitlab-ha-staging-alb").send().await.unwrap();
        let lb = &lbs.load_balancers()[0];
        assert_eq!(lb.scheme().map(|s| s.as_str()), Some("internal"));
        assert_eq!(lb.r#type().map(|t| t.as_str()), Some("application"));
        let tgs = elb.describe_target_groups().names("gitlab-ha-staging-app-tg").send().await.unwrap();
        let tg = &tgs.target_groups()[0];
        assert_eq!(tg.health_check_path(), Some("/-/readiness"));
        let attrs = elb.describe_load_balancer_attributes().load_balancer_arn(lb.load_balancer_arn().unwrap());
        let attrs = attrs.send().await.unwrap();
        let idle = attrs.attributes().iter().find(|a| a.key() == Some("idle_timeout.timeout_seconds")).unwrap();
        assert_eq!(idle.value(), Some("600"), "long enough for a large clone");
        let listeners =
            elb.describe_listeners().load_balancer_arn(lb.load_balancer_arn().unwrap()).send().await.unwrap();
        let mut by_port: Vec<(i32, String, String)> = listeners
            .listeners()
            .iter()
            .map(|l| {
                let a = &l.default_actions()[0];
                let what = match a.redirect_config() {
                    Some(r) => format!("redirect {}:{}", r.protocol().unwrap(), r.port().unwrap()),
                    None if a.target_group_arn() == tg.target_group_arn() => "forward app".to_string(),
                    None => "forward other".to_string(),
                };
                (l.port().unwrap(), l.protocol().unwrap().as_str().to_string(), what)
            })
            .collect();
        by_port.sort();
        assert_eq!(
            by_port,
            [
                (80, "HTTP".to_string(), "redirect HTTPS:443".to_string()),
                (443, "HTTPS".to_string(), "forward app".to_string()),
                (5050, "HTTPS".to_string(), "forward other".to_string())
            ]
        );
    });

    // The groups: one migration node; app nodes from a spot mix whose user
    // data skips migrations; runners with the S3 cache.
    rt().block_on(async {
        let asg = moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap();
        let group = |name: &str| {
            asg.auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(name))
                .unwrap_or_else(|| panic!("{name}"))
        };
        let migrate = group("gitlab-ha-staging-gitlab-migrate");
        assert_eq!((migrate.min_size(), migrate.max_size(), migrate.desired_capacity()), (Some(1), Some(1), Some(1)));
        let app = group("gitlab-ha-staging-gitlab-app");
        assert_eq!((app.min_size(), app.max_size()), (Some(1), Some(2)), "staging's sizes");
        let mix = app.mixed_instances_policy().expect("spot mix");
        let types: Vec<&str> =
            mix.launch_template().unwrap().overrides().iter().filter_map(|o| o.instance_type()).collect();
        assert_eq!(types, ["t3.large", "t3a.large"]);
        assert_eq!(app.health_check_type(), Some("ELB"));
        assert_eq!(app.target_group_arns().len(), 3, "HTTPS, the registry and SSH");
        let policies = moto
            .autoscaling()
            .describe_policies()
            .auto_scaling_group_name("gitlab-ha-staging-gitlab-app")
            .send()
            .await
            .unwrap();
        let cpu = policies.scaling_policies()[0].target_tracking_configuration().unwrap();
        assert_eq!(cpu.target_value(), Some(60.0));
        let workers = group("gitlab-ha-staging-runner-workers");
        assert_eq!(workers.min_size(), Some(0));
        group("gitlab-ha-staging-runner-manager");

        let ec2 = moto.ec2();
        let user_data = |lt: String| {
            let ec2 = ec2.clone();
            async move {
                let v = ec2
                    .describe_launch_template_versions()
                    .launch_template_id(lt)
                    .versions("$Default")
                    .send()
                    .await
                    .unwrap();
                let b64 =
                    v.launch_template_versions()[0].launch_template_data().unwrap().user_data().unwrap().to_string();
                String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap())
                    .unwrap()
            }
        };
        let lt_of = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| {
            g.launch_template()
                .or_else(|| g.mixed_instances_policy()?.launch_template()?.launch_template_specification())
                .and_then(|s| s.launch_template_id())
                .unwrap()
                .to_string()
        };
        let app_ud = user_data(lt_of(app)).await;
        let migrate_ud = user_data(lt_of(migrate)).await;
        assert!(
            app_ud.contains("touch /etc/gitlab/skip-auto-migrations /etc/gitlab/skip-auto-reconfigure"),
            "{app_ud}"
        );
        assert!(app_ud.contains("gitlab_rails['auto_migrate'] = false"), "{app_ud}");
        assert!(!migrate_ud.contains("skip-auto-migrations"), "{migrate_ud}");
        assert!(migrate_ud.contains("gitlab_rails['auto_migrate'] = true"), "{migrate_ud}");
        let manager_ud = user_data(lt_of(group("gitlab-ha-staging-runner-manager"))).await;
        for line in [
            "Type = \"s3\"",
            "Shared = true",
            "BucketName = \"acme-gitlab-staging-runner-cache\"",
            "BucketLocation = \"eu-west-1\"",
            "name = \"gitlab-ha-staging-runner-workers\"",
        ] {
            assert!(manager_ud.contains(line), "missing {line}:\n{manager_ud}");
        }
    });

    // gitlab.rb in the config bucket holds the real endpoints and buckets.
    rt().block_on(async {
        let db = moto.rds().describe_db_instances().send().await.unwrap();
        let db_host = db.db_instances()[0].endpoint().unwrap().address().unwrap().to_string();
        let ec = moto.elasticache().describe_replication_groups().send().await.unwrap();
        let redis_host =
            ec.replication_groups()[0].node_groups()[0].primary_endpoint().unwrap().address().unwrap().to_string();
        let obj = moto.s3().get_object().bucket("acme-gitlab-staging-config").key("gitlab.rb").send().await.unwrap();
        let rb = String::from_utf8(obj.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
        for line in [
            format!("gitlab_rails['db_host'] = '{db_host}'"),
            format!("gitlab_rails['redis_host'] = '{redis_host}'"),
            "postgresql['enable'] = false".to_string(),
            "redis['enable'] = false".to_string(),
            "gitlab_rails['redis_ssl'] = true".to_string(),
            "gitlab_rails['object_store']['objects']['artifacts']['bucket'] = 'acme-gitlab-staging-objects/artifacts'"
                .to_string(),
            "    'bucket' => 'acme-gitlab-staging-registry',".to_string(),
            "gitlab_rails['monitoring_whitelist'] = ['127.0.0.0/8', '10.30.0.0/16']".to_string(),
        ] {
            assert!(rb.lines().any(|l| l == line), "missing `{line}` in gitlab.rb:\n{rb}");
        }
    });

    // The DB instance class changes in place: one ModifyDBInstance.
    let bigger = stack_variant(
        &dir,
        "bigger.yaml",
        &[("      db_instance_class: db.t4g.medium", "      db_instance_class: db.t4g.large")],
    );
    let r = plan(&moto, path_str(&bigger)).expect(2);
    assert!(
        r.stdout.contains("  ~ db (rds.db_instance, gitlab-ha-staging-db) will be updated in place"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("~ instance_class = \"db.t4g.medium\" → \"db.t4g.large\""), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let mark = moto.calls().len();
    apply(&moto, path_str(&bigger));
    let muts: Vec<String> = moto.mutating_since(mark).into_iter().map(|c| c.operation).collect();
    assert_eq!(muts, ["ModifyDBInstance", "AddTagsToResource"]);
    plan(&moto, path_str(&bigger)).expect(0);

    // A new engine replaces the instance, and the plan says why.
    let other = stack_variant(
        &dir,
        "engine.yaml",
        &[
            ("      engine: postgres\n", "      engine: mysql\n"),
            ("  postgres_version: \"16.4\"", "  postgres_version: \"8.0.39\""),
            ("  postgres_family: postgres16", "  postgres_family: mysql8.0"),
        ],
    );
    let r = plan(&moto, path_str(&other)).expect(2);
    assert!(
        r.stdout
            .contains("-/+ db (rds.db_instance, gitlab-ha-staging-db) must be replaced (engine forces replacement)"),
        "{}",
        r.stdout
    );

    // A parameter: in place, pending the next reboot.
    let tuned = stack_variant(
        &dir,
        "tuned.yaml",
        &[("        log_min_duration_statement: \"1000\"", "        log_min_duration_statement: \"250\"")],
    );
    let r = plan(&moto, path_str(&tuned)).expect(2);
    assert!(r.stdout.contains("~ log_min_duration_statement = \"1000\" → \"250\""), "{}", r.stdout);
    apply(&moto, path_str(&tuned));
    plan(&moto, path_str(&tuned)).expect(0);

    // Editing the template plans one s3.object update, shown as a line diff.
    let template = std::fs::read_to_string(harness::repo().join("templates/gitlab.rb.j2")).unwrap();
    dir.write(
        "gitlab.rb.j2",
        &template.replace(
            "letsencrypt['enable'] = false\n",
            "letsencrypt['enable'] = false\nnginx['listen_https'] = false\n",
        ),
    );
    let edited = stack_variant(
        &dir,
        "edited.yaml",
        &[
            ("$template: ../templates/gitlab.rb.j2", "$template: gitlab.rb.j2"),
            ("        log_min_duration_statement: \"1000\"", "        log_min_duration_statement: \"250\""),
        ],
    );
    let r = plan(&moto, path_str(&edited)).expect(2);
    assert!(
        r.stdout.contains("  ~ gitlab_rb (s3.object, acme-gitlab-staging-config/gitlab.rb) will be updated in place"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("          + nginx['listen_https'] = false"), "{}", r.stdout);
    // The nodes embed gitlab.rb's version: new launch template versions, and
    // the groups are refreshed.
    for follower in ["app_lt", "migrate_lt", "gitlab_migrate", "gitlab_app"] {
        assert!(r.stdout.contains(&format!("  ~ {follower} (")), "{follower}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("  ~ app_lt (ec2.launch_template, lt-"), "{}", r.stdout);
    assert!(r.stdout.contains("      ~ user_data = (known after apply)\n"), "one line, not the old text: {}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 5 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let mark = moto.calls().len();
    apply(&moto, path_str(&edited));
    let mut muts: Vec<String> = moto.mutating_since(mark).into_iter().map(|c| c.operation).collect();
    muts.sort();
    assert_eq!(
        muts,
        [
            "CreateLaunchTemplateVersion",
            "CreateLaunchTemplateVersion",
            // `converge:applied` on the groups and templates (the object's
            // is in its PutObject).
            "CreateOrUpdateTags",
            "CreateOrUpdateTags",
            "CreateTags",
            "CreateTags",
            "ModifyLaunchTemplate",
            "ModifyLaunchTemplate",
            "PutObject",
            "StartInstanceRefresh",
            "StartInstanceRefresh",
            "UpdateAutoScalingGroup",
            "UpdateAutoScalingGroup"
        ]
    );
    plan(&moto, path_str(&edited)).expect(0);
    rt().block_on(async {
        let asg = moto.autoscaling();
        let r = asg
            .describe_instance_refreshes()
            .auto_scaling_group_name("gitlab-ha-staging-gitlab-app")
            .send()
            .await
            .unwrap();
        let prefs = r.instance_refreshes()[0].preferences().unwrap();
        assert_eq!(
            (prefs.min_healthy_percentage(), prefs.instance_warmup()),
            (Some(50), Some(300)),
            "the spec's rollout"
        );
    });
}

#[test]
fn environments_are_isolated_by_tags() {
    let moto = Moto::start();
    apply(&moto, STACK);
    // Production sees none of staging's objects as its own.
    let r = moto.run(&["plan", STACK, "--env", "production", "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 74 to add, 0 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    assert_eq!(tagged(&moto, "production").len(), 0);

    // JSON for tools: the same plan, machine-readable.
    let r = moto.run(&["plan", STACK, "--env", "production", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    assert_eq!(doc["summary"], serde_json::json!({"add": 74, "change": 0, "replace": 0, "destroy": 0}));
    let private_a = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "private_a").unwrap();
    assert_eq!(private_a["action"], "create");
    let vpc_id = private_a["changes"].as_array().unwrap().iter().find(|c| c["attr"] == "vpc_id").unwrap();
    assert_eq!(vpc_id["after"], "(known after apply)");
    assert_eq!(vpc_id["after_unknown"], true);

    // --target: that resource and what it depends on.
    let r = moto.run(&["plan", STACK, "--env", "production", "--target", "private_a", "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let r = moto.run(&["plan", STACK, "--env", "production", "--target", "privte_a"]).expect(1);
    assert!(r.stderr.contains("did you mean `private_a`?"), "{}", r.stderr);

    // Production's app_min: one in-place update of the app group.
    moto.run(&["apply", STACK, "--env", "production", "--auto-approve"]).expect(0);
    let dir = Scratch::beside_stacks("prod");
    let more = stack_variant(&dir, "more.yaml", &[("  app_min: 2\n", "  app_min: 3\n")]);
    let r = moto.run(&["plan", path_str(&more), "--env", "production", "--detailed-exitcode"]).expect(2);
    assert!(
        r.stdout
            .contains("  ~ gitlab_app (autoscaling.group, gitlab-ha-production-gitlab-app) will be updated in place"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("~ min_size = 2 → 3"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    moto.run(&["apply", path_str(&more), "--env", "production", "--auto-approve"]).expect(0);
    moto.run(&["plan", path_str(&more), "--env", "production", "--detailed-exitcode"]).expect(0);
    let found = tagged(&moto, "production");
    assert_eq!(found.len(), 74 - UNTAGGED, "a NAT gateway and an address per AZ: {found:?}");
    assert!(found.contains_key(&("nat_gateway".to_string(), "nat_b".to_string())), "{found:?}");

    // Production comes down only once its database's deletion protection
    // is turned off by the spec, and then to nothing tagged.
    let unprotected = ["--var", "db_deletion_protection=false", "--var", "protect_data=false", "--allow-destroy", "*"];
    let args = |cmd: &'static str| {
        let mut a = vec![cmd, path_str(&more), "--env", "production", "--auto-approve"];
        a.extend(unprotected);
        a
    };
    moto.run(&args("apply")).expect(0);
    moto.run(&args("destroy")).expect(0);
    assert_eq!(tagged(&moto, "production"), BTreeMap::new());
    assert_eq!(tagged(&moto, "staging").len(), STAGING - UNTAGGED, "staging untouched");
}

#[test]
fn apply_refuses_without_a_terminal_or_auto_approve() {
    let moto = Moto::start();
    let r = moto.run(&["apply", STACK, "--env", "staging"]).expect(1);
    assert!(r.stderr.contains("pass --auto-approve"), "{}", r.stderr);
    assert!(moto.calls().iter().all(|c| !c.mutating));
}

#[test]
fn killed_apply_reruns_without_duplicates() {
    // Slow mutating calls so that each kill lands mid-apply; a short lease
    // so that each rerun takes the killed run's lock over quickly.
    let moto = Moto::start_with(&["--delay-mutations-ms", "100"]);
    let args = [
        "apply",
        STACK,
        "--env",
        "staging",
        "--auto-approve",
        "--parallelism",
        "4",
        "--lock-lease",
        "2s",
        "--lock-timeout",
        "1m",
    ];
    // SIGKILL at twelve points: each run is killed after a few more
    // operations finished (creates and updates: what a killed run left
    // half-done is picked up by the next).
    let mut seen_counts = Vec::new();
    for kill in 1..=12 {
        let (mut child, rx) = spawn_lines(&moto, &args);
        let seen = wait_lines(&rx, 1 + kill % 3, |l| {
            l.contains(": created ")
                || l.contains(": updated ")
                || l.contains("Apply complete")
                || l.contains("No changes")
        });
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let now = tagged(&moto, "staging");
        assert!(now.values().all(|n| *n == 1), "duplicates after kill {kill}: {now:?}\n{}", seen.join("\n"));
        seen_counts.push(now.len());
        if seen.iter().any(|l| l.contains("Apply complete") || l.contains("No changes")) {
            break;
        }
    }
    assert!(seen_counts.len() >= 10, "fewer than ten kill points landed mid-apply: {seen_counts:?}");
    assert!(seen_counts[0] < STAGING - UNTAGGED, "the first kill did not land mid-apply: {seen_counts:?}");

    // The rerun takes the last killed run's lock over once its lease ran
    // out, and converges.
    let r = moto.run(&["apply", STACK, "--env", "staging", "--auto-approve", "--lock-timeout", "1m"]).expect(0);
    assert!(r.stdout.contains("Took over the lock of a run whose lease ran out"), "{}", r.stdout);
    let all = tagged(&moto, "staging");
    assert_eq!(all.len(), STAGING - UNTAGGED, "{all:?}");
    assert!(all.values().all(|n| *n == 1), "duplicates after rerun: {all:?}");
    plan(&moto, STACK).expect(0);
    moto.run(&["destroy", STACK, "--env", "staging", "--auto-approve", "--allow-destroy", "*"]).expect(0);
    assert!(tagged(&moto, "staging").is_empty());
}

/// Each bad spec: (what, file content, expected "line:col", expected text).
fn bad_specs() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let good = "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.0.1.0/24\n      availability_zone: eu-west-1a\n";
    vec![
        (
            "unknown field",
            good.replace("      cidr_block: 10.0.0.0/16", "      cidr_blok: 10.0.0.0/16"),
            ":7:7:",
            "unknown field `cidr_blok`",
        ),
        (
            "wrong type",
            good.replace(
                "      cidr_block: 10.0.0.0/16",
                "      cidr_block: 10.0.0.0/16\n      enable_dns_support: maybe",
            ),
            ":8:27:",
            "`resources.vpc.properties.enable_dns_support`: invalid type",
        ),
        (
            "dangling reference",
            good.replace("${resources.vpc.id}", "${resources.vcp.id}"),
            ":11:15:",
            "unknown resource `vcp`",
        ),
        (
            "cycle",
            good.replace("    type: ec2.vpc\n", "    type: ec2.vpc\n    depends_on: [subnet]\n"),
            ":9:3:",
            "dependency cycle: subnet -> vpc -> subnet",
        ),
        (
            "duplicate name",
            format!("{good}  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.1.0.0/16\n"),
            ":14:3:",
            "duplicate resource name `vpc`",
        ),
        (
            "malformed YAML",
            good.replace("      cidr_block: 10.0.1.0/24", "      cidr_block: [10.0.1.0/24"),
            ":13:",
            "malformed YAML",
        ),
        ("bad CIDR", good.replace("10.0.1.0/24", "10.0.1.0/33"), ":12:19:", "`10.0.1.0/33` is not a CIDR block"),
        (
            "unknown type",
            good.replace("type: ec2.subnet", "type: ec2.subnett"),
            ":9:11:",
            "unknown resource type `ec2.subnett`",
        ),
    ]
}

#[test]
fn bad_specs_fail_with_a_location_and_make_no_aws_call() {
    let moto = Moto::start();
    let dir = Scratch::new("bad");
    for (what, content, pos, text) in bad_specs() {
        let file = dir.write(&format!("{}.yaml", what.replace(' ', "-")), &content);
        for cmd in ["plan", "apply", "validate"] {
            let mut args = vec![cmd, path_str(&file)];
            if cmd == "apply" {
                args.push("--auto-approve");
            }
            let r = moto.run(&args);
            assert_eq!(r.code, 1, "{what} ({cmd}): {r:?}");
            let at = format!("{}{pos}", file.display());
            assert!(r.stderr.contains(&at), "{what} ({cmd}): expected {at} in:\n{}", r.stderr);
            assert!(r.stderr.contains(text), "{what} ({cmd}): expected `{text}` in:\n{}", r.stderr);
        }
    }
    assert_eq!(moto.calls().len(), 0, "bad specs reached AWS: {:?}", moto.calls());
}

#[test]
fn a_failed_operation_skips_its_dependents_and_nothing_else() {
    let moto = Moto::start();
    let dir = Scratch::new("fail");
    // The subnet's availability zone does not exist: EC2 refuses it (what
    // validation can check offline, such as a CIDR outside the VPC, never
    // gets this far).
    let spec = |az: &str| {
        format!(
            "stack: gitlab-ha\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.40.0.0/16\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${{resources.vpc.id}}\n      cidr_block: 10.40.1.0/24\n      availability_zone: {az}\n  sg:\n    type: ec2.security_group\n    depends_on: [subnet]\n    properties:\n      vpc_id: ${{resources.vpc.id}}\n  bucket:\n    type: s3.bucket\n    name: converge-failure-test\n"
        )
    };
    let bad = dir.write("bad.yaml", &spec("eu-west-1z"));
    let r = moto.run(&["apply", path_str(&bad), "--auto-approve"]).expect(1);
    assert!(r.stdout.contains("Apply failed: 2 succeeded, 1 failed, 1 skipped."), "{}", r.stdout);
    assert!(
        r.stdout.contains("  failed:  creating subnet (ec2.subnet): ec2:CreateSubnet: InvalidParameterValue:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("  skipped: creating sg (ec2.security_group): depends on subnet, which failed"),
        "{}",
        r.stdout
    );
    let made = tagged(&moto, "default");
    let kinds: Vec<&str> = made.keys().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["bucket", "vpc"], "independent branches finish: {made:?}");

    // Fixed, the rerun creates only what is missing.
    let good = dir.write("good.yaml", &spec("eu-west-1a"));
    let r = moto.run(&["apply", path_str(&good), "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("Apply complete: 2 created, 0 updated, 0 replaced, 0 destroyed."), "{}", r.stdout);
}

#[test]
fn stateful_resources_are_protected_and_snapshotted() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("protect");
    let prod = |stack: &str, extra: &[&str]| {
        let mut args = vec!["apply", stack, "--env", "production", "--auto-approve"];
        args.extend(extra);
        moto.run(&args)
    };
    prod(STACK, &[]).expect(0);
    let refused = |r: harness::Run, names: &[&str], mark: usize| {
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("refusing to delete or replace resources that hold data; nothing was changed"),
            "{}",
            r.stderr
        );
        for n in names {
            assert!(r.stderr.contains(&format!("\n  {n} (")), "{n}:\n{}", r.stderr);
        }
        assert_eq!(moto.mutating_since(mark).len(), 0, "{:?}", moto.mutating_since(mark));
    };

    // A one-word edit that would replace the database is refused, loudly
    // in the plan and by apply, with zero mutating calls.
    let engine = stack_variant(
        &dir,
        "engine.yaml",
        &[
            ("      engine: postgres\n", "      engine: mysql\n"),
            ("  postgres_version: \"16.4\"", "  postgres_version: \"8.0.39\""),
            ("  postgres_family: postgres16", "  postgres_family: mysql8.0"),
        ],
    );
    let r = moto.run(&["plan", path_str(&engine), "--env", "production"]).expect(0);
    assert!(r.stdout.contains("-/+ db (rds.db_instance, gitlab-ha-production-db) must be replaced"), "{}", r.stdout);
    assert!(r.stdout.contains("! PROTECTED: it holds data;"), "{}", r.stdout);
    let mark = moto.calls().len();
    refused(prod(path_str(&engine), &["--allow-destroy", "db"]), &["db"], mark);

    // An empty spec (every resource removed) and destroy: refused without
    // both opt-ins, even when the command names them all.
    let text = std::fs::read_to_string(harness::repo().join(STACK)).unwrap();
    let empty = dir.write("empty.yaml", &format!("{}resources: {{}}\n", &text[..text.find("resources:\n").unwrap()]));
    let mark = moto.calls().len();
    let everything = ["db", "redis", "efs", "gitaly_data", "config_bucket", "objects_bucket"];
    refused(prod(path_str(&empty), &[]), &everything, mark);
    refused(prod(path_str(&empty), &["--allow-destroy", "*"]), &everything, mark);
    let r = moto.run(&["destroy", STACK, "--env", "production", "--auto-approve", "--allow-destroy", "*"]);
    refused(r, &everything, mark);
    assert_eq!(tagged(&moto, "production").len(), 74 - UNTAGGED, "all still there");

    // The spec lets them go, but the command does not name them: refused.
    let unprotect = ["--var", "protect_data=false", "--var", "db_deletion_protection=false"];
    prod(STACK, &unprotect).expect(0);
    let mut args = vec!["destroy", STACK, "--env", "production", "--auto-approve"];
    args.extend(unprotect);
    let mark = moto.calls().len();
    refused(moto.run(&args), &everything, mark);
    // With both, destroy goes, and what held data leaves a snapshot: the
    // database, Redis, the repositories volume.
    args.extend(["--allow-destroy", "*"]);
    moto.run(&args).expect(0);
    assert!(tagged(&moto, "production").is_empty());
    rt().block_on(async {
        let rds = moto.rds().describe_db_snapshots().send().await.unwrap();
        let ids: Vec<&str> = rds.db_snapshots().iter().filter_map(|s| s.db_snapshot_identifier()).collect();
        assert!(ids.iter().any(|s| s.starts_with("gitlab-ha-production-db-final-")), "{ids:?}");
        let ec = moto.elasticache().describe_snapshots().send().await.unwrap();
        let names: Vec<&str> = ec.snapshots().iter().filter_map(|s| s.snapshot_name()).collect();
        assert!(names.iter().any(|s| s.starts_with("gitlab-ha-production-redis-final-")), "{names:?}");
        let ebs = moto
            .ec2()
            .describe_snapshots()
            .filters(
                Filter::builder()
                    .name("tag:converge:final-snapshot-of")
                    .values("gitlab-ha/production/gitaly_data")
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(ebs.snapshots().len(), 1, "the repositories volume's final snapshot");
    });

    // Staging says protect_data: false: an engine change replaces its
    // database with --allow-destroy, and the old one leaves a snapshot.
    let keep = stack_variant(
        &dir,
        "keep.yaml",
        &[("      db_skip_final_snapshot: true\n", "      db_skip_final_snapshot: false\n")],
    );
    apply(&moto, path_str(&keep));
    let mysql = stack_variant(
        &dir,
        "mysql.yaml",
        &[
            ("      db_skip_final_snapshot: true\n", "      db_skip_final_snapshot: false\n"),
            ("      engine: postgres\n", "      engine: mysql\n"),
            ("  postgres_family: postgres16\n", "  postgres_family: mysql8.0\n"),
            ("  postgres_version: \"16.4\"\n", "  postgres_version: \"8.0.39\"\n"),
            ("        log_min_duration_statement: \"1000\"\n", "        long_query_time: \"1\"\n"),
            ("        idle_in_transaction_session_timeout: \"60000\"\n", ""),
        ],
    );
    let r = plan(&moto, path_str(&mysql)).expect(2);
    assert!(
        r.stdout.contains(
            "+/- db_params (rds.db_parameter_group, gitlab-ha-staging-db-params) must be replaced (family forces replacement)"
        ),
        "{}",
        r.stdout
    );
    // The new parameter group is made first under the other name; the
    // database holds data and goes first, saying why.
    assert!(r.stdout.contains("\"gitlab-ha-staging-db-params\" → \"gitlab-ha-staging-db-params-2\""), "{}", r.stdout);
    assert!(r.stdout.contains("destroy before create: it holds data"), "{}", r.stdout);
    let mark = moto.calls().len();
    refused(moto.run(&["apply", path_str(&mysql), "--env", "staging", "--auto-approve"]), &["db"], mark);
    let r =
        moto.run(&["apply", path_str(&mysql), "--env", "staging", "--auto-approve", "--allow-destroy", "db"]).expect(0);
    assert!(r.stdout.contains("2 replaced"), "{}", r.stdout);
    plan(&moto, path_str(&mysql)).expect(0);
    let snapshots: Vec<String> = rt().block_on(async {
        let out = moto.rds().describe_db_snapshots().send().await.unwrap();
        out.db_snapshots().iter().filter_map(|s| s.db_snapshot_identifier().map(str::to_string)).collect()
    });
    assert!(snapshots.iter().any(|s| s.starts_with("gitlab-ha-staging-db-final-")), "{snapshots:?}");
}

/// The user data of a launch template's default version.
async fn user_data_of(ec2: &aws_sdk_ec2::Client, lt: &str) -> String {
    let v = ec2.describe_launch_template_versions().launch_template_id(lt).versions("$Default").send().await.unwrap();
    let b64 = v.launch_template_versions()[0].launch_template_data().unwrap().user_data().unwrap().to_string();
    String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap()).unwrap()
}

/// One EC2 object's id by its `converge:resource` tag (staging).
fn tagged_filter(resource: &str) -> Vec<Filter> {
    vec![
        Filter::builder().name("tag:converge:resource").values(resource).build(),
        Filter::builder().name("tag:converge:env").values("staging").build(),
    ]
}

#[test]
fn the_stack_is_built_to_boot_on_a_real_account() {
    let moto = Moto::start();
    apply(&moto, STACK);
    let ec2 = moto.ec2();
    let manager_sg = sg_id(&moto, "runner_manager_sg");
    rt().block_on(async {
        // Egress: each private subnet's default route goes to a NAT gateway
        // in a public subnet, whose own default route goes to the internet
        // gateway attached to the VPC.
        let vpc = ec2.describe_vpcs().set_filters(Some(tagged_filter("vpc"))).send().await.unwrap();
        let vpc_id = vpc.vpcs()[0].vpc_id().unwrap().to_string();
        let igw = ec2.describe_internet_gateways().set_filters(Some(tagged_filter("igw"))).send().await.unwrap();
        let igw = &igw.internet_gateways()[0];
        assert_eq!(igw.attachments()[0].vpc_id(), Some(vpc_id.as_str()), "the gateway is attached to the VPC");
        let igw_id = igw.internet_gateway_id().unwrap();
        let subnet_id = |name: &str| {
            let ec2 = ec2.clone();
            let name = name.to_string();
            async move {
                let s = ec2.describe_subnets().set_filters(Some(tagged_filter(&name))).send().await.unwrap();
                let s = &s.subnets()[0];
                assert_ne!(s.map_public_ip_on_launch(), Some(true), "{name} gives no public IPs");
                s.subnet_id().unwrap().to_string()
            }
        };
        let default_route = |subnet: String| {
            let ec2 = ec2.clone();
            async move {
                let t = ec2
                    .describe_route_tables()
                    .filters(Filter::builder().name("association.subnet-id").values(&subnet).build())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(t.route_tables().len(), 1, "{subnet} has its own route table");
                let table = t.route_tables()[0].clone();
                let route = table
                    .routes()
                    .iter()
                    .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                    .unwrap_or_else(|| panic!("{subnet} has no default route"))
                    .clone();
                (table, route)
            }
        };
        let public: Vec<String> = vec![subnet_id("public_a").await, subnet_id("public_b").await];
        for p in &public {
            let (_, route) = default_route(p.clone()).await;
            assert_eq!(route.gateway_id(), Some(igw_id), "public subnet {p} routes to the internet gateway");
        }
        let mut private_tables = Vec::new();
        for name in ["private_a", "private_b"] {
            let (table, route) = default_route(subnet_id(name).await).await;
            let nat = route.nat_gateway_id().unwrap_or_else(|| panic!("{name} routes to a NAT gateway"));
            let n = ec2.describe_nat_gateways().nat_gateway_ids(nat).send().await.unwrap();
            let n = &n.nat_gateways()[0];
            assert!(public.iter().any(|p| Some(p.as_str()) == n.subnet_id()), "{name}'s NAT is in a public subnet");
            assert!(n.nat_gateway_addresses()[0].allocation_id().is_some(), "the NAT has an Elastic IP");
            private_tables.push(table.route_table_id().unwrap().to_string());
        }
        // S3 through a gateway endpoint on the private route tables.
        let ep = ec2.describe_vpc_endpoints().set_filters(Some(tagged_filter("s3_endpoint"))).send().await.unwrap();
        let ep = &ep.vpc_endpoints()[0];
        assert_eq!(ep.service_name(), Some("com.amazonaws.eu-west-1.s3"));
        assert_eq!(ep.vpc_endpoint_type().map(|t| t.as_str()), Some("Gateway"));
        let mut on: Vec<String> = ep.route_table_ids().to_vec();
        on.sort();
        private_tables.sort();
        assert_eq!(on, private_tables, "the endpoint serves the private route tables");

        // No launch template asks for a public IP; no instance got one.
        let lts = ec2.describe_launch_templates().set_filters(Some(filters("staging"))).send().await.unwrap();
        assert_eq!(lts.launch_templates().len(), 5);
        for lt in lts.launch_templates() {
            let v = ec2
                .describe_launch_template_versions()
                .launch_template_id(lt.launch_template_id().unwrap())
                .versions("$Default")
                .send()
                .await
                .unwrap();
            let data = v.launch_template_versions()[0].launch_template_data().unwrap();
            assert!(
                data.network_interfaces().iter().all(|n| n.associate_public_ip_address() != Some(true)),
                "{:?} asks for a public IP",
                lt.launch_template_name()
            );
        }
        let instances = ec2.describe_instances().set_filters(Some(filters("staging"))).send().await.unwrap();
        let instances: Vec<_> = instances.reservations().iter().flat_map(|r| r.instances()).collect();
        assert!(!instances.is_empty(), "the groups launched instances");
        for i in &instances {
            let subnet = i.subnet_id().unwrap_or_default();
            assert!(!public.iter().any(|p| p == subnet), "{:?} runs in a public subnet", i.instance_id());
        }

        // IAM: every role's policies name only this stack's buckets and
        // secrets (and the EC2 and Auto Scaling objects it owns).
        let s3 = moto.s3();
        let buckets: Vec<String> = BUCKETS.iter().map(|b| format!("arn:aws:s3:::{b}")).collect();
        let sm = moto.secretsmanager();
        let mut secrets: Vec<String> = Vec::new();
        for page in sm.list_secrets().send().await.unwrap().secret_list() {
            let ours = page.tags().iter().any(|t| t.key() == Some("converge:env") && t.value() == Some("staging"));
            if ours || page.name().is_some_and(|n| n.starts_with("rds!")) {
                secrets.push(page.arn().unwrap().to_string());
            }
        }
        let iam = moto.iam();
        let roles = iam.list_roles().path_prefix("/converge/gitlab-ha/staging/").send().await.unwrap();
        let mut names: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "gitlab-ha-staging-gitaly-role",
                "gitlab-ha-staging-gitlab-migrate-role",
                "gitlab-ha-staging-gitlab-node-role",
                "gitlab-ha-staging-runner-manager-role"
            ]
        );
        for role in names {
            let policies = iam.list_role_policies().role_name(role).send().await.unwrap();
            assert!(!policies.policy_names().is_empty(), "{role} has policies");
            for p in policies.policy_names() {
                let doc = iam.get_role_policy().role_name(role).policy_name(p).send().await.unwrap();
                let text = percent_encoding::percent_decode_str(doc.policy_document()).decode_utf8_lossy().to_string();
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                for st in doc["Statement"].as_array().unwrap() {
                    let resources: Vec<&str> = match &st["Resource"] {
                        serde_json::Value::String(r) => vec![r.as_str()],
                        serde_json::Value::Array(rs) => rs
                            .iter()
                            .map(|r| r.as_str().unwrap_or_else(|| panic!("{role}/{p}: resource {r}")))
                            .collect(),
                        other => panic!("{role}/{p}: resource {other}"),
                    };
                    for r in resources {
                        if r.starts_with("arn:aws:s3:::") {
                            let bucket = r.trim_end_matches("/*");
                            assert!(buckets.iter().any(|b| b == bucket), "{role}/{p} names a foreign bucket {r}");
                        } else if r.starts_with("arn:aws:secretsmanager:") {
                            assert!(secrets.iter().any(|s| s == r), "{role}/{p} names a foreign secret {r}");
                        } else if r == "*" {
                            let actions = match &st["Action"] {
                                serde_json::Value::String(a) => vec![a.clone()],
                                serde_json::Value::Array(a) => {
                                    a.iter().filter_map(|a| a.as_str().map(str::to_string)).collect()
                                }
                                _ => vec![],
                            };
                            assert!(
                                actions.iter().all(|a| a.contains(":Describe")),
                                "{role}/{p}: only reads on every resource, got {actions:?}"
                            );
                        } else {
                            assert!(
                                r.starts_with("arn:aws:ec2:eu-west-1:*:")
                                    || r.starts_with("arn:aws:autoscaling:eu-west-1:"),
                                "{role}/{p}: {r}"
                            );
                            if r.ends_with("instance/*") {
                                assert_eq!(st["Condition"]["StringEquals"]["aws:ResourceTag/converge:env"], "staging");
                            }
                        }
                    }
                }
            }
        }
        // The runner workers have no role at all.
        let asg = moto.autoscaling().describe_auto_scaling_groups().send().await.unwrap();
        let group = |name: &str| {
            asg.auto_scaling_groups()
                .iter()
                .find(|g| g.auto_scaling_group_name() == Some(name))
                .unwrap_or_else(|| panic!("{name}"))
                .clone()
        };
        let lt_of = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| {
            g.launch_template()
                .or_else(|| g.mixed_instances_policy()?.launch_template()?.launch_template_specification())
                .and_then(|s| s.launch_template_id())
                .unwrap()
                .to_string()
        };
        let workers = group("gitlab-ha-staging-runner-workers");
        let v = ec2.describe_launch_template_versions().launch_template_id(lt_of(&workers)).versions("$Default");
        let v = v.send().await.unwrap();
        assert!(v.launch_template_versions()[0].launch_template_data().unwrap().iam_instance_profile().is_none());

        // Runners: workers protected from scale-in, AZRebalance suspended,
        // and SSH from the manager's group to the workers'.
        assert_eq!(workers.new_instances_protected_from_scale_in(), Some(true));
        let suspended: Vec<&str> = workers.suspended_processes().iter().filter_map(|p| p.process_name()).collect();
        assert_eq!(suspended, ["AZRebalance"]);
        let runners =
            ec2.describe_security_groups().set_filters(Some(tagged_filter("runners_sg"))).send().await.unwrap();
        let ssh = runners.security_groups()[0]
            .ip_permissions()
            .iter()
            .find(|p| p.from_port() == Some(22))
            .expect("runners_sg admits SSH");
        assert_eq!(ssh.user_id_group_pairs()[0].group_id(), Some(manager_sg.as_str()), "from the manager only");
        let manager_ud = user_data_of(&ec2, &lt_of(&group("gitlab-ha-staging-runner-manager"))).await;
        for line in [
            "concurrent = 3",
            "max_instances = 3",
            "capacity_per_instance = 1",
            "[runners.autoscaler.connector_config]",
            "username = \"ubuntu\"",
            "BucketName = \"acme-gitlab-staging-runner-cache\"",
            "name = \"gitlab-ha-staging-runner-workers\"",
        ] {
            assert!(manager_ud.lines().any(|l| l.trim() == line), "missing `{line}` in:\n{manager_ud}");
        }
        let worker_ud = user_data_of(&ec2, &lt_of(&workers)).await;
        assert!(worker_ud.contains("usermod -aG docker ubuntu"), "{worker_ud}");

        // Gitaly: one node in the AZ of its own data volume, which its user
        // data attaches; the volume is encrypted.
        let gitaly = group("gitlab-ha-staging-gitaly");
        assert_eq!((gitaly.min_size(), gitaly.max_size()), (Some(1), Some(1)));
        let vol = ec2.describe_volumes().set_filters(Some(tagged_filter("gitaly_data"))).send().await.unwrap();
        let vol = &vol.volumes()[0];
        assert_eq!(vol.encrypted(), Some(true));
        assert_eq!(vol.size(), Some(50), "staging's size");
        let subnet = ec2.describe_subnets().subnet_ids(gitaly.vpc_zone_identifier().unwrap()).send().await.unwrap();
        assert_eq!(subnet.subnets()[0].availability_zone(), vol.availability_zone(), "node and volume share an AZ");
        let gitaly_ud = user_data_of(&ec2, &lt_of(&gitaly)).await;
        assert!(gitaly_ud.contains(&format!("volume={}", vol.volume_id().unwrap())), "{gitaly_ud}");
        assert!(gitaly_ud.contains("listen_addr: '0.0.0.0:8075'"), "{gitaly_ud}");

        // gitlab.rb: NGINX behind the load balancer, repositories on the
        // Gitaly node, a prefix per object type, the registry, the EFS guard.
        let elb = moto.elbv2();
        let lbs = elb.describe_load_balancers().names("gitlab-ha-staging-gitaly").send().await.unwrap();
        let gitaly_dns = lbs.load_balancers()[0].dns_name().unwrap().to_string();
        let obj = s3.get_object().bucket("acme-gitlab-staging-config").key("gitlab.rb").send().await.unwrap();
        let rb = String::from_utf8(obj.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
        for line in [
            "nginx['listen_port'] = 80".to_string(),
            "nginx['listen_https'] = false".to_string(),
            "gitaly['enable'] = false".to_string(),
            format!("    'gitaly_address' => 'tcp://{gitaly_dns}:8075',"),
            "registry_external_url 'https://gitlab.staging.example.internal:5050'".to_string(),
            "registry_nginx['listen_https'] = false".to_string(),
            "high_availability['mountpoint'] = ['/mnt/efs']".to_string(),
        ] {
            assert!(rb.lines().any(|l| l == line), "missing `{line}` in gitlab.rb:\n{rb}");
        }
        let mut prefixes: Vec<&str> = rb
            .lines()
            .filter(|l| l.starts_with("gitlab_rails['object_store']['objects']"))
            .map(|l| l.rsplit(" = ").next().unwrap())
            .collect();
        assert_eq!(prefixes.len(), 9, "{rb}");
        assert!(prefixes.iter().all(|p| p.starts_with("'acme-gitlab-staging-objects/")), "{prefixes:?}");
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), 9, "no two object types share a prefix");

        // User data: no secret value, and every boot script stops at the
        // first failure (and writes secret files from a 077 umask).
        let token = sm
            .get_secret_value()
            .secret_id("gitlab-ha/staging/gitaly-token")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string();
        assert_eq!(token.len(), 64, "Secrets Manager generated the Gitaly token");
        for lt in lts.launch_templates() {
            let ud = user_data_of(&ec2, lt.launch_template_id().unwrap()).await;
            assert!(!ud.contains(&token), "{:?} holds the Gitaly token", lt.launch_template_name());
            assert!(!rb.contains(&token), "gitlab.rb holds the Gitaly token");
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&ud).expect("user data is YAML");
            let runcmd = doc["runcmd"].as_sequence().expect("runcmd");
            let scripts: Vec<&str> = doc["write_files"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(|f| f["content"].as_str())
                .filter(|c| c.starts_with("#!/bin/bash"))
                .collect();
            assert!(!scripts.is_empty(), "{ud}");
            for s in scripts {
                assert!(s.contains("\nset -euo pipefail\n"), "{s}");
                // And it parses: `bash -n` reads without running.
                let mut bash = std::process::Command::new("bash")
                    .arg("-n")
                    .stdin(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut bash.stdin.take().unwrap(), s.as_bytes()).unwrap();
                let out = bash.wait_with_output().unwrap();
                assert!(out.status.success(), "{}\n{s}", String::from_utf8_lossy(&out.stderr));
            }
            for cmd in runcmd {
                let cmd = serde_yaml_ng::to_string(cmd).unwrap();
                assert!(
                    cmd.contains("/usr/local/sbin/converge-") || cmd.contains("daemon-reload"),
                    "unguarded runcmd {cmd}"
                );
            }
        }
    });
}

#[test]
fn a_password_from_the_environment_goes_to_rds_only() {
    // The shipped stack lets RDS manage the password; a user may still
    // bring their own through `${env.NAME}`.
    let moto = Moto::start();
    let dir = Scratch::new("password");
    let stack = dir.write(
        "db.yaml",
        "stack: pw\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.50.0.0/16\n  a:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.50.1.0/24\n      availability_zone: eu-west-1a\n  b:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.50.2.0/24\n      availability_zone: eu-west-1b\n  subnets:\n    type: rds.db_subnet_group\n    properties:\n      subnet_ids: [\"${resources.a.id}\", \"${resources.b.id}\"]\n  db:\n    type: rds.db_instance\n    protect: false\n    properties:\n      engine: postgres\n      engine_version: \"16.4\"\n      instance_class: db.t4g.micro\n      allocated_storage: 20\n      db_subnet_group_name: ${resources.subnets.name}\n      master_username: app\n      vpc_security_group_ids: []\n      master_password: ${env.GITLAB_DB_PASSWORD}\n      deletion_protection: false\n      skip_final_snapshot: true\n",
    );
    let s = path_str(&stack);
    let trace =
        |args: &[&str]| harness::Run::from(moto.converge().env("RUST_LOG", "trace").args(args).output().unwrap());
    let mut runs = vec![moto.run(&["validate", s]).expect(0)];
    let r = moto.run(&["plan", s, "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("+ master_password             = (sensitive)"), "{}", r.stdout);
    runs.push(r);
    runs.push(moto.run(&["plan", s, "--format", "json", "-v"]).expect(0));
    runs.push(trace(&["plan", s]).expect(0));
    // A saved plan, Markdown and GitLab's report: the secret is a reference
    // in the file, read again at apply; without it, apply refuses offline.
    let (saved, report) = (dir.path("plan.cvp"), dir.path("report.json"));
    let (saved, report) = (path_str(&saved), path_str(&report));
    runs.push(trace(&["plan", s, "--out", saved, "--format", "markdown", "--gitlab-report", report]).expect(0));
    assert!(std::fs::read_to_string(saved).unwrap().contains("\"GITLAB_DB_PASSWORD\""), "no reference to the secret");
    let mark = moto.calls().len();
    let r =
        harness::Run::from(moto.converge().env_remove("GITLAB_DB_PASSWORD").args(["apply", saved]).output().unwrap())
            .expect(1);
    assert!(r.stderr.contains("needs environment variable `GITLAB_DB_PASSWORD`, which is not set"), "{}", r.stderr);
    assert_eq!(moto.calls().len(), mark, "apply without the secret called AWS");
    runs.push(r);
    runs.push(trace(&["apply", saved, "-v"]).expect(0));
    runs.push(trace(&["plan", s, "--detailed-exitcode", "-v"]).expect(0));
    for format in ["text", "json", "markdown"] {
        runs.push(trace(&["drift", s, "--format", format, "-v"]).expect(0));
    }
    // Where the value is read back and re-sent: a changed setting updates
    // the instance (ModifyDBInstance), still without showing it.
    let bigger = dir.write(
        "bigger.yaml",
        &std::fs::read_to_string(&stack).unwrap().replace("allocated_storage: 20", "allocated_storage: 30"),
    );
    runs.push(trace(&["drift", path_str(&bigger), "--format", "json"]).expect(2));
    runs.push(trace(&["drift", path_str(&bigger), "--format", "markdown"]).expect(2));
    runs.push(trace(&["apply", path_str(&bigger), "--auto-approve", "-v"]).expect(0));
    let rds = moto.rds();
    let ec2 = moto.ec2();
    rt().block_on(async {
        for db in rds.describe_db_instances().send().await.unwrap().db_instances() {
            assert!(!format!("{db:?}").contains(DB_PASSWORD), "the password is in the DB's description");
        }
        let tags = ec2.describe_tags().send().await.unwrap();
        assert!(!format!("{tags:?}").contains(DB_PASSWORD), "the password is in a tag");
    });
    runs.push(trace(&["destroy", path_str(&bigger), "--auto-approve", "--allow-destroy", "db", "-v"]).expect(0));
    for run in &runs {
        assert!(
            !run.stdout.contains(DB_PASSWORD) && !run.stderr.contains(DB_PASSWORD),
            "the password leaked:\n{run:?}"
        );
    }
    // Nor in any file converge wrote: locks, state, beside the stack.
    for root in [&moto.dir.0, &dir.0] {
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().is_some_and(|n| n != "requests.jsonl" && n != "moto.out") {
                    let bytes = std::fs::read(&p).unwrap();
                    assert!(
                        !bytes.windows(DB_PASSWORD.len()).any(|w| w == DB_PASSWORD.as_bytes()),
                        "the password is in {}",
                        p.display()
                    );
                }
            }
        }
    }
    // The trace logs were long: the check looked at real output.
    assert!(runs.iter().map(|r| r.stderr.len()).sum::<usize>() > 100_000, "RUST_LOG=trace logged little");
}

/// When moto saw `operation` for `group` first / last.
fn first_call(moto: &Moto, operation: &str, group: &str) -> f64 {
    let calls = moto.calls();
    let c = calls.iter().find(|c| c.operation == operation && c.group.as_deref() == Some(group));
    c.unwrap_or_else(|| panic!("no {operation} for {group}")).t
}

#[test]
fn migrations_run_before_the_app_nodes_are_touched() {
    // As on AWS, a group's instances are Pending for a while before they
    // serve, and an instance refresh takes time: converge must wait for the
    // migration node (InService, healthy in its target groups) before it
    // creates or refreshes the app group.
    const WARMUP: f64 = 3.0;
    let moto = Moto::start_with(&["--asg-warmup-seconds", "3"]);
    let migrate = "gitlab-ha-staging-gitlab-migrate";
    let app = "gitlab-ha-staging-gitlab-app";
    apply(&moto, STACK);
    let created = first_call(&moto, "CreateAutoScalingGroup", migrate);
    let app_created = first_call(&moto, "CreateAutoScalingGroup", app);
    assert!(
        app_created >= created + WARMUP,
        "the app group was created {:.1}s after the migration group, before its node was InService",
        app_created - created
    );
    // What decided it: the migration group's instances seen InService.
    let waited = moto
        .calls()
        .iter()
        .filter(|c| c.operation == "DescribeAutoScalingGroups" && c.group.as_deref() == Some(migrate))
        .filter(|c| c.t > created && c.t < app_created)
        .count();
    assert!(waited >= 2, "converge polled the migration group {waited} times");
    let instances = rt().block_on(async {
        let g = moto.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(migrate).send().await;
        g.unwrap().auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|i| i.lifecycle_state().unwrap().as_str().to_string())
            .collect::<Vec<_>>()
    });
    assert_eq!(instances, ["InService"]);

    // A gitlab.rb change refreshes both groups: the app group's refresh
    // starts only after the migration group's has finished.
    let dir = Scratch::beside_stacks("order");
    let template = std::fs::read_to_string(harness::repo().join("templates/gitlab.rb.j2")).unwrap();
    dir.write("gitlab.rb.j2", &format!("{template}gitlab_rails['time_zone'] = 'UTC'\n"));
    let edited =
        stack_variant(&dir, "edited.yaml", &[("$template: ../templates/gitlab.rb.j2", "$template: gitlab.rb.j2")]);
    let mark = moto.calls().len();
    apply(&moto, path_str(&edited));
    let since: Vec<harness::Call> = moto.calls().into_iter().skip(mark).collect();
    let at = |op: &str, group: &str| {
        since
            .iter()
            .find(|c| c.operation == op && c.group.as_deref() == Some(group))
            .unwrap_or_else(|| panic!("no {op} for {group}"))
            .t
    };
    let migrate_refresh = at("StartInstanceRefresh", migrate);
    let app_touched = since
        .iter()
        .filter(|c| c.mutating && c.group.as_deref() == Some(app))
        .map(|c| c.t)
        .fold(f64::INFINITY, f64::min);
    assert!(
        app_touched >= migrate_refresh + WARMUP,
        "the app group was touched {:.1}s after the migration refresh started, before it finished",
        app_touched - migrate_refresh
    );
    // And apply returned only once the app group's refresh was done too.
    let app_refresh = at("StartInstanceRefresh", app);
    let last = since.last().unwrap().t;
    assert!(last >= app_refresh + WARMUP, "apply did not wait for the app refresh");
    plan(&moto, path_str(&edited)).expect(0);
}

/// Runs two `converge` commands at once and returns their runs.
fn together(moto: &Moto, a: &[&str], b: &[&str]) -> (harness::Run, harness::Run) {
    let spawn = |args: &[&str]| {
        moto.converge().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start converge")
    };
    let (first, second) = (spawn(a), spawn(b));
    (harness::Run::from(first.wait_with_output().unwrap()), harness::Run::from(second.wait_with_output().unwrap()))
}

/// The lock id a refusal names.
fn lock_id(refused: &str) -> String {
    let at = refused.find("lock id ").unwrap_or_else(|| panic!("no lock id in:\n{refused}")) + "lock id ".len();
    refused[at..].split(',').next().unwrap().trim().to_string()
}

#[test]
fn two_applies_at_once_make_one_of_everything() {
    // Two pipelines (or a person and CI) apply the same stack/env at the
    // same moment on an empty account: one runs, the other is refused at
    // once, naming the holder; afterwards there is one of everything.
    let moto = Moto::start_with(&["--delay-mutations-ms", "20"]);
    let args = ["apply", STACK, "--env", "staging", "--auto-approve"];
    let (a, b) = together(&moto, &args, &args);
    let (ran, refused) = if a.code == 0 { (a, b) } else { (b, a) };
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains(&format!("Apply complete: {STAGING} created")), "{}", ran.stdout);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("stack gitlab-ha, environment staging, is locked by "), "{}", refused.stderr);
    assert!(refused.stderr.contains(", apply"), "the holder's operation: {}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("converge unlock {STACK} --env staging {}", lock_id(&refused.stderr))),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty(), "the refused run planned nothing: {}", refused.stdout);
    let all = tagged(&moto, "staging");
    assert_eq!(all.len(), STAGING - UNTAGGED, "{all:?}");
    assert!(all.values().all(|n| *n == 1), "duplicates: {all:?}");
    // The winner released its lock: the next run goes.
    plan(&moto, STACK).expect(0);
    moto.run(&args).expect(0);

    // On the converged stack, two applies of different pending changes at
    // once: never both; the refused one changed nothing.
    let dir = Scratch::beside_stacks("two");
    let a = stack_variant(
        &dir,
        "a.yaml",
        &[("      description: GitLab runners\n", "      description: GitLab CI runners\n")],
    );
    let b = stack_variant(&dir, "b.yaml", &[("      runner_cache_days: 3\n", "      runner_cache_days: 5\n")]);
    let (ra, rb) = together(
        &moto,
        &["apply", path_str(&a), "--env", "staging", "--auto-approve"],
        &["apply", path_str(&b), "--env", "staging", "--auto-approve"],
    );
    let codes = [ra.code, rb.code];
    assert!(
        codes.contains(&0) && codes.contains(&1),
        "exactly one ran: {codes:?}\n{}{}\n{}{}",
        ra.stdout,
        ra.stderr,
        rb.stdout,
        rb.stderr
    );
    let refused = if ra.code == 1 { &ra } else { &rb };
    assert!(refused.stderr.contains("is locked by "), "{}", refused.stderr);

    // Plan takes no lock: it runs while an apply holds one.
    let (a, p) = together(
        &moto,
        &["destroy", STACK, "--env", "staging", "--auto-approve", "--allow-destroy", "*"],
        &["plan", STACK, "--env", "staging"],
    );
    assert_eq!((a.code, p.code), (0, 0), "{}{}", p.stdout, p.stderr);
}

#[test]
fn a_dead_runs_lock_is_released_by_unlock_or_its_lease() {
    // The stack's locks in its state bucket (S3, conditional writes).
    let moto = Moto::start_with(&["--delay-mutations-ms", "100"]);
    let dir = Scratch::beside_stacks("lock");
    rt().block_on(async {
        let here = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        moto.s3().create_bucket().bucket("acme-converge-state").create_bucket_configuration(here).send().await.unwrap()
    });
    let stack = stack_variant(
        &dir,
        "locked.yaml",
        &[("stack: gitlab-ha\n", "stack: gitlab-ha\nstate:\n  bucket: acme-converge-state\n")],
    );
    let stack = path_str(&stack);
    let lock_key = "converge/locks/gitlab-ha/staging.json";
    let lock_exists = || {
        rt().block_on(async {
            moto.s3().head_object().bucket("acme-converge-state").key(lock_key).send().await.is_ok()
        })
    };
    let kill_mid_apply = |lease: &str| {
        let mut child = moto
            .converge()
            .args(["apply", stack, "--env", "staging", "--auto-approve", "--lock-lease", lease])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_lines(&mut child, 1, |l| l.contains(": created "));
        child.kill().unwrap(); // SIGKILL: no chance to release
        child.wait().unwrap();
    };

    // A lease long enough that the lock is still held when the next run
    // starts.
    kill_mid_apply("2m");
    assert!(lock_exists(), "the killed run's lock is in the bucket");
    let refused = moto.run(&["apply", stack, "--env", "staging", "--auto-approve"]).expect(1);
    assert!(refused.stderr.contains("is locked by"), "{}", refused.stderr);
    let id = lock_id(&refused.stderr);
    // unlock removes exactly the lock it names.
    let r = moto.run(&["unlock", stack, "--env", "staging", "0000"]).expect(1);
    assert!(r.stderr.contains(&format!("is {id}, not 0000")), "{}", r.stderr);
    let r = moto.run(&["unlock", stack, "--env", "staging", &id]).expect(0);
    assert!(r.stdout.contains(&format!("Removed lock {id} held by ")), "{}", r.stdout);
    assert!(!lock_exists());

    // Killed again: once its 3 s lease has run out, the next run takes the
    // lock over by itself, converges, and leaves no lock behind.
    kill_mid_apply("3s");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let r = moto.run(&["apply", stack, "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("Took over the lock of a run whose lease ran out"), "{}", r.stdout);
    assert!(!lock_exists());
    let all = tagged(&moto, "staging");
    assert!(all.values().all(|n| *n == 1), "duplicates: {all:?}");
    assert_eq!(all.len(), STAGING - UNTAGGED);

    // Runs that wait (--lock-timeout) get the lock in turn: both succeed,
    // whichever came first.
    let (a, b) = together(
        &moto,
        &["apply", stack, "--env", "staging", "--auto-approve", "--lock-timeout", "5m"],
        &["destroy", stack, "--env", "staging", "--auto-approve", "--lock-timeout", "5m", "--allow-destroy", "*"],
    );
    assert_eq!((a.code, b.code), (0, 0), "{}{}\n{}{}", a.stdout, a.stderr, b.stdout, b.stderr);
    assert!(!lock_exists());
}

/// A bucket made by hand (untagged) in the stack's region.
fn hand_made_bucket(moto: &Moto, name: &str) {
    rt().block_on(async {
        let here = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        moto.s3().create_bucket().bucket(name).create_bucket_configuration(here).send().await.unwrap()
    });
}

#[test]
fn another_environments_objects_are_never_touched() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("own");
    moto.run(&["apply", STACK, "--env", "production", "--auto-approve"]).expect(0);
    let before = tagged(&moto, "production");

    // A staging spec that names production's bucket: a conflict naming the
    // owner, in plan and apply, with no mutating call; destroy leaves
    // production alone.
    let clash = stack_variant(
        &dir,
        "clash.yaml",
        &[(
            "    name: ${var.bucket_prefix}-${environment}-config\n",
            "    name: ${var.bucket_prefix}-production-config\n",
        )],
    );
    let clash = path_str(&clash);
    let mark = moto.calls().len();
    let owner = "resource `config_bucket` (s3.bucket): `acme-gitlab-production-config` exists and belongs to stack gitlab-ha, environment production (its resource `config_bucket`)";
    let r = moto.run(&["plan", clash, "--env", "staging"]).expect(1);
    assert!(r.stderr.contains(owner), "{}", r.stderr);
    let r = moto.run(&["apply", clash, "--env", "staging", "--auto-approve"]).expect(1);
    assert!(r.stderr.contains(owner), "{}", r.stderr);
    assert_eq!(moto.mutating_since(mark).len(), 0, "{:?}", moto.mutating_since(mark));
    moto.run(&["destroy", clash, "--env", "staging", "--auto-approve", "--allow-destroy", "*"]).expect(0);
    assert_eq!(tagged(&moto, "production"), before, "production untouched");

    // A bucket made by hand with a spec's name: reported, not adopted…
    hand_made_bucket(&moto, "acme-gitlab-staging-registry");
    let r = plan(&moto, STACK).expect(1);
    assert!(
        r.stderr.contains("`acme-gitlab-staging-registry` exists and no converge stack manages it; to take it over, set `adopt: true` on `registry_bucket`"),
        "{}",
        r.stderr
    );
    // …unless the spec says `adopt: true`: the plan shows the take-over
    // (tags added), and apply makes it the stack's.
    let adopt = stack_variant(
        &dir,
        "adopt.yaml",
        &[("  registry_bucket:\n    type: s3.bucket\n", "  registry_bucket:\n    type: s3.bucket\n    adopt: true\n")],
    );
    let r = plan(&moto, path_str(&adopt)).expect(2);
    assert!(
        r.stdout.contains("  ~ registry_bucket (s3.bucket, acme-gitlab-staging-registry) will be updated in place"),
        "{}",
        r.stdout
    );
    apply(&moto, path_str(&adopt));
    plan(&moto, path_str(&adopt)).expect(0);
    let found = tagged(&moto, "staging");
    assert_eq!(found.get(&("bucket".to_string(), "registry_bucket".to_string())), Some(&1), "{found:?}");
    assert_eq!(tagged(&moto, "production"), before, "production untouched");
}

/// The ARN of the target group tagged as `resource` in staging.
fn tg_arn(moto: &Moto, resource: &str) -> String {
    rt().block_on(async {
        let elb = moto.elbv2();
        for g in elb.describe_target_groups().send().await.unwrap().target_groups() {
            let arn = g.target_group_arn().unwrap();
            let tags = elb.describe_tags().resource_arns(arn).send().await.unwrap();
            let mine = tags.tag_descriptions()[0]
                .tags()
                .iter()
                .any(|t| t.key() == Some("converge:resource") && t.value() == Some(resource))
                && tags.tag_descriptions()[0]
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some("converge:env") && t.value() == Some("staging"));
            if mine {
                return arn.to_string();
            }
        }
        panic!("no target group tagged {resource}")
    })
}

#[test]
fn replace_of_in_use_target_group_and_security_group_converges_in_one_apply() {
    // The harness refuses, as AWS does, to delete a security group that an
    // instance, a load balancer or another group's rule still uses, and a
    // target group a listener forwards to: only create-before-destroy in
    // dependency order gets through in one apply.
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("cbd");
    apply(&moto, STACK);
    let (old_sg, old_tg) = (sg_id(&moto, "app_sg"), tg_arn(&moto, "app_tg"));
    let changed = stack_variant(
        &dir,
        "changed.yaml",
        &[
            (
                "      description: GitLab application nodes\n",
                "      description: GitLab application nodes (Puma, Sidekiq)\n",
            ),
            (
                "  app_tg:\n    type: elbv2.target_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      port: 80\n",
                "  app_tg:\n    type: elbv2.target_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      port: 8080\n",
            ),
        ],
    );
    let r = plan(&moto, path_str(&changed)).expect(2);
    assert!(r.stdout.contains("+/- app_sg (ec2.security_group, sg-"), "{}", r.stdout);
    assert!(r.stdout.contains("+/- app_tg (elbv2.target_group, arn:"), "{}", r.stdout);
    assert!(r.stdout.contains("\"gitlab-ha-staging-app-tg\" → \"gitlab-ha-staging-app-tg-2\""), "{}", r.stdout);

    let r = apply(&moto, path_str(&changed));
    assert!(r.stdout.contains("2 replaced"), "{}", r.stdout);
    plan(&moto, path_str(&changed)).expect(0);
    let found = tagged(&moto, "staging");
    assert!(found.values().all(|n| *n == 1), "one of everything: {found:?}");
    assert_eq!(found.len(), STAGING - UNTAGGED, "{found:?}");
    let (new_sg, new_tg) = (sg_id(&moto, "app_sg"), tg_arn(&moto, "app_tg"));
    assert_ne!(new_sg, old_sg);
    assert_ne!(new_tg, old_tg);

    // Everything that used the old objects uses the new ones, checked
    // independently; the old ones are gone.
    let db_sg = sg_id(&moto, "db_sg");
    rt().block_on(async {
        let ec2 = moto.ec2();
        let old = ec2.describe_security_groups().group_ids(&old_sg).send().await;
        assert!(old.is_err() || old.unwrap().security_groups().is_empty(), "old group deleted");
        let db = ec2.describe_security_groups().group_ids(&db_sg).send().await.unwrap();
        let sources: Vec<&str> = db.security_groups()[0]
            .ip_permissions()
            .iter()
            .flat_map(|p| p.user_id_group_pairs())
            .filter_map(|g| g.group_id())
            .collect();
        assert_eq!(sources, [new_sg.as_str()], "the database admits the new group");
        let running = ec2
            .describe_instances()
            .filters(Filter::builder().name("instance-state-name").values("running").build())
            .filters(
                Filter::builder().name("tag:aws:autoscaling:groupName").values("gitlab-ha-staging-gitlab-app").build(),
            )
            .send()
            .await
            .unwrap();
        let groups: Vec<&str> = running
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .flat_map(|i| i.security_groups())
            .filter_map(|g| g.group_id())
            .collect();
        assert!(!groups.is_empty() && groups.iter().all(|g| *g == new_sg), "app nodes moved: {groups:?}");

        let elb = moto.elbv2();
        assert!(
            elb.describe_target_groups().target_group_arns(&old_tg).send().await.is_err(),
            "old target group deleted"
        );
        let lbs = elb.describe_load_balancers().names("gitlab-ha-staging-alb").send().await.unwrap();
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(lbs.load_balancers()[0].load_balancer_arn().unwrap())
            .send()
            .await
            .unwrap();
        let forwards: Vec<&str> = listeners
            .listeners()
            .iter()
            .filter(|l| l.port() == Some(443))
            .flat_map(|l| l.default_actions())
            .filter_map(|a| a.target_group_arn())
            .collect();
        assert_eq!(forwards, [new_tg.as_str()], "HTTPS forwards to the new target group");
        let asg = moto.autoscaling();
        let g = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("gitlab-ha-staging-gitlab-app")
            .send()
            .await
            .unwrap();
        assert!(g.auto_scaling_groups()[0].target_group_arns().contains(&new_tg));
        assert!(!g.auto_scaling_groups()[0].target_group_arns().contains(&old_tg));
    });
}

#[test]
fn import_takes_over_untagged_objects_by_name_or_by_id_and_never_anothers() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("import");
    let import = |args: &[&str]| {
        let mut all = vec!["import", STACK, "--env", "staging"];
        all.extend_from_slice(args);
        all.push("--auto-approve");
        moto.run(&all)
    };
    hand_made_bucket(&moto, "acme-gitlab-staging-registry");
    let (hand_vpc, foreign_vpc, subnet) = rt().block_on(async {
        let ec2 = moto.ec2();
        let vpc = |cidr: &'static str| ec2.create_vpc().cidr_block(cidr).send();
        let hand = vpc("10.30.0.0/16").await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
        let foreign = vpc("10.20.0.0/16").await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
        let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
        ec2.create_tags()
            .resources(&foreign)
            .tags(tag("converge:stack", "gitlab-ha"))
            .tags(tag("converge:env", "production"))
            .tags(tag("converge:resource", "vpc"))
            .send()
            .await
            .unwrap();
        let subnet = ec2.create_subnet().vpc_id(&hand).cidr_block("10.30.99.0/24").send().await.unwrap();
        (hand, foreign, subnet.subnet().unwrap().subnet_id().unwrap().to_string())
    });

    // Refusals, each before any change.
    let mark = moto.calls().len();
    let r = import(&["vpc"]).expect(1);
    assert!(
        r.stderr.contains("`vpc` (ec2.vpc) is found by its tags, not a name: give the object's id"),
        "{}",
        r.stderr
    );
    let r = import(&["vpc", &foreign_vpc]).expect(1);
    assert!(
        r.stderr.contains("belongs to stack gitlab-ha, environment production (its resource `vpc`)"),
        "{}",
        r.stderr
    );
    let r = import(&["efs_a"]).expect(1);
    assert!(r.stderr.contains("`efs_a` (efs.mount_target) cannot be imported: AWS cannot tag it"), "{}", r.stderr);
    let r = import(&["registry_bucket", "some-other-bucket"]).expect(1);
    assert!(r.stderr.contains("set `name: some-other-bucket` on `registry_bucket` first"), "{}", r.stderr);
    let r = import(&["config_bucket"]).expect(1);
    assert!(r.stderr.contains("no s3.bucket named `acme-gitlab-staging-config` exists to import"), "{}", r.stderr);
    assert_eq!(moto.mutating_since(mark).len(), 0, "{:?}", moto.mutating_since(mark));
    // `adopt:` is for kinds found by name; validate says what to use instead.
    let adopt_vpc = stack_variant(
        &dir,
        "adopt-vpc.yaml",
        &[("  vpc:\n    type: ec2.vpc\n", "  vpc:\n    type: ec2.vpc\n    adopt: true\n")],
    );
    let r = moto.run(&["validate", path_str(&adopt_vpc), "--env", "staging"]).expect(1);
    assert!(r.stderr.contains("converge import STACK --env ENV vpc ID"), "{}", r.stderr);

    // An id of another kind: tagged, found not to be a VPC, untagged again.
    let r = import(&["vpc", &subnet]).expect(1);
    assert!(r.stderr.contains(&format!("`{subnet}` is not a ec2.vpc")), "{}", r.stderr);

    // By name, and by id: the objects become the stack's, shown and tagged.
    let r = import(&["registry_bucket"]).expect(0);
    assert!(
        r.stdout.contains("~ registry_bucket (s3.bucket, acme-gitlab-staging-registry) will be updated in place"),
        "{}",
        r.stdout
    );
    let r = import(&["vpc", &hand_vpc]).expect(0);
    assert!(r.stdout.contains(&format!("vpc (ec2.vpc, {hand_vpc})")), "{}", r.stdout);
    let found = tagged(&moto, "staging");
    assert_eq!(found.get(&("bucket".into(), "registry_bucket".into())), Some(&1), "{found:?}");
    assert_eq!(found.get(&("vpc".into(), "vpc".into())), Some(&1), "{found:?}");
    assert_eq!(found.get(&("subnet".into(), "private_a".into())), None, "the subnet was untagged again: {found:?}");
    let r = import(&["vpc", &hand_vpc]).expect(1);
    assert!(r.stderr.contains(&format!("`vpc` is already this stack's: {hand_vpc}")), "{}", r.stderr);
    // The plan now builds on them instead of creating them.
    let r = plan(&moto, STACK).expect(2);
    assert!(!r.stdout.contains("  + vpc (") && !r.stdout.contains("  + registry_bucket ("), "{}", r.stdout);
    assert_eq!(tagged(&moto, "production").len(), 1, "production's VPC untouched");
}

/// Runs `converge` in the background, its stdout lines sent as they come.
fn spawn_lines(moto: &Moto, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = moto.converge().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        std::io::BufReader::new(out).lines().map_while(Result::ok).for_each(|l| drop(tx.send(l)))
    });
    std::thread::spawn(move || {
        std::io::BufReader::new(err).lines().map_while(Result::ok).for_each(|l| drop(tx2.send(l)))
    });
    (child, rx)
}

/// Waits for `n` lines matching `pred`; returns every line seen.
fn wait_lines(rx: &std::sync::mpsc::Receiver<String>, n: usize, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut seen = Vec::new();
    let mut hits = 0;
    while hits < n {
        let line = rx.recv_timeout(std::time::Duration::from_secs(120)).expect("converge went quiet");
        hits += usize::from(pred(&line));
        seen.push(line);
    }
    seen
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn a_signal_stops_the_apply_cleanly_and_the_rerun_converges() {
    // Slow mutating calls so that the signals land mid-apply.
    let moto = Moto::start_with(&["--delay-mutations-ms", "150"]);
    let apply_args = ["apply", STACK, "--env", "staging", "--auto-approve", "--parallelism", "2"];

    // SIGTERM (a cancelled CI job): running operations finish, nothing new
    // starts, the lock is released, the summary says what was and was not
    // done, exit 143.
    let (mut child, rx) = spawn_lines(&moto, &apply_args);
    let mut seen = wait_lines(&rx, 3, |l| l.contains(": created "));
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    seen.extend(rx.try_iter());
    let out = seen.join("\n");
    assert_eq!(status.code(), Some(143), "{out}");
    assert!(out.contains("SIGTERM received: starting nothing new"), "{out}");
    assert!(out.contains("Apply interrupted by SIGTERM: "), "{out}");
    assert!(out.contains("  not started: creating "), "{out}");
    assert!(out.contains("Run `converge apply` again to finish"), "{out}");
    assert!(!out.contains("abandoned:"), "nothing abandoned on one signal: {out}");
    let partial = tagged(&moto, "staging");
    assert!(partial.len() >= 3 && partial.len() < STAGING - UNTAGGED, "{partial:?}");

    // The lock was released: the next run starts at once (no lease to wait
    // out). Two SIGINTs (Ctrl-C twice): the running operations are
    // abandoned, exit 130.
    let (mut child, rx) = spawn_lines(&moto, &apply_args);
    let mut seen = wait_lines(&rx, 2, |l| l.contains(": created "));
    signal(&child, "-INT");
    seen.extend(wait_lines(&rx, 1, |l| l.contains("SIGINT received")));
    signal(&child, "-INT");
    let status = child.wait().unwrap();
    seen.extend(rx.try_iter());
    let out = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(!out.contains("is locked by"), "the SIGTERM'd run released its lock: {out}");
    assert!(out.contains("Apply interrupted by SIGINT: "), "{out}");

    // Even the abandoning run released its lock; the rerun converges with
    // exactly one of everything.
    let r = moto.run(&["apply", STACK, "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("Apply complete") && !r.stdout.contains("Took over"), "{}", r.stdout);
    let all = tagged(&moto, "staging");
    assert_eq!(all.len(), STAGING - UNTAGGED, "{all:?}");
    assert!(all.values().all(|n| *n == 1), "duplicates after rerun: {all:?}");
    plan(&moto, STACK).expect(0);
}

/// The hostile corpus: (name, stack file bytes, extra arguments, expected
/// text in the error). Generated: each case is one thing AWS, YAML or
/// converge refuses.
fn hostile_specs() -> Vec<(String, Vec<u8>, Vec<String>, String)> {
    let good = "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.0.1.0/24\n      availability_zone: eu-west-1a\n  bucket:\n    type: s3.bucket\n    name: demo-hostile-bucket\n";
    let mut out: Vec<(String, Vec<u8>, Vec<String>, String)> = Vec::new();
    let mut case = |name: String, text: String, args: &[&str], expect: &str| {
        out.push((name, text.into_bytes(), args.iter().map(|s| s.to_string()).collect(), expect.to_string()));
    };
    let edit = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1)
    };
    // YAML itself.
    case("unclosed flow".into(), edit("cidr_block: 10.0.1.0/24", "cidr_block: [10.0.1.0/24"), &[], "malformed YAML");
    case("tab indent".into(), edit("    type: ec2.vpc", "\ttype: ec2.vpc"), &[], "malformed YAML");
    case("empty file".into(), String::new(), &[], "");
    case("only a comment".into(), "# nothing\n".into(), &[], "");
    case("scalar document".into(), "42\n".into(), &[], "");
    case("list document".into(), "- a\n- b\n".into(), &[], "");
    case(
        "duplicate key".into(),
        edit("region: eu-west-1\n", "region: eu-west-1\nregion: eu-west-2\n"),
        &[],
        "duplicate",
    );
    case("deep nesting".into(), format!("{good}x: {}{}\n", "[".repeat(5000), "]".repeat(5000)), &[], "");
    let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    case("alias bomb".into(), format!("{good}{bomb}"), &[], "");
    case("undefined alias".into(), edit("cidr_block: 10.0.0.0/16", "cidr_block: *nowhere"), &[], "");
    // Top level.
    case("unknown top-level field".into(), format!("{good}resorces: {{}}\n"), &[], "unknown field `resorces`");
    case("no stack name".into(), good.replacen("stack: demo\n", "", 1), &[], "stack");
    case("bad stack name".into(), edit("stack: demo", "stack: \"demo stack!\""), &[], "stack");
    case("no resources".into(), "stack: demo\nregion: eu-west-1\n".into(), &[], "");
    case("invalid region".into(), edit("region: eu-west-1", "region: eu-wset-1"), &[], "is not an AWS region name");
    case("invalid --region".into(), good.into(), &["--region", "moon-1"], "is not an AWS region name");
    case("unknown environment".into(), good.into(), &["--env", "prod"], "environment");
    case("unknown --var".into(), good.into(), &["--var", "nope=1"], "nope");
    // Resources.
    case("unknown kind".into(), edit("type: ec2.vpc", "type: ec2.vpcc"), &[], "unknown resource type");
    case("missing kind".into(), edit("    type: ec2.vpc\n", ""), &[], "type");
    case(
        "unknown resource field".into(),
        edit("    type: ec2.vpc\n", "    type: ec2.vpc\n    propertes: {}\n"),
        &[],
        "unknown field",
    );
    case(
        "unknown property".into(),
        edit("cidr_block: 10.0.0.0/16", "cidr_blok: 10.0.0.0/16"),
        &[],
        "unknown field `cidr_blok`",
    );
    case(
        "properties a list".into(),
        edit("    properties:\n      cidr_block: 10.0.0.0/16\n", "    properties: [1]\n"),
        &[],
        "",
    );
    for (what, value) in
        [("number", "5"), ("list", "[10.0.0.0/16]"), ("map", "{a: 1}"), ("bool", "true"), ("null", "null")]
    {
        case(
            format!("cidr as {what}"),
            edit("cidr_block: 10.0.0.0/16", &format!("cidr_block: {value}")),
            &[],
            "cidr_block",
        );
    }
    for cidr in ["10.0.0.0/33", "300.0.0.0/16", "10.0.0.1/16", "abc", "10.0.0.0", "10.0.0.0/-1", "::/0"] {
        case(
            format!("bad VPC CIDR {cidr}"),
            edit("cidr_block: 10.0.0.0/16", &format!("cidr_block: \"{cidr}\"")),
            &[],
            "cidr_block",
        );
    }
    for cidr in ["10.0.0.0/8", "10.0.0.0/15", "10.0.0.0/29", "0.0.0.0/0"] {
        case(
            format!("VPC block size {cidr}"),
            edit("cidr_block: 10.0.0.0/16", &format!("cidr_block: {cidr}")),
            &[],
            "/16",
        );
    }
    case("subnet outside its VPC".into(), edit("10.0.1.0/24", "10.9.1.0/24"), &[], "is not inside the VPC's block");
    case(
        "overlapping subnets".into(),
        format!(
            "{good}  subnet2:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${{resources.vpc.id}}\n      cidr_block: 10.0.1.128/25\n      availability_zone: eu-west-1b\n"
        ),
        &[],
        "overlaps",
    );
    for bucket in [
        "192.168.1.1",
        "xn--bucket",
        "sthree-bucket",
        "amzn-s3-demo-x",
        "bucket-s3alias",
        "bucket--ol-s3",
        "bucket.mrap",
        "bucket--x-s3",
        "Bucket",
        "ab",
        "a..b",
        "-bucket",
        "bucket-",
        "bucket_name",
        &"b".repeat(64),
    ] {
        case(
            format!("bucket name {bucket}"),
            edit("name: demo-hostile-bucket", &format!("name: \"{bucket}\"")),
            &[],
            "bucket name",
        );
    }
    // Tags.
    let many: String = (0..60).map(|i| format!("      t{i}: v\n")).collect();
    case(
        "60 tags".into(),
        edit("    name: demo-hostile-bucket\n", &format!("    name: demo-hostile-bucket\n    tags:\n{many}")),
        &[],
        "AWS allows 50",
    );
    // Converge adds six (Name among them): 45 of the spec's are one too many.
    let many: String = (0..45).map(|i| format!("      t{i}: v\n")).collect();
    case(
        "45 tags".into(),
        edit("    name: demo-hostile-bucket\n", &format!("    name: demo-hostile-bucket\n    tags:\n{many}")),
        &[],
        "51 tags with the stack's, the environment's and converge's own (6): AWS allows 50",
    );
    // S3 allows 10 tags on an object: 3 of the stack's and 2 of its own
    // are 11 with converge's six (PutObject would refuse them mid-apply).
    case(
        "s3.object over S3's 10 tags".into(),
        format!(
            "{good}  config:\n    type: s3.object\n    properties:\n      bucket: ${{resources.bucket.id}}\n      key: gitlab.rb\n      content: x\n    tags:\n      role: config\n      owner: infra\ntags:\n  team: a\n  cost-center: b\n  app: c\n"
        ),
        &[],
        "11 tags with the stack's, the environment's and converge's own (6): AWS allows 10 on one s3.object",
    );
    // Values AWS refuses that moto takes (src/limits): each would fail a
    // real apply halfway.
    let sg = "  web:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n";
    for (what, props, expect) in [
        (
            "SG description with a control character",
            "      description: \"web\\u0007\"\n",
            "is not allowed: AWS allows only",
        ),
        (
            "SG description of 256 characters",
            &format!("      description: {}\n", "d".repeat(256)),
            "256 characters; AWS allows at most 255",
        ),
        (
            "SG rule description with a non-ASCII character",
            "      ingress: [{protocol: tcp, port: 22, cidr_blocks: [10.0.0.0/16], description: \"ssh à bastion\"}]\n",
            "is not allowed",
        ),
        (
            "SG rule with an IPv6 block",
            "      ingress: [{protocol: tcp, port: 22, cidr_blocks: [\"2001:db8::/32\"]}]\n",
            "is an IPv6 block",
        ),
    ] {
        case(what.into(), format!("{good}{sg}{props}"), &[], expect);
    }
    let cache = "  redis:\n    type: elasticache.replication_group\n    properties:\n      node_type: cache.t4g.small\n      engine_version: \"7.1\"\n      num_cache_clusters: N\n";
    for n in ["7", "60"] {
        case(format!("{n} cache clusters"), format!("{good}{}", cache.replace("N", n)), &[], "the most AWS allows");
    }
    for field in ["expiration_days", "noncurrent_version_expiration_days"] {
        case(
            format!("lifecycle {field} 0"),
            edit(
                "    name: demo-hostile-bucket\n",
                &format!(
                    "    name: demo-hostile-bucket\n    properties:\n      lifecycle_rules: [{{id: x, {field}: 0}}]\n"
                ),
            ),
            &[],
            "0 is below 1, the least AWS allows",
        );
    }
    let lt = "  nodes:\n    type: ec2.launch_template\n    properties:\n      image_id: ami-0123456789abcdef0\n      instance_type: TYPE\n";
    for (t, expect) in [("\"\"", "empty; AWS needs a value"), ("m7i", "is not"), ("\"m7i xlarge\"", "is not")] {
        case(format!("instance type {t}"), format!("{good}{}", lt.replace("TYPE", t)), &[], expect);
    }
    let redirect = "  http:\n    type: elbv2.listener\n    properties:\n      load_balancer_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/demo/0123456789abcdef\n      port: 80\n      protocol: HTTP\n      default_action: {type: redirect, status_code: CODE}\n";
    for (code, expect) in [
        ("\"\"", "empty; AWS needs a value"),
        ("HTTP_303", "not a value AWS knows"),
        ("http_301", "did you mean `HTTP_301`?"),
    ] {
        case(format!("redirect status {code}"), format!("{good}{}", redirect.replace("CODE", code)), &[], expect);
    }
    case("aws: tag key".into(), format!("{good}tags:\n  \"aws:owner\": me\n"), &[], "reserved for AWS");
    case("long tag key".into(), format!("{good}tags:\n  {}: v\n", "k".repeat(129)), &[], "1-128 characters");
    case("long tag value".into(), format!("{good}tags:\n  k: {}\n", "v".repeat(257)), &[], "at most 256");
    case("converge: tag key".into(), format!("{good}tags:\n  \"converge:stack\": x\n"), &[], "reserved");
    case(
        "tag from an output".into(),
        format!("{good}tags:\n  k: ${{resources.vpc.id}}\n"),
        &[],
        "not resource outputs",
    );
    case("tag from a secret".into(), format!("{good}tags:\n  k: ${{env.HOME}}\n"), &[], "not secret");
    case("tag from unknown var".into(), format!("{good}tags:\n  k: ${{var.nope}}\n"), &[], "undefined variable");
    // References and expressions.
    for (what, expr) in [
        ("unclosed", "${resources.vpc.id"),
        ("empty", "${}"),
        ("no attribute", "${resources.vpc}"),
        ("no resource", "${resources..id}"),
        ("unknown resource", "${resources.nope.id}"),
        ("unknown attribute", "${resources.vpc.nope}"),
        ("unknown namespace", "${nope.x}"),
        ("unknown var", "${var.nope}"),
        ("empty env", "${env.}"),
        ("bad conditional", "${var.x ? resources.vpc.id}"),
        ("nested", "${${var.x}}"),
        ("self", "${resources.subnet.id}"),
    ] {
        case(format!("reference {what}"), edit("${resources.vpc.id}", expr), &[], "");
    }
    case(
        "cycle".into(),
        edit("    type: ec2.vpc\n", "    type: ec2.vpc\n    depends_on: [subnet]\n"),
        &[],
        "dependency cycle",
    );
    case(
        "depends_on unknown".into(),
        edit("    type: ec2.vpc\n", "    type: ec2.vpc\n    depends_on: [nope]\n"),
        &[],
        "unknown resource",
    );
    case(
        "name from a secret".into(),
        edit("name: demo-hostile-bucket", "name: ${env.HOME}"),
        &[],
        "may not use `${env.",
    );
    case(
        "name from an output".into(),
        edit("name: demo-hostile-bucket", "name: ${resources.vpc.id}"),
        &[],
        "not resource outputs",
    );
    // Resource-level settings.
    for t in ["99999999999999999h", "abc", "-5m", "0s", "1.5h", "5d"] {
        case(
            format!("wait_timeout {t}"),
            edit("    type: ec2.vpc\n", &format!("    type: ec2.vpc\n    wait_timeout: \"{t}\"\n")),
            &[],
            "wait_timeout",
        );
    }
    for (field, v) in [("enabled", "maybe"), ("enabled", "3"), ("protect", "\"yes please\""), ("adopt", "2")] {
        case(
            format!("{field}: {v}"),
            edit("    type: ec2.vpc\n", &format!("    type: ec2.vpc\n    {field}: {v}\n")),
            &[],
            field,
        );
    }
    case(
        "adopt on a VPC".into(),
        edit("    type: ec2.vpc\n", "    type: ec2.vpc\n    adopt: true\n"),
        &[],
        "converge import",
    );
    // Numbers out of range, other kinds' names.
    let db = "  sg:\n    type: rds.db_subnet_group\n    properties:\n      subnet_ids: [\"${resources.subnet.id}\"]\n  db:\n    type: rds.db_instance\n    properties:\n      engine: postgres\n      engine_version: \"16.4\"\n      instance_class: db.t4g.micro\n      allocated_storage: STORAGE\n      db_subnet_group_name: ${resources.sg.name}\n      master_username: app\n      vpc_security_group_ids: []\n      manage_master_user_password: true\n";
    for storage in ["-5", "0", "19", "65537", "99999999999", "1.5", "\"lots\""] {
        case(
            format!("storage {storage}"),
            format!("{good}{}", db.replace("STORAGE", storage)),
            &[],
            "allocated_storage",
        );
    }
    let tg = "  tg:\n    type: elbv2.target_group\n    name: NAME\n    properties:\n      vpc_id: ${resources.vpc.id}\n      port: PORT\n      protocol: HTTP\n";
    case(
        "target group name too long".into(),
        format!("{good}{}", tg.replace("NAME", &"t".repeat(33)).replace("PORT", "80")),
        &[],
        "name",
    );
    case(
        "target group name underscore".into(),
        format!("{good}{}", tg.replace("NAME", "t_g").replace("PORT", "80")),
        &[],
        "name",
    );
    for port in ["0", "65536", "-1", "eighty"] {
        case(
            format!("target group port {port}"),
            format!("{good}{}", tg.replace("NAME", "tg-ok").replace("PORT", port)),
            &[],
            "port",
        );
    }
    let sg = "  grp:\n    type: ec2.security_group\n    name: NAME\n    properties:\n      vpc_id: ${resources.vpc.id}\n      description: d\n";
    case("security group name sg-".into(), format!("{good}{}", sg.replace("NAME", "sg-123")), &[], "sg-");
    // Templates.
    let obj = "  cfg:\n    type: s3.object\n    properties:\n      bucket: ${resources.bucket.name}\n      key: a.txt\n      content:\n        $template: TEMPLATE\n";
    case(
        "missing template".into(),
        format!("{good}{}", obj.replace("TEMPLATE", "nope.j2")),
        &[],
        "cannot read template",
    );
    case("template is a directory".into(), format!("{good}{}", obj.replace("TEMPLATE", ".")), &[], "directory");
    case(
        "template is /dev/zero".into(),
        format!("{good}{}", obj.replace("TEMPLATE", "/dev/zero")),
        &[],
        "not a regular file",
    );
    case("template syntax".into(), format!("{good}{}", obj.replace("TEMPLATE", "bad.j2")), &[], "template `bad.j2`");
    case(
        "template unknown var".into(),
        format!("{good}{}", obj.replace("TEMPLATE", "vars.j2")),
        &[],
        "template `vars.j2`",
    );
    case("template too big".into(), format!("{good}{}", obj.replace("TEMPLATE", "big.j2")), &[], "limit");
    // Bytes.
    out.push(("non-UTF-8".into(), [good.as_bytes(), b"# \xff\xfe\n"].concat(), vec![], "UTF-8".into()));
    out.push(("NUL byte".into(), [good.as_bytes(), b"x: \0\n"].concat(), vec![], String::new()));
    out.push(("5 MB file".into(), [good.as_bytes(), "#".repeat(5 << 20).as_bytes()].concat(), vec![], "limit".into()));
    out
}

#[test]
fn the_hostile_corpus_fails_cleanly_offline() {
    let moto = Moto::start();
    let dir = Scratch::new("hostile");
    dir.write("bad.j2", "{% if %}");
    dir.write("vars.j2", "{{ nope.attr }}");
    dir.write("big.j2", &"x".repeat(2 << 20));
    let cases = hostile_specs();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, (what, bytes, extra, expect)) in cases.iter().enumerate() {
        let file = dir.path(&format!("case-{i}.yaml"));
        std::fs::write(&file, bytes).unwrap();
        let mut args = vec!["plan", path_str(&file)];
        args.extend(extra.iter().map(String::as_str));
        let r = moto.run(&args);
        let ok = r.code == 1
            && !r.stderr.contains("panicked")
            && !r.stderr.contains("RUST_BACKTRACE")
            && r.stderr.contains("error")
            && r.stderr.contains(expect.as_str())
            && r.stdout.is_empty();
        if !ok {
            failures.push(format!("{what}: exit {} (expected `{expect}`)\n{}", r.code, r.stderr));
        }
    }
    // Files that are not stack files at all.
    for (what, path, expect) in [
        ("a directory", dir.0.clone(), "directory"),
        ("/dev/zero", std::path::PathBuf::from("/dev/zero"), "not a regular file"),
        ("a missing file", dir.path("nope.yaml"), "cannot read"),
    ] {
        let r = moto.run(&["plan", path_str(&path)]);
        if r.code != 1 || !r.stderr.contains(expect) || r.stderr.contains("panicked") {
            failures.push(format!("{what}: exit {}\n{}", r.code, r.stderr));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len() + 3, failures.join("\n---\n"));
    assert_eq!(moto.calls().len(), 0, "hostile specs reached AWS: {:?}", moto.calls());
}

#[test]
fn a_full_stack_apply_converges_through_throttling_errors_resets_and_lost_responses() {
    // Two seeds whose faults hit creates, attachments and IAM calls (the
    // harness replays a seed's faults by operation).
    for seed in ["2", "3"] {
        converges_through_faults(seed);
    }
}

fn converges_through_faults(seed: &str) {
    // Faults on converge's requests only (signed with access key `faulty`);
    // the independent checks below go through cleanly.
    let moto = Moto::start_with(&[
        "--faults",
        "throttle=0.10,5xx=0.05,reset=0.03,drop=0.03",
        "--fault-seed",
        seed,
        "--fault-key",
        "faulty",
    ]);
    let faulty = |args: &[&str]| {
        harness::Run::from(moto.converge().env("AWS_ACCESS_KEY_ID", "faulty").args(args).output().expect("converge"))
    };
    let mut runs = Vec::new();
    for _ in 0..6 {
        let r = faulty(&["apply", STACK, "--env", "staging", "--auto-approve"]);
        let done = r.code == 0;
        runs.push(r);
        if done {
            break;
        }
    }
    let last = runs.last().unwrap();
    assert_eq!(last.code, 0, "no convergence in {} runs; last:\n{}\n{}", runs.len(), last.stdout, last.stderr);
    let calls = moto.calls();
    let count = |f: &str| calls.iter().filter(|c| c.fault.as_deref() == Some(f)).count();
    eprintln!(
        "seed {seed}: {} runs, {} requests: {} throttled, {} 5xx, {} reset, {} lost responses",
        runs.len(),
        calls.len(),
        count("throttle"),
        count("5xx"),
        count("reset"),
        count("drop")
    );
    assert!(count("drop") >= 3 && count("reset") >= 3 && count("throttle") >= 10, "faults were injected");
    let lost: Vec<&str> = calls
        .iter()
        .filter(|c| c.mutating && c.fault.as_deref() == Some("drop"))
        .map(|c| c.operation.as_str())
        .collect();
    eprintln!("lost responses of mutating calls: {lost:?}");
    assert!(!lost.is_empty(), "some lost response followed a change that ran");
    // What failed in runs before the last (reruns are allowed), for the log.
    for r in &runs[..runs.len() - 1] {
        for line in r.stdout.lines().chain(r.stderr.lines()).filter(|l| l.contains("failed") || l.contains("error")) {
            eprintln!("  {line}");
        }
    }
    // No run printed a Rust debug dump for an error.
    for r in &runs {
        for text in [&r.stdout, &r.stderr] {
            assert!(!text.contains("Unhandled(") && !text.contains("ServiceError {"), "{text}");
        }
    }
    let all = tagged(&moto, "staging");
    assert_eq!(all.len(), STAGING - UNTAGGED, "{all:?}");
    assert!(all.values().all(|n| *n == 1), "duplicates: {all:?}");
    let r = faulty(&["plan", STACK, "--env", "staging", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

/// A PostgreSQL ingress rule from `cidr`.
fn postgres_from(cidr: &str) -> aws_sdk_ec2::types::IpPermission {
    aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(5432)
        .to_port(5432)
        .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(cidr).build())
        .build()
}

/// A bucket's versioning suspended with an independent client: a change
/// made behind converge's back.
fn suspend_versioning(moto: &Moto, bucket: &str) {
    let s3 = moto.s3();
    rt().block_on(async {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn a_saved_plan_applies_exactly_what_was_reviewed_or_nothing() {
    let moto = Moto::start();
    let dir = Scratch::new("saved");
    let stack = harness::stack_tree(&dir);
    let s = path_str(&stack);
    let file = |name: &str| dir.path(name).to_str().unwrap().to_string();

    // 1. The plan for review: JSON that matches the published schema, the
    // counts GitLab's widget reads, and a plan file.
    let schema = dir.write("plan.schema.json", &moto.run(&["schema", "--plan"]).expect(0).stdout);
    let r = moto
        .run(&["plan", s, "--env", "staging", "--format", "json", "--out", &file("p1"), "--gitlab-report", &file("gl")])
        .expect(0);
    let json = dir.write("plan.json", &r.stdout);
    harness::check_json_schema(&schema, &json);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["summary"]["add"], STAGING, "{}", r.stdout);
    let gl: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path("gl")).unwrap()).unwrap();
    assert_eq!(gl, serde_json::json!({"create": STAGING, "update": 0, "delete": 0}));
    assert!(r.stderr.contains("Apply exactly it with: converge apply"), "{}", r.stderr);
    assert!(moto.calls().iter().all(|c| !c.mutating), "plan mutated AWS");

    // 2. `apply FILE` executes it: every planned create and nothing else.
    let r = moto.run(&["apply", &file("p1")]).expect(0);
    assert_eq!(r.stdout.lines().filter(|l| l.contains("): created ")).count(), STAGING, "{}", r.stdout);
    let tagged = tagged(&moto, "staging");
    assert_eq!(tagged.len() + UNTAGGED, STAGING, "{tagged:?}");
    assert!(tagged.values().all(|&n| n == 1), "duplicates: {tagged:?}");
    // A plan file applies once: now every object it planned exists.
    let mark = moto.calls().len();
    let r = moto.run(&["apply", &file("p1")]).expect(1);
    assert!(r.stderr.contains("the plan in") && r.stderr.contains("is stale: AWS changed"), "{}", r.stderr);
    assert!(moto.mutating_since(mark).is_empty());

    // 3. A reviewed change: one line of gitlab.rb. Text and Markdown show
    // it as a line diff.
    let template = dir.path("templates/gitlab.rb.j2");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, text.replace("nginx['real_ip_recursive'] = 'on'", "nginx['real_ip_recursive'] = 'off'"))
        .unwrap();
    let r = moto.run(&["plan", s, "--env", "staging", "--out", &file("p2"), "--detailed-exitcode"]).expect(2);
    assert!(
        r.stdout.contains("- nginx['real_ip_recursive'] = 'on'\n")
            && r.stdout.contains("+ nginx['real_ip_recursive'] = 'off'\n")
            && r.stdout.contains("  nginx['real_ip_header'] = 'X-Forwarded-For'\n"),
        "no line diff in the text plan:\n{}",
        r.stdout
    );
    assert!(!r.stdout.contains("external_url '"), "the whole file was shown:\n{}", r.stdout);
    let md = moto.run(&["plan", s, "--env", "staging", "--format", "markdown"]).expect(0).stdout;
    assert!(
        md.contains("```diff\n") && md.contains("\n-") && md.contains("nginx['real_ip_recursive'] = 'on'\n+"),
        "no line diff in the Markdown plan:\n{md}"
    );
    assert!(md.contains("<details><summary><code>~ gitlab_rb (s3.object"), "{md}");
    let planned: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path("p2")).unwrap()).unwrap();
    let changed: Vec<String> = planned["plan"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "no_op")
        .map(|r| r["address"].as_str().unwrap().to_string())
        .collect();
    // gitlab.rb's new version rolls the GitLab nodes (its etag is in their
    // user data): the plan says so.
    assert_eq!(
        changed,
        [
            "s3.object.gitlab_rb",
            "ec2.launch_template.app_lt",
            "ec2.launch_template.migrate_lt",
            "autoscaling.group.gitlab_migrate",
            "autoscaling.group.gitlab_app"
        ]
    );

    // 4. Between plan and apply, someone changes a resource of the plan:
    // apply refuses, names it, and changes nothing.
    suspend_versioning(&moto, "acme-gitlab-staging-config");
    let mark = moto.calls().len();
    let r = moto.run(&["apply", &file("p2")]).expect(1);
    assert!(
        r.stderr.contains("is stale: AWS changed since it was made")
            && r.stderr.contains("s3.bucket.config_bucket (acme-gitlab-staging-config) changed: versioning"),
        "{}",
        r.stderr
    );
    assert!(moto.mutating_since(mark).is_empty(), "a refused apply changed AWS");

    // 5. A variable or the spec changed since the plan: refused too.
    let r = moto.run(&["plan", s, "--env", "staging", "--out", &file("p3")]).expect(0);
    assert!(r.stdout.contains("versioning = false → true"), "{}", r.stdout);
    let mark = moto.calls().len();
    let r = harness::Run::from(
        moto.converge().env("CONVERGE_VAR_db_storage_gb", "50").args(["apply", &file("p3")]).output().unwrap(),
    )
    .expect(1);
    assert!(r.stderr.contains("variable `db_storage_gb`: not set when planned, set to `50` now"), "{}", r.stderr);
    let original = std::fs::read_to_string(&stack).unwrap();
    std::fs::write(&stack, format!("{original}# a comment\n")).unwrap();
    let r = moto.run(&["apply", &file("p3")]).expect(1);
    assert!(r.stderr.contains(&format!("the stack file {s} changed")), "{}", r.stderr);
    std::fs::write(&stack, &original).unwrap();
    assert_eq!(moto.calls().len(), mark, "refusals on a changed spec made AWS calls");

    // 6. A plan file from a newer converge is refused, clearly.
    let newer =
        std::fs::read_to_string(dir.path("p3")).unwrap().replacen("\"format_version\": 1", "\"format_version\": 7", 1);
    std::fs::write(dir.path("newer"), newer).unwrap();
    let r = moto.run(&["apply", &file("newer")]).expect(1);
    assert!(
        r.stderr.contains("a plan file of format version 7") && r.stderr.contains("reads version 1"),
        "{}",
        r.stderr
    );

    // 7. Unchanged since: it applies exactly the reviewed changes.
    let planned: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path("p3")).unwrap()).unwrap();
    let mut reviewed: Vec<String> = planned["plan"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "no_op")
        .map(|r| format!("{} ({})", r["name"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    reviewed.sort();
    assert_eq!(reviewed.len(), 6, "{reviewed:?}");
    let r = moto.run(&["apply", &file("p3")]).expect(0);
    let mut done: Vec<String> =
        r.stdout.lines().filter_map(|l| l.split_once(": updated ").map(|(what, _)| what.to_string())).collect();
    done.sort();
    assert_eq!(done, reviewed, "{}", r.stdout);
    assert!(r.stdout.contains("Apply complete: 0 created, 6 updated, 0 replaced, 0 destroyed."), "{}", r.stdout);
    plan(&moto, s).expect(0);
    moto.run(&["drift", s, "--env", "staging"]).expect(0);
}

#[test]
fn drift_tells_changes_by_hand_from_pending_missing_and_unmanaged() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("drift");
    apply(&moto, STACK);
    let drift = |stack: &str, extra: &[&str]| {
        let mut args = vec!["drift", stack, "--env", "staging"];
        args.extend_from_slice(extra);
        moto.run(&args)
    };

    // Freshly applied: no difference at all, values AWS fills in included.
    let r = drift(STACK, &[]).expect(0);
    assert!(r.stdout.contains("No differences."), "{}", r.stdout);

    // Behind converge's back: a rule opened, versioning suspended, a bucket
    // deleted, a security group made with the stack's tags.
    suspend_versioning(&moto, "acme-gitlab-staging-config");
    let (ec2, s3) = (moto.ec2(), moto.s3());
    let db_sg = sg_id(&moto, "db_sg");
    rt().block_on(async {
        ec2.authorize_security_group_ingress()
            .group_id(&db_sg)
            .ip_permissions(postgres_from("0.0.0.0/0"))
            .send()
            .await
            .unwrap();
        let bucket = "acme-gitlab-staging-runner-cache";
        for o in s3.list_objects_v2().bucket(bucket).send().await.unwrap().contents() {
            s3.delete_object().bucket(bucket).key(o.key().unwrap()).send().await.unwrap();
        }
        s3.delete_bucket().bucket(bucket).send().await.unwrap();
        let vpc = ec2.describe_security_groups().group_ids(&db_sg).send().await.unwrap().security_groups()[0]
            .vpc_id()
            .unwrap()
            .to_string();
        let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
        ec2.create_security_group()
            .group_name("by-hand")
            .description("made by hand with the stack's tags")
            .vpc_id(vpc)
            .tag_specifications(
                aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                    .tags(tag("converge:stack", "gitlab-ha"))
                    .tags(tag("converge:env", "staging"))
                    .tags(tag("converge:resource", "by_hand"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
    // And a merged change not applied yet: a bigger database.
    let edited = stack_variant(&dir, "edited.yaml", &[("      db_storage_gb: 20", "      db_storage_gb: 30")]);
    let edited = path_str(&edited);

    let schema = dir.write("drift.schema.json", &moto.run(&["schema", "--drift"]).expect(0).stdout);
    let mark = moto.calls().len();
    let r = drift(edited, &["--format", "json"]).expect(2);
    let json = dir.write("drift.json", &r.stdout);
    harness::check_json_schema(&schema, &json);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let classes: BTreeMap<String, String> = doc["environments"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["address"].as_str().unwrap().to_string(), f["class"].as_str().unwrap().to_string()))
        .collect();
    let expected: BTreeMap<String, String> = [
        ("ec2.security_group.db_sg", "drift"),
        ("s3.bucket.config_bucket", "drift"),
        ("rds.db_instance.db", "pending"),
        ("s3.bucket.runner_cache_bucket", "missing"),
        ("ec2.security_group.by_hand", "unmanaged"),
    ]
    .into_iter()
    .map(|(a, c)| (a.to_string(), c.to_string()))
    .collect();
    assert_eq!(classes, expected, "{}", r.stdout);
    assert_eq!(doc["counts"], serde_json::json!({"drift": 2, "pending": 1, "missing": 1, "unmanaged": 1}));
    // What depends on the missing bucket is credited to it, not reported.
    let missing = doc["environments"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["class"] == "missing")
        .unwrap()
        .clone();
    assert!(
        missing["also_changes"].as_array().unwrap().iter().any(|a| a == "iam.role.runner_manager_role"),
        "{missing}"
    );

    // Each class alone exits 2 too, as text and Markdown.
    let r = drift(edited, &[]).expect(2);
    assert!(r.stdout.contains("drift     db_sg (ec2.security_group"), "{}", r.stdout);
    assert!(r.stdout.contains("5 difference(s): 2 drift, 1 pending, 1 missing, 1 unmanaged."), "{}", r.stdout);
    let r = drift(edited, &["--format", "markdown"]).expect(2);
    assert!(r.stdout.contains("| **drift** | `db_sg` | ec2.security_group |"), "{}", r.stdout);
    assert!(moto.mutating_since(mark).is_empty(), "drift changed AWS: {:?}", moto.mutating_since(mark));

    // Every environment: production was never applied, so all of it is
    // pending.
    let r = moto.run(&["drift", edited, "--all-envs", "--format", "json"]).expect(2);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let envs: Vec<&str> = doc["environments"].as_array().unwrap().iter().map(|e| e["env"].as_str().unwrap()).collect();
    assert_eq!(envs, ["staging", "production"]);
    assert_eq!(doc["environments"][1]["counts"]["pending"], 74, "{}", r.stdout);

    // Apply repairs everything; drift is clean again.
    moto.run(&["apply", edited, "--env", "staging", "--auto-approve"]).expect(0);
    drift(edited, &[]).expect(0);
}

#[test]
fn progress_is_live_on_a_terminal_and_plain_lines_elsewhere() {
    // RDS takes a while, as on AWS: long enough for a plain progress line.
    let moto = Moto::start_with(&["--rds-create-seconds", "11"]);
    let r = moto.run_on_a_terminal(&["apply", STACK, "--env", "staging", "--auto-approve"]).expect(0);
    let out = &r.stdout;
    assert!(out.contains("\x1b["), "no escape codes on a terminal:\n{out}");
    assert!(out.contains(&format!("/{} operations", STAGING)), "no total bar:\n{out}");
    assert!(out.contains("db (rds.db_instance): waiting for available (creating) ["), "no wait reason:\n{out}");
    assert!(out.contains("Apply complete: 72 created"), "{out}");
    moto.run(&["destroy", STACK, "--env", "staging", "--auto-approve", "--allow-destroy", "*"]).expect(0);

    let r = apply(&moto, STACK);
    assert!(!r.stdout.contains('\x1b') && !r.stderr.contains('\x1b'), "escape codes without a terminal");
    assert!(r.stdout.contains("db (rds.db_instance): creating…\n"), "{}", r.stdout);
    // At a steady interval, each running operation and what it waits for.
    assert!(
        r.stdout.lines().any(|l| l.starts_with("db (rds.db_instance): waiting for available (creating) [")),
        "{}",
        r.stdout
    );
}

/// One line of `apply --trace`.
#[derive(Debug, serde::Deserialize)]
struct Traced {
    resource: String,
    deps: Vec<usize>,
    start_ms: Option<f64>,
    end_ms: Option<f64>,
}

#[test]
fn each_operation_starts_as_soon_as_its_dependencies_finish_and_a_slot_is_free() {
    // Mutations take 100 ms, as calls to AWS take time (a scheduler that
    // waited for anything but the operation's own dependencies would show
    // waits that long); three slots for 72 operations, so that operations
    // also wait for slots.
    let moto = Moto::start_with(&["--delay-mutations-ms", "100"]);
    let dir = Scratch::new("trace");
    let trace = dir.path("trace.jsonl");
    let r = moto
        .run(&[
            "apply",
            STACK,
            "--env",
            "staging",
            "--auto-approve",
            "--parallelism",
            "3",
            "--stats",
            "--trace",
            path_str(&trace),
        ])
        .expect(0);
    assert!(r.stderr.contains("converge stats: ") && r.stderr.contains("  apply "), "{}", r.stderr);
    let ops: Vec<Traced> =
        std::fs::read_to_string(&trace).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ops.len(), STAGING);
    let span = |o: &Traced| (o.start_ms.unwrap(), o.end_ms.unwrap());
    // How long, within [from, to], fewer than `slots` operations ran.
    let free_time = |from: f64, to: f64| -> f64 {
        let mut cuts: Vec<f64> = vec![from, to];
        for o in &ops {
            let (s, e) = span(o);
            cuts.extend([s, e].into_iter().filter(|t| *t > from && *t < to));
        }
        cuts.sort_by(f64::total_cmp);
        cuts.windows(2)
            .filter(|w| {
                let mid = (w[0] + w[1]) / 2.0;
                ops.iter().filter(|o| span(o).0 <= mid && mid < span(o).1).count() < 3
            })
            .map(|w| w[1] - w[0])
            .sum()
    };
    let mut worst = (0.0, String::new());
    for o in &ops {
        let (start, _) = span(o);
        let ready = o.deps.iter().map(|&d| span(&ops[d]).1).fold(0.0, f64::max);
        for &d in &o.deps {
            assert!(span(&ops[d]).1 <= start, "{} started before {} ended", o.resource, ops[d].resource);
        }
        let idle = free_time(ready, start);
        if idle > worst.0 {
            worst = (idle, o.resource.clone());
        }
    }
    // A few milliseconds: the executor noticing a finished operation and
    // the next one taking its slot (a debug build, on a machine running
    // other tests too; `scripts/bench` measures the release build).
    assert!(worst.0 < 50.0, "{} waited {:.1} ms with a slot free", worst.1, worst.0);
}

#[test]
fn stats_count_every_call_moto_received() {
    let moto = Moto::start();
    apply(&moto, STACK);
    let mark = moto.calls().len();
    let r = moto.run(&["plan", STACK, "--env", "staging", "--format", "json", "--stats"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let stats = &doc["stats"];
    let seen = moto.calls().into_iter().skip(mark).collect::<Vec<_>>();
    assert_eq!(stats["calls"], seen.len(), "{}", r.stdout);
    // The same actions, as many times: --stats names each with the
    // service's IAM prefix; the harness logs the operation of the query and
    // JSON protocols by name (and S3's and EFS's REST calls by path).
    let mut logged: BTreeMap<String, u64> = BTreeMap::new();
    for c in seen.iter().filter(|c| c.service != "s3" && !c.operation.contains(' ')) {
        *logged.entry(c.operation.clone()).or_default() += 1;
    }
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for (action, n) in stats["by_action"].as_object().unwrap() {
        let (service, op) = action.split_once(':').unwrap();
        if service != "s3" && service != "elasticfilesystem" {
            *counted.entry(op.to_string()).or_default() += n.as_u64().unwrap();
        }
    }
    assert_eq!(counted, logged);
    assert!(stats["by_action"]["s3:GetBucketVersioning"] == 4, "{}", stats["by_action"]);
    let phases: Vec<&str> = stats["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["parse", "read", "diff", "render"]);
    assert!(r.stderr.contains(&format!("converge stats: {} AWS calls", seen.len())), "{}", r.stderr);
}

/// `--stats` of a plan as `action → calls`, and the plan document.
fn plan_stats(moto: &Moto, stack: &str) -> (BTreeMap<String, u64>, serde_json::Value) {
    let r = moto.run(&["plan", stack, "--env", "staging", "--format", "json", "--stats"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let calls =
        doc["stats"]["by_action"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    (calls, doc)
}

/// Issue 11: a plan's cost follows the stack, not the account. The same
/// plan of staging, first in an account holding only it, then among 24
/// more environments of the stack, all applied: at most 1.2 times the
/// calls (the ownership index is filtered by the stack's tags on the
/// server, and kinds describe only what it holds).
#[test]
fn a_plan_makes_as_many_calls_in_an_account_of_25_environments_as_in_one_of_its_own() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("envs25");
    let text = std::fs::read_to_string(harness::repo().join(STACK)).unwrap();
    let (start, end) = (text.find("\n  staging:\n").unwrap() + 1, text.find("\n  production:\n").unwrap() + 1);
    let block = &text[start..end];
    let more: String = (0..24).map(|i| block.replacen("  staging:\n", &format!("  env{i:02}:\n"), 1)).collect();
    let stack = dir.write("gitlab-25.yaml", &text.replacen(block, &format!("{block}{more}"), 1));
    let stack = path_str(&stack);

    moto.run(&["apply", stack, "--env", "staging", "--auto-approve"]).expect(0);
    let (alone, _) = plan_stats(&moto, stack);
    // The 24 others, four applies at a time.
    for batch in (0..24).collect::<Vec<_>>().chunks(4) {
        let running: Vec<_> = batch
            .iter()
            .map(|i| {
                let env = format!("env{i:02}");
                let child = moto
                    .converge()
                    .args(["apply", stack, "--env", &env, "--auto-approve"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (env, child)
            })
            .collect();
        for (env, child) in running {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "apply {env}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let vpcs = rt().block_on(moto.ec2().describe_vpcs().send()).unwrap();
    let converge_vpcs = vpcs.vpcs().iter().filter(|v| v.tags().iter().any(|t| t.key() == Some("converge:env"))).count();
    assert_eq!(converge_vpcs, 25, "the account holds 25 environments of the stack");

    let (among, doc) = plan_stats(&moto, stack);
    assert_eq!(doc["summary"]["add"], 0, "staging is still converged: {}", doc["summary"]);
    let (a, b): (u64, u64) = (alone.values().sum(), among.values().sum());
    let grew: Vec<String> = among
        .iter()
        .filter(|(k, n)| alone.get(*k).copied().unwrap_or(0) < **n)
        .map(|(k, n)| format!("{k}: {} → {n}", alone.get(k).copied().unwrap_or(0)))
        .collect();
    assert!(b * 10 <= a * 12, "{a} calls alone, {b} among 25 environments; grew: {grew:?}");
}

/// Issue 11: a full-stack plan makes no call but those the kinds declare
/// ([`Kind::reads`], listed in docs/safety.md): at most one list or batch call
/// per kind, the ownership index's pages, and the declared per-object reads
/// for the objects the stack owns.
#[test]
fn a_plan_makes_only_the_declared_reads_of_each_kind() {
    use converge::kinds::REGISTRY;
    let moto = Moto::start();
    apply(&moto, STACK);
    let (calls, doc) = plan_stats(&moto, STACK);
    let mut objects: BTreeMap<String, u64> = BTreeMap::new();
    for r in doc["resources"].as_array().unwrap() {
        *objects.entry(r["kind"].as_str().unwrap().to_string()).or_default() += 1;
    }
    // The roles' inline policies, read independently.
    let iam = moto.iam();
    let inline_policies: u64 = rt().block_on(async {
        let roles = iam.list_roles().path_prefix("/converge/").send().await.unwrap();
        let mut n = 0;
        for role in roles.roles() {
            if role.path().contains("/staging/") {
                n += iam.list_role_policies().role_name(role.role_name()).send().await.unwrap().policy_names().len();
            }
        }
        n as u64
    });
    assert!(inline_policies > 0);
    let count = |kind: &str| objects.get(kind).copied().unwrap_or(0);
    // What each call may cost, from the declarations.
    let mut allowed: BTreeMap<&str, u64> = BTreeMap::from([("tag:GetResources", 0)]);
    for kind in REGISTRY {
        let reads = kind.reads();
        for call in reads.once {
            *allowed.entry(call).or_default() += 1;
        }
        for call in reads.per_object {
            *allowed.entry(call).or_default() += count(kind.type_name());
        }
        for (call, parent) in reads.per_parent {
            *allowed.entry(call).or_default() += count(parent);
        }
    }
    *allowed.entry("iam:GetRolePolicy").or_default() += inline_policies;
    // The stack's two AMI lookups, one call each.
    *allowed.entry("ec2:DescribeImages").or_default() += 2;
    let pages = calls.get("tag:GetResources").copied().unwrap_or(0);
    assert!((1..=3).contains(&pages), "the index of 72 resources is one to three pages, not {pages}");
    for (call, n) in &calls {
        let bound = if call == "tag:GetResources" { pages } else { allowed.get(call.as_str()).copied().unwrap_or(0) };
        assert!(*n <= bound, "{call}: {n} calls, declared {bound}; all: {calls:?}");
    }
    // Objects are listed only in the bucket the spec's object is in (the
    // config bucket), never in the data buckets.
    assert_eq!(calls.get("s3:ListObjectsV2"), Some(&1), "{calls:?}");
    let total: u64 = calls.values().sum();
    let bound = REGISTRY.len() as u64 + pages + allowed.values().sum::<u64>()
        - REGISTRY.iter().map(|k| k.reads().once.len() as u64).sum::<u64>();
    assert!(total <= bound, "{total} calls > kinds + pages + per-object reads = {bound}");
}

/// Issue 10 (runs and commits): every apply is recorded in the state home
/// with its commit, CI job and result; what a run changed carries its
/// commit in `converge:commit` (what it left alone keeps the earlier one);
/// `converge history` lists the runs newest first.
#[test]
fn each_run_is_recorded_with_its_commit_and_history_lists_them() {
    let moto = Moto::start();
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    let apply_at = |commit: &str, extra: &[&str]| {
        let mut args = vec!["apply", STACK, "--env", "staging", "--auto-approve"];
        args.extend_from_slice(extra);
        harness::Run::from(
            moto.converge()
                .env("CI_COMMIT_SHA", commit)
                .env("CI_JOB_URL", format!("https://gitlab.example.com/acme/infra/-/jobs/{}", &commit[..1]))
                .args(&args)
                .output()
                .unwrap(),
        )
    };
    apply_at(&a, &[]).expect(0);
    apply_at(&b, &["--var", "runner_cache_days=5"]).expect(0);
    apply_at(&c, &["--var", "runner_cache_days=5"]).expect(0);

    // The tags, read independently: the bucket B changed has B's commit,
    // another has A's.
    let s3 = moto.s3();
    let commit_of = |bucket: &str| {
        let tags = rt().block_on(s3.get_bucket_tagging().bucket(bucket).send()).unwrap();
        tags.tag_set().iter().find(|t| t.key() == "converge:commit").map(|t| t.value().to_string())
    };
    assert_eq!(commit_of("acme-gitlab-staging-runner-cache"), Some(b.clone()));
    assert_eq!(commit_of("acme-gitlab-staging-config"), Some(a.clone()));

    let r = moto.run(&["history", STACK, "--env", "staging", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    let seen: Vec<(&str, &str)> =
        runs.iter().map(|r| (r["commit"].as_str().unwrap(), r["result"].as_str().unwrap())).collect();
    assert_eq!(seen, [(c.as_str(), "no_changes"), (b.as_str(), "succeeded"), (a.as_str(), "succeeded")]);
    assert_eq!(runs[2]["planned"]["add"], STAGING);
    assert_eq!(runs[2]["changed"].as_array().unwrap().len(), STAGING);
    assert_eq!(runs[1]["changed"], serde_json::json!(["s3.bucket.runner_cache_bucket"]));
    assert_eq!(runs[1]["job_url"], "https://gitlab.example.com/acme/infra/-/jobs/b");
    assert!(runs.iter().all(|r| r["command"] == "apply" && r["stack"] == "gitlab-ha" && r["env"] == "staging"));

    let text = moto.run(&["history", STACK, "--env", "staging"]).expect(0).stdout;
    let order: Vec<usize> = [&c, &b, &a].iter().map(|x| text.find(&format!("commit {}", &x[..12])).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first:\n{text}");
    assert!(text.contains("changed: s3.bucket.runner_cache_bucket"), "{text}");
}

/// Red pixels (a failed cell's background) in a screenshot Chromium takes
/// of `page`, counted by Pillow in the test venv.
fn red_pixels_in(page: &std::path::Path, dir: &Scratch) -> u64 {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Debian's chromium is not installed: run scripts/setup");
    let shot = dir.path(&format!("{}.png", page.file_stem().unwrap().to_str().unwrap()));
    let profile = dir.path("chromium-profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "chromium made no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let count = std::process::Command::new(harness::repo().join(".venv/bin/python"))
        .args([
            "-c",
            "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); \
             print(sum(1 for r, g, b in im.getdata() if r > 180 and g < 80 and b < 80))",
        ])
        .arg(&shot)
        .output()
        .unwrap();
    assert!(count.status.success(), "{}", String::from_utf8_lossy(&count.stderr));
    String::from_utf8_lossy(&count.stdout).trim().parse().unwrap()
}

/// Issue 10 (one screen): `converge status` over a folder of stacks shows
/// every stack and environment with its last run's commit and result; its
/// HTML page renders in headless Chromium, names them all, and a failed
/// run is red (no red before it failed).
#[test]
fn status_shows_every_stack_and_environment_and_a_failed_run_in_red() {
    let moto = Moto::start();
    let dir = Scratch::new("status");
    let stacks = dir.path("stacks");
    std::fs::create_dir_all(&stacks).unwrap();
    std::fs::write(
        stacks.join("webapp.yaml"),
        "stack: webapp\nregion: eu-west-1\nenvironments:\n  staging: {}\n  production: {}\nresources:\n  assets:\n    type: s3.bucket\n    name: converge-status-${environment}-assets\n",
    )
    .unwrap();
    // EC2 refuses the subnet's zone once it is applied.
    let broken = |az: &str| {
        format!(
            "stack: network\nregion: eu-west-1\nenvironments:\n  staging: {{}}\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.41.0.0/16\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${{resources.vpc.id}}\n      cidr_block: 10.41.1.0/24\n      availability_zone: {az}\n"
        )
    };
    std::fs::write(stacks.join("network.yaml"), broken("eu-west-1a")).unwrap();
    // A stack that does not load: its cell says so, the others still show.
    std::fs::write(
        stacks.join("odd.yaml"),
        "stack: odd\nregion: eu-west-1\nenvironments:\n  staging: {}\nresources:\n  x:\n    type: ec2.nothing\n",
    )
    .unwrap();
    let at = |commit: &str, args: &[&str]| {
        harness::Run::from(
            moto.converge()
                .env("CI_COMMIT_SHA", commit)
                .env("CI_PROJECT_URL", "https://gitlab.example.com/acme/infra")
                .env("CI_JOB_URL", "https://gitlab.example.com/acme/infra/-/jobs/7")
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let (webapp, network) = (stacks.join("webapp.yaml"), stacks.join("network.yaml"));
    let (webapp, network, folder) = (path_str(&webapp), path_str(&network), path_str(&stacks));
    let (a, b, c) = ("a1".repeat(20), "b2".repeat(20), "c3".repeat(20));
    at(&a, &["apply", webapp, "--env", "staging", "--auto-approve"]).expect(0);
    at(&b, &["apply", webapp, "--env", "production", "--auto-approve"]).expect(0);
    at(&a, &["apply", network, "--env", "staging", "--auto-approve"]).expect(0);

    let before = dir.path("before.html");
    moto.run(&["status", folder, "--format", "html", "--out", path_str(&before)]).expect(0);
    assert_eq!(red_pixels_in(&before, &dir), 0, "nothing failed yet, nothing is red");

    std::fs::write(stacks.join("network.yaml"), broken("eu-west-1z")).unwrap();
    at(&c, &["apply", network, "--env", "staging", "--auto-approve"]).expect(1);

    let r = moto.run(&["status", folder, "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let cells: Vec<(String, String, String, String)> = doc["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["envs"].as_array().unwrap().iter().map(move |e| {
                let run = &e["last_run"];
                (
                    s["stack"].as_str().unwrap().to_string(),
                    e["env"].as_str().unwrap().to_string(),
                    run["commit"].as_str().unwrap_or("-").to_string(),
                    run["result"].as_str().or(e["error"].as_str().map(|_| "unreadable")).unwrap_or("never").to_string(),
                )
            })
        })
        .collect();
    let cell = |s: &str, e: &str, commit: &str, result: &str| (s.into(), e.into(), commit.to_string(), result.into());
    assert_eq!(
        cells,
        [
            cell("network", "staging", &c, "failed"),
            cell("odd", "staging", "-", "unreadable"),
            cell("webapp", "staging", &a, "succeeded"),
            cell("webapp", "production", &b, "succeeded"),
        ]
    );
    let text = moto.run(&["status", folder]).expect(0).stdout;
    assert!(text.contains("webapp  production") || text.contains("production"), "{text}");
    assert!(text.lines().any(|l| l.contains("network") && l.contains("failed") && l.contains(&c[..12])), "{text}");

    let page = dir.path("status.html");
    moto.run(&["status", folder, "--format", "html", "--out", path_str(&page)]).expect(0);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=") && !html.contains("<link") && !html.contains("<script"), "self-contained");
    for name in ["webapp", "network", "staging", "production", &b[..12], &c[..12]] {
        assert!(html.contains(name), "{name} is on the page");
    }
    assert!(html.contains(&format!("https://gitlab.example.com/acme/infra/-/commit/{c}")), "commits link");
    assert!(html.contains("https://gitlab.example.com/acme/infra/-/jobs/7"), "runs link their job");
    let red = red_pixels_in(&page, &dir);
    assert!(red > 2_000, "the failed run's cell is red: {red} red pixels");
}

/// Issue 10 (verify, last known good, rollback): an apply whose check
/// passes becomes the last known good; one whose check fails is rolled
/// back to it (exit 1, and the output says so); `converge rollback --to`
/// goes back to any verified run. The runner cache bucket's lifecycle
/// (`runner_cache_days`) stands for the deployed revision, read with an
/// independent S3 client.
#[test]
fn a_failed_verification_rolls_back_to_the_last_known_good() {
    let moto = Moto::start();
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    let deploy = |commit: &str, days: &str, check: &str| {
        harness::Run::from(
            moto.converge()
                .env("CI_COMMIT_SHA", commit)
                .args(["apply", STACK, "--env", "staging", "--auto-approve", "--var"])
                .arg(format!("runner_cache_days={days}"))
                .args(["--verify", check])
                .output()
                .unwrap(),
        )
    };
    let s3 = moto.s3();
    let days = || {
        let out = rt()
            .block_on(s3.get_bucket_lifecycle_configuration().bucket("acme-gitlab-staging-runner-cache").send())
            .unwrap();
        out.rules()[0].expiration().and_then(|e| e.days()).unwrap()
    };
    let r = deploy(&a, "3", "test \"$CONVERGE_ENV\" = staging").expect(0);
    assert!(r.stdout.contains("is the last known good of gitlab-ha / staging"), "{}", r.stdout);
    deploy(&b, "5", "true").expect(0);
    assert_eq!(days(), 5);

    let r = deploy(&c, "9", "echo the app is down >&2; exit 3").expect(1);
    assert!(r.stdout.contains("Verification failed: `echo the app is down >&2; exit 3` exited 3."), "{}", r.stdout);
    assert!(r.stdout.contains("Rolled back to run "), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "(commit {}); the run that failed (commit {}) is no longer live.",
            &b[..12],
            &c[..12]
        )),
        "{}",
        r.stdout
    );
    assert_eq!(days(), 5, "C's change was rolled back to B's");
    let commit_tag = || {
        let tags = rt().block_on(s3.get_bucket_tagging().bucket("acme-gitlab-staging-runner-cache").send()).unwrap();
        tags.tag_set().iter().find(|t| t.key() == "converge:commit").map(|t| t.value().to_string()).unwrap()
    };
    assert_eq!(commit_tag(), b, "the rolled-back bucket says B's commit is live");

    let history = moto.run(&["history", STACK, "--env", "staging", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    let seen: Vec<(&str, &str, serde_json::Value)> = runs
        .iter()
        .map(|r| (r["command"].as_str().unwrap(), r["commit"].as_str().unwrap(), r["verified"].clone()))
        .collect();
    use serde_json::Value::{Bool, Null};
    assert_eq!(
        seen,
        [
            // What is live after the rollback is B's.
            ("rollback", b.as_str(), Null),
            ("apply", c.as_str(), Bool(false)),
            ("apply", b.as_str(), Bool(true)),
            ("apply", a.as_str(), Bool(true)),
        ]
    );
    assert_eq!(runs[0]["rolled_back_to"], runs[2]["id"]);
    assert_eq!(runs[0]["result"], "succeeded");

    // On demand, to the first verified run.
    let first = runs[3]["id"].as_str().unwrap();
    let r = moto.run(&["rollback", STACK, "--env", "staging", "--to", first]).expect(0);
    assert!(r.stdout.contains(&format!("to run {first} (commit {})", &a[..12])), "{}", r.stdout);
    assert_eq!(days(), 3);
    let r = moto.run(&["rollback", STACK, "--env", "staging", "--to", "nope"]).expect(1);
    assert!(r.stderr.contains("no verified run `nope`"), "{}", r.stderr);
}

/// Issue 10 (ECS deploy by commit): the webapp stack deployed by image tag
/// A, B, then C with a failing check. An independent ECS client sees the
/// service end on B's very revision (a rollback takes the identical ACTIVE
/// revision again, it does not register a copy), B's revision still ACTIVE
/// after more failed deploys, old revisions beyond `keep_revisions`
/// deregistered, `converge:commit` on what changed, and `history` lists
/// A, B and C with their results.
#[test]
fn an_ecs_service_deploys_by_commit_and_rolls_back_to_the_last_known_good() {
    let moto = Moto::start();
    let webapp = "stacks/webapp-ecs.yaml";
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    let deploy = |commit: &str, check: &str| {
        harness::Run::from(
            moto.converge()
                .env("CI_COMMIT_SHA", commit)
                .args(["apply", webapp, "--env", "staging", "--auto-approve", "--var"])
                .arg(format!("image_tag={}", &commit[..8]))
                .args(["--verify", check])
                .output()
                .unwrap(),
        )
    };
    let ecs = moto.ecs();
    let (cluster, service, family) =
        ("webapp-ecs-staging-cluster", "webapp-ecs-staging-service", "webapp-ecs-staging-task");
    let running = || {
        let out = rt().block_on(ecs.describe_services().cluster(cluster).services(service).send()).unwrap();
        let s = out.services()[0].clone();
        let primary = s.deployments().iter().find(|d| d.status() == Some("PRIMARY")).unwrap().clone();
        assert_eq!(primary.rollout_state(), Some(&aws_sdk_ecs::types::DeploymentRolloutState::Completed));
        assert_eq!(primary.task_definition(), s.task_definition());
        s.task_definition().unwrap().to_string()
    };
    let revision = |arn: &str| {
        let out = rt().block_on(ecs.describe_task_definition().task_definition(arn).send()).unwrap();
        let td = out.task_definition().unwrap().clone();
        (td.status().unwrap().as_str().to_string(), td.container_definitions()[0].image().unwrap().to_string())
    };
    // The family's ACTIVE revision numbers, oldest first.
    let active_revisions = || {
        let out = rt()
            .block_on(
                ecs.list_task_definitions()
                    .family_prefix(family)
                    .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                    .send(),
            )
            .unwrap();
        out.task_definition_arns().iter().map(|a| a.rsplit(':').next().unwrap().to_string()).collect::<Vec<_>>()
    };

    deploy(&a, "true").expect(0);
    let r = deploy(&b, "true").expect(0);
    assert!(r.stdout.contains("is the last known good of webapp-ecs / staging"), "{}", r.stdout);
    let b_revision = running();
    assert!(b_revision.ends_with(&format!("{family}:2")), "{b_revision}");
    assert!(revision(&b_revision).1.ends_with(&format!(":{}", &b[..8])), "B's image");

    let r = deploy(&c, "echo the new release answers 502 >&2; exit 1").expect(1);
    assert!(r.stdout.contains("Verification failed"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!("(commit {}); the run that failed (commit {})", &b[..12], &c[..12])),
        "{}",
        r.stdout
    );
    assert_eq!(running(), b_revision, "the service runs B's own revision again");
    assert_eq!(revision(&b_revision).0, "ACTIVE");

    // More failed deploys: B's revision stays ACTIVE and the service on it;
    // older revisions beyond keep_revisions (5) are deregistered, never B's.
    for commit in ["d", "e", "f", "0", "1"].map(|x| x.repeat(40)) {
        deploy(&commit, "false").expect(1);
        assert_eq!(running(), b_revision);
    }
    assert_eq!(revision(&b_revision).0, "ACTIVE");
    // The newest five, and B's, which the service runs.
    assert_eq!(active_revisions(), ["2", "4", "5", "6", "7", "8"]);
    let first = rt().block_on(ecs.describe_task_definition().task_definition(format!("{family}:1")).send()).unwrap();
    assert_eq!(first.task_definition().unwrap().status().unwrap().as_str(), "INACTIVE", "A's revision was pruned");
    assert!(
        moto.run(&["plan", webapp, "--env", "staging", "--var", &format!("image_tag={}", &b[..8])])
            .expect(0)
            .stdout
            .contains("No changes")
    );

    // Applies without a check (not verified, so B stays the last known
    // good): B's revision, marked `converge:known-good`, outlives the
    // pruning of everything beyond the newest five.
    for t in ["g1", "g2", "g3", "g4", "g5", "g6"] {
        moto.run(&["apply", webapp, "--env", "staging", "--auto-approve", "--var", &format!("image_tag={t}")])
            .expect(0);
    }
    assert_eq!(active_revisions(), ["2", "10", "11", "12", "13", "14"]);
    let r = moto.run(&["rollback", webapp, "--env", "staging"]).expect(0);
    assert!(r.stdout.contains(&format!("(commit {})", &b[..12])), "{}", r.stdout);
    assert_eq!(running(), b_revision, "a rollback after many deploys lands on B's revision");

    // The commit that changed the service last is B's (the rollback's).
    let tags = rt()
        .block_on(
            ecs.list_tags_for_resource()
                .resource_arn(format!("arn:aws:ecs:eu-west-1:123456789012:service/{cluster}/{service}"))
                .send(),
        )
        .unwrap();
    let commit = tags.tags().iter().find(|t| t.key() == Some("converge:commit")).and_then(|t| t.value());
    assert_eq!(commit, Some(b.as_str()));

    let history = moto.run(&["history", webapp, "--env", "staging", "--format", "json", "--limit", "100"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let seen: Vec<(String, String, String)> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(4)
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("command"), s("commit"), s("result"))
        })
        .collect();
    let run = |cmd: &str, commit: &str, result: &str| (cmd.to_string(), commit.to_string(), result.to_string());
    assert_eq!(
        seen,
        [
            run("apply", &a, "succeeded"),
            run("apply", &b, "succeeded"),
            run("apply", &c, "succeeded"),
            run("rollback", &b, "succeeded"),
        ]
    );
    assert_eq!(doc["runs"].as_array().unwrap().iter().rev().nth(2).unwrap()["verified"], false);
}

/// Issue 10 (the pipeline), issue 22 (the reviewed plan is the applied
/// plan): `templates/gitlab-ci.yml`'s jobs run under gitlab-ci-local
/// (npm's, shell executor, no Docker) against moto, in a scratch project
/// that includes the template, with the app stack:
/// - a merge request's `validate` and `plan ENV` (the Terraform report
///   counts what a first apply creates), each plan posted as its own note
///   on the merge request (a GitLab notes API stand-in); a GitLab that
///   answers 502 fails no plan job;
/// - the default branch: `plan staging` saves the plan and `apply staging`
///   applies that file with a passing check (the last known good), then a
///   new image whose check fails (the job fails, the service is rolled
///   back, read with an independent client); no apply job plans again;
/// - AWS changed by hand between `plan staging` and `apply staging`: the
///   apply job fails on the stale plan, says to run the pipeline again,
///   and changes nothing;
/// - the scheduled `drift` job, which passes while AWS matches and fails
///   once a setting is changed by hand.
#[test]
fn the_pipeline_runs_under_gitlab_ci_local() {
    use harness::gitlab_api::{FakeGitLab, Mode};
    let moto = Moto::start();
    let gitlab = FakeGitLab::start(3);
    let gl = harness::GitLabProject::new("pipeline");
    let project = gl.dir.0.clone();
    std::fs::write(
        project.join(".gitlab-ci.yml"),
        "include:\n  - local: templates/gitlab-ci.yml\nvariables:\n  CONVERGE_IMAGE: converge:local\n  CONVERGE_STACK: stacks/webapp-ecs.yaml\n",
    )
    .unwrap();
    gl.git(&["add", "-A"]);
    gl.git(&["commit", "-qm", "the app and its pipeline"]);
    let sha = gl.git(&["rev-parse", "HEAD"]);

    // Jobs inherit the process environment: moto's endpoint and credentials,
    // as a runner's would hold AWS's. Each pipeline has a newer id.
    let pipelines = std::cell::Cell::new(0);
    let pipeline = |source: &str, vars: &[(&str, &str)], jobs: &[&str], needs: bool| {
        let probe = moto.converge();
        let mut c = gl.gitlab_ci_local();
        for (k, v) in probe.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        pipelines.set(pipelines.get() + 1);
        c.env("GCL_IGNORE_PREDEFINED_VARS", "CI_PIPELINE_SOURCE,CI_API_V4_URL,CI_PROJECT_ID,CI_PIPELINE_ID")
            .args(["--artifacts-to-source", "--variable"])
            .arg(format!("CI_PIPELINE_SOURCE={source}"))
            .arg("--variable")
            .arg(format!("CI_PIPELINE_ID={}", pipelines.get()));
        if needs {
            c.arg("--needs");
        }
        for (k, v) in vars {
            c.arg("--variable").arg(format!("{k}={v}"));
        }
        c.args(jobs);
        harness::Run::from(c.output().unwrap())
    };
    let passed =
        |r: &harness::Run, job: &str| r.stdout.lines().any(|l| l.contains(" PASS ") && l.trim_end().ends_with(job));
    let failed =
        |r: &harness::Run, job: &str| r.stdout.lines().any(|l| l.contains(" FAIL ") && l.trim_end().ends_with(job));
    // What one job printed (gitlab-ci-local starts each of its lines with
    // the job's name).
    let log_of = |r: &harness::Run, job: &str| -> String {
        r.stdout.lines().filter(|l| l.starts_with(&format!("{job} "))).collect::<Vec<_>>().join("\n")
    };

    // A merge request: validate, then plan for each environment, each plan
    // posted on the merge request as a note of its own.
    let api = gitlab.url.clone();
    let project_id = gitlab.project.to_string();
    let iid = gitlab.iid.to_string();
    let mr_vars = [
        ("CONVERGE_GITLAB_TOKEN", gitlab.token),
        ("CI_API_V4_URL", api.as_str()),
        ("CI_PROJECT_ID", project_id.as_str()),
        ("CI_MERGE_REQUEST_IID", iid.as_str()),
    ];
    let r = pipeline("merge_request_event", &mr_vars, &[], false);
    for job in ["validate", "plan staging", "plan production"] {
        assert!(passed(&r, job), "{job}\n{}{}", r.stdout, r.stderr);
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("plan-staging.report.json")).unwrap()).unwrap();
    assert_eq!(report["create"], 16, "{report}");
    assert!(std::fs::read_to_string(project.join("plan-staging.md")).unwrap().contains("webapp-ecs"));
    for env in ["staging", "production"] {
        let notes = gitlab.notes_marked(&format!("<!-- converge plan: webapp-ecs / {env} -->"));
        assert_eq!(notes.len(), 1, "{env}: {notes:?}\n{}", r.stdout);
        assert!(notes[0].body.contains("Plan: 16 to add"), "{}", notes[0].body);
    }
    assert_eq!(gitlab.violations(), Vec::<String>::new());
    // GitLab failing: the plan job passes, and says the note failed.
    gitlab.set_mode(Mode::BadGateway);
    let r = pipeline("merge_request_event", &mr_vars, &["plan staging"], false);
    assert!(passed(&r, "plan staging"), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("only its note on the merge request failed"), "{}", r.stdout);
    // (gitlab-ci-local passes a job's stderr on as its own.)
    assert!(r.stderr.contains("GitLab answered 502 Bad Gateway"), "{}", r.stderr);

    // The default branch: plan staging, then apply that plan with a
    // passing check. The apply job plans nothing: it applies the file.
    let tag = |t: &str| format!("CONVERGE_VAR_image_tag={t}");
    let (a, b) = (tag("a1"), tag("b2"));
    let a_var = a.split_once('=').unwrap();
    let r = pipeline("push", &[a_var, ("CONVERGE_VERIFY", "true")], &["apply staging"], true);
    assert!(passed(&r, "plan staging") && passed(&r, "apply staging"), "{}{}", r.stdout, r.stderr);
    let applied = log_of(&r, "apply staging");
    assert!(applied.contains("Applying the saved plan plan-staging.json"), "{applied}");
    // Its commands: `converge --version`, then `converge apply` of the file.
    let commands: Vec<&str> = applied.lines().filter_map(|l| l.split_once(" $ converge ")).map(|(_, c)| c).collect();
    assert_eq!(commands.len(), 2, "{applied}");
    assert!(commands[1].starts_with("apply \"plan-$PLAN.json\""), "the apply job planned again:\n{applied}");
    assert!(
        r.stdout.contains(&format!("(commit {}) is the last known good of webapp-ecs / staging", &sha[..12])),
        "{}",
        r.stdout
    );

    // A new image whose check fails: the job fails and the service is back
    // on the first image.
    let b_var = b.split_once('=').unwrap();
    let r = pipeline("push", &[b_var, ("CONVERGE_VERIFY", "echo 503 >&2; exit 1")], &["apply staging"], true);
    assert!(failed(&r, "apply staging"), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Rolled back to run "), "{}", r.stdout);
    let ecs = moto.ecs();
    let out = rt()
        .block_on(
            ecs.describe_services().cluster("webapp-ecs-staging-cluster").services("webapp-ecs-staging-service").send(),
        )
        .unwrap();
    let running = out.services()[0].task_definition().unwrap().to_string();
    let td = rt().block_on(ecs.describe_task_definition().task_definition(&running).send()).unwrap();
    assert!(td.task_definition().unwrap().container_definitions()[0].image().unwrap().ends_with(":a1"));

    // AWS changed by hand between the plan and its apply: the apply job
    // refuses the stale plan and changes nothing.
    let r = pipeline("push", &[b_var], &["plan staging"], false);
    assert!(passed(&r, "plan staging"), "{}{}", r.stdout, r.stderr);
    let scanning = |repository: &str, on: bool| {
        rt().block_on(
            moto.ecr()
                .put_image_scanning_configuration()
                .repository_name(repository)
                .image_scanning_configuration(
                    aws_sdk_ecr::types::ImageScanningConfiguration::builder().scan_on_push(on).build(),
                )
                .send(),
        )
        .unwrap();
    };
    scanning("webapp-ecs-staging", false);
    let mark = moto.calls().len();
    let r = pipeline("push", &[b_var], &["apply staging"], false);
    assert!(failed(&r, "apply staging"), "{}{}", r.stdout, r.stderr);
    // converge's error, on the job's stderr.
    assert!(r.stderr.contains("plan-staging.json is stale: AWS changed since it was made"), "{}", r.stderr);
    assert!(r.stderr.contains("run the pipeline again: its plan job makes a new plan"), "{}", r.stderr);
    assert!(moto.mutating_since(mark).is_empty(), "a stale apply changed AWS: {:?}", moto.mutating_since(mark));
    scanning("webapp-ecs-staging", true);

    // The schedule's drift job: production applied too, nothing drifts;
    // then a setting changed by hand fails it.
    moto.run(&["apply", "stacks/webapp-ecs.yaml", "--env", "production", "--auto-approve", "--var", "image_tag=a1"])
        .expect(0);
    // The schedule knows no image tag: drift compares with the variables
    // each environment's last apply was given.
    let r = pipeline("schedule", &[], &["drift"], false);
    assert!(passed(&r, "drift"), "{}{}", r.stdout, r.stderr);
    rt().block_on(
        moto.ecr()
            .put_image_scanning_configuration()
            .repository_name("webapp-ecs-production")
            .image_scanning_configuration(
                aws_sdk_ecr::types::ImageScanningConfiguration::builder().scan_on_push(false).build(),
            )
            .send(),
    )
    .unwrap();
    let r = pipeline("schedule", &[], &["drift"], false);
    assert!(failed(&r, "drift"), "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("scan_on_push"), "{}", r.stdout);

    // `status --drift`: production drifted, staging in sync, each with the
    // commit of its last run.
    let r = moto
        .run(&["status", path_str(&project.join("stacks/webapp-ecs.yaml")), "--drift", "--format", "json"])
        .expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let cells: Vec<(String, String, u64)> = doc["stacks"][0]["envs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let commit = e["last_run"]["commit"].as_str().unwrap_or("-").to_string();
            (e["env"].as_str().unwrap().to_string(), commit, e["drift"]["drift"].as_u64().unwrap())
        })
        .collect();
    let local = git_head_of_repo();
    assert_eq!(cells, [("staging".to_string(), sha.clone(), 0), ("production".to_string(), local, 1)], "{}", r.stdout);
    let text = moto.run(&["status", path_str(&project.join("stacks/webapp-ecs.yaml")), "--drift"]).expect(0).stdout;
    assert!(text.lines().any(|l| l.contains("production") && l.ends_with("1 difference(s)")), "{text}");
    assert!(text.lines().any(|l| l.contains("staging") && l.ends_with("in sync")), "{text}");
}

/// The commit `converge` records for a run made from this checkout.
fn git_head_of_repo() -> String {
    let out = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(repo()).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The local stand-in for `debian:bookworm-slim` that `scripts/setup
/// --test` assembles from Debian's packages (mmdebstrap, minbase): base
/// images cannot be pulled here.
const TEST_BASE_IMAGE: &str = "localhost/converge-test/debian:bookworm-slim";

/// Issue 22 (the image): the Containerfile builds with Debian's podman
/// (its runtime stage from the test base, the binary this test run built
/// taken in through `BINARY=prebuilt`, as converge's pipeline takes the
/// release build). In the image (a container's file system, mounted by
/// podman, entered with chroot: `podman run` cannot set rlimits here),
/// `converge --version` runs, `/bin/sh` exists, the image's user is not
/// root, and that user's `converge plan` against moto on loopback works.
#[test]
fn the_image_builds_and_converge_plans_from_it() {
    let moto = Moto::start();
    let podman = |args: &[&str]| {
        let out = Command::new("podman").args(args).output().expect("podman: run scripts/test, which installs it");
        let r = harness::Run::from(out);
        assert_eq!(r.code, 0, "podman {args:?}\n{}{}", r.stdout, r.stderr);
        r.stdout.trim().to_string()
    };
    podman(&["image", "exists", TEST_BASE_IMAGE]);
    let context = Scratch::new("image-context");
    std::fs::create_dir_all(context.path("dist")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_converge"), context.path("dist/converge")).unwrap();
    let tag = format!("localhost/converge-test/converge:{}", std::process::id());
    let containerfile = repo().join("Containerfile");
    // Removes what the test made, however it ends.
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("podman").args(["rm", "--force", &self.1]).output();
            let _ = Command::new("podman").args(["rmi", "--force", &self.0]).output();
        }
    }
    let name = format!("converge-test-{}", std::process::id());
    let _cleanup = Cleanup(tag.clone(), name.clone());
    podman(&[
        "build",
        "--isolation",
        "chroot",
        "--build-arg",
        &format!("BASE_IMAGE={TEST_BASE_IMAGE}"),
        "--build-arg",
        "BINARY=prebuilt",
        "--file",
        path_str(&containerfile),
        "--tag",
        &tag,
        path_str(&context.0),
    ]);
    let user = podman(&["image", "inspect", "--format", "{{.Config.User}}", &tag]);
    assert_eq!(user, "converge:converge");
    podman(&["create", "--name", &name, &tag]);
    let root = std::path::PathBuf::from(podman(&["mount", &name]));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    let entry = passwd.lines().find(|l| l.starts_with("converge:")).expect("a converge user");
    let uid: u32 = entry.split(':').nth(2).unwrap().parse().unwrap();
    assert_ne!(uid, 0, "the image's user is not root");
    assert!(root.join("bin/sh").exists(), "GitLab Runner needs a shell in the image");
    assert!(root.join("etc/ssl/certs/ca-certificates.crt").exists(), "CA certificates for AWS's endpoints");
    assert!(root.join("usr/bin/curl").exists(), "curl for --verify checks");

    // As the image's user, in its file system.
    let work = root.join("home/converge/work");
    let tree = Scratch::new("image-stacks");
    harness::stack_tree(&tree);
    let copied = Command::new("cp").arg("-r").arg(&tree.0).arg(&work).status().unwrap();
    assert!(copied.success());
    let owned = Command::new("chown").args(["-R", &format!("{uid}:{uid}")]).arg(&work).status().unwrap();
    assert!(owned.success());
    let in_image = |args: &[&str]| {
        let probe = moto.converge();
        let mut c = Command::new("/usr/sbin/chroot");
        c.env_clear();
        for (k, v) in probe.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.env("HOME", "/home/converge")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("CONVERGE_STATE_DIR", "/home/converge/work/.converge")
            .arg(format!("--userspec={uid}:{uid}"))
            .arg(&root)
            .args(["sh", "-c", "cd /home/converge/work && exec \"$@\"", "sh", "converge"])
            .args(args);
        harness::Run::from(c.output().expect("chroot"))
    };
    let r = in_image(&["--version"]).expect(0);
    assert_eq!(r.stdout.trim(), format!("converge {}", env!("CARGO_PKG_VERSION")));
    let r = in_image(&["plan", "stacks/gitlab-ha.yaml", "--env", "staging"]).expect(0);
    assert!(
        r.stdout.contains(&format!("Plan: {STAGING} to add, 0 to change, 0 to replace, 0 to destroy.")),
        "{}",
        r.stdout
    );
    assert!(moto.calls().iter().all(|c| !c.mutating), "plan mutated AWS");
    podman(&["umount", &name]);
}

/// Issue 22 (the CI/CD component): a project includes
/// `templates/gitlab-ci.yml` as a component of its own (gitlab-ci-local
/// reads a component of the project at its commit, as GitLab does) with
/// inputs, and the jobs use them: the stack, the environments' names, the
/// image. Offline: `validate` runs for real.
#[test]
fn the_template_is_a_ci_cd_component_with_inputs() {
    let gl = harness::GitLabProject::new("component");
    // The project's own component, at the commit checked out; the
    // pipeline file itself may be uncommitted (gitlab-ci-local reads it
    // from the work tree).
    let sha = gl.git(&["rev-parse", "HEAD"]);
    gl.dir.write(
        ".gitlab-ci.yml",
        &format!(
            "include:\n  - component: gitlab.example.com/acme/infra/gitlab-ci@{sha}\n    inputs:\n      stack: stacks/webapp-ecs.yaml\n      image: converge:component-test\n      verify: curl -fsS https://app.example.com/health\n"
        ),
    );
    let gcl_run = |args: &[&str]| {
        harness::Run::from(
            gl.gitlab_ci_local()
                .env("NO_COLOR", "1")
                .env("GCL_IGNORE_PREDEFINED_VARS", "CI_PIPELINE_SOURCE")
                .args(["--variable", "CI_PIPELINE_SOURCE=merge_request_event"])
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let preview = gcl_run(&["--preview"]);
    assert_eq!(preview.code, 0, "{}{}", preview.stdout, preview.stderr);
    let config: serde_json::Value =
        serde_yaml_ng::from_str(preview.stdout.split("\n---\n").last().unwrap_or(&preview.stdout))
            .unwrap_or_else(|e| panic!("{e}: {}", preview.stdout));
    let var =
        |k: &str| config["variables"][k]["value"].as_str().or(config["variables"][k].as_str()).map(str::to_string);
    assert_eq!(var("CONVERGE_STACK").as_deref(), Some("stacks/webapp-ecs.yaml"), "{}", preview.stdout);
    assert_eq!(var("CONVERGE_IMAGE").as_deref(), Some("converge:component-test"));
    assert_eq!(var("CONVERGE_VERIFY").as_deref(), Some("curl -fsS https://app.example.com/health"));
    assert_eq!(config["apply production"]["environment"]["name"], "production", "{}", preview.stdout);
    assert_eq!(config["apply production"]["needs"][0]["job"], "plan production");
    assert_eq!(config["apply production"]["resource_group"], "converge-production");
    let r = gcl_run(&["validate"]);
    assert!(
        r.stdout.lines().any(|l| l.contains(" PASS ") && l.trim_end().ends_with("validate")),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("stacks/webapp-ecs.yaml: valid"), "{}", r.stdout);
}

/// Issue 25 (`ignore_changes`): the GitLab stack's app group starts at
/// `app_min` and leaves its desired capacity to the CPU policy. Scaling
/// moves it (here, an independent client): plan shows nothing, drift finds
/// nothing, a saved plan made before the move still applies, and an update
/// of another setting leaves the capacity where scaling put it. Without
/// the line, the same move is planned back (the control). A name the kind
/// does not have is refused offline, placed, with the near one.
#[test]
fn ignored_desired_capacity_is_left_to_scaling() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("ignore");
    let group = "gitlab-ha-staging-gitlab-app";
    apply(&moto, STACK);
    let scale_to = |n: i32| {
        rt().block_on(
            moto.autoscaling().set_desired_capacity().auto_scaling_group_name(group).desired_capacity(n).send(),
        )
        .unwrap();
    };
    let read = || {
        rt().block_on(async {
            let out = moto.autoscaling().describe_auto_scaling_groups().auto_scaling_group_names(group).send().await;
            let g = out.unwrap().auto_scaling_groups()[0].clone();
            (g.desired_capacity().unwrap(), g.health_check_grace_period().unwrap())
        })
    };
    assert_eq!(read(), (1, 300), "created at app_min");

    // Scaled out: nothing to plan, no drift.
    scale_to(2);
    let r = plan(&moto, STACK).expect(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let r = moto.run(&["drift", STACK, "--env", "staging"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // The control: without `ignore_changes`, the same move is planned back.
    let unignored = stack_variant(&dir, "unignored.yaml", &[("    ignore_changes: [desired_capacity]\n", "")]);
    let r = plan(&moto, path_str(&unignored)).expect(2);
    assert!(r.stdout.contains("      ~ desired_capacity = 2 → 1\n"), "{}", r.stdout);

    // A reviewed change to another setting, saved; scaling moves the
    // capacity before the apply: the plan is not stale, and the update
    // leaves the capacity where scaling put it.
    let grace = stack_variant(
        &dir,
        "grace.yaml",
        &[("      health_check_grace_period: 300\n", "      health_check_grace_period: 301\n")],
    );
    let saved = dir.path("grace.plan.json");
    let r = moto.run(&["plan", path_str(&grace), "--env", "staging", "--out", path_str(&saved)]).expect(0);
    assert!(r.stdout.contains("~ gitlab_app (autoscaling.group"), "{}", r.stdout);
    assert!(!r.stdout.contains("desired_capacity"), "{}", r.stdout);
    scale_to(1);
    let r = moto.run(&["apply", path_str(&saved)]).expect(0);
    assert!(r.stdout.contains("Apply complete: 0 created, 1 updated"), "{}", r.stdout);
    assert_eq!(read(), (1, 301));
    scale_to(2);
    let r = moto.run(&["apply", path_str(&grace), "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let back = stack_variant(&dir, "back.yaml", &[]);
    let r = moto.run(&["apply", path_str(&back), "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("1 updated"), "{}", r.stdout);
    assert_eq!(read(), (2, 300), "the update of the grace period kept the scaled capacity");

    // Refused offline: a property the kind does not have.
    let typo = stack_variant(
        &dir,
        "typo.yaml",
        &[("    ignore_changes: [desired_capacity]\n", "    ignore_changes: [desired_capacty]\n")],
    );
    let mark = moto.calls().len();
    let r = moto.run(&["plan", path_str(&typo), "--env", "staging"]).expect(1);
    assert!(
        r.stderr.contains("error: `ignore_changes`: autoscaling.group has no property `desired_capacty`")
            && r.stderr.contains("desired_capacity"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("{}:", typo.display())), "placed: {}", r.stderr);
    assert_eq!(moto.calls().len(), mark, "a bad spec made AWS calls");
}

#[test]
fn outputs_are_kept_read_without_planning_and_read_by_another_stack() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("outputs");
    // The stack, with a sensitive output besides its own.
    let gitlab = stack_variant(
        &dir,
        "gitlab-ha.yaml",
        &[("\noutputs:\n", "\noutputs:\n  db_password:\n    value: ${env.GITLAB_DB_PASSWORD}\n    sensitive: true\n")],
    );
    let gitlab = path_str(&gitlab);
    let r = moto.run(&["apply", gitlab, "--env", "staging", "--auto-approve"]).expect(0);
    let dns = rt().block_on(async {
        let out = moto.elbv2().describe_load_balancers().names("gitlab-ha-staging-alb").send().await.unwrap();
        out.load_balancers()[0].dns_name().unwrap().to_string()
    });
    let vpc = rt().block_on(async {
        let f = aws_sdk_ec2::types::Filter::builder().name("tag:converge:resource").values("vpc").build();
        moto.ec2().describe_vpcs().filters(f).send().await.unwrap().vpcs()[0].vpc_id().unwrap().to_string()
    });
    assert!(r.stdout.contains(&format!("Outputs:\n  alb_dns_name = \"{dns}\"\n")), "{}", r.stdout);
    assert!(r.stdout.contains("  db_password = (sensitive)\n"), "{}", r.stdout);
    assert!(!r.stdout.contains(DB_PASSWORD) && !r.stderr.contains(DB_PASSWORD));
    let record = std::fs::read_to_string(moto.dir.path("state/applied/gitlab-ha/staging.json")).unwrap();
    assert!(record.contains(&dns) && !record.contains(DB_PASSWORD), "{record}");

    // Read back without a plan: not one AWS request.
    let before = moto.calls().len();
    let r = moto.run(&["output", gitlab, "--env", "staging", "alb_dns_name"]).expect(0);
    assert_eq!(r.stdout, format!("{dns}\n"));
    let r = moto.run(&["output", gitlab, "--env", "staging", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["alb_dns_name"]["value"], dns.as_str());
    assert_eq!(doc["vpc_id"]["value"], vpc.as_str());
    assert_eq!(doc["db_password"], serde_json::json!({"sensitive": true}), "{}", r.stdout);
    let r = moto.run(&["output", gitlab, "--env", "staging"]).expect(0);
    assert!(
        r.stdout.contains(&format!("alb_dns_name = \"{dns}\"\n")) && r.stdout.contains("db_password = (sensitive)\n")
    );
    assert!(!r.stdout.contains(DB_PASSWORD));
    let r = moto.run(&["output", gitlab, "--env", "staging", "db_password"]).expect(1);
    assert!(r.stderr.contains("is sensitive: pass --show-sensitive"), "{}", r.stderr);
    let r = moto.run(&["output", gitlab, "--env", "staging", "gitlab_ur"]).expect(1);
    assert!(r.stderr.contains("no output `gitlab_ur` (did you mean `gitlab_url`?)"), "{}", r.stderr);
    assert_eq!(moto.calls().len(), before, "output read the record only: {:?}", &moto.calls()[before..]);
    // Asked for: read again (AWS read, nothing changed).
    let r = moto.run(&["output", gitlab, "--env", "staging", "db_password", "--show-sensitive"]).expect(0);
    assert_eq!(r.stdout, format!("{DB_PASSWORD}\n"));
    assert!(moto.mutating_since(before).is_empty());

    // Another stack of the environment reads them: the plan says where
    // each value came from; the graph orders nothing across stacks.
    let app = |name: &str, output: &str| {
        dir.write(
            name,
            &format!(
                "stack: gitlab-app\nregion: eu-west-1\nenvironments:\n  staging: {{}}\nresources:\n  app_sg:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${{stack.gitlab-ha.outputs.{output}}}\n      description: the app next to GitLab\n"
            ),
        )
    };
    let ok = app("app.yaml", "vpc_id");
    let ok = path_str(&ok);
    moto.run(&["validate", ok, "--env", "staging"]).expect(0);
    let r = moto.run(&["plan", ok, "--env", "staging", "--detailed-exitcode"]).expect(2);
    assert!(
        r.stdout.contains(&format!(
            "Read from other stacks' last applies:\n  stack.gitlab-ha.outputs.vpc_id = \"{vpc}\" (gitlab-ha / staging)\n"
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("vpc_id = \"{vpc}\"")), "{}", r.stdout);
    moto.run(&["apply", ok, "--env", "staging", "--auto-approve"]).expect(0);
    let in_vpc = rt().block_on(async {
        let f = aws_sdk_ec2::types::Filter::builder().name("tag:converge:stack").values("gitlab-app").build();
        let out = moto.ec2().describe_security_groups().filters(f).send().await.unwrap();
        out.security_groups().iter().map(|g| g.vpc_id().unwrap().to_string()).collect::<Vec<_>>()
    });
    assert_eq!(in_vpc, std::slice::from_ref(&vpc));
    plan(&moto, ok).expect(0);

    // What it cannot read is an error where it is written, before any change.
    for (name, output, expect) in [
        ("nope.yaml", "nope", "stack `gitlab-ha`'s last apply in `staging` recorded no output `nope`"),
        ("secret.yaml", "db_password", "output `db_password` is sensitive: it is never kept"),
    ] {
        let bad = app(name, output);
        let mark = moto.calls().len();
        let r = moto.run(&["plan", path_str(&bad), "--env", "staging"]).expect(1);
        assert!(r.stderr.contains(&format!("{}:9:15: error: ", bad.display())), "{}", r.stderr);
        assert!(r.stderr.contains(expect), "{}", r.stderr);
        assert_eq!(moto.calls().len(), mark, "a refused input read AWS");
    }
    let other = dir.write(
        "other.yaml",
        "stack: other\nregion: eu-west-1\nresources:\n  sg:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${stack.never-applied.outputs.vpc_id}\n",
    );
    let r = moto.run(&["plan", path_str(&other)]).expect(1);
    assert!(r.stderr.contains("stack `never-applied` has no apply recorded for environment `default`"), "{}", r.stderr);
}

#[test]
fn a_renamed_database_is_moved_not_replaced() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("renamed");
    apply(&moto, STACK);
    let renamed = |name: &str, hint: &str, keep_name: &str| {
        let s = std::fs::read_to_string(repo().join(STACK)).unwrap();
        assert!(s.contains("\n  db:\n    type: rds.db_instance\n"));
        let s = s
            .replace(
                "\n  db:\n    type: rds.db_instance\n",
                &format!("\n  database:\n    type: rds.db_instance\n{hint}{keep_name}"),
            )
            .replace("${resources.db.", "${resources.database.")
            .replace("depends_on: [gitlab_rb, db,", "depends_on: [gitlab_rb, database,");
        path_str(&dir.write(name, &s)).to_string()
    };
    let keep = "    name: ${stack}-${environment}-db\n";

    // Without the hint, the old key's database is to go: refused, protected.
    let plain = renamed("plain.yaml", "", keep);
    let r = plan(&moto, &plain).expect(2);
    assert!(r.stdout.contains("- db (rds.db_instance"), "{}", r.stdout);
    // Without `name:`, the rename would change the default name: refused
    // offline, with the line to add.
    let unnamed = renamed("unnamed.yaml", "    renamed_from: db\n", "");
    let r = moto.run(&["validate", &unnamed, "--env", "staging"]).expect(1);
    assert!(
        r.stderr.contains("changes its default name from `gitlab-ha-staging-db` to `gitlab-ha-staging-database`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("add `name: ${stack}-${environment}-db`"), "{}", r.stderr);

    // With it: a move, nothing created or deleted.
    let moved = renamed("moved.yaml", "    renamed_from: db\n", keep);
    let r = plan(&moto, &moved).expect(2);
    assert!(r.stdout.contains("~ database (rds.db_instance, gitlab-ha-staging-db) will be moved from `db` (retagged in place, not recreated)"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let r = moto.run(&["plan", &moved, "--env", "staging", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let changed: Vec<&serde_json::Value> =
        doc["resources"].as_array().unwrap().iter().filter(|r| r["action"] != "no_op").collect();
    assert_eq!(changed.len(), 1, "{:?}", changed.iter().map(|r| &r["address"]).collect::<Vec<_>>());
    assert_eq!(changed[0]["moved_from"], "db");
    let mark = moto.calls().len();
    let r = moto.run(&["apply", &moved, "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("Apply complete: 0 created, 1 updated, 0 replaced, 0 destroyed"), "{}", r.stdout);
    let made: Vec<String> = moto
        .mutating_since(mark)
        .into_iter()
        .map(|c| c.operation)
        .filter(|a| a.starts_with("Create") || a.starts_with("Delete") || a.starts_with("Restore"))
        .collect();
    assert!(made.is_empty(), "a move created or deleted: {made:?}");
    let tags = rt().block_on(async {
        let db =
            moto.rds().describe_db_instances().db_instance_identifier("gitlab-ha-staging-db").send().await.unwrap();
        db.db_instances()[0]
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect::<BTreeMap<_, _>>()
    });
    assert_eq!(tags["converge:resource"], "database");
    plan(&moto, &moved).expect(0);
    // Removing the hint afterwards changes nothing.
    plan(&moto, &plain).expect(0);
    let record = std::fs::read_to_string(moto.dir.path("state/applied/gitlab-ha/staging.json")).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert!(record["resources"].get("db").is_none() && record["resources"].get("database").is_some());
}

#[test]
fn a_container_secret_is_registered_by_reference_only() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("secrets");
    let stack = std::fs::read_to_string(repo().join("stacks/webapp-ecs.yaml")).unwrap();
    let with_secret = |policy: &str| {
        let s = stack
            .replacen(
                "  cluster:\n    type: ecs.cluster\n",
                "  api_key:\n    type: secretsmanager.secret\n    properties:\n      generate: { length: 40 }\n\n  cluster:\n    type: ecs.cluster\n",
                1,
            )
            .replacen(
                "          environment:\n            PORT: \"${var.app_port}\"\n",
                "          secrets:\n            API_KEY: ${resources.api_key.arn}\n          environment:\n            PORT: \"${var.app_port}\"\n",
                1,
            )
            .replacen(
                "      managed_policy_arns: [\"arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy\"]\n",
                &format!("      managed_policy_arns: [\"arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy\"]\n{policy}"),
                1,
            );
        assert!(s.contains("API_KEY") && s.contains("api_key:"));
        s
    };
    // The execution role cannot read it: refused offline, at the role.
    let unreadable = dir.write("unreadable.yaml", &with_secret(""));
    let r = moto.run(&["validate", path_str(&unreadable), "--env", "staging"]).expect(1);
    assert!(
        r.stderr.contains("execution role `execution_role` allows no `secretsmanager:GetSecretValue`"),
        "{}",
        r.stderr
    );
    let readable = dir.write(
        "readable.yaml",
        &with_secret(
            "      policies:\n        read-secrets:\n          Version: \"2012-10-17\"\n          Statement:\n            - Effect: Allow\n              Action: secretsmanager:GetSecretValue\n              Resource: ${resources.api_key.arn}\n",
        ),
    );
    let readable = path_str(&readable);
    let r = moto.run(&["apply", readable, "--env", "staging", "--auto-approve", "--var", "image_tag=a1"]).expect(0);
    let (arn, value, registered) = rt().block_on(async {
        let list = moto.secretsmanager().list_secrets().send().await.unwrap();
        let arn = list
            .secret_list()
            .iter()
            .find(|s| s.name().unwrap().contains("api-key"))
            .unwrap()
            .arn()
            .unwrap()
            .to_string();
        let value = moto.secretsmanager().get_secret_value().secret_id(&arn).send().await.unwrap();
        let families = moto.ecs().list_task_definitions().send().await.unwrap();
        let td = moto
            .ecs()
            .describe_task_definition()
            .task_definition(families.task_definition_arns().last().unwrap())
            .send()
            .await
            .unwrap();
        let c = td.task_definition().unwrap().container_definitions()[0].clone();
        let registered: Vec<(String, String)> =
            c.secrets().iter().map(|s| (s.name().to_string(), s.value_from().to_string())).collect();
        assert!(c.environment().iter().all(|kv| kv.name() != Some("API_KEY")));
        (arn, value.secret_string().unwrap().to_string(), registered)
    });
    assert_eq!(registered, [("API_KEY".to_string(), arn.clone())]);
    assert_eq!(value.len(), 40);
    let plan_json =
        moto.run(&["plan", readable, "--env", "staging", "--var", "image_tag=a1", "--format", "json"]).expect(0);
    let mut seen = vec![r.stdout, r.stderr, plan_json.stdout];
    for entry in walk_files(&moto.dir.path("state")) {
        seen.push(std::fs::read_to_string(entry).unwrap_or_default());
    }
    assert!(seen.iter().all(|t| !t.contains(&value)), "the secret's value was printed or kept");
    assert!(seen[2].contains(&arn), "the plan names the secret by its ARN");
    // Read back the same: nothing to change.
    moto.run(&["plan", readable, "--env", "staging", "--var", "image_tag=a1", "--detailed-exitcode"]).expect(0);
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk_files(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn lookups_find_the_newest_ami_and_refuse_none_or_many() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("lookups");
    // The account's GitLab builds, read independently: two of 18.5.1, and
    // a later one of 18.4.3 that must not be picked.
    let builds: BTreeMap<String, String> = rt().block_on(async {
        let f = Filter::builder().name("name").values("gitlab-ee-*").build();
        let out = moto.ec2().describe_images().owners("self").filters(f).send().await.unwrap();
        out.images().iter().map(|i| (i.name().unwrap().to_string(), i.image_id().unwrap().to_string())).collect()
    });
    assert_eq!(builds.len(), 3, "{builds:?}");
    let (newest, older) = (&builds["gitlab-ee-18.5.1-20261115"], &builds["gitlab-ee-18.5.1-20261001"]);
    let mark = moto.calls().len();
    moto.run(&["validate", STACK, "--env", "staging"]).expect(0);
    assert_eq!(moto.calls().len(), mark, "validate looked something up");

    let r = plan(&moto, STACK).expect(2);
    assert!(
        r.stdout.contains(
            "lookups.gitlab_ami (ec2.ami, the newest named `gitlab-ee-18.5.1-*` owned by `self`): creation_date = "
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("id = \"{newest}\", name = \"gitlab-ee-18.5.1-20261115\"")), "{}", r.stdout);
    let image_line =
        |out: &str, id: &str| out.lines().any(|l| l.contains("image_id") && l.contains(&format!("\"{id}\"")));
    assert!(image_line(&r.stdout, newest), "{}", r.stdout);
    // The variable pins one: no lookup made.
    let mark = moto.calls().len();
    let r = moto.run(&["plan", STACK, "--env", "staging", "--var", &format!("gitlab_ami={older}")]).expect(0);
    assert!(r.stdout.contains("will be created"), "nothing applied yet: {}", r.stdout);
    assert!(
        r.stdout.contains(&format!("lookups.gitlab_ami (ec2.ami, its override): id = \"{older}\"")),
        "{}",
        r.stdout
    );
    assert!(image_line(&r.stdout, older), "{}", r.stdout);
    let images = moto.calls()[mark..].iter().filter(|c| c.operation == "DescribeImages").count();
    assert_eq!(images, 1, "only the runner AMI was looked up");
    // A version never built: an error at the lookup, naming its filter.
    let r = moto.run(&["plan", STACK, "--env", "staging", "--var", "gitlab_version=99.0.0"]).expect(1);
    let at = line_in(STACK, "\n  gitlab_ami:\n    type: ec2.ami\n");
    assert!(r.stderr.contains(&format!("{STACK}:{at}:")), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("lookup `gitlab_ami` (ec2.ami): no available AMI owned by `self` is named `gitlab-ee-99.0.0-*`"),
        "{}",
        r.stderr
    );

    // A saved plan keeps what its lookups found: a newer build since makes
    // it stale, and nothing is changed.
    let saved = dir.path("plan.json");
    moto.run(&["plan", STACK, "--env", "staging", "--out", path_str(&saved)]).expect(0);
    rt().block_on(moto.ec2().register_image().name("gitlab-ee-18.5.1-20261204").send()).unwrap();
    let mark = moto.calls().len();
    let r = moto.run(&["apply", path_str(&saved)]).expect(1);
    assert!(r.stderr.contains("is stale: what the stack reads from outside changed"), "{}", r.stderr);
    assert!(r.stderr.contains("lookup `gitlab_ami` now finds"), "{}", r.stderr);
    assert!(moto.mutating_since(mark).is_empty());

    // By tags: one VPC, subnets; two VPCs with the tags are an error.
    let stack = dir.write(
        "shared.yaml",
        "stack: shared-net\nregion: eu-west-1\nlookups:\n  net: {type: ec2.vpc, tags: {team: shared}}\n  subnets: {type: ec2.subnets, tags: {team: shared}}\nresources:\n  sg:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${lookups.net.id}\n      description: shared\n",
    );
    let stack = path_str(&stack);
    let tag = |k: &str, v: &str| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(aws_sdk_ec2::types::ResourceType::Vpc)
            .tags(aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
            .build()
    };
    let (a, b) = rt().block_on(async {
        let mk = |cidr: &'static str| {
            moto.ec2().create_vpc().cidr_block(cidr).tag_specifications(tag("team", "shared")).send()
        };
        (
            mk("10.50.0.0/16").await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string(),
            mk("10.51.0.0/16").await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string(),
        )
    });
    let r = moto.run(&["plan", stack]).expect(1);
    assert!(r.stderr.contains("lookup `net` (ec2.vpc): 2 VPCs have the tags team=shared"), "{}", r.stderr);
    assert!(r.stderr.contains(&a) && r.stderr.contains(&b), "{}", r.stderr);
    assert!(r.stderr.contains("lookup `subnets` (ec2.subnets): no subnet has the tags team=shared"), "{}", r.stderr);
    let subnet = rt().block_on(async {
        moto.ec2()
            .create_tags()
            .resources(&b)
            .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("other").build())
            .send()
            .await
            .unwrap();
        let s = moto.ec2().create_subnet().vpc_id(&a).cidr_block("10.50.1.0/24").send().await.unwrap();
        let id = s.subnet().unwrap().subnet_id().unwrap().to_string();
        moto.ec2()
            .create_tags()
            .resources(&id)
            .tags(aws_sdk_ec2::types::Tag::builder().key("team").value("shared").build())
            .send()
            .await
            .unwrap();
        id
    });
    let r = moto.run(&["plan", stack, "--detailed-exitcode"]).expect(2);
    assert!(
        r.stdout
            .contains(&format!("lookups.net (ec2.vpc, tags team=shared): cidr_block = \"10.50.0.0/16\", id = \"{a}\"")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().any(|l| l.contains("vpc_id") && l.contains(&a)) && r.stdout.contains(&subnet),
        "{}",
        r.stdout
    );
}

/// The line (1-based) where `text` starts in the file at `path`, plus one:
/// the line after its first newline.
fn line_in(path: &str, text: &str) -> usize {
    let s = std::fs::read_to_string(repo().join(path)).unwrap();
    let at = s.find(text).unwrap_or_else(|| panic!("{text:?} not in {path}"));
    s[..at].lines().count() + 1
}

/// Issue 25, item 5: the app's log group is the stack's (retention kept,
/// the task definition's awslogs driver pointed at it), and `run_before`
/// runs a one-off task on the new task definition before the service
/// switches: a migration that exits 1 stops the deploy with the task's stop
/// reason, the service stays on its revision, and the next deploy, once
/// the migration passes, switches it.
#[test]
fn a_failed_migration_leaves_the_service_on_its_revision_and_logs_go_to_the_stacks_group() {
    let moto = Moto::start();
    let dir = Scratch::beside_stacks("migrate");
    let stack = std::fs::read_to_string(repo().join("stacks/webapp-ecs.yaml")).unwrap();
    assert!(stack.ends_with("      maximum_percent: 200\n"));
    let stack = format!("{stack}      run_before:\n        command: [bin/migrate, up]\n");
    let stack = dir.write("webapp.yaml", &stack);
    let stack = path_str(&stack);
    let (cluster, service, family, group) = (
        "webapp-ecs-staging-cluster",
        "webapp-ecs-staging-service",
        "webapp-ecs-staging-task",
        "/ecs/webapp-ecs-staging",
    );
    let deploy = |tag: &str| {
        moto.run(&["apply", stack, "--env", "staging", "--auto-approve", "--var", &format!("image_tag={tag}")])
    };
    let ecs = moto.ecs();
    let logs = moto.logs();
    let running = || {
        let out = rt().block_on(ecs.describe_services().cluster(cluster).services(service).send()).unwrap();
        out.services()[0].task_definition().unwrap().rsplit(':').next().unwrap().to_string()
    };
    let position = |calls: &[harness::Call], op: &str| calls.iter().position(|c| c.operation == op);

    deploy("v1").expect(0);
    let calls = moto.calls();
    let (run, create) = (position(&calls, "RunTask"), position(&calls, "CreateService"));
    assert!(run.is_some() && run < create, "the migration ran before the service was created");
    assert_eq!(calls.iter().filter(|c| c.operation == "RunTask").count(), 1);
    let (retention, tags, log_config, overrides) = rt().block_on(async {
        let groups = logs.describe_log_groups().log_group_name_prefix(group).send().await.unwrap();
        let g = groups.log_groups()[0].clone();
        assert_eq!(g.log_group_name(), Some(group));
        let tags = logs.list_tags_for_resource().resource_arn(g.log_group_arn().unwrap()).send().await.unwrap();
        let td = ecs.describe_task_definition().task_definition(format!("{family}:1")).send().await.unwrap();
        let c = td.task_definition().unwrap().container_definitions()[0].clone();
        let tasks = ecs
            .list_tasks()
            .cluster(cluster)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .send()
            .await
            .unwrap();
        let described =
            ecs.describe_tasks().cluster(cluster).set_tasks(Some(tasks.task_arns().to_vec())).send().await.unwrap();
        let overrides: Vec<(String, Vec<String>)> = described.tasks()[0]
            .overrides()
            .unwrap()
            .container_overrides()
            .iter()
            .map(|o| (o.name().unwrap_or_default().to_string(), o.command().to_vec()))
            .collect();
        (
            g.retention_in_days(),
            tags.tags().cloned().unwrap_or_default(),
            c.log_configuration().cloned().unwrap(),
            overrides,
        )
    });
    assert_eq!(retention, Some(30));
    assert_eq!(tags.get("converge:stack").map(String::as_str), Some("webapp-ecs"));
    assert_eq!(log_config.log_driver().as_str(), "awslogs");
    assert_eq!(log_config.options().unwrap().get("awslogs-group").map(String::as_str), Some(group));
    assert_eq!(overrides, [("app".to_string(), vec!["bin/migrate".to_string(), "up".to_string()])]);
    assert_eq!(running(), "1");

    // The migration of v2 fails: nothing switches.
    moto.set_task_exit(family, Some(1), "rake aborted! PG::UndefinedTable");
    let mark = moto.calls().len();
    let r = deploy("v2").expect(1);
    let all = format!("{}{}", r.stdout, r.stderr);
    for part in [
        "run_before `bin/migrate up` failed",
        "container app stopped with exit code 1",
        "Essential container in task exited (EssentialContainerExited)",
        "rake aborted! PG::UndefinedTable",
        "the service still runs",
        "nothing was switched",
    ] {
        assert!(all.contains(part), "{part}: {all}");
    }
    assert_eq!(running(), "1", "the service stays on its revision");
    let since = &moto.calls()[mark..];
    assert!(since.iter().all(|c| c.operation != "UpdateService"), "{since:?}");

    // Fixed: the next deploy migrates, then switches.
    moto.set_task_exit(family, None, "");
    let mark = moto.calls().len();
    deploy("v2").expect(0);
    let since = &moto.calls()[mark..];
    let (run, update) = (position(since, "RunTask"), position(since, "UpdateService"));
    assert!(run.is_some() && run < update, "{since:?}");
    assert_eq!(running(), "2");
    // run_before is not AWS's: it plans no change of its own.
    moto.run(&["plan", stack, "--env", "staging", "--var", "image_tag=v2", "--detailed-exitcode"]).expect(0);

    // Retention changed by hand is planned back and restored in place.
    rt().block_on(logs.put_retention_policy().log_group_name(group).retention_in_days(7).send()).unwrap();
    let r = moto.run(&["plan", stack, "--env", "staging", "--var", "image_tag=v2", "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("retention_in_days") && r.stdout.contains("retention_in_days = 7 → 30"), "{}", r.stdout);
    deploy("v2").expect(0);
    let after = rt().block_on(logs.describe_log_groups().log_group_name_prefix(group).send()).unwrap();
    assert_eq!(after.log_groups()[0].retention_in_days(), Some(30));
}

/// Issue 25, item 2: an SSM parameter (AWS's public AMI parameters), an
/// ACM certificate by domain and a Route 53 zone, looked up before the
/// plan and shown in it (text and JSON); none, or several certificates, is
/// an error naming the filter; a SecureString is refused and never read.
#[test]
fn lookups_read_ssm_parameters_acm_certificates_and_route53_zones() {
    let moto = Moto::start();
    let dir = Scratch::new("lookups2");
    let param = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
    let stack = dir.write(
        "edge.yaml",
        &format!(
            "stack: edge\nregion: eu-west-1\nvariables:\n  ami: \"\"\n  parameter: {param}\nlookups:\n  image:\n    type: ssm.parameter\n    name: ${{var.parameter}}\n    override: ${{var.ami}}\n  cert:\n    type: acm.certificate\n    domain: app.example.internal\n    most_recent: false\n  zone:\n    type: route53.zone\n    name: example.internal\n    private: true\nresources:\n  settings:\n    type: secretsmanager.secret\n    properties:\n      description: image ${{lookups.image.value}} zone ${{lookups.zone.id}}\noutputs:\n  certificate:\n    value: ${{lookups.cert.arn}}\n"
        ),
    );
    let stack = path_str(&stack);
    let r = moto.run(&["plan", stack]).expect(1);
    assert!(
        r.stderr.contains(
            "lookup `cert` (acm.certificate): no ISSUED ACM certificate has the domain name `app.example.internal`"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("lookup `zone` (route53.zone): no private hosted zone is named `example.internal.`"),
        "{}",
        r.stderr
    );

    // A certificate imported for the domain; a private zone, and a public
    // one of the same name that must not be taken.
    let import = |n: &str| {
        let key = dir.path(&format!("{n}.key"));
        let cert = dir.path(&format!("{n}.pem"));
        let ok = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=app.example.internal"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
        let blob = |p: &std::path::PathBuf| aws_sdk_acm::primitives::Blob::new(std::fs::read(p).unwrap());
        let out = rt()
            .block_on(moto.acm().import_certificate().certificate(blob(&cert)).private_key(blob(&key)).send())
            .unwrap();
        out.certificate_arn().unwrap().to_string()
    };
    let first = import("first");
    let (private_zone, expected_image) = rt().block_on(async {
        let vpc = moto.ec2().create_vpc().cidr_block("10.60.0.0/16").send().await.unwrap();
        let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let zone = |private: bool, reference: &'static str| {
            let mut call = moto.route53().create_hosted_zone().name("example.internal").caller_reference(reference);
            if private {
                call = call
                    .hosted_zone_config(aws_sdk_route53::types::HostedZoneConfig::builder().private_zone(true).build())
                    .vpc(
                        aws_sdk_route53::types::Vpc::builder()
                            .vpc_region(aws_sdk_route53::types::VpcRegion::EuWest1)
                            .vpc_id(&vpc_id)
                            .build(),
                    );
            }
            call.send()
        };
        zone(false, "public").await.unwrap();
        let private = zone(true, "private").await.unwrap();
        let id = private.hosted_zone().unwrap().id().trim_start_matches("/hostedzone/").to_string();
        let image = moto.ssm().get_parameter().name(param).send().await.unwrap();
        (id, image.parameter().unwrap().value().unwrap().to_string())
    });
    assert!(expected_image.starts_with("ami-"), "{expected_image}");
    let r = moto.run(&["plan", stack, "--detailed-exitcode"]).expect(2);
    for line in [
        format!("lookups.image (ssm.parameter, parameter `{param}`): value = \"{expected_image}\""),
        format!("lookups.cert (acm.certificate, the issued certificate for `app.example.internal`): arn = \"{first}\""),
        format!("lookups.zone (route53.zone, the private zone `example.internal`): id = \"{private_zone}\""),
        format!("image {expected_image} zone {private_zone}"),
    ] {
        assert!(r.stdout.contains(&line), "{line}\n{}", r.stdout);
    }
    let json = moto.run(&["plan", stack, "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let read: Vec<(&str, &serde_json::Value)> =
        doc["read"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap(), &r["values"])).collect();
    assert_eq!(read.iter().map(|r| r.0).collect::<Vec<_>>(), ["lookups.cert", "lookups.image", "lookups.zone"]);
    assert_eq!(read[0].1["arn"], serde_json::json!(first));
    moto.run(&["apply", stack, "--auto-approve"]).expect(0);
    let out = moto.run(&["output", stack, "certificate"]).expect(0);
    assert_eq!(out.stdout.trim(), first);

    // Two certificates for the domain: an error, unless the latest is asked for.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = import("second");
    let r = moto.run(&["plan", stack]).expect(1);
    assert!(
        r.stderr.contains("2 ISSUED ACM certificates have the domain name `app.example.internal`")
            && r.stderr.contains("set `most_recent: true`"),
        "{}",
        r.stderr
    );
    let latest = std::fs::read_to_string(stack).unwrap().replace("most_recent: false", "most_recent: true");
    let latest = dir.write("edge-latest.yaml", &latest);
    let latest = path_str(&latest);
    let r = moto.run(&["plan", latest]).expect(0);
    assert!(r.stdout.contains(&format!("arn = \"{second}\"")), "{}", r.stdout);

    // A SecureString: refused, its value never read nor shown.
    rt().block_on(
        moto.ssm()
            .put_parameter()
            .name("/edge/token")
            .value("s3cr3t-t0ken-value")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send(),
    )
    .unwrap();
    let r = moto.run(&["plan", latest, "--var", "parameter=/edge/token"]).expect(1);
    assert!(r.stderr.contains("`/edge/token` is a SecureString"), "{}", r.stderr);
    assert!(!format!("{}{}", r.stdout, r.stderr).contains("s3cr3t"), "{}", r.stderr);
    // An override is used as the parameter's value, and no call is made for it.
    let mark = moto.calls().len();
    let r = moto.run(&["plan", latest, "--var", "ami=ami-0123456789abcdef0"]).expect(0);
    assert!(
        r.stdout.contains("lookups.image (ssm.parameter, its override): value = \"ami-0123456789abcdef0\""),
        "{}",
        r.stdout
    );
    assert!(moto.calls()[mark..].iter().all(|c| c.operation != "GetParameter"));
}

/// Issue 25, item 5: a log group's retention and KMS key, set by the
/// create call, changed in place (PutRetentionPolicy / DeleteRetentionPolicy,
/// AssociateKmsKey / DisassociateKmsKey), read back independently; a
/// retention CloudWatch Logs does not offer is refused offline.
#[test]
fn a_log_group_keeps_its_retention_and_key() {
    let moto = Moto::start();
    let dir = Scratch::new("loggroup");
    let key = "arn:aws:kms:eu-west-1:123456789012:key/0b1e3c4d-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    let write = |name: &str, props: &str| {
        let text = format!(
            "stack: logs\nregion: eu-west-1\nresources:\n  app_logs:\n    type: logs.log_group\n    name: /app/web\n    properties:\n{props}"
        );
        dir.write(name, &text)
    };
    let bad = write("bad.yaml", "      retention_in_days: 15\n");
    let mark = moto.calls().len();
    let r = moto.run(&["plan", path_str(&bad)]).expect(1);
    assert!(r.stderr.contains("15 is not a retention CloudWatch Logs offers"), "{}", r.stderr);
    assert_eq!(moto.calls().len(), mark, "a bad spec made AWS calls");

    let first = write("first.yaml", &format!("      retention_in_days: 14\n      kms_key_id: {key}\n"));
    let first = path_str(&first);
    let mark = moto.calls().len();
    moto.run(&["apply", first, "--auto-approve"]).expect(0);
    let calls = moto.calls()[mark..].to_vec();
    assert!(calls.iter().all(|c| c.operation != "TagResource"), "tags set by the create call: {calls:?}");
    let read = || {
        rt().block_on(async {
            let out = moto.logs().describe_log_groups().log_group_name_prefix("/app/web").send().await.unwrap();
            let g = out.log_groups()[0].clone();
            let tags =
                moto.logs().list_tags_for_resource().resource_arn(g.log_group_arn().unwrap()).send().await.unwrap();
            (g.retention_in_days(), g.kms_key_id().map(str::to_string), tags.tags().cloned().unwrap_or_default())
        })
    };
    let (days, kms, tags) = read();
    assert_eq!((days, kms.as_deref()), (Some(14), Some(key)));
    assert_eq!(tags.get("converge:resource").map(String::as_str), Some("app_logs"));
    moto.run(&["plan", first, "--detailed-exitcode"]).expect(0);

    // No retention, no key: both taken off in place, nothing replaced.
    let second = write("second.yaml", "      {}\n");
    let second = path_str(&second);
    let r = moto.run(&["plan", second, "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let mark = moto.calls().len();
    moto.run(&["apply", second, "--auto-approve"]).expect(0);
    let ops: Vec<String> = moto.calls()[mark..].iter().map(|c| c.operation.clone()).collect();
    for op in ["DeleteRetentionPolicy", "DisassociateKmsKey"] {
        assert!(ops.iter().any(|o| o == op), "{op}: {ops:?}");
    }
    assert_eq!(read().0, None);
    assert_eq!(read().1, None);
    moto.run(&["plan", second, "--detailed-exitcode"]).expect(0);
}

/// The README's example stack is real: it validates, and its plan against
/// the emulator is the one the README prints, line for line.
#[test]
fn the_readme_example_plans_as_the_readme_shows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = |opening: &str| {
        let start = readme.find(opening).unwrap_or_else(|| panic!("README has no {opening:?} block"));
        let body = &readme[start + opening.len()..];
        body[..body.find("```").unwrap()].to_string()
    };
    let spec = block("```yaml\nstack: docs-site\n");
    let shown = block("```text\n$ converge plan stacks/docs-site.yaml --env staging\n");
    let moto = Moto::start();
    let dir = Scratch::new("readme");
    let stack = dir.write("docs-site.yaml", &format!("stack: docs-site\n{spec}"));
    let stack = path_str(&stack);
    moto.run(&["validate", stack, "--env", "production"]).expect(0);
    let r = moto.run(&["plan", stack, "--env", "staging", "--no-color"]).expect(0);
    assert_eq!(r.stdout.trim_end(), shown.trim_end(), "the README's plan differs from converge's");
}
