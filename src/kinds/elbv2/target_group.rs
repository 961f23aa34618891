//! `elbv2.target_group`: where a load balancer sends traffic, with the
//! health check (GitLab's `/-/readiness`).

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetGroup, TargetTypeEnum};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::elbv2::{check_name, find, sync_tags, tags_of, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct TargetGroupKind;

/// Properties of `elbv2.target_group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupProps {
    /// Changing it replaces the target group.
    pub vpc_id: String,
    /// Changing it replaces the target group.
    pub port: i32,
    /// `HTTP` (default), `HTTPS`, `TCP`. Changing it replaces the group.
    #[serde(default = "http")]
    pub protocol: String,
    /// `instance` (default) or `ip`. Changing it replaces the group.
    #[serde(default = "instance")]
    pub target_type: String,
    /// Updated in place.
    #[serde(default)]
    pub health_check: HealthCheck,
}

/// The health check (defaults: GitLab's readiness endpoint).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default = "readiness")]
    pub path: String,
    #[serde(default = "http")]
    pub protocol: String,
    /// HTTP codes that count as healthy.
    #[serde(default = "ok")]
    pub matcher: String,
    #[serde(default = "crate::kinds::int::<15>")]
    pub interval_seconds: i32,
    #[serde(default = "crate::kinds::int::<5>")]
    pub timeout_seconds: i32,
    #[serde(default = "crate::kinds::int::<2>")]
    pub healthy_threshold: i32,
    #[serde(default = "crate::kinds::int::<3>")]
    pub unhealthy_threshold: i32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: readiness(),
            protocol: http(),
            matcher: ok(),
            interval_seconds: 15,
            timeout_seconds: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        }
    }
}

fn http() -> String {
    "HTTP".into()
}
fn instance() -> String {
    "instance".into()
}
fn readiness() -> String {
    "/-/readiness".into()
}
fn ok() -> String {
    "200".into()
}

