//! Continuous delivery: runs and history, status, verify and rollback, ECS deploys, migrations before the switch, container secrets.

use super::*;

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
    let service_end = "      maximum_percent: 200\n";
    assert_eq!(stack.matches(service_end).count(), 1);
    let stack = stack.replacen(
        service_end,
        &format!("{service_end}      run_before:\n        command: [bin/migrate, up]\n"),
        1,
    );
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

/// Issue 23 (deploys gated by alarms): the webapp stack in production, whose
/// `verify:` watches app_5xx and app_unhealthy after each apply (the window
/// shortened with --verify-window). An alarm name that does not exist is
/// refused before any change. A passes its window and becomes the last
/// known good; during B's window an independent CloudWatch client sets
/// app_5xx to ALARM: B is rolled back to A's revision (read back from ECS),
/// the run record names the alarm, exit 1. The alarm is still in ALARM when
/// C deploys: reported, not blamed, and C becomes the last known good. ECS's
/// deployment alarms on the service are the same two alarms.
#[test]
fn an_alarm_in_the_window_rolls_back_and_one_from_before_is_not_blamed() {
    let moto = Moto::start();
    let webapp = "stacks/webapp-ecs.yaml";
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    let (cluster, service) = ("webapp-ecs-production-cluster", "webapp-ecs-production-service");
    let (errors, unhealthy) = ("webapp-ecs-production-app-5xx", "webapp-ecs-production-app-unhealthy");
    let deploy = |commit: &str, window: &str, extra: &[&str]| {
        let mut cmd = moto.converge();
        cmd.env("CI_COMMIT_SHA", commit)
            .args(["apply", webapp, "--env", "production", "--auto-approve", "--verify-window", window])
            .arg("--var")
            .arg(format!("image_tag={}", &commit[..8]))
            .args(extra);
        cmd
    };
    let ecs = moto.ecs();
    let cw = moto.cloudwatch();
    // The service's revision; `None` before the cluster exists.
    let running = || {
        let out = rt().block_on(ecs.describe_services().cluster(cluster).services(service).send()).ok()?;
        out.services().first().and_then(|s| s.task_definition()).map(str::to_string)
    };

    // Validated before any change: no such alarm, nothing created.
    let r = harness::Run::from(deploy(&a, "3s", &["--verify-alarms", "no-such-alarm"]).output().unwrap()).expect(1);
    assert!(
        r.stderr.contains("no CloudWatch alarm named no-such-alarm in eu-west-1: nothing was changed"),
        "{}",
        r.stderr
    );
    assert_eq!(running(), None, "nothing was deployed");

    let r = harness::Run::from(deploy(&a, "3s", &[]).output().unwrap()).expect(0);
    assert!(r.stdout.contains(&format!("Watching 2 alarms for 3s: {errors}, {unhealthy}.")), "{}", r.stdout);
    assert!(r.stdout.contains("is the last known good of webapp-ecs / production"), "{}", r.stdout);
    let a_revision = running().unwrap();

    // ECS watches the same alarms during its own deployments.
    let out = rt().block_on(ecs.describe_services().cluster(cluster).services(service).send()).unwrap();
    let alarms = out.services()[0].deployment_configuration().and_then(|c| c.alarms()).expect("deployment alarms");
    assert_eq!(alarms.alarm_names(), [errors, unhealthy]);
    assert!(alarms.enable() && alarms.rollback());
    // Both notify the stack's topic.
    let topic = rt().block_on(moto.sns().list_topics().send()).unwrap().topics()[0].topic_arn().unwrap().to_string();
    let described = rt().block_on(cw.describe_alarms().alarm_names(errors).send()).unwrap();
    assert_eq!(described.metric_alarms()[0].alarm_actions(), [topic.as_str()]);

    // B: the alarm goes off while B is watched.
    let mut child = deploy(&b, "20s", &[]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut out = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("Watching ") {
            rt().block_on(
                cw.set_alarm_state()
                    .alarm_name(errors)
                    .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                    .state_reason(
                        "Threshold Crossed: 2 out of the last 3 datapoints were greater than the threshold (5.0)",
                    )
                    .send(),
            )
            .unwrap();
        }
        out.push(line);
    }
    let out = out.join("\n");
    assert_eq!(child.wait().unwrap().code(), Some(1), "{out}");
    assert!(out.contains(&format!("Verification failed: {errors} went to ALARM: Threshold Crossed")), "{out}");
    assert!(out.contains(&format!("(commit {}); the run that failed (commit {})", &a[..12], &b[..12])), "{out}");
    assert_eq!(running().unwrap(), a_revision, "the service runs A's revision again");

    let history = moto.run(&["history", webapp, "--env", "production", "--format", "json"]).expect(0);
    let doc: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs[0]["command"], "rollback");
    assert_eq!(runs[1]["commit"], b.as_str());
    assert_eq!(runs[1]["verified"], false);
    assert_eq!(runs[1]["alarms"], serde_json::json!([errors]), "B's record names the alarm");
    let text = moto.run(&["history", webapp, "--env", "production"]).expect(0);
    assert!(
        text.stdout.contains(&format!("verification failed: in ALARM after the deploy: {errors}")),
        "{}",
        text.stdout
    );

    // C: app_5xx is still in ALARM from before the deploy: reported, not
    // blamed.
    let r = harness::Run::from(deploy(&c, "3s", &[]).output().unwrap()).expect(0);
    assert!(
        r.stdout.contains(&format!("Alarm {errors} is in ALARM before this deploy: reported, not blamed")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("since before the deploy: not blamed on it"), "{}", r.stdout);
    assert!(r.stdout.contains("is the last known good of webapp-ecs / production"), "{}", r.stdout);
    assert_ne!(running().unwrap(), a_revision, "C is live");
}
