//! Auto Scaling helpers.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::Tag;

/// Group tags, propagated to the instances the group launches.
pub fn to_tags(group: &str, tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(true)
                .build()
        })
        .collect()
}
