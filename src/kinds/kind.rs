//! The kind contract: what a kind declares ([`Facts`], one table per kind),
//! how it behaves ([`Kind`], typed by its properties), and the object-safe
//! face the engine holds ([`DynKind`], implemented for every [`Kind`]).
//!
//! A kind is a unit struct with one `impl Kind`: its properties' type, its
//! table of facts, and its reads and writes as `async fn`s. Everything the
//! engine asks of a kind in general (its schema, its canonical form, boxing
//! its futures) comes from the blanket implementation of [`DynKind`], so a
//! new kind writes none of it (docs/architecture.md, "Adding a kind").

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Reads, Scope};
use crate::aws::{Aws, AwsError};
use crate::limits::Sent;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a kind is, as data: the facts the planner, the validator, `--stats`,
/// `converge schema` and docs/kinds.md read without calling AWS. One
/// `const` per kind, written as `Facts { type_name: …, ..Facts::DEFAULT }`.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The `type:` name in a spec, e.g. `ec2.vpc`.
    pub type_name: &'static str,
    /// One paragraph for `converge schema` and docs/kinds.md.
    pub doc: &'static str,
    /// Attributes whose change replaces the resource.
    pub replace_on: &'static [&'static str],
    /// Where each property goes in AWS's API, for the offline checks of
    /// [`crate::limits`]: every property of the kind's schema is listed,
    /// as the member it is sent as or with why it is not sent as written
    /// (a unit test holds every kind to that). Naming a new member means
    /// running `scripts/gen-limits`.
    pub sends: &'static [Sent],
    /// Attributes other resources may reference.
    pub outputs: &'static [&'static str],
    /// The output holding the object's name in AWS when that is the
    /// resource's physical name (`name:`) and AWS cannot rename it: a new
    /// `name:` then replaces the object.
    pub physical_name_output: Option<&'static str>,
    /// Outputs an in-place update changes (a launch template's version):
    /// unknown to dependents while the update is only planned.
    pub outputs_changed_by_update: &'static [&'static str],
    /// True for kinds that hold data (databases, caches, file systems,
    /// volumes, buckets): protected by default, so that a plan never
    /// deletes or replaces one unless the spec says `protect: false` and
    /// the command says `--allow-destroy NAME`.
    pub protected: bool,
    /// How an untagged object of this kind is taken over.
    pub import_by: ImportBy,
    /// The AWS calls a read of this kind makes, by how many times: what
    /// `--stats` counts, what docs/safety.md names, and what the call-bound
    /// test checks a plan against.
    pub reads: Reads,
    /// The Resource Groups Tagging API's type of this kind's objects
    /// (`rds:pg`, `s3`) when the kind finds them through the ownership index
    /// ([`Scope::targets`]); `None` for kinds read otherwise (EC2's tag
    /// filters, IAM's path, Auto Scaling's tag filters).
    pub tagging_type: Option<&'static str>,
    /// False for kinds AWS cannot tag: their tags are neither set nor
    /// compared, and their deterministic name is their identity.
    pub taggable: bool,
    /// The most tags the service allows on one of this kind's objects,
    /// converge's own ([`crate::tags::OWN_TAGS`]) included.
    pub max_tags: usize,
    /// Attributes AWS never returns (passwords): set on create and update,
    /// not compared.
    pub write_only: &'static [&'static str],
    /// How long create, update and delete wait for the object to settle,
    /// unless the resource sets `wait_timeout`.
    pub default_wait: Duration,
}

impl Facts {
    /// The facts a kind does not state: nothing replaces it, nothing is
    /// referenced, taggable with AWS's usual 50 tags, read otherwise than
    /// through the ownership index, never imported.
    pub const DEFAULT: Facts = Facts {
        type_name: "",
        doc: "",
        replace_on: &[],
        sends: &[],
        outputs: &[],
        physical_name_output: None,
        outputs_changed_by_update: &[],
        protected: false,
        import_by: ImportBy::Never("converge finds objects of this kind by their tags only"),
        reads: Reads { once: &[], per_object: &[], per_parent: &[] },
        tagging_type: None,
        taggable: true,
        max_tags: crate::tags::MAX_TAGS,
        write_only: &[],
        default_wait: crate::aws::MAX_WAIT,
    };

    /// What an untaggable kind says of import unless it says otherwise.
    pub const UNTAGGABLE: ImportBy =
        ImportBy::Never("AWS cannot tag it: converge already recognises it by its name or key");

