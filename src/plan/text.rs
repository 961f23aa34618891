//! The plan as text, for a terminal and the plan job's log: Terraform's
//! symbols, one block per resource, each attribute's change (JSON and
//! Markdown live in `json` and `markdown`).

use std::fmt::Write;

use serde_json::Value;

use super::{Action, AttrChange, Plan, ResourceChange, Summary};
use crate::kinds::ReplaceOrder;
use crate::printer::{Printer, Style};
use crate::value::{self, UNKNOWN};

fn style_of(a: Action) -> Style {
    match a {
        Action::Create => Style::Add,
        Action::Update => Style::Change,
        Action::Replace => Style::Replace,
        Action::Delete => Style::Remove,
        Action::NoOp => Style::Plain,
    }
}

/// A value on one line: strings quoted, unknowns as `(known after apply)`.
pub fn inline(v: &Value) -> String {
    match v {
        Value::String(s) if s == UNKNOWN => "(known after apply)".into(),
        Value::String(s) if s == value::SENSITIVE => s.clone(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(xs) => format!("[{}]", xs.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => {
            if m.is_empty() {
                return "{}".into();
            }
            let items: Vec<String> = m.iter().map(|(k, v)| format!("{} = {}", key(k), inline(v))).collect();
            format!("{{ {} }}", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') { k.to_string() } else { format!("\"{k}\"") }
}

/// Tags without the `converge:` identity tags, which every resource has.
fn user_tags(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !k.starts_with("converge:")).map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
        other => other.clone(),
    }
}

struct Out<'a> {
    p: &'a Printer,
    s: String,
}

impl Out<'_> {
    fn line(&mut self, indent: usize, style: Style, text: &str) {
        let _ = writeln!(self.s, "{}{}", " ".repeat(indent), self.p.paint(style, text));
    }
}

/// The whole plan as text.
pub fn render(plan: &Plan, p: &Printer) -> String {
    let mut o = Out { p, s: String::new() };
    o.line(
        0,
        Style::Bold,
        &format!("converge plan: stack {}, environment {}, region {}", plan.stack, plan.env, plan.region),
    );
    o.line(0, Style::Plain, "");
    if !plan.has_changes() {
        o.line(0, Style::Bold, "No changes. AWS matches the spec.");
        return o.s;
    }
    for r in plan.resources.iter().filter(|r| r.action != Action::NoOp) {
        resource(&mut o, r);
        o.line(0, Style::Plain, "");
    }
    o.line(0, Style::Bold, &summary_line(&plan.summary()));
    o.s
}

/// One resource's block of the text plan (its heading line, then its
/// attributes), as [`text`] prints it.
pub fn resource_text(r: &ResourceChange, p: &Printer) -> String {
    let mut o = Out { p, s: String::new() };
    resource(&mut o, r);
    o.s
}

pub fn summary_line(s: &Summary) -> String {
    format!("Plan: {} to add, {} to change, {} to replace, {} to destroy.", s.add, s.change, s.replace, s.destroy)
}

fn resource(o: &mut Out<'_>, r: &ResourceChange) {
    let st = style_of(r.action);
    let id = r.id.as_deref().map(|i| format!(", {i}")).unwrap_or_default();
    let what = match r.action {
        Action::Create => "will be created".to_string(),
        Action::Update => match &r.moved_from {
            Some(old) => format!("will be moved from `{old}` (retagged in place, not recreated)"),
            None => "will be updated in place".to_string(),
        },
        Action::Replace => {
            let by: Vec<&str> = r.changes.iter().filter(|c| c.forces_replacement).map(|c| c.attr.as_str()).collect();
            format!("must be replaced ({} forces replacement)", by.join(", "))
        }
        Action::Delete => format!("will be destroyed ({})", r.reason.as_deref().unwrap_or("")),
        Action::NoOp => String::new(),
    };
    let symbol = match r.replace_order {
        Some(ReplaceOrder::CreateFirst | ReplaceOrder::CreateFirstRenamed) => "+/-",
        _ => r.action.symbol(),
    };
    let head = format!("{symbol:>3} {} ({}{id}) {what}", r.name, r.kind);
    o.line(0, st, &head);
    match r.replace_order {
        Some(ReplaceOrder::CreateFirst | ReplaceOrder::CreateFirstRenamed) => o.line(
            6,
            Style::Plain,
            "create before destroy: the old object is deleted once what uses it has moved to the new one",
        ),
        Some(ReplaceOrder::DeleteFirst(why)) => o.line(6, Style::Plain, &format!("destroy before create: {why}")),
        None => {}
    }
    if let Some(holder) = &r.takes_name_of {
        o.line(
            6,
            Style::Plain,
            &format!(
                "after `{holder}` is destroyed, whose object has the name it needs; to keep that object instead, say `renamed_from: {holder}` on `{}`",
                r.name
            ),
        );
    }
    if r.protected {
        o.line(
            6,
            Style::Error,
            &format!(
                "! PROTECTED: it holds data; it goes only if the spec says `protect: false` for {} and the command says --allow-destroy {}",
                r.name, r.name
            ),
        );
    }
    let width = r.changes.iter().map(|c| c.attr.len()).max().unwrap_or(0);
    for c in &r.changes {
        attr(o, r.action, c, width);
    }
}

fn attr(o: &mut Out<'_>, action: Action, c: &AttrChange, width: usize) {
    let pad = |a: &str| format!("{a:width$}");
    let is_tags = c.attr == "tags";
    let new = c.new.as_ref().map(|v| if is_tags { user_tags(v) } else { v.clone() });
    let old = c.old.as_ref().map(|v| if is_tags { user_tags(v) } else { v.clone() });
    match (action, &old, &new) {
        (Action::Create, _, Some(v)) => {
            if matches!(v, Value::Array(xs) if xs.iter().any(Value::is_object)) {
                o.line(6, Style::Add, &format!("+ {} = [", pad(&c.attr)));
                for x in v.as_array().into_iter().flatten() {
                    o.line(10, Style::Add, &format!("{},", inline(x)));
                }
                o.line(8, Style::Add, "]");
            } else if let Some(text) = long_text(v) {
                // Rendered files and policies: their lines, as a reviewer
                // reads them.
                o.line(6, Style::Add, &format!("+ {} = <<EOT", pad(&c.attr)));
                for l in text.lines() {
                    o.line(10, Style::Add, &format!("+ {l}"));
                }
                o.line(8, Style::Add, "EOT");
            } else if let Value::Object(m) = v
                && width + inline(v).chars().count() > WIDE
            {
                // Too wide for a line: a key a line.
                o.line(6, Style::Add, &format!("+ {} = {{", pad(&c.attr)));
                let w = m.keys().map(|k| key(k).len()).max().unwrap_or(0);
                for (k, x) in m {
                    o.line(10, Style::Add, &format!("+ {:w$} = {}", key(k), inline(x)));
                }
                o.line(8, Style::Add, "}");
            } else {
                o.line(6, Style::Add, &format!("+ {} = {}", pad(&c.attr), inline(v)));
            }
        }
        (_, Some(old), Some(new)) => changed(o, c, old, new, &pad(&c.attr)),
        _ => {}
    }
}

fn changed(o: &mut Out<'_>, c: &AttrChange, old: &Value, new: &Value, padded: &str) {
    let forces = if c.forces_replacement { "  # forces replacement" } else { "" };
    // Not known until apply: say so on one line, not as a wall of removals.
    if value::is_unknown(new) {
        o.line(6, Style::Change, &format!("~ {padded} = (known after apply){forces}"));
        return;
    }
    match (old, new) {
        // Sets of objects (rules) and lists: element by element.
        (Value::Array(a), Value::Array(b))
            if !value::contains_unknown(new) || a.iter().chain(b).any(Value::is_object) =>
        {
            o.line(6, Style::Change, &format!("~ {}{forces}", c.attr));
            for x in a.iter().filter(|x| !b.contains(x)) {
                o.line(10, Style::Remove, &format!("- {}", inline(x)));
            }
            for x in b.iter().filter(|x| !a.contains(x)) {
                o.line(10, Style::Add, &format!("+ {}", inline(x)));
            }
        }
        // Maps (tags, nested settings): key by key.
        (Value::Object(a), Value::Object(b)) => {
            o.line(6, Style::Change, &format!("~ {}{forces}", c.attr));
            for (k, v) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                o.line(10, Style::Remove, &format!("- {} = {}", key(k), inline(v)));
            }
            for (k, v) in b {
                match a.get(k) {
                    None => o.line(10, Style::Add, &format!("+ {} = {}", key(k), inline(v))),
                    Some(w) if w != v => {
                        let (a, b) = (inline(w), inline(v));
                        if k.len() + a.chars().count() + b.chars().count() > WIDE {
                            o.line(10, Style::Change, &format!("~ {}", key(k)));
                            o.line(14, Style::Remove, &format!("- {a}"));
                            o.line(14, Style::Add, &format!("+ {b}"));
                        } else {
                            o.line(10, Style::Change, &format!("~ {} = {a} → {b}", key(k)));
                        }
                    }
                    _ => {}
                }
            }
        }
        // Multi-line text (user data, rendered files) and JSON documents
        // (policies): a line diff.
        (Value::String(a), Value::String(b))
            if a.contains('\n') || b.contains('\n') || (json_text(a).is_some() && json_text(b).is_some()) =>
        {
            o.line(6, Style::Change, &format!("~ {}{forces}", c.attr));
            let (a, b) = (json_text(a).unwrap_or_else(|| a.clone()), json_text(b).unwrap_or_else(|| b.clone()));
            let diff = similar::TextDiff::from_lines(&a, &b);
            for group in diff.grouped_ops(2) {
                for op in group {
                    for change in diff.iter_changes(&op) {
                        let (sign, st) = match change.tag() {
                            similar::ChangeTag::Delete => ("-", Style::Remove),
                            similar::ChangeTag::Insert => ("+", Style::Add),
                            similar::ChangeTag::Equal => (" ", Style::Dim),
                        };
                        o.line(10, st, &format!("{sign} {}", change.value().trim_end_matches('\n')));
                    }
                }
            }
        }
        _ => {
            let (a, b) = (inline(old), inline(new));
            if padded.len() + a.chars().count() + b.chars().count() > WIDE {
                // Too wide for one line: before and after on lines of their own.
                o.line(6, Style::Change, &format!("~ {}{forces}", c.attr));
                o.line(10, Style::Remove, &format!("- {a}"));
                o.line(10, Style::Add, &format!("+ {b}"));
            } else {
                o.line(6, Style::Change, &format!("~ {padded} = {a} → {b}{forces}"));
            }
        }
    }
}

/// Beyond this many characters, a change's two values go on lines of
/// their own.
const WIDE: usize = 100;

/// A string value shown as lines: multi-line text or a JSON document.
fn long_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\n') => Some(s.clone()),
        Value::String(s) => json_text(s),
        _ => None,
    }
}

/// A string holding a JSON object or array (an IAM policy), pretty-printed
/// so that it diffs by lines.
fn json_text(s: &str) -> Option<String> {
    let t = s.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    let v: Value = serde_json::from_str(s).ok()?;
    let mut pretty = serde_json::to_string_pretty(&v).ok()?;
    pretty.push('\n');
    Some(pretty)
}
