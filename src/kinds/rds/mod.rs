//! RDS helpers shared by the RDS kinds.

pub mod db_instance;
pub mod db_parameter_group;
pub mod db_subnet_group;
pub mod restore;

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};

pub fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

pub fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::tags::tag_map(tags.iter().map(|t| (t.key.clone(), t.value.clone())))
}

/// Tags of an RDS resource by ARN (subnet and parameter groups do not carry
/// them in their describe output). `None` if it is gone.
pub async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let res = aws.rds.list_tags_for_resource().resource_name(arn).send().await.map_err(sdk("rds:ListTagsForResource"));
    match res {
        Ok(out) => Ok(Some(from_tags(out.tag_list()))),
        Err(e) if e.code.ends_with("NotFound") || e.code.ends_with("NotFoundFault") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets tags on a resource by ARN.
pub async fn tag(aws: &Aws, arn: &str, set: BTreeMap<String, String>) -> Result<(), AwsError> {
    let call = aws.rds.add_tags_to_resource().resource_name(arn).set_tags(Some(to_tags(&set)));
    call.send().await.map(|_| ()).map_err(sdk("rds:AddTagsToResource"))
}

/// Removes tags from a resource by ARN.
pub async fn untag(aws: &Aws, arn: &str, keys: Vec<String>) -> Result<(), AwsError> {
    let call = aws.rds.remove_tags_from_resource().resource_name(arn).set_tag_keys(Some(keys));
    call.send().await.map(|_| ()).map_err(sdk("rds:RemoveTagsFromResource"))
}

/// Sets changed tags and removes unwanted ones (never the `converge:` ones).
pub async fn sync_tags(
    aws: &Aws,
    arn: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    crate::tags::sync(desired, live, |set| tag(aws, arn, set), |keys| untag(aws, arn, keys)).await
}

/// RDS identifiers (instances, subnet and parameter groups).
pub fn check_identifier(name: &str) -> Result<(), String> {
    crate::aws::check_lowercase_id(name, 63, "an RDS identifier")
}
