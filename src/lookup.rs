//! Lookups (Terraform's data sources): read-only reads of objects the stack
//! does not manage, resolved before a plan: the newest AMI of a name, a VPC
//! or subnets by their tags. A stack names them under `lookups:` and reads
//! them as `${lookups.NAME.ATTR}`.
//!
//! # Guarantees
//! - Only describe calls: a lookup never changes anything.
//! - One that finds nothing, or more than one where one is needed, is an
//!   error naming its filter: never a guess.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use serde_json::Value;

use crate::aws::{Aws, AwsError};

/// A kind of lookup: its `type:` and what it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupKind {
    pub type_name: &'static str,
    pub doc: &'static str,
    /// What `${lookups.NAME.ATTR}` may read.
    pub outputs: &'static [&'static str],
    /// The fields its spec needs: `owners` and `name`, or `tags`.
    pub by_name: bool,
}

pub static KINDS: &[LookupKind] = &[
    LookupKind {
        type_name: "ec2.ami",
        doc: "The newest available AMI owned by one of `owners` (account ids, `self`, `amazon`) whose name matches `name` (`*` wildcards). Outputs: `id`, `name`, `creation_date`.",
        outputs: &["id", "name", "creation_date"],
        by_name: true,
    },
    LookupKind {
        type_name: "ec2.vpc",
        doc: "The one VPC carrying all of `tags`. Outputs: `id`, `cidr_block`.",
        outputs: &["id", "cidr_block"],
        by_name: false,
    },
    LookupKind {
        type_name: "ec2.subnets",
        doc: "Every subnet carrying all of `tags` (at least one), ordered by availability zone. Outputs: `ids`, `availability_zones`.",
        outputs: &["ids", "availability_zones"],
        by_name: false,
    },
];

pub fn kind(type_name: &str) -> Option<&'static LookupKind> {
    KINDS.iter().find(|k| k.type_name == type_name)
}

/// One lookup of a stack, its fields resolved (variables only).
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub kind: &'static LookupKind,
    pub owners: Vec<String>,
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// A value given instead (`override: ${var.gitlab_ami}`): when not
    /// empty, the lookup is not made and `id` is this.
    pub override_id: Option<String>,
}

/// What a lookup gave: its outputs, or why it has none.
pub type Found = Result<BTreeMap<String, Value>, String>;

/// Makes every lookup of `lookups` (describe calls only).
///
/// # Errors
/// An AWS error; a lookup that finds nothing (or too much) is an `Err` in
/// the map, for the spec to report where the lookup is written.
pub async fn perform(aws: &Aws, lookups: &BTreeMap<String, Lookup>) -> Result<BTreeMap<String, Found>, AwsError> {
    let mut out = BTreeMap::new();
    for (name, l) in lookups {
        let found = match &l.override_id {
            Some(id) if !id.is_empty() => Ok(BTreeMap::from([("id".to_string(), Value::from(id.clone()))])),
            _ => match l.kind.type_name {
                "ec2.ami" => ami(aws, l).await?,
                "ec2.vpc" => vpc(aws, l).await?,
                _ => subnets(aws, l).await?,
            },
        };
        out.insert(name.clone(), found);
    }
    Ok(out)
}

fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter().map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build()).collect()
}

fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

async fn ami(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let pattern = l.name.clone().unwrap_or_default();
    let out = aws
        .ec2
        .describe_images()
        .set_owners(Some(l.owners.clone()))
        .filters(Filter::builder().name("name").values(&pattern).build())
        .filters(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ec2:DescribeImages", e))?;
    // ISO 8601 dates order as text; the id breaks a tie the same way each time.
    let newest =
        out.images().iter().max_by(|a, b| (a.creation_date(), a.image_id()).cmp(&(b.creation_date(), b.image_id())));
    Ok(match newest {
        None => Err(format!(
            "no available AMI owned by {} is named `{pattern}`",
            l.owners.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(" or ")
        )),
        Some(i) => Ok(BTreeMap::from([
            ("id".to_string(), Value::from(i.image_id().unwrap_or_default())),
            ("name".to_string(), Value::from(i.name().unwrap_or_default())),
            ("creation_date".to_string(), Value::from(i.creation_date().unwrap_or_default())),
        ])),
    })
}

async fn vpc(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let out = aws
        .ec2
        .describe_vpcs()
        .set_filters(Some(tag_filters(&l.tags)))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ec2:DescribeVpcs", e))?;
    Ok(match out.vpcs() {
        [] => Err(format!("no VPC has the tags {}", describe_tags(&l.tags))),
        [v] => Ok(BTreeMap::from([
            ("id".to_string(), Value::from(v.vpc_id().unwrap_or_default())),
            ("cidr_block".to_string(), Value::from(v.cidr_block().unwrap_or_default())),
        ])),
        many => Err(format!(
            "{} VPCs have the tags {} ({}): add a tag that tells them apart",
            many.len(),
            describe_tags(&l.tags),
            many.iter().filter_map(|v| v.vpc_id()).collect::<Vec<_>>().join(", ")
        )),
    })
}

async fn subnets(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let mut found = Vec::new();
    let mut pages = aws.ec2.describe_subnets().set_filters(Some(tag_filters(&l.tags))).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("ec2:DescribeSubnets", e))?;
        for s in page.subnets() {
            found.push((
                s.availability_zone().unwrap_or_default().to_string(),
                s.subnet_id().unwrap_or_default().to_string(),
            ));
        }
    }
    found.sort();
    Ok(if found.is_empty() {
        Err(format!("no subnet has the tags {}", describe_tags(&l.tags)))
    } else {
        Ok(BTreeMap::from([
            ("ids".to_string(), found.iter().map(|(_, id)| Value::from(id.clone())).collect()),
            ("availability_zones".to_string(), found.iter().map(|(az, _)| Value::from(az.clone())).collect()),
        ]))
    })
}
