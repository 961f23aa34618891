//! The ownership index: which objects one stack/env owns, with their tags,
//! for every kind the Resource Groups Tagging API covers, from one
//! server-side filtered, paginated `GetResources`.
//!
//! Without it each kind would list every object of its type in the region
//! and fetch tags object by object to find its own: a read whose cost grows
//! with everything else in the account. With it a read costs the index's
//! pages plus a describe of each object the stack owns.
//!
//! # Guarantees
//! - Filtered by `converge:stack` and `converge:env` on the server: objects
//!   of other stacks and environments are never transferred.
//! - The tags are AWS's, complete (the API returns every tag of a matching
//!   resource), so kinds take them from here instead of asking again.
//! - The index is eventually consistent on AWS (seconds after a create or a
//!   tag change). It is read once per read of live state and only answers
//!   "what to describe": kinds still describe each object and skip one
//!   that is gone, and look up the spec's names the index does not hold.

use crate::aws::sdk;
use std::collections::BTreeMap;

use aws_sdk_resourcegroupstagging::types::TagFilter;

use super::{Aws, AwsError};
use crate::tags::{TAG_ENV, TAG_STACK, Tags, tag_map};

/// One object the index holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub arn: String,
    pub tags: Tags,
}

impl Tagged {
    /// The object's id: what its ARN holds after the resource type
    /// (`pg:NAME` → NAME, `file-system/fs-1` → fs-1, S3's `:::NAME` → NAME).
    pub fn id(&self) -> &str {
        split_resource(&self.arn).1
    }
}

/// `(type, id)` of an ARN's resource part: `rds:pg:NAME` → (`rds:pg`,
/// `NAME`); an ARN with no type (S3 buckets) → (`s3`, NAME).
fn split_resource(arn: &str) -> (String, &str) {
    let mut parts = arn.splitn(6, ':');
    let service = parts.nth(2).unwrap_or_default();
    let resource = parts.nth(2).unwrap_or_default();
    match resource.find([':', '/']) {
        Some(i) => (format!("{service}:{}", &resource[..i]), &resource[i + 1..]),
        None => (service.to_string(), resource),
    }
}

/// The type the Tagging API gives an ARN (`rds:pg`, `s3`,
/// `elasticloadbalancing:loadbalancer`): what `ResourceTypeFilters` take.
pub fn resource_type(arn: &str) -> String {
    split_resource(arn).0
}

/// The objects of one stack/env, by resource type.
#[derive(Debug, Default)]
pub struct OwnedIndex {
    by_type: BTreeMap<String, Vec<Tagged>>,
}

/// The API's largest page.
const RESOURCES_PER_PAGE: i32 = 100;

impl OwnedIndex {
    /// Reads the index of `stack`/`env` for `types` (the Tagging API's
    /// `ResourceTypeFilters`, at most 100). No types, no call.
    pub async fn read(aws: &Aws, stack: &str, env: &str, types: &[&str]) -> Result<OwnedIndex, AwsError> {
        let mut index = OwnedIndex::default();
        if types.is_empty() {
            return Ok(index);
        }
        let filter = |k: &str, v: &str| TagFilter::builder().key(k).values(v).build();
        let pages = aws
            .tagging
            .get_resources()
            .tag_filters(filter(TAG_STACK, stack))
            .tag_filters(filter(TAG_ENV, env))
            .set_resource_type_filters(Some(types.iter().map(|t| t.to_string()).collect()))
            .resources_per_page(RESOURCES_PER_PAGE)
            .into_paginator()
            .send();
        let mut pages = std::pin::pin!(pages);
        while let Some(page) = pages.try_next().await.map_err(sdk("tag:GetResources"))? {
            for m in page.resource_tag_mapping_list.unwrap_or_default() {
                let Some(arn) = m.resource_arn else { continue };
                let tags = tag_map(m.tags.unwrap_or_default().into_iter().map(|t| (Some(t.key), Some(t.value))));
                index.by_type.entry(resource_type(&arn)).or_default().push(Tagged { arn, tags });
            }
        }
        for objects in index.by_type.values_mut() {
            objects.sort_by(|a, b| a.arn.cmp(&b.arn));
            objects.dedup_by(|a, b| a.arn == b.arn);
        }
        Ok(index)
    }

    /// The objects of one type (`rds:pg`).
    pub fn of_type(&self, resource_type: &str) -> &[Tagged] {
        self.by_type.get(resource_type).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_ids_are_read_from_arns_as_the_tagging_api_does() {
        let cases = [
            ("arn:aws:rds:eu-west-1:1:pg:gitlab-staging-db", "rds:pg", "gitlab-staging-db"),
            ("arn:aws:rds:eu-west-1:1:subgrp:db", "rds:subgrp", "db"),
            ("arn:aws:elasticache:eu-west-1:1:replicationgroup:redis", "elasticache:replicationgroup", "redis"),
            ("arn:aws:s3:::acme-gitlab-artifacts", "s3", "acme-gitlab-artifacts"),
            ("arn:aws:elasticfilesystem:eu-west-1:1:file-system/fs-12", "elasticfilesystem:file-system", "fs-12"),
            (
                "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/gitlab/50dc6c",
                "elasticloadbalancing:loadbalancer",
                "app/gitlab/50dc6c",
            ),
        ];
        for (arn, ty, id) in cases {
            assert_eq!(resource_type(arn), ty, "{arn}");
            assert_eq!(Tagged { arn: arn.into(), tags: Tags::new() }.id(), id, "{arn}");
        }
    }
}
