//! `elasticache.replication_group`: Redis with cluster mode disabled (GitLab
//! does not support Redis Cluster), a primary and replicas, Multi-AZ with
//! automatic failover, encrypted in transit and at rest.
//!
//! Identity: the replication group id (the physical name) and its tags.
//! Subnet group and security groups are reported on the member clusters
//! (one DescribeCacheClusters call for the whole kind).

use crate::aws::waited;
use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_elasticache::client::Waiters;
use aws_sdk_elasticache::types::{AutomaticFailoverStatus, MultiAzStatus, ReplicationGroup};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, Polled, not_found};
use crate::kinds::db_groups::ArnTagging;
use crate::kinds::elasticache::{CacheTags, check_id, to_tags};
use crate::kinds::{Desired, Facts, Kind, LinkProblem, Linked, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct ReplicationGroupKind;

/// Properties of `elasticache.replication_group`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicationGroupProps {
    #[serde(default = "default_description")]
    pub description: String,
    /// `redis` (default) or `valkey`. Changing it replaces the group.
    #[serde(default = "redis")]
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// e.g. `cache.r7g.large`. Updated in place.
    pub node_type: String,
    /// Primary plus replicas (default 2). Updated in place.
    #[serde(default = "crate::kinds::int::<2>")]
    pub num_cache_clusters: i32,
    #[serde(default = "crate::kinds::yes")]
    pub automatic_failover: bool,
    #[serde(default = "crate::kinds::yes")]
    pub multi_az: bool,
    /// Changing it replaces the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_ids: Option<Vec<String>>,
    /// An `elasticache.parameter_group` whose family matches the engine
    /// version (`redis7` for 7.x); omitted: the engine's default group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group_name: Option<String>,
    /// Changing it replaces the group.
    #[serde(default = "crate::kinds::yes")]
    pub at_rest_encryption: bool,
    /// Changing it replaces the group (GitLab: `gitlab_rails['redis_ssl']`).
    #[serde(default = "crate::kinds::yes")]
    pub transit_encryption: bool,
    /// Changing it replaces the group.
    #[serde(default = "crate::kinds::int::<6379>")]
    pub port: i32,
    /// Delete without a final snapshot (default false: a group deleted or
    /// replaced leaves `<id>-final-<time>`). Not compared.
    #[serde(default)]
    pub skip_final_snapshot: bool,
    /// Days of daily snapshots (default 7; 0 turns them off).
    #[serde(default = "crate::kinds::int::<7>")]
    pub snapshot_retention_limit: i32,
    /// Redis AUTH token from a secret (`${env.REDIS_AUTH_TOKEN}`); needs
    /// transit encryption. Write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
}

fn default_description() -> String {
    "Managed by converge".into()
}
fn redis() -> String {
    "redis".into()
}

