//! `elbv2.listener`: a port on a load balancer and what it does with
//! requests: forward to a target group, or redirect (HTTP → HTTPS).

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action as AwsAction, ActionTypeEnum, Certificate, Listener, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::{Aws, AwsError, not_found};
use crate::aws::{all_items, sdk};
use crate::kinds::elbv2::{sync_tags, tags_of, to_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct ListenerKind;

/// Properties of `elbv2.listener`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerProps {
    /// Changing it replaces the listener.
    pub load_balancer_arn: String,
    pub port: i32,
    /// `HTTP`, `HTTPS`, `TCP`, `TLS`.
    pub protocol: String,
    /// Required for `HTTPS` and `TLS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// Omitted: AWS's default policy, not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub default_action: DefaultAction,
}

/// What the listener does.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DefaultAction {
    Forward {
        target_group_arn: String,
    },
    Redirect {
        #[serde(default = "https")]
        protocol: String,
        #[serde(default = "https_port")]
        port: String,
        #[serde(default = "moved")]
        status_code: String,
    },
}

fn https() -> String {
    "HTTPS".into()
}
fn https_port() -> String {
    "443".into()
}
fn moved() -> String {
    "HTTP_301".into()
}

impl Kind for ListenerKind {
    type Props = ListenerProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "elbv2.listener",
        doc: "A load balancer listener: forward to a target group or redirect (HTTP → HTTPS). Outputs: `id` and `arn`.",
        replace_on: &["load_balancer_arn"],
        sends: &[
            Sent::aws("load_balancer_arn", "elbv2:CreateListenerInput.LoadBalancerArn"),
            Sent::aws("port", "elbv2:CreateListenerInput.Port"),
            Sent::aws("protocol", "elbv2:CreateListenerInput.Protocol"),
            Sent::aws("certificate_arn", "elbv2:Certificate.CertificateArn"),
            Sent::aws("ssl_policy", "elbv2:CreateListenerInput.SslPolicy"),
            Sent::aws("default_action.type", "elbv2:Action.Type"),
            Sent::aws("default_action.target_group_arn", "elbv2:Action.TargetGroupArn"),
            Sent::aws("default_action.protocol", "elbv2:RedirectActionConfig.Protocol"),
            Sent::aws("default_action.port", "elbv2:RedirectActionConfig.Port"),
            Sent::aws("default_action.status_code", "elbv2:RedirectActionConfig.StatusCode"),
        ],
        outputs: &["id", "arn"],
        reads: crate::kinds::Reads {
            once: &["elasticloadbalancing:DescribeTags"],
            per_object: &[],
            per_parent: &[("elasticloadbalancing:DescribeListeners", "elbv2.load_balancer")],
        },
        ..Facts::DEFAULT
    };
    fn canonical(&self, p: ListenerProps) -> Result<ListenerProps, PropsError> {
        let secure = ["HTTPS", "TLS"].contains(&p.protocol.as_str());
        if secure && p.certificate_arn.is_none() {
            return Err(PropsError {
                path: "certificate_arn".into(),
                message: format!("a {} listener needs `certificate_arn`", p.protocol),
            });
        }
        if !secure && p.certificate_arn.is_some() {
            return Err(PropsError {
                path: "certificate_arn".into(),
                message: format!("a {} listener takes no certificate", p.protocol),
            });
        }
        // A redirect's status code is checked against the model's enum
        // (crate::limits), as every member this kind sends.
        Ok(p)
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // Listeners are listed per load balancer: the stack's ones, from
        // the ownership index (a load balancer gone since is skipped).
        let mut listeners = Vec::new();
        for lb in scope.shared.owned(aws, "elasticloadbalancing:loadbalancer").await? {
            let res = all_items!(
                aws.elbv2.describe_listeners().load_balancer_arn(&lb.arn),
                "elasticloadbalancing:DescribeListeners"
            );
            listeners.extend(not_found(res, &["LoadBalancerNotFound"])?.unwrap_or_default());
        }
        let arns: Vec<String> = listeners.iter().filter_map(|l| l.listener_arn.clone()).collect();
        let tags = tags_of(aws, &arns).await?;
        Ok(listeners
            .into_iter()
            .filter_map(|l| {
                let t = tags.get(l.listener_arn()?).cloned().unwrap_or_default();
                let owner = scope.owner(&t, None)?;
                Some(live(owner, l, t))
            })
            .collect())
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: ListenerProps = ListenerKind::props(&d.props)?;
        let res = aws
            .elbv2
            .create_listener()
            .load_balancer_arn(&p.load_balancer_arn)
            .port(p.port)
            .protocol(ProtocolEnum::from(p.protocol.as_str()))
            .set_certificates(certificates(&p))
            .set_ssl_policy(p.ssl_policy.clone())
            .default_actions(action(&p.default_action))
            .set_tags(Some(to_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("elasticloadbalancing:CreateListener"));
        match res {
            Ok(out) => {
                let l = out.listeners.unwrap_or_default().into_iter().next();
                let l = l.ok_or_else(|| AwsError::other("elasticloadbalancing:CreateListener", "no listener"))?;
                Ok(live(d.name.clone(), l, d.tags.clone()))
            }
            // The port is taken: by the listener a lost response made
            // (taken), or by another (refused).
            Err(e) if e.is("DuplicateListener") => {
                let found = aws
                    .elbv2
                    .describe_listeners()
                    .load_balancer_arn(&p.load_balancer_arn)
                    .send()
                    .await
                    .map_err(sdk("elasticloadbalancing:DescribeListeners"))?;
                let l = found.listeners.unwrap_or_default().into_iter().find(|l| l.port == Some(p.port)).ok_or(e)?;
                let arn = l.listener_arn.clone().unwrap_or_default();
                let tags = tags_of(aws, std::slice::from_ref(&arn)).await?.remove(&arn).unwrap_or_default();
                d.take_if_ours_as(
                    "elasticloadbalancing:CreateListener",
                    &format!("listener {arn} (port {})", p.port),
                    &tags,
                )?;
                let l = live(d.name.clone(), l, tags);
                self.update(aws, d, &l).await
            }
            Err(e) => Err(e),
        }
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: ListenerProps = ListenerKind::props(&d.props)?;
        let mut want = d.props.clone();
        let mut have = l.props.clone();
        for v in [&mut want, &mut have] {
            if let Some(m) = v.as_object_mut() {
                m.remove("ssl_policy");
            }
        }
        let policy_changed = p.ssl_policy.is_some() && d.props.get("ssl_policy") != l.props.get("ssl_policy");
        if want != have || policy_changed {
            aws.elbv2
                .modify_listener()
                .listener_arn(&l.id)
                .port(p.port)
                .protocol(ProtocolEnum::from(p.protocol.as_str()))
                .set_certificates(certificates(&p))
                .set_ssl_policy(p.ssl_policy.clone())
                .default_actions(action(&p.default_action))
                .send()
                .await
                .map_err(sdk("elasticloadbalancing:ModifyListener"))?;
        }
        sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res = aws
            .elbv2
            .delete_listener()
            .listener_arn(&l.id)
            .send()
            .await
            .map_err(sdk("elasticloadbalancing:DeleteListener"));
        not_found(res, &["ListenerNotFound"]).map(|_| ())
    }
}

