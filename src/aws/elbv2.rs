//! Elastic Load Balancing v2 helpers shared by the ELBv2 kinds.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use super::{Aws, AwsError};

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
            .map_err(|e| AwsError::from_sdk("elasticloadbalancing:DescribeTags", e))?;
        for d in res.tag_descriptions() {
            let tags = crate::kinds::tag_map(d.tags().iter().map(|t| (t.key.clone(), t.value.clone())));
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

pub async fn sync_tags(
    aws: &Aws,
    arn: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let (set, remove) = crate::kinds::tag_delta(desired, live);
    if !set.is_empty() {
        aws.elbv2
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(to_tags(&set)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elasticloadbalancing:AddTags", e))?;
    }
    if !remove.is_empty() {
        aws.elbv2
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elasticloadbalancing:RemoveTags", e))?;
    }
    Ok(())
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
