//! `secretsmanager.secret`: a Secrets Manager secret, for values the nodes
//! share and read at boot with their instance role.
//!
//! converge never reads a secret's value. A secret is created either empty
//! (a node or an operator puts the value: GitLab's `gitlab-secrets.json`,
//! written once by the first node; a runner token from GitLab's UI) or with
//! a random value Secrets Manager generates (`generate:`; a Gitaly token).
//! A generated value passes through converge's memory once, from
//! `GetRandomPassword` to `CreateSecret`, and is never printed, logged or
//! stored: the SDK redacts both fields.
//!
//! `replica_regions` replicates the secret (value and tags, kept in sync by
//! Secrets Manager) to other regions, so that what a restore needs survives
//! the loss of this one. A replica is read-only until it is promoted
//! (`aws secretsmanager stop-replication-to-replica`); the read of a stack
//! in the replica's region leaves it alone until then, and a create that
//! finds one says so. Deleting a secret removes its replicas first, as
//! Secrets Manager requires.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, ReplicaRegionType, SecretListEntry, Tag};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, client_token, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, TAG_STACK};
use crate::limits::Sent;

pub struct SecretKind;

/// Properties of `secretsmanager.secret`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// KMS key for the value (default: the account's `aws/secretsmanager`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Create the secret with a random value of this shape. Only on create:
    /// converge never reads or rotates the value. Not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Generate>,
    /// Days Secrets Manager keeps a deleted secret recoverable (7-30, 30 by
    /// default), or 0 to delete it at once. Not compared.
    #[serde(default = "crate::kinds::long::<30>")]
    pub recovery_window_days: i64,
    /// Regions the secret is replicated to (`[eu-central-1]`), each
    /// encrypted with that region's `aws/secretsmanager` key. Added and
    /// removed in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_regions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// Length (default 64).
    #[serde(default = "crate::kinds::long::<64>")]
    pub length: i64,
    /// Letters and digits only (default true: tokens go into config files).
    #[serde(default = "crate::kinds::yes")]
    pub exclude_punctuation: bool,
}

