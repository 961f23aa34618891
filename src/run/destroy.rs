//! `converge destroy`: delete everything tagged for the stack/env, users
//! before what they use.

use crate::aws::Aws;
use crate::plan::text;
use crate::printer::Printer;
use crate::run::execute::{ExecOptions, execute_plan};
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
    printer.out(text::render(&plan, printer).trim_end());
    if !plan.has_changes() {
        return Ok(0);
    }
    printer.out("");
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let opts = ExecOptions {
        auto_approve: args.auto_approve,
        parallelism: args.parallelism.into(),
        stop,
        store: &store,
        trace: None,
        command: "destroy",
        commit: crate::state::lock::commit(),
        started_ms: None,
        destroy: true,
    };
    execute_plan(aws, stack, &live, plan, &args.lock.allow_destroy, &opts, printer).await
}
