//! `converge rollback`: the command line of [`crate::run::rollback`].

use super::RollbackArgs;
use crate::printer::Printer;
use crate::run::rollback::Options;

pub async fn run(args: RollbackArgs, printer: &Printer) -> anyhow::Result<u8> {
    let opts = Options {
        stack: args.stack.to_run(),
        aws: args.aws.to_run(),
        to: args.to,
        parallelism: args.parallelism,
        lock: args.lock.to_run(),
    };
    crate::run::rollback::run(opts, printer).await
}
