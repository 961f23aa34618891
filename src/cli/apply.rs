//! `converge apply`: plan, confirm, execute.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ApplyArgs;
use crate::aws::Aws;
use crate::plan::{Action, render};
use crate::printer::Printer;
use crate::spec::Stack;

pub async fn run(args: ApplyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args.stack, true)?;
    let targets = super::targets(&stack, &args.targets)?;
    let aws = super::connect(&stack, &args.aws).await;
    let stop = crate::apply::Stop::from_signals()?;
    // Held from before the read of live state to the end: the plan applied
    // is the plan made, and no other run changes the stack meanwhile.
    let held = super::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    let result = locked(&aws, stack, targets, &args, &stop, printer).await;
    super::unlock_after(held, printer).await?;
    result
}

async fn locked(
    aws: &Aws,
    stack: Stack,
    targets: Option<std::collections::BTreeSet<String>>,
    args: &ApplyArgs,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let (live, plan) = super::before_changes(stop, async {
        let live = crate::live::read(aws, &stack).await?;
        let plan = crate::plan::plan(&stack, &live, targets.as_ref())?;
        Ok((live, plan))
    })
    .await?;
    printer.out(render::text(&plan, printer).trim_end());
    if !plan.has_changes() {
        return Ok(0);
    }
    printer.out("");
    let opts = ExecOptions { auto_approve: args.auto_approve, parallelism: args.parallelism.into(), stop };
    execute_plan(aws, stack, &live, plan, &args.lock.allow_destroy, &opts, printer).await
}

/// How a plan is executed.
pub struct ExecOptions<'a> {
    pub auto_approve: bool,
    pub parallelism: usize,
    pub stop: &'a crate::apply::Stop,
}

/// Checks protection, asks, and executes a plan already printed: the
/// shared end of `apply` and `import`. Exit status: 0 done, 1 failed,
/// 128 + signal when interrupted.
pub async fn execute_plan(
    aws: &Aws,
    stack: Stack,
    live: &crate::live::LiveState,
    plan: crate::plan::Plan,
    allow_destroy: &[String],
    opts: &ExecOptions<'_>,
    printer: &Printer,
) -> anyhow::Result<u8> {
    super::check_protected(&plan, &stack, allow_destroy)?;
    let asked = super::confirm(opts.auto_approve, "apply these changes", printer);
    if !super::before_changes(opts.stop, asked).await? {
        printer.out("Apply cancelled.");
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
    let report = crate::apply::execute(aws, stack, graph, known, opts.parallelism, opts.stop.clone(), printer).await;
    Ok(super::exit_status("Apply", &report, printer))
}
