//! `ec2.elastic_ip`: a public IPv4 address for a NAT gateway.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Address, DomainType, ResourceType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BoxFuture, Desired, Kind, Live, PropsError, Scope};
use crate::aws::ec2::{from_tags, no_retry, resource_filters, scope_filters, sync_tags, tag_spec};
use crate::aws::{Aws, AwsError, CREATE_ATTEMPTS, create_or_adopt, not_found, retry_while_in_use};
use crate::limits::Sent;

pub struct ElasticIp;

/// Properties of `ec2.elastic_ip` (none: a VPC address).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticIpProps {}

impl Kind for ElasticIp {
    fn type_name(&self) -> &'static str {
        "ec2.elastic_ip"
    }
    fn doc(&self) -> &'static str {
        "An Elastic IP address in the VPC domain, e.g. for a NAT gateway. Outputs: `id` (the allocation id), `public_ip`."
    }
    fn schema(&self, g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::schema_of::<ElasticIpProps>(g)
    }
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError> {
        Ok(super::to_value(&super::typed::<ElasticIpProps>(props)?))
    }
    fn replace_on(&self) -> &'static [&'static str] {
        &[]
    }
    fn sends(&self) -> &'static [Sent] {
        &[]
    }
    fn import_by(&self) -> super::ImportBy {
        super::ImportBy::Ec2Id
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["id", "public_ip"]
    }

    fn reads(&self) -> super::Reads {
        super::Reads { once: &["ec2:DescribeAddresses"], per_object: &[], per_parent: &[] }
    }

    fn read<'a>(&'a self, aws: &'a Aws, scope: &'a Scope) -> BoxFuture<'a, Result<Vec<Live>, AwsError>> {
        Box::pin(async move {
            // DescribeAddresses is not paginated.
            let out = aws
                .ec2
                .describe_addresses()
                .set_filters(Some(scope_filters(&scope.stack, &scope.env)))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ec2:DescribeAddresses", e))?;
            Ok(out
                .addresses
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| {
                    let tags = from_tags(a.tags());
                    let name = scope.owner(&tags, None)?;
                    Some(live(name, &a, tags))
                })
                .collect())
        })
    }

    fn create<'a>(&'a self, aws: &'a Aws, d: &'a Desired) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(async move {
            // AllocateAddress takes no idempotency token: a lost response is
            // resolved by looking for the tagged address.
            let address = create_or_adopt(
                CREATE_ATTEMPTS,
                || async {
                    let out = aws
                        .ec2
                        .allocate_address()
                        .domain(DomainType::Vpc)
                        .tag_specifications(tag_spec(ResourceType::ElasticIp, &d.tags))
                        .customize()
                        .config_override(no_retry())
                        .send()
                        .await
                        .map_err(|e| AwsError::from_sdk("ec2:AllocateAddress", e))?;
                    Ok(Address::builder().set_allocation_id(out.allocation_id).set_public_ip(out.public_ip).build())
                },
                || find(aws, d),
            )
            .await?;
            Ok(live(d.name.clone(), &address, d.tags.clone()))
        })
    }

    fn update<'a>(&'a self, aws: &'a Aws, d: &'a Desired, l: &'a Live) -> BoxFuture<'a, Result<Live, AwsError>> {
        Box::pin(async move {
            sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
            Ok(Live { tags: d.tags.clone(), ..l.clone() })
        })
    }

    fn delete<'a>(
        &'a self,
        aws: &'a Aws,
        l: &'a Live,
        _spec: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<(), AwsError>> {
        Box::pin(async move {
            // A NAT gateway being deleted holds its address for a while.
            let res = retry_while_in_use(&["InvalidIPAddress.InUse", "DependencyViolation"], || async {
                aws.ec2
                    .release_address()
                    .allocation_id(&l.id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("ec2:ReleaseAddress", e))
            })
            .await;
            not_found(res, &["InvalidAllocationID.NotFound"]).map(|_| ())
        })
    }
}

async fn find(aws: &Aws, d: &Desired) -> Result<Option<Address>, AwsError> {
    let out = aws
        .ec2
        .describe_addresses()
        .set_filters(Some(resource_filters(&d.tags)))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ec2:DescribeAddresses", e))?;
    Ok(out.addresses.unwrap_or_default().into_iter().next())
}

fn live(name: String, a: &Address, tags: BTreeMap<String, String>) -> Live {
    let id = a.allocation_id.clone().unwrap_or_default();
    Live {
        name,
        id: id.clone(),
        props: super::to_value(&ElasticIpProps {}),
        tags,
        outputs: [
            ("id".to_string(), Value::from(id)),
            ("public_ip".to_string(), Value::from(a.public_ip.clone().unwrap_or_default())),
        ]
        .into(),
    }
}
