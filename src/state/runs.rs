//! The history of a stack/env: one record per `apply` and `destroy`, in
//! the stack's state home beside its lock and its applied record, at
//! `runs/<stack>/<env>/<id>.json`.
//!
//! # Guarantees
//! - Written by the run that holds the stack/env's lock, once, when it
//!   ends, whatever the result (a failed or interrupted run is recorded
//!   too); a run that could not take the lock writes nothing.
//! - Ids sort by start time (`20261130T052800.123Z-1a2b3c4d`), so listing the
//!   keys gives the history in order without reading every record.
//! - No secret: a record holds names, addresses, counts, the commit and
//!   CI's URLs, never a property value.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::aws::Aws;

pub const VERSION: u32 = 1;

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub format_version: u32,
    pub id: String,
    pub stack: String,
    pub env: String,
    /// `apply`, `destroy` or `rollback`.
    pub command: String,
    /// `CI_COMMIT_SHA`, else the work tree's `git rev-parse HEAD`.
    pub commit: Option<String>,
    /// The commit's page (`CI_PROJECT_URL/-/commit/SHA`), `CI_PIPELINE_URL`
    /// and `CI_JOB_URL`, when run by GitLab CI.
    #[serde(default)]
    pub commit_url: Option<String>,
    pub pipeline_url: Option<String>,
    pub job_url: Option<String>,
    pub who: String,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started_unix: u64,
    pub ended_unix: u64,
    /// What the plan it executed would change.
    pub planned: Planned,
    pub result: RunResult,
    /// Addresses of the resources it created, updated, replaced or deleted.
    pub changed: Vec<String>,
    /// Addresses of the operations that failed, and why (AWS's message).
    pub failed: Vec<String>,
    /// `apply --verify`: whether the check passed (a passed one made this
    /// run's inputs the last known good); `None`: not verified.
    #[serde(default)]
    pub verified: Option<bool>,
    /// For a rollback: the run whose inputs it applied again.
    #[serde(default)]
    pub rolled_back_to: Option<String>,
    /// The alarms that went to ALARM while the apply was watched (the
    /// alarm gate): why it failed verification and was rolled back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// Every planned change was made.
    Succeeded,
    /// The plan had nothing to change.
    NoChanges,
    /// An operation failed (those that did not depend on it ran).
    Failed,
    /// A signal stopped the run.
    Interrupted,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Succeeded => "succeeded",
            RunResult::NoChanges => "no changes",
            RunResult::Failed => "failed",
            RunResult::Interrupted => "interrupted",
        }
    }
}

/// Where a stack/env's runs live.
pub fn prefix(stack: &str, env: &str) -> String {
    format!("runs/{stack}/{env}/")
}

/// A new run id for a run started at `started_ms` (milliseconds since the
/// epoch): the UTC time to the millisecond, then 8 random hex digits (a
/// rollback right after the apply it undoes sorts after it; two runs of
/// one millisecond never collide).
pub fn new_id(started_ms: u128) -> String {
    let t = super::lock::utc((started_ms / 1000) as u64); // 2026-11-30 05:28:00 UTC
    let compact: String = t.trim_end_matches(" UTC").chars().filter(|c| c.is_ascii_digit() || *c == ' ').collect();
    let (date, time) = compact.split_once(' ').unwrap_or((&compact, ""));
    format!("{date}T{time}.{:03}Z-{:08x}", started_ms % 1000, fastrand::u32(..))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// Writes `run`.
///
/// # Errors
/// The store cannot be written.
pub async fn write(aws: &Aws, store: &Store, run: &Run) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(run).unwrap_or_default();
    store.put(aws, &format!("{}{}.json", prefix(&run.stack, &run.env), run.id), &body).await
}

/// The stack/env's runs, newest first; at most `limit` of them are read.
///
/// # Errors
/// The store cannot be listed or read; a record that does not parse (or
/// that a newer converge wrote) is an error, not skipped.
pub async fn list(aws: &Aws, store: &Store, stack: &str, env: &str, limit: usize) -> Result<Vec<Run>, StoreError> {
    let keys = store.record_keys(aws, &prefix(stack, env)).await?;
    let mut runs = Vec::new();
    for key in keys.iter().rev().take(limit) {
        let Some(run) = store.read_json::<Run>(aws, key).await? else { continue };
        if run.format_version > VERSION {
            return Err(store.invalid(
                key,
                format!(
                    "run record format {} is newer than this converge reads ({VERSION}): upgrade converge",
                    run.format_version
                ),
            ));
        }
        runs.push(run);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_sort_by_start_time() {
        let a = super::new_id(1_764_480_480_007); // 2025-11-30 05:28:00.007 UTC
        let b = super::new_id(1_764_480_480_010);
        let c = super::new_id(1_764_480_481_000);
        assert!(a.starts_with("20251130T052800.007Z-"), "{a}");
        assert!(a < b && b < c, "{a} < {b} < {c}");
    }
}
