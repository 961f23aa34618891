//! `sns.topic`: an SNS standard topic and its subscriptions, e.g. the one
//! the GitLab stack's alarms notify.
//!
//! Identity: the topic's name (the physical name) and the identity tags,
//! set by `CreateTopic` itself. `CreateTopic` of a name that exists returns
//! that topic, so a retried create (a lost response) finds its own; one
//! that is not this resource's (other tags) is refused, never used. Reads go
//! through the ownership index (`sns`), then `GetTopicAttributes` and
//! `ListSubscriptionsByTopic` for each topic.
//!
//! Subscriptions are part of the topic (`subscriptions:`), each a protocol
//! and an endpoint, because an environment's list of them is data (a
//! variable), not a resource each. `Subscribe` is idempotent per topic,
//! protocol and endpoint. An email or HTTP(S) subscription waits for its
//! owner to confirm it; until then AWS lists it as `PendingConfirmation`
//! and `Unsubscribe` cannot remove it (AWS deletes unconfirmed ones after
//! three days): removing such a subscription from the spec leaves it until
//! then, and the plan shows the change until it is gone.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sns::types::Tag;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope, Target};
use crate::limits::Sent;

pub struct TopicKind;

/// What `ListSubscriptionsByTopic` says for a subscription not confirmed.
const PENDING: &str = "PendingConfirmation";

/// Properties of `sns.topic`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicProps {
    /// The name shown as the sender of email and SMS notifications.
    #[serde(default)]
    pub display_name: Option<String>,
    /// KMS key (id, alias or ARN) that encrypts messages at rest. Its key
    /// policy must let the publishers use it (CloudWatch alarms:
    /// `cloudwatch.amazonaws.com`). Left out: not encrypted.
    #[serde(default)]
    pub kms_master_key_id: Option<String>,
    /// Who gets the messages: `{protocol, endpoint}` each.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// One subscription of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// `email`, `email-json`, `https`, `http`, `sqs`, `lambda`, `sms`,
    /// `firehose` or `application`.
    pub protocol: String,
    /// An email address, an `https://` URL, an SQS queue's or Lambda
    /// function's ARN, a phone number (E.164) …, as the protocol takes.
    pub endpoint: String,
}

const PROTOCOLS: &[&str] = &["email", "email-json", "http", "https", "sqs", "lambda", "sms", "firehose", "application"];

/// Whether `endpoint` is the kind of endpoint `protocol` takes.
fn endpoint_fits(protocol: &str, endpoint: &str) -> Result<(), String> {
    let ok = match protocol {
        "email" | "email-json" => endpoint.contains('@') && !endpoint.contains(char::is_whitespace),
        "http" => endpoint.starts_with("http://"),
        "https" => endpoint.starts_with("https://"),
        "sqs" | "lambda" | "firehose" | "application" => endpoint.starts_with("arn:"),
        "sms" => endpoint.starts_with('+') && endpoint[1..].chars().all(|c| c.is_ascii_digit()),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        let what = match protocol {
            "email" | "email-json" => "an email address",
            "http" => "an http:// URL",
            "https" => "an https:// URL",
            "sms" => "a phone number in E.164 form (+15555550100)",
            _ => "an ARN",
        };
        Err(format!("`{endpoint}`: a {protocol} subscription's endpoint is {what}"))
    }
}

