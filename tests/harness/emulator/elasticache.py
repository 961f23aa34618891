"""ElastiCache: subnet group deletes, replica counts, replication group deletes, and cache parameter groups, which moto lacks."""


from .wire import members, region_of


ELASTICACHE_NS = "http://elasticache.amazonaws.com/doc/2015-02-02/"


def elasticache_error(start_response, code, message):
    body = (
        f'<ErrorResponse xmlns="{ELASTICACHE_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>converge-harness</RequestId></ErrorResponse>"
    ).encode()
    start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def delete_cache_subnet_group(environ, form, start_response):
    """ElastiCache DeleteCacheSubnetGroup on moto's backend (see the docstring)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.elasticache.models import elasticache_backends

    auth = environ.get("HTTP_AUTHORIZATION", "")
    region = auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"
    backend = elasticache_backends[DEFAULT_ACCOUNT_ID][region]
    name = (form.get("CacheSubnetGroupName") or [""])[0]
    if name not in backend.cache_subnet_groups:
        return elasticache_error(start_response, "CacheSubnetGroupNotFoundFault", f"CacheSubnetGroup {name} not found.")
    if any(getattr(g, "cache_subnet_group_name", None) == name for g in backend.replication_groups.values()):
        return elasticache_error(start_response, "CacheSubnetGroupInUse", f"Cache subnet group {name} is currently in use.")
    del backend.cache_subnet_groups[name]
    body = (
        f'<DeleteCacheSubnetGroupResponse xmlns="{ELASTICACHE_NS}"><ResponseMetadata>'
        "<RequestId>converge-harness</RequestId></ResponseMetadata></DeleteCacheSubnetGroupResponse>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def fix_num_cache_clusters():
    """Honour NumCacheClusters in cluster-mode-disabled replication groups."""
    from moto.elasticache.models import ReplicationGroup

    original = ReplicationGroup._set_node_members_clusters_disabled

    def fixed(self, *args, num_cache_clusters, replicas_per_node_group, **kwargs):
        if not replicas_per_node_group and num_cache_clusters and num_cache_clusters > 1:
            replicas_per_node_group = num_cache_clusters - 1
        return original(
            self, *args, num_cache_clusters=num_cache_clusters, replicas_per_node_group=replicas_per_node_group, **kwargs
        )

    ReplicationGroup._set_node_members_clusters_disabled = fixed


def finish_replication_group_delete(environ, form, app, start_response):
    """Runs moto's DeleteReplicationGroup, then removes the group."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.elasticache.models import elasticache_backends

    status = {}

    def capture(s, headers, exc_info=None):
        status["code"] = s
        return start_response(s, headers, exc_info)

    auth = environ.get("HTTP_AUTHORIZATION", "")
    region = auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"
    backend = elasticache_backends[DEFAULT_ACCOUNT_ID][region]
    group = (form.get("ReplicationGroupId") or [""])[0]
    final = (form.get("FinalSnapshotIdentifier") or [None])[0]
    if final and group in backend.replication_groups:
        # ElastiCache takes the final snapshot before it deletes the group.
        backend.create_snapshot(snapshot_name=final, replication_group_id=group, cache_cluster_id=None, kms_key_id=None, tags=None)
    body = list(app(environ, capture))
    if status.get("code", "").startswith("200"):
        backend.replication_groups.pop(group, None)
    return body


PARAMETER_GROUPS = {}  # (region, name) -> {"family", "description", "params"}


CACHE_FAMILIES = {"redis2.6", "redis2.8", "redis3.2", "redis4.0", "redis5.0", "redis6.x", "redis7", "valkey7", "valkey8", "memcached1.4", "memcached1.5", "memcached1.6"}


def elasticache_backend(environ):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.elasticache.models import elasticache_backends

    return elasticache_backends[DEFAULT_ACCOUNT_ID][region_of(environ)]


