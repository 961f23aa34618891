use std::path::Path;

use serde_json::json;

use super::*;
use crate::spec::Template;

const BASE: &str = "stack: demo\nregion: eu-west-1\nvariables:\n  cidr: 10.0.0.0/16\n  days: 7\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: ${var.cidr}\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.0.1.0/24\n      availability_zone: ${region}a\n";

fn load(src: &str) -> Result<Stack, Vec<Diagnostic>> {
    load_with(src, LoadOptions::default())
}

fn load_with(src: &str, opts: LoadOptions) -> Result<Stack, Vec<Diagnostic>> {
    match load_str(Path::new("s.yaml"), src, &opts) {
        Ok(s) => Ok(s),
        Err(SpecError::Invalid { diagnostics, .. }) => Err(diagnostics),
        Err(e) => panic!("{e}"),
    }
}

fn one_error(src: &str) -> Diagnostic {
    let d = load(src).unwrap_err();
    assert_eq!(d.len(), 1, "{d:#?}");
    d.into_iter().next().unwrap()
}

#[test]
fn resolves_variables_region_and_references() {
    let s = load(BASE).unwrap();
    assert_eq!((s.name.as_str(), s.env.as_str(), s.region.as_str()), ("demo", "default", "eu-west-1"));
    let subnet = &s.resources["subnet"];
    assert_eq!(subnet.deps.iter().collect::<Vec<_>>(), ["vpc"]);
    assert_eq!(subnet.physical_name, "demo-default-subnet");
    assert_eq!(subnet.tags["converge:stack"], "demo");
    assert_eq!(subnet.tags["converge:env"], "default");
    assert_eq!(subnet.tags["converge:resource"], "subnet");
    assert_eq!(subnet.tags["Name"], "demo-default-subnet");
    let out = subnet.props.resolve(&|n, a| (n == "vpc" && a == "id").then(|| json!("vpc-1"))).unwrap();
    assert_eq!(out, json!({"vpc_id": "vpc-1", "cidr_block": "10.0.1.0/24", "availability_zone": "eu-west-1a"}));
    assert_eq!(
        s.resources["vpc"].props,
        Template::Map([("cidr_block".into(), Template::Lit(json!("10.0.0.0/16")))].into())
    );
}

#[test]
fn a_whole_string_reference_keeps_the_variable_type() {
    let src = "stack: demo\nregion: eu-west-1\nvariables:\n  days: 7\nresources:\n  b:\n    type: s3.bucket\n    name: demo-bucket-x\n    properties:\n      lifecycle_rules:\n        - id: x\n          expiration_days: ${var.days}\n";
    let s = load(src).unwrap();
    assert_eq!(s.resources["b"].props.placeholder()["lifecycle_rules"][0]["expiration_days"], json!(7));
}

#[test]
fn environments_override_declared_variables_only() {
    let src = BASE.replace("resources:\n", "environments:\n  prod:\n    region: us-east-2\n    variables:\n      cidr: 10.0.0.0/17\n  dev: {}\nresources:\n");
    let s = load_with(&src, LoadOptions { env: Some("prod".into()), ..Default::default() }).unwrap();
    assert_eq!(s.region, "us-east-2");
    assert_eq!(s.resources["vpc"].props.placeholder()["cidr_block"], json!("10.0.0.0/17"));
    assert_eq!(s.resources["subnet"].props.placeholder()["availability_zone"], json!("us-east-2a"));

    let d = load(&src).unwrap_err();
    assert_eq!(d[0].message, "this stack defines environments: pass --env");
    assert_eq!(d[0].help.as_deref(), Some("one of: dev, prod"));

    let typo = src.replace("      cidr: 10.0.0.0/17", "      cidrr: 10.0.0.0/17");
    let d = load_with(&typo, LoadOptions { env: Some("prod".into()), ..Default::default() }).unwrap_err();
    assert_eq!(d[0].message, "variable `cidrr` is not declared in the top-level `variables`");
    assert_eq!(d[0].help.as_deref(), Some("did you mean `cidr`?"));
    assert_eq!((d[0].line, d[0].col), (10, 7));
}

