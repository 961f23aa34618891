//! `efs.file_system`: encrypted shared storage for GitLab's nodes.
//!
//! Identity: the creation token (the physical name), which EFS makes
//! idempotent: a retried create fails with FileSystemAlreadyExists and the
//! existing file system is adopted. Tags come in the create call.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_efs::types::{FileSystemDescription, LifeCycleState, PerformanceMode, Tag, ThroughputMode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, Polled, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct FileSystemKind;

/// Properties of `efs.file_system`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSystemProps {
    /// Changing it replaces the file system (and its data).
    #[serde(default = "crate::kinds::yes")]
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

fn general_purpose() -> String {
    "generalPurpose".into()
}
fn elastic() -> String {
    "elastic".into()
}

impl Kind for FileSystemKind {
    type Props = FileSystemProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "efs.file_system",
        doc: "An EFS file system, encrypted by default; its creation token is the physical name. Outputs: `id`, `arn`, `dns_name`.",
        replace_on: &["encrypted", "kms_key_id", "performance_mode"],
        sends: &[
            Sent::aws("encrypted", "efs:CreateFileSystemRequest.Encrypted"),
            Sent::aws("kms_key_id", "efs:CreateFileSystemRequest.KmsKeyId"),
            Sent::aws("performance_mode", "efs:CreateFileSystemRequest.PerformanceMode"),
            Sent::aws("throughput_mode", "efs:CreateFileSystemRequest.ThroughputMode"),
        ],
        outputs: &["id", "arn", "dns_name", "creation_token"],
        physical_name_output: Some("creation_token"),
        protected: true,
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["elasticfilesystem:DescribeFileSystems"],
            per_parent: &[],
        },
        tagging_type: Some("elasticfilesystem:file-system"),
        default_wait: Duration::from_secs(10 * 60),
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: FileSystemProps) -> Result<FileSystemProps, PropsError> {
        // The modes are checked against the model's enums (crate::limits).
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 64 {
            return Err("an EFS creation token is 1-64 characters".into());
        }
        Ok(())
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // By id for the index's file systems, by creation token for the
        // spec's it does not hold; tags come inline.
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let req = aws.efs.describe_file_systems();
            let req = if t.indexed() { req.file_system_id(&t.id) } else { req.creation_token(&t.id) };
            let res = req.send().await.map_err(sdk("efs:DescribeFileSystems"));
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
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: FileSystemProps = FileSystemKind::props(&d.props)?;
        let res = aws
            .efs
            .create_file_system()
            .creation_token(&d.physical_name)
            .encrypted(p.encrypted)
            .set_kms_key_id(p.kms_key_id.clone())
            .performance_mode(PerformanceMode::from(p.performance_mode.as_str()))
            .throughput_mode(ThroughputMode::from(p.throughput_mode.as_str()))
            .set_tags(Some(d.tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()))
            .send()
            .await
            .map_err(sdk("efs:CreateFileSystem"));
        match res {
            Ok(_) => {}
            // The token is unique: what a lost response made, taken only if
            // it is this resource's.
            Err(e) if e.is("FileSystemAlreadyExists") => {
                let found = by_token(aws, &d.physical_name).await?.ok_or(e)?;
                d.take_if_ours("efs:CreateFileSystem", &tags_of(&found.tags))?;
            }
            Err(e) => return Err(e),
        }
        let l = wait_for(aws, &d.physical_name, d.timeout, d.name.clone()).await?;
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: FileSystemProps = FileSystemKind::props(&d.props)?;
        let was: FileSystemProps = FileSystemKind::props(&l.props)?;
        if p.throughput_mode != was.throughput_mode {
            aws.efs
                .update_file_system()
                .file_system_id(&l.id)
                .throughput_mode(ThroughputMode::from(p.throughput_mode.as_str()))
                .send()
                .await
                .map_err(sdk("efs:UpdateFileSystem"))?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or(&l.id).to_string();
        let arn = arn.as_str();
        crate::tags::sync(
            &d.tags,
            &l.tags,
            |set| async move {
                let set = set.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect();
                let call = aws.efs.tag_resource().resource_id(arn).set_tags(Some(set));
                call.send().await.map(|_| ()).map_err(sdk("efs:TagResource"))
            },
            |keys| async move {
                let call = aws.efs.untag_resource().resource_id(arn).set_tag_keys(Some(keys));
                call.send().await.map(|_| ()).map_err(sdk("efs:UntagResource"))
            },
        )
        .await?;
        Ok(Live {
            props: crate::kinds::to_value(&FileSystemProps { kms_key_id: was.kms_key_id, ..p }),
            tags: d.tags.clone(),
            ..l.clone()
        })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // Mount targets go first (they depend on the file system), but
        // EFS reports them gone a little after DeleteMountTarget returns.
        let res = crate::aws::retry_while_in_use(&["FileSystemInUse"], || async {
            aws.efs.delete_file_system().file_system_id(&l.id).send().await.map_err(sdk("efs:DeleteFileSystem"))
        })
        .await;
        not_found(res, &["FileSystemNotFound"]).map(|_| ())
    }
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::kinds::tag_map(tags.iter().map(|t| (Some(t.key.clone()), Some(t.value.clone()))))
}

/// Polls until the file system with `token` is available (EFS has no SDK
/// waiter), at most `timeout`.
async fn wait_for(aws: &Aws, token: &str, timeout: Duration, name: String) -> Result<Live, AwsError> {
    let f = crate::aws::poll_until("efs:DescribeFileSystems (wait available)", "available", timeout, || async {
        match by_token(aws, token).await? {
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

/// The file system with creation token `token`, if any.
async fn by_token(aws: &Aws, token: &str) -> Result<Option<FileSystemDescription>, AwsError> {
    let out =
        aws.efs.describe_file_systems().creation_token(token).send().await.map_err(sdk("efs:DescribeFileSystems"))?;
    Ok(out.file_systems.unwrap_or_default().into_iter().next())
}

fn live(name: String, f: FileSystemDescription, tags: BTreeMap<String, String>, region: &str) -> Live {
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
    Live::new(name, id.clone(), &props, tags)
        .output("arn", f.file_system_arn.clone().unwrap_or_default())
        .output("dns_name", format!("{id}.efs.{region}.amazonaws.com"))
        .output("creation_token", f.creation_token.clone())
}
