//! `ecs.cluster`: an ECS cluster for Fargate services.
//!
//! Identity: the cluster name (the physical name) and the identity tags,
//! set by `CreateCluster` itself. `CreateCluster` is idempotent on AWS: a
//! retried create returns the cluster the first attempt made.

use aws_sdk_ecs::types::{Cluster, ClusterField, ClusterSetting, ClusterSettingName};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws::sdk;
use crate::aws::{Aws, AwsError, not_found, retry_while_in_use};
use crate::kinds::ecs::{ecs_tags, from_ecs_tags};
use crate::kinds::{Desired, Facts, Kind, Live, PropsError, Scope};
use crate::limits::Sent;

pub struct ClusterKind;

/// Properties of `ecs.cluster`. Its name is the physical name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterProps {
    /// CloudWatch Container Insights (default on). Updated in place.
    #[serde(default = "crate::kinds::yes")]
    pub container_insights: bool,
    /// Capacity providers the cluster's services may use (default
    /// `FARGATE` and `FARGATE_SPOT`). Updated in place.
    #[serde(default = "fargate")]
    pub capacity_providers: Vec<String>,
}

fn fargate() -> Vec<String> {
    vec!["FARGATE".into(), "FARGATE_SPOT".into()]
}

impl Kind for ClusterKind {
    type Props = ClusterProps;
    const FACTS: &'static Facts = &Facts {
        type_name: "ecs.cluster",
        doc: "An ECS cluster (Fargate and Fargate Spot by default, Container Insights on). Outputs: `id` and `arn`, `name`.",
        replace_on: &[],
        sends: &[
            Sent::not("container_insights", "sent as the containerInsights setting (enabled or disabled)"),
            Sent::aws("capacity_providers", "ecs:CreateClusterRequest.capacityProviders"),
            Sent::aws("capacity_providers[]", "ecs:CreateClusterRequest.capacityProviders[]"),
        ],
        outputs: &["id", "arn", "name"],
        physical_name_output: Some("name"),
        import_by: crate::kinds::ImportBy::Name,
        reads: crate::kinds::Reads { once: &["ecs:DescribeClusters"], per_object: &[], per_parent: &[] },
        tagging_type: Some("ecs:cluster"),
        ..Facts::DEFAULT
    };
    fn canonical(&self, mut p: ClusterProps) -> Result<ClusterProps, PropsError> {
        p.capacity_providers.sort();
        p.capacity_providers.dedup();
        Ok(p)
    }

    fn check_physical_name(&self, name: &str) -> Result<(), String> {
        crate::kinds::ecs::check_name(name, "a cluster name")
    }

    async fn read(&self, aws: &Aws, scope: &Scope) -> Result<Vec<Live>, AwsError> {
        // Owned clusters and the spec's names the index lacks, 100 a
        // call (DescribeClusters' limit), tags inline.
        let names: Vec<String> = scope.targets(aws).await?.into_iter().map(|t| t.id).collect();
        let mut out = Vec::new();
        for chunk in names.chunks(100) {
            for c in describe(aws, chunk.to_vec()).await? {
                let tags = from_ecs_tags(c.tags());
                let name = c.cluster_name().unwrap_or_default().to_string();
                if let Some(owner) = scope.owner(&tags, Some(&name)) {
                    out.push(live(owner, &c));
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, aws: &Aws, d: &Desired) -> Result<Live, AwsError> {
        let p: ClusterProps = Self::props(&d.props)?;
        // Idempotent by name: a retry or a lost response returns the
        // existing cluster; whose it is is checked below.
        aws.ecs
            .create_cluster()
            .cluster_name(&d.physical_name)
            .settings(insights(p.container_insights))
            .set_capacity_providers(Some(p.capacity_providers.clone()))
            .set_tags(Some(ecs_tags(&d.tags)))
            .send()
            .await
            .map_err(sdk("ecs:CreateCluster"))?;
        let found = describe(aws, vec![d.physical_name.clone()]).await?;
        let c = found.into_iter().next();
        let c = c.ok_or_else(|| AwsError::other("ecs:CreateCluster", "the cluster is not there after its create"))?;
        d.take_if_ours("ecs:CreateCluster", &from_ecs_tags(c.tags()))?;
        Ok(live(d.name.clone(), &c))
    }

    async fn update(&self, aws: &Aws, d: &Desired, l: &Live) -> Result<Live, AwsError> {
        let p: ClusterProps = Self::props(&d.props)?;
        let was: ClusterProps = Self::props(&l.props)?;
        if p.container_insights != was.container_insights {
            aws.ecs
                .update_cluster_settings()
                .cluster(&l.id)
                .settings(insights(p.container_insights))
                .send()
                .await
                .map_err(sdk("ecs:UpdateClusterSettings"))?;
        }
        if p.capacity_providers != was.capacity_providers {
            aws.ecs
                .put_cluster_capacity_providers()
                .cluster(&l.id)
                .set_capacity_providers(Some(p.capacity_providers.clone()))
                .set_default_capacity_provider_strategy(Some(Vec::new()))
                .send()
                .await
                .map_err(sdk("ecs:PutClusterCapacityProviders"))?;
        }
        crate::kinds::ecs::sync_tags(aws, &l.id, &d.tags, &l.tags).await?;
        Ok(Live { props: crate::kinds::to_value(&p), tags: d.tags.clone(), ..l.clone() })
    }

    async fn delete(&self, aws: &Aws, l: &Live, _spec: Option<&Value>) -> Result<(), AwsError> {
        // Services deleted in the same run leave the cluster a little
        // after their delete returns.
        let res =
            retry_while_in_use(&["ClusterContainsServicesException", "ClusterContainsTasksException"], || async {
                aws.ecs.delete_cluster().cluster(&l.id).send().await.map_err(sdk("ecs:DeleteCluster"))
            })
            .await;
        not_found(res, &["ClusterNotFoundException"]).map(|_| ())
    }
}

fn insights(on: bool) -> ClusterSetting {
    ClusterSetting::builder()
        .name(ClusterSettingName::ContainerInsights)
        .value(if on { "enabled" } else { "disabled" })
        .build()
}

/// Active clusters among `names`; missing and deleted (INACTIVE) ones are
/// left out.
async fn describe(aws: &Aws, names: Vec<String>) -> Result<Vec<Cluster>, AwsError> {
    let res = aws
        .ecs
        .describe_clusters()
        .set_clusters(Some(names))
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .map_err(sdk("ecs:DescribeClusters"))?;
    Ok(res.clusters.unwrap_or_default().into_iter().filter(|c| c.status() == Some("ACTIVE")).collect())
}

fn live(name: String, c: &Cluster) -> Live {
    let arn = c.cluster_arn().unwrap_or_default().to_string();
    let insights = c
        .settings()
        .iter()
        .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
        .and_then(|s| s.value())
        .is_some_and(|v| v != "disabled");
    let mut providers = c.capacity_providers().to_vec();
    providers.sort();
    let props = ClusterProps { container_insights: insights, capacity_providers: providers };
    Live::new(name, arn.clone(), &props, from_ecs_tags(c.tags()))
        .output("arn", arn)
        .output("name", c.cluster_name().unwrap_or_default())
}
