//! `converge import`: the command line of [`crate::run::import`].

use super::ImportArgs;
use crate::printer::Printer;
use crate::run::import::Options;

pub async fn run(args: ImportArgs, printer: &Printer) -> anyhow::Result<u8> {
    let opts = Options {
        stack: args.stack.to_run(),
        aws: args.aws.to_run(),
        resource: args.resource,
        id: args.id,
        auto_approve: args.auto_approve,
        lock: args.lock.to_run(),
    };
    crate::run::import::run(opts, printer).await
}
