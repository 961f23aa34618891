//! converge's identity tags: the rule both the kinds and the AWS transport
//! under them use to tell whose an object is. Every object converge
//! creates carries these, set by its create call.

use std::collections::BTreeMap;

/// The stack the object belongs to.
pub const TAG_STACK: &str = "converge:stack";
/// The environment of that stack.
pub const TAG_ENV: &str = "converge:env";
/// The spec's resource name for the object.
pub const TAG_RESOURCE: &str = "converge:resource";

/// The commit of the run that last created or changed the object (set with
/// `converge:applied`, never compared).
pub const TAG_COMMIT: &str = "converge:commit";

/// When converge made an ECS task definition revision the one its
/// resource stands for (milliseconds since the epoch): registered, or an
/// identical older revision taken again (a rollback). The newest such
/// revision is the resource's live object.
pub const TAG_DEPLOYED: &str = "converge:deployed";

/// On the object a kind would otherwise prune (an ECS task definition
/// revision) when it is part of its environment's last known good: an
/// apply that passed `--verify` made it. Moved to the next one verified.
pub const TAG_KNOWN_GOOD: &str = "converge:known-good";

/// On an object built from a backup (an RDS instance restored from a
/// snapshot or to a point in time): how, set by the restore call itself
/// (`snapshot:ID`, `time:SOURCE@TIME`). Not compared as a tag: the kind
/// reads it back as the restore settings, which are.
pub const TAG_RESTORED_FROM: &str = "converge:restored-from";

/// The most tags one object may have in most services (EC2, RDS,
/// ElastiCache, ELB, IAM, ECS, Secrets Manager, S3 buckets: AWS's tagging
/// best practices, "maximum number of tags per resource: 50").
pub const MAX_TAGS: usize = 50;

/// The tags converge adds to the spec's on every object it creates: its
/// name (unless the spec sets `Name`), the identity tags, the applied
/// digest and the commit (in CI, always).
pub const OWN_TAGS: [&str; 6] = ["Name", TAG_STACK, TAG_ENV, TAG_RESOURCE, crate::digest::TAG_APPLIED, TAG_COMMIT];

/// Tags converge writes that record a run or how an object was built, not
/// the spec: never compared with the spec's tags, never removed.
pub const RUN_TAGS: [&str; 5] =
    [crate::digest::TAG_APPLIED, TAG_COMMIT, TAG_DEPLOYED, TAG_KNOWN_GOOD, TAG_RESTORED_FROM];

pub type Tags = BTreeMap<String, String>;

/// True when `tags` name this stack and environment.
pub fn is_of(tags: &Tags, stack: &str, env: &str) -> bool {
    tags.get(TAG_STACK).is_some_and(|s| s == stack) && tags.get(TAG_ENV).is_some_and(|e| e == env)
}

/// True when `tags` name the same stack and environment as `desired`'s
/// (an object found after a create whose response was lost is taken only
/// then).
pub fn same_owner(tags: &Tags, desired: &Tags) -> bool {
    [TAG_STACK, TAG_ENV].iter().all(|k| tags.get(*k) == desired.get(*k))
}

/// True when `tags` are this very resource's: its stack, environment and
/// resource name. An object found by its name after a create whose
/// response was lost is taken only then.
pub fn same_resource(tags: &Tags, desired: &Tags) -> bool {
    same_owner(tags, desired) && tags.get(TAG_RESOURCE) == desired.get(TAG_RESOURCE)
}

/// Tag set from `(key, value)` pairs, AWS's own `aws:` tags left out.
pub fn tag_map<I: IntoIterator<Item = (Option<String>, Option<String>)>>(tags: I) -> Tags {
    tags.into_iter()
        .filter_map(|(k, v)| Some((k?, v.unwrap_or_default())))
        .filter(|(k, _)| !k.starts_with("aws:"))
        .collect()
}

/// What to change to bring `live` tags to `desired`: tags to set (new or
/// changed values) and keys to remove. `converge:` tags are identity and are
/// never removed.
pub fn tag_delta(desired: &Tags, live: &Tags) -> (Tags, Vec<String>) {
    let set = desired.iter().filter(|(k, v)| live.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let remove = live.keys().filter(|k| !desired.contains_key(*k) && !k.starts_with("converge:")).cloned().collect();
    (set, remove)
}

/// Brings an object's tags from `live` to `desired` with the service's two
/// calls: `set` (new or changed values) and `remove` (keys), each made only
/// when it has something to do. `converge:` tags are never removed (see
/// [`tag_delta`]).
///
/// # Errors
/// The first call's that fails.
pub async fn sync<E, S, SF, R, RF>(desired: &Tags, live: &Tags, set: S, remove: R) -> Result<(), E>
where
    S: FnOnce(Tags) -> SF,
    SF: std::future::Future<Output = Result<(), E>>,
    R: FnOnce(Vec<String>) -> RF,
    RF: std::future::Future<Output = Result<(), E>>,
{
    let (to_set, to_remove) = tag_delta(desired, live);
    if !to_set.is_empty() {
        set(to_set).await?;
    }
    if !to_remove.is_empty() {
        remove(to_remove).await?;
    }
    Ok(())
}
