//! The plan: desired vs live, attribute by attribute.
//!
//! A [`Plan`] never holds a secret: attributes fed from `${env.NAME}` are
//! masked when the plan is built, so every renderer (text, JSON) and any
//! file written from a plan is safe to publish.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::graph::Graph;
use crate::kinds::{DynKind, Live, ReplaceOrder};
use crate::live::LiveState;
use crate::spec::{Resource, Stack};
use crate::value::{self, SENSITIVE};

mod deletes;
pub mod drift;
pub mod json;
pub mod markdown;
pub mod saved;
pub mod text;

use deletes::order_deletes;
pub use deletes::{delete_edges, deleted_before, destroy, uses};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }
}

/// One attribute's change. `old` is `None` on create, `new` on delete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrChange {
    pub attr: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub forces_replacement: bool,
    pub sensitive: bool,
}

/// What happens to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceChange {
    pub name: String,
    pub kind: &'static str,
    pub action: Action,
    /// The live object's id (update, replace, delete).
    pub id: Option<String>,
    /// Why, for deletes: not in the spec, a duplicate, destroy.
    pub reason: Option<String>,
    pub changes: Vec<AttrChange>,
    /// A delete or replace of an object that holds data (or has
    /// `protect: true`): apply refuses it without both opt-ins.
    pub protected: bool,
    /// For a replace: which half goes first, and why when it is the delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_order: Option<ReplaceOrder>,
    /// For a replace created first under the alternate name: that name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement_name: Option<String>,
    /// The resource's key its object carries now, when it is being moved
    /// to this one (`renamed_from`): retagged in place, never recreated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// For a create (or a replace's new half): the resource this plan
    /// destroys whose object holds the physical name it needs (a key
    /// renamed without `renamed_from`). Its delete goes first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub takes_name_of: Option<String>,
    /// The live object, for the executor.
    #[serde(skip)]
    pub live: Option<Arc<Live>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub stack: String,
    pub env: String,
    pub region: String,
    /// Creates and updates in dependency order, then deletes.
    pub resources: Vec<ResourceChange>,
    /// What the plan read from outside the stack before it was made.
    pub read: Vec<ReadValue>,
}

/// A value read from outside the stack before planning: another stack's
/// output (`stack.gitlab-ha.outputs.vpc_id`) or a lookup (`lookups.ami`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadValue {
    /// How the spec names it.
    pub name: String,
    /// Where it came from: the other stack's last apply, or the lookup's
    /// filter (`its override` when one was given).
    pub from: String,
    pub values: BTreeMap<String, Value>,
}

/// The other stacks' outputs and the lookup results `stack` was loaded with.
pub fn read_of(stack: &Stack) -> Vec<ReadValue> {
    let inputs = stack.inputs.iter().map(|((other, output), value)| ReadValue {
        name: format!("stack.{other}.outputs.{output}"),
        from: format!("the last apply of {other} / {}", stack.env),
        values: BTreeMap::from([("value".to_string(), value.clone())]),
    });
    let found = stack.found.iter().map(|(name, values)| {
        let l = stack.lookups.get(name);
        let from = match l {
            Some(l) if l.given().is_some() => l.how(),
            Some(l) => format!("{}: {}", l.kind.type_name, l.how()),
            None => String::new(),
        };
        ReadValue { name: format!("lookups.{name}"), from, values: values.clone() }
    });
    inputs.chain(found).collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.resources {
            match r.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.destroy += 1,
                Action::NoOp => {}
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action != Action::NoOp)
    }
}

/// A plan that cannot be made: a resolved value the kind rejects.
#[derive(Debug, thiserror::Error)]
#[error("{}", if .resource.is_empty() { .message.clone() } else { format!("resource `{}`: {}", .resource, .message) })]
pub struct PlanError {
    pub resource: String,
    pub message: String,
}

/// Which outputs are known at plan time: those of resources that exist and
/// are kept (no-op or update). Created and replaced ones are unknown.
pub type Known = BTreeMap<String, BTreeMap<String, Value>>;

