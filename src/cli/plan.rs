//! `converge plan`: read AWS, diff, print. Never changes anything.

use super::{PlanArgs, PlanFormat};
use crate::plan::{json, markdown, render, saved::SavedPlan};
use crate::printer::Printer;

pub async fn run(args: PlanArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args.stack, true)?;
    let targets = super::targets(&stack, &args.targets)?;
    let aws = super::connect(&stack, &args.aws).await;
    let live = crate::live::read(&aws, &stack).await?;
    let plan = crate::plan::plan(&stack, &live, targets.as_ref())?;
    match args.format {
        PlanFormat::Text => printer.out(render::text(&plan, printer).trim_end()),
        PlanFormat::Json => printer.out(&json::render(&plan)),
        PlanFormat::Markdown => printer.out(markdown::render(&plan).trim_end()),
    }
    if let Some(path) = &args.gitlab_report {
        super::write_file(path, json::gitlab_report(&plan).as_bytes())?;
    }
    if let Some(path) = &args.out {
        let saved = SavedPlan::new(&stack, &live, &plan, args.stack.env.as_deref(), &args.targets);
        super::write_file(path, saved.to_json().as_bytes())?;
        // On stderr when stdout is a document (JSON, Markdown).
        let note = format!("\nSaved this plan to {0}. Apply exactly it with: converge apply {0}", path.display());
        match args.format {
            PlanFormat::Text => printer.out(&note),
            _ => printer.err(note.trim_start()),
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}
