//! `converge destroy`: delete everything tagged for the stack/env, users
//! before what they use.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aws::Aws;
use crate::plan::render;
use crate::printer::Printer;
use crate::spec::Stack;

/// What `converge destroy` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub stack: super::StackRef,
    pub aws: super::Endpoint,
    pub auto_approve: bool,
    pub parallelism: u16,
    pub lock: super::Locking,
}

pub async fn run(args: Options, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.stack, false)?;
    let aws = crate::run::session::connect(&stack, &args.aws).await;
    let stop = crate::apply::Stop::from_signals()?;
    let held = crate::run::session::lock(&aws, &stack, &args.lock, "destroy", printer).await?;
    let result = locked(&aws, stack, &args, &stop, printer).await;
    crate::run::session::unlock_after(held, printer).await?;
    result
}

async fn locked(
    aws: &Aws,
    stack: Stack,
    args: &Options,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let live = crate::run::session::before_changes(stop, async { Ok(crate::live::read(aws, &stack).await?) }).await?;
    let plan = crate::plan::destroy(&stack, &live);
    printer.out(render::text(&plan, printer).trim_end());
    if !plan.has_changes() {
        return Ok(0);
    }
    crate::run::session::check_protected(&plan, &stack, &args.lock.allow_destroy)?;
    printer.out("");
    let what = format!("destroy every resource of stack {} in environment {}", stack.name, stack.env);
    if !crate::run::session::before_changes(stop, crate::run::session::confirm(args.auto_approve, &what, printer))
        .await?
    {
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
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let ran = crate::run::record::Ran {
        command: "destroy",
        started_ms: None,
        commit: crate::state::lock::commit(),
        live: &live,
        plan: &plan,
        report: Some(&report),
        destroy: true,
    };
    crate::run::record::record_applied(aws, &store, &stack, ran, printer).await;
    Ok(crate::run::session::exit_status("Destroy", &report, printer))
}
