//! The executor: runs a plan's operations along the dependency graph.
//!
//! # Guarantees
//! - An operation starts as soon as every operation it depends on has
//!   succeeded, with at most `parallelism` running at once.
//! - A replace creates the new object first where its kind allows
//!   ([`crate::kinds::ReplaceOrder`]): the old object is deleted only after
//!   the replacement exists and every resource depending on it, directly or
//!   not, has been created or updated to use it. Otherwise the old object is
//!   deleted first, then the new one created.
//! - A second object of a resource still in the spec (an old half left by
//!   a killed run) is deleted after every resource depending on the
//!   resource was created or updated, so users have moved to the kept one.
//! - A create starts after the delete, in the same run, of the object that
//!   holds the physical name it needs (a resource renamed without
//!   `renamed_from`): the name is free when it is asked for.
//! - When an operation fails, running ones finish, independent branches go
//!   on, and everything depending on the failure is skipped.
//! - Safe to kill at any point: every create tags its object in the create
//!   call, so the next run finds what was made and continues from there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::aws::{Aws, AwsError};
use crate::digest::{self, TAG_APPLIED};
use crate::kinds::{Desired, DynKind, Live, ReplaceOrder};
use crate::plan::{self, Action, Plan};
use crate::printer::{Printer, Style};
use crate::progress;
use crate::spec::Stack;

pub mod record;
pub mod stop;
pub use stop::Stop;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Create,
    Update,
    Delete,
}

impl OpKind {
    fn verb(self) -> (&'static str, &'static str) {
        match self {
            OpKind::Create => ("creating", "created"),
            OpKind::Update => ("updating", "updated"),
            OpKind::Delete => ("destroying", "destroyed"),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone)]
pub struct Op {
    pub name: String,
    pub kind: &'static dyn DynKind,
    pub op: OpKind,
    /// The object to update or delete.
    pub live: Option<Arc<Live>>,
    /// Part of a replace.
    pub replace: bool,
    /// The physical name a replacement created first gets, when it is not
    /// the spec's (see [`crate::kinds::alternate_name`]).
    pub physical_name: Option<String>,
}

impl std::fmt::Debug for dyn DynKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}

impl Op {
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.kind.type_name())
    }
}

/// Operations and the edges between them (`deps[i]`: what op `i` waits for).
#[derive(Debug)]
pub struct OpGraph {
    pub ops: Vec<Op>,
    pub deps: Vec<BTreeSet<usize>>,
}

