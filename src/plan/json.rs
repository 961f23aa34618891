//! The plan as a JSON document: converge's published, versioned format
//! (`plan --format json`, `converge schema --plan`, and the `plan` member of
//! a saved plan file).
//!
//! The document is its own set of types, not the engine's: the engine may
//! change, the format changes only with [`FORMAT_VERSION`]. Secrets are
//! already masked in a [`Plan`]; values known only after apply are the
//! string `(known after apply)` with `after_unknown: true`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Action, AttrChange, Plan, ResourceChange};
use crate::kinds::ReplaceOrder;
use crate::value::{self, UNKNOWN};

/// The version of [`PlanDoc`]'s format. A reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 1;

/// How unknown values read in the document.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// A plan: what `converge apply` would change to make AWS match the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanDoc {
    /// The version of this format (currently 1). Readers refuse newer
    /// versions.
    pub format_version: u32,
    /// The converge that made the plan.
    pub converge_version: String,
    pub stack: String,
    pub env: String,
    pub region: String,
    /// Every resource the plan looked at, `no_op` ones included: creates and
    /// updates in dependency order, then deletes.
    pub resources: Vec<ResourceDoc>,
    pub summary: SummaryDoc,
    /// True when applying the plan would change anything.
    pub has_changes: bool,
    /// What the plan read from outside the stack before it was made: other
    /// stacks' outputs and lookups (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<ReadDoc>,
    /// With `--stats`: what making the plan cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<StatsDoc>,
}

/// A value read before planning: another stack's output or a lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadDoc {
    /// How the spec names it: `stack.NAME.outputs.X`, `lookups.NAME`.
    pub name: String,
    /// Where it came from: the other stack's last apply, the lookup's
    /// filter, or `its override`.
    pub from: String,
    /// What it gave: `value` for another stack's output, a lookup's
    /// outputs by name.
    pub values: std::collections::BTreeMap<String, Value>,
}

/// What a run cost: its AWS calls and the wall time of its phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsDoc {
    /// AWS calls made, each retry counted.
    pub calls: u64,
    /// Calls by `service:Operation` (e.g. `ec2:DescribeVpcs`).
    pub by_action: std::collections::BTreeMap<String, u64>,
    /// Each phase in order (`parse`, `read`, `diff`, `render`, `apply`),
    /// with its wall time in milliseconds.
    pub phases: Vec<PhaseDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseDoc {
    pub name: String,
    pub ms: f64,
}

/// What happens to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceDoc {
    /// `kind.name`, e.g. `rds.db_instance.db`: unique within the plan
    /// except for duplicates of one resource, told apart by `id`.
    pub address: String,
    /// The resource's name in the spec (or, for an object no resource
    /// claims, its name tag or natural key).
    pub name: String,
    /// The resource kind, e.g. `ec2.vpc`.
    pub kind: String,
    pub action: Action,
    /// The AWS id of the existing object (update, replace, delete, no-op).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why a delete: `not in the spec`, a duplicate, `destroy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a replace: the attributes that force it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced_because: Vec<String>,
    /// For a replace: which half goes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_order: Option<ReplaceOrderDoc>,
    /// For a replace created first under the resource's other name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_name: Option<String>,
    /// For an update that moves the object from the resource's old key
    /// (`renamed_from`): that key. The object is retagged, never recreated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// For a create: the resource this plan destroys whose object has the
    /// name the create needs; its delete goes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takes_name_of: Option<String>,
    /// A delete or replace of an object holding data or marked `protect`:
    /// apply refuses it without `protect: false` and `--allow-destroy`.
    pub protected: bool,
    /// The attributes that change (on create: every attribute set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeDoc>,
}

/// The order of a replace's halves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceOrderDoc {
    /// `create_before_destroy` or `destroy_before_create`.
    pub order: ReplaceOrderKind,
    /// Why the old object must go first (destroy before create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceOrderKind {
    CreateBeforeDestroy,
    DestroyBeforeCreate,
}

