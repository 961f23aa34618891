use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Limit, Sent, To, check, models, of, past, reference};
use crate::kinds::REGISTRY;

/// The property paths of a kind's schema down to its leaves, as
/// [`Sent::prop`] writes them (`ingress[].cidr_blocks[]`).
fn leaves(kind: &dyn crate::kinds::DynKind) -> BTreeSet<String> {
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    let root = kind.schema(&mut g).to_value();
    let defs = g.definitions().clone();
    let mut out = BTreeSet::new();
    walk(&root, &defs, "", &mut out, 0);
    out
}

fn walk(s: &Value, defs: &serde_json::Map<String, Value>, at: &str, out: &mut BTreeSet<String>, depth: usize) {
    assert!(depth < 20, "schema nests too deep at {at}");
    if s.get("type").and_then(Value::as_str) == Some("null") {
        return;
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let def = &defs[r.trim_start_matches("#/definitions/")];
        return walk(def, defs, at, out, depth + 1);
    }
    let alternatives: Vec<&Value> =
        ["anyOf", "oneOf", "allOf"].iter().filter_map(|k| s.get(*k)).filter_map(Value::as_array).flatten().collect();
    let props = s.get("properties").and_then(Value::as_object);
    if let Some(props) = props {
        for (k, v) in props {
            let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            walk(v, defs, &here, out, depth + 1);
        }
    }
    for a in &alternatives {
        walk(a, defs, at, out, depth + 1);
    }
    if let Some(items) = s.get("items") {
        return walk(items, defs, &format!("{at}[]"), out, depth + 1);
    }
    // A leaf: a scalar, a list's item, or an object with no properties (a
    // map, a document).
    let empty_object = props.is_none_or(|p| p.is_empty());
    if empty_object && alternatives.is_empty() && !at.is_empty() {
        out.insert(at.to_string());
    }
}

#[test]
fn every_property_of_every_kind_says_where_it_goes() {
    let mut missing = Vec::new();
    let mut unknown = Vec::new();
    for kind in REGISTRY {
        let leaves = leaves(*kind);
        let named: BTreeSet<&str> = kind.sends().iter().map(|s| s.prop).collect();
        for leaf in &leaves {
            if !named.contains(leaf.as_str()) {
                missing.push(format!("{}: {leaf}", kind.type_name()));
            }
        }
        // Every row names a property of the schema (a leaf, or a list or
        // object above leaves).
        for s in kind.sends() {
            let above = leaves.iter().any(|l| {
                l == s.prop || l.starts_with(&format!("{}.", s.prop)) || l.starts_with(&format!("{}[]", s.prop))
            });
            if !above {
                unknown.push(format!("{}: {}", kind.type_name(), s.prop));
            }
        }
    }
    assert!(missing.is_empty(), "properties no `sends()` row accounts for:\n{}", missing.join("\n"));
    assert!(unknown.is_empty(), "`sends()` rows naming no property:\n{}", unknown.join("\n"));
}

#[test]
fn every_member_a_kind_names_is_in_the_generated_table() {
    let mut absent = Vec::new();
    for kind in REGISTRY {
        for s in kind.sends() {
            if let To::Member(m) = s.to
                && models::MODELS.binary_search_by(|l| l.id.cmp(m)).is_err()
            {
                absent.push(format!("{}: {m}", kind.type_name()));
            }
        }
    }
    assert!(absent.is_empty(), "run scripts/gen-limits; members not in src/limits/models.rs:\n{}", absent.join("\n"));
    let ids: Vec<&str> = models::MODELS.iter().map(|l| l.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "MODELS is sorted by id, without repeats (binary search)");
}

#[test]
fn every_reference_row_is_for_a_member_some_kind_sends() {
    let sent: BTreeSet<&str> = REGISTRY
        .iter()
        .flat_map(|k| k.sends())
        .filter_map(|s| match s.to {
            To::Member(m) => Some(m),
            To::Not(_) => None,
        })
        .collect();
    for row in reference::REFERENCE {
        assert!(sent.contains(row.id), "{}: no kind sends it, so the row checks nothing", row.id);
        assert!(matches!(row.source, super::Source::Reference(p) if p.len() > 20), "{}: cite the page", row.id);
    }
}

#[test]
fn every_pattern_compiles_and_accepts_what_it_should() {
    for l in models::MODELS.iter().chain(reference::REFERENCE) {
        if let Some(p) = l.pattern {
            assert!(regex_lite::Regex::new(p).is_ok(), "{}: `{p}` does not compile", l.id);
            assert!(super::regex(p).is_some(), "{}: not in the compiled set", l.id);
        }
    }
    // A translated model pattern still takes what AWS takes.
    let asg = of("autoscaling:CreateAutoScalingGroupType.HealthCheckType").find(|l| l.pattern.is_some()).unwrap();
    let re = super::regex(asg.pattern.unwrap()).unwrap();
    assert!(re.is_match("ELB") && re.is_match("tab\there 🙂") && !re.is_match("bell\u{7}"));
}

