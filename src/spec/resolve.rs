//! Second phase: raw structs → [`Stack`], with every check that can be made
//! offline. All problems are collected, each with file:line:col.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::expr::{self, Part, Reference};
use super::location::{Pos, SpanIndex, join_index, join_key, push_index, push_key};
use super::raw::{RawEnvironment, RawResource, RawStack};
use super::{Diagnostic, Resource, SpecError, Stack, Template, default_physical_name, help_for};
use crate::graph::Graph;
use crate::kinds::{self, Kind, TAG_ENV, TAG_RESOURCE, TAG_STACK};

/// What the command line adds to a stack file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--env`.
    pub env: Option<String>,
    /// `--region`: overrides the stack's and the environment's region.
    pub region: Option<String>,
    /// `${env.NAME}` must be set (plan/apply). `validate` leaves it off so a
    /// review job needs no secrets.
    pub require_secrets: bool,
    /// `--var NAME=VALUE`: overrides a declared variable (after the
    /// environment's overrides and `CONVERGE_VAR_NAME`); the value is read
    /// as a YAML scalar, so `--var app_min=3` is a number, unless the
    /// variable is declared as text.
    pub vars: Vec<(String, String)>,
    /// The values of `${stack.NAME.outputs.OUTPUT}`, read from the other
    /// stacks' records (`None`: offline, e.g. `validate`: they stay
    /// unknown). Keyed by `(stack, output)`; an `Err` is why it has no
    /// value, reported where it is used.
    pub stack_outputs: Option<StackOutputs>,
    /// What each lookup found (`None`: offline, they stay unknown).
    pub lookups: Option<BTreeMap<String, crate::lookup::Found>>,
}

/// Other stacks' outputs by `(stack, output)`: the value, or why there is
/// none.
pub type StackOutputs = BTreeMap<(String, String), Result<Value, String>>;

/// Prefix of process environment variables that override stack variables,
/// as `TF_VAR_` does for Terraform.
pub const VAR_ENV_PREFIX: &str = "CONVERGE_VAR_";

fn scalar(text: &str) -> Value {
    serde_yaml_ng::from_str::<Value>(text)
        .ok()
        .filter(|v| !v.is_object() && !v.is_array())
        .unwrap_or_else(|| Value::String(text.into()))
}

/// A command-line or environment override of a declared variable: text
/// for a variable declared as text (`--var postgres_version=17.2` stays
/// "17.2"), else read as a YAML scalar (`--var app_min=3` is a number).
fn override_value(declared: &Value, text: &str) -> Value {
    if declared.is_string() { Value::String(text.into()) } else { scalar(text) }
}

/// Reads and resolves a stack file.
///
/// # Errors
/// [`SpecError::Read`] when the file cannot be read, [`SpecError::Invalid`]
/// with every problem found otherwise.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Stack, SpecError> {
    let src =
        read_limited(path, MAX_STACK_BYTES).map_err(|source| SpecError::Read { path: path.to_path_buf(), source })?;
    load_str(path, &src, opts)
}

/// The largest stack file converge reads: far above any real stack (the
/// GitLab stack is about 50 KB), far below what would strain memory.
pub const MAX_STACK_BYTES: u64 = 4 << 20;
/// The largest template: rendered files go to S3 objects and user data
/// (EC2 takes 16 KB of user data).
pub const MAX_TEMPLATE_BYTES: u64 = 1 << 20;

/// Reads a regular file of at most `limit` bytes as UTF-8, refusing before
/// reading it whole: a directory, a device (`/dev/zero`), a file too large,
/// bytes that are not UTF-8.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(Error::new(ErrorKind::InvalidInput, "it is a directory, not a file"));
    }
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "it is not a regular file"));
    }
    let too_big = || Error::new(ErrorKind::InvalidData, format!("it is larger than the {} KiB limit", limit >> 10));
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::new(
            ErrorKind::InvalidData,
            format!("it is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// [`load`] from a string; `path` is only used in messages.
pub fn load_str(path: &Path, src: &str, opts: &LoadOptions) -> Result<Stack, SpecError> {
    load_str_on(path, src, opts, crate::par::cores())
}

/// [`load_str`] on at most `threads` threads.
fn load_str_on(path: &Path, src: &str, opts: &LoadOptions, threads: usize) -> Result<Stack, SpecError> {
    let invalid = |diagnostics: Vec<Diagnostic>| SpecError::Invalid { file: path.to_path_buf(), diagnostics };
    let mut cx = Cx::new(path.to_path_buf(), src, threads);
    // A stack without merge keys is read straight from the YAML events
    // into the raw structs, which refuse a key given twice themselves
    // (see `strict`); a large one in pieces, on every core (see `pieces`).
    // One with merge keys (`<<: *anchor`), and one that fails to read,
    // goes through a YAML value: merge keys apply there, and problems are
    // placed. Positions come from the span index, built only when there is
    // something to report.
    let straight = || super::pieces::read(src, threads).or_else(|| serde_yaml_ng::from_str::<RawStack>(src).ok());
    let raw = match (!src.contains("<<")).then(straight).flatten() {
        Some(raw) => raw,
        None => match cx.read_through_value() {
            Ok(raw) => raw,
            Err(()) => return Err(invalid(cx.diags)),
        },
    };
    let stack = cx.resolve(raw, opts);
    match stack {
        Some(mut s) if cx.diags.is_empty() => {
            s.source_digest = crate::digest::sha256_hex(src.as_bytes());
            s.secret_refs = cx.secret_refs;
            s.overrides = cx.overrides;
            s.inputs = cx.inputs;
            Ok(s)
        }
        _ => {
            cx.diags.sort_by_key(|d| (d.line, d.col));
            Err(invalid(cx.diags))
        }
    }
}

impl<'s> Cx<'s> {
    fn new(file: PathBuf, src: &'s str, threads: usize) -> Cx<'s> {
        Cx {
            file,
            src,
            index: OnceCell::new(),
            diags: Vec::new(),
            secret_refs: BTreeSet::new(),
            overrides: BTreeMap::new(),
            inputs: BTreeMap::new(),
            threads,
        }
    }

    /// Reads the stack through a YAML value: merge keys apply, and every
    /// problem is placed (in `self.diags`).
    fn read_through_value(&mut self) -> Result<RawStack, ()> {
        let (src, path) = (self.src, self.file.clone());
        let path = path.as_path();
        let mut doc: serde_yaml_ng::Value = match serde_yaml_ng::from_str(src) {
            Ok(d) => d,
            Err(e) => {
                // The span index names a scan error or a duplicate key (which
                // serde_yaml_ng also refuses) with both positions.
                let index = match SpanIndex::build(src) {
                    Ok(i) => i,
                    Err((pos, msg)) => {
                        self.diags.push(diag(path, pos, format!("malformed YAML: {msg}"), None));
                        return Err(());
                    }
                };
                for d in &index.duplicates {
                    let within = if d.path.is_empty() { "the stack".to_string() } else { format!("`{}`", d.path) };
                    let kind = if d.path == "resources" { "resource name" } else { "key" };
                    self.diags.push(diag(
                        path,
                        d.pos,
                        format!("duplicate {kind} `{}` in {within}", d.key),
                        Some(format!("first defined at line {}", d.first.line)),
                    ));
                }
                if !self.diags.is_empty() {
                    return Err(());
                }
                let pos =
                    e.location().map(|l| Pos { line: l.line(), col: l.column() }).unwrap_or(Pos { line: 1, col: 1 });
                self.diags.push(diag(path, pos, format!("malformed YAML: {}", bare_message("", &e.to_string())), None));
                return Err(());
            }
        };
        if let Err(e) = doc.apply_merge() {
            self.diags.push(diag(path, Pos { line: 1, col: 1 }, format!("YAML merge key (`<<`): {e}"), None));
            return Err(());
        }
        // Without path tracking first (it allocates every key); with it
        // only to say where a stack that does not fit is wrong.
        let raw = match RawStack::deserialize(&doc) {
            Ok(r) => Ok(r),
            Err(_) => serde_path_to_error::deserialize::<_, RawStack>(doc.clone()),
        };
        drop(doc);
        raw.map_err(|e| {
            let p = super::path_string(e.path());
            let msg = e.inner().to_string();
            self.serde_error(&p, &msg, None, false);
        })
    }
}

fn diag(file: &Path, pos: Pos, message: String, help: Option<String>) -> Diagnostic {
    Diagnostic { file: file.to_path_buf(), line: pos.line, col: pos.col, message, help }
}

/// Strips what serde_yaml_ng adds around a message: the path prefix and the
/// ` at line L column C` suffix (we print our own).
fn bare_message<'a>(path: &str, msg: &'a str) -> &'a str {
    let mut m = msg;
    if let Some(i) = m.rfind(" at line ")
        && m[i + 9..].split(" column ").all(|n| n.chars().all(|c| c.is_ascii_digit()))
    {
        m = &m[..i];
    }
    // serde_yaml_ng names the enclosing path: `resources.vpc: unknown …`.
    if let Some((pre, rest)) = m.split_once(": ")
        && !pre.is_empty()
        && !pre.contains(' ')
        && path.starts_with(pre)
    {
        m = rest;
    }
    m
}

/// Names between backticks in a serde message.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

struct Cx<'s> {
    file: PathBuf,
    /// The stack file's text, for [`Cx::index`].
    src: &'s str,
    /// Positions by path, built on the first diagnostic.
    index: OnceCell<SpanIndex>,
    diags: Vec<Diagnostic>,
    /// Process environment variables `${env.NAME}` reads.
    secret_refs: BTreeSet<String>,
    /// `CONVERGE_VAR_*` and `--var` overrides, as given.
    overrides: BTreeMap<String, String>,
    /// Other stacks' outputs used: `(stack, output)` → the value read
    /// (unknown offline).
    inputs: BTreeMap<(String, String), Value>,
    /// How many threads may resolve resources.
    threads: usize,
}

