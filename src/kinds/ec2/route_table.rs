//! `ec2.route_table`: a route table with its routes and the subnets it
//! serves.
//!
//! converge manages the routes the spec lists (by destination CIDR) and the
//! subnet associations. The VPC's `local` route and routes a gateway VPC
//! endpoint adds (destination: a prefix list) belong to AWS and to the
//! endpoint: they are neither compared nor removed.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, client_token, not_found, retry_dependency_violation};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct RouteTableKind;

/// Properties of `ec2.route_table`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTableProps {
    /// The VPC. Changing it replaces the table.
    pub vpc_id: String,
    /// Routes besides the VPC's local one; exactly these exist.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Subnets using this table (each moved here from any other table).
    #[serde(default)]
    pub subnet_ids: Vec<String>,
}

/// One route: a destination and exactly one target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// e.g. `0.0.0.0/0`.
    #[serde(with = "crate::kinds::cidr_serde")]
    #[schemars(with = "String")]
    pub destination: String,
    /// An internet gateway (public subnets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    /// A NAT gateway (private subnets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<String>,
}

impl Kind for RouteTableKind {
    type Props = RouteTableProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.route_table",
        doc: "A route table: its routes (to an internet or NAT gateway) and the subnets associated with it. Outputs: `id`.",
        replace_on: &["vpc_id"],
        sends: &[
            Sent::aws("vpc_id", "ec2:CreateRouteTableRequest.VpcId"),
            Sent::aws("routes[].destination", "ec2:CreateRouteRequest.DestinationCidrBlock"),
            Sent::aws("routes[].gateway_id", "ec2:CreateRouteRequest.GatewayId"),
            Sent::aws("routes[].nat_gateway_id", "ec2:CreateRouteRequest.NatGatewayId"),
            Sent::aws("subnet_ids[]", "ec2:AssociateRouteTableRequest.SubnetId"),
        ],
        outputs: &["id"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeRouteTables"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: RouteTableProps) -> Result<RouteTableProps, PropsError> {
        crate::kinds::sort_ids(&mut p.subnet_ids);
        p.routes.sort();
        let mut seen = BTreeSet::new();
        for (i, r) in p.routes.iter().enumerate() {
            if r.gateway_id.is_some() == r.nat_gateway_id.is_some() {
                return Err(PropsError {
                    path: format!("routes[{i}]"),
                    message: "set exactly one of `gateway_id` and `nat_gateway_id`".into(),
                });
            }
            if !seen.insert(r.destination.clone()) {
                return Err(PropsError {
                    path: format!("routes[{i}].destination"),
                    message: format!("two routes to `{}`", r.destination),
                });
            }
        }
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let tables: Vec<RouteTable> =
            all_items!(aws.ec2.describe_route_tables().set_filters(scope_filters(scope)), "ec2:DescribeRouteTables")?;
        Ok(claimed(tables, scope, |t| t.tags(), |name, t, tags| live(name, &t, tags)))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: RouteTableProps = RouteTableKind::props(&d.props)?;
        let out = aws
            .ec2
            .create_route_table()
            .client_token(client_token())
            .vpc_id(&p.vpc_id)
            .tag_specifications(tag_spec(ResourceType::RouteTable, &d.tags))
            .send()
            .await
            .map_err(sdk("ec2:CreateRouteTable"))?;
        let t = out.route_table.ok_or_else(|| AwsError::other("ec2:CreateRouteTable", "response has no table"))?;
        let fresh = live(d.name.clone(), &t, d.tags.clone());
        self.update(aws, d, &fresh).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: RouteTableProps = RouteTableKind::props(&d.props)?;
        let was: RouteTableProps = RouteTableKind::props(&l.props)?;
        let have: BTreeMap<&str, &Route> = was.routes.iter().map(|r| (r.destination.as_str(), r)).collect();
        for r in &p.routes {
            match have.get(r.destination.as_str()) {
                Some(old) if *old == r => {}
                Some(_) => replace_route(aws, &l.id, r).await?,
                None => create_route(aws, &l.id, r).await?,
            }
        }
        for old in &was.routes {
            if !p.routes.iter().any(|r| r.destination == old.destination) {
                let res = aws
                    .ec2
                    .delete_route()
                    .route_table_id(&l.id)
                    .destination_cidr_block(&old.destination)
                    .send()
                    .await
                    .map_err(sdk("ec2:DeleteRoute"));
                not_found(res, &["InvalidRoute.NotFound"])?;
            }
        }
        if p.subnet_ids != was.subnet_ids {
            associate(aws, &l.id, &p.subnet_ids, &was.subnet_ids).await?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // The table's own associations first: a table still associated
        // cannot be deleted.
        for (_, association) in associations(aws, Filter::builder().name("route-table-id").values(&l.id).build())
            .await?
            .into_iter()
            .filter(|(t, _)| *t == l.id)
        {
            disassociate(aws, &association).await?;
        }
        let res = retry_dependency_violation(|| async {
            aws.ec2.delete_route_table().route_table_id(&l.id).send().await.map_err(sdk("ec2:DeleteRouteTable"))
        })
        .await;
        not_found(res, &["InvalidRouteTableID.NotFound"]).map(|_| ())
    }
}

async fn create_route(aws: &Aws, table: &str, r: &Route) -> Result<(), AwsError> {
    let res = aws
        .ec2
        .create_route()
        .route_table_id(table)
        .destination_cidr_block(&r.destination)
        .set_gateway_id(r.gateway_id.clone())
        .set_nat_gateway_id(r.nat_gateway_id.clone())
        .send()
        .await
        .map_err(sdk("ec2:CreateRoute"));
    match res {
        Ok(_) => Ok(()),
        // A lost response to a create that happened, or a route made by
        // hand: make it the one the spec wants.
        Err(e) if e.is("RouteAlreadyExists") => replace_route(aws, table, r).await,
        Err(e) => Err(e),
    }
}

async fn replace_route(aws: &Aws, table: &str, r: &Route) -> Result<(), AwsError> {
    aws.ec2
        .replace_route()
        .route_table_id(table)
        .destination_cidr_block(&r.destination)
        .set_gateway_id(r.gateway_id.clone())
        .set_nat_gateway_id(r.nat_gateway_id.clone())
        .send()
        .await
        .map_err(sdk("ec2:ReplaceRoute"))?;
    Ok(())
}

/// `(route table, association id)` of the non-main subnet associations
/// `filter` selects.
async fn associations(aws: &Aws, filter: Filter) -> Result<Vec<(String, String)>, AwsError> {
    let out = aws.ec2.describe_route_tables().filters(filter).send().await.map_err(sdk("ec2:DescribeRouteTables"))?;
    Ok(out
        .route_tables()
        .iter()
        .flat_map(|t| t.associations())
        .filter(|a| a.main != Some(true) && a.subnet_id.is_some())
        .filter_map(|a| Some((a.route_table_id.clone()?, a.route_table_association_id.clone()?)))
        .collect())
}

async fn disassociate(aws: &Aws, association: &str) -> Result<(), AwsError> {
    let res = aws
        .ec2
        .disassociate_route_table()
        .association_id(association)
        .send()
        .await
        .map_err(sdk("ec2:DisassociateRouteTable"));
    not_found(res, &["InvalidAssociationID.NotFound"]).map(|_| ())
}

/// Moves `want` subnets to `table` (from wherever they are) and releases
/// those in `had` no longer wanted.
async fn associate(aws: &Aws, table: &str, want: &[String], had: &[String]) -> Result<(), AwsError> {
    for subnet in want.iter().filter(|s| !had.contains(s)) {
        let current = associations(aws, Filter::builder().name("association.subnet-id").values(subnet).build()).await?;
        let res = match current.first() {
            Some((t, _)) if t == table => continue,
            Some((_, association)) => aws
                .ec2
                .replace_route_table_association()
                .association_id(association)
                .route_table_id(table)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("ec2:ReplaceRouteTableAssociation")),
            None => aws
                .ec2
                .associate_route_table()
                .route_table_id(table)
                .subnet_id(subnet)
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("ec2:AssociateRouteTable")),
        };
        res?;
    }
    for subnet in had.iter().filter(|s| !want.contains(s)) {
        let current = associations(aws, Filter::builder().name("association.subnet-id").values(subnet).build()).await?;
        for (_, association) in current.into_iter().filter(|(t, _)| t == table) {
            disassociate(aws, &association).await?;
        }
    }
    Ok(())
}

fn live(name: String, t: &RouteTable, tags: BTreeMap<String, String>) -> Live {
    let id = t.route_table_id.clone().unwrap_or_default();
    let mut routes: Vec<Route> = t
        .routes()
        .iter()
        .filter(|r| r.gateway_id() != Some("local") && r.destination_prefix_list_id.is_none())
        .filter_map(|r| {
            Some(Route {
                destination: r.destination_cidr_block.clone()?,
                gateway_id: r.gateway_id.clone(),
                nat_gateway_id: r.nat_gateway_id.clone(),
            })
        })
        .collect();
    routes.sort();
    let mut subnet_ids: Vec<String> =
        t.associations().iter().filter(|a| a.main != Some(true)).filter_map(|a| a.subnet_id.clone()).collect();
    subnet_ids.sort();
    let props = RouteTableProps { vpc_id: t.vpc_id.clone().unwrap_or_default(), routes, subnet_ids };
    Live::new(name, id.clone(), &props, tags)
}
