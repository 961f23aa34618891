//! `rds.db_instance`: an RDS database instance (PostgreSQL for GitLab).
//!
//! Identity: the DB instance identifier (the physical name) and the
//! `converge:` tags, which DescribeDBInstances returns inline.

use crate::aws::waited;
use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_rds::client::Waiters;
use aws_sdk_rds::types::Filter;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, Polled, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::db_groups::ArnTagging;
use crate::kinds::rds::restore::{check_restore, restored_from, with_restore};
use crate::kinds::rds::{RdsTags, check_identifier, from_tags, to_tags};
use crate::kinds::{Desired, Facts, Kind, LinkProblem, Linked, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct DbInstanceKind;

/// Values one RDS `Filters` entry takes.
const FILTER_VALUES: usize = 100;

/// Properties of `rds.db_instance`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbInstanceProps {
    /// Changing it replaces the instance (and its data).
    #[serde(default = "postgres")]
    pub engine: String,
    /// Full version as RDS reports it (e.g. `16.4`); omitted: RDS's default,
    /// not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// e.g. `db.r6g.large`. Updated in place.
    pub instance_class: String,
    /// GiB. Updated in place (RDS can only grow storage).
    pub allocated_storage: i32,
    #[serde(default = "gp3")]
    pub storage_type: String,
    /// Changing it replaces the instance.
    #[serde(default = "crate::kinds::yes")]
    pub storage_encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default = "crate::kinds::yes")]
    pub multi_az: bool,
    /// Changing it replaces the instance.
    pub db_subnet_group_name: String,
    pub vpc_security_group_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_parameter_group_name: Option<String>,
    /// Initial database. Changing it replaces the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_name: Option<String>,
    /// Changing it replaces the instance.
    pub master_username: String,
    /// From a secret: `${env.GITLAB_DB_PASSWORD}`. Write-only: set on
    /// create, never read back or compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_password: Option<String>,
    /// Let RDS generate the password and keep it in Secrets Manager
    /// (output `master_user_secret_arn`). Instead of `master_password`.
    #[serde(default)]
    pub manage_master_user_password: bool,
    #[serde(default = "crate::kinds::int::<5432>")]
    pub port: i32,
    /// Days of automated backups (default 7).
    #[serde(default = "crate::kinds::int::<7>")]
    pub backup_retention_period: i32,
    /// e.g. `03:00-04:00` (UTC). Omitted: RDS's choice, not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_backup_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_maintenance_window: Option<String>,
    /// Default true: RDS refuses to delete the instance until it is off.
    #[serde(default = "crate::kinds::yes")]
    pub deletion_protection: bool,
    #[serde(default)]
    pub publicly_accessible: bool,
    /// Apply modifications now rather than in the maintenance window.
    #[serde(default = "crate::kinds::yes")]
    pub apply_immediately: bool,
    /// Delete without a final snapshot (default false: a snapshot
    /// `<identifier>-final-<unix time>` is taken).
    #[serde(default)]
    pub skip_final_snapshot: bool,
    /// Build the instance from this DB snapshot (its identifier or ARN),
    /// e.g. the final snapshot of the instance it replaces, or a copy from
    /// AWS Backup: a restore. The master user, database and engine come
    /// from the snapshot. Setting or changing it replaces the instance
    /// (with `--allow-destroy` when it is protected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_identifier: Option<String>,
    /// Build the instance as `restore_source` was at this time (RFC 3339,
    /// `2026-12-01T09:30:00Z`, within its backup retention), or `latest`:
    /// a point-in-time restore. Setting or changing it replaces the
    /// instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_time: Option<String>,
    /// The instance `restore_time` restores from (its identifier): another
    /// instance that is still there, e.g. production's when restoring into
    /// a fresh environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_source: Option<String>,
}

fn postgres() -> String {
    "postgres".into()
}
fn gp3() -> String {
    "gp3".into()
}

