//! `ecr.repository`: an ECR repository for the images CI builds, tagged by
//! commit.
//!
//! Identity: the repository name (the physical name) and the identity tags,
//! set by `CreateRepository` itself; a retried create that finds the name
//! taken reads the repository back and checks whose it is. It holds the
//! images, so it is protected by default, and deleting one that still has
//! images needs `force_delete: true`.

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Repository};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::ecs::{ecr_tags, from_ecr_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, Target};
use crate::limits::Sent;

pub struct RepositoryKind;

/// Properties of `ecr.repository`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepositoryProps {
    /// `IMMUTABLE` (default: a commit's tag always means that commit's
    /// image) or `MUTABLE`. Updated in place.
    #[serde(default = "immutable")]
    pub image_tag_mutability: String,
    /// Scan each image for vulnerabilities when pushed (default true).
    /// Updated in place.
    #[serde(default = "crate::kinds::yes")]
    pub scan_on_push: bool,
    /// ECR lifecycle policy document (`rules:` …), e.g. expire untagged
    /// images after 14 days and keep the last 100. Updated in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<Value>,
    /// Delete the repository even if it still holds images (default
    /// false: such a delete fails). Not compared.
    #[serde(default)]
    pub force_delete: bool,
}

fn immutable() -> String {
    "IMMUTABLE".into()
}