impl Kind for SecretKind {
    type Props = SecretProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "secretsmanager.secret",
        doc: "A Secrets Manager secret, created empty or with a generated random value, optionally replicated to other regions; converge never reads its value. Outputs: `id` and `arn`, `name`.",
        replace_on: &[],
        sends: &[
            Sent::aws("description", "secretsmanager:CreateSecretRequest.Description"),
            Sent::aws("kms_key_id", "secretsmanager:CreateSecretRequest.KmsKeyId"),
            Sent::aws("generate.length", "secretsmanager:GetRandomPasswordRequest.PasswordLength"),
            Sent::aws("generate.exclude_punctuation", "secretsmanager:GetRandomPasswordRequest.ExcludePunctuation"),
            Sent::aws("replica_regions[]", "secretsmanager:ReplicaRegionType.Region"),
            Sent::not(
                "recovery_window_days",
                "sent as RecoveryWindowInDays (7 to 30, checked by the kind), or for 0 as ForceDeleteWithoutRecovery",
            ),
        ],
        outputs: &["id", "arn", "name"],
        physical_name_output: Some("name"),
        // ListSecrets does not report replicas.
        reads: crate::kinds::Reads {
            once: &["secretsmanager:ListSecrets"],
            per_object: &["secretsmanager:DescribeSecret"],
            per_parent: &[],
        },
        write_only: &["generate", "recovery_window_days"],
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: SecretProps) -> Result<SecretProps, PropsError> {
        if let Some(bad) =
            p.replica_regions.iter().find(|r| !crate::value::is_unknown_str(r) && !crate::limits::valid_region(r))
        {
            return Err(PropsError {
                path: "replica_regions".into(),
                message: format!("`{bad}` is not a region (e.g. eu-central-1)"),
            });
        }
        crate::kinds::sort_ids(&mut p.replica_regions);
        if p.recovery_window_days != 0 && !(7..=30).contains(&p.recovery_window_days) {
            return Err(PropsError {
                path: "recovery_window_days".into(),
                message: "0 (delete at once) or 7 to 30 days".into(),
            });
        }
        if let Some(g) = &p.generate
            && !(8..=4096).contains(&g.length)
        {
            return Err(PropsError { path: "generate.length".into(), message: "8 to 4096 characters".into() });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        let ok =
            (1..=512).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !ok {
            return Err("a secret name is 1-512 letters, digits and `/_+=.@-`".into());
        }
        // Secrets Manager appends `-` and six characters to make ARNs; a
        // name that ends like one confuses lookups by partial ARN.
        let tail = name.rsplit('-').next().unwrap_or_default();
        if name.contains('-') && tail.len() == 6 {
            return Err("a secret name must not end with `-` and six characters (Secrets Manager's ARN suffix)".into());
        }
        Ok(())
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // Filtered server-side by the identity tags; tags come inline.
        let pages: Vec<_> = aws
            .secretsmanager
            .list_secrets()
            .filters(Filter::builder().key(FilterNameStringType::TagKey).values(TAG_STACK).build())
            .filters(Filter::builder().key(FilterNameStringType::TagValue).values(&scope.stack).build())
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(sdk("secretsmanager:ListSecrets"))?;
        let owned: Vec<(String, SecretListEntry, BTreeMap<String, String>)> = pages
            .into_iter()
            .flat_map(|p| p.secret_list.unwrap_or_default())
            .filter(|s| s.deleted_date.is_none())
            // Another region's replica is read-only and not this
            // region's object until it is promoted.
            .filter(|s| s.primary_region().is_none_or(|r| r == scope.region))
            .filter_map(|s| {
                let tags = tags_of(s.tags());
                let owner = scope.owner(&tags, None)?;
                Some((owner, s, tags))
            })
            .collect();
        // A spec's name no secret of this stack has: read by name, so one of
        // another stack or environment is a conflict before anything is sent.
        let unheld = scope.unheld_names(owned.iter().filter_map(|(_, s, _)| s.name()));
        use futures_util::{StreamExt, TryStreamExt};
        let mut out: Vec<Live> = futures_util::stream::iter(owned)
            .map(|(owner, s, tags)| async move {
                let Some((d, _)) = describe(aws, s.arn().unwrap_or_default()).await? else { return Ok(None) };
                Ok(Some(Live { name: owner, tags, ..d }))
            })
            .buffer_unordered(crate::kinds::READS)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await?;
        let named = unheld.iter().map(|name| async move {
            match describe(aws, name).await? {
                // Another region's replica is not this region's object.
                Some((_, Some(primary))) if primary != scope.region => Ok(None),
                Some((d, _)) => Ok(scope.owner(&d.tags, Some(name)).map(|owner| Live { name: owner, ..d })),
                None => Ok::<_, AwsError>(None),
            }
        });
        out.extend(futures_util::future::try_join_all(named).await?.into_iter().flatten());
        Ok(out)
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: SecretProps = SecretKind::props(&d.props)?;
        let value = match &p.generate {
            None => None,
            Some(g) => {
                aws.secretsmanager
                    .get_random_password()
                    .password_length(g.length)
                    .exclude_punctuation(g.exclude_punctuation)
                    .send()
                    .await
                    .map_err(sdk("secretsmanager:GetRandomPassword"))?
                    .random_password
            }
        };
        let res = aws
            .secretsmanager
            .create_secret()
            .name(&d.physical_name)
            // The token is the first version's id: the SDK's retries of
            // this call cannot make a second version.
            .client_request_token(uuid_like(&client_token()))
            .set_description(p.description.clone())
            .set_kms_key_id(p.kms_key_id.clone())
            .set_secret_string(value)
            .set_add_replica_regions(replicas(&p.replica_regions))
            .set_tags(Some(d.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()))
            .send()
            .await
            .map_err(sdk("secretsmanager:CreateSecret"));
        match res {
            Ok(_) => {}
            // A lost response to a create that happened: read back, and
            // taken only if it is this resource's.
            Err(e) if e.is("ResourceExistsException") => {}
            // The name is held by a secret scheduled for deletion: this
            // resource's own (destroyed within its recovery window) is
            // restored, with the value it had; another's is refused.
            Err(e) if e.is("InvalidRequestException") && e.message.contains("scheduled for deletion") => {
                let res = aws.secretsmanager.describe_secret().secret_id(&d.physical_name).send().await;
                let s = res.map_err(sdk("secretsmanager:DescribeSecret"))?;
                d.take_if_ours("secretsmanager:CreateSecret", &tags_of(s.tags()))?;
                let restore = aws.secretsmanager.restore_secret().secret_id(&d.physical_name).send().await;
                restore.map_err(sdk("secretsmanager:RestoreSecret"))?;
            }
            Err(e) => return Err(e),
        }
        let found = describe(aws, &d.physical_name).await?;
        if let Some((_, Some(primary))) = &found
            && *primary != aws.region
        {
            return Err(AwsError::other(
                "secretsmanager:CreateSecret",
                format!(
                    "secret {} here is a replica of {primary}'s: promote it first (aws secretsmanager stop-replication-to-replica --secret-id {} --region {})",
                    d.physical_name, d.physical_name, aws.region
                ),
            ));
        }
        let (l, _) = found.ok_or_else(|| {
            AwsError::other("secretsmanager:CreateSecret", "the secret is not there after its create")
        })?;
        d.take_if_ours("secretsmanager:CreateSecret", &l.tags)?;
        Ok(Live { name: d.name.clone(), ..l })
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: SecretProps = SecretKind::props(&d.props)?;
        let was: SecretProps = SecretKind::props(&l.props)?;
        if p.description != was.description || p.kms_key_id != was.kms_key_id {
            aws.secretsmanager
                .update_secret()
                .secret_id(&l.id)
                .set_description(p.description.clone())
                .set_kms_key_id(p.kms_key_id.clone())
                .send()
                .await
                .map_err(sdk("secretsmanager:UpdateSecret"))?;
        }
        set_replicas(aws, &l.id, &p.replica_regions, &was.replica_regions).await?;
        crate::tags::sync(
            &d.tags,
            &l.tags,
            |set| async move {
                let set = set.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
                let call = aws.secretsmanager.tag_resource().secret_id(&l.id).set_tags(Some(set));
                call.send().await.map(|_| ()).map_err(sdk("secretsmanager:TagResource"))
            },
            |keys| async move {
                let call = aws.secretsmanager.untag_resource().secret_id(&l.id).set_tag_keys(Some(keys));
                call.send().await.map(|_| ()).map_err(sdk("secretsmanager:UntagResource"))
            },
        )
        .await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, spec: Option<&Value>) -> Result<(), AwsError> {
        // Out of the spec: the safe default, a 30-day recovery window.
        let days = spec.and_then(|s| SecretKind::props(s).ok()).map_or(30, |p| p.recovery_window_days);
        // Secrets Manager refuses to delete a secret that has replicas.
        let had: SecretProps = SecretKind::props(&l.props)?;
        set_replicas(aws, &l.id, &[], &had.replica_regions).await?;
        let call = aws.secretsmanager.delete_secret().secret_id(&l.id);
        let call =
            if days == 0 { call.force_delete_without_recovery(true) } else { call.recovery_window_in_days(days) };
        let res = call.send().await.map_err(sdk("secretsmanager:DeleteSecret"));
        not_found(res, &["ResourceNotFoundException"]).map(|_| ())
    }
}

