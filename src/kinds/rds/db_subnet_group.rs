//! `rds.db_subnet_group`: the subnets an RDS instance may use.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::rds::{check_identifier, list_tags, sync_tags, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct DbSubnetGroupKind;

/// Properties of `rds.db_subnet_group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbSubnetGroupProps {
    #[serde(default = "default_description")]
    pub description: String,
    /// Subnets in at least two availability zones.
    pub subnet_ids: Vec<String>,
}

fn default_description() -> String {
    "Managed by converge".into()
}

impl Kind for DbSubnetGroupKind {
    type Props = DbSubnetGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "rds.db_subnet_group",
        doc: "An RDS DB subnet group. Outputs: `id` and `name` (the group name), `arn`.",
        replace_on: &[],
        sends: &[
            Sent::aws("description", "rds:CreateDBSubnetGroupMessage.DBSubnetGroupDescription"),
            Sent::aws("subnet_ids", "rds:CreateDBSubnetGroupMessage.SubnetIds"),
            Sent::aws("subnet_ids[]", "rds:CreateDBSubnetGroupMessage.SubnetIds[]"),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads { once: &[], per_object: &["rds:DescribeDBSubnetGroups"], per_parent: &[] },
        tagging_type: Some("rds:subgrp"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: DbSubnetGroupProps) -> Result<DbSubnetGroupProps, PropsError> {
        crate::kinds::sort_ids(&mut p.subnet_ids);
        if p.subnet_ids.len() < 2 {
            return Err(PropsError {
                path: "subnet_ids".into(),
                message: "RDS needs subnets in at least two availability zones".into(),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_identifier(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // DescribeDBSubnetGroups has no tags: the index's, or (for a spec
        // name the index does not hold) ListTagsForResource.
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some(g) = find(aws, &t.id).await? else { return Ok(None) };
            let Some(tags) = t.tags_or(list_tags(aws, g.db_subnet_group_arn().unwrap_or_default())).await? else {
                return Ok(None);
            };
            Ok(scope.owner(&tags, Some(&t.id)).map(|owner| live(owner, g, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: DbSubnetGroupProps = parse(&d.props)?;
        let res = aws
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(&d.physical_name)
            .db_subnet_group_description(&p.description)
            .set_subnet_ids(Some(p.subnet_ids.clone()))
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:CreateDBSubnetGroup", e));
        match res {
            Ok(out) => {
                let g = out
                    .db_subnet_group
                    .ok_or_else(|| AwsError::other("rds:CreateDBSubnetGroup", "no group in response"))?;
                Ok(live(d.name.clone(), g, d.tags.clone()))
            }
            // The name is unique: a retried create finds the first one.
            Err(e) if e.is("DBSubnetGroupAlreadyExists") => {
                let l = Live { name: d.name.clone(), ..describe(aws, &d.physical_name).await? };
                self.update(aws, d, &l).await
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: DbSubnetGroupProps = parse(&d.props)?;
        if d.props != l.props {
            aws.rds
                .modify_db_subnet_group()
                .db_subnet_group_name(&l.id)
                .db_subnet_group_description(&p.description)
                .set_subnet_ids(Some(p.subnet_ids.clone()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("rds:ModifyDBSubnetGroup", e))?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
        sync_tags(aws, arn, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name(&l.id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DeleteDBSubnetGroup", e));
        not_found(res, &["DBSubnetGroupNotFoundFault"]).map(|_| ())
    }
}

fn parse(v: &Value) -> Result<DbSubnetGroupProps, AwsError> {
    crate::kinds::props("rds.db_subnet_group", v)
}

/// One group by name; `None` if there is none.
async fn find(aws: &Aws, name: &str) -> Result<Option<aws_sdk_rds::types::DbSubnetGroup>, AwsError> {
    let res = aws
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("rds:DescribeDBSubnetGroups", e));
    Ok(not_found(res, &["DBSubnetGroupNotFoundFault"])?.and_then(|out| out.db_subnet_groups?.into_iter().next()))
}

async fn describe(aws: &Aws, name: &str) -> Result<Live, AwsError> {
    let g = find(aws, name)
        .await?
        .ok_or_else(|| AwsError::other("rds:DescribeDBSubnetGroups", format!("{name} not found")))?;
    let tags = list_tags(aws, g.db_subnet_group_arn().unwrap_or_default()).await?.unwrap_or_default();
    Ok(live(String::new(), g, tags))
}

fn live(name: String, g: aws_sdk_rds::types::DbSubnetGroup, tags: BTreeMap<String, String>) -> Live {
    let id = g.db_subnet_group_name.clone().unwrap_or_default();
    let arn = g.db_subnet_group_arn.clone().unwrap_or_default();
    let mut subnet_ids: Vec<String> = g.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect();
    subnet_ids.sort();
    let props =
        DbSubnetGroupProps { description: g.db_subnet_group_description.clone().unwrap_or_default(), subnet_ids };
    let outputs = [
        ("id".to_string(), Value::from(id.clone())),
        ("name".to_string(), Value::from(id.clone())),
        ("arn".to_string(), Value::from(arn)),
    ]
    .into();
    Live { name, id, props: crate::kinds::to_value(&props), tags, outputs }
}
