//! `ec2.vpc_endpoint`: a gateway VPC endpoint (S3, DynamoDB) on route
//! tables, so that traffic to the service stays off the NAT gateway.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{ResourceType, State, VpcEndpoint, VpcEndpointType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, client_token, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct VpcEndpointKind;

/// Properties of `ec2.vpc_endpoint`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpointProps {
    /// The VPC. Changing it replaces the endpoint.
    pub vpc_id: String,
    /// e.g. `com.amazonaws.${region}.s3`. Changing it replaces the endpoint.
    pub service_name: String,
    /// Route tables that get the service's prefix-list route.
    #[serde(default)]
    pub route_table_ids: Vec<String>,
}

impl Kind for VpcEndpointKind {
    type Props = VpcEndpointProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.vpc_endpoint",
        doc: "A gateway VPC endpoint (S3 or DynamoDB) on the given route tables. Outputs: `id`.",
        replace_on: &["vpc_id", "service_name"],
        sends: &[
            Sent::aws("vpc_id", "ec2:CreateVpcEndpointRequest.VpcId"),
            Sent::aws("service_name", "ec2:CreateVpcEndpointRequest.ServiceName"),
            Sent::aws("route_table_ids", "ec2:CreateVpcEndpointRequest.RouteTableIds"),
            Sent::aws("route_table_ids[]", "ec2:CreateVpcEndpointRequest.RouteTableIds[]"),
        ],
        outputs: &["id"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeVpcEndpoints"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: VpcEndpointProps) -> Result<VpcEndpointProps, PropsError> {
        crate::kinds::sort_ids(&mut p.route_table_ids);
        let known = !crate::value::is_unknown_str(&p.service_name);
        if known && !(p.service_name.ends_with(".s3") || p.service_name.ends_with(".dynamodb")) {
            return Err(PropsError {
                path: "service_name".into(),
                message: "gateway endpoints exist for S3 and DynamoDB only (`com.amazonaws.REGION.s3`)".into(),
            });
        }
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let eps: Vec<VpcEndpoint> =
            all_items!(aws.ec2.describe_vpc_endpoints().set_filters(scope_filters(scope)), "ec2:DescribeVpcEndpoints")?;
        // The API documents `Deleted`, answers `deleted`: compare without case.
        let gone =
            |s: &State| [State::Deleted, State::Deleting].iter().any(|g| g.as_str().eq_ignore_ascii_case(s.as_str()));
        let eps = eps.into_iter().filter(|e| !e.state().is_some_and(gone));
        Ok(claimed(eps, scope, |e| e.tags(), |name, e, tags| live(name, &e, tags)))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: VpcEndpointProps = VpcEndpointKind::props(&d.props)?;
        let out = aws
            .ec2
            .create_vpc_endpoint()
            .client_token(client_token())
            .vpc_endpoint_type(VpcEndpointType::Gateway)
            .vpc_id(&p.vpc_id)
            .service_name(&p.service_name)
            .set_route_table_ids(Some(p.route_table_ids.clone()))
            .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &d.tags))
            .send()
            .await
            .map_err(sdk("ec2:CreateVpcEndpoint"))?;
        let ep = out.vpc_endpoint.ok_or_else(|| AwsError::other("ec2:CreateVpcEndpoint", "no endpoint"))?;
        let mut l = live(d.name.clone(), &ep, d.tags.clone());
        l.props = crate::kinds::to_value(&p);
        Ok(l)
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: VpcEndpointProps = VpcEndpointKind::props(&d.props)?;
        let was: VpcEndpointProps = VpcEndpointKind::props(&l.props)?;
        let add: Vec<String> = p.route_table_ids.iter().filter(|t| !was.route_table_ids.contains(t)).cloned().collect();
        let remove: Vec<String> =
            was.route_table_ids.iter().filter(|t| !p.route_table_ids.contains(t)).cloned().collect();
        if !add.is_empty() || !remove.is_empty() {
            aws.ec2
                .modify_vpc_endpoint()
                .vpc_endpoint_id(&l.id)
                .set_add_route_table_ids((!add.is_empty()).then_some(add))
                .set_remove_route_table_ids((!remove.is_empty()).then_some(remove))
                .send()
                .await
                .map_err(sdk("ec2:ModifyVpcEndpoint"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res =
            aws.ec2.delete_vpc_endpoints().vpc_endpoint_ids(&l.id).send().await.map_err(sdk("ec2:DeleteVpcEndpoints"));
        let Some(out) = not_found(res, &["InvalidVpcEndpointId.NotFound"])? else {
            return Ok(());
        };
        // Failures come back per endpoint, in a 200 response.
        match out.unsuccessful().iter().find_map(|u| u.error()) {
            Some(e) if e.code() != Some("InvalidVpcEndpoint.NotFound") => Err(AwsError {
                operation: "ec2:DeleteVpcEndpoints",
                code: e.code().unwrap_or("Unknown").to_string(),
                message: e.message().unwrap_or_default().to_string(),
                transient: false,
            }),
            _ => Ok(()),
        }
    }
}

fn live(name: String, e: &VpcEndpoint, tags: BTreeMap<String, String>) -> Live {
    let id = e.vpc_endpoint_id.clone().unwrap_or_default();
    let mut route_table_ids = e.route_table_ids().to_vec();
    route_table_ids.sort();
    let props = VpcEndpointProps {
        vpc_id: e.vpc_id.clone().unwrap_or_default(),
        service_name: e.service_name.clone().unwrap_or_default(),
        route_table_ids,
    };
    Live::new(name, id.clone(), &props, tags)
}
