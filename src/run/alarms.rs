//! The alarm gate of `apply --verify-alarms` and a stack's `verify:`: the
//! alarms' states read before the change, then watched for a window after
//! it (CloudFormation's rollback triggers).
//!
//! Which alarm a failed deploy is blamed on: one that goes to ALARM after
//! the deploy started. An alarm already in ALARM before it is reported and
//! not blamed (the deploy did not cause it, and rolling back would not clear
//! it); if it returns to OK and goes to ALARM again within the window, its
//! state changed after the deploy and it is blamed. CloudWatch's
//! `StateUpdatedTimestamp` tells the two apart, so no clock of this machine
//! is compared with AWS's.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;

use crate::aws::{Aws, AwsError};
use crate::printer::{Printer, Style};

/// What to watch: alarm names, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub alarms: Vec<String>,
    pub window: Duration,
}

/// An alarm's state as read: the state and when it last changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub state: String,
    pub since: Option<aws_sdk_cloudwatch::primitives::DateTime>,
    /// CloudWatch's reason for the state (`Threshold Crossed: …`).
    pub reason: Option<String>,
}

/// The alarms' states before the deploy, by name; `None`: no such alarm
/// yet (one the stack itself creates).
pub type Before = BTreeMap<String, Option<Seen>>;

/// Why the window failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The alarms blamed: they went to ALARM after the deploy started.
    pub alarms: Vec<String>,
    pub why: String,
}

/// Reads the alarms' states before any change. An alarm that does not exist
/// is an error unless the stack creates it (`declared`): nothing would ever
/// be watched under that name.
///
/// # Errors
/// AWS's; an alarm that does not exist and that the stack does not declare.
pub async fn before(aws: &Aws, gate: &Gate, declared: &[String], printer: &Printer) -> anyhow::Result<Before> {
    let now = read(aws, &gate.alarms).await?;
    let missing: Vec<&String> = gate.alarms.iter().filter(|n| !now.contains_key(*n) && !declared.contains(n)).collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        anyhow::bail!(
            "no CloudWatch alarm named {} in {}: nothing was changed. `aws cloudwatch describe-alarms --alarm-names NAME` finds one; fix --verify-alarms",
            names.join(", "),
            aws.region
        );
    }
    for (name, seen) in &now {
        if seen.state == StateValue::Alarm.as_str() {
            printer.out(&printer.paint(
                Style::Change,
                &format!("Alarm {name} is in ALARM before this deploy: reported, not blamed on it (unless it clears and fires again)."),
            ));
        }
    }
    Ok(gate.alarms.iter().map(|n| (n.clone(), now.get(n).cloned())).collect())
}

