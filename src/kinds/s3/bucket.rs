//! `s3.bucket`: an S3 bucket with versioning, default encryption, a public
//! access block and lifecycle rules.
//!
//! Identity: the bucket name (globally unique) and the `converge:` tags.
//! S3 has no tag filter on ListBuckets, so a read lists the region's buckets
//! once and reads their tags concurrently (bounded).

use crate::aws::waited;
use std::collections::BTreeMap;

use aws_sdk_s3::client::Waiters;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule as AwsRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use futures_util::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct BucketKind;

/// Concurrent nested reads per kind read.
const READ_CONCURRENCY: usize = 16;

/// Properties of `s3.bucket`. The bucket name is the resource's physical
/// name (`name:`, default `<stack>-<env>-<resource>`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketProps {
    /// Keep every version of every object. Turning it off suspends
    /// versioning (S3 cannot un-version a bucket).
    #[serde(default)]
    pub versioning: bool,
    /// Default encryption (default SSE-S3, `AES256`).
    #[serde(default)]
    pub encryption: Encryption,
    /// Block public access (default: all four settings on).
    #[serde(default)]
    pub public_access_block: PublicAccessBlock,
    /// Lifecycle rules, by id.
    #[serde(default)]
    pub lifecycle_rules: Vec<LifecycleRule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `AES256` (SSE-S3) or `aws:kms`.
    #[serde(default = "aes256")]
    pub algorithm: Algorithm,
    /// KMS key for `aws:kms` (default: the AWS-managed key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Algorithm {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "aws:kms")]
    Kms,
}

fn aes256() -> Algorithm {
    Algorithm::Aes256
}

impl Default for Encryption {
    fn default() -> Self {
        Encryption { algorithm: Algorithm::Aes256, kms_key_id: None }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicAccessBlock {
    #[serde(default = "crate::kinds::yes")]
    pub block_public_acls: bool,
    #[serde(default = "crate::kinds::yes")]
    pub ignore_public_acls: bool,
    #[serde(default = "crate::kinds::yes")]
    pub block_public_policy: bool,
    #[serde(default = "crate::kinds::yes")]
    pub restrict_public_buckets: bool,
}

impl Default for PublicAccessBlock {
    fn default() -> Self {
        PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }
}

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleRule {
    pub id: String,
    /// Key prefix the rule applies to (default: the whole bucket).
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "crate::kinds::yes")]
    pub enabled: bool,
    /// Delete current objects this many days after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<i32>,
    /// Delete noncurrent versions this many days after they become noncurrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration_days: Option<i32>,
    /// Abort incomplete multipart uploads after this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload_days: Option<i32>,
}

