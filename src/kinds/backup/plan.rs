//! `backup.plan`: an AWS Backup plan: when backups are taken, which vault
//! keeps them, for how long, and where copies go (another region's vault).
//! What it backs up is a `backup.selection` of the plan.
//!
//! Identity: the identity tags, set by `CreateBackupPlan` itself, found
//! through the ownership index (`backup:backup-plan`). Plan names are not
//! ids, so the create is sent once, and a create whose outcome is unknown
//! looks the plan up by name before anything is sent again; a plan found
//! is taken only if it carries this resource's tags. The rules change in
//! place (`UpdateBackupPlan`, a new version); deleting a plan leaves its
//! recovery points in their vaults.

use std::collections::BTreeMap;

use aws_sdk_backup::operation::get_backup_plan::GetBackupPlanOutput;
use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, CopyAction, Lifecycle};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, CREATE_ATTEMPTS, create_or_adopt, not_found};
use crate::kinds::backup::{build_err, check_name, list_tags, no_retry, sync_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, Target};
use crate::limits::Sent;

pub struct PlanKind;

/// Properties of `backup.plan`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanProps {
    /// One or more rules, each a schedule into a vault. Updated in place.
    pub rules: Vec<Rule>,
}

/// One rule of a backup plan.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// 1 to 50 letters, digits, `-`, `_` and `.`; unique in the plan.
    pub name: String,
    /// Name of the vault the recovery points go to
    /// (`${resources.VAULT.name}`).
    pub vault: String,
    /// When to back up, in UTC: `cron(MIN HOUR DAY-OF-MONTH MONTH
    /// DAY-OF-WEEK YEAR)`, e.g. `cron(0 3 * * ? *)` for 03:00 every day.
    pub schedule: String,
    /// Minutes after the scheduled time a backup may still start (default
    /// 480, at least 60).
    #[serde(default = "start_window")]
    pub start_window_minutes: i64,
    /// Minutes a started backup may take before AWS Backup cancels it
    /// (default 10080, a week).
    #[serde(default = "completion_window")]
    pub completion_window_minutes: i64,
    /// Days a recovery point is kept. Left out: kept until deleted by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_days: Option<i64>,
    /// Days after which a recovery point moves to cold storage (where it
    /// must then stay 90 days: `delete_after_days` at least this plus 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_storage_after_days: Option<i64>,
    /// Continuous backup for point-in-time restore of the resources that
    /// support it (RDS, S3), up to 35 days (`delete_after_days` ≤ 35).
    #[serde(default)]
    pub continuous: bool,
    /// Copies of each recovery point to other vaults, e.g. one in a second
    /// region (the vault's ARN): what survives losing this region.
    #[serde(default)]
    pub copy_to: Vec<Copy>,
}

/// A copy of each recovery point to another vault.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// The destination vault's ARN (arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME).
    pub vault_arn: String,
    /// Days the copy is kept. Left out: kept until deleted by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after_days: Option<i64>,
}

fn start_window() -> i64 {
    480
}
fn completion_window() -> i64 {
    10080
}

