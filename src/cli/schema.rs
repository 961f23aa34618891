//! `converge schema`: JSON Schema of stack files, built from the same types
//! the parser uses and from every kind's property schema.

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::kinds::REGISTRY;
use crate::printer::Printer;
use crate::spec::raw::RawStack;

pub fn schema() -> Value {
    let mut generator = SchemaSettings::draft07().into_generator();
    let mut root = generator.root_schema_for::<RawStack>().to_value();
    // `resources.<name>`: one alternative per kind, selected by `type`.
    let variants: Vec<Value> = REGISTRY
        .iter()
        .map(|k| {
            let props = k.schema(&mut generator).to_value();
            json!({
                "type": "object",
                "description": k.doc(),
                "properties": {
                    "type": { "const": k.type_name() },
                    "name": { "type": "string" },
                    "properties": props,
                    "depends_on": { "type": "array", "items": { "type": "string" } },
                    "tags": { "type": "object", "additionalProperties": { "type": "string" } },
                    "wait_timeout": { "type": "string", "pattern": "^[0-9]+[smh]$" }
                },
                "required": ["type"],
                "additionalProperties": false
            })
        })
        .collect();
    let defs = generator.take_definitions(true);
    if let Some(obj) = root.as_object_mut() {
        let d = obj.entry("definitions").or_insert_with(|| json!({}));
        if let Some(d) = d.as_object_mut() {
            d.extend(defs);
            d.insert("Resource".into(), json!({ "oneOf": variants }));
        }
        obj["properties"]["resources"] = json!({
            "type": "object",
            "description": "The resources, by name.",
            "additionalProperties": { "$ref": "#/definitions/Resource" }
        });
    }
    root
}

pub fn run(printer: &Printer) -> anyhow::Result<u8> {
    printer.out(&serde_json::to_string_pretty(&schema())?);
    Ok(0)
}
