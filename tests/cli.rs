//! Offline commands: whole CLI runs, snapshotted (paths filtered).

mod harness;

use harness::{Run, Scratch, path_str, repo};

fn converge(args: &[&str]) -> Run {
    Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_converge"))
            .current_dir(repo())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .output()
            .expect("run converge"),
    )
}

fn filtered(dir: &Scratch, text: &str) -> String {
    text.replace(&format!("{}/", dir.0.display()), "[DIR]/")
}

#[test]
fn validate_accepts_both_environments_of_the_shipped_stack() {
    // Production has a NAT gateway (and its address) per AZ; staging shares one.
    for (env, n) in [("staging", 88), ("production", 90)] {
        let r = converge(&["validate", "stacks/gitlab-ha.yaml", "--env", env]).expect(0);
        assert!(
            r.stdout.contains(&format!("valid ({n} resources, environment {env}, region eu-west-1)")),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn environment_is_required_and_checked() {
    let r = converge(&["validate", "stacks/gitlab-ha.yaml"]).expect(1);
    insta::assert_snapshot!("env_missing", r.stderr);
    let r = converge(&["validate", "stacks/gitlab-ha.yaml", "--env", "prod"]).expect(1);
    insta::assert_snapshot!("env_unknown", r.stderr);
}

#[test]
fn every_problem_is_reported_with_its_location() {
    let dir = Scratch::new("cli");
    let file = dir.write(
        "stack.yaml",
        r#"stack: demo
region: eu-west-1
variables:
  cidr: 10.0.0.0/16
environments:
  dev:
    variables:
      cidrr: 10.1.0.0/16
resources:
  vpc:
    type: ec2.vpc
    properties:
      cidr_block: ${var.cidr}
      enable_dns_hostname: true
  subnet:
    type: ec2.subnet
    depends_on: [vpcc]
    properties:
      vpc_id: ${resources.vpc.idd}
      cidr_block: 10.0.1.7/24
      availability_zone: ${region}a
  bucket:
    type: s3.bucket
    name: Not_A_Bucket
  sg:
    type: ec2.security_group
    properties:
      vpc_id: ${var.vpc}
      ingress:
        - protocol: tcpp
          port: 22
          cidr_blocks: [10.0.0.0/8]
"#,
    );
    let r = converge(&["validate", file.to_str().unwrap(), "--env", "dev"]).expect(1);
    insta::assert_snapshot!("many_errors", filtered(&dir, &r.stderr));
}

#[test]
fn graph_prints_creation_order_and_dot() {
    let r = converge(&["graph", "stacks/gitlab-ha.yaml", "--env", "staging"]).expect(0);
    insta::assert_snapshot!("graph_text", r.stdout);
    let r = converge(&["graph", "stacks/gitlab-ha.yaml", "--env", "staging", "--format", "dot"]).expect(0);
    assert!(r.stdout.starts_with("digraph \"gitlab-ha-staging\" {"), "{}", r.stdout);
    assert!(r.stdout.contains("\"vpc\" -> \"private_a\";"), "{}", r.stdout);
    assert!(r.stdout.contains("\"app_sg\" -> \"db_sg\";"), "{}", r.stdout);
}

#[test]
fn schema_covers_every_kind_and_rejects_typos() {
    let r = converge(&["schema"]).expect(0);
    let schema: serde_json::Value = serde_json::from_str(&r.stdout).expect("schema is JSON");
    let variants = schema["definitions"]["Resource"]["oneOf"].as_array().expect("one variant per kind");
    let types: Vec<&str> = variants.iter().map(|v| v["properties"]["type"]["const"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "ec2.vpc",
            "ec2.subnet",
            "ec2.internet_gateway",
            "ec2.elastic_ip",
            "ec2.nat_gateway",
            "ec2.route_table",
            "ec2.vpc_endpoint",
            "ec2.security_group",
            "s3.bucket",
            "iam.role",
            "iam.instance_profile",
            "secretsmanager.secret",
            "ec2.volume",
            "rds.db_subnet_group",
            "rds.db_parameter_group",
            "rds.db_instance",
            "elasticache.subnet_group",
            "elasticache.parameter_group",
            "elasticache.replication_group",
            "efs.file_system",
            "efs.mount_target",
            "s3.object",
            "elbv2.load_balancer",
            "elbv2.target_group",
            "elbv2.listener",
            "ec2.launch_template",
            "autoscaling.group",
            "autoscaling.policy",
            "logs.log_group",
            "sns.topic",
            "cloudwatch.alarm",
            "backup.vault",
            "backup.plan",
            "backup.selection",
            "ecr.repository",
            "ecs.cluster",
            "ecs.task_definition",
            "ecs.service"
        ]
    );
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    let reference = variants[0]["properties"]["properties"]["$ref"].as_str().expect("props by reference");
    let vpc = &schema["definitions"][reference.trim_start_matches("#/definitions/")];
    assert_eq!(vpc["additionalProperties"], serde_json::json!(false), "{vpc}");
    assert!(
        vpc["properties"]["cidr_block"].is_object() && vpc["properties"]["enable_dns_hostnames"].is_object(),
        "{vpc}"
    );
    assert_eq!(vpc["required"], serde_json::json!(["cidr_block"]), "{vpc}");
}

#[test]
fn secrets_from_the_environment_are_never_printed() {
    let dir = Scratch::new("secret");
    // A secret in a property that fails type checking: the message must not
    // quote it.
    let file = dir.write(
        "stack.yaml",
        "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n      enable_dns_support: ${env.CONVERGE_TEST_SECRET}\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_converge"))
        .args(["validate", file.to_str().unwrap()])
        .env("CONVERGE_TEST_SECRET", "hunter2-s3cr3t")
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("sensitive"), "{all}");
    assert!(!all.contains("hunter2"), "secret leaked: {all}");
}

/// The line of the first occurrence of `text` in the shipped stack.
fn line_of(text: &str) -> usize {
    let stack = std::fs::read_to_string(repo().join("stacks/gitlab-ha.yaml")).unwrap();
    let at = stack.find(text).unwrap_or_else(|| panic!("{text} not in the stack"));
    stack[..at].lines().count() + 1
}

#[test]
fn a_parameter_group_of_another_family_is_refused_offline() {
    // RDS refuses a parameter group whose family is not the engine
    // version's; validate says so before any call, naming both lines.
    let r = converge(&["validate", "stacks/gitlab-ha.yaml", "--env", "staging", "--var", "postgres_version=17.2"])
        .expect(1);
    let version = line_of("      engine_version: ${var.postgres_version}");
    let family = line_of("      family: ${var.postgres_family}");
    assert!(
        r.stderr.contains(&format!(
            "stacks/gitlab-ha.yaml:{version}:23: error: `resources.db.properties.engine_version`: postgres 17.2 needs a parameter group of family `postgres17`, but `db_params` is `postgres16`"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("help: `db_params.family` is set at stacks/gitlab-ha.yaml:{family}:15")),
        "{}",
        r.stderr
    );
    // The pair changed together is valid.
    converge(&[
        "validate",
        "stacks/gitlab-ha.yaml",
        "--env",
        "staging",
        "--var",
        "postgres_version=17.2",
        "--var",
        "postgres_family=postgres17",
    ])
    .expect(0);

    // ElastiCache: Redis 6.2 needs `redis6.x`.
    let r =
        converge(&["validate", "stacks/gitlab-ha.yaml", "--env", "staging", "--var", "redis_version=6.2"]).expect(1);
    assert!(
        r.stderr.contains("redis 6.2 needs a parameter group of family `redis6.x`, but `redis_params` is `redis7`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "`redis_params.family` is set at stacks/gitlab-ha.yaml:{}:",
            line_of("      family: ${var.redis_family}")
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn an_unpinned_version_with_a_parameter_group_is_refused() {
    let dir = Scratch::new("unpinned");
    let stack = std::fs::read_to_string(repo().join("stacks/gitlab-ha.yaml"))
        .unwrap()
        .replace("      engine_version: ${var.postgres_version}\n", "")
        .replace("../templates/", &format!("{}/templates/", repo().display()))
        .replace("../cloud-init/", &format!("{}/cloud-init/", repo().display()));
    let file = dir.write("stack.yaml", &stack);
    let r = converge(&["validate", file.to_str().unwrap(), "--env", "staging"]).expect(1);
    assert!(
        r.stderr.contains("no `engine_version`, but parameter group `db_params` is for `postgres16`"),
        "{}",
        r.stderr
    );
}

/// `docs/kinds.md` is generated from the kinds' code (`converge schema
/// --markdown`): it must be current. `CONVERGE_UPDATE_DOCS=1` rewrites it.
#[test]
fn the_kind_reference_in_docs_is_current() {
    let r = converge(&["schema", "--markdown"]).expect(0);
    let path = repo().join("docs/kinds.md");
    if std::env::var_os("CONVERGE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &r.stdout).unwrap();
    }
    let page = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        page == r.stdout,
        "docs/kinds.md differs from the kinds' code: run `converge schema --markdown > docs/kinds.md` (or CONVERGE_UPDATE_DOCS=1 cargo test --test cli) and commit it"
    );
    for k in ["## `ecs.service`", "`RunBefore`:", "| `retention_in_days` |", "Holds data: protected by default"] {
        assert!(page.contains(k), "{k}");
    }
}

#[test]
fn every_stack_validates_against_the_published_schema() {
    // A real JSON Schema validator (check-jsonschema, in the test venv)
    // against `converge schema`: what validate accepts, the schema accepts.
    let dir = Scratch::new("schema");
    let schema = dir.write("converge.schema.json", &converge(&["schema"]).expect(0).stdout);
    let checker = repo().join(".venv/bin/check-jsonschema");
    assert!(checker.exists(), "no {}: run scripts/test", checker.display());
    let stacks: Vec<std::path::PathBuf> = std::fs::read_dir(repo().join("stacks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    assert!(!stacks.is_empty());
    let check = |files: &[std::path::PathBuf]| {
        Run::from(
            std::process::Command::new(&checker)
                .arg("--schemafile")
                .arg(&schema)
                .args(files)
                .output()
                .expect("run check-jsonschema"),
        )
    };
    let r = check(&stacks);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Every resource-level field validate takes, the schema takes too.
    let shipped = std::fs::read_to_string(repo().join("stacks/gitlab-ha.yaml")).unwrap();
    let beside = Scratch::beside_stacks("fields");
    let fields = beside.write(
        "fields.yaml",
        &shipped.replacen(
            "  registry_bucket:\n    type: s3.bucket\n",
            "  registry_bucket:\n    type: s3.bucket\n    adopt: true\n    enabled: true\n    depends_on: [vpc]\n    tags: { tier: storage }\n    wait_timeout: 10m\n",
            1,
        ),
    );
    converge(&["validate", fields.to_str().unwrap(), "--env", "staging"]).expect(0);
    let r = check(&[fields]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // And it still rejects what validate rejects: a misspelled key, a
    // resource name validate refuses, a number where a string of digits is
    // not a reference.
    for (name, from, to) in [
        ("typo.yaml", "      cidr_block: ${var.vpc_cidr}", "      cidr_blok: ${var.vpc_cidr}"),
        ("name.yaml", "  vpc:\n", "  my vpc:\n"),
        ("stack.yaml", "stack: gitlab-ha", "stack: GitLab_HA"),
        ("number.yaml", "      size_gb: ${var.gitaly_volume_gb}", "      size_gb: two hundred"),
    ] {
        assert!(shipped.contains(from), "{from}");
        let bad = dir.write(name, &shipped.replacen(from, to, 1));
        let r = check(&[bad]);
        assert_eq!(r.code, 1, "{name} passed the schema:\n{}{}", r.stdout, r.stderr);
    }
}

#[test]
fn disabled_resources_and_conditional_references() {
    let dir = Scratch::new("enabled");
    let stack = |per_az: &str| {
        format!(
            r#"stack: demo
region: eu-west-1
variables:
  per_az: {per_az}
resources:
  vpc:
    type: ec2.vpc
    properties:
      cidr_block: 10.0.0.0/16
  a:
    type: ec2.subnet
    properties:
      vpc_id: ${{resources.vpc.id}}
      cidr_block: 10.0.1.0/24
      availability_zone: eu-west-1a
  b:
    type: ec2.subnet
    enabled: ${{var.per_az}}
    properties:
      vpc_id: ${{resources.vpc.id}}
      cidr_block: 10.0.2.0/24
      availability_zone: eu-west-1b
  rt:
    type: ec2.route_table
    properties:
      vpc_id: ${{resources.vpc.id}}
      subnet_ids: ["${{var.per_az ? resources.b.id : resources.a.id}}"]
"#
        )
    };
    let on = dir.write("on.yaml", &stack("true"));
    let r = converge(&["graph", on.to_str().unwrap()]).expect(0);
    assert!(r.stdout.contains("b"), "{}", r.stdout);
    let r = converge(&["graph", on.to_str().unwrap(), "--format", "dot"]).expect(0);
    assert!(r.stdout.contains("\"b\" -> \"rt\";") && !r.stdout.contains("\"a\" -> \"rt\";"), "{}", r.stdout);
    let off = dir.write("off.yaml", &stack("false"));
    let r = converge(&["validate", off.to_str().unwrap()]).expect(0);
    assert!(r.stdout.contains("valid (3 resources"), "{}", r.stdout);
    let r = converge(&["graph", off.to_str().unwrap(), "--format", "dot"]).expect(0);
    assert!(r.stdout.contains("\"a\" -> \"rt\";") && !r.stdout.contains("\"b\""), "{}", r.stdout);

    // A plain reference to a disabled resource is an error, and so is a
    // condition on a variable that is not true or false.
    let bad = dir.write(
        "bad.yaml",
        &stack("false").replace("${var.per_az ? resources.b.id : resources.a.id}", "${resources.b.id}"),
    );
    let r = converge(&["validate", bad.to_str().unwrap()]).expect(1);
    assert!(r.stderr.contains("references `b`, which is disabled in environment `default`"), "{}", r.stderr);
    let bad = dir.write("bad2.yaml", &stack("maybe"));
    let r = converge(&["validate", bad.to_str().unwrap()]).expect(1);
    assert!(r.stderr.contains("`enabled: ${var.per_az}`: variable `per_az` must be true or false"), "{}", r.stderr);
}

/// Issue 10 (the pipeline), issue 22 (the component and converge's own
/// pipeline): `templates/gitlab-ci.yml` (an include and a CI/CD
/// component: a `spec:` header, then the jobs) and the project's own
/// `.gitlab-ci.yml` validate against GitLab's CI schema (check-jsonschema's
/// `vendor.gitlab-ci`), and the check catches a broken copy; every
/// `converge` command the jobs run exists with the flags they pass; no
/// credential is written in them.
#[test]
fn the_pipeline_template_is_valid_gitlab_ci_and_runs_real_commands() {
    let template = repo().join("templates/gitlab-ci.yml");
    let checker = repo().join(".venv/bin/check-jsonschema");
    assert!(checker.exists(), "no {}: run scripts/test", checker.display());
    let check = |file: &std::path::Path| {
        Run::from(
            std::process::Command::new(&checker)
                .args(["--builtin-schema", "vendor.gitlab-ci"])
                .arg(file)
                .output()
                .expect("run check-jsonschema"),
        )
    };
    let dir = Scratch::new("pipeline");
    // GitLab reads a file with a header as two YAML documents: the header
    // (`spec:`), then the configuration. check-jsonschema reads one
    // document a file, so each is checked on its own.
    let check_documents = |file: &std::path::Path| {
        let text = std::fs::read_to_string(file).unwrap();
        let docs: Vec<&str> = match text.split_once("\n---\n") {
            Some((header, body)) => {
                assert!(header.starts_with("spec:\n"), "{}: a header is `spec:`", file.display());
                vec![header, body]
            }
            None => vec![text.as_str()],
        };
        for (i, doc) in docs.iter().enumerate() {
            let part = dir.write(&format!("part{i}.yml"), doc);
            let r = check(&part);
            assert_eq!(r.code, 0, "{} (document {}): {}{}", file.display(), i + 1, r.stdout, r.stderr);
        }
        docs.len()
    };
    assert_eq!(check_documents(&template), 2, "the template has its component header");
    assert_eq!(check_documents(&repo().join(".gitlab-ci.yml")), 1);
    let text = std::fs::read_to_string(&template).unwrap();
    let body = text.split_once("\n---\n").unwrap().1;
    let broken = dir.write("broken.yml", &body.replacen("      when: manual\n", "      when: sometimes\n", 1));
    assert_ne!(check(&broken).code, 0, "the schema check rejects a rule's unknown `when`");

    // Each `converge CMD … --flag` the jobs run is a command that takes
    // those flags.
    let mut seen = 0;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for part in line.split("converge ").skip(1) {
            let words: Vec<&str> = part.split_whitespace().collect();
            let Some(cmd) = words.first().filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-')) else {
                continue;
            };
            let help = converge(&[cmd, "--help"]);
            assert_eq!(help.code, 0, "`converge {cmd}` in the pipeline: {}", help.stderr);
            for w in words.iter().skip(1).take_while(|w| !w.starts_with(';') && **w != ">" && **w != "||") {
                let Some(at) = w.find("--") else { continue };
                let flag = w[at..].trim_end_matches(';').split('=').next().unwrap();
                assert!(help.stdout.contains(flag), "`converge {cmd}` takes no {flag}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 10, "the pipeline runs converge {seen} times");
    for secret in ["AWS_SECRET_ACCESS_KEY:", "AKIA", "aws_secret_access_key", "password:"] {
        assert!(!text.contains(secret), "no credential in the template: {secret}");
    }
    assert!(text.contains("id_tokens:") && text.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "OIDC");
    assert!(text.contains("terraform: plan-$PLAN.report.json"), "the merge request widget's report");
    assert!(text.contains("converge mr-note \"plan-$PLAN.md\""), "the plan on the merge request");
    for env in ["staging", "production"] {
        assert!(text.contains(&format!("resource_group: converge-$[[ inputs.{env} ]]")), "one apply per environment");
    }
    assert!(text.contains("PLAN_ARGS: --var image_tag=$CI_COMMIT_SHA"), "the app deploys by commit");
    // The default branch applies the reviewed plan: no job plans again
    // with --auto-approve but the "Run pipeline" form's `apply`.
    assert!(text.contains("converge apply \"plan-$PLAN.json\""), "apply jobs apply the saved plan");
    assert_eq!(text.matches("--auto-approve").count(), 1, "only the manual run re-plans");
    // The default image is converge's own, of this version.
    assert!(
        text.contains(&format!(
            "      default: registry.gitlab.com/converge-iac/converge:{}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "the template's image is converge {}",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        text.contains("docker push \"$registry/$CONVERGE_APP_REPOSITORY-$env:$CI_COMMIT_SHA\""),
        "images by commit"
    );
}

/// Issue 22: `converge mr-note` keeps one note per stack and environment
/// on the merge request through GitLab's notes API (a stand-in on loopback
/// that checks method, path, `PRIVATE-TOKEN` and the JSON body as GitLab
/// documents them): created once, found again past the first page of
/// notes and edited in place, never duplicated, never overwritten by an
/// older pipeline; without a token, one line and no request; 401, 403 and
/// 502 are clear errors that never show the token.
#[test]
fn mr_note_posts_the_plan_once_and_edits_it_in_place() {
    use harness::gitlab_api::{FakeGitLab, Mode};
    // 120 notes by people first: the plan's note is on the second page.
    let gitlab = FakeGitLab::start(120);
    let dir = Scratch::new("mr-note");
    let plan = |env: &str, summary: &str| {
        let text = format!(
            "<!-- converge plan: demo / {env} -->\n### converge plan: `demo` / `{env}` (eu-west-1)\n\n**{summary}**\n"
        );
        dir.write(&format!("plan-{env}.md"), &text)
    };
    let note = |file: &std::path::Path, token: Option<&str>, pipeline: &str, project: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_converge"));
        c.args(["mr-note"])
            .arg(file)
            .env("NO_COLOR", "1")
            .env("CI_API_V4_URL", &gitlab.url)
            .env("CI_PROJECT_ID", project)
            .env("CI_MERGE_REQUEST_IID", gitlab.iid.to_string())
            .env("CI_PIPELINE_ID", pipeline)
            .env("CI_JOB_URL", "https://gitlab.example.com/acme/infra/-/jobs/9");
        match token {
            Some(t) => c.env("CONVERGE_GITLAB_TOKEN", t),
            None => c.env_remove("CONVERGE_GITLAB_TOKEN"),
        };
        Run::from(c.output().expect("run converge mr-note"))
    };
    let project = gitlab.project.to_string();
    let marker = "<!-- converge plan: demo / staging -->";

    // No token: one line that says how to set one; GitLab is not asked.
    let staging = plan("staging", "Plan: 3 to add, 0 to change, 0 to destroy.");
    let r = note(&staging, None, "100", &project).expect(0);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(r.stdout.contains("CONVERGE_GITLAB_TOKEN is not set") && r.stdout.contains("api scope"), "{}", r.stdout);
    assert!(gitlab.requests().is_empty());

    // The first pipeline creates the note.
    let r = note(&staging, Some(gitlab.token), "100", &project).expect(0);
    assert!(r.stdout.starts_with("Posted the plan on merge request !7 (note 122)"), "{}", r.stdout);
    let posted = gitlab.notes_marked(marker);
    assert_eq!(posted.len(), 1);
    assert!(posted[0].body.contains("3 to add") && posted[0].body.ends_with("<!-- converge: pipeline 100 -->\n"));
    let methods: Vec<String> = gitlab.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["GET", "GET", "POST"], "two pages of notes read, then one note created");
    let first = &gitlab.requests()[0];
    assert_eq!(
        first.target,
        "/api/v4/projects/42/merge_requests/7/notes?sort=asc&order_by=created_at&per_page=100&page=1"
    );
    let post = gitlab.requests().pop().unwrap();
    assert_eq!(post.target, "/api/v4/projects/42/merge_requests/7/notes");
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert!(gitlab.requests().iter().all(|r| r.private_token.as_deref() == Some(gitlab.token)));

    // The next pipeline edits that note (found on page 2): still one.
    let staging = plan("staging", "Plan: 4 to add, 0 to change, 0 to destroy.");
    let r = note(&staging, Some(gitlab.token), "101", &project).expect(0);
    assert!(r.stdout.contains("Updated the plan on merge request !7 (note 122, edited in place)"), "{}", r.stdout);
    let put = gitlab.requests().pop().unwrap();
    assert_eq!((put.method.as_str(), put.target.as_str()), ("PUT", "/api/v4/projects/42/merge_requests/7/notes/122"));
    let posted = gitlab.notes_marked(marker);
    assert_eq!(posted.len(), 1, "edited, not duplicated");
    assert!(posted[0].body.contains("4 to add"));

    // Production has a note of its own; the project may be given by path.
    let production = plan("production", "No changes.");
    note(&production, Some(gitlab.token), "101", "acme/infra").expect(0);
    assert!(gitlab.requests().iter().any(|r| r.target.starts_with("/api/v4/projects/acme%2Finfra/")));
    assert_eq!(gitlab.notes_marked("<!-- converge plan: demo / production -->").len(), 1);
    assert_eq!(gitlab.notes_marked(marker).len(), 1);

    // A pipeline older than the note's (retried late) leaves it alone.
    let old = plan("staging", "Plan: 1 to add, 0 to change, 0 to destroy.");
    let before = gitlab.requests().len();
    let r = note(&old, Some(gitlab.token), "99", &project).expect(0);
    assert!(r.stdout.contains("note 122 is from a newer pipeline (101)"), "{}", r.stdout);
    assert!(gitlab.requests()[before..].iter().all(|r| r.method == "GET"));
    assert!(gitlab.notes_marked(marker)[0].body.contains("4 to add"));

    // Refusals: clear, with the next step, exit 1, and no token shown.
    let r = note(&staging, Some("glpat-wrong"), "102", &project).expect(1);
    assert!(r.stderr.contains("401 Unauthorized") && r.stderr.contains("api scope"), "{}", r.stderr);
    assert!(!r.stderr.contains("glpat-wrong") && !r.stdout.contains("glpat-wrong"));
    gitlab.set_mode(Mode::Forbidden);
    let r = note(&staging, Some(gitlab.token), "102", &project).expect(1);
    assert!(r.stderr.contains("403 Forbidden") && r.stderr.contains("Reporter"), "{}", r.stderr);
    gitlab.set_mode(Mode::BadGateway);
    let before = gitlab.requests().len();
    let r = note(&staging, Some(gitlab.token), "102", &project).expect(1);
    assert!(r.stderr.contains("502 Bad Gateway") && r.stderr.contains("re-run the job"), "{}", r.stderr);
    assert_eq!(gitlab.requests().len() - before, 3, "a server error is tried 3 times");
    for r in [&r.stdout, &r.stderr] {
        assert!(!r.contains(gitlab.token), "the token was printed");
    }

    // Not a plan in Markdown: refused before any request.
    gitlab.set_mode(Mode::Normal);
    let before = gitlab.requests().len();
    let other = dir.write("notes.md", "# my notes\n");
    let r = note(&other, Some(gitlab.token), "103", &project).expect(1);
    assert!(r.stderr.contains("not a plan in Markdown"), "{}", r.stderr);
    assert_eq!(gitlab.requests().len(), before);
    assert_eq!(gitlab.violations(), Vec::<String>::new());
}

/// Issue 22: `converge mr-note` over HTTPS, to a GitLab whose certificate
/// comes from a CA of its own (common where GitLab runs itself): refused
/// with the certificate named without that CA, accepted with the CA file
/// GitLab Runner gives jobs (`CI_SERVER_TLS_CA_FILE`).
#[test]
fn mr_note_checks_gitlabs_certificate_and_takes_the_runners_ca_file() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = Scratch::new("mr-note-tls");
    let openssl = |args: &[&str]| {
        let r = Run::from(std::process::Command::new("openssl").args(args).current_dir(&dir.0).output().unwrap());
        assert_eq!(r.code, 0, "openssl {args:?}: {}", r.stderr);
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Test GitLab CA"],
        ]
        .concat(),
    );
    openssl(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
    dir.write(
        "server.ext",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.path("server.pem")).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.path("server.key")).unwrap();
    let tls =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    let gitlab = harness::gitlab_api::FakeGitLab::start_tls(0, std::sync::Arc::new(tls));
    let plan = dir.write("plan.md", "<!-- converge plan: demo / staging -->\n### converge plan\n\n**No changes.**\n");
    let note = |ca: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_converge"));
        c.arg("mr-note")
            .arg(&plan)
            .env("NO_COLOR", "1")
            .env("CONVERGE_GITLAB_TOKEN", gitlab.token)
            .env("CI_API_V4_URL", &gitlab.url)
            .env("CI_PROJECT_ID", gitlab.project.to_string())
            .env("CI_MERGE_REQUEST_IID", gitlab.iid.to_string())
            .env_remove("CI_SERVER_TLS_CA_FILE");
        if let Some(ca) = ca {
            c.env("CI_SERVER_TLS_CA_FILE", ca);
        }
        Run::from(c.output().unwrap())
    };
    assert!(gitlab.url.starts_with("https://localhost:"));
    let r = note(None).expect(1);
    assert!(r.stderr.contains("cannot reach GitLab") && r.stderr.contains("UnknownIssuer"), "{}", r.stderr);
    assert!(gitlab.requests().is_empty(), "nothing was sent before the certificate was trusted");
    let r = note(Some(&dir.path("ca.pem"))).expect(0);
    assert!(r.stdout.contains("Posted the plan on merge request !7"), "{}", r.stdout);
    assert_eq!(gitlab.notes_marked("<!-- converge plan: demo / staging -->").len(), 1);
    let r = note(Some(&dir.path("server.csr"))).expect(1);
    assert!(r.stderr.contains("server.csr: not a PEM file of CA certificates"), "{}", r.stderr);
}

/// S3 allows 10 tags on an object; converge adds six of its own (`Name`,
/// identity, the applied digest, the commit). Four of the stack's and the
/// resource's validate; a fifth is refused offline, placed, with the count.
#[test]
fn an_s3_object_takes_at_most_four_tags_of_the_specs() {
    let dir = Scratch::new("object-tags");
    let stack = |extra: &str| {
        format!(
            "stack: demo\nregion: eu-west-1\ntags:\n  team: infra\n  app: gitlab\nresources:\n  bucket:\n    type: s3.bucket\n    name: demo-object-tags\n  config:\n    type: s3.object\n    properties:\n      bucket: ${{resources.bucket.id}}\n      key: gitlab.rb\n      content: x\n    tags:\n      role: config\n      tier: app\n{extra}"
        )
    };
    let ok = dir.write("ok.yaml", &stack(""));
    converge(&["validate", ok.to_str().unwrap()]).expect(0);
    let over = dir.write("over.yaml", &stack("      owner: ops\n"));
    let r = converge(&["validate", over.to_str().unwrap()]).expect(1);
    assert!(
        r.stderr.contains(&format!(
            "{}:16:5: error: 11 tags with the stack's, the environment's and converge's own (6): AWS allows 10 on one s3.object",
            over.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("set at most 4 tags"), "{}", r.stderr);
}

/// Sets `value` at `path` (`a.b`, `a[].b`: the first item) under a
/// resource's `properties`, making maps on the way; false where the path
/// runs through a list the resource does not have, or a value that is not
/// a map (a reference).
/// `Place::Replace` only replaces a value the resource has; `Place::Into`
/// also adds one to a map it has; `Place::Make` makes the maps too.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Replace,
    Into,
    Make,
}

fn set_at(v: &mut serde_yaml_ng::Value, path: &str, value: serde_yaml_ng::Value, place: Place) -> bool {
    let make = place == Place::Make;
    use serde_yaml_ng::Value as Y;
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if v.is_null() && make {
        *v = Y::Mapping(Default::default());
    }
    let Y::Mapping(map) = v else { return false };
    let (key, each) = match head.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (head, false),
    };
    let key = Y::String(key.into());
    match (each, rest) {
        (false, None) if place == Place::Replace && !map.contains_key(&key) => false,
        (false, None) => {
            map.insert(key, value);
            true
        }
        (false, Some(_)) if !make && !map.contains_key(&key) => false,
        (false, Some(rest)) => set_at(map.entry(key).or_insert(Y::Null), rest, value, place),
        (true, None) => match map.get_mut(&key) {
            Some(Y::Sequence(items)) if !items.is_empty() => {
                items[0] = value;
                true
            }
            _ => {
                map.insert(key, Y::Sequence(vec![value]));
                true
            }
        },
        (true, Some(rest)) => match map.get_mut(&key) {
            Some(Y::Sequence(items)) if !items.is_empty() => set_at(&mut items[0], rest, value, place),
            // A list left empty or given by a variable: one item made.
            _ if make => {
                map.insert(key.clone(), Y::Sequence(vec![Y::Null]));
                match map.get_mut(&key) {
                    Some(Y::Sequence(items)) => set_at(&mut items[0], rest, value, place),
                    _ => false,
                }
            }
            _ => false,
        },
    }
}

/// Generated from the limits table (`src/limits`): for every kind, each
/// value just past each limit of each AWS member it sends, written into a
/// resource of that kind in a copy of a shipped stack, makes `converge
/// validate` exit 1 with an error placed in that resource. Offline:
/// `validate` has no AWS client at all.
#[test]
fn every_limit_of_every_kind_is_refused_offline_where_it_is_written() {
    use converge::limits::{self, To};
    let dir = Scratch::beside_stacks("limits");
    let stacks: Vec<(&str, serde_yaml_ng::Value)> = ["gitlab-ha.yaml", "webapp-ecs.yaml"]
        .into_iter()
        .map(|f| {
            (f, serde_yaml_ng::from_str(&std::fs::read_to_string(repo().join("stacks").join(f)).unwrap()).unwrap())
        })
        .collect();
    let mut cases = Vec::new();
    let mut unplaced = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for kind in converge::kinds::REGISTRY {
        for sent in kind.sends() {
            let To::Member(member) = sent.to else { continue };
            for limit in limits::of(member) {
                for (bad, what) in limits::past(limit) {
                    let bad: serde_yaml_ng::Value = serde_yaml_ng::to_value(&bad).unwrap();
                    // A resource that has the property, else its parent,
                    // else one the parent can be added to.
                    let placed = [Place::Replace, Place::Into, Place::Make].into_iter().find_map(|place| {
                        stacks.iter().find_map(|(file, doc)| {
                            let resources = doc.get("resources")?.as_mapping()?;
                            resources.iter().find_map(|(name, r)| {
                                (r.get("type")?.as_str()? == kind.type_name()).then_some(())?;
                                let name = name.as_str()?;
                                let mut doc = doc.clone();
                                let r = doc.get_mut("resources")?.get_mut(name)?.as_mapping_mut()?;
                                let props = r.entry("properties".into()).or_insert(serde_yaml_ng::Value::Null);
                                if props.is_null() {
                                    *props = serde_yaml_ng::Value::Mapping(Default::default());
                                }
                                set_at(props, sent.prop, bad.clone(), place).then(|| (*file, name.to_string(), doc))
                            })
                        })
                    });
                    match placed {
                        Some((file, name, doc)) => {
                            kinds.insert(kind.type_name());
                            cases.push((
                                format!("{} {} {what} ({})", kind.type_name(), sent.prop, limit.id),
                                file,
                                name,
                                doc,
                            ));
                        }
                        None => unplaced.push(format!("{} {}", kind.type_name(), sent.prop)),
                    }
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "no resource of the shipped stacks can hold these:\n{}", unplaced.join("\n"));
    let failures = std::sync::Mutex::new(Vec::new());
    let cited = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for (t, chunk) in cases.chunks(cases.len().div_ceil(2)).enumerate() {
            let (dir, failures, cited) = (&dir, &failures, &cited);
            s.spawn(move || {
                for (i, (what, file, name, doc)) in chunk.iter().enumerate() {
                    let text = serde_yaml_ng::to_string(doc).unwrap();
                    let path = dir.write(&format!("case-{t}-{i}-{file}"), &text);
                    let r = converge(&["validate", path_str(&path), "--env", "staging"]);
                    let start = text.lines().position(|l| l == format!("  {name}:")).expect("resource line") + 1;
                    // `FILE:LINE:COL: error: …` lines, one of them in this
                    // resource and naming it.
                    let placed = r.stderr.lines().any(|l| {
                        let Some(rest) = l.strip_prefix(&format!("{}:", path.display())) else { return false };
                        let line: usize = rest.split(':').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                        line > start && l.contains("error:") && l.contains(&format!("resources.{name}."))
                    });
                    if r.stderr.contains("botocore")
                        || r.stderr.contains("API Reference")
                        || r.stderr.contains("User Guide")
                    {
                        cited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if r.code != 1 || !placed || r.stderr.contains("panicked") {
                        failures.lock().unwrap().push(format!("{what}: exit {}\n{}", r.code, r.stderr));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {} cases:\n{}", failures.len(), cases.len(), failures.join("\n---\n"));
    // Every kind that sends a member with a published limit has cases.
    let limited: std::collections::BTreeSet<&str> = converge::kinds::REGISTRY
        .iter()
        .filter(|k| {
            k.sends()
                .iter()
                .any(|s| matches!(s.to, To::Member(m) if limits::of(m).any(|l| !limits::past(l).is_empty())))
        })
        .map(|k| k.type_name())
        .collect();
    assert_eq!(kinds, limited);
    // The rest are refused first by a kind's own check (converge supports
    // fewer values than AWS: `FARGATE` or `EC2`), also placed.
    let cited = cited.into_inner();
    assert!(cited * 3 >= cases.len() * 2, "{cited} of {} errors cite their source", cases.len());
    eprintln!("{} cases over {} kinds, {cited} citing the model or the reference", cases.len(), kinds.len());
}

/// A stack of a VPC plus `resource` (YAML under `resources:`), validated
/// offline: the error is at `line:col` (1-based, in the whole file) and
/// says `expect`, and the same stack with `fixed` for `bad` validates.
fn refused_at(tag: &str, resource: &str, (line, col): (usize, usize), expect: &str, (bad, fixed): (&str, &str)) {
    let dir = Scratch::new(tag);
    let head = "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n";
    let file = dir.write("stack.yaml", &format!("{head}{resource}"));
    let r = converge(&["validate", path_str(&file)]).expect(1);
    let at = format!("{}:{line}:{col}: error: ", file.display());
    let found = r.stderr.lines().find(|l| l.starts_with(&at));
    assert!(found.is_some_and(|l| l.contains(expect)), "wanted {at}…{expect}\n{}", r.stderr);
    assert!(r.stderr.contains("nothing was sent to AWS"), "{}", r.stderr);
    assert!(resource.contains(bad), "{bad}");
    let ok = dir.write("ok.yaml", &format!("{head}{}", resource.replacen(bad, fixed, 1)));
    converge(&["validate", path_str(&ok)]).expect(0);
}

#[test]
fn a_security_group_description_with_a_character_aws_refuses() {
    refused_at(
        "sg-text",
        "  web:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      description: \"GitLab web\\ttier\"\n",
        (12, 20),
        "`\\t` is not allowed: AWS allows only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$* (AWS ec2:CreateSecurityGroupRequest.Description, from Amazon EC2 API Reference, CreateSecurityGroup",
        ("\\t", " "),
    );
    // The rule's description: an en dash.
    refused_at(
        "sg-rule-text",
        "  web:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      ingress:\n        - {protocol: tcp, port: 443, cidr_blocks: [10.0.0.0/16], description: \"HTTPS – internal\"}\n",
        (13, 79),
        "`–` is not allowed",
        ("–", "-"),
    );
}

#[test]
fn a_replication_group_of_more_cache_clusters_than_aws_allows() {
    refused_at(
        "cache-clusters",
        "  redis:\n    type: elasticache.replication_group\n    properties:\n      node_type: cache.t4g.small\n      engine_version: \"7.1\"\n      num_cache_clusters: 7\n",
        (13, 27),
        "`resources.redis.properties.num_cache_clusters`: 7 is above 6, the most AWS allows (AWS elasticache:CreateReplicationGroupMessage.NumCacheClusters, from Amazon ElastiCache API Reference",
        ("num_cache_clusters: 7", "num_cache_clusters: 6"),
    );
}

#[test]
fn a_lifecycle_rule_that_expires_after_zero_days() {
    refused_at(
        "lifecycle-days",
        "  logs:\n    type: s3.bucket\n    name: demo-limits-logs\n    properties:\n      lifecycle_rules:\n        - id: expire\n          expiration_days: 0\n",
        (14, 28),
        "`resources.logs.properties.lifecycle_rules[0].expiration_days`: 0 is below 1, the least AWS allows (AWS s3:LifecycleExpiration.Days, from Amazon S3 API Reference",
        ("expiration_days: 0", "expiration_days: 30"),
    );
}

#[test]
fn an_ipv6_block_in_an_ipv4_rule() {
    refused_at(
        "ipv6-in-ipv4",
        "  web:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      ingress:\n        - protocol: tcp\n          port: 443\n          cidr_blocks: [10.0.0.0/16, \"::/0\"]\n",
        (15, 38),
        "`resources.web.properties.ingress[0].cidr_blocks[1]`: `::/0` is an IPv6 block, and this field takes IPv4 (e.g. 10.0.0.0/16) (AWS ec2:IpRange.CidrIp",
        ("\"::/0\"", "0.0.0.0/0"),
    );
}

#[test]
fn a_launch_template_with_an_empty_instance_type() {
    refused_at(
        "instance-type",
        "  nodes:\n    type: ec2.launch_template\n    properties:\n      image_id: ami-0123456789abcdef0\n      instance_type: \"\"\n",
        (12, 22),
        "`resources.nodes.properties.instance_type`: empty; AWS needs a value (AWS ec2:RequestLaunchTemplateData.InstanceType",
        ("\"\"", "m7i.xlarge"),
    );
}

#[test]
fn a_redirect_without_a_status_code_aws_knows() {
    refused_at(
        "redirect",
        "  http:\n    type: elbv2.listener\n    properties:\n      load_balancer_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/demo/0123456789abcdef\n      port: 80\n      protocol: HTTP\n      default_action: {type: redirect, status_code: \"\"}\n",
        (14, 53),
        "`resources.http.properties.default_action.status_code`: empty; AWS needs a value (AWS elbv2:RedirectActionConfig.StatusCode, from botocore",
        ("status_code: \"\"", "status_code: HTTP_302"),
    );
}

#[test]
fn the_limits_table_is_what_the_pinned_botocore_says() {
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "no {}: run scripts/test, which installs botocore into .venv", python.display());
    let out = std::process::Command::new(python)
        .arg(repo().join("scripts/gen-limits"))
        .arg("--check")
        .current_dir(repo())
        .output()
        .expect("run scripts/gen-limits");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
