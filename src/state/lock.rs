//! One run at a time per stack/env: a leased lock in the stack's [`Store`].
//!
//! # Guarantees
//! - Two runs never hold the lock at once: it is taken with a create that
//!   fails if the lock exists, and taken over only with a replace that fails
//!   if the lock changed since it was read.
//! - A holder that dies (CI job killed, laptop closed) stops renewing its
//!   lease; once the lease has run out, the next run takes the lock over by
//!   itself. `converge unlock` exists for the rest.
//! - A holder that finds its lock taken over (it stalled past its lease)
//!   says so loudly at once and at the end of its run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Conflict, Store, StoreError};
use crate::aws::Aws;

/// What the lock records: who holds it, doing what, since when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub operation: String,
    pub who: String,
    pub host: String,
    pub pid: u32,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub job_url: Option<String>,
    /// Seconds since the epoch.
    pub started: u64,
    /// The lease: the holder renews it while it runs.
    pub expires: u64,
    pub lease_seconds: u64,
}

impl LockInfo {
    /// `alice@ci-runner-3 (pid 4242, apply, commit 1a2b3c4d) since
    /// 2026-11-29 20:55:03 UTC (4m12s ago)`.
    pub fn holder(&self) -> String {
        let mut what = format!("pid {}, {}", self.pid, self.operation);
        if let Some(c) = &self.commit {
            what.push_str(&format!(", commit {}", short(c)));
        }
        if let Some(j) = &self.job_url {
            what.push_str(&format!(", {j}"));
        }
        let ago = now().saturating_sub(self.started);
        format!("{}@{} ({what}) since {} ({} ago)", self.who, self.host, utc(self.started), human(ago))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{stack} is locked by {holder}; lock id {id}, lease until {until}\n  help: wait for it with --lock-timeout (e.g. --lock-timeout 10m); if that run is gone, its lease runs out by itself, or: converge unlock {file} --env {env} {id}"
    )]
    Held { stack: String, holder: String, id: String, until: String, file: String, env: String },
    #[error("the lock {where_} is not a converge lock ({why}); remove it by hand if no run holds it")]
    Unreadable { where_: String, why: String },
    #[error("the lock store: {0}")]
    Store(#[from] StoreError),
}

/// How to take the lock.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// How long to wait for a held lock (0: fail at once).
    pub timeout: Duration,
    /// The lease: renewed every third of it while the run lives.
    pub lease: Duration,
    pub operation: String,
    /// For messages: the stack file and environment.
    pub file: String,
    pub env: String,
}

/// A lock this process holds. Release it with [`HeldLock::release`].
pub struct HeldLock {
    aws: Aws,
    store: Store,
    key: String,
    pub info: LockInfo,
    etag: Arc<Mutex<String>>,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    /// Whose expired lock this one replaced.
    pub took_over: Option<LockInfo>,
}

/// The key of a stack/env's lock in its store.
pub fn key(stack: &str, env: &str) -> String {
    format!("locks/{stack}/{env}.json")
}

/// Takes the lock of `stack`/`env`, waiting up to `opts.timeout` for a
/// held one and taking over one whose lease ran out.
///
/// # Errors
/// [`LockError::Held`] naming the holder when the wait is over.
pub async fn acquire(
    aws: &Aws,
    store: &Store,
    stack: &str,
    env: &str,
    opts: &LockOptions,
) -> Result<HeldLock, LockError> {
    let key = key(stack, env);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let id = crate::aws::client_token();
    let lease = opts.lease.as_secs().max(1);
    let mine = |started: u64| LockInfo {
        id: id.clone(),
        operation: opts.operation.clone(),
        who: who(),
        host: host(),
        pid: std::process::id(),
        commit: commit(),
        job_url: std::env::var("CI_JOB_URL").ok(),
        started,
        expires: started + lease,
        lease_seconds: lease,
    };
    loop {
        let info = mine(now());
        let body = serde_json::to_vec_pretty(&info).expect("lock info serializes");
        if let Ok(etag) = store.create(aws, &key, &body).await? {
            return Ok(hold(aws, store, key, info, etag, None));
        }
        // Held: by whom, and is its lease still running?
        let Some((current, etag)) = store.read(aws, &key).await? else { continue };
        let held: LockInfo = serde_json::from_slice(&current)
            .map_err(|e| LockError::Unreadable { where_: store.describe(&key), why: e.to_string() })?;
        if held.expires < now() {
            if let Ok(etag) = store.replace(aws, &key, &body, &etag).await? {
                return Ok(hold(aws, store, key, info, etag, Some(held)));
            }
            continue; // someone else took it over first
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(LockError::Held {
                stack: format!("stack {stack}, environment {env},"),
                holder: held.holder(),
                id: held.id,
                until: utc(held.expires),
                file: opts.file.clone(),
                env: env.to_string(),
            });
        }
        tracing::info!(holder = %held.holder(), "waiting for the lock");
        tokio::time::sleep(left.min(Duration::from_secs(2))).await;
    }
}

