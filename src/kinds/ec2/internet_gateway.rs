//! `ec2.internet_gateway`: a VPC's way to the internet, attached to it.
//!
//! The private nodes never use it directly: their default route goes to a
//! NAT gateway in a public subnet, whose own default route comes here.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InternetGateway, ResourceType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, CREATE_ATTEMPTS, create_or_adopt, not_found, retry_dependency_violation};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, no_retry, resource_filters, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, Scope};
use crate::limits::Sent;

pub struct InternetGatewayKind;

/// Properties of `ec2.internet_gateway`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InternetGatewayProps {
    /// The VPC it is attached to. Changing it moves the gateway (detach,
    /// attach).
    pub vpc_id: String,
}

impl Kind for InternetGatewayKind {
    type Props = InternetGatewayProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.internet_gateway",
        doc: "An internet gateway attached to a VPC (the public subnets' default route). Outputs: `id`.",
        // A gateway moves between VPCs in place (detach, attach): a create
        // interrupted before its attach is finished by an update too.
        replace_on: &[],
        sends: &[Sent::aws("vpc_id", "ec2:AttachInternetGatewayRequest.VpcId")],
        outputs: &["id"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeInternetGateways"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let gws: Vec<InternetGateway> = all_items!(
            aws.ec2.describe_internet_gateways().set_filters(scope_filters(scope)),
            "ec2:DescribeInternetGateways"
        )?;
        Ok(claimed(gws, scope, |g| g.tags(), |name, g, tags| live(name, &g, tags)))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: InternetGatewayProps = InternetGatewayKind::props(&d.props)?;
        // CreateInternetGateway takes no idempotency token: a lost
        // response is resolved by looking for the tagged gateway.
        let gw = create_or_adopt(
            CREATE_ATTEMPTS,
            || async {
                let out = aws
                    .ec2
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(ResourceType::InternetGateway, &d.tags))
                    .customize()
                    .config_override(no_retry())
                    .send()
                    .await
                    .map_err(sdk("ec2:CreateInternetGateway"))?;
                out.internet_gateway
                    .ok_or_else(|| AwsError::other("ec2:CreateInternetGateway", "response has no gateway"))
            },
            || find(aws, d),
        )
        .await?;
        let id = gw.internet_gateway_id.clone().unwrap_or_default();
        let attached = gw.attachments().iter().any(|a| a.vpc_id() == Some(p.vpc_id.as_str()));
        if !attached {
            attach(aws, &id, &p.vpc_id).await?;
        }
        let mut l = live(d.name.clone(), &gw, d.tags.clone());
        l.props = crate::kinds::to_value(&p);
        Ok(l)
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: InternetGatewayProps = InternetGatewayKind::props(&d.props)?;
        let was: InternetGatewayProps = InternetGatewayKind::props(&l.props)?;
        if was.vpc_id != p.vpc_id {
            if !was.vpc_id.is_empty() {
                detach(aws, &l.id, &was.vpc_id).await?;
            }
            attach(aws, &l.id, &p.vpc_id).await?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { tags: d.tags.clone(), props: crate::kinds::to_value(&p), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let p: InternetGatewayProps = InternetGatewayKind::props(&l.props)?;
        if !p.vpc_id.is_empty() {
            detach(aws, &l.id, &p.vpc_id).await?;
        }
        let res = retry_dependency_violation(|| async {
            aws.ec2
                .delete_internet_gateway()
                .internet_gateway_id(&l.id)
                .send()
                .await
                .map_err(sdk("ec2:DeleteInternetGateway"))
        })
        .await;
        not_found(res, &["InvalidInternetGatewayID.NotFound"]).map(|_| ())
    }
}

/// Attaches gateway `id` to `vpc`; a lost response to an attach that
/// happened (`Resource.AlreadyAssociated` on the retry) is success.
async fn attach(aws: &Aws, id: &str, vpc: &str) -> Result<(), AwsError> {
    let res = aws
        .ec2
        .attach_internet_gateway()
        .internet_gateway_id(id)
        .vpc_id(vpc)
        .send()
        .await
        .map_err(sdk("ec2:AttachInternetGateway"));
    match res {
        Err(e) if !e.is("Resource.AlreadyAssociated") => Err(e),
        _ => Ok(()),
    }
}

/// Detaches gateway `id` from `vpc`, waiting out NAT gateways still
/// releasing their public addresses (DependencyViolation meanwhile).
async fn detach(aws: &Aws, id: &str, vpc: &str) -> Result<(), AwsError> {
    let res = retry_dependency_violation(|| async {
        aws.ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(sdk("ec2:DetachInternetGateway"))
    })
    .await;
    not_found(res, &["Gateway.NotAttached", "InvalidInternetGatewayID.NotFound"]).map(|_| ())
}

async fn find(aws: &Aws, d: &Desired) -> Result<Option<InternetGateway>, AwsError> {
    let out = aws
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(resource_filters(&d.tags)))
        .send()
        .await
        .map_err(sdk("ec2:DescribeInternetGateways"))?;
    Ok(out.internet_gateways.unwrap_or_default().into_iter().next())
}

fn live(name: String, g: &InternetGateway, tags: BTreeMap<String, String>) -> Live {
    let id = g.internet_gateway_id.clone().unwrap_or_default();
    // Detached, it is attached to nothing: an empty vpc_id plans the attach
    // as a replacement of a gateway that no longer serves the VPC.
    let vpc_id = g.attachments().iter().find_map(|a| a.vpc_id.clone()).unwrap_or_default();
    let props = InternetGatewayProps { vpc_id };
    Live::new(name, id.clone(), &props, tags)
}