impl Kind for ReplicationGroupKind {
    type Props = ReplicationGroupProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "elasticache.replication_group",
        doc: "A Redis replication group, cluster mode disabled, Multi-AZ with automatic failover, encrypted. Outputs: `id`, `primary_endpoint`, `reader_endpoint`, `port`, `arn`.",
        replace_on: &["engine", "subnet_group_name", "at_rest_encryption", "transit_encryption", "port"],
        sends: &[
            Sent::aws("description", "elasticache:CreateReplicationGroupMessage.ReplicationGroupDescription"),
            Sent::aws("engine", "elasticache:CreateReplicationGroupMessage.Engine"),
            Sent::aws("engine_version", "elasticache:CreateReplicationGroupMessage.EngineVersion"),
            Sent::aws("node_type", "elasticache:CreateReplicationGroupMessage.CacheNodeType"),
            Sent::aws("num_cache_clusters", "elasticache:CreateReplicationGroupMessage.NumCacheClusters"),
            Sent::aws("automatic_failover", "elasticache:CreateReplicationGroupMessage.AutomaticFailoverEnabled"),
            Sent::aws("multi_az", "elasticache:CreateReplicationGroupMessage.MultiAZEnabled"),
            Sent::aws("subnet_group_name", "elasticache:CreateReplicationGroupMessage.CacheSubnetGroupName"),
            Sent::aws("security_group_ids", "elasticache:CreateReplicationGroupMessage.SecurityGroupIds"),
            Sent::aws("security_group_ids[]", "elasticache:CreateReplicationGroupMessage.SecurityGroupIds[]"),
            Sent::aws("parameter_group_name", "elasticache:CreateReplicationGroupMessage.CacheParameterGroupName"),
            Sent::aws("at_rest_encryption", "elasticache:CreateReplicationGroupMessage.AtRestEncryptionEnabled"),
            Sent::aws("transit_encryption", "elasticache:CreateReplicationGroupMessage.TransitEncryptionEnabled"),
            Sent::aws("port", "elasticache:CreateReplicationGroupMessage.Port"),
            Sent::not("skip_final_snapshot", "converge's own: whether the delete names a FinalSnapshotIdentifier"),
            Sent::aws("snapshot_retention_limit", "elasticache:CreateReplicationGroupMessage.SnapshotRetentionLimit"),
            Sent::aws("auth_token", "elasticache:CreateReplicationGroupMessage.AuthToken"),
        ],
        outputs: &["id", "primary_endpoint", "reader_endpoint", "port", "arn"],
        physical_name_output: Some("id"),
        protected: true,
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["elasticache:DescribeReplicationGroups", "elasticache:DescribeCacheClusters"],
            per_parent: &[],
        },
        tagging_type: Some("elasticache:replicationgroup"),
        write_only: &["auth_token", "skip_final_snapshot"],
        default_wait: Duration::from_secs(60 * 60),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: ReplicationGroupProps) -> Result<ReplicationGroupProps, PropsError> {
        if let Some(sgs) = &mut p.security_group_ids {
            crate::kinds::sort_ids(sgs);
        }
        let err = |path: &str, message: &str| Err(PropsError { path: path.into(), message: message.into() });
        if p.automatic_failover && p.num_cache_clusters < 2 {
            return err("num_cache_clusters", "automatic failover needs at least 2 nodes (a primary and a replica)");
        }
        if p.multi_az && !p.automatic_failover {
            return err("multi_az", "Multi-AZ needs `automatic_failover: true`");
        }
        if p.auth_token.is_some() && !p.transit_encryption {
            return err("auth_token", "an AUTH token needs `transit_encryption: true`");
        }
        Ok(p)
    }
    fn check_links<'a>(&self, props: &Value, linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem> {
        let group = ("parameter_group_name", "elasticache.parameter_group");
        let unpinned = "ElastiCache would pick its default version; pin it (e.g. `engine_version: \"7.1\"`)";
        crate::kinds::db_groups::check_family(props, linked, group, "redis", cache_family, unpinned)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_id(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        crate::kinds::read_each(scope.targets(aws).await?, |t| async move {
            let Some(g) = describe(aws, &t.id).await? else { return Ok(None) };
            if g.status() == Some("deleting") {
                return Ok(None);
            }
            let Some(tags) = t.tags_or(CacheTags::list_tags(aws, g.arn().unwrap_or_default())).await? else {
                return Ok(None);
            };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
            // The subnet group, security groups and parameter group are
            // reported only by the member clusters.
            let member = match g.member_clusters().first() {
                Some(id) => member(aws, id).await?,
                None => None,
            };
            Ok(Some(live(owner, g, member.as_ref(), tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: ReplicationGroupProps = ReplicationGroupKind::props(&d.props)?;
        let res = aws
            .elasticache
            .create_replication_group()
            .replication_group_id(&d.physical_name)
            .replication_group_description(&p.description)
            .engine(&p.engine)
            .set_engine_version(p.engine_version.clone())
            .cache_node_type(&p.node_type)
            .num_cache_clusters(p.num_cache_clusters)
            .automatic_failover_enabled(p.automatic_failover)
            .multi_az_enabled(p.multi_az)
            .set_cache_subnet_group_name(p.subnet_group_name.clone())
            .set_security_group_ids(p.security_group_ids.clone())
            .set_cache_parameter_group_name(p.parameter_group_name.clone())
            .at_rest_encryption_enabled(p.at_rest_encryption)
            .transit_encryption_enabled(p.transit_encryption)
            .port(p.port)
            .snapshot_retention_limit(p.snapshot_retention_limit)
            .set_auth_token(p.auth_token.clone())
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("elasticache:CreateReplicationGroup"));
        match res {
            Ok(_) => {}
            // The id is unique: a retried create takes what the first
            // attempt made, and only that.
            Err(e) if e.code.starts_with("ReplicationGroupAlreadyExists") => {
                let g = describe(aws, &d.physical_name).await?.ok_or(e)?;
                let tags = CacheTags::list_tags(aws, g.arn().unwrap_or_default()).await?.unwrap_or_default();
                d.take_if_ours("elasticache:CreateReplicationGroup", &tags)?;
            }
            Err(e) => return Err(e),
        }
        let g = wait_available(aws, &d.physical_name, d.timeout).await?;
        let tags = CacheTags::list_tags(aws, g.arn().unwrap_or_default()).await?.unwrap_or_default();
        let l = live(d.name.clone(), g, None, tags);
        if l.tags != d.tags {
            let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
            CacheTags::sync_tags(aws, arn, &d.tags, &l.tags).await?;
        }
        Ok(Live { tags: d.tags.clone(), ..l })
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: ReplicationGroupProps = ReplicationGroupKind::props(&d.props)?;
        let was: ReplicationGroupProps = ReplicationGroupKind::props(&l.props)?;
        let mut m = aws.elasticache.modify_replication_group().replication_group_id(&l.id).apply_immediately(true);
        let mut changed = false;
        if p.description != was.description {
            m = m.replication_group_description(&p.description);
            changed = true;
        }
        if p.node_type != was.node_type {
            m = m.cache_node_type(&p.node_type);
            changed = true;
        }
        if p.engine_version.is_some() && p.engine_version != was.engine_version {
            m = m.set_engine_version(p.engine_version.clone());
            changed = true;
        }
        if p.automatic_failover != was.automatic_failover {
            m = m.automatic_failover_enabled(p.automatic_failover);
            changed = true;
        }
        if p.multi_az != was.multi_az {
            m = m.multi_az_enabled(p.multi_az);
            changed = true;
        }
        if p.snapshot_retention_limit != was.snapshot_retention_limit {
            m = m.snapshot_retention_limit(p.snapshot_retention_limit);
            changed = true;
        }
        if p.parameter_group_name.is_some()
            && l.props.get("parameter_group_name").is_some()
            && p.parameter_group_name != was.parameter_group_name
        {
            m = m.set_cache_parameter_group_name(p.parameter_group_name.clone());
            changed = true;
        }
        if p.security_group_ids.is_some()
            && l.props.get("security_group_ids").is_some()
            && p.security_group_ids != was.security_group_ids
        {
            m = m.set_security_group_ids(p.security_group_ids.clone());
            changed = true;
        }
        if changed {
            m.send().await.map_err(sdk("elasticache:ModifyReplicationGroup"))?;
            wait_available(aws, &l.id, d.timeout).await?;
        }
        // Replicas: one call each way, the group stays online.
        let replicas = p.num_cache_clusters - 1;
        if p.num_cache_clusters > was.num_cache_clusters {
            aws.elasticache
                .increase_replica_count()
                .replication_group_id(&l.id)
                .new_replica_count(replicas)
                .apply_immediately(true)
                .send()
                .await
                .map_err(sdk("elasticache:IncreaseReplicaCount"))?;
            wait_available(aws, &l.id, d.timeout).await?;
        } else if p.num_cache_clusters < was.num_cache_clusters {
            aws.elasticache
                .decrease_replica_count()
                .replication_group_id(&l.id)
                .new_replica_count(replicas)
                .apply_immediately(true)
                .send()
                .await
                .map_err(sdk("elasticache:DecreaseReplicaCount"))?;
            wait_available(aws, &l.id, d.timeout).await?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
        CacheTags::sync_tags(aws, arn, &d.tags, &l.tags).await?;
        let mut now = p.clone();
        now.auth_token = None;
        Ok(Live { props: crate::kinds::to_value(&now), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, spec: Option<&Value>) -> Result<(), AwsError> {
        // Out of the spec: the safe default, a final snapshot.
        let skip = spec.and_then(|s| s.get("skip_final_snapshot")).and_then(Value::as_bool).unwrap_or(false);
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let res = aws
            .elasticache
            .delete_replication_group()
            .replication_group_id(&l.id)
            .set_final_snapshot_identifier((!skip).then(|| format!("{}-final-{stamp}", l.id)))
            .send()
            .await
            .map_err(sdk("elasticache:DeleteReplicationGroup"));
        if not_found(res, &["ReplicationGroupNotFoundFault"])?.is_none() {
            return Ok(());
        }
        aws.elasticache
            .wait_until_replication_group_deleted()
            .replication_group_id(&l.id)
            .wait(Self::FACTS.default_wait)
            .await
            .map_err(waited("elasticache:DescribeReplicationGroups (wait deleted)"))?;
        Ok(())
    }
}

async fn wait_available(aws: &Aws, id: &str, timeout: Duration) -> Result<ReplicationGroup, AwsError> {
    const OP: &str = "elasticache:DescribeReplicationGroups (wait available)";
    crate::aws::poll_until(OP, "available", timeout, || async {
        let out = aws
            .elasticache
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .await
            .map_err(sdk("elasticache:DescribeReplicationGroups"))?;
        let g = out.replication_groups.unwrap_or_default().into_iter().next();
        let g = g.ok_or_else(|| AwsError::other(OP, format!("{id} vanished while waiting")))?;
        let status = g.status.clone().unwrap_or_default();
        match status.as_str() {
            "available" => Ok(Polled::Ready(g)),
            "deleted" | "deleting" | "create-failed" => Err(AwsError {
                operation: OP,
                code: format!("ReplicationGroup-{status}"),
                message: format!("{id} is {status}"),
                transient: false,
            }),
            _ => Ok(Polled::Waiting(status)),
        }
    })
    .await
}

/// A member cluster's subnet group, security groups and parameter group.
type Member = (Option<String>, Vec<String>, Option<String>);

/// One group by id; `None` if there is none.
async fn describe(aws: &Aws, id: &str) -> Result<Option<ReplicationGroup>, AwsError> {
    let res = aws
        .elasticache
        .describe_replication_groups()
        .replication_group_id(id)
        .send()
        .await
        .map_err(sdk("elasticache:DescribeReplicationGroups"));
    Ok(not_found(res, &["ReplicationGroupNotFoundFault"])?.and_then(|out| out.replication_groups?.into_iter().next()))
}

/// What a member cluster reports for its group; `None` if it is gone.
async fn member(aws: &Aws, cluster_id: &str) -> Result<Option<Member>, AwsError> {
    let res = aws
        .elasticache
        .describe_cache_clusters()
        .cache_cluster_id(cluster_id)
        .send()
        .await
        .map_err(sdk("elasticache:DescribeCacheClusters"));
    let Some(c) = not_found(res, &["CacheClusterNotFound", "CacheClusterNotFoundFault"])?
        .and_then(|out| out.cache_clusters?.into_iter().next())
    else {
        return Ok(None);
    };
    let mut sgs: Vec<String> = c.security_groups().iter().filter_map(|g| g.security_group_id.clone()).collect();
    sgs.sort();
    let params = c.cache_parameter_group.and_then(|g| g.cache_parameter_group_name);
    Ok(Some((c.cache_subnet_group_name, sgs, params)))
}

fn live(name: String, g: ReplicationGroup, member: Option<&Member>, tags: BTreeMap<String, String>) -> Live {
    let id = g.replication_group_id.clone().unwrap_or_default();
    let node = g.node_groups().first();
    let primary = node.and_then(|n| n.primary_endpoint.as_ref());
    let reader = node.and_then(|n| n.reader_endpoint.as_ref());
    let port = primary.and_then(|e| e.port).unwrap_or(6379);
    let members = g.member_clusters().len() as i32;
    let props = ReplicationGroupProps {
        description: g.description.clone().unwrap_or_default(),
        engine: g.engine.clone().unwrap_or_else(redis),
        engine_version: None,
        node_type: g.cache_node_type.clone().unwrap_or_default(),
        num_cache_clusters: if members > 0 { members } else { 1 },
        automatic_failover: matches!(
            g.automatic_failover,
            Some(AutomaticFailoverStatus::Enabled | AutomaticFailoverStatus::Enabling)
        ),
        multi_az: g.multi_az == Some(MultiAzStatus::Enabled),
        // Reported on the member clusters; left out (not compared) when the
        // API does not show them.
        subnet_group_name: member.and_then(|m| m.0.clone()),
        security_group_ids: member.map(|m| m.1.clone()),
        parameter_group_name: member.and_then(|m| m.2.clone()),
        at_rest_encryption: g.at_rest_encryption_enabled.unwrap_or(false),
        transit_encryption: g.transit_encryption_enabled.unwrap_or(false),
        port,
        snapshot_retention_limit: g.snapshot_retention_limit.unwrap_or(0),
        skip_final_snapshot: false,
        auth_token: None,
    };
    let endpoint = |e: Option<&aws_sdk_elasticache::types::Endpoint>| {
        e.and_then(|e| e.address.clone()).map(Value::from).unwrap_or(Value::Null)
    };
    Live::new(name, id, &props, tags)
        .output("primary_endpoint", endpoint(primary))
        .output("reader_endpoint", endpoint(reader))
        .output("port", port)
        .output("arn", g.arn.clone().unwrap_or_default())
}

/// The cache parameter group family an engine version needs (ElastiCache:
/// `redis7` for 7.x, `redis6.x` for 6.x, `redis5.0`, `valkey8`).
pub fn cache_family(engine: &str, version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor = parts.next();
    match (engine, major) {
        ("redis", 7..) => Some(format!("redis{major}")),
        ("redis", 6) => Some("redis6.x".into()),
        ("redis", _) => Some(format!("redis{major}.{}", minor?)),
        ("valkey", _) => Some(format!("valkey{major}")),
        _ => None,
    }
}

#[cfg(test)]
mod family_tests {
    #[test]
    fn families_follow_versions() {
        assert_eq!(super::cache_family("redis", "7.1").as_deref(), Some("redis7"));
        assert_eq!(super::cache_family("redis", "6.2").as_deref(), Some("redis6.x"));
        assert_eq!(super::cache_family("redis", "5.0.6").as_deref(), Some("redis5.0"));
        assert_eq!(super::cache_family("valkey", "8.0").as_deref(), Some("valkey8"));
    }
}
