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
    /// The stack's `outputs:` after the last apply. A sensitive one is kept
    /// without its value (`converge output --show-sensitive` reads it
    /// again): secrets are never written.
    #[serde(default)]
    pub outputs: BTreeMap<String, RecordedOutput>,
}

/// One output as the last apply left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedOutput {
    /// `None`: sensitive, or not known (a resource it uses was not applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The record of each of `stack`'s outputs given the resources' outputs
/// `known`.
pub fn outputs_of(
    stack: &crate::spec::Stack,
    known: &dyn Fn(&str, &str) -> Option<serde_json::Value>,
) -> BTreeMap<String, RecordedOutput> {
    stack
        .outputs
        .iter()
        .map(|(name, o)| {
            let value = if o.sensitive { None } else { o.resolve(known) };
            (name.clone(), RecordedOutput { value, sensitive: o.sensitive, description: o.description.clone() })
        })
        .collect()
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
