//! `iam.role`: an IAM role with its trust policy, inline policies and
//! attached managed policies, under the stack's IAM path.

use std::collections::BTreeMap;

use aws_sdk_iam::types::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::iam::{decode_document, encode_document, from_tags, path, path_of, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct RoleKind;

/// Properties of `iam.role`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleProps {
    /// Who may assume the role, as a policy document; for instances:
    /// `{Version: "2012-10-17", Statement: [{Effect: Allow, Principal:
    /// {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}]}`.
    pub assume_role_policy: Value,
    /// Inline policies by name: exactly these exist.
    #[serde(default)]
    pub policies: BTreeMap<String, Value>,
    /// Managed policies attached (ARNs), e.g. SSM's
    /// `AmazonSSMManagedInstanceCore`: exactly these are attached.
    #[serde(default)]
    pub managed_policy_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Kind for RoleKind {
    type Props = RoleProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "iam.role",
        doc: "An IAM role (trust policy, inline policies, managed policy attachments) under the IAM path /converge/STACK/ENV/. Outputs: `id` and `name`, `arn`.",
        replace_on: &[],
        sends: &[
            Sent::not("assume_role_policy", "a policy document, sent as JSON text"),
            Sent::not("policies", "inline policy documents by name, sent as JSON text"),
            Sent::not("managed_policy_arns", "attached one call each"),
            Sent::aws("managed_policy_arns[]", "iam:AttachRolePolicyRequest.PolicyArn"),
            Sent::aws("description", "iam:CreateRoleRequest.Description"),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        reads: crate::kinds::Reads {
            once: &["iam:ListRoles"],
            per_object: &["iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"],
            per_parent: &[],
        },
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: RoleProps) -> Result<RoleProps, PropsError> {
        crate::kinds::sort_ids(&mut p.managed_policy_arns);
        check_document("assume_role_policy", &p.assume_role_policy)?;
        for (name, doc) in &p.policies {
            check_document(&format!("policies.{name}"), doc)?;
            let ok = (1..=128).contains(&name.len())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !ok {
                return Err(PropsError {
                    path: format!("policies.{name}"),
                    message: "a policy name is 1-128 letters, digits and `+=,.@_-`".into(),
                });
            }
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        check_iam_name(name, 64, "a role name")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let roles: Vec<Role> =
            all_items!(aws.iam.list_roles().path_prefix(path(&scope.stack, &scope.env)), "iam:ListRoles")?;
        let unheld = scope.unheld_names(roles.iter().map(|r| r.role_name()));
        let names = roles.iter().map(|r| r.role_name()).chain(unheld.iter().map(String::as_str));
        let reads = names.map(|name| describe(aws, name, scope));
        Ok(futures_util::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: RoleProps = RoleKind::props(&d.props)?;
        let res = aws
            .iam
            .create_role()
            .role_name(&d.physical_name)
            .path(path_of(&d.tags))
            .assume_role_policy_document(encode_document(&p.assume_role_policy))
            .set_description(p.description.clone())
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("iam:CreateRole"));
        match res {
            Ok(_) => {}
            // Names are unique: a lost response to a create that
            // happened, taken only if it is this resource's.
            Err(e) if e.is("EntityAlreadyExists") => {
                let out = aws.iam.get_role().role_name(&d.physical_name).send().await.map_err(sdk("iam:GetRole"))?;
                d.take_if_ours("iam:CreateRole", &from_tags(out.role().map(|r| r.tags()).unwrap_or_default()))?;
            }
            Err(e) => return Err(e),
        }
        let l = describe(aws, &d.physical_name, &owner_scope(d)).await?;
        let l = l.ok_or_else(|| AwsError::other("iam:CreateRole", "the role is not there after its create"))?;
        self.update(aws, d, &l).await
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: RoleProps = RoleKind::props(&d.props)?;
        let was: RoleProps = RoleKind::props(&l.props)?;
        if p.assume_role_policy != was.assume_role_policy {
            aws.iam
                .update_assume_role_policy()
                .role_name(&l.id)
                .policy_document(encode_document(&p.assume_role_policy))
                .send()
                .await
                .map_err(sdk("iam:UpdateAssumeRolePolicy"))?;
        }
        if p.description != was.description {
            aws.iam
                .update_role()
                .role_name(&l.id)
                .description(p.description.clone().unwrap_or_default())
                .send()
                .await
                .map_err(sdk("iam:UpdateRole"))?;
        }
        // PutRolePolicy replaces a policy of that name: idempotent.
        for (name, doc) in &p.policies {
            if was.policies.get(name) != Some(doc) {
                aws.iam
                    .put_role_policy()
                    .role_name(&l.id)
                    .policy_name(name)
                    .policy_document(encode_document(doc))
                    .send()
                    .await
                    .map_err(sdk("iam:PutRolePolicy"))?;
            }
        }
        for name in was.policies.keys().filter(|n| !p.policies.contains_key(*n)) {
            delete_policy(aws, &l.id, name).await?;
        }
        for arn in p.managed_policy_arns.iter().filter(|a| !was.managed_policy_arns.contains(a)) {
            aws.iam
                .attach_role_policy()
                .role_name(&l.id)
                .policy_arn(arn)
                .send()
                .await
                .map_err(sdk("iam:AttachRolePolicy"))?;
        }
        for arn in was.managed_policy_arns.iter().filter(|a| !p.managed_policy_arns.contains(a)) {
            detach(aws, &l.id, arn).await?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // IAM refuses to delete a role with policies or profiles.
        let was: RoleProps = RoleKind::props(&l.props)?;
        for name in was.policies.keys() {
            delete_policy(aws, &l.id, name).await?;
        }
        for arn in &was.managed_policy_arns {
            detach(aws, &l.id, arn).await?;
        }
        let profiles = aws
            .iam
            .list_instance_profiles_for_role()
            .role_name(&l.id)
            .send()
            .await
            .map_err(sdk("iam:ListInstanceProfilesForRole"));
        for profile in not_found(profiles, &["NoSuchEntity"])?.iter().flat_map(|o| o.instance_profiles()) {
            let res = aws
                .iam
                .remove_role_from_instance_profile()
                .instance_profile_name(profile.instance_profile_name())
                .role_name(&l.id)
                .send()
                .await
                .map_err(sdk("iam:RemoveRoleFromInstanceProfile"));
            not_found(res, &["NoSuchEntity"])?;
        }
        let res = aws.iam.delete_role().role_name(&l.id).send().await.map_err(sdk("iam:DeleteRole"));
        not_found(res, &["NoSuchEntity"]).map(|_| ())
    }
}

/// IAM's naming rule for roles and instance profiles.
pub fn check_iam_name(name: &str, max: usize, what: &str) -> Result<(), String> {
    let ok =
        (1..=max).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok { Ok(()) } else { Err(format!("{what} is 1-{max} letters, digits and `+=,.@_-`")) }
}

fn check_document(path: &str, doc: &Value) -> Result<(), PropsError> {
    if crate::value::contains_unknown(doc) {
        return Ok(());
    }
    let ok = doc.get("Statement").is_some_and(|s| s.is_array() || s.is_object());
    if ok {
        Ok(())
    } else {
        Err(PropsError {
            path: path.into(),
            message: "a policy document is a map with `Version: \"2012-10-17\"` and a `Statement` list".into(),
        })
    }
}

/// The scope that owns `d`: its stack and environment (for reading back a
/// role just created).
pub fn owner_scope(d: &Desired) -> Scope {
    Scope {
        stack: d.tags.get(crate::kinds::TAG_STACK).cloned().unwrap_or_default(),
        env: d.tags.get(crate::kinds::TAG_ENV).cloned().unwrap_or_default(),
        region: String::new(),
        names: BTreeMap::new(),
        kind: "iam.role",
        taggable: true,
        conflicts: Default::default(),
        shared: Default::default(),
        tagging_type: None,
        written: Vec::new(),
    }
}

/// Deletes inline policy `name` of `role`; one already gone is success.
async fn delete_policy(aws: &Aws, role: &str, name: &str) -> Result<(), AwsError> {
    let res = aws.iam.delete_role_policy().role_name(role).policy_name(name).send().await;
    not_found(res.map_err(sdk("iam:DeleteRolePolicy")), &["NoSuchEntity"]).map(|_| ())
}

async fn detach(aws: &Aws, role: &str, arn: &str) -> Result<(), AwsError> {
    let res =
        aws.iam.detach_role_policy().role_name(role).policy_arn(arn).send().await.map_err(sdk("iam:DetachRolePolicy"));
    not_found(res, &["NoSuchEntity"]).map(|_| ())
}

async fn sync_tags(
    aws: &Aws,
    role: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async move {
            let call = aws.iam.tag_role().role_name(role).set_tags(Some(to_tags(&set)));
            call.send().await.map(|_| ()).map_err(sdk("iam:TagRole"))
        },
        |keys| async move {
            let call = aws.iam.untag_role().role_name(role).set_tag_keys(Some(keys));
            call.send().await.map(|_| ()).map_err(sdk("iam:UntagRole"))
        },
    )
    .await
}

/// Reads one role whole (GetRole carries its tags and trust policy; inline
/// and attached policies need their own calls). `None` when it is gone or
/// not `scope`'s.
async fn describe(aws: &Aws, name: &str, scope: &Scope) -> Result<Option<Live>, AwsError> {
    let res = aws.iam.get_role().role_name(name).send().await.map_err(sdk("iam:GetRole"));
    let Some(role) = not_found(res, &["NoSuchEntity"])?.and_then(|o| o.role) else {
        return Ok(None);
    };
    let tags = from_tags(role.tags());
    let Some(owner) = scope.owner(&tags, Some(name)) else {
        return Ok(None);
    };
    let names: Vec<String> = all_items!(aws.iam.list_role_policies().role_name(name), "iam:ListRolePolicies")?;
    let mut policies = BTreeMap::new();
    for policy in names {
        let out = aws
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(sdk("iam:GetRolePolicy"))?;
        policies.insert(policy, decode_document("iam:GetRolePolicy", out.policy_document())?);
    }
    let attached: Vec<_> =
        all_items!(aws.iam.list_attached_role_policies().role_name(name), "iam:ListAttachedRolePolicies")?;
    let mut managed_policy_arns: Vec<String> = attached.into_iter().filter_map(|p| p.policy_arn).collect();
    managed_policy_arns.sort();
    let assume = role.assume_role_policy_document().unwrap_or("{}");
    let props = RoleProps {
        assume_role_policy: decode_document("iam:GetRole", assume)?,
        policies,
        managed_policy_arns,
        description: role.description.clone().filter(|d| !d.is_empty()),
    };
    let id = role.role_name().to_string();
    Ok(Some(Live::new(owner, id.clone(), &props, tags).output("name", id).output("arn", role.arn().to_string())))
}
