//! What one kind's read of live state is for ([`Scope`]), what it costs
//! ([`Reads`]), and how it finds and claims the objects of this stack and
//! environment: through the ownership index ([`Scope::targets`]), by the
//! identity tags ([`Scope::owner`]), a few at a time ([`read_each`]).

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::Value;

use super::{Desired, Live, TAG_ENV, TAG_RESOURCE, TAG_STACK};
use crate::aws::{Aws, AwsError};

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
    /// [`super::Facts::tagging_type`] of the kind read.
    pub tagging_type: Option<&'static str>,
    /// The properties of this kind's resources as the spec writes them:
    /// references unresolved (`${resources.config.name}`), secrets masked.
    /// For reads that narrow themselves by what the spec names.
    pub written: Vec<Value>,
}

/// The calls of one kind's read of live state, named `service:Action` (as
/// `--stats` and IAM name them). Besides these, a kind read through the
/// ownership index shares its pages, and describes by name each spec name
/// the index does not hold; a kind whose names are unique and that lists
/// its objects otherwise (launch templates, IAM, secrets) reads the names
/// its list does not hold the same way ([`Scope::unheld_names`]). In a
/// converged stack there are none.
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

impl Conflict {
    /// Who holds the name, and what to do: the message after the resource.
    fn holder(&self) -> String {
        held(&format!("`{}`", self.physical_name), &self.resource, self.owner.as_ref())
    }
}

/// `(stack, env, resource)` an object's tags give it to; `None`: not
/// tagged for any stack and environment.
fn tagged_owner(tags: &BTreeMap<String, String>) -> Option<(String, String, String)> {
    let (stack, env) = (tags.get(TAG_STACK)?, tags.get(TAG_ENV)?);
    Some((stack.clone(), env.clone(), tags.get(TAG_RESOURCE).cloned().unwrap_or_else(|| "?".into())))
}

/// `object` (how the message names it) exists, held by `owner` (`(stack,
/// env, resource)` it is tagged for; `None`: untagged), where `resource`
/// wants it.
fn held(object: &str, resource: &str, owner: Option<&(String, String, String)>) -> String {
    match owner {
        Some((stack, env, other)) => format!(
            "{object} exists and belongs to stack {stack}, environment {env} (its resource `{other}`); converge never touches another stack's or environment's objects: give `{resource}` another `name:`"
        ),
        None => format!(
            "{object} exists and no converge stack manages it; to take it over, set `adopt: true` on `{resource}` (the plan shows the tags it adds), or give it another `name:`"
        ),
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "resource `{}` ({}): {}", self.resource, self.kind, self.holder())
    }
}

impl Desired {
    /// The rule for an object found by this resource's physical name while
    /// creating it: after a create that met "already exists", or a create
    /// call AWS makes idempotent by name (it hands back what has the name).
    /// The name may be held by what an earlier attempt of this very create
    /// made (its response was lost), or by an object that is not this
    /// resource's: made since the plan read it (by hand, by another run), or
    /// one of this stack's that this run deletes under another key.
    ///
    /// # Guarantees
    /// `Ok` only when `tags`, the found object's, are this resource's own
    /// ([`crate::tags::same_resource`]: its stack, environment and resource,
    /// which only its own create call sets). Otherwise the error says who
    /// holds the name; the caller has not changed the object and must not.
    pub fn take_if_ours(&self, operation: &'static str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
        self.take_if_ours_as(operation, &format!("`{}`", self.physical_name), tags)
    }

    /// [`Desired::take_if_ours`] for an object found by something other than
    /// the physical name (a listener by its port): `object` names it.
    pub fn take_if_ours_as(
        &self,
        operation: &'static str,
        object: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        if crate::tags::same_resource(tags, &self.tags) {
            return Ok(());
        }
        let message = if crate::tags::same_owner(tags, &self.tags) {
            let other = tags.get(TAG_RESOURCE).map_or("?", String::as_str);
            format!(
                "{object} exists and is resource `{other}`'s of this stack and environment; converge never gives one resource's object to another: to move it, say `renamed_from: {other}` on `{}`",
                self.name
            )
        } else {
            held(object, &self.name, tagged_owner(tags).as_ref())
        };
        Err(AwsError::other(operation, message))
    }

    /// The error for an object that holds this resource's physical name with
    /// tags the caller cannot read, and other than this resource's.
    pub fn name_taken(&self, operation: &'static str) -> AwsError {
        let message = format!(
            "`{}` exists with other tags than this resource's; converge never takes an object it did not make: run `converge plan` to see who holds it",
            self.physical_name
        );
        AwsError::other(operation, message)
    }
}

impl Scope {
    /// The spec's physical names of this kind that none of `listed` (what
    /// a kind's list of this stack's objects found, when it lists by
    /// something other than the ownership index) has: each is read by
    /// name, for [`Scope::owner`], given the name, to tell an object of
    /// another stack or environment, an untagged one to adopt or refuse,
    /// or none. In a converged stack there are none.
    pub fn unheld_names<'a>(&self, listed: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let listed: Vec<&str> = listed.into_iter().collect();
        self.names.keys().filter(|n| !listed.contains(&n.as_str())).cloned().collect()
    }

    /// What a kind read through the ownership index describes: each object
    /// the index says this stack/env owns (with its tags), then each of the
    /// spec's physical names no such object stands for (an object of
    /// another stack or environment, an untagged one to adopt or refuse, or
    /// none: the kind reads it by name to tell). In a converged stack the
    /// second part is empty, so a read costs a describe per owned object.
    ///
    /// # Errors
    /// The index's read; a kind with no [`super::Facts::tagging_type`].
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
        let owner = tagged_owner(tags);
        if owner.is_none() && *adopt {
            return Some(resource.clone());
        }
        if let Ok(mut c) = self.conflicts.lock() {
            c.push(Conflict { resource: resource.clone(), kind: self.kind, physical_name: name.to_string(), owner });
        }
        None
    }
}
