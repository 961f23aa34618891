//! What a run prints around its plan: the values it read from outside
//! before it, the stack's outputs after it.

use std::collections::BTreeMap;

use crate::printer::{Printer, Style};
use crate::state::applied::RecordedOutput;

/// Why a value is not shown.
pub fn hidden(name: &str, o: &RecordedOutput) -> String {
    if o.sensitive {
        format!("output `{name}` is sensitive: pass --show-sensitive to read it again from AWS and the environment")
    } else {
        format!("output `{name}` is not known: a resource it uses was not applied (run `converge apply`)")
    }
}

/// `name = "value"`, as Terraform prints outputs.
pub fn line(name: &str, o: &RecordedOutput, show_sensitive: bool, printer: &Printer) -> String {
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
            let how = l.how();
            let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            printer.out(&format!("  lookups.{name} ({}, {how}): {}", l.kind.type_name, shown.join(", ")));
        }
        printer.out("");
    }
}