/// Where [`desired_props`] finds other resources' outputs: a [`Known`], or
/// the map a plan builds as it goes, which borrows each live object's
/// outputs and copies only those an update changes.
pub trait Outputs {
    fn output(&self, name: &str, attr: &str) -> Option<Value>;
}

impl Outputs for Known {
    fn output(&self, name: &str, attr: &str) -> Option<Value> {
        self.get(name).and_then(|o| o.get(attr)).cloned()
    }
}

type Borrowed<'a> = HashMap<&'a str, Cow<'a, BTreeMap<String, Value>>>;

impl Outputs for Borrowed<'_> {
    fn output(&self, name: &str, attr: &str) -> Option<Value> {
        self.get(name).and_then(|o| o.get(attr)).cloned()
    }
}

/// Resolves `r`'s properties against `known` outputs and canonicalizes.
/// While a value is unknown the kind may not be able to check it: the raw
/// resolved value is used, and the executor resolves again at apply time.
pub fn desired_props(r: &Resource, known: &impl Outputs) -> Result<Value, PlanError> {
    desired(r, known).map(Cow::into_owned)
}

/// [`desired_props`], borrowed from the resource when it references
/// nothing (canonicalized once, at load).
fn desired<'r>(r: &'r Resource, known: &impl Outputs) -> Result<Cow<'r, Value>, PlanError> {
    if let Some(v) = &r.canonical {
        return Ok(Cow::Borrowed(v));
    }
    let resolved = r
        .props
        .resolve(&|name, attr| known.output(name, attr))
        .map_err(|message| PlanError { resource: r.name.clone(), message })?;
    // Properties with a value still unknown may not pass the typed check
    // (a port from an output not created yet): they are planned as they are.
    let unknown = value::contains_unknown(&resolved).then(|| resolved.clone());
    match (r.kind.canonicalize(resolved), unknown) {
        (Ok(v), _) => Ok(Cow::Owned(v)),
        (Err(_), Some(resolved)) => Ok(Cow::Owned(resolved)),
        (Err(e), None) => Err(PlanError {
            resource: r.name.clone(),
            message: if r.sensitive.iter().any(|s| e.path.starts_with(s.as_str())) {
                format!("{}: invalid value (sensitive, not shown)", e.path)
            } else {
                format!("{}: {}", e.path, e.message)
            },
        }),
    }
}

/// The outputs of every spec resource's live object: what its references
/// resolve to once the stack exists.
pub fn known_outputs(stack: &Stack, live: &LiveState) -> Known {
    stack
        .resources
        .values()
        .filter_map(|r| live.get(r.kind, &r.name).map(|l| (r.name.clone(), l.outputs.clone())))
        .collect()
}

/// The digest of what applying `r` now would record (`converge:applied`),
/// if its properties are known.
pub fn applied_digest(r: &Resource, known: &impl Outputs) -> Option<String> {
    let props = desired(r, known).ok()?;
    (!value::contains_unknown(&props)).then(|| crate::digest::applied(&props, &r.sensitive, &r.tags))
}

/// The unnamed live object (a kind AWS cannot tag) whose natural key the
/// resource's desired properties have, if they are known.
fn match_by_key<'a>(r: &Resource, live: &'a LiveState, known: &impl Outputs) -> Option<&'a Arc<Live>> {
    let desired = desired(r, known).ok()?;
    if value::contains_unknown(&desired) {
        return None;
    }
    live.by_key(r.kind, &desired)
}

fn mask(v: Value, sensitive: bool) -> Value {
    if sensitive { Value::String(SENSITIVE.into()) } else { v }
}

/// The object of resource `r` to keep when several carry its tags (a
/// replace whose old half was not deleted, or a create repeated by hand):
/// the one closest to the spec (no forced replacement, then fewest
/// changes), ties by id. The others are planned as duplicates to delete.
fn best_of<'a>(r: &Resource, live: &'a LiveState, known: &impl Outputs) -> Option<&'a Arc<Live>> {
    let all = live.objects.get(&(r.kind.type_name(), r.name.clone())).or_else(|| moved(r, live))?;
    if all.len() < 2 {
        return all.first();
    }
    let Ok(desired) = desired(r, known) else { return all.first() };
    all.iter().min_by_key(|l| {
        let changes = diff_attrs(r.kind, r, &desired, l);
        (changes.iter().any(|c| c.forces_replacement), changes.len())
    })
}

