//! Resource kinds: one module per kind, one trait, one registry.
//!
//! A kind knows its property schema, which attributes force replacement,
//! which outputs other resources may reference, and how to read, create,
//! update and delete its AWS objects. Adding a kind is one new module plus
//! one line in [`REGISTRY`].

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::aws::{Aws, AwsError};

pub mod autoscaling_group;
pub mod autoscaling_policy;
pub mod backup_plan;
pub mod backup_selection;
pub mod backup_vault;
pub mod cloudwatch_alarm;
pub mod ec2_elastic_ip;
pub mod ec2_internet_gateway;
pub mod ec2_launch_template;
pub mod ec2_nat_gateway;
pub mod ec2_route_table;
pub mod ec2_security_group;
pub mod ec2_subnet;
pub mod ec2_volume;
pub mod ec2_vpc;
pub mod ec2_vpc_endpoint;
pub mod ecr_repository;
pub mod ecs_cluster;
pub mod ecs_service;
pub mod ecs_task_definition;
pub mod efs_file_system;
pub mod efs_mount_target;
pub mod elasticache_parameter_group;
pub mod elasticache_replication_group;
pub mod elasticache_subnet_group;
pub mod elbv2_listener;
pub mod elbv2_load_balancer;
pub mod elbv2_target_group;
pub mod iam_instance_profile;
pub mod iam_role;
pub mod logs_log_group;
pub mod rds_db_instance;
pub mod rds_db_parameter_group;
pub mod rds_db_subnet_group;
pub mod reference;
pub mod s3_bucket;
pub mod s3_object;
pub mod secretsmanager_secret;
pub mod sns_topic;

/// Every kind converge knows, in the order `converge schema` documents them.
pub static REGISTRY: &[&dyn Kind] = &[
    &ec2_vpc::Vpc,
    &ec2_subnet::Subnet,
    &ec2_internet_gateway::InternetGatewayKind,
    &ec2_elastic_ip::ElasticIp,
    &ec2_nat_gateway::NatGatewayKind,
    &ec2_route_table::RouteTableKind,
    &ec2_vpc_endpoint::VpcEndpointKind,
    &ec2_security_group::SecurityGroup,
    &s3_bucket::Bucket,
    &iam_role::RoleKind,
    &iam_instance_profile::InstanceProfileKind,
    &secretsmanager_secret::SecretKind,
    &ec2_volume::VolumeKind,
    &rds_db_subnet_group::DbSubnetGroup,
    &rds_db_parameter_group::DbParameterGroup,
    &rds_db_instance::DbInstance,
    &elasticache_subnet_group::CacheSubnetGroup,
    &elasticache_parameter_group::CacheParameterGroupKind,
    &elasticache_replication_group::ReplicationGroupKind,
    &efs_file_system::FileSystem,
    &efs_mount_target::MountTarget,
    &s3_object::Object,
    &elbv2_load_balancer::LoadBalancerKind,
    &elbv2_target_group::TargetGroupKind,
    &elbv2_listener::ListenerKind,
    &ec2_launch_template::LaunchTemplate,
    &autoscaling_group::Group,
    &autoscaling_policy::Policy,
    &logs_log_group::LogGroupKind,
    &sns_topic::TopicKind,
    &cloudwatch_alarm::AlarmKind,
    &backup_vault::VaultKind,
    &backup_plan::PlanKind,
    &backup_selection::SelectionKind,
    &ecr_repository::RepositoryKind,
    &ecs_cluster::ClusterKind,
    &ecs_task_definition::TaskDefinitionKind,
    &ecs_service::ServiceKind,
];

/// Looks a kind up by its `type:` name.
pub fn lookup(type_name: &str) -> Option<&'static dyn Kind> {
    REGISTRY.iter().copied().find(|k| k.type_name() == type_name)
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub use crate::tags::{TAG_ENV, TAG_RESOURCE, TAG_STACK, tag_delta, tag_map};

