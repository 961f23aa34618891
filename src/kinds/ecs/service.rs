//! `ecs.service`: an ECS service running a task definition revision, behind
//! a load balancer's target group.
//!
//! Identity: the service name (the physical name) in its cluster, and the
//! identity tags, set by `CreateService`, whose client token makes a
//! retried create return the service the first attempt made.
//!
//! A create or an update that starts a deployment waits, bounded by
//! `wait_timeout` and with progress, until the new PRIMARY deployment is
//! COMPLETED; a FAILED one (the deployment circuit breaker tripped) is an
//! error that quotes the service's latest events.
//!
//! `run_before` runs a one-off task (a database migration) on the new task
//! definition before the service is created or switched to it: `RunTask`
//! with the service's network and the command, then `DescribeTasks` until
//! it stops. Only an exit code of 0 lets the service change; any other
//! outcome is an error quoting the task's stop reason, and the service
//! keeps running the revision it ran.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, DeploymentAlarms, DeploymentCircuitBreaker,
    DeploymentConfiguration, LaunchType, LoadBalancer, NetworkConfiguration, Service, ServiceField, TaskOverride,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, Polled, client_token, not_found, poll_until};
use crate::kinds::ecs::{ecs_tags, from_ecs_tags, name_of, services_by_cluster};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct ServiceKind;

/// Properties of `ecs.service`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceProps {
    /// The cluster, by name or ARN. Changing it replaces the service.
    pub cluster: String,
    /// The task definition revision to run (`${resources.task.arn}`).
    pub task_definition: String,
    /// Tasks to keep running (default 1).
    #[serde(default = "crate::kinds::int::<1>")]
    pub desired_count: i32,
    /// `FARGATE` (default) or `EC2`. Changing it replaces the service.
    #[serde(default = "fargate")]
    pub launch_type: String,
    /// Subnets of the tasks' network interfaces (`awsvpc` tasks).
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// A public IP on each task (default false: tasks in private subnets
    /// reach ECR through a NAT gateway or VPC endpoints).
    #[serde(default)]
    pub assign_public_ip: bool,
    /// Target groups the tasks register in.
    #[serde(default)]
    pub load_balancers: Vec<Balancer>,
    /// Seconds ECS ignores failing load balancer health checks after a
    /// task starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<i32>,
    /// ECS's deployment circuit breaker, with rollback (default on): a
    /// deployment whose tasks keep failing is stopped and ECS goes back to
    /// the last COMPLETED deployment.
    #[serde(default = "crate::kinds::yes")]
    pub circuit_breaker: bool,
    /// Lower bound on running tasks during a deployment, in percent of
    /// `desired_count` (default 100).
    #[serde(default = "crate::kinds::int::<100>")]
    pub minimum_healthy_percent: i32,
    /// Upper bound, in percent (default 200).
    #[serde(default = "crate::kinds::int::<200>")]
    pub maximum_percent: i32,
    /// CloudWatch alarms ECS watches during each deployment (ECS
    /// deployment alarms, with rollback): one in ALARM fails the deployment
    /// and ECS goes back to the last COMPLETED one. Usually the same alarms
    /// as the stack's `verify: { alarms }` (`${resources.errors.name}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployment_alarms: Vec<String>,
    /// A one-off task run on the new task definition before the service
    /// is created or switched to it, e.g. the app's database migrations; it
    /// must exit 0, or nothing is switched. Not compared: it runs whenever
    /// the task definition changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_before: Option<RunBefore>,
}

/// `run_before:` of `ecs.service`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBefore {
    /// The command, in place of the container's (`[bin/rails, db:migrate]`).
    pub command: Vec<String>,
    /// The container that runs it (default: the one the load balancer
    /// sends to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Balancer {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: i32,
}

fn fargate() -> String {
    "FARGATE".into()
}

