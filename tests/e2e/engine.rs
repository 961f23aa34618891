//! The engine: create, update, replace, delete along the graph; failures, faults, signals, concurrency, progress and the calls a plan makes.

use super::*;

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

#[test]
fn progress_is_live_on_a_terminal_and_plain_lines_elsewhere() {
    // RDS takes a while, as on AWS: long enough for a plain progress line.
    let moto = Moto::start_with(&["--rds-create-seconds", "11"]);
    let r = moto.run_on_a_terminal(&["apply", STACK, "--env", "staging", "--auto-approve"]).expect(0);
    let out = &r.stdout;
    assert!(out.contains("\x1b["), "no escape codes on a terminal:\n{out}");
    assert!(out.contains(&format!("/{} operations", STAGING)), "no total bar:\n{out}");
    assert!(out.contains("db (rds.db_instance): waiting for available (creating) ["), "no wait reason:\n{out}");
    assert!(out.contains(&format!("Apply complete: {STAGING} created")), "{out}");
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
    // waits that long); three slots for the stack's operations, so that operations
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
        if !["s3", "elasticfilesystem", "backup"].contains(&service) {
            *counted.entry(op.to_string()).or_default() += n.as_u64().unwrap();
        }
    }
    assert_eq!(counted, logged);
    assert!(stats["by_action"]["s3:GetBucketVersioning"] == BUCKETS.len(), "one a bucket: {}", stats["by_action"]);
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
/// (each kind's `Facts::reads`, listed in docs/safety.md): at most one list or batch call
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
    assert!((1..=3).contains(&pages), "the index of the stack's resources is one to three pages, not {pages}");
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
