//! `converge rollback`: apply a stack/env's last known good again (or the
//! known good of a given verified run), under the stack's lock.

use super::RollbackArgs;
use crate::printer::Printer;
use crate::state::known_good;

pub async fn run(args: RollbackArgs, printer: &Printer) -> anyhow::Result<u8> {
    // The stack as it is now only names the stack, its environment and its
    // state home; what is applied is the known good's own inputs.
    let stack = super::load(&args.stack, false)?;
    let aws = super::connect(&stack, &args.aws).await;
    let store = super::store(&stack, args.lock.state_dir.as_deref());
    let Some(good) = known_good::find(&aws, &store, &stack.name, &stack.env, args.to.as_deref()).await? else {
        anyhow::bail!(
            "no known good of {} / {} in {}: an apply becomes one when `converge apply --verify CMD` passes",
            stack.name,
            stack.env,
            store.describe(&known_good::prefix(&stack.name, &stack.env))
        );
    };
    let stop = crate::apply::Stop::from_signals()?;
    let held = super::lock(&aws, &stack, &args.lock, "rollback", printer).await?;
    printer.out(&format!(
        "Rolling back {} / {} to run {} ({}).",
        good.stack,
        good.env,
        good.run_id,
        crate::state::lock::commit_label(good.commit.as_deref())
    ));
    let result = super::apply::roll_back(
        &aws,
        &store,
        &good,
        args.stack.region.clone(),
        args.parallelism.into(),
        &stop,
        printer,
    )
    .await;
    super::unlock_after(held, printer).await?;
    result
}
