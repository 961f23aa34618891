//! CloudWatch calls that the `cloudwatch.alarm` kind and the alarm gate
//! (`run::alarms`) share.

use crate::aws::sdk;
use aws_sdk_cloudwatch::types::{AlarmType, CompositeAlarm, MetricAlarm};

use super::{Aws, AwsError};

/// DescribeAlarms takes at most 100 names.
const NAMES_PER_CALL: usize = 100;

/// The alarms of these names that exist, of the given types (metric,
/// composite), 100 names a call, every page.
pub async fn describe_alarms(
    aws: &Aws,
    names: &[String],
    types: &[AlarmType],
) -> Result<(Vec<MetricAlarm>, Vec<CompositeAlarm>), AwsError> {
    let (mut metric, mut composite) = (Vec::new(), Vec::new());
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut pages = aws
            .cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .set_alarm_types(Some(types.to_vec()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk("cloudwatch:DescribeAlarms"))?;
            metric.extend(page.metric_alarms().iter().cloned());
            composite.extend(page.composite_alarms().iter().cloned());
        }
    }
    Ok((metric, composite))
}
