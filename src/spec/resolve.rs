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
use crate::kinds::{self, DynKind, TAG_ENV, TAG_RESOURCE, TAG_STACK};

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
    let mut resolver = Resolver::new(path.to_path_buf(), src, threads);
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
        None => match resolver.read_through_value() {
            Ok(raw) => raw,
            Err(()) => return Err(invalid(resolver.diags)),
        },
    };
    let stack = resolver.resolve(raw, opts);
    match stack {
        Some(mut s) if resolver.diags.is_empty() => {
            s.source_digest = crate::digest::sha256_hex(src.as_bytes());
            s.secret_refs = resolver.secret_refs;
            s.overrides = resolver.overrides;
            s.inputs = resolver.inputs;
            Ok(s)
        }
        _ => {
            resolver.diags.sort_by_key(|d| (d.line, d.col));
            Err(invalid(resolver.diags))
        }
    }
}

impl<'s> Resolver<'s> {
    fn new(file: PathBuf, src: &'s str, threads: usize) -> Resolver<'s> {
        Resolver {
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

/// One resolution of a stack file: its text, the diagnostics found so far,
/// the overrides given, and what it read of the environment.
struct Resolver<'s> {
    file: PathBuf,
    /// The stack file's text, for [`Resolver::index`].
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

/// What an expression of one environment resolves against: its variables,
/// lookups, other stacks' outputs, and the kinds of its resources.
struct Bindings<'a> {
    /// `lookups:`, and what they found when they were made.
    lookups: &'a BTreeMap<String, crate::lookup::Lookup>,
    found: Option<&'a BTreeMap<String, crate::lookup::Found>>,
    /// The other stacks' outputs, when read ([`LoadOptions::stack_outputs`]).
    stack_outputs: Option<&'a StackOutputs>,
    stack: &'a str,
    env: &'a str,
    region: &'a str,
    vars: &'a BTreeMap<String, Value>,
    kinds: &'a BTreeMap<String, &'static dyn DynKind>,
    /// Resources `enabled: false` in this environment.
    disabled: &'a BTreeSet<String>,
    require_secrets: bool,
}

impl Resolver<'_> {
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
        let RawStack { stack, region, tags, variables, mut environments, resources, state, outputs, lookups, verify } =
            raw;
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
        if !region.is_empty() && !crate::limits::valid_region(&region) {
            let key = if opts.region.is_some() { "stack" } else { "region" };
            self.at_key(
                key,
                format!("`{region}` is not an AWS region name (e.g. eu-west-1, us-gov-west-1, cn-north-1)"),
                None,
            );
        }

        // First pass: kinds, so references can be checked against outputs.
        // Each resource's kind, in name order (`None`: unknown).
        let mut kind_of: Vec<Option<&'static dyn DynKind>> = Vec::with_capacity(resources.len());
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
        let kinds_by_name: BTreeMap<String, &'static dyn DynKind> =
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
        let env = Bindings {
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
        let env = Bindings { lookups: &lookups, ..env };
        let tags = self.tag_values(tags, "tags", &env);
        let env_tags = self.tag_values(env_tags, &join_key(&join_key("environments", &env_name), "tags"), &env);
        let todo: Vec<(String, RawResource, &'static dyn DynKind)> = resources
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
        let verify = verify.map(|v| self.verify(v, &out, &env));
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
            verify,
        })
    }

    /// `verify:`: each alarm a `cloudwatch.alarm` resource of the stack,
    /// the window a duration; variables only.
    fn verify(
        &mut self,
        v: super::raw::RawVerify,
        resources: &BTreeMap<String, Resource>,
        env: &Bindings<'_>,
    ) -> super::Verify {
        let value = |cx: &mut Self, raw: Value, field: &str| -> Option<Value> {
            let at = join_key("verify", field);
            let mut walk = Walk::default();
            let t = cx.template(raw, &at, "verify", env, &mut walk);
            match t.has_references() || !walk.sensitive.is_empty() {
                false => t.resolve(&|_, _| None).ok(),
                true => {
                    cx.at_value(&at, format!("`{at}` may use variables only"), None);
                    None
                }
            }
        };
        let alarms_at = join_key("verify", "alarms");
        let names: Vec<String> = match v.alarms.map(|a| value(self, a, "alarms")) {
            None | Some(None) | Some(Some(Value::Null)) => Vec::new(),
            Some(Some(Value::Array(items))) if items.iter().all(Value::is_string) => {
                items.into_iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
            }
            Some(Some(_)) => {
                self.at_value(&alarms_at, "`verify.alarms` is a list of cloudwatch.alarm resource names".into(), None);
                Vec::new()
            }
        };
        let mut alarms = Vec::new();
        let hint =
            "verify.alarms names the stack's cloudwatch.alarm resources; alarms of other stacks go to --verify-alarms";
        for (i, name) in names.iter().enumerate() {
            let path = join_index(&alarms_at, i);
            let path = if self.index().value(&path).is_some() { path } else { alarms_at.clone() };
            match resources.get(name) {
                Some(r) if r.kind.type_name() == "cloudwatch.alarm" => {
                    alarms.push((name.clone(), r.physical_name.clone()));
                }
                Some(r) => self.at_value(
                    &path,
                    format!("`{name}` is of kind {}, not cloudwatch.alarm", r.kind.type_name()),
                    Some(hint.into()),
                ),
                None => {
                    let of_stack = resources
                        .values()
                        .filter(|r| r.kind.type_name() == "cloudwatch.alarm")
                        .map(|r| r.name.as_str());
                    let help = help_for(name, of_stack).or_else(|| Some(hint.into()));
                    self.at_value(&path, format!("no cloudwatch.alarm resource `{name}` in this stack"), help);
                }
            }
        }
        let window = match v.window.map(|w| value(self, w, "window")) {
            None | Some(None) => super::DEFAULT_VERIFY_WINDOW,
            Some(Some(w)) => {
                let text = w.as_str().map(str::to_string).unwrap_or_else(|| w.to_string());
                super::parse_duration(&text).unwrap_or_else(|| {
                    self.at_value(
                        &join_key("verify", "window"),
                        format!("`{text}` is not a duration (e.g. 10m, 90s)"),
                        None,
                    );
                    super::DEFAULT_VERIFY_WINDOW
                })
            }
        };
        super::Verify { alarms, window }
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

mod lookups;
mod resources;
mod values;

#[cfg(test)]
mod tests;
