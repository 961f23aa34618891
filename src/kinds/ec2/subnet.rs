//! `ec2.subnet`: a subnet of a VPC in one availability zone.

use crate::aws::waited;
use std::collections::BTreeMap;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, CREATE_ATTEMPTS, create_or_adopt, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, no_retry, resource_filters, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, LinkProblem, Linked, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct SubnetKind;

/// Properties of `ec2.subnet`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubnetProps {
    /// The VPC, usually `${resources.vpc.id}`. Changing it replaces the subnet.
    pub vpc_id: String,
    /// IPv4 CIDR block inside the VPC's. Changing it replaces the subnet.
    #[serde(with = "crate::kinds::cidr_serde")]
    #[schemars(with = "String")]
    pub cidr_block: String,
    /// e.g. `${region}a`. Changing it replaces the subnet.
    pub availability_zone: String,
    /// Give instances a public IP (default false: converge builds private
    /// networks).
    #[serde(default)]
    pub map_public_ip_on_launch: bool,
}

/// The `cidr_block` of canonical VPC or subnet properties, when known.
fn net(props: &Value) -> Option<ipnet::IpNet> {
    props.get("cidr_block")?.as_str()?.parse().ok()
}

impl Kind for SubnetKind {
    type Props = SubnetProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.subnet",
        doc: "A subnet in one availability zone. Outputs: `id`, `cidr_block`, `availability_zone`.",
        replace_on: &["vpc_id", "cidr_block", "availability_zone"],
        sends: &[
            Sent::aws("vpc_id", "ec2:CreateSubnetRequest.VpcId"),
            Sent::aws("cidr_block", "ec2:CreateSubnetRequest.CidrBlock"),
            Sent::aws("availability_zone", "ec2:CreateSubnetRequest.AvailabilityZone"),
            Sent::aws("map_public_ip_on_launch", "ec2:ModifySubnetAttributeRequest.MapPublicIpOnLaunch"),
        ],
        outputs: &["id", "cidr_block", "availability_zone"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeSubnets"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: SubnetProps) -> Result<SubnetProps, PropsError> {
        crate::kinds::check_block_size(&p.cidr_block)?;
        Ok(p)
    }
    fn check_links<'a>(&self, props: &Value, linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem> {
        let (Some(vpc), Some(mine)) = (linked("vpc_id"), net(props)) else { return Vec::new() };
        match net(vpc.props) {
            Some(outer) if !outer.contains(&mine) => vec![LinkProblem {
                attr: "cidr_block".into(),
                message: format!("`{mine}` is not inside the VPC's block `{outer}`"),
                other: Some((vpc.name, "cidr_block".into())),
            }],
            _ => Vec::new(),
        }
    }
    fn check_all(&self, members: &[crate::kinds::Member<'_>]) -> Vec<(String, LinkProblem)> {
        // Two subnets of one VPC may not overlap: compared within each VPC
        // (a quota of 200 subnets a VPC by default), never across the stack.
        let mut by_vpc: BTreeMap<&str, Vec<(&str, ipnet::IpNet)>> = BTreeMap::new();
        for m in members {
            if let (Some(vpc), Some(n)) = (m.links.get("vpc_id"), net(m.props)) {
                by_vpc.entry(vpc).or_default().push((m.name, n));
            }
        }
        let mut out = Vec::new();
        for subnets in by_vpc.values() {
            for (i, (a, na)) in subnets.iter().enumerate() {
                for (b, nb) in &subnets[i + 1..] {
                    if na.contains(nb) || nb.contains(na) {
                        out.push((
                            b.to_string(),
                            LinkProblem {
                                attr: "cidr_block".into(),
                                message: format!("`{nb}` overlaps `{na}` of subnet `{a}` in the same VPC"),
                                other: Some((a.to_string(), "cidr_block".into())),
                            },
                        ));
                    }
                }
            }
        }
        out
    }

    fn replace_order(&self, forcing: &[&str]) -> crate::kinds::ReplaceOrder {
        if forcing.contains(&"vpc_id") {
            crate::kinds::ReplaceOrder::CreateFirst
        } else {
            crate::kinds::ReplaceOrder::DeleteFirst("a subnet's CIDR block may not overlap another's in the same VPC")
        }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let subnets = all_items!(aws.ec2.describe_subnets().set_filters(scope_filters(scope)), "ec2:DescribeSubnets")?;
        Ok(claimed(subnets, scope, |s| s.tags(), live))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: SubnetProps = SubnetKind::props(&d.props)?;
        let subnet = create_or_adopt(
            CREATE_ATTEMPTS,
            || async {
                let out = aws
                    .ec2
                    .create_subnet()
                    .vpc_id(&p.vpc_id)
                    .cidr_block(&p.cidr_block)
                    .availability_zone(&p.availability_zone)
                    .tag_specifications(tag_spec(ResourceType::Subnet, &d.tags))
                    .customize()
                    .config_override(no_retry())
                    .send()
                    .await
                    .map_err(sdk("ec2:CreateSubnet"))?;
                out.subnet.ok_or_else(|| AwsError::other("ec2:CreateSubnet", "response has no subnet"))
            },
            || find(aws, d),
        )
        .await?;
        let id = subnet.subnet_id.clone().unwrap_or_default();
        aws.ec2
            .wait_until_subnet_available()
            .subnet_ids(&id)
            .wait(d.timeout)
            .await
            .map_err(waited("ec2:DescribeSubnets (wait available)"))?;
        let fresh = live(d.name.clone(), subnet, d.tags.clone());
        self.update(aws, d, &fresh).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: SubnetProps = SubnetKind::props(&d.props)?;
        let was: SubnetProps = SubnetKind::props(&l.props)?;
        if p.map_public_ip_on_launch != was.map_public_ip_on_launch {
            aws.ec2
                .modify_subnet_attribute()
                .subnet_id(&l.id)
                .map_public_ip_on_launch(AttributeBooleanValue::builder().value(p.map_public_ip_on_launch).build())
                .send()
                .await
                .map_err(sdk("ec2:ModifySubnetAttribute"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws.ec2.delete_subnet().subnet_id(&l.id).send().await.map_err(sdk("ec2:DeleteSubnet"));
        not_found(res, &["InvalidSubnetID.NotFound"]).map(|_| ())
    }
}

async fn find(aws: &Aws, d: &Desired) -> Result<Option<aws_sdk_ec2::types::Subnet>, AwsError> {
    let out = aws
        .ec2
        .describe_subnets()
        .set_filters(Some(resource_filters(&d.tags)))
        .send()
        .await
        .map_err(sdk("ec2:DescribeSubnets"))?;
    Ok(out.subnets.unwrap_or_default().into_iter().next())
}

fn live(name: String, s: aws_sdk_ec2::types::Subnet, tags: BTreeMap<String, String>) -> Live {
    let id = s.subnet_id.unwrap_or_default();
    let props = SubnetProps {
        vpc_id: s.vpc_id.unwrap_or_default(),
        cidr_block: s.cidr_block.unwrap_or_default(),
        availability_zone: s.availability_zone.unwrap_or_default(),
        map_public_ip_on_launch: s.map_public_ip_on_launch.unwrap_or(false),
    };
    Live::new(name, id, &props, tags)
        .output("cidr_block", props.cidr_block.clone())
        .output("availability_zone", props.availability_zone.clone())
}
