//! Values that are not known until apply, and masking of sensitive values.
//!
//! Resolved properties are `serde_json::Value`s. A value that depends on a
//! resource not created yet is the string [`UNKNOWN`]: it cannot be written
//! in YAML (it starts with a control character) and every renderer shows it
//! as `(known after apply)`.

use serde_json::Value;

pub const UNKNOWN: &str = "\u{1}(known after apply)";
pub const SENSITIVE: &str = "(sensitive)";

pub fn unknown() -> Value {
    Value::String(UNKNOWN.to_string())
}

pub fn is_unknown_str(s: &str) -> bool {
    s == UNKNOWN
}

pub fn is_unknown(v: &Value) -> bool {
    matches!(v, Value::String(s) if is_unknown_str(s))
}

/// True if `v` or anything inside it is unknown.
pub fn contains_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => is_unknown_str(s),
        Value::Array(a) => a.iter().any(contains_unknown),
        Value::Object(m) => m.values().any(contains_unknown),
        _ => false,
    }
}

/// `a == b`, faster for the usual case of two maps made from the same
/// typed struct (desired and live properties): their keys come in the same
/// order, and are compared pair by pair instead of looked up. Maps whose
/// keys differ in order fall back to `==` (map equality ignores order).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            if x.keys().eq(y.keys()) { x.values().zip(y.values()).all(|(v, w)| same(v, w)) } else { a == b }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w)),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_unknowns() {
        assert!(contains_unknown(&json!({"a": [1, {"b": UNKNOWN}]})));
        assert!(!contains_unknown(&json!({"a": [1, {"b": "known"}]})));
        assert!(is_unknown(&unknown()));
    }

    #[test]
    fn same_is_equality_whatever_the_key_order() {
        let values = [
            json!({"a": 1, "b": [1, {"c": "x", "d": null}]}),
            json!({"b": [1, {"d": null, "c": "x"}], "a": 1}),
            json!({"a": 1, "b": [1, {"c": "x", "d": false}]}),
            json!({"a": 1, "b": [1, {"c": "x"}]}),
            json!({"a": 1, "b": [{"c": "x", "d": null}, 1]}),
            json!({"a": 1.0, "b": [1, {"c": "x", "d": null}]}),
            json!({"a": 1, "e": [1, {"c": "x", "d": null}]}),
            json!([1, 2]),
            json!([1, 2, 3]),
            json!("a"),
            json!(null),
        ];
        for a in &values {
            for b in &values {
                assert_eq!(same(a, b), a == b, "{a} {b}");
            }
        }
    }
}
