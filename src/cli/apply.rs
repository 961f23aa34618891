//! `converge apply`: plan, confirm, execute.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ApplyArgs, Ran};
use crate::aws::Aws;
use crate::plan::saved::{self, SavedPlan};
use crate::plan::{Action, render};
use crate::printer::{Printer, Style};
use crate::spec::Stack;
use crate::state::known_good::{self, KnownGood};
use crate::state::lock::commit_label;
use crate::state::runs;

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
    let home = super::store(&stack, args.lock.state_dir.as_deref());
    let stack = super::with_inputs(&args.stack, stack, true, &aws, &home).await?;
    let stop = crate::apply::Stop::from_signals()?;
    // Held from before the read of live state to the end: the plan applied
    // is the plan made, and no other run changes the stack meanwhile.
    let held = super::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    // A run refused the lock says nothing else.
    super::output::show_inputs(&stack, printer);
    // What a passed verification keeps as the last known good: the inputs
    // as this run read them.
    let inputs = match &args.verify {
        Some(_) => Some(KnownGood::capture(&stack, "", crate::state::lock::commit())?),
        None => None,
    };
    let store = super::store(&stack, args.lock.state_dir.as_deref());
    let result = locked(&aws, stack, targets, &args, &stop, &mut timer, printer).await;
    let result = match (&args.verify, inputs) {
        (Some(cmd), Some(inputs)) => {
            let region = args.stack.region.clone();
            verify(&aws, &store, inputs, result, cmd, &args, region, &stop, printer).await
        }
        _ => result,
    };
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
        let ran = Ran {
            command: "apply",
            started_ms: None,
            commit: crate::state::lock::commit(),
            live,
            plan: &plan,
            report: None,
            destroy: false,
        };
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
        command: "apply",
        commit: crate::state::lock::commit(),
        started_ms: None,
    };
    let code = execute_plan(aws, stack, live, plan, &args.lock.allow_destroy, &opts, printer).await;
    timer.lap("apply");
    code
}

