//! Saved plans: `converge plan --out FILE`, then `converge apply FILE`.
//!
//! # Guarantees
//! - `apply FILE` executes exactly the plan in the file, or nothing: it
//!   re-reads the spec and AWS under the stack's lock and refuses, before
//!   any change, when the stack file, a template, a variable, a resource's
//!   spec or the live state of a resource in the plan differs from when the
//!   plan was made, naming each difference.
//! - The file holds no secret: values from `${env.NAME}` are masked in the
//!   plan and the spec views, and recorded by name only (`secrets`); apply
//!   reads them again and refuses if one is missing. Live state is recorded
//!   as digests, and never of an attribute fed by a secret.
//! - The file names its format and version; a converge refuses a file of a
//!   newer version instead of misreading it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::PlanDoc;
use super::{Action, Plan};
use crate::digest;
use crate::live::LiveState;
use crate::spec::Stack;

/// The `format` field of every saved plan.
pub const FORMAT: &str = "converge-plan";
/// The version of the saved-plan format this converge writes and reads.
pub const VERSION: u32 = 1;
/// The largest plan file converge reads.
pub const MAX_BYTES: u64 = 64 << 20;

/// A plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    pub converge_version: String,
    /// Seconds since the Unix epoch when the plan was made.
    pub created_unix: u64,
    /// The stack file, as the plan command named it.
    pub stack_file: PathBuf,
    /// SHA-256 of the stack file's text.
    pub stack_digest: String,
    /// Template path → SHA-256 of its source.
    pub templates: BTreeMap<String, String>,
    pub env: String,
    /// `--env` as the plan command had it (none for a stack without
    /// environments).
    pub env_arg: Option<String>,
    pub region: String,
    /// Variables set from outside the file (`CONVERGE_VAR_*`, `--var`):
    /// reused by apply.
    pub vars: BTreeMap<String, String>,
    /// Environment variables the spec reads secrets from: names only.
    pub secrets: BTreeSet<String>,
    /// `--target` names, if the plan was targeted.
    pub targets: Vec<String>,
    /// Each resource as the spec said it (secrets masked).
    pub spec: BTreeMap<String, Value>,
    /// For each resource in the plan (`kind.name`): its live objects, by id,
    /// as attribute → digest.
    pub live: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// What the stack's lookups found when it was planned: applied with
    /// these (no call before the spec is checked), then made again, and
    /// the plan is stale if one found something else.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub found: BTreeMap<String, BTreeMap<String, Value>>,
    /// The other stacks' outputs it read, as `(stack, output, value)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<(String, String, Value)>,
    pub plan: PlanDoc,
}

/// Why a plan file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: not a converge plan file", .0.display())]
    NotAPlan(PathBuf),
    #[error(
        "{}: a plan file of format version {found}, made by converge {by}; this converge ({}) reads version {VERSION} and older. Apply it with converge {by} or newer, or make the plan again with this one.",
        .path.display(), env!("CARGO_PKG_VERSION")
    )]
    Newer { path: PathBuf, found: u32, by: String },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
}

/// Whether `text` is a plan file (rather than a stack).
pub fn is_plan(text: &str) -> bool {
    text.trim_start().starts_with('{')
        && serde_json::from_str::<Value>(text).ok().and_then(|v| v.get("format").cloned())
            == Some(Value::String(FORMAT.into()))
}

/// Parses a plan file's text.
///
/// # Errors
/// Not a plan, a newer format, or a malformed one.
pub fn parse(path: &Path, text: &str) -> Result<SavedPlan, ReadError> {
    let v: Value = serde_json::from_str(text).map_err(|_| ReadError::NotAPlan(path.to_path_buf()))?;
    if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(ReadError::NotAPlan(path.to_path_buf()));
    }
    let found = v.get("format_version").and_then(Value::as_u64).unwrap_or(0);
    if found > u64::from(VERSION) {
        let by = v.get("converge_version").and_then(Value::as_str).unwrap_or("?").to_string();
        return Err(ReadError::Newer { path: path.to_path_buf(), found: found as u32, by });
    }
    serde_json::from_value(v).map_err(|e| ReadError::Invalid { path: path.to_path_buf(), message: e.to_string() })
}