/// The objects of the key `r` was renamed from (`renamed_from`), while none
/// carries its own.
fn moved<'a>(r: &Resource, live: &'a LiveState) -> Option<&'a Vec<Arc<Live>>> {
    let old = r.renamed_from.as_ref()?;
    live.objects.get(&(r.kind.type_name(), old.clone())).filter(|all| !all.is_empty())
}

/// Compares `desired` with `live` for one resource. Only attributes the
/// spec sets are compared (the canonical form fills in defaults, so an
/// omitted optional setting is still managed), and none the resource's
/// `ignore_changes` names.
pub fn diff_attrs(kind: &dyn DynKind, r: &Resource, desired: &Value, live: &Live) -> Vec<AttrChange> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let want = desired.as_object().unwrap_or(&empty);
    let have = live.props.as_object().unwrap_or(&empty);
    // Desired and live properties come from the same typed struct: their
    // keys usually come in the same order, and the live value is the next
    // one, found without a lookup.
    let mut next = have.iter().peekable();
    for (attr, new) in want {
        // A live attribute the read could not observe is left out by the
        // kind: it is not compared (see `Kind::read`).
        let old = match next.next_if(|(k, _)| *k == attr) {
            Some((_, v)) => v,
            None => match have.get(attr) {
                Some(v) => v,
                None => continue,
            },
        };
        if kind.write_only().contains(&attr.as_str()) || r.ignore_changes.contains(attr) {
            continue;
        }
        if value::contains_unknown(new) || !value::same(new, old) {
            let sensitive = r.sensitive.contains(attr);
            out.push(AttrChange {
                attr: attr.clone(),
                forces_replacement: kind.replace_on().contains(&attr.as_str()),
                old: Some(mask(old.clone(), sensitive)),
                new: Some(mask(new.clone(), sensitive)),
                sensitive,
            });
        }
    }
    if let Some(name_output) = kind.physical_name_output()
        && let Some(Value::String(now)) = live.outputs.get(name_output)
        && *now != r.physical_name
        && *now != crate::kinds::alternate_name(kind, &r.physical_name, &r.physical_name)
    {
        out.insert(
            0,
            AttrChange {
                attr: "name".into(),
                old: Some(Value::String(now.clone())),
                new: Some(Value::String(r.physical_name.clone())),
                forces_replacement: true,
                sensitive: false,
            },
        );
    }
    // `converge:applied` and `converge:commit` record a run; they are not
    // compared.
    let recorded = |(k, _): &(&String, &String)| !crate::tags::RUN_TAGS.contains(&k.as_str());
    if kind.taggable() && !r.ignore_changes.contains("tags") && !r.tags.iter().eq(live.tags.iter().filter(recorded)) {
        let live_tags: BTreeMap<&String, &String> = live.tags.iter().filter(recorded).collect();
        out.push(AttrChange {
            attr: "tags".into(),
            old: Some(serde_json::to_value(&live_tags).unwrap_or_default()),
            new: Some(serde_json::to_value(&r.tags).unwrap_or_default()),
            forces_replacement: false,
            sensitive: false,
        });
    }
    out
}

/// How resource `r`'s object `l` is replaced: its kind's order for the
/// attributes that force it, and for a renamed replacement the name it gets,
/// added to `changes` so the plan shows it.
fn replacement(r: &Resource, l: &Live, changes: &mut Vec<AttrChange>) -> (Option<ReplaceOrder>, Option<String>) {
    let forcing: Vec<&str> = changes.iter().filter(|c| c.forces_replacement).map(|c| c.attr.as_str()).collect();
    let order = r.kind.replace_order(&forcing);
    if order != ReplaceOrder::CreateFirstRenamed {
        return (Some(order), None);
    }
    let now = r
        .kind
        .physical_name_output()
        .and_then(|o| l.outputs.get(o))
        .and_then(Value::as_str)
        .unwrap_or(&r.physical_name)
        .to_string();
    let next = crate::kinds::alternate_name(r.kind, &r.physical_name, &now);
    changes.insert(
        0,
        AttrChange {
            attr: "name".into(),
            old: Some(Value::String(now)),
            new: Some(Value::String(next.clone())),
            forces_replacement: false,
            sensitive: false,
        },
    );
    (Some(order), Some(next))
}

