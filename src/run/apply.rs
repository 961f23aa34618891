//! `converge apply`: plan, confirm, execute.

use std::collections::BTreeMap;

use crate::aws::Aws;
use crate::plan::saved::{self, SavedPlan};
use crate::plan::text;
use crate::printer::Printer;
use crate::run::alarms::{Before, Gate};
use crate::run::execute::{ExecOptions, execute_plan};
use crate::run::record::Ran;
use crate::run::verify::{Checks, verify};
use crate::spec::Stack;
use crate::state::known_good::KnownGood;

/// What `converge apply` was asked (see `converge apply --help`).
#[derive(Debug, Clone)]
pub struct Options {
    pub stack: super::StackRef,
    pub aws: super::Endpoint,
    pub targets: Vec<String>,
    pub auto_approve: bool,
    pub parallelism: u16,
    pub lock: super::Locking,
    pub stats: bool,
    pub trace: Option<std::path::PathBuf>,
    pub verify: Option<String>,
    pub verify_timeout: std::time::Duration,
    /// CloudWatch alarms to watch after the apply, besides the stack's
    /// `verify: { alarms }`.
    pub verify_alarms: Vec<String>,
    /// How long to watch them (default: the stack's `verify: { window }`).
    pub verify_window: Option<std::time::Duration>,
}

impl Options {
    /// The alarm gate of this apply of `stack`: the stack's alarms and
    /// `--verify-alarms`, watched for `--verify-window`, else the stack's
    /// window; `None` when there are none.
    pub fn gate(&self, stack: &Stack) -> Option<Gate> {
        let mut alarms: Vec<String> =
            stack.verify.iter().flat_map(|v| v.alarms.iter().map(|(_, name)| name.clone())).collect();
        for a in &self.verify_alarms {
            if !alarms.contains(a) {
                alarms.push(a.clone());
            }
        }
        let window = self
            .verify_window
            .or(stack.verify.as_ref().map(|v| v.window))
            .unwrap_or(crate::spec::DEFAULT_VERIFY_WINDOW);
        (!alarms.is_empty()).then_some(Gate { alarms, window })
    }
}

/// The alarms' states before the change, under the lock; on an error the
/// lock is released and nothing was changed.
async fn alarms_before(
    aws: &Aws,
    stack: &Stack,
    gate: Option<&Gate>,
    held: crate::state::lock::HeldLock,
    printer: &Printer,
) -> anyhow::Result<(Option<Before>, crate::state::lock::HeldLock)> {
    let Some(gate) = gate else { return Ok((None, held)) };
    let declared: Vec<String> = stack
        .resources
        .values()
        .filter(|r| r.kind.type_name() == "cloudwatch.alarm")
        .map(|r| r.physical_name.clone())
        .collect();
    match crate::run::alarms::before(aws, gate, &declared, printer).await {
        Ok(b) => Ok((Some(b), held)),
        Err(e) => {
            crate::run::session::unlock_after(held, printer).await?;
            Err(e)
        }
    }
}

pub async fn run(args: Options, printer: &Printer) -> anyhow::Result<u8> {
    if let Ok(text) = crate::spec::read_limited(&args.stack.file, saved::MAX_BYTES)
        && saved::is_plan(&text)
    {
        let plan = saved::parse(&args.stack.file, &text)?;
        return run_saved(plan, &args, printer).await;
    }
    let mut timer = crate::run::session::Timer::start();
    let stack = crate::run::load::load(&args.stack, true)?;
    let targets = crate::run::load::targets(&stack, &args.targets)?;
    timer.lap("parse");
    let aws = crate::run::session::connect(&stack, &args.aws).await;
    let home = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let stack = crate::run::load::with_inputs(&args.stack, stack, true, &aws, &home).await?;
    let stop = crate::apply::Stop::from_signals()?;
    // Held from before the read of live state to the end: the plan applied
    // is the plan made, and no other run changes the stack meanwhile.
    let held = crate::run::session::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    // A run refused the lock says nothing else.
    crate::run::show::show_inputs(&stack, printer);
    // What a passed verification keeps as the last known good: the inputs
    // as this run read them.
    let gate = args.gate(&stack);
    let inputs = match args.verify.is_some() || gate.is_some() {
        true => Some(KnownGood::capture(&stack, "", crate::state::lock::commit())?),
        false => None,
    };
    let (before, held) = alarms_before(&aws, &stack, gate.as_ref(), held, printer).await?;
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let result = locked(&aws, stack, targets, &args, &stop, &mut timer, printer).await;
    let result = match inputs {
        Some(inputs) => {
            let region = args.stack.region.clone();
            let checks = Checks { cmd: args.verify.as_deref(), alarms: gate.as_ref().zip(before.as_ref()) };
            verify(&aws, &store, inputs, result, &checks, &args, region, &stop, printer).await
        }
        None => result,
    };
    crate::run::session::unlock_after(held, printer).await?;
    if args.stats {
        crate::run::session::print_stats(&timer.doc(&aws.calls), printer);
    }
    result
}

