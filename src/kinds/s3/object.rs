//! `s3.object`: a small text object (e.g. a rendered `gitlab.rb`) in a
//! bucket, replaced when its content changes.
//!
//! Identity: the `converge:` tags, set by PutObject itself (`Tagging`).
//! A read lists the objects of the stack's buckets that the spec's objects
//! are in (never its data buckets) and reads their tags; the content is
//! read back so a plan shows a line diff of what changes. An object whose
//! resource left the spec is found while some object of the spec is still
//! in its bucket.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use futures_util::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct ObjectKind;

/// A bucket an object of the spec is in: a literal name, or a bucket
/// resource of the stack (`${resources.NAME.name}` or `.id`).
#[derive(Debug, PartialEq, Eq)]
enum Bucket {
    Name(String),
    Resource(String),
}

/// The buckets the spec's objects are in, from their written `bucket`.
fn buckets_named(written: &[Value]) -> Vec<Bucket> {
    written
        .iter()
        .filter_map(|p| p.get("bucket")?.as_str())
        .map(|b| {
            let reference = b
                .strip_prefix("${resources.")
                .and_then(|r| r.strip_suffix(".name}").or_else(|| r.strip_suffix(".id}")))
                .filter(|r| !r.contains(['$', '{', '}', '.']));
            match reference {
                Some(resource) => Bucket::Resource(resource.to_string()),
                None => Bucket::Name(b.to_string()),
            }
        })
        .collect()
}

/// Largest content converge manages: configuration files, not data.
const MAX_BYTES: usize = 1 << 20;

/// Properties of `s3.object`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectProps {
    /// The bucket, e.g. `${resources.config_bucket.name}`. Changing it
    /// replaces the object.
    pub bucket: String,
    /// Changing it replaces the object.
    pub key: String,
    /// The text, often `{ $template: ../templates/x.j2, vars: {...} }`.
    pub content: String,
    #[serde(default = "text_plain")]
    pub content_type: String,
}

fn text_plain() -> String {
    "text/plain; charset=utf-8".into()
}

impl Kind for ObjectKind {
    type Props = ObjectProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "s3.object",
        doc: "A text object (a rendered config file) in an S3 bucket, rewritten when its content changes. Outputs: `id` (bucket/key), `url` (s3://…), `etag`.",
        replace_on: &["bucket", "key"],
        sends: &[
            Sent::aws("bucket", "s3:PutObjectRequest.Bucket"),
            Sent::aws("key", "s3:PutObjectRequest.Key"),
            Sent::aws("content", "s3:PutObjectRequest.Body"),
            Sent::aws("content_type", "s3:PutObjectRequest.ContentType"),
        ],
        outputs: &["id", "url", "etag"],
        outputs_changed_by_update: &["etag"],
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["s3:GetObjectTagging", "s3:GetObject"],
            per_parent: &[("s3:ListObjectsV2", "s3.bucket")],
        },
        // S3 User Guide, "Managing object tags": "You can associate up to 10
        // tags with an object" (PutObject refuses more: "Object tags cannot be
        // greater than 10").
        max_tags: 10,
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: ObjectProps) -> Result<ObjectProps, PropsError> {
        if p.content.len() > MAX_BYTES {
            return Err(PropsError {
                path: "content".into(),
                message: format!("more than {MAX_BYTES} bytes: converge manages configuration, not data"),
            });
        }
        if p.key.is_empty() || p.key.starts_with('/') {
            return Err(PropsError {
                path: "key".into(),
                message: "a key is not empty and does not start with `/`".into(),
            });
        }
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // The stack's buckets that the spec puts objects in, from the
        // ownership index: never its data buckets (artifacts, caches),
        // whose millions of objects are not converge's.
        let wanted = buckets_named(&scope.written);
        let ours: Vec<String> = scope
            .shared
            .owned(aws, "s3")
            .await?
            .iter()
            .filter(|b| {
                wanted.contains(&Bucket::Name(b.id().to_string()))
                    || b.tags
                        .get(crate::kinds::TAG_RESOURCE)
                        .is_some_and(|r| wanted.contains(&Bucket::Resource(r.clone())))
            })
            .map(|b| b.id().to_string())
            .collect();
        let mut keys = Vec::new();
        for bucket in ours {
            let res = aws
                .s3
                .list_objects_v2()
                .bucket(&bucket)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(sdk("s3:ListObjectsV2"));
            // The index lags deletes on AWS: a bucket gone is skipped.
            let pages: Vec<_> = not_found(res, &["NoSuchBucket"])?.unwrap_or_default();
            let objects = pages.into_iter().flat_map(|p| p.contents.unwrap_or_default());
            keys.extend(objects.filter_map(|o| o.key).map(|k| (bucket.clone(), k)));
        }
        futures_util::stream::iter(keys)
            .map(|(bucket, key)| async move {
                let res = aws
                    .s3
                    .get_object_tagging()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(sdk("s3:GetObjectTagging"));
                let Some(out) = not_found(res, &["NoSuchKey"])? else { return Ok(None) };
                let tags = crate::kinds::tag_map(out.tag_set.into_iter().map(|t| (Some(t.key), Some(t.value))));
                let Some(owner) = scope.owner(&tags, None) else { return Ok(None) };
                fetch(aws, owner, &bucket, &key, tags).await
            })
            .buffer_unordered(16)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        // PutObject creates or overwrites: naturally idempotent.
        put(aws, d).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, _l: &Live) -> Result<Live, AwsError> {
        put(aws, d).await
    }

    /// Deletes every version of the key (in a versioned bucket a plain
    /// delete only adds a delete marker, and the bucket could never be
    /// deleted); nothing else in the bucket is touched.
    /// Deletes every version of the key (in a versioned bucket a plain
    /// delete only adds a delete marker, and the bucket could never be
    /// deleted); nothing else in the bucket is touched.
    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let p: ObjectProps = ObjectKind::props(&l.props)?;
        let res = aws
            .s3
            .list_object_versions()
            .bucket(&p.bucket)
            .prefix(&p.key)
            .send()
            .await
            .map_err(sdk("s3:ListObjectVersions"));
        let Some(out) = not_found(res, &["NoSuchBucket"])? else { return Ok(()) };
        let versions =
            out.versions().iter().filter(|v| v.key() == Some(&p.key)).map(|v| v.version_id().map(str::to_string));
        let markers =
            out.delete_markers().iter().filter(|m| m.key() == Some(&p.key)).map(|m| m.version_id().map(str::to_string));
        let mut ids: Vec<Option<String>> = versions.chain(markers).collect();
        if ids.is_empty() {
            ids.push(None); // an unversioned bucket: the object itself
        }
        for id in ids {
            let res = aws
                .s3
                .delete_object()
                .bucket(&p.bucket)
                .key(&p.key)
                .set_version_id(id.filter(|v| v != "null"))
                .send()
                .await
                .map_err(sdk("s3:DeleteObject"));
            not_found(res, &["NoSuchKey", "NoSuchBucket", "NoSuchVersion"])?;
        }
        Ok(())
    }
}