fn sends(prop: &'static str, member: &'static str) -> Vec<Sent> {
    vec![Sent::aws(prop, member)]
}

#[test]
fn values_past_a_limit_are_placed_at_their_item() {
    let s = sends("ingress[].cidr_blocks[]", "ec2:IpRange.CidrIp");
    let props = json!({"ingress": [{"cidr_blocks": ["10.0.0.0/8"]}, {"cidr_blocks": ["10.1.0.0/16", "::/0"]}]});
    let v = check(&s, &props, &|_| false);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].path, "ingress[1].cidr_blocks[1]");
    assert!(v[0].message.contains("IPv6") && v[0].message.contains("EC2 API Reference"), "{}", v[0].message);
}

#[test]
fn unknown_values_and_left_out_ones_are_not_judged() {
    let s = sends("num_cache_clusters", "elasticache:CreateReplicationGroupMessage.NumCacheClusters");
    assert!(check(&s, &json!({}), &|_| false).is_empty());
    assert!(check(&s, &json!({"num_cache_clusters": crate::value::unknown()}), &|_| false).is_empty());
    let d = sends("description", "ec2:CreateSecurityGroupRequest.Description");
    let partly = format!("next to {}", crate::value::UNKNOWN);
    assert!(check(&d, &json!({ "description": partly }), &|_| false).is_empty());
    assert_eq!(check(&s, &json!({"num_cache_clusters": 7}), &|_| false).len(), 1);
    assert!(check(&s, &json!({"num_cache_clusters": 6}), &|_| false).is_empty());
}

#[test]
fn a_secret_is_never_quoted() {
    let s = sends("description", "ec2:CreateSecurityGroupRequest.Description");
    let props = json!({"description": "hunter2\u{1}"});
    let loud = check(&s, &props, &|_| false);
    let quiet = check(&s, &props, &|top| top == "description");
    assert!(loud[0].message.contains("\\u{1}"), "{}", loud[0].message);
    assert!(!quiet[0].message.contains("hunter2") && !quiet[0].message.contains("\\u{1}"), "{}", quiet[0].message);
}

#[test]
fn an_enum_names_the_near_value() {
    let s = sends("volume_type", "ec2:CreateVolumeRequest.VolumeType");
    let v = check(&s, &json!({"volume_type": "GP3"}), &|_| false);
    assert!(v[0].message.contains("did you mean `gp3`?") && v[0].message.contains("botocore"), "{}", v[0].message);
}

/// The generated half: for every kind, every limit of every member it
/// sends, each value [`past`] derives from the table is refused at its
/// path, and the limit's own value passes (in-process; `tests/cli.rs`
/// feeds the same values to `converge validate`).
#[test]
fn every_limit_of_every_kind_refuses_the_values_past_it() {
    let mut cases = 0;
    for kind in REGISTRY {
        for s in kind.sends() {
            let To::Member(member) = s.to else { continue };
            for limit in of(member) {
                for (bad, what) in past(limit) {
                    let props = at_path(s.prop, bad.clone());
                    let v = check(std::slice::from_ref(s), &props, &|_| false);
                    assert_eq!(v.len(), 1, "{} {}: {what} ({bad}) gave {v:?}", kind.type_name(), s.prop);
                    cases += 1;
                }
                if let Some(ok) = within(limit) {
                    let v = check(std::slice::from_ref(s), &at_path(s.prop, ok.clone()), &|_| false);
                    assert!(v.is_empty(), "{} {}: {ok} is within {}: {v:?}", kind.type_name(), s.prop, limit.id);
                }
            }
        }
    }
    assert!(cases > 60, "{cases} cases");
}

/// A value at a limit's edge (the most it allows), where there is one.
fn within(l: &Limit) -> Option<Value> {
    match l.ty {
        super::Type::Integer | super::Type::Number => l.max.or(l.min).map(Value::from),
        super::Type::String if l.values.is_empty() && l.pattern.is_none() && l.cidr.is_none() => {
            l.max.map(|m| Value::from("a".repeat(m as usize)))
        }
        _ => None,
    }
}

/// `{a: [{b: value}]}` for `a[].b`.
fn at_path(path: &str, value: Value) -> Value {
    let Some((head, rest)) = path.split_once('.') else {
        return match path.strip_suffix("[]") {
            Some(k) => json!({ k: [value] }),
            None => json!({ path: value }),
        };
    };
    let inner = at_path(rest, value);
    match head.strip_suffix("[]") {
        Some(k) => json!({ k: [inner] }),
        None => json!({ head: inner }),
    }
}
