//! `ec2.launch_template`: how instances of an auto-scaling group boot.
//!
//! An in-place change (user data, AMI, instance type …) creates a new
//! template version and makes it the default; the `version` output then
//! changes, so the groups using it are updated and refreshed.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataOptionsRequest, RequestLaunchTemplateData, ResourceType,
};
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::ec2::{from_tags, scope_filters, sync_tags, tag_spec};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct LaunchTemplateKind;

/// Properties of `ec2.launch_template`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchTemplateProps {
    /// The AMI. A change makes a new version.
    pub image_id: String,
    /// Default type; a mixed-instances group overrides it.
    pub instance_type: String,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    /// cloud-init, usually a `$template`. A change makes a new version.
    #[serde(default)]
    pub user_data: String,
    /// Instance profile name (the role that reads S3 and Secrets Manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// IMDSv2 only (default true).
    #[serde(default = "crate::kinds::yes")]
    pub require_imdsv2: bool,
}

impl Kind for LaunchTemplateKind {
    type Props = LaunchTemplateProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ec2.launch_template",
        doc: "An EC2 launch template; a change makes a new default version. Outputs: `id`, `name`, `version`.",
        replace_on: &[],
        sends: &[
            Sent::aws("image_id", "ec2:RequestLaunchTemplateData.ImageId"),
            Sent::aws("instance_type", "ec2:RequestLaunchTemplateData.InstanceType"),
            Sent::aws("security_group_ids", "ec2:RequestLaunchTemplateData.SecurityGroupIds"),
            Sent::aws("security_group_ids[]", "ec2:RequestLaunchTemplateData.SecurityGroupIds[]"),
            Sent::not("user_data", "sent base64-encoded as UserData (16 KB before encoding, checked by the kind)"),
            Sent::aws("iam_instance_profile", "ec2:LaunchTemplateIamInstanceProfileSpecificationRequest.Name"),
            Sent::not("require_imdsv2", "sent as MetadataOptions.HttpTokens (required or optional)"),
        ],
        outputs: &["id", "name", "version"],
        physical_name_output: Some("name"),
        outputs_changed_by_update: &["version"],
        import_by: crate::kinds::ImportBy::Ec2Id,
        reads: crate::kinds::Reads {
            once: &["ec2:DescribeLaunchTemplates"],
            per_object: &["ec2:DescribeLaunchTemplateVersions"],
            per_parent: &[],
        },
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: LaunchTemplateProps) -> Result<LaunchTemplateProps, PropsError> {
        crate::kinds::sort_ids(&mut p.security_group_ids);
        if p.user_data.len() > 16 * 1024 {
            return Err(PropsError {
                path: "user_data".into(),
                message: "user data is at most 16 KiB: fetch larger files from S3 at boot".into(),
            });
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        let ok =
            (3..=128).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "()./_-".contains(c));
        if ok { Ok(()) } else { Err("a launch template name is 3-128 letters, digits and ( ) . / _ -".into()) }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let templates = all_items!(
            aws.ec2.describe_launch_templates().set_filters(scope_filters(scope)),
            "ec2:DescribeLaunchTemplates"
        )?;
        // The name is unique in the region: a spec's name no template of
        // this stack holds is looked up, so one of another stack or
        // environment is a conflict (and an untagged one is adopted only
        // with `adopt: true`) before anything is sent.
        let missing = scope.unheld_names(templates.iter().filter_map(|t| t.launch_template_name()));
        let mut named = Vec::new();
        if !missing.is_empty() {
            let by_name = Filter::builder().name("launch-template-name").set_values(Some(missing)).build();
            let by_name = aws.ec2.describe_launch_templates().filters(by_name);
            named = all_items!(by_name, "ec2:DescribeLaunchTemplates")?;
        }
        let mut out = Vec::new();
        for t in templates.into_iter().chain(named) {
            let tags = from_tags(t.tags());
            let Some(owner) = scope.owner(&tags, t.launch_template_name()) else { continue };
            let id = t.launch_template_id.clone().unwrap_or_default();
            // One deleted between the list and its own read (a destroy
            // running beside this plan) is gone, not an error.
            if let Some(l) = not_found(describe(aws, owner, &id, tags).await, &["InvalidLaunchTemplateId.NotFound"])? {
                out.push(l);
            }
        }
        Ok(out)
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: LaunchTemplateProps = LaunchTemplateKind::props(&d.props)?;
        let res = aws
            .ec2
            .create_launch_template()
            .launch_template_name(&d.physical_name)
            .launch_template_data(data(&p))
            .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &d.tags))
            .send()
            .await
            .map_err(sdk("ec2:CreateLaunchTemplate"));
        let id = match res {
            Ok(out) => out.launch_template.and_then(|t| t.launch_template_id).unwrap_or_default(),
            // The name is unique: a retried create finds the first one
            // (the API ignores ClientToken on some endpoints), taken only
            // if it is this resource's.
            Err(e) if e.code.contains("AlreadyExists") => {
                let found = aws
                    .ec2
                    .describe_launch_templates()
                    .launch_template_names(&d.physical_name)
                    .send()
                    .await
                    .map_err(sdk("ec2:DescribeLaunchTemplates"))?;
                let t = found.launch_templates.unwrap_or_default().into_iter().next().ok_or(e)?;
                let tags = from_tags(t.tags());
                d.take_if_ours("ec2:CreateLaunchTemplate", &tags)?;
                let l = describe(aws, d.name.clone(), t.launch_template_id().unwrap_or_default(), tags).await?;
                return if l.props != d.props || l.tags != d.tags { self.update(aws, d, &l).await } else { Ok(l) };
            }
            Err(e) => return Err(e),
        };
        describe(aws, d.name.clone(), &id, d.tags.clone()).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: LaunchTemplateProps = LaunchTemplateKind::props(&d.props)?;
        if d.props != l.props {
            let v = aws
                .ec2
                .create_launch_template_version()
                .launch_template_id(&l.id)
                .launch_template_data(data(&p))
                .send()
                .await
                .map_err(sdk("ec2:CreateLaunchTemplateVersion"))?;
            let number = v.launch_template_version.and_then(|v| v.version_number).unwrap_or_default();
            aws.ec2
                .modify_launch_template()
                .launch_template_id(&l.id)
                .default_version(number.to_string())
                .send()
                .await
                .map_err(sdk("ec2:ModifyLaunchTemplate"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        describe(aws, l.name.clone(), &l.id, d.tags.clone()).await
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .ec2
            .delete_launch_template()
            .launch_template_id(&l.id)
            .send()
            .await
            .map_err(sdk("ec2:DeleteLaunchTemplate"));
        not_found(res, &["InvalidLaunchTemplateId.NotFound"]).map(|_| ())
    }
}

fn data(p: &LaunchTemplateProps) -> RequestLaunchTemplateData {
    let tokens = if p.require_imdsv2 {
        LaunchTemplateHttpTokensState::Required
    } else {
        LaunchTemplateHttpTokensState::Optional
    };
    RequestLaunchTemplateData::builder()
        .image_id(&p.image_id)
        .instance_type(aws_sdk_ec2::types::InstanceType::from(p.instance_type.as_str()))
        .set_security_group_ids((!p.security_group_ids.is_empty()).then(|| p.security_group_ids.clone()))
        .user_data(base64::engine::general_purpose::STANDARD.encode(&p.user_data))
        .set_iam_instance_profile(
            p.iam_instance_profile
                .as_ref()
                .map(|n| LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(n).build()),
        )
        .metadata_options(LaunchTemplateInstanceMetadataOptionsRequest::builder().http_tokens(tokens).build())
        .build()
}

/// The template's default version, as properties.
async fn describe(aws: &Aws, name: String, id: &str, tags: BTreeMap<String, String>) -> Result<Live, AwsError> {
    let out = aws
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions("$Default")
        .send()
        .await
        .map_err(sdk("ec2:DescribeLaunchTemplateVersions"))?;
    let v = out.launch_template_versions.unwrap_or_default().into_iter().next();
    let v =
        v.ok_or_else(|| AwsError::other("ec2:DescribeLaunchTemplateVersions", format!("{id} has no default version")))?;
    let template_name = v.launch_template_name.clone().unwrap_or_default();
    let number = v.version_number.unwrap_or_default();
    let data =
        v.launch_template_data.unwrap_or_else(|| aws_sdk_ec2::types::ResponseLaunchTemplateData::builder().build());
    let user_data = data
        .user_data
        .as_deref()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let mut security_group_ids = data.security_group_ids.clone().unwrap_or_default();
    security_group_ids.sort();
    let tokens = data.metadata_options.as_ref().and_then(|m| m.http_tokens.clone());
    let props = LaunchTemplateProps {
        image_id: data.image_id.clone().unwrap_or_default(),
        instance_type: data.instance_type.as_ref().map(|t| t.as_str().to_string()).unwrap_or_default(),
        security_group_ids,
        user_data,
        iam_instance_profile: data.iam_instance_profile.as_ref().and_then(|p| p.name.clone()),
        require_imdsv2: tokens.map(|t| t.as_str() == "required").unwrap_or(false),
    };
    Ok(Live::new(name, id.to_string(), &props, tags)
        .output("id", id)
        .output("name", template_name)
        .output("version", number.to_string()))
}
