//! `ec2.volume`: an EBS volume that outlives the instances using it (the
//! Gitaly node's repositories: its instance attaches it at boot).
//!
//! A data volume is stateful: deleting it first takes a snapshot, tagged
//! with what it was, unless the spec says `snapshot_on_delete: false`; a
//! volume that left the spec always gets one.

use crate::aws::waited;
use std::collections::BTreeMap;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{ResourceType, Volume, VolumeState, VolumeType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, client_token, not_found, retry_while_in_use};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, TAG_ENV, TAG_RESOURCE, TAG_STACK};
use crate::limits::Sent;

pub struct VolumeKind;

/// Properties of `ec2.volume`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeProps {
    /// e.g. `${region}a`: the instance using it must run there. Changing it
    /// replaces the volume.
    pub availability_zone: String,
    /// Size in GiB; it can grow in place, never shrink.
    pub size_gb: i32,
    /// `gp3` (default), `gp2`, `io1`, `io2`, `st1`, `sc1`.
    #[serde(default = "gp3")]
    pub volume_type: String,
    /// Provisioned IOPS (gp3, io1, io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i32>,
    /// Throughput in MiB/s (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i32>,
    /// Encrypted at rest (default true). Changing it replaces the volume.
    #[serde(default = "crate::kinds::yes")]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Build the volume from this EBS snapshot (`snap-…`): a restore. Its
    /// size is at least the snapshot's. Setting or changing it replaces the
    /// volume (with `--allow-destroy` when it is protected); the plan shows
    /// that replacement and nothing else of the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Snapshot before deleting (default true). Not compared.
    #[serde(default = "crate::kinds::yes")]
    pub snapshot_on_delete: bool,
}

fn gp3() -> String {
    "gp3".into()
}

