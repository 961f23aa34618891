//! Where converge keeps what is not in AWS's objects themselves: the lock
//! of a stack/env, the record of what its last applies left
//! ([`applied`]), and its history of runs ([`runs`]).
//!
//! One home per stack: the S3 bucket the stack names (`state: { bucket:
//! … }`), else `.converge/` beside the stack file (or `--state-dir`). Both
//! give the same four operations, each atomic: create-if-absent, read,
//! replace-if-unchanged and remove-if-unchanged, keyed by an entity tag. On
//! S3 they are conditional writes (`If-None-Match: *`, `If-Match`); on disk,
//! a hard link of a complete file (which fails if the key exists) and a
//! file lock around compare-and-swap.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;

use aws_sdk_s3::primitives::ByteStream;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};

pub mod applied;
pub mod known_good;
pub mod lock;
pub mod runs;

/// A state home.
#[derive(Debug, Clone)]
pub enum Store {
    S3 { bucket: String, prefix: String },
    Dir(PathBuf),
}

/// A conditional write lost: the key exists (create) or changed (replace,
/// remove) since it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The result of a conditional operation: its new entity tag, or a
/// [`Conflict`].
pub type Conditional<T> = Result<Result<T, Conflict>, StoreError>;

impl Store {
    /// Where `key` lives, for messages.
    pub fn describe(&self, key: &str) -> String {
        match self {
            Store::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}{key}"),
            Store::Dir(dir) => dir.join(key).display().to_string(),
        }
    }

    /// Writes `body` at `key` unless something is there.
    pub async fn create(&self, aws: &Aws, key: &str, body: &[u8]) -> Conditional<String> {
        match self {
            Store::S3 { bucket, prefix } => s3_put(aws, bucket, &format!("{prefix}{key}"), body, None).await,
            Store::Dir(dir) => {
                let path = dir.join(key);
                let io = |source| StoreError::Io { path: path.clone(), source };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                // The whole body goes to a file of this run's own first, then
                // is linked into place: the link fails if the key exists, and
                // a reader never sees the key empty or half written (an
                // exclusive create followed by a write would show it so).
                let tmp = path.with_extension(format!("{}-{:016x}.new", std::process::id(), fastrand::u64(..)));
                std::fs::File::create(&tmp)
                    .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()))
                    .map_err(io)?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => Ok(Ok(tag(body))),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Err(Conflict)),
                    Err(e) => Err(io(e)),
                }
            }
        }
    }

    /// The body at `key` and its entity tag, if there is one.
    pub async fn read(&self, aws: &Aws, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        match self {
            Store::S3 { bucket, prefix } => {
                let res = aws
                    .s3
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .send()
                    .await
                    .map_err(sdk("s3:GetObject"));
                let Some(out) = not_found(res, &["NoSuchKey"])? else { return Ok(None) };
                let etag = out.e_tag.clone().unwrap_or_default();
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| AwsError::other("s3:GetObject", format!("reading the body: {e}")))?;
                Ok(Some((body.into_bytes().to_vec(), etag)))
            }
            Store::Dir(dir) => {
                let path = dir.join(key);
                match std::fs::read(&path) {
                    Ok(body) => {
                        let t = tag(&body);
                        Ok(Some((body, t)))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::Io { path, source }),
                }
            }
        }
    }

    /// Writes `body` at `key` whatever is there: for records only the lock
    /// holder writes.
    pub async fn put(&self, aws: &Aws, key: &str, body: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::S3 { bucket, prefix } => {
                aws.s3
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .content_type("application/json")
                    .body(ByteStream::from(body.to_vec()))
                    .send()
                    .await
                    .map_err(sdk("s3:PutObject"))?;
                Ok(())
            }
            Store::Dir(dir) => {
                let path = dir.join(key);
                let io = |source| StoreError::Io { path: path.clone(), source };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let tmp = path.with_extension("tmp");
                std::fs::File::create(&tmp)
                    .and_then(|mut f| f.write_all(body).and_then(|()| f.sync_all()))
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(io)
            }
        }
    }

    /// The JSON record at `key`, parsed; `None` if there is none.
    ///
    /// # Errors
    /// The store cannot be read; the body is not a `T` ([`Store::invalid`]).
    pub async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        aws: &Aws,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let Some((body, _)) = self.read(aws, key).await? else { return Ok(None) };
        serde_json::from_slice(&body).map(Some).map_err(|e| self.invalid(key, e.to_string()))
    }

    /// The error for a record at `key` that is not what this converge
    /// reads.
    pub fn invalid(&self, key: &str, message: String) -> StoreError {
        StoreError::Io {
            path: self.describe(key).into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
        }
    }

    /// The `.json` records directly under `prefix`, their keys sorted (for
    /// ids that sort by time: oldest first).
    pub async fn record_keys(&self, aws: &Aws, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys: Vec<String> =
            self.list(aws, prefix).await?.into_iter().filter(|k| k.ends_with(".json")).collect();
        keys.sort();
        Ok(keys)
    }

    /// The keys directly under `prefix` (a folder: `runs/app/prod/`).
    pub async fn list(&self, aws: &Aws, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Store::S3 { bucket, prefix: root } => {
                let pages: Vec<_> = aws
                    .s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(format!("{root}{prefix}"))
                    .delimiter("/")
                    .into_paginator()
                    .send()
                    .collect::<Vec<_>>()
                    .await;
                let mut keys = Vec::new();
                for page in pages {
                    let page = page.map_err(sdk("s3:ListObjectsV2"))?;
                    keys.extend(
                        page.contents
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(|o| o.key?.strip_prefix(root.as_str()).map(str::to_string)),
                    );
                }
                Ok(keys)
            }
            Store::Dir(dir) => {
                let path = dir.join(prefix);
                let entries = match std::fs::read_dir(&path) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => return Err(StoreError::Io { path, source }),
                };
                Ok(entries
                    .flatten()
                    .filter(|e| e.path().is_file())
                    .filter_map(|e| Some(format!("{prefix}{}", e.file_name().to_str()?)))
                    .collect())
            }
        }
    }

    /// Replaces the body at `key` if its entity tag is still `etag`.
    pub async fn replace(&self, aws: &Aws, key: &str, body: &[u8], etag: &str) -> Conditional<String> {
        match self {
            Store::S3 { bucket, prefix } => s3_put(aws, bucket, &format!("{prefix}{key}"), body, Some(etag)).await,
            Store::Dir(dir) => {
                let path = dir.join(key);
                swap(&path, etag, |path| {
                    let tmp = path.with_extension("tmp");
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(body)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, path)
                })
                .map(|r| r.map(|()| tag(body)))
            }
        }
    }

    /// Removes `key` if its entity tag is still `etag`; gone already is
    /// success.
    pub async fn remove(&self, aws: &Aws, key: &str, etag: &str) -> Conditional<()> {
        match self {
            Store::S3 { bucket, prefix } => {
                let res = aws
                    .s3
                    .delete_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .if_match(etag)
                    .send()
                    .await
                    .map_err(sdk("s3:DeleteObject"));
                match s3_conditional(res.map(|_| ())) {
                    Err(StoreError::Aws(e)) if e.is("NoSuchKey") => Ok(Ok(())),
                    other => other,
                }
            }
            Store::Dir(dir) => swap(&dir.join(key), etag, |path| match std::fs::remove_file(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }),
        }
    }
}