/// One attribute's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeDoc {
    pub attr: String,
    /// The live value (absent on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after apply (absent on delete). `(known after apply)`
    /// when `after_unknown`; `(sensitive)` when `sensitive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// This attribute's change replaces the object.
    pub forces_replacement: bool,
    /// The value comes from a secret: neither side is shown.
    pub sensitive: bool,
    /// `after` (or part of it) is not known until apply.
    pub after_unknown: bool,
}

/// The counts, as the text summary line gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryDoc {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
}

/// Replaces the internal unknown marker by [`KNOWN_AFTER_APPLY`].
pub fn readable(v: &Value) -> Value {
    match v {
        Value::String(s) if s == UNKNOWN => Value::String(KNOWN_AFTER_APPLY.into()),
        Value::Array(xs) => Value::Array(xs.iter().map(readable).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), readable(v))).collect()),
        other => other.clone(),
    }
}

fn change(c: &AttrChange) -> ChangeDoc {
    ChangeDoc {
        attr: c.attr.clone(),
        before: c.old.as_ref().map(readable),
        after: c.new.as_ref().map(readable),
        forces_replacement: c.forces_replacement,
        sensitive: c.sensitive,
        after_unknown: c.new.as_ref().is_some_and(value::contains_unknown),
    }
}

fn resource(r: &ResourceChange) -> ResourceDoc {
    ResourceDoc {
        address: format!("{}.{}", r.kind, r.name),
        name: r.name.clone(),
        kind: r.kind.to_string(),
        action: r.action,
        id: r.id.clone(),
        reason: r.reason.clone(),
        replaced_because: if r.action == Action::Replace {
            r.changes.iter().filter(|c| c.forces_replacement).map(|c| c.attr.clone()).collect()
        } else {
            Vec::new()
        },
        replace_order: r.replace_order.map(|o| match o {
            ReplaceOrder::CreateFirst | ReplaceOrder::CreateFirstRenamed => {
                ReplaceOrderDoc { order: ReplaceOrderKind::CreateBeforeDestroy, why: None }
            }
            ReplaceOrder::DeleteFirst(why) => {
                ReplaceOrderDoc { order: ReplaceOrderKind::DestroyBeforeCreate, why: Some(why.to_string()) }
            }
        }),
        replacement_name: r.replacement_name.clone(),
        moved_from: r.moved_from.clone(),
        takes_name_of: r.takes_name_of.clone(),
        protected: r.protected,
        changes: r.changes.iter().map(change).collect(),
    }
}

impl PlanDoc {
    pub fn new(plan: &Plan) -> PlanDoc {
        let s = plan.summary();
        PlanDoc {
            format_version: FORMAT_VERSION,
            converge_version: env!("CARGO_PKG_VERSION").to_string(),
            stack: plan.stack.clone(),
            env: plan.env.clone(),
            region: plan.region.clone(),
            resources: plan.resources.iter().map(resource).collect(),
            summary: SummaryDoc { add: s.add, change: s.change, replace: s.replace, destroy: s.destroy },
            has_changes: plan.has_changes(),
            read: plan
                .read
                .iter()
                .map(|r| ReadDoc { name: r.name.clone(), from: r.from.clone(), values: r.values.clone() })
                .collect(),
            stats: None,
        }
    }
}

/// The plan as pretty JSON.
pub fn render(plan: &Plan) -> String {
    render_with(plan, None)
}

/// The plan as pretty JSON, with `--stats`'s figures.
pub fn render_with(plan: &Plan, stats: Option<StatsDoc>) -> String {
    let mut doc = PlanDoc::new(plan);
    doc.stats = stats;
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The JSON Schema (draft 7) of [`PlanDoc`].
pub fn schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut s = generator.into_root_schema_for::<PlanDoc>().to_value();
    if let Value::Object(m) = &mut s {
        m.insert("title".into(), Value::String("converge plan".into()));
    }
    s
}

/// The counts GitLab's merge-request widget reads from a job's
/// `artifacts:reports:terraform` file. A replace is a create and a delete.
pub fn gitlab_report(plan: &Plan) -> String {
    let s = plan.summary();
    serde_json::json!({
        "create": s.add + s.replace,
        "update": s.change,
        "delete": s.destroy + s.replace,
    })
    .to_string()
}
