//! `elasticache.parameter_group`: Redis/Valkey engine parameters (GitLab
//! wants `maxmemory-policy: noeviction`).

use std::collections::BTreeMap;

use aws_sdk_elasticache::types::{CacheParameterGroup, ParameterNameValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::elasticache::{list_tags, sync_tags, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, Scope};
use crate::limits::Sent;

pub struct ParameterGroupKind;

/// Properties of `elasticache.parameter_group`. Its name is the physical
/// name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterGroupProps {
    /// e.g. `redis7` (Redis OSS 7.x), `valkey8`. Changing it replaces the
    /// group.
    pub family: String,
    /// Changing it replaces the group.
    #[serde(default = "default_description")]
    pub description: String,
    /// Parameters set by the user; the rest keep the engine's defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

fn default_description() -> String {
    "Managed by converge".into()
}

/// ModifyCacheParameterGroup and ResetCacheParameterGroup take at most 20.
const BATCH: usize = 20;

impl Kind for ParameterGroupKind {
    type Props = ParameterGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "elasticache.parameter_group",
        doc: "An ElastiCache parameter group (Redis OSS or Valkey). Outputs: `id`, `name`, `arn`.",
        replace_on: &["family", "description"],
        sends: &[
            Sent::aws("family", "elasticache:CreateCacheParameterGroupMessage.CacheParameterGroupFamily"),
            Sent::aws("description", "elasticache:CreateCacheParameterGroupMessage.Description"),
            Sent::not(
                "parameters",
                "name to value pairs, sent as ParameterNameValue entries that ElastiCache checks against the family",
            ),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["elasticache:DescribeCacheParameterGroups", "elasticache:DescribeCacheParameters"],
            per_parent: &[],
        },
        tagging_type: Some("elasticache:parametergroup"),
        ..Facts::DEFAULT
    };
    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        crate::aws::check_lowercase_id(name, 255, "a cache parameter group name")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some(g) = describe(aws, &t.id).await? else { return Ok(None) };
            let Some(tags) = t.tags_or(list_tags(aws, g.arn().unwrap_or_default())).await? else {
                return Ok(None);
            };
            let Some(owner) = scope.owner(&tags, None) else { return Ok(None) };
            let parameters = user_parameters(aws, &t.id).await?;
            Ok(Some(live(owner, &g, parameters, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: ParameterGroupProps = parse(&d.props)?;
        let res = aws
            .elasticache
            .create_cache_parameter_group()
            .cache_parameter_group_name(&d.physical_name)
            .cache_parameter_group_family(&p.family)
            .description(&p.description)
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elasticache:CreateCacheParameterGroup", e));
        let g = match res {
            Ok(out) => out
                .cache_parameter_group
                .ok_or_else(|| AwsError::other("elasticache:CreateCacheParameterGroup", "response has no group"))?,
            // A lost response to a create that happened: read it back,
            // and only if it is ours.
            Err(e) if e.code.starts_with("CacheParameterGroupAlreadyExists") => {
                let g = describe(aws, &d.physical_name).await?.ok_or(e.clone())?;
                let tags = list_tags(aws, g.arn().unwrap_or_default()).await?.unwrap_or_default();
                if tags.get(crate::kinds::TAG_STACK) != d.tags.get(crate::kinds::TAG_STACK)
                    || tags.get(crate::kinds::TAG_ENV) != d.tags.get(crate::kinds::TAG_ENV)
                {
                    return Err(e);
                }
                g
            }
            Err(e) => return Err(e),
        };
        let existing = user_parameters(aws, &d.physical_name).await?;
        let l = live(d.name.clone(), &g, existing, d.tags.clone());
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: ParameterGroupProps = parse(&d.props)?;
        let was: ParameterGroupProps = parse(&l.props)?;
        let set: Vec<ParameterNameValue> = p
            .parameters
            .iter()
            .filter(|(k, v)| was.parameters.get(*k) != Some(*v))
            .map(|(k, v)| ParameterNameValue::builder().parameter_name(k).parameter_value(v).build())
            .collect();
        for chunk in set.chunks(BATCH) {
            aws.elasticache
                .modify_cache_parameter_group()
                .cache_parameter_group_name(&l.id)
                .set_parameter_name_values(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("elasticache:ModifyCacheParameterGroup", e))?;
        }
        let reset: Vec<ParameterNameValue> = was
            .parameters
            .keys()
            .filter(|k| !p.parameters.contains_key(*k))
            .map(|k| ParameterNameValue::builder().parameter_name(k).build())
            .collect();
        for chunk in reset.chunks(BATCH) {
            aws.elasticache
                .reset_cache_parameter_group()
                .cache_parameter_group_name(&l.id)
                .set_parameter_name_values(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("elasticache:ResetCacheParameterGroup", e))?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
        sync_tags(aws, arn, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .elasticache
            .delete_cache_parameter_group()
            .cache_parameter_group_name(&l.id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elasticache:DeleteCacheParameterGroup", e));
        not_found(res, &["CacheParameterGroupNotFound", "CacheParameterGroupNotFoundFault"]).map(|_| ())
    }
}

fn parse(v: &Value) -> Result<ParameterGroupProps, AwsError> {
    crate::kinds::props("elasticache.parameter_group", v)
}

/// Parameters the user set (`Source=user`), paginated.
/// One group by name; `None` if there is none.
async fn describe(aws: &Aws, name: &str) -> Result<Option<CacheParameterGroup>, AwsError> {
    let res = aws
        .elasticache
        .describe_cache_parameter_groups()
        .cache_parameter_group_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elasticache:DescribeCacheParameterGroups", e));
    let found = not_found(res, &["CacheParameterGroupNotFound", "CacheParameterGroupNotFoundFault"])?;
    Ok(found.and_then(|out| out.cache_parameter_groups?.into_iter().next()))
}

async fn user_parameters(aws: &Aws, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let params: Vec<aws_sdk_elasticache::types::Parameter> = aws
        .elasticache
        .describe_cache_parameters()
        .cache_parameter_group_name(name)
        .source("user")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("elasticache:DescribeCacheParameters", e))?;
    Ok(params.into_iter().filter_map(|p| Some((p.parameter_name?, p.parameter_value.unwrap_or_default()))).collect())
}

fn live(
    name: String,
    g: &CacheParameterGroup,
    parameters: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> Live {
    let id = g.cache_parameter_group_name.clone().unwrap_or_default();
    let props = ParameterGroupProps {
        family: g.cache_parameter_group_family.clone().unwrap_or_default(),
        description: g.description.clone().unwrap_or_default(),
        parameters,
    };
    let outputs = [
        ("id".to_string(), Value::from(id.clone())),
        ("name".to_string(), Value::from(id.clone())),
        ("arn".to_string(), Value::from(g.arn.clone().unwrap_or_default())),
    ]
    .into();
    Live { name, id, props: crate::kinds::to_value(&props), tags, outputs }
}