impl Kind for BucketKind {
    type Props = BucketProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "s3.bucket",
        doc: "An S3 bucket, encrypted and private by default. Outputs: `id` and `name` (the bucket name), `arn`, `region`.",
        replace_on: &[],
        sends: &[
            Sent::not("versioning", "sent as VersioningConfiguration.Status (Enabled or Suspended)"),
            Sent::aws("encryption.algorithm", "s3:ServerSideEncryptionByDefault.SSEAlgorithm"),
            Sent::aws("encryption.kms_key_id", "s3:ServerSideEncryptionByDefault.KMSMasterKeyID"),
            Sent::aws("public_access_block.block_public_acls", "s3:PublicAccessBlockConfiguration.BlockPublicAcls"),
            Sent::aws("public_access_block.ignore_public_acls", "s3:PublicAccessBlockConfiguration.IgnorePublicAcls"),
            Sent::aws("public_access_block.block_public_policy", "s3:PublicAccessBlockConfiguration.BlockPublicPolicy"),
            Sent::aws(
                "public_access_block.restrict_public_buckets",
                "s3:PublicAccessBlockConfiguration.RestrictPublicBuckets",
            ),
            Sent::aws("lifecycle_rules[].id", "s3:LifecycleRule.ID"),
            Sent::aws("lifecycle_rules[].prefix", "s3:LifecycleRuleFilter.Prefix"),
            Sent::not("lifecycle_rules[].enabled", "sent as LifecycleRule.Status (Enabled or Disabled)"),
            Sent::aws("lifecycle_rules[].expiration_days", "s3:LifecycleExpiration.Days"),
            Sent::aws(
                "lifecycle_rules[].noncurrent_version_expiration_days",
                "s3:NoncurrentVersionExpiration.NoncurrentDays",
            ),
            Sent::aws(
                "lifecycle_rules[].abort_incomplete_multipart_upload_days",
                "s3:AbortIncompleteMultipartUpload.DaysAfterInitiation",
            ),
        ],
        outputs: &["id", "name", "arn", "region"],
        physical_name_output: Some("name"),
        protected: true,
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &[
                "s3:GetBucketVersioning",
                "s3:GetBucketEncryption",
                "s3:GetBucketLifecycleConfiguration",
                "s3:GetPublicAccessBlock",
            ],
            per_parent: &[],
        },
        tagging_type: Some("s3"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: BucketProps) -> Result<BucketProps, PropsError> {
        p.lifecycle_rules.sort();
        let mut ids = std::collections::BTreeSet::new();
        for (i, r) in p.lifecycle_rules.iter().enumerate() {
            if !ids.insert(&r.id) {
                return Err(PropsError {
                    path: format!("lifecycle_rules[{i}].id"),
                    message: format!("duplicate lifecycle rule id `{}`", r.id),
                });
            }
            if r.expiration_days.is_none()
                && r.noncurrent_version_expiration_days.is_none()
                && r.abort_incomplete_multipart_upload_days.is_none()
            {
                return Err(PropsError {
                    path: format!("lifecycle_rules[{i}]"),
                    message: format!(
                        "lifecycle rule `{}` has no action: set expiration_days, noncurrent_version_expiration_days or abort_incomplete_multipart_upload_days",
                        r.id
                    ),
                });
            }
        }
        if p.encryption.algorithm == Algorithm::Aes256 && p.encryption.kms_key_id.is_some() {
            return Err(PropsError {
                path: "encryption.kms_key_id".into(),
                message: "`kms_key_id` needs `algorithm: aws:kms`".into(),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !(3..=63).contains(&name.len()) || !ok_chars || !ends_ok || name.contains("..") {
            return Err("a bucket name is 3-63 lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit".into());
        }
        // S3's general purpose bucket naming rules, beyond the characters.
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err("a bucket name may not be formatted as an IP address".into());
        }
        for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
            if name.starts_with(prefix) {
                return Err(format!("a bucket name may not start with `{prefix}` (reserved by S3)"));
            }
        }
        for suffix in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
            if name.ends_with(suffix) {
                return Err(format!("a bucket name may not end with `{suffix}` (reserved by S3)"));
            }
        }
        Ok(())
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // S3 has no batch read: each bucket's settings are read on their
        // own, for the stack's buckets only.
        let targets = scope.targets(aws).await?;
        futures_util::stream::iter(targets)
            .map(|t| async move {
                let Some(tags) = t.tags_or(bucket_tags(aws, &t.id)).await? else { return Ok(None) };
                let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
                // The index lags deletes on AWS: a bucket gone is skipped.
                match read_one(aws, owner, t.id, tags).await {
                    Err(e) if e.is("NoSuchBucket") => Ok(None),
                    res => res.map(Some),
                }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let mut conf = CreateBucketConfiguration::builder().set_tags(Some(s3_tags(&d.tags)));
        if aws.region != "us-east-1" {
            conf = conf.location_constraint(BucketLocationConstraint::from(aws.region.as_str()));
        }
        let res = aws
            .s3
            .create_bucket()
            .bucket(&d.physical_name)
            .create_bucket_configuration(conf.build())
            .send()
            .await
            .map_err(sdk("s3:CreateBucket"));
        match res {
            // In us-east-1 S3 answers 200 to a create of a bucket the
            // account has (its legacy behaviour): one tagged by someone
            // else is not taken. (Untagged, it may be this create's own on
            // an endpoint that drops CreateBucketConfiguration.Tags.)
            Ok(_) if aws.region == "us-east-1" => {
                let tags = bucket_tags(aws, &d.physical_name).await?.unwrap_or_default();
                if !tags.is_empty() {
                    d.take_if_ours("s3:CreateBucket", &tags)?;
                }
            }
            Ok(_) => {}
            // A retried create whose first attempt succeeded, taken only
            // if it is this resource's.
            Err(e) if e.is("BucketAlreadyOwnedByYou") => {
                d.take_if_ours("s3:CreateBucket", &bucket_tags(aws, &d.physical_name).await?.unwrap_or_default())?;
            }
            Err(e) if e.is("BucketAlreadyExists") => {
                return Err(AwsError {
                    message: format!(
                        "{} (bucket names are global: set another `name:` for resource `{}`)",
                        e.message, d.name
                    ),
                    ..e
                });
            }
            Err(e) => return Err(e),
        }
        aws.s3
            .wait_until_bucket_exists()
            .bucket(&d.physical_name)
            .wait(d.timeout)
            .await
            .map_err(waited("s3:HeadBucket (wait exists)"))?;
        // Everything a new bucket lacks; tags too (CreateBucket set them
        // on AWS; the call is idempotent and covers endpoints that drop
        // CreateBucketConfiguration.Tags).
        let blank = Live {
            name: d.name.clone(),
            id: d.physical_name.clone(),
            props: Value::Null,
            tags: BTreeMap::new(),
            outputs: outputs(&d.physical_name, &aws.region),
        };
        self.update(aws, d, &blank).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: BucketProps = crate::kinds::props("s3.bucket", &d.props)?;
        // A fresh bucket (`Null` props) gets every setting written.
        let was: Option<BucketProps> = serde_json::from_value(l.props.clone()).ok();
        let b = &l.id;
        if d.tags != l.tags {
            aws.s3
                .put_bucket_tagging()
                .bucket(b)
                .tagging(Tagging::builder().set_tag_set(Some(s3_tags(&d.tags))).build().map_err(build_err)?)
                .send()
                .await
                .map_err(sdk("s3:PutBucketTagging"))?;
        }
        if was.as_ref().is_none_or(|w| w.public_access_block != p.public_access_block) {
            let pab = &p.public_access_block;
            aws.s3
                .put_public_access_block()
                .bucket(b)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(pab.block_public_acls)
                        .ignore_public_acls(pab.ignore_public_acls)
                        .block_public_policy(pab.block_public_policy)
                        .restrict_public_buckets(pab.restrict_public_buckets)
                        .build(),
                )
                .send()
                .await
                .map_err(sdk("s3:PutPublicAccessBlock"))?;
        }
        if was.as_ref().is_none_or(|w| w.encryption != p.encryption) {
            let sse = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(match p.encryption.algorithm {
                    Algorithm::Aes256 => ServerSideEncryption::Aes256,
                    Algorithm::Kms => ServerSideEncryption::AwsKms,
                })
                .set_kms_master_key_id(p.encryption.kms_key_id.clone())
                .build()
                .map_err(build_err)?;
            let conf = ServerSideEncryptionConfiguration::builder()
                .rules(ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(sse).build())
                .build()
                .map_err(build_err)?;
            aws.s3
                .put_bucket_encryption()
                .bucket(b)
                .server_side_encryption_configuration(conf)
                .send()
                .await
                .map_err(sdk("s3:PutBucketEncryption"))?;
        }
        // A new bucket is unversioned: only write `true`.
        let versioning_changed = match &was {
            Some(w) => w.versioning != p.versioning,
            None => p.versioning,
        };
        if versioning_changed {
            let status = if p.versioning { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
            aws.s3
                .put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send()
                .await
                .map_err(sdk("s3:PutBucketVersioning"))?;
        }
        let rules_changed = match &was {
            Some(w) => w.lifecycle_rules != p.lifecycle_rules,
            None => !p.lifecycle_rules.is_empty(),
        };
        if rules_changed && p.lifecycle_rules.is_empty() {
            aws.s3.delete_bucket_lifecycle().bucket(b).send().await.map_err(sdk("s3:DeleteBucketLifecycle"))?;
        } else if rules_changed {
            let rules = p.lifecycle_rules.iter().map(aws_rule).collect::<Result<Vec<_>, _>>()?;
            aws.s3
                .put_bucket_lifecycle_configuration()
                .bucket(b)
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(build_err)?,
                )
                .send()
                .await
                .map_err(sdk("s3:PutBucketLifecycleConfiguration"))?;
        }
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws.s3.delete_bucket().bucket(&l.id).send().await.map_err(sdk("s3:DeleteBucket"));
        match not_found(res, &["NoSuchBucket"]) {
            Err(e) if e.is("BucketNotEmpty") => Err(AwsError {
                message: format!(
                    "{}: converge does not delete objects it does not manage; empty s3://{} first",
                    e.message, l.id
                ),
                ..e
            }),
            other => other.map(|_| ()),
        }
    }
}