/// The live objects of the resources in `plan`, as digests per attribute.
/// Attributes fed by a secret are left out.
fn live_marks(
    stack: &Stack,
    plan: &Plan,
    live: &LiveState,
) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> {
    let names: BTreeSet<(&str, &str)> = plan.resources.iter().map(|r| (r.kind, r.name.as_str())).collect();
    let mut out: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for ((kind, name), objects) in &live.objects {
        if !names.contains(&(*kind, name.as_str())) {
            continue;
        }
        let r = stack.resources.get(name);
        let sensitive = r.map(|r| r.sensitive.clone()).unwrap_or_default();
        // What `ignore_changes` names may move (scaling) without making the
        // plan stale: the apply leaves it as it finds it.
        let ignored = r.map(|r| r.ignore_changes.clone()).unwrap_or_default();
        for o in objects {
            let mut attrs: BTreeMap<String, String> = o
                .props
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !sensitive.contains(*k) && !ignored.contains(*k))
                .map(|(k, v)| (k.clone(), digest::of_value(v)))
                .collect();
            if !ignored.contains("tags") {
                attrs.insert("tags".into(), digest::of_value(&serde_json::to_value(&o.tags).unwrap_or_default()));
            }
            attrs.insert("outputs".into(), digest::of_value(&serde_json::to_value(&o.outputs).unwrap_or_default()));
            out.entry(format!("{kind}.{name}")).or_default().insert(o.id.clone(), attrs);
        }
    }
    out
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl SavedPlan {
    /// Records `plan`, made from `stack` and `live`.
    pub fn new(stack: &Stack, live: &LiveState, plan: &Plan, env_arg: Option<&str>, targets: &[String]) -> SavedPlan {
        SavedPlan {
            format: FORMAT.into(),
            format_version: VERSION,
            converge_version: env!("CARGO_PKG_VERSION").into(),
            created_unix: now_unix(),
            stack_file: stack.file.clone(),
            stack_digest: stack.source_digest.clone(),
            templates: stack
                .template_files()
                .iter()
                .map(|(p, s)| (p.clone(), digest::sha256_hex(s.as_bytes())))
                .collect(),
            env: stack.env.clone(),
            env_arg: env_arg.map(str::to_string),
            region: stack.region.clone(),
            vars: stack.overrides.clone(),
            secrets: stack.secret_refs.clone(),
            targets: targets.to_vec(),
            spec: stack.resources.iter().map(|(n, r)| (n.clone(), r.view())).collect(),
            live: live_marks(stack, plan, live),
            found: stack.found.clone(),
            inputs: stack.input_list(),
            plan: PlanDoc::new(plan),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// What differs in the spec (stack file, templates, variables,
    /// resources) between the plan and `stack`, loaded again from the same
    /// file with the plan's variables. `vars_now`: the variables set from
    /// outside at apply time (`CONVERGE_VAR_*`, `--var`).
    pub fn spec_changes(&self, stack: &Stack, vars_now: &BTreeMap<String, String>) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in vars_now {
            match self.vars.get(k) {
                Some(was) if was != v => out.push(format!("variable `{k}`: `{was}` when planned, `{v}` now")),
                None if stack.vars.contains_key(k) => {
                    out.push(format!("variable `{k}`: not set when planned, set to `{v}` now"))
                }
                _ => {}
            }
        }
        if stack.source_digest != self.stack_digest {
            out.push(format!("the stack file {} changed", self.stack_file.display()));
        }
        let now: BTreeMap<String, String> =
            stack.template_files().iter().map(|(p, s)| (p.clone(), digest::sha256_hex(s.as_bytes()))).collect();
        for (p, d) in &now {
            match self.templates.get(p) {
                Some(was) if was != d => out.push(format!("template {p} changed")),
                None => out.push(format!("template {p} is new")),
                _ => {}
            }
        }
        for p in self.templates.keys().filter(|p| !now.contains_key(*p)) {
            out.push(format!("template {p} is no longer used"));
        }
        let views: BTreeMap<&String, Value> = stack.resources.iter().map(|(n, r)| (n, r.view())).collect();
        for (name, view) in &views {
            match self.spec.get(*name) {
                None => out.push(format!("resource `{name}` was added to the spec")),
                Some(was) if was != view => {
                    out.push(format!("resource `{name}`: its spec changed ({})", differing_keys(was, view).join(", ")))
                }
                _ => {}
            }
        }
        for name in self.spec.keys().filter(|n| !views.contains_key(n)) {
            out.push(format!("resource `{name}` was removed from the spec"));
        }
        out
    }

    /// What differs in AWS, for the resources in the plan, between the
    /// plan and `live` (read again under the lock).
    pub fn live_changes(&self, stack: &Stack, plan: &Plan, live: &LiveState) -> Vec<String> {
        let now = live_marks(stack, plan, live);
        let mut out = Vec::new();
        let addresses: BTreeSet<&String> = self.live.keys().chain(now.keys()).collect();
        let empty = BTreeMap::new();
        for address in addresses {
            let was = self.live.get(address).unwrap_or(&empty);
            let is = now.get(address).unwrap_or(&empty);
            for (id, attrs) in was {
                match is.get(id) {
                    None => out.push(format!("{address} ({id}) was deleted")),
                    Some(now_attrs) if now_attrs != attrs => {
                        let changed: Vec<&str> = attrs
                            .iter()
                            .filter(|(k, v)| now_attrs.get(*k) != Some(*v))
                            .map(|(k, _)| k.as_str())
                            .chain(now_attrs.keys().filter(|k| !attrs.contains_key(*k)).map(String::as_str))
                            .collect();
                        out.push(format!("{address} ({id}) changed: {}", changed.join(", ")));
                    }
                    _ => {}
                }
            }
            for id in is.keys().filter(|id| !was.contains_key(*id)) {
                out.push(format!("{address}: a new object {id} appeared"));
            }
        }
        // Anything else that makes the plan differ (an object of another
        // resource appearing, an output moving).
        let again = PlanDoc::new(plan);
        if out.is_empty() && again.resources != self.plan.resources {
            for (a, b) in self.plan.resources.iter().zip(&again.resources) {
                if a != b {
                    out.push(format!("{}: planned {:?}, now {:?}", a.address, a.action, b.action));
                }
            }
            if self.plan.resources.len() != again.resources.len() {
                out.push(format!(
                    "the plan had {} resources, it would now have {}",
                    self.plan.resources.len(),
                    again.resources.len()
                ));
            }
        }
        out
    }

    /// The number of resources the saved plan changes.
    pub fn changes(&self) -> usize {
        self.plan.resources.iter().filter(|r| r.action != Action::NoOp).count()
    }
}

/// The top-level keys (and properties) that differ between two views.
fn differing_keys(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let (am, bm) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let keys: BTreeSet<&String> = am.keys().chain(bm.keys()).collect();
    for k in keys {
        if am.get(k) == bm.get(k) {
            continue;
        }
        match (am.get(k), bm.get(k)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) if k == "properties" => {
                let inner: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                out.extend(inner.into_iter().filter(|i| x.get(*i) != y.get(*i)).map(|i| i.to_string()));
            }
            _ => out.push(k.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_formats_and_other_files_are_refused_clearly() {
        let p = Path::new("p.json");
        let newer = r#"{"format": "converge-plan", "format_version": 99, "converge_version": "9.0.0"}"#;
        let e = parse(p, newer).unwrap_err().to_string();
        assert!(e.contains("format version 99, made by converge 9.0.0"), "{e}");
        assert!(e.contains("reads version 1 and older"), "{e}");
        assert!(matches!(parse(p, r#"{"format_version": 1}"#), Err(ReadError::NotAPlan(_))));
        assert!(matches!(parse(p, "stack: x\n"), Err(ReadError::NotAPlan(_))));
        assert!(is_plan(newer));
        assert!(!is_plan("stack: x\nresources: {}\n"));
        let broken = r#"{"format": "converge-plan", "format_version": 1}"#;
        assert!(matches!(parse(p, broken), Err(ReadError::Invalid { .. })));
    }

    #[test]
    fn differing_keys_names_properties() {
        let a = serde_json::json!({"kind": "k", "properties": {"size": 1, "x": 2}, "tags": {}});
        let b = serde_json::json!({"kind": "k", "properties": {"size": 2, "x": 2}, "tags": {"a": "b"}});
        assert_eq!(differing_keys(&a, &b), ["size", "tags"]);
    }
}
