//! AWS Backup helpers shared by the backup kinds: tags by ARN (vaults and
//! plans carry none in their describe output) and the builders' errors.

pub mod plan;
pub mod selection;
pub mod vault;

use std::collections::BTreeMap;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};

/// Tags of a vault or plan by ARN; `None` if it is gone.
pub async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let res = aws.backup.list_tags().resource_arn(arn).send().await.map_err(sdk("backup:ListTags"));
    Ok(not_found(res, &["ResourceNotFoundException"])?
        .map(|out| crate::tags::tag_map(out.tags.unwrap_or_default().into_iter().map(|(k, v)| (Some(k), Some(v))))))
}

/// Brings a vault's or plan's tags from `live` to `desired` (never removing
/// the `converge:` ones).
pub async fn sync_tags(
    aws: &Aws,
    arn: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async {
            let call = aws.backup.tag_resource().resource_arn(arn).set_tags(Some(set.into_iter().collect()));
            call.send().await.map(|_| ()).map_err(sdk("backup:TagResource"))
        },
        |keys| async {
            let call = aws.backup.untag_resource().resource_arn(arn).set_tag_key_list(Some(keys));
            call.send().await.map(|_| ()).map_err(sdk("backup:UntagResource"))
        },
    )
    .await
}

/// A client override that sends a call once (see [`crate::aws::create_or_adopt`]).
pub fn no_retry() -> aws_sdk_backup::config::Builder {
    aws_sdk_backup::config::Builder::default().retry_config(aws_config::retry::RetryConfig::disabled())
}

/// A request the SDK's builder refused (a required member missing): a
/// converge bug, the kind's checks should have caught it.
pub fn build_err(operation: &'static str) -> impl FnOnce(aws_sdk_backup::error::BuildError) -> AwsError {
    move |e| AwsError::other(operation, format!("could not build the request: {e}"))
}

/// AWS Backup's name rule: `len` characters, letters, digits and `extra`
/// (`BackupVaultName`: 2 to 50 of `-_`; rule and selection names: 1 to 50
/// of `-_.`; plan names through the API: 1 to 200 of `-_.`). `what` names
/// the thing in the message.
pub fn check_name(name: &str, len: std::ops::RangeInclusive<usize>, extra: &str, what: &str) -> Result<(), String> {
    if len.contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c)) {
        return Ok(());
    }
    let mut chars: Vec<String> = extra.chars().map(|c| format!("`{c}`")).collect();
    let last = chars.pop().unwrap_or_default();
    let listed = if chars.is_empty() { last } else { format!("{} and {last}", chars.join(", ")) };
    Err(format!("{what}'s name is {} to {} letters, digits, {listed}", len.start(), len.end()))
}

/// A vault's name (`BackupVaultName`).
pub fn check_vault_name(name: &str) -> Result<(), String> {
    check_name(name, 2..=50, "-_", "a backup vault")
}
