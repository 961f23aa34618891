//! `ec2.security_group`: a security group with its ingress and egress rules.
//!
//! Rules are a set. The spec's rules (several sources and a port range per
//! entry) are flattened into one canonical rule per protocol, port range and
//! source, sorted: the shape `DescribeSecurityGroups` is flattened into too,
//! so the diff names exactly the rules to authorize and revoke.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroup as AwsGroup, UserIdGroupPair};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found, retry_dependency_violation};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{claimed, from_tags, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct SecurityGroupKind;

/// Properties of `ec2.security_group` as written in a spec.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupProps {
    /// The VPC. Changing it replaces the group.
    pub vpc_id: String,
    /// Changing it replaces the group (EC2 cannot edit it).
    #[serde(default = "default_description")]
    pub description: String,
    /// Inbound rules. The group has exactly these.
    #[serde(default)]
    pub ingress: Vec<RuleSpec>,
    /// Outbound rules. Omitted: left as they are (AWS creates allow-all);
    /// given: the group has exactly these.
    #[serde(default)]
    pub egress: Option<Vec<RuleSpec>>,
}

fn default_description() -> String {
    "Managed by converge".into()
}

/// One rule entry: a protocol, ports, and any number of sources.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub protocol: Protocol,
    /// Shorthand for `from_port` = `to_port`.
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub from_port: Option<i32>,
    #[serde(default)]
    pub to_port: Option<i32>,
    /// IPv4 CIDR sources (ingress) or destinations (egress).
    #[serde(default)]
    pub cidr_blocks: Vec<String>,
    /// Security group ids, e.g. `${resources.app_sg.id}`.
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    #[serde(alias = "-1")]
    All,
}

/// One canonical rule: one protocol, port range and peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rule {
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The canonical properties: what is diffed and what create/update read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Canonical {
    pub vpc_id: String,
    pub description: String,
    pub ingress: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<Rule>>,
}

fn flatten(rules: &[RuleSpec], field: &str) -> Result<Vec<Rule>, PropsError> {
    let mut out = BTreeSet::new();
    for (i, r) in rules.iter().enumerate() {
        let err = |message: String| PropsError { path: format!("{field}[{i}]"), message };
        let (from, to) = match (r.protocol, r.port, r.from_port, r.to_port) {
            (Protocol::All, None, None, None) => (None, None),
            (Protocol::All, ..) => return Err(err("protocol `all` takes no ports".into())),
            (_, Some(p), None, None) => (Some(p), Some(p)),
            (_, None, Some(f), Some(t)) => (Some(f), Some(t)),
            (Protocol::Icmp, None, None, None) => (Some(-1), Some(-1)),
            (_, Some(_), ..) => {
                return Err(err("give either `port` or `from_port` and `to_port`, not both".into()));
            }
            _ => return Err(err("give `port`, or both `from_port` and `to_port`".into())),
        };
        if r.protocol != Protocol::Icmp
            && let (Some(f), Some(t)) = (from, to)
            && !(0..=65535).contains(&f) | !(0..=65535).contains(&t) | (f > t)
        {
            return Err(err(format!("port range {f}-{t} is not within 0-65535 and ascending")));
        }
        if r.cidr_blocks.is_empty() && r.security_groups.is_empty() {
            return Err(err("a rule needs `cidr_blocks` or `security_groups`".into()));
        }
        let protocol = match r.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
        };
        let base = Rule {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            cidr: None,
            security_group: None,
            description: r.description.clone(),
        };
        for c in &r.cidr_blocks {
            let cidr = crate::kinds::cidr_serde::deserialize(serde_json::Value::String(c.clone()))
                .map_err(|e| err(e.to_string()))?;
            out.insert(Rule { cidr: Some(cidr), ..base.clone() });
        }
        for g in &r.security_groups {
            out.insert(Rule { security_group: Some(g.clone()), ..base.clone() });
        }
    }
    Ok(out.into_iter().collect())
}

