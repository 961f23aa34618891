//! The record of what converge last applied to a stack/env: for each
//! resource, its object's id and the digest of what was applied to it
//! ([`crate::digest::applied`]).
//!
//! `converge drift` reads it to tell an object deleted outside converge
//! (`missing`: recorded, gone) from one not created yet (`pending`), and to
//! classify kinds AWS cannot tag. Taggable objects also carry their digest
//! in their `converge:applied` tag, which drift prefers: it survives a lost
//! record. Only a run holding the stack/env's lock writes the record;
//! [`crate::apply::record`] computes it from a run's report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::aws::Aws;

pub const VERSION: u32 = 1;

/// What the last applies left.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub format_version: u32,
    pub stack: String,
    pub env: String,
    /// Seconds since the Unix epoch of the last write.
    pub updated_unix: u64,
    pub resources: BTreeMap<String, AppliedResource>,
    /// The variables the last apply was given from outside the file
    /// (`--var`, `CONVERGE_VAR_*`), as given: drift and `status --drift`
    /// compare with them unless given again (a deploy's `image_tag`).
    /// Variables are plain values, never secrets.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedResource {
    pub kind: String,
    pub id: String,
    /// The digest of what was applied (`converge:applied`).
    pub digest: String,
}

pub fn key(stack: &str, env: &str) -> String {
    format!("applied/{stack}/{env}.json")
}

/// The record, if there is one.
///
/// # Errors
/// The store cannot be read; a record that does not parse is an error too
/// (drift must not guess).
pub async fn read(aws: &Aws, store: &Store, stack: &str, env: &str) -> Result<Option<Applied>, StoreError> {
    store.read_json(aws, &key(stack, env)).await
}

/// Writes the record.
///
/// # Errors
/// The store cannot be written.
pub async fn write(aws: &Aws, store: &Store, applied: &Applied) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(applied).unwrap_or_default();
    store.put(aws, &key(&applied.stack, &applied.env), &body).await
}
