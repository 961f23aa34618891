//! `cloudwatch.alarm`: a CloudWatch metric alarm on one metric (Terraform's
//! `aws_cloudwatch_metric_alarm` without metric math).
//!
//! Identity: the alarm's name (the physical name) and the identity tags.
//! `PutMetricAlarm` both creates and overwrites, silently, so before it
//! writes, the create reads the name: an alarm that exists and is not this
//! resource's is never overwritten. The tags go with the create call; a
//! retried create (a lost response) finds the alarm its own and writes the
//! same settings again. An update is `PutMetricAlarm` with every setting
//! (the API replaces the whole definition; the alarm's state and history
//! stay) and `TagResource`/`UntagResource` (PutMetricAlarm ignores tags on
//! an existing alarm). Reads go through the ownership index
//! (`cloudwatch:alarm`) and `DescribeAlarms`, 100 names a call.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, Dimension, MetricAlarm, StandardUnit, Statistic, Tag};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct AlarmKind;

/// Properties of `cloudwatch.alarm`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlarmProps {
    /// What the alarm means and what to do (shown in the notification).
    #[serde(default)]
    pub description: Option<String>,
    /// The metric's namespace (`AWS/ApplicationELB`, `AWS/RDS`, `CWAgent`).
    pub namespace: String,
    /// The metric (`HTTPCode_ELB_5XX_Count`).
    pub metric_name: String,
    /// The metric's dimensions, exactly as the metric is published
    /// (`LoadBalancer: app/NAME/ID`): a set that differs matches no data.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// `Average`, `Sum`, `Minimum`, `Maximum` or `SampleCount`; or leave it
    /// out and set `extended_statistic`.
    #[serde(default)]
    pub statistic: Option<String>,
    /// A percentile (`p99`) or other extended statistic, instead of
    /// `statistic`.
    #[serde(default)]
    pub extended_statistic: Option<String>,
    /// The metric's unit, when it is published with several.
    #[serde(default)]
    pub unit: Option<String>,
    /// Seconds each evaluated datapoint covers: 10, 20, 30 (high
    /// resolution metrics) or a multiple of 60.
    pub period: i32,
    /// How many periods are evaluated (`N` of "M out of N").
    pub evaluation_periods: i32,
    /// How many of them must breach (`M`); left out: all of them.
    #[serde(default)]
    pub datapoints_to_alarm: Option<i32>,
    /// The value compared with the statistic.
    pub threshold: f64,
    /// `GreaterThanThreshold`, `GreaterThanOrEqualToThreshold`,
    /// `LessThanThreshold` or `LessThanOrEqualToThreshold`.
    pub comparison_operator: String,
    /// What a period without data counts as: `missing` (the default),
    /// `notBreaching`, `breaching` or `ignore`.
    #[serde(default = "missing")]
    pub treat_missing_data: String,
    /// Whether the actions run on a state change (default true).
    #[serde(default = "crate::kinds::yes")]
    pub actions_enabled: bool,
    /// ARNs notified when the alarm goes to ALARM (an `sns.topic`'s `arn`).
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    /// ARNs notified when it returns to OK.
    #[serde(default)]
    pub ok_actions: Vec<String>,
    /// ARNs notified when it goes to INSUFFICIENT_DATA.
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
}

fn missing() -> String {
    "missing".into()
}

/// A checked property, or where and why not.
fn problem(path: &str, message: String) -> PropsError {
    PropsError { path: path.into(), message }
}

