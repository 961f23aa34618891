//! `ec2.vpc`: a VPC.

use crate::aws::waited;
use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, CREATE_ATTEMPTS, create_or_adopt, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{from_tags, no_retry, resource_filters, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;
use aws_sdk_ec2::client::Waiters;

pub struct VpcKind;

/// Properties of `ec2.vpc`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcProps {
    /// IPv4 CIDR block, e.g. `10.0.0.0/16`. Changing it replaces the VPC.
    #[serde(with = "crate::kinds::cidr_serde")]
    #[schemars(with = "String")]
    pub cidr_block: String,
    /// Amazon-provided DNS resolution (default true).
    #[serde(default = "crate::kinds::yes")]
    pub enable_dns_support: bool,
    /// DNS hostnames for instances (default true: RDS and EFS names need it).
    #[serde(default = "crate::kinds::yes")]
    pub enable_dns_hostnames: bool,
}

impl Kind for VpcKind {
    type Props = VpcProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.vpc",
        doc: "A VPC. Outputs: `id`, `cidr_block`.",
        replace_on: &["cidr_block"],
        sends: &[
            Sent::aws("cidr_block", "ec2:CreateVpcRequest.CidrBlock"),
            Sent::aws("enable_dns_support", "ec2:ModifyVpcAttributeRequest.EnableDnsSupport"),
            Sent::aws("enable_dns_hostnames", "ec2:ModifyVpcAttributeRequest.EnableDnsHostnames"),
        ],
        outputs: &["id", "cidr_block"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads {
            once: &["ec2:DescribeVpcs"],
            per_object: &["ec2:DescribeVpcAttribute", "ec2:DescribeVpcAttribute"],
            per_parent: &[],
        },
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: VpcProps) -> Result<VpcProps, PropsError> {
        crate::kinds::check_block_size(&p.cidr_block)?;
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let vpcs = all_items!(aws.ec2.describe_vpcs().set_filters(scope_filters(scope)), "ec2:DescribeVpcs")?;
        let mut out = Vec::new();
        for v in vpcs {
            let tags = from_tags(v.tags());
            let (Some(id), Some(name)) = (v.vpc_id.clone(), scope.owner(&tags, None)) else {
                continue;
            };
            out.push(live(aws, id, v.cidr_block.unwrap_or_default(), name, tags));
        }
        futures_util::future::try_join_all(out).await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: VpcProps = VpcKind::props(&d.props)?;
        let id = create_or_adopt(
            CREATE_ATTEMPTS,
            || async {
                let out = aws
                    .ec2
                    .create_vpc()
                    .cidr_block(&p.cidr_block)
                    .tag_specifications(tag_spec(ResourceType::Vpc, &d.tags))
                    .customize()
                    .config_override(no_retry())
                    .send()
                    .await
                    .map_err(sdk("ec2:CreateVpc"))?;
                Ok(out.vpc.and_then(|v| v.vpc_id).unwrap_or_default())
            },
            || find(aws, d),
        )
        .await?;
        aws.ec2
            .wait_until_vpc_available()
            .vpc_ids(&id)
            .wait(d.timeout)
            .await
            .map_err(waited("ec2:DescribeVpcs (wait available)"))?;
        let fresh = live(aws, id, p.cidr_block.clone(), d.name.clone(), d.tags.clone()).await?;
        self.update(aws, d, &fresh).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: VpcProps = VpcKind::props(&d.props)?;
        let was: VpcProps = VpcKind::props(&l.props)?;
        // ModifyVpcAttribute takes one attribute per call.
        if p.enable_dns_support != was.enable_dns_support {
            aws.ec2
                .modify_vpc_attribute()
                .vpc_id(&l.id)
                .enable_dns_support(AttributeBooleanValue::builder().value(p.enable_dns_support).build())
                .send()
                .await
                .map_err(sdk("ec2:ModifyVpcAttribute"))?;
        }
        if p.enable_dns_hostnames != was.enable_dns_hostnames {
            aws.ec2
                .modify_vpc_attribute()
                .vpc_id(&l.id)
                .enable_dns_hostnames(AttributeBooleanValue::builder().value(p.enable_dns_hostnames).build())
                .send()
                .await
                .map_err(sdk("ec2:ModifyVpcAttribute"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = crate::aws::retry_dependency_violation(|| async {
            aws.ec2.delete_vpc().vpc_id(&l.id).send().await.map_err(sdk("ec2:DeleteVpc"))
        })
        .await;
        not_found(res, &["InvalidVpcID.NotFound"]).map(|_| ())
    }
}

/// The VPC a create call tagged for `d`, if any.
async fn find(aws: &Aws, d: &Desired) -> Result<Option<String>, AwsError> {
    let out = aws
        .ec2
        .describe_vpcs()
        .set_filters(Some(resource_filters(&d.tags)))
        .send()
        .await
        .map_err(sdk("ec2:DescribeVpcs"))?;
    Ok(out.vpcs().iter().find_map(|v| v.vpc_id.clone()))
}

async fn attribute(aws: &Aws, id: &str, attr: VpcAttributeName) -> Result<bool, AwsError> {
    let out = aws
        .ec2
        .describe_vpc_attribute()
        .vpc_id(id)
        .attribute(attr)
        .send()
        .await
        .map_err(sdk("ec2:DescribeVpcAttribute"))?;
    let v = out.enable_dns_support.or(out.enable_dns_hostnames);
    Ok(v.and_then(|b| b.value).unwrap_or(false))
}

/// Reads the two DNS attributes (DescribeVpcs does not return them; the
/// two calls run concurrently).
async fn live(
    aws: &Aws,
    id: String,
    cidr: String,
    name: String,
    tags: std::collections::BTreeMap<String, String>,
) -> Result<Live, AwsError> {
    let (support, hostnames) = futures_util::future::try_join(
        attribute(aws, &id, VpcAttributeName::EnableDnsSupport),
        attribute(aws, &id, VpcAttributeName::EnableDnsHostnames),
    )
    .await?;
    let props = VpcProps { cidr_block: cidr.clone(), enable_dns_support: support, enable_dns_hostnames: hostnames };
    Ok(Live::new(name, id.clone(), &props, tags).output("cidr_block", cidr))
}
