//! Resource kinds, grouped by AWS service: one folder per service holding
//! its kinds (one file each) and that service's helpers (its tag filters,
//! its error codes, its shared reads) in the folder's `mod.rs`.
//!
//! A kind states its facts as data ([`Facts`]), implements one typed trait
//! ([`Kind`]), and is listed once in the [`registry`]. The engine holds
//! kinds as [`DynKind`], which every [`Kind`] is; docs/architecture.md
//! walks through adding one.

pub mod db_groups;
mod kind;
mod props;
pub mod reference;
pub mod registry;
mod scope;

pub mod autoscaling;
pub mod backup;
pub mod cloudwatch;
pub mod ec2;
pub mod ecr;
pub mod ecs;
pub mod efs;
pub mod elasticache;
pub mod elbv2;
pub mod iam;
pub mod logs;
pub mod rds;
pub mod s3;
pub mod secretsmanager;
pub mod sns;

pub use kind::*;
pub use props::*;
pub use registry::{REGISTRY, lookup};
pub use scope::*;

pub use crate::tags::{TAG_ENV, TAG_RESOURCE, TAG_STACK, tag_delta, tag_map};

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_names_its_properties() {
        // Every kind has properties but an elastic IP (an address, no settings).
        for k in super::REGISTRY {
            let names = super::property_names(*k);
            let expected = k.type_name() != "ec2.elastic_ip";
            assert_eq!(!names.is_empty(), expected, "{}: property names from its schema: {names:?}", k.type_name());
        }
        let asg = super::lookup("autoscaling.group").unwrap();
        assert!(super::property_names(asg).contains(&"desired_capacity".to_string()));
    }

    #[test]
    fn tag_delta_never_removes_identity_tags() {
        let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (set, remove) = super::tag_delta(
            &m(&[("Name", "new"), ("owner", "a")]),
            &m(&[("Name", "old"), ("owner", "a"), ("stale", "x"), ("converge:stack", "s")]),
        );
        assert_eq!(set, m(&[("Name", "new")]));
        assert_eq!(remove, ["stale"]);
    }

    #[test]
    fn sort_ids_keeps_unknowns_apart() {
        let u = crate::value::UNKNOWN.to_string();
        let mut ids = vec!["sg-2".to_string(), u.clone(), "sg-1".into(), "sg-2".into(), u.clone()];
        super::sort_ids(&mut ids);
        assert_eq!(ids, [u.clone(), u, "sg-1".into(), "sg-2".into()]);
    }
}