/// Turns a plan into operations.
pub fn operations(stack: &Stack, plan: &Plan) -> OpGraph {
    let mut ops = Vec::new();
    let mut create_or_update: BTreeMap<&str, usize> = BTreeMap::new();
    let mut deletes: Vec<usize> = Vec::new();
    let mut replaced_create: BTreeMap<usize, usize> = BTreeMap::new();
    // Old halves of replaces created first: delete op → the resource.
    let mut created_first: BTreeMap<usize, &str> = BTreeMap::new();
    // Creates that need a name an object deleted in this run holds.
    let mut takes_name: Vec<(usize, &str)> = Vec::new();
    for rc in &plan.resources {
        let kind = crate::kinds::lookup(rc.kind).expect("planned kinds are registered");
        let mut push = |op: OpKind, replace: bool| {
            let physical_name = if op == OpKind::Create { rc.replacement_name.clone() } else { None };
            ops.push(Op { name: rc.name.clone(), kind, op, live: rc.live.clone(), replace, physical_name });
            ops.len() - 1
        };
        match rc.action {
            Action::NoOp => {}
            Action::Create => {
                let i = push(OpKind::Create, false);
                create_or_update.insert(&rc.name, i);
            }
            Action::Update => {
                let i = push(OpKind::Update, false);
                create_or_update.insert(&rc.name, i);
            }
            Action::Delete => deletes.push(push(OpKind::Delete, false)),
            Action::Replace => match rc.replace_order {
                Some(ReplaceOrder::CreateFirst | ReplaceOrder::CreateFirstRenamed) => {
                    let c = push(OpKind::Create, true);
                    let d = push(OpKind::Delete, true);
                    deletes.push(d);
                    created_first.insert(d, &rc.name);
                    create_or_update.insert(&rc.name, c);
                }
                Some(ReplaceOrder::DeleteFirst(_)) | None => {
                    let d = push(OpKind::Delete, true);
                    let c = push(OpKind::Create, true);
                    deletes.push(d);
                    replaced_create.insert(c, d);
                    create_or_update.insert(&rc.name, c);
                }
            },
        }
        if let (Some(holder), Some(&i)) = (rc.takes_name_of.as_deref(), create_or_update.get(rc.name.as_str())) {
            takes_name.push((i, holder));
        }
    }
    let spec_graph = crate::graph::Graph::new(stack.resources.values().map(|r| (r.name.as_str(), &r.deps)));
    let mut deps = vec![BTreeSet::new(); ops.len()];
    for (i, op) in ops.iter().enumerate() {
        match op.op {
            OpKind::Create | OpKind::Update => {
                if let Some(r) = stack.resources.get(&op.name) {
                    for d in &r.deps {
                        if let Some(&j) = create_or_update.get(d.as_str()) {
                            deps[i].insert(j);
                        }
                    }
                }
                if let Some(&d) = replaced_create.get(&i) {
                    deps[i].insert(d);
                }
            }
            OpKind::Delete => {
                // The old half of a replace created first waits for the new
                // half and for everything that depends on the resource; so
                // does a duplicate of a resource still in the spec (an old
                // half left behind by a run that was killed): what uses it
                // moves to the object kept first.
                let duplicate = !op.replace
                    && stack.resources.get(&op.name).is_some_and(|r| r.kind.type_name() == op.kind.type_name());
                if let Some(name) = created_first.get(&i).copied().or(duplicate.then_some(op.name.as_str())) {
                    let mut waits = spec_graph.dependents(name);
                    waits.insert(name.to_string());
                    deps[i].extend(waits.iter().filter_map(|w| create_or_update.get(w.as_str()).copied()));
                }
            }
        }
    }
    // Users of an object are deleted first: by live state (its id in their
    // properties) or by the spec's graph.
    let objects: Vec<((&str, &dyn DynKind), &Live)> = deletes
        .iter()
        .map(|&d| ((ops[d].name.as_str(), ops[d].kind), &**ops[d].live.as_ref().expect("delete has a live object")))
        .collect();
    for (j, i) in plan::delete_edges(stack, &objects) {
        deps[deletes[i]].insert(deletes[j]);
    }
    // A create waits for the delete of the object that holds the name it
    // needs ([`plan::ResourceChange::takes_name_of`]), unless that delete
    // already waits for it.
    for (create, holder) in takes_name {
        let kind = ops[create].kind.type_name();
        let delete = (0..ops.len()).find(|&j| {
            let o = &ops[j];
            o.op == OpKind::Delete && !o.replace && o.name == holder && o.kind.type_name() == kind
        });
        if let Some(delete) = delete
            && !waits_for(&deps, delete, create)
        {
            deps[create].insert(delete);
        }
    }
    OpGraph { ops, deps }
}

/// Whether op `from` waits, directly or not, for op `to`.
fn waits_for(deps: &[BTreeSet<usize>], from: usize, to: usize) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from];
    while let Some(k) = stack.pop() {
        if k == to {
            return true;
        }
        if seen.insert(k) {
            stack.extend(deps[k].iter().copied());
        }
    }
    false
}

/// How one operation ended.
#[derive(Debug)]
pub enum Outcome {
    Done {
        id: String,
        elapsed: Duration,
        /// For a create or update: the digest of what was applied.
        applied: Option<String>,
    },
    Failed(AwsError),
    Skipped {
        because: String,
    },
    /// Running when a second stop request came: its AWS call may or may
    /// not have completed.
    Abandoned,
}

#[derive(Debug)]
pub struct Report {
    pub results: Vec<(Op, Outcome)>,
    /// Set when a signal stopped the run.
    pub interrupted: Option<stop::Requests>,
    /// When each operation became ready, started and ended (`--trace`).
    pub timeline: Vec<Timing>,
    /// What each operation waited for.
    pub deps: Vec<BTreeSet<usize>>,
    /// The outputs of every resource that exists after the run: those that
    /// existed and were not replaced, and those created or updated.
    pub known: BTreeMap<String, BTreeMap<String, Value>>,
}

/// One operation's times, from the start of the run. `ready`: the executor
/// saw its last dependency finish (or the run began); `start`: it got a
/// slot of `--parallelism` and began its first call; `end`: it finished
/// and gave the slot back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub ready: Option<Duration>,
    pub start: Option<Duration>,
    pub end: Option<Duration>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|(_, o)| matches!(o, Outcome::Failed(_))).count()
    }
}

