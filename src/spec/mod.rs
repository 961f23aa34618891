//! Stack specs: YAML → raw structs ([`raw`]) → resolved, validated model.
//!
//! Everything here is offline: a spec that fails to load makes no AWS call.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use crate::kinds::{self, DynKind};

pub mod expr;
pub mod location;
mod pieces;
pub mod raw;
mod resolve;
pub use resolve::MAX_STACK_BYTES;
mod strict;
pub mod template;

pub use resolve::{LoadOptions, StackOutputs, VAR_ENV_PREFIX, load, load_str, read_limited};
pub use template::Template;

/// A resolved stack for one environment.
#[derive(Debug)]
pub struct Stack {
    pub file: PathBuf,
    pub name: String,
    pub env: String,
    pub region: String,
    pub resources: BTreeMap<String, Resource>,
    /// `state: { bucket }`: where locks live, if not beside the stack.
    pub state: Option<StateBucket>,
    /// Every variable's value for this environment (variables are plain
    /// values, never secrets).
    pub vars: BTreeMap<String, serde_json::Value>,
    /// The variables set from outside the file (`CONVERGE_VAR_*`, then
    /// `--var`), as given: what a saved plan records and re-checks.
    pub overrides: BTreeMap<String, String>,
    /// The process environment variables `${env.NAME}` reads: names only.
    pub secret_refs: BTreeSet<String>,
    /// SHA-256 of the stack file's text.
    pub source_digest: String,
    /// `outputs:`, by name.
    pub outputs: BTreeMap<String, Output>,
    /// Other stacks' outputs this one reads (`${stack.NAME.outputs.X}`):
    /// `(stack, output)` → the value used (unknown when loaded offline).
    pub inputs: BTreeMap<(String, String), serde_json::Value>,
    /// `lookups:`, by name.
    pub lookups: BTreeMap<String, crate::lookup::Lookup>,
    /// What each lookup found, when they were made (empty offline).
    pub found: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// `verify:`: the alarms an apply watches, and for how long.
    pub verify: Option<Verify>,
}

/// A stack's deploy gate (`verify:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// `(resource, alarm name)` of the stack's `cloudwatch.alarm`s watched.
    pub alarms: Vec<(String, String)>,
    /// How long they are watched after an apply.
    pub window: std::time::Duration,
}

/// How long an apply watches its alarms unless told otherwise.
pub const DEFAULT_VERIFY_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// A resolved output: its value may reference resources' outputs.
#[derive(Debug, Clone)]
pub struct Output {
    pub value: Template,
    pub sensitive: bool,
    pub description: Option<String>,
}

impl Output {
    /// Its value given the resources' outputs (`None` while one it uses is
    /// not known).
    pub fn resolve(&self, known: &dyn Fn(&str, &str) -> Option<serde_json::Value>) -> Option<serde_json::Value> {
        let v = self.value.resolve(known).ok()?;
        (!crate::value::contains_unknown(&v)).then_some(v)
    }
}

/// The stack's state bucket and key prefix.
#[derive(Debug, Clone)]
pub struct StateBucket {
    pub bucket: String,
    pub prefix: String,
}

/// A resolved resource. Its properties may still reference other resources'
/// outputs, which are only known from live state or after apply.
#[derive(Clone)]
pub struct Resource {
    pub name: String,
    pub kind: &'static dyn DynKind,
    pub physical_name: String,
    pub props: Template,
    /// Resources this one needs first: references and `depends_on`.
    pub deps: BTreeSet<String>,
    /// Every tag to set, the `converge:` identity tags included.
    pub tags: BTreeMap<String, String>,
    /// Top-level properties whose value comes from a process environment
    /// variable: never printed, never written.
    pub sensitive: BTreeSet<String>,
    /// `wait_timeout`, or the kind's default.
    pub timeout: std::time::Duration,
    /// `protect`, or the kind's default (kinds that hold data are protected).
    pub protect: bool,
    /// `adopt: true`: an untagged object with this physical name is taken
    /// over (tagged) instead of reported as a conflict.
    pub adopt: bool,
    /// The canonical properties, when they reference no other resource:
    /// checked once while loading, then what every plan of the resource
    /// wants ([`crate::plan::desired_props`] computes no other).
    pub canonical: Option<std::sync::Arc<serde_json::Value>>,
    /// `ignore_changes`: top-level properties (or `tags`) whose live value
    /// is kept: not compared, not recorded in the applied digest's place
    /// of them, and sent back as it is by an update.
    pub ignore_changes: BTreeSet<String>,
    /// `renamed_from`: the key whose object this resource takes over.
    pub renamed_from: Option<String>,
}

/// The environments a stack file defines, in file order, without
/// resolving it (`drift --all-envs` then loads each).
///
/// # Errors
/// The file cannot be read or is not YAML.
pub fn environment_names(path: &std::path::Path) -> Result<Vec<String>, SpecError> {
    let src = read_limited(path, resolve::MAX_STACK_BYTES)
        .map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&src).map_err(|e| SpecError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    Ok(doc
        .get("environments")
        .and_then(serde_yaml_ng::Value::as_mapping)
        .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default())
}

/// Parses `90s`, `45m`, `2h` (a number and one unit).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    // Checked: `99999999999999999h` is no duration, not an overflow.
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        _ => None,
    }?;
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

