//! `iam.instance_profile`: the instance profile an EC2 launch template
//! names, holding one role, under the stack's IAM path.

use std::collections::BTreeMap;

use aws_sdk_iam::types::InstanceProfile;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::iam::role::{check_iam_name, owner_scope};
use crate::kinds::iam::{from_tags, path, path_of, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, Scope};
use crate::limits::Sent;

pub struct InstanceProfileKind;

/// Properties of `iam.instance_profile`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceProfileProps {
    /// The role's name (`${resources.NAME.name}`).
    pub role: String,
}

impl Kind for InstanceProfileKind {
    type Props = InstanceProfileProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "iam.instance_profile",
        doc: "An IAM instance profile holding one role, for launch templates. Outputs: `id` and `name`, `arn`.",
        replace_on: &[],
        sends: &[Sent::aws("role", "iam:AddRoleToInstanceProfileRequest.RoleName")],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        reads: crate::kinds::Reads {
            once: &["iam:ListInstanceProfiles"],
            per_object: &["iam:GetInstanceProfile"],
            per_parent: &[],
        },
        ..Facts::DEFAULT
    };
    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_iam_name(name, 128, "an instance profile name")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let profiles: Vec<InstanceProfile> = all_items!(
            aws.iam.list_instance_profiles().path_prefix(path(&scope.stack, &scope.env)),
            "iam:ListInstanceProfiles"
        )?;
        // ListInstanceProfiles returns no tags; GetInstanceProfile does.
        let unheld = scope.unheld_names(profiles.iter().map(|p| p.instance_profile_name()));
        let names = profiles.iter().map(|p| p.instance_profile_name()).chain(unheld.iter().map(String::as_str));
        let reads = names.map(|name| describe(aws, name, scope));
        Ok(futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let res = aws
            .iam
            .create_instance_profile()
            .instance_profile_name(&d.physical_name)
            .path(path_of(&d.tags))
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("iam:CreateInstanceProfile"));
        match res {
            Ok(_) => {}
            // A lost response to a create that happened, taken only if it
            // is this resource's.
            Err(e) if e.is("EntityAlreadyExists") => {
                let out = aws.iam.get_instance_profile().instance_profile_name(&d.physical_name).send().await;
                let profile = out.map_err(sdk("iam:GetInstanceProfile"))?.instance_profile;
                let tags = from_tags(profile.as_ref().map(|p| p.tags()).unwrap_or_default());
                d.take_if_ours("iam:CreateInstanceProfile", &tags)?;
            }
            Err(e) => return Err(e),
        }
        let l = describe(aws, &d.physical_name, &owner_scope(d)).await?;
        let l =
            l.ok_or_else(|| AwsError::other("iam:CreateInstanceProfile", "the profile is not there after its create"))?;
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: InstanceProfileProps = InstanceProfileKind::props(&d.props)?;
        let was: InstanceProfileProps = InstanceProfileKind::props(&l.props)?;
        if p.role != was.role {
            if !was.role.is_empty() {
                remove_role(aws, &l.id, &was.role).await?;
            }
            let res = aws
                .iam
                .add_role_to_instance_profile()
                .instance_profile_name(&l.id)
                .role_name(&p.role)
                .send()
                .await
                .map_err(sdk("iam:AddRoleToInstanceProfile"));
            match res {
                Ok(_) => {}
                // A profile holds one role: after a lost response to an
                // add that happened, the retry is refused. Read back.
                Err(e) if e.is("LimitExceeded") => {
                    let now = aws
                        .iam
                        .get_instance_profile()
                        .instance_profile_name(&l.id)
                        .send()
                        .await
                        .map_err(sdk("iam:GetInstanceProfile"))?;
                    let roles = now.instance_profile.map(|ip| ip.roles).unwrap_or_default();
                    if !roles.iter().any(|r| r.role_name == p.role) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        crate::tags::sync(
            &d.tags,
            &l.tags,
            |set| async move {
                let call = aws.iam.tag_instance_profile().instance_profile_name(&l.id).set_tags(Some(to_tags(&set)));
                call.send().await.map(|_| ()).map_err(sdk("iam:TagInstanceProfile"))
            },
            |keys| async move {
                let call = aws.iam.untag_instance_profile().instance_profile_name(&l.id).set_tag_keys(Some(keys));
                call.send().await.map(|_| ()).map_err(sdk("iam:UntagInstanceProfile"))
            },
        )
        .await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let was: InstanceProfileProps = InstanceProfileKind::props(&l.props)?;
        if !was.role.is_empty() {
            remove_role(aws, &l.id, &was.role).await?;
        }
        let res = aws
            .iam
            .delete_instance_profile()
            .instance_profile_name(&l.id)
            .send()
            .await
            .map_err(sdk("iam:DeleteInstanceProfile"));
        not_found(res, &["NoSuchEntity"]).map(|_| ())
    }
}

async fn remove_role(aws: &Aws, profile: &str, role: &str) -> Result<(), AwsError> {
    let res = aws
        .iam
        .remove_role_from_instance_profile()
        .instance_profile_name(profile)
        .role_name(role)
        .send()
        .await
        .map_err(sdk("iam:RemoveRoleFromInstanceProfile"));
    not_found(res, &["NoSuchEntity"]).map(|_| ())
}

async fn describe(aws: &Aws, name: &str, scope: &Scope) -> Result<Option<Live>, AwsError> {
    let res =
        aws.iam.get_instance_profile().instance_profile_name(name).send().await.map_err(sdk("iam:GetInstanceProfile"));
    let Some(p) = not_found(res, &["NoSuchEntity"])?.and_then(|o| o.instance_profile) else {
        return Ok(None);
    };
    let tags = from_tags(p.tags());
    Ok(scope.owner(&tags, Some(name)).map(|owner| live(owner, &p, tags)))
}

fn live(name: String, p: &InstanceProfile, tags: BTreeMap<String, String>) -> Live {
    let id = p.instance_profile_name().to_string();
    let props = InstanceProfileProps { role: p.roles().first().map(|r| r.role_name().to_string()).unwrap_or_default() };
    Live::new(name, id.clone(), &props, tags).output("name", id).output("arn", p.arn().to_string())
}
