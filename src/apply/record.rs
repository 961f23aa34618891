//! The record of what a run left ([`crate::state::applied`]), from its
//! plan and report.

use std::collections::BTreeMap;

use super::{OpKind, Outcome, Report};
use crate::plan::{Action, Plan};
use crate::spec::Stack;
use crate::state::applied::{Applied, AppliedResource, VERSION};

/// The record after `report` ran `plan`: resources created, updated or
/// kept are recorded with their digests; deleted ones no longer in the
/// spec (every deleted one, for `destroy`) are dropped. What failed or did
/// not run keeps its old entry.
pub fn after(
    previous: Option<Applied>,
    stack: &Stack,
    plan: &Plan,
    report: Option<&Report>,
    kept: &BTreeMap<String, String>,
    destroy: bool,
) -> Applied {
    let mut a = previous.unwrap_or_default();
    a.format_version = VERSION;
    a.stack = stack.name.clone();
    a.env = stack.env.clone();
    if !destroy {
        a.vars = stack.overrides.clone();
    }
    a.updated_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    for rc in plan.resources.iter().filter(|rc| rc.action == Action::NoOp) {
        if let (Some(l), Some(d)) = (&rc.live, kept.get(&rc.name)) {
            a.resources
                .insert(rc.name.clone(), AppliedResource { kind: rc.kind.into(), id: l.id.clone(), digest: d.clone() });
        }
    }
    for (op, outcome) in report.iter().flat_map(|r| &r.results) {
        let Outcome::Done { id, applied, .. } = outcome else { continue };
        match op.op {
            OpKind::Create | OpKind::Update => {
                a.resources.insert(
                    op.name.clone(),
                    AppliedResource {
                        kind: op.kind.type_name().into(),
                        id: id.clone(),
                        digest: applied.clone().unwrap_or_default(),
                    },
                );
            }
            // A replace's old half, or a duplicate of a resource still in
            // the spec: the resource's entry stays.
            OpKind::Delete if op.replace || (!destroy && stack.resources.contains_key(&op.name)) => {}
            OpKind::Delete => {
                if a.resources.get(&op.name).is_some_and(|r| r.kind == op.kind.type_name()) {
                    a.resources.remove(&op.name);
                }
            }
        }
    }
    // A resource moved to a new key (`renamed_from`) is recorded under it
    // once applied: the old key's entry goes.
    for r in stack.resources.values() {
        if let Some(old) = &r.renamed_from
            && a.resources.contains_key(&r.name)
            && a.resources.get(old).is_some_and(|e| e.kind == r.kind.type_name())
        {
            a.resources.remove(old);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::apply::Op;
    use crate::kinds::Live;
    use crate::plan::ResourceChange;

    fn stack() -> Stack {
        let src = "stack: s\nregion: eu-west-1\nresources:\n  kept:\n    type: s3.bucket\n  made:\n    type: s3.bucket\n  broken:\n    type: s3.bucket\n";
        crate::spec::load_str(std::path::Path::new("s.yaml"), src, &Default::default()).unwrap()
    }

    fn op(name: &str, op: OpKind) -> Op {
        let kind = crate::kinds::lookup("s3.bucket").unwrap();
        let live = Live { name: name.into(), id: format!("{name}-id"), ..Live::default() };
        Op { name: name.into(), kind, op, live: Some(live.into()), replace: false, physical_name: None }
    }

    fn done(id: &str, applied: Option<&str>) -> Outcome {
        Outcome::Done { id: id.into(), elapsed: Duration::ZERO, applied: applied.map(str::to_string) }
    }

    fn entry(id: &str, digest: &str) -> AppliedResource {
        AppliedResource { kind: "s3.bucket".into(), id: id.into(), digest: digest.into() }
    }

    #[test]
    fn records_what_the_run_left_and_keeps_what_it_did_not_touch() {
        let s = stack();
        let previous = Applied {
            resources: BTreeMap::from([
                ("broken".into(), entry("broken-id", "old")),
                ("gone".into(), entry("gone-id", "g")),
                ("made".into(), entry("made-id", "m")),
            ]),
            ..Applied::default()
        };
        let kept_live = Live { name: "kept".into(), id: "kept-id".into(), ..Live::default() };
        let plan = Plan {
            stack: "s".into(),
            env: "default".into(),
            region: "eu-west-1".into(),
            resources: vec![ResourceChange {
                name: "kept".into(),
                kind: "s3.bucket",
                action: Action::NoOp,
                id: Some("kept-id".into()),
                reason: None,
                changes: Vec::new(),
                protected: false,
                replace_order: None,
                replacement_name: None,
                moved_from: None,
                takes_name_of: None,
                live: Some(kept_live.into()),
            }],
            read: Vec::new(),
        };
        let report = Report {
            results: vec![
                (op("made", OpKind::Create), done("made-2", Some("m2"))),
                (op("broken", OpKind::Update), Outcome::Failed(crate::aws::AwsError::other("s3:Put", "no"))),
                // A duplicate of a resource still in the spec: its entry stays.
                (op("made", OpKind::Delete), done("made-id", None)),
                (op("gone", OpKind::Delete), done("gone-id", None)),
            ],
            interrupted: None,
            timeline: Vec::new(),
            deps: Vec::new(),
            known: BTreeMap::new(),
        };
        let kept = BTreeMap::from([("kept".to_string(), "k".to_string())]);
        let a = after(Some(previous), &s, &plan, Some(&report), &kept, false);
        let want = BTreeMap::from([
            ("broken".to_string(), entry("broken-id", "old")),
            ("kept".to_string(), entry("kept-id", "k")),
            ("made".to_string(), entry("made-2", "m2")),
        ]);
        assert_eq!(a.resources, want);

        // Destroy drops every resource it deleted.
        let report = Report {
            results: vec![(op("made", OpKind::Delete), done("made-2", None))],
            interrupted: None,
            timeline: Vec::new(),
            deps: Vec::new(),
            known: BTreeMap::new(),
        };
        let empty = Plan { resources: Vec::new(), ..plan };
        let a = after(Some(a), &s, &empty, Some(&report), &BTreeMap::new(), true);
        assert!(!a.resources.contains_key("made") && a.resources.contains_key("kept"), "{:?}", a.resources);
    }
}
