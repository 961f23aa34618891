//! The registry: every kind converge knows, in the order `converge schema`
//! and docs/kinds.md document them. Adding a kind is one file in its
//! service's folder, one `pub mod` line there, and one line here.

use super::DynKind;
use super::{
    autoscaling, backup, cloudwatch, ec2, ecr, ecs, efs, elasticache, elbv2, iam, logs, rds, s3, secretsmanager, sns,
};

/// Every kind converge knows.
pub static REGISTRY: &[&dyn DynKind] = &[
    &ec2::vpc::VpcKind,
    &ec2::subnet::SubnetKind,
    &ec2::internet_gateway::InternetGatewayKind,
    &ec2::elastic_ip::ElasticIpKind,
    &ec2::nat_gateway::NatGatewayKind,
    &ec2::route_table::RouteTableKind,
    &ec2::vpc_endpoint::VpcEndpointKind,
    &ec2::security_group::SecurityGroupKind,
    &s3::bucket::BucketKind,
    &iam::role::RoleKind,
    &iam::instance_profile::InstanceProfileKind,
    &secretsmanager::secret::SecretKind,
    &ec2::volume::VolumeKind,
    &rds::db_subnet_group::DbSubnetGroupKind::KIND,
    &rds::db_parameter_group::DbParameterGroupKind::KIND,
    &rds::db_instance::DbInstanceKind,
    &elasticache::subnet_group::SubnetGroupKind::KIND,
    &elasticache::parameter_group::ParameterGroupKind::KIND,
    &elasticache::replication_group::ReplicationGroupKind,
    &efs::file_system::FileSystemKind,
    &efs::mount_target::MountTargetKind,
    &s3::object::ObjectKind,
    &elbv2::load_balancer::LoadBalancerKind,
    &elbv2::target_group::TargetGroupKind,
    &elbv2::listener::ListenerKind,
    &ec2::launch_template::LaunchTemplateKind,
    &autoscaling::group::GroupKind,
    &autoscaling::policy::PolicyKind,
    &logs::log_group::LogGroupKind,
    &sns::topic::TopicKind,
    &cloudwatch::alarm::AlarmKind,
    &backup::vault::VaultKind,
    &backup::plan::PlanKind,
    &backup::selection::SelectionKind,
    &ecr::repository::RepositoryKind,
    &ecs::cluster::ClusterKind,
    &ecs::task_definition::TaskDefinitionKind,
    &ecs::service::ServiceKind,
];

/// Looks a kind up by its `type:` name.
pub fn lookup(type_name: &str) -> Option<&'static dyn DynKind> {
    REGISTRY.iter().copied().find(|k| k.type_name() == type_name)
}