#[test]
fn unknown_fields_are_located_and_suggested() {
    let d = one_error(&BASE.replace("      cidr_block: ${var.cidr}", "      cidr_blok: ${var.cidr}"));
    assert_eq!(d.message, "unknown field `cidr_blok` in `resources.vpc.properties`");
    assert_eq!(d.help.as_deref(), Some("did you mean `cidr_block`?"));
    assert_eq!((d.line, d.col), (10, 7));

    let d = one_error(&BASE.replace("    type: ec2.vpc\n", "    type: ec2.vpc\n    dependson: [x]\n"));
    assert_eq!(d.message, "unknown field `dependson` in `resources.vpc`");
    assert_eq!(d.help.as_deref(), Some("did you mean `depends_on`?"));
    assert_eq!((d.line, d.col), (9, 5));

    let d = one_error(&BASE.replace("region: eu-west-1\n", "regoin: eu-west-1\n"));
    assert_eq!(d.message, "unknown field `regoin` in the stack");
    assert_eq!((d.line, d.col, d.help.as_deref()), (2, 1, Some("did you mean `region`?")));
}

#[test]
fn references_are_checked() {
    let d = one_error(&BASE.replace("${resources.vpc.id}", "${resources.vpc.arn}"));
    assert_eq!(d.message, "`resources.subnet.properties.vpc_id`: resource `vpc` (ec2.vpc) has no output `arn`");
    let d = one_error(&BASE.replace("${var.cidr}", "${var.cird}"));
    assert_eq!(d.message, "`resources.vpc.properties.cidr_block` references undefined variable `cird`");
    assert_eq!(d.help.as_deref(), Some("did you mean `cidr`?"));
    let d = one_error(&BASE.replace("${var.cidr}", "${cidr}"));
    assert!(d.message.contains("is not a reference"), "{d}");
    let d = one_error(&BASE.replace("${region}a", "${region"));
    assert!(d.message.contains("unterminated"), "{d}");
}

#[test]
fn cycles_print_their_path() {
    let d = one_error(&BASE.replace("    type: ec2.vpc\n", "    type: ec2.vpc\n    depends_on: [subnet]\n"));
    assert_eq!(d.message, "dependency cycle: subnet -> vpc -> subnet");
    let d = one_error(&BASE.replace("    type: ec2.vpc\n", "    type: ec2.vpc\n    depends_on: [vpc]\n"));
    assert_eq!(d.message, "dependency cycle: vpc -> vpc");
}

#[test]
fn duplicate_physical_names_and_reserved_tags_are_rejected() {
    let src = BASE
        .replace("  subnet:\n    type: ec2.subnet\n", "  subnet:\n    type: ec2.subnet\n    name: demo-default-vpc\n");
    // Different kinds may share a name.
    assert!(load(&src).is_ok());
    let src = format!(
        "{BASE}  vpc2:\n    type: ec2.vpc\n    name: demo-default-vpc\n    properties:\n      cidr_block: 10.1.0.0/16\n"
    );
    let d = one_error(&src);
    assert!(d.message.contains("have the same physical name `demo-default-vpc`"), "{d}");
    let d = one_error(&BASE.replace("    type: ec2.vpc\n", "    type: ec2.vpc\n    tags:\n      converge:stack: x\n"));
    assert!(d.message.contains("reserved"), "{d}");
}