    /// The default order of a replace forced by `forcing`: the replacement
    /// is created first, renamed when the kind's names are unique
    /// ([`Facts::physical_name_output`]) and the name is not itself part of
    /// the change. Kinds that hold data, and kinds AWS cannot tag (their
    /// name is their identity), are deleted first.
    pub fn replace_order(&self, forcing: &[&str]) -> ReplaceOrder {
        if self.protected {
            ReplaceOrder::DeleteFirst("it holds data, which its replacement does not get either way")
        } else if !self.taggable {
            ReplaceOrder::DeleteFirst("AWS cannot tag it, so its name is its identity: two cannot exist at once")
        } else if self.physical_name_output.is_some() && !forcing.contains(&"name") {
            ReplaceOrder::CreateFirstRenamed
        } else {
            ReplaceOrder::CreateFirst
        }
    }
}

/// One resource kind, typed by its properties.
///
/// # Guarantees
/// Implementations must make `create` safe to retry after a crash or a lost
/// response: the object is tagged by the create call itself (or carries a
/// deterministic unique name), so a later [`Kind::read`] finds it and the
/// next run adopts it instead of creating a second one. `delete` treats "not
/// found" as success.
pub trait Kind: Send + Sync + 'static {
    /// The `properties:` of a resource of this kind: its JSON Schema is the
    /// kind's schema, and its serialized form the canonical one.
    type Props: Serialize + DeserializeOwned + JsonSchema;
    /// What the kind is, as data.
    const FACTS: &'static Facts;

    /// Checks typed properties beyond their type and returns the canonical
    /// form: defaults filled in, sets sorted, equivalent spellings unified.
    /// Live reads produce the same shape, so the two compare attribute by
    /// attribute.
    fn canonical(&self, props: Self::Props) -> Result<Self::Props, PropsError> {
        Ok(props)
    }
    /// The whole of canonicalization, from the properties as written: for
    /// the kinds whose canonical shape is not their written one (a security
    /// group's rules, flattened one source each); others write
    /// [`Kind::canonical`].
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError> {
        let typed = super::typed::<Self::Props>(props)?;
        Ok(super::to_value(&self.canonical(typed)?))
    }
    /// How a replace forced by `forcing` (the attributes that force it)
    /// proceeds; kinds override [`Facts::replace_order`] where AWS refuses
    /// two objects at once.
    fn replace_order(&self, forcing: &[&str]) -> ReplaceOrder {
        Self::FACTS.replace_order(forcing)
    }
    /// For kinds AWS cannot tag: the key that identifies an object among its
    /// tagged parent's children (e.g. file system + subnet), computed from
    /// canonical properties, desired or live alike. Such objects are read
    /// with an empty resource name and matched to the spec by this key.
    fn natural_key(&self, _props: &Value) -> Option<String> {
        None
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
    fn read(&self, aws: &Aws, scope: &Scope) -> impl Future<Output = Result<Vec<Live>, AwsError>> + Send;
    /// Creates the object, tagged by the create call, and waits until usable.
    fn create(&self, aws: &Aws, desired: &Desired) -> impl Future<Output = Result<Live, AwsError>> + Send;
    /// Brings `live` to `desired` in place (only attributes not in
    /// [`Facts::replace_on`] differ).
    fn update(&self, aws: &Aws, desired: &Desired, live: &Live) -> impl Future<Output = Result<Live, AwsError>> + Send;
    /// Deletes the object; already gone is success. `spec` holds the
    /// resource's properties when it is still in the spec (a destroy or a
    /// replace), so deletion settings such as a final snapshot apply; an
    /// object no longer in the spec gets the safe defaults.
    fn delete(&self, aws: &Aws, live: &Live, spec: Option<&Value>)
    -> impl Future<Output = Result<(), AwsError>> + Send;
    /// After an apply passed `--verify`: marks the object `id` (from the
    /// applied record) as part of the environment's last known good, for
    /// kinds that prune old versions of themselves (ECS task definition
    /// revisions), so that pruning never removes it. Nothing by default.
    fn mark_known_good(&self, _aws: &Aws, _id: &str) -> impl Future<Output = Result<(), AwsError>> + Send {
        async { Ok(()) }
    }

    /// Canonical properties (desired or live) back as [`Kind::Props`]. They
    /// were produced from that type, so failing is a converge bug, reported
    /// as an error of the kind rather than a panic.
    fn props(v: &Value) -> Result<Self::Props, AwsError> {
        super::props(Self::FACTS.type_name, v)
    }
}

