//! `converge destroy`: delete everything tagged for the stack/env, users
//! before what they use.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::DestroyArgs;
use crate::aws::Aws;
use crate::plan::render;
use crate::printer::Printer;
use crate::spec::Stack;

pub async fn run(args: DestroyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args.stack, false)?;
    let aws = super::connect(&stack, &args.aws).await;
    let stop = crate::apply::Stop::from_signals()?;
    let held = super::lock(&aws, &stack, &args.lock, "destroy", printer).await?;
    let result = locked(&aws, stack, &args, &stop, printer).await;
    super::unlock_after(held, printer).await?;
    result
}

async fn locked(
    aws: &Aws,
    stack: Stack,
    args: &DestroyArgs,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let live = super::before_changes(stop, async { Ok(crate::live::read(aws, &stack).await?) }).await?;
    let plan = crate::plan::destroy(&stack, &live);
    printer.out(render::text(&plan, printer).trim_end());
    if !plan.has_changes() {
        return Ok(0);
    }
    super::check_protected(&plan, &stack, &args.lock.allow_destroy)?;
    printer.out("");
    let what = format!("destroy every resource of stack {} in environment {}", stack.name, stack.env);
    if !super::before_changes(stop, super::confirm(args.auto_approve, &what, printer)).await? {
        printer.out("Destroy cancelled.");
        return Ok(1);
    }
    let stack = Arc::new(stack);
    let graph = crate::apply::operations(&stack, &plan);
    printer.out("");
    let report = crate::apply::execute(
        aws,
        stack.clone(),
        graph,
        BTreeMap::new(),
        args.parallelism.into(),
        stop.clone(),
        crate::state::lock::commit(),
        printer,
    )
    .await;
    let store = super::store(&stack, args.lock.state_dir.as_deref());
    let ran = super::Ran {
        command: "destroy",
        started_ms: None,
        commit: crate::state::lock::commit(),
        live: &live,
        plan: &plan,
        report: Some(&report),
        destroy: true,
    };
    super::record_applied(aws, &store, &stack, ran, printer).await;
    Ok(super::exit_status("Destroy", &report, printer))
}
