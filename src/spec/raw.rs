//! The stack file as written: serde structs that reject unknown fields.
//! Nothing here is checked beyond YAML types; see [`super::resolve`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::strict;

/// A stack file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    /// The stack's name: part of every resource's identity tags and default
    /// physical names.
    #[serde(deserialize_with = "strict::text")]
    pub stack: String,
    /// AWS region; `--region` overrides it, an environment may set its own.
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub region: Option<String>,
    /// Tags set on every resource of the stack.
    #[serde(default, deserialize_with = "strict::text_map")]
    pub tags: BTreeMap<String, String>,
    /// Variables, referenced as `${var.NAME}`.
    #[serde(default, deserialize_with = "strict::value_map")]
    pub variables: BTreeMap<String, Value>,
    /// Environments (`staging`, `production` …) that override variables.
    /// When present, `--env` is required.
    #[serde(default, deserialize_with = "strict::map")]
    pub environments: BTreeMap<String, RawEnvironment>,
    /// Where converge keeps this stack's locks: an S3 bucket you create
    /// once (shared by every CI runner and laptop); without it,
    /// `.converge/` beside the stack file.
    #[serde(default)]
    pub state: Option<RawState>,
    /// The resources, by name.
    #[serde(deserialize_with = "strict::map")]
    pub resources: BTreeMap<String, RawResource>,
    /// Values the stack publishes after each apply (a load balancer's DNS
    /// name, the GitLab URL): shown after apply, kept in the stack's state
    /// home, read by `converge output` and by other stacks as
    /// `${stack.NAME.outputs.OUTPUT}`.
    #[serde(default, deserialize_with = "strict::map")]
    pub outputs: BTreeMap<String, RawOutput>,
    /// Read-only lookups of objects the stack does not manage (Terraform's
    /// data sources), made before each plan and read as
    /// `${lookups.NAME.ATTR}`: `ec2.ami` (the newest of a name), `ec2.vpc`
    /// and `ec2.subnets` (by tags).
    #[serde(default, deserialize_with = "strict::map")]
    pub lookups: BTreeMap<String, RawLookup>,
    /// What `converge apply` watches after a deploy before it makes the
    /// deploy the last known good (`--verify-alarms` adds to it).
    #[serde(default)]
    pub verify: Option<RawVerify>,
}

/// `verify:`: the stack's deploy gate. Both fields may use variables
/// (`${var.verify_alarms}`), so that an environment can set its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// The stack's own `cloudwatch.alarm` resources, by resource name: any
    /// that goes to ALARM during the window rolls the deploy back to the
    /// last known good. Empty: no alarm gate.
    #[serde(default)]
    pub alarms: Option<Value>,
    /// How long to watch them after the apply (`10m`, the default;
    /// `--verify-window` overrides it).
    #[serde(default)]
    pub window: Option<Value>,
}

/// One of `lookups:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    /// `ec2.ami`, `ec2.vpc`, `ec2.subnets`, `ssm.parameter`,
    /// `acm.certificate` or `route53.zone`.
    #[serde(rename = "type", deserialize_with = "strict::text")]
    pub kind: String,
    /// `ec2.ami`: the accounts that may own it (ids, `self`, `amazon`).
    #[serde(default, deserialize_with = "strict::texts")]
    pub owners: Vec<String>,
    /// `ec2.ami`: its name, `*` for any run of characters
    /// (`gitlab-ee-${var.gitlab_version}-*`); `ssm.parameter`: the
    /// parameter's name; `route53.zone`: the zone's domain.
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub name: Option<String>,
    /// `ec2.vpc`, `ec2.subnets`: tags the object carries, all of them.
    #[serde(default, deserialize_with = "strict::text_map")]
    pub tags: BTreeMap<String, String>,
    /// `acm.certificate`: the certificate's domain name.
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub domain: Option<String>,
    /// `acm.certificate`: of several issued for the domain, take the latest
    /// (default false: several are an error).
    #[serde(default)]
    pub most_recent: Option<bool>,
    /// `route53.zone`: a private hosted zone (default false: public).
    #[serde(default)]
    pub private: Option<bool>,
    /// A value to use instead, usually a variable (`${var.gitlab_ami}`):
    /// when it is not empty the lookup is not made and it stands for the
    /// lookup's `id` (`value` of a parameter, `arn` of a certificate).
    #[serde(default, rename = "override", deserialize_with = "strict::opt_text")]
    pub override_id: Option<String>,
}