/// `converge apply FILE`: the saved plan, exactly, or nothing.
async fn run_saved(saved: SavedPlan, args: &ApplyArgs, printer: &Printer) -> anyhow::Result<u8> {
    let mut timer = super::Timer::start();
    let file = args.stack.stack.display().to_string();
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
    let stack_args = super::StackArgs {
        stack: saved.stack_file.clone(),
        env: saved.env_arg.clone(),
        region: Some(saved.region.clone()),
        vars: saved.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    // Secrets are read again here; a missing one is refused offline. What
    // the stack reads from outside is what the plan read, for now.
    let stack = super::load(&stack_args, true)?;
    // `offline`: the stack as loaded, kept to read those again below.
    let (stack, offline) = if stack.lookups.is_empty() && stack.inputs.is_empty() {
        (stack, None)
    } else {
        (super::load_pinned(&stack_args, &saved.found, &saved.inputs)?, Some(stack))
    };
    // With --verify, what a passed check keeps as the last known good: the
    // inputs the plan was made from (checked unchanged just below).
    let inputs = match &args.verify {
        Some(_) => Some(KnownGood::capture(&stack, "", crate::state::lock::commit())?),
        None => None,
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
    let aws = super::connect(&stack, &args.aws).await;
    if let Some(offline) = offline {
        let home = super::store(&stack, args.lock.state_dir.as_deref());
        let now = super::with_inputs(&stack_args, offline, true, &aws, &home).await?;
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
    let targets = super::targets(&stack, &saved.targets)?;
    let stop = crate::apply::Stop::from_signals()?;
    let held = super::lock(&aws, &stack, &args.lock, "apply", printer).await?;
    let store = super::store(&stack, args.lock.state_dir.as_deref());
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
    let result = match (&args.verify, inputs) {
        (Some(cmd), Some(inputs)) => {
            let region = Some(saved.region.clone());
            verify(&aws, &store, inputs, result, cmd, args, region, &stop, printer).await
        }
        _ => result,
    };
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
    /// What the run record calls the run: `apply`, `import`, `rollback`.
    pub command: &'static str,
    /// The commit what it applies comes from: its record's and the
    /// `converge:commit` tags of what it changes.
    pub commit: Option<String>,
    /// When the run started (ms), if not when the process did.
    pub started_ms: Option<u128>,
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
    let report = crate::apply::execute(
        aws,
        stack.clone(),
        graph,
        known,
        opts.parallelism,
        opts.stop.clone(),
        opts.commit.clone(),
        printer,
    )
    .await;
    let ran = Ran {
        command: opts.command,
        commit: opts.commit.clone(),
        started_ms: opts.started_ms,
        live,
        plan: &plan,
        report: Some(&report),
        destroy: false,
    };
    super::record_applied(aws, opts.store, &stack, ran, printer).await;
    if let Some(path) = opts.trace {
        super::write_file(path, crate::apply::trace(&report).as_bytes())?;
    }
    Ok(super::exit_status("Apply", &report, printer))
}

/// `apply --verify CMD` (of a stack or of a saved plan), under the
/// apply's lock: runs CMD after an apply that succeeded; if it passes,
/// this apply's inputs become the last known good; if it fails, or the
/// apply failed, the last known good is applied again (in `region`) and
/// the exit status is 1. A plan that failed before any change (a stale
/// saved plan among them), or a run a signal stopped, is left as it is.
#[allow(clippy::too_many_arguments)]
async fn verify(
    aws: &Aws,
    store: &crate::state::Store,
    mut inputs: KnownGood,
    applied: anyhow::Result<u8>,
    cmd: &str,
    args: &ApplyArgs,
    region: Option<String>,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let code = applied?;
    if code > 1 {
        return Ok(code);
    }
    // This apply's record, written under the lock we hold.
    let run = runs::list(aws, store, &inputs.stack, &inputs.env, 1).await?.into_iter().next();
    let passed = if code == 0 {
        printer.out("");
        printer.out(&format!("Verifying: {cmd}"));
        match check(cmd, &inputs, args.verify_timeout).await {
            Ok(()) => true,
            Err(why) => {
                printer.out(&printer.paint(Style::Error, &format!("Verification failed: {why}.")));
                false
            }
        }
    } else {
        printer.out(&printer.paint(Style::Error, "The apply failed: not verified."));
        false
    };
    if let Some(mut run) = run {
        inputs.run_id = run.id.clone();
        run.verified = Some(passed);
        if let Err(e) = runs::write(aws, store, &run).await {
            printer.err(&format!("warning: could not record the verification in run {}: {e}", run.id));
        }
    }
    if passed {
        inputs.recorded_unix = crate::state::lock::now();
        known_good::write(aws, store, &inputs).await?;
        mark_known_good(aws, store, &inputs, printer).await;
        printer.out(&format!(
            "Verified: run {} ({}) is the last known good of {} / {}.",
            inputs.run_id,
            commit_label(inputs.commit.as_deref()),
            inputs.stack,
            inputs.env
        ));
        return Ok(0);
    }
    let Some(good) = known_good::find(aws, store, &inputs.stack, &inputs.env, None).await? else {
        printer.out(&format!(
            "No last known good of {} / {} to roll back to (no apply has passed --verify yet): left as applied.",
            inputs.stack, inputs.env
        ));
        return Ok(1);
    };
    printer.out("");
    printer.out(&format!(
        "Rolling back {} / {} to the last known good: run {} ({}).",
        good.stack,
        good.env,
        good.run_id,
        commit_label(good.commit.as_deref())
    ));
    let rolled = roll_back(aws, store, &good, region, args.parallelism.into(), stop, printer).await?;
    if rolled == 0 {
        printer.out(&printer.paint(
            Style::Error,
            &format!(
                "Rolled back to run {} ({}); the run that failed ({}) is no longer live.",
                good.run_id,
                commit_label(good.commit.as_deref()),
                commit_label(inputs.commit.as_deref())
            ),
        ));
    } else {
        printer.out(
            &printer.paint(Style::Error, "The rollback failed too: see above; `converge history` lists the runs."),
        );
    }
    Ok(1)
}

/// Marks what the verified apply left as the last known good on the
/// objects of kinds that prune old versions of themselves
/// ([`crate::kinds::Kind::mark_known_good`]), from the applied record. A
/// failure is a warning: the last known good is recorded either way, and
/// a rollback to a pruned version registers it again.
async fn mark_known_good(aws: &Aws, store: &crate::state::Store, inputs: &KnownGood, printer: &Printer) {
    let marked = async {
        let Some(applied) = crate::state::applied::read(aws, store, &inputs.stack, &inputs.env).await? else {
            return anyhow::Ok(());
        };
        for r in applied.resources.values() {
            if let Some(kind) = crate::kinds::lookup(&r.kind) {
                kind.mark_known_good(aws, &r.id).await?;
            }
        }
        Ok(())
    };
    if let Err(e) = marked.await {
        printer.err(&format!("warning: could not mark the last known good's objects: {e:#}"));
    }
}

/// Runs the verification command; `Err` says why it failed.
async fn check(cmd: &str, inputs: &KnownGood, timeout: std::time::Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("CONVERGE_STACK", &inputs.stack)
        .env("CONVERGE_ENV", &inputs.env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `sh -c {cmd}`: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(match status.code() {
            Some(c) => format!("`{cmd}` exited {c}"),
            None => format!("`{cmd}` was killed by a signal"),
        }),
        Ok(Err(e)) => Err(format!("`{cmd}`: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!("`{cmd}` ran longer than {}s", timeout.as_secs()))
        }
    }
}

/// Applies a known good again: its stack file and templates restored in a
/// scratch folder, loaded with its variables (secrets from the
/// environment, as always), planned against AWS now and executed without
/// a prompt, recorded as a `rollback` run in `store`. Stateful resources
/// stay protected: a rollback never deletes or replaces one.
pub async fn roll_back(
    aws: &Aws,
    store: &crate::state::Store,
    good: &KnownGood,
    region: Option<String>,
    parallelism: usize,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> anyhow::Result<u8> {
    let started = runs::now_ms();
    let dir = std::env::temp_dir().join(format!("converge-rollback-{}-{}", std::process::id(), good.run_id));
    let file = good.materialize(&dir)?;
    let a = super::StackArgs {
        stack: file.clone(),
        env: Some(good.env.clone()),
        region,
        vars: good.vars.clone().into_iter().collect(),
    };
    let loaded = super::load(&a, true);
    let result = async {
        let stack = super::with_pinned_inputs(&a, loaded?, good, aws, store).await?;
        let (live, plan) = super::before_changes(stop, async {
            let live = crate::live::read(aws, &stack).await?;
            let plan = crate::plan::plan(&stack, &live, None)?;
            Ok((live, plan))
        })
        .await?;
        printer.out(render::text(&plan, printer).trim_end());
        if !plan.has_changes() {
            let ran = Ran {
                command: "rollback",
                started_ms: Some(started),
                commit: good.commit.clone(),
                live: &live,
                plan: &plan,
                report: None,
                destroy: false,
            };
            super::record_applied(aws, store, &stack, ran, printer).await;
            return Ok(0);
        }
        // What is live after it is the known good's commit: its records and
        // `converge:commit` tags say so.
        let opts = ExecOptions {
            auto_approve: true,
            parallelism,
            stop,
            store,
            trace: None,
            command: "rollback",
            commit: good.commit.clone(),
            started_ms: Some(started),
        };
        printer.out("");
        execute_plan(aws, stack, &live, plan, &[], &opts, printer).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    // The rollback's record names what it went back to.
    if let Ok(Some(mut run)) = runs::list(aws, store, &good.stack, &good.env, 1).await.map(|r| r.into_iter().next())
        && run.command == "rollback"
        && run.rolled_back_to.is_none()
    {
        run.rolled_back_to = Some(good.run_id.clone());
        let _ = runs::write(aws, store, &run).await;
    }
    result
}