/// Which stack and environment a read is for, and the resources of this kind
/// the spec names (for kinds identified by physical name).
#[derive(Debug, Clone)]
pub struct Scope {
    pub stack: String,
    pub env: String,
    pub region: String,
    /// physical name → (resource name, `adopt:`), for this kind's resources
    /// in the spec.
    pub names: BTreeMap<String, (String, bool)>,
    /// The kind read (`s3.bucket`).
    pub kind: &'static str,
    /// False for kinds AWS cannot tag: their deterministic name is their
    /// identity.
    pub taggable: bool,
    /// Objects with a spec's physical name that are not this stack/env's,
    /// found during this read.
    pub conflicts: std::sync::Arc<std::sync::Mutex<Vec<Conflict>>>,
    /// Reads shared with other kinds during this one read of live state.
    pub shared: std::sync::Arc<crate::aws::shared::SharedReads>,
    /// [`Kind::tagging_type`] of the kind read.
    pub tagging_type: Option<&'static str>,
    /// The properties of this kind's resources as the spec writes them:
    /// references unresolved (`${resources.config.name}`), secrets masked.
    /// For reads that narrow themselves by what the spec names.
    pub written: Vec<Value>,
}

/// The calls of one kind's read of live state, named `service:Action` (as
/// `--stats` and IAM name them). Besides these, a kind read through the
/// ownership index shares its pages, and describes by name each spec name
/// the index does not hold (none in a converged stack).
#[derive(Debug, Clone, Copy)]
pub struct Reads {
    /// Made once per read, plus their pages: list and batch calls.
    pub once: &'static [&'static str],
    /// Made once for each object of this kind the stack owns: the reads no
    /// batch API covers (an IAM role's `GetRolePolicy` is made once per
    /// inline policy besides).
    pub per_object: &'static [&'static str],
    /// Made once for each object of another kind the stack owns:
    /// `(call, that kind)`, e.g. a load balancer's listeners.
    pub per_parent: &'static [(&'static str, &'static str)],
}

/// An object of the ownership index: its ARN and tags.
pub type Indexed = (String, BTreeMap<String, String>);

/// One object a kind read through the ownership index describes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its id in AWS: what its ARN ends with (a name, `fs-1`), or, for a
    /// spec name the index does not hold, that name.
    pub id: String,
    pub arn: Option<String>,
    /// Its tags, from the index; `None` for a spec name the index does not
    /// hold.
    pub tags: Option<BTreeMap<String, String>>,
}

impl Target {
    /// True for an object the index says this stack/env owns.
    pub fn indexed(&self) -> bool {
        self.tags.is_some()
    }

    /// `(ARN, tags)` of the indexed targets, and the ids of the others.
    pub fn split(targets: Vec<Target>) -> (Vec<Indexed>, Vec<String>) {
        let mut indexed = Vec::new();
        let mut names = Vec::new();
        for t in targets {
            match (t.arn, t.tags) {
                (Some(arn), Some(tags)) => indexed.push((arn, tags)),
                _ => names.push(t.id),
            }
        }
        (indexed, names)
    }

    /// Its tags: the index's, else what `fetch` reads (`None`: gone).
    pub async fn tags_or(
        &self,
        fetch: impl Future<Output = Result<Option<BTreeMap<String, String>>, AwsError>>,
    ) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match &self.tags {
            Some(t) => Ok(Some(t.clone())),
            None => fetch.await,
        }
    }
}

/// Reads in flight at once within one kind's read.
pub const READS: usize = 8;

/// Runs `read` on each target, [`READS`] at a time, and keeps the objects
/// found (in no particular order).
pub async fn read_each<F, Fut>(targets: Vec<Target>, read: F) -> Result<Vec<Live>, AwsError>
where
    F: FnMut(Target) -> Fut,
    Fut: Future<Output = Result<Option<Live>, AwsError>>,
{
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(targets)
        .map(read)
        .buffer_unordered(READS)
        .try_filter_map(|x| async move { Ok(x) })
        .try_collect()
        .await
}