/// What an operation's task returns: its index, when it got and gave back
/// its slot, and its result.
type Finished = (usize, (Duration, Duration), Result<Option<Live>, AwsError>);

/// Runs `graph` against AWS.
///
/// `known` holds the outputs of resources that exist and are not replaced;
/// outputs of created objects are added as they complete, and each create
/// or update resolves its properties only when it starts. `commit` is the
/// commit what it applies comes from: each create and update sets it as
/// `converge:commit`.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    aws: &Aws,
    stack: Arc<Stack>,
    graph: OpGraph,
    mut known: BTreeMap<String, BTreeMap<String, Value>>,
    parallelism: usize,
    mut stop: Stop,
    commit: Option<String>,
    printer: &Printer,
) -> Report {
    let OpGraph { ops, deps } = graph;
    let n = ops.len();
    let t0 = Instant::now();
    let mut timeline = vec![Timing::default(); n];
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut outcome: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
    let sem = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut started: BTreeMap<usize, Instant> = BTreeMap::new();
    let mut digests: BTreeMap<usize, String> = BTreeMap::new();
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    for &i in &ready {
        timeline[i].ready = Some(Duration::ZERO);
    }
    let mut display = progress::Display::new(printer, n);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;

    loop {
        // Start everything ready, in plan order; nothing once asked to stop.
        ready.sort_unstable();
        if stop.requested() {
            for i in ready.drain(..) {
                outcome[i] = Some(Outcome::Skipped { because: "not started: the run was interrupted".into() });
            }
        }
        for i in ready.drain(..) {
            let op = ops[i].clone();
            // A delete gets the spec's properties when the resource is still
            // in the spec (deletion settings such as final snapshots).
            let spec_props = match (&op.op, stack.resources.get(&op.name)) {
                (OpKind::Delete, Some(r)) if r.kind.type_name() == op.kind.type_name() => {
                    plan::desired_props(r, &known).ok()
                }
                _ => None,
            };
            let desired = match &op.op {
                OpKind::Delete => None,
                _ => match desired_for(&stack, &op, &known, commit.as_deref()) {
                    Ok((d, applied)) => {
                        digests.insert(i, applied);
                        Some(d)
                    }
                    Err(e) => {
                        display.error(&format!("{}: {e}", op.label()));
                        outcome[i] = Some(Outcome::Failed(e));
                        continue;
                    }
                },
            };
            started.insert(i, Instant::now());
            let aws = aws.clone();
            let sem = sem.clone();
            let (label, verb) = (op.label(), op.op.verb());
            let (slot, work) = progress::scope(async move {
                let permit = sem.acquire_owned().await.expect("semaphore is never closed");
                let began = t0.elapsed();
                let res = match (op.op, desired) {
                    (OpKind::Create, Some(d)) => op.kind.create(&aws, &d).await.map(Some),
                    (OpKind::Update, Some(d)) => {
                        op.kind.update(&aws, &d, op.live.as_ref().expect("update has live")).await.map(Some)
                    }
                    _ => op
                        .kind
                        .delete(&aws, op.live.as_ref().expect("delete has live"), spec_props.as_ref())
                        .await
                        .map(|_| None),
                };
                let released = t0.elapsed();
                drop(permit);
                (i, (began, released), res)
            });
            display.start(i, label, verb, slot);
            running.spawn(work);
        }
        // Failed-at-start ops count as finished: skip their dependents.
        for i in 0..n {
            if matches!(outcome[i], Some(Outcome::Failed(_))) && !started.contains_key(&i) {
                started.insert(i, Instant::now());
                skip_dependents(i, &ops, &dependents, &mut outcome);
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                let (i, (began, released), res) = joined.expect("operation task panicked");
                timeline[i].start = Some(began);
                timeline[i].end = Some(released);
                let op = &ops[i];
                let elapsed = started[&i].elapsed();
                match res {
                    Ok(live) => {
                        let id = live.as_ref().map(|l| l.id.clone()).or_else(|| op.live.as_ref().map(|l| l.id.clone())).unwrap_or_default();
                        if let Some(l) = live {
                            known.insert(op.name.clone(), l.outputs);
                        }
                        display.finish(i, &printer.paint(Style::Bold, &format!("{}: {} {id} [{:.1}s]", op.label(), op.op.verb().1, elapsed.as_secs_f64())));
                        outcome[i] = Some(Outcome::Done { id, elapsed, applied: digests.remove(&i) });
                        for &d in &dependents[i] {
                            waiting[d] -= 1;
                            if waiting[d] == 0 && outcome[d].is_none() {
                                timeline[d].ready = Some(t0.elapsed());
                                ready.push(d);
                            }
                        }
                    }
                    Err(e) => {
                        display.finish(i, &printer.paint(Style::Error, &format!("{}: {} failed: {e}", op.label(), op.op.verb().0)));
                        outcome[i] = Some(Outcome::Failed(e));
                        skip_dependents(i, &ops, &dependents, &mut outcome);
                    }
                }
            }
            _ = stop.changed() => {
                let r = stop.requests();
                if r.count == 1 {
                    display.error(&format!(
                        "{} received: starting nothing new, waiting for the {} running operation(s) to finish. Send it again to abandon them.",
                        r.name(), running.len()
                    ));
                } else {
                    display.error(&format!("{} received again: abandoning the running operations.", r.name()));
                    running.abort_all();
                    for (i, o) in outcome.iter_mut().enumerate() {
                        if o.is_none() && started.contains_key(&i) {
                            *o = Some(Outcome::Abandoned);
                        }
                    }
                    break;
                }
            }
            _ = ticker.tick() => display.tick(),
        }
    }
    display.clear();
    let results = ops
        .into_iter()
        .zip(outcome)
        .map(|(op, o)| {
            let because = if stop.requested() { "not started: the run was interrupted" } else { "not started" };
            let o = o.unwrap_or_else(|| Outcome::Skipped { because: because.into() });
            (op, o)
        })
        .collect();
    Report { results, interrupted: stop.requested().then(|| stop.requests()), timeline, deps, known }
}