impl Kind for TopicKind {
    type Props = TopicProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "sns.topic",
        doc: "An SNS standard topic and its subscriptions (`{protocol, endpoint}`), e.g. where `cloudwatch.alarm`s notify. Email and HTTP(S) subscriptions wait for their owner to confirm them. Outputs: `id` and `arn`, `name`.",
        replace_on: &[],
        sends: &[
            Sent::not(
                "display_name",
                "a topic attribute (DisplayName): SNS takes it as a string in the Attributes map",
            ),
            Sent::not("kms_master_key_id", "a topic attribute (KmsMasterKeyId), in the Attributes map"),
            Sent::aws("subscriptions[].protocol", "sns:SubscribeInput.Protocol"),
            Sent::aws("subscriptions[].endpoint", "sns:SubscribeInput.Endpoint"),
        ],
        outputs: &["id", "arn", "name"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads {
            once: &[],
            per_object: &["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"],
            per_parent: &[],
        },
        tagging_type: Some("sns"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: TopicProps) -> Result<TopicProps, PropsError> {
        for (i, s) in p.subscriptions.iter().enumerate() {
            if !PROTOCOLS.contains(&s.protocol.as_str()) {
                return Err(PropsError {
                    path: format!("subscriptions[{i}].protocol"),
                    message: format!("`{}`: SNS delivers over {}", s.protocol, PROTOCOLS.join(", ")),
                });
            }
            if !crate::value::is_unknown_str(&s.endpoint)
                && let Err(message) = endpoint_fits(&s.protocol, &s.endpoint)
            {
                return Err(PropsError { path: format!("subscriptions[{i}].endpoint"), message });
            }
        }
        // A set to SNS: one subscription per protocol and endpoint.
        p.subscriptions.sort();
        p.subscriptions.dedup();
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        // CreateTopic: 1-256 ASCII letters, digits, `_` and `-` (a FIFO
        // topic's ends with `.fifo`; this kind makes standard topics).
        let ok = (1..=256).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
        if ok { Ok(()) } else { Err("a topic name is 1-256 ASCII letters, digits, `_` and `-`".into()) }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let targets = scope.targets(aws).await?;
        // Spec names the index does not hold (none in a converged
        // stack): their ARNs from the account's list of topics.
        let arns = if targets.iter().any(|t| !t.indexed()) { list_topics(aws).await? } else { BTreeMap::new() };
        let arns = &arns;
        crate::kinds::read_each(targets, |t: Target| async move {
            let Some(arn) = t.arn.clone().or_else(|| arns.get(&t.id).cloned()) else { return Ok(None) };
            let Some(attrs) = attributes(aws, &arn).await? else { return Ok(None) };
            let Some(tags) = t.tags_or(list_tags(aws, &arn)).await? else { return Ok(None) };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { return Ok(None) };
            let subs = subscriptions(aws, &arn).await?;
            Ok(Some(live(owner, &arn, &attrs, subs, tags)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: TopicProps = Self::props(&d.props)?;
        let mut attrs = HashMap::new();
        if let Some(n) = &p.display_name {
            attrs.insert("DisplayName".to_string(), n.clone());
        }
        if let Some(k) = &p.kms_master_key_id {
            attrs.insert("KmsMasterKeyId".to_string(), k.clone());
        }
        let res = aws
            .sns
            .create_topic()
            .name(&d.physical_name)
            .set_attributes(Some(attrs))
            .set_tags(Some(sns_tags(&d.tags)?))
            .send()
            .await
            .map_err(sdk("sns:CreateTopic"));
        let arn = match res {
            Ok(out) => out.topic_arn().unwrap_or_default().to_string(),
            // SNS: "Topic already exists with different tags".
            Err(e) if e.is("InvalidParameter") && e.message.contains("already exists") => {
                return Err(d.name_taken("sns:CreateTopic"));
            }
            Err(e) => return Err(e),
        };
        // CreateTopic hands back a topic of the name that exists: only
        // this resource's is taken.
        let tags = list_tags(aws, &arn).await?.unwrap_or_default();
        d.take_if_ours("sns:CreateTopic", &tags)?;
        let subs = subscriptions(aws, &arn).await?;
        set_subscriptions(aws, &arn, &p.subscriptions, &subs).await?;
        let attrs = attributes(aws, &arn)
            .await?
            .ok_or_else(|| AwsError::other("sns:CreateTopic", "the topic is not there after its create"))?;
        let subs = subscriptions(aws, &arn).await?;
        Ok(live(d.name.clone(), &arn, &attrs, subs, tags))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: TopicProps = Self::props(&d.props)?;
        let was: TopicProps = Self::props(&l.props)?;
        let arn = l.id.clone();
        for (attr, want, had) in [
            ("DisplayName", &p.display_name, &was.display_name),
            ("KmsMasterKeyId", &p.kms_master_key_id, &was.kms_master_key_id),
        ] {
            if want != had {
                aws.sns
                    .set_topic_attributes()
                    .topic_arn(&arn)
                    .attribute_name(attr)
                    // An empty value removes it.
                    .attribute_value(want.clone().unwrap_or_default())
                    .send()
                    .await
                    .map_err(sdk("sns:SetTopicAttributes"))?;
            }
        }
        if p.subscriptions != was.subscriptions {
            let subs = subscriptions(aws, &arn).await?;
            set_subscriptions(aws, &arn, &p.subscriptions, &subs).await?;
        }
        let topic = arn.as_str();
        crate::tags::sync(
            &d.tags,
            &l.tags,
            |set| async move {
                let call = aws.sns.tag_resource().resource_arn(topic).set_tags(Some(sns_tags(&set)?));
                call.send().await.map(|_| ()).map_err(sdk("sns:TagResource"))
            },
            |keys| async move {
                let call = aws.sns.untag_resource().resource_arn(topic).set_tag_keys(Some(keys));
                call.send().await.map(|_| ()).map_err(sdk("sns:UntagResource"))
            },
        )
        .await?;
        let attrs = attributes(aws, &arn).await?.unwrap_or_default();
        let subs = subscriptions(aws, &arn).await?;
        Ok(live(l.name.clone(), &arn, &attrs, subs, d.tags.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // Deleting a topic deletes its subscriptions.
        let res = aws.sns.delete_topic().topic_arn(&l.id).send().await.map_err(sdk("sns:DeleteTopic"));
        not_found(res, &["NotFound"]).map(|_| ())
    }
}

fn sns_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| AwsError::other("sns:TagResource", e.to_string()))
        })
        .collect()
}

/// Subscribes what `want` has and `have` lacks; unsubscribes the confirmed
/// ones `want` no longer has (a pending one cannot be: see the module).
async fn set_subscriptions(
    aws: &Aws,
    arn: &str,
    want: &[Subscription],
    have: &[(Subscription, String)],
) -> Result<(), AwsError> {
    for s in want {
        if have.iter().any(|(h, _)| h == s) {
            continue;
        }
        aws.sns
            .subscribe()
            .topic_arn(arn)
            .protocol(&s.protocol)
            .endpoint(&s.endpoint)
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(sdk("sns:Subscribe"))?;
    }
    for (h, sub_arn) in have {
        if want.contains(h) || sub_arn == PENDING {
            continue;
        }
        let res = aws.sns.unsubscribe().subscription_arn(sub_arn).send().await.map_err(sdk("sns:Unsubscribe"));
        not_found(res, &["NotFound"])?;
    }
    Ok(())
}

/// The topic's attributes; `None`: no such topic.
async fn attributes(aws: &Aws, arn: &str) -> Result<Option<HashMap<String, String>>, AwsError> {
    let res = aws.sns.get_topic_attributes().topic_arn(arn).send().await.map_err(sdk("sns:GetTopicAttributes"));
    Ok(not_found(res, &["NotFound"])?.map(|r| r.attributes.unwrap_or_default()))
}

/// The topic's subscriptions and each one's ARN (`PendingConfirmation`
/// until confirmed).
async fn subscriptions(aws: &Aws, arn: &str) -> Result<Vec<(Subscription, String)>, AwsError> {
    let mut out = Vec::new();
    let mut pages = aws.sns.list_subscriptions_by_topic().topic_arn(arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page.map_err(sdk("sns:ListSubscriptionsByTopic")) {
            Err(e) if e.is("NotFound") => break,
            other => other?,
        };
        for s in page.subscriptions() {
            let sub = Subscription {
                protocol: s.protocol().unwrap_or_default().to_string(),
                endpoint: s.endpoint().unwrap_or_default().to_string(),
            };
            out.push((sub, s.subscription_arn().unwrap_or(PENDING).to_string()));
        }
    }
    Ok(out)
}

/// Every topic of the account in this region, name → ARN.
async fn list_topics(aws: &Aws) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    let mut pages = aws.sns.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("sns:ListTopics"))?;
        for t in page.topics() {
            if let Some(arn) = t.topic_arn() {
                out.insert(arn.rsplit(':').next().unwrap_or_default().to_string(), arn.to_string());
            }
        }
    }
    Ok(out)
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let res = aws.sns.list_tags_for_resource().resource_arn(arn).send().await.map_err(sdk("sns:ListTagsForResource"));
    Ok(not_found(res, &["NotFound", "ResourceNotFound"])?.map(|r| {
        crate::kinds::tag_map(r.tags().iter().map(|t| (Some(t.key().to_string()), Some(t.value().to_string()))))
    }))
}