impl Kind for DbInstanceKind {
    type Props = DbInstanceProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "rds.db_instance",
        doc: "An RDS DB instance: encrypted, Multi-AZ and deletion-protected by default; a final snapshot on delete. Outputs: `id`, `address`, `port`, `endpoint`, `arn`, `master_user_secret_arn`.",
        replace_on: &[
            "engine",
            "storage_encrypted",
            "kms_key_id",
            "db_subnet_group_name",
            "db_name",
            "master_username",
            "snapshot_identifier",
            "restore_time",
            "restore_source",
        ],
        sends: &[
            Sent::aws("engine", "rds:CreateDBInstanceMessage.Engine"),
            Sent::aws("engine_version", "rds:CreateDBInstanceMessage.EngineVersion"),
            Sent::aws("instance_class", "rds:CreateDBInstanceMessage.DBInstanceClass"),
            Sent::aws("allocated_storage", "rds:CreateDBInstanceMessage.AllocatedStorage"),
            Sent::aws("storage_type", "rds:CreateDBInstanceMessage.StorageType"),
            Sent::aws("storage_encrypted", "rds:CreateDBInstanceMessage.StorageEncrypted"),
            Sent::aws("kms_key_id", "rds:CreateDBInstanceMessage.KmsKeyId"),
            Sent::aws("multi_az", "rds:CreateDBInstanceMessage.MultiAZ"),
            Sent::aws("db_subnet_group_name", "rds:CreateDBInstanceMessage.DBSubnetGroupName"),
            Sent::aws("vpc_security_group_ids", "rds:CreateDBInstanceMessage.VpcSecurityGroupIds"),
            Sent::aws("vpc_security_group_ids[]", "rds:CreateDBInstanceMessage.VpcSecurityGroupIds[]"),
            Sent::aws("db_parameter_group_name", "rds:CreateDBInstanceMessage.DBParameterGroupName"),
            Sent::aws("db_name", "rds:CreateDBInstanceMessage.DBName"),
            Sent::aws("master_username", "rds:CreateDBInstanceMessage.MasterUsername"),
            Sent::aws("master_password", "rds:CreateDBInstanceMessage.MasterUserPassword"),
            Sent::aws("manage_master_user_password", "rds:CreateDBInstanceMessage.ManageMasterUserPassword"),
            Sent::aws("port", "rds:CreateDBInstanceMessage.Port"),
            Sent::aws("snapshot_identifier", "rds:RestoreDBInstanceFromDBSnapshotMessage.DBSnapshotIdentifier"),
            Sent::not(
                "restore_time",
                "RestoreDBInstanceToPointInTime's RestoreTime, or UseLatestRestorableTime for `latest`",
            ),
            Sent::aws("restore_source", "rds:RestoreDBInstanceToPointInTimeMessage.SourceDBInstanceIdentifier"),
            Sent::aws("backup_retention_period", "rds:CreateDBInstanceMessage.BackupRetentionPeriod"),
            Sent::aws("preferred_backup_window", "rds:CreateDBInstanceMessage.PreferredBackupWindow"),
            Sent::aws("preferred_maintenance_window", "rds:CreateDBInstanceMessage.PreferredMaintenanceWindow"),
            Sent::aws("deletion_protection", "rds:CreateDBInstanceMessage.DeletionProtection"),
            Sent::aws("publicly_accessible", "rds:CreateDBInstanceMessage.PubliclyAccessible"),
            Sent::aws("apply_immediately", "rds:ModifyDBInstanceMessage.ApplyImmediately"),
            Sent::aws("skip_final_snapshot", "rds:DeleteDBInstanceMessage.SkipFinalSnapshot"),
        ],
        outputs: &["id", "address", "port", "endpoint", "arn", "master_user_secret_arn"],
        physical_name_output: Some("id"),
        protected: true,
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads { once: &["rds:DescribeDBInstances"], per_object: &[], per_parent: &[] },
        tagging_type: Some("rds:db"),
        write_only: &["master_password", "apply_immediately", "skip_final_snapshot"],
        default_wait: Duration::from_secs(60 * 60),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: DbInstanceProps) -> Result<DbInstanceProps, PropsError> {
        crate::kinds::sort_ids(&mut p.vpc_security_group_ids);
        // An empty restore setting is none (a stack variable left empty).
        for v in [&mut p.snapshot_identifier, &mut p.restore_time, &mut p.restore_source] {
            v.take_if(|s| s.is_empty());
        }
        check_restore(&p)?;
        match (&p.master_password, p.manage_master_user_password) {
            (Some(_), true) => {
                return Err(PropsError {
                    path: "manage_master_user_password".into(),
                    message: "set either `master_password` or `manage_master_user_password`, not both".into(),
                });
            }
            (None, false) => {
                return Err(PropsError {
                    path: "master_password".into(),
                    message: "set `master_password` (e.g. `${env.GITLAB_DB_PASSWORD}`) or `manage_master_user_password: true`".into(),
                });
            }
            _ => {}
        }
        // gp2/gp3 storage for the engines converge runs (CreateDBInstance
        // API reference: PostgreSQL and MySQL, 20 to 65,536 GiB).
        if !(20..=65536).contains(&p.allocated_storage) {
            return Err(PropsError {
                path: "allocated_storage".into(),
                message: format!("{} GiB: RDS takes 20 to 65,536 GiB", p.allocated_storage),
            });
        }
        Ok(p)
    }
    fn check_links<'a>(&self, props: &Value, linked: &dyn Fn(&str) -> Option<Linked<'a>>) -> Vec<LinkProblem> {
        let group = ("db_parameter_group_name", "rds.db_parameter_group");
        let unpinned = "RDS would pick its current default major version, and CreateDBInstance refuses a parameter group of another family; pin the version (e.g. `engine_version: \"16.4\"`)";
        crate::kinds::db_groups::check_family(props, linked, group, "postgres", db_family, unpinned)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_identifier(name)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // The index's instances and the spec's names, in batches of one
        // filtered call (`db-instance-id` takes ARNs and identifiers);
        // instances carry their tags inline.
        let ids: Vec<String> = scope.targets(aws).await?.into_iter().map(|t| t.arn.unwrap_or(t.id)).collect();
        let mut found = Vec::new();
        for batch in ids.chunks(FILTER_VALUES) {
            let by_id = Filter::builder().name("db-instance-id").set_values(Some(batch.to_vec())).build();
            let dbs: Vec<_> = all_items!(aws.rds.describe_db_instances().filters(by_id), "rds:DescribeDBInstances")?;
            found.extend(dbs);
        }
        Ok(found
            .into_iter()
            .filter(|db| db.db_instance_status() != Some("deleting"))
            .filter_map(|db| {
                let tags = from_tags(db.tag_list());
                let owner = scope.owner(&tags, db.db_instance_identifier())?;
                Some(live(owner, db, tags))
            })
            .collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: DbInstanceProps = DbInstanceKind::props(&d.props)?;
        let res = if p.snapshot_identifier.is_some() || p.restore_time.is_some() {
            restore(aws, d, &p).await
        } else {
            let call = aws
                .rds
                .create_db_instance()
                .db_instance_identifier(&d.physical_name)
                .engine(&p.engine)
                .set_engine_version(p.engine_version.clone())
                .storage_encrypted(p.storage_encrypted)
                .set_kms_key_id(p.kms_key_id.clone())
                .set_db_name(p.db_name.clone())
                .master_username(&p.master_username)
                .set_master_user_password(p.master_password.clone())
                .set_manage_master_user_password(p.manage_master_user_password.then_some(true))
                .backup_retention_period(p.backup_retention_period)
                .set_preferred_backup_window(p.preferred_backup_window.clone())
                .set_preferred_maintenance_window(p.preferred_maintenance_window.clone());
            with_placement!(call, p, &d.tags).send().await.map(|_| ()).map_err(sdk("rds:CreateDBInstance"))
        };
        match res {
            Ok(_) => {}
            // The identifier is unique: a retried create takes what the
            // first attempt made, and only that.
            Err(e) if e.is("DBInstanceAlreadyExists") || e.is("DBInstanceAlreadyExistsFault") => {
                let op = e.operation;
                let db = by_id(aws, &d.physical_name).await?.ok_or(e)?;
                d.take_if_ours(op, &from_tags(db.tag_list()))?;
            }
            Err(e) => return Err(e),
        }
        let l = wait_available(aws, &d.physical_name, d.timeout, d.name.clone()).await?;
        if DbInstanceKind::props(&l.props).map(|was| comparable(&was) != comparable(&p)).unwrap_or(true)
            || l.tags != d.tags
        {
            return self.update(aws, d, &l).await;
        }
        Ok(l)
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: DbInstanceProps = DbInstanceKind::props(&d.props)?;
        let was: DbInstanceProps = DbInstanceKind::props(&l.props)?;
        let mut m = aws.rds.modify_db_instance().db_instance_identifier(&l.id).apply_immediately(p.apply_immediately);
        let mut changed = false;
        macro_rules! set {
            ($field:ident, $call:ident) => {
                if p.$field != was.$field {
                    m = m.$call(p.$field.clone());
                    changed = true;
                }
            };
        }
        set!(instance_class, db_instance_class);
        set!(allocated_storage, allocated_storage);
        set!(storage_type, storage_type);
        set!(multi_az, multi_az);
        set!(backup_retention_period, backup_retention_period);
        set!(deletion_protection, deletion_protection);
        set!(publicly_accessible, publicly_accessible);
        set!(port, db_port_number);
        if p.manage_master_user_password && !was.manage_master_user_password {
            // A restored instance has the snapshot's password: RDS makes
            // and rotates a new one in Secrets Manager.
            m = m.manage_master_user_password(true);
            changed = true;
        }
        if p.vpc_security_group_ids != was.vpc_security_group_ids {
            m = m.set_vpc_security_group_ids(Some(p.vpc_security_group_ids.clone()));
            changed = true;
        }
        if p.db_parameter_group_name.is_some() && p.db_parameter_group_name != was.db_parameter_group_name {
            m = m.set_db_parameter_group_name(p.db_parameter_group_name.clone());
            changed = true;
        }
        if p.engine_version.is_some() && p.engine_version != was.engine_version {
            let major = |v: &Option<String>| v.as_deref().and_then(|v| v.split('.').next()).map(str::to_string);
            m = m.set_engine_version(p.engine_version.clone());
            if major(&p.engine_version) != major(&was.engine_version) {
                m = m.allow_major_version_upgrade(true);
            }
            changed = true;
        }
        if p.preferred_backup_window.is_some() && p.preferred_backup_window != was.preferred_backup_window {
            m = m.set_preferred_backup_window(p.preferred_backup_window.clone());
            changed = true;
        }
        if p.preferred_maintenance_window.is_some()
            && p.preferred_maintenance_window != was.preferred_maintenance_window
        {
            m = m.set_preferred_maintenance_window(p.preferred_maintenance_window.clone());
            changed = true;
        }
        if changed {
            m.send().await.map_err(sdk("rds:ModifyDBInstance"))?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default().to_string();
        RdsTags::sync_tags(aws, &arn, &d.tags, &l.tags).await?;
        if changed {
            return wait_available(aws, &l.id, d.timeout, l.name.clone()).await;
        }
        Ok(Live { tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, spec: Option<&Value>) -> Result<(), AwsError> {
        // Only a spec that says so skips the final snapshot; an instance
        // removed from the spec always gets one.
        let skip = spec.and_then(|s| s.get("skip_final_snapshot")).and_then(Value::as_bool).unwrap_or(false);
        let mut call = aws.rds.delete_db_instance().db_instance_identifier(&l.id).skip_final_snapshot(skip);
        if !skip {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            call = call.final_db_snapshot_identifier(format!("{}-final-{now}", l.id));
        }
        let res = call.send().await.map_err(sdk("rds:DeleteDBInstance"));
        match not_found(res, &["DBInstanceNotFound", "DBInstanceNotFoundFault"]) {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {}
            Err(e) if e.message.to_lowercase().contains("deletion protection") => {
                return Err(AwsError {
                    message: format!(
                        "{}: set `deletion_protection: false` on `{}` and apply first; converge never turns it off by itself",
                        e.message, l.name
                    ),
                    ..e
                });
            }
            Err(e) => return Err(e),
        }
        aws.rds
            .wait_until_db_instance_deleted()
            .db_instance_identifier(&l.id)
            .wait(Self::FACTS.default_wait)
            .await
            .map_err(waited("rds:DescribeDBInstances (wait deleted)"))?;
        Ok(())
    }
}

/// Sets what a new instance and a restored one are given alike: where it
/// runs (class, storage, Multi-AZ, subnets, security and parameter groups,
/// port), its protection and exposure, and its tags, on any of the three
/// requests that make an instance (their builders are distinct types).
macro_rules! with_placement {
    ($call:expr, $p:expr, $tags:expr) => {
        $call
            .db_instance_class(&$p.instance_class)
            .storage_type(&$p.storage_type)
            .allocated_storage($p.allocated_storage)
            .multi_az($p.multi_az)
            .db_subnet_group_name(&$p.db_subnet_group_name)
            .set_vpc_security_group_ids(Some($p.vpc_security_group_ids.clone()))
            .set_db_parameter_group_name($p.db_parameter_group_name.clone())
            .port($p.port)
            .deletion_protection($p.deletion_protection)
            .publicly_accessible($p.publicly_accessible)
            .set_tags(Some(to_tags($tags)))
    };
}
use with_placement;

/// Restores the instance from a snapshot or to a point in time, tagged by
/// the call (with how it was restored). What a restore cannot set (the
/// backup settings, the managed password) the modify after it does.
async fn restore(aws: &Aws, d: &Desired, p: &DbInstanceProps) -> Result<(), AwsError> {
    let mut tags = d.tags.clone();
    if let Some(from) = restored_from(p) {
        tags.insert(crate::tags::TAG_RESTORED_FROM.into(), from);
    }
    if let Some(snap) = &p.snapshot_identifier {
        let call = aws
            .rds
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(&d.physical_name)
            .db_snapshot_identifier(snap);
        with_placement!(call, p, &tags).send().await.map(|_| ()).map_err(sdk("rds:RestoreDBInstanceFromDBSnapshot"))
    } else {
        let time = p.restore_time.as_deref().unwrap_or("latest");
        let call = aws
            .rds
            .restore_db_instance_to_point_in_time()
            .target_db_instance_identifier(&d.physical_name)
            .set_source_db_instance_identifier(p.restore_source.clone());
        let mut call = with_placement!(call, p, &tags);
        call = if time == "latest" {
            call.use_latest_restorable_time(true)
        } else {
            let at =
                aws_sdk_rds::primitives::DateTime::from_str(time, aws_sdk_rds::primitives::DateTimeFormat::DateTime)
                    .map_err(|e| {
                        AwsError::other("rds:RestoreDBInstanceToPointInTime", format!("restore_time `{time}`: {e}"))
                    })?;
            call.restore_time(at)
        };
        call.send().await.map(|_| ()).map_err(sdk("rds:RestoreDBInstanceToPointInTime"))
    }
}

/// The attributes RDS reports, for "does the new instance need a modify".
fn comparable(p: &DbInstanceProps) -> DbInstanceProps {
    DbInstanceProps {
        master_password: None,
        apply_immediately: true,
        skip_final_snapshot: false,
        snapshot_identifier: None,
        restore_time: None,
        restore_source: None,
        ..p.clone()
    }
}

/// The DB instance `id`, if any.
async fn by_id(aws: &Aws, id: &str) -> Result<Option<aws_sdk_rds::types::DbInstance>, AwsError> {
    let res = aws.rds.describe_db_instances().db_instance_identifier(id).send().await;
    let found =
        not_found(res.map_err(sdk("rds:DescribeDBInstances")), &["DBInstanceNotFound", "DBInstanceNotFoundFault"])?;
    Ok(found.and_then(|out| out.db_instances?.into_iter().next()))
}

async fn wait_available(aws: &Aws, id: &str, timeout: Duration, name: String) -> Result<Live, AwsError> {
    const OP: &str = "rds:DescribeDBInstances (wait available)";
    let db = crate::aws::poll_until(OP, "available", timeout, || async {
        let db = by_id(aws, id).await?;
        let db = db.ok_or_else(|| AwsError::other(OP, format!("{id} vanished while waiting")))?;
        let status = db.db_instance_status.clone().unwrap_or_default();
        // The states the SDK's waiter gives up on: they do not end in
        // `available` without someone's help.
        match status.as_str() {
            "available" => Ok(Polled::Ready(db)),
            "deleted" | "deleting" | "failed" | "incompatible-restore" | "incompatible-parameters" => Err(AwsError {
                operation: OP,
                code: format!("DBInstance-{status}"),
                message: format!("{id} is {status}"),
                transient: false,
            }),
            _ => Ok(Polled::Waiting(status)),
        }
    })
    .await?;
    let tags = from_tags(db.tag_list());
    Ok(live(name, db, tags))
}

fn live(name: String, db: aws_sdk_rds::types::DbInstance, tags: BTreeMap<String, String>) -> Live {
    let id = db.db_instance_identifier.clone().unwrap_or_default();
    let mut sgs: Vec<String> =
        db.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id.clone()).collect();
    sgs.sort();
    let address = db.endpoint().and_then(|e| e.address.clone()).unwrap_or_default();
    let port = db.endpoint().and_then(|e| e.port).or(db.db_instance_port).unwrap_or(5432);
    let secret = db.master_user_secret().and_then(|s| s.secret_arn.clone());
    let props = DbInstanceProps {
        engine: db.engine.clone().unwrap_or_default(),
        engine_version: db.engine_version.clone(),
        instance_class: db.db_instance_class.clone().unwrap_or_default(),
        allocated_storage: db.allocated_storage.unwrap_or_default(),
        storage_type: db.storage_type.clone().unwrap_or_default(),
        storage_encrypted: db.storage_encrypted.unwrap_or(false),
        kms_key_id: db.kms_key_id.clone(),
        multi_az: db.multi_az.unwrap_or(false),
        db_subnet_group_name: db.db_subnet_group().and_then(|g| g.db_subnet_group_name.clone()).unwrap_or_default(),
        vpc_security_group_ids: sgs,
        db_parameter_group_name: db.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name.clone()),
        db_name: db.db_name.clone(),
        master_username: db.master_username.clone().unwrap_or_default(),
        master_password: None,
        manage_master_user_password: secret.is_some(),
        port,
        backup_retention_period: db.backup_retention_period.unwrap_or_default(),
        preferred_backup_window: db.preferred_backup_window.clone(),
        preferred_maintenance_window: db.preferred_maintenance_window.clone(),
        deletion_protection: db.deletion_protection.unwrap_or(false),
        publicly_accessible: db.publicly_accessible.unwrap_or(false),
        apply_immediately: true,
        skip_final_snapshot: false,
        snapshot_identifier: None,
        restore_time: None,
        restore_source: None,
    };
    let props = with_restore(props, tags.get(crate::tags::TAG_RESTORED_FROM).map(String::as_str));
    // Built empty is "no restore": null, so that a spec naming one differs.
    let mut props = crate::kinds::to_value(&props);
    for key in ["snapshot_identifier", "restore_time", "restore_source"] {
        props.as_object_mut().map(|m| m.entry(key).or_insert(Value::Null));
    }
    Live::new(name, id, &props, tags)
        .output("address", address.clone())
        .output("port", port)
        .output("endpoint", format!("{address}:{port}"))
        .output("arn", db.db_instance_arn.clone().unwrap_or_default())
        .output("master_user_secret_arn", secret)
}

/// The DB parameter group family an engine version needs (RDS: `postgres16`
/// for 16.x; `postgres9.6` before 10; `mysql8.0`), or `None` for an engine
/// converge does not know the rule of.
pub fn db_family(engine: &str, version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor = parts.next();
    match engine {
        "postgres" if major >= 10 => Some(format!("postgres{major}")),
        "postgres" => Some(format!("postgres{major}.{}", minor?)),
        "mysql" => Some(format!("mysql{major}.{}", minor?)),
        _ => None,
    }
}

#[cfg(test)]
mod family_tests {
    #[test]
    fn families_follow_major_versions() {
        assert_eq!(super::db_family("postgres", "16.4").as_deref(), Some("postgres16"));
        assert_eq!(super::db_family("postgres", "17.2").as_deref(), Some("postgres17"));
        assert_eq!(super::db_family("postgres", "9.6.24").as_deref(), Some("postgres9.6"));
        assert_eq!(super::db_family("mysql", "8.0.39").as_deref(), Some("mysql8.0"));
        assert_eq!(super::db_family("oracle-ee", "19"), None);
    }
}
