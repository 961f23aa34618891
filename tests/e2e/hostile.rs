//! Hostile and bad input: every one fails offline with a location and makes no AWS call.

use super::*;

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