impl Kind for SecurityGroupKind {
    type Props = SecurityGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.security_group",
        doc: "A security group; rules reference CIDRs or other groups. Outputs: `id`, `name`.",
        replace_on: &["vpc_id", "description"],
        sends: &[
            Sent::aws("vpc_id", "ec2:CreateSecurityGroupRequest.VpcId"),
            Sent::aws("description", "ec2:CreateSecurityGroupRequest.Description"),
            Sent::aws("ingress[].protocol", "ec2:IpPermission.IpProtocol"),
            Sent::aws("ingress[].port", "ec2:IpPermission.FromPort"),
            Sent::aws("ingress[].from_port", "ec2:IpPermission.FromPort"),
            Sent::aws("ingress[].to_port", "ec2:IpPermission.ToPort"),
            Sent::aws("ingress[].cidr_blocks[]", "ec2:IpRange.CidrIp"),
            Sent::aws("ingress[].security_groups[]", "ec2:UserIdGroupPair.GroupId"),
            Sent::aws("ingress[].description", "ec2:IpRange.Description"),
            Sent::aws("egress[].protocol", "ec2:IpPermission.IpProtocol"),
            Sent::aws("egress[].port", "ec2:IpPermission.FromPort"),
            Sent::aws("egress[].from_port", "ec2:IpPermission.FromPort"),
            Sent::aws("egress[].to_port", "ec2:IpPermission.ToPort"),
            Sent::aws("egress[].cidr_blocks[]", "ec2:IpRange.CidrIp"),
            Sent::aws("egress[].security_groups[]", "ec2:UserIdGroupPair.GroupId"),
            Sent::aws("egress[].description", "ec2:IpRange.Description"),
        ],
        outputs: &["id", "name"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads { once: &["ec2:DescribeSecurityGroups"], per_object: &[], per_parent: &[] },
        ..Facts::DEFAULT
    };
    fn canonicalize(&self, props: Value) -> Result<Value, PropsError> {
        let p: SecurityGroupProps = crate::kinds::typed(props)?;
        let egress = match &p.egress {
            Some(e) => Some(flatten(e, "egress")?),
            None => None,
        };
        Ok(crate::kinds::to_value(&Canonical {
            vpc_id: p.vpc_id,
            description: p.description,
            ingress: flatten(&p.ingress, "ingress")?,
            egress,
        }))
    }

