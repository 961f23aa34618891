//! `ecs.task_definition`: an ECS task definition family, whose revisions
//! converge registers.
//!
//! ECS task definitions are immutable: a change registers a new revision.
//! The resource stands for one revision of its family (the physical name):
//! the one converge last made current, marked by the `converge:deployed`
//! tag (milliseconds since the epoch). Before registering, converge looks
//! for an ACTIVE revision of the family that already has the desired
//! definition and takes it again instead (a rollback lands on the very
//! revision the last known good ran, and a register whose response was
//! lost is not repeated).
//!
//! Older revisions beyond `keep_revisions` are deregistered, never the one
//! just made current, nor the one it replaces (which the service runs until
//! its deployment moves), nor the environment's last known good's (an
//! apply that passes `--verify` marks it `converge:known-good`). A
//! rollback goes back to the last known good's spec and finds that
//! revision again by its definition (and were it gone, would register it
//! again): the trap of scripts that deregister the previous revision (ECS
//! refuses to run an INACTIVE one) cannot happen.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, PortMapping, Secret,
    TaskDefinition, TaskDefinitionStatus, TransportProtocol,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};
use crate::kinds::ecs::{ecs_tags, family_revision};
use crate::kinds::{Desired, Facts, Kind, LinkProblem, Linked, Live, PropsError, Scope};
use crate::limits::Sent;
use crate::tags::{TAG_DEPLOYED, TAG_KNOWN_GOOD, Tags};

pub struct TaskDefinitionKind;

/// Properties of `ecs.task_definition`. Its family is the physical name.
/// Every change registers a new revision.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinitionProps {
    /// CPU units for the task (default 256: a quarter vCPU).
    #[serde(default = "crate::kinds::int::<256>")]
    pub cpu: i32,
    /// Memory in MiB (default 512). On Fargate, one of the sizes its CPU
    /// allows.
    #[serde(default = "crate::kinds::int::<512>")]
    pub memory: i32,
    /// `awsvpc` (default; Fargate needs it), `bridge`, `host`.
    #[serde(default = "awsvpc")]
    pub network_mode: String,
    /// `FARGATE` (default) and/or `EC2`.
    #[serde(default = "fargate")]
    pub requires_compatibilities: Vec<String>,
    /// The role ECS uses to pull the image and write logs
    /// (`AmazonECSTaskExecutionRolePolicy`); Fargate needs one to pull from
    /// a private ECR repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// The role the application's own AWS calls use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// The containers, at least one.
    pub containers: Vec<Container>,
    /// ACTIVE revisions to keep, newest first (default 5, at least 2); the
    /// current one and the one it replaced are always kept. Not compared.
    #[serde(default = "five")]
    pub keep_revisions: i32,
}

/// One container of the task.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Container {
    pub name: String,
    /// The image, e.g. `${resources.repo.uri}:${var.image_tag}`.
    pub image: String,
    /// The task stops when this container does (default true).
    #[serde(default = "crate::kinds::yes")]
    pub essential: bool,
    #[serde(default)]
    pub port_mappings: Vec<Port>,
    /// Environment variables: plain values, numbers and booleans as text
    /// (secrets belong in Secrets Manager).
    #[serde(default, deserialize_with = "texts")]
    pub environment: BTreeMap<String, String>,
    /// Environment variables ECS fills from Secrets Manager or SSM
    /// Parameter Store when the task starts: name → the secret's ARN (with
    /// `:KEY::` for one key of a JSON secret) or the parameter's ARN or
    /// name, e.g. `${resources.db_url.arn}`. Only the reference is in the
    /// task definition, plans and logs; ECS reads the value with the task
    /// execution role, which needs `secretsmanager:GetSecretValue` (or
    /// `ssm:GetParameters`) on it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Overrides the image's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// CloudWatch Logs group for the container's output (driver
    /// `awslogs`, stream prefix the container's name): usually a
    /// `logs.log_group` of the stack, `${resources.logs.name}`, so that it
    /// exists before a task starts (the awslogs driver does not create it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub container_port: i32,
    /// `tcp` (default) or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
}

/// A map of scalars, each as text: `PORT: 8080` is `"8080"`, as ECS
/// stores it.
fn texts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(_) | Value::Bool(_) => Ok((k, v.to_string())),
            _ => Err(serde::de::Error::custom(format!("`{k}`: an environment value is text, a number or a boolean"))),
        })
        .collect()
}