fn build_err(e: aws_sdk_s3::error::BuildError) -> AwsError {
    AwsError::other("s3", e.to_string())
}

fn s3_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

fn outputs(name: &str, region: &str) -> BTreeMap<String, Value> {
    [
        ("id".to_string(), Value::from(name)),
        ("name".to_string(), Value::from(name)),
        ("arn".to_string(), Value::from(format!("arn:aws:s3:::{name}"))),
        ("region".to_string(), Value::from(region)),
    ]
    .into()
}

fn aws_rule(r: &LifecycleRule) -> Result<AwsRule, AwsError> {
    AwsRule::builder()
        .id(&r.id)
        .filter(LifecycleRuleFilter::builder().prefix(&r.prefix).build())
        .status(if r.enabled { ExpirationStatus::Enabled } else { ExpirationStatus::Disabled })
        .set_expiration(r.expiration_days.map(|d| LifecycleExpiration::builder().days(d).build()))
        .set_noncurrent_version_expiration(
            r.noncurrent_version_expiration_days
                .map(|d| NoncurrentVersionExpiration::builder().noncurrent_days(d).build()),
        )
        .set_abort_incomplete_multipart_upload(
            r.abort_incomplete_multipart_upload_days
                .map(|d| AbortIncompleteMultipartUpload::builder().days_after_initiation(d).build()),
        )
        .build()
        .map_err(build_err)
}

