//! `converge output`: the stack's outputs as the last apply left them, read
//! from its state home. No plan, no change: the record is one read; a
//! sensitive output (never kept) is read again only when asked.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::OutputArgs;
use crate::printer::Printer;
use crate::run::show::{hidden, line};
use crate::state::applied::{self, RecordedOutput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    /// `{"NAME": {"value": …, "sensitive": …, "description": …}}`, or one
    /// output's value alone.
    Json,
}

pub async fn run(args: OutputArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.stack.to_run(), args.show_sensitive)?;
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
    let aws = crate::run::session::connect(&stack, &args.aws.to_run()).await;
    let store = crate::run::session::store(&stack, args.state_dir.as_deref());
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