/// `--trace`: a JSON line per operation, in plan order: its index, what it
/// waited for, its resource, kind and action, and when (milliseconds from
/// the start of the run) it became ready, started and ended, and how it
/// ended.
pub fn trace(report: &Report) -> String {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    let mut out = String::new();
    for (i, ((op, outcome), t)) in report.results.iter().zip(&report.timeline).enumerate() {
        let outcome = match outcome {
            Outcome::Done { .. } => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Abandoned => "abandoned",
        };
        let line = serde_json::json!({
            "op": i,
            "deps": report.deps.get(i),
            "resource": op.name,
            "kind": op.kind.type_name(),
            "action": op.op.verb().0,
            "replace": op.replace,
            "ready_ms": ms(t.ready),
            "start_ms": ms(t.start),
            "end_ms": ms(t.end),
            "outcome": outcome,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

fn skip_dependents(failed: usize, ops: &[Op], dependents: &[Vec<usize>], outcome: &mut [Option<Outcome>]) {
    let mut stack = dependents[failed].clone();
    while let Some(d) = stack.pop() {
        if outcome[d].is_none() {
            outcome[d] = Some(Outcome::Skipped { because: format!("depends on {}, which failed", ops[failed].name) });
            stack.extend(dependents[d].iter().copied());
        }
    }
}

/// What an operation sends, and the digest of the spec it applies
/// (`converge:applied`, and the state record's for kinds AWS cannot tag).
fn desired_for(
    stack: &Stack,
    op: &Op,
    known: &BTreeMap<String, BTreeMap<String, Value>>,
    commit: Option<&str>,
) -> Result<(Desired, String), AwsError> {
    let r = &stack.resources[&op.name];
    let mut props = plan::desired_props(r, known).map_err(|e| AwsError::other("converge", e.to_string()))?;
    if crate::value::contains_unknown(&props) {
        return Err(AwsError::other("converge", "a referenced output is still unknown (its resource was not created)"));
    }
    // What is applied is recorded on the object by the same call that
    // applies it: `converge drift` tells a hand-made change from a pending
    // one by it. The digest is the spec's, before ignored attributes take
    // their live values below, so that drift compares like with like.
    let applied = digest::applied(&props, &r.sensitive, &r.tags);
    let mut tags = r.tags.clone();
    if let (OpKind::Update, Some(live)) = (&op.op, &op.live) {
        keep_ignored(r, &mut props, &mut tags, live);
    }
    if r.kind.taggable() {
        tags.insert(TAG_APPLIED.into(), applied.clone());
        // Which commit last changed it: `converge history` tells the rest.
        if let Some(c) = commit {
            tags.insert(crate::tags::TAG_COMMIT.into(), c.to_string());
        }
    }
    let d = Desired {
        name: r.name.clone(),
        physical_name: op.physical_name.clone().unwrap_or_else(|| r.physical_name.clone()),
        props,
        tags,
        timeout: r.timeout,
    };
    Ok((d, applied))
}

/// An update leaves what `ignore_changes` names as it is live: those
/// properties (and tags) take their live values, so the kind's update
/// sends no change to them.
fn keep_ignored(r: &crate::spec::Resource, props: &mut Value, tags: &mut BTreeMap<String, String>, live: &Live) {
    for attr in &r.ignore_changes {
        if attr == "tags" {
            // The identity tags stay; the rest are the live ones.
            let own: BTreeMap<String, String> =
                tags.iter().filter(|(k, _)| k.starts_with("converge:")).map(|(k, v)| (k.clone(), v.clone())).collect();
            *tags = live
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("converge:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            tags.extend(own);
        } else if let (Some(want), Some(have)) = (props.as_object_mut(), live.props.get(attr)) {
            want.insert(attr.clone(), have.clone());
        }
    }
}

/// The closing summary and exit status of an apply or destroy.
pub fn summarize(what: &str, report: &Report, printer: &Printer) -> bool {
    let mut created = 0;
    let mut updated = 0;
    let mut replaced = 0;
    let mut destroyed = 0;
    for (op, o) in &report.results {
        if let Outcome::Done { .. } = o {
            match (op.op, op.replace) {
                (OpKind::Create, true) => replaced += 1,
                (OpKind::Create, false) => created += 1,
                (OpKind::Update, _) => updated += 1,
                (OpKind::Delete, false) => destroyed += 1,
                (OpKind::Delete, true) => {}
            }
        }
    }
    printer.out("");
    if let Some(r) = report.interrupted {
        let done = report.results.iter().filter(|(_, o)| matches!(o, Outcome::Done { .. })).count();
        let abandoned = report.results.iter().filter(|(_, o)| matches!(o, Outcome::Abandoned)).count();
        let not_started = report.results.iter().filter(|(_, o)| matches!(o, Outcome::Skipped { .. })).count();
        printer.out(&printer.paint(
            Style::Error,
            &format!(
                "{what} interrupted by {}: {done} done, {} failed, {abandoned} abandoned, {not_started} not started.",
                r.name(),
                report.failed()
            ),
        ));
        for (op, o) in &report.results {
            let line = match o {
                Outcome::Done { id, .. } => format!("  done:        {} {} {id}", op.op.verb().1, op.label()),
                Outcome::Failed(e) => format!("  failed:      {} {}: {e}", op.op.verb().0, op.label()),
                Outcome::Abandoned => {
                    format!("  abandoned:   {} {} (may or may not have completed)", op.op.verb().0, op.label())
                }
                Outcome::Skipped { .. } => format!("  not started: {} {}", op.op.verb().0, op.label()),
            };
            printer.out(&line);
        }
        printer.out(&format!(
            "Run `converge {}` again to finish: what was done is found by its tags and not repeated.",
            what.to_lowercase()
        ));
        return false;
    }
    if report.failed() == 0 && report.results.iter().all(|(_, o)| matches!(o, Outcome::Done { .. })) {
        printer.out(&printer.paint(
            Style::Bold,
            &format!(
                "{what} complete: {created} created, {updated} updated, {replaced} replaced, {destroyed} destroyed."
            ),
        ));
        return true;
    }
    let ok = report.results.iter().filter(|(_, o)| matches!(o, Outcome::Done { .. })).count();
    let skipped = report.results.iter().filter(|(_, o)| matches!(o, Outcome::Skipped { .. })).count();
    printer.out(&printer.paint(
        Style::Error,
        &format!("{what} failed: {ok} succeeded, {} failed, {skipped} skipped.", report.failed()),
    ));
    for (op, o) in &report.results {
        match o {
            Outcome::Failed(e) => printer.out(&format!("  failed:  {} {}: {e}", op.op.verb().0, op.label())),
            Outcome::Skipped { because } => {
                printer.out(&format!("  skipped: {} {}: {because}", op.op.verb().0, op.label()))
            }
            Outcome::Abandoned => printer.out(&format!("  abandoned: {} {}", op.op.verb().0, op.label())),
            Outcome::Done { .. } => {}
        }
    }
    printer.out(&format!(
        "Fix the error and run `converge {}` again: what was already done is found by its tags and not repeated.",
        what.to_lowercase()
    ));
    false
}