/// Reads one bucket's settings: four independent calls, concurrently.
/// A bucket's tags; `None` if there is no such bucket.
async fn bucket_tags(aws: &Aws, name: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let res = aws.s3.get_bucket_tagging().bucket(name).send().await.map_err(sdk("s3:GetBucketTagging"));
    match res {
        Ok(out) => Ok(Some(crate::kinds::tag_map(out.tag_set.into_iter().map(|t| (Some(t.key), Some(t.value)))))),
        Err(e) if e.code.starts_with("NoSuchTagSet") => Ok(Some(BTreeMap::new())),
        Err(e) if e.is("NoSuchBucket") => Ok(None),
        Err(e) => Err(e),
    }
}

async fn read_one(aws: &Aws, owner: String, name: String, tags: BTreeMap<String, String>) -> Result<Live, AwsError> {
    let b = name.as_str();
    let versioning = async {
        let out = aws.s3.get_bucket_versioning().bucket(b).send().await.map_err(sdk("s3:GetBucketVersioning"))?;
        Ok::<_, AwsError>(out.status == Some(BucketVersioningStatus::Enabled))
    };
    let encryption = async {
        let res = aws.s3.get_bucket_encryption().bucket(b).send().await.map_err(sdk("s3:GetBucketEncryption"));
        let out = not_found(res, &["ServerSideEncryptionConfigurationNotFoundError"])?;
        let rule = out
            .and_then(|o| o.server_side_encryption_configuration)
            .and_then(|c| c.rules.into_iter().next())
            .and_then(|r| r.apply_server_side_encryption_by_default);
        Ok::<_, AwsError>(match rule {
            Some(r)
                if r.sse_algorithm == ServerSideEncryption::AwsKms
                    || r.sse_algorithm == ServerSideEncryption::AwsKmsDsse =>
            {
                Encryption { algorithm: Algorithm::Kms, kms_key_id: r.kms_master_key_id }
            }
            // S3 encrypts every bucket with SSE-S3 when nothing else is set.
            _ => Encryption::default(),
        })
    };
    let pab = async {
        let res = aws.s3.get_public_access_block().bucket(b).send().await.map_err(sdk("s3:GetPublicAccessBlock"));
        let out = not_found(res, &["NoSuchPublicAccessBlockConfiguration"])?;
        let c = out.and_then(|o| o.public_access_block_configuration);
        Ok::<_, AwsError>(match c {
            Some(c) => PublicAccessBlock {
                block_public_acls: c.block_public_acls.unwrap_or(false),
                ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
                block_public_policy: c.block_public_policy.unwrap_or(false),
                restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
            },
            None => PublicAccessBlock {
                block_public_acls: false,
                ignore_public_acls: false,
                block_public_policy: false,
                restrict_public_buckets: false,
            },
        })
    };
    let lifecycle = async {
        let res = aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(b)
            .send()
            .await
            .map_err(sdk("s3:GetBucketLifecycleConfiguration"));
        let out = not_found(res, &["NoSuchLifecycleConfiguration"])?;
        let mut rules: Vec<LifecycleRule> =
            out.map(|o| o.rules.unwrap_or_default()).unwrap_or_default().into_iter().map(from_aws_rule).collect();
        rules.sort();
        Ok::<_, AwsError>(rules)
    };
    let (versioning, encryption, public_access_block, lifecycle_rules) =
        futures_util::future::try_join4(versioning, encryption, pab, lifecycle).await?;
    let props = BucketProps { versioning, encryption, public_access_block, lifecycle_rules };
    Ok(Live {
        name: owner,
        id: name.clone(),
        props: crate::kinds::to_value(&props),
        tags,
        outputs: outputs(&name, &aws.region),
    })
}

