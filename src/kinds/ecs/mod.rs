//! ECS and ECR helpers shared by their kinds: tags in each SDK's shape,
//! names from ARNs, and a task definition family's revisions (list,
//! describe, deregister, prune).

pub mod cluster;
pub mod service;
pub mod task_definition;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{SortOrder, TaskDefinition, TaskDefinitionField, TaskDefinitionStatus};

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::tags::{TAG_KNOWN_GOOD, Tags, tag_map};

pub fn ecs_tags(tags: &Tags) -> Vec<aws_sdk_ecs::types::Tag> {
    tags.iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build()).collect()
}

pub fn from_ecs_tags(tags: &[aws_sdk_ecs::types::Tag]) -> Tags {
    tag_map(tags.iter().map(|t| (t.key.clone(), t.value.clone())))
}

pub fn ecr_tags(tags: &Tags) -> Vec<aws_sdk_ecr::types::Tag> {
    tags.iter().filter_map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build().ok()).collect()
}

pub fn from_ecr_tags(tags: &[aws_sdk_ecr::types::Tag]) -> Tags {
    tag_map(tags.iter().map(|t| (Some(t.key.clone()), Some(t.value.clone()))))
}

/// Sets and removes tags on an ECS object by ARN.
pub async fn sync_tags(aws: &Aws, arn: &str, desired: &Tags, live: &Tags) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async move {
            aws.ecs
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(ecs_tags(&set)))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("ecs:TagResource"))
        },
        |keys| async move {
            aws.ecs
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("ecs:UntagResource"))
        },
    )
    .await
}

/// Sets and removes tags on an ECR repository by ARN.
pub async fn sync_ecr_tags(aws: &Aws, arn: &str, desired: &Tags, live: &Tags) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async move {
            aws.ecr
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(ecr_tags(&set)))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("ecr:TagResource"))
        },
        |keys| async move {
            aws.ecr
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("ecr:UntagResource"))
        },
    )
    .await
}

/// ECS cluster, service and task definition names: 1-255 letters, digits,
/// `-` and `_`.
pub fn check_name(name: &str, what: &str) -> Result<(), String> {
    let ok = (1..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(format!("{what} is 1-255 letters, digits, `-` and `_`")) }
}

/// The name in an ECS ARN (`…:cluster/NAME` → NAME); a name stays a name.
pub fn name_of(arn_or_name: &str) -> &str {
    arn_or_name.rsplit('/').next().unwrap_or(arn_or_name)
}

/// `(family, revision)` of a task definition ARN or `family:revision`.
pub fn family_revision(arn: &str) -> Option<(&str, i32)> {
    let (family, rev) = name_of(arn).rsplit_once(':')?;
    Some((family, rev.parse().ok()?))
}

/// Groups `(cluster, service)` pairs by cluster, from service ARNs
/// (`…:service/CLUSTER/NAME`).
pub fn services_by_cluster<'a, I: IntoIterator<Item = &'a str>>(arns: I) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for arn in arns {
        let mut parts = arn.rsplit('/');
        if let (Some(service), Some(cluster)) = (parts.next(), parts.next()) {
            out.entry(cluster.to_string()).or_default().push(service.to_string());
        }
    }
    out
}

/// Deregisters ACTIVE revisions of `family` beyond the newest `keep`,
/// except `current`, `previous`, the last known good's (marked
/// `converge:known-good`) and any not tagged for `owner`'s stack and
/// environment (registered by hand, by another tool or stack).
pub async fn prune_task_definitions(
    aws: &Aws,
    family: &str,
    keep: i32,
    current: &str,
    previous: Option<&str>,
    owner: &Tags,
) -> Result<(), AwsError> {
    let active = active_revisions(aws, family).await?;
    let keep = keep.max(2) as usize;
    let old = active.len().saturating_sub(keep);
    for arn in &active[..old] {
        if arn == current || Some(arn.as_str()) == previous {
            continue;
        }
        let prunable = describe_task_definition(aws, arn)
            .await?
            .is_some_and(|(_, tags)| !tags.contains_key(TAG_KNOWN_GOOD) && crate::tags::same_owner(&tags, owner));
        if prunable {
            deregister_task_definition(aws, arn).await?;
        }
    }
    Ok(())
}

/// Deregisters every ACTIVE revision of `family` tagged for `owner`'s stack
/// and environment; others' revisions of the family stay.
pub async fn deregister_family(aws: &Aws, family: &str, owner: &Tags) -> Result<(), AwsError> {
    for arn in active_revisions(aws, family).await? {
        if describe_task_definition(aws, &arn).await?.is_some_and(|(_, tags)| crate::tags::same_owner(&tags, owner)) {
            deregister_task_definition(aws, &arn).await?;
        }
    }
    Ok(())
}

pub async fn deregister_task_definition(aws: &Aws, arn: &str) -> Result<(), AwsError> {
    let res = aws
        .ecs
        .deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(sdk("ecs:DeregisterTaskDefinition"));
    not_found(res, &["ClientException"]).map(|_| ())
}

/// ACTIVE revision ARNs of `family`, oldest first.
pub async fn active_revisions(aws: &Aws, family: &str) -> Result<Vec<String>, AwsError> {
    let pages: Vec<_> = aws
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Asc)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(sdk("ecs:ListTaskDefinitions"))?;
    let mut arns: Vec<(i32, String)> = pages
        .into_iter()
        .flat_map(|p| p.task_definition_arns.unwrap_or_default())
        .filter_map(|arn| {
            let (f, rev) = family_revision(&arn)?;
            (f == family).then_some((rev, arn.clone()))
        })
        .collect();
    arns.sort();
    Ok(arns.into_iter().map(|(_, arn)| arn).collect())
}

pub async fn describe_task_definition(aws: &Aws, id: &str) -> Result<Option<(TaskDefinition, Tags)>, AwsError> {
    let res = aws
        .ecs
        .describe_task_definition()
        .task_definition(id)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(sdk("ecs:DescribeTaskDefinition"));
    // ECS answers an unknown family or revision with ClientException.
    let Some(res) = not_found(res, &["ClientException"])? else { return Ok(None) };
    let tags = from_ecs_tags(res.tags());
    Ok(res.task_definition.map(|td| (td, tags)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_come_out_of_arns() {
        assert_eq!(super::name_of("arn:aws:ecs:eu-west-1:1:cluster/web"), "web");
        assert_eq!(super::name_of("web"), "web");
        assert_eq!(super::family_revision("arn:aws:ecs:eu-west-1:1:task-definition/app:12"), Some(("app", 12)));
        assert_eq!(super::family_revision("app"), None);
        let by = super::services_by_cluster(["arn:aws:ecs:r:1:service/c1/a", "arn:aws:ecs:r:1:service/c1/b"]);
        assert_eq!(by["c1"], ["a", "b"]);
    }
}
