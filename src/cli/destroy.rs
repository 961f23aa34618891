//! `converge destroy`: the command line of [`crate::run::destroy`].

use super::DestroyArgs;
use crate::printer::Printer;
use crate::run::destroy::Options;

pub async fn run(args: DestroyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let opts = Options {
        stack: args.stack.to_run(),
        aws: args.aws.to_run(),
        auto_approve: args.auto_approve,
        parallelism: args.parallelism,
        lock: args.lock.to_run(),
    };
    crate::run::destroy::run(opts, printer).await
}