/// One of `outputs:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// An expression over resources' outputs and variables
    /// (`${resources.alb.dns_name}`, `https://${var.host}`).
    pub value: Value,
    /// Never shown unless asked (`converge output NAME --show-sensitive`),
    /// never kept in the state home: `converge output` reads it again. A
    /// value that uses `${env.…}` must say `sensitive: true`.
    #[serde(default)]
    pub sensitive: bool,
    /// What it is, for `converge output` and the reader.
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub description: Option<String>,
}

/// `state:`: the stack's state bucket.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// An existing bucket (converge does not manage it), in the stack's
    /// region.
    #[serde(deserialize_with = "strict::text")]
    pub bucket: String,
    /// Key prefix inside it (default `converge/`).
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub prefix: Option<String>,
}

/// One environment's overrides.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub region: Option<String>,
    /// Overrides of variables declared at the top level.
    #[serde(default, deserialize_with = "strict::value_map")]
    pub variables: BTreeMap<String, Value>,
    /// Extra tags for this environment's resources.
    #[serde(default, deserialize_with = "strict::text_map")]
    pub tags: BTreeMap<String, String>,
}

/// One resource.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResource {
    /// The resource kind, e.g. `ec2.vpc` (`converge schema` lists them).
    #[serde(rename = "type", deserialize_with = "strict::text")]
    pub kind: String,
    /// Physical name (security group name, bucket name …); defaults to
    /// `<stack>-<env>-<resource>`.
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub name: Option<String>,
    /// The kind's properties. Strings may hold `${...}` references.
    #[serde(default, deserialize_with = "strict::object")]
    pub properties: serde_json::Map<String, Value>,
    /// Resources this one must come after, beyond those it references.
    #[serde(default, deserialize_with = "strict::texts")]
    pub depends_on: Vec<String>,
    /// Tags for this resource.
    #[serde(default, deserialize_with = "strict::text_map")]
    pub tags: BTreeMap<String, String>,
    /// Whether a plan may delete or replace the object: `true` by default
    /// for kinds that hold data, `false` otherwise; or a boolean variable.
    /// Deleting a protected object needs `protect: false` here and
    /// `--allow-destroy NAME` on the command line.
    #[serde(default, deserialize_with = "strict::opt_value")]
    pub protect: Option<Value>,
    /// Take over an existing, untagged object with this resource's
    /// physical name (made by hand or by another tool): the plan shows the
    /// tags it adds. Never an object tagged for another stack or
    /// environment.
    #[serde(default)]
    pub adopt: bool,
    /// Whether the resource exists in this environment: `true` (default),
    /// `false`, or a boolean variable (`${var.nat_per_az}`). A disabled
    /// resource is not planned, and referencing it is an error.
    #[serde(default, deserialize_with = "strict::opt_value")]
    pub enabled: Option<Value>,
    /// Longest wait for the resource to become available or go away, e.g.
    /// `45m`, `90s`, `2h` (default: the kind's).
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub wait_timeout: Option<String>,
    /// Properties (or `tags`) set on create and then left to whatever
    /// changes them on purpose (an Auto Scaling group's `desired_capacity`
    /// moved by its scaling policies): never planned as changes, never
    /// drift, never reset by an update of the resource's other properties
    /// (Terraform's `lifecycle.ignore_changes`).
    #[serde(default, deserialize_with = "strict::texts")]
    pub ignore_changes: Vec<String>,
    /// The resource's key before a rename (Terraform's `moved`): its object,
    /// tagged with the old key, becomes this resource's, retagged in place
    /// instead of deleted and created again. Harmless to keep or remove
    /// once applied.
    #[serde(default, deserialize_with = "strict::opt_text")]
    pub renamed_from: Option<String>,
}
