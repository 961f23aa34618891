use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::kinds::Live;
use crate::live::LiveState;
use crate::spec::{LoadOptions, Stack, load_str};

const STACK: &str = "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.0.1.0/24\n      availability_zone: eu-west-1a\n  bucket:\n    type: s3.bucket\n    name: demo-bucket-1\n";

fn stack(src: &str) -> Stack {
    load_str(Path::new("s.yaml"), src, &LoadOptions::default()).unwrap()
}

/// The live object matching `name` in `stack` exactly, with `id`.
fn live_of(s: &Stack, name: &str, id: &str, outputs: &[(&str, &str)]) -> Live {
    let r = &s.resources[name];
    let known: BTreeMap<String, BTreeMap<String, Value>> =
        [("vpc".to_string(), [("id".to_string(), json!("vpc-1"))].into())].into();
    Live {
        name: name.into(),
        id: id.into(),
        props: desired_props(r, &known).unwrap(),
        tags: r.tags.clone(),
        outputs: outputs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect(),
    }
}

fn state(objects: Vec<(&'static str, Live)>) -> LiveState {
    let mut st = LiveState::default();
    for (kind, l) in objects {
        st.objects.entry((kind, l.name.clone())).or_default().push(l.into());
    }
    st
}

fn converged(s: &Stack) -> LiveState {
    state(vec![
        ("ec2.vpc", live_of(s, "vpc", "vpc-1", &[("id", "vpc-1")])),
        ("ec2.subnet", live_of(s, "subnet", "subnet-1", &[("id", "subnet-1")])),
        ("s3.bucket", live_of(s, "bucket", "demo-bucket-1", &[("id", "demo-bucket-1")])),
    ])
}

fn actions(p: &Plan) -> Vec<(&str, Action)> {
    p.resources.iter().map(|r| (r.name.as_str(), r.action)).collect()
}

#[test]
fn empty_account_creates_in_dependency_order_with_unknown_references() {
    let s = stack(STACK);
    let p = plan(&s, &LiveState::default(), None).unwrap();
    assert_eq!(actions(&p), [("bucket", Action::Create), ("vpc", Action::Create), ("subnet", Action::Create)]);
    assert_eq!(p.summary(), Summary { add: 3, change: 0, replace: 0, destroy: 0 });
    let vpc_id = p.resources[2].changes.iter().find(|c| c.attr == "vpc_id").unwrap();
    assert!(crate::value::is_unknown(vpc_id.new.as_ref().unwrap()));
}

#[test]
fn matching_state_plans_nothing() {
    let s = stack(STACK);
    let p = plan(&s, &converged(&s), None).unwrap();
    assert!(!p.has_changes(), "{:#?}", p.resources);
}

#[test]
fn in_place_and_replacing_changes_are_told_apart() {
    let s = stack(STACK);
    let mut live = converged(&s);
    let vpc = Arc::make_mut(&mut live.objects.get_mut(&("ec2.vpc", "vpc".into())).unwrap()[0]);
    vpc.props["enable_dns_hostnames"] = json!(false);
    vpc.tags.insert("extra".into(), "x".into());
    let p = plan(&s, &live, None).unwrap();
    assert_eq!(actions(&p), [("bucket", Action::NoOp), ("vpc", Action::Update), ("subnet", Action::NoOp)]);
    let attrs: Vec<&str> = p.resources[1].changes.iter().map(|c| c.attr.as_str()).collect();
    assert_eq!(attrs, ["enable_dns_hostnames", "tags"]);

    // A new VPC CIDR replaces the VPC, and the subnet's vpc_id becomes
    // unknown, which replaces the subnet too.
    let s2 = stack(&STACK.replace("10.0.0.0/16", "10.1.0.0/16").replace("10.0.1.0/24", "10.1.1.0/24"));
    let p = plan(&s2, &converged(&s), None).unwrap();
    assert_eq!(actions(&p), [("bucket", Action::NoOp), ("vpc", Action::Replace), ("subnet", Action::Replace)]);
    let c = &p.resources[1].changes[0];
    assert_eq!((c.attr.as_str(), c.forces_replacement), ("cidr_block", true));
    assert_eq!((c.old.clone(), c.new.clone()), (Some(json!("10.0.0.0/16")), Some(json!("10.1.0.0/16"))));
}

#[test]
fn removed_and_duplicate_objects_are_deleted_users_first() {
    let s = stack(STACK);
    let without_subnet = STACK.replace(
        "  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.0.1.0/24\n      availability_zone: eu-west-1a\n",
        "",
    );
    let small = stack(&without_subnet);
    let mut live = converged(&s);
    // A second object tagged as `bucket`: sorted by id, the first is kept.
    let dup = live_of(&s, "bucket", "demo-bucket-2", &[]);
    live.objects.get_mut(&("s3.bucket", "bucket".into())).unwrap().push(dup.into());
    let p = plan(&small, &live, None).unwrap();
    let deletes: Vec<(&str, Option<&str>, Option<&str>)> = p
        .resources
        .iter()
        .filter(|r| r.action == Action::Delete)
        .map(|r| (r.name.as_str(), r.id.as_deref(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        deletes,
        [
            ("subnet", Some("subnet-1"), Some("no longer in the spec")),
            ("bucket", Some("demo-bucket-2"), Some("a duplicate: another object has this resource's tags")),
        ]
    );

    // Destroy: the subnet (which names the VPC's id) goes before the VPC.
    let d = destroy(&s, &converged(&s));
    let order: Vec<&str> = d.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, ["subnet", "vpc", "bucket"]);
}

#[test]
fn targets_limit_the_plan_to_them_and_their_dependencies() {
    let s = stack(STACK);
    let targets: BTreeSet<String> = ["subnet".to_string()].into();
    let p = plan(&s, &LiveState::default(), Some(&targets)).unwrap();
    assert_eq!(actions(&p), [("vpc", Action::Create), ("subnet", Action::Create)]);
}

#[test]
fn sensitive_values_are_masked_in_the_plan_itself() {
    let src = STACK.replace("availability_zone: eu-west-1a", "availability_zone: ${env.CONVERGE_PLAN_TEST_SECRET}");
    // SAFETY: tests in this module do not read this variable concurrently.
    unsafe { std::env::set_var("CONVERGE_PLAN_TEST_SECRET", "eu-west-1-secret-az") };
    let s = stack(&src);
    let p = plan(&s, &LiveState::default(), None).unwrap();
    let json = crate::plan::json::render(&p);
    let text = crate::plan::text::render(&p, &crate::printer::Printer::plain());
    let markdown = crate::plan::markdown::render(&p);
    let saved = crate::plan::saved::SavedPlan::new(&s, &LiveState::default(), &p, None, &[]).to_json();
    for out in [&json, &text, &markdown, &saved] {
        assert!(!out.contains("secret-az"), "{out}");
    }
    assert!(saved.contains("CONVERGE_PLAN_TEST_SECRET"), "the secret is recorded by name: {saved}");
    let line = text.lines().find(|l| l.trim_start().starts_with("+ availability_zone")).unwrap();
    assert!(line.ends_with("= (sensitive)"), "{text}");
}

#[test]
fn a_new_physical_name_replaces_the_object() {
    let s = stack(STACK);
    let mut live = converged(&s);
    let bucket = Arc::make_mut(&mut live.objects.get_mut(&("s3.bucket", "bucket".into())).unwrap()[0]);
    bucket.outputs.insert("name".into(), json!("demo-bucket-old"));
    let p = plan(&s, &live, None).unwrap();
    let b = p.resources.iter().find(|r| r.name == "bucket").unwrap();
    assert_eq!(b.action, Action::Replace);
    let c = &b.changes[0];
    assert_eq!((c.attr.as_str(), c.forces_replacement), ("name", true));
    assert_eq!((c.old.clone(), c.new.clone()), (Some(json!("demo-bucket-old")), Some(json!("demo-bucket-1"))));
}

#[test]
fn data_goes_only_with_both_opt_ins() {
    // Destroy: the bucket holds data, the VPC does not.
    let s = stack(STACK);
    let p = destroy(&s, &converged(&s));
    let protected: Vec<&str> = p.resources.iter().filter(|r| r.protected).map(|r| r.name.as_str()).collect();
    assert_eq!(protected, ["bucket"]);
    let names = |v: Vec<&ResourceChange>| v.into_iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    // Neither opt-in, or only one of them: refused.
    assert_eq!(names(refused(&p, &s, &[])), ["bucket"]);
    assert_eq!(names(refused(&p, &s, &["bucket".into()])), ["bucket"], "the spec still protects it");
    let open = stack(&STACK.replace("    name: demo-bucket-1\n", "    name: demo-bucket-1\n    protect: false\n"));
    let p = destroy(&open, &converged(&open));
    assert_eq!(names(refused(&p, &open, &[])), ["bucket"], "the command did not name it");
    assert_eq!(names(refused(&p, &open, &["vpc".into()])), ["bucket"]);
    // Both: allowed, by name or by `*`.
    assert!(refused(&p, &open, &["bucket".into()]).is_empty());
    assert!(refused(&p, &open, &["*".into()]).is_empty());
    // `protect: true` guards a kind that holds no data; removed from the
    // spec, an object keeps its kind's protection.
    let vpc = stack(&STACK.replace("    type: ec2.vpc\n", "    type: ec2.vpc\n    protect: true\n"));
    let p = destroy(&vpc, &converged(&vpc));
    assert_eq!(names(refused(&p, &vpc, &["*".into()])), ["vpc", "bucket"], "in delete order");
    let gone = stack(&STACK[..STACK.find("  bucket:").unwrap()]);
    let p = plan(&gone, &converged(&s), None).unwrap();
    assert_eq!(names(refused(&p, &gone, &["*".into()])), ["bucket"]);
}

const GROUPS: &str = "stack: demo\nregion: eu-west-1\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n  app_sg:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      description: app\n  db_sg:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${resources.vpc.id}\n      description: db\n      ingress:\n        - protocol: tcp\n          port: 5432\n          security_groups: [\"${resources.app_sg.id}\"]\n  subnet:\n    type: ec2.subnet\n    properties:\n      vpc_id: ${resources.vpc.id}\n      cidr_block: 10.0.1.0/24\n      availability_zone: eu-west-1a\n";

/// `GROUPS` applied: vpc-1, sg-app (named `demo-default-app-sg`, or
/// `app_name`), sg-db admitting sg-app, subnet-1.
fn groups_live(s: &Stack, app_name: &str) -> LiveState {
    let known: BTreeMap<String, BTreeMap<String, Value>> = [
        ("vpc".to_string(), [("id".to_string(), json!("vpc-1"))].into()),
        ("app_sg".to_string(), [("id".to_string(), json!("sg-app"))].into()),
    ]
    .into();
    let obj = |name: &str, id: &str, outputs: Vec<(&str, &str)>| Live {
        name: name.into(),
        id: id.into(),
        props: desired_props(&s.resources[name], &known).unwrap(),
        tags: s.resources[name].tags.clone(),
        outputs: outputs.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect(),
    };
    state(vec![
        ("ec2.vpc", obj("vpc", "vpc-1", vec![("id", "vpc-1")])),
        ("ec2.security_group", obj("app_sg", "sg-app", vec![("id", "sg-app"), ("name", app_name)])),
        ("ec2.security_group", obj("db_sg", "sg-db", vec![("id", "sg-db"), ("name", "demo-default-db-sg")])),
        ("ec2.subnet", obj("subnet", "subnet-1", vec![("id", "subnet-1")])),
    ])
}

#[test]
fn an_in_use_group_is_replaced_create_first_under_its_other_name() {
    use crate::apply::{OpKind, operations};
    let before = stack(GROUPS);
    let live = groups_live(&before, "demo-default-app-sg");
    assert!(!plan(&before, &live, None).unwrap().has_changes());

    let s = stack(&GROUPS.replace("description: app", "description: app nodes"));
    let p = plan(&s, &live, None).unwrap();
    let app = p.resources.iter().find(|r| r.name == "app_sg").unwrap();
    assert_eq!(app.action, Action::Replace);
    assert_eq!(app.replace_order, Some(ReplaceOrder::CreateFirstRenamed));
    assert_eq!(app.replacement_name.as_deref(), Some("demo-default-app-sg-2"));
    let name = &app.changes[0];
    assert_eq!((name.attr.as_str(), name.new.clone()), ("name", Some(json!("demo-default-app-sg-2"))));
    let text = crate::plan::text::render(&p, &crate::printer::Printer::plain());
    assert!(text.contains("+/- app_sg (ec2.security_group, sg-app) must be replaced (description forces"), "{text}");
    assert!(text.contains("create before destroy: the old object is deleted once what uses it"), "{text}");

    // Create the new group, move db_sg's rule to it, then delete the old.
    let g = operations(&s, &p);
    let op = |name: &str, kind: OpKind| g.ops.iter().position(|o| o.name == name && o.op == kind).unwrap();
    let (create, delete, db) =
        (op("app_sg", OpKind::Create), op("app_sg", OpKind::Delete), op("db_sg", OpKind::Update));
    assert_eq!(g.ops[create].physical_name.as_deref(), Some("demo-default-app-sg-2"));
    assert!(g.deps[db].contains(&create), "{:?}", g.deps);
    assert!(g.deps[delete].contains(&create) && g.deps[delete].contains(&db), "{:?}", g.deps);
    assert!(!g.deps[create].contains(&delete));

    // Applied, the group has the other name: no change. The next replace
    // takes the spec's name back.
    let renamed = groups_live(&s, "demo-default-app-sg-2");
    let p = plan(&s, &renamed, None).unwrap();
    assert!(!p.has_changes(), "{:#?}", p.resources);
    let again = stack(&GROUPS.replace("description: app", "description: app v3"));
    let p = plan(&again, &renamed, None).unwrap();
    let app = p.resources.iter().find(|r| r.name == "app_sg").unwrap();
    assert_eq!(app.replacement_name.as_deref(), Some("demo-default-app-sg"));

    // If the old half was left behind (its delete failed), the next plan
    // keeps the object that matches the spec and deletes the other.
    let mut both = groups_live(&s, "demo-default-app-sg-2");
    let mut old: Live = (*groups_live(&before, "demo-default-app-sg").objects
        [&("ec2.security_group", "app_sg".to_string())][0])
        .clone();
    old.id = "sg-0old".into();
    both.objects.get_mut(&("ec2.security_group", "app_sg".into())).unwrap().insert(0, old.into());
    let p = plan(&s, &both, None).unwrap();
    let acts: Vec<(&str, Action, Option<&str>)> = p
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp)
        .map(|r| (r.name.as_str(), r.action, r.id.as_deref()))
        .collect();
    assert_eq!(acts, [("app_sg", Action::Delete, Some("sg-0old"))]);

    // Left behind by a kill before db_sg moved: db_sg still names the old
    // group. It moves first; the old group's delete waits for it.
    let db = Arc::make_mut(&mut both.objects.get_mut(&("ec2.security_group", "db_sg".into())).unwrap()[0]);
    db.props = serde_json::from_str(&db.props.to_string().replace("sg-app", "sg-0old")).unwrap();
    let p = plan(&s, &both, None).unwrap();
    let g = operations(&s, &p);
    let op = |name: &str, kind: OpKind| g.ops.iter().position(|o| o.name == name && o.op == kind).unwrap();
    let (delete, db) = (op("app_sg", OpKind::Delete), op("db_sg", OpKind::Update));
    assert!(g.deps[delete].contains(&db), "{:?}", g.deps);
}

#[test]
fn a_subnet_in_the_same_vpc_is_replaced_delete_first_and_says_why() {
    use crate::apply::{OpKind, operations};
    let before = stack(GROUPS);
    let s = stack(&GROUPS.replace("10.0.1.0/24", "10.0.2.0/24"));
    let p = plan(&s, &groups_live(&before, "demo-default-app-sg"), None).unwrap();
    let subnet = p.resources.iter().find(|r| r.name == "subnet").unwrap();
    assert!(matches!(subnet.replace_order, Some(ReplaceOrder::DeleteFirst(why)) if why.contains("overlap")));
    let text = crate::plan::text::render(&p, &crate::printer::Printer::plain());
    assert!(text.contains("-/+ subnet (ec2.subnet, subnet-1)"), "{text}");
    assert!(text.contains("destroy before create: a subnet's CIDR block may not overlap"), "{text}");
    let g = operations(&s, &p);
    let op = |kind: OpKind| g.ops.iter().position(|o| o.name == "subnet" && o.op == kind).unwrap();
    assert!(g.deps[op(OpKind::Create)].contains(&op(OpKind::Delete)));

    // A new VPC: everything in it is created first, the old VPC goes last.
    let moved = stack(&GROUPS.replace("10.0.0.0/16", "10.1.0.0/16").replace("10.0.1.0/24", "10.1.1.0/24"));
    let p = plan(&moved, &groups_live(&before, "demo-default-app-sg"), None).unwrap();
    for r in p.resources.iter().filter(|r| r.action == Action::Replace) {
        assert_eq!(r.replace_order, Some(ReplaceOrder::CreateFirst), "{}", r.name);
        assert_eq!(r.replacement_name, None, "{}: a group in a new VPC keeps its name", r.name);
    }
    let g = operations(&moved, &p);
    let vpc_delete = g.ops.iter().position(|o| o.name == "vpc" && o.op == OpKind::Delete).unwrap();
    for (i, o) in g.ops.iter().enumerate() {
        if o.op == OpKind::Create {
            assert!(g.deps[vpc_delete].contains(&i), "old VPC waits for {}", o.name);
        }
    }
}

#[test]
fn a_key_renamed_without_renamed_from_frees_its_name_before_the_create() {
    use crate::apply::{OpKind, operations};
    let before = stack(STACK);
    let bucket = live_of(&before, "bucket", "demo-bucket-1", &[("id", "demo-bucket-1"), ("name", "demo-bucket-1")]);
    let live = state(vec![
        ("ec2.vpc", live_of(&before, "vpc", "vpc-1", &[("id", "vpc-1")])),
        ("ec2.subnet", live_of(&before, "subnet", "subnet-1", &[("id", "subnet-1")])),
        ("s3.bucket", bucket),
    ]);
    let renamed = stack(&STACK.replace("  bucket:\n", "  store:\n"));
    let p = plan(&renamed, &live, None).unwrap();
    let changed: Vec<_> = actions(&p).into_iter().filter(|(_, a)| *a != Action::NoOp).collect();
    assert_eq!(changed, [("store", Action::Create), ("bucket", Action::Delete)]);
    assert_eq!(p.resources[0].takes_name_of.as_deref(), Some("bucket"));
    let text = crate::plan::text::render(&p, &crate::printer::Printer::plain());
    assert!(text.contains("after `bucket` is destroyed, whose object has the name it needs; to keep that object instead, say `renamed_from: bucket` on `store`"), "{text}");
    let json = crate::plan::json::render(&p);
    assert!(json.contains(r#""takes_name_of": "bucket""#), "{json}");

    // The create waits for the delete: never two objects asked for one name.
    let g = operations(&renamed, &p);
    let op = |name: &str, kind: OpKind| g.ops.iter().position(|o| o.name == name && o.op == kind).unwrap();
    assert!(g.deps[op("store", OpKind::Create)].contains(&op("bucket", OpKind::Delete)), "{:?}", g.deps);

    // Another name: unrelated, in parallel.
    let other = stack(&STACK.replace(
        "  bucket:\n    type: s3.bucket\n    name: demo-bucket-1",
        "  store:\n    type: s3.bucket\n    name: demo-bucket-2",
    ));
    let p = plan(&other, &live, None).unwrap();
    assert_eq!(p.resources[0].takes_name_of, None);
    let g = operations(&other, &p);
    assert!(g.deps.iter().all(BTreeSet::is_empty), "{:?}", g.deps);

    // With `renamed_from`, the object moves: nothing to free.
    let moved = stack(
        &STACK.replace("  bucket:\n    type: s3.bucket\n", "  store:\n    type: s3.bucket\n    renamed_from: bucket\n"),
    );
    let p = plan(&moved, &live, None).unwrap();
    assert!(p.resources.iter().all(|r| r.takes_name_of.is_none()), "{:#?}", p.resources);
}

/// A plan with every action, for the renderers' snapshots: the VPC updated
/// in place, the subnet replaced, a rendered file changed by one line, a
/// bucket kept and a security group that left the spec.
fn review_plan() -> Plan {
    let src = format!(
        "{STACK}  config:\n    type: s3.object\n    properties:\n      bucket: demo-bucket-1\n      key: gitlab.rb\n      content: \"external_url 'https://gitlab.example.com'\\nnginx['listen_https'] = false\\nnginx['listen_port'] = 80\\ngitlab_rails['db_host'] = 'db.internal'\\n\"\n"
    );
    let before = stack(&src);
    let after = stack(
        &src.replace("10.0.1.0/24", "10.0.2.0/24")
            .replace("listen_port'] = 80", "listen_port'] = 8080")
            .replace("availability_zone: eu-west-1a", "availability_zone: eu-west-1a\n    tags:\n      team: platform"),
    );
    let mut live = converged(&before);
    live.objects.insert(
        ("s3.object", "config".into()),
        vec![live_of(&before, "config", "demo-bucket-1/gitlab.rb", &[]).into()],
    );
    let vpc = Arc::make_mut(&mut live.objects.get_mut(&("ec2.vpc", "vpc".into())).unwrap()[0]);
    vpc.props["enable_dns_hostnames"] = json!(false);
    let mut old_sg = live_of(&before, "vpc", "sg-0old", &[]);
    old_sg.name = "old_sg".into();
    old_sg.props = json!({"vpc_id": "vpc-1", "description": "x", "ingress": [], "egress": []});
    live.objects.insert(("ec2.security_group", "old_sg".into()), vec![old_sg.into()]);
    plan(&after, &live, None).unwrap()
}

#[test]
fn plans_render_for_review_as_text_markdown_and_json() {
    let p = review_plan();
    let text = crate::plan::text::render(&p, &crate::printer::Printer::plain());
    insta::assert_snapshot!("review_text", text);
    let md = crate::plan::markdown::render(&p);
    insta::assert_snapshot!("review_markdown", md);
    // The one changed line of the file is a line diff, not two blobs.
    assert!(md.contains("-           nginx['listen_port'] = 80\n+           nginx['listen_port'] = 8080\n"), "{md}");
    assert!(
        text.contains("          - nginx['listen_port'] = 80\n          + nginx['listen_port'] = 8080\n"),
        "{text}"
    );
    // Destructive actions first.
    let first_detail = md.find("<details>").unwrap();
    assert!(md.find("<code>- old_sg").unwrap() < first_detail, "{md}");
    assert!(md[first_detail..].starts_with("<details><summary><code>-/+ subnet"), "{md}");
    let doc: crate::plan::json::PlanDoc = serde_json::from_str(&crate::plan::json::render(&p)).unwrap();
    let subnet = doc.resources.iter().find(|r| r.name == "subnet").unwrap();
    assert_eq!(subnet.replaced_because, ["cidr_block"]);
    assert_eq!(doc.summary, crate::plan::json::SummaryDoc { add: 0, change: 2, replace: 1, destroy: 1 });
    // A replace is one create and one delete for GitLab's widget.
    assert_eq!(crate::plan::json::gitlab_report(&p), r#"{"create":1,"update":2,"delete":2}"#);
}

#[test]
fn drift_is_told_from_pending_missing_and_unmanaged() {
    use crate::plan::drift::{Class, classify};
    use crate::state::applied::{Applied, AppliedResource};
    let s = stack(STACK);
    let mut live = converged(&s);
    let known = known_outputs(&s, &live);
    // What converge applied, on each object: the digest of the spec now.
    for ((_, name), objects) in live.objects.iter_mut() {
        let d = applied_digest(&s.resources[name], &known).unwrap();
        Arc::make_mut(&mut objects[0]).tags.insert(crate::digest::TAG_APPLIED.into(), d);
    }
    let record = Applied {
        resources: [(
            "bucket".to_string(),
            AppliedResource { kind: "s3.bucket".into(), id: "demo-bucket-1".into(), digest: String::new() },
        )]
        .into(),
        ..Applied::default()
    };
    let p = plan(&s, &live, None).unwrap();
    assert!(classify(&s, &p, &known, Some(&record)).findings.is_empty());

    // By hand: the VPC's DNS hostnames off. Gone: the bucket. Extra: a
    // group tagged for the stack that no apply made.
    Arc::make_mut(&mut live.objects.get_mut(&("ec2.vpc", "vpc".into())).unwrap()[0]).props["enable_dns_hostnames"] =
        json!(false);
    live.objects.remove(&("s3.bucket", "bucket".into()));
    let mut stray = live_of(&s, "vpc", "sg-9", &[]);
    stray.name = "stray".into();
    stray.tags.remove(crate::digest::TAG_APPLIED);
    live.objects.insert(("ec2.security_group", "stray".into()), vec![stray.into()]);
    // In the spec: a new subnet CIDR (pending).
    let edited = stack(&STACK.replace("10.0.1.0/24", "10.0.9.0/24"));
    let p = plan(&edited, &live, None).unwrap();
    let classes = |record: Option<&Applied>| -> Vec<(String, Class)> {
        classify(&edited, &p, &known_outputs(&edited, &live), record)
            .findings
            .into_iter()
            .map(|f| (f.name, f.class))
            .collect()
    };
    assert_eq!(
        classes(Some(&record)),
        [
            ("vpc".to_string(), Class::Drift),
            ("subnet".to_string(), Class::Pending),
            ("bucket".to_string(), Class::Missing),
            ("stray".to_string(), Class::Unmanaged),
        ]
    );
    // Without the record, a missing object cannot be told from a new one.
    assert_eq!(classes(None)[2], ("bucket".to_string(), Class::Pending));
}

/// Security groups `{prefix}0` to `{prefix}{n-1}` in the VPC of resource
/// `vpc`, each allowing the one before it (the first, 10.0.0.0/8).
fn group_chain(prefix: &str, vpc: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            let from = if i == 0 {
                "cidr_blocks: [10.0.0.0/8]".to_string()
            } else {
                format!("security_groups: [\"${{resources.{prefix}{}.id}}\"]", i - 1)
            };
            format!(
                "  {prefix}{i}:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${{resources.{vpc}.id}}\n      description: group {i}\n      ingress:\n        - port: 443\n          protocol: tcp\n          {from}\n"
            )
        })
        .collect()
}

/// Every resource's `id` output: `id-NAME`.
fn ids_of(s: &Stack) -> Known {
    s.resources.keys().map(|n| (n.clone(), [("id".to_string(), json!(format!("id-{n}")))].into())).collect()
}

/// The delete order's pairs, found through the id and name index, are
/// exactly the pairs [`deleted_before`] finds comparing every two objects;
/// and a destroy deletes every group before the group it names.
#[test]
fn delete_edges_are_the_pairwise_relation() {
    let src = format!("{STACK}{}", group_chain("sg", "vpc", 12));
    // sg3 also waits for the bucket by the spec alone.
    let src = src.replace(
        "  sg3:\n    type: ec2.security_group\n",
        "  sg3:\n    type: ec2.security_group\n    depends_on: [bucket]\n",
    );
    let s = stack(&src);
    let ids = ids_of(&s);
    let lives: Vec<(&'static str, Live)> = s
        .resources
        .values()
        .map(|r| {
            let l = Live {
                name: r.name.clone(),
                id: format!("id-{}", r.name),
                props: desired_props(r, &ids).unwrap(),
                tags: r.tags.clone(),
                outputs: ids[&r.name].clone(),
            };
            (r.kind.type_name(), l)
        })
        .collect();
    let objects: Vec<((&str, &dyn DynKind), &Live)> =
        lives.iter().map(|(k, l)| ((l.name.as_str(), crate::kinds::lookup(k).unwrap()), l)).collect();
    let mut pairwise = BTreeSet::new();
    for (j, (a, al)) in objects.iter().enumerate() {
        for (i, (b, bl)) in objects.iter().enumerate() {
            if i != j && deleted_before(&s, *a, al, *b, bl) {
                pairwise.insert((j, i));
            }
        }
    }
    assert!(pairwise.len() > 20, "{pairwise:?}");
    assert_eq!(delete_edges(&s, &objects), pairwise);

    let d = destroy(&s, &state(lives.clone()));
    let at = |n: &str| d.resources.iter().position(|r| r.name == n).unwrap();
    for i in 1..12 {
        assert!(at(&format!("sg{i}")) < at(&format!("sg{}", i - 1)), "sg{i} names sg{}", i - 1);
        assert!(at(&format!("sg{i}")) < at("vpc"));
    }
    assert!(at("sg3") < at("bucket") && at("subnet") < at("vpc"));
}

#[test]
fn a_plan_on_several_threads_is_the_plan_on_one() {
    // 8 VPCs, each with a chain of 20 groups (each allowing the previous
    // one) and 20 buckets: levels of 8 to 168 resources.
    let mut src = String::from("stack: demo\nregion: eu-west-1\nresources:\n");
    for b in 0..8 {
        src.push_str(&format!("  vpc{b}:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.{b}.0.0/16\n"));
        src.push_str(&group_chain(&format!("sg{b}_"), &format!("vpc{b}"), 20));
        for i in 0..20 {
            src.push_str(&format!("  bucket{b}_{i}:\n    type: s3.bucket\n    name: demo-{b}-{i}\n"));
        }
    }
    let s = stack(&src);
    let known = ids_of(&s);
    let mut live = LiveState::default();
    for (i, (name, r)) in s.resources.iter().enumerate() {
        // Some missing (created), some with a new description (replaced:
        // their dependents' references become unknown), some retagged
        // (updated).
        if i % 29 == 3 {
            continue;
        }
        let mut props = desired_props(r, &known).unwrap();
        if i % 13 == 5 && r.kind.type_name() == "ec2.security_group" {
            props["description"] = json!("changed by hand");
        }
        let mut tags = r.tags.clone();
        if i % 11 == 2 {
            tags.insert("team".into(), "other".into());
        }
        let l = Live { name: name.clone(), id: format!("id-{name}"), props, tags, outputs: known[name].clone() };
        live.objects.entry((r.kind.type_name(), name.clone())).or_default().push(l.into());
    }
    let one = plan_threaded(&s, &live, None, usize::MAX).unwrap();
    let several = plan_threaded(&s, &live, None, 1).unwrap();
    let counts = one.summary();
    assert!(counts.add > 5 && counts.replace > 5 && counts.change > 5, "{counts:?}");
    assert_eq!(format!("{one:?}"), format!("{several:?}"));
    // In the graph's order (dependencies first, ties by name), as a walk
    // in that order lists them.
    let names: Vec<&str> = several.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, crate::graph::Graph::new(s.resources.values().map(|r| (r.name.as_str(), &r.deps))).order());
    // Targets: the same.
    let targets: BTreeSet<String> = ["sg3_7".to_string(), "bucket5_1".to_string()].into();
    let one = plan_threaded(&s, &live, Some(&targets), usize::MAX).unwrap();
    assert_eq!(format!("{one:?}"), format!("{:?}", plan_threaded(&s, &live, Some(&targets), 1).unwrap()));
    // Two VPCs whose id is a number: the first error in the graph's order
    // is the one reported, as one thread walking that order would.
    let vpcs: Vec<usize> = (0..8).filter(|b| live.objects.contains_key(&("ec2.vpc", format!("vpc{b}")))).collect();
    for b in [vpcs[1], vpcs[vpcs.len() - 1]] {
        let l = &mut live.objects.get_mut(&("ec2.vpc", format!("vpc{b}"))).unwrap()[0];
        Arc::make_mut(l).outputs.insert("id".into(), json!(7));
    }
    let e1 = plan_threaded(&s, &live, None, usize::MAX).unwrap_err();
    let e2 = plan_threaded(&s, &live, None, 1).unwrap_err();
    assert_eq!(e1.to_string(), e2.to_string());
    assert!(e1.to_string().contains(&format!("sg{}_0", vpcs[1])), "{e1}");
}

#[test]
fn attributes_compare_by_name_whatever_the_live_order() {
    let s = stack(STACK);
    let r = &s.resources["vpc"];
    let mut l = live_of(&s, "vpc", "vpc-1", &[("id", "vpc-1")]);
    let desired = l.props.clone();
    let attrs: Vec<String> = desired.as_object().unwrap().keys().cloned().collect();
    assert!(attrs.len() >= 3, "{attrs:?}");
    // Live keys reversed, the second attribute unobserved, the last changed.
    let mut reversed = serde_json::Map::new();
    for k in attrs.iter().rev() {
        if *k != attrs[1] {
            reversed.insert(k.clone(), desired[k].clone());
        }
    }
    let last = attrs.last().unwrap();
    reversed[last] = json!("changed by hand");
    l.props = Value::Object(reversed);
    let changes: Vec<String> = diff_attrs(r.kind, r, &desired, &l).into_iter().map(|c| c.attr).collect();
    assert_eq!(changes, std::slice::from_ref(last));
}
