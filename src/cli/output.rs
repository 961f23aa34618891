//! `converge output`: the stack's outputs as the last apply left them, read
//! from its state home. No plan, no change: the record is one read; a
//! sensitive output (never kept) is read again only when asked.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::OutputArgs;
use crate::printer::{Printer, Style};
use crate::state::applied::{self, RecordedOutput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    /// `{"NAME": {"value": …, "sensitive": …, "description": …}}`, or one
    /// output's value alone.
    Json,
}

pub async fn run(args: OutputArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = super::load(&args.stack, args.show_sensitive)?;
    if let Some(name) = &args.name
        && !stack.outputs.contains_key(name)
    {
        let help = crate::spec::suggest(name, stack.outputs.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let all = if stack.outputs.is_empty() {
            "it declares none".to_string()
        } else {
            format!("it declares {}", stack.outputs.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
        };
        anyhow::bail!("stack {} has no output `{name}`{help}: {all}", stack.name);
    }
    let aws = super::connect(&stack, &args.aws).await;
    let store = super::store(&stack, args.state_dir.as_deref());
    let Some(record) = applied::read(&aws, &store, &stack.name, &stack.env).await? else {
        anyhow::bail!(
            "no apply of {} / {} is recorded in {}: run `converge apply {} --env {}` first",
            stack.name,
            stack.env,
            store.describe(&applied::key(&stack.name, &stack.env)),
            args.stack.stack.display(),
            stack.env
        );
    };
    let mut outputs: BTreeMap<String, RecordedOutput> = record.outputs;
    // Declared since the last apply: not known until the next one.
    for (name, o) in &stack.outputs {
        outputs.entry(name.clone()).or_insert_with(|| RecordedOutput {
            value: None,
            sensitive: o.sensitive,
            description: o.description.clone(),
        });
    }
    outputs.retain(|name, _| stack.outputs.contains_key(name));
    if let Some(name) = &args.name {
        outputs.retain(|n, _| n == name);
    }
    // Sensitive values, asked for: read AWS (no change) and the
    // environment again, as a plan does.
    if args.show_sensitive && outputs.values().any(|o| o.sensitive) {
        let live = crate::live::read(&aws, &stack).await?;
        let known = crate::plan::known_outputs(&stack, &live);
        let lookup = |n: &str, a: &str| known.get(n)?.get(a).cloned();
        for (name, o) in outputs.iter_mut().filter(|(_, o)| o.sensitive) {
            o.value = stack.outputs.get(name).and_then(|d| d.resolve(&lookup));
        }
    }
    let shown =
        |o: &RecordedOutput| -> Option<Value> { (!o.sensitive || args.show_sensitive).then(|| o.value.clone())? };
    match (&args.name, args.format) {
        (Some(name), format) => {
            let o = &outputs[name];
            let Some(v) = shown(o) else {
                anyhow::bail!("{}", hidden(name, o));
            };
            printer.out(&match (format, &v) {
                (OutputFormat::Text, Value::String(s)) => s.clone(),
                (OutputFormat::Text, v) => v.to_string(),
                (OutputFormat::Json, v) => serde_json::to_string_pretty(v)?,
            });
        }
        (None, OutputFormat::Json) => {
            let doc: serde_json::Map<String, Value> = outputs
                .iter()
                .map(|(name, o)| {
                    let mut entry = json!({ "sensitive": o.sensitive });
                    if let Some(v) = shown(o) {
                        entry["value"] = v;
                    }
                    if let Some(d) = &o.description {
                        entry["description"] = Value::String(d.clone());
                    }
                    (name.clone(), entry)
                })
                .collect();
            printer.out(&serde_json::to_string_pretty(&doc)?);
        }
        (None, OutputFormat::Text) => {
            if outputs.is_empty() {
                printer.out(&format!("Stack {} declares no outputs.", stack.name));
            }
            for (name, o) in &outputs {
                printer.out(&line(name, o, args.show_sensitive, printer));
            }
        }
    }
    Ok(0)
}

/// Why a value is not shown.
fn hidden(name: &str, o: &RecordedOutput) -> String {
    if o.sensitive {
        format!("output `{name}` is sensitive: pass --show-sensitive to read it again from AWS and the environment")
    } else {
        format!("output `{name}` is not known: a resource it uses was not applied (run `converge apply`)")
    }
}

/// `name = "value"`, as Terraform prints outputs.
fn line(name: &str, o: &RecordedOutput, show_sensitive: bool, printer: &Printer) -> String {
    let value = match (&o.value, o.sensitive && !show_sensitive) {
        (_, true) => printer.paint(Style::Dim, "(sensitive)"),
        (Some(v), false) => v.to_string(),
        (None, false) => printer.paint(Style::Dim, "(not known: a resource it uses was not applied)"),
    };
    format!("{name} = {value}")
}

/// After an apply: the outputs it left, sensitive ones hidden.
pub fn show_after_apply(outputs: &BTreeMap<String, RecordedOutput>, printer: &Printer) {
    if outputs.is_empty() {
        return;
    }
    printer.out("");
    printer.out(&printer.paint(Style::Bold, "Outputs:"));
    for (name, o) in outputs {
        printer.out(&format!("  {}", line(name, o, false, printer)));
    }
}

/// Before a plan: the other stacks' outputs it read, and from where.
pub fn show_inputs(stack: &crate::spec::Stack, printer: &Printer) {
    if !stack.inputs.is_empty() {
        printer.out(&printer.paint(Style::Bold, "Read from other stacks' last applies:"));
        for ((other, output), value) in &stack.inputs {
            printer.out(&format!("  stack.{other}.outputs.{output} = {value} ({other} / {})", stack.env));
        }
        printer.out("");
    }
    if !stack.found.is_empty() {
        printer.out(&printer.paint(Style::Bold, "Looked up:"));
        for (name, values) in &stack.found {
            let l = &stack.lookups[name];
            let how = match &l.override_id {
                Some(id) if !id.is_empty() => "its override".to_string(),
                _ => l.filter(),
            };
            let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            printer.out(&format!("  lookups.{name} ({}, {how}): {}", l.kind.type_name, shown.join(", ")));
        }
        printer.out("");
    }
}
