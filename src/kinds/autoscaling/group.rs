//! `autoscaling.group`: an auto-scaling group of instances from a launch
//! template, optionally a mix of on-demand and spot instance types.
//!
//! When the launch template (or its version) a group runs changes, apply
//! starts an instance refresh: a rolling replacement that keeps
//! `instance_refresh.min_healthy_percentage` of the group in service.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Filter, InstancesDistribution, LaunchTemplate as AsgLaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, MixedInstancesPolicy, RefreshPreferences,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError};
use crate::aws::{all_items, sdk};
use crate::kinds::autoscaling::to_tags;
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, TAG_ENV, TAG_STACK};
use crate::limits::Sent;

pub struct GroupKind;

/// Properties of `autoscaling.group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupProps {
    pub min_size: i32,
    pub max_size: i32,
    /// Omitted: left to scaling policies (and not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<i32>,
    /// Subnets to launch in.
    pub subnets: Vec<String>,
    #[serde(default)]
    pub target_group_arns: Vec<String>,
    /// `EC2` (default) or `ELB`.
    #[serde(default = "ec2")]
    pub health_check_type: String,
    #[serde(default = "crate::kinds::int::<300>")]
    pub health_check_grace_period: i32,
    /// One launch template for every instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<TemplateRef>,
    /// Or: several instance types, on-demand and spot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_instances: Option<Mixed>,
    /// How a changed launch template rolls out. Not compared.
    #[serde(default)]
    pub instance_refresh: Refresh,
    /// Processes Auto Scaling must not run, e.g. `AZRebalance` for a group
    /// whose instances a runner manager scales itself.
    #[serde(default)]
    pub suspended_processes: Vec<String>,
    /// New instances start protected from scale-in: only an explicit
    /// terminate removes them (docker-autoscaler's workers).
    #[serde(default)]
    pub new_instances_protected_from_scale_in: bool,
    /// After a create or an update, wait (up to the resource's
    /// `wait_timeout`) until the group's desired instances are InService and
    /// healthy, in every target group too, and until an instance refresh it
    /// started has finished. Then `depends_on` this group means "its
    /// instances serve": for the migration node, "migrations ran". Not
    /// compared.
    #[serde(default)]
    pub wait_for_capacity: bool,
}

