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
}
