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
    let held = super::lock(&aws, &stack, &args.lock, "destroy", printer).await?;
    let result = locked(&aws, stack, &args, printer).await;
    super::unlock_after(held, printer).await?;
    result
}

async fn locked(aws: &Aws, stack: Stack, args: &DestroyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let live = crate::live::read(aws, &stack).await?;
    let plan = crate::plan::destroy(&stack, &live);
    printer.out(render::text(&plan, printer).trim_end());
    if !plan.has_changes() {
        return Ok(0);
    }
    super::check_protected(&plan, &stack, &args.lock.allow_destroy)?;
    printer.out("");
    let what = format!("destroy every resource of stack {} in environment {}", stack.name, stack.env);
    if !super::confirm(args.auto_approve, &what, printer)? {
        printer.out("Destroy cancelled.");
        return Ok(1);
    }
    let stack = Arc::new(stack);
    let graph = crate::apply::operations(&stack, &plan);
    printer.out("");
    let report = crate::apply::execute(aws, stack, graph, BTreeMap::new(), args.parallelism.into(), printer).await;
    Ok(if crate::apply::summarize("Destroy", &report, printer) { 0 } else { 1 })
}