impl Resource {
    /// The resource as the spec says it, with every secret masked and
    /// references unresolved (see [`Template::written`]).
    pub fn view(&self) -> serde_json::Value {
        let mut props = self.props.written();
        if let serde_json::Value::Object(m) = &mut props {
            for (k, v) in m.iter_mut() {
                if self.sensitive.contains(k) {
                    *v = serde_json::Value::String(crate::value::SENSITIVE.into());
                }
            }
        }
        let mut view = serde_json::json!({
            "kind": self.kind.type_name(),
            "physical_name": self.physical_name,
            "properties": props,
            "tags": self.tags,
            "depends_on": self.deps,
            "protect": self.protect,
            "wait_timeout_s": self.timeout.as_secs(),
        });
        // Only when set: the views of stacks without it stay as they were.
        if !self.ignore_changes.is_empty() {
            view["ignore_changes"] = serde_json::json!(self.ignore_changes);
        }
        view
    }
}

impl Stack {
    /// The other stacks' outputs it read, as `(stack, output, value)`: how
    /// a saved plan and a known good keep them.
    pub fn input_list(&self) -> Vec<(String, String, serde_json::Value)> {
        self.inputs.iter().map(|((s, o), v)| (s.clone(), o.clone(), v.clone())).collect()
    }

    /// Every template file the stack renders: path → source.
    pub fn template_files(&self) -> BTreeMap<String, std::sync::Arc<str>> {
        let mut out = BTreeMap::new();
        for r in self.resources.values() {
            r.props.files(&mut out);
        }
        out
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("name", &self.name)
            .field("kind", &self.kind.type_name())
            .field("physical_name", &self.physical_name)
            .field("deps", &self.deps)
            .finish_non_exhaustive()
    }
}

/// One problem in a stack file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: error: {}", self.file.display(), self.line, self.col, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// A stack that failed to load: every problem found, in file order.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}\n{} error(s) in {}; nothing was sent to AWS. Fix them and run `converge validate` again.", list(.diagnostics), .diagnostics.len(), .file.display())]
    Invalid { file: PathBuf, diagnostics: Vec<Diagnostic> },
}

fn list(d: &[Diagnostic]) -> String {
    d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// `serde_path_to_error` path as `a.b[0].c`, the format of
/// [`location::SpanIndex`].
pub fn path_string(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s = location::join_index(&s, *index),
            Segment::Map { key } => s = location::join_key(&s, key),
            Segment::Enum { variant } => s = location::join_key(&s, variant),
            Segment::Unknown => {}
        }
    }
    s
}

/// The closest of `candidates` to `word`, if close enough to be a typo.
///
/// Ranked by edit distance (Damerau-Levenshtein: a swap is one edit), then
/// Jaro-Winkler (which favours a shared prefix: `prod` → `production`); the
/// first candidate wins a tie.
pub fn suggest<'a, I: IntoIterator<Item = &'a str>>(word: &str, candidates: I) -> Option<String> {
    let mut best: Option<((f64, f64), &str)> = None;
    for c in candidates {
        let score = (strsim::normalized_damerau_levenshtein(word, c), strsim::jaro_winkler(word, c));
        let close = score.0 >= 0.6 || score.1 >= 0.8;
        if close && best.is_none_or(|(b, _)| score.0 > b.0 || (score.0 == b.0 && score.1 > b.1)) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// `did you mean `x`?` or the list of valid names.
pub fn help_for<'a, I: IntoIterator<Item = &'a str> + Clone>(word: &str, candidates: I) -> Option<String> {
    if let Some(s) = suggest(word, candidates.clone()) {
        return Some(format!("did you mean `{s}`?"));
    }
    let all: Vec<&str> = candidates.into_iter().collect();
    if all.is_empty() { None } else { Some(format!("expected one of: {}", all.join(", "))) }
}

/// The default physical name: `<stack>-<env>-<resource>`, lower case, with
/// `_` as `-` so that it is valid for every kind that takes a name.
pub fn default_physical_name(stack: &str, env: &str, resource: &str) -> String {
    format!("{stack}-{env}-{resource}").to_lowercase().replace('_', "-")
}

impl Stack {
    /// The scope a kind's read runs in.
    pub fn scope(
        &self,
        kind: &dyn DynKind,
        shared: std::sync::Arc<crate::aws::shared::SharedReads>,
        conflicts: std::sync::Arc<std::sync::Mutex<Vec<kinds::Conflict>>>,
    ) -> kinds::Scope {
        kinds::Scope {
            shared,
            conflicts,
            kind: kind.type_name(),
            taggable: kind.taggable(),
            tagging_type: kind.tagging_type(),
            written: self
                .resources
                .values()
                .filter(|r| r.kind.type_name() == kind.type_name())
                .map(|r| r.view()["properties"].clone())
                .collect(),
            stack: self.name.clone(),
            env: self.env.clone(),
            region: self.region.clone(),
            names: self
                .resources
                .values()
                .filter(|r| r.kind.type_name() == kind.type_name())
                .map(|r| (r.physical_name.clone(), (r.name.clone(), r.adopt)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_are_checked() {
        assert_eq!(super::parse_duration("45m"), Some(std::time::Duration::from_secs(2700)));
        assert_eq!(super::parse_duration("99999999999999999h"), None);
        assert_eq!(super::parse_duration("0s"), None);
        assert_eq!(super::parse_duration("5d"), None);
    }

    #[test]
    fn suggestions_prefer_fewer_edits() {
        let s = |w: &str, c: &[&str]| super::suggest(w, c.iter().copied());
        assert_eq!(s("privte_a", &["private_a", "private_b"]).as_deref(), Some("private_a"));
        assert_eq!(s("private_c", &["private_a", "private_b"]).as_deref(), Some("private_a"));
        assert_eq!(s("vcp", &["subnet", "vpc"]).as_deref(), Some("vpc"));
        assert_eq!(s("prod", &["production", "staging"]).as_deref(), Some("production"));
        assert_eq!(s("cidr_blok", &["cidr_block", "enable_dns_support"]).as_deref(), Some("cidr_block"));
        assert_eq!(s("zzz", &["cidr_block", "vpc_id"]), None);
    }
}
