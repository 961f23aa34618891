//! `converge apply`: plan, confirm, execute.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ApplyArgs, Ran};
use crate::aws::Aws;
use crate::plan::saved::{self, SavedPlan};
use crate::plan::{Action, render};
use crate::printer::Printer;
use crate::spec::Stack;

pub async fn run(args: ApplyArgs, printer: &Printer) -> anyhow::Result<u8> {
    if let Ok(text) = crate::spec::read_limited(&args.stack.stack, saved::MAX_BYTES)
        && saved::is_plan(&text)
    {
        let plan = saved::parse(&args.stack.stack, &text)?;
        return run_saved(plan, &args, printer).await;
    }
    let mut timer = super::Timer::start();
    let stack = super::load(&args.stack, true)?;
    let targets = super::targets(&stack, &args.targets)?;
    timer.lap("parse");
    let aws = super::connect(&stack, &args.aws).await;
    let stop = crate::apply::Stop::from_signals()?;
    // Held from before the read of live state to the end: the plan applied
    // is the plan made, and no other run changes the stack meanwhile.
    let held = super::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    let result = locked(&aws, stack, targets, &args, &stop, &mut timer, printer).await;
    super::unlock_after(held, printer).await?;
    if args.stats {
        super::print_stats(&timer.doc(&aws.calls), printer);
    }
    result
}

async fn locked(
    aws: &Aws,
    stack: Stack,
    targets: Option<std::collections::BTreeSet<String>>,
    args: &ApplyArgs,
    stop: &crate::apply::Stop,
    timer: &mut super::Timer,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let (live, plan) = super::before_changes(stop, async {
        let live = crate::live::read(aws, &stack).await?;
        timer.lap("read");
        let plan = crate::plan::plan(&stack, &live, targets.as_ref())?;
        timer.lap("diff");
        Ok((live, plan))
    })
    .await?;
    let ask = Ask { auto_approve: args.auto_approve, preface: None };
    show_and_execute(aws, stack, &live, plan, args, stop, ask, timer, printer).await
}

/// Whether to ask before executing, and what to say first.
struct Ask {
    auto_approve: bool,
    preface: Option<String>,
}

/// The end both applies share: show the plan, then record that nothing
/// changed, or execute it.
#[allow(clippy::too_many_arguments)]
async fn show_and_execute(
    aws: &Aws,
    stack: Stack,
    live: &crate::live::LiveState,
    plan: crate::plan::Plan,
    args: &ApplyArgs,
    stop: &crate::apply::Stop,
    ask: Ask,
    timer: &mut super::Timer,
    printer: &Printer,
) -> anyhow::Result<u8> {
    printer.out(render::text(&plan, printer).trim_end());
    timer.lap("render");
    let store = super::store(&stack, args.lock.state_dir.as_deref());
    if !plan.has_changes() {
        let ran = Ran { live, plan: &plan, report: None, destroy: false };
        super::record_applied(aws, &store, &stack, ran, printer).await;
        return Ok(0);
    }
    printer.out("");
    if let Some(p) = &ask.preface {
        printer.out(p);
    }
    let opts = ExecOptions {
        auto_approve: ask.auto_approve,
        parallelism: args.parallelism.into(),
        stop,
        store: &store,
        trace: args.trace.as_deref(),
    };
    let code = execute_plan(aws, stack, live, plan, &args.lock.allow_destroy, &opts, printer).await;
    timer.lap("apply");
    code
}

