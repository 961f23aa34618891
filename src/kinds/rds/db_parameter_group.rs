//! `rds.db_parameter_group`: engine parameters (e.g. PostgreSQL's), the
//! shared parameter group kind ([`crate::kinds::db_groups`]) over RDS's
//! calls. Parameters apply at the instance's next reboot.

use aws_sdk_rds::types::{ApplyMethod, DbParameterGroup, Parameter};

use crate::aws::{Aws, AwsError, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::db_groups::{Group, GroupApi, ParameterApi, ParameterGroup, ParameterGroupProps};
use crate::kinds::rds::{check_identifier, to_tags};
use crate::kinds::{Facts, ImportBy, Reads};
use crate::limits::Sent;
use crate::tags::Tags;

/// RDS's parameter group calls.
pub struct RdsParameterGroups;

pub type DbParameterGroupKind = ParameterGroup<RdsParameterGroups>;

impl GroupApi for RdsParameterGroups {
    type Tagging = crate::kinds::rds::RdsTags;
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
        import_by: ImportBy::Name,
        reads: Reads {
            once: &[],
            per_object: &["rds:DescribeDBParameterGroups", "rds:DescribeDBParameters"],
            per_parent: &[],
        },
        tagging_type: Some("rds:pg"),
        ..Facts::DEFAULT
    };

    fn check_name(name: &str) -> Result<(), String> {
        check_identifier(name)
    }

    async fn describe(aws: &Aws, name: &str) -> Result<Option<Group>, AwsError> {
        let res = aws
            .rds
            .describe_db_parameter_groups()
            .db_parameter_group_name(name)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBParameterGroups"));
        let found = not_found(res, &["DBParameterGroupNotFound"])?;
        Ok(found.and_then(|out| out.db_parameter_groups?.into_iter().next()).map(group))
    }

    async fn delete(aws: &Aws, name: &str) -> Result<(), AwsError> {
        let res = aws
            .rds
            .delete_db_parameter_group()
            .db_parameter_group_name(name)
            .send()
            .await
            .map_err(sdk("rds:DeleteDBParameterGroup"));
        not_found(res, &["DBParameterGroupNotFound", "DBParameterGroupNotFoundFault"]).map(|_| ())
    }
}

impl ParameterApi for RdsParameterGroups {
    async fn create(aws: &Aws, name: &str, p: &ParameterGroupProps, tags: &Tags) -> Result<Option<Group>, AwsError> {
        let out = aws
            .rds
            .create_db_parameter_group()
            .db_parameter_group_name(name)
            .db_parameter_group_family(&p.family)
            .description(&p.description)
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(sdk("rds:CreateDBParameterGroup"))?;
        Ok(out.db_parameter_group.map(group))
    }

    async fn user_parameters(aws: &Aws, name: &str) -> Result<Tags, AwsError> {
        let params = all_items!(
            aws.rds.describe_db_parameters().db_parameter_group_name(name).source("user"),
            "rds:DescribeDBParameters"
        )?;
        Ok(params
            .into_iter()
            .filter_map(|p| Some((p.parameter_name?, p.parameter_value.unwrap_or_default())))
            .collect())
    }

    async fn modify(aws: &Aws, name: &str, set: &[(String, String)]) -> Result<(), AwsError> {
        let parameters = set.iter().map(|(k, v)| {
            Parameter::builder().parameter_name(k).parameter_value(v).apply_method(ApplyMethod::PendingReboot).build()
        });
        let call = aws.rds.modify_db_parameter_group().db_parameter_group_name(name);
        call.set_parameters(Some(parameters.collect()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBParameterGroup"))
    }

    async fn reset(aws: &Aws, name: &str, keys: &[String]) -> Result<(), AwsError> {
        let parameters = keys
            .iter()
            .map(|k| Parameter::builder().parameter_name(k).apply_method(ApplyMethod::PendingReboot).build());
        let call = aws.rds.reset_db_parameter_group().db_parameter_group_name(name);
        call.set_parameters(Some(parameters.collect()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ResetDBParameterGroup"))
    }
}

fn group(g: DbParameterGroup) -> Group {
    Group {
        name: g.db_parameter_group_name.unwrap_or_default(),
        arn: g.db_parameter_group_arn.unwrap_or_default(),
        description: g.description.unwrap_or_default(),
        family: g.db_parameter_group_family.unwrap_or_default(),
        subnet_ids: Vec::new(),
    }
}