fn create_attrs(r: &Resource, desired: &Value) -> Vec<AttrChange> {
    let mut out: Vec<AttrChange> = desired
        .as_object()
        .into_iter()
        .flatten()
        // Left out (null) is nothing to create: not shown, as Terraform
        // leaves out a null argument.
        .filter(|(_, v)| !v.is_null())
        .map(|(attr, v)| {
            let sensitive = r.sensitive.contains(attr);
            AttrChange {
                attr: attr.clone(),
                old: None,
                new: Some(mask(v.clone(), sensitive)),
                forces_replacement: false,
                sensitive,
            }
        })
        .collect();
    if !r.kind.taggable() {
        return out;
    }
    out.push(AttrChange {
        attr: "tags".into(),
        old: None,
        new: Some(serde_json::to_value(&r.tags).unwrap_or_default()),
        forces_replacement: false,
        sensitive: false,
    });
    out
}

/// Whether deleting or replacing resource `name`'s object needs both
/// opt-ins: its kind holds data, or the spec says `protect: true`. An
/// object whose resource left the spec keeps its kind's protection.
pub fn is_protected(stack: &Stack, name: &str, kind: &dyn DynKind) -> bool {
    match stack.resources.get(name).filter(|r| r.kind.type_name() == kind.type_name()) {
        Some(r) => r.protect || kind.protected(),
        None => kind.protected(),
    }
}

/// The protected deletes and replaces `allow` (`--allow-destroy`) does not
/// cover: each needs `protect: false` in the spec and its name (or `*`) in
/// `allow`.
pub fn refused<'a>(plan: &'a Plan, stack: &Stack, allow: &[String]) -> Vec<&'a ResourceChange> {
    plan.resources
        .iter()
        .filter(|rc| rc.protected)
        .filter(|rc| {
            let opted_out = stack.resources.get(&rc.name).is_some_and(|r| !r.protect);
            let named = allow.iter().any(|a| a == "*" || *a == rc.name);
            !(opted_out && named)
        })
        .collect()
}

fn delete_change(stack: &Stack, kind: &'static str, live: &Arc<Live>, reason: &str) -> ResourceChange {
    // An untaggable object that no resource claims is named by its key.
    let name = match crate::kinds::lookup(kind).and_then(|k| k.natural_key(&live.props)) {
        Some(key) if live.name.is_empty() => key,
        _ => live.name.clone(),
    };
    ResourceChange {
        name,
        kind,
        action: Action::Delete,
        id: Some(live.id.clone()),
        reason: Some(reason.into()),
        changes: Vec::new(),
        protected: crate::kinds::lookup(kind).is_some_and(|k| is_protected(stack, &live.name, k)),
        replace_order: None,
        replacement_name: None,
        moved_from: None,
        takes_name_of: None,
        live: Some(Arc::clone(live)),
    }
}