/// Below this many resources a thread of their own does not pay.
const RESOURCES_PER_THREAD: usize = 256;

/// What a property walk collects for one resource.
#[derive(Default)]
struct Walk {
    refs: BTreeSet<String>,
    sensitive: BTreeSet<String>,
}

struct Env<'a> {
    /// `lookups:`, and what they found when they were made.
    lookups: &'a BTreeMap<String, crate::lookup::Lookup>,
    found: Option<&'a BTreeMap<String, crate::lookup::Found>>,
    /// The other stacks' outputs, when read ([`LoadOptions::stack_outputs`]).
    stack_outputs: Option<&'a StackOutputs>,
    stack: &'a str,
    env: &'a str,
    region: &'a str,
    vars: &'a BTreeMap<String, Value>,
    kinds: &'a BTreeMap<String, &'static dyn Kind>,
    /// Resources `enabled: false` in this environment.
    disabled: &'a BTreeSet<String>,
    require_secrets: bool,
}

impl Cx<'_> {
    /// The span index of the source, built on first use (a stack without
    /// problems never needs one). A source the indexer cannot scan has no
    /// positions: its diagnostics point at line 1.
    fn index(&self) -> &SpanIndex {
        self.index.get_or_init(|| SpanIndex::build(self.src).unwrap_or_default())
    }

    fn at_value(&mut self, path: &str, message: String, help: Option<String>) {
        let pos = self.index().value(path).unwrap_or(Pos { line: 1, col: 1 });
        self.diags.push(diag(&self.file, pos, message, help));
    }

    /// Tag values with their `${…}` resolved: variables, `${stack}`,
    /// `${environment}`, `${region}`; not outputs or secrets, since tags
    /// are shown everywhere.
    fn tag_values(&mut self, tags: BTreeMap<String, String>, path: &str, env: &Env<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in tags {
            let at = join_key(path, &key);
            let mut walk = Walk::default();
            let value = match self.template(Value::String(value), &at, "tags", env, &mut walk) {
                Template::Lit(Value::String(s)) if walk.sensitive.is_empty() => s,
                Template::Lit(Value::String(_)) => {
                    self.at_value(&at, "a tag may not use `${env.…}`: tags are not secret".into(), None);
                    String::new()
                }
                _ => {
                    self.at_value(&at, "a tag may use variables but not resource outputs".into(), None);
                    String::new()
                }
            };
            out.insert(key, value);
        }
        out
    }

    /// AWS's tag rules, the strictest of the services converge tags (EC2,
    /// S3, RDS …): at most [`Kind::max_tags`] tags an object (50, or 10 on
    /// an S3 object), keys of 1-128 and values of at most 256 characters,
    /// and no key starting `aws:` (AWS's own). Converge adds
    /// [`crate::tags::OWN_TAGS`] (six, `Name` among them unless the spec
    /// sets it), so a spec may set 44 tags, or 4 on an S3 object.
    fn check_tags(&mut self, kind: &dyn Kind, tags: &BTreeMap<String, String>, path: &str) {
        let max = kind.max_tags();
        let total = tags.len() + crate::tags::OWN_TAGS.iter().filter(|k| !tags.contains_key(**k)).count();
        if total > max {
            self.at_key(
                path,
                format!(
                    "{total} tags with the stack's, the environment's and converge's own ({}): AWS allows {max} on {} {}",
                    crate::tags::OWN_TAGS.len(),
                    if max == crate::tags::MAX_TAGS { "an object of" } else { "one" },
                    kind.type_name()
                ),
                Some(format!(
                    "converge adds {}; set at most {} tags on this resource, its environment and the stack together",
                    crate::tags::OWN_TAGS.join(", "),
                    max - crate::tags::OWN_TAGS.len()
                )),
            );
        }
        for (k, v) in tags {
            let at = join_key(path, k);
            if k.is_empty() || k.chars().count() > 128 {
                self.at_key(&at, format!("tag key `{k}` must be 1-128 characters"), None);
            }
            if k.to_ascii_lowercase().starts_with("aws:") {
                self.at_key(&at, format!("tag key `{k}`: the `aws:` prefix is reserved for AWS"), None);
            }
            if v.chars().count() > 256 {
                self.at_key(&at, format!("tag `{k}`: a value is at most 256 characters"), None);
            }
        }
    }

    fn at_key(&mut self, path: &str, message: String, help: Option<String>) {
        let pos = self.index().key(path).unwrap_or(Pos { line: 1, col: 1 });
        self.diags.push(diag(&self.file, pos, message, help));
    }

    /// Turns a serde message at `path` into a diagnostic. `sensitive`
    /// hides the message, which may quote the offending value.
    fn serde_error(&mut self, path: &str, msg: &str, yaml_pos: Option<Pos>, sensitive: bool) {
        let msg = bare_message(path, msg);
        let within = if path.is_empty() { "the stack".to_string() } else { format!("`{path}`") };
        for (prefix, what) in [("unknown field `", "field"), ("unknown variant `", "value")] {
            if msg.starts_with(prefix) {
                let names = backticked(msg);
                let word = names.first().copied().unwrap_or_default();
                let help = help_for(word, names[1..].iter().copied());
                // Some deserializers put the unknown key in the path already.
                let parent = if path == word {
                    ""
                } else {
                    path.strip_suffix(word).and_then(|p| p.strip_suffix('.')).unwrap_or(path)
                };
                let within = if parent.is_empty() { "the stack".to_string() } else { format!("`{parent}`") };
                let full = join_key(parent, word);
                if what == "field" {
                    self.at_key(&full, format!("unknown field `{word}` in {within}"), help);
                } else {
                    self.at_value(path, format!("unknown value `{word}` for `{path}`"), help);
                }
                return;
            }
        }
        if let Some(rest) = msg.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or_default();
            self.at_value(path, format!("missing field `{field}` in {within}"), None);
            return;
        }
        let shown = if sensitive { "invalid value (sensitive, not shown)" } else { msg };
        let message = if path.is_empty() { shown.to_string() } else { format!("`{path}`: {shown}") };
        match (self.index().value(path), yaml_pos) {
            (Some(_), _) if !path.is_empty() => self.at_value(path, message, None),
            (_, Some(pos)) => self.diags.push(diag(&self.file, pos, message, None)),
            _ => self.at_value(path, message, None),
        }
    }

    fn resolve(&mut self, raw: RawStack, opts: &LoadOptions) -> Option<Stack> {
        let RawStack { stack, region, tags, variables, mut environments, resources, state, outputs, lookups } = raw;
        let state = state.map(|s| {
            if let Err(why) = kinds::lookup("s3.bucket").map_or(Ok(()), |k| k.check_physical_name(&s.bucket)) {
                self.at_value("state.bucket", format!("state bucket `{}`: {why}", s.bucket), None);
            }
            let mut prefix = s.prefix.unwrap_or_else(|| "converge/".into());
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            super::StateBucket { bucket: s.bucket, prefix }
        });
        if !is_name(&stack) {
            self.at_value("stack", format!("stack name `{stack}` must be lower-case letters, digits and `-`"), None);
        }
        let env_names: Vec<String> = environments.keys().cloned().collect();
        let (env_name, env) = match (&opts.env, environments.is_empty()) {
            (None, true) => ("default".to_string(), RawEnvironment::default()),
            (None, false) => {
                self.at_key(
                    "environments",
                    "this stack defines environments: pass --env".into(),
                    Some(format!("one of: {}", env_names.join(", "))),
                );
                return None;
            }
            (Some(e), true) => {
                self.at_key("stack", format!("--env {e} given, but this stack defines no environments"), None);
                return None;
            }
            (Some(e), false) => match environments.remove(e) {
                Some(env) => (e.clone(), env),
                None => {
                    let all = env_names.join(", ");
                    let help = match super::suggest(e, env_names.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`? (environments: {all})"),
                        None => format!("environments: {all}"),
                    };
                    self.at_key("environments", format!("unknown environment `{e}`"), Some(help));
                    return None;
                }
            },
        };
        let RawEnvironment { region: env_region, variables: env_vars, tags: env_tags } = env;

        let mut vars = variables;
        for (k, v) in env_vars {
            if !vars.contains_key(&k) {
                let help = help_for(&k, vars.keys().map(String::as_str));
                self.at_key(
                    &join_key(&join_key(&join_key("environments", &env_name), "variables"), &k),
                    format!("variable `{k}` is not declared in the top-level `variables`"),
                    help,
                );
                continue;
            }
            vars.insert(k, v);
        }
        // CONVERGE_VAR_NAME, then --var: undeclared ones are an error on
        // the command line, ignored in the environment (another stack's).
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix(VAR_ENV_PREFIX)
                && let Some(declared) = vars.get(name)
            {
                let value = override_value(declared, &v);
                vars.insert(name.to_string(), value);
                self.overrides.insert(name.to_string(), v);
            }
        }
        for (k, v) in &opts.vars {
            if let Some(declared) = vars.get(k) {
                let value = override_value(declared, v);
                vars.insert(k.clone(), value);
                self.overrides.insert(k.clone(), v.clone());
            } else {
                let help = help_for(k, vars.keys().map(String::as_str));
                self.at_key("variables", format!("--var {k}: no such variable in the stack"), help);
            }
        }
        for (k, v) in &vars {
            if contains_expr(v) {
                self.at_value(
                    &join_key("variables", k),
                    format!("variable `{k}` may not contain `${{...}}`: variables are plain values"),
                    None,
                );
            }
        }

        let region = opts
            .region
            .clone()
            .or(env_region)
            .or(region)
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| {
                self.at_key(
                    "stack",
                    "no region: add `region:` to the stack, pass --region or set AWS_REGION".into(),
                    None,
                );
                String::new()
            });
        if !region.is_empty() && !valid_region(&region) {
            let key = if opts.region.is_some() { "stack" } else { "region" };
            self.at_key(
                key,
                format!("`{region}` is not an AWS region name (e.g. eu-west-1, us-gov-west-1, cn-north-1)"),
                None,
            );
        }

        // First pass: kinds, so references can be checked against outputs.
        // Each resource's kind, in name order (`None`: unknown).
        let mut kind_of: Vec<Option<&'static dyn Kind>> = Vec::with_capacity(resources.len());
        for (name, r) in &resources {
            if !is_ident(name) {
                let rp = join_key("resources", name);
                self.at_key(&rp, format!("resource name `{name}` must be letters, digits, `_` and `-`"), None);
            }
            let kind = kinds::lookup(&r.kind);
            if kind.is_none() {
                let rp = join_key("resources", name);
                let help = help_for(&r.kind, kinds::REGISTRY.iter().map(|k| k.type_name()));
                self.at_value(&join_key(&rp, "type"), format!("unknown resource type `{}` for `{rp}`", r.kind), help);
            }
            kind_of.push(kind);
        }
        // In name order: collected, not inserted one by one.
        let kinds_by_name: BTreeMap<String, &'static dyn Kind> =
            resources.keys().zip(&kind_of).filter_map(|(name, k)| Some((name.clone(), (*k)?))).collect();

        for key in tags.keys().chain(env_tags.keys()) {
            if key.starts_with("converge:") {
                self.at_key(
                    "tags",
                    format!("tag `{key}` is reserved: converge sets the `converge:` tags itself"),
                    None,
                );
            }
        }
        let mut disabled = BTreeSet::new();
        for (name, r) in &resources {
            if let Some(v) = &r.enabled
                && !self.flag(v, &join_key(&join_key("resources", name), "enabled"), &vars, "enabled")
            {
                disabled.insert(name.clone());
            }
        }
        let no_lookups = BTreeMap::new();
        let env = Env {
            lookups: &no_lookups,
            found: opts.lookups.as_ref(),
            stack_outputs: opts.stack_outputs.as_ref(),
            disabled: &disabled,
            stack: &stack,
            env: &env_name,
            region: &region,
            vars: &vars,
            kinds: &kinds_by_name,
            require_secrets: opts.require_secrets,
        };
        let (lookups, found) = self.lookups(lookups, &env);
        let env = Env { lookups: &lookups, ..env };
        let tags = self.tag_values(tags, "tags", &env);
        let env_tags = self.tag_values(env_tags, &join_key(&join_key("environments", &env_name), "tags"), &env);
        let todo: Vec<(String, RawResource, &'static dyn Kind)> = resources
            .into_iter()
            .zip(kind_of)
            .filter(|((name, _), _)| !disabled.contains(name))
            .filter_map(|((name, r), k)| Some((name, r, k?)))
            .collect();
        // In name order already: collected, not inserted one by one.
        let mut out: BTreeMap<String, Resource> = self
            .resources(todo, &env, &tags, &env_tags)
            .into_iter()
            .filter_map(|(name, res)| res.map(|r| (name, r)))
            .collect();
        let mut physical: HashMap<(&str, &str), &str> = HashMap::with_capacity(out.len());
        for r in out.values() {
            if let Some(first) = physical.insert((r.kind.type_name(), &r.physical_name), &r.name) {
                self.at_key(
                    &join_key("resources", &r.name),
                    format!("resources `{first}` and `{}` have the same physical name `{}`", r.name, r.physical_name),
                    Some("set a distinct `name:` on one of them".into()),
                );
            }
        }

        let mut renamed: HashMap<&str, &str> = HashMap::new();
        for r in out.values() {
            if let Some(old) = r.renamed_from.as_deref()
                && let Some(first) = renamed.insert(old, &r.name)
            {
                self.at_value(
                    &join_key(&join_key("resources", &r.name), "renamed_from"),
                    format!("`{first}` and `{}` are both `renamed_from: {old}`; one object cannot become two", r.name),
                    None,
                );
            }
        }
        if self.diags.is_empty() {
            self.check_links(&out);
        }
        // Canonical properties without references are what every plan
        // wants: kept. With references, they were for the checks above.
        for r in out.values_mut() {
            if r.props.has_references() {
                r.canonical = None;
            }
        }
        let outputs = self.outputs(outputs, &env);
        let graph = Graph::new(out.values().map(|r| (r.name.as_str(), &r.deps)));
        if let Some(cycle) = graph.find_cycle() {
            self.at_key(
                &join_key("resources", &cycle[0]),
                format!("dependency cycle: {}", cycle.join(" -> ")),
                Some("remove one of these references or depends_on entries".into()),
            );
        }
        Some(Stack {
            file: self.file.clone(),
            name: stack,
            env: env_name,
            region,
            resources: out,
            state,
            vars,
            overrides: BTreeMap::new(),
            secret_refs: BTreeSet::new(),
            source_digest: String::new(),
            outputs,
            inputs: BTreeMap::new(),
            lookups,
            found,
        })
    }

    /// `lookups:`: each one's fields (variables only), and, when they were
    /// made, what each found; one that found nothing is an error here.
    fn lookups(
        &mut self,
        raw: BTreeMap<String, super::raw::RawLookup>,
        env: &Env<'_>,
    ) -> (BTreeMap<String, crate::lookup::Lookup>, BTreeMap<String, BTreeMap<String, Value>>) {
        let mut out = BTreeMap::new();
        let mut found = BTreeMap::new();
        for (name, l) in raw {
            let lp = join_key("lookups", &name);
            if !is_ident(&name) {
                self.at_key(&lp, format!("lookup name `{name}` must be letters, digits, `_` and `-`"), None);
                continue;
            }
            let Some(kind) = crate::lookup::kind(&l.kind) else {
                let help = help_for(&l.kind, crate::lookup::KINDS.iter().map(|k| k.type_name));
                self.at_value(&join_key(&lp, "type"), format!("unknown lookup type `{}`", l.kind), help);
                continue;
            };
            let before = self.diags.len();
            let text = |cx: &mut Self, v: String, field: &str| -> String {
                let at = join_key(&lp, field);
                let mut walk = Walk::default();
                match cx.template(Value::String(v), &at, "lookups", env, &mut walk) {
                    Template::Lit(Value::String(s)) if walk.sensitive.is_empty() => s,
                    _ => {
                        cx.at_value(&at, format!("`{at}` may use variables only"), None);
                        String::new()
                    }
                }
            };
            let given: Vec<&str> = [
                ("owners", !l.owners.is_empty()),
                ("name", l.name.is_some()),
                ("tags", !l.tags.is_empty()),
                ("domain", l.domain.is_some()),
                ("most_recent", l.most_recent.is_some()),
                ("private", l.private.is_some()),
            ]
            .into_iter()
            .filter_map(|(field, set)| set.then_some(field))
            .collect();
            let owners: Vec<String> = l.owners.into_iter().map(|o| text(self, o, "owners")).collect();
            let name_pattern = l.name.map(|n| text(self, n, "name"));
            let tags: BTreeMap<String, String> = l.tags.into_iter().map(|(k, v)| (k, text(self, v, "tags"))).collect();
            let domain = l.domain.map(|d| text(self, d, "domain"));
            let override_id = l.override_id.map(|o| text(self, o, "override"));
            for field in &given {
                if !kind.fields.iter().any(|(f, _)| f == field) {
                    self.at_key(
                        &join_key(&lp, field),
                        format!("an `{}` lookup takes no `{field}`; it takes {}", kind.type_name, fields_of(kind)),
                        None,
                    );
                }
            }
            for (field, _) in kind.fields.iter().filter(|(f, required)| *required && !given.contains(f)) {
                self.at_key(
                    &lp,
                    format!(
                        "lookup `{name}`: an `{}` lookup needs `{field}`; it takes {}",
                        kind.type_name,
                        fields_of(kind)
                    ),
                    None,
                );
            }
            if override_id.is_some() && kind.overrides.is_none() {
                self.at_key(
                    &join_key(&lp, "override"),
                    format!("an `{}` lookup has no `override`", kind.type_name),
                    None,
                );
            }
            if self.diags.len() != before {
                continue;
            }
            match env.found.and_then(|f| f.get(&name)) {
                Some(Ok(values)) => {
                    found.insert(name.clone(), values.clone());
                }
                Some(Err(why)) => self.at_key(&lp, format!("lookup `{name}` ({}): {why}", kind.type_name), None),
                None => {}
            }
            out.insert(
                name,
                crate::lookup::Lookup {
                    kind,
                    owners,
                    name: name_pattern,
                    tags,
                    domain,
                    private: l.private.unwrap_or(false),
                    most_recent: l.most_recent.unwrap_or(false),
                    override_id,
                },
            );
        }
        (out, found)
    }

    /// `outputs:`: each value checked as a property is (its references,
    /// its variables); a value from `${env.…}` must be marked sensitive.
    fn outputs(
        &mut self,
        raw: BTreeMap<String, super::raw::RawOutput>,
        env: &Env<'_>,
    ) -> BTreeMap<String, super::Output> {
        let mut out = BTreeMap::new();
        for (name, o) in raw {
            let op = join_key("outputs", &name);
            if !is_ident(&name) {
                self.at_key(&op, format!("output name `{name}` must be letters, digits, `_` and `-`"), None);
                continue;
            }
            let vp = join_key(&op, "value");
            let mut walk = Walk::default();
            let value = self.template(o.value, &vp, "outputs", env, &mut walk);
            if !walk.sensitive.is_empty() && !o.sensitive {
                self.at_value(
                    &vp,
                    format!(
                        "output `{name}` uses `${{env.…}}`: mark it `sensitive: true`, so it is never shown or kept"
                    ),
                    None,
                );
            }
            out.insert(name, super::Output { value, sensitive: o.sensitive, description: o.description });
        }
        out
    }

    /// [`Cx::resource`] of each, in order. A large stack is split among
    /// threads, each with a context of its own: their problems and the
    /// secrets they read are then merged in order, so the result is the
    /// same as on one thread.
    fn resources(
        &mut self,
        todo: Vec<(String, RawResource, &'static dyn Kind)>,
        env: &Env<'_>,
        stack_tags: &BTreeMap<String, String>,
        env_tags: &BTreeMap<String, String>,
    ) -> Vec<(String, Option<Resource>)> {
        let threads = self.threads.min(todo.len() / RESOURCES_PER_THREAD).max(1);
        let (file, src) = (self.file.clone(), self.src);
        let helper = || Cx::new(file.clone(), src, 1);
        let (helpers, done) = crate::par::map_chunks(todo, threads, self, helper, |cx, (name, r, kind)| {
            let res = cx.resource(&name, r, kind, env, stack_tags, env_tags);
            (name, res)
        });
        for cx in helpers {
            self.diags.extend(cx.diags);
            self.secret_refs.extend(cx.secret_refs);
            self.inputs.extend(cx.inputs);
        }
        done
    }

    fn resource(
        &mut self,
        name: &str,
        raw: RawResource,
        kind: &'static dyn Kind,
        env: &Env<'_>,
        stack_tags: &BTreeMap<String, String>,
        env_tags: &BTreeMap<String, String>,
    ) -> Option<Resource> {
        let RawResource {
            kind: _,
            name: physical,
            properties,
            depends_on,
            tags,
            wait_timeout,
            enabled: _,
            protect,
            adopt,
            ignore_changes,
            renamed_from,
        } = raw;
        let protect = match protect {
            Some(v) => self.flag(&v, &join_key(&join_key("resources", name), "protect"), env.vars, "protect"),
            None => kind.stateful(),
        };
        let rp = join_key("resources", name);
        let refusal = match kind.import_by() {
            _ if !adopt => None,
            kinds::ImportBy::Name => None,
            kinds::ImportBy::Ec2Id => Some(format!(
                "`adopt:` takes over by name, and {} objects are found by their tags; take one over with `converge import STACK --env ENV {name} ID`",
                kind.type_name()
            )),
            kinds::ImportBy::Never(why) => Some(format!("{} objects cannot be adopted: {why}", kind.type_name())),
        };
        if let Some(why) = refusal {
            self.at_key(&join_key(&rp, "adopt"), why, None);
        }
        let before = self.diags.len();
        if !ignore_changes.is_empty() {
            let names = kinds::ignorable(kind);
            let ip = join_key(&rp, "ignore_changes");
            for (i, attr) in ignore_changes.iter().enumerate() {
                if !names.contains(attr) {
                    let help = super::help_for(attr, names.iter().map(String::as_str));
                    self.at_value(
                        &super::location::join_index(&ip, i),
                        format!("`ignore_changes`: {} has no property `{attr}`", kind.type_name()),
                        help,
                    );
                }
            }
        }
        let mut walk = Walk::default();
        let pp = join_key(&rp, "properties");
        let mut props = BTreeMap::new();
        let mut path = String::with_capacity(pp.len() + 16);
        for (k, v) in properties {
            path.clear();
            push_key(&mut path, &pp, &k);
            let t = self.template(v, &path, &k, env, &mut walk);
            props.insert(k, t);
        }
        let props = Template::Map(props);
        // Typed check of the kind's properties, references as unknowns; the
        // result is kept for the checks across resources (`canonical`, until
        // they are done).
        let mut checked = None;
        if self.diags.len() == before {
            let written = props.placeholder();
            // What AWS would refuse of the values as written, reported once
            // the kind's typed check has passed.
            let secret = |top: &str| walk.sensitive.contains(top);
            let refused = crate::limits::check(kind.sends(), &written, &secret);
            match kind.canonicalize(written) {
                Ok(v) => {
                    for v in refused {
                        let full = format!("{pp}.{}", v.path);
                        self.at_value(&full, format!("`{full}`: {}", v.message), None);
                    }
                    checked = Some(std::sync::Arc::new(v));
                }
                Err(e) => {
                    let top = e.path.split(['.', '[']).next().unwrap_or_default();
                    let sensitive = walk.sensitive.contains(top);
                    let full =
                        if e.path.is_empty() { pp.clone() } else { format!("{pp}.{}", e.path).replace(".[", "[") };
                    self.serde_error(&full, &e.message, None, sensitive);
                }
            }
        }

        let mut deps = walk.refs;
        for (i, d) in depends_on.iter().enumerate() {
            if env.disabled.contains(d) {
                // Nothing to wait for where it does not exist.
            } else if env.kinds.contains_key(d) {
                deps.insert(d.clone());
            } else {
                let help = help_for(d, env.kinds.keys().map(String::as_str));
                self.at_value(
                    &join_index(&join_key(&rp, "depends_on"), i),
                    format!("`depends_on` names unknown resource `{d}`"),
                    help,
                );
            }
        }

        let mut name_walk = Walk::default();
        let default_name = physical.is_none();
        let physical_name = match physical {
            None => default_physical_name(env.stack, env.env, name),
            Some(p) => match self.template(Value::String(p), &join_key(&rp, "name"), "name", env, &mut name_walk) {
                Template::Lit(Value::String(_)) if !name_walk.sensitive.is_empty() => {
                    self.at_value(
                        &join_key(&rp, "name"),
                        "`name` may not use `${env.…}`: names are shown in plans, logs and the AWS console, so they cannot hold secrets; use a variable".into(),
                        None,
                    );
                    String::new()
                }
                Template::Lit(Value::String(s)) => s,
                _ => {
                    self.at_value(
                        &join_key(&rp, "name"),
                        "`name` may use variables but not resource outputs".into(),
                        None,
                    );
                    String::new()
                }
            },
        };
        if let Err(why) = kind.check_physical_name(&physical_name) {
            self.at_key(&join_key(&rp, "name"), format!("physical name `{physical_name}` of `{name}`: {why}"), None);
        }

        let wait_timeout = wait_timeout.map(|t| {
            match self.template(
                Value::String(t.clone()),
                &join_key(&rp, "wait_timeout"),
                "wait_timeout",
                env,
                &mut Walk::default(),
            ) {
                Template::Lit(Value::String(s)) => s,
                _ => t,
            }
        });
        let timeout = match wait_timeout {
            None => kind.default_wait(),
            Some(t) => super::parse_duration(&t).unwrap_or_else(|| {
                self.at_value(
                    &join_key(&rp, "wait_timeout"),
                    format!("`wait_timeout: {t}` is not a duration; write e.g. `90s`, `45m` or `2h`"),
                    None,
                );
                kind.default_wait()
            }),
        };

        let mut all_tags: BTreeMap<String, String> = stack_tags.clone();
        all_tags.extend(env_tags.clone());
        let tp = join_key(&rp, "tags");
        for key in tags.keys().filter(|k| k.starts_with("converge:")) {
            self.at_key(&join_key(&tp, key), format!("tag `{key}` is reserved"), None);
        }
        all_tags.extend(self.tag_values(tags, &tp, env));
        self.check_tags(kind, &all_tags, &tp);
        all_tags.entry("Name".into()).or_insert_with(|| physical_name.clone());
        all_tags.insert(TAG_STACK.into(), env.stack.into());
        all_tags.insert(TAG_ENV.into(), env.env.into());
        all_tags.insert(TAG_RESOURCE.into(), name.into());

        if let Some(old) = &renamed_from {
            let at = join_key(&rp, "renamed_from");
            if !is_ident(old) || old == name {
                self.at_value(
                    &at,
                    format!("`renamed_from: {old}` must name the resource's key before the rename"),
                    None,
                );
            } else if env.kinds.contains_key(old) {
                self.at_value(
                    &at,
                    format!(
                        "`renamed_from: {old}`: `{old}` is still a resource of the spec; a rename leaves the old key"
                    ),
                    None,
                );
            } else if kind.physical_name_output().is_some() && default_name {
                // Its default name comes from the key: keep the old one, or
                // the rename replaces the object after all.
                let was = default_physical_name(env.stack, env.env, old);
                self.at_value(
                    &at,
                    format!(
                        "renaming `{old}` to `{name}` changes its default name from `{was}` to `{physical_name}`, which AWS cannot rename: {} would be replaced",
                        kind.type_name()
                    ),
                    Some(format!("keep its name: add `name: {}`", was.replacen(&format!("{}-{}-", env.stack, env.env), "${stack}-${environment}-", 1))),
                );
            }
        }
        (self.diags.len() == before).then(|| Resource {
            name: name.to_string(),
            kind,
            physical_name,
            props,
            deps,
            tags: all_tags,
            sensitive: walk.sensitive,
            timeout,
            protect,
            adopt,
            canonical: checked,
            ignore_changes: ignore_changes.into_iter().collect(),
            renamed_from,
        })
    }

    /// Substitutes everything known offline in `v`; keeps resource
    /// references. `top` is the top-level property this value is under.
    fn template(&mut self, v: Value, path: &str, top: &str, env: &Env<'_>, walk: &mut Walk) -> Template {
        match v {
            Value::String(s) => self.string(&s, path, top, env, walk),
            // One path buffer for all the children: paths are only read
            // when something is reported.
            Value::Array(items) => {
                let mut child = String::with_capacity(path.len() + 4);
                Template::List(
                    items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            child.clear();
                            push_index(&mut child, path, i);
                            self.template(v, &child, top, env, walk)
                        })
                        .collect(),
                )
            }
            Value::Object(m) if m.contains_key("$template") => self.render_node(m, path, top, env, walk),
            Value::Object(m) => {
                let mut child = String::with_capacity(path.len() + 16);
                Template::Map(
                    m.into_iter()
                        .map(|(k, v)| {
                            child.clear();
                            push_key(&mut child, path, &k);
                            let t = self.template(v, &child, top, env, walk);
                            (k, t)
                        })
                        .collect(),
                )
            }
            other => Template::Lit(other),
        }
    }

    /// `{ $template: PATH, vars: {...} }`: the file is read and parsed now,
    /// and rendered with placeholder values so that a name the template
    /// uses but `vars` lacks is reported before any AWS call.
    fn render_node(
        &mut self,
        m: serde_json::Map<String, Value>,
        path: &str,
        top: &str,
        env: &Env<'_>,
        walk: &mut Walk,
    ) -> Template {
        let tpath = join_key(path, "$template");
        for k in m.keys().filter(|k| *k != "$template" && *k != "vars") {
            self.at_key(
                &join_key(path, k),
                format!("unknown field `{k}` next to `$template`"),
                Some("expected `vars`".into()),
            );
        }
        let Some(Value::String(file)) = m.get("$template") else {
            self.at_value(&tpath, "`$template` takes a file path, relative to the stack file".into(), None);
            return Template::Lit(Value::Null);
        };
        let vars = match m.get("vars").cloned().unwrap_or(Value::Object(Default::default())) {
            v @ Value::Object(_) => self.template(v, &join_key(path, "vars"), top, env, walk),
            _ => {
                self.at_value(&join_key(path, "vars"), "`vars` is a map of names to values".into(), None);
                return Template::Lit(Value::Null);
            }
        };
        let base = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let source = match read_limited(&base.join(file), MAX_TEMPLATE_BYTES) {
            Ok(s) => s,
            Err(e) => {
                self.at_value(&tpath, format!("cannot read template `{file}` (relative to the stack file): {e}"), None);
                return Template::Lit(Value::Null);
            }
        };
        let placeholders = vars.resolve(&|n, a| Some(Value::String(format!("<{n}.{a}>")))).unwrap_or(Value::Null);
        let checked = crate::render::check(&source).and_then(|_| crate::render::render(&source, &placeholders));
        if let Err(e) = checked {
            self.at_value(&tpath, format!("template `{file}`, {e}"), None);
            return Template::Lit(Value::Null);
        }
        Template::Render { path: file.clone(), source: source.into(), vars: Box::new(vars) }
    }

    fn string(&mut self, s: &str, path: &str, top: &str, env: &Env<'_>, walk: &mut Walk) -> Template {
        let parts = match expr::parse(s) {
            Ok(p) => p,
            Err(e) => {
                self.at_value(path, format!("`{path}`: {e}"), None);
                return Template::Lit(Value::Null);
            }
        };
        let single = parts.len() == 1;
        let mut out: Vec<Part> = Vec::new();
        for part in parts {
            let value: Value = match part {
                Part::Lit(t) => Value::String(t),
                Part::Ref(r) => {
                    let r = self.decide(r, path, env);
                    match self.reference(&r, path, top, env, walk) {
                        Some(v) => v,
                        None => {
                            out.push(Part::Ref(r));
                            continue;
                        }
                    }
                }
            };
            if single {
                return Template::Lit(value);
            }
            let text = match value {
                Value::String(t) => t,
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => {
                    self.at_value(
                        path,
                        format!("`{path}`: a list, map or null cannot be interpolated into text"),
                        None,
                    );
                    String::new()
                }
            };
            match out.last_mut() {
                Some(Part::Lit(prev)) => prev.push_str(&text),
                _ => out.push(Part::Lit(text)),
            }
        }
        match out.as_slice() {
            [Part::Lit(t)] => Template::Lit(Value::String(t.clone())),
            [] => Template::Lit(Value::String(String::new())),
            _ => Template::Interp(out),
        }
    }

    /// Every kind's [`Kind::check_links`], reported at this resource's
    /// property with the linked resource's line in the help.
    fn check_links(&mut self, resources: &BTreeMap<String, Resource>) {
        let mut by_kind: BTreeMap<&'static str, (&'static dyn Kind, Vec<kinds::Member<'_>>)> = BTreeMap::new();
        let mut problems = Vec::new();
        for r in resources.values() {
            let Some(props) = r.canonical.as_deref() else { continue };
            let Template::Map(raw) = &r.props else { continue };
            let link_of = |attr: &str| {
                let Some(Template::Interp(parts)) = raw.get(attr) else { return None };
                let [Part::Ref(Reference::Resource { name, .. })] = parts.as_slice() else { return None };
                Some(name.as_str())
            };
            let linked = |attr: &str| {
                let name = link_of(attr)?;
                let other = resources.get(name)?;
                let props = other.canonical.as_deref()?;
                Some(kinds::Linked { name: name.to_string(), kind: other.kind.type_name(), props })
            };
            for problem in r.kind.check_links(props, &linked) {
                problems.push((r.name.clone(), problem));
            }
            let links = raw.keys().filter_map(|k| Some((k.as_str(), link_of(k)?))).collect();
            let entry = by_kind.entry(r.kind.type_name()).or_insert_with(|| (r.kind, Vec::new()));
            entry.1.push(kinds::Member { name: &r.name, props, links });
        }
        for (kind, members) in by_kind.into_values() {
            problems.extend(kind.check_all(&members));
        }
        for (name, problem) in problems {
            self.link_problem(&name, problem);
        }
    }

    /// Reports what [`Kind::check_links`] or [`Kind::check_all`] found at
    /// resource `name`'s property, with the other resource's line in the
    /// help.
    fn link_problem(&mut self, name: &str, problem: kinds::LinkProblem) {
        let here = join_key(&join_key(&join_key("resources", name), "properties"), &problem.attr);
        let help = problem.other.map(|(other, attr)| {
            let there = join_key(&join_key(&join_key("resources", &other), "properties"), &attr);
            match self.index().value(&there).or_else(|| self.index().key(&join_key("resources", &other))) {
                Some(pos) => format!("`{other}.{attr}` is set at {}:{}:{}", self.file.display(), pos.line, pos.col),
                None => format!("see `{other}.{attr}`"),
            }
        });
        let message = format!("`{here}`: {}", problem.message);
        if self.index().value(&here).is_some() {
            self.at_value(&here, message, help);
        } else {
            self.at_key(&join_key("resources", name), message, help);
        }
    }

    /// `enabled:` or `protect:`: `true`, `false` or a boolean variable.
    fn flag(&mut self, v: &Value, path: &str, vars: &BTreeMap<String, Value>, field: &str) -> bool {
        let var = match v {
            Value::Bool(b) => return *b,
            Value::String(s) => match expr::parse(s).as_deref() {
                Ok([Part::Ref(Reference::Var(n))]) => Some(n.clone()),
                _ => None,
            },
            _ => None,
        };
        match var.as_ref().map(|n| (n, vars.get(n))) {
            Some((_, Some(Value::Bool(b)))) => *b,
            Some((n, Some(_))) => {
                self.at_value(path, format!("`{field}: ${{var.{n}}}`: variable `{n}` must be true or false"), None);
                true
            }
            Some((n, None)) => {
                let help = help_for(n, vars.keys().map(String::as_str));
                self.at_value(path, format!("`{path}` references undefined variable `{n}`"), help);
                true
            }
            None => {
                self.at_value(path, format!("`{field}` is true, false or `${{var.NAME}}` (a boolean variable)"), None);
                true
            }
        }
    }

    /// A conditional reference reduced to the branch its variable chooses;
    /// any other reference as it is.
    fn decide(&mut self, r: Reference, path: &str, env: &Env<'_>) -> Reference {
        let Reference::Cond { var, then, otherwise } = r else { return r };
        match env.vars.get(&var) {
            Some(Value::Bool(true)) => *then,
            Some(Value::Bool(false)) => *otherwise,
            Some(_) => {
                self.at_value(path, format!("`{path}`: `var.{var}` in a condition must be true or false"), None);
                *then
            }
            None => {
                let help = help_for(&var, env.vars.keys().map(String::as_str));
                self.at_value(path, format!("`{path}` references undefined variable `{var}`"), help);
                *then
            }
        }
    }

    /// The value of an offline reference, or `None` for a resource output
    /// (checked here, resolved later).
    fn reference(&mut self, r: &Reference, path: &str, top: &str, env: &Env<'_>, walk: &mut Walk) -> Option<Value> {
        match r {
            Reference::Region => Some(env.region.into()),
            Reference::Stack => Some(env.stack.into()),
            Reference::Environment => Some(env.env.into()),
            Reference::Var(n) => match env.vars.get(n) {
                Some(v) => Some(v.clone()),
                None => {
                    let help = help_for(n, env.vars.keys().map(String::as_str));
                    self.at_value(path, format!("`{path}` references undefined variable `{n}`"), help);
                    Some(Value::Null)
                }
            },
            Reference::Env(n) => {
                walk.sensitive.insert(top.to_string());
                self.secret_refs.insert(n.clone());
                match std::env::var(n) {
                    Ok(v) => Some(Value::String(v)),
                    Err(_) if !env.require_secrets => Some(Value::String(String::new())),
                    Err(_) => {
                        self.at_value(
                            path,
                            format!("`{path}` needs environment variable `{n}`, which is not set"),
                            Some(format!("export {n}=… before running converge (it is never printed or stored)")),
                        );
                        Some(Value::Null)
                    }
                }
            }
            // Callers decide conditions first; deciding here too keeps this
            // total.
            Reference::Cond { .. } => {
                let decided = self.decide(r.clone(), path, env);
                self.reference(&decided, path, top, env, walk)
            }
            Reference::Lookup { name, attr } => {
                let Some(l) = env.lookups.get(name) else {
                    let help = help_for(name, env.lookups.keys().map(String::as_str));
                    self.at_value(path, format!("`{path}` references unknown lookup `{name}`"), help);
                    return Some(Value::Null);
                };
                if !l.kind.outputs.contains(&attr.as_str()) {
                    let help = help_for(attr, l.kind.outputs.iter().copied());
                    self.at_value(
                        path,
                        format!("`{path}`: lookup `{name}` ({}) has no `{attr}`", l.kind.type_name),
                        help,
                    );
                    return Some(Value::Null);
                }
                if matches!(top, "name" | "tags") {
                    self.at_value(
                        path,
                        format!("`{path}`: a {top} may not use a lookup (names and tags are known offline)"),
                        None,
                    );
                    return Some(Value::Null);
                }
                Some(match env.found.map(|f| f.get(name)) {
                    None => crate::value::unknown(),
                    Some(Some(Ok(values))) => match values.get(attr) {
                        Some(v) => v.clone(),
                        None => {
                            self.at_value(
                                path,
                                format!("`{path}`: lookup `{name}` was given by its `override`, which sets only `id`"),
                                None,
                            );
                            Value::Null
                        }
                    },
                    // Reported where the lookup is written.
                    Some(_) => crate::value::unknown(),
                })
            }
            Reference::StackOutput { stack, output } => {
                let key = (stack.clone(), output.clone());
                if stack == env.stack {
                    self.at_value(
                        path,
                        format!(
                            "`{path}` reads this stack's own output: use the resource's, `${{resources.NAME.ATTR}}`"
                        ),
                        None,
                    );
                    return Some(Value::Null);
                }
                if matches!(top, "name" | "tags") {
                    self.at_value(
                        path,
                        format!(
                            "`{path}`: a {top} may not use another stack's output (names and tags are known offline)"
                        ),
                        None,
                    );
                    return Some(Value::Null);
                }
                let value = match env.stack_outputs.map(|m| m.get(&key)) {
                    // Offline: known once the other stack's record is read.
                    None => crate::value::unknown(),
                    Some(Some(Ok(v))) => v.clone(),
                    Some(Some(Err(why))) => {
                        self.at_value(path, format!("`{path}`: {why}"), None);
                        Value::Null
                    }
                    Some(None) => {
                        self.at_value(path, format!("`{path}`: stack `{stack}`'s outputs were not read"), None);
                        Value::Null
                    }
                };
                self.inputs.insert(key, value.clone());
                Some(value)
            }
            Reference::Resource { name, attr } => {
                match env.kinds.get(name) {
                    Some(_) if env.disabled.contains(name) => {
                        self.at_value(
                            path,
                            format!("`{path}` references `{name}`, which is disabled in environment `{}`", env.env),
                            Some(format!("choose with a condition: ${{var.FLAG ? resources.{name}.{attr} : …}}")),
                        );
                    }
                    None => {
                        let help = help_for(name, env.kinds.keys().map(String::as_str));
                        self.at_value(path, format!("`{path}` references unknown resource `{name}`"), help);
                    }
                    Some(k) if !k.outputs().contains(&attr.as_str()) => {
                        let help = help_for(attr, k.outputs().iter().copied());
                        self.at_value(
                            path,
                            format!("`{path}`: resource `{name}` ({}) has no output `{attr}`", k.type_name()),
                            help,
                        );
                    }
                    Some(_) => {
                        walk.refs.insert(name.clone());
                    }
                }
                None
            }
        }
    }
}

fn contains_expr(v: &Value) -> bool {
    match v {
        Value::String(s) => s.replace("$${", "").contains("${"),
        Value::Array(a) => a.iter().any(contains_expr),
        Value::Object(m) => m.values().any(contains_expr),
        _ => false,
    }
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An AWS region name: `<area>[-<partition>]-<direction>-<n>`, e.g.
/// `eu-west-1`, `us-gov-west-1`, `ap-southeast-5`, `cn-north-1`,
/// `us-isob-east-1`, from the areas and directions AWS names regions with.
/// Checked offline so that a typo makes no AWS call (the SDK would send
/// every request to a host that does not exist).
pub fn valid_region(r: &str) -> bool {
    const AREAS: [&str; 10] = ["af", "ap", "ca", "cn", "eu", "il", "me", "mx", "sa", "us"];
    const PARTITIONS: [&str; 5] = ["gov", "iso", "isob", "isoe", "isof"];
    const DIRECTIONS: [&str; 9] =
        ["central", "east", "west", "north", "south", "northeast", "northwest", "southeast", "southwest"];
    let parts: Vec<&str> = r.split('-').collect();
    let (area, middle, n) = match parts.as_slice() {
        [a, d, n] => (*a, vec![*d], *n),
        [a, p, d, n] if PARTITIONS.contains(p) => (*a, vec![*d], *n),
        _ => return false,
    };
    AREAS.contains(&area)
        && middle.iter().all(|d| DIRECTIONS.contains(d))
        && (1..=2).contains(&n.len())
        && n.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests;

/// A lookup kind's fields, for errors: "`owners` and `name`".
fn fields_of(kind: &crate::lookup::LookupKind) -> String {
    let mut parts: Vec<String> = kind
        .fields
        .iter()
        .map(|(f, required)| if *required { format!("`{f}`") } else { format!("`{f}` (optional)") })
        .collect();
    if kind.overrides.is_some() {
        parts.push("`override` (optional)".into());
    }
    parts.join(", ")
}