/// A conditional PutObject: only if the key is absent (`if_match: None`),
/// or only if its entity tag is still `if_match`.
async fn s3_put(aws: &Aws, bucket: &str, key: &str, body: &[u8], if_match: Option<&str>) -> Conditional<String> {
    let put = aws.s3.put_object().bucket(bucket).key(key).content_type("application/json");
    let put = match if_match {
        None => put.if_none_match("*"),
        Some(etag) => put.if_match(etag),
    };
    let res = put.body(ByteStream::from(body.to_vec())).send().await.map_err(sdk("s3:PutObject"));
    s3_conditional(res.map(|o| o.e_tag.unwrap_or_default()))
}

/// S3 answers a lost condition with 412 `PreconditionFailed`, and two
/// conditional writes racing on one key with 409
/// `ConditionalRequestConflict`: both are a [`Conflict`].
fn s3_conditional<T>(res: Result<T, AwsError>) -> Conditional<T> {
    match res {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is("PreconditionFailed") || e.is("ConditionalRequestConflict") => Ok(Err(Conflict)),
        Err(e) => Err(e.into()),
    }
}

/// Runs `change` on `path` if its content still has entity tag `etag`,
/// holding an exclusive lock on a guard file beside it meanwhile.
fn swap(
    path: &std::path::Path,
    etag: &str,
    change: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) -> Conditional<()> {
    let io = |source| StoreError::Io { path: path.to_path_buf(), source };
    let guard = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("guard"))
        .map_err(io)?;
    guard.lock().map_err(io)?;
    let current = match std::fs::read(path) {
        Ok(body) => Some(tag(&body)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    // Dropping the guard file's handle releases its lock.
    if current.as_deref() != Some(etag) {
        return Ok(Err(Conflict));
    }
    change(path).map_err(io)?;
    Ok(Ok(()))
}

/// A local file's entity tag: a hash of its content.
fn tag(body: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("{:016x}", h.finish())
}
