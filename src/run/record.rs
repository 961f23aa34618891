//! What a run leaves behind: the record of what was applied (with the
//! stack's outputs) and the run in the stack/env's history.

use crate::aws::Aws;
use crate::printer::{Printer, Style};
use crate::spec::Stack;

/// A finished (or planned-only) run, as [`record_applied`] records it.
pub struct Ran<'a> {
    /// `apply`, `destroy`, `import` or `rollback`, for the run record.
    pub command: &'static str,
    /// The commit it applied (for a rollback: the known good's).
    pub commit: Option<String>,
    /// When it started (ms since the epoch), if not when the process did.
    pub started_ms: Option<u128>,
    pub live: &'a crate::live::LiveState,
    pub plan: &'a crate::plan::Plan,
    /// None: nothing was executed (the plan had no changes).
    pub report: Option<&'a crate::apply::Report>,
    /// A destroy: every deleted resource leaves the record.
    pub destroy: bool,
}

/// When this process started (ms since the epoch): a run record's start,
/// unless the run says otherwise (a rollback after a failed verification).
pub static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();

/// Records what the run left in the stack's state home (see
/// [`crate::state::applied`]), and the run in the stack/env's history
/// ([`crate::state::runs`]). A failure to write either is reported, not
/// fatal: the objects' own tags still say what was applied and by which
/// commit.
pub async fn record_applied(aws: &Aws, store: &crate::state::Store, stack: &Stack, ran: Ran<'_>, printer: &Printer) {
    let run = run_record(stack, &ran);
    if let Err(e) = crate::state::runs::write(aws, store, &run).await {
        printer.err(&printer.paint(
            Style::Error,
            &format!(
                "warning: could not record this run in {}: {e}",
                store.describe(&crate::state::runs::prefix(&stack.name, &stack.env))
            ),
        ));
    }
    use crate::state::applied;
    let known = crate::plan::known_outputs(stack, ran.live);
    let kept = stack
        .resources
        .values()
        .filter_map(|r| crate::plan::applied_digest(r, &known).map(|d| (r.name.clone(), d)))
        .collect();
    // The resources' outputs after the run: the report's, or (nothing
    // ran) what was read.
    let after = |name: &str, attr: &str| match ran.report {
        Some(r) => r.known.get(name)?.get(attr).cloned(),
        None => known.get(name)?.get(attr).cloned(),
    };
    let outputs = if ran.destroy { Default::default() } else { applied::outputs_of(stack, &after) };
    if !ran.destroy {
        crate::run::show::show_after_apply(&outputs, printer);
    }
    let written = async {
        let previous = applied::read(aws, store, &stack.name, &stack.env).await?;
        let mut record = crate::apply::record::after(previous, stack, ran.plan, ran.report, &kept, ran.destroy);
        record.outputs = outputs;
        applied::write(aws, store, &record).await
    };
    if let Err(e) = written.await {
        printer.err(&printer.paint(
            Style::Error,
            &format!(
                "warning: could not record this run in {}: {e} (drift can still classify tagged objects by their tags)",
                store.describe(&crate::state::applied::key(&stack.name, &stack.env))
            ),
        ));
    }
}

/// The history record of a run that ends now.
fn run_record(stack: &Stack, ran: &Ran<'_>) -> crate::state::runs::Run {
    use crate::apply::Outcome;
    use crate::state::lock;
    use crate::state::runs::{Planned, RunResult};
    let started = ran.started_ms.unwrap_or_else(|| *STARTED.get_or_init(crate::state::runs::now_ms));
    let s = ran.plan.summary();
    let address = |op: &crate::apply::Op| format!("{}.{}", op.kind.type_name(), op.name);
    let (mut changed, mut failed) = (Vec::new(), Vec::new());
    for (op, outcome) in ran.report.map(|r| r.results.as_slice()).unwrap_or_default() {
        match outcome {
            Outcome::Done { .. } => changed.push(address(op)),
            Outcome::Failed(e) => failed.push(format!("{}: {e}", address(op))),
            _ => {}
        }
    }
    // A replace is two operations of one address, not always adjacent.
    let mut seen = std::collections::BTreeSet::new();
    changed.retain(|a| seen.insert(a.clone()));
    let result = match ran.report {
        None => RunResult::NoChanges,
        Some(r) if r.interrupted.is_some() => RunResult::Interrupted,
        // Failed, skipped for a failure, or in doubt: not all of it was made.
        Some(r) if r.results.iter().any(|(_, o)| !matches!(o, Outcome::Done { .. })) => RunResult::Failed,
        Some(_) => RunResult::Succeeded,
    };
    crate::state::runs::Run {
        format_version: crate::state::runs::VERSION,
        id: crate::state::runs::new_id(started),
        stack: stack.name.clone(),
        env: stack.env.clone(),
        command: ran.command.into(),
        commit_url: ran
            .commit
            .clone()
            .zip(std::env::var("CI_PROJECT_URL").ok())
            .map(|(c, p)| format!("{p}/-/commit/{c}")),
        commit: ran.commit.clone(),
        pipeline_url: std::env::var("CI_PIPELINE_URL").ok(),
        job_url: std::env::var("CI_JOB_URL").ok(),
        who: lock::who(),
        host: lock::host(),
        started_unix: (started / 1000) as u64,
        ended_unix: lock::now(),
        planned: Planned { add: s.add, change: s.change, replace: s.replace, destroy: s.destroy },
        result,
        changed,
        failed,
        verified: None,
        rolled_back_to: None,
        alarms: Vec::new(),
    }
}