/// Watches the alarms for the gate's window after a deploy; `Err` names
/// the alarms that went to ALARM (the first poll that sees one ends the
/// watch) or says why they could not be watched.
///
/// # Guarantees
/// Read-only. Returns early, with `Ok(None)`, when `stop` is signalled: the
/// window was not completed, so the deploy is neither passed nor blamed.
pub async fn watch(
    aws: &Aws,
    gate: &Gate,
    before: &Before,
    stop: &crate::apply::Stop,
    printer: &Printer,
) -> Result<Option<()>, Failed> {
    let poll = poll_every(gate.window);
    let deadline = tokio::time::Instant::now() + gate.window;
    printer.out(&format!(
        "Watching {} for {}: {}.",
        if gate.alarms.len() == 1 { "1 alarm".to_string() } else { format!("{} alarms", gate.alarms.len()) },
        crate::state::lock::human(gate.window.as_secs()),
        gate.alarms.join(", ")
    ));
    let mut stop = stop.clone();
    loop {
        let now = read(aws, &gate.alarms)
            .await
            .map_err(|e| Failed { alarms: Vec::new(), why: format!("the alarms could not be read: {e}") })?;
        let gone: Vec<String> = gate.alarms.iter().filter(|n| !now.contains_key(*n)).cloned().collect();
        if !gone.is_empty() {
            return Err(Failed { why: format!("no alarm named {} to watch", gone.join(", ")), alarms: Vec::new() });
        }
        let blamed = blame(before, &now);
        if !blamed.is_empty() {
            let why = blamed
                .iter()
                .map(|n| match now.get(n).and_then(|s| s.reason.as_deref()) {
                    Some(r) => format!("{n} went to ALARM: {}", r.trim_end_matches('.')),
                    None => format!("{n} went to ALARM"),
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Failed { alarms: blamed, why });
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            let window = crate::state::lock::human(gate.window.as_secs());
            let still: Vec<&str> = now
                .iter()
                .filter(|(_, seen)| seen.state == StateValue::Alarm.as_str())
                .map(|(name, _)| name.as_str())
                .collect();
            match still.is_empty() {
                true => printer.out(&format!("No alarm went to ALARM in {window}.")),
                false => printer.out(&format!(
                    "No alarm went to ALARM in {window} ({} in ALARM since before the deploy: not blamed on it).",
                    still.join(", ")
                )),
            }
            return Ok(Some(()));
        }
        tokio::select! {
            _ = stop.first() => return Ok(None),
            _ = tokio::time::sleep(left.min(poll)) => {}
        }
    }
}

/// How often the window polls: a tenth of it, between 1 s and 15 s (an
/// alarm evaluates at most every 10 s; most every minute).
pub fn poll_every(window: Duration) -> Duration {
    (window / 10).clamp(Duration::from_secs(1), Duration::from_secs(15))
}

/// The alarms in ALARM whose state changed since `before` (or that had
/// none before): those a deploy is blamed for.
pub fn blame(before: &Before, now: &BTreeMap<String, Seen>) -> Vec<String> {
    now.iter()
        .filter(|(_, seen)| seen.state == StateValue::Alarm.as_str())
        .filter(|(name, seen)| match before.get(*name) {
            Some(Some(was)) => was.state != seen.state || was.since != seen.since,
            _ => true,
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The alarms of these names that exist (metric and composite alike).
async fn read(aws: &Aws, names: &[String]) -> Result<BTreeMap<String, Seen>, AwsError> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let (metric, composite) =
        crate::aws::cloudwatch::describe_alarms(aws, names, &[AlarmType::MetricAlarm, AlarmType::CompositeAlarm])
            .await?;
    let metric =
        metric.iter().map(|a| (a.alarm_name(), a.state_value(), a.state_updated_timestamp(), a.state_reason()));
    let composite =
        composite.iter().map(|a| (a.alarm_name(), a.state_value(), a.state_updated_timestamp(), a.state_reason()));
    Ok(metric
        .chain(composite)
        .filter_map(|(name, state, since, reason)| {
            let seen =
                Seen { state: state?.as_str().to_string(), since: since.copied(), reason: reason.map(str::to_string) };
            Some((name?.to_string(), seen))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::primitives::DateTime;

    fn seen(state: &str, since: i64) -> Seen {
        Seen { state: state.into(), since: Some(DateTime::from_secs(since)), reason: None }
    }

    #[test]
    fn only_alarms_that_fired_after_the_deploy_are_blamed() {
        let before: Before = [
            ("fired".to_string(), Some(seen("OK", 100))),
            ("already".to_string(), Some(seen("ALARM", 50))),
            ("refired".to_string(), Some(seen("ALARM", 60))),
            ("quiet".to_string(), Some(seen("OK", 10))),
            ("new".to_string(), None),
        ]
        .into();
        let now: BTreeMap<String, Seen> = [
            ("fired".to_string(), seen("ALARM", 200)),
            ("already".to_string(), seen("ALARM", 50)),
            // Cleared and fired again during the window.
            ("refired".to_string(), seen("ALARM", 210)),
            ("quiet".to_string(), seen("OK", 10)),
            ("new".to_string(), seen("ALARM", 220)),
        ]
        .into();
        assert_eq!(blame(&before, &now), ["fired", "new", "refired"]);
    }

    #[test]
    fn the_window_is_polled_often_enough_and_not_too_often() {
        assert_eq!(poll_every(Duration::from_secs(600)), Duration::from_secs(15));
        assert_eq!(poll_every(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(poll_every(Duration::from_secs(3)), Duration::from_secs(1));
    }
}