#[test]
fn secrets_mark_their_property_sensitive_and_are_required_for_plans() {
    let src = BASE.replace("      cidr_block: 10.0.1.0/24", "      cidr_block: ${env.CONVERGE_UNIT_TEST_UNSET_VAR}");
    // validate: not required.
    let d = load(&src).unwrap_err();
    assert!(d[0].message.contains("invalid value (sensitive, not shown)"), "{d:?}");
    // plan/apply: required.
    let d = load_with(&src, LoadOptions { require_secrets: true, ..Default::default() }).unwrap_err();
    assert!(d[0].message.contains("needs environment variable `CONVERGE_UNIT_TEST_UNSET_VAR`"), "{d:?}");
    let src = BASE.replace("availability_zone: ${region}a", "availability_zone: ${env.HOME}");
    let s = load(&src).unwrap();
    assert_eq!(s.resources["subnet"].sensitive.iter().collect::<Vec<_>>(), ["availability_zone"]);
}

#[test]
fn all_problems_are_reported_in_file_order() {
    let src = BASE
        .replace("${resources.vpc.id}", "${resources.vcp.id}")
        .replace("      cidr_block: ${var.cidr}", "      cidr_block: ${var.cidr}\n      bogus: 1");
    let d = load(&src).unwrap_err();
    let lines: Vec<usize> = d.iter().map(|d| d.line).collect();
    assert_eq!(lines, [11, 15], "{d:#?}");
}

#[test]
fn templates_are_checked_offline() {
    // Paths are relative to the stack file; `s.yaml` has no directory, so
    // here they are relative to the crate root.
    let with = |content: &str| {
        format!(
            "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n  rb:\n    type: s3.object\n    properties:\n      bucket: b\n      key: gitlab.rb\n      content:\n{content}"
        )
    };
    let d = one_error(&with("        $template: templates/nope.j2\n"));
    assert!(d.message.starts_with("cannot read template `templates/nope.j2`"), "{d}");
    assert_eq!((d.line, d.col), (14, 20));

    // gitlab.rb.j2 needs many variables: the first undefined one is named.
    let d = one_error(&with("        $template: templates/gitlab.rb.j2\n        vars:\n          stack: demo\n"));
    assert!(d.message.starts_with("template `templates/gitlab.rb.j2`, line "), "{d}");
    assert!(d.message.contains("undefined"), "{d}");

    // A misspelt `vars`: reported, and so is what the template then lacks.
    let d = load(&with("        $template: templates/gitlab.rb.j2\n        var: {}\n")).unwrap_err();
    let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert!(messages.contains(&"unknown field `var` next to `$template`"), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("`stack` is undefined")), "{messages:?}");
}