/// `converge apply FILE`: the saved plan, exactly, or nothing.
async fn run_saved(saved: SavedPlan, args: &ApplyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut timer = super::Timer::start();
    let file = args.stack.stack.display().to_string();
    let remake = format!(
        "make a new plan (converge plan {}{} --out {file}) and review it",
        saved.stack_file.display(),
        saved.env_arg.as_deref().map(|e| format!(" --env {e}")).unwrap_or_default()
    );
    if !args.targets.is_empty() {
        anyhow::bail!("--target cannot be used with a saved plan: its targets were chosen when it was made");
    }
    for (flag, given, planned) in
        [("--env", &args.stack.env, &saved.env), ("--region", &args.stack.region, &saved.region)]
    {
        if let Some(g) = given
            && g != planned
        {
            anyhow::bail!("{flag} {g}: the plan in {file} is for {planned}");
        }
    }
    // The variables set from outside now, to compare with the plan's.
    let mut vars_now: BTreeMap<String, String> = std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix(crate::spec::VAR_ENV_PREFIX).map(|n| (n.to_string(), v)))
        .collect();
    vars_now.extend(args.stack.vars.iter().cloned());
    let stack_args = super::StackArgs {
        stack: saved.stack_file.clone(),
        env: saved.env_arg.clone(),
        region: Some(saved.region.clone()),
        vars: saved.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    // Secrets are read again here; a missing one is refused offline.
    let stack = super::load(&stack_args, true)?;
    let stale = |what: &str, mut problems: Vec<String>| {
        const SHOWN: usize = 20;
        if problems.len() > SHOWN {
            let more = problems.len() - SHOWN;
            problems.truncate(SHOWN);
            problems.push(format!("… and {more} more"));
        }
        anyhow::anyhow!(
            "the plan in {file} is stale: {what} changed since it was made; nothing was changed:\n  {}\nTo go on, {remake}.",
            problems.join("\n  ")
        )
    };
    let problems = saved.spec_changes(&stack, &vars_now);
    if !problems.is_empty() {
        return Err(stale("the spec", problems));
    }
    timer.lap("parse");
    let targets = super::targets(&stack, &saved.targets)?;
    let aws = super::connect(&stack, &args.aws).await;
    let stop = crate::apply::Stop::from_signals()?;
    let held = super::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    let result = async {
        let (live, plan) = super::before_changes(&stop, async {
            let live = crate::live::read(&aws, &stack).await?;
            timer.lap("read");
            let plan = crate::plan::plan(&stack, &live, targets.as_ref())?;
            timer.lap("diff");
            Ok((live, plan))
        })
        .await?;
        let problems = saved.live_changes(&stack, &plan, &live);
        if !problems.is_empty() {
            return Err(stale("AWS", problems));
        }
        let preface = format!("Applying the saved plan {file} (reviewed when it was made: no prompt).");
        let ask = Ask { auto_approve: true, preface: Some(preface) };
        show_and_execute(&aws, stack, &live, plan, args, &stop, ask, &mut timer, printer).await
    }
    .await;
    super::unlock_after(held, printer).await?;
    if args.stats {
        super::print_stats(&timer.doc(&aws.calls), printer);
    }
    result
}

/// How a plan is executed.
pub struct ExecOptions<'a> {
    pub auto_approve: bool,
    pub parallelism: usize,
    pub stop: &'a crate::apply::Stop,
    /// Where the record of what was applied goes.
    pub store: &'a crate::state::Store,
    /// `--trace FILE`.
    pub trace: Option<&'a std::path::Path>,
}

/// Checks protection, asks, and executes a plan already printed: the
/// shared end of `apply` and `import`. Exit status: 0 done, 1 failed,
/// 128 + signal when interrupted.
pub async fn execute_plan(
    aws: &Aws,
    stack: Stack,
    live: &crate::live::LiveState,
    plan: crate::plan::Plan,
    allow_destroy: &[String],
    opts: &ExecOptions<'_>,
    printer: &Printer,
) -> anyhow::Result<u8> {
    super::check_protected(&plan, &stack, allow_destroy)?;
    let asked = super::confirm(opts.auto_approve, "apply these changes", printer);
    if !super::before_changes(opts.stop, asked).await? {
        printer.out("Apply cancelled.");
        return Ok(1);
    }
    // Outputs known before any operation: objects that exist and are kept.
    let known: BTreeMap<_, _> = plan
        .resources
        .iter()
        .filter(|r| matches!(r.action, Action::NoOp | Action::Update))
        .filter_map(|r| r.live.as_ref().map(|l| (r.name.clone(), l.outputs.clone())))
        .chain(
            // Resources outside --target that exist.
            stack
                .resources
                .values()
                .filter(|r| !plan.resources.iter().any(|p| p.name == r.name))
                .filter_map(|r| live.get(r.kind, &r.name).map(|l| (r.name.clone(), l.outputs.clone()))),
        )
        .collect();
    let stack = Arc::new(stack);
    let graph = crate::apply::operations(&stack, &plan);
    printer.out("");
    let report =
        crate::apply::execute(aws, stack.clone(), graph, known, opts.parallelism, opts.stop.clone(), printer).await;
    let ran = Ran { live, plan: &plan, report: Some(&report), destroy: false };
    super::record_applied(aws, opts.store, &stack, ran, printer).await;
    if let Some(path) = opts.trace {
        super::write_file(path, crate::apply::trace(&report).as_bytes())?;
    }
    Ok(super::exit_status("Apply", &report, printer))
}
