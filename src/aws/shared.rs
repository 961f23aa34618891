//! Reads several kinds need, made once per `live::read`: the ownership
//! index ([`super::owned`]), for every kind that finds its objects through
//! it. Whichever kind asks first reads it; the others wait for that read.
//! One instance lives for one read of live state, so it never outlives a
//! change made by apply.

use tokio::sync::OnceCell;

use super::owned::{OwnedIndex, Tagged};
use super::{Aws, AwsError};

#[derive(Debug, Default)]
pub struct SharedReads {
    stack: String,
    env: String,
    /// The Tagging API types of the kinds read through the index.
    types: Vec<&'static str>,
    owned: OnceCell<OwnedIndex>,
}

impl SharedReads {
    pub fn new(stack: &str, env: &str, types: Vec<&'static str>) -> SharedReads {
        SharedReads { stack: stack.into(), env: env.into(), types, owned: OnceCell::new() }
    }

    /// The stack/env's objects of `resource_type` (one of `types`).
    pub async fn owned(&self, aws: &Aws, resource_type: &str) -> Result<&[Tagged], AwsError> {
        let index = self.owned.get_or_try_init(|| OwnedIndex::read(aws, &self.stack, &self.env, &self.types)).await?;
        Ok(index.of_type(resource_type))
    }
}
