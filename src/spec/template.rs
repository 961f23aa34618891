//! Property values that may still reference other resources' outputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::expr::{Part, Reference};
use crate::value;

/// A property value after variables, region and secrets are substituted.
/// Only `${resources.NAME.ATTR}` references remain.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Lit(Value),
    /// Text and resource references; a single reference keeps its type.
    Interp(Vec<Part>),
    List(Vec<Template>),
    Map(BTreeMap<String, Template>),
    /// `{ $template: PATH, vars: {...} }`: a file rendered with `vars` once
    /// they are known.
    Render {
        path: String,
        source: Arc<str>,
        vars: Box<Template>,
    },
}

impl Template {
    /// Substitutes resource outputs. `output(name, attr)` returns `None`
    /// while the value is unknown (the resource is yet to be created).
    ///
    /// # Errors
    /// A template that fails to render with its (known) variables.
    pub fn resolve(&self, output: &dyn Fn(&str, &str) -> Option<Value>) -> Result<Value, String> {
        Ok(match self {
            Template::Lit(v) => v.clone(),
            Template::Interp(parts) => {
                let get = |r: &Reference| match r {
                    Reference::Resource { name, attr } => output(name, attr),
                    _ => None,
                };
                if let [Part::Ref(r)] = parts.as_slice() {
                    return Ok(get(r).unwrap_or_else(value::unknown));
                }
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Lit(t) => s.push_str(t),
                        Part::Ref(r) => match get(r) {
                            Some(Value::String(v)) => s.push_str(&v),
                            Some(v) if !v.is_null() => s.push_str(&v.to_string()),
                            _ => return Ok(value::unknown()),
                        },
                    }
                }
                if value::contains_unknown(&Value::String(s.clone())) { value::unknown() } else { Value::String(s) }
            }
            Template::List(items) => Value::Array(items.iter().map(|t| t.resolve(output)).collect::<Result<_, _>>()?),
            Template::Map(m) => Value::Object(
                m.iter().map(|(k, t)| Ok((k.clone(), t.resolve(output)?))).collect::<Result<_, String>>()?,
            ),
            Template::Render { path, source, vars } => {
                let vars = vars.resolve(output)?;
                if value::contains_unknown(&vars) {
                    value::unknown()
                } else {
                    Value::String(crate::render::render(source, &vars).map_err(|e| format!("{path}: {e}"))?)
                }
            }
        })
    }

    /// Whether any resource reference is left: without one, every
    /// [`Template::resolve`] gives the same value.
    pub fn has_references(&self) -> bool {
        match self {
            Template::Lit(_) => false,
            Template::Interp(parts) => parts.iter().any(|p| matches!(p, Part::Ref(_))),
            Template::List(items) => items.iter().any(Template::has_references),
            Template::Map(m) => m.values().any(Template::has_references),
            Template::Render { vars, .. } => vars.has_references(),
        }
    }

    /// The value with every reference unknown: what validation checks.
    pub fn placeholder(&self) -> Value {
        self.resolve(&|_, _| None).unwrap_or_else(|_| value::unknown())
    }

    /// The value with each reference written as `${resources.NAME.ATTR}`
    /// and templates rendered around them: what the spec says, before AWS
    /// is read (a saved plan records it). A template that cannot render
    /// with those placeholders shows its path and source digest instead.
    pub fn written(&self) -> Value {
        let placeholder = |n: &str, a: &str| Some(Value::String(format!("${{resources.{n}.{a}}}")));
        self.resolve(&placeholder).unwrap_or_else(|_| {
            let mut files = BTreeMap::new();
            self.files(&mut files);
            let files: BTreeMap<&String, String> =
                files.iter().map(|(p, s)| (p, crate::digest::sha256_hex(s.as_bytes()))).collect();
            serde_json::json!({ "templates": files })
        })
    }

    /// The template files this value renders: path → source.
    pub fn files(&self, out: &mut BTreeMap<String, Arc<str>>) {
        match self {
            Template::Lit(_) | Template::Interp(_) => {}
            Template::List(items) => items.iter().for_each(|t| t.files(out)),
            Template::Map(m) => m.values().for_each(|t| t.files(out)),
            Template::Render { path, source, vars } => {
                out.insert(path.clone(), source.clone());
                vars.files(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(n: &str, a: &str) -> Part {
        Part::Ref(Reference::Resource { name: n.into(), attr: a.into() })
    }

    #[test]
    fn single_reference_keeps_type_and_interpolation_makes_text() {
        let out = |n: &str, a: &str| match (n, a) {
            ("db", "port") => Some(json!(5432)),
            ("vpc", "id") => Some(json!("vpc-1")),
            _ => None,
        };
        assert_eq!(Template::Interp(vec![r("db", "port")]).resolve(&out).unwrap(), json!(5432));
        assert_eq!(
            Template::Interp(vec![Part::Lit("id=".into()), r("vpc", "id")]).resolve(&out).unwrap(),
            json!("id=vpc-1")
        );
        assert_eq!(Template::Interp(vec![r("new", "id")]).resolve(&out).unwrap(), value::unknown());
        assert_eq!(
            Template::Interp(vec![Part::Lit("x-".into()), r("new", "id")]).resolve(&out).unwrap(),
            value::unknown()
        );
    }

    #[test]
    fn nested_structures_resolve_recursively() {
        let t = Template::Map(BTreeMap::from([(
            "a".into(),
            Template::List(vec![Template::Lit(json!(1)), Template::Interp(vec![r("x", "id")])]),
        )]));
        assert_eq!(t.resolve(&|_, _| Some(json!("sg-1"))).unwrap(), json!({"a": [1, "sg-1"]}));
        assert!(value::contains_unknown(&t.placeholder()));
        assert!(t.has_references());
        let lit = Template::Map(BTreeMap::from([("a".into(), Template::List(vec![Template::Lit(json!(1))]))]));
        assert!(!lit.has_references());
    }

    #[test]
    fn templates_render_once_their_variables_are_known() {
        let t = Template::Render {
            path: "t.j2".into(),
            source: "host={{ host }}\n".into(),
            vars: Box::new(Template::Map(BTreeMap::from([(
                "host".into(),
                Template::Interp(vec![r("db", "address")]),
            )]))),
        };
        assert_eq!(t.resolve(&|_, _| None).unwrap(), value::unknown());
        assert_eq!(t.resolve(&|_, _| Some(json!("db.internal"))).unwrap(), json!("host=db.internal\n"));
        let bad = Template::Render {
            path: "t.j2".into(),
            source: "{{ nope }}".into(),
            vars: Box::new(Template::Map(BTreeMap::new())),
        };
        assert!(bad.resolve(&|_, _| None).unwrap_err().starts_with("t.j2: line 1:"));
    }
}
