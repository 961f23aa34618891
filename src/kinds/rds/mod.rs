//! RDS helpers shared by the RDS kinds.

pub mod db_instance;
pub mod db_parameter_group;
pub mod db_subnet_group;
pub mod restore;

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};
use crate::kinds::db_groups::ArnTagging;

pub fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::tags::tag_map(tags.iter().map(|t| (t.key.clone(), t.value.clone())))
}

/// RDS's tagging by ARN, for every RDS kind (subnet and parameter groups do
/// not carry their tags in their describe output).
pub struct RdsTags;

impl ArnTagging for RdsTags {
    async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        let res = aws.rds.list_tags_for_resource().resource_name(arn).send().await;
        match res.map_err(sdk("rds:ListTagsForResource")) {
            Ok(out) => Ok(Some(from_tags(out.tag_list()))),
            Err(e) if e.code.ends_with("NotFound") || e.code.ends_with("NotFoundFault") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn tag(aws: &Aws, arn: &str, set: BTreeMap<String, String>) -> Result<(), AwsError> {
        let call = aws.rds.add_tags_to_resource().resource_name(arn).set_tags(Some(to_tags(&set)));
        call.send().await.map(|_| ()).map_err(sdk("rds:AddTagsToResource"))
    }

    async fn untag(aws: &Aws, arn: &str, keys: Vec<String>) -> Result<(), AwsError> {
        let call = aws.rds.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(keys));
        call.send().await.map(|_| ()).map_err(sdk("rds:RemoveTagsFromResource"))
    }
}

/// RDS identifiers (instances, subnet and parameter groups).
pub fn check_identifier(name: &str) -> Result<(), String> {
    crate::aws::check_lowercase_id(name, 63, "an RDS identifier")
}