/// An object that has the physical name a resource of the spec wants, and
/// that converge must not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub resource: String,
    pub kind: &'static str,
    pub physical_name: String,
    /// `(stack, env, resource)` of the owner it is tagged for; `None`:
    /// untagged, no converge stack manages it.
    pub owner: Option<(String, String, String)>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Conflict { resource, kind, physical_name, owner } = self;
        match owner {
            Some((stack, env, other)) => write!(
                f,
                "resource `{resource}` ({kind}): `{physical_name}` exists and belongs to stack {stack}, environment {env} (its resource `{other}`); converge never touches another stack's or environment's objects: give `{resource}` another `name:`"
            ),
            None => write!(
                f,
                "resource `{resource}` ({kind}): `{physical_name}` exists and no converge stack manages it; to take it over, set `adopt: true` on `{resource}` (the plan shows the tags it adds), or give it another `name:`"
            ),
        }
    }
}

impl Scope {
    /// What a kind read through the ownership index describes: each object
    /// the index says this stack/env owns (with its tags), then each of the
    /// spec's physical names no such object stands for (an object of
    /// another stack or environment, an untagged one to adopt or refuse, or
    /// none: the kind reads it by name to tell). In a converged stack the
    /// second part is empty, so a read costs a describe per owned object.
    ///
    /// # Errors
    /// The index's read; a kind with no [`Kind::tagging_type`].
    pub async fn targets(&self, aws: &Aws) -> Result<Vec<Target>, AwsError> {
        let Some(ty) = self.tagging_type else {
            return Err(AwsError::other(self.kind, "read through the ownership index without a tagging type"));
        };
        let owned = self.shared.owned(aws, ty).await?;
        let mut targets: Vec<Target> = owned
            .iter()
            .map(|t| Target { id: t.id().to_string(), arn: Some(t.arn.clone()), tags: Some(t.tags.clone()) })
            .collect();
        for (name, (resource, _)) in &self.names {
            let held = owned.iter().any(|t| t.id() == name || t.tags.get(TAG_RESOURCE) == Some(resource));
            if !held {
                targets.push(Target { id: name.clone(), arn: None, tags: None });
            }
        }
        Ok(targets)
    }

    /// The resource name a live object belongs to: its `converge:resource`
    /// tag when it carries this stack/env's tags; for an untaggable kind,
    /// the resource whose deterministic name it has; for an untagged object
    /// with a resource's physical name, that resource if the spec says
    /// `adopt: true`. An object with a resource's physical name that is
    /// tagged for another stack or environment, or untagged without
    /// `adopt:`, is recorded as a [`Conflict`] and never claimed.
    pub fn owner(&self, tags: &BTreeMap<String, String>, physical_name: Option<&str>) -> Option<String> {
        let (stack, env) = (tags.get(TAG_STACK), tags.get(TAG_ENV));
        let ours = stack == Some(&self.stack) && env == Some(&self.env);
        if ours && let Some(r) = tags.get(TAG_RESOURCE) {
            return Some(r.clone());
        }
        let name = physical_name?;
        let (resource, adopt) = self.names.get(name)?;
        if !self.taggable || ours {
            return Some(resource.clone());
        }
        let owner = match (stack, env) {
            (Some(s), Some(e)) => {
                Some((s.clone(), e.clone(), tags.get(TAG_RESOURCE).cloned().unwrap_or_else(|| "?".into())))
            }
            _ if *adopt => return Some(resource.clone()),
            _ => None,
        };
        if let Ok(mut c) = self.conflicts.lock() {
            c.push(Conflict { resource: resource.clone(), kind: self.kind, physical_name: name.to_string(), owner });
        }
        None
    }
}

