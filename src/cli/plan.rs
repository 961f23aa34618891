//! `converge plan`: read AWS, diff, print. Never changes anything.

use super::{PlanArgs, PlanFormat};
use crate::plan::{json, markdown, saved::SavedPlan, text};
use crate::printer::Printer;

pub async fn run(args: PlanArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut timer = crate::run::session::Timer::start();
    let stack = crate::run::load::load(&args.stack.to_run(), true)?;
    let targets = crate::run::load::targets(&stack, &args.targets)?;
    timer.lap("parse");
    let aws = crate::run::session::connect(&stack, &args.aws.to_run()).await;
    let store = crate::run::session::store(&stack, args.state_dir.as_deref());
    let stack = crate::run::load::with_inputs(&args.stack.to_run(), stack, true, &aws, &store).await?;
    if args.format == PlanFormat::Text {
        crate::run::show::show_inputs(&stack, printer);
    }
    let live = crate::live::read(&aws, &stack).await?;
    timer.lap("read");
    let plan = crate::plan::plan(&stack, &live, targets.as_ref())?;
    timer.lap("diff");
    let out = match args.format {
        PlanFormat::Text => text::render(&plan, printer).trim_end().to_string(),
        PlanFormat::Json => json::render(&plan),
        PlanFormat::Markdown => markdown::render(&plan).trim_end().to_string(),
    };
    timer.lap("render");
    let stats = args.stats.then(|| timer.doc(&aws.calls));
    match (&stats, args.format) {
        // The document carries its own cost.
        (Some(s), PlanFormat::Json) => printer.out(&json::render_with(&plan, Some(s.clone()))),
        _ => printer.out(&out),
    }
    if let Some(path) = &args.gitlab_report {
        crate::run::session::write_file(path, json::gitlab_report(&plan).as_bytes())?;
    }
    if let Some(path) = &args.out {
        let saved = SavedPlan::new(&stack, &live, &plan, args.stack.env.as_deref(), &args.targets);
        crate::run::session::write_file(path, saved.to_json().as_bytes())?;
        // On stderr when stdout is a document (JSON, Markdown).
        let note = format!("\nSaved this plan to {0}. Apply exactly it with: converge apply {0}", path.display());
        match args.format {
            PlanFormat::Text => printer.out(&note),
            _ => printer.err(note.trim_start()),
        }
    }
    if let Some(s) = &stats {
        crate::run::session::print_stats(s, printer);
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { 2 } else { 0 })
}
