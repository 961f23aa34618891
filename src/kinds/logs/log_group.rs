//! `logs.log_group`: a CloudWatch Logs log group, e.g. the one an ECS
//! task's `awslogs` driver writes to (`log_group: ${resources.logs.name}`).
//!
//! Identity: the group's name (the physical name) and the identity tags,
//! set by `CreateLogGroup` itself; a retried create that finds the name
//! taken reads the group back and takes it only if it carries this
//! resource's tags. Retention and the KMS key are changed in place
//! (`PutRetentionPolicy`/`DeleteRetentionPolicy`,
//! `AssociateKmsKey`/`DisassociateKmsKey`). Deleting a group deletes its
//! logs.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::types::LogGroup;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, Target};
use crate::limits::Sent;

pub struct LogGroupKind;

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy,
/// `retentionInDays`, CloudWatch Logs API Reference).
pub const RETENTION_DAYS: [i32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// Properties of `logs.log_group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogGroupProps {
    /// Days to keep each event: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180,
    /// 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653.
    /// Left out: kept forever. Updated in place.
    #[serde(default)]
    pub retention_in_days: Option<i32>,
    /// ARN of the KMS key that encrypts the group's events (its key policy
    /// must allow `logs.REGION.amazonaws.com`). Left out: CloudWatch Logs'
    /// own encryption. Updated in place; events already written stay
    /// encrypted with the key they were written with.
    #[serde(default)]
    pub kms_key_id: Option<String>,
}