/// A kind as the engine holds it: object-safe, futures boxed. Implemented
/// for every [`Kind`]; its static facts are read through the inherent
/// methods of `dyn DynKind` (`kind.type_name()`, `kind.outputs()` …).
pub trait DynKind: Send + Sync + 'static {
    fn facts(&self) -> &'static Facts;
    /// JSON Schema of `properties`.
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema;
    /// Checks `props` against the typed schema and returns the canonical
    /// form ([`Kind::canonical`]).
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError>;
    fn replace_order(&self, forcing: &[&str]) -> ReplaceOrder;
    fn natural_key(&self, props: &Value) -> Option<String>;
    fn check_links<'a>(&self, props: &Value, linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem>;
    fn check_all(&self, members: &[Member<'_>]) -> Vec<(String, LinkProblem)>;
    fn check_physical_name(&self, name: &str) -> Result<(), String>;
    fn read<'a>(&'a self, aws: &'a Aws, scope: &'a Scope) -> BoxFuture<'a, Result<Vec<Live>, AwsError>>;
    fn create<'a>(&'a self, aws: &'a Aws, desired: &'a Desired) -> BoxFuture<'a, Result<Live, AwsError>>;
    fn update<'a>(
        &'a self,
        aws: &'a Aws,
        desired: &'a Desired,
        live: &'a Live,
    ) -> BoxFuture<'a, Result<Live, AwsError>>;
    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        live: &'a Live,
        spec: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<(), AwsError>>;
    fn mark_known_good<'a>(&'a self, aws: &'a Aws, id: &'a str) -> BoxFuture<'a, Result<(), AwsError>>;
}

impl<K: Kind> DynKind for K {
    fn facts(&self) -> &'static Facts {
        K::FACTS
    }
    fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<K::Props>()
    }
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError> {
        Kind::canonicalize(self, props)
    }
    fn replace_order(&self, forcing: &[&str]) -> ReplaceOrder {
        Kind::replace_order(self, forcing)
    }
    fn natural_key(&self, props: &Value) -> Option<String> {
        Kind::natural_key(self, props)
    }
    fn check_links<'a>(&self, props: &Value, linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem> {
        Kind::check_links(self, props, linked)
    }
    fn check_all(&self, members: &[Member<'_>]) -> Vec<(String, LinkProblem)> {
        Kind::check_all(self, members)
    }
    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        Kind::check_physical_name(self, name)
    }
    fn read<'a>(&'a self, aws: &'a Aws, scope: &'a Scope) -> BoxFuture<'a, Result<Vec<Live>, AwsError>> {
        Box::pin(Kind::read(self, aws, scope))
    }
    fn create<'a>(&'a self, aws: &'a Aws, desired: &'a Desired) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(Kind::create(self, aws, desired))
    }
    fn update<'a>(
        &'a self,
        aws: &'a Aws,
        desired: &'a Desired,
        live: &'a Live,
    ) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(Kind::update(self, aws, desired, live))
    }
    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        live: &'a Live,
        spec: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(Kind::delete(self, aws, live, spec))
    }
    fn mark_known_good<'a>(&'a self, aws: &'a Aws, id: &'a str) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(Kind::mark_known_good(self, aws, id))
    }
}

/// The facts of a kind the engine holds, by name.
impl dyn DynKind {
    pub fn type_name(&self) -> &'static str {
        self.facts().type_name
    }
    pub fn doc(&self) -> &'static str {
        self.facts().doc
    }
    pub fn replace_on(&self) -> &'static [&'static str] {
        self.facts().replace_on
    }
    pub fn sends(&self) -> &'static [Sent] {
        self.facts().sends
    }
    pub fn outputs(&self) -> &'static [&'static str] {
        self.facts().outputs
    }
    pub fn physical_name_output(&self) -> Option<&'static str> {
        self.facts().physical_name_output
    }
    pub fn outputs_changed_by_update(&self) -> &'static [&'static str] {
        self.facts().outputs_changed_by_update
    }
    pub fn protected(&self) -> bool {
        self.facts().protected
    }
    pub fn import_by(&self) -> ImportBy {
        self.facts().import_by
    }
    pub fn reads(&self) -> Reads {
        self.facts().reads
    }
    pub fn tagging_type(&self) -> Option<&'static str> {
        self.facts().tagging_type
    }
    pub fn taggable(&self) -> bool {
        self.facts().taggable
    }
    pub fn max_tags(&self) -> usize {
        self.facts().max_tags
    }
    pub fn write_only(&self) -> &'static [&'static str] {
        self.facts().write_only
    }
    pub fn default_wait(&self) -> Duration {
        self.facts().default_wait
    }
}

/// A resource as the spec wants it, fully resolved (no unknown values).
#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub physical_name: String,
    /// Canonical properties, as produced by [`DynKind::canonicalize`].
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

impl Live {
    /// An object as read: its properties in canonical form and its `id`
    /// output, the AWS identifier; [`Live::output`] adds the others.
    pub fn new<P: serde::Serialize>(name: String, id: String, props: &P, tags: BTreeMap<String, String>) -> Live {
        let outputs = [("id".to_string(), Value::from(id.clone()))].into();
        Live { name, id, props: crate::kinds::to_value(props), tags, outputs }
    }

    /// With output `key` (`${resources.NAME.key}`) set to `value`.
    pub fn output(mut self, key: &str, value: impl Into<Value>) -> Live {
        self.outputs.insert(key.to_string(), value.into());
        self
    }
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
pub fn alternate_name(kind: &dyn DynKind, base: &str, current: &str) -> String {
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
