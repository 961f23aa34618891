//! The parameter groups and subnet groups that RDS and ElastiCache both
//! have: one implementation of each kind, over the few calls that differ
//! between the two services ([`ParameterApi`], [`SubnetApi`]).
//!
//! Identity: the group's name (the physical name) and the identity tags,
//! set by the create call itself. A retried create that finds the name
//! taken reads the group back and takes it only if it carries this
//! resource's tags; a group of another stack or environment is never
//! changed.

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError};
use crate::kinds::{Desired, Facts, ImportBy, Kind, LinkProblem, Linked, Live, PropsError, Scope, Target};

type Tags = BTreeMap<String, String>;

/// A group as its service describes it.
#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub arn: String,
    pub description: String,
    /// A parameter group's family; empty for a subnet group.
    pub family: String,
    /// A subnet group's subnets; empty for a parameter group.
    pub subnet_ids: Vec<String>,
}

/// The calls both kinds of group make, in one service's words.
pub trait GroupApi: Send + Sync + 'static {
    /// The kind's facts.
    const FACTS: &'static Facts;
    /// Checks a group name against the service's rules.
    fn check_name(name: &str) -> Result<(), String>;
    /// The group of this name; `None` if there is none.
    fn describe(aws: &Aws, name: &str) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;
    /// How the service tags a resource by ARN.
    type Tagging: ArnTagging;
    /// Deletes the group; already gone is success.
    fn delete(aws: &Aws, name: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// How RDS and ElastiCache tag any of their resources: by ARN, with
/// `ListTagsForResource`, `AddTagsToResource` and `RemoveTagsFromResource`.
/// Implemented once per service (`rds::RdsTags`, `elasticache::CacheTags`).
pub trait ArnTagging: Send + Sync + 'static {
    /// The resource's tags; `None` if it is gone.
    fn list_tags(aws: &Aws, arn: &str) -> impl Future<Output = Result<Option<Tags>, AwsError>> + Send;
    fn tag(aws: &Aws, arn: &str, set: Tags) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn untag(aws: &Aws, arn: &str, keys: Vec<String>) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Sets changed tags and removes unwanted ones (never the `converge:`
    /// ones).
    fn sync_tags(
        aws: &Aws,
        arn: &str,
        desired: &Tags,
        live: &Tags,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        crate::tags::sync(desired, live, |set| Self::tag(aws, arn, set), |keys| Self::untag(aws, arn, keys))
    }
}

/// The error of a create that met a group of the same name.
fn already_exists(e: &AwsError) -> bool {
    e.code.contains("AlreadyExists")
}

/// After a create: the group it made, or, when the name was taken (a lost
/// response to a create that happened), the group of that name if it
/// carries this resource's tags ([`Desired::take_if_ours`]).
async fn created<A: GroupApi>(
    aws: &Aws,
    d: &Desired,
    res: Result<Option<Group>, AwsError>,
) -> Result<(Group, Tags), AwsError> {
    match res {
        Ok(Some(g)) => Ok((g, d.tags.clone())),
        Ok(None) => Err(AwsError::other(A::FACTS.type_name, "the create's response has no group")),
        Err(e) if already_exists(&e) => {
            let g = A::describe(aws, &d.physical_name).await?.ok_or_else(|| e.clone())?;
            let tags = A::Tagging::list_tags(aws, &g.arn).await?.unwrap_or_default();
            d.take_if_ours(e.operation, &tags)?;
            Ok((g, tags))
        }
        Err(e) => Err(e),
    }
}

/// One object of the ownership index, if it is still there and this
/// stack's: its owner (resource name), the group, its tags. A kind that
/// takes over an untagged group by its name claims it by that name; others
/// only by their tags.
async fn owned<A: GroupApi>(aws: &Aws, scope: &Scope, t: &Target) -> Result<Option<(String, Group, Tags)>, AwsError> {
    let Some(g) = A::describe(aws, &t.id).await? else { return Ok(None) };
    let Some(tags) = t.tags_or(A::Tagging::list_tags(aws, &g.arn)).await? else { return Ok(None) };
    let by_name = matches!(A::FACTS.import_by, ImportBy::Name);
    Ok(scope.owner(&tags, by_name.then_some(t.id.as_str())).map(|owner| (owner, g, tags)))
}

/// Brings the group's tags to `desired`, never touching `converge:` ones.
async fn sync_tags<A: GroupApi>(aws: &Aws, l: &Live, desired: &Tags) -> Result<(), AwsError> {
    let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
    A::Tagging::sync_tags(aws, arn, desired, &l.tags).await
}

/// A group as read: its `name` and `arn` outputs besides the `id`.
fn group_live<P: serde::Serialize>(name: String, g: &Group, props: &P, tags: Tags) -> Live {
    Live::new(name, g.name.clone(), props, tags).output("name", g.name.clone()).output("arn", g.arn.clone())
}

fn default_description() -> String {
    "Managed by converge".into()
}

/// The check both engines' instances make against the parameter group
/// they name in `attr` (a `group_kind`): its family must be the one their
/// engine version needs (`family_of(engine, version)`), and a version must
/// be given, or the service picks its default and, with it, maybe another
/// family (`unpinned` says what the service then does).
pub fn check_family<'a>(
    props: &Value,
    linked: &dyn Fn(&str) -> Option<Linked<'a>>,
    (attr, group_kind): (&str, &str),
    default_engine: &str,
    family_of: fn(&str, &str) -> Option<String>,
    unpinned: &str,
) -> Vec<LinkProblem> {
    let Some(group) = linked(attr).filter(|l| l.kind == group_kind) else { return Vec::new() };
    let family = group.props.get("family").and_then(Value::as_str);
    let Some(family) = family.filter(|f| !crate::value::is_unknown_str(f)) else { return Vec::new() };
    let engine = props.get("engine").and_then(Value::as_str).unwrap_or(default_engine);
    let other = Some((group.name.clone(), "family".to_string()));
    let problem = |message: String| vec![LinkProblem { attr: "engine_version".into(), message, other: other.clone() }];
    match props.get("engine_version").and_then(Value::as_str) {
        None => {
            problem(format!("no `engine_version`, but parameter group `{}` is for `{family}`: {unpinned}", group.name))
        }
        Some(v) if crate::value::is_unknown_str(v) => Vec::new(),
        Some(v) => match family_of(engine, v) {
            Some(want) if want != family => problem(format!(
                "{engine} {v} needs a parameter group of family `{want}`, but `{}` is `{family}`",
                group.name
            )),
            _ => Vec::new(),
        },
    }
}