impl Kind for LogGroupKind {
    type Props = LogGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "logs.log_group",
        doc: "A CloudWatch Logs log group with its retention and KMS key, for an ECS container's `log_group:` (awslogs). Deleting it deletes its logs. Outputs: `id` and `name`, `arn`.",
        replace_on: &[],
        sends: &[
            Sent::aws("retention_in_days", "logs:PutRetentionPolicyRequest.retentionInDays"),
            Sent::aws("kms_key_id", "logs:CreateLogGroupRequest.kmsKeyId"),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads { once: &[], per_object: &["logs:DescribeLogGroups"], per_parent: &[] },
        tagging_type: Some("logs:log-group"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: LogGroupProps) -> Result<LogGroupProps, PropsError> {
        if let Some(days) = p.retention_in_days
            && !RETENTION_DAYS.contains(&days)
        {
            return Err(PropsError {
                path: "retention_in_days".into(),
                message: format!(
                    "{days} is not a retention CloudWatch Logs offers; one of {} (CloudWatch Logs API Reference, PutRetentionPolicy), or leave it out to keep events forever",
                    RETENTION_DAYS.map(|d| d.to_string()).join(", ")
                ),
            });
        }
        if let Some(key) = &p.kms_key_id
            && !crate::value::is_unknown_str(key)
            && !key.starts_with("arn:")
        {
            return Err(PropsError {
                path: "kms_key_id".into(),
                message: format!("`{key}`: CloudWatch Logs takes a KMS key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        // CreateLogGroup: 1-512 of `[\.\-_/#A-Za-z0-9]`.
        let ok =
            (1..=512).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
        if ok { Ok(()) } else { Err("a log group name is 1-512 letters, digits and `._-/#`".into()) }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let targets = scope.targets(aws).await?;
        crate::kinds::read_each(targets, |t: Target| async move {
            let Some(g) = describe(aws, &t.id).await? else { return Ok(None) };
            let arn = arn_of(&g);
            let Some(tags) = t.tags_or(list_tags(aws, &arn)).await? else { return Ok(None) };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
            Ok(Some(live(owner, &g, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: LogGroupProps = Self::props(&d.props)?;
        let res = aws
            .logs
            .create_log_group()
            .log_group_name(&d.physical_name)
            .set_kms_key_id(p.kms_key_id.clone())
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(sdk("logs:CreateLogGroup"));
        match res {
            Ok(_) => {}
            // A lost response to a create that happened: read back, and
            // take it only if it carries this resource's tags.
            Err(e) if e.is("ResourceAlreadyExistsException") => {}
            Err(e) => return Err(e),
        }
        let g = describe(aws, &d.physical_name)
            .await?
            .ok_or_else(|| AwsError::other("logs:CreateLogGroup", "the log group is not there after its create"))?;
        let tags = list_tags(aws, &arn_of(&g)).await?.unwrap_or_default();
        d.take_if_ours("logs:CreateLogGroup", &tags)?;
        let was = live(d.name.clone(), &g, tags);
        let settled = set_retention_and_key(aws, &d.physical_name, &p, &Self::props(&was.props)?).await?;
        Ok(Live { props: crate::kinds::to_value(&settled), ..was })
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: LogGroupProps = Self::props(&d.props)?;
        let was: LogGroupProps = Self::props(&l.props)?;
        let now = set_retention_and_key(aws, &d.physical_name, &p, &was).await?;
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default().to_string();
        crate::tags::sync(
            &d.tags,
            &l.tags,
            |set| async {
                let call = aws.logs.tag_resource().resource_arn(&arn).set_tags(Some(set.into_iter().collect()));
                call.send().await.map(|_| ()).map_err(sdk("logs:TagResource"))
            },
            |keys| async {
                let call = aws.logs.untag_resource().resource_arn(&arn).set_tag_keys(Some(keys));
                call.send().await.map(|_| ()).map_err(sdk("logs:UntagResource"))
            },
        )
        .await?;
        Ok(Live { props: crate::kinds::to_value(&now), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws.logs.delete_log_group().log_group_name(&l.id).send().await.map_err(sdk("logs:DeleteLogGroup"));
        not_found(res, &["ResourceNotFoundException"]).map(|_| ())
    }
}

/// Brings retention and key from `was` to `p`; what the group has after.
async fn set_retention_and_key(
    aws: &Aws,
    name: &str,
    p: &LogGroupProps,
    was: &LogGroupProps,
) -> Result<LogGroupProps, AwsError> {
    if p.retention_in_days != was.retention_in_days {
        match p.retention_in_days {
            Some(days) => aws
                .logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(days)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("logs:PutRetentionPolicy"))?,
            None => aws
                .logs
                .delete_retention_policy()
                .log_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("logs:DeleteRetentionPolicy"))?,
        }
    }
    if p.kms_key_id != was.kms_key_id {
        match &p.kms_key_id {
            Some(key) => aws
                .logs
                .associate_kms_key()
                .log_group_name(name)
                .kms_key_id(key)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("logs:AssociateKmsKey"))?,
            None => aws
                .logs
                .disassociate_kms_key()
                .log_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("logs:DisassociateKmsKey"))?,
        }
    }
    Ok(p.clone())
}

/// The group of exactly this name (`DescribeLogGroups` takes a prefix).
async fn describe(aws: &Aws, name: &str) -> Result<Option<LogGroup>, AwsError> {
    let mut pages = aws.logs.describe_log_groups().log_group_name_prefix(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("logs:DescribeLogGroups"))?;
        if let Some(g) = page.log_groups().iter().find(|g| g.log_group_name() == Some(name)) {
            return Ok(Some(g.clone()));
        }
    }
    Ok(None)
}

/// The group's ARN as tagging takes it: without the `:*` that
/// `DescribeLogGroups`' `arn` ends with.
fn arn_of(g: &LogGroup) -> String {
    match g.log_group_arn() {
        Some(arn) => arn.to_string(),
        None => g.arn().unwrap_or_default().trim_end_matches(":*").to_string(),
    }
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let res = aws.logs.list_tags_for_resource().resource_arn(arn).send().await.map_err(sdk("logs:ListTagsForResource"));
    Ok(not_found(res, &["ResourceNotFoundException"])?
        .map(|r| crate::kinds::tag_map(r.tags.unwrap_or_default().into_iter().map(|(k, v)| (Some(k), Some(v))))))
}

fn live(name: String, g: &LogGroup, tags: BTreeMap<String, String>) -> Live {
    let group = g.log_group_name().unwrap_or_default().to_string();
    let props =
        LogGroupProps { retention_in_days: g.retention_in_days(), kms_key_id: g.kms_key_id().map(str::to_string) };
    Live::new(name, group.clone(), &props, tags).output("name", group).output("arn", arn_of(g))
}
