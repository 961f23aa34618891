//! `converge graph`: the dependency graph, as text or DOT.

use std::fmt::Write;

use super::{GraphArgs, GraphFormat};
use crate::graph::Graph;
use crate::printer::Printer;

pub fn run(args: GraphArgs, printer: &Printer) -> anyhow::Result<u8> {
    let stack = crate::run::load::load(&args.stack.to_run(), false)?;
    let graph = Graph::new(stack.resources.values().map(|r| (r.name.as_str(), &r.deps)));
    let mut s = String::new();
    match args.format {
        GraphFormat::Text => {
            // Creation order; each line names what it waits for.
            for name in graph.order() {
                let r = &stack.resources[&name];
                let deps = graph.dependencies(&name);
                if deps.is_empty() {
                    let _ = writeln!(s, "{name} ({})", r.kind.type_name());
                } else {
                    let _ = writeln!(s, "{name} ({}) <- {}", r.kind.type_name(), deps.join(", "));
                }
            }
        }
        GraphFormat::Dot => {
            let _ = writeln!(s, "digraph \"{}-{}\" {{\n  rankdir=LR;\n  node [shape=box];", stack.name, stack.env);
            for name in graph.order() {
                let _ = writeln!(s, "  \"{name}\" [label=\"{name}\\n{}\"];", stack.resources[&name].kind.type_name());
            }
            for name in graph.order() {
                for d in graph.dependencies(&name) {
                    let _ = writeln!(s, "  \"{d}\" -> \"{name}\";");
                }
            }
            s.push('}');
        }
    }
    printer.out(s.trim_end());
    Ok(0)
}
