//! `converge apply`: the command line of [`crate::run::apply`].

use super::ApplyArgs;
use crate::printer::Printer;
use crate::run::apply::Options;

pub async fn run(args: ApplyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let opts = Options {
        stack: args.stack.to_run(),
        aws: args.aws.to_run(),
        targets: args.targets,
        auto_approve: args.auto_approve,
        parallelism: args.parallelism,
        lock: args.lock.to_run(),
        stats: args.stats,
        trace: args.trace,
        verify: args.verify,
        verify_timeout: args.verify_timeout,
        verify_alarms: args.verify_alarms,
        verify_window: args.verify_window,
    };
    crate::run::apply::run(opts, printer).await
}