fn live(
    name: String,
    arn: &str,
    attrs: &HashMap<String, String>,
    subs: Vec<(Subscription, String)>,
    tags: BTreeMap<String, String>,
) -> Live {
    let topic = arn.rsplit(':').next().unwrap_or_default().to_string();
    let attr = |k: &str| attrs.get(k).filter(|v| !v.is_empty()).cloned();
    let mut subscriptions: Vec<Subscription> = subs.into_iter().map(|(s, _)| s).collect();
    subscriptions.sort();
    subscriptions.dedup();
    let props =
        TopicProps { display_name: attr("DisplayName"), kms_master_key_id: attr("KmsMasterKeyId"), subscriptions };
    Live::new(name, arn.to_string(), &props, tags).output("id", arn).output("arn", arn).output("name", topic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscriptions_are_a_set_and_endpoints_fit_their_protocol() {
        let c = TopicKind
            .canonicalize(json!({"subscriptions": [
                {"protocol": "https", "endpoint": "https://hooks.example.com/a"},
                {"protocol": "email", "endpoint": "ops@example.com"},
                {"protocol": "https", "endpoint": "https://hooks.example.com/a"}
            ]}))
            .unwrap();
        assert_eq!(c["subscriptions"].as_array().unwrap().len(), 2);
        assert_eq!(c["subscriptions"][0]["protocol"], "email");
        let bad = |s: Value| TopicKind.canonicalize(json!({"subscriptions": [s]})).unwrap_err().path;
        assert_eq!(bad(json!({"protocol": "email", "endpoint": "ops"})), "subscriptions[0].endpoint");
        assert_eq!(bad(json!({"protocol": "https", "endpoint": "http://x"})), "subscriptions[0].endpoint");
        assert_eq!(bad(json!({"protocol": "pager", "endpoint": "x"})), "subscriptions[0].protocol");
    }

    #[test]
    fn topic_names_follow_sns_rules() {
        assert!(TopicKind.check_physical_name("gitlab-ha-staging-alarms").is_ok());
        assert!(TopicKind.check_physical_name("has.dot").is_err());
        assert!(TopicKind.check_physical_name(&"a".repeat(257)).is_err());
    }
}
