//! ElastiCache helpers shared by the ElastiCache kinds.

pub mod parameter_group;
pub mod replication_group;
pub mod subnet_group;

use std::collections::BTreeMap;

use aws_sdk_elasticache::types::Tag;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};
use crate::kinds::db_groups::ArnTagging;

pub fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// ElastiCache's tagging by ARN, for replication groups, subnet and
/// parameter groups.
pub struct CacheTags;

impl ArnTagging for CacheTags {
    async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let res = aws.elasticache.list_tags_for_resource().resource_name(arn).send().await;
        match res.map_err(sdk("elasticache:ListTagsForResource")) {
            Ok(out) => Ok(Some(crate::tags::tag_map(out.tag_list().iter().map(|t| (t.key.clone(), t.value.clone()))))),
            Err(e) if e.code.contains("NotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn tag(aws: &Aws, arn: &str, set: BTreeMap<String, String>) -> Result<(), AwsError> {
        let call = aws.elasticache.add_tags_to_resource().resource_name(arn).set_tags(Some(to_tags(&set)));
        call.send().await.map(|_| ()).map_err(sdk("elasticache:AddTagsToResource"))
    }

    async fn untag(aws: &Aws, arn: &str, keys: Vec<String>) -> Result<(), AwsError> {
        let call = aws.elasticache.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(keys));
        call.send().await.map(|_| ()).map_err(sdk("elasticache:RemoveTagsFromResource"))
    }
}

/// Replication group ids and subnet group names.
pub fn check_id(name: &str) -> Result<(), String> {
    crate::aws::check_lowercase_id(name, 40, "an ElastiCache id")
}
