//! Drift: every difference between AWS and the spec, classified.
//!
//! - `drift`: the object differs from what converge last applied to it
//!   (changed outside converge);
//! - `pending`: the spec changed since the last apply (a merged change not
//!   applied yet, a resource added or removed);
//! - `missing`: an object converge applied is gone (deleted outside it);
//! - `unmanaged`: an object tagged for this stack/env that no apply put
//!   there and the spec does not have (made by hand with the stack's tags,
//!   a duplicate).
//!
//! What was applied is known without a state file: every create and update
//! sets `converge:applied`, the digest of the applied properties and tags
//! ([`crate::digest::applied`]), in the same call. An object whose tag
//! equals the digest of the spec now was applied from this spec, so any
//! difference is drift; a different digest means the spec moved. The
//! stack's state home keeps the same digests per resource
//! ([`crate::state::applied`]): drift reads it for the two kinds AWS
//! cannot tag and to know which missing objects existed. Without it, a
//! missing object reads as pending (not created yet).
//!
//! A resource both edited in the spec and changed by hand reads as
//! `pending`: applying the spec resolves both.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::json::{ChangeDoc, PlanDoc};
use super::{Action, Known, Plan, ResourceChange};
use crate::digest::TAG_APPLIED;
use crate::state::applied::Applied;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Drift,
    Pending,
    Missing,
    Unmanaged,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Drift => "drift",
            Class::Pending => "pending",
            Class::Missing => "missing",
            Class::Unmanaged => "unmanaged",
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub class: Class,
    /// `kind.name`, as in plans.
    pub address: String,
    pub name: String,
    pub kind: String,
    /// The live object's id (absent when missing or pending creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What applying the spec would do about it.
    pub action: Action,
    /// A sentence for people.
    pub detail: String,
    /// The attributes that differ (live → spec), secrets masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeDoc>,
    /// Resources that change only because this one does (their new values
    /// are known after apply): folded in here, not findings of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_changes: Vec<String>,
}

/// The differences of one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvDrift {
    pub env: String,
    pub region: String,
    /// False when there was no record of the last apply in the state home:
    /// missing objects then read as pending.
    pub applied_record: bool,
    pub findings: Vec<Finding>,
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub drift: usize,
    pub pending: usize,
    pub missing: usize,
    pub unmanaged: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.drift + self.pending + self.missing + self.unmanaged
    }
}

/// `converge drift --format json`: one stack, one or more environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftDoc {
    /// The version of this format (currently 1).
    pub format_version: u32,
    pub converge_version: String,
    pub stack: String,
    pub environments: Vec<EnvDrift>,
    pub counts: Counts,
    /// With `--stats`: what the run cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<super::json::StatsDoc>,
}

/// The JSON Schema (draft 7) of [`DriftDoc`].
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut s = generator.into_root_schema_for::<DriftDoc>().to_value();
    if let serde_json::Value::Object(m) = &mut s {
        m.insert("title".into(), "converge drift".into());
    }
    s
}

/// Classifies each change of `plan` (made from the spec and live state
/// now). `known`: live outputs, to compute the spec's digest; `applied`:
/// the state home's record, if any.
pub fn classify(stack: &crate::spec::Stack, plan: &Plan, known: &Known, applied: Option<&Applied>) -> EnvDrift {
    let doc = PlanDoc::new(plan);
    let recorded = |rc: &ResourceChange| applied.and_then(|a| a.resources.get(&rc.name)).filter(|r| r.kind == rc.kind);
    let mut findings: Vec<Finding> = Vec::new();
    // Resource → the findings (indices) its changes follow from.
    let mut roots: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (rc, rd) in plan.resources.iter().zip(&doc.resources) {
        // Changes that are all "known after apply" follow from changes to
        // what the resource references (plans list those first): credit
        // them to those findings instead of reporting them apart.
        let follows = matches!(rc.action, Action::Update | Action::Replace)
            && !rd.changes.is_empty()
            && rd.changes.iter().all(|c| c.after_unknown);
        if follows && let Some(r) = stack.resources.get(&rc.name) {
            let mut from: Vec<usize> = r.deps.iter().filter_map(|d| roots.get(d.as_str())).flatten().copied().collect();
            from.sort_unstable();
            from.dedup();
            if !from.is_empty() {
                for &i in &from {
                    findings[i].also_changes.push(rd.address.clone());
                }
                roots.insert(&rc.name, from);
                continue;
            }
        }
        let (class, detail) = match rc.action {
            Action::NoOp => continue,
            Action::Create => match recorded(rc) {
                Some(r) => (Class::Missing, format!("deleted outside converge: {} after the last apply", r.id)),
                None => (Class::Pending, "in the spec, not created yet".to_string()),
            },
            Action::Delete => {
                let in_spec = stack.resources.contains_key(&rc.name);
                let was_applied = rc.live.as_ref().is_some_and(|l| l.tags.contains_key(TAG_APPLIED))
                    || recorded(rc).is_some_and(|r| Some(&r.id) == rc.id.as_ref());
                match (in_spec, was_applied) {
                    (false, true) => (Class::Pending, "removed from the spec, not deleted yet".to_string()),
                    (true, _) => (
                        Class::Unmanaged,
                        format!("a second object tagged as `{}`: {}", rc.name, rc.reason.as_deref().unwrap_or("")),
                    ),
                    (false, false) => (
                        Class::Unmanaged,
                        "tagged for this stack and environment, but not in the spec and never applied".to_string(),
                    ),
                }
            }
            Action::Update | Action::Replace => {
                let now = stack.resources.get(&rc.name).and_then(|r| super::applied_digest(r, known));
                let on_object = rc.live.as_ref().and_then(|l| l.tags.get(TAG_APPLIED)).cloned();
                let last = on_object.or_else(|| recorded(rc).map(|r| r.digest.clone()));
                match (last, now) {
                    (Some(last), Some(now)) if last == now => {
                        (Class::Drift, "changed outside converge since the last apply".to_string())
                    }
                    (Some(_), _) => (Class::Pending, "the spec changed since the last apply".to_string()),
                    (None, _) => {
                        (Class::Pending, "differs from the spec; no record of what was last applied to it".to_string())
                    }
                }
            }
        };
        findings.push(Finding {
            class,
            address: rd.address.clone(),
            name: rc.name.clone(),
            kind: rc.kind.to_string(),
            id: rc.id.clone(),
            action: rc.action,
            detail,
            changes: rd.changes.clone(),
            also_changes: Vec::new(),
        });
        roots.insert(&rc.name, vec![findings.len() - 1]);
    }
    // Drift first: it is what someone has to look at.
    findings.sort_by(|a, b| (a.class, &a.address).cmp(&(b.class, &b.address)));
    let mut counts = Counts::default();
    for f in &findings {
        match f.class {
            Class::Drift => counts.drift += 1,
            Class::Pending => counts.pending += 1,
            Class::Missing => counts.missing += 1,
            Class::Unmanaged => counts.unmanaged += 1,
        }
    }
    EnvDrift { env: plan.env.clone(), region: plan.region.clone(), applied_record: applied.is_some(), findings, counts }
}

