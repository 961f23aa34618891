//! `converge schema`: JSON Schema of stack files, built from the same types
//! the parser uses and from every kind's property schema.
//!
//! The kinds' schemas describe resolved values; a spec may write, wherever
//! a value goes, a whole-value expression (`${var.x}`, which keeps the
//! variable's type) and, wherever a string goes, a rendered template
//! (`{ $template: PATH, vars: {...} }`). The schema says so, so that an
//! editor accepts what `converge validate` accepts, and names are held to
//! the patterns `validate` checks.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::kinds::REGISTRY;
use crate::printer::Printer;
use crate::spec::raw::RawStack;

/// A value that is exactly one `${...}` expression.
const EXPRESSION: &str = r"^\$\{[^}]+\}$";
/// Resource names (`resources.<name>`, `depends_on`).
const RESOURCE_NAME: &str = "^[A-Za-z0-9_-]+$";

pub fn schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let mut root = generator.root_schema_for::<RawStack>().to_value();
    let own: Vec<String> =
        root.get("definitions").and_then(Value::as_object).map(|d| d.keys().cloned().collect()).unwrap_or_default();
    let mut roots = Vec::new();
    // `resources.<name>`: one alternative per kind, selected by `type`.
    let variants: Vec<Value> = REGISTRY
        .iter()
        .map(|k| {
            let mut props = k.schema(&mut generator).to_value();
            // `properties:` itself is a map as written, never an expression.
            match props.get("$ref").and_then(Value::as_str) {
                Some(r) => roots.push(r.trim_start_matches("#/definitions/").to_string()),
                None => accept_expressions(&mut props, false),
            }
            let ignorable = crate::kinds::ignorable(*k);
            json!({
                "type": "object",
                "description": k.doc(),
                "properties": {
                    "type": { "const": k.type_name() },
                    "name": { "type": "string", "minLength": 1 },
                    "properties": props,
                    "depends_on": { "type": "array", "items": { "type": "string", "pattern": RESOURCE_NAME } },
                    "tags": { "type": "object", "additionalProperties": { "type": "string" } },
                    "wait_timeout": { "type": "string", "pattern": format!(r"^([0-9]+[smh]|{})$", &EXPRESSION[1..EXPRESSION.len() - 1]) },
                    "enabled": { "anyOf": [{ "type": "boolean" }, { "$ref": "#/definitions/Expression" }] },
                    "protect": { "anyOf": [{ "type": "boolean" }, { "$ref": "#/definitions/Expression" }] },
                    "adopt": { "type": "boolean" },
                    "ignore_changes": { "type": "array", "items": { "enum": ignorable } }
                },
                "required": ["type"],
                "additionalProperties": false
            })
        })
        .collect();
    let mut defs = generator.take_definitions(true);
    // The kinds' own definitions (nested property types) take expressions
    // too; the stack file's structure does not.
    for (name, def) in defs.iter_mut() {
        if !own.contains(name) {
            accept_expressions(def, !roots.contains(name));
        }
    }
    if let Some(obj) = root.as_object_mut() {
        let d = obj.entry("definitions").or_insert_with(|| json!({}));
        if let Some(d) = d.as_object_mut() {
            for (name, def) in defs {
                d.entry(name).or_insert(def);
            }
            d.insert("Resource".into(), json!({ "oneOf": variants }));
            d.insert(
                "Expression".into(),
                json!({
                    "description": "A whole value from an expression: `${var.NAME}`, `${resources.NAME.ATTR}`, `${var.FLAG ? A : B}` …",
                    "type": "string",
                    "pattern": EXPRESSION
                }),
            );
            d.insert(
                "Template".into(),
                json!({
                    "description": "A file rendered with minijinja: its path relative to the stack file, and the variables it uses.",
                    "type": "object",
                    "properties": {
                        "$template": { "type": "string", "minLength": 1 },
                        "vars": { "type": "object" }
                    },
                    "required": ["$template"],
                    "additionalProperties": false
                }),
            );
        }
        obj["properties"]["stack"]["pattern"] = json!("^[a-z0-9-]+$");
        obj["properties"]["resources"] = json!({
            "type": "object",
            "description": "The resources, by name.",
            "propertyNames": { "pattern": RESOURCE_NAME },
            "additionalProperties": { "$ref": "#/definitions/Resource" }
        });
    }
    root
}

/// Rewrites a value's schema so that an expression may stand for any
/// non-string value and a template for any string. Walks nested schemas
/// (properties, items, maps, alternatives); `$ref`s are left alone, their
/// targets are rewritten where they are defined.
fn accept_expressions(schema: &mut Value, wrap_self: bool) {
    let Some(obj) = schema.as_object_mut() else { return };
    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(Value::Object(children)) = obj.get_mut(key) {
            children.values_mut().for_each(|c| accept_expressions(c, true));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = obj.get_mut(key) {
            accept_expressions(child, true);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(children)) = obj.get_mut(key) {
            children.iter_mut().for_each(|c| accept_expressions(c, true));
        }
    }
    let types: Vec<String> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        _ => return,
    };
    if !wrap_self {
        return;
    }
    // An expression may stand for any value (an enum's or a pattern's
    // string too); a template wherever text goes.
    let mut alternatives = vec![json!({ "$ref": "#/definitions/Expression" })];
    if types.iter().any(|t| t == "string") {
        alternatives.push(json!({ "$ref": "#/definitions/Template" }));
    }
    // Keep annotations on the outside, the constraint inside `anyOf`.
    let mut inner = Map::new();
    for (k, v) in std::mem::take(obj) {
        match k.as_str() {
            "description" | "title" | "default" | "examples" => {
                obj.insert(k, v);
            }
            _ => {
                inner.insert(k, v);
            }
        }
    }
    alternatives.insert(0, Value::Object(inner));
    obj.insert("anyOf".into(), Value::Array(alternatives));
}

pub fn run(args: &super::SchemaArgs, printer: &Printer) -> anyhow::Result<u8> {
    if args.markdown {
        printer.out(crate::kinds::reference::markdown().trim_end());
        return Ok(0);
    }
    let doc = match (args.plan, args.drift) {
        (true, _) => crate::plan::json::schema(),
        (_, true) => crate::plan::drift::schema(),
        _ => schema(),
    };
    printer.out(&serde_json::to_string_pretty(&doc)?);
    Ok(0)
}
