//! `converge drift`: plan, then classify each difference (drift, pending,
//! missing, unmanaged). Never changes anything. Exit 0: none, 2: some,
//! 1: error.

use std::collections::BTreeMap;

use super::{DriftArgs, PlanFormat};
use crate::plan::drift::{self, DriftDoc};
use crate::printer::Printer;

pub async fn run(args: DriftArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut timer = crate::run::session::Timer::start();
    let envs: Vec<Option<String>> = if args.all_envs {
        let names = crate::spec::environment_names(&args.stack.stack)?;
        if names.is_empty() { vec![None] } else { names.into_iter().map(Some).collect() }
    } else {
        vec![args.stack.env.clone()]
    };
    // Every environment loads (offline) before AWS is asked anything.
    let mut stacks = Vec::new();
    for env in envs {
        let a = crate::run::StackRef { env, ..args.stack.to_run() };
        let stack = crate::run::load::load(&a, true)?;
        stacks.push((a, stack));
    }
    timer.lap("parse");
    let mut reports = Vec::new();
    let mut plans = BTreeMap::new();
    let mut name = String::new();
    let calls = crate::aws::stats::CallCounter::default();
    for (a, stack) in stacks {
        let aws = crate::run::session::connect(&stack, &args.aws.to_run()).await;
        let store = crate::run::session::store(&stack, args.state_dir.as_deref());
        let applied = crate::state::applied::read(&aws, &store, &stack.name, &stack.env).await?;
        let stack = crate::run::load::with_inputs(&a, stack, true, &aws, &store).await?;
        let stack = crate::run::load::as_applied(&a, stack, applied.as_ref(), true)?;
        let live = crate::live::read(&aws, &stack).await?;
        timer.lap("read");
        let plan = crate::plan::plan(&stack, &live, None)?;
        let known = crate::plan::known_outputs(&stack, &live);
        reports.push(drift::classify(&stack, &plan, &known, applied.as_ref()));
        timer.lap("diff");
        name = stack.name.clone();
        plans.insert(stack.env.clone(), plan);
        calls.add(&aws.calls);
    }
    let mut doc = DriftDoc::new(&name, reports);
    let out = match args.format {
        PlanFormat::Text => drift::text(&doc, &plans, printer).trim_end().to_string(),
        PlanFormat::Json => serde_json::to_string_pretty(&doc)?,
        PlanFormat::Markdown => drift::markdown(&doc).trim_end().to_string(),
    };
    timer.lap("render");
    let stats = args.stats.then(|| timer.doc(&calls));
    match (&stats, args.format) {
        (Some(s), PlanFormat::Json) => {
            doc.stats = Some(s.clone());
            printer.out(&serde_json::to_string_pretty(&doc)?);
        }
        _ => printer.out(&out),
    }
    if let Some(s) = &stats {
        crate::run::session::print_stats(s, printer);
    }
    Ok(if doc.counts.total() > 0 { 2 } else { 0 })
}