impl Kind for PlanKind {
    type Props = PlanProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "backup.plan",
        doc: "An AWS Backup plan: rules that back up on a schedule into a `backup.vault`, keep recovery points for a number of days and copy them to other vaults (another region's). What it backs up is a `backup.selection`. Updated in place; deleting it leaves its recovery points. Outputs: `id`, `arn`, `version_id`.",
        replace_on: &[],
        sends: &[
            Sent::aws("rules", "backup:BackupPlanInput.Rules"),
            Sent::aws("rules[].name", "backup:BackupRuleInput.RuleName"),
            Sent::aws("rules[].vault", "backup:BackupRuleInput.TargetBackupVaultName"),
            Sent::aws("rules[].schedule", "backup:BackupRuleInput.ScheduleExpression"),
            Sent::aws("rules[].start_window_minutes", "backup:BackupRuleInput.StartWindowMinutes"),
            Sent::aws("rules[].completion_window_minutes", "backup:BackupRuleInput.CompletionWindowMinutes"),
            Sent::aws("rules[].delete_after_days", "backup:Lifecycle.DeleteAfterDays"),
            Sent::aws("rules[].cold_storage_after_days", "backup:Lifecycle.MoveToColdStorageAfterDays"),
            Sent::aws("rules[].continuous", "backup:BackupRuleInput.EnableContinuousBackup"),
            Sent::aws("rules[].copy_to[].vault_arn", "backup:CopyAction.DestinationBackupVaultArn"),
            Sent::aws("rules[].copy_to[].delete_after_days", "backup:Lifecycle.DeleteAfterDays"),
        ],
        outputs: &["id", "arn", "version_id"],
        outputs_changed_by_update: &["version_id"],
        reads: crate::kinds::Reads { once: &[], per_object: &["backup:GetBackupPlan"], per_parent: &[] },
        tagging_type: Some("backup:backup-plan"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: PlanProps) -> Result<PlanProps, PropsError> {
        check(&p)?;
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        // BackupPlanName: 1 to 200 through the API.
        check_name(name, 1..=200, "-_.", "a backup plan")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let targets = scope.targets(aws).await?;
        crate::kinds::read_each(targets, |t: Target| async move {
            // A spec name the index does not hold: a plan of that name,
            // if any (names are not ids).
            let id = if t.indexed() {
                t.id.clone()
            } else {
                match by_name(aws, &t.id).await? {
                    Some(id) => id,
                    None => return Ok(None),
                }
            };
            let Some(plan) = get(aws, &id).await? else { return Ok(None) };
            let arn = plan.backup_plan_arn().unwrap_or_default().to_string();
            let Some(tags) = t.tags_or(list_tags(aws, &arn)).await? else { return Ok(None) };
            let name = plan.backup_plan().map(|p| p.backup_plan_name().to_string());
            let Some(owner) = scope.owner(&tags, name.as_deref()) else { return Ok(None) };
            Ok(Some(live(owner, &plan, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: PlanProps = Self::props(&d.props)?;
        let plan_input = input(&d.physical_name, &p)?;
        // Plan names are not ids: sent once, and after an attempt whose
        // outcome is unknown, looked up by name before sending again.
        let create = || async {
            let res = aws
                .backup
                .create_backup_plan()
                .backup_plan(plan_input.clone())
                .set_backup_plan_tags(Some(d.tags.clone().into_iter().collect()))
                .customize()
                .config_override(no_retry())
                .send()
                .await
                .map_err(sdk("backup:CreateBackupPlan"));
            match res {
                Ok(out) => Ok(out.backup_plan_id().unwrap_or_default().to_string()),
                // A lost response to a create that happened.
                Err(e) if e.is("AlreadyExistsException") => by_name(aws, &d.physical_name).await?.ok_or(e),
                Err(e) => Err(e),
            }
        };
        let id = create_or_adopt(CREATE_ATTEMPTS, create, || by_name(aws, &d.physical_name)).await?;
        let plan = get(aws, &id)
            .await?
            .ok_or_else(|| AwsError::other("backup:CreateBackupPlan", "the plan is not there after its create"))?;
        // Taken only if it carries this resource's tags.
        let tags = list_tags(aws, plan.backup_plan_arn().unwrap_or_default()).await?.unwrap_or_default();
        d.take_if_ours("backup:CreateBackupPlan", &tags)?;
        let found = live(d.name.clone(), &plan, tags);
        if found.props != d.props {
            // Taken back after a lost response, from an older spec.
            return self.update(aws, d, &found).await;
        }
        Ok(found)
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: PlanProps = Self::props(&d.props)?;
        let mut now = l.clone();
        if d.props != l.props {
            let out = aws
                .backup
                .update_backup_plan()
                .backup_plan_id(&l.id)
                .backup_plan(input(&d.physical_name, &p)?)
                .send()
                .await
                .map_err(sdk("backup:UpdateBackupPlan"))?;
            now.props = d.props.clone();
            now.outputs.insert("version_id".into(), Value::from(out.version_id().unwrap_or_default()));
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default();
        sync_tags(aws, arn, &d.tags, &l.tags).await?;
        now.tags = d.tags.clone();
        Ok(now)
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // Its selections go first (the graph deletes them before it).
        let res =
            aws.backup.delete_backup_plan().backup_plan_id(&l.id).send().await.map_err(sdk("backup:DeleteBackupPlan"));
        not_found(res, &["ResourceNotFoundException"]).map(|_| ())
    }
}

/// The offline checks AWS Backup's API reference documents for rules.
fn check(p: &PlanProps) -> Result<(), PropsError> {
    let err = |path: String, message: String| Err(PropsError { path, message });
    if p.rules.is_empty() {
        return err("rules".into(), "a backup plan has at least one rule".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in p.rules.iter().enumerate() {
        let at = |field: &str| format!("rules[{i}].{field}");
        if let Err(why) = check_name(&r.name, 1..=50, "-_.", "a rule") {
            return err(at("name"), format!("`{}`: {why}", r.name));
        }
        if !names.insert(r.name.as_str()) {
            return err(at("name"), format!("two rules are named `{}`", r.name));
        }
        if !crate::value::is_unknown_str(&r.vault)
            && let Err(why) = crate::kinds::backup::check_vault_name(&r.vault)
        {
            return err(at("vault"), format!("`{}`: {why} (the vault's name, not its ARN)", r.vault));
        }
        if !crate::value::is_unknown_str(&r.schedule) && !is_cron(&r.schedule) {
            return err(
                at("schedule"),
                format!(
                    "`{}`: AWS Backup takes `cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)`, six fields, e.g. `cron(0 3 * * ? *)`",
                    r.schedule
                ),
            );
        }
        if r.start_window_minutes < 60 {
            return err(at("start_window_minutes"), format!("{}: at least 60 minutes", r.start_window_minutes));
        }
        if r.completion_window_minutes < r.start_window_minutes + 60 {
            return err(
                at("completion_window_minutes"),
                format!(
                    "{}: at least 60 minutes more than start_window_minutes ({})",
                    r.completion_window_minutes, r.start_window_minutes
                ),
            );
        }
        check_lifecycle(r.delete_after_days, r.cold_storage_after_days)
            .map_err(|m| PropsError { path: at("delete_after_days"), message: m })?;
        if r.continuous && r.delete_after_days.is_none_or(|d| d > 35) {
            return err(
                at("delete_after_days"),
                "continuous backups are kept 1 to 35 days: set delete_after_days to 35 or less".into(),
            );
        }
        for (j, c) in r.copy_to.iter().enumerate() {
            if !crate::value::is_unknown_str(&c.vault_arn) && !is_vault_arn(&c.vault_arn) {
                return err(
                    format!("rules[{i}].copy_to[{j}].vault_arn"),
                    format!("`{}`: a vault's ARN, arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME", c.vault_arn),
                );
            }
            check_lifecycle(c.delete_after_days, None)
                .map_err(|m| PropsError { path: format!("rules[{i}].copy_to[{j}].delete_after_days"), message: m })?;
        }
    }
    Ok(())
}

fn check_lifecycle(delete: Option<i64>, cold: Option<i64>) -> Result<(), String> {
    if let Some(d) = delete
        && d < 1
    {
        return Err(format!("{d}: at least 1 day"));
    }
    match (delete, cold) {
        (Some(d), Some(c)) if d < c + 90 => Err(format!(
            "{d}: a recovery point stays in cold storage at least 90 days, so delete_after_days is at least cold_storage_after_days + 90 ({})",
            c + 90
        )),
        _ => Ok(()),
    }
}

/// `cron(…)` with six fields, as AWS Backup's schedules are written.
fn is_cron(s: &str) -> bool {
    s.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')).is_some_and(|f| f.split_whitespace().count() == 6)
}

fn is_vault_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(7, ':').collect();
    parts.len() == 7 && parts[0] == "arn" && parts[2] == "backup" && parts[5] == "backup-vault" && !parts[6].is_empty()
}

/// The plan document of `p` under `name`.
fn input(name: &str, p: &PlanProps) -> Result<BackupPlanInput, AwsError> {
    let op = "backup:CreateBackupPlan";
    let lifecycle = |delete: Option<i64>, cold: Option<i64>| {
        (delete.is_some() || cold.is_some()).then(|| {
            Lifecycle::builder().set_delete_after_days(delete).set_move_to_cold_storage_after_days(cold).build()
        })
    };
    let mut rules = Vec::new();
    for r in &p.rules {
        let mut copies = Vec::new();
        for c in &r.copy_to {
            copies.push(
                CopyAction::builder()
                    .destination_backup_vault_arn(&c.vault_arn)
                    .set_lifecycle(lifecycle(c.delete_after_days, None))
                    .build()
                    .map_err(build_err(op))?,
            );
        }
        rules.push(
            BackupRuleInput::builder()
                .rule_name(&r.name)
                .target_backup_vault_name(&r.vault)
                .schedule_expression(&r.schedule)
                .start_window_minutes(r.start_window_minutes)
                .completion_window_minutes(r.completion_window_minutes)
                .set_lifecycle(lifecycle(r.delete_after_days, r.cold_storage_after_days))
                .enable_continuous_backup(r.continuous)
                .set_copy_actions((!copies.is_empty()).then_some(copies))
                .build()
                .map_err(build_err(op))?,
        );
    }
    BackupPlanInput::builder().backup_plan_name(name).set_rules(Some(rules)).build().map_err(build_err(op))
}

/// The id of the plan (not deleted) named `name`, if any.
async fn by_name(aws: &Aws, name: &str) -> Result<Option<String>, AwsError> {
    let mut pages = aws.backup.list_backup_plans().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("backup:ListBackupPlans"))?;
        let found =
            page.backup_plans_list().iter().find(|p| p.backup_plan_name() == Some(name) && p.deletion_date().is_none());
        if let Some(p) = found {
            return Ok(p.backup_plan_id().map(str::to_string));
        }
    }
    Ok(None)
}

/// The plan of this id, unless gone or deleted (AWS keeps answering for a
/// deleted plan, with its deletion date).
async fn get(aws: &Aws, id: &str) -> Result<Option<GetBackupPlanOutput>, AwsError> {
    let res = aws.backup.get_backup_plan().backup_plan_id(id).send().await.map_err(sdk("backup:GetBackupPlan"));
    Ok(not_found(res, &["ResourceNotFoundException"])?.filter(|p| p.deletion_date().is_none()))
}

fn live(name: String, out: &GetBackupPlanOutput, tags: BTreeMap<String, String>) -> Live {
    let rules = out
        .backup_plan()
        .map(|p| {
            p.rules()
                .iter()
                .map(|r| {
                    let lc = r.lifecycle();
                    Rule {
                        name: r.rule_name().to_string(),
                        vault: r.target_backup_vault_name().to_string(),
                        schedule: r.schedule_expression().unwrap_or_default().to_string(),
                        start_window_minutes: r.start_window_minutes().unwrap_or(start_window()),
                        completion_window_minutes: r.completion_window_minutes().unwrap_or(completion_window()),
                        delete_after_days: lc.and_then(|l| l.delete_after_days()),
                        cold_storage_after_days: lc.and_then(|l| l.move_to_cold_storage_after_days()),
                        continuous: r.enable_continuous_backup().unwrap_or(false),
                        copy_to: r
                            .copy_actions()
                            .iter()
                            .map(|c| Copy {
                                vault_arn: c.destination_backup_vault_arn().to_string(),
                                delete_after_days: c.lifecycle().and_then(|l| l.delete_after_days()),
                            })
                            .collect(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let id = out.backup_plan_id().unwrap_or_default().to_string();
    Live::new(name, id, &PlanProps { rules }, tags)
        .output("arn", out.backup_plan_arn().unwrap_or_default())
        .output("version_id", out.version_id().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Kind;
    use super::PlanKind;

    fn check(rule: serde_json::Value) -> Result<serde_json::Value, String> {
        PlanKind.canonicalize(json!({ "rules": [rule] })).map_err(|e| format!("{}: {}", e.path, e.message))
    }

    #[test]
    fn rules_are_checked_as_aws_backup_documents_them() {
        let ok = json!({"name": "daily", "vault": "v-1", "schedule": "cron(0 5 * * ? *)", "delete_after_days": 35});
        let canonical = check(ok.clone()).unwrap();
        assert_eq!(canonical["rules"][0]["start_window_minutes"], 480, "AWS Backup's defaults, filled in");
        assert_eq!(canonical["rules"][0]["completion_window_minutes"], 10080);
        let with = |k: &str, v: serde_json::Value| {
            let mut r = ok.clone();
            r[k] = v;
            check(r).unwrap_err()
        };
        assert!(with("name", json!("a b")).ends_with("a rule's name is 1 to 50 letters, digits, `-`, `_` and `.`"));
        assert_eq!(
            PlanKind.check_physical_name("a b"),
            Err("a backup plan's name is 1 to 200 letters, digits, `-`, `_` and `.`".into())
        );
        assert_eq!(
            crate::kinds::backup::check_vault_name("v"),
            Err("a backup vault's name is 2 to 50 letters, digits, `-` and `_`".into())
        );
        assert!(with("schedule", json!("rate(1 day)")).contains("six fields"));
        assert!(with("schedule", json!("cron(0 5 * * ?)")).contains("six fields"));
        assert!(with("vault", json!("arn:aws:backup:eu-west-1:1:backup-vault:v")).contains("not its ARN"));
        assert!(with("start_window_minutes", json!(30)).contains("at least 60"));
        assert!(with("cold_storage_after_days", json!(30)).contains("at least cold_storage_after_days + 90 (120)"));
        let mut pitr = ok.clone();
        pitr["continuous"] = json!(true);
        pitr["delete_after_days"] = json!(60);
        assert!(check(pitr).unwrap_err().contains("35 or less"));
        let copy = with("copy_to", json!([{"vault_arn": "arn:aws:s3:::bucket"}]));
        assert!(copy.starts_with("rules[0].copy_to[0].vault_arn"), "{copy}");
        let two = PlanKind.canonicalize(json!({"rules": [ok.clone(), ok]})).unwrap_err();
        assert!(two.message.contains("two rules are named `daily`"));
        assert!(PlanKind.canonicalize(json!({"rules": []})).is_err());
    }
}