impl Kind for RepositoryKind {
    type Props = RepositoryProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ecr.repository",
        doc: "An ECR repository: immutable tags, scan on push, an optional lifecycle policy; protected (it holds the images). Outputs: `id` and `arn`, `name`, `uri` (for `image: ${resources.repo.uri}:${var.image_tag}`).",
        replace_on: &[],
        sends: &[
            Sent::aws("image_tag_mutability", "ecr:CreateRepositoryRequest.imageTagMutability"),
            Sent::aws("scan_on_push", "ecr:ImageScanningConfiguration.scanOnPush"),
            Sent::not("lifecycle_policy", "a lifecycle policy document, sent as JSON text"),
            Sent::aws("force_delete", "ecr:DeleteRepositoryRequest.force"),
        ],
        outputs: &["id", "arn", "name", "uri"],
        physical_name_output: Some("name"),
        protected: true,
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["ecr:DescribeRepositories", "ecr:GetLifecyclePolicy"],
            per_parent: &[],
        },
        tagging_type: Some("ecr:repository"),
        write_only: &["force_delete"],
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: RepositoryProps) -> Result<RepositoryProps, PropsError> {
        if !["IMMUTABLE", "MUTABLE"].contains(&p.image_tag_mutability.as_str()) {
            return Err(PropsError { path: "image_tag_mutability".into(), message: "`IMMUTABLE` or `MUTABLE`".into() });
        }
        if let Some(policy) = &p.lifecycle_policy
            && !policy.get("rules").is_some_and(Value::is_array)
        {
            return Err(PropsError {
                path: "lifecycle_policy".into(),
                message: "an ECR lifecycle policy has a `rules` list".into(),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        // ECR: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2-256.
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.split(['.', '_', '-'])
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        };
        if (2..=256).contains(&name.len()) && name.split('/').all(part_ok) {
            Ok(())
        } else {
            Err("a repository name is 2-256 lower-case letters and digits, in words joined by one `.`, `_` or `-`, in parts joined by `/`".into())
        }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let targets = scope.targets(aws).await?;
        crate::kinds::read_each(targets, |t: Target| async move {
            let Some(r) = describe(aws, &t.id).await? else { return Ok(None) };
            let arn = r.repository_arn().unwrap_or_default().to_string();
            let Some(tags) = t.tags_or(list_tags(aws, &arn)).await? else { return Ok(None) };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
            let policy = lifecycle_policy(aws, &t.id).await?;
            Ok(Some(live(owner, &r, tags, policy)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: RepositoryProps = Self::props(&d.props)?;
        let res = aws
            .ecr
            .create_repository()
            .repository_name(&d.physical_name)
            .image_tag_mutability(ImageTagMutability::from(p.image_tag_mutability.as_str()))
            .image_scanning_configuration(ImageScanningConfiguration::builder().scan_on_push(p.scan_on_push).build())
            .set_tags(Some(ecr_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("ecr:CreateRepository"));
        match res {
            Ok(_) => {}
            // A lost response to a create that happened: read back, and
            // take it only if it carries this resource's tags.
            Err(e) if e.is("RepositoryAlreadyExistsException") => {}
            Err(e) => return Err(e),
        }
        let r = describe(aws, &d.physical_name)
            .await?
            .ok_or_else(|| AwsError::other("ecr:CreateRepository", "the repository is not there after its create"))?;
        let tags = list_tags(aws, r.repository_arn().unwrap_or_default()).await?.unwrap_or_default();
        d.take_if_ours("ecr:CreateRepository", &tags)?;
        put_policy(aws, &d.physical_name, p.lifecycle_policy.as_ref(), None).await?;
        Ok(live(d.name.clone(), &r, tags, p.lifecycle_policy.clone()))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: RepositoryProps = Self::props(&d.props)?;
        let was: RepositoryProps = Self::props(&l.props)?;
        let name = &d.physical_name;
        if p.image_tag_mutability != was.image_tag_mutability {
            aws.ecr
                .put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(ImageTagMutability::from(p.image_tag_mutability.as_str()))
                .send()
                .await
                .map_err(sdk("ecr:PutImageTagMutability"))?;
        }
        if p.scan_on_push != was.scan_on_push {
            aws.ecr
                .put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder().scan_on_push(p.scan_on_push).build(),
                )
                .send()
                .await
                .map_err(sdk("ecr:PutImageScanningConfiguration"))?;
        }
        put_policy(aws, name, p.lifecycle_policy.as_ref(), was.lifecycle_policy.as_ref()).await?;
        crate::kinds::ecs::sync_ecr_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, spec: Option<&Value>) -> Result<(), AwsError> {
        // Out of the spec: the safe default, images kept (the delete
        // fails while there are any).
        let force = spec
            .and_then(|s| crate::kinds::props::<RepositoryProps>(Self::FACTS.type_name, s).ok())
            .is_some_and(|p| p.force_delete);
        let name = l.outputs.get("name").and_then(Value::as_str).unwrap_or_default();
        let res = aws
            .ecr
            .delete_repository()
            .repository_name(name)
            .force(force)
            .send()
            .await
            .map_err(sdk("ecr:DeleteRepository"));
        match not_found(res, &["RepositoryNotFoundException"]) {
            Err(e) if e.is("RepositoryNotEmptyException") => Err(AwsError::other(
                "ecr:DeleteRepository",
                format!("repository {name} still holds images: set `force_delete: true` on it to delete them with it"),
            )),
            other => other.map(|_| ()),
        }
    }
}

async fn describe(aws: &Aws, name: &str) -> Result<Option<Repository>, AwsError> {
    let res =
        aws.ecr.describe_repositories().repository_names(name).send().await.map_err(sdk("ecr:DescribeRepositories"));
    Ok(not_found(res, &["RepositoryNotFoundException"])?
        .and_then(|r| r.repositories.unwrap_or_default().into_iter().next()))
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<crate::tags::Tags>, AwsError> {
    let res = aws.ecr.list_tags_for_resource().resource_arn(arn).send().await.map_err(sdk("ecr:ListTagsForResource"));
    Ok(not_found(res, &["RepositoryNotFoundException"])?.map(|r| from_ecr_tags(r.tags())))
}

async fn lifecycle_policy(aws: &Aws, name: &str) -> Result<Option<Value>, AwsError> {
    let res = aws.ecr.get_lifecycle_policy().repository_name(name).send().await.map_err(sdk("ecr:GetLifecyclePolicy"));
    let text = not_found(res, &["LifecyclePolicyNotFoundException", "RepositoryNotFoundException"])?
        .and_then(|r| r.lifecycle_policy_text);
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Sets, replaces or removes the lifecycle policy, if it changed.
async fn put_policy(aws: &Aws, name: &str, want: Option<&Value>, was: Option<&Value>) -> Result<(), AwsError> {
    if want == was {
        return Ok(());
    }
    match want {
        Some(policy) => {
            aws.ecr
                .put_lifecycle_policy()
                .repository_name(name)
                .lifecycle_policy_text(policy.to_string())
                .send()
                .await
                .map_err(sdk("ecr:PutLifecyclePolicy"))?;
        }
        None => {
            let res = aws
                .ecr
                .delete_lifecycle_policy()
                .repository_name(name)
                .send()
                .await
                .map_err(sdk("ecr:DeleteLifecyclePolicy"));
            not_found(res, &["LifecyclePolicyNotFoundException"])?;
        }
    }
    Ok(())
}

fn live(name: String, r: &Repository, tags: crate::tags::Tags, policy: Option<Value>) -> Live {
    let arn = r.repository_arn().unwrap_or_default().to_string();
    let props = RepositoryProps {
        image_tag_mutability: r.image_tag_mutability().map_or("MUTABLE", |m| m.as_str()).to_string(),
        scan_on_push: r.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        lifecycle_policy: policy,
        force_delete: false,
    };
    Live::new(name, arn.clone(), &props, tags)
        .output("arn", arn)
        .output("name", r.repository_name().unwrap_or_default())
        .output("uri", r.repository_uri().unwrap_or_default())
}