impl Kind for ServiceKind {
    type Props = ServiceProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ecs.service",
        doc: "An ECS service (Fargate by default) behind target groups, with the deployment circuit breaker; an update waits until its deployment is COMPLETED and reports a FAILED one with the service's events. Outputs: `id` and `arn`, `name`.",
        replace_on: &["cluster", "launch_type"],
        sends: &[
            Sent::aws("cluster", "ecs:CreateServiceRequest.cluster"),
            Sent::aws("task_definition", "ecs:CreateServiceRequest.taskDefinition"),
            Sent::aws("desired_count", "ecs:CreateServiceRequest.desiredCount"),
            Sent::aws("launch_type", "ecs:CreateServiceRequest.launchType"),
            Sent::aws("subnets[]", "ecs:AwsVpcConfiguration.subnets[]"),
            Sent::aws("security_groups[]", "ecs:AwsVpcConfiguration.securityGroups[]"),
            Sent::not("assign_public_ip", "sent as AwsVpcConfiguration.AssignPublicIp (ENABLED or DISABLED)"),
            Sent::aws("load_balancers[].target_group_arn", "ecs:LoadBalancer.targetGroupArn"),
            Sent::aws("load_balancers[].container_name", "ecs:LoadBalancer.containerName"),
            Sent::aws("load_balancers[].container_port", "ecs:LoadBalancer.containerPort"),
            Sent::aws("health_check_grace_period_seconds", "ecs:CreateServiceRequest.healthCheckGracePeriodSeconds"),
            Sent::aws("circuit_breaker", "ecs:DeploymentCircuitBreaker.enable"),
            Sent::aws("minimum_healthy_percent", "ecs:DeploymentConfiguration.minimumHealthyPercent"),
            Sent::aws("maximum_percent", "ecs:DeploymentConfiguration.maximumPercent"),
            Sent::aws("deployment_alarms[]", "ecs:DeploymentAlarms.alarmNames[]"),
            Sent::aws("run_before.command[]", "ecs:ContainerOverride.command[]"),
            Sent::aws("run_before.container", "ecs:ContainerOverride.name"),
        ],
        outputs: &["id", "arn", "name"],
        import_by: crate::kinds::ImportBy::Never("converge finds services through the ownership index, by their tags"),
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &[],
            per_parent: &[("ecs:DescribeServices", "ecs.cluster")],
        },
        tagging_type: Some("ecs:service"),
        write_only: &["run_before"],
        default_wait: std::time::Duration::from_secs(900),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: ServiceProps) -> Result<ServiceProps, PropsError> {
        let err = |path: &str, message: &str| Err(PropsError { path: path.into(), message: message.into() });
        // A cluster is named the same by its name and its ARN.
        p.cluster = name_of(&p.cluster).to_string();
        if !["FARGATE", "EC2"].contains(&p.launch_type.as_str()) {
            return err("launch_type", "`FARGATE` or `EC2`");
        }
        if p.launch_type == "FARGATE" && p.subnets.is_empty() {
            return err("subnets", "Fargate tasks need subnets (their network interfaces go there)");
        }
        if p.desired_count < 0 {
            return err("desired_count", "0 or more");
        }
        if !(0..=100).contains(&p.minimum_healthy_percent) || p.maximum_percent < 100 {
            return err("maximum_percent", "minimum_healthy_percent is 0-100 and maximum_percent at least 100");
        }
        crate::kinds::sort_ids(&mut p.subnets);
        crate::kinds::sort_ids(&mut p.security_groups);
        crate::kinds::sort_ids(&mut p.deployment_alarms);
        p.load_balancers.sort();
        if let Some(r) = &mut p.run_before {
            if r.command.is_empty() {
                return err("run_before.command", "the command to run, e.g. [bin/rails, db:migrate]");
            }
            if r.container.is_none() {
                let Some(b) = p.load_balancers.first() else {
                    return err("run_before.container", "name the container that runs the command");
                };
                r.container = Some(b.container_name.clone());
            }
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        crate::kinds::ecs::check_name(name, "a service name")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // Services live in a cluster: the index's ARNs
        // (`service/CLUSTER/NAME`) say which; 10 a DescribeServices
        // call, tags inline. A spec name the index does not hold has no
        // service yet (its cluster is only known once resolved).
        let targets = scope.targets(aws).await?;
        let arns: Vec<String> = targets.iter().filter_map(|t| t.arn.clone()).collect();
        let mut out = Vec::new();
        for (cluster, names) in services_by_cluster(arns.iter().map(String::as_str)) {
            for chunk in names.chunks(10) {
                for s in describe(aws, &cluster, chunk.to_vec()).await? {
                    let tags = from_ecs_tags(s.tags());
                    if let Some(owner) = scope.owner(&tags, s.service_name()) {
                        out.push(live(owner, &s));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: ServiceProps = Self::props(&d.props)?;
        let mut call = aws
            .ecs
            .create_service()
            .cluster(&p.cluster)
            .service_name(&d.physical_name)
            .task_definition(&p.task_definition)
            .desired_count(p.desired_count)
            .launch_type(LaunchType::from(p.launch_type.as_str()))
            .deployment_configuration(deployment(&p))
            .set_load_balancers(Some(balancers(&p)))
            .set_health_check_grace_period_seconds(p.health_check_grace_period_seconds)
            // ECS copies the service's tags to its tasks.
            .propagate_tags(aws_sdk_ecs::types::PropagateTags::Service)
            .client_token(client_token())
            .set_tags(Some(ecs_tags(&d.tags)));
        if !p.subnets.is_empty() {
            call = call.network_configuration(network(&p)?);
        }
        if let Some(r) = &p.run_before {
            run_before(aws, &p, r, d, None).await?;
        }
        call.send().await.map_err(sdk("ecs:CreateService"))?;
        let s = settle(aws, &p.cluster, &d.physical_name, &p.task_definition, d.timeout).await?;
        Ok(live(d.name.clone(), &s))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: ServiceProps = Self::props(&d.props)?;
        let mut was: ServiceProps = Self::props(&l.props)?;
        // Not AWS's: never a difference of its own.
        was.run_before.clone_from(&p.run_before);
        if let Some(r) = &p.run_before
            && p.task_definition != was.task_definition
        {
            run_before(aws, &p, r, d, Some(&was.task_definition)).await?;
        }
        if was != p {
            // Only what changed: a new load balancer or network
            // configuration starts a deployment of its own on ECS.
            let mut call = aws
                .ecs
                .update_service()
                .cluster(&p.cluster)
                .service(&d.physical_name)
                .task_definition(&p.task_definition)
                .desired_count(p.desired_count);
            if deployment(&p) != deployment(&was) {
                call = call.deployment_configuration(deployment(&p));
            }
            if p.load_balancers != was.load_balancers {
                call = call.set_load_balancers(Some(balancers(&p)));
            }
            if p.health_check_grace_period_seconds != was.health_check_grace_period_seconds {
                call = call.set_health_check_grace_period_seconds(p.health_check_grace_period_seconds);
            }
            let net = |x: &ServiceProps| (x.subnets.clone(), x.security_groups.clone(), x.assign_public_ip);
            if !p.subnets.is_empty() && net(&p) != net(&was) {
                call = call.network_configuration(network(&p)?);
            }
            call.send().await.map_err(sdk("ecs:UpdateService"))?;
        }
        crate::kinds::ecs::sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        let s = settle(aws, &p.cluster, &d.physical_name, &p.task_definition, d.timeout).await?;
        Ok(Live { tags: d.tags.clone(), ..live(d.name.clone(), &s) })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let p: ServiceProps = Self::props(&l.props)?;
        let name = l.outputs.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        // `force` stops the tasks with the service (no scale to 0 first).
        let res = aws
            .ecs
            .delete_service()
            .cluster(&p.cluster)
            .service(&name)
            .force(true)
            .send()
            .await
            .map_err(sdk("ecs:DeleteService"));
        if not_found(res, &["ServiceNotFoundException", "ClusterNotFoundException"])?.is_none() {
            return Ok(());
        }
        // Draining, then INACTIVE: only then can the cluster go.
        poll_until("ecs:DeleteService", "the service to be gone", crate::aws::MAX_WAIT, || async {
            let found = describe(aws, &p.cluster, vec![name.clone()]).await?;
            Ok(match found.first() {
                None => Polled::Ready(()),
                Some(s) => Polled::Waiting(s.status().unwrap_or("DRAINING").to_lowercase()),
            })
        })
        .await
    }
}

/// Runs `r` on `p`'s task definition and waits for it to stop: `Ok` only
/// when the container exited 0. `running` is the revision the service runs
/// now, for the error.
async fn run_before(
    aws: &Aws,
    p: &ServiceProps,
    r: &RunBefore,
    d: &Desired,
    running: Option<&str>,
) -> Result<(), AwsError> {
    let container = r.container.clone().unwrap_or_default();
    let mut call = aws
        .ecs
        .run_task()
        .cluster(&p.cluster)
        .task_definition(&p.task_definition)
        .count(1)
        .launch_type(LaunchType::from(p.launch_type.as_str()))
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder().name(&container).set_command(Some(r.command.clone())).build(),
                )
                .build(),
        )
        .started_by("converge run_before")
        // A retried RunTask (lost response) returns the task the first
        // attempt started instead of starting a second migration.
        .client_token(client_token())
        .set_tags(Some(ecs_tags(&d.tags)));
    if !p.subnets.is_empty() {
        call = call.network_configuration(network(p)?);
    }
    let out = call.send().await.map_err(sdk("ecs:RunTask"))?;
    let unchanged = match running {
        Some(td) => format!("the service still runs {td}; nothing was switched"),
        None => "the service was not created".to_string(),
    };
    let Some(arn) = out.tasks().first().and_then(|t| t.task_arn()).map(str::to_string) else {
        let why: Vec<String> = out
            .failures()
            .iter()
            .map(|f| format!("{} ({})", f.reason().unwrap_or("no reason"), f.detail().unwrap_or_default()))
            .collect();
        return Err(AwsError::other(
            "ecs:RunTask",
            format!("run_before could not start on {}: {}; {unchanged}", p.task_definition, why.join("; ")),
        ));
    };
    let task = poll_until("ecs:DescribeTasks", "run_before's task to stop", d.timeout, || async {
        let out =
            aws.ecs.describe_tasks().cluster(&p.cluster).tasks(&arn).send().await.map_err(sdk("ecs:DescribeTasks"))?;
        Ok(match out.tasks().first() {
            Some(t) if t.last_status() == Some("STOPPED") => Polled::Ready(t.clone()),
            Some(t) => Polled::Waiting(t.last_status().unwrap_or("PROVISIONING").to_lowercase()),
            None => Polled::Waiting("not visible yet".into()),
        })
    })
    .await?;
    let ran = task.containers().iter().find(|c| c.name() == Some(container.as_str()));
    let exit = ran.and_then(|c| c.exit_code());
    if exit == Some(0) {
        return Ok(());
    }
    let code = exit.map_or("no exit code (it never ran)".to_string(), |c| format!("exit code {c}"));
    let stop = match task.stop_code() {
        Some(c) => format!("{} ({})", task.stopped_reason().unwrap_or("no reason given"), c.as_str()),
        None => task.stopped_reason().unwrap_or("no reason given").to_string(),
    };
    let reason = ran.and_then(|c| c.reason()).map(|r| format!("; container: {r}")).unwrap_or_default();
    Err(AwsError::other(
        "ecs:RunTask",
        format!(
            "run_before `{}` failed on {}: container {container} stopped with {code}; task {arn} stopped: {stop}{reason}; {unchanged}",
            r.command.join(" "),
            p.task_definition
        ),
    ))
}

fn deployment(p: &ServiceProps) -> DeploymentConfiguration {
    let watch = !p.deployment_alarms.is_empty();
    // Alarm names, enable and rollback are all required: the builder fails
    // on none of them.
    let alarms = DeploymentAlarms::builder()
        .set_alarm_names(Some(p.deployment_alarms.clone()))
        .enable(watch)
        .rollback(watch)
        .build()
        .ok();
    DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder().enable(p.circuit_breaker).rollback(p.circuit_breaker).build(),
        )
        .minimum_healthy_percent(p.minimum_healthy_percent)
        .maximum_percent(p.maximum_percent)
        .set_alarms(alarms)
        .build()
}

fn balancers(p: &ServiceProps) -> Vec<LoadBalancer> {
    p.load_balancers
        .iter()
        .map(|b| {
            LoadBalancer::builder()
                .target_group_arn(&b.target_group_arn)
                .container_name(&b.container_name)
                .container_port(b.container_port)
                .build()
        })
        .collect()
}

fn network(p: &ServiceProps) -> Result<NetworkConfiguration, AwsError> {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(p.subnets.clone()))
        .set_security_groups(Some(p.security_groups.clone()))
        .assign_public_ip(if p.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
        .build()
        .map_err(|e| AwsError::other("ecs:CreateService", e.to_string()))?;
    Ok(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
}

/// Active (or draining) services among `names` in `cluster`.
async fn describe(aws: &Aws, cluster: &str, names: Vec<String>) -> Result<Vec<Service>, AwsError> {
    let res = aws
        .ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names))
        .include(ServiceField::Tags)
        .send()
        .await
        .map_err(sdk("ecs:DescribeServices"));
    let Some(res) = not_found(res, &["ClusterNotFoundException"])? else { return Ok(Vec::new()) };
    Ok(res.services.unwrap_or_default().into_iter().filter(|s| s.status() != Some("INACTIVE")).collect())
}

