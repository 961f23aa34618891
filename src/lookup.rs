//! Lookups (Terraform's data sources): read-only reads of objects the stack
//! does not manage, resolved before a plan: the newest AMI of a name, a VPC
//! or subnets by their tags, an SSM parameter, an ACM certificate by its
//! domain, a Route 53 hosted zone. A stack names them under `lookups:` and reads
//! them as `${lookups.NAME.ATTR}`.
//!
//! # Guarantees
//! - Only describe calls: a lookup never changes anything.
//! - One that finds nothing, or more than one where one is needed, is an
//!   error naming its filter: never a guess.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};

/// A kind of lookup: its `type:` and what it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupKind {
    pub type_name: &'static str,
    pub doc: &'static str,
    /// What `${lookups.NAME.ATTR}` may read.
    pub outputs: &'static [&'static str],
    /// The fields it takes besides `type`, and whether each is required.
    pub fields: &'static [(&'static str, bool)],
    /// The output `override:` gives when it is not empty; `None`: the kind
    /// takes no override.
    pub overrides: Option<&'static str>,
}

pub static KINDS: &[LookupKind] = &[
    LookupKind {
        type_name: "ec2.ami",
        doc: "The newest available AMI owned by one of `owners` (account ids, `self`, `amazon`) whose name matches `name` (`*` wildcards). Outputs: `id`, `name`, `creation_date`.",
        outputs: &["id", "name", "creation_date"],
        fields: &[("owners", true), ("name", true)],
        overrides: Some("id"),
    },
    LookupKind {
        type_name: "ec2.vpc",
        doc: "The one VPC carrying all of `tags`. Outputs: `id`, `cidr_block`.",
        outputs: &["id", "cidr_block"],
        fields: &[("tags", true)],
        overrides: Some("id"),
    },
    LookupKind {
        type_name: "ec2.subnets",
        doc: "Every subnet carrying all of `tags` (at least one), ordered by availability zone. Outputs: `ids`, `availability_zones`.",
        outputs: &["ids", "availability_zones"],
        fields: &[("tags", true)],
        overrides: None,
    },
    LookupKind {
        type_name: "ssm.parameter",
        doc: "The SSM parameter `name` (a String or StringList, e.g. Canonical's `/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id`); a SecureString is refused: give it to a container as `secrets:`. Outputs: `value`, `version`.",
        outputs: &["value", "version"],
        fields: &[("name", true)],
        overrides: Some("value"),
    },
    LookupKind {
        type_name: "acm.certificate",
        doc: "The ISSUED ACM certificate whose domain name is `domain`; more than one is an error unless `most_recent: true` (then the latest issued or imported). Outputs: `arn`, `domain`, `not_after`.",
        outputs: &["arn", "domain", "not_after"],
        fields: &[("domain", true), ("most_recent", false)],
        overrides: Some("arn"),
    },
    LookupKind {
        type_name: "route53.zone",
        doc: "The Route 53 hosted zone named `name`: public unless `private: true`. Outputs: `id` (no `/hostedzone/`), `name`.",
        outputs: &["id", "name"],
        fields: &[("name", true), ("private", false)],
        overrides: Some("id"),
    },
];

pub fn kind(type_name: &str) -> Option<&'static LookupKind> {
    KINDS.iter().find(|k| k.type_name == type_name)
}

/// One lookup of a stack, its fields resolved (variables only).
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub kind: &'static LookupKind,
    pub owners: Vec<String>,
    /// An AMI's name pattern, a parameter's or a zone's name.
    pub name: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// A certificate's domain.
    pub domain: Option<String>,
    /// A private hosted zone.
    pub private: bool,
    /// Of several certificates, the latest.
    pub most_recent: bool,
    /// A value given instead (`override: ${var.gitlab_ami}`): when not
    /// empty, the lookup is not made and its [`LookupKind::overrides`]
    /// output is this.
    pub override_id: Option<String>,
}

impl Lookup {
    /// The value given instead of the lookup: its override, when not empty.
    pub fn given(&self) -> Option<&str> {
        self.override_id.as_deref().filter(|o| !o.is_empty())
    }

    /// How its values were found, for the plan: `its override`, or its
    /// [`Lookup::filter`].
    pub fn how(&self) -> String {
        if self.given().is_some() { "its override".to_string() } else { self.filter() }
    }

    /// What it looks for, for the plan and for its errors.
    pub fn filter(&self) -> String {
        let name = self.name.as_deref().unwrap_or_default();
        match self.kind.type_name {
            "ec2.ami" => format!(
                "the newest named `{name}` owned by {}",
                self.owners.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(" or ")
            ),
            "ssm.parameter" => format!("parameter `{name}`"),
            "acm.certificate" => format!("the issued certificate for `{}`", self.domain.as_deref().unwrap_or_default()),
            "route53.zone" => format!("the {} zone `{name}`", if self.private { "private" } else { "public" }),
            _ => format!("tags {}", describe_tags(&self.tags)),
        }
    }
}