/// Sets [`ResourceChange::takes_name_of`]: a create whose physical name the
/// object of a resource this plan destroys holds (same kind).
fn mark_taken_names(stack: &Stack, resources: &mut [ResourceChange]) {
    let mut held: BTreeMap<(&'static str, String), String> = BTreeMap::new();
    for d in resources.iter().filter(|d| d.action == Action::Delete) {
        let name = d.live.as_ref().and_then(|l| {
            let output = crate::kinds::lookup(d.kind)?.physical_name_output()?;
            l.outputs.get(output)?.as_str().map(str::to_string)
        });
        if let Some(name) = name {
            held.insert((d.kind, name), d.name.clone());
        }
    }
    for r in resources.iter_mut().filter(|r| matches!(r.action, Action::Create | Action::Replace)) {
        let Some(spec) = stack.resources.get(&r.name) else { continue };
        let wanted = r.replacement_name.clone().unwrap_or_else(|| spec.physical_name.clone());
        r.takes_name_of = held.get(&(r.kind, wanted)).filter(|holder| **holder != r.name).cloned();
    }
}

/// Below this many resources on a level of the graph, a thread of their
/// own does not pay.
const RESOURCES_PER_THREAD: usize = 16;

/// What planning one resource gives.
struct Planned<'a> {
    /// The live object kept for it.
    live: Option<&'a Arc<Live>>,
    /// Its change (`None` outside the targets).
    change: Option<Result<ResourceChange, PlanError>>,
    /// The outputs its dependents see: none while unknown (created or
    /// replaced), with those an update changes marked unknown.
    outputs: Option<Cow<'a, BTreeMap<String, Value>>>,
}

/// Plans resource `r`, its dependencies' outputs in `known` (and `prior`,
/// see [`plan`]).
fn plan_resource<'a>(
    stack: &Stack,
    r: &'a Resource,
    live: &'a LiveState,
    known: &Borrowed<'a>,
    prior: &Borrowed<'a>,
    in_scope: bool,
) -> Planned<'a> {
    let l = best_of(r, live, known).or_else(|| match_by_key(r, live, prior));
    if !in_scope {
        // Outside the targets: not planned, but its outputs are known.
        return Planned { live: l, change: None, outputs: l.map(|l| Cow::Borrowed(&l.outputs)) };
    }
    let desired = match desired(r, known) {
        Ok(d) => d,
        Err(e) => return Planned { live: l, change: Some(Err(e)), outputs: None },
    };
    let name = &r.name;
    let Some(l) = l else {
        let rc = ResourceChange {
            name: name.clone(),
            kind: r.kind.type_name(),
            action: Action::Create,
            id: None,
            reason: None,
            changes: create_attrs(r, &desired),
            protected: false,
            replace_order: None,
            replacement_name: None,
            moved_from: None,
            takes_name_of: None,
            live: None,
        };
        return Planned { live: None, change: Some(Ok(rc)), outputs: None };
    };
    let mut changes = diff_attrs(r.kind, r, &desired, l);
    let action = if changes.iter().any(|c| c.forces_replacement) {
        Action::Replace
    } else if changes.is_empty() {
        Action::NoOp
    } else {
        Action::Update
    };
    let outputs = (action != Action::Replace).then(|| {
        let mut outputs = Cow::Borrowed(&l.outputs);
        if action == Action::Update {
            for o in r.kind.outputs_changed_by_update() {
                outputs.to_mut().insert((*o).to_string(), value::unknown());
            }
        }
        outputs
    });
    let (replace_order, replacement_name) =
        if action == Action::Replace { replacement(r, l, &mut changes) } else { (None, None) };
    let rc = ResourceChange {
        name: name.clone(),
        kind: r.kind.type_name(),
        action,
        id: Some(l.id.clone()),
        reason: None,
        changes,
        protected: action == Action::Replace && is_protected(stack, name, r.kind),
        replace_order,
        replacement_name,
        moved_from: r.renamed_from.clone().filter(|old| *old == l.name),
        takes_name_of: None,
        live: Some(Arc::clone(l)),
    };
    Planned { live: Some(l), change: Some(Ok(rc)), outputs }
}

/// Plans `stack` against `live`. With `targets`, only those resources and
/// what they depend on are planned, and nothing is deleted unless named.
///
/// # Errors
/// A resolved property the kind rejects (e.g. an output of the wrong type).
pub fn plan(stack: &Stack, live: &LiveState, targets: Option<&BTreeSet<String>>) -> Result<Plan, PlanError> {
    plan_threaded(stack, live, targets, RESOURCES_PER_THREAD)
}

