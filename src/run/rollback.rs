//! `converge rollback`: apply a stack/env's last known good again (or the
//! known good of a given verified run), under the stack's lock.

use crate::printer::Printer;
use crate::state::known_good;

/// What `converge rollback` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub stack: super::StackRef,
    pub aws: super::Endpoint,
    /// The verified run to go back to (default: the newest).
    pub to: Option<String>,
    pub parallelism: u16,
    pub lock: super::Locking,
}

pub async fn run(args: Options, printer: &Printer) -> anyhow::Result<u8> {
    // The stack as it is now only names the stack, its environment and its
    // state home; what is applied is the known good's own inputs.
    let stack = crate::run::load::load(&args.stack, false)?;
    let aws = crate::run::session::connect(&stack, &args.aws).await;
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let Some(good) = known_good::find(&aws, &store, &stack.name, &stack.env, args.to.as_deref()).await? else {
        anyhow::bail!(
            "no known good of {} / {} in {}: an apply becomes one when `converge apply --verify CMD` passes",
            stack.name,
            stack.env,
            store.describe(&known_good::prefix(&stack.name, &stack.env))
        );
    };
    let stop = crate::apply::Stop::from_signals()?;
    let held = crate::run::session::lock(&aws, &stack, &args.lock, "rollback", printer).await?;
    printer.out(&format!(
        "Rolling back {} / {} to run {} ({}).",
        good.stack,
        good.env,
        good.run_id,
        crate::state::lock::commit_label(good.commit.as_deref())
    ));
    let result = crate::run::verify::roll_back(
        &aws,
        &store,
        &good,
        args.stack.region.clone(),
        args.parallelism.into(),
        &stop,
        printer,
    )
    .await;
    crate::run::session::unlock_after(held, printer).await?;
    result
}
