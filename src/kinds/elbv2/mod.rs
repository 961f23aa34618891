//! Elastic Load Balancing v2 helpers shared by the ELBv2 kinds.

pub mod listener;
pub mod load_balancer;
pub mod target_group;

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError};

pub fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Tags of many resources: DescribeTags takes 20 ARNs a call.
pub async fn tags_of(aws: &Aws, arns: &[String]) -> Result<BTreeMap<String, BTreeMap<String, String>>, AwsError> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(20) {
        let res = aws
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(sdk("elasticloadbalancing:DescribeTags"))?;
        for d in res.tag_descriptions() {
            let tags = crate::tags::tag_map(d.tags().iter().map(|t| (t.key.clone(), t.value.clone())));
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

/// ARNs one Describe call of ELBv2 takes.
pub const ARNS_PER_CALL: usize = 20;

/// Describes objects by ARN, [`ARNS_PER_CALL`] a call. The ownership index
/// lags deletes on AWS, and one ARN gone fails its whole batch with
/// `not_found_code`: that batch is then read one ARN at a time, skipping
/// the gone.
async fn describe_batched<T, F, Fut>(arns: &[String], not_found_code: &str, describe: F) -> Result<Vec<T>, AwsError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, AwsError>>,
{
    let mut out = Vec::new();
    for batch in arns.chunks(ARNS_PER_CALL) {
        match describe(batch.to_vec()).await {
            Ok(found) => out.extend(found),
            Err(e) if e.is(not_found_code) && batch.len() > 1 => {
                for arn in batch {
                    match describe(vec![arn.clone()]).await {
                        Ok(found) => out.extend(found),
                        Err(e) if e.is(not_found_code) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) if e.is(not_found_code) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Finds a kind's objects: those of `indexed` (ARN and tags, from the
/// ownership index) batched by ARN, then each of `names` (the spec's names
/// the index does not hold) on its own, its tags read with DescribeTags.
/// `describe` takes ARNs or one name; `not_found_code` is its error for
/// either not found.
pub async fn find<T, F, Fut>(
    aws: &Aws,
    indexed: &[(String, BTreeMap<String, String>)],
    names: &[String],
    not_found_code: &str,
    arn_of: fn(&T) -> Option<&str>,
    describe: F,
) -> Result<Vec<(T, BTreeMap<String, String>)>, AwsError>
where
    F: Fn(Option<Vec<String>>, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, AwsError>>,
{
    let arns: Vec<String> = indexed.iter().map(|(a, _)| a.clone()).collect();
    let mut found: Vec<(T, BTreeMap<String, String>)> =
        describe_batched(&arns, not_found_code, |batch| describe(Some(batch), None))
            .await?
            .into_iter()
            .filter_map(|o| {
                let tags = indexed.iter().find(|(a, _)| Some(a.as_str()) == arn_of(&o))?.1.clone();
                Some((o, tags))
            })
            .collect();
    for name in names {
        let res = describe(None, Some(name.clone())).await;
        for o in crate::aws::not_found(res, &[not_found_code])?.unwrap_or_default() {
            let arn = arn_of(&o).unwrap_or_default().to_string();
            let tags = tags_of(aws, std::slice::from_ref(&arn)).await?.remove(&arn).unwrap_or_default();
            found.push((o, tags));
        }
    }
    Ok(found)
}

pub async fn sync_tags(
    aws: &Aws,
    arn: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    crate::tags::sync(
        desired,
        live,
        |set| async move {
            let call = aws.elbv2.add_tags().resource_arns(arn).set_tags(Some(to_tags(&set)));
            call.send().await.map(|_| ()).map_err(sdk("elasticloadbalancing:AddTags"))
        },
        |keys| async move {
            let call = aws.elbv2.remove_tags().resource_arns(arn).set_tag_keys(Some(keys));
            call.send().await.map(|_| ()).map_err(sdk("elasticloadbalancing:RemoveTags"))
        },
    )
    .await
}

/// Load balancer and target group names: 1-32 letters, digits and
/// hyphens, not starting or ending with a hyphen.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-");
    if ok {
        Ok(())
    } else {
        Err("a load balancer or target group name is 1-32 letters, digits and hyphens, with no hyphen at either end (set a shorter `name:`)".into())
    }
}

/// What CloudWatch names a load balancer or target group by (its
/// `LoadBalancer` / `TargetGroup` dimension): the ARN after
/// `loadbalancer/` (`app/NAME/ID`, `net/NAME/ID`) or from `targetgroup/`
/// on (`targetgroup/NAME/ID`).
pub fn arn_suffix(arn: &str) -> &str {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    resource.strip_prefix("loadbalancer/").unwrap_or(resource)
}

#[cfg(test)]
mod suffix_tests {
    #[test]
    fn arn_suffixes_are_cloudwatch_dimensions() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/gitlab/50dc6c495c0c9188";
        assert_eq!(super::arn_suffix(lb), "app/gitlab/50dc6c495c0c9188");
        let tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/app/73e2d6bc24d8a067";
        assert_eq!(super::arn_suffix(tg), "targetgroup/app/73e2d6bc24d8a067");
    }
}