async fn locked(
    aws: &Aws,
    stack: Stack,
    targets: Option<std::collections::BTreeSet<String>>,
    args: &Options,
    stop: &crate::apply::Stop,
    timer: &mut crate::run::session::Timer,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let (live, plan) = crate::run::session::before_changes(stop, async {
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
    args: &Options,
    stop: &crate::apply::Stop,
    ask: Ask,
    timer: &mut crate::run::session::Timer,
    printer: &Printer,
) -> anyhow::Result<u8> {
    printer.out(text::render(&plan, printer).trim_end());
    timer.lap("render");
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    if !plan.has_changes() {
        let ran = Ran {
            command: "apply",
            started_ms: None,
            commit: crate::state::lock::commit(),
            live,
            plan: &plan,
            report: None,
            destroy: false,
        };
        crate::run::record::record_applied(aws, &store, &stack, ran, printer).await;
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
        command: "apply",
        commit: crate::state::lock::commit(),
        started_ms: None,
        destroy: false,
    };
    let code = execute_plan(aws, stack, live, plan, &args.lock.allow_destroy, &opts, printer).await;
    timer.lap("apply");
    code
}

/// `converge apply FILE`: the saved plan, exactly, or nothing.
async fn run_saved(saved: SavedPlan, args: &Options, printer: &Printer) -> anyhow::Result<u8> {
    let mut timer = crate::run::session::Timer::start();
    let file = args.stack.file.display().to_string();
    let remake = if std::env::var_os("GITLAB_CI").is_some() {
        // In a pipeline the plan job makes the plan: run it again.
        format!("run the pipeline again: its plan job makes a new plan ({file}) to review")
    } else {
        format!(
            "make a new plan (converge plan {}{} --out {file}) and review it",
            saved.stack_file.display(),
            saved.env_arg.as_deref().map(|e| format!(" --env {e}")).unwrap_or_default()
        )
    };
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
    let stack_args = super::StackRef {
        file: saved.stack_file.clone(),
        env: saved.env_arg.clone(),
        region: Some(saved.region.clone()),
        vars: saved.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    // Secrets are read again here; a missing one is refused offline. What
    // the stack reads from outside is what the plan read, for now.
    let stack = crate::run::load::load(&stack_args, true)?;
    // `offline`: the stack as loaded, kept to read those again below.
    let (stack, offline) = if stack.lookups.is_empty() && stack.inputs.is_empty() {
        (stack, None)
    } else {
        (crate::run::load::load_pinned(&stack_args, &saved.found, &saved.inputs)?, Some(stack))
    };
    // With --verify, what a passed check keeps as the last known good: the
    // inputs the plan was made from (checked unchanged just below).
    let gate = args.gate(&stack);
    let inputs = match args.verify.is_some() || gate.is_some() {
        true => Some(KnownGood::capture(&stack, "", crate::state::lock::commit())?),
        false => None,
    };
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
    // Then the lookups and other stacks' outputs again: one that reads
    // otherwise now makes the plan stale.
    let aws = crate::run::session::connect(&stack, &args.aws).await;
    if let Some(offline) = offline {
        let home = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
        let now = crate::run::load::with_inputs(&stack_args, offline, true, &aws, &home).await?;
        let mut problems: Vec<String> = now
            .found
            .iter()
            .filter(|(name, v)| saved.found.get(*name) != Some(*v))
            .map(|(name, v)| {
                format!(
                    "lookup `{name}` now finds {}",
                    serde_json::Value::from(v.clone().into_iter().collect::<serde_json::Map<_, _>>())
                )
            })
            .collect();
        for ((other, output), v) in &now.inputs {
            if !saved.inputs.iter().any(|(s, o, was)| s == other && o == output && was == v) {
                problems.push(format!("stack `{other}`'s output `{output}` is now {v}"));
            }
        }
        if !problems.is_empty() {
            return Err(stale("what the stack reads from outside", problems));
        }
    }
    timer.lap("parse");
    let targets = crate::run::load::targets(&stack, &saved.targets)?;
    let stop = crate::apply::Stop::from_signals()?;
    let held = crate::run::session::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    let (before, held) = alarms_before(&aws, &stack, gate.as_ref(), held, printer).await?;
    let store = crate::run::session::store(&stack, args.lock.state_dir.as_deref());
    let result = async {
        let (live, plan) = crate::run::session::before_changes(&stop, async {
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
    let result = match inputs {
        Some(inputs) => {
            let region = Some(saved.region.clone());
            let checks = Checks { cmd: args.verify.as_deref(), alarms: gate.as_ref().zip(before.as_ref()) };
            verify(&aws, &store, inputs, result, &checks, args, region, &stop, printer).await
        }
        None => result,
    };
    crate::run::session::unlock_after(held, printer).await?;
    if args.stats {
        crate::run::session::print_stats(&timer.doc(&aws.calls), printer);
    }
    result
}
