//! `converge unlock`: remove a stack/env's lock that a run left behind.

use super::UnlockArgs;
use crate::printer::Printer;

pub async fn run(args: UnlockArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.stack.to_run(), false)?;
    let aws = crate::run::session::connect(&stack, &args.aws.to_run()).await;
    let store = crate::run::session::store(&stack, args.state_dir.as_deref());
    let held = crate::state::lock::unlock(&aws, &store, &stack.name, &stack.env, &args.lock_id).await?;
    printer.out(&format!("Removed lock {} held by {}.", held.id, held.holder()));
    Ok(0)
}
