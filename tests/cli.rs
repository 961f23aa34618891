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
    for env in ["staging", "production"] {
        let r = converge(&["validate", "stacks/gitlab-ha.yaml", "--env", env]).expect(0);
        assert!(
            r.stdout.contains(&format!("valid (35 resources, environment {env}, region eu-west-1)")),
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
            "ec2.security_group",
            "s3.bucket",
            "rds.db_subnet_group",
            "rds.db_parameter_group",
            "rds.db_instance",
            "elasticache.subnet_group",
            "elasticache.replication_group",
            "efs.file_system",
            "efs.mount_target",
            "s3.object",
            "elbv2.load_balancer",
            "elbv2.target_group",
            "elbv2.listener",
            "ec2.launch_template",
            "autoscaling.group",
            "autoscaling.policy"
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