impl Kind for VolumeKind {
    type Props = VolumeProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.volume",
        doc: "An EBS data volume (encrypted, gp3) that survives instance replacement; snapshotted before it is deleted, and restored from a snapshot with `snapshot_id`. Outputs: `id`, `availability_zone`.",
        replace_on: &["availability_zone", "encrypted", "kms_key_id", "snapshot_id"],
        sends: &[
            Sent::aws("availability_zone", "ec2:CreateVolumeRequest.AvailabilityZone"),
            Sent::aws("size_gb", "ec2:CreateVolumeRequest.Size"),
            Sent::aws("volume_type", "ec2:CreateVolumeRequest.VolumeType"),
            Sent::aws("iops", "ec2:CreateVolumeRequest.Iops"),
            Sent::aws("throughput", "ec2:CreateVolumeRequest.Throughput"),
            Sent::aws("encrypted", "ec2:CreateVolumeRequest.Encrypted"),
            Sent::aws("kms_key_id", "ec2:CreateVolumeRequest.KmsKeyId"),
            Sent::aws("snapshot_id", "ec2:CreateVolumeRequest.SnapshotId"),
            Sent::not("snapshot_on_delete", "converge's own: a snapshot before the volume is deleted"),
        ],
        outputs: &["id", "availability_zone"],
        protected: true,
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeVolumes"], per_object: &[], per_parent: &[] },
        write_only: &["snapshot_on_delete"],
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: VolumeProps) -> Result<VolumeProps, PropsError> {
        // An empty snapshot is none (a stack variable left empty).
        p.snapshot_id.take_if(|s| s.is_empty());
        let err = |path: &str, message: String| Err(PropsError { path: path.into(), message });
        if !["gp3", "gp2", "io1", "io2", "st1", "sc1"].contains(&p.volume_type.as_str()) {
            return err("volume_type", format!("unknown volume type `{}`", p.volume_type));
        }
        // EBS limits (CreateVolume API reference).
        let (min, max) = match p.volume_type.as_str() {
            "gp2" | "gp3" => (1, 16384),
            "io1" | "io2" => (4, 16384),
            _ => (125, 16384),
        };
        if !(min..=max).contains(&p.size_gb) {
            return err("size_gb", format!("a {} volume is {min} to {max} GiB", p.volume_type));
        }
        if p.throughput.is_some() && p.volume_type != "gp3" {
            return err("throughput", "only gp3 volumes take a throughput".into());
        }
        if p.iops.is_some() && !["gp3", "io1", "io2"].contains(&p.volume_type.as_str()) {
            return err("iops", format!("a {} volume takes no iops", p.volume_type));
        }
        if p.volume_type == "gp3" {
            // gp3 (EBS User Guide, "General Purpose SSD volumes"): at least
            // the 3,000 IOPS and 125 MiB/s baseline, at most 500 IOPS a GiB
            // and 0.25 MiB/s an IOPS.
            let iops = p.iops.unwrap_or(3000);
            if iops < 3000 {
                return err("iops", format!("{iops}: a gp3 volume has at least 3000 IOPS"));
            }
            if i64::from(iops) > 500 * i64::from(p.size_gb) {
                return err(
                    "iops",
                    format!(
                        "{iops}: a gp3 volume of {} GiB has at most {} IOPS (500 a GiB)",
                        p.size_gb,
                        500 * i64::from(p.size_gb)
                    ),
                );
            }
            if let Some(t) = p.throughput {
                if t < 125 {
                    return err("throughput", format!("{t}: a gp3 volume has at least 125 MiB/s"));
                }
                if t * 4 > iops {
                    return err(
                        "throughput",
                        format!(
                            "{t} MiB/s: with {iops} IOPS a gp3 volume has at most {} MiB/s (0.25 MiB/s an IOPS)",
                            iops / 4
                        ),
                    );
                }
            }
        }
        if let Some(s) = &p.snapshot_id
            && !crate::value::is_unknown_str(s)
            && !s.starts_with("snap-")
        {
            return err("snapshot_id", format!("`{s}`: an EBS snapshot id (snap-…)"));
        }
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let volumes: Vec<Volume> =
            all_items!(aws.ec2.describe_volumes().set_filters(scope_filters(scope)), "ec2:DescribeVolumes")?;
        let volumes =
            volumes.into_iter().filter(|v| !matches!(v.state(), Some(VolumeState::Deleted | VolumeState::Deleting)));
        Ok(claimed(volumes, scope, |v| v.tags(), |name, v, tags| live(name, &v, tags)))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: VolumeProps = VolumeKind::props(&d.props)?;
        let out = aws
            .ec2
            .create_volume()
            .client_token(client_token())
            .availability_zone(&p.availability_zone)
            .size(p.size_gb)
            .volume_type(VolumeType::from(p.volume_type.as_str()))
            .set_iops(p.iops)
            .set_throughput(p.throughput)
            .encrypted(p.encrypted)
            .set_kms_key_id(p.kms_key_id.clone())
            .set_snapshot_id(p.snapshot_id.clone())
            .tag_specifications(tag_spec(ResourceType::Volume, &d.tags))
            .send()
            .await
            .map_err(sdk("ec2:CreateVolume"))?;
        let id = out.volume_id.clone().unwrap_or_default();
        aws.ec2
            .wait_until_volume_available()
            .volume_ids(&id)
            .wait(d.timeout)
            .await
            .map_err(waited("ec2:DescribeVolumes (wait available)"))?;
        let v = Volume::builder()
            .volume_id(id)
            .availability_zone(&p.availability_zone)
            .size(p.size_gb)
            .volume_type(VolumeType::from(p.volume_type.as_str()))
            .set_iops(out.iops)
            .set_throughput(out.throughput)
            .encrypted(p.encrypted)
            .set_kms_key_id(out.kms_key_id)
            .build();
        let mut l = live(d.name.clone(), &v, d.tags.clone());
        l.props = crate::kinds::to_value(&p);
        Ok(l)
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: VolumeProps = VolumeKind::props(&d.props)?;
        let was: VolumeProps = VolumeKind::props(&l.props)?;
        if p.size_gb < was.size_gb {
            return Err(AwsError::other(
                "ec2:ModifyVolume",
                format!("{}: an EBS volume cannot shrink ({} GiB → {} GiB)", l.id, was.size_gb, p.size_gb),
            ));
        }
        let changed = p.size_gb != was.size_gb
            || p.volume_type != was.volume_type
            || (p.iops.is_some() && p.iops != was.iops)
            || (p.throughput.is_some() && p.throughput != was.throughput);
        if changed {
            aws.ec2
                .modify_volume()
                .volume_id(&l.id)
                .size(p.size_gb)
                .volume_type(VolumeType::from(p.volume_type.as_str()))
                .set_iops(p.iops)
                .set_throughput(p.throughput)
                .send()
                .await
                .map_err(sdk("ec2:ModifyVolume"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, spec: Option<&Value>) -> Result<(), AwsError> {
        // Out of the spec: the safe default, a snapshot.
        let snapshot = spec.and_then(|s| VolumeKind::props(s).ok()).is_none_or(|p| p.snapshot_on_delete);
        if snapshot {
            // The snapshot is not the stack's (no identity tags: nothing
            // plans to delete it); it says what it was taken of.
            let mut tags: BTreeMap<String, String> = l
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("converge:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let of = [TAG_STACK, TAG_ENV, TAG_RESOURCE].map(|k| l.tags.get(k).map_or("", String::as_str)).join("/");
            tags.insert("converge:final-snapshot-of".into(), of);
            let res = aws
                .ec2
                .create_snapshot()
                .volume_id(&l.id)
                .description(format!("converge: final snapshot of {} ({})", l.id, l.name))
                .tag_specifications(tag_spec(ResourceType::Snapshot, &tags))
                .send()
                .await
                .map_err(sdk("ec2:CreateSnapshot"));
            let Some(snap) = not_found(res, &["InvalidVolume.NotFound"])? else { return Ok(()) };
            let id = snap.snapshot_id.unwrap_or_default();
            crate::progress::note(Some(format!("waiting for the final snapshot {id} to complete")));
            aws.ec2
                .wait_until_snapshot_completed()
                .snapshot_ids(&id)
                .wait(crate::aws::MAX_WAIT * 6)
                .await
                .map_err(waited("ec2:DescribeSnapshots (wait completed)"))?;
            tracing::info!(volume = %l.id, snapshot = %id, "final snapshot taken");
        }
        // An instance being terminated releases the volume shortly.
        let res = retry_while_in_use(&["VolumeInUse"], || async {
            aws.ec2.delete_volume().volume_id(&l.id).send().await.map_err(sdk("ec2:DeleteVolume"))
        })
        .await;
        not_found(res, &["InvalidVolume.NotFound"]).map(|_| ())
    }
}

fn live(name: String, v: &Volume, tags: BTreeMap<String, String>) -> Live {
    let id = v.volume_id.clone().unwrap_or_default();
    let props = VolumeProps {
        availability_zone: v.availability_zone.clone().unwrap_or_default(),
        size_gb: v.size.unwrap_or_default(),
        volume_type: v.volume_type.as_ref().map_or_else(gp3, |t| t.as_str().to_string()),
        iops: v.iops,
        throughput: v.throughput,
        encrypted: v.encrypted.unwrap_or(false),
        kms_key_id: v.kms_key_id.clone(),
        snapshot_id: v.snapshot_id.clone().filter(|s| !s.is_empty()),
        snapshot_on_delete: true,
    };
    // Built empty is "no snapshot": null, so that a spec naming one differs.
    let mut value = crate::kinds::to_value(&props);
    value.as_object_mut().map(|m| m.entry("snapshot_id").or_insert(Value::Null));
    Live::new(name, id, &value, tags).output("availability_zone", props.availability_zone.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Kind;
    use super::VolumeKind;

    fn err(props: serde_json::Value) -> String {
        VolumeKind.canonicalize(props).unwrap_err().message
    }

    #[test]
    fn gp3_limits_and_restores_are_checked_offline() {
        let base = json!({"availability_zone": "eu-west-1a", "size_gb": 50, "iops": 8000, "throughput": 500});
        let ok = VolumeKind.canonicalize(base.clone()).unwrap();
        assert!(ok.get("snapshot_id").is_none(), "no restore: not compared");
        let with = |k: &str, v: serde_json::Value| {
            let mut p = base.clone();
            p[k] = v;
            p
        };
        assert!(err(with("size_gb", json!(10))).contains("at most 5000 IOPS (500 a GiB)"));
        assert!(err(with("iops", json!(2000))).contains("at least 3000"));
        assert!(err(with("throughput", json!(2500))).contains("at most 2000 MiB/s"));
        assert!(err(with("snapshot_id", json!("vol-1"))).contains("snap-"));
        let empty = VolumeKind.canonicalize(with("snapshot_id", json!(""))).unwrap();
        assert!(empty.get("snapshot_id").is_none(), "an empty variable is no snapshot");
    }
}
