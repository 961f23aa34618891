//! Reading live state: every kind's read runs concurrently. Kinds the
//! Resource Groups Tagging API covers share one ownership index
//! ([`crate::aws::owned`]) and describe only what it holds; the others list
//! with server-side filters. Either way a read's cost follows the stack,
//! not the account.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::aws::{Aws, AwsError};
use crate::kinds::{DynKind, Live, REGISTRY};
use crate::spec::Stack;

/// Live objects of one stack/env, by kind and resource name. A name with
/// more than one object (left by an older tool, or created by hand with our
/// tags) keeps all of them: the plan deletes the extras.
#[derive(Debug, Default)]
pub struct LiveState {
    pub objects: BTreeMap<(&'static str, String), Vec<Arc<Live>>>,
    /// Objects with a spec's physical name that are not this stack/env's
    /// (see [`crate::kinds::Scope::owner`]): a plan refuses to go on.
    pub conflicts: Vec<crate::kinds::Conflict>,
}

impl LiveState {
    pub fn get(&self, kind: &dyn DynKind, name: &str) -> Option<&Live> {
        self.objects.get(&(kind.type_name(), name.to_string())).and_then(|v| v.first()).map(|l| &**l)
    }

    /// The unnamed object of `kind` with the natural key of `props`.
    pub fn by_key(&self, kind: &dyn DynKind, props: &serde_json::Value) -> Option<&Arc<Live>> {
        let key = kind.natural_key(props)?;
        self.objects
            .get(&(kind.type_name(), String::new()))?
            .iter()
            .find(|o| kind.natural_key(&o.props).as_deref() == Some(key.as_str()))
    }
}

/// Reads every kind in the registry (not only those in the spec: a kind
/// whose last resource was removed from the spec still has objects to
/// delete).
///
/// # Errors
/// The first failed read; nothing is planned from partial state.
pub async fn read(aws: &Aws, stack: &Stack) -> Result<LiveState, AwsError> {
    let types = REGISTRY.iter().filter_map(|k| k.tagging_type()).collect();
    let shared = std::sync::Arc::new(crate::aws::shared::SharedReads::new(&stack.name, &stack.env, types));
    let reads = REGISTRY.iter().map(|kind| {
        let found = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let scope = stack.scope(*kind, shared.clone(), found.clone());
        async move {
            let objects = kind.read(aws, &scope).await?;
            let conflicts = found.lock().map(|c| c.clone()).unwrap_or_default();
            Ok::<_, AwsError>((kind.type_name(), objects, conflicts))
        }
    });
    let mut state = LiveState::default();
    for (kind, objects, conflicts) in futures_util::future::try_join_all(reads).await? {
        for c in conflicts {
            if !state.conflicts.contains(&c) {
                state.conflicts.push(c);
            }
        }
        for o in objects {
            // Stable order among duplicates: the id.
            let slot = state.objects.entry((kind, o.name.clone())).or_default();
            slot.push(Arc::new(o));
            slot.sort_by(|a, b| a.id.cmp(&b.id));
        }
    }
    Ok(state)
}