#[test]
fn command_line_variables_override_and_are_checked() {
    let opts = |vars: &[(&str, &str)]| LoadOptions {
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    let s = load_with(BASE, opts(&[("cidr", "10.0.0.0/18"), ("days", "9")])).unwrap();
    assert_eq!(s.resources["vpc"].props.placeholder()["cidr_block"], json!("10.0.0.0/18"));
    let d = load_with(BASE, opts(&[("cidrr", "x")])).unwrap_err();
    assert_eq!(d[0].message, "--var cidrr: no such variable in the stack");
    assert_eq!(d[0].help.as_deref(), Some("did you mean `cidr`?"));
    assert_eq!(super::scalar("9"), json!(9));
    assert_eq!(super::scalar("true"), json!(true));
    assert_eq!(super::scalar("arn:aws:acm:x"), json!("arn:aws:acm:x"));
}

#[test]
fn yaml_merge_keys_apply() {
    let src = "stack: demo\nregion: eu-west-1\nresources:\n  a:\n    type: ec2.vpc\n    properties: &base\n      cidr_block: 10.0.0.0/16\n      enable_dns_support: false\n  b:\n    type: ec2.vpc\n    properties:\n      <<: *base\n      cidr_block: 10.1.0.0/16\n";
    let s = load(src).unwrap();
    assert_eq!(s.resources["b"].props.placeholder(), json!({"cidr_block": "10.1.0.0/16", "enable_dns_support": false}));
}

#[test]
fn region_names_are_checked_offline() {
    for ok in [
        "eu-west-1",
        "us-east-1",
        "us-gov-west-1",
        "ap-southeast-5",
        "cn-north-1",
        "us-isob-east-1",
        "il-central-1",
        "mx-central-1",
    ] {
        assert!(crate::limits::valid_region(ok), "{ok}");
    }
    for bad in
        ["eu-wset-1", "eu-west", "euwest1", "EU-WEST-1", "eu-west-1a", "xx-west-1", "us-gov-1", "", "eu-west-123"]
    {
        assert!(!crate::limits::valid_region(bad), "{bad}");
    }
}

#[test]
fn subnets_overlap_only_within_one_vpc() {
    let subnet = |name: &str, vpc: &str, cidr: &str| {
        format!(
            "  {name}:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${{resources.{vpc}.id}}\n      cidr_block: {cidr}\n      availability_zone: eu-west-1a\n"
        )
    };
    let other_vpc = "  vpc2:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n";
    // The same block in another VPC is fine.
    let src = format!("{BASE}{other_vpc}{}", subnet("b", "vpc2", "10.0.1.0/24"));
    assert!(load(&src).is_ok());
    // Inside the first subnet's block, in its VPC, it is not.
    let d = one_error(&format!("{src}{}", subnet("c", "vpc", "10.0.1.128/25")));
    assert!(d.message.contains("`10.0.1.0/24` overlaps `10.0.1.128/25` of subnet `c` in the same VPC"), "{d:?}");
}

#[test]
fn a_large_stack_resolves_the_same_on_several_threads_as_on_one() {
    // 1,000 resources: references, a secret, and (in the second stack) a
    // problem every 97 resources, of three sorts.
    let mut src = String::from(
        "stack: big\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n",
    );
    for i in 0..500 {
        src.push_str(&format!(
            "  sg{i}:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${{resources.vpc.id}}\n      description: ${{env.HOME}}\n      ingress:\n        - port: {}\n          protocol: tcp\n          cidr_blocks: [10.0.0.0/8]\n",
            i + 1
        ));
        src.push_str(&format!("  b{i}:\n    type: s3.bucket\n    name: big-bucket-{i}\n    depends_on: [sg{i}]\n"));
    }
    let bad: String = src
        .lines()
        .enumerate()
        .map(|(n, l)| match (n % 97, l) {
            (0..=40, l) if l.starts_with("      description:") => "      descriptio: typo".to_string(),
            (41..=70, l) if l.starts_with("    name: big-bucket-") => "    name: big-bucket-same".to_string(),
            (71..=96, l) if l.starts_with("      vpc_id:") => "      vpc_id: ${resources.nope.id}".to_string(),
            (_, l) => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    let on = |src: &str, threads: usize| super::load_str_on(Path::new("s.yaml"), src, &LoadOptions::default(), threads);
    let (one, several) = (on(&src, 1).unwrap(), on(&src, 3).unwrap());
    assert_eq!(one.resources.len(), 1001);
    assert_eq!(one.secret_refs, several.secret_refs);
    assert_eq!(one.secret_refs.iter().collect::<Vec<_>>(), ["HOME"]);
    for (a, b) in one.resources.values().zip(several.resources.values()) {
        assert_eq!(
            (&a.name, &a.physical_name, &a.props, &a.deps, &a.tags, &a.sensitive, a.timeout, a.protect),
            (&b.name, &b.physical_name, &b.props, &b.deps, &b.tags, &b.sensitive, b.timeout, b.protect)
        );
    }
    let problems = |threads: usize| match on(&bad, threads) {
        Err(SpecError::Invalid { diagnostics, .. }) => diagnostics,
        other => panic!("{other:?}"),
    };
    let one = problems(1);
    assert!(one.len() > 30, "{}", one.len());
    for needle in ["unknown field `descriptio`", "same physical name", "unknown resource `nope`"] {
        assert!(one.iter().any(|d| d.message.contains(needle)), "{needle}: {one:#?}");
    }
    assert_eq!(one, problems(3));
}

#[test]
fn properties_without_references_are_canonicalized_once() {
    let s = load(BASE).unwrap();
    let (vpc, subnet) = (&s.resources["vpc"], &s.resources["subnet"]);
    // The VPC references nothing: its canonical properties are kept, and
    // they are what the kind makes of its properties.
    let kept = vpc.canonical.as_deref().expect("kept");
    assert_eq!(*kept, vpc.kind.canonicalize(vpc.props.placeholder()).unwrap());
    assert_eq!(kept["cidr_block"], json!("10.0.0.0/16"));
    // The subnet names the VPC's id: planned against live outputs.
    assert!(subnet.canonical.is_none());
}

#[test]
fn outputs_resolve_after_apply_and_are_checked_like_properties() {
    let src = format!(
        "{BASE}outputs:\n  vpc_id:\n    value: ${{resources.vpc.id}}\n    description: the VPC\n  where:\n    value: \"${{region}}/${{resources.subnet.availability_zone}}\"\n"
    );
    let s = load(&src).unwrap();
    let known = |n: &str, a: &str| match (n, a) {
        ("vpc", "id") => Some(json!("vpc-1")),
        _ => None,
    };
    assert_eq!(s.outputs["vpc_id"].resolve(&known), Some(json!("vpc-1")));
    assert_eq!(s.outputs["vpc_id"].description.as_deref(), Some("the VPC"));
    // Not known while a resource it uses is not applied.
    assert_eq!(s.outputs["where"].resolve(&known), None);
    let e = one_error(&format!("{BASE}outputs:\n  x:\n    value: ${{resources.vpc.nope}}\n"));
    assert!(e.message.contains("has no output `nope`") && e.line == 19, "{e}");
    let e = one_error(&format!("{BASE}outputs:\n  bad name:\n    value: x\n"));
    assert!(e.message.contains("output name `bad name`"), "{e}");
    let e = one_error(&format!("{BASE}outputs:\n  x:\n    value: ${{env.HOME}}\n"));
    assert!(e.message.contains("mark it `sensitive: true`"), "{e}");
    assert!(load(&format!("{BASE}outputs:\n  x:\n    value: ${{env.HOME}}\n    sensitive: true\n")).is_ok());
}

#[test]
fn another_stacks_outputs_are_unknown_offline_and_errors_where_used() {
    let src = BASE.replace("${resources.vpc.id}", "${stack.network.outputs.vpc_id}");
    let s = load(&src).unwrap();
    assert_eq!(s.inputs.len(), 1);
    assert!(crate::value::is_unknown(&s.inputs[&("network".into(), "vpc_id".into())]));
    // Read: the value is a literal, and no edge is added.
    let values = BTreeMap::from([(("network".to_string(), "vpc_id".to_string()), Ok(json!("vpc-9")))]);
    let s = load_with(&src, LoadOptions { stack_outputs: Some(values), ..Default::default() }).unwrap();
    assert_eq!(s.resources["subnet"].props.placeholder()["vpc_id"], json!("vpc-9"));
    assert!(s.resources["subnet"].deps.is_empty());
    let values = BTreeMap::from([(("network".to_string(), "vpc_id".to_string()), Err("not there".to_string()))]);
    let d = load_with(&src, LoadOptions { stack_outputs: Some(values), ..Default::default() }).unwrap_err();
    assert!(d[0].message.contains("not there") && d[0].line == 14, "{:?}", d);
    // Its own outputs, and names, are refused.
    let e = one_error(&BASE.replace("${resources.vpc.id}", "${stack.demo.outputs.vpc_id}"));
    assert!(e.message.contains("this stack's own output"), "{e}");
    let d = load(&format!("{BASE}    name: ${{stack.network.outputs.name}}\n")).unwrap_err();
    assert!(d[0].message.contains("a name may not use another stack's output"), "{d:?}");
}

#[test]
fn renamed_from_names_a_key_that_is_gone_once() {
    let renamed =
        BASE.replace("  subnet:\n    type: ec2.subnet\n", "  net:\n    type: ec2.subnet\n    renamed_from: subnet\n");
    let s = load(&renamed).unwrap();
    assert_eq!(s.resources["net"].renamed_from.as_deref(), Some("subnet"));
    let e = one_error(
        &BASE.replace("  subnet:\n    type: ec2.subnet\n", "  subnet:\n    type: ec2.subnet\n    renamed_from: vpc\n"),
    );
    assert!(e.message.contains("`vpc` is still a resource of the spec"), "{e}");
    let twice = format!(
        "{renamed}  net2:\n    type: ec2.subnet\n    renamed_from: subnet\n    properties:\n      vpc_id: ${{resources.vpc.id}}\n      cidr_block: 10.0.2.0/24\n      availability_zone: eu-west-1b\n"
    );
    let e = one_error(&twice);
    assert!(e.message.contains("are both `renamed_from: subnet`"), "{e}");
    // A name-bound kind keeps its default name only with `name:`.
    let bucket = format!("{BASE}  logs:\n    type: s3.bucket\n    renamed_from: old_logs\n");
    let e = one_error(&bucket);
    assert!(e.message.contains("from `demo-default-old-logs` to `demo-default-logs`"), "{e}");
    assert_eq!(e.help.as_deref(), Some("keep its name: add `name: ${stack}-${environment}-old-logs`"));
    assert!(load(&format!("{bucket}    name: demo-default-old-logs\n")).is_ok());
}

#[test]
fn lookups_are_checked_offline_and_unknown_until_made() {
    let src = BASE.replace("  days: 7\n", "  days: 7\n  v: \"1.2\"\n").replace(
        "resources:\n",
        "lookups:\n  ami:\n    type: ec2.ami\n    owners: [self]\n    name: app-${var.v}-*\nresources:\n",
    );
    let with_ref = format!(
        "{src}  lt:\n    type: ec2.launch_template\n    properties:\n      image_id: ${{lookups.ami.id}}\n      instance_type: m7i.large\n"
    );
    let s = load(&with_ref).unwrap();
    assert_eq!(s.lookups["ami"].name.as_deref(), Some("app-1.2-*"));
    assert!(crate::value::is_unknown(&s.resources["lt"].props.placeholder()["image_id"]));
    let found = BTreeMap::from([("ami".to_string(), Ok(BTreeMap::from([("id".to_string(), json!("ami-1"))])))]);
    let s = load_with(&with_ref, LoadOptions { lookups: Some(found), ..Default::default() }).unwrap();
    assert_eq!(s.resources["lt"].props.placeholder()["image_id"], json!("ami-1"));
    let none = BTreeMap::from([("ami".to_string(), Err("no AMI named app-1.2-*".to_string()))]);
    let d = load_with(&with_ref, LoadOptions { lookups: Some(none), ..Default::default() }).unwrap_err();
    assert!(d.iter().any(|d| d.message.contains("lookup `ami` (ec2.ami): no AMI named app-1.2-*")), "{d:?}");
    let e = one_error(&with_ref.replace("${lookups.ami.id}", "${lookups.ami.arn}"));
    assert!(e.message.contains("lookup `ami` (ec2.ami) has no `arn`"), "{e}");
    let d = load(&src.replace("    owners: [self]\n", "    tags: {a: b}\n")).unwrap_err();
    let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("an `ec2.ami` lookup needs `owners`; it takes `owners`, `name`"), "{messages:?}");
    assert!(messages[1].contains("an `ec2.ami` lookup takes no `tags`"), "{messages:?}");
}

#[test]
fn each_lookup_kind_takes_its_own_fields() {
    let with = |lookup: &str| BASE.replace("resources:\n", &format!("lookups:\n  it:\n{lookup}resources:\n"));
    let s = load(&with("    type: ssm.parameter\n    name: /aws/service/x\n")).unwrap();
    assert_eq!(s.lookups["it"].name.as_deref(), Some("/aws/service/x"));
    let s = load(&with("    type: acm.certificate\n    domain: a.example.com\n    most_recent: true\n")).unwrap();
    assert_eq!((s.lookups["it"].domain.as_deref(), s.lookups["it"].most_recent), (Some("a.example.com"), true));
    let s = load(&with("    type: route53.zone\n    name: example.com\n    private: true\n")).unwrap();
    assert!(s.lookups["it"].private);
    let e = one_error(&with("    type: acm.certificate\n    domain: a.example.com\n    name: a.example.com\n"));
    assert!(e.message.contains("an `acm.certificate` lookup takes no `name`"), "{e}");
    let e = one_error(&with("    type: ssm.parameter\n"));
    assert!(e.message.contains("an `ssm.parameter` lookup needs `name`"), "{e}");
    let e = one_error(&with("    type: route53.zone\n    name: example.com\n    most_recent: true\n"));
    assert!(e.message.contains("takes no `most_recent`"), "{e}");
    let e = one_error(&with("    type: ec2.subnets\n    tags: {a: b}\n    override: x\n"));
    assert!(e.message.contains("an `ec2.subnets` lookup has no `override`"), "{e}");
    // An override stands for the output the kind names.
    let s = load(&with("    type: ssm.parameter\n    name: /p\n    override: ami-9\n")).unwrap();
    assert_eq!(s.lookups["it"].kind.overrides, Some("value"));
}

/// `verify:`: the stack's alarms by resource name (to their AWS names),
/// variables allowed, every mistake refused offline.
#[test]
fn verify_names_the_stacks_alarms_and_a_window() {
    let alarm = "  errors:\n    type: cloudwatch.alarm\n    properties:\n      namespace: AWS/ApplicationELB\n      metric_name: HTTPCode_Target_5XX_Count\n      statistic: Sum\n      period: 60\n      evaluation_periods: 1\n      threshold: 1\n      comparison_operator: GreaterThanThreshold\n";
    let with = |verify: &str, vars: &str| {
        format!(
            "stack: demo\nregion: eu-west-1\nvariables:\n  cidr: 10.0.0.0/16\n{vars}verify:\n{verify}resources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: ${{var.cidr}}\n{alarm}"
        )
    };
    let s = load(&with("  alarms: [errors]\n  window: 90s\n", "")).unwrap();
    let v = s.verify.unwrap();
    assert_eq!(v.alarms, [("errors".to_string(), "demo-default-errors".to_string())]);
    assert_eq!(v.window, std::time::Duration::from_secs(90));
    // Variables, and the default window.
    let s = load(&with("  alarms: ${var.gate}\n", "  gate: [errors]\n")).unwrap();
    assert_eq!(s.verify.as_ref().unwrap().alarms.len(), 1);
    assert_eq!(s.verify.unwrap().window, crate::spec::DEFAULT_VERIFY_WINDOW);
    let s = load(&with("  alarms: ${var.gate}\n", "  gate: []\n")).unwrap();
    assert!(s.verify.unwrap().alarms.is_empty());

    let e = one_error(&with("  alarms: [eror]\n", ""));
    assert_eq!(e.message, "no cloudwatch.alarm resource `eror` in this stack");
    assert!(e.help.unwrap().contains("errors"));
    let e = one_error(&with("  alarms: [vpc]\n", ""));
    assert_eq!(e.message, "`vpc` is of kind ec2.vpc, not cloudwatch.alarm");
    let e = one_error(&with("  alarms: [errors]\n  window: soon\n", ""));
    assert_eq!(e.message, "`soon` is not a duration (e.g. 10m, 90s)");
    let e = one_error(&with("  alarms: [\"${resources.errors.name}\"]\n", ""));
    assert!(e.message.contains("may use variables only"), "{}", e.message);
}