def elasticache_reply(start_response, action, result):
    body = (
        f'<{action}Response xmlns="{ELASTICACHE_NS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>converge-harness</RequestId></ResponseMetadata></{action}Response>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def parameter_group_arn(environ, name):
    from moto.core import DEFAULT_ACCOUNT_ID

    return f"arn:aws:elasticache:{region_of(environ)}:{DEFAULT_ACCOUNT_ID}:parametergroup:{name}"


def parameter_group_xml(environ, name, g):
    from xml.sax.saxutils import escape

    return (
        f"<CacheParameterGroupName>{escape(name)}</CacheParameterGroupName>"
        f"<CacheParameterGroupFamily>{escape(g['family'])}</CacheParameterGroupFamily>"
        f"<Description>{escape(g['description'])}</Description><IsGlobal>false</IsGlobal>"
        f"<ARN>{parameter_group_arn(environ, name)}</ARN>"
    )


def parameter_group_or_error(environ, form, start_response):
    name = (form.get("CacheParameterGroupName") or [""])[0]
    g = PARAMETER_GROUPS.get((region_of(environ), name))
    if g is None:
        return name, None, elasticache_error(start_response, "CacheParameterGroupNotFound", f"CacheParameterGroup {name} not found.")
    return name, g, None


def create_cache_parameter_group(environ, form, start_response):
    name = (form.get("CacheParameterGroupName") or [""])[0]
    family = (form.get("CacheParameterGroupFamily") or [""])[0]
    if (region_of(environ), name) in PARAMETER_GROUPS:
        return elasticache_error(start_response, "CacheParameterGroupAlreadyExists", f"Parameter group {name} already exists.")
    if family not in CACHE_FAMILIES:
        return elasticache_error(start_response, "InvalidParameterValue", f"The parameter CacheParameterGroupFamily is not a valid family: {family}")
    g = {"family": family, "description": (form.get("Description") or [""])[0], "params": {}}
    PARAMETER_GROUPS[(region_of(environ), name)] = g
    tags = members(form, "Tags", {"Key", "Value"})
    if tags:
        elasticache_backend(environ).tagging_service.tag_resource(parameter_group_arn(environ, name), tags)
    return elasticache_reply(start_response, "CreateCacheParameterGroup", f"<CacheParameterGroup>{parameter_group_xml(environ, name, g)}</CacheParameterGroup>")


def describe_cache_parameter_groups(environ, form, start_response):
    wanted = (form.get("CacheParameterGroupName") or [None])[0]
    if wanted is not None and (region_of(environ), wanted) not in PARAMETER_GROUPS:
        return elasticache_error(start_response, "CacheParameterGroupNotFound", f"CacheParameterGroup {wanted} not found.")
    groups = "".join(
        f"<CacheParameterGroup>{parameter_group_xml(environ, name, g)}</CacheParameterGroup>"
        for (region, name), g in sorted(PARAMETER_GROUPS.items())
        if region == region_of(environ) and wanted in (None, name)
    )
    return elasticache_reply(start_response, "DescribeCacheParameterGroups", f"<CacheParameterGroups>{groups}</CacheParameterGroups>")


def describe_cache_parameters(environ, form, start_response):
    from xml.sax.saxutils import escape

    name, g, error = parameter_group_or_error(environ, form, start_response)
    if error:
        return error
    params = "".join(
        f"<Parameter><ParameterName>{escape(k)}</ParameterName><ParameterValue>{escape(v)}</ParameterValue>"
        "<Source>user</Source><IsModifiable>true</IsModifiable></Parameter>"
        for k, v in sorted(g["params"].items())
    )
    return elasticache_reply(start_response, "DescribeCacheParameters", f"<Parameters>{params}</Parameters>")


def modify_cache_parameter_group(environ, form, start_response):
    name, g, error = parameter_group_or_error(environ, form, start_response)
    if error:
        return error
    for p in members(form, "ParameterNameValues", {"ParameterName", "ParameterValue"}):
        g["params"][p["ParameterName"]] = p.get("ParameterValue", "")
    return elasticache_reply(start_response, "ModifyCacheParameterGroup", f"<CacheParameterGroupName>{name}</CacheParameterGroupName>")


def reset_cache_parameter_group(environ, form, start_response):
    name, g, error = parameter_group_or_error(environ, form, start_response)
    if error:
        return error
    if (form.get("ResetAllParameters") or ["false"])[0] == "true":
        g["params"].clear()
    for p in members(form, "ParameterNameValues", {"ParameterName"}):
        g["params"].pop(p["ParameterName"], None)
    return elasticache_reply(start_response, "ResetCacheParameterGroup", f"<CacheParameterGroupName>{name}</CacheParameterGroupName>")


def delete_cache_parameter_group(environ, form, start_response):
    name, g, error = parameter_group_or_error(environ, form, start_response)
    if error:
        return error
    backend = elasticache_backend(environ)
    if any(getattr(r, "cache_parameter_group_name", None) == name for r in backend.replication_groups.values()):
        return elasticache_error(start_response, "InvalidCacheParameterGroupState", f"Parameter group {name} is in use.")
    del PARAMETER_GROUPS[(region_of(environ), name)]
    backend.tagging_service.delete_all_tags_for_resource(parameter_group_arn(environ, name))
    return elasticache_reply(start_response, "DeleteCacheParameterGroup", "")


def widen_elasticache_arns():
    """moto's tag calls accept only the ARNs of the resources it models."""
    import re

    from moto.elasticache.models import ElastiCacheBackend

    original = ElastiCacheBackend.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.arn_regex = re.compile(
            r"^arn:aws:elasticache:.*:[0-9]*:(cluster|snapshot|subnetgroup|replicationgroup|user|parametergroup):.*$"
        )

    ElastiCacheBackend.__init__ = init
