//! IAM helpers shared by the IAM kinds.
//!
//! IAM is global to the account and its list calls return no tags, so
//! converge puts every role and instance profile it creates under the path
//! `/converge/<stack>/<env>/`: a read lists that path only
//! (`PathPrefix`), whatever else the account holds, and then confirms
//! ownership by the objects' tags.

pub mod instance_profile;
pub mod role;

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use serde_json::Value;

use crate::aws::AwsError;
use crate::tags::{TAG_ENV, TAG_STACK};

/// The IAM path of a stack/env's roles and instance profiles.
pub fn path(stack: &str, env: &str) -> String {
    format!("/converge/{stack}/{env}/")
}

/// The path of the object a desired resource's tags describe.
pub fn path_of(tags: &BTreeMap<String, String>) -> String {
    path(tags.get(TAG_STACK).map_or("", String::as_str), tags.get(TAG_ENV).map_or("", String::as_str))
}

pub fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

pub fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::tags::tag_map(tags.iter().map(|t| (Some(t.key.clone()), Some(t.value.clone()))))
}

/// A policy document as IAM returns it (URL-encoded JSON) back to JSON.
pub fn decode_document(operation: &'static str, encoded: &str) -> Result<Value, AwsError> {
    let text = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
    serde_json::from_str(&text).map_err(|e| AwsError::other(operation, format!("policy document is not JSON: {e}")))
}

/// A policy document as IAM takes it.
pub fn encode_document(doc: &Value) -> String {
    doc.to_string()
}

/// The IAM actions an inline policy document allows (`Effect: Allow`).
pub fn allowed_actions(doc: &Value) -> Vec<String> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .flat_map(|s| match s.get("Action") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Whether `pattern` (an IAM action: `*` any run, `?` one character, no
/// case) covers `action`.
pub fn covers(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match (p.first(), a.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], a) || (!a.is_empty() && glob(p, &a[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &a[1..]),
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y) && glob(&p[1..], &a[1..]),
            _ => false,
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_round_trip_through_url_encoding() {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]});
        let encoded: String =
            percent_encoding::utf8_percent_encode(&super::encode_document(&doc), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(super::decode_document("iam:GetRolePolicy", &encoded).unwrap(), doc);
        assert_eq!(super::path("gitlab-ha", "staging"), "/converge/gitlab-ha/staging/");
    }

    #[test]
    fn iam_action_wildcards_match_as_iam_does() {
        use super::covers;
        assert!(covers("secretsmanager:*", "secretsmanager:GetSecretValue"));
        assert!(covers("*", "ssm:GetParameters") && covers("ssm:GetParameter?", "ssm:GetParameters"));
        assert!(covers("SecretsManager:Get*Value", "secretsmanager:GetSecretValue"));
        assert!(!covers("secretsmanager:List*", "secretsmanager:GetSecretValue"));
    }
}
