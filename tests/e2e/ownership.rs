//! Ownership: environments isolated by tags, protected data, locks, other stacks' and environments' objects, import.

use super::*;

#[test]
fn environments_are_isolated_by_tags() {
    let moto = Moto::start();
    apply(&moto, STACK);
    // Production sees none of staging's objects as its own.
    let r = moto.run(&["plan", STACK, "--env", "production", "--detailed-exitcode"]).expect(2);
    assert!(
        r.stdout.contains(&format!("Plan: {PRODUCTION} to add, 0 to change, 0 to replace, 0 to destroy.")),
        "{}",
        r.stdout
    );
    assert_eq!(tagged(&moto, "production").len(), 0);

    // JSON for tools: the same plan, machine-readable.
    let r = moto.run(&["plan", STACK, "--env", "production", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    assert_eq!(doc["summary"], serde_json::json!({"add": PRODUCTION, "change": 0, "replace": 0, "destroy": 0}));
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
    assert_eq!(found.len(), PRODUCTION - UNTAGGED, "a NAT gateway and an address per AZ: {found:?}");
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
    // (Its `verify:` goes too: it names alarms of the stack.)
    let empty = dir.write("empty.yaml", &format!("{}\nresources: {{}}\n", &text[..text.find("\nverify:\n").unwrap()]));
    let mark = moto.calls().len();
    let everything = ["db", "redis", "efs", "gitaly_data", "config_bucket", "objects_bucket"];
    refused(prod(path_str(&empty), &[]), &everything, mark);
    refused(prod(path_str(&empty), &["--allow-destroy", "*"]), &everything, mark);
    let r = moto.run(&["destroy", STACK, "--env", "production", "--auto-approve", "--allow-destroy", "*"]);
    refused(r, &everything, mark);
    assert_eq!(tagged(&moto, "production").len(), PRODUCTION - UNTAGGED, "all still there");

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

/// Four named kinds, each met by an object that appears between the plan's
/// read and the create (see `a_create_never_takes_an_object_made_after_its_plan`).
const RACE: &str = r#"stack: race
region: eu-west-1
resources:
  template:
    type: ec2.launch_template
    name: race-template
    properties:
      image_id: ami-12c6146b
      instance_type: t3.micro
  role:
    type: iam.role
    name: race-role
    properties:
      assume_role_policy:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]
  bucket:
    type: s3.bucket
    name: race-bucket-of-another
  logs:
    type: logs.log_group
    name: race-logs
"#;

#[test]
fn a_create_never_takes_an_object_made_after_its_plan() {
    // converge's mutating requests (access key `slow`) wait 1.5 s at the
    // server; while its creates wait, the test's own requests make objects
    // with their names, tagged for another stack: the race a plan cannot
    // see (a hand, another run), or a response lost after the fact.
    let moto = Moto::start_with(&["--delay-mutations-ms", "1500", "--delay-key", "slow"]);
    let dir = Scratch::new("race");
    let spec = dir.write("race.yaml", RACE);
    let child = moto
        .converge()
        .env("AWS_ACCESS_KEY_ID", "slow")
        .args(["apply", path_str(&spec), "--auto-approve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("converge");
    // (The log names an S3 request by its method and path.)
    let creates = ["CreateLaunchTemplate", "CreateRole", "PUT /race-bucket-of-another/?", "CreateLogGroup"];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !creates.iter().all(|op| moto.calls().iter().any(|c| c.operation == *op)) {
        assert!(std::time::Instant::now() < deadline, "converge never sent its creates: {:?}", moto.calls());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let theirs = |resource: &str| -> Tags {
        [("converge:stack", "other"), ("converge:env", "default"), ("converge:resource", resource), ("team", "b")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    rt().block_on(async {
        use aws_sdk_ec2::types::{RequestLaunchTemplateData, ResourceType, Tag, TagSpecification};
        let tags = theirs("template").into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build());
        let spec =
            TagSpecification::builder().resource_type(ResourceType::LaunchTemplate).set_tags(Some(tags.collect()));
        let data = RequestLaunchTemplateData::builder().image_id("ami-12c6146b").instance_type("t3.large".into());
        let lt = moto.ec2().create_launch_template().launch_template_name("race-template");
        lt.launch_template_data(data.build()).tag_specifications(spec.build()).send().await.unwrap();

        let tags = theirs("role").into_iter().map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build());
        let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let role = moto.iam().create_role().role_name("race-role").assume_role_policy_document(trust);
        role.set_tags(Some(tags.map(Result::unwrap).collect())).send().await.unwrap();

        let here = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
            .build();
        moto.s3()
            .create_bucket()
            .bucket("race-bucket-of-another")
            .create_bucket_configuration(here)
            .send()
            .await
            .unwrap();
        let set = theirs("bucket").into_iter().map(|(k, v)| aws_sdk_s3::types::Tag::builder().key(k).value(v).build());
        let tagging = aws_sdk_s3::types::Tagging::builder().set_tag_set(Some(set.map(Result::unwrap).collect()));
        moto.s3()
            .put_bucket_tagging()
            .bucket("race-bucket-of-another")
            .tagging(tagging.build().unwrap())
            .send()
            .await
            .unwrap();

        moto.logs()
            .create_log_group()
            .log_group_name("race-logs")
            .set_tags(Some(theirs("logs").into_iter().collect()))
            .send()
            .await
            .unwrap();
    });
    let r = harness::Run::from(child.wait_with_output().expect("converge"));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    for (resource, name) in [
        ("template", "race-template"),
        ("role", "race-role"),
        ("bucket", "race-bucket-of-another"),
        ("logs", "race-logs"),
    ] {
        let said = format!(
            "`{name}` exists and belongs to stack other, environment default (its resource `{resource}`); converge never touches another stack's or environment's objects"
        );
        assert!(r.stdout.contains(&said) || r.stderr.contains(&said), "{resource}: {}{}", r.stdout, r.stderr);
    }

    // Theirs as they made them: no version added, no tag or setting changed.
    rt().block_on(async {
        let lt = moto.ec2().describe_launch_templates().launch_template_names("race-template").send().await.unwrap();
        let lt = &lt.launch_templates()[0];
        assert_eq!(lt.latest_version_number(), Some(1));
        assert_eq!(ec2_tags(lt.tags()), theirs("template"));
        let role = moto.iam().get_role().role_name("race-role").send().await.unwrap();
        let role = role.role().unwrap();
        let tags: Tags = role.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        assert_eq!(tags, theirs("role"));
        let trust = role.assume_role_policy_document().unwrap_or_default();
        assert!(!trust.contains("ec2.amazonaws.com"), "their trust policy, not ours: {trust}");
        let t = moto.s3().get_bucket_tagging().bucket("race-bucket-of-another").send().await.unwrap();
        let tags: Tags = t.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        assert_eq!(tags, theirs("bucket"));
        let versioning = moto.s3().get_bucket_versioning().bucket("race-bucket-of-another").send().await.unwrap();
        assert_eq!(versioning.status(), None, "versioning left as they made it");
        let arn = "arn:aws:logs:eu-west-1:123456789012:log-group:race-logs";
        let t = moto.logs().list_tags_for_resource().resource_arn(arn).send().await.unwrap();
        assert_eq!(t.tags().cloned().unwrap_or_default().into_iter().collect::<Tags>(), theirs("logs"));
    });
}

#[test]
fn a_key_renamed_without_renamed_from_frees_its_name_before_the_create() {
    // Every mutating call takes 0.3 s at the server, so a create sent
    // beside the delete it needs would show in the log within that time.
    let moto = Moto::start_with(&["--delay-mutations-ms", "300"]);
    let dir = Scratch::new("rename");
    let spec = dir.write("race.yaml", RACE);
    moto.run(&["apply", path_str(&spec), "--auto-approve"]).expect(0);

    // New keys, the same names, no `renamed_from`: two objects destroyed
    // and two made, each create after the delete that frees its name.
    let renamed = RACE.replace("  template:\n", "  launch:\n").replace("  logs:\n", "  app_logs:\n");
    let spec = dir.write("race.yaml", &renamed);
    let r = moto.run(&["plan", path_str(&spec)]).expect(0);
    for (old, new) in [("template", "launch"), ("logs", "app_logs")] {
        let said = format!(
            "after `{old}` is destroyed, whose object has the name it needs; to keep that object instead, say `renamed_from: {old}` on `{new}`"
        );
        assert!(r.stdout.contains(&said), "{}", r.stdout);
    }
    let mark = moto.calls().len();
    moto.run(&["apply", path_str(&spec), "--auto-approve"]).expect(0);
    let calls = moto.calls().split_off(mark);
    let at = |op: &str| calls.iter().find(|c| c.operation == op).unwrap_or_else(|| panic!("no {op}: {calls:?}")).t;
    for (delete, create) in [("DeleteLaunchTemplate", "CreateLaunchTemplate"), ("DeleteLogGroup", "CreateLogGroup")] {
        assert!(at(create) - at(delete) >= 0.3, "{create} sent before {delete} returned: {calls:?}");
    }
    moto.run(&["plan", path_str(&spec), "--detailed-exitcode"]).expect(0);
}

#[test]
fn names_another_stack_holds_are_conflicts_before_anything_is_sent() {
    // Kinds whose reads list this stack's objects (by IAM path, by tag
    // filters) read the spec's other names one by one, so another stack's
    // launch template, role, instance profile or secret of the same name is
    // found by the plan, not by a create.
    let moto = Moto::start();
    let dir = Scratch::new("names");
    let spec = format!(
        "{RACE}  profile:\n    type: iam.instance_profile\n    name: race-profile\n    properties:\n      role: ${{resources.role.name}}\n  secret:\n    type: secretsmanager.secret\n    name: race-token\n"
    );
    let theirs = dir.write("theirs.yaml", &spec.replace("stack: race", "stack: other"));
    moto.run(&["apply", path_str(&theirs), "--auto-approve"]).expect(0);
    let ours = dir.write("ours.yaml", &spec);
    let mark = moto.calls().len();
    for command in ["plan", "apply"] {
        let r =
            moto.run(&[command, path_str(&ours), "--auto-approve"][..if command == "plan" { 2 } else { 3 }]).expect(1);
        for (resource, kind, name) in [
            ("template", "ec2.launch_template", "race-template"),
            ("role", "iam.role", "race-role"),
            ("profile", "iam.instance_profile", "race-profile"),
            ("secret", "secretsmanager.secret", "race-token"),
        ] {
            let said = format!(
                "resource `{resource}` ({kind}): `{name}` exists and belongs to stack other, environment default (its resource `{resource}`)"
            );
            assert!(r.stderr.contains(&said), "{command}, {resource}: {}", r.stderr);
        }
    }
    assert_eq!(moto.mutating_since(mark).len(), 0, "{:?}", moto.mutating_since(mark));
}

#[test]
fn a_secret_destroyed_within_its_recovery_window_comes_back_on_the_next_apply() {
    // Secrets Manager keeps a deleted secret's name for its recovery window
    // and refuses CreateSecret of it: converge restores this resource's own
    // (with the value it had), and never another's.
    let moto = Moto::start();
    let dir = Scratch::new("secret");
    let spec = "stack: vault\nregion: eu-west-1\nresources:\n  token:\n    type: secretsmanager.secret\n    name: vault-token\n    properties:\n      generate: {length: 32}\n";
    let ours = dir.write("ours.yaml", spec);
    moto.run(&["apply", path_str(&ours), "--auto-approve"]).expect(0);
    let secret = |name: &str| {
        rt().block_on(async { moto.secretsmanager().describe_secret().secret_id(name).send().await.unwrap() })
    };
    let value = |name: &str| {
        rt().block_on(async {
            let v = moto.secretsmanager().get_secret_value().secret_id(name).send().await.unwrap();
            v.secret_string().unwrap_or_default().to_string()
        })
    };
    let (arn, was) = (secret("vault-token").arn().unwrap().to_string(), value("vault-token"));
    moto.run(&["destroy", path_str(&ours), "--auto-approve", "--allow-destroy", "*"]).expect(0);
    assert!(secret("vault-token").deleted_date().is_some(), "scheduled for deletion");

    moto.run(&["plan", path_str(&ours)]).expect(0);
    moto.run(&["apply", path_str(&ours), "--auto-approve"]).expect(0);
    let back = secret("vault-token");
    assert_eq!((back.deleted_date(), back.arn()), (None, Some(arn.as_str())), "restored, not made anew");
    assert_eq!(value("vault-token"), was, "with the value it had");
    moto.run(&["plan", path_str(&ours), "--detailed-exitcode"]).expect(0);

    // Another stack's secret, scheduled for deletion, with the same name.
    let theirs =
        dir.write("theirs.yaml", &spec.replace("stack: vault", "stack: other").replace("vault-token", "shared-token"));
    moto.run(&["apply", path_str(&theirs), "--auto-approve"]).expect(0);
    moto.run(&["destroy", path_str(&theirs), "--auto-approve", "--allow-destroy", "*"]).expect(0);
    let clash = dir.write("clash.yaml", &spec.replace("vault-token", "shared-token"));
    let r = moto.run(&["apply", path_str(&clash), "--auto-approve"]).expect(1);
    assert!(
        r.stdout
            .contains("`shared-token` exists and belongs to stack other, environment default (its resource `token`)"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(secret("shared-token").deleted_date().is_some(), "theirs stays as they left it");
}

#[test]
fn a_task_definition_family_prunes_and_destroys_only_its_own_revisions() {
    // Another tool (a deploy script, another stack) registers revisions in
    // the family too: converge's pruning and destroy leave them ACTIVE.
    let moto = Moto::start();
    let dir = Scratch::new("family");
    let spec = |tag: &str| {
        format!(
            "stack: fam\nregion: eu-west-1\nresources:\n  app:\n    type: ecs.task_definition\n    name: shared-app\n    properties:\n      keep_revisions: 2\n      containers:\n        - name: app\n          image: nginx:{tag}\n"
        )
    };
    let ecs = moto.ecs();
    let register_theirs = || {
        let c =
            aws_sdk_ecs::types::ContainerDefinition::builder().name("app").image("nginx:theirs").memory(512).build();
        let out = rt().block_on(ecs.register_task_definition().family("shared-app").container_definitions(c).send());
        out.unwrap().task_definition().unwrap().task_definition_arn().unwrap().to_string()
    };
    let status = |arn: &str| {
        let out = rt().block_on(ecs.describe_task_definition().task_definition(arn).send()).unwrap();
        out.task_definition().unwrap().status().unwrap().as_str().to_string()
    };
    let first = dir.write("fam.yaml", &spec("1"));
    moto.run(&["apply", path_str(&first), "--auto-approve"]).expect(0);
    let theirs = register_theirs();
    for tag in ["2", "3", "4", "5"] {
        let next = dir.write("fam.yaml", &spec(tag));
        moto.run(&["apply", path_str(&next), "--auto-approve"]).expect(0);
    }
    assert_eq!(status(&theirs), "ACTIVE", "pruning keeps another's revision");
    let last = dir.path("fam.yaml");
    moto.run(&["destroy", path_str(&last), "--auto-approve", "--allow-destroy", "*"]).expect(0);
    assert_eq!(status(&theirs), "ACTIVE", "destroy keeps another's revision");
}
