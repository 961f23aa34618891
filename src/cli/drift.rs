//! `converge drift`: plan, then classify each difference (drift, pending,
//! missing, unmanaged). Never changes anything. Exit 0: none, 2: some,
//! 1: error.

use std::collections::BTreeMap;

use super::{DriftArgs, PlanFormat, StackArgs};
use crate::plan::drift::{self, DriftDoc};
use crate::printer::Printer;

pub async fn run(args: DriftArgs, printer: &Printer) -> anyhow::Result<u8> {
    let envs: Vec<Option<String>> = if args.all_envs {
        let names = crate::spec::environment_names(&args.stack.stack)?;
        if names.is_empty() { vec![None] } else { names.into_iter().map(Some).collect() }
    } else {
        vec![args.stack.env.clone()]
    };
    // Every environment loads (offline) before AWS is asked anything.
    let mut stacks = Vec::new();
    for env in envs {
        let a = StackArgs { env, ..args.stack.clone() };
        stacks.push(super::load(&a, true)?);
    }
    let mut reports = Vec::new();
    let mut plans = BTreeMap::new();
    let mut name = String::new();
    for stack in stacks {
        let aws = super::connect(&stack, &args.aws).await;
        let live = crate::live::read(&aws, &stack).await?;
        let plan = crate::plan::plan(&stack, &live, None)?;
        let store = super::store(&stack, args.state_dir.as_deref());
        let applied = crate::state::applied::read(&aws, &store, &stack.name, &stack.env).await?;
        let known = crate::plan::known_outputs(&stack, &live);
        reports.push(drift::classify(&stack, &plan, &known, applied.as_ref()));
        name = stack.name.clone();
        plans.insert(stack.env.clone(), plan);
    }
    let doc = DriftDoc::new(&name, reports);
    match args.format {
        PlanFormat::Text => printer.out(drift::text(&doc, &plans, printer).trim_end()),
        PlanFormat::Json => printer.out(&serde_json::to_string_pretty(&doc)?),
        PlanFormat::Markdown => printer.out(drift::markdown(&doc).trim_end()),
    }
    Ok(if doc.counts.total() > 0 { 2 } else { 0 })
}