fn awsvpc() -> String {
    "awsvpc".into()
}
fn fargate() -> Vec<String> {
    vec!["FARGATE".into()]
}
fn five() -> i32 {
    5
}
fn tcp() -> String {
    "tcp".into()
}

/// The memory sizes (MiB) Fargate allows with `cpu` units.
fn fargate_memory(cpu: i32) -> Option<Vec<i32>> {
    let gib = |from: i32, to: i32, step: i32| (from..=to).step_by(step as usize).map(|g| g * 1024).collect::<Vec<_>>();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => gib(1, 4, 1),
        1024 => gib(2, 8, 1),
        2048 => gib(4, 16, 1),
        4096 => gib(8, 30, 1),
        8192 => gib(16, 60, 4),
        16384 => gib(32, 120, 8),
        _ => return None,
    })
}

impl Kind for TaskDefinitionKind {
    type Props = TaskDefinitionProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ecs.task_definition",
        doc: "An ECS task definition family (Fargate by default); a change registers a revision, an identical ACTIVE revision is taken again instead, old ones beyond `keep_revisions` are deregistered. Outputs: `id` and `arn` (of the current revision), `family`, `revision`.",
        replace_on: &[],
        sends: &[
            Sent::aws("cpu", "ecs:RegisterTaskDefinitionRequest.cpu"),
            Sent::aws("memory", "ecs:RegisterTaskDefinitionRequest.memory"),
            Sent::aws("network_mode", "ecs:RegisterTaskDefinitionRequest.networkMode"),
            Sent::aws("requires_compatibilities[]", "ecs:RegisterTaskDefinitionRequest.requiresCompatibilities[]"),
            Sent::aws("execution_role_arn", "ecs:RegisterTaskDefinitionRequest.executionRoleArn"),
            Sent::aws("task_role_arn", "ecs:RegisterTaskDefinitionRequest.taskRoleArn"),
            Sent::aws("containers", "ecs:RegisterTaskDefinitionRequest.containerDefinitions"),
            Sent::aws("containers[].name", "ecs:ContainerDefinition.name"),
            Sent::aws("containers[].image", "ecs:ContainerDefinition.image"),
            Sent::aws("containers[].essential", "ecs:ContainerDefinition.essential"),
            Sent::aws("containers[].port_mappings[].container_port", "ecs:PortMapping.containerPort"),
            Sent::aws("containers[].port_mappings[].protocol", "ecs:PortMapping.protocol"),
            Sent::not("containers[].environment", "name to value pairs, sent as KeyValuePair entries"),
            Sent::not("containers[].secrets", "name to ARN pairs, sent as Secret entries (name, valueFrom)"),
            Sent::aws("containers[].command[]", "ecs:ContainerDefinition.command[]"),
            Sent::not("containers[].log_group", "sent as the awslogs-group option of the container's LogConfiguration"),
            Sent::not("keep_revisions", "converge's own: how many old revisions it keeps"),
        ],
        outputs: &["id", "arn", "family", "revision"],
        outputs_changed_by_update: &["id", "arn", "revision"],
        import_by: crate::kinds::ImportBy::Never(
            "a task definition's revisions are immutable: converge registers its own",
        ),
        reads: crate::kinds::Reads { once: &[], per_object: &["ecs:DescribeTaskDefinition"], per_parent: &[] },
        tagging_type: Some("ecs:task-definition"),
        write_only: &["keep_revisions"],
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: TaskDefinitionProps) -> Result<TaskDefinitionProps, PropsError> {
        let err = |path: &str, message: String| Err(PropsError { path: path.into(), message });
        p.requires_compatibilities.sort();
        p.requires_compatibilities.dedup();
        for c in &p.requires_compatibilities {
            if !["EC2", "FARGATE", "EXTERNAL"].contains(&c.as_str()) {
                return err("requires_compatibilities", format!("`{c}`: one of `FARGATE`, `EC2`, `EXTERNAL`"));
            }
        }
        if !["awsvpc", "bridge", "host", "none"].contains(&p.network_mode.as_str()) {
            return err("network_mode", "one of `awsvpc`, `bridge`, `host`, `none`".into());
        }
        if p.requires_compatibilities.iter().any(|c| c == "FARGATE") {
            if p.network_mode != "awsvpc" {
                return err("network_mode", "Fargate tasks use `awsvpc`".into());
            }
            match fargate_memory(p.cpu) {
                None => return err("cpu", "Fargate takes 256, 512, 1024, 2048, 4096, 8192 or 16384 CPU units".into()),
                Some(sizes) if !sizes.contains(&p.memory) => {
                    return err(
                        "memory",
                        format!(
                            "Fargate with {} CPU units takes {} to {} MiB ({} sizes)",
                            p.cpu,
                            sizes[0],
                            sizes[sizes.len() - 1],
                            sizes.len()
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        if p.containers.is_empty() {
            return err("containers", "a task definition has at least one container".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in p.containers.iter_mut().enumerate() {
            if !names.insert(c.name.clone()) {
                return err(&format!("containers[{i}].name"), format!("two containers are named `{}`", c.name));
            }
            if c.image.is_empty() {
                return err(&format!("containers[{i}].image"), "an image is required".into());
            }
            for port in &c.port_mappings {
                if !["tcp", "udp"].contains(&port.protocol.as_str()) || !(1..=65535).contains(&port.container_port) {
                    return err(&format!("containers[{i}].port_mappings"), "a port is 1-65535, `tcp` or `udp`".into());
                }
            }
            c.port_mappings.sort();
            c.port_mappings.dedup();
            for (name, from) in &c.secrets {
                let at = format!("containers[{i}].secrets.{name}");
                if c.environment.contains_key(name) {
                    return err(&at, format!("`{name}` is both an environment variable and a secret"));
                }
                if !crate::value::is_unknown_str(from) && secret_source(from).is_none() {
                    return err(
                        &at,
                        format!(
                            "`{from}` is not a Secrets Manager secret's ARN, an SSM parameter's ARN or a parameter name (`/app/db-url`)"
                        ),
                    );
                }
            }
            if !c.secrets.is_empty() && p.execution_role_arn.is_none() {
                return err(
                    &format!("containers[{i}].secrets"),
                    "ECS reads a container's secrets with the task execution role: set `execution_role_arn`".into(),
                );
            }
        }
        if !p.containers.iter().any(|c| c.essential) {
            return err("containers", "at least one container is essential".into());
        }
        if p.keep_revisions < 2 {
            return err("keep_revisions", "at least 2: the current revision and the one it replaces".into());
        }
        Ok(p)
    }

    /// A container's secrets against the execution role, when the role is
    /// the stack's: ECS starts no task whose role cannot read them.
    fn check_links<'a>(&self, props: &Value, linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem> {
        let Some(role) = linked("execution_role_arn").filter(|l| l.kind == "iam.role") else {
            return Vec::new();
        };
        // A managed policy of its own may grant it: not judged.
        const EXECUTION: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
        let managed = role.props.get("managed_policy_arns").and_then(Value::as_array);
        if managed.is_some_and(|m| m.iter().any(|a| a.as_str() != Some(EXECUTION))) {
            return Vec::new();
        }
        let allowed: Vec<String> = role
            .props
            .get("policies")
            .and_then(Value::as_object)
            .map(|p| p.values().flat_map(crate::kinds::iam::allowed_actions).collect())
            .unwrap_or_default();
        let can = |action: &str| allowed.iter().any(|p| crate::kinds::iam::covers(p, action));
        let sources = props.get("containers").and_then(Value::as_array).into_iter().flatten().flat_map(|c| {
            c.get("secrets").and_then(Value::as_object).into_iter().flatten().filter_map(|(_, v)| v.as_str())
        });
        let mut need = std::collections::BTreeSet::new();
        for from in sources {
            match secret_source(from) {
                Some(true) => need.insert("secretsmanager:GetSecretValue"),
                Some(false) => need.insert("ssm:GetParameters"),
                // Not known yet (another resource's ARN): either will do.
                None if can("secretsmanager:GetSecretValue") || can("ssm:GetParameters") => false,
                None => need.insert("secretsmanager:GetSecretValue"),
            };
        }
        need.into_iter()
            .filter(|a| !can(a))
            .map(|action| LinkProblem {
                attr: "execution_role_arn".into(),
                message: format!(
                    "a container reads secrets, but execution role `{}` allows no `{action}`: ECS could not start the task; allow it in one of the role's policies, on the secrets' ARNs",
                    role.name
                ),
                other: Some((role.name.clone(), "policies".into())),
            })
            .collect()
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        crate::kinds::ecs::check_name(name, "a task definition family")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // The index holds every revision (ACTIVE or not) with its tags:
        // per family, the newest `converge:deployed` is the candidate,
        // then the next while a candidate turns out INACTIVE.
        let mut families: BTreeMap<String, Vec<(i64, i32, String)>> = BTreeMap::new();
        let mut unindexed = Vec::new();
        for t in scope.targets(aws).await? {
            match (family_revision(&t.id), &t.tags) {
                (Some((family, rev)), Some(tags)) => {
                    let deployed = tags.get(TAG_DEPLOYED).and_then(|d| d.parse().ok()).unwrap_or(0);
                    families.entry(family.to_string()).or_default().push((deployed, rev, t.id.clone()));
                }
                _ => unindexed.push(t.id),
            }
        }
        let mut candidates: Vec<Vec<String>> = families
            .into_values()
            .map(|mut revs| {
                revs.sort_by(|a, b| b.cmp(a));
                revs.into_iter().map(|(_, _, id)| id).collect()
            })
            .collect();
        candidates.extend(unindexed.into_iter().map(|family| vec![family]));
        let mut out = Vec::new();
        for ids in candidates {
            for id in ids {
                let Some((td, tags)) = crate::kinds::ecs::describe_task_definition(aws, &id).await? else { continue };
                if td.status() != Some(&TaskDefinitionStatus::Active) {
                    continue;
                }
                let family = td.family().unwrap_or_default().to_string();
                if let Some(owner) = scope.owner(&tags, Some(&family)) {
                    out.push(live(owner, &td, tags));
                }
                break;
            }
        }
        Ok(out)
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        register(aws, d, None).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let (_, was) = written(&l.props)?;
        let (_, now) = written(&d.props)?;
        if was == now {
            // Only tags differ: they are set on the current revision.
            crate::kinds::ecs::sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
            return Ok(Live { props: d.props.clone(), tags: d.tags.clone(), ..l.clone() });
        }
        register(aws, d, Some(&l.id)).await
    }

    async fn mark_known_good(&self, aws: &Aws, id: &str) -> Result<(), AwsError> {
        // The mark moves: set on this revision, then taken off the
        // family's others (a crash between leaves two marked, which
        // only keeps one more revision a while).
        let Some((family, _)) = family_revision(id) else { return Ok(()) };
        aws.ecs
            .tag_resource()
            .resource_arn(id)
            .tags(aws_sdk_ecs::types::Tag::builder().key(TAG_KNOWN_GOOD).value("true").build())
            .send()
            .await
            .map_err(sdk("ecs:TagResource"))?;
        // Only this stack and environment's revisions: another's mark in a
        // family of the same name is its own.
        let owner =
            crate::kinds::ecs::describe_task_definition(aws, id).await?.map(|(_, tags)| tags).unwrap_or_default();
        for arn in crate::kinds::ecs::active_revisions(aws, family).await? {
            if arn == id {
                continue;
            }
            let Some((_, tags)) = crate::kinds::ecs::describe_task_definition(aws, &arn).await? else { continue };
            if tags.contains_key(TAG_KNOWN_GOOD) && crate::tags::same_owner(&tags, &owner) {
                aws.ecs
                    .untag_resource()
                    .resource_arn(&arn)
                    .tag_keys(TAG_KNOWN_GOOD)
                    .send()
                    .await
                    .map_err(sdk("ecs:UntagResource"))?;
            }
        }
        Ok(())
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let family = l.outputs.get("family").and_then(Value::as_str).unwrap_or_default();
        crate::kinds::ecs::deregister_family(aws, family, &l.tags).await
    }
}

/// The props as ECS holds them (without `keep_revisions`, which is
/// converge's), and the keep count.
fn written(props: &Value) -> Result<(i32, TaskDefinitionProps), AwsError> {
    let mut p: TaskDefinitionProps = crate::kinds::props("ecs.task_definition", props)?;
    let keep = p.keep_revisions;
    p.keep_revisions = five();
    Ok((keep, p))
}

fn now_ms() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    ms.to_string()
}

/// Makes a revision with `d`'s definition current: an identical ACTIVE
/// revision of this stack's if there is one, else a new one; then prunes.
async fn register(aws: &Aws, d: &Desired, previous: Option<&str>) -> Result<Live, AwsError> {
    let (keep, want) = written(&d.props)?;
    let mut tags = d.tags.clone();
    tags.insert(TAG_DEPLOYED.into(), now_ms());
    let family = &d.physical_name;
    let mut current = None;
    // Newest first, as many as pruning leaves ACTIVE: the newest `keep`,
    // the current and previous ones, and the last known good's.
    for arn in crate::kinds::ecs::active_revisions(aws, family).await?.into_iter().rev().take(keep.max(2) as usize + 3)
    {
        let Some((td, have)) = crate::kinds::ecs::describe_task_definition(aws, &arn).await? else { continue };
        if crate::tags::same_owner(&have, &d.tags) && written(&crate::kinds::to_value(&props_of(&td)))?.1 == want {
            crate::kinds::ecs::sync_tags(aws, &arn, &tags, &have).await?;
            current = Some(td);
            break;
        }
    }
    let td = match current {
        Some(td) => td,
        None => {
            let res = aws
                .ecs
                .register_task_definition()
                .family(family)
                .cpu(want.cpu.to_string())
                .memory(want.memory.to_string())
                .network_mode(NetworkMode::from(want.network_mode.as_str()))
                .set_requires_compatibilities(Some(
                    want.requires_compatibilities.iter().map(|c| Compatibility::from(c.as_str())).collect(),
                ))
                .set_execution_role_arn(want.execution_role_arn.clone())
                .set_task_role_arn(want.task_role_arn.clone())
                .set_container_definitions(Some(
                    want.containers.iter().map(|c| container(c, &aws.region)).collect::<Result<_, _>>()?,
                ))
                .set_tags(Some(ecs_tags(&tags)))
                .send()
                .await
                .map_err(sdk("ecs:RegisterTaskDefinition"))?;
            res.task_definition
                .ok_or_else(|| AwsError::other("ecs:RegisterTaskDefinition", "no task definition in the answer"))?
        }
    };
    let arn = td.task_definition_arn().unwrap_or_default().to_string();
    crate::kinds::ecs::prune_task_definitions(aws, family, keep, &arn, previous, &d.tags).await?;
    Ok(live(d.name.clone(), &td, tags))
}

fn container(c: &Container, region: &str) -> Result<ContainerDefinition, AwsError> {
    let log = match &c.log_group {
        None => None,
        Some(group) => Some(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", group)
                .options("awslogs-region", region)
                .options("awslogs-stream-prefix", &c.name)
                .build()
                .map_err(|e| AwsError::other("ecs:RegisterTaskDefinition", e.to_string()))?,
        ),
    };
    Ok(ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(c.essential)
        .set_port_mappings(Some(
            c.port_mappings
                .iter()
                .map(|p| {
                    PortMapping::builder()
                        .container_port(p.container_port)
                        .protocol(TransportProtocol::from(p.protocol.as_str()))
                        .build()
                })
                .collect(),
        ))
        .set_environment(Some(
            c.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect(),
        ))
        .set_secrets((!c.secrets.is_empty()).then(|| {
            c.secrets.iter().filter_map(|(k, v)| Secret::builder().name(k).value_from(v).build().ok()).collect()
        }))
        .set_command(c.command.clone())
        .set_log_configuration(log)
        .build())
}

/// Where a container secret's value lives, by its `valueFrom`: `Some(true)`
/// Secrets Manager, `Some(false)` SSM Parameter Store.
fn secret_source(from: &str) -> Option<bool> {
    let arn: Vec<&str> = from.splitn(6, ':').collect();
    match arn.as_slice() {
        ["arn", _, "secretsmanager", _, _, rest] if rest.starts_with("secret:") => Some(true),
        ["arn", _, "ssm", _, _, rest] if rest.starts_with("parameter/") => Some(false),
        _ if !from.starts_with("arn:") && !from.is_empty() && !from.contains(char::is_whitespace) => Some(false),
        _ => None,
    }
}

fn props_of(td: &TaskDefinition) -> TaskDefinitionProps {
    let mut compat: Vec<String> = td.requires_compatibilities().iter().map(|c| c.as_str().to_string()).collect();
    compat.sort();
    TaskDefinitionProps {
        cpu: td.cpu().and_then(|c| c.parse().ok()).unwrap_or_default(),
        memory: td.memory().and_then(|m| m.parse().ok()).unwrap_or_default(),
        network_mode: td.network_mode().map_or("bridge", |m| m.as_str()).to_string(),
        requires_compatibilities: compat,
        execution_role_arn: td.execution_role_arn().map(str::to_string),
        task_role_arn: td.task_role_arn().map(str::to_string),
        containers: td
            .container_definitions()
            .iter()
            .map(|c| {
                let mut ports: Vec<Port> = c
                    .port_mappings()
                    .iter()
                    .map(|p| Port {
                        container_port: p.container_port().unwrap_or_default(),
                        protocol: p.protocol().map_or("tcp", |t| t.as_str()).to_string(),
                    })
                    .collect();
                ports.sort();
                Container {
                    name: c.name().unwrap_or_default().to_string(),
                    image: c.image().unwrap_or_default().to_string(),
                    essential: c.essential().unwrap_or(true),
                    port_mappings: ports,
                    environment: c
                        .environment()
                        .iter()
                        .map(|kv| {
                            (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string())
                        })
                        .collect(),
                    secrets: c.secrets().iter().map(|x| (x.name().to_string(), x.value_from().to_string())).collect(),
                    command: (!c.command().is_empty()).then(|| c.command().to_vec()),
                    log_group: c
                        .log_configuration()
                        .filter(|l| l.log_driver() == &LogDriver::Awslogs)
                        .and_then(|l| l.options()?.get("awslogs-group").cloned()),
                }
            })
            .collect(),
        keep_revisions: five(),
    }
}

fn live(name: String, td: &TaskDefinition, tags: Tags) -> Live {
    let arn = td.task_definition_arn().unwrap_or_default().to_string();
    Live::new(name, arn.clone(), &props_of(td), tags)
        .output("arn", arn)
        .output("family", td.family().unwrap_or_default())
        .output("revision", td.revision())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_name_where_ecs_reads_them_and_need_the_execution_role() {
        assert_eq!(secret_source("arn:aws:secretsmanager:eu-west-1:1:secret:db-url-AbCdEf"), Some(true));
        assert_eq!(secret_source("arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf:password::"), Some(true));
        assert_eq!(secret_source("arn:aws:ssm:eu-west-1:1:parameter/app/db"), Some(false));
        assert_eq!(secret_source("/app/db"), Some(false));
        assert_eq!(secret_source("arn:aws:s3:::bucket"), None);
        assert_eq!(secret_source("two words"), None);
        let k = TaskDefinitionKind;
        let with = |secrets: Value, role: bool| {
            let mut p = json!({"containers": [{"name": "app", "image": "x", "secrets": secrets}]});
            if role {
                p["execution_role_arn"] = json!("arn:aws:iam::1:role/exec");
            }
            k.canonicalize(p)
        };
        assert!(with(json!({"API_KEY": "/app/key"}), true).is_ok());
        assert_eq!(with(json!({"API_KEY": "/app/key"}), false).unwrap_err().path, "containers[0].secrets");
        assert_eq!(with(json!({"API_KEY": "arn:aws:s3:::b"}), true).unwrap_err().path, "containers[0].secrets.API_KEY");
    }

    #[test]
    fn fargate_sizes_are_checked() {
        let k = TaskDefinitionKind;
        let base = |cpu: i32, memory: i32| json!({"cpu": cpu, "memory": memory, "containers": [{"name": "app", "image": "x"}]});
        assert!(k.canonicalize(base(256, 512)).is_ok());
        assert!(k.canonicalize(base(1024, 3072)).is_ok());
        assert_eq!(k.canonicalize(base(256, 4096)).unwrap_err().path, "memory");
        assert_eq!(k.canonicalize(base(300, 512)).unwrap_err().path, "cpu");
        let two = json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]});
        assert_eq!(k.canonicalize(two).unwrap_err().path, "containers[1].name");
    }
}