/// [`plan`], a level of the graph shared among threads when each gets at
/// least `per_thread` of its resources.
fn plan_threaded(
    stack: &Stack,
    live: &LiveState,
    targets: Option<&BTreeSet<String>>,
    per_thread: usize,
) -> Result<Plan, PlanError> {
    if !live.conflicts.is_empty() {
        let all: Vec<String> = live.conflicts.iter().map(|c| format!("\n  {c}")).collect();
        return Err(PlanError {
            resource: String::new(),
            message: format!(
                "objects with the spec's names exist that are not this stack's; nothing was changed:{}",
                all.concat()
            ),
        });
    }
    // Node `i` of the graph is the stack's `i`-th resource (both in name
    // order): the walk below looks nothing up by name but references.
    let all: Vec<&Resource> = stack.resources.values().collect();
    let graph = Graph::new(all.iter().map(|r| (r.name.as_str(), &r.deps)));
    let scope = targets.map(|t| graph.with_dependencies(t));
    let in_scope = |name: &str| scope.as_ref().is_none_or(|s| s.contains(name));
    let mut known: Borrowed<'_> = HashMap::with_capacity(all.len());
    // Untaggable objects matched to a resource by natural key, computed from
    // the outputs objects have now (`prior`: replaced ones included, so a
    // mount target whose subnet is replaced is found, then replaced).
    let mut claimed: HashSet<(&str, &str)> = HashSet::new();
    let mut prior: Borrowed<'_> = HashMap::with_capacity(all.len());
    // Level by level: a resource reads only its dependencies' outputs, all
    // on earlier levels, so the resources of one level are planned on
    // every core. The changes are then listed in the graph's order, up to
    // the first error, as a walk in that order would have.
    let order = graph.order_indices();
    let mut planned: Vec<Option<Planned<'_>>> = (0..all.len()).map(|_| None).collect();
    for level in graph.levels(&order) {
        let threads = crate::par::threads_for(level.len(), per_thread);
        let (_, done) = crate::par::map_chunks(
            level,
            threads,
            &mut (),
            || (),
            |_, i| {
                let r = all[i];
                (i, plan_resource(stack, r, live, &known, &prior, in_scope(&r.name)))
            },
        );
        for (i, mut p) in done {
            let r = all[i];
            if let Some(o) = p.live {
                prior.insert(&r.name, Cow::Borrowed(&o.outputs));
                claimed.insert((r.kind.type_name(), &o.id));
            }
            if let Some(outputs) = p.outputs.take() {
                known.insert(&r.name, outputs);
            }
            planned[i] = Some(p);
        }
    }
    let mut resources = Vec::new();
    for i in order {
        if let Some(change) = planned[i].take().and_then(|p| p.change) {
            resources.push(change?);
        }
    }
    // Objects the spec no longer has, and duplicates of those it has.
    let mut deletes = Vec::new();
    for ((kind, name), objects) in &live.objects {
        let spec_kind = stack.resources.get(name).map(|r| r.kind.type_name());
        let wanted = spec_kind == Some(*kind);
        let targeted = targets.is_none_or(|t| t.contains(name));
        // Every resource of the spec in scope was planned above.
        let in_plan = spec_kind.is_some() && in_scope(name);
        for (i, o) in objects.iter().enumerate() {
            // A resource the plan did not reach (outside the targets) keeps
            // its first object; one it planned keeps the object it chose.
            if (wanted && !in_plan && i == 0) || claimed.contains(&(*kind, o.id.as_str())) {
                continue;
            }
            if !targeted {
                continue;
            }
            let reason = match (wanted, spec_kind) {
                _ if name.is_empty() => "no resource in the spec has its file system and subnet",
                (true, _) => "a duplicate: another object has this resource's tags",
                (false, Some(_)) => "the spec now gives this resource another type",
                (false, None) => "no longer in the spec",
            };
            deletes.push(delete_change(stack, kind, o, reason));
        }
    }
    resources.extend(order_deletes(stack, deletes));
    mark_taken_names(stack, &mut resources);
    Ok(Plan {
        stack: stack.name.clone(),
        env: stack.env.clone(),
        region: stack.region.clone(),
        resources,
        read: read_of(stack),
    })
}

#[cfg(test)]
mod tests;
