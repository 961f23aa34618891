//! Offline commands: whole CLI runs, snapshotted (paths filtered).

mod harness;

use harness::{Run, Scratch, repo};

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
    for (env, n) in [("staging", 72), ("production", 74)] {
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

/// Issue 10 (the pipeline): `templates/gitlab-ci.yml` validates against
/// GitLab's CI schema (check-jsonschema's `vendor.gitlab-ci`), and the
/// check catches a broken copy; every `converge` command its jobs run
/// exists with the flags they pass; no credential is written in it.
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
    let r = check(&template);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&template).unwrap();
    let dir = Scratch::new("pipeline");
    let broken = dir.write("broken.yml", &text.replacen("      when: manual\n", "      when: sometimes\n", 1));
    assert_ne!(check(&broken).code, 0, "the schema check rejects a rule's unknown `when`");

    // Each `converge CMD … --flag` the jobs run is a command that takes
    // those flags.
    let mut seen = 0;
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for part in line.split("converge ").skip(1) {
            let words: Vec<&str> = part.split_whitespace().collect();
            let Some(cmd) = words.first().filter(|w| w.chars().all(|c| c.is_ascii_lowercase())) else { continue };
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
    assert!(text.contains("terraform: plan-$ENV.report.json"), "the merge request widget's report");
    assert!(text.contains("resource_group: converge-$ENV"), "one apply per environment at a time");
    assert!(text.contains("--var \"image_tag=$CI_COMMIT_SHA\""), "the app deploys by commit");
    assert!(
        text.contains("docker push \"$registry/$CONVERGE_APP_REPOSITORY-$env:$CI_COMMIT_SHA\""),
        "images by commit"
    );
}
