//! `converge unlock`: remove a stack/env's lock that a run left behind.

use super::UnlockArgs;
use crate::printer::Printer;

pub async fn run(args: UnlockArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args.stack, false)?;
    let aws = super::connect(&stack, &args.aws).await;
    let store = super::store(&stack, args.state_dir.as_deref());
    let held = crate::state::lock::unlock(&aws, &store, &stack.name, &stack.env, &args.lock_id).await?;
    printer.out(&format!("Removed lock {} held by {}.", held.id, held.holder()));
    Ok(0)
}
