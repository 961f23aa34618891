//! Executing a plan already shown: the protection rule, the prompt, the
//! operations along the graph, the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aws::Aws;
use crate::plan::Action;
use crate::printer::Printer;
use crate::run::record::Ran;
use crate::spec::Stack;

/// How a plan is executed.
pub struct ExecOptions<'a> {
    pub auto_approve: bool,
    pub parallelism: usize,
    pub stop: &'a crate::apply::Stop,
    /// Where the record of what was applied goes.
    pub store: &'a crate::state::Store,
    /// `--trace FILE`.
    pub trace: Option<&'a std::path::Path>,
    /// What the run record calls the run: `apply`, `import`, `rollback`.
    pub command: &'static str,
    /// The commit what it applies comes from: its record's and the
    /// `converge:commit` tags of what it changes.
    pub commit: Option<String>,
    /// When the run started (ms), if not when the process did.
    pub started_ms: Option<u128>,
    /// A destroy (`converge destroy`): asked and summarized as one, and
    /// recorded as deleting the stack.
    pub destroy: bool,
}

/// Checks protection, asks, and executes a plan already printed: the
/// shared end of `apply`, `import`, `rollback` and `destroy`. Exit status:
/// 0 done, 1 failed, 128 + signal when interrupted.
pub async fn execute_plan(
    aws: &Aws,
    stack: Stack,
    live: &crate::live::LiveState,
    plan: crate::plan::Plan,
    allow_destroy: &[String],
    opts: &ExecOptions<'_>,
    printer: &Printer,
) -> anyhow::Result<u8> {
    crate::run::session::check_protected(&plan, &stack, allow_destroy)?;
    let (verb, what) = match opts.destroy {
        true => ("Destroy", format!("destroy every resource of stack {} in environment {}", stack.name, stack.env)),
        false => ("Apply", "apply these changes".to_string()),
    };
    let asked = crate::run::session::confirm(opts.auto_approve, &what, printer);
    if !crate::run::session::before_changes(opts.stop, asked).await? {
        printer.out(&format!("{verb} cancelled."));
        return Ok(1);
    }
    // Outputs known before any operation: objects that exist and are kept.
    let known: BTreeMap<_, _> = plan
        .resources
        .iter()
        .filter(|r| matches!(r.action, Action::NoOp | Action::Update))
        .filter_map(|r| r.live.as_ref().map(|l| (r.name.clone(), l.outputs.clone())))
        .chain(
            // Resources outside --target that exist.
            stack
                .resources
                .values()
                .filter(|r| !plan.resources.iter().any(|p| p.name == r.name))
                .filter_map(|r| live.get(r.kind, &r.name).map(|l| (r.name.clone(), l.outputs.clone()))),
        )
        .collect();
    let stack = Arc::new(stack);
    let graph = crate::apply::operations(&stack, &plan);
    printer.out("");
    let report = crate::apply::execute(
        aws,
        stack.clone(),
        graph,
        known,
        opts.parallelism,
        opts.stop.clone(),
        opts.commit.clone(),
        printer,
    )
    .await;
    let ran = Ran {
        command: opts.command,
        commit: opts.commit.clone(),
        started_ms: opts.started_ms,
        live,
        plan: &plan,
        report: Some(&report),
        destroy: opts.destroy,
    };
    crate::run::record::record_applied(aws, opts.store, &stack, ran, printer).await;
    if let Some(path) = opts.trace {
        crate::run::session::write_file(path, crate::apply::trace(&report).as_bytes())?;
    }
    Ok(crate::run::session::exit_status(verb, &report, printer))
}