impl Kind for AlarmKind {
    type Props = AlarmProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "cloudwatch.alarm",
        doc: "A CloudWatch metric alarm on one metric, notifying `alarm_actions` (an `sns.topic`'s `arn`). `apply --verify-alarms` and a stack's `verify: { alarms }` watch alarms after a deploy. Outputs: `id` and `name`, `arn`.",
        replace_on: &[],
        sends: &[
            Sent::aws("description", "cloudwatch:PutMetricAlarmInput.AlarmDescription"),
            Sent::aws("namespace", "cloudwatch:PutMetricAlarmInput.Namespace"),
            Sent::aws("metric_name", "cloudwatch:PutMetricAlarmInput.MetricName"),
            Sent::not(
                "dimensions",
                "sent as Dimensions (Name/Value pairs); checked by the kind: at most 30, names 1-255, values 1-1024",
            ),
            Sent::aws("statistic", "cloudwatch:PutMetricAlarmInput.Statistic"),
            Sent::aws("extended_statistic", "cloudwatch:PutMetricAlarmInput.ExtendedStatistic"),
            Sent::aws("unit", "cloudwatch:PutMetricAlarmInput.Unit"),
            Sent::aws("period", "cloudwatch:PutMetricAlarmInput.Period"),
            Sent::aws("evaluation_periods", "cloudwatch:PutMetricAlarmInput.EvaluationPeriods"),
            Sent::aws("datapoints_to_alarm", "cloudwatch:PutMetricAlarmInput.DatapointsToAlarm"),
            Sent::aws("threshold", "cloudwatch:PutMetricAlarmInput.Threshold"),
            Sent::aws("comparison_operator", "cloudwatch:PutMetricAlarmInput.ComparisonOperator"),
            Sent::aws("treat_missing_data", "cloudwatch:PutMetricAlarmInput.TreatMissingData"),
            Sent::aws("actions_enabled", "cloudwatch:PutMetricAlarmInput.ActionsEnabled"),
            Sent::aws("alarm_actions[]", "cloudwatch:PutMetricAlarmInput.AlarmActions[]"),
            Sent::aws("ok_actions[]", "cloudwatch:PutMetricAlarmInput.OKActions[]"),
            Sent::aws("insufficient_data_actions[]", "cloudwatch:PutMetricAlarmInput.InsufficientDataActions[]"),
        ],
        outputs: &["id", "name", "arn"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads { once: &["cloudwatch:DescribeAlarms"], per_object: &[], per_parent: &[] },
        tagging_type: Some("cloudwatch:alarm"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: AlarmProps) -> Result<AlarmProps, PropsError> {
        match (&p.statistic, &p.extended_statistic) {
            (None, None) => {
                return Err(problem(
                    "statistic",
                    "set `statistic` (Average, Sum, Minimum, Maximum, SampleCount) or `extended_statistic` (p99)"
                        .into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(problem(
                    "extended_statistic",
                    "set `statistic` or `extended_statistic`, not both (PutMetricAlarm takes one)".into(),
                ));
            }
            _ => {}
        }
        if !(matches!(p.period, 10 | 20 | 30) || (p.period > 0 && p.period % 60 == 0)) {
            return Err(problem("period", format!("{}: CloudWatch takes 10, 20, 30 or a multiple of 60", p.period)));
        }
        // PutMetricAlarm: at most seven days of evaluation, one day for
        // periods under an hour.
        let span = i64::from(p.period) * i64::from(p.evaluation_periods);
        let most = if p.period >= 3600 { 604_800 } else { 86_400 };
        if span > most {
            return Err(problem(
                "evaluation_periods",
                format!(
                    "{} periods of {} s evaluate {span} s; CloudWatch evaluates at most {most} s ({} for periods under an hour)",
                    p.evaluation_periods,
                    p.period,
                    if most == 86_400 { "one day" } else { "seven days; one day" }
                ),
            ));
        }
        if let Some(m) = p.datapoints_to_alarm
            && (m < 1 || m > p.evaluation_periods)
        {
            return Err(problem(
                "datapoints_to_alarm",
                format!("{m}: between 1 and evaluation_periods ({})", p.evaluation_periods),
            ));
        }
        if !["missing", "notBreaching", "breaching", "ignore"].contains(&p.treat_missing_data.as_str()) {
            return Err(problem(
                "treat_missing_data",
                format!("`{}`: one of missing, notBreaching, breaching, ignore", p.treat_missing_data),
            ));
        }
        if p.dimensions.len() > 30 {
            return Err(problem("dimensions", format!("{} dimensions: a metric has at most 30", p.dimensions.len())));
        }
        for (k, v) in &p.dimensions {
            if k.is_empty() || k.len() > 255 || v.is_empty() || v.len() > 1024 {
                return Err(problem(
                    &format!("dimensions.{k}"),
                    "a dimension's name is 1-255 characters, its value 1-1024".into(),
                ));
            }
        }
        for (field, arns) in [
            ("alarm_actions", &mut p.alarm_actions),
            ("ok_actions", &mut p.ok_actions),
            ("insufficient_data_actions", &mut p.insufficient_data_actions),
        ] {
            if let Some(bad) = arns.iter().find(|a| !crate::value::is_unknown_str(a) && !a.starts_with("arn:")) {
                return Err(problem(field, format!("`{bad}`: an action is an ARN (an SNS topic's, arn:aws:sns:…)")));
            }
            if arns.len() > 5 {
                return Err(problem(field, format!("{} actions: an alarm takes at most 5 of each", arns.len())));
            }
            // A set to AWS.
            crate::kinds::sort_ids(arns);
        }
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        // PutMetricAlarm: AlarmName is 1-255 characters.
        if (1..=255).contains(&name.len()) && !name.chars().any(char::is_control) {
            Ok(())
        } else {
            Err("an alarm name is 1-255 characters, no control characters".into())
        }
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        let targets = scope.targets(aws).await?;
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
        let found = describe(aws, &names).await?;
        let mut out = Vec::new();
        for t in &targets {
            let Some(a) = found.get(&t.id) else { continue };
            let arn = a.alarm_arn().unwrap_or_default();
            let Some(tags) = t.tags_or(list_tags(aws, arn)).await? else { continue };
            let Some(owner) = scope.owner(&tags, Some(&t.id)) else { continue };
            out.push(live(owner, a, tags));
        }
        Ok(out)
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: AlarmProps = Self::props(&d.props)?;
        // PutMetricAlarm overwrites whatever has the name: look first.
        let before = describe(aws, std::slice::from_ref(&d.physical_name)).await?;
        if let Some(a) = before.get(&d.physical_name) {
            let tags = list_tags(aws, a.alarm_arn().unwrap_or_default()).await?.unwrap_or_default();
            d.take_if_ours("cloudwatch:PutMetricAlarm", &tags)?;
        }
        put(aws, &d.physical_name, &p, Some(&d.tags)).await?;
        let after = describe(aws, std::slice::from_ref(&d.physical_name)).await?;
        let a = after
            .get(&d.physical_name)
            .ok_or_else(|| AwsError::other("cloudwatch:PutMetricAlarm", "the alarm is not there after its create"))?;
        Ok(live(d.name.clone(), a, d.tags.clone()))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: AlarmProps = Self::props(&d.props)?;
        if d.props != l.props {
            put(aws, &l.id, &p, None).await?;
        }
        let arn = l.outputs.get("arn").and_then(Value::as_str).unwrap_or_default().to_string();
        crate::tags::sync(
            &d.tags,
            &l.tags,
            |set| async {
                let tags = set.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
                let call = aws.cloudwatch.tag_resource().resource_arn(&arn).set_tags(Some(tags));
                call.send().await.map(|_| ()).map_err(sdk("cloudwatch:TagResource"))
            },
            |keys| async {
                let call = aws.cloudwatch.untag_resource().resource_arn(&arn).set_tag_keys(Some(keys));
                call.send().await.map(|_| ()).map_err(sdk("cloudwatch:UntagResource"))
            },
        )
        .await?;
        Ok(Live { props: d.props.clone(), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        let res =
            aws.cloudwatch.delete_alarms().alarm_names(&l.id).send().await.map_err(sdk("cloudwatch:DeleteAlarms"));
        not_found(res, &["ResourceNotFound"]).map(|_| ())
    }
}

/// Writes the alarm's whole definition; `tags` on a create only (the API
/// ignores them for an alarm that exists).
async fn put(aws: &Aws, name: &str, p: &AlarmProps, tags: Option<&BTreeMap<String, String>>) -> Result<(), AwsError> {
    let dims = p.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
    let tags = tags.map(|t| t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect());
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .set_alarm_description(p.description.clone())
        .namespace(&p.namespace)
        .metric_name(&p.metric_name)
        .set_dimensions(Some(dims))
        .set_statistic(p.statistic.as_deref().map(Statistic::from))
        .set_extended_statistic(p.extended_statistic.clone())
        .set_unit(p.unit.as_deref().map(StandardUnit::from))
        .period(p.period)
        .evaluation_periods(p.evaluation_periods)
        .set_datapoints_to_alarm(p.datapoints_to_alarm)
        .threshold(p.threshold)
        .comparison_operator(ComparisonOperator::from(p.comparison_operator.as_str()))
        .treat_missing_data(&p.treat_missing_data)
        .actions_enabled(p.actions_enabled)
        .set_alarm_actions(Some(p.alarm_actions.clone()))
        .set_ok_actions(Some(p.ok_actions.clone()))
        .set_insufficient_data_actions(Some(p.insufficient_data_actions.clone()))
        .set_tags(tags)
        .send()
        .await
        .map(|_| ())
        .map_err(sdk("cloudwatch:PutMetricAlarm"))
}

/// The metric alarms of these names that exist, by name.
async fn describe(aws: &Aws, names: &[String]) -> Result<BTreeMap<String, MetricAlarm>, AwsError> {
    let (metric, _) = crate::aws::cloudwatch::describe_alarms(aws, names, &[AlarmType::MetricAlarm]).await?;
    Ok(metric.into_iter().filter_map(|a| Some((a.alarm_name()?.to_string(), a))).collect())
}

async fn list_tags(aws: &Aws, arn: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let res = aws
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(sdk("cloudwatch:ListTagsForResource"));
    Ok(not_found(res, &["ResourceNotFound", "ResourceNotFoundException"])?.map(|r| {
        crate::kinds::tag_map(r.tags().iter().map(|t| (t.key().map(str::to_string), t.value().map(str::to_string))))
    }))
}

fn live(name: String, a: &MetricAlarm, tags: BTreeMap<String, String>) -> Live {
    let alarm = a.alarm_name().unwrap_or_default().to_string();
    let mut p = AlarmProps {
        description: a.alarm_description().map(str::to_string),
        namespace: a.namespace().unwrap_or_default().to_string(),
        metric_name: a.metric_name().unwrap_or_default().to_string(),
        dimensions: a
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string()))
            .collect(),
        statistic: a.statistic().map(|s| s.as_str().to_string()),
        extended_statistic: a.extended_statistic().map(str::to_string),
        unit: a.unit().map(|u| u.as_str().to_string()),
        period: a.period().unwrap_or_default(),
        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
        datapoints_to_alarm: a.datapoints_to_alarm(),
        threshold: a.threshold().unwrap_or_default(),
        comparison_operator: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().map_or_else(missing, str::to_string),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a.alarm_actions().to_vec(),
        ok_actions: a.ok_actions().to_vec(),
        insufficient_data_actions: a.insufficient_data_actions().to_vec(),
    };
    for arns in [&mut p.alarm_actions, &mut p.ok_actions, &mut p.insufficient_data_actions] {
        crate::kinds::sort_ids(arns);
    }
    Live::new(name, alarm.clone(), &p, tags).output("name", alarm).output("arn", a.alarm_arn().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "namespace": "AWS/RDS", "metric_name": "CPUUtilization",
            "dimensions": {"DBInstanceIdentifier": "db"}, "statistic": "Average",
            "period": 300, "evaluation_periods": 3, "threshold": 80,
            "comparison_operator": "GreaterThanThreshold",
            "alarm_actions": ["arn:aws:sns:eu-west-1:1:b", "arn:aws:sns:eu-west-1:1:a"]
        })
    }

    fn with(k: &str, v: Value) -> Value {
        let mut p = base();
        p[k] = v;
        p
    }

    #[test]
    fn canonical_form_fills_defaults_and_sorts_actions() {
        let c = AlarmKind.canonicalize(base()).unwrap();
        assert_eq!(c["treat_missing_data"], "missing");
        assert_eq!(c["actions_enabled"], true);
        assert_eq!(c["threshold"], json!(80.0));
        assert_eq!(c["alarm_actions"], json!(["arn:aws:sns:eu-west-1:1:a", "arn:aws:sns:eu-west-1:1:b"]));
    }

    #[test]
    fn settings_cloudwatch_refuses_are_refused_offline() {
        let err = |p: Value| AlarmKind.canonicalize(p).unwrap_err();
        assert_eq!(err(with("period", json!(90))).path, "period");
        assert_eq!(err(with("statistic", Value::Null)).path, "statistic");
        assert_eq!(err(with("extended_statistic", json!("p99"))).path, "extended_statistic");
        // 300 s × 300 = 90,000 s: over a day for a period under an hour.
        let e = err(with("evaluation_periods", json!(300)));
        assert!(e.message.contains("86400 s"), "{}", e.message);
        assert_eq!(err(with("datapoints_to_alarm", json!(4))).path, "datapoints_to_alarm");
        assert_eq!(err(with("alarm_actions", json!(["my-topic"]))).path, "alarm_actions");
    }

    #[test]
    fn a_long_period_may_evaluate_a_week() {
        let mut p = with("period", json!(3600));
        p["evaluation_periods"] = json!(168);
        assert!(AlarmKind.canonicalize(p.clone()).is_ok());
        p["evaluation_periods"] = json!(169);
        assert!(AlarmKind.canonicalize(p).is_err());
    }
}
