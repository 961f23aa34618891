//! Auto Scaling helpers.

pub mod group;
pub mod policy;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_autoscaling::types::Tag;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};

/// The waits below poll after 1 s, then less and less often, up to this.
const POLL_MAX: Duration = Duration::from_secs(10);

/// Group tags, propagated to the instances the group launches.
pub fn to_tags(group: &str, tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(true)
                .build()
        })
        .collect()
}

/// Waits until instance refresh `id` of `group` has finished.
///
/// # Errors
/// A refresh that failed, was cancelled or rolled back (with AWS's reason),
/// or one still running at `deadline`.
pub async fn wait_for_refresh(aws: &Aws, group: &str, id: &str, deadline: Instant) -> Result<(), AwsError> {
    const OP: &str = "autoscaling:DescribeInstanceRefreshes";
    let mut delay = Duration::from_secs(1);
    loop {
        let out = aws
            .autoscaling
            .describe_instance_refreshes()
            .auto_scaling_group_name(group)
            .instance_refresh_ids(id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(OP, e))?;
        let r = out.instance_refreshes().first();
        let status = r.and_then(|r| r.status()).map(|s| s.as_str().to_string()).unwrap_or_default();
        match status.as_str() {
            "Successful" => return Ok(()),
            "Failed" | "Cancelled" | "RollbackSuccessful" | "RollbackFailed" | "Baseline_Failed" => {
                let reason = r.and_then(|r| r.status_reason()).unwrap_or("no reason given");
                return Err(AwsError {
                    operation: OP,
                    code: format!("InstanceRefresh{status}"),
                    message: format!("instance refresh {id} of {group}: {reason}"),
                    transient: false,
                });
            }
            _ => {}
        }
        let pct = r.and_then(|r| r.percentage_complete()).unwrap_or(0);
        tracing::info!(group, refresh = id, status, pct, "waiting for the instance refresh");
        crate::progress::note(Some(format!("waiting for the instance refresh ({status}, {pct}% done)")));
        if Instant::now() + delay > deadline {
            return Err(AwsError::other(
                OP,
                format!("instance refresh {id} of {group} still {status} ({pct}% done) at wait_timeout"),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}

/// Waits until `group` has its desired number of instances InService and
/// Healthy, each also `healthy` in every target group the group serves.
///
/// # Errors
/// Capacity still short at `deadline`, named with what is missing.
pub async fn wait_for_capacity(aws: &Aws, group: &str, deadline: Instant) -> Result<(), AwsError> {
    const OP: &str = "autoscaling:DescribeAutoScalingGroups";
    let mut delay = Duration::from_secs(1);
    loop {
        let out = aws
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(OP, e))?;
        let g = out.auto_scaling_groups().first().ok_or_else(|| AwsError::other(OP, format!("{group} not found")))?;
        let want = usize::try_from(g.desired_capacity.unwrap_or(0)).unwrap_or(0);
        let serving: Vec<&str> = g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state().is_some_and(|s| s.as_str() == "InService"))
            .filter(|i| i.health_status() == Some("Healthy"))
            .filter_map(|i| i.instance_id())
            .collect();
        let mut healthy = serving.len();
        for tg in g.target_group_arns() {
            let th = aws
                .elbv2
                .describe_target_health()
                .target_group_arn(tg)
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:DescribeTargetHealth"))?;
            let ok = serving
                .iter()
                .filter(|id| {
                    th.target_health_descriptions().iter().any(|t| {
                        t.target().and_then(|t| t.id()) == Some(**id)
                            && t.target_health().and_then(|h| h.state()).is_some_and(|s| s.as_str() == "healthy")
                    })
                })
                .count();
            healthy = healthy.min(ok);
        }
        if healthy >= want {
            crate::progress::note(None);
            return Ok(());
        }
        tracing::info!(group, healthy, want, "waiting for capacity");
        crate::progress::note(Some(format!("waiting for {want} healthy instances ({healthy} so far)")));
        if Instant::now() + delay > deadline {
            return Err(AwsError::other(
                OP,
                format!("{group}: {healthy} of {want} instances InService and healthy at wait_timeout"),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}