// ---- parameter groups ------------------------------------------------------

/// Properties of a parameter group (`rds.db_parameter_group`,
/// `elasticache.parameter_group`). Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterGroupProps {
    /// The engine family, e.g. `postgres16` (RDS), `redis7` (Redis OSS 7.x)
    /// or `valkey8` (ElastiCache). Changing it replaces the group.
    pub family: String,
    /// Changing it replaces the group.
    #[serde(default = "default_description")]
    pub description: String,
    /// Parameters set by the user; the rest keep the engine's defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// A service's parameter group calls.
pub trait ParameterApi: GroupApi {
    /// Creates the group, tagged; `Ok(None)` if the response holds none.
    fn create(
        aws: &Aws,
        name: &str,
        p: &ParameterGroupProps,
        tags: &Tags,
    ) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;
    /// The parameters the user set (`Source=user`), every page.
    fn user_parameters(aws: &Aws, name: &str) -> impl Future<Output = Result<Tags, AwsError>> + Send;
    /// Sets at most [`PARAMETER_BATCH`] parameters.
    fn modify(aws: &Aws, name: &str, set: &[(String, String)]) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Resets at most [`PARAMETER_BATCH`] parameters to the engine's default.
    fn reset(aws: &Aws, name: &str, keys: &[String]) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Both services' Modify/Reset calls take at most 20 parameters.
pub const PARAMETER_BATCH: usize = 20;

/// A parameter group kind of service `A`.
pub struct ParameterGroup<A>(PhantomData<A>);

impl<A> ParameterGroup<A> {
    pub const KIND: Self = ParameterGroup(PhantomData);
}

fn parameter_live(name: String, g: &Group, parameters: Tags, tags: Tags) -> Live {
    let props = ParameterGroupProps { family: g.family.clone(), description: g.description.clone(), parameters };
    group_live(name, g, &props, tags)
}

impl<A: ParameterApi> Kind for ParameterGroup<A> {
    type Props = ParameterGroupProps;
    const FACTS: &'static Facts = A::FACTS;

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        A::check_name(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some((owner, g, tags)) = owned::<A>(aws, scope, &t).await? else { return Ok(None) };
            let parameters = A::user_parameters(aws, &g.name).await?;
            Ok(Some(parameter_live(owner, &g, parameters, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p = Self::props(&d.props)?;
        let res = A::create(aws, &d.physical_name, &p, &d.tags).await;
        let (g, tags) = created::<A>(aws, d, res).await?;
        let existing = A::user_parameters(aws, &d.physical_name).await?;
        let l = parameter_live(d.name.clone(), &g, existing, tags);
        self.update(aws, d, &l).await
    }

    /// Sets the parameters that differ and resets the ones no longer
    /// given, in batches; they apply as each service applies them (RDS:
    /// at the next reboot).
    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p = Self::props(&d.props)?;
        let was = Self::props(&l.props)?;
        let set: Vec<(String, String)> = p
            .parameters
            .iter()
            .filter(|(k, v)| was.parameters.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for chunk in set.chunks(PARAMETER_BATCH) {
            A::modify(aws, &l.id, chunk).await?;
        }
        let reset: Vec<String> = was.parameters.keys().filter(|k| !p.parameters.contains_key(*k)).cloned().collect();
        for chunk in reset.chunks(PARAMETER_BATCH) {
            A::reset(aws, &l.id, chunk).await?;
        }
        sync_tags::<A>(aws, l, &d.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        A::delete(aws, &l.id).await
    }
}

// ---- subnet groups ---------------------------------------------------------

/// Properties of a subnet group (`rds.db_subnet_group`,
/// `elasticache.subnet_group`). Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetGroupProps {
    #[serde(default = "default_description")]
    pub description: String,
    /// The subnets (RDS: in at least two availability zones).
    pub subnet_ids: Vec<String>,
}

/// A service's subnet group calls.
pub trait SubnetApi: GroupApi {
    /// The fewest subnets the service takes, and what it says of fewer.
    const MIN_SUBNETS: (usize, &'static str);
    /// Creates the group, tagged; `Ok(None)` if the response holds none.
    fn create(
        aws: &Aws,
        name: &str,
        p: &SubnetGroupProps,
        tags: &Tags,
    ) -> impl Future<Output = Result<Option<Group>, AwsError>> + Send;
    /// Sets the group's description and subnets.
    fn modify(aws: &Aws, name: &str, p: &SubnetGroupProps) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// A subnet group kind of service `A`.
pub struct SubnetGroup<A>(PhantomData<A>);

impl<A> SubnetGroup<A> {
    pub const KIND: Self = SubnetGroup(PhantomData);
}

fn subnet_live(name: String, mut g: Group, tags: Tags) -> Live {
    g.subnet_ids.sort();
    let props = SubnetGroupProps { description: g.description.clone(), subnet_ids: g.subnet_ids.clone() };
    group_live(name, &g, &props, tags)
}

impl<A: SubnetApi> Kind for SubnetGroup<A> {
    type Props = SubnetGroupProps;
    const FACTS: &'static Facts = A::FACTS;

    fn canonical(&self, mut p: SubnetGroupProps) -> Result<SubnetGroupProps, PropsError> {
        crate::kinds::sort_ids(&mut p.subnet_ids);
        let (min, message) = A::MIN_SUBNETS;
        if p.subnet_ids.len() < min {
            return Err(PropsError { path: "subnet_ids".into(), message: message.into() });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        A::check_name(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some((owner, g, tags)) = owned::<A>(aws, scope, &t).await? else { return Ok(None) };
            Ok(Some(subnet_live(owner, g, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p = Self::props(&d.props)?;
        let res = A::create(aws, &d.physical_name, &p, &d.tags).await;
        let (g, tags) = created::<A>(aws, d, res).await?;
        let l = subnet_live(d.name.clone(), g, tags);
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p = Self::props(&d.props)?;
        if d.props != l.props {
            A::modify(aws, &l.id, &p).await?;
        }
        sync_tags::<A>(aws, l, &d.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        A::delete(aws, &l.id).await
    }
}