/// A resource as the spec wants it, fully resolved (no unknown values).
#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub physical_name: String,
    /// Canonical properties, as produced by [`Kind::canonicalize`].
    pub props: Value,
    /// All tags to set, the `converge:` ones included.
    pub tags: BTreeMap<String, String>,
    /// Upper bound on waiting for the object to become usable.
    pub timeout: std::time::Duration,
}

/// A resource as AWS has it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Live {
    /// The spec resource it belongs to.
    pub name: String,
    /// The AWS identifier (vpc-…, sg-…, bucket name).
    pub id: String,
    /// Properties in the same canonical shape as the desired ones.
    pub props: Value,
    pub tags: BTreeMap<String, String>,
    /// Values other resources may reference (`${resources.NAME.ATTR}`).
    pub outputs: BTreeMap<String, Value>,
}

/// A resource another one references, for [`Kind::check_links`].
#[derive(Debug, Clone)]
pub struct Linked<'a> {
    pub name: String,
    pub kind: &'static str,
    pub props: &'a Value,
}

/// One resource of a kind, for [`Kind::check_all`]: its canonical
/// properties (values not known yet as unknowns) and, for each top-level
/// property that is exactly `${resources.NAME.ATTR}`, that resource's name.
#[derive(Debug, Clone)]
pub struct Member<'a> {
    pub name: &'a str,
    pub props: &'a Value,
    pub links: BTreeMap<&'a str, &'a str>,
}

/// What [`Kind::check_links`] found: the property of this resource, the
/// message, and the property of the linked resource it disagrees with.
#[derive(Debug, Clone)]
pub struct LinkProblem {
    pub attr: String,
    pub message: String,
    pub other: Option<(String, String)>,
}

/// Why typed property checking failed: the path inside `properties` and the
/// message.
#[derive(Debug, Clone)]
pub struct PropsError {
    pub path: String,
    pub message: String,
}

