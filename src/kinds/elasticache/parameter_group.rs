//! `elasticache.parameter_group`: Redis/Valkey engine parameters (GitLab
//! wants `maxmemory-policy: noeviction`), the shared parameter group kind
//! ([`crate::kinds::db_groups`]) over ElastiCache's calls.

use aws_sdk_elasticache::types::{CacheParameterGroup, ParameterNameValue};

use crate::aws::{Aws, AwsError, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::db_groups::{Group, GroupApi, ParameterApi, ParameterGroup, ParameterGroupProps};
use crate::kinds::elasticache::to_tags;
use crate::kinds::{Facts, Reads};
use crate::limits::Sent;
use crate::tags::Tags;

/// ElastiCache's parameter group calls.
pub struct CacheParameterGroups;

pub type ParameterGroupKind = ParameterGroup<CacheParameterGroups>;

const NOT_FOUND: &[&str] = &["CacheParameterGroupNotFound", "CacheParameterGroupNotFoundFault"];

impl GroupApi for CacheParameterGroups {
    type Tagging = crate::kinds::elasticache::CacheTags;
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
        reads: Reads {
            once: &[],
            per_object: &["elasticache:DescribeCacheParameterGroups", "elasticache:DescribeCacheParameters"],
            per_parent: &[],
        },
        tagging_type: Some("elasticache:parametergroup"),
        ..Facts::DEFAULT
    };

    fn check_name(name: &str) -> Result<(), String> {
        crate::aws::check_lowercase_id(name, 255, "a cache parameter group name")
    }

    async fn describe(aws: &Aws, name: &str) -> Result<Option<Group>, AwsError> {
        let res = aws
            .elasticache
            .describe_cache_parameter_groups()
            .cache_parameter_group_name(name)
            .send()
            .await
            .map_err(sdk("elasticache:DescribeCacheParameterGroups"));
        let found = not_found(res, NOT_FOUND)?;
        Ok(found.and_then(|out| out.cache_parameter_groups?.into_iter().next()).map(group))
    }

    async fn delete(aws: &Aws, name: &str) -> Result<(), AwsError> {
        let res = aws
            .elasticache
            .delete_cache_parameter_group()
            .cache_parameter_group_name(name)
            .send()
            .await
            .map_err(sdk("elasticache:DeleteCacheParameterGroup"));
        not_found(res, NOT_FOUND).map(|_| ())
    }
}

impl ParameterApi for CacheParameterGroups {
    async fn create(aws: &Aws, name: &str, p: &ParameterGroupProps, tags: &Tags) -> Result<Option<Group>, AwsError> {
        let out = aws
            .elasticache
            .create_cache_parameter_group()
            .cache_parameter_group_name(name)
            .cache_parameter_group_family(&p.family)
            .description(&p.description)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(sdk("elasticache:CreateCacheParameterGroup"))?;
        Ok(out.cache_parameter_group.map(group))
    }

    async fn user_parameters(aws: &Aws, name: &str) -> Result<Tags, AwsError> {
        let params: Vec<aws_sdk_elasticache::types::Parameter> = all_items!(
            aws.elasticache.describe_cache_parameters().cache_parameter_group_name(name).source("user"),
            "elasticache:DescribeCacheParameters"
        )?;
        Ok(params
            .into_iter()
            .filter_map(|p| Some((p.parameter_name?, p.parameter_value.unwrap_or_default())))
            .collect())
    }

    async fn modify(aws: &Aws, name: &str, set: &[(String, String)]) -> Result<(), AwsError> {
        let values =
            set.iter().map(|(k, v)| ParameterNameValue::builder().parameter_name(k).parameter_value(v).build());
        let call = aws.elasticache.modify_cache_parameter_group().cache_parameter_group_name(name);
        call.set_parameter_name_values(Some(values.collect()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("elasticache:ModifyCacheParameterGroup"))
    }

    async fn reset(aws: &Aws, name: &str, keys: &[String]) -> Result<(), AwsError> {
        let values = keys.iter().map(|k| ParameterNameValue::builder().parameter_name(k).build());
        let call = aws.elasticache.reset_cache_parameter_group().cache_parameter_group_name(name);
        call.set_parameter_name_values(Some(values.collect()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("elasticache:ResetCacheParameterGroup"))
    }
}

fn group(g: CacheParameterGroup) -> Group {
    Group {
        name: g.cache_parameter_group_name.unwrap_or_default(),
        arn: g.arn.unwrap_or_default(),
        description: g.description.unwrap_or_default(),
        family: g.cache_parameter_group_family.unwrap_or_default(),
        subnet_ids: Vec::new(),
    }
}
