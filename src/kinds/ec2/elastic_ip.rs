//! `ec2.elastic_ip`: a public IPv4 address for a NAT gateway.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Address, DomainType, ResourceType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, CREATE_ATTEMPTS, create_or_adopt, not_found, retry_while_in_use};
use crate::kinds::ec2::{claimed, no_retry, resource_filters, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, Scope};

pub struct ElasticIpKind;

/// Properties of `ec2.elastic_ip` (none: a VPC address).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticIpProps {}

impl Kind for ElasticIpKind {
    type Props = ElasticIpProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.elastic_ip",
        doc: "An Elastic IP address in the VPC domain, e.g. for a NAT gateway. Outputs: `id` (the allocation id), `public_ip`.",
        replace_on: &[],
        sends: &[],
        outputs: &["id", "public_ip"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeAddresses"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // DescribeAddresses is not paginated.
        let out = aws
            .ec2
            .describe_addresses()
            .set_filters(scope_filters(scope))
            .send()
            .await
            .map_err(sdk("ec2:DescribeAddresses"))?;
        Ok(claimed(out.addresses.unwrap_or_default(), scope, |a| a.tags(), |name, a, tags| live(name, &a, tags)))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
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
                    .map_err(sdk("ec2:AllocateAddress"))?;
                Ok(Address::builder().set_allocation_id(out.allocation_id).set_public_ip(out.public_ip).build())
            },
            || find(aws, d),
        )
        .await?;
        Ok(live(d.name.clone(), &address, d.tags.clone()))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // A NAT gateway being deleted holds its address for a while.
        let res = retry_while_in_use(&["InvalidIPAddress.InUse", "DependencyViolation"], || async {
            aws.ec2.release_address().allocation_id(&l.id).send().await.map_err(sdk("ec2:ReleaseAddress"))
        })
        .await;
        not_found(res, &["InvalidAllocationID.NotFound"]).map(|_| ())
    }
}

async fn find(aws: &Aws, d: &Desired) -> Result<Option<Address>, AwsError> {
    let out = aws
        .ec2
        .describe_addresses()
        .set_filters(Some(resource_filters(&d.tags)))
        .send()
        .await
        .map_err(sdk("ec2:DescribeAddresses"))?;
    Ok(out.addresses.unwrap_or_default().into_iter().next())
}

fn live(name: String, a: &Address, tags: BTreeMap<String, String>) -> Live {
    let id = a.allocation_id.clone().unwrap_or_default();
    Live::new(name, id, &ElasticIpProps {}, tags).output("public_ip", a.public_ip.clone().unwrap_or_default())
}
