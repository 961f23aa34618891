//! The last known good of a stack/env: the inputs of an apply that its
//! verification passed (`apply --verify`), kept so that a later failed
//! deployment, or `converge rollback`, can apply them again.
//!
//! Inputs, not outputs: the stack file and the templates it renders, as
//! they were, and the variables given on the command line or as
//! `CONVERGE_VAR_*`. `${env.*}` values (secrets) are not kept: a rollback
//! reads them from its environment again, as the apply did. One record per
//! verified run, at `known-good/<stack>/<env>/<run-id>.json`; the newest
//! is the last known good.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::aws::Aws;
use crate::spec::Stack;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownGood {
    pub format_version: u32,
    pub stack: String,
    pub env: String,
    /// The verified run ([`super::runs`]).
    pub run_id: String,
    pub commit: Option<String>,
    pub recorded_unix: u64,
    /// The stack file's name.
    pub stack_file: String,
    /// Its source.
    pub source: String,
    /// Template path, as the stack names it (relative to the stack file),
    /// → source.
    pub templates: BTreeMap<String, String>,
    /// `--var` and `CONVERGE_VAR_*` values.
    pub vars: BTreeMap<String, String>,
    /// What its lookups found: a rollback applies the same AMI, not the
    /// newest one.
    #[serde(default)]
    pub found: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// The other stacks' outputs it read, as `(stack, output, value)`.
    #[serde(default)]
    pub inputs: Vec<(String, String, serde_json::Value)>,
}

pub fn prefix(stack: &str, env: &str) -> String {
    format!("known-good/{stack}/{env}/")
}

impl KnownGood {
    /// The inputs of `stack` as loaded now.
    ///
    /// # Errors
    /// The stack file cannot be read again.
    pub fn capture(stack: &Stack, run_id: &str, commit: Option<String>) -> std::io::Result<KnownGood> {
        let source = crate::spec::read_limited(&stack.file, crate::spec::MAX_STACK_BYTES)?;
        Ok(KnownGood {
            format_version: VERSION,
            stack: stack.name.clone(),
            env: stack.env.clone(),
            run_id: run_id.to_string(),
            commit,
            recorded_unix: super::lock::now(),
            stack_file: stack.file.file_name().and_then(|n| n.to_str()).unwrap_or("stack.yaml").to_string(),
            source,
            templates: stack.template_files().into_iter().map(|(p, s)| (p, s.to_string())).collect(),
            vars: stack.overrides.clone(),
            found: stack.found.clone(),
            inputs: stack.input_list(),
        })
    }

    /// Whether it kept every value `stack` reads from outside (lookups,
    /// other stacks' outputs), so a rollback reads none of them again.
    pub fn pins(&self, stack: &Stack) -> bool {
        stack.lookups.keys().all(|l| self.found.contains_key(l))
            && stack.inputs.keys().all(|(s, o)| self.inputs.iter().any(|(s2, o2, _)| s == s2 && o == o2))
    }

    /// Writes the stack file and its templates under `dir`, at the same
    /// places relative to each other; returns the stack file's path.
    ///
    /// # Errors
    /// A template path that is absolute or leaves the tree it was kept
    /// with; a write fails.
    pub fn materialize(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let invalid = |p: &str| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("template path `{p}` cannot be restored"))
        };
        // As deep as the templates climb (`../templates/x.j2`).
        let mut depth = 0;
        for p in self.templates.keys() {
            let mut up = 0usize;
            for c in Path::new(p).components() {
                match c {
                    Component::ParentDir => up += 1,
                    Component::Normal(_) | Component::CurDir => {}
                    _ => return Err(invalid(p)),
                }
            }
            depth = depth.max(up);
        }
        let mut stack_dir = dir.to_path_buf();
        for i in 0..depth {
            stack_dir.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&stack_dir)?;
        let stack_file = stack_dir.join(&self.stack_file);
        std::fs::write(&stack_file, &self.source)?;
        for (p, source) in &self.templates {
            let to = normalize(&stack_dir.join(p));
            if !to.starts_with(dir) {
                return Err(invalid(p));
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&to, source)?;
        }
        Ok(stack_file)
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Writes `kg` as the stack/env's newest known good.
///
/// # Errors
/// The store cannot be written.
pub async fn write(aws: &Aws, store: &Store, kg: &KnownGood) -> Result<(), StoreError> {
    let body = serde_json::to_vec_pretty(kg).unwrap_or_default();
    store.put(aws, &format!("{}{}.json", prefix(&kg.stack, &kg.env), kg.run_id), &body).await
}

/// The known good of run `to` (an id or its unique prefix), else the
/// newest; `None` if there is none.
///
/// # Errors
/// The store cannot be read; the record does not parse or is newer than
/// this converge reads; `to` names no or several runs.
pub async fn find(
    aws: &Aws,
    store: &Store,
    stack: &str,
    env: &str,
    to: Option<&str>,
) -> Result<Option<KnownGood>, StoreError> {
    let prefix = prefix(stack, env);
    let keys = store.record_keys(aws, &prefix).await?;
    let key = match to {
        None => keys.last().cloned(),
        Some(id) => {
            let hits: Vec<&String> = keys.iter().filter(|k| k[prefix.len()..].starts_with(id)).collect();
            match hits.as_slice() {
                [one] => Some((*one).clone()),
                [] => {
                    return Err(
                        store.invalid(&prefix, format!("no verified run `{id}`: `converge history` lists the runs"))
                    );
                }
                _ => {
                    return Err(store
                        .invalid(&prefix, format!("`{id}` names {} verified runs: give more of its id", hits.len())));
                }
            }
        }
    };
    let Some(key) = key else { return Ok(None) };
    let Some(kg) = store.read_json::<KnownGood>(aws, &key).await? else { return Ok(None) };
    if kg.format_version > VERSION {
        return Err(
            store.invalid(&key, format!("known-good format {} is newer than this converge reads", kg.format_version))
        );
    }
    Ok(Some(kg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_good_is_restored_with_its_templates_where_the_stack_finds_them() {
        let kg = KnownGood {
            format_version: VERSION,
            stack: "s".into(),
            env: "e".into(),
            run_id: "r".into(),
            commit: None,
            recorded_unix: 0,
            stack_file: "app.yaml".into(),
            source: "stack: s\n".into(),
            templates: [("../templates/a.j2".to_string(), "A".to_string()), ("local.j2".to_string(), "L".to_string())]
                .into(),
            vars: BTreeMap::new(),
            found: BTreeMap::new(),
            inputs: Vec::new(),
        };
        let dir = std::env::temp_dir().join(format!("converge-kg-{}", std::process::id()));
        let stack = kg.materialize(&dir).unwrap();
        let base = stack.parent().unwrap();
        assert_eq!(std::fs::read_to_string(&stack).unwrap(), "stack: s\n");
        assert_eq!(std::fs::read_to_string(normalize(&base.join("../templates/a.j2"))).unwrap(), "A");
        assert_eq!(std::fs::read_to_string(base.join("local.j2")).unwrap(), "L");
        let escaping = KnownGood { templates: [("/etc/passwd".to_string(), String::new())].into(), ..kg };
        assert!(escaping.materialize(&dir.join("x")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
