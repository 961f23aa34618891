//! `ec2.nat_gateway`: outbound internet access for private subnets.
//!
//! A public NAT gateway lives in a public subnet (one whose default route
//! goes to an internet gateway) and holds an Elastic IP; private route
//! tables send `0.0.0.0/0` to it.

use crate::aws::waited;
use std::collections::BTreeMap;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{NatGateway, NatGatewayState, ResourceType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, client_token, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, Scope};
use crate::limits::Sent;

pub struct NatGatewayKind;

/// Properties of `ec2.nat_gateway`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatGatewayProps {
    /// A public subnet. Changing it replaces the gateway.
    pub subnet_id: String,
    /// The Elastic IP's allocation id (`${resources.NAME.id}`). Changing it
    /// replaces the gateway.
    pub allocation_id: String,
}

impl Kind for NatGatewayKind {
    type Props = NatGatewayProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.nat_gateway",
        doc: "A public NAT gateway in a public subnet, with an Elastic IP: the private subnets' way out. Outputs: `id`.",
        replace_on: &["subnet_id", "allocation_id"],
        sends: &[
            Sent::aws("subnet_id", "ec2:CreateNatGatewayRequest.SubnetId"),
            Sent::aws("allocation_id", "ec2:CreateNatGatewayRequest.AllocationId"),
        ],
        outputs: &["id"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeNatGateways"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    fn replace_order(&self, forcing: &[&str]) -> crate::kinds::ReplaceOrder {
        if forcing.contains(&"allocation_id") {
            crate::kinds::ReplaceOrder::CreateFirst
        } else {
            crate::kinds::ReplaceOrder::DeleteFirst(
                "its Elastic IP stays with the old NAT gateway until that one is deleted",
            )
        }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let gws: Vec<NatGateway> =
            all_items!(aws.ec2.describe_nat_gateways().set_filter(scope_filters(scope)), "ec2:DescribeNatGateways")?;
        // Deleted and failed gateways stay listed for a while; they route
        // nothing.
        let gone = |g: &NatGateway| matches!(g.state(), Some(NatGatewayState::Deleted | NatGatewayState::Failed));
        let gws = gws.into_iter().filter(|g| !gone(g));
        Ok(claimed(gws, scope, |g| g.tags(), |name, g, tags| live(name, &g, tags)))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: NatGatewayProps = NatGatewayKind::props(&d.props)?;
        // The client token makes the SDK's own retries idempotent.
        let out = aws
            .ec2
            .create_nat_gateway()
            .client_token(client_token())
            .subnet_id(&p.subnet_id)
            .allocation_id(&p.allocation_id)
            .tag_specifications(tag_spec(ResourceType::Natgateway, &d.tags))
            .send()
            .await
            .map_err(sdk("ec2:CreateNatGateway"))?;
        let gw = out.nat_gateway.ok_or_else(|| AwsError::other("ec2:CreateNatGateway", "response has no gateway"))?;
        let id = gw.nat_gateway_id.clone().unwrap_or_default();
        crate::progress::note(Some(format!("waiting for {id} to be available (pending)")));
        aws.ec2
            .wait_until_nat_gateway_available()
            .nat_gateway_ids(&id)
            .wait(d.timeout)
            .await
            .map_err(waited("ec2:DescribeNatGateways (wait available)"))?;
        let mut l = live(d.name.clone(), &gw, d.tags.clone());
        l.props = crate::kinds::to_value(&p);
        Ok(l)
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws.ec2.delete_nat_gateway().nat_gateway_id(&l.id).send().await.map_err(sdk("ec2:DeleteNatGateway"));
        if not_found(res, &["NatGatewayNotFound", "InvalidNatGatewayID.NotFound"])?.is_none() {
            return Ok(());
        }
        // Its Elastic IP and subnet are free only once it is deleted.
        crate::progress::note(Some("waiting for the NAT gateway to be deleted (it frees its Elastic IP)".into()));
        aws.ec2
            .wait_until_nat_gateway_deleted()
            .nat_gateway_ids(&l.id)
            .wait(crate::aws::MAX_WAIT)
            .await
            .map_err(waited("ec2:DescribeNatGateways (wait deleted)"))?;
        Ok(())
    }
}

fn live(name: String, g: &NatGateway, tags: BTreeMap<String, String>) -> Live {
    let id = g.nat_gateway_id.clone().unwrap_or_default();
    let props = NatGatewayProps {
        subnet_id: g.subnet_id.clone().unwrap_or_default(),
        allocation_id: g.nat_gateway_addresses().iter().find_map(|a| a.allocation_id.clone()).unwrap_or_default(),
    };
    Live::new(name, id.clone(), &props, tags)
}
