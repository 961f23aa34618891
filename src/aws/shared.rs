//! Reads several kinds need, made once per `live::read`.
//!
//! `s3.bucket` and `s3.object` both need the region's buckets and their
//! tags; the load balancer and listener kinds the load balancers and theirs;
//! the EFS kinds the file systems. Each is fetched by whichever kind asks
//! first and shared. One instance lives for one read of live state, so it
//! never outlives a change made by apply.

use std::collections::BTreeMap;

use aws_sdk_efs::types::FileSystemDescription;
use aws_sdk_elasticloadbalancingv2::types::LoadBalancer;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::{Aws, AwsError};

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub struct SharedReads {
    buckets: OnceCell<Vec<(String, Tags)>>,
    load_balancers: OnceCell<Vec<(LoadBalancer, Tags)>>,
    file_systems: OnceCell<Vec<FileSystemDescription>>,
}

/// Concurrent tag reads (S3 has no batch tag read).
const TAG_READS: usize = 16;

impl SharedReads {
    /// The region's buckets with their tags (a bucket deleted meanwhile is
    /// left out).
    pub async fn buckets(&self, aws: &Aws) -> Result<&[(String, Tags)], AwsError> {
        self.buckets
            .get_or_try_init(|| async {
                let buckets = aws
                    .s3
                    .list_buckets()
                    .bucket_region(&aws.region)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| AwsError::from_sdk("s3:ListBuckets", e))?;
                let names = buckets
                    .into_iter()
                    .filter(|b| b.bucket_region.as_deref().is_none_or(|r| r == aws.region))
                    .filter_map(|b| b.name);
                futures_util::stream::iter(names)
                    .map(|name| async move {
                        let res = aws
                            .s3
                            .get_bucket_tagging()
                            .bucket(&name)
                            .send()
                            .await
                            .map_err(|e| AwsError::from_sdk("s3:GetBucketTagging", e));
                        match res {
                            Ok(out) => Ok(Some((
                                name,
                                crate::kinds::tag_map(out.tag_set.into_iter().map(|t| (Some(t.key), Some(t.value)))),
                            ))),
                            Err(e) if e.code.starts_with("NoSuchTagSet") => Ok(Some((name, Tags::new()))),
                            Err(e) if e.is("NoSuchBucket") => Ok(None),
                            Err(e) => Err(e),
                        }
                    })
                    .buffer_unordered(TAG_READS)
                    .try_filter_map(|x| async move { Ok(x) })
                    .try_collect()
                    .await
            })
            .await
            .map(Vec::as_slice)
    }

    /// Every load balancer with its tags (DescribeTags, 20 ARNs a call).
    pub async fn load_balancers(&self, aws: &Aws) -> Result<&[(LoadBalancer, Tags)], AwsError> {
        self.load_balancers
            .get_or_try_init(|| async {
                let lbs = aws
                    .elbv2
                    .describe_load_balancers()
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| AwsError::from_sdk("elasticloadbalancing:DescribeLoadBalancers", e))?;
                let arns: Vec<String> = lbs.iter().filter_map(|l| l.load_balancer_arn.clone()).collect();
                let mut tags = super::elbv2::tags_of(aws, &arns).await?;
                Ok(lbs
                    .into_iter()
                    .map(|lb| {
                        let t = lb.load_balancer_arn().and_then(|a| tags.remove(a)).unwrap_or_default();
                        (lb, t)
                    })
                    .collect())
            })
            .await
            .map(Vec::as_slice)
    }

    /// Every EFS file system (tags are in the description).
    pub async fn file_systems(&self, aws: &Aws) -> Result<&[FileSystemDescription], AwsError> {
        self.file_systems
            .get_or_try_init(|| async {
                aws.efs
                    .describe_file_systems()
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| AwsError::from_sdk("efs:DescribeFileSystems", e))
            })
            .await
            .map(Vec::as_slice)
    }
}