/// The order of a replace's two halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "order", content = "why")]
pub enum ReplaceOrder {
    /// The replacement is created first, dependents are moved to it, then
    /// the old object is deleted (`create_before_destroy`).
    CreateFirst,
    /// As [`ReplaceOrder::CreateFirst`], the replacement under the
    /// resource's alternate name ([`alternate_name`]): AWS names of this kind
    /// are unique, so the two cannot share one while both exist.
    CreateFirstRenamed,
    /// The old object is deleted first, for the reason given.
    DeleteFirst(&'static str),
}

/// How an existing object that no stack owns becomes a resource's
/// (`adopt: true`, `converge import`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportBy {
    /// By the resource's physical name: the read sees every object of the
    /// kind and recognises an untagged one by its name.
    Name,
    /// By the EC2 id the command names: the read finds objects by their tags
    /// only, so import tags the object first (`CreateTags`).
    Ec2Id,
    /// Not at all, for the reason given.
    Never(&'static str),
}

/// The other of the two names a name-bound resource's object may have:
/// `base` with `-2` appended (shortened when the kind's naming rules need),
/// or `base` back again. A replacement created first takes the name the
/// old object does not have, so the two never collide.
pub fn alternate_name(kind: &dyn Kind, base: &str, current: &str) -> String {
    if current != base {
        return base.to_string();
    }
    for suffix in ["-2", "-3"] {
        let mut stem: String = base.to_string();
        loop {
            let candidate = format!("{}{suffix}", stem.trim_end_matches(['-', '_', '.']));
            if candidate != base && kind.check_physical_name(&candidate).is_ok() {
                return candidate;
            }
            if stem.pop().is_none() {
                break;
            }
        }
    }
    base.to_string()
}

/// One resource kind.
///
/// # Guarantees
/// Implementations must make `create` safe to retry after a crash or a lost
/// response: the object is tagged by the create call itself (or carries a
/// deterministic unique name), so a later [`Kind::read`] finds it and the
/// next run adopts it instead of creating a second one. `delete` treats "not
/// found" as success.
pub trait Kind: Send + Sync + 'static {
    /// The `type:` name in a spec, e.g. `ec2.vpc`.
    fn type_name(&self) -> &'static str;
    /// One paragraph for `converge schema` and docs/kinds.md.
    fn doc(&self) -> &'static str;
    /// JSON Schema of `properties`.
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;
    /// Checks `props` against the typed schema and returns the canonical
    /// form: defaults filled in, sets sorted, equivalent spellings unified.
    /// Live reads produce the same shape, so the two compare attribute by
    /// attribute.
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError>;
    /// Attributes whose change replaces the resource.
    fn replace_on(&self) -> &'static [&'static str];
    /// Where each property goes in AWS's API, for the offline checks of
    /// [`crate::limits`]: every property of the kind's schema is listed,
    /// as the member it is sent as or with why it is not sent as written
    /// (a unit test holds every kind to that). Naming a new member means
    /// running `scripts/gen-limits`.
    fn sends(&self) -> &'static [crate::limits::Sent];
    /// Attributes other resources may reference.
    fn outputs(&self) -> &'static [&'static str];
    /// The output holding the object's name in AWS when that is the
    /// resource's physical name (`name:`) and AWS cannot rename it: a new
    /// `name:` then replaces the object.
    fn physical_name_output(&self) -> Option<&'static str> {
        None
    }
    /// Outputs an in-place update changes (a launch template's version):
    /// unknown to dependents while the update is only planned.
    fn outputs_changed_by_update(&self) -> &'static [&'static str] {
        &[]
    }
    /// True for kinds that hold data (databases, caches, file systems,
    /// volumes, buckets): protected by default, so that a plan never
    /// deletes or replaces one unless the spec says `protect: false` and
    /// the command says `--allow-destroy NAME`.
    fn stateful(&self) -> bool {
        false
    }
    /// How a replace forced by `forcing` (the attributes that force it)
    /// proceeds. By default the replacement is created first: renamed when
    /// the kind's names are unique ([`Kind::physical_name_output`]) and the
    /// name is not itself part of the change. Kinds that hold data, and kinds
    /// AWS cannot tag (their name is their identity), are deleted first;
    /// kinds override this where AWS refuses two objects at once.
    fn replace_order(&self, forcing: &[&str]) -> ReplaceOrder {
        if self.stateful() {
            ReplaceOrder::DeleteFirst("it holds data, which its replacement does not get either way")
        } else if !self.taggable() {
            ReplaceOrder::DeleteFirst("AWS cannot tag it, so its name is its identity: two cannot exist at once")
        } else if self.physical_name_output().is_some() && !forcing.contains(&"name") {
            ReplaceOrder::CreateFirstRenamed
        } else {
            ReplaceOrder::CreateFirst
        }
    }
    /// How an untagged object of this kind is taken over.
    fn import_by(&self) -> ImportBy {
        if self.taggable() {
            ImportBy::Never("converge finds objects of this kind by their tags only")
        } else {
            ImportBy::Never("AWS cannot tag it: converge already recognises it by its name or key")
        }
    }
    /// The AWS calls a read of this kind makes, by how many times: what
    /// `--stats` counts, what docs/safety.md names, and what the call-bound
    /// test checks a plan against.
    fn reads(&self) -> Reads;
    /// The Resource Groups Tagging API's type of this kind's objects
    /// (`rds:pg`, `s3`) when the kind finds them through the ownership index
    /// ([`Scope::targets`]); `None` for kinds read otherwise (EC2's tag
    /// filters, IAM's path, Auto Scaling's tag filters).
    fn tagging_type(&self) -> Option<&'static str> {
        None
    }
    /// False for kinds AWS cannot tag: their tags are neither set nor compared.
    fn taggable(&self) -> bool {
        true
    }
    /// The most tags the service allows on one of this kind's objects,
    /// converge's own ([`crate::tags::OWN_TAGS`]) included: AWS's usual
    /// [`crate::tags::MAX_TAGS`], unless the service allows fewer.
    fn max_tags(&self) -> usize {
        crate::tags::MAX_TAGS
    }
    /// For kinds AWS cannot tag: the key that identifies an object among its
    /// tagged parent's children (e.g. file system + subnet), computed from
    /// canonical properties, desired or live alike. Such objects are read
    /// with an empty resource name and matched to the spec by this key.
    fn natural_key(&self, _props: &Value) -> Option<String> {
        None
    }
    /// Attributes AWS never returns (passwords): set on create and update,
    /// not compared.
    fn write_only(&self) -> &'static [&'static str] {
        &[]
    }
    /// Offline checks against the resources this one references. `linked`
    /// returns, for a top-level property whose value is exactly
    /// `${resources.NAME.ATTR}`, that resource (its properties canonical,
    /// values not known yet as unknowns). E.g. a DB instance's engine
    /// version against its parameter group's family.
    fn check_links<'a>(&self, _props: &Value, _linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem> {
        Vec::new()
    }
    /// Offline checks across all the stack's resources of this kind (two
    /// subnets of one VPC must not overlap): `(resource, problem)` pairs.
    fn check_all(&self, _members: &[Member<'_>]) -> Vec<(String, LinkProblem)> {
        Vec::new()
    }
    /// Checks a physical name against the service's naming rules.
    fn check_physical_name(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }
    /// Reads every object of this kind that belongs to `scope`, in one
    /// paginated list call where the API allows it. A top-level property the
    /// API does not report is left out of [`Live::props`], and is then not
    /// compared.
    fn read<'a>(&'a self, aws: &'a Aws, scope: &'a Scope) -> BoxFuture<'a, Result<Vec<Live>, AwsError>>;
    /// Creates the object, tagged by the create call, and waits until usable.
    fn create<'a>(&'a self, aws: &'a Aws, desired: &'a Desired) -> BoxFuture<'a, Result<Live, AwsError>>;
    /// Brings `live` to `desired` in place (only attributes not in
    /// [`Kind::replace_on`] differ).
    fn update<'a>(
        &'a self,
        aws: &'a Aws,
        desired: &'a Desired,
        live: &'a Live,
    ) -> BoxFuture<'a, Result<Live, AwsError>>;
    /// Deletes the object; already gone is success. `spec` holds the
    /// resource's properties when it is still in the spec (a destroy or a
    /// replace), so deletion settings such as a final snapshot apply; an
    /// object no longer in the spec gets the safe defaults.
    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        live: &'a Live,
        spec: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
    /// After an apply passed `--verify`: marks the object `id` (from the
    /// applied record) as part of the environment's last known good, for
    /// kinds that prune old versions of themselves (ECS task definition
    /// revisions), so that pruning never removes it. Nothing by default.
    fn mark_known_good<'a>(&'a self, _aws: &'a Aws, _id: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async { Ok(()) })
    }
    /// How long create, update and delete wait for the object to settle,
    /// unless the resource sets `wait_timeout`.
    fn default_wait(&self) -> std::time::Duration {
        crate::aws::MAX_WAIT
    }
}