/// `Tagging` header: URL-encoded `key=value&…`.
fn tagging(tags: &BTreeMap<String, String>) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    tags.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

async fn put(aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
    let p: ObjectProps = ObjectKind::props(&d.props)?;
    let out = aws
        .s3
        .put_object()
        .bucket(&p.bucket)
        .key(&p.key)
        .content_type(&p.content_type)
        .tagging(tagging(&d.tags))
        .body(ByteStream::from(p.content.clone().into_bytes()))
        .send()
        .await
        .map_err(sdk("s3:PutObject"))?;
    let etag = out.e_tag.unwrap_or_default();
    Ok(live(d.name.clone(), p, d.tags.clone(), etag))
}

async fn fetch(
    aws: &Aws,
    owner: String,
    bucket: &str,
    key: &str,
    tags: BTreeMap<String, String>,
) -> Result<Option<Live>, AwsError> {
    let res = aws.s3.get_object().bucket(bucket).key(key).send().await.map_err(sdk("s3:GetObject"));
    let Some(out) = not_found(res, &["NoSuchKey"])? else { return Ok(None) };
    let content_type = out.content_type.clone().unwrap_or_else(text_plain);
    let etag = out.e_tag.clone().unwrap_or_default();
    let bytes = out.body.collect().await.map_err(|e| AwsError::other("s3:GetObject", e.to_string()))?.into_bytes();
    // Binary content is not ours to show; compare it as "changed".
    let content = String::from_utf8(bytes.to_vec()).unwrap_or_else(|_| "(binary content)".into());
    let p = ObjectProps { bucket: bucket.into(), key: key.into(), content, content_type };
    Ok(Some(live(owner, p, tags, etag)))
}

fn live(name: String, p: ObjectProps, tags: BTreeMap<String, String>, etag: String) -> Live {
    let id = format!("{}/{}", p.bucket, p.key);
    let url = format!("s3://{id}");
    // S3 quotes ETags; the value is what is inside.
    Live::new(name, id, &p, tags).output("url", url).output("etag", etag.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tagging_header_is_url_encoded() {
        let tags = [("converge:stack".to_string(), "gitlab ha".to_string()), ("Name".into(), "a/b".into())].into();
        assert_eq!(super::tagging(&tags), "Name=a%2Fb&converge%3Astack=gitlab%20ha");
    }
}