fn replicas(regions: &[String]) -> Option<Vec<ReplicaRegionType>> {
    (!regions.is_empty()).then(|| regions.iter().map(|r| ReplicaRegionType::builder().region(r).build()).collect())
}

/// Brings the secret's replicas from `had` to `want`.
async fn set_replicas(aws: &Aws, id: &str, want: &[String], had: &[String]) -> Result<(), AwsError> {
    let add: Vec<String> = want.iter().filter(|r| !had.contains(r)).cloned().collect();
    let remove: Vec<String> = had.iter().filter(|r| !want.contains(r)).cloned().collect();
    if !add.is_empty() {
        aws.secretsmanager
            .replicate_secret_to_regions()
            .secret_id(id)
            .set_add_replica_regions(replicas(&add))
            .send()
            .await
            .map_err(sdk("secretsmanager:ReplicateSecretToRegions"))?;
    }
    if !remove.is_empty() {
        let res = aws
            .secretsmanager
            .remove_regions_from_replication()
            .secret_id(id)
            .set_remove_replica_regions(Some(remove))
            .send()
            .await
            .map_err(sdk("secretsmanager:RemoveRegionsFromReplication"));
        not_found(res, &["ResourceNotFoundException"])?;
    }
    Ok(())
}

/// Secrets Manager wants a 32-to-64-character token; a UUID's shape is
/// what its examples use.
fn uuid_like(hex: &str) -> String {
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    crate::kinds::tag_map(tags.iter().map(|t| (t.key.clone(), t.value.clone())))
}

