//! `elasticache.subnet_group`: the subnets a Redis replication group uses,
//! the shared subnet group kind ([`crate::kinds::db_groups`]) over
//! ElastiCache's calls.

use aws_sdk_elasticache::types::CacheSubnetGroup;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::db_groups::{Group, GroupApi, SubnetApi, SubnetGroup, SubnetGroupProps};
use crate::kinds::elasticache::{check_id, to_tags};
use crate::kinds::{Facts, ImportBy, Reads};
use crate::limits::Sent;
use crate::tags::Tags;

/// ElastiCache's subnet group calls.
pub struct CacheSubnetGroups;

pub type SubnetGroupKind = SubnetGroup<CacheSubnetGroups>;

impl GroupApi for CacheSubnetGroups {
    type Tagging = crate::kinds::elasticache::CacheTags;
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
        import_by: ImportBy::Name,
        reads: Reads { once: &[], per_object: &["elasticache:DescribeCacheSubnetGroups"], per_parent: &[] },
        tagging_type: Some("elasticache:subnetgroup"),
        ..Facts::DEFAULT
    };

    fn check_name(name: &str) -> Result<(), String> {
        check_id(name)
    }

    async fn describe(aws: &Aws, name: &str) -> Result<Option<Group>, AwsError> {
        let res = aws
            .elasticache
            .describe_cache_subnet_groups()
            .cache_subnet_group_name(name)
            .send()
            .await
            .map_err(sdk("elasticache:DescribeCacheSubnetGroups"));
        let found = not_found(res, &["CacheSubnetGroupNotFoundFault"])?;
        Ok(found.and_then(|out| out.cache_subnet_groups?.into_iter().next()).map(group))
    }

    async fn delete(aws: &Aws, name: &str) -> Result<(), AwsError> {
        let res = aws
            .elasticache
            .delete_cache_subnet_group()
            .cache_subnet_group_name(name)
            .send()
            .await
            .map_err(sdk("elasticache:DeleteCacheSubnetGroup"));
        not_found(res, &["CacheSubnetGroupNotFoundFault"]).map(|_| ())
    }
}

impl SubnetApi for CacheSubnetGroups {
    const MIN_SUBNETS: (usize, &'static str) = (1, "at least one subnet");

    async fn create(aws: &Aws, name: &str, p: &SubnetGroupProps, tags: &Tags) -> Result<Option<Group>, AwsError> {
        let out = aws
            .elasticache
            .create_cache_subnet_group()
            .cache_subnet_group_name(name)
            .cache_subnet_group_description(&p.description)
            .set_subnet_ids(Some(p.subnet_ids.clone()))
            .set_tags(Some(to_tags(tags)))
            .send()
            .await
            .map_err(sdk("elasticache:CreateCacheSubnetGroup"))?;
        Ok(out.cache_subnet_group.map(group))
    }

    async fn modify(aws: &Aws, name: &str, p: &SubnetGroupProps) -> Result<(), AwsError> {
        let call = aws.elasticache.modify_cache_subnet_group().cache_subnet_group_name(name);
        call.cache_subnet_group_description(&p.description)
            .set_subnet_ids(Some(p.subnet_ids.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("elasticache:ModifyCacheSubnetGroup"))
    }
}

fn group(g: CacheSubnetGroup) -> Group {
    Group {
        subnet_ids: g.subnets().iter().filter_map(|s| s.subnet_identifier.clone()).collect(),
        name: g.cache_subnet_group_name.unwrap_or_default(),
        arn: g.arn.unwrap_or_default(),
        description: g.cache_subnet_group_description.unwrap_or_default(),
        family: String::new(),
    }
}
