//! A run's session with AWS and its state home: the connection, the
//! stack/env lock, the steps before any change (signals, the prompt, the
//! protection rule), the exit status and `--stats`.

use super::{Endpoint, Locking};
use crate::aws::{Aws, AwsOptions};
use crate::printer::{Printer, Style};
use crate::spec::Stack;

pub async fn connect(stack: &Stack, args: &Endpoint) -> Aws {
    Aws::connect(&AwsOptions {
        region: stack.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        profile: args.profile.clone(),
    })
    .await
}

/// The stack's state home: its bucket, else `--state-dir`, else
/// `.converge/` beside the stack file.
pub fn store(stack: &Stack, state_dir: Option<&std::path::Path>) -> crate::state::Store {
    match (&stack.state, state_dir) {
        (Some(s), _) => crate::state::Store::S3 { bucket: s.bucket.clone(), prefix: s.prefix.clone() },
        (None, Some(dir)) => crate::state::Store::Dir(dir.to_path_buf()),
        (None, None) => crate::state::Store::Dir(
            stack.file.parent().map(std::path::Path::to_path_buf).unwrap_or_default().join(".converge"),
        ),
    }
}

/// Takes the stack/env's lock for `operation`, saying so.
pub async fn lock(
    aws: &Aws,
    stack: &Stack,
    args: &Locking,
    operation: &str,
    printer: &Printer,
) -> anyhow::Result<crate::state::lock::HeldLock> {
    let store = store(stack, args.state_dir.as_deref());
    let opts = crate::state::lock::LockOptions {
        timeout: args.lock_timeout,
        lease: args.lock_lease,
        operation: operation.into(),
        file: stack.file.display().to_string(),
        env: stack.env.clone(),
    };
    let held = crate::state::lock::acquire(aws, &store, &stack.name, &stack.env, &opts).await?;
    if let Some(old) = &held.took_over {
        printer.out(&format!(
            "Took over the lock of a run whose lease ran out ({}): lock {}",
            old.holder(),
            held.location()
        ));
    }
    tracing::info!(lock = %held.location(), id = %held.info.id, "lock acquired");
    Ok(held)
}

/// Releases the lock at the end of a run, and says if it had been lost.
pub async fn unlock_after(held: crate::state::lock::HeldLock, printer: &Printer) -> anyhow::Result<()> {
    let location = held.location();
    if !held.release().await? {
        printer.err(&printer.paint(
            Style::Error,
            &format!(
                "error: this run's lock {location} was taken over by another run while it ran: check what both did"
            ),
        ));
        anyhow::bail!("the lock was lost during the run");
    }
    Ok(())
}

/// A run stopped by a signal before it changed anything.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {} before any change; nothing was changed", .0.name())]
pub struct Interrupted(pub crate::apply::stop::Requests);

/// Runs `work` (reading, planning, asking: nothing that changes AWS, so
/// safe to drop midway) unless a signal comes first.
pub async fn before_changes<T>(
    stop: &crate::apply::Stop,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut s = stop.clone();
    if s.requested() {
        return Err(Interrupted(s.requests()).into());
    }
    tokio::select! {
        biased;
        r = s.first() => Err(Interrupted(r).into()),
        v = work => v,
    }
}

/// Asks for `yes` on a terminal; refuses without one unless auto-approved.
/// A signal at the prompt cancels (see [`before_changes`]).
pub async fn confirm(auto_approve: bool, what: &str, printer: &Printer) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to {what} without confirmation: stdin is not a terminal. Review the plan and pass --auto-approve (as CI does)."
        );
    }
    printer.prompt(&format!("Do you want to {what}? Only 'yes' will be accepted: "));
    // Read on a thread of its own, so that a signal is not held up by it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut answer).map(|_| answer));
    });
    let answer = rx.await.map_err(|_| anyhow::anyhow!("reading the answer failed"))??;
    Ok(answer.trim() == "yes")
}

/// Refuses, before any change, a plan that deletes or replaces protected
/// resources without both opt-ins, naming each and what to do.
pub fn check_protected(plan: &crate::plan::Plan, stack: &Stack, allow: &[String]) -> anyhow::Result<()> {
    let refused = crate::plan::refused(plan, stack, allow);
    if refused.is_empty() {
        return Ok(());
    }
    let mut msg = String::from("refusing to delete or replace resources that hold data; nothing was changed:");
    for rc in &refused {
        let what = if rc.action == crate::plan::Action::Replace { "replaced" } else { "deleted" };
        let name = &rc.name;
        let how = match stack.resources.get(name) {
            Some(r) if r.protect => format!("set `protect: false` on it in the spec and pass --allow-destroy {name}"),
            Some(_) => format!("pass --allow-destroy {name}"),
            None => format!(
                "it left the spec: put it back with `protect: false`, apply, then remove it and pass --allow-destroy {name}"
            ),
        };
        msg.push_str(&format!("\n  {name} ({}) would be {what}: {how}", rc.kind));
    }
    anyhow::bail!(msg)
}

/// Prints the summary of an executed plan and gives the exit status: 0
/// done, 1 failed, 128 + the signal when interrupted (130, 143).
pub fn exit_status(what: &str, report: &crate::apply::Report, printer: &Printer) -> u8 {
    let ok = crate::apply::summarize(what, report, printer);
    match report.interrupted {
        Some(r) => r.exit_code(),
        None if ok => 0,
        None => 1,
    }
}

/// `--stats`: the wall time of each phase of a run, and (from the AWS
/// clients' counter) its calls.
pub struct Timer {
    phases: Vec<(&'static str, std::time::Duration)>,
    last: std::time::Instant,
}

impl Timer {
    pub fn start() -> Timer {
        Timer { phases: Vec::new(), last: std::time::Instant::now() }
    }

    /// Ends phase `name` now (a repeated name adds up).
    pub fn lap(&mut self, name: &'static str) {
        let d = self.last.elapsed();
        self.last = std::time::Instant::now();
        match self.phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += d,
            None => self.phases.push((name, d)),
        }
    }

    pub fn doc(&self, calls: &crate::aws::stats::CallCounter) -> crate::plan::json::StatsDoc {
        let by = calls.snapshot();
        crate::plan::json::StatsDoc {
            calls: by.values().sum(),
            by_action: by.into_iter().map(|((s, o), n)| (format!("{s}:{o}"), n)).collect(),
            phases: self
                .phases
                .iter()
                .map(|(n, d)| crate::plan::json::PhaseDoc { name: (*n).to_string(), ms: d.as_secs_f64() * 1000.0 })
                .collect(),
        }
    }
}

/// Prints `--stats` on stderr (stdout stays the plan or document).
pub fn print_stats(doc: &crate::plan::json::StatsDoc, printer: &Printer) {
    let total: f64 = doc.phases.iter().map(|p| p.ms).sum();
    let mut s = format!("converge stats: {} AWS calls, {:.0} ms\n", doc.calls, total);
    for p in &doc.phases {
        s.push_str(&format!("  {:<8} {:>9.1} ms\n", p.name, p.ms));
    }
    let width = doc.by_action.keys().map(String::len).max().unwrap_or(0);
    for (action, n) in &doc.by_action {
        s.push_str(&format!("  {action:<width$} {n:>5}\n"));
    }
    printer.err(s.trim_end());
}

/// Writes a file converge produces (a plan, a report) whole: to a
/// temporary file beside it, then renamed over it.
pub fn write_file(path: &std::path::Path, body: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("converge-tmp");
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}