/// Waits until the service's PRIMARY deployment runs `task_definition` and
/// is COMPLETED. A FAILED deployment is an error with the latest events.
async fn settle(
    aws: &Aws,
    cluster: &str,
    name: &str,
    task_definition: &str,
    timeout: std::time::Duration,
) -> Result<Service, AwsError> {
    poll_until("ecs:DescribeServices", "the deployment to complete", timeout, || async {
        let found = describe(aws, cluster, vec![name.to_string()]).await?;
        let Some(s) = found.into_iter().next() else {
            return Ok(Polled::Waiting("not visible yet".into()));
        };
        // The deployment of this revision: PRIMARY while it rolls out; when
        // the circuit breaker trips, FAILED (and no longer PRIMARY: ECS
        // rolls back to the last COMPLETED one).
        let ours = |d: &&aws_sdk_ecs::types::Deployment| d.task_definition() == Some(task_definition);
        let deployments = s.deployments();
        let Some(primary) = deployments
            .iter()
            .filter(ours)
            .find(|d| d.status() == Some("PRIMARY"))
            .or_else(|| deployments.iter().find(ours))
        else {
            return Ok(Polled::Waiting("deployment starting".into()));
        };
        use aws_sdk_ecs::types::DeploymentRolloutState as R;
        match primary.rollout_state() {
            Some(R::Completed) if primary.status() == Some("PRIMARY") => Ok(Polled::Ready(s.clone())),
            Some(R::Failed) => {
                let events: Vec<String> =
                    s.events().iter().take(5).filter_map(|e| e.message().map(|m| format!("\n    {m}"))).collect();
                Err(AwsError::other(
                    "ecs:UpdateService",
                    format!(
                        "deployment of {task_definition} FAILED: {}; latest service events:{}",
                        primary.rollout_state_reason().unwrap_or("no reason given"),
                        events.concat()
                    ),
                ))
            }
            _ => {
                Ok(Polled::Waiting(format!("{} of {} tasks running", primary.running_count(), primary.desired_count())))
            }
        }
    })
    .await
}

