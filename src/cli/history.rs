//! `converge history`: a stack/env's runs, newest first: when, what, which
//! commit, the result and what changed.

use super::HistoryArgs;
use crate::printer::{Printer, Style};
use crate::state::lock::{human, utc};
use crate::state::runs::{self, Run, RunResult};

pub async fn run(args: HistoryArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.stack.to_run(), false)?;
    let aws = crate::run::session::connect(&stack, &args.aws.to_run()).await;
    let store = crate::run::session::store(&stack, args.state_dir.as_deref());
    let list = runs::list(&aws, &store, &stack.name, &stack.env, args.limit).await?;
    if args.format == HistoryFormat::Json {
        let doc = serde_json::json!({
            "format": "converge-history",
            "format_version": runs::VERSION,
            "stack": stack.name,
            "env": stack.env,
            "runs": list,
        });
        printer.out(&serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let home = store.describe(&runs::prefix(&stack.name, &stack.env));
    if list.is_empty() {
        printer.out(&format!(
            "No runs of {} / {} recorded in {home}: `converge apply` records each run there.",
            stack.name, stack.env
        ));
        return Ok(0);
    }
    printer.out(&format!("Runs of {} / {}, newest first ({home}):", stack.name, stack.env));
    for r in &list {
        printer.out("");
        printer.out(&line(r, printer));
        for f in &r.failed {
            printer.out(&format!("    failed: {f}"));
        }
        if !r.alarms.is_empty() {
            printer.out(&format!("    verification failed: in ALARM after the deploy: {}", r.alarms.join(", ")));
        }
        if !r.changed.is_empty() {
            const SHOWN: usize = 6;
            let mut changed = r.changed.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
            if r.changed.len() > SHOWN {
                changed.push_str(&format!(" and {} more (--format json lists them)", r.changed.len() - SHOWN));
            }
            printer.out(&format!("    changed: {changed}"));
        }
        if let Some(url) = r.job_url.as_ref().or(r.pipeline_url.as_ref()) {
            printer.out(&format!("    {url}"));
        }
    }
    Ok(0)
}

/// `2026-11-30 05:40:00 UTC  apply  succeeded  commit 1a2b3c4d5e6f  +1 ~2 ±0 -0  (12s, alice@ci)`.
fn line(r: &Run, printer: &Printer) -> String {
    let style = match r.result {
        RunResult::Succeeded => Style::Add,
        RunResult::NoChanges => Style::Dim,
        RunResult::Failed | RunResult::Interrupted => Style::Error,
    };
    let commit = crate::state::lock::commit_label(r.commit.as_deref());
    let p = r.planned;
    format!(
        "  {}  {:<7}  {}  {commit}  +{} ~{} ±{} -{}  ({}, {}@{})  {}",
        utc(r.started_unix),
        r.command,
        printer.paint(style, &format!("{:<11}", r.result.as_str())),
        p.add,
        p.change,
        p.replace,
        p.destroy,
        human(r.ended_unix.saturating_sub(r.started_unix)),
        r.who,
        r.host,
        r.id,
    )
}

/// `--format` of `converge history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    Text,
    Json,
}
