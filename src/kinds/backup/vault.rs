//! `backup.vault`: an AWS Backup vault, where a backup plan's recovery
//! points are kept, encrypted with its KMS key.
//!
//! Identity: the vault's name (the physical name, unique in the account and
//! region) and the identity tags, set by `CreateBackupVault` itself; a
//! retried create that finds the name taken reads the vault back and takes
//! it only if it carries this resource's tags. A vault holds backups, so it
//! is protected like the data it keeps; AWS refuses to delete one that
//! still holds recovery points, and converge never deletes those.

use aws_sdk_backup::operation::describe_backup_vault::DescribeBackupVaultOutput;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::backup::{check_vault_name, list_tags, sync_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, Target};
use crate::limits::Sent;

pub struct VaultKind;

/// Properties of `backup.vault`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultProps {
    /// ARN of the KMS key that encrypts the vault's recovery points. Left
    /// out: AWS Backup's managed key (`aws/backup`), which cannot be shared
    /// with another account. Changing it replaces the vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key_arn: Option<String>,
}

impl Kind for VaultKind {
    type Props = VaultProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "backup.vault",
        doc: "An AWS Backup vault: where a `backup.plan` keeps its recovery points, encrypted with a KMS key. Holds data: protected by default, and AWS refuses to delete a vault that still holds recovery points. Outputs: `id` and `name`, `arn`.",
        replace_on: &["encryption_key_arn"],
        sends: &[Sent::aws("encryption_key_arn", "backup:CreateBackupVaultInput.EncryptionKeyArn")],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        protected: true,
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads { once: &[], per_object: &["backup:DescribeBackupVault"], per_parent: &[] },
        tagging_type: Some("backup:backup-vault"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: VaultProps) -> Result<VaultProps, PropsError> {
        if let Some(key) = &p.encryption_key_arn
            && !crate::value::is_unknown_str(key)
            && !key.starts_with("arn:")
        {
            return Err(PropsError {
                path: "encryption_key_arn".into(),
                message: format!("`{key}`: AWS Backup takes a KMS key's ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_vault_name(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let targets = scope.targets(aws).await?;
        crate::kinds::read_each(targets, |t: Target| async move {
            let Some(v) = describe(aws, &t.id).await? else { return Ok(None) };
            let arn = v.backup_vault_arn().unwrap_or_default().to_string();
            let Some(tags) = t.tags_or(list_tags(aws, &arn)).await? else { return Ok(None) };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
            Ok(Some(live(owner, &v, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: VaultProps = Self::props(&d.props)?;
        let res = aws
            .backup
            .create_backup_vault()
            .backup_vault_name(&d.physical_name)
            .set_encryption_key_arn(p.encryption_key_arn.clone())
            .set_backup_vault_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(sdk("backup:CreateBackupVault"));
        match res {
            Ok(_) => {}
            // A lost response to a create that happened: read back, and
            // take it only if it carries this resource's tags.
            Err(e) if e.is("AlreadyExistsException") => {}
            Err(e) => return Err(e),
        }
        let v = describe(aws, &d.physical_name)
            .await?
            .ok_or_else(|| AwsError::other("backup:CreateBackupVault", "the vault is not there after its create"))?;
        let tags = list_tags(aws, v.backup_vault_arn().unwrap_or_default()).await?.unwrap_or_default();
        d.take_if_ours("backup:CreateBackupVault", &tags)?;
        Ok(live(d.name.clone(), &v, tags))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        // Only the tags change in place.
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
        sync_tags(aws, arn, &d.tags, &l.tags).await?;
        Ok(Live { tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .backup
            .delete_backup_vault()
            .backup_vault_name(&l.id)
            .send()
            .await
            .map_err(sdk("backup:DeleteBackupVault"));
        match not_found(res, &["ResourceNotFoundException"]) {
            Ok(_) => Ok(()),
            Err(e) if e.is("InvalidRequestException") => Err(AwsError {
                message: format!(
                    "{} (a vault is deleted only once it holds no recovery points: converge never deletes backups; delete them in the AWS Backup console or with `aws backup delete-recovery-point` first)",
                    e.message
                ),
                ..e
            }),
            Err(e) => Err(e),
        }
    }
}

async fn describe(aws: &Aws, name: &str) -> Result<Option<DescribeBackupVaultOutput>, AwsError> {
    let res = aws
        .backup
        .describe_backup_vault()
        .backup_vault_name(name)
        .send()
        .await
        .map_err(sdk("backup:DescribeBackupVault"));
    not_found(res, &["ResourceNotFoundException"])
}

fn live(name: String, v: &DescribeBackupVaultOutput, tags: std::collections::BTreeMap<String, String>) -> Live {
    let vault = v.backup_vault_name().unwrap_or_default().to_string();
    let props = VaultProps { encryption_key_arn: v.encryption_key_arn().map(str::to_string) };
    Live::new(name, vault.clone(), &props, tags)
        .output("name", vault)
        .output("arn", v.backup_vault_arn().unwrap_or_default())
}
