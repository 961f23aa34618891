//! `converge plan`: read AWS, diff, print. Never changes anything.

use super::{PlanArgs, PlanFormat};
use crate::plan::render;
use crate::printer::Printer;

pub async fn run(args: PlanArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args.stack, true)?;
    let targets = super::targets(&stack, &args.targets)?;
    let aws = super::connect(&stack, &args.aws).await;
    let live = crate::live::read(&aws, &stack).await?;
    let plan = crate::plan::plan(&stack, &live, targets.as_ref())?;
    match args.format {
        PlanFormat::Text => printer.out(render::text(&plan, printer).trim_end()),
        PlanFormat::Json => printer.out(&render::json(&plan)),
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}
