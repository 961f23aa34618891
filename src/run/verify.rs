//! `--verify` and the alarm gate: the checks after an apply, the last
//! known good they make, and the rollback to it when a check or the apply
//! fails.

use crate::aws::Aws;
use crate::plan::text;
use crate::printer::{Printer, Style};
use crate::run::alarms::{Before, Gate};
use crate::run::execute::{ExecOptions, execute_plan};
use crate::run::record::Ran;
use crate::state::known_good::{self, KnownGood};
use crate::state::lock::commit_label;
use crate::state::runs;

/// What an apply is checked by: `--verify CMD`, then the alarm gate
/// (`--verify-alarms`, the stack's `verify:`) with the alarms' states
/// before the change.
pub struct Checks<'a> {
    pub cmd: Option<&'a str>,
    pub alarms: Option<(&'a Gate, &'a Before)>,
}

/// `apply --verify CMD` and the alarm gate (of a stack or of a saved
/// plan), under the apply's lock: after an apply that succeeded, runs CMD,
/// then watches the alarms for the window; if both pass, this apply's
/// inputs become the last known good; if either fails, or the apply
/// failed, the last known good is applied again (in `region`), the run
/// record names the alarms that fired, and the exit status is 1. A plan
/// that failed before any change (a stale saved plan among them), or a run
/// a signal stopped (during the window too), is left as it is.
#[allow(clippy::too_many_arguments)]
pub async fn verify(
    aws: &Aws,
    store: &crate::state::Store,
    mut inputs: KnownGood,
    applied: anyhow::Result<u8>,
    checks: &Checks<'_>,
    args: &crate::run::apply::Options,
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
    let mut fired = Vec::new();
    let passed = if code == 0 {
        let mut passed = true;
        if let Some(cmd) = checks.cmd {
            printer.out("");
            printer.out(&format!("Verifying: {cmd}"));
            if let Err(why) = check(cmd, &inputs, args.verify_timeout).await {
                printer.out(&printer.paint(Style::Error, &format!("Verification failed: {why}.")));
                passed = false;
            }
        }
        if passed && let Some((gate, before)) = checks.alarms {
            printer.out("");
            match crate::run::alarms::watch(aws, gate, before, stop, printer).await {
                Ok(Some(())) => {}
                Ok(None) => {
                    printer.out(&printer.paint(
                        Style::Error,
                        "Stopped while watching the alarms: not verified, not rolled back (left as applied).",
                    ));
                    return Ok(stop.requests().exit_code());
                }
                Err(failed) => {
                    printer.out(&printer.paint(Style::Error, &format!("Verification failed: {}.", failed.why)));
                    fired = failed.alarms;
                    passed = false;
                }
            }
        }
        passed
    } else {
        printer.out(&printer.paint(Style::Error, "The apply failed: not verified."));
        false
    };
    if let Some(mut run) = run {
        inputs.run_id = run.id.clone();
        run.verified = Some(passed);
        run.alarms = fired;
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
    // A stack without environments is applied without --env (its env is
    // `default`).
    let envs = crate::spec::environment_names(&file).unwrap_or_default();
    let a = super::StackRef {
        file: file.clone(),
        env: (!envs.is_empty()).then(|| good.env.clone()),
        region,
        vars: good.vars.clone().into_iter().collect(),
    };
    let loaded = crate::run::load::load(&a, true);
    let result = async {
        let stack = crate::run::load::with_pinned_inputs(&a, loaded?, good, aws, store).await?;
        let (live, plan) = crate::run::session::before_changes(stop, async {
            let live = crate::live::read(aws, &stack).await?;
            let plan = crate::plan::plan(&stack, &live, None)?;
            Ok((live, plan))
        })
        .await?;
        printer.out(text::render(&plan, printer).trim_end());
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
            crate::run::record::record_applied(aws, store, &stack, ran, printer).await;
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
            destroy: false,
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
