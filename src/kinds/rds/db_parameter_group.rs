//! `rds.db_parameter_group`: engine parameters (e.g. PostgreSQL's).

use std::collections::BTreeMap;

use aws_sdk_rds::types::{ApplyMethod, Parameter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::rds::{check_identifier, list_tags, sync_tags, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, Scope};
use crate::limits::Sent;

pub struct DbParameterGroupKind;

/// Properties of `rds.db_parameter_group`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbParameterGroupProps {
    /// e.g. `postgres16`. Changing it replaces the group.
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

/// ModifyDBParameterGroup and ResetDBParameterGroup take at most 20.
const BATCH: usize = 20;

impl Kind for DbParameterGroupKind {
    type Props = DbParameterGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "rds.db_parameter_group",
        doc: "An RDS DB parameter group. Changes apply at the instance's next reboot (`pending-reboot`), never as a surprise restart. Outputs: `id`, `name`, `arn`.",
        replace_on: &["family", "description"],
        sends: &[
            Sent::aws("family", "rds:CreateDBParameterGroupMessage.DBParameterGroupFamily"),
            Sent::aws("description", "rds:CreateDBParameterGroupMessage.Description"),
            Sent::not(
                "parameters",
                "name to value pairs, sent as Parameter entries that RDS checks against the family",
            ),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["rds:DescribeDBParameterGroups", "rds:DescribeDBParameters"],
            per_parent: &[],
        },
        tagging_type: Some("rds:pg"),
        ..Facts::DEFAULT
    };
    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_identifier(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some(g) = describe(aws, &t.id).await? else { return Ok(None) };
            let Some(tags) = t.tags_or(list_tags(aws, g.db_parameter_group_arn().unwrap_or_default())).await? else {
                return Ok(None);
            };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
            let parameters = user_parameters(aws, &t.id).await?;
            Ok(Some(live(owner, g, parameters, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: DbParameterGroupProps = parse(&d.props)?;
        let res = aws
            .rds
            .create_db_parameter_group()
            .db_parameter_group_name(&d.physical_name)
            .db_parameter_group_family(&p.family)
            .description(&p.description)
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:CreateDBParameterGroup", e));
        let g = match res {
            Ok(out) => {
                out.db_parameter_group.ok_or_else(|| AwsError::other("rds:CreateDBParameterGroup", "no group"))?
            }
            Err(e) if e.is("DBParameterGroupAlreadyExists") => describe(aws, &d.physical_name).await?.ok_or(e)?,
            Err(e) => return Err(e),
        };
        let existing = user_parameters(aws, &d.physical_name).await?;
        let l = live(d.name.clone(), g, existing, d.tags.clone());
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: DbParameterGroupProps = parse(&d.props)?;
        let was: DbParameterGroupProps = parse(&l.props)?;
        let set: Vec<Parameter> = p
            .parameters
            .iter()
            .filter(|(k, v)| was.parameters.get(*k) != Some(*v))
            .map(|(k, v)| {
                Parameter::builder()
                    .parameter_name(k)
                    .parameter_value(v)
                    .apply_method(ApplyMethod::PendingReboot)
                    .build()
            })
            .collect();
        for chunk in set.chunks(BATCH) {
            aws.rds
                .modify_db_parameter_group()
                .db_parameter_group_name(&l.id)
                .set_parameters(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("rds:ModifyDBParameterGroup", e))?;
        }
        let reset: Vec<Parameter> = was
            .parameters
            .keys()
            .filter(|k| !p.parameters.contains_key(*k))
            .map(|k| Parameter::builder().parameter_name(k).apply_method(ApplyMethod::PendingReboot).build())
            .collect();
        for chunk in reset.chunks(BATCH) {
            aws.rds
                .reset_db_parameter_group()
                .db_parameter_group_name(&l.id)
                .set_parameters(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("rds:ResetDBParameterGroup", e))?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
        sync_tags(aws, arn, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .rds
            .delete_db_parameter_group()
            .db_parameter_group_name(&l.id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DeleteDBParameterGroup", e));
        not_found(res, &["DBParameterGroupNotFound", "DBParameterGroupNotFoundFault"]).map(|_| ())
    }
}

fn parse(v: &Value) -> Result<DbParameterGroupProps, AwsError> {
    crate::kinds::props("rds.db_parameter_group", v)
}

/// Parameters the user set (`Source=user`), paginated.
/// One group by name; `None` if there is none.
async fn describe(aws: &Aws, name: &str) -> Result<Option<aws_sdk_rds::types::DbParameterGroup>, AwsError> {
    let res = aws
        .rds
        .describe_db_parameter_groups()
        .db_parameter_group_name(name)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("rds:DescribeDBParameterGroups", e));
    Ok(not_found(res, &["DBParameterGroupNotFound"])?.and_then(|out| out.db_parameter_groups?.into_iter().next()))
}

async fn user_parameters(aws: &Aws, name: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let params = aws
        .rds
        .describe_db_parameters()
        .db_parameter_group_name(name)
        .source("user")
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::from_sdk("rds:DescribeDBParameters", e))?;
    Ok(params.into_iter().filter_map(|p| Some((p.parameter_name?, p.parameter_value.unwrap_or_default()))).collect())
}

fn live(
    name: String,
    g: aws_sdk_rds::types::DbParameterGroup,
    parameters: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> Live {
    let id = g.db_parameter_group_name.clone().unwrap_or_default();
    let props = DbParameterGroupProps {
        family: g.db_parameter_group_family.clone().unwrap_or_default(),
        description: g.description.clone().unwrap_or_default(),
        parameters,
    };
    let outputs = [
        ("id".to_string(), Value::from(id.clone())),
        ("name".to_string(), Value::from(id.clone())),
        ("arn".to_string(), Value::from(g.db_parameter_group_arn.clone().unwrap_or_default())),
    ]
    .into();
    Live { name, id, props: crate::kinds::to_value(&props), tags, outputs }
}
