//! End to end against moto: the real binary, real HTTP, independent checks.

mod harness;

use std::collections::BTreeMap;
use std::process::Stdio;

use aws_sdk_ec2::types::Filter;
use harness::{Moto, Scratch, path_str, rt, stack_variant, wait_for_lines};

const STACK: &str = "stacks/gitlab-ha.yaml";
const RESOURCES: [&str; 13] = [
    "vpc",
    "private_a",
    "private_b",
    "lb_sg",
    "app_sg",
    "db_sg",
    "redis_sg",
    "efs_sg",
    "runners_sg",
    "config_bucket",
    "registry_bucket",
    "objects_bucket",
    "runner_cache_bucket",
];
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
            assert_eq!(tags.get("converge:stack").map(String::as_str), Some("gitlab-ha"));
            assert_eq!(tags.get("converge:env").map(String::as_str), Some(env));
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
        for b in s3.list_buckets().send().await.unwrap().buckets() {
            let name = b.name().unwrap();
            let tags = s3.get_bucket_tagging().bucket(name).send().await.map(|t| t.tag_set).unwrap_or_default();
            let tags: Tags = tags.into_iter().map(|t| (t.key, t.value)).collect();
            if tags.get("converge:env").map(String::as_str) == Some(env) {
                add("bucket", tags);
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
    let dir = Scratch::new("e2e");

    // 1. Empty account: every resource is a create.
    let r = plan(&moto, STACK).expect(2);
    for name in RESOURCES {
        assert!(r.stdout.contains(&format!("  + {name} (")), "{name} not planned for creation:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("Plan: 13 to add, 0 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    assert!(moto.calls().iter().all(|c| !c.mutating), "plan mutated AWS");

    // 2. Apply creates them, each carrying the three identity tags.
    let r = apply(&moto, STACK);
    assert!(r.stdout.contains("Apply complete: 13 created, 0 updated, 0 replaced, 0 destroyed."), "{}", r.stdout);
    let found = tagged(&moto, "staging");
    assert_eq!(found.len(), 13, "{found:?}");
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
    assert_eq!(muts, ["AuthorizeSecurityGroupIngress"]);
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
            .ip_permissions(
                aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(5432)
                    .to_port(5432)
                    .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("10.30.0.0/24").build())
                    .build(),
            )
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
    insta::with_settings!({filters => vec![(r"sg-[0-9a-f]+", "sg-[ID]")]}, {
        insta::assert_snapshot!("drift_plan", r.stdout);
    });
    apply(&moto, path_str(&more));
    plan(&moto, path_str(&more)).expect(0);

    // 4c. A replace-forcing change: -/+ with the attribute named.
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
    assert!(r.stdout.contains("Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy."), "{}", r.stdout);
    let r = apply(&moto, path_str(&moved));
    assert!(r.stdout.contains("1 replaced"), "{}", r.stdout);
    plan(&moto, path_str(&moved)).expect(0);
    let cidrs: Vec<String> = rt().block_on(async {
        let s = ec2
            .describe_subnets()
            .filters(Filter::builder().name("tag:converge:resource").values("private_b").build())
            .send()
            .await
            .unwrap();
        s.subnets().iter().filter_map(|s| s.cidr_block.clone()).collect()
    });
    assert_eq!(cidrs, ["10.30.3.0/24"]);

    // 4d. A resource removed from the spec is planned for deletion.
    let text = std::fs::read_to_string(&moved).unwrap();
    let start = text.find("  # Runner manager").unwrap();
    let end = text.find("  config_bucket:").unwrap();
    let removed = dir.write("removed.yaml", &format!("{}{}", &text[..start], &text[end..]));
    let r = plan(&moto, path_str(&removed)).expect(2);
    assert!(r.stdout.contains("  - runners_sg (ec2.security_group, sg-"), "{}", r.stdout);
    assert!(r.stdout.contains("will be destroyed (no longer in the spec)"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to add, 0 to change, 0 to replace, 1 to destroy."), "{}", r.stdout);
    apply(&moto, path_str(&removed));
    assert_eq!(tagged(&moto, "staging").len(), 12);

    // 5. Destroy leaves nothing tagged for the stack/env.
    let r = moto.run(&["destroy", path_str(&removed), "--env", "staging", "--auto-approve"]).expect(0);
    assert!(r.stdout.contains("Destroy complete: 0 created, 0 updated, 0 replaced, 12 destroyed."), "{}", r.stdout);
    assert!(tagged(&moto, "staging").is_empty());
    let left = rt().block_on(async { moto.s3().list_buckets().send().await.unwrap().buckets().len() });
    assert_eq!(left, 0);
}

#[test]
fn environments_are_isolated_by_tags() {
    let moto = Moto::start();
    apply(&moto, STACK);
    // Production sees none of staging's objects as its own.
    let r = moto.run(&["plan", STACK, "--env", "production", "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 13 to add, 0 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    assert_eq!(tagged(&moto, "production").len(), 0);

    // JSON for tools: the same plan, machine-readable.
    let r = moto.run(&["plan", STACK, "--env", "production", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    assert_eq!(doc["summary"], serde_json::json!({"add": 13, "change": 0, "replace": 0, "destroy": 0}));
    let private_a = doc["resources"].as_array().unwrap().iter().find(|r| r["name"] == "private_a").unwrap();
    assert_eq!(private_a["action"], "create");
    let vpc_id = private_a["changes"].as_array().unwrap().iter().find(|c| c["attr"] == "vpc_id").unwrap();
    assert_eq!(vpc_id["new"], "(known after apply)");

    // --target: that resource and what it depends on.
    let r = moto.run(&["plan", STACK, "--env", "production", "--target", "private_a", "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let r = moto.run(&["plan", STACK, "--env", "production", "--target", "privte_a"]).expect(1);
    assert!(r.stderr.contains("did you mean `private_a`?"), "{}", r.stderr);
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
    // Slow mutating calls so the kill lands mid-apply.
    let moto = Moto::start_with(&["--delay-mutations-ms", "150"]);
    let mut child = moto
        .converge()
        .args(["apply", STACK, "--env", "staging", "--auto-approve", "--parallelism", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = wait_for_lines(&mut child, 3, |l| l.contains(": created "));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = tagged(&moto, "staging");
    assert!(partial.len() >= 3 && partial.len() < 13, "kill did not land mid-apply: {partial:?}\n{seen:?}");

    let r = apply(&moto, STACK);
    assert!(r.stdout.contains("Apply complete"), "{}", r.stdout);
    let all = tagged(&moto, "staging");
    assert_eq!(all.len(), 13, "{all:?}");
    assert!(all.values().all(|n| *n == 1), "duplicates after rerun: {all:?}");
    plan(&moto, STACK).expect(0);
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