impl Kind for TargetGroupKind {
    type Props = TargetGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "elbv2.target_group",
        doc: "A target group with its health check (default: GitLab's `/-/readiness`). Outputs: `id` and `arn`, `name`, `arn_suffix` (`targetgroup/NAME/ID`, its CloudWatch dimension).",
        replace_on: &["vpc_id", "port", "protocol", "target_type"],
        sends: &[
            Sent::aws("vpc_id", "elbv2:CreateTargetGroupInput.VpcId"),
            Sent::aws("port", "elbv2:CreateTargetGroupInput.Port"),
            Sent::aws("protocol", "elbv2:CreateTargetGroupInput.Protocol"),
            Sent::aws("target_type", "elbv2:CreateTargetGroupInput.TargetType"),
            Sent::aws("health_check.path", "elbv2:CreateTargetGroupInput.HealthCheckPath"),
            Sent::aws("health_check.protocol", "elbv2:CreateTargetGroupInput.HealthCheckProtocol"),
            Sent::aws("health_check.matcher", "elbv2:Matcher.HttpCode"),
            Sent::aws("health_check.interval_seconds", "elbv2:CreateTargetGroupInput.HealthCheckIntervalSeconds"),
            Sent::aws("health_check.timeout_seconds", "elbv2:CreateTargetGroupInput.HealthCheckTimeoutSeconds"),
            Sent::aws("health_check.healthy_threshold", "elbv2:CreateTargetGroupInput.HealthyThresholdCount"),
            Sent::aws("health_check.unhealthy_threshold", "elbv2:CreateTargetGroupInput.UnhealthyThresholdCount"),
        ],
        outputs: &["id", "arn", "name", "arn_suffix"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &["elasticloadbalancing:DescribeTargetGroups"],
            per_object: &[],
            per_parent: &[],
        },
        tagging_type: Some("elasticloadbalancing:targetgroup"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: TargetGroupProps) -> Result<TargetGroupProps, PropsError> {
        // A TCP health check has no path and no HTTP codes (ELBv2 refuses
        // them): canonically empty, and never sent.
        if p.health_check.protocol == "TCP" {
            p.health_check.path = String::new();
            p.health_check.matcher = String::new();
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_name(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let (indexed, names) = crate::kinds::Target::split(scope.targets(aws).await?);
        let found = find(aws, &indexed, &names, "TargetGroupNotFound", TargetGroup::target_group_arn, |arns, name| {
            describe(aws, arns, name)
        })
        .await?;
        Ok(found
            .into_iter()
            .filter_map(|(g, t)| {
                let owner = scope.owner(&t, g.target_group_name())?;
                Some(live(owner, g, t))
            })
            .collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: TargetGroupProps = TargetGroupKind::props(&d.props)?;
        let h = &p.health_check;
        // Idempotent by name: a retry with the same settings returns the
        // target group the first attempt made.
        let out = aws
            .elbv2
            .create_target_group()
            .name(&d.physical_name)
            .vpc_id(&p.vpc_id)
            .port(p.port)
            .protocol(ProtocolEnum::from(p.protocol.as_str()))
            .target_type(TargetTypeEnum::from(p.target_type.as_str()))
            .set_health_check_path((!h.path.is_empty()).then(|| h.path.clone()))
            .health_check_protocol(ProtocolEnum::from(h.protocol.as_str()))
            .set_matcher((!h.matcher.is_empty()).then(|| Matcher::builder().http_code(&h.matcher).build()))
            .health_check_interval_seconds(h.interval_seconds)
            .health_check_timeout_seconds(h.timeout_seconds)
            .healthy_threshold_count(h.healthy_threshold)
            .unhealthy_threshold_count(h.unhealthy_threshold)
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("elasticloadbalancing:CreateTargetGroup"))?;
        let g = out.target_groups.unwrap_or_default().into_iter().next();
        let g = g.ok_or_else(|| AwsError::other("elasticloadbalancing:CreateTargetGroup", "no target group"))?;
        // Whatever has the name and the same settings comes back: taken
        // only if it is this resource's.
        let arn = g.target_group_arn().unwrap_or_default().to_string();
        let tags = tags_of(aws, std::slice::from_ref(&arn)).await?.remove(&arn).unwrap_or_default();
        d.take_if_ours("elasticloadbalancing:CreateTargetGroup", &tags)?;
        Ok(live(d.name.clone(), g, tags))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: TargetGroupProps = TargetGroupKind::props(&d.props)?;
        let was: TargetGroupProps = TargetGroupKind::props(&l.props)?;
        if p.health_check != was.health_check {
            let h = &p.health_check;
            aws.elbv2
                .modify_target_group()
                .target_group_arn(&l.id)
                .set_health_check_path((!h.path.is_empty()).then(|| h.path.clone()))
                .health_check_protocol(ProtocolEnum::from(h.protocol.as_str()))
                .set_matcher((!h.matcher.is_empty()).then(|| Matcher::builder().http_code(&h.matcher).build()))
                .health_check_interval_seconds(h.interval_seconds)
                .health_check_timeout_seconds(h.timeout_seconds)
                .healthy_threshold_count(h.healthy_threshold)
                .unhealthy_threshold_count(h.unhealthy_threshold)
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:ModifyTargetGroup"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // In use by a listener that is going away too: retry briefly.
        let res = crate::aws::retry_while_in_use(&["ResourceInUse"], || async {
            aws.elbv2
                .delete_target_group()
                .target_group_arn(&l.id)
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:DeleteTargetGroup"))
        })
        .await;
        not_found(res, &["TargetGroupNotFound"]).map(|_| ())
    }
}

/// Target groups by ARNs or by name.
async fn describe(aws: &Aws, arns: Option<Vec<String>>, name: Option<String>) -> Result<Vec<TargetGroup>, AwsError> {
    let out = aws
        .elbv2
        .describe_target_groups()
        .set_target_group_arns(arns)
        .set_names(name.map(|n| vec![n]))
        .send()
        .await
        .map_err(sdk("elasticloadbalancing:DescribeTargetGroups"))?;
    Ok(out.target_groups.unwrap_or_default())
}

fn live(name: String, g: TargetGroup, tags: BTreeMap<String, String>) -> Live {
    let arn = g.target_group_arn.clone().unwrap_or_default();
    let d = HealthCheck::default();
    let tcp = g.health_check_protocol.as_ref().is_some_and(|p| p.as_str() == "TCP");
    let mut props = TargetGroupProps {
        vpc_id: g.vpc_id.clone().unwrap_or_default(),
        port: g.port.unwrap_or_default(),
        protocol: g.protocol.as_ref().map(|p| p.as_str().to_string()).unwrap_or_else(http),
        target_type: g.target_type.as_ref().map(|t| t.as_str().to_string()).unwrap_or_else(instance),
        health_check: HealthCheck {
            path: g.health_check_path.clone().unwrap_or(d.path),
            protocol: g.health_check_protocol.as_ref().map(|p| p.as_str().to_string()).unwrap_or(d.protocol),
            matcher: g.matcher().and_then(|m| m.http_code.clone()).unwrap_or(d.matcher),
            interval_seconds: g.health_check_interval_seconds.unwrap_or(d.interval_seconds),
            timeout_seconds: g.health_check_timeout_seconds.unwrap_or(d.timeout_seconds),
            healthy_threshold: g.healthy_threshold_count.unwrap_or(d.healthy_threshold),
            unhealthy_threshold: g.unhealthy_threshold_count.unwrap_or(d.unhealthy_threshold),
        },
    };
    // What a TCP check has none of (the canonical form's empty strings).
    if tcp {
        props.health_check.path = String::new();
        props.health_check.matcher = String::new();
    }
    Live::new(name, arn.clone(), &props, tags)
        .output("arn", arn.clone())
        .output("name", g.target_group_name.clone().unwrap_or_default())
        .output("arn_suffix", crate::kinds::elbv2::arn_suffix(&arn))
}
