//! Helpers every kind's properties use: typed checking with the error's
//! path, the canonical JSON form, the property names a schema lists, and
//! the shared value rules (sets of ids, CIDR blocks).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{DynKind, PropsError};
use crate::aws::AwsError;

/// Checks `props` as `P` and serializes it back: the shared core of every
/// kind's [`DynKind::canonicalize`].
pub fn typed<P: DeserializeOwned>(props: Value) -> Result<P, PropsError> {
    // Path tracking allocates at every key: only for the error's path.
    if let Ok(p) = P::deserialize(&props) {
        return Ok(p);
    }
    serde_path_to_error::deserialize(props)
        .map_err(|e| PropsError { path: crate::spec::path_string(e.path()), message: e.inner().to_string() })
}

/// Canonical properties (desired or live) back as the kind's typed struct.
/// They were produced from that struct, so failing is a converge bug,
/// reported as an error of the kind rather than a panic.
pub fn props<P: DeserializeOwned>(kind: &'static str, v: &Value) -> Result<P, AwsError> {
    serde_json::from_value(v.clone()).map_err(|e| AwsError::other(kind, format!("unreadable properties: {e}")))
}

/// Serde's default for a flag that is on unless the spec turns it off:
/// `#[serde(default = "crate::kinds::yes")]`.
pub fn yes() -> bool {
    true
}

/// Serde's default for a number, written where the field is:
/// `#[serde(default = "crate::kinds::int::<300>")]`.
pub fn int<const N: i32>() -> i32 {
    N
}

/// [`int`] for the fields AWS types as a long.
pub fn long<const N: i64>() -> i64 {
    N
}

pub fn to_value<P: Serialize>(p: &P) -> Value {
    serde_json::to_value(p).expect("kind properties serialize to JSON")
}

/// What a resource of `kind` may list in `ignore_changes`: its top-level
/// properties, and `tags` where AWS can tag it (`validate` and `converge
/// schema` alike).
pub fn ignorable(kind: &dyn DynKind) -> Vec<String> {
    let mut names = property_names(kind);
    if kind.taggable() {
        names.push("tags".into());
    }
    names
}

/// The top-level property names of a kind, from its schema: the
/// attributes a plan compares.
pub fn property_names(kind: &dyn DynKind) -> Vec<String> {
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = kind.schema(&mut g).to_value();
    let resolved = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => g.definitions().get(r.trim_start_matches("#/definitions/")).cloned().unwrap_or(Value::Null),
        None => schema,
    };
    resolved.get("properties").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Sorts a set of ids and drops repeats, keeping every unknown one (two
/// subnets not created yet are two subnets).
pub fn sort_ids(ids: &mut Vec<String>) {
    ids.sort();
    let mut seen = std::collections::BTreeSet::new();
    ids.retain(|id| crate::value::is_unknown_str(id) || seen.insert(id.clone()));
}

/// A VPC's or subnet's IPv4 block: AWS takes a /16 to a /28.
pub fn check_block_size(cidr: &str) -> Result<(), PropsError> {
    match cidr.parse::<ipnet::IpNet>() {
        Ok(ipnet::IpNet::V4(n)) if !(16..=28).contains(&n.prefix_len()) => Err(PropsError {
            path: "cidr_block".into(),
            message: format!("`{cidr}`: AWS takes an IPv4 block from /16 (65,536 addresses) to /28 (16)"),
        }),
        Ok(ipnet::IpNet::V6(_)) => {
            Err(PropsError { path: "cidr_block".into(), message: format!("`{cidr}`: the primary block is IPv4") })
        }
        _ => Ok(()),
    }
}

/// A CIDR block: validated when known, passed through while unknown.
pub mod cidr_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &str, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        if crate::value::is_unknown_str(&s) {
            return Ok(s);
        }
        let net: ipnet::IpNet =
            s.parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not a CIDR block (e.g. 10.0.0.0/16)")))?;
        if net.trunc() != net {
            return Err(serde::de::Error::custom(format!("`{s}` has host bits set; did you mean `{}`?", net.trunc())));
        }
        Ok(net.to_string())
    }
}