fn certificates(p: &ListenerProps) -> Option<Vec<Certificate>> {
    p.certificate_arn.as_ref().map(|arn| vec![Certificate::builder().certificate_arn(arn).build()])
}

fn action(a: &DefaultAction) -> AwsAction {
    match a {
        DefaultAction::Forward { target_group_arn } => {
            AwsAction::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
        }
        DefaultAction::Redirect { protocol, port, status_code } => AwsAction::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(protocol)
                    .port(port)
                    .status_code(RedirectActionStatusCodeEnum::from(status_code.as_str()))
                    .build(),
            )
            .build(),
    }
}

fn live(name: String, l: Listener, tags: BTreeMap<String, String>) -> Live {
    let arn = l.listener_arn.clone().unwrap_or_default();
    let first = l.default_actions().first();
    let default_action = match first.and_then(|a| a.redirect_config.as_ref()) {
        Some(r) => DefaultAction::Redirect {
            protocol: r.protocol.clone().unwrap_or_else(https),
            port: r.port.clone().unwrap_or_else(https_port),
            status_code: r.status_code.as_ref().map(|c| c.as_str().to_string()).unwrap_or_else(moved),
        },
        None => DefaultAction::Forward {
            target_group_arn: first.and_then(|a| a.target_group_arn.clone()).unwrap_or_default(),
        },
    };
    let props = ListenerProps {
        load_balancer_arn: l.load_balancer_arn.clone().unwrap_or_default(),
        port: l.port.unwrap_or_default(),
        protocol: l.protocol.as_ref().map(|p| p.as_str().to_string()).unwrap_or_default(),
        certificate_arn: l.certificates().first().and_then(|c| c.certificate_arn.clone()),
        ssl_policy: l.ssl_policy.clone(),
        default_action,
    };
    Live::new(name, arn.clone(), &props, tags).output("arn", arn.clone())
}