    fn replace_order(&self, forcing: &[&str]) -> crate::kinds::ReplaceOrder {
        // Names are unique per VPC: a group in another VPC keeps its name.
        if forcing.contains(&"vpc_id") || forcing.contains(&"name") {
            crate::kinds::ReplaceOrder::CreateFirst
        } else {
            crate::kinds::ReplaceOrder::CreateFirstRenamed
        }
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 255 || name.starts_with("sg-") {
            return Err("a security group name is 1-255 characters and does not start with `sg-`".into());
        }
        Ok(())
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let groups = all_items!(
            aws.ec2.describe_security_groups().set_filters(scope_filters(scope)),
            "ec2:DescribeSecurityGroups"
        )?;
        Ok(claimed(groups, scope, |g| g.tags(), live))
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: Canonical = parse(&d.props)?;
        // The name is unique per VPC: a create retried after a lost
        // response fails with InvalidGroup.Duplicate, and the group the
        // first attempt made is taken (another's never is).
        let res = aws
            .ec2
            .create_security_group()
            .group_name(&d.physical_name)
            .description(&p.description)
            .vpc_id(&p.vpc_id)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, &d.tags))
            .send()
            .await
            .map_err(sdk("ec2:CreateSecurityGroup"));
        let (fresh, existed) = match res {
            Ok(out) => (describe(aws, "group-id", out.group_id().unwrap_or_default()).await?, false),
            Err(e) if e.is("InvalidGroup.Duplicate") => {
                let found = aws
                    .ec2
                    .describe_security_groups()
                    .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&p.vpc_id).build())
                    .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values(&d.physical_name).build())
                    .send()
                    .await
                    .map_err(sdk("ec2:DescribeSecurityGroups"))?;
                (found.security_groups.unwrap_or_default().into_iter().next(), true)
            }
            Err(e) => return Err(e),
        };
        let g = fresh.ok_or_else(|| AwsError::other("ec2:CreateSecurityGroup", "created group not found"))?;
        let tags = from_tags(g.tags());
        if existed {
            d.take_if_ours("ec2:CreateSecurityGroup", &tags)?;
        }
        let l = live(d.name.clone(), g, tags);
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: Canonical = parse(&d.props)?;
        let was: Canonical = parse(&l.props)?;
        let (revoke, grant) = rule_delta(&was.ingress, &p.ingress);
        change_rules(aws, &l.id, Direction::Ingress, Change::Revoke, &revoke).await?;
        change_rules(aws, &l.id, Direction::Ingress, Change::Authorize, &grant).await?;
        let mut egress_now = was.egress.clone();
        if let Some(want) = &p.egress {
            let (revoke, grant) = rule_delta(was.egress.as_deref().unwrap_or_default(), want);
            change_rules(aws, &l.id, Direction::Egress, Change::Revoke, &revoke).await?;
            change_rules(aws, &l.id, Direction::Egress, Change::Authorize, &grant).await?;
            egress_now = Some(want.clone());
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        let now = Canonical { egress: egress_now, ..p };
        Ok(Live { props: crate::kinds::to_value(&now), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = retry_dependency_violation(|| async {
            aws.ec2.delete_security_group().group_id(&l.id).send().await.map_err(sdk("ec2:DeleteSecurityGroup"))
        })
        .await;
        not_found(res, &["InvalidGroup.NotFound"]).map(|_| ())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Authorize,
    Revoke,
}

/// Authorizes or revokes `rules` on group `id`, in one call.
///
/// # Guarantees
/// Safe to repeat after a lost response: EC2 answers a repeated authorize
/// with `InvalidPermission.Duplicate` and a repeated revoke with
/// `InvalidPermission.NotFound`. Then the group is read back, and only the
/// rules still to change are sent again, one by one; rules that already
/// are as wanted count as done.
async fn change_rules(aws: &Aws, id: &str, dir: Direction, change: Change, rules: &[Rule]) -> Result<(), AwsError> {
    if rules.is_empty() {
        return Ok(());
    }
    let op = op_name(dir, change);
    let settled = match change {
        Change::Authorize => "InvalidPermission.Duplicate",
        Change::Revoke => "InvalidPermission.NotFound",
    };
    match send_rules(aws, id, dir, change, rules).await {
        Err(e) if e.is(settled) => {}
        other => return other,
    }
    tracing::info!(group = id, op, "some rules were already as wanted; reading the group back");
    let out =
        aws.ec2.describe_security_groups().group_ids(id).send().await.map_err(sdk("ec2:DescribeSecurityGroups"))?;
    let Some(g) = out.security_groups.unwrap_or_default().into_iter().next() else {
        return Err(AwsError::other(op, format!("{id} not found when reading its rules back")));
    };
    let now: Canonical = parse(&live(String::new(), g, BTreeMap::new()).props)?;
    let have = match dir {
        Direction::Ingress => now.ingress,
        Direction::Egress => now.egress.unwrap_or_default(),
    };
    for rule in rules {
        let present = have.contains(rule);
        if present == (change == Change::Authorize) {
            continue;
        }
        match send_rules(aws, id, dir, change, std::slice::from_ref(rule)).await {
            Err(e) if e.is(settled) => {}
            other => other?,
        }
    }
    Ok(())
}

fn op_name(dir: Direction, change: Change) -> &'static str {
    match (dir, change) {
        (Direction::Ingress, Change::Authorize) => "ec2:AuthorizeSecurityGroupIngress",
        (Direction::Ingress, Change::Revoke) => "ec2:RevokeSecurityGroupIngress",
        (Direction::Egress, Change::Authorize) => "ec2:AuthorizeSecurityGroupEgress",
        (Direction::Egress, Change::Revoke) => "ec2:RevokeSecurityGroupEgress",
    }
}

async fn send_rules(aws: &Aws, id: &str, dir: Direction, change: Change, rules: &[Rule]) -> Result<(), AwsError> {
    let perms = Some(permissions(rules));
    let op = op_name(dir, change);
    // Four calls of one shape, each its own SDK builder type.
    macro_rules! send {
        ($call:ident) => {
            aws.ec2
                .$call()
                .group_id(id)
                .set_ip_permissions(perms)
                .send()
                .await
                .map(|_| ())
                .map_err(|x| AwsError::from_sdk(op, x))
        };
    }
    match (dir, change) {
        (Direction::Ingress, Change::Authorize) => send!(authorize_security_group_ingress),
        (Direction::Ingress, Change::Revoke) => send!(revoke_security_group_ingress),
        (Direction::Egress, Change::Authorize) => send!(authorize_security_group_egress),
        (Direction::Egress, Change::Revoke) => send!(revoke_security_group_egress),
    }
}

fn parse(v: &Value) -> Result<Canonical, AwsError> {
    crate::kinds::props("ec2.security_group", v)
}

/// Rules to revoke (in `live` only) and to authorize (in `want` only).
/// A rule whose description changed is revoked and authorized again.
pub fn rule_delta(live: &[Rule], want: &[Rule]) -> (Vec<Rule>, Vec<Rule>) {
    let live_set: BTreeSet<&Rule> = live.iter().collect();
    let want_set: BTreeSet<&Rule> = want.iter().collect();
    (
        live_set.difference(&want_set).map(|r| (*r).clone()).collect(),
        want_set.difference(&live_set).map(|r| (*r).clone()).collect(),
    )
}

fn permissions(rules: &[Rule]) -> Vec<IpPermission> {
    rules
        .iter()
        .map(|r| {
            let mut p = IpPermission::builder()
                .ip_protocol(if r.protocol == "all" { "-1" } else { r.protocol.as_str() })
                .set_from_port(r.from_port)
                .set_to_port(r.to_port);
            if let Some(c) = &r.cidr {
                p = p.ip_ranges(IpRange::builder().cidr_ip(c).set_description(r.description.clone()).build());
            }
            if let Some(g) = &r.security_group {
                p = p.user_id_group_pairs(
                    UserIdGroupPair::builder().group_id(g).set_description(r.description.clone()).build(),
                );
            }
            p.build()
        })
        .collect()
}

fn flatten_live(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = BTreeSet::new();
    for p in perms {
        let protocol = match p.ip_protocol() {
            Some("-1") | None => "all",
            Some("6") => "tcp",
            Some("17") => "udp",
            Some("1") => "icmp",
            Some(other) => other,
        }
        .to_string();
        let (from, to) = if protocol == "all" { (None, None) } else { (p.from_port, p.to_port) };
        let base = Rule { protocol, from_port: from, to_port: to, cidr: None, security_group: None, description: None };
        for r in p.ip_ranges() {
            out.insert(Rule {
                cidr: r.cidr_ip.clone(),
                description: r.description.clone().filter(|d| !d.is_empty()),
                ..base.clone()
            });
        }
        for g in p.user_id_group_pairs() {
            out.insert(Rule {
                security_group: g.group_id.clone(),
                description: g.description.clone().filter(|d| !d.is_empty()),
                ..base.clone()
            });
        }
    }
    out.into_iter().collect()
}

async fn describe(aws: &Aws, filter: &str, value: &str) -> Result<Option<AwsGroup>, AwsError> {
    let out = aws
        .ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name(filter).values(value).build())
        .send()
        .await
        .map_err(sdk("ec2:DescribeSecurityGroups"))?;
    Ok(out.security_groups.unwrap_or_default().into_iter().next())
}

