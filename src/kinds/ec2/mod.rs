//! EC2 helpers shared by the EC2 kinds.

pub mod elastic_ip;
pub mod internet_gateway;
pub mod launch_template;
pub mod nat_gateway;
pub mod route_table;
pub mod security_group;
pub mod subnet;
pub mod volume;
pub mod vpc;
pub mod vpc_endpoint;

use std::collections::BTreeMap;

use aws_config::retry::RetryConfig;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};
use crate::kinds::{Live, Scope};
use crate::tags::{TAG_ENV, TAG_RESOURCE, TAG_STACK};

/// `TagSpecifications` for a create call: tags land atomically with the
/// object, so a crash can never leave it untagged (and unfindable).
pub fn tag_spec(resource_type: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder().resource_type(resource_type).set_tags(Some(to_tags(tags))).build()
}

pub fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// The objects of a describe call that `scope` owns, as [`Live`]. EC2 is
/// read by the identity tags' filters and its objects are claimed by those
/// tags alone, never by a name.
pub fn claimed<T>(
    items: impl IntoIterator<Item = T>,
    scope: &Scope,
    tags_of: impl Fn(&T) -> &[Tag],
    live: impl Fn(String, T, BTreeMap<String, String>) -> Live,
) -> Vec<Live> {
    items
        .into_iter()
        .filter_map(|item| {
            let tags = from_tags(tags_of(&item));
            let name = scope.owner(&tags, None)?;
            Some(live(name, item, tags))
        })
        .collect()
}

pub fn from_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::tags::tag_map(tags.iter().map(|t| (t.key.clone(), t.value.clone())))
}

/// Server-side filters selecting `scope`'s objects (stack and
/// environment tags), for a describe call's `set_filters`.
pub fn scope_filters(scope: &Scope) -> Option<Vec<Filter>> {
    Some(vec![
        Filter::builder().name(format!("tag:{TAG_STACK}")).values(&scope.stack).build(),
        Filter::builder().name(format!("tag:{TAG_ENV}")).values(&scope.env).build(),
    ])
}

/// Filters finding the one object a resource's create call tagged.
pub fn resource_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    [TAG_STACK, TAG_ENV, TAG_RESOURCE]
        .iter()
        .map(|k| Filter::builder().name(format!("tag:{k}")).values(tags.get(*k).cloned().unwrap_or_default()).build())
        .collect()
}

/// Config override for create calls that are not idempotent: the SDK must
/// not resend them on its own; [`crate::aws::create_or_adopt`] decides.
pub fn no_retry() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// Sets tags that differ and removes tags no longer wanted (`converge:` tags
/// are never removed: they are identity).
pub async fn sync_tags(
    aws: &Aws,
    id: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async move {
            let call = aws.ec2.create_tags().resources(id).set_tags(Some(to_tags(&set)));
            call.send().await.map(|_| ()).map_err(sdk("ec2:CreateTags"))
        },
        |keys| async move {
            let remove = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
            let call = aws.ec2.delete_tags().resources(id).set_tags(Some(remove));
            call.send().await.map(|_| ()).map_err(sdk("ec2:DeleteTags"))
        },
    )
    .await
}
