//! `elasticache.subnet_group`: the subnets a Redis replication group uses.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::elasticache::{check_id, list_tags, sync_tags, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct SubnetGroupKind;

/// Properties of `elasticache.subnet_group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetGroupProps {
    #[serde(default = "default_description")]
    pub description: String,
    pub subnet_ids: Vec<String>,
}

fn default_description() -> String {
    "Managed by converge".into()
}

impl Kind for SubnetGroupKind {
    type Props = SubnetGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "elasticache.subnet_group",
        doc: "An ElastiCache cache subnet group. Outputs: `id` and `name` (the group name), `arn`.",
        replace_on: &[],
        sends: &[
            Sent::aws("description", "elasticache:CreateCacheSubnetGroupMessage.CacheSubnetGroupDescription"),
            Sent::aws("subnet_ids", "elasticache:CreateCacheSubnetGroupMessage.SubnetIds"),
            Sent::aws("subnet_ids[]", "elasticache:CreateCacheSubnetGroupMessage.SubnetIds[]"),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["elasticache:DescribeCacheSubnetGroups"],
            per_parent: &[],
        },
        tagging_type: Some("elasticache:subnetgroup"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: SubnetGroupProps) -> Result<SubnetGroupProps, PropsError> {
        crate::kinds::sort_ids(&mut p.subnet_ids);
        if p.subnet_ids.is_empty() {
            return Err(PropsError { path: "subnet_ids".into(), message: "at least one subnet".into() });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_id(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some(g) = describe(aws, &t.id).await? else { return Ok(None) };
            let Some(tags) = t.tags_or(list_tags(aws, g.arn().unwrap_or_default())).await? else {
                return Ok(None);
            };
            Ok(scope.owner(&tags, Some(&t.id)).map(|owner| live(owner, g, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: SubnetGroupProps = parse(&d.props)?;
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
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: SubnetGroupProps = parse(&d.props)?;
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
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .elasticache
            .delete_cache_subnet_group()
            .cache_subnet_group_name(&l.id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elasticache:DeleteCacheSubnetGroup", e));
        not_found(res, &["CacheSubnetGroupNotFoundFault"]).map(|_| ())
    }
}

fn parse(v: &Value) -> Result<SubnetGroupProps, AwsError> {
    crate::kinds::props("elasticache.subnet_group", v)
}

fn live(name: String, g: aws_sdk_elasticache::types::CacheSubnetGroup, tags: BTreeMap<String, String>) -> Live {
    let id = g.cache_subnet_group_name.clone().unwrap_or_default();
    let mut subnet_ids: Vec<String> = g.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect();
    subnet_ids.sort();
    let props =
        SubnetGroupProps { description: g.cache_subnet_group_description.clone().unwrap_or_default(), subnet_ids };
    let outputs = [
        ("id".to_string(), Value::from(id.clone())),
        ("name".to_string(), Value::from(id.clone())),
        ("arn".to_string(), Value::from(g.arn.clone().unwrap_or_default())),
    ]
    .into();
    Live { name, id, props: crate::kinds::to_value(&props), tags, outputs }
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