fn hold(aws: &Aws, store: &Store, key: String, info: LockInfo, etag: String, took_over: Option<LockInfo>) -> HeldLock {
    let etag = Arc::new(Mutex::new(etag));
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = {
        let (aws, store, key, etag, lost, mut info) =
            (aws.clone(), store.clone(), key.clone(), etag.clone(), lost.clone(), info.clone());
        tokio::spawn(async move {
            let every = Duration::from_secs(info.lease_seconds).div_f64(3.0).max(Duration::from_millis(300));
            loop {
                tokio::time::sleep(every).await;
                info.expires = now() + info.lease_seconds;
                let body = serde_json::to_vec_pretty(&info).expect("lock info serializes");
                let mut current = etag.lock().await;
                match store.replace(&aws, &key, &body, &current).await {
                    Ok(Ok(new)) => *current = new,
                    Ok(Err(Conflict)) => {
                        lost.store(true, Ordering::SeqCst);
                        tracing::error!(
                            "the lock {} was taken over by another run: this run stalled past its lease",
                            store.describe(&key)
                        );
                        return;
                    }
                    // A failed renewal is retried at the next tick; the
                    // lease leaves two more.
                    Err(e) => tracing::warn!(error = %e, "renewing the lock failed"),
                }
            }
        })
    };
    HeldLock { aws: aws.clone(), store: store.clone(), key, info, etag, lost, renewer, took_over }
}

impl HeldLock {
    /// Where the lock is, for messages.
    pub fn location(&self) -> String {
        self.store.describe(&self.key)
    }

    /// True if another run took the lock over (this one stalled past its
    /// lease).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing and removes the lock (unless another run took it
    /// over). Returns false if the lock had been lost.
    pub async fn release(self) -> Result<bool, StoreError> {
        self.renewer.abort();
        let lost = self.lost.clone();
        let _ = self.renewer.await;
        if lost.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let etag = self.etag.lock().await.clone();
        Ok(self.store.remove(&self.aws, &self.key, &etag).await?.is_ok())
    }
}

/// Removes the lock `id` of `stack`/`env`, whoever holds it: for a run
/// that is gone. Returns what it held.
pub async fn unlock(aws: &Aws, store: &Store, stack: &str, env: &str, id: &str) -> anyhow::Result<LockInfo> {
    let key = key(stack, env);
    let Some((body, etag)) = store.read(aws, &key).await? else {
        anyhow::bail!("stack {stack}, environment {env} is not locked ({})", store.describe(&key));
    };
    let held: LockInfo = serde_json::from_slice(&body)
        .map_err(|e| LockError::Unreadable { where_: store.describe(&key), why: e.to_string() })?;
    if held.id != id {
        anyhow::bail!(
            "the lock of stack {stack}, environment {env} is {}, not {id}: held by {}",
            held.id,
            held.holder()
        );
    }
    if store.remove(aws, &key, &etag).await?.is_err() {
        anyhow::bail!(
            "the lock changed while it was being removed (renewed or taken over): run `converge unlock` again"
        );
    }
    Ok(held)
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn who() -> String {
    ["GITLAB_USER_LOGIN", "USER", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .unwrap_or_else(|| "unknown".into())
}

pub fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The commit being applied: CI's, else the work tree's HEAD. Asked once
/// per process (the lock, the run record, the tags and the last known good
/// all name the same one).
pub fn commit() -> Option<String> {
    static COMMIT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    COMMIT
        .get_or_init(|| {
            std::env::var("CI_COMMIT_SHA").ok().or_else(|| {
                let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
                out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            })
        })
        .clone()
}

/// A commit as people read it: its first 12 characters.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// `commit 1a2b3c4d5e6f`, or `no commit`.
pub fn commit_label(commit: Option<&str>) -> String {
    commit.map_or("no commit".into(), |c| format!("commit {}", short(c)))
}

/// `4m12s`, `2h3m`, `40s`.
pub fn human(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        _ => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
    }
}

/// Seconds since the epoch as `2026-11-29 20:55:03 UTC`.
pub fn utc(secs: u64) -> String {
    // Days to a civil date (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let t = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", t / 3600, t % 3600 / 60, t % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_people_write_them() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_796_071_503), "2026-11-30 20:45:03 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::human(40), "40s");
        assert_eq!(super::human(252), "4m12s");
        assert_eq!(super::human(7380), "2h3m");
    }
}
