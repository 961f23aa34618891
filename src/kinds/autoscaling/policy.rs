//! `autoscaling.policy`: target tracking on a group (average CPU, by
//! default), so the group scales out and in by itself.
//!
//! Policies cannot be tagged: a policy is found by its physical name (the
//! policy name) among the stack's groups' policies.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::{
    MetricType, PredefinedMetricSpecification, ScalingPolicy, TargetTrackingConfiguration,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError};
use crate::aws::{all_items, sdk};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct PolicyKind;

/// Properties of `autoscaling.policy`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyProps {
    /// The group, e.g. `${resources.gitlab_app.name}`. Changing it replaces
    /// the policy.
    pub autoscaling_group_name: String,
    /// e.g. 60 (% CPU).
    pub target_value: f64,
    /// `ASGAverageCPUUtilization` (default), `ASGAverageNetworkIn`,
    /// `ASGAverageNetworkOut`, `ALBRequestCountPerTarget`.
    #[serde(default = "cpu")]
    pub metric: String,
    #[serde(default)]
    pub disable_scale_in: bool,
}

fn cpu() -> String {
    "ASGAverageCPUUtilization".into()
}

impl Kind for PolicyKind {
    type Props = PolicyProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "autoscaling.policy",
        doc: "A target-tracking scaling policy on an auto-scaling group (average CPU by default). Outputs: `id` (the policy name), `arn`.",
        replace_on: &["autoscaling_group_name"],
        sends: &[
            Sent::aws("autoscaling_group_name", "autoscaling:PutScalingPolicyType.AutoScalingGroupName"),
            Sent::aws("target_value", "autoscaling:TargetTrackingConfiguration.TargetValue"),
            Sent::aws("metric", "autoscaling:PredefinedMetricSpecification.PredefinedMetricType"),
            Sent::aws("disable_scale_in", "autoscaling:TargetTrackingConfiguration.DisableScaleIn"),
        ],
        outputs: &["id", "arn"],
        reads: crate::kinds::Reads { once: &["autoscaling:DescribePolicies"], per_object: &[], per_parent: &[] },
        taggable: false,
        import_by: Facts::UNTAGGABLE,
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: PolicyProps) -> Result<PolicyProps, PropsError> {
        let metrics =
            ["ASGAverageCPUUtilization", "ASGAverageNetworkIn", "ASGAverageNetworkOut", "ALBRequestCountPerTarget"];
        if !metrics.contains(&p.metric.as_str()) {
            return Err(PropsError {
                path: "metric".into(),
                message: format!("expected one of {}", metrics.join(", ")),
            });
        }
        if p.target_value <= 0.0 {
            return Err(PropsError { path: "target_value".into(), message: "a target above 0".into() });
        }
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        if scope.names.is_empty() {
            return Ok(Vec::new());
        }
        let policies = all_items!(
            aws.autoscaling.describe_policies().set_policy_names(Some(scope.names.keys().cloned().collect())),
            "autoscaling:DescribePolicies"
        )?;
        Ok(policies
            .into_iter()
            .filter_map(|p| {
                let owner = scope.owner(&BTreeMap::new(), p.policy_name())?;
                Some(live(owner, p))
            })
            .collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        // PutScalingPolicy creates or replaces: naturally idempotent.
        put(aws, d).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, _l: &Live) -> Result<Live, AwsError> {
        put(aws, d).await
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let p: PolicyProps = PolicyKind::props(&l.props)?;
        let res = aws
            .autoscaling
            .delete_policy()
            .auto_scaling_group_name(&p.autoscaling_group_name)
            .policy_name(&l.id)
            .send()
            .await
            .map_err(sdk("autoscaling:DeletePolicy"));
        match res {
            Ok(_) => Ok(()),
            // The group went first: its policies went with it.
            Err(e) if e.message.contains("not found") || e.message.contains("No such") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

async fn put(aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
    let p: PolicyProps = PolicyKind::props(&d.props)?;
    aws.autoscaling
        .put_scaling_policy()
        .auto_scaling_group_name(&p.autoscaling_group_name)
        .policy_name(&d.physical_name)
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(
            TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::from(p.metric.as_str()))
                        .build(),
                )
                .target_value(p.target_value)
                .disable_scale_in(p.disable_scale_in)
                .build(),
        )
        .send()
        .await
        .map_err(sdk("autoscaling:PutScalingPolicy"))?;
    // Target tracking responses may omit the ARN: read the policy back.
    let out = aws
        .autoscaling
        .describe_policies()
        .auto_scaling_group_name(&p.autoscaling_group_name)
        .policy_names(&d.physical_name)
        .send()
        .await
        .map_err(sdk("autoscaling:DescribePolicies"))?;
    let policy = out.scaling_policies.unwrap_or_default().into_iter().next();
    let policy = policy.ok_or_else(|| {
        AwsError::other("autoscaling:DescribePolicies", format!("{} not found after put", d.physical_name))
    })?;
    Ok(live(d.name.clone(), policy))
}

fn live(name: String, p: ScalingPolicy) -> Live {
    let id = p.policy_name.clone().unwrap_or_default();
    let tt = p.target_tracking_configuration();
    let props = PolicyProps {
        autoscaling_group_name: p.auto_scaling_group_name.clone().unwrap_or_default(),
        target_value: tt.and_then(|t| t.target_value).unwrap_or_default(),
        metric: tt
            .and_then(|t| t.predefined_metric_specification())
            .and_then(|m| m.predefined_metric_type().map(|t| t.as_str().to_string()))
            .unwrap_or_else(cpu),
        disable_scale_in: tt.and_then(|t| t.disable_scale_in).unwrap_or(false),
    };
    Live::new(name, id, &props, BTreeMap::new()).output("arn", p.policy_arn.clone().unwrap_or_default())
}
