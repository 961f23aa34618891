//! `backup.selection`: what a backup plan backs up: resources by ARN
//! pattern and by tag (both must match: AWS Backup joins `Resources` and
//! `Conditions` with AND), backed up with an IAM role AWS Backup assumes.
//!
//! AWS Backup cannot tag selections nor change them: they are found
//! through their plan (the stack's plans, from the ownership index), one
//! selection a plan, matched to the spec by the plan's id; any change
//! replaces the selection.

use std::collections::BTreeMap;

use aws_sdk_backup::types::{BackupSelection, ConditionParameter, Conditions};
use futures_util::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, client_token, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::backup::build_err;
use crate::kinds::{Desired, Facts, Kind, LinkProblem, Live, Member, PropsError, Scope};
use crate::limits::Sent;

pub struct SelectionKind;

/// Properties of `backup.selection`. Its name is the selection's name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectionProps {
    /// The plan (`${resources.PLAN.id}`). One selection a plan.
    pub plan_id: String,
    /// The role AWS Backup assumes to back up and restore: trusted by
    /// `backup.amazonaws.com`, with the managed policies
    /// `service-role/AWSBackupServiceRolePolicyForBackup` and
    /// `…ForRestores`.
    pub iam_role_arn: String,
    /// ARN patterns of what may be selected, e.g.
    /// `arn:aws:ec2:*:*:volume/*`, `arn:aws:rds:*:*:db:*`.
    pub resources: Vec<String>,
    /// Tags a resource must all carry to be selected (`Conditions`,
    /// `StringEquals` on `aws:ResourceTag/KEY`), e.g. this stack's
    /// `converge:stack` and `converge:env`.
    #[serde(default)]
    pub match_tags: BTreeMap<String, String>,
}