fn live(name: String, g: AwsGroup, tags: BTreeMap<String, String>) -> Live {
    let id = g.group_id.clone().unwrap_or_default();
    let group_name = g.group_name.clone().unwrap_or_default();
    let props = Canonical {
        vpc_id: g.vpc_id.clone().unwrap_or_default(),
        description: g.description.clone().unwrap_or_default(),
        ingress: flatten_live(g.ip_permissions()),
        egress: Some(flatten_live(g.ip_permissions_egress())),
    };
    Live::new(name, id, &props, tags).output("name", group_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_sources_and_sorts() {
        let v = SecurityGroupKind
            .canonicalize(json!({
                "vpc_id": "vpc-1",
                "ingress": [
                    {"protocol": "tcp", "port": 443, "cidr_blocks": ["10.0.0.0/16", "10.1.0.0/16"]},
                    {"protocol": "tcp", "from_port": 22, "to_port": 22, "security_groups": ["sg-1"]},
                ]
            }))
            .unwrap();
        let c: Canonical = serde_json::from_value(v).unwrap();
        let ports: Vec<_> = c.ingress.iter().map(|r| (r.from_port, r.cidr.clone(), r.security_group.clone())).collect();
        assert_eq!(
            ports,
            [
                (Some(22), None, Some("sg-1".into())),
                (Some(443), Some("10.0.0.0/16".into()), None),
                (Some(443), Some("10.1.0.0/16".into()), None)
            ]
        );
        assert_eq!(c.egress, None);
        assert_eq!(c.description, "Managed by converge");
    }

    #[test]
    fn rejects_bad_rules_with_their_index() {
        let bad = |rule: Value| SecurityGroupKind.canonicalize(json!({"vpc_id": "v", "ingress": [rule]})).unwrap_err();
        assert_eq!(bad(json!({"protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"]})).path, "ingress[0]");
        assert!(bad(json!({"protocol": "all", "port": 1, "cidr_blocks": ["10.0.0.0/8"]})).message.contains("no ports"));
        assert!(bad(json!({"protocol": "tcp", "port": 1})).message.contains("cidr_blocks"));
        assert!(
            bad(json!({"protocol": "tcp", "from_port": 9, "to_port": 1, "cidr_blocks": ["10.0.0.0/8"]}))
                .message
                .contains("ascending")
        );
        assert!(
            bad(json!({"protocol": "tcp", "port": 1, "cidr_blocks": ["10.0.0.1/8"]}))
                .message
                .contains("did you mean `10.0.0.0/8`")
        );
        assert_eq!(
            SecurityGroupKind
                .canonicalize(json!({"vpc_id": "v", "ingres": []}))
                .unwrap_err()
                .message
                .split(',')
                .next()
                .unwrap(),
            "unknown field `ingres`"
        );
    }

    #[test]
    fn live_permissions_flatten_to_the_same_shape() {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip("10.1.0.0/16").build())
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
            .build();
        let live = flatten_live(&[perm, all]);
        let want: Canonical = serde_json::from_value(
            SecurityGroupKind
                .canonicalize(json!({"vpc_id": "v", "ingress": [{"protocol": "tcp", "port": 443, "cidr_blocks": ["10.1.0.0/16", "10.0.0.0/16"]}, {"protocol": "all", "cidr_blocks": ["0.0.0.0/0"]}]}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(live, want.ingress);
        let (revoke, grant) = rule_delta(&live, &want.ingress[..1]);
        assert_eq!((revoke.len(), grant.len()), (2, 0));
    }
}