/// What a lookup gave: its outputs, or why it has none.
pub type Found = Result<BTreeMap<String, Value>, String>;

/// Makes every lookup of `lookups` (describe calls only).
///
/// # Errors
/// An AWS error; a lookup that finds nothing (or too much) is an `Err` in
/// the map, for the spec to report where the lookup is written.
pub async fn perform(aws: &Aws, lookups: &BTreeMap<String, Lookup>) -> Result<BTreeMap<String, Found>, AwsError> {
    let mut out = BTreeMap::new();
    for (name, l) in lookups {
        let found = match (l.given(), l.kind.overrides) {
            (Some(given), Some(output)) => Ok(BTreeMap::from([(output.to_string(), Value::from(given))])),
            _ => match l.kind.type_name {
                "ec2.ami" => ami(aws, l).await?,
                "ec2.vpc" => vpc(aws, l).await?,
                "ssm.parameter" => parameter(aws, l).await?,
                "acm.certificate" => certificate(aws, l).await?,
                "route53.zone" => zone(aws, l).await?,
                _ => subnets(aws, l).await?,
            },
        };
        out.insert(name.clone(), found);
    }
    Ok(out)
}

fn values<const N: usize>(pairs: [(&str, Value); N]) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

async fn parameter(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    use aws_sdk_ssm::types::ParameterType;
    let name = l.name.clone().unwrap_or_default();
    // Never decrypted: a SecureString is refused below, unread.
    let res = aws.ssm.get_parameter().name(&name).with_decryption(false).send().await.map_err(sdk("ssm:GetParameter"));
    let Some(out) = crate::aws::not_found(res, &["ParameterNotFound"])? else {
        return Ok(Err(format!("no SSM parameter is named `{name}` in this account and region")));
    };
    let Some(p) = out.parameter() else { return Ok(Err(format!("SSM answered no parameter `{name}`"))) };
    Ok(match p.r#type() {
        Some(ParameterType::SecureString) => Err(format!(
            "`{name}` is a SecureString: converge never reads secrets into a plan; give it to a container as `secrets: {{NAME: {}}}`",
            p.arn().unwrap_or("its ARN")
        )),
        _ => Ok(values([("value", Value::from(p.value().unwrap_or_default())), ("version", Value::from(p.version()))])),
    })
}

async fn certificate(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm};
    let domain = l.domain.clone().unwrap_or_default();
    // ListCertificates answers RSA 2048 certificates only unless asked
    // for other key types (ACM API Reference, Includes).
    let every_key = Filters::builder()
        .set_key_types(Some(vec![
            KeyAlgorithm::Rsa1024,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
            KeyAlgorithm::EcPrime256v1,
            KeyAlgorithm::EcSecp384r1,
            KeyAlgorithm::EcSecp521r1,
        ]))
        .build();
    let mut arns = Vec::new();
    let mut pages = aws
        .acm
        .list_certificates()
        .certificate_statuses(CertificateStatus::Issued)
        .includes(every_key)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("acm:ListCertificates"))?;
        for c in page.certificate_summary_list() {
            if c.domain_name() == Some(domain.as_str())
                && let Some(arn) = c.certificate_arn()
            {
                arns.push(arn.to_string());
            }
        }
    }
    arns.sort();
    if arns.is_empty() {
        return Ok(Err(format!("no ISSUED ACM certificate has the domain name `{domain}`")));
    }
    if arns.len() > 1 && !l.most_recent {
        return Ok(Err(format!(
            "{} ISSUED ACM certificates have the domain name `{domain}` ({}): set `most_recent: true` to take the latest",
            arns.len(),
            arns.join(", ")
        )));
    }
    // The latest issued or imported; the ARN breaks a tie the same way each time.
    let mut best: Option<(aws_sdk_acm::primitives::DateTime, String, Option<aws_sdk_acm::primitives::DateTime>)> = None;
    for arn in arns {
        let c = aws
            .acm
            .describe_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .map_err(sdk("acm:DescribeCertificate"))?;
        let c = c.certificate();
        let when = c
            .and_then(|c| c.issued_at().or(c.imported_at()))
            .copied()
            .unwrap_or(aws_sdk_acm::primitives::DateTime::from_secs(0));
        let not_after = c.and_then(|c| c.not_after()).copied();
        if best.as_ref().is_none_or(|(t, a, _)| (when.as_nanos(), &arn) > (t.as_nanos(), a)) {
            best = Some((when, arn, not_after));
        }
    }
    let (_, arn, not_after) = best.expect("at least one certificate");
    let not_after =
        not_after.and_then(|t| t.fmt(aws_sdk_acm::primitives::DateTimeFormat::DateTime).ok()).unwrap_or_default();
    Ok(Ok(values([("arn", Value::from(arn)), ("domain", Value::from(domain)), ("not_after", Value::from(not_after))])))
}

