//! Deserializers for the stack file's maps, text and free-form values that
//! refuse what serde's own accept silently: a key given twice, and a key or
//! a text field that is not a string (`name: 123`).
//!
//! They let [`super::raw::RawStack`] be read straight from YAML events,
//! without a YAML value tree in between: a stack of 10,000 resources then
//! reads in about half the time and memory. Read through a
//! `serde_yaml_ng::Value` (the path a stack with merge keys takes, and every
//! stack that fails to load), they accept and refuse exactly the same
//! documents, since that value refuses a key given twice itself.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A string, and only a string: a number, boolean or null is refused with
/// serde's own message (`invalid type: integer `123`, expected a string`).
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text, E> {
                Ok(Text(s))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any value, as `serde_json::Value` reads it, with string keys only and
/// no key twice.
pub struct Json(pub Value);

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
                Ok(Json(Value::Bool(b)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
                Ok(Json(Value::Number(n.into())))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
                Ok(Json(Value::Number(n.into())))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
                // As serde_json: a NaN or an infinity is null.
                Ok(Json(Number::from_f64(n).map_or(Value::Null, Value::Number)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
                Ok(Json(Value::String(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
                Ok(Json(Value::String(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
                Ok(Json(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Json, E> {
                Ok(Json(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
                Json::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(Json(v)) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json(Value::Array(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Json, A::Error> {
                let mut out = Map::new();
                fill(m, |k, Json(v)| match out.entry(k) {
                    serde_json::map::Entry::Vacant(e) => {
                        e.insert(v);
                        None
                    }
                    serde_json::map::Entry::Occupied(e) => Some(e.key().clone()),
                })?;
                Ok(Json(Value::Object(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads every entry of `m` into `insert`, which hands back the key of an
/// entry already there: a key given twice is an error.
fn fill<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    mut m: A,
    mut insert: impl FnMut(String, T) -> Option<String>,
) -> Result<(), A::Error> {
    while let Some(Text(k)) = m.next_key()? {
        let v = m.next_value()?;
        if let Some(twice) = insert(k, v) {
            return Err(de::Error::custom(format_args!("duplicate key `{twice}`")));
        }
    }
    Ok(())
}

/// A map of string keys, none twice, each value read as `T` and kept as
/// `f` makes it.
fn map_of<'de, D: Deserializer<'de>, T: Deserialize<'de>, U>(
    d: D,
    f: impl Fn(T) -> U,
) -> Result<BTreeMap<String, U>, D::Error> {
    struct V<T, F>(F, PhantomData<T>);
    impl<'de, T: Deserialize<'de>, U, F: Fn(T) -> U> Visitor<'de> for V<T, F> {
        type Value = BTreeMap<String, U>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            fill(m, |k, v: T| match out.entry(k) {
                Entry::Vacant(e) => {
                    e.insert((self.0)(v));
                    None
                }
                Entry::Occupied(e) => Some(e.key().clone()),
            })?;
            Ok(out)
        }
    }
    d.deserialize_map(V(f, PhantomData))
}

/// `BTreeMap<String, T>` with string keys, none twice.
pub fn map<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<BTreeMap<String, T>, D::Error> {
    map_of(d, |v: T| v)
}

/// `BTreeMap<String, String>` of strings only (tags).
pub fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    map_of(d, |t: Text| t.0)
}

/// `BTreeMap<String, Value>` (variables).
pub fn value_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    map_of(d, |j: Json| j.0)
}

/// A map of free-form values (a resource's properties).
pub fn object<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    match Json::deserialize(d)?.0 {
        Value::Object(m) => Ok(m),
        other => Err(de::Error::invalid_type(unexpected(&other), &"a map")),
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => de::Unexpected::Unsigned(u),
            (_, Some(i)) => de::Unexpected::Signed(i),
            _ => de::Unexpected::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// A string field.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(|t| t.0)
}

/// An optional string field (`~` is none).
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

/// An optional free-form value (`~` is none).
pub fn opt_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Option::<Json>::deserialize(d)?.map(|j| j.0))
}

/// A list of strings.
pub fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Text>::deserialize(d)?.into_iter().map(|t| t.0).collect())
}

#[cfg(test)]
mod tests {
    use super::super::raw::RawStack;

    /// Straight from YAML events and through a YAML value, a stack reads
    /// the same, and what the value refuses the events refuse.
    #[test]
    fn events_and_values_agree() {
        let direct = |s: &str| serde_yaml_ng::from_str::<RawStack>(s).map(|r| format!("{r:?}"));
        let through = |s: &str| {
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(s).map_err(|e| e.to_string())?;
            <RawStack as serde::Deserialize>::deserialize(&v).map(|r| format!("{r:?}")).map_err(|e| e.to_string())
        };
        let ok = "stack: s\nregion: eu-west-1\ntags: {team: a}\nvariables: {n: 3, f: 1.5, b: true, z: ~}\n\
                  resources:\n  a:\n    type: ec2.vpc\n    name: \"123\"\n    depends_on: [b]\n    protect: ${var.b}\n    \
                  properties: {cidr_block: 10.0.0.0/16, list: [1, x, {k: v}], n: .nan}\n  b: {type: s3.bucket}\n";
        assert_eq!(direct(ok).unwrap(), through(ok).unwrap());
        for bad in [
            "stack: s\nresources:\n  a: {type: s3.bucket}\n  a: {type: s3.bucket}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, properties: {x: 1, x: 2}}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, properties: {x: {y: 1, y: 2}}}\n",
            "stack: s\ntags: {a: b, a: c}\nresources: {}\n",
            "stack: s\nvariables: {a: 1, a: 2}\nresources: {}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, type: s3.bucket}\n",
            "stack: 123\nresources: {}\n",
            "stack: s\ntags: {team: 5}\nresources: {}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, name: 12}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, depends_on: [1]}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, properties: {80: x}}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, properties: [1]}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, properties: {x: !Ref y}}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, adopt: \"true\"}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, adopt: 1}\n",
            "stack: s\nresources:\n  a: {type: s3.bucket, wait_timeout: 90}\n",
        ] {
            assert!(direct(bad).is_err(), "read straight from events: {bad}");
            assert!(through(bad).is_err(), "read through a value: {bad}");
        }
    }
}
