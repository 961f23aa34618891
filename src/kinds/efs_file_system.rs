//! `efs.file_system`: encrypted shared storage for GitLab's nodes.
//!
//! Identity: the creation token (the physical name), which EFS makes
//! idempotent: a retried create fails with FileSystemAlreadyExists and the
//! existing file system is adopted. Tags come in the create call.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_efs::types::{LifeCycleState, PerformanceMode, Tag, ThroughputMode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BoxFuture, Desired, Kind, Live, PropsError, Scope};
use crate::aws::{Aws, AwsError, Polled, not_found};
use crate::limits::Sent;

pub struct FileSystem;

/// Properties of `efs.file_system`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSystemProps {
    /// Changing it replaces the file system (and its data).
    #[serde(default = "yes")]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `generalPurpose` (default) or `maxIO`. Changing it replaces the file system.
    #[serde(default = "general_purpose")]
    pub performance_mode: String,
    /// `bursting`, `elastic` (default) or `provisioned`. Updated in place.
    #[serde(default = "elastic")]
    pub throughput_mode: String,
}

fn yes() -> bool {
    true
}
fn general_purpose() -> String {
    "generalPurpose".into()
}
fn elastic() -> String {
    "elastic".into()
}

impl Kind for FileSystem {
    fn type_name(&self) -> &'static str {
        "efs.file_system"
    }
    fn doc(&self) -> &'static str {
        "An EFS file system, encrypted by default; its creation token is the physical name. Outputs: `id`, `arn`, `dns_name`."
    }
    fn schema(&self, g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::schema_of::<FileSystemProps>(g)
    }
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError> {
        let p: FileSystemProps = super::typed(props)?;
        // The modes are checked against the model's enums (crate::limits).
        Ok(super::to_value(&p))
    }
    fn stateful(&self) -> bool {
        true
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &["encrypted", "kms_key_id", "performance_mode"]
    }
    fn sends(&self) -> &'static [Sent] {
        const SENDS: &[Sent] = &[
            Sent::aws("encrypted", "efs:CreateFileSystemRequest.Encrypted"),
            Sent::aws("kms_key_id", "efs:CreateFileSystemRequest.KmsKeyId"),
            Sent::aws("performance_mode", "efs:CreateFileSystemRequest.PerformanceMode"),
            Sent::aws("throughput_mode", "efs:CreateFileSystemRequest.ThroughputMode"),
        ];
        SENDS
    }
    fn import_by(&self) -> super::ImportBy {
        super::ImportBy::Name
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["id", "arn", "dns_name", "creation_token"]
    }
    fn physical_name_output(&self) -> Option<&'static str> {
        Some("creation_token")
    }
    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 64 {
            return Err("an EFS creation token is 1-64 characters".into());
        }
        Ok(())
    }
    fn default_wait(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }

    fn reads(&self) -> super::Reads {
        super::Reads { once: &[], per_object: &["elasticfilesystem:DescribeFileSystems"], per_parent: &[] }
    }

    fn tagging_type(&self) -> Option<&'static str> {
        Some("elasticfilesystem:file-system")
    }

    fn read<'a>(&'a self, aws: &'a Aws, scope: &'a Scope) -> BoxFuture<'a, Result<Vec<Live>, AwsError>> {
        Box::pin(async move {
            // By id for the index's file systems, by creation token for the
            // spec's it does not hold; tags come inline.
            super::read_each(scope.targets(aws).await?, |t| async move {
                let req = aws.efs.describe_file_systems();
                let req = if t.indexed() { req.file_system_id(&t.id) } else { req.creation_token(&t.id) };
                let res = req.send().await.map_err(|e| AwsError::from_sdk("efs:DescribeFileSystems", e));
                let Some(f) = not_found(res, &["FileSystemNotFound"])?.and_then(|o| o.file_systems?.into_iter().next())
                else {
                    return Ok(None);
                };
                if matches!(f.life_cycle_state, LifeCycleState::Deleting | LifeCycleState::Deleted) {
                    return Ok(None);
                }
                let tags = tags_of(&f.tags);
                let owner = scope.owner(&tags, Some(&f.creation_token));
                Ok(owner.map(|owner| live(owner, f, tags, &aws.region)))
            })
            .await
        })
    }

    fn create<'a>(&'a self, aws: &'a Aws, d: &'a Desired) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(async move {
            let p: FileSystemProps = parse(&d.props)?;
            let res = aws
                .efs
                .create_file_system()
                .creation_token(&d.physical_name)
                .encrypted(p.encrypted)
                .set_kms_key_id(p.kms_key_id.clone())
                .performance_mode(PerformanceMode::from(p.performance_mode.as_str()))
                .throughput_mode(ThroughputMode::from(p.throughput_mode.as_str()))
                .set_tags(Some(
                    d.tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect(),
                ))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("efs:CreateFileSystem", e));
            match res {
                Ok(_) => {}
                Err(e) if e.is("FileSystemAlreadyExists") => {}
                Err(e) => return Err(e),
            }
            let l = wait_for(aws, &d.physical_name, d.timeout, d.name.clone()).await?;
            self.update(aws, d, &l).await
        })
    }

    fn update<'a>(&'a self, aws: &'a Aws, d: &'a Desired, l: &'a Live) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(async move {
            let p: FileSystemProps = parse(&d.props)?;
            let was: FileSystemProps = parse(&l.props)?;
            if p.throughput_mode != was.throughput_mode {
                aws.efs
                    .update_file_system()
                    .file_system_id(&l.id)
                    .throughput_mode(ThroughputMode::from(p.throughput_mode.as_str()))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("efs:UpdateFileSystem", e))?;
            }
            let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or(&l.id).to_string();
            let (set, remove) = super::tag_delta(&d.tags, &l.tags);
            let set: Vec<Tag> = set.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
            if !set.is_empty() {
                aws.efs
                    .tag_resource()
                    .resource_id(&arn)
                    .set_tags(Some(set))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("efs:TagResource", e))?;
            }
            if !remove.is_empty() {
                aws.efs
                    .untag_resource()
                    .resource_id(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("efs:UntagResource", e))?;
            }
            Ok(Live {
                props: super::to_value(&FileSystemProps { kms_key_id: was.kms_key_id, ..p }),
                tags: d.tags.clone(),
                ..l.clone()
            })
        })
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        l: &'a Live,
        _spec: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            // Mount targets go first (they depend on the file system), but
            // EFS reports them gone a little after DeleteMountTarget returns.
            let res = crate::aws::retry_while_in_use(&["FileSystemInUse"], || async {
                aws.efs
                    .delete_file_system()
                    .file_system_id(&l.id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("efs:DeleteFileSystem", e))
            })
            .await;
            not_found(res, &["FileSystemNotFound"]).map(|_| ())
        })
    }
}