/// Checks `props` as `P` and serializes it back: the shared core of every
/// kind's [`Kind::canonicalize`].
pub fn typed<P: DeserializeOwned>(props: Value) -> Result<P, PropsError> {
    // Path tracking allocates at every key: only for the error's path.
    if let Ok(p) = P::deserialize(&props) {
        return Ok(p);
    }
    serde_path_to_error::deserialize(props)
        .map_err(|e| PropsError { path: crate::spec::path_string(e.path()), message: e.inner().to_string() })
}

/// Canonical properties (desired or live) back as the kind's typed struct.
/// They were produced from that struct, so failing is a converge bug,
/// reported as an error of the kind rather than a panic.
pub fn props<P: DeserializeOwned>(kind: &'static str, v: &Value) -> Result<P, AwsError> {
    serde_json::from_value(v.clone()).map_err(|e| AwsError::other(kind, format!("unreadable properties: {e}")))
}

pub fn to_value<P: Serialize>(p: &P) -> Value {
    serde_json::to_value(p).expect("kind properties serialize to JSON")
}

pub fn schema_of<P: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<P>()
}

/// What a resource of `kind` may list in `ignore_changes`: its top-level
/// properties, and `tags` where AWS can tag it (`validate` and `converge
/// schema` alike).
pub fn ignorable(kind: &dyn Kind) -> Vec<String> {
    let mut names = property_names(kind);
    if kind.taggable() {
        names.push("tags".into());
    }
    names
}