impl DriftDoc {
    pub fn new(stack: &str, environments: Vec<EnvDrift>) -> DriftDoc {
        let mut counts = Counts::default();
        for e in &environments {
            counts.drift += e.counts.drift;
            counts.pending += e.counts.pending;
            counts.missing += e.counts.missing;
            counts.unmanaged += e.counts.unmanaged;
        }
        DriftDoc {
            format_version: FORMAT_VERSION,
            converge_version: env!("CARGO_PKG_VERSION").into(),
            stack: stack.into(),
            environments,
            counts,
            stats: None,
        }
    }
}

fn counts_line(c: &Counts) -> String {
    format!(
        "{} difference(s): {} drift, {} pending, {} missing, {} unmanaged.",
        c.total(),
        c.drift,
        c.pending,
        c.missing,
        c.unmanaged
    )
}

/// The findings as text; `changes` are rendered as the plan renders them.
pub fn text(doc: &DriftDoc, plans: &BTreeMap<String, Plan>, p: &crate::printer::Printer) -> String {
    use crate::printer::Style;
    let mut s = String::new();
    for e in &doc.environments {
        s.push_str(&p.paint(
            Style::Bold,
            &format!("converge drift: stack {}, environment {}, region {}", doc.stack, e.env, e.region),
        ));
        s.push_str("\n\n");
        if e.findings.is_empty() {
            s.push_str(&p.paint(Style::Bold, "No differences. AWS matches the spec and what was last applied."));
            s.push_str("\n\n");
            continue;
        }
        if !e.applied_record {
            s.push_str("(no record of the last apply in the state home: objects that are gone read as pending)\n\n");
        }
        for f in &e.findings {
            let style = match f.class {
                Class::Drift | Class::Missing => Style::Error,
                Class::Pending => Style::Change,
                Class::Unmanaged => Style::Replace,
            };
            let id = f.id.as_deref().map(|i| format!(", {i}")).unwrap_or_default();
            s.push_str(&p.paint(style, &format!("{:<9} {} ({}{id}): {}", f.class.name(), f.name, f.kind, f.detail)));
            s.push('\n');
            if !f.also_changes.is_empty() {
                s.push_str(&format!("          applying the spec also changes: {}\n", f.also_changes.join(", ")));
            }
            // The attribute lines of the plan's block for this resource.
            if let Some(rc) = plans
                .get(&e.env)
                .and_then(|pl| pl.resources.iter().find(|r| r.name == f.name && r.kind == f.kind && r.id == f.id))
                && !matches!(f.class, Class::Missing | Class::Unmanaged)
            {
                for line in super::text::resource_text(rc, p).lines().skip(1) {
                    s.push_str("    ");
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        s.push('\n');
        s.push_str(&p.paint(Style::Bold, &counts_line(&e.counts)));
        s.push_str("\n\n");
    }
    s
}

/// The findings as Markdown (a scheduled job's issue or note).
pub fn markdown(doc: &DriftDoc) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "### converge drift: `{}`\n", doc.stack);
    let _ = writeln!(s, "**{}**\n", counts_line(&doc.counts));
    for e in &doc.environments {
        let _ = writeln!(s, "#### `{}` ({})\n", e.env, e.region);
        if e.findings.is_empty() {
            s.push_str("No differences.\n\n");
            continue;
        }
        s.push_str("| Class | Resource | Kind | Id | Detail |\n|---|---|---|---|---|\n");
        for f in &e.findings {
            let loud = if matches!(f.class, Class::Drift | Class::Missing) { "**" } else { "" };
            let attrs: Vec<String> = f.changes.iter().map(|c| format!("`{}`", c.attr)).collect();
            let mut detail =
                if attrs.is_empty() { f.detail.clone() } else { format!("{} ({})", f.detail, attrs.join(", ")) };
            if !f.also_changes.is_empty() {
                detail.push_str(&format!("; applying the spec also changes {}", f.also_changes.join(", ")));
            }
            let _ = writeln!(
                s,
                "| {loud}{}{loud} | `{}` | {} | {} | {} |",
                f.class.name(),
                f.name,
                f.kind,
                f.id.as_deref().unwrap_or(""),
                detail.replace('|', "&#124;")
            );
        }
        s.push('\n');
    }
    s
}
