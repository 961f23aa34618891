"""Which operations the harness answers itself (MISSING) or finishes after moto (FINISH)."""


from .autoscaling import describe_instance_refreshes, start_instance_refresh
from .ec2 import delete_security_group
from .elasticache import create_cache_parameter_group, delete_cache_parameter_group, delete_cache_subnet_group, describe_cache_parameter_groups, describe_cache_parameters, finish_replication_group_delete, modify_cache_parameter_group, reset_cache_parameter_group


# Calls moto answers but does not finish, by (service, action).
FINISH = {
    ("elasticache", "DeleteReplicationGroup"): finish_replication_group_delete,
    ("ec2", "DeleteSecurityGroup"): delete_security_group,
}


# Calls moto lacks, by (service, action).
MISSING = {
    ("elasticache", "DeleteCacheSubnetGroup"): delete_cache_subnet_group,
    ("elasticache", "CreateCacheParameterGroup"): create_cache_parameter_group,
    ("elasticache", "DescribeCacheParameterGroups"): describe_cache_parameter_groups,
    ("elasticache", "DescribeCacheParameters"): describe_cache_parameters,
    ("elasticache", "ModifyCacheParameterGroup"): modify_cache_parameter_group,
    ("elasticache", "ResetCacheParameterGroup"): reset_cache_parameter_group,
    ("elasticache", "DeleteCacheParameterGroup"): delete_cache_parameter_group,
    ("autoscaling", "StartInstanceRefresh"): start_instance_refresh,
    ("autoscaling", "DescribeInstanceRefreshes"): describe_instance_refreshes,
}
