"""The Resource Groups Tagging API as AWS answers it: types from ARNs, and the resources moto leaves out of the index."""


from .elasticache import PARAMETER_GROUPS


def arn_resource_type(arn):
    """The Resource Groups Tagging API's type of an ARN, as AWS derives it:
    `service:type` from the resource part (`rds:pg`, `elasticache:subnetgroup`,
    `elasticloadbalancing:loadbalancer`), or the bare service when the ARN
    has no type (`s3` for `arn:aws:s3:::bucket`)."""
    service, resource = arn.split(":", 5)[2], arn.split(":", 5)[5]
    for i, ch in enumerate(resource):
        if ch in ":/":
            return f"{service}:{resource[:i]}"
    return service


def fix_tagging_api():
    """GetResources as AWS answers it: resource types named after the ARN
    (moto names ElastiCache's `replication-group` and `cache_subnet_groups`,
    so a `ResourceTypeFilters` of `elasticache:replicationgroup` matched
    nothing), and the tagged resources moto leaves out of the index: RDS DB
    parameter groups (`rds:pg`) and DB subnet groups (`rds:subgrp`), ECR
    repositories (`ecr:repository`), CloudWatch Logs log groups
    (`logs:log-group`), and the harness's ElastiCache cache parameter groups
    (`elasticache:parametergroup`)."""
    from itertools import chain

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.resource_tagging import TaggedResource, iter_taggable_backends, make_tag_matcher
    from moto.ecr.models import ecr_backends
    from moto.elasticache.models import elasticache_backends
    from moto.logs.models import logs_backends
    from moto.rds.models import rds_backends
    from moto.resourcegroupstaggingapi.models import ResourceGroupsTaggingAPIBackend

    def extra(region):
        rds = rds_backends[DEFAULT_ACCOUNT_ID][region]
        for group in chain(rds.db_parameter_groups.values(), rds.subnet_groups.values()):
            yield TaggedResource(arn=group.arn, tags={t["Key"]: t["Value"] for t in group.get_tags()}, resource_type="")
        ecr = ecr_backends[DEFAULT_ACCOUNT_ID][region]
        for repo in list(ecr.repositories.values()):
            yield TaggedResource(arn=repo.arn, tags=ecr.tagger.get_tag_dict_for_resource(repo.arn), resource_type="")
        logs = logs_backends[DEFAULT_ACCOUNT_ID][region]
        for group in list(logs.groups.values()):
            yield TaggedResource(arn=group.arn, tags=logs.list_tags_for_resource(group.arn), resource_type="")
        cache = elasticache_backends[DEFAULT_ACCOUNT_ID][region]
        for (r, name) in list(PARAMETER_GROUPS):
            if r == region:
                arn = f"arn:aws:elasticache:{region}:{DEFAULT_ACCOUNT_ID}:parametergroup:{name}"
                yield TaggedResource(arn=arn, tags=cache.tagging_service.get_tag_dict_for_resource(arn), resource_type="")

    def generator(self, tag_filters=None, resource_type_filters=None, resource_arn_list=None):
        matches_tags = make_tag_matcher(tag_filters)
        seen = set()
        moto_own = (r for b in iter_taggable_backends(self.account_id, self.region_name) for r in b.iter_tagged_resources())
        for resource in chain(moto_own, extra(self.region_name)):
            if resource.arn in seen or not resource.tags:
                continue
            seen.add(resource.arn)
            kind = arn_resource_type(resource.arn)
            if resource_type_filters and not any(f in (kind, kind.split(":")[0]) for f in resource_type_filters):
                continue
            if not matches_tags(resource.tags):
                continue
            if resource_arn_list and resource.arn not in resource_arn_list:
                continue
            yield TaggedResource(arn=resource.arn, tags=resource.tags, resource_type=kind)

    ResourceGroupsTaggingAPIBackend._get_resources_generator = generator
