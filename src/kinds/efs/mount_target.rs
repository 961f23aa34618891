//! `efs.mount_target`: a file system's NFS endpoint in one subnet.
//!
//! EFS cannot tag mount targets. They are found through their tagged parent
//! (the stack's file systems) and matched to the spec by their natural key,
//! file system + subnet: a retried create conflicts on that key and adopts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_efs::types::LifeCycleState;
use futures_util::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, Polled, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct MountTargetKind;

/// Properties of `efs.mount_target`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountTargetProps {
    /// Changing it replaces the mount target.
    pub file_system_id: String,
    /// One mount target per availability zone. Changing it replaces it.
    pub subnet_id: String,
    /// Updated in place.
    pub security_groups: Vec<String>,
}

impl Kind for MountTargetKind {
    type Props = MountTargetProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "efs.mount_target",
        doc: "An EFS mount target in one subnet; identified by file system + subnet (EFS cannot tag it). Outputs: `id`, `ip_address`.",
        replace_on: &["file_system_id", "subnet_id"],
        sends: &[
            Sent::aws("file_system_id", "efs:CreateMountTargetRequest.FileSystemId"),
            Sent::aws("subnet_id", "efs:CreateMountTargetRequest.SubnetId"),
            Sent::aws("security_groups", "efs:CreateMountTargetRequest.SecurityGroups"),
            Sent::aws("security_groups[]", "efs:CreateMountTargetRequest.SecurityGroups[]"),
        ],
        outputs: &["id", "ip_address"],
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["elasticfilesystem:DescribeMountTargetSecurityGroups"],
            per_parent: &[("elasticfilesystem:DescribeMountTargets", "efs.file_system")],
        },
        taggable: false,
        default_wait: Duration::from_secs(10 * 60),
        import_by: Facts::UNTAGGABLE,
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: MountTargetProps) -> Result<MountTargetProps, PropsError> {
        crate::kinds::sort_ids(&mut p.security_groups);
        if p.security_groups.is_empty() || p.security_groups.len() > 5 {
            return Err(PropsError {
                path: "security_groups".into(),
                message: "a mount target has 1 to 5 security groups".into(),
            });
        }
        Ok(p)
    }

    fn natural_key(&self, props: &Value) -> Option<String> {
        let fs = props.get("file_system_id")?.as_str()?;
        let subnet = props.get("subnet_id")?.as_str()?;
        Some(format!("{fs}/{subnet}"))
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // The stack's file systems, from the ownership index.
        let ours: Vec<String> = scope
            .shared
            .owned(aws, "elasticfilesystem:file-system")
            .await?
            .iter()
            .map(|f| f.id().to_string())
            .collect();
        let mut targets = Vec::new();
        for fs in ours {
            let res = all_items!(aws.efs.describe_mount_targets().file_system_id(&fs), "efs:DescribeMountTargets");
            // The index lags deletes on AWS: a file system gone is skipped.
            let mts = not_found(res, &["FileSystemNotFound"])?.unwrap_or_default();
            targets.extend(mts.into_iter().filter(|m| m.life_cycle_state != LifeCycleState::Deleting));
        }
        // One deleted between the list and its own read (a destroy
        // running beside this plan) is gone, not an error.
        let found: Vec<Option<Live>> = futures_util::stream::iter(targets)
            .map(|m| async move { not_found(live(aws, m).await, &["MountTargetNotFound"]) })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: MountTargetProps = MountTargetKind::props(&d.props)?;
        let res = aws
            .efs
            .create_mount_target()
            .file_system_id(&p.file_system_id)
            .subnet_id(&p.subnet_id)
            .set_security_groups(Some(p.security_groups.clone()))
            .send()
            .await
            .map_err(sdk("efs:CreateMountTarget"));
        match res {
            Ok(_) => {}
            // EFS allows one mount target per availability zone: ours
            // (a retried create) in this subnet, or another one, which
            // is reported at once, named.
            Err(e) if e.is("MountTargetConflict") => {
                let targets = targets_of(aws, &p.file_system_id).await?;
                if !targets.iter().any(|m| m.subnet_id == p.subnet_id) {
                    let holders: Vec<String> = targets
                        .iter()
                        .map(|m| {
                            format!(
                                "{} in {} ({})",
                                m.mount_target_id,
                                m.subnet_id,
                                m.availability_zone_name.as_deref().unwrap_or("?")
                            )
                        })
                        .collect();
                    return Err(AwsError {
                        message: format!(
                            "{}; {} already has mount targets: {} (EFS allows one per availability zone)",
                            e.message,
                            p.file_system_id,
                            holders.join(", ")
                        ),
                        ..e
                    });
                }
            }
            Err(e) => return Err(e),
        }
        let l = wait_for(aws, &p, d.timeout).await?;
        let l = Live { name: d.name.clone(), ..l };
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: MountTargetProps = MountTargetKind::props(&d.props)?;
        let was: MountTargetProps = MountTargetKind::props(&l.props)?;
        if p.security_groups != was.security_groups {
            aws.efs
                .modify_mount_target_security_groups()
                .mount_target_id(&l.id)
                .set_security_groups(Some(p.security_groups.clone()))
                .send()
                .await
                .map_err(sdk("efs:ModifyMountTargetSecurityGroups"))?;
        }
        Ok(Live { props: crate::kinds::to_value(&p), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res =
            aws.efs.delete_mount_target().mount_target_id(&l.id).send().await.map_err(sdk("efs:DeleteMountTarget"));
        if not_found(res, &["MountTargetNotFound"])?.is_none() {
            return Ok(());
        }
        // Gone when DescribeMountTargets no longer finds it.
        let deadline = Instant::now() + Self::FACTS.default_wait;
        loop {
            let res = aws
                .efs
                .describe_mount_targets()
                .mount_target_id(&l.id)
                .send()
                .await
                .map_err(sdk("efs:DescribeMountTargets"));
            match not_found(res, &["MountTargetNotFound"])? {
                None => return Ok(()),
                Some(out) if out.mount_targets().is_empty() => return Ok(()),
                Some(_) if Instant::now() > deadline => {
                    return Err(AwsError::other("efs:DeleteMountTarget", format!("{} still there", l.id)));
                }
                Some(_) => tokio::time::sleep(Duration::from_secs(2)).await,
            }
        }
    }
}

/// Polls until the mount target for `p`'s file system and subnet is
/// available.
/// The mount targets of file system `fs`.
async fn targets_of(aws: &Aws, fs: &str) -> Result<Vec<aws_sdk_efs::types::MountTargetDescription>, AwsError> {
    let out =
        aws.efs.describe_mount_targets().file_system_id(fs).send().await.map_err(sdk("efs:DescribeMountTargets"))?;
    Ok(out.mount_targets.unwrap_or_default())
}

async fn wait_for(aws: &Aws, p: &MountTargetProps, timeout: Duration) -> Result<Live, AwsError> {
    let m = crate::aws::poll_until("efs:DescribeMountTargets (wait available)", "available", timeout, || async {
        let found = targets_of(aws, &p.file_system_id).await?.into_iter().find(|m| m.subnet_id == p.subnet_id);
        match found {
            Some(m) if m.life_cycle_state == LifeCycleState::Available => Ok(Polled::Ready(m)),
            Some(m) if m.life_cycle_state == LifeCycleState::Error => {
                Err(AwsError::other("efs:CreateMountTarget", format!("{} is in state error", m.mount_target_id)))
            }
            Some(m) => Ok(Polled::Waiting(m.life_cycle_state.as_str().to_string())),
            None => Ok(Polled::Waiting(format!("no mount target in {} yet", p.subnet_id))),
        }
    })
    .await?;
    live(aws, m).await
}

/// A live mount target; its resource name is found by the planner through
/// the natural key, so it is left empty here.
async fn live(aws: &Aws, m: aws_sdk_efs::types::MountTargetDescription) -> Result<Live, AwsError> {
    let sgs = aws
        .efs
        .describe_mount_target_security_groups()
        .mount_target_id(&m.mount_target_id)
        .send()
        .await
        .map_err(sdk("efs:DescribeMountTargetSecurityGroups"))?;
    let mut security_groups = sgs.security_groups;
    security_groups.sort();
    let props =
        MountTargetProps { file_system_id: m.file_system_id.clone(), subnet_id: m.subnet_id.clone(), security_groups };
    Ok(Live::new(String::new(), m.mount_target_id, &props, BTreeMap::new()).output("ip_address", m.ip_address))
}