impl Kind for SelectionKind {
    type Props = SelectionProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "backup.selection",
        doc: "What a `backup.plan` backs up: resources matching ARN patterns and carrying all the given tags, with the IAM role AWS Backup assumes. AWS Backup cannot tag or change a selection: one a plan, identified by the plan; any change replaces it. Outputs: `id`.",
        replace_on: &["plan_id", "iam_role_arn", "resources", "match_tags"],
        sends: &[
            Sent::aws("plan_id", "backup:CreateBackupSelectionInput.BackupPlanId"),
            Sent::aws("iam_role_arn", "backup:BackupSelection.IamRoleArn"),
            Sent::aws("resources", "backup:BackupSelection.Resources"),
            Sent::aws("resources[]", "backup:BackupSelection.Resources[]"),
            Sent::aws("match_tags", "backup:Conditions.StringEquals"),
        ],
        outputs: &["id"],
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["backup:GetBackupSelection"],
            per_parent: &[("backup:ListBackupSelections", "backup.plan")],
        },
        taggable: false,
        import_by: Facts::UNTAGGABLE,
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: SelectionProps) -> Result<SelectionProps, PropsError> {
        p.resources.sort();
        p.resources.dedup();
        if p.resources.is_empty() && p.match_tags.is_empty() {
            // AWS Backup then selects every supported resource of the account.
            return Err(PropsError {
                path: "resources".into(),
                message: "name resources or match_tags: a selection with neither backs up every supported resource in the account".into(),
            });
        }
        if let Some(r) = p.resources.iter().find(|r| !crate::value::is_unknown_str(r) && !r.starts_with("arn:")) {
            return Err(PropsError {
                path: "resources".into(),
                message: format!("`{r}`: an ARN or ARN pattern, e.g. arn:aws:ec2:*:*:volume/*"),
            });
        }
        if !crate::value::is_unknown_str(&p.iam_role_arn) && !p.iam_role_arn.starts_with("arn:") {
            return Err(PropsError {
                path: "iam_role_arn".into(),
                message: format!("`{}`: the role's ARN (`${{resources.ROLE.arn}}`)", p.iam_role_arn),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        crate::kinds::backup::check_name(name, 1..=50, "-_.", "a backup selection")
    }

    fn natural_key(&self, props: &Value) -> Option<String> {
        props.get("plan_id")?.as_str().map(str::to_string)
    }
    fn check_all(&self, members: &[Member<'_>]) -> Vec<(String, LinkProblem)> {
        // One selection a plan: the plan is what identifies it.
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let mut out = Vec::new();
        for m in members {
            let key = match m.links.get("plan_id") {
                Some(r) => (*r).to_string(),
                None => match m.props.get("plan_id").and_then(Value::as_str) {
                    Some(id) if !crate::value::is_unknown_str(id) => id.to_string(),
                    _ => continue,
                },
            };
            if let Some(first) = seen.insert(key.clone(), m.name) {
                out.push((
                    m.name.to_string(),
                    LinkProblem {
                        attr: "plan_id".into(),
                        message: format!(
                            "`{first}` selects for the same plan: a plan has one selection in a stack (list every resource pattern in it)"
                        ),
                        other: None,
                    },
                ));
            }
        }
        out
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // The stack's plans, from the ownership index.
        let plans: Vec<String> =
            scope.shared.owned(aws, "backup:backup-plan").await?.iter().map(|p| p.id().to_string()).collect();
        let mut found = Vec::new();
        for plan in plans {
            let res =
                all_items!(aws.backup.list_backup_selections().backup_plan_id(&plan), "backup:ListBackupSelections");
            // The index lags deletes: a plan gone is skipped.
            for s in not_found(res, &["ResourceNotFoundException"])?.unwrap_or_default() {
                found.push((plan.clone(), s.selection_id().unwrap_or_default().to_string()));
            }
        }
        let read: Vec<Option<Live>> = futures_util::stream::iter(found)
            .map(|(plan, id)| async move { get(aws, &plan, &id).await })
            .buffer_unordered(crate::kinds::READS)
            .try_collect()
            .await?;
        Ok(read.into_iter().flatten().collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: SelectionProps = Self::props(&d.props)?;
        let op = "backup:CreateBackupSelection";
        let conditions = (!p.match_tags.is_empty()).then(|| {
            let equals = p
                .match_tags
                .iter()
                .map(|(k, v)| {
                    ConditionParameter::builder()
                        .condition_key(format!("aws:ResourceTag/{k}"))
                        .condition_value(v)
                        .build()
                })
                .collect();
            Conditions::builder().set_string_equals(Some(equals)).build()
        });
        let selection = BackupSelection::builder()
            .selection_name(&d.physical_name)
            .iam_role_arn(&p.iam_role_arn)
            .set_resources(Some(p.resources.clone()))
            .set_conditions(conditions)
            .build()
            .map_err(build_err(op))?;
        // One token for this call, resent by the SDK's retries: AWS Backup
        // returns the selection a lost response made instead of a second.
        let out = aws
            .backup
            .create_backup_selection()
            .backup_plan_id(&p.plan_id)
            .backup_selection(selection)
            .creator_request_id(client_token())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(op, e))?;
        let id = out.selection_id().unwrap_or_default();
        get(aws, &p.plan_id, id)
            .await?
            .ok_or_else(|| AwsError::other(op, "the selection is not there after its create"))
    }

    async fn update(&self, _aws: &Aws, _d: &Desired, l: &Live) -> Result<Live, AwsError> {
        // Every property replaces the selection: nothing changes in place.
        Ok(l.clone())
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let plan = l.props.get("plan_id").and_then(Value::as_str).unwrap_or_default();
        let res = aws
            .backup
            .delete_backup_selection()
            .backup_plan_id(plan)
            .selection_id(&l.id)
            .send()
            .await
            .map_err(sdk("backup:DeleteBackupSelection"));
        not_found(res, &["ResourceNotFoundException"]).map(|_| ())
    }
}

async fn get(aws: &Aws, plan: &str, id: &str) -> Result<Option<Live>, AwsError> {
    let res = aws
        .backup
        .get_backup_selection()
        .backup_plan_id(plan)
        .selection_id(id)
        .send()
        .await
        .map_err(sdk("backup:GetBackupSelection"));
    let Some(out) = not_found(res, &["ResourceNotFoundException"])? else { return Ok(None) };
    let Some(s) = out.backup_selection() else { return Ok(None) };
    let mut resources = s.resources().to_vec();
    resources.sort();
    let match_tags = s
        .conditions()
        .map(|c| {
            c.string_equals()
                .iter()
                .filter_map(|e| {
                    let key = e.condition_key()?.strip_prefix("aws:ResourceTag/")?;
                    Some((key.to_string(), e.condition_value().unwrap_or_default().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let props =
        SelectionProps { plan_id: plan.to_string(), iam_role_arn: s.iam_role_arn().to_string(), resources, match_tags };
    Ok(Some(Live::new(String::new(), id.to_string(), &props, BTreeMap::new()).output("id", id)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SelectionKind;
    use super::{Kind, Member};

    #[test]
    fn a_selection_names_what_it_selects_and_one_plan_has_one() {
        let role = "arn:aws:iam::123456789012:role/backup";
        let everything = SelectionKind.canonicalize(json!({"plan_id": "p", "iam_role_arn": role, "resources": []}));
        assert!(everything.unwrap_err().message.contains("every supported resource in the account"));
        let bad = SelectionKind.canonicalize(json!({"plan_id": "p", "iam_role_arn": role, "resources": ["vol-1"]}));
        assert!(bad.unwrap_err().message.contains("ARN pattern"));
        let ok = SelectionKind
            .canonicalize(json!({"plan_id": "p", "iam_role_arn": role, "resources": ["arn:aws:rds:*:*:db:*", "arn:aws:ec2:*:*:volume/*"]}))
            .unwrap();
        assert_eq!(ok["resources"][0], "arn:aws:ec2:*:*:volume/*", "sorted: a set");
        assert_eq!(SelectionKind.natural_key(&ok).as_deref(), Some("p"));
        let links = |plan: &'static str| [("plan_id", plan)].into();
        let members = [
            Member { name: "a", props: &ok, links: links("plan") },
            Member { name: "b", props: &ok, links: links("plan") },
        ];
        let problems = SelectionKind.check_all(&members);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.message.contains("`a` selects for the same plan"), "{problems:?}");
    }
}