fn parse(v: &Value) -> Result<FileSystemProps, AwsError> {
    super::props("efs.file_system", v)
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    super::tag_map(tags.iter().map(|t| (Some(t.key.clone()), Some(t.value.clone()))))
}

/// Polls until the file system with `token` is available (EFS has no SDK
/// waiter), at most `timeout`.
async fn wait_for(aws: &Aws, token: &str, timeout: Duration, name: String) -> Result<Live, AwsError> {
    let f = crate::aws::poll_until("efs:DescribeFileSystems (wait available)", "available", timeout, || async {
        let out = aws
            .efs
            .describe_file_systems()
            .creation_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("efs:DescribeFileSystems", e))?;
        match out.file_systems.unwrap_or_default().into_iter().next() {
            Some(f) if f.life_cycle_state == LifeCycleState::Available => Ok(Polled::Ready(f)),
            Some(f) if f.life_cycle_state == LifeCycleState::Error => {
                Err(AwsError::other("efs:CreateFileSystem", format!("{} is in state error", f.file_system_id)))
            }
            Some(f) => Ok(Polled::Waiting(f.life_cycle_state.as_str().to_string())),
            None => Ok(Polled::Waiting("not listed yet".into())),
        }
    })
    .await?;
    let tags = tags_of(&f.tags);
    Ok(live(name, f, tags, &aws.region))
}

fn live(
    name: String,
    f: aws_sdk_efs::types::FileSystemDescription,
    tags: BTreeMap<String, String>,
    region: &str,
) -> Live {
    let props = FileSystemProps {
        encrypted: f.encrypted.unwrap_or(false),
        kms_key_id: f.kms_key_id.clone(),
        performance_mode: f.performance_mode.as_str().to_string(),
        throughput_mode: f
            .throughput_mode
            .as_ref()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "bursting".into()),
    };
    let id = f.file_system_id.clone();
    let outputs = [
        ("id".to_string(), Value::from(id.clone())),
        ("arn".to_string(), Value::from(f.file_system_arn.clone().unwrap_or_default())),
        ("dns_name".to_string(), Value::from(format!("{id}.efs.{region}.amazonaws.com"))),
        ("creation_token".to_string(), Value::from(f.creation_token.clone())),
    ]
    .into();
    Live { name, id, props: super::to_value(&props), tags, outputs }
}
