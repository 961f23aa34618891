//! Content digests: of files (saved plans check them), of live objects
//! (saved plans check they did not move), and of what was applied to an
//! object (`converge:applied`, which tells drift from pending).
//!
//! Sensitive values never enter a digest: a digest that is stored or
//! published would let a short secret be guessed offline.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The tag holding [`applied`]'s digest of what converge last applied to an
/// object, set by the same create or update calls that apply it.
pub const TAG_APPLIED: &str = "converge:applied";

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `v` as JSON with object keys sorted at every level: the same value
/// gives the same bytes whatever order its maps were built in.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                out.push('{');
                for (i, (k, v)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(xs) => {
                out.push('[');
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

/// A short digest of a value (16 hex digits: 64 bits, enough to tell
/// versions of one resource apart; not a security boundary).
pub fn of_value(v: &Value) -> String {
    sha256_hex(canonical_json(v).as_bytes())[..16].to_string()
}

/// The digest of what is applied to one resource: its canonical properties
/// without the sensitive ones, and its tags without converge's own.
pub fn applied(props: &Value, sensitive: &BTreeSet<String>, tags: &BTreeMap<String, String>) -> String {
    let props = match props {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !sensitive.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
        other => other.clone(),
    };
    let tags: BTreeMap<&String, &String> = tags.iter().filter(|(k, _)| !k.starts_with("converge:")).collect();
    of_value(&serde_json::json!({ "props": props, "tags": tags }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": null}});
        let mut m = serde_json::Map::new();
        m.insert("a".into(), json!({"x": null, "y": [1, 2]}));
        m.insert("b".into(), json!(1));
        assert_eq!(canonical_json(&a), canonical_json(&Value::Object(m)));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
    }

    #[test]
    fn applied_digest_leaves_out_secrets_and_converge_tags() {
        let sensitive: BTreeSet<String> = ["password".to_string()].into();
        let tags = |extra: &str| {
            BTreeMap::from([("team".to_string(), "a".to_string()), ("converge:stack".to_string(), extra.to_string())])
        };
        let one = applied(&json!({"size": 20, "password": "hunter2"}), &sensitive, &tags("x"));
        let two = applied(&json!({"size": 20, "password": "other"}), &sensitive, &tags("y"));
        assert_eq!(one, two);
        assert_ne!(one, applied(&json!({"size": 21, "password": "hunter2"}), &sensitive, &tags("x")));
        assert_eq!(one.len(), 16);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