/// The processes `SuspendProcesses` knows (Auto Scaling API reference).
const PROCESSES: &[&str] = &[
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    /// `${resources.NAME.id}`
    pub id: String,
    /// `${resources.NAME.version}`
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mixed {
    pub launch_template: TemplateRef,
    /// Instance types, most preferred first.
    pub instance_types: Vec<String>,
    /// On-demand instances before any spot (default 0).
    #[serde(default)]
    pub on_demand_base_capacity: i32,
    /// Percentage on-demand above the base (default 0: all spot).
    #[serde(default)]
    pub on_demand_percentage_above_base: i32,
    #[serde(default = "price_capacity")]
    pub spot_allocation_strategy: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    #[serde(default = "crate::kinds::int::<90>")]
    pub min_healthy_percentage: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_warmup_seconds: Option<i32>,
}

impl Default for Refresh {
    fn default() -> Self {
        Refresh { min_healthy_percentage: 90, instance_warmup_seconds: None }
    }
}

fn ec2() -> String {
    "EC2".into()
}
fn price_capacity() -> String {
    "price-capacity-optimized".into()
}

impl Kind for GroupKind {
    type Props = GroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "autoscaling.group",
        doc: "An auto-scaling group (launch template or on-demand + spot mix); a changed template starts an instance refresh. Outputs: `id` and `name`, `arn`.",
        replace_on: &[],
        sends: &[
            Sent::aws("min_size", "autoscaling:CreateAutoScalingGroupType.MinSize"),
            Sent::aws("max_size", "autoscaling:CreateAutoScalingGroupType.MaxSize"),
            Sent::aws("desired_capacity", "autoscaling:CreateAutoScalingGroupType.DesiredCapacity"),
            Sent::not("subnets[]", "joined with commas into VPCZoneIdentifier"),
            Sent::aws("target_group_arns", "autoscaling:CreateAutoScalingGroupType.TargetGroupARNs"),
            Sent::aws("target_group_arns[]", "autoscaling:CreateAutoScalingGroupType.TargetGroupARNs[]"),
            Sent::aws("health_check_type", "autoscaling:CreateAutoScalingGroupType.HealthCheckType"),
            Sent::aws("health_check_grace_period", "autoscaling:CreateAutoScalingGroupType.HealthCheckGracePeriod"),
            Sent::aws("launch_template.id", "autoscaling:LaunchTemplateSpecification.LaunchTemplateId"),
            Sent::aws("launch_template.version", "autoscaling:LaunchTemplateSpecification.Version"),
            Sent::aws("mixed_instances.launch_template.id", "autoscaling:LaunchTemplateSpecification.LaunchTemplateId"),
            Sent::aws("mixed_instances.launch_template.version", "autoscaling:LaunchTemplateSpecification.Version"),
            Sent::aws("mixed_instances.instance_types[]", "autoscaling:LaunchTemplateOverrides.InstanceType"),
            Sent::aws(
                "mixed_instances.on_demand_base_capacity",
                "autoscaling:InstancesDistribution.OnDemandBaseCapacity",
            ),
            Sent::aws(
                "mixed_instances.on_demand_percentage_above_base",
                "autoscaling:InstancesDistribution.OnDemandPercentageAboveBaseCapacity",
            ),
            Sent::aws(
                "mixed_instances.spot_allocation_strategy",
                "autoscaling:InstancesDistribution.SpotAllocationStrategy",
            ),
            Sent::aws("instance_refresh.min_healthy_percentage", "autoscaling:RefreshPreferences.MinHealthyPercentage"),
            Sent::aws("instance_refresh.instance_warmup_seconds", "autoscaling:RefreshPreferences.InstanceWarmup"),
            Sent::aws("suspended_processes[]", "autoscaling:ScalingProcessQuery.ScalingProcesses[]"),
            Sent::aws(
                "new_instances_protected_from_scale_in",
                "autoscaling:CreateAutoScalingGroupType.NewInstancesProtectedFromScaleIn",
            ),
            Sent::not("wait_for_capacity", "converge's own: whether apply waits for the instances"),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &["autoscaling:DescribeAutoScalingGroups"],
            per_object: &[],
            per_parent: &[],
        },
        write_only: &["instance_refresh", "wait_for_capacity"],
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: GroupProps) -> Result<GroupProps, PropsError> {
        crate::kinds::sort_ids(&mut p.subnets);
        crate::kinds::sort_ids(&mut p.target_group_arns);
        p.suspended_processes.sort();
        p.suspended_processes.dedup();
        if let Some((i, bad)) = p.suspended_processes.iter().enumerate().find(|(_, s)| !PROCESSES.contains(&s.as_str()))
        {
            return Err(PropsError {
                path: format!("suspended_processes[{i}]"),
                message: format!("unknown process `{bad}`; expected one of: {}", PROCESSES.join(", ")),
            });
        }
        let err = |path: &str, message: &str| Err(PropsError { path: path.into(), message: message.into() });
        if p.launch_template.is_some() == p.mixed_instances.is_some() {
            return err("launch_template", "set exactly one of `launch_template` and `mixed_instances`");
        }
        if p.min_size < 0 || p.min_size > p.max_size {
            return err("min_size", "0 <= min_size <= max_size");
        }
        if let Some(d) = p.desired_capacity
            && !(p.min_size..=p.max_size).contains(&d)
        {
            return err("desired_capacity", "min_size <= desired_capacity <= max_size");
        }
        if !["EC2", "ELB"].contains(&p.health_check_type.as_str()) {
            return err("health_check_type", "expected `EC2` or `ELB`");
        }
        if p.mixed_instances.as_ref().is_some_and(|m| m.instance_types.is_empty()) {
            return err("mixed_instances.instance_types", "at least one instance type");
        }
        if p.subnets.is_empty() {
            return err("subnets", "at least one subnet");
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 255 {
            return Err("a group name is 1-255 characters".into());
        }
        Ok(())
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let groups = all_items!(
            aws.autoscaling
                .describe_auto_scaling_groups()
                .filters(Filter::builder().name(format!("tag:{TAG_STACK}")).values(&scope.stack).build())
                .filters(Filter::builder().name(format!("tag:{TAG_ENV}")).values(&scope.env).build()),
            "autoscaling:DescribeAutoScalingGroups"
        )?;
        Ok(groups
            .into_iter()
            .filter(|g| g.status().is_none_or(|s| !s.starts_with("Delete")))
            .filter_map(|g| {
                let tags = tags_of(&g);
                let owner = scope.owner(&tags, g.auto_scaling_group_name())?;
                Some(live(owner, g, tags))
            })
            .collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: GroupProps = GroupKind::props(&d.props)?;
        let res = aws
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&d.physical_name)
            .min_size(p.min_size)
            .max_size(p.max_size)
            .set_desired_capacity(p.desired_capacity)
            .vpc_zone_identifier(p.subnets.join(","))
            .set_target_group_arns((!p.target_group_arns.is_empty()).then(|| p.target_group_arns.clone()))
            .health_check_type(&p.health_check_type)
            .health_check_grace_period(p.health_check_grace_period)
            .set_launch_template(p.launch_template.as_ref().map(spec))
            .set_mixed_instances_policy(p.mixed_instances.as_ref().map(mixed))
            .new_instances_protected_from_scale_in(p.new_instances_protected_from_scale_in)
            .set_tags(Some(to_tags(&d.physical_name, &d.tags)))
            .send()
            .await
            .map_err(sdk("autoscaling:CreateAutoScalingGroup"));
        match res {
            Ok(_) => {
                let fresh = describe(aws, d.name.clone(), &d.physical_name).await?;
                // Suspended processes (and the wait) are the update's.
                self.update(aws, d, &fresh).await
            }
            // The name is unique: a retried create takes the group the
            // first attempt made, and only that.
            Err(e) if e.is("AlreadyExists") => {
                let l = describe(aws, d.name.clone(), &d.physical_name).await?;
                d.take_if_ours("autoscaling:CreateAutoScalingGroup", &l.tags)?;
                self.update(aws, d, &l).await
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: GroupProps = GroupKind::props(&d.props)?;
        let was: GroupProps = GroupKind::props(&l.props)?;
        let template_changed = p.launch_template != was.launch_template || p.mixed_instances != was.mixed_instances;
        let settings = GroupProps {
            target_group_arns: Vec::new(),
            instance_refresh: Refresh::default(),
            suspended_processes: Vec::new(),
            wait_for_capacity: false,
            ..p.clone()
        };
        let was_settings = GroupProps {
            target_group_arns: Vec::new(),
            instance_refresh: Refresh::default(),
            suspended_processes: Vec::new(),
            wait_for_capacity: false,
            desired_capacity: if p.desired_capacity.is_some() { was.desired_capacity } else { None },
            ..was.clone()
        };
        if settings != was_settings {
            aws.autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(&l.id)
                .min_size(p.min_size)
                .max_size(p.max_size)
                // Only when it changes: scaling moves it meanwhile, and
                // sending the value read a moment ago would undo that.
                .set_desired_capacity(p.desired_capacity.filter(|d| Some(*d) != was.desired_capacity))
                .vpc_zone_identifier(p.subnets.join(","))
                .health_check_type(&p.health_check_type)
                .health_check_grace_period(p.health_check_grace_period)
                .set_launch_template(p.launch_template.as_ref().map(spec))
                .set_mixed_instances_policy(p.mixed_instances.as_ref().map(mixed))
                .new_instances_protected_from_scale_in(p.new_instances_protected_from_scale_in)
                .send()
                .await
                .map_err(sdk("autoscaling:UpdateAutoScalingGroup"))?;
        }
        let suspend: Vec<String> =
            p.suspended_processes.iter().filter(|s| !was.suspended_processes.contains(s)).cloned().collect();
        let resume: Vec<String> =
            was.suspended_processes.iter().filter(|s| !p.suspended_processes.contains(s)).cloned().collect();
        if !suspend.is_empty() {
            aws.autoscaling
                .suspend_processes()
                .auto_scaling_group_name(&l.id)
                .set_scaling_processes(Some(suspend))
                .send()
                .await
                .map_err(sdk("autoscaling:SuspendProcesses"))?;
        }
        if !resume.is_empty() {
            aws.autoscaling
                .resume_processes()
                .auto_scaling_group_name(&l.id)
                .set_scaling_processes(Some(resume))
                .send()
                .await
                .map_err(sdk("autoscaling:ResumeProcesses"))?;
        }
        let attach: Vec<String> =
            p.target_group_arns.iter().filter(|a| !was.target_group_arns.contains(a)).cloned().collect();
        let detach: Vec<String> =
            was.target_group_arns.iter().filter(|a| !p.target_group_arns.contains(a)).cloned().collect();
        if !attach.is_empty() {
            aws.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(&l.id)
                .set_target_group_arns(Some(attach))
                .send()
                .await
                .map_err(sdk("autoscaling:AttachLoadBalancerTargetGroups"))?;
        }
        if !detach.is_empty() {
            aws.autoscaling
                .detach_load_balancer_target_groups()
                .auto_scaling_group_name(&l.id)
                .set_target_group_arns(Some(detach))
                .send()
                .await
                .map_err(sdk("autoscaling:DetachLoadBalancerTargetGroups"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        let mut refresh = None;
        if template_changed {
            // Old instances run the old template: roll them.
            let r = &p.instance_refresh;
            let out = aws
                .autoscaling
                .start_instance_refresh()
                .auto_scaling_group_name(&l.id)
                .preferences(
                    RefreshPreferences::builder()
                        .min_healthy_percentage(r.min_healthy_percentage)
                        .set_instance_warmup(r.instance_warmup_seconds)
                        .build(),
                )
                .send()
                .await
                .map_err(sdk("autoscaling:StartInstanceRefresh"))?;
            tracing::info!(group = %l.id, refresh = ?out.instance_refresh_id, "instance refresh started");
            refresh = out.instance_refresh_id;
        }
        if p.wait_for_capacity {
            let deadline = Instant::now() + d.timeout;
            if let Some(id) = &refresh {
                crate::kinds::autoscaling::wait_for_refresh(aws, &l.id, id, deadline).await?;
            }
            crate::kinds::autoscaling::wait_for_capacity(aws, &l.id, deadline).await?;
        }
        describe(aws, l.name.clone(), &l.id).await
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // ForceDelete terminates the group's instances with it.
        let res = aws
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(&l.id)
            .force_delete(true)
            .send()
            .await
            .map_err(sdk("autoscaling:DeleteAutoScalingGroup"));
        match res {
            Ok(_) => {}
            Err(e) if e.message.contains("not found") => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + Duration::from_secs(30 * 60);
        loop {
            let out = aws
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(&l.id)
                .send()
                .await
                .map_err(sdk("autoscaling:DescribeAutoScalingGroups"))?;
            if out.auto_scaling_groups().is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(AwsError::other("autoscaling:DeleteAutoScalingGroup", format!("{} still deleting", l.id)));
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

fn spec(t: &TemplateRef) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder().launch_template_id(&t.id).version(&t.version).build()
}

fn mixed(m: &Mixed) -> MixedInstancesPolicy {
    MixedInstancesPolicy::builder()
        .launch_template(
            AsgLaunchTemplate::builder()
                .launch_template_specification(spec(&m.launch_template))
                .set_overrides(Some(
                    m.instance_types
                        .iter()
                        .map(|t| LaunchTemplateOverrides::builder().instance_type(t).build())
                        .collect(),
                ))
                .build(),
        )
        .instances_distribution(
            InstancesDistribution::builder()
                .on_demand_base_capacity(m.on_demand_base_capacity)
                .on_demand_percentage_above_base_capacity(m.on_demand_percentage_above_base)
                .spot_allocation_strategy(&m.spot_allocation_strategy)
                .build(),
        )
        .build()
}

fn tags_of(g: &AutoScalingGroup) -> BTreeMap<String, String> {
    crate::kinds::tag_map(g.tags().iter().map(|t| (t.key.clone(), t.value.clone())))
}

async fn sync_tags(
    aws: &Aws,
    group: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async move {
            let call = aws.autoscaling.create_or_update_tags().set_tags(Some(to_tags(group, &set)));
            call.send().await.map(|_| ()).map_err(sdk("autoscaling:CreateOrUpdateTags"))
        },
        |keys| async move {
            // DeleteTags takes whole tags; the values are the live ones.
            let remove: BTreeMap<String, String> = keys.into_iter().map(|k| (k.clone(), live[&k].clone())).collect();
            let call = aws.autoscaling.delete_tags().set_tags(Some(to_tags(group, &remove)));
            call.send().await.map(|_| ()).map_err(sdk("autoscaling:DeleteTags"))
        },
    )
    .await
}

async fn describe(aws: &Aws, name: String, group: &str) -> Result<Live, AwsError> {
    let out = aws
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .map_err(sdk("autoscaling:DescribeAutoScalingGroups"))?;
    let g = out.auto_scaling_groups.unwrap_or_default().into_iter().next();
    let g = g.ok_or_else(|| AwsError::other("autoscaling:DescribeAutoScalingGroups", format!("{group} not found")))?;
    let tags = tags_of(&g);
    Ok(live(name, g, tags))
}

fn template_ref(s: Option<&LaunchTemplateSpecification>) -> Option<TemplateRef> {
    let s = s?;
    Some(TemplateRef {
        id: s.launch_template_id.clone()?,
        version: s.version.clone().unwrap_or_else(|| "$Default".into()),
    })
}

fn live(name: String, g: AutoScalingGroup, tags: BTreeMap<String, String>) -> Live {
    let id = g.auto_scaling_group_name.clone().unwrap_or_default();
    let mut subnets: Vec<String> =
        g.vpc_zone_identifier().unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    subnets.sort();
    let mut target_group_arns = g.target_group_arns().to_vec();
    target_group_arns.sort();
    let mixed_instances = g.mixed_instances_policy().and_then(|m| {
        let lt = m.launch_template()?;
        let d = m.instances_distribution();
        Some(Mixed {
            launch_template: template_ref(lt.launch_template_specification())?,
            instance_types: lt.overrides().iter().filter_map(|o| o.instance_type.clone()).collect(),
            on_demand_base_capacity: d.and_then(|d| d.on_demand_base_capacity).unwrap_or(0),
            on_demand_percentage_above_base: d.and_then(|d| d.on_demand_percentage_above_base_capacity).unwrap_or(100),
            spot_allocation_strategy: d.and_then(|d| d.spot_allocation_strategy.clone()).unwrap_or_else(price_capacity),
        })
    });
    let props = GroupProps {
        min_size: g.min_size.unwrap_or_default(),
        max_size: g.max_size.unwrap_or_default(),
        desired_capacity: g.desired_capacity,
        subnets,
        target_group_arns,
        health_check_type: g.health_check_type.clone().unwrap_or_else(ec2),
        health_check_grace_period: g.health_check_grace_period.unwrap_or(0),
        launch_template: template_ref(g.launch_template()),
        mixed_instances,
        instance_refresh: Refresh::default(),
        suspended_processes: {
            let mut s: Vec<String> = g.suspended_processes().iter().filter_map(|s| s.process_name.clone()).collect();
            s.sort();
            s
        },
        new_instances_protected_from_scale_in: g.new_instances_protected_from_scale_in.unwrap_or(false),
        wait_for_capacity: false,
    };
    Live::new(name, id.clone(), &props, tags)
        .output("name", id.clone())
        .output("arn", g.auto_scaling_group_arn.clone().unwrap_or_default())
}
