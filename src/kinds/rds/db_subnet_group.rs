//! `rds.db_subnet_group`: the subnets an RDS instance may use, the shared
//! subnet group kind ([`crate::kinds::db_groups`]) over RDS's calls.

use aws_sdk_rds::types::DbSubnetGroup;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::db_groups::{Group, GroupApi, SubnetApi, SubnetGroup, SubnetGroupProps};
use crate::kinds::rds::{check_identifier, to_tags};
use crate::kinds::{Facts, ImportBy, Reads};
use crate::limits::Sent;
use crate::tags::Tags;

/// RDS's subnet group calls.
pub struct RdsSubnetGroups;

pub type DbSubnetGroupKind = SubnetGroup<RdsSubnetGroups>;

impl GroupApi for RdsSubnetGroups {
    type Tagging = crate::kinds::rds::RdsTags;
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
        import_by: ImportBy::Name,
        reads: Reads { once: &[], per_object: &["rds:DescribeDBSubnetGroups"], per_parent: &[] },
        tagging_type: Some("rds:subgrp"),
        ..Facts::DEFAULT
    };

    fn check_name(name: &str) -> Result<(), String> {
        check_identifier(name)
    }

    async fn describe(aws: &Aws, name: &str) -> Result<Option<Group>, AwsError> {
        let res = aws
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(name)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBSubnetGroups"));
        let found = not_found(res, &["DBSubnetGroupNotFoundFault"])?;
        Ok(found.and_then(|out| out.db_subnet_groups?.into_iter().next()).map(group))
    }

    async fn delete(aws: &Aws, name: &str) -> Result<(), AwsError> {
        let res = aws
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name(name)
            .send()
            .await
            .map_err(sdk("rds:DeleteDBSubnetGroup"));
        not_found(res, &["DBSubnetGroupNotFoundFault"]).map(|_| ())
    }
}

impl SubnetApi for RdsSubnetGroups {
    const MIN_SUBNETS: (usize, &'static str) = (2, "RDS needs subnets in at least two availability zones");

    async fn create(aws: &Aws, name: &str, p: &SubnetGroupProps, tags: &Tags) -> Result<Option<Group>, AwsError> {
        let out = aws
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(name)
            .db_subnet_group_description(&p.description)
            .set_subnet_ids(Some(p.subnet_ids.clone()))
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(sdk("rds:CreateDBSubnetGroup"))?;
        Ok(out.db_subnet_group.map(group))
    }

    async fn modify(aws: &Aws, name: &str, p: &SubnetGroupProps) -> Result<(), AwsError> {
        let call = aws.rds.modify_db_subnet_group().db_subnet_group_name(name);
        call.db_subnet_group_description(&p.description)
            .set_subnet_ids(Some(p.subnet_ids.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBSubnetGroup"))
    }
}

fn group(g: DbSubnetGroup) -> Group {
    Group {
        subnet_ids: g.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect(),
        name: g.db_subnet_group_name.unwrap_or_default(),
        arn: g.db_subnet_group_arn.unwrap_or_default(),
        description: g.db_subnet_group_description.unwrap_or_default(),
        family: String::new(),
    }
}
