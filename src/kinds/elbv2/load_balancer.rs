//! `elbv2.load_balancer`: an application (or network) load balancer,
//! internal by default.

use crate::aws::waited;
use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::client::Waiters;
use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::elbv2::{check_name, find, sync_tags, tags_of, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct LoadBalancerKind;

/// Properties of `elbv2.load_balancer`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerProps {
    /// `internal` (default) or `internet-facing`. Changing it replaces it.
    #[serde(default = "internal")]
    pub scheme: String,
    /// `application` (default) or `network`. Changing it replaces it.
    #[serde(default = "application", rename = "type")]
    pub lb_type: String,
    /// Subnets in at least two availability zones. Updated in place.
    pub subnets: Vec<String>,
    /// Updated in place (application load balancers).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Seconds an idle connection stays open (application load balancers;
    /// AWS's default is 60, short for a large `git clone` over HTTPS).
    /// Omitted: left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<i32>,
}

fn internal() -> String {
    "internal".into()
}
fn application() -> String {
    "application".into()
}

impl Kind for LoadBalancerKind {
    type Props = LoadBalancerProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "elbv2.load_balancer",
        doc: "An Elastic Load Balancing v2 load balancer, internal by default. Outputs: `id` and `arn`, `dns_name`, `zone_id`, `arn_suffix` (`app/NAME/ID`, its CloudWatch dimension).",
        replace_on: &["scheme", "type"],
        sends: &[
            Sent::aws("scheme", "elbv2:CreateLoadBalancerInput.Scheme"),
            Sent::aws("type", "elbv2:CreateLoadBalancerInput.Type"),
            Sent::aws("subnets", "elbv2:CreateLoadBalancerInput.Subnets"),
            Sent::aws("subnets[]", "elbv2:CreateLoadBalancerInput.Subnets[]"),
            Sent::aws("security_groups", "elbv2:CreateLoadBalancerInput.SecurityGroups"),
            Sent::aws("security_groups[]", "elbv2:CreateLoadBalancerInput.SecurityGroups[]"),
            Sent::not(
                "idle_timeout_seconds",
                "sent as the attribute idle_timeout.timeout_seconds (1 to 4000, checked by the kind)",
            ),
        ],
        outputs: &["id", "arn", "name", "dns_name", "zone_id", "arn_suffix"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &["elasticloadbalancing:DescribeLoadBalancers"],
            per_object: &["elasticloadbalancing:DescribeLoadBalancerAttributes"],
            per_parent: &[],
        },
        tagging_type: Some("elasticloadbalancing:loadbalancer"),
        default_wait: Duration::from_secs(15 * 60),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: LoadBalancerProps) -> Result<LoadBalancerProps, PropsError> {
        crate::kinds::sort_ids(&mut p.subnets);
        crate::kinds::sort_ids(&mut p.security_groups);
        if let Some(t) = p.idle_timeout_seconds {
            if p.lb_type != "application" {
                return Err(PropsError {
                    path: "idle_timeout_seconds".into(),
                    message: "only application load balancers have an idle timeout".into(),
                });
            }
            if !(1..=4000).contains(&t) {
                return Err(PropsError { path: "idle_timeout_seconds".into(), message: "1 to 4000 seconds".into() });
            }
        }
        if !["application", "network"].contains(&p.lb_type.as_str()) {
            return Err(PropsError { path: "type".into(), message: "expected `application` or `network`".into() });
        }
        if p.subnets.len() < 2 {
            return Err(PropsError {
                path: "subnets".into(),
                message: "a load balancer needs subnets in two availability zones".into(),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_name(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let (indexed, names) = crate::kinds::Target::split(scope.targets(aws).await?);
        let found =
            find(aws, &indexed, &names, "LoadBalancerNotFound", LoadBalancer::load_balancer_arn, |arns, name| {
                describe(aws, arns, name)
            })
            .await?;
        let owned = found
            .into_iter()
            .filter_map(|(lb, t)| {
                let owner = scope.owner(&t, lb.load_balancer_name())?;
                Some(live(owner, lb, t))
            })
            .map(|l| with_attributes(aws, l));
        futures_util::future::try_join_all(owned).await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: LoadBalancerProps = LoadBalancerKind::props(&d.props)?;
        // CreateLoadBalancer is idempotent by name: a retry returns the
        // load balancer the first attempt made (and a create, whatever has
        // the name and the same settings).
        let out = aws
            .elbv2
            .create_load_balancer()
            .name(&d.physical_name)
            .scheme(LoadBalancerSchemeEnum::from(p.scheme.as_str()))
            .r#type(LoadBalancerTypeEnum::from(p.lb_type.as_str()))
            .set_subnets(Some(p.subnets.clone()))
            .set_security_groups((!p.security_groups.is_empty()).then(|| p.security_groups.clone()))
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("elasticloadbalancing:CreateLoadBalancer"))?;
        let arn = out.load_balancers().first().and_then(|l| l.load_balancer_arn()).unwrap_or_default().to_string();
        // The name's load balancer may be another's that has the same
        // settings: taken only if it is this resource's.
        let tags = tags_of(aws, std::slice::from_ref(&arn)).await?.remove(&arn).unwrap_or_default();
        d.take_if_ours("elasticloadbalancing:CreateLoadBalancer", &tags)?;
        crate::progress::note(Some(format!("waiting for {} to be active (provisioning)", d.physical_name)));
        let done = aws
            .elbv2
            .wait_until_load_balancer_available()
            .load_balancer_arns(&arn)
            .wait(d.timeout)
            .await
            .map_err(waited("elasticloadbalancing:DescribeLoadBalancers (wait available)"))?;
        let lb = done.into_result().ok().and_then(|o| o.load_balancers.unwrap_or_default().into_iter().next());
        let lb =
            lb.ok_or_else(|| AwsError::other("elasticloadbalancing:DescribeLoadBalancers", format!("{arn} vanished")))?;
        let fresh = with_attributes(aws, live(d.name.clone(), lb, d.tags.clone())).await?;
        self.update(aws, d, &fresh).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: LoadBalancerProps = LoadBalancerKind::props(&d.props)?;
        let was: LoadBalancerProps = LoadBalancerKind::props(&l.props)?;
        if p.subnets != was.subnets {
            aws.elbv2
                .set_subnets()
                .load_balancer_arn(&l.id)
                .set_subnets(Some(p.subnets.clone()))
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:SetSubnets"))?;
        }
        if p.security_groups != was.security_groups {
            aws.elbv2
                .set_security_groups()
                .load_balancer_arn(&l.id)
                .set_security_groups(Some(p.security_groups.clone()))
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:SetSecurityGroups"))?;
        }
        if p.idle_timeout_seconds.is_some() && p.idle_timeout_seconds != was.idle_timeout_seconds {
            aws.elbv2
                .modify_load_balancer_attributes()
                .load_balancer_arn(&l.id)
                .attributes(
                    LoadBalancerAttribute::builder()
                        .key(IDLE_TIMEOUT)
                        .value(p.idle_timeout_seconds.unwrap_or_default().to_string())
                        .build(),
                )
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:ModifyLoadBalancerAttributes"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .elbv2
            .delete_load_balancer()
            .load_balancer_arn(&l.id)
            .send()
            .await
            .map_err(sdk("elasticloadbalancing:DeleteLoadBalancer"));
        if not_found(res, &["LoadBalancerNotFound"])?.is_none() {
            return Ok(());
        }
        crate::progress::note(Some("waiting for the load balancer to be deleted".into()));
        aws.elbv2
            .wait_until_load_balancers_deleted()
            .load_balancer_arns(&l.id)
            .wait(Self::FACTS.default_wait)
            .await
            .map_err(waited("elasticloadbalancing:DescribeLoadBalancers (wait deleted)"))?;
        Ok(())
    }
}

const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";

/// Adds the attributes DescribeLoadBalancers does not return (an
/// application load balancer's idle timeout): one call per load balancer
/// of the stack.
/// Load balancers by ARNs or by name.
async fn describe(aws: &Aws, arns: Option<Vec<String>>, name: Option<String>) -> Result<Vec<LoadBalancer>, AwsError> {
    let out = aws
        .elbv2
        .describe_load_balancers()
        .set_load_balancer_arns(arns)
        .set_names(name.map(|n| vec![n]))
        .send()
        .await
        .map_err(sdk("elasticloadbalancing:DescribeLoadBalancers"))?;
    Ok(out.load_balancers.unwrap_or_default())
}

async fn with_attributes(aws: &Aws, mut l: Live) -> Result<Live, AwsError> {
    if l.props.get("type").and_then(Value::as_str) != Some("application") {
        return Ok(l);
    }
    let out = aws
        .elbv2
        .describe_load_balancer_attributes()
        .load_balancer_arn(&l.id)
        .send()
        .await
        .map_err(sdk("elasticloadbalancing:DescribeLoadBalancerAttributes"))?;
    let idle =
        out.attributes().iter().find(|a| a.key() == Some(IDLE_TIMEOUT)).and_then(|a| a.value()?.parse::<i32>().ok());
    if let (Some(t), Some(obj)) = (idle, l.props.as_object_mut()) {
        obj.insert("idle_timeout_seconds".into(), Value::from(t));
    }
    Ok(l)
}

fn live(name: String, lb: LoadBalancer, tags: BTreeMap<String, String>) -> Live {
    let arn = lb.load_balancer_arn.clone().unwrap_or_default();
    let mut subnets: Vec<String> = lb.availability_zones().iter().filter_map(|z| z.subnet_id.clone()).collect();
    subnets.sort();
    let mut security_groups: Vec<String> = lb.security_groups().to_vec();
    security_groups.sort();
    let props = LoadBalancerProps {
        scheme: lb.scheme.as_ref().map(|s| s.as_str().to_string()).unwrap_or_else(internal),
        lb_type: lb.r#type.as_ref().map(|t| t.as_str().to_string()).unwrap_or_else(application),
        subnets,
        security_groups,
        idle_timeout_seconds: None,
    };
    Live::new(name, arn.clone(), &props, tags)
        .output("arn", arn.clone())
        .output("name", lb.load_balancer_name.clone().unwrap_or_default())
        .output("dns_name", lb.dns_name.clone().unwrap_or_default())
        .output("zone_id", lb.canonical_hosted_zone_id.clone().unwrap_or_default())
        .output("arn_suffix", crate::kinds::elbv2::arn_suffix(&arn))
}