/// The secret as `DescribeSecret` has it, and its primary region (another
/// than this one for a replica); `None` when there is none or it is
/// scheduled for deletion.
async fn describe(aws: &Aws, name: &str) -> Result<Option<(Live, Option<String>)>, AwsError> {
    let res =
        aws.secretsmanager.describe_secret().secret_id(name).send().await.map_err(sdk("secretsmanager:DescribeSecret"));
    let Some(s) = not_found(res, &["ResourceNotFoundException"])? else { return Ok(None) };
    // Scheduled for deletion: gone, as ListSecrets has it.
    if s.deleted_date.is_some() {
        return Ok(None);
    }
    let mut regions: Vec<String> =
        s.replication_status().iter().filter_map(|r| r.region().map(str::to_string)).collect();
    crate::kinds::sort_ids(&mut regions);
    let primary = s.primary_region().map(str::to_string);
    let entry = SecretListEntry::builder()
        .set_arn(s.arn)
        .set_name(s.name)
        .set_description(s.description)
        .set_kms_key_id(s.kms_key_id)
        .set_tags(s.tags)
        .build();
    let tags = tags_of(entry.tags());
    Ok(Some((live(String::new(), &entry, tags, regions), primary)))
}

fn live(name: String, s: &SecretListEntry, tags: BTreeMap<String, String>, replica_regions: Vec<String>) -> Live {
    let arn = s.arn.clone().unwrap_or_default();
    let props = SecretProps {
        description: s.description.clone().filter(|d| !d.is_empty()),
        kms_key_id: s.kms_key_id.clone(),
        generate: None,
        recovery_window_days: 30,
        replica_regions,
    };
    Live::new(name, arn.clone(), &props, tags).output("arn", arn).output("name", s.name.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replica_regions_are_a_set_of_regions() {
        let c =
            SecretKind.canonicalize(json!({"replica_regions": ["us-east-1", "eu-central-1", "us-east-1"]})).unwrap();
        assert_eq!(c["replica_regions"], json!(["eu-central-1", "us-east-1"]));
        // None: the canonical form of every secret written before them.
        assert!(SecretKind.canonicalize(json!({})).unwrap().get("replica_regions").is_none());
        let e = SecretKind.canonicalize(json!({"replica_regions": ["frankfurt"]})).unwrap_err();
        assert_eq!(e.path, "replica_regions");
        let valid = crate::limits::valid_region;
        assert!(valid("us-gov-west-1") && !valid("eu-central") && !valid("EU-WEST-1"));
    }
}
