//! `elasticache.subnet_group`: the subnets a Redis replication group uses.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BoxFuture, Desired, Kind, Live, PropsError, Scope};
use crate::aws::elasticache::{check_id, list_tags, sync_tags, to_tags};
use crate::aws::{Aws, AwsError, not_found};
use crate::limits::Sent;

pub struct CacheSubnetGroup;

/// Properties of `elasticache.subnet_group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheSubnetGroupProps {
    #[serde(default = "default_description")]
    pub description: String,
    pub subnet_ids: Vec<String>,
}

fn default_description() -> String {
    "Managed by converge".into()
}

impl Kind for CacheSubnetGroup {
    fn type_name(&self) -> &'static str {
        "elasticache.subnet_group"
    }
    fn doc(&self) -> &'static str {
        "An ElastiCache cache subnet group. Outputs: `id` and `name` (the group name), `arn`."
    }
    fn schema(&self, g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::schema_of::<CacheSubnetGroupProps>(g)
    }
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError> {
        let mut p: CacheSubnetGroupProps = super::typed(props)?;
        super::sort_ids(&mut p.subnet_ids);
        if p.subnet_ids.is_empty() {
            return Err(PropsError { path: "subnet_ids".into(), message: "at least one subnet".into() });
        }
        Ok(super::to_value(&p))
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }
    fn sends(&self) -> &'static [Sent] {
        const SENDS: &[Sent] = &[
            Sent::aws("description", "elasticache:CreateCacheSubnetGroupMessage.CacheSubnetGroupDescription"),
            Sent::aws("subnet_ids", "elasticache:CreateCacheSubnetGroupMessage.SubnetIds"),
            Sent::aws("subnet_ids[]", "elasticache:CreateCacheSubnetGroupMessage.SubnetIds[]"),
        ];
        SENDS
    }
    fn import_by(&self) -> super::ImportBy {
        super::ImportBy::Name
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["id", "name", "arn"]
    }
    fn physical_name_output(&self) -> Option<&'static str> {
        Some("name")
    }
    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_id(name)
    }

    fn reads(&self) -> super::Reads {
        super::Reads { once: &[], per_object: &["elasticache:DescribeCacheSubnetGroups"], per_parent: &[] }
    }

    fn tagging_type(&self) -> Option<&'static str> {
        Some("elasticache:subnetgroup")
    }

    fn read<'a>(&'a self, aws: &'a Aws, scope: &'a Scope) -> BoxFuture<'a, Result<Vec<Live>, AwsError>> {
        Box::pin(async move {
            super::read_each(scope.targets(aws).await?, |t| async move {
                let Some(g) = describe(aws, &t.id).await? else { return Ok(None) };
                let Some(tags) = t.tags_or(list_tags(aws, g.arn().unwrap_or_default())).await? else {
                    return Ok(None);
                };
                Ok(scope.owner(&tags, Some(&t.id)).map(|owner| live(owner, g, tags)))
            })
            .await
        })
    }

    fn create<'a>(&'a self, aws: &'a Aws, d: &'a Desired) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(async move {
            let p: CacheSubnetGroupProps = parse(&d.props)?;
            let res = aws
                .elasticache
                .create_cache_subnet_group()
                .cache_subnet_group_name(&d.physical_name)
                .cache_subnet_group_description(&p.description)
                .set_subnet_ids(Some(p.subnet_ids.clone()))
                .set_tags(Some(to_tags(&d.tags)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("elasticache:CreateCacheSubnetGroup", e));
            match res {
                Ok(out) => {
                    let g = out
                        .cache_subnet_group
                        .ok_or_else(|| AwsError::other("elasticache:CreateCacheSubnetGroup", "no group"))?;
                    Ok(live(d.name.clone(), g, d.tags.clone()))
                }
                Err(e) if e.code.starts_with("CacheSubnetGroupAlreadyExists") => {
                    let g = describe(aws, &d.physical_name).await?.ok_or(e)?;
                    let tags = list_tags(aws, g.arn().unwrap_or_default()).await?.unwrap_or_default();
                    let l = live(d.name.clone(), g, tags);
                    self.update(aws, d, &l).await
                }
                Err(e) => Err(e),
            }
        })
    }

    fn update<'a>(&'a self, aws: &'a Aws, d: &'a Desired, l: &'a Live) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(async move {
            let p: CacheSubnetGroupProps = parse(&d.props)?;
            if d.props != l.props {
                aws.elasticache
                    .modify_cache_subnet_group()
                    .cache_subnet_group_name(&l.id)
                    .cache_subnet_group_description(&p.description)
                    .set_subnet_ids(Some(p.subnet_ids.clone()))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("elasticache:ModifyCacheSubnetGroup", e))?;
            }
            let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
            sync_tags(aws, arn, &d.tags, &l.tags).await?;
            Ok(Live { props: super::to_value(&p), tags: d.tags.clone(), ..l.clone() })
        })
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        l: &'a Live,
        _spec: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            let res = aws
                .elasticache
                .delete_cache_subnet_group()
                .cache_subnet_group_name(&l.id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("elasticache:DeleteCacheSubnetGroup", e));
            not_found(res, &["CacheSubnetGroupNotFoundFault"]).map(|_| ())
        })
    }
}

fn parse(v: &Value) -> Result<CacheSubnetGroupProps, AwsError> {
    super::props("elasticache.subnet_group", v)
}

fn live(name: String, g: aws_sdk_elasticache::types::CacheSubnetGroup, tags: BTreeMap<String, String>) -> Live {
    let id = g.cache_subnet_group_name.clone().unwrap_or_default();
    let mut subnet_ids: Vec<String> = g.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect();
    subnet_ids.sort();
    let props =
        CacheSubnetGroupProps { description: g.cache_subnet_group_description.clone().unwrap_or_default(), subnet_ids };
    let outputs = [
        ("id".to_string(), Value::from(id.clone())),
        ("name".to_string(), Value::from(id.clone())),
        ("arn".to_string(), Value::from(g.arn.clone().unwrap_or_default())),
    ]
    .into();
    Live { name, id, props: super::to_value(&props), tags, outputs }
}

/// One group by name; `None` if there is none.
async fn describe(aws: &Aws, name: &str) -> Result<Option<aws_sdk_elasticache::types::CacheSubnetGroup>, AwsError> {
    let res = aws
        .elasticache
        .describe_cache_subnet_groups()
        .cache_subnet_group_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elasticache:DescribeCacheSubnetGroups", e));
    Ok(not_found(res, &["CacheSubnetGroupNotFoundFault"])?.and_then(|out| out.cache_subnet_groups?.into_iter().next()))
}