fn from_aws_rule(r: AwsRule) -> LifecycleRule {
    let prefix = match r.filter {
        Some(f) => f.prefix.unwrap_or_default(),
        #[allow(deprecated)]
        None => r.prefix.unwrap_or_default(),
    };
    LifecycleRule {
        id: r.id.unwrap_or_default(),
        prefix,
        enabled: r.status == ExpirationStatus::Enabled,
        expiration_days: r.expiration.and_then(|e| e.days),
        noncurrent_version_expiration_days: r.noncurrent_version_expiration.and_then(|e| e.noncurrent_days),
        abort_incomplete_multipart_upload_days: r
            .abort_incomplete_multipart_upload
            .and_then(|a| a.days_after_initiation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_private_and_encrypted() {
        let v = BucketKind.canonicalize(json!({})).unwrap();
        assert_eq!(
            v,
            json!({
                "versioning": false,
                "encryption": {"algorithm": "AES256"},
                "public_access_block": {"block_public_acls": true, "ignore_public_acls": true, "block_public_policy": true, "restrict_public_buckets": true},
                "lifecycle_rules": []
            })
        );
    }

    #[test]
    fn checks_names_and_rules() {
        assert!(BucketKind.check_physical_name("gitlab-ha-staging-registry").is_ok());
        assert!(BucketKind.check_physical_name("Gitlab_Registry").is_err());
        assert!(BucketKind.check_physical_name("ab").is_err());
        let e = BucketKind.canonicalize(json!({"lifecycle_rules": [{"id": "x"}]})).unwrap_err();
        assert_eq!(e.path, "lifecycle_rules[0]");
        let e = BucketKind.canonicalize(json!({"encryption": {"algorithm": "AES256", "kms_key_id": "k"}})).unwrap_err();
        assert_eq!(e.path, "encryption.kms_key_id");
    }
}
