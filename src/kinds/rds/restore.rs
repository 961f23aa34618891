//! Restoring an RDS instance: the restore settings a spec may give
//! (`snapshot_identifier`, or `restore_time` with `restore_source`), their
//! offline checks, and the `converge:restored-from` tag that records how an
//! instance was made, so a read gives back the settings it was made with.

use crate::kinds::PropsError;
use crate::kinds::rds::db_instance::DbInstanceProps;

/// The restore settings the spec may give: one way at most, and
/// `restore_time` with its source.
pub fn check_restore(p: &DbInstanceProps) -> Result<(), PropsError> {
    let err = |path: &str, message: &str| Err(PropsError { path: path.into(), message: message.into() });
    if p.snapshot_identifier.is_some() && (p.restore_time.is_some() || p.restore_source.is_some()) {
        return err("snapshot_identifier", "restore from a snapshot or from a point in time, not both");
    }
    if p.restore_time.is_some() != p.restore_source.is_some() {
        return err(
            "restore_time",
            "a point-in-time restore sets both `restore_time` and `restore_source` (the instance restored from)",
        );
    }
    if let Some(t) = &p.restore_time
        && t != "latest"
        && !crate::value::is_unknown_str(t)
        && !is_rfc3339_utc(t)
    {
        return err("restore_time", "a UTC time, e.g. `2026-12-01T09:30:00Z`, or `latest`");
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
fn is_rfc3339_utc(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && t.ends_with('Z')
}

/// The `converge:restored-from` tag of a restore: how the instance was
/// built, recorded by the restore call itself, so that a plan sees a
/// restore that is done (and a changed one) without any local state.
pub fn restored_from(p: &DbInstanceProps) -> Option<String> {
    match (&p.snapshot_identifier, &p.restore_time, &p.restore_source) {
        (Some(snap), _, _) => Some(format!("snapshot:{snap}")),
        (None, Some(time), Some(source)) => Some(format!("time:{source}@{time}")),
        _ => None,
    }
}

/// `props` with the restore settings the tag records.
pub fn with_restore(props: DbInstanceProps, tag: Option<&str>) -> DbInstanceProps {
    match tag.and_then(|t| t.split_once(':')) {
        Some(("snapshot", snap)) => DbInstanceProps { snapshot_identifier: Some(snap.to_string()), ..props },
        Some(("time", rest)) => match rest.split_once('@') {
            Some((source, time)) => DbInstanceProps {
                restore_source: Some(source.to_string()),
                restore_time: Some(time.to_string()),
                ..props
            },
            None => props,
        },
        _ => props,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::Kind;
    use crate::kinds::rds::db_instance::{DbInstanceKind, DbInstanceProps};

    fn db(extra: serde_json::Value) -> Result<serde_json::Value, String> {
        let mut p = json!({"instance_class": "db.t4g.medium", "allocated_storage": 20, "db_subnet_group_name": "g",
            "vpc_security_group_ids": ["sg-1"], "master_username": "gitlab", "manage_master_user_password": true});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        DbInstanceKind.canonicalize(p).map_err(|e| e.message)
    }

    #[test]
    fn a_restore_is_one_way_and_recorded_by_its_tag() {
        let empty = db(json!({"snapshot_identifier": "", "restore_time": "", "restore_source": ""})).unwrap();
        assert!(empty.get("snapshot_identifier").is_none(), "empty variables are no restore");
        assert!(
            db(json!({"snapshot_identifier": "s", "restore_time": "latest", "restore_source": "x"}))
                .unwrap_err()
                .contains("not both")
        );
        assert!(db(json!({"restore_time": "latest"})).unwrap_err().contains("restore_source"));
        assert!(db(json!({"restore_time": "yesterday", "restore_source": "x"})).unwrap_err().contains("UTC time"));
        db(json!({"restore_time": "2026-12-01T09:30:00Z", "restore_source": "x"})).unwrap();

        let p: DbInstanceProps =
            serde_json::from_value(db(json!({"restore_time": "latest", "restore_source": "prod"})).unwrap()).unwrap();
        let tag = super::restored_from(&p).unwrap();
        assert_eq!(tag, "time:prod@latest");
        let back =
            super::with_restore(DbInstanceProps { restore_time: None, restore_source: None, ..p.clone() }, Some(&tag));
        assert_eq!(back, p, "the tag reads back as the settings it records");
        let snap = super::with_restore(
            DbInstanceProps { restore_time: None, restore_source: None, ..p },
            Some("snapshot:gitlab-before"),
        );
        assert_eq!(snap.snapshot_identifier.as_deref(), Some("gitlab-before"));
    }
}