/// The top-level property names of a kind, from its schema: the
/// attributes a plan compares.
pub fn property_names(kind: &dyn Kind) -> Vec<String> {
    let mut g = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = kind.schema(&mut g).to_value();
    let resolved = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => g.definitions().get(r.trim_start_matches("#/definitions/")).cloned().unwrap_or(Value::Null),
        None => schema,
    };
    resolved.get("properties").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Sorts a set of ids and drops repeats, keeping every unknown one (two
/// subnets not created yet are two subnets).
pub fn sort_ids(ids: &mut Vec<String>) {
    ids.sort();
    let mut seen = std::collections::BTreeSet::new();
    ids.retain(|id| crate::value::is_unknown_str(id) || seen.insert(id.clone()));
}

/// A VPC's or subnet's IPv4 block: AWS takes a /16 to a /28.
pub fn check_block_size(cidr: &str) -> Result<(), PropsError> {
    match cidr.parse::<ipnet::IpNet>() {
        Ok(ipnet::IpNet::V4(n)) if !(16..=28).contains(&n.prefix_len()) => Err(PropsError {
            path: "cidr_block".into(),
            message: format!("`{cidr}`: AWS takes an IPv4 block from /16 (65,536 addresses) to /28 (16)"),
        }),
        Ok(ipnet::IpNet::V6(_)) => {
            Err(PropsError { path: "cidr_block".into(), message: format!("`{cidr}`: the primary block is IPv4") })
        }
        _ => Ok(()),
    }
}

/// A CIDR block: validated when known, passed through while unknown.
pub mod cidr_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &str, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let s = String::deserialize(d)?;
        if crate::value::is_unknown_str(&s) {
            return Ok(s);
        }
        let net: ipnet::IpNet =
            s.parse().map_err(|_| serde::de::Error::custom(format!("`{s}` is not a CIDR block (e.g. 10.0.0.0/16)")))?;
        if net.trunc() != net {
            return Err(serde::de::Error::custom(format!("`{s}` has host bits set; did you mean `{}`?", net.trunc())));
        }
        Ok(net.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_names_its_properties() {
        // Every kind has properties but an elastic IP (an address, no settings).
        for k in super::REGISTRY {
            let names = super::property_names(*k);
            let expected = k.type_name() != "ec2.elastic_ip";
            assert_eq!(!names.is_empty(), expected, "{}: property names from its schema: {names:?}", k.type_name());
        }
        let asg = super::lookup("autoscaling.group").unwrap();
        assert!(super::property_names(asg).contains(&"desired_capacity".to_string()));
    }

    #[test]
    fn tag_delta_never_removes_identity_tags() {
        let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (set, remove) = super::tag_delta(
            &m(&[("Name", "new"), ("owner", "a")]),
            &m(&[("Name", "old"), ("owner", "a"), ("stale", "x"), ("converge:stack", "s")]),
        );
        assert_eq!(set, m(&[("Name", "new")]));
        assert_eq!(remove, ["stale"]);
    }

    #[test]
    fn sort_ids_keeps_unknowns_apart() {
        let u = crate::value::UNKNOWN.to_string();
        let mut ids = vec!["sg-2".to_string(), u.clone(), "sg-1".into(), "sg-2".into(), u.clone()];
        super::sort_ids(&mut ids);
        assert_eq!(ids, [u.clone(), u, "sg-1".into(), "sg-2".into()]);
    }
}
