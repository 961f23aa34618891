//! What a stack file can say: outputs, renames, lookups, log groups.

use super::*;

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
    let second = write("second.yaml", "      {}\n    tags:\n      team: logs\n");
    let second = path_str(&second);
    let r = moto.run(&["plan", second, "--detailed-exitcode"]).expect(2);
    assert!(r.stdout.contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."), "{}", r.stdout);
    let mark = moto.calls().len();
    moto.run(&["apply", second, "--auto-approve"]).expect(0);
    let ops: Vec<String> = moto.calls()[mark..].iter().map(|c| c.operation.clone()).collect();
    for op in ["DeleteRetentionPolicy", "DisassociateKmsKey", "TagResource"] {
        assert!(ops.iter().any(|o| o == op), "{op}: {ops:?}");
    }
    let (days, kms, tags) = read();
    assert_eq!((days, kms), (None, None));
    // A tag added in place (TagResource), converge's own kept.
    assert_eq!(tags.get("team").map(String::as_str), Some("logs"));
    assert_eq!(tags.get("converge:resource").map(String::as_str), Some("app_logs"));
    moto.run(&["plan", second, "--detailed-exitcode"]).expect(0);

    // Left out of the spec: found by its tags (the Resource Groups Tagging
    // API) and deleted.
    let gone = dir.write(
        "gone.yaml",
        &std::fs::read_to_string(second).unwrap().replace("app_logs:", "other_logs:").replace("/app/web", "/app/other"),
    );
    let r = moto.run(&["apply", path_str(&gone), "--auto-approve"]).expect(0);
    assert!(
        r.stdout.contains("1 added, 0 changed, 0 replaced, 1 destroyed") || r.stdout.contains("1 destroyed"),
        "{}",
        r.stdout
    );
    let left = rt().block_on(moto.logs().describe_log_groups().log_group_name_prefix("/app/web").send()).unwrap();
    assert!(left.log_groups().is_empty(), "{left:?}");
}