fn live(name: String, s: &Service) -> Live {
    let arn = s.service_arn().unwrap_or_default().to_string();
    let net = s.network_configuration().and_then(|n| n.awsvpc_configuration());
    let mut subnets = net.map(|n| n.subnets().to_vec()).unwrap_or_default();
    let mut groups = net.map(|n| n.security_groups().to_vec()).unwrap_or_default();
    crate::kinds::sort_ids(&mut subnets);
    crate::kinds::sort_ids(&mut groups);
    let mut lbs: Vec<Balancer> = s
        .load_balancers()
        .iter()
        .map(|b| Balancer {
            target_group_arn: b.target_group_arn().unwrap_or_default().to_string(),
            container_name: b.container_name().unwrap_or_default().to_string(),
            container_port: b.container_port().unwrap_or_default(),
        })
        .collect();
    lbs.sort();
    let config = s.deployment_configuration();
    let breaker = config.and_then(|c| c.deployment_circuit_breaker());
    let props = ServiceProps {
        cluster: name_of(s.cluster_arn().unwrap_or_default()).to_string(),
        task_definition: s.task_definition().unwrap_or_default().to_string(),
        desired_count: s.desired_count(),
        launch_type: s.launch_type().map_or("EC2", |l| l.as_str()).to_string(),
        subnets,
        security_groups: groups,
        assign_public_ip: net.and_then(|n| n.assign_public_ip()) == Some(&AssignPublicIp::Enabled),
        load_balancers: lbs,
        health_check_grace_period_seconds: s.health_check_grace_period_seconds(),
        circuit_breaker: breaker.is_some_and(|b| b.enable()),
        minimum_healthy_percent: config.and_then(|c| c.minimum_healthy_percent()).unwrap_or(100),
        maximum_percent: config.and_then(|c| c.maximum_percent()).unwrap_or(200),
        deployment_alarms: {
            let alarms = config.and_then(|c| c.alarms()).filter(|a| a.enable());
            let mut names = alarms.map(|a| a.alarm_names().to_vec()).unwrap_or_default();
            crate::kinds::sort_ids(&mut names);
            names
        },
        run_before: None,
    };
    let mut value = crate::kinds::to_value(&props);
    // Settings the API did not report are not compared (see `Kind::read`).
    if config.is_none()
        && let Value::Object(m) = &mut value
    {
        for k in ["circuit_breaker", "minimum_healthy_percent", "maximum_percent"] {
            m.remove(k);
        }
    }
    Live::new(name, arn.clone(), &value, from_ecs_tags(s.tags()))
        .output("arn", arn)
        .output("name", s.service_name().unwrap_or_default())
}
