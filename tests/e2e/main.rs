//! End to end against moto: the real binary, real HTTP, independent checks.

#[path = "../harness/mod.rs"]
mod harness;

mod cd;
mod engine;
mod gitlab_stack;
mod hostile;
mod ownership;
mod review;
mod spec;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use aws_sdk_ec2::types::Filter;
use harness::{Moto, Scratch, path_str, repo, rt, stack_variant, wait_for_lines};

const STACK: &str = "stacks/gitlab-ha.yaml";

/// Resources of the staging stack.
const STAGING: usize = 88;

/// Of production: a second NAT gateway and its address.
const PRODUCTION: usize = STAGING + 2;

/// Of those, what AWS cannot tag: the two mount targets, the scaling
/// policy and the backup selection.
const UNTAGGED: usize = 4;

/// A database password the tests pass through the environment.
const DB_PASSWORD: &str = harness::DB_PASSWORD;

const BUCKETS: [&str; 6] = [
    "acme-gitlab-staging-config",
    "acme-gitlab-staging-registry",
    "acme-gitlab-staging-objects",
    "acme-gitlab-staging-runner-cache",
    "acme-gitlab-staging-backups",
    "acme-gitlab-staging-gitaly-backups",
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
        let backup = moto.backup();
        for v in backup.list_backup_vaults().send().await.unwrap().backup_vault_list() {
            let tags = backup.list_tags().resource_arn(v.backup_vault_arn().unwrap()).send().await.unwrap();
            add("backup_vault", tags.tags.unwrap_or_default().into_iter().collect());
        }
        for p in backup.list_backup_plans().send().await.unwrap().backup_plans_list() {
            let tags = backup.list_tags().resource_arn(p.backup_plan_arn().unwrap()).send().await.unwrap();
            add("backup_plan", tags.tags.unwrap_or_default().into_iter().collect());
        }
        let sns = moto.sns();
        for t in sns.list_topics().send().await.unwrap().topics() {
            let tags = sns.list_tags_for_resource().resource_arn(t.topic_arn().unwrap()).send().await.unwrap();
            add("topic", tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect());
        }
        let cw = moto.cloudwatch();
        for a in cw.describe_alarms().send().await.unwrap().metric_alarms() {
            let tags = cw.list_tags_for_resource().resource_arn(a.alarm_arn().unwrap()).send().await.unwrap();
            add(
                "alarm",
                tags.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect(),
            );
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

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk_files(&p)) } else { out.push(p) }
    }
    out
}