async fn zone(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let name = l.name.clone().unwrap_or_default();
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    // Zones come sorted by name from `dns_name` on: the first page holds
    // every zone of that name unless there are more than 100 of them.
    let out = aws
        .route53
        .list_hosted_zones_by_name()
        .dns_name(&fqdn)
        .send()
        .await
        .map_err(sdk("route53:ListHostedZonesByName"))?;
    let found: Vec<_> = out
        .hosted_zones()
        .iter()
        .filter(|z| z.name() == fqdn && z.config().is_some_and(|c| c.private_zone()) == l.private)
        .collect();
    let kind = if l.private { "private" } else { "public" };
    Ok(match found.as_slice() {
        [] => Err(format!("no {kind} hosted zone is named `{fqdn}`")),
        [z] => Ok(values([
            ("id", Value::from(z.id().trim_start_matches("/hostedzone/"))),
            ("name", Value::from(z.name().trim_end_matches('.'))),
        ])),
        many => Err(format!(
            "{} {kind} hosted zones are named `{fqdn}` ({}): converge cannot tell which",
            many.len(),
            many.iter().map(|z| z.id().trim_start_matches("/hostedzone/")).collect::<Vec<_>>().join(", ")
        )),
    })
}

fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter().map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build()).collect()
}

fn describe_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

async fn ami(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let pattern = l.name.clone().unwrap_or_default();
    let out = aws
        .ec2
        .describe_images()
        .set_owners(Some(l.owners.clone()))
        .filters(Filter::builder().name("name").values(&pattern).build())
        .filters(Filter::builder().name("state").values("available").build())
        .send()
        .await
        .map_err(sdk("ec2:DescribeImages"))?;
    // ISO 8601 dates order as text; the id breaks a tie the same way each time.
    let newest =
        out.images().iter().max_by(|a, b| (a.creation_date(), a.image_id()).cmp(&(b.creation_date(), b.image_id())));
    Ok(match newest {
        None => Err(format!(
            "no available AMI owned by {} is named `{pattern}`",
            l.owners.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(" or ")
        )),
        Some(i) => Ok(BTreeMap::from([
            ("id".to_string(), Value::from(i.image_id().unwrap_or_default())),
            ("name".to_string(), Value::from(i.name().unwrap_or_default())),
            ("creation_date".to_string(), Value::from(i.creation_date().unwrap_or_default())),
        ])),
    })
}

async fn vpc(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let out = aws
        .ec2
        .describe_vpcs()
        .set_filters(Some(tag_filters(&l.tags)))
        .send()
        .await
        .map_err(sdk("ec2:DescribeVpcs"))?;
    Ok(match out.vpcs() {
        [] => Err(format!("no VPC has the tags {}", describe_tags(&l.tags))),
        [v] => Ok(BTreeMap::from([
            ("id".to_string(), Value::from(v.vpc_id().unwrap_or_default())),
            ("cidr_block".to_string(), Value::from(v.cidr_block().unwrap_or_default())),
        ])),
        many => Err(format!(
            "{} VPCs have the tags {} ({}): add a tag that tells them apart",
            many.len(),
            describe_tags(&l.tags),
            many.iter().filter_map(|v| v.vpc_id()).collect::<Vec<_>>().join(", ")
        )),
    })
}

async fn subnets(aws: &Aws, l: &Lookup) -> Result<Found, AwsError> {
    let mut found = Vec::new();
    let mut pages = aws.ec2.describe_subnets().set_filters(Some(tag_filters(&l.tags))).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("ec2:DescribeSubnets"))?;
        for s in page.subnets() {
            found.push((
                s.availability_zone().unwrap_or_default().to_string(),
                s.subnet_id().unwrap_or_default().to_string(),
            ));
        }
    }
    found.sort();
    Ok(if found.is_empty() {
        Err(format!("no subnet has the tags {}", describe_tags(&l.tags)))
    } else {
        Ok(BTreeMap::from([
            ("ids".to_string(), found.iter().map(|(_, id)| Value::from(id.clone())).collect()),
            ("availability_zones".to_string(), found.iter().map(|(az, _)| Value::from(az.clone())).collect()),
        ]))
    })
}
