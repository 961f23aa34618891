#!/usr/bin/env python3
"""moto server for converge's tests and demo, on a free loopback port.

This is moto's own WSGI application (the one `moto_server` runs) behind a
small middleware that only observes:

- every request is logged as one JSON line to --log: the AWS service, the
  operation and whether it mutates. Tests count converge's AWS calls from
  this log, independently of converge.
- --delay-mutations-ms N sleeps before each mutating request, so a test can
  kill converge in the middle of an apply.

It also corrects one serialization bug of moto 5.2.5 that the AWS SDK for
Rust (which, unlike botocore, checks XML root elements) cannot parse:
GetBucketVersioning answers with the root <GetBucketVersioningResponse>,
where S3 answers <VersioningConfiguration> (S3 API reference). Only the
element name is rewritten; the content is moto's.

It fixes moto 5.2.5's ElastiCache CreateReplicationGroup, which ignores
NumCacheClusters (a cluster-mode-disabled group always gets one node unless
ReplicasPerNodeGroup is also sent): the requested primary-plus-replicas
count is honoured, as ElastiCache does.

It honours DeleteReplicationGroup's FinalSnapshotIdentifier, which moto
ignores: the snapshot is taken (on moto's backend) before the group goes.

EC2 DeleteSecurityGroup refuses a group that is in use, as EC2 does
(DependencyViolation, "resource sg-… has a dependent object"): one that
another group's rule names, or that a network interface, running instance,
load balancer, DB instance, replication group or mount target is in. moto
5.2.5 deletes it and leaves the users pointing at nothing, which hides
replace-order bugs (ELBv2's DeleteTargetGroup already answers
ResourceInUse for a group a listener uses).

It completes ElastiCache DeleteReplicationGroup: moto marks the group
`deleting` and keeps it forever, where ElastiCache removes it once deleted;
here the removal happens as soon as moto has accepted the delete (moto's
other services delete at once too), so waiters see the final state.

And it implements calls moto 5.2.5 lacks (it answers NotImplemented),
faithfully, on moto's own backends; converge sends the real calls:
- ElastiCache DeleteCacheSubnetGroup: the group is removed; one still used
  by a replication group answers CacheSubnetGroupInUse, an unknown one
  CacheSubnetGroupNotFoundFault, as the ElastiCache API reference documents.
- ElastiCache cache parameter groups (CreateCacheParameterGroup,
  DescribeCacheParameterGroups, DescribeCacheParameters,
  ModifyCacheParameterGroup, ResetCacheParameterGroup,
  DeleteCacheParameterGroup): kept beside moto's ElastiCache backend, tagged
  through its tagging service (whose ARN check is widened to the
  `parametergroup` ARNs ElastiCache uses); the errors are the API's
  (CacheParameterGroupAlreadyExists, CacheParameterGroupNotFound,
  InvalidParameterValue for an unknown family, InvalidCacheParameterGroupState
  for a group a replication group uses). DescribeCacheParameters answers
  the user-set parameters (Source=user), which is what converge asks.
- CloudWatch Logs AssociateKmsKey and DisassociateKmsKey: the group's
  kmsKeyId is set or removed, so DescribeLogGroups reports it as
  CloudWatch Logs does; an unknown group answers ResourceNotFoundException.
- Auto Scaling StartInstanceRefresh and DescribeInstanceRefreshes: a refresh
  of an existing group replaces its instances with ones launched from the
  group's launch template as it is now (so they get its new security groups),
  is recorded with its preferences and reported Successful; an unknown group
  answers ValidationError.

The Resource Groups Tagging API's GetResources (converge's ownership
index) answers as AWS does: each resource's type is the one its ARN names
(`elasticache:replicationgroup`, `rds:pg`; moto 5.2.5 invents
`elasticache:replication-group` and `elasticache:cache_subnet_groups`, which
ResourceTypeFilters then miss), and the index holds the tagged resources
moto leaves out: RDS DB parameter groups and DB subnet groups, ECR
repositories, and the ElastiCache cache parameter groups above. IAM ListInstanceProfiles honours
PathPrefix (moto lists every profile). And an EC2 object's tags are looked
up by its id: moto scans every tag of the account for each object, which
made each tag-filtered Describe quadratic in the account's size (a
performance fix only; the answers are moto's).

ECS one-off tasks (RunTask, converge's `run_before`) run and stop, as on
ECS: moto 5.2.5 leaves them RUNNING until described four times, always
"exited" 0 with no stop code. Here a one-off task has run its command by
the first DescribeTasks: it is STOPPED with stopCode EssentialContainerExited
and stoppedReason "Essential container in task exited", its container's
exitCode that of its task definition's family as a test set it with
POST /moto-api/converge/task-exit {"family": F, "exit_code": N, "reason": R}
(0 unless set; N null clears it), the container's reason R. And RunTask
takes a Fargate task definition whose containers set no memory of their
own (the task's is theirs), where moto 5.2.5 failed with a 500.

ECS services deploy: moto 5.2.5's never run tasks (a deployment stays
IN_PROGRESS with runningCount 0) and UpdateService leaves the PRIMARY
deployment on the old task definition. Here a deployment completes when it
starts, as long as its task definition is registered and ACTIVE, and
CreateService/UpdateService refuse an INACTIVE revision as ECS does
("TaskDefinition is inactive"). DescribeTaskDefinition with a bare family
answers the latest ACTIVE revision, and DescribeServices reports the
deploymentConfiguration and healthCheckGracePeriodSeconds CreateService
was given (moto drops them). ECR PutImageScanningConfiguration without
`scanOnPush` (how the SDKs send false) turns scanning off, as ECR does;
moto took it for no change.

--asg-warmup-seconds N makes Auto Scaling behave as it does on AWS, where
nothing is instant: moto puts a group's new instances InService the moment
they launch; here they are Pending for N seconds first, and an instance
refresh is InProgress for N seconds before it is Successful. Tests use it to
show that converge waits for a group's instances before touching the groups
that depend on it.

--rds-create-seconds N does the same for RDS: a new DB instance reports
`creating` for N seconds before `available` (moto makes it available at
once; on AWS a create takes minutes). Tests use it to see converge say what
it waits for while it waits.

--latency-scale F makes the slow creates take F times as long as on AWS
(RDS instance 600 s, ElastiCache replication group 720 s, EFS file system
120 s, application load balancer 180 s; 0.05 makes them 30, 36, 6 and
9 s): `scripts/bench` compares an apply's wall time with its critical path.

Each log line also carries the request's time (`t`, seconds since the epoch)
and, for Auto Scaling calls, the group (`group`), so tests can order calls.

S3 CreateBucket takes the new bucket's tags in CreateBucketConfiguration
(<Tags><Tag><Key/><Value/></Tag></Tags>), so a bucket is never untagged,
not even for a moment; moto 5.2.5 drops them. Here they are set on moto's
backend as part of the same request.

S3 conditional writes (PutObject and DeleteObject with If-None-Match or
If-Match, which converge's locks use) are atomic on S3: of two racing
writes, one wins and the other gets 412 PreconditionFailed. moto checks the
condition and then writes, unguarded, on a threaded server; here such
requests run one at a time, so the check and the write are atomic as on S3.

AWS's managed IAM policies are loaded (MOTO_IAM_LOAD_MANAGED_POLICIES): on
AWS every account has them, and roles attach them by ARN.

The account has its own AMIs, as the README's "What you bring" asks of a
real one (GitLab's and the runners', built with Packer): the GitLab stack's
lookups find the newest of each name (SEED_AMIS below; two builds of one
GitLab version, and a newer build of an older version that must not be
picked). moto's RegisterImage dates an image now, so these are made on its
backend with their dates.

--acm-certificate-file PATH requests a certificate from moto's own ACM (an
HTTPS listener needs one that exists) and writes its ARN there, for
`CONVERGE_VAR_certificate_arn`.

ELBv2 CreateLoadBalancer and CreateTargetGroup are idempotent, as on AWS:
the same name and settings return the existing object (moto 5.2.5 makes a
second load balancer of the same name, and refuses a repeated target group).

A launch template version's UserData is kept as moto keeps the first
version's (a Base64EncodedString): moto 5.2.5 stores later versions' as a
plain string and then cannot launch instances from them.

--faults throttle=0.10,5xx=0.05,reset=0.03,drop=0.03 (with --fault-seed N
and --fault-key KEY) makes the server a hostile network for requests signed
with access key KEY (converge's; the tests' independent clients use
another): each request is, at those rates, answered with a throttling
error, answered with a 5xx, reset before it reaches moto, or run by moto
and then its connection reset before the response (a lost response). The
errors are sent as each service's wire protocol sends them: EC2's
<Response><Errors>, the Query services' <ErrorResponse>, S3's <Error>,
EFS's REST-JSON body with x-amzn-ErrorType, Secrets Manager's JSON
__type. Each fault is logged (`fault` in the request's log line).

CloudWatch speaks Smithy RPC v2 CBOR to the AWS SDKs (aws-sdk-cloudwatch,
botocore 1.44), which moto 5.2.5 cannot parse: cbor_bridge.py (beside this
file) translates each CBOR request to the AWS JSON 1.0 moto answers, and
the answer back to CBOR, typed by botocore's model of the service (its
docstring says how). CloudWatch DeleteAlarms removes the alarms' tags, as
CloudWatch does: moto keeps them, and an alarm made again under the name
came back with the deleted one's tags (and so its owner).

It binds 127.0.0.1 on a free port and writes the port to --port-file. With
--watch-stdin it exits when its stdin closes, so a test process that dies
cannot leave a server behind.
"""

import argparse
import io
import json
import os
import sys
import threading
import time
import urllib.parse

# AWS's managed policies (AmazonSSMManagedInstanceCore …) exist in every
# account; moto loads them only when asked, before it is imported.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from cbor_bridge import Bridge

READ_PREFIXES = ("Describe", "Get", "List", "Head")


def classify(environ):
    """(service, operation, mutating) of one request."""
    method = environ["REQUEST_METHOD"]
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        # Credential=AKID/date/region/service/aws4_request
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    action = (query.get("Action") or [None])[0]
    ctype = environ.get("CONTENT_TYPE", "")
    if action is None and method == "POST" and "x-www-form-urlencoded" in ctype:
        # Query protocol (EC2, Auto Scaling, RDS …): Action in the form body.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [None])[0]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if action is None and target:
        # JSON protocol: X-Amz-Target: Service.Operation
        action = target.rsplit(".", 1)[-1]
    if action is not None:
        return service, action, not action.startswith(READ_PREFIXES)
    # REST protocol (S3, EFS): method and sub-resource.
    sub = sorted(k for k in query if k != "x-id")
    op = (query.get("x-id") or [None])[0] or f"{method} {environ.get('PATH_INFO', '')}?{'&'.join(sub)}"
    return service, op, method not in ("GET", "HEAD")


# (query sub-resource, wrong root, S3's root) for S3 GET responses.
ROOT_FIXES = [("versioning", b"GetBucketVersioningResponse", b"VersioningConfiguration")]


def fix_root(environ, app, start_response):
    """Runs `app`, renaming a wrong XML root element (see the docstring)."""
    query = environ.get("QUERY_STRING", "")
    fixes = [
        (wrong, right)
        for sub, wrong, right in ROOT_FIXES
        if environ["REQUEST_METHOD"] == "GET" and sub in urllib.parse.parse_qs(query, keep_blank_values=True)
    ]
    if not fixes:
        return app(environ, start_response)
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(app(environ, capture))
    for wrong, right in fixes:
        body = body.replace(b"<" + wrong, b"<" + right).replace(b"</" + wrong + b">", b"</" + right + b">")
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(captured["status"], headers)
    return [body]


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


def security_group_users(region, group_id):
    """What keeps a security group from being deleted on AWS: another
    group's rule naming it, or a network interface in it (instances, load
    balancers, databases, caches and mount targets all have them)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.efs.models import efs_backends
    from moto.elasticache.models import elasticache_backends
    from moto.elbv2.models import elbv2_backends
    from moto.rds.models import rds_backends

    users = []
    ec2 = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    for groups in ec2.groups.values():
        for g in groups.values():
            if g.id == group_id:
                continue
            for rule in list(g.ingress_rules) + list(g.egress_rules):
                if (rule.source_group or {}).get("GroupId") == group_id:
                    users.append(f"a rule of {g.id}")
                    break
    for eni in ec2.enis.values():
        # A terminated instance's primary interface is deleted with it on
        # AWS; moto keeps it, attached to the terminated instance.
        instance = getattr(eni, "instance", None)
        if instance is not None and instance._state.name in ("shutting-down", "terminated"):
            continue
        if any(getattr(sg, "id", sg) == group_id for sg in eni.group_set):
            users.append(f"network interface {eni.id}")
    for instance in ec2.all_instances():
        if instance._state.name not in ("shutting-down", "terminated") and any(
            sg.id == group_id for sg in instance.security_groups
        ):
            users.append(f"instance {instance.id}")
    for lb in elbv2_backends[DEFAULT_ACCOUNT_ID][region].load_balancers.values():
        if group_id in (lb.security_groups or []):
            users.append(f"load balancer {lb.name}")
    for db in rds_backends[DEFAULT_ACCOUNT_ID][region].databases.values():
        if group_id in (db.vpc_security_group_ids or []):
            users.append(f"DB instance {db.db_instance_identifier}")
    for rg in elasticache_backends[DEFAULT_ACCOUNT_ID][region].replication_groups.values():
        if group_id in (getattr(rg, "security_group_ids", None) or []):
            users.append(f"replication group {rg.replication_group_id}")
    for mt in efs_backends[DEFAULT_ACCOUNT_ID][region].mount_targets_by_id.values():
        if group_id in (mt.security_groups or []):
            users.append(f"mount target {mt.mount_target_id}")
    return users


def delete_security_group(environ, form, app, start_response):
    """EC2 DeleteSecurityGroup refusing a group in use (see the docstring)."""
    group_id = (form.get("GroupId") or [""])[0]
    users = security_group_users(region_of(environ), group_id) if group_id else []
    if not users:
        return app(environ, start_response)
    body = (
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>DependencyViolation</Code>"
        f"<Message>resource {group_id} has a dependent object ({users[0]})</Message></Error></Errors>"
        "<RequestID>converge-harness</RequestID></Response>"
    ).encode()
    start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


# Calls moto answers but does not finish, by (service, action).
FINISH = {
    ("elasticache", "DeleteReplicationGroup"): finish_replication_group_delete,
    ("ec2", "DeleteSecurityGroup"): delete_security_group,
}

AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
REFRESHES = {}  # group name -> [refresh]
WARMUP = 0.0  # --asg-warmup-seconds


def delay_state(cls, attr, ready, pending, seconds):
    """Objects of moto's `cls` report `attr` as `pending` for `seconds` after
    they are made, where moto sets `ready` at once; other values pass."""
    original = cls.__init__
    stored = "_" + attr

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.__dict__["_made"] = time.time()

    def get(self):
        value = self.__dict__.get(stored, ready)
        if value == ready and time.time() - self.__dict__.get("_made", 0) < seconds:
            return pending
        return value

    def set_(self, value):
        self.__dict__[stored] = value

    cls.__init__ = init
    setattr(cls, attr, property(get, set_))


def slow_instance_start(seconds):
    """New Auto Scaling instances are Pending for `seconds` (see the docstring)."""
    from moto.autoscaling.models import InstanceState

    delay_state(InstanceState, "lifecycle_state", "InService", "Pending", seconds)


def slow_db_create(seconds):
    """New DB instances are `creating` for `seconds` (see the docstring)."""
    from moto.rds.models import DBInstance

    delay_state(DBInstance, "status", "available", "creating", seconds)


# How long creates take on AWS, in seconds, by moto class and state:
# (module, class, attribute, ready value, pending value, seconds). From the
# services' own guidance: an RDS instance ~10 minutes, an ElastiCache
# replication group ~12, an EFS file system ~2 (with its mount targets), an
# application load balancer ~3.
AWS_CREATE_SECONDS = [
    ("moto.rds.models", "DBInstance", "status", "available", "creating", 600),
    ("moto.elasticache.models", "ReplicationGroup", "status", "available", "creating", 720),
    ("moto.efs.models", "FileSystem", "life_cycle_state", "available", "creating", 120),
    ("moto.elbv2.models", "FakeLoadBalancer", "state", "active", "provisioning", 180),
]


def aws_latency(scale):
    """--latency-scale F: the slow creates above take F times as long as on
    AWS (0.05: an RDS instance 30 s), for the benchmark of an apply against
    its critical path."""
    import importlib

    for module, cls, attr, ready, pending, seconds in AWS_CREATE_SECONDS:
        delay_state(getattr(importlib.import_module(module), cls), attr, ready, pending, seconds * scale)
    # moto serializes a file system from its __dict__, which no longer holds
    # the state under its own name.
    from moto.efs.models import FileSystem

    described = FileSystem.info_json

    def info_json(self):
        return dict(described(self), LifeCycleState=self.life_cycle_state)

    FileSystem.info_json = info_json


def autoscaling_reply(start_response, action, result, status="200 OK"):
    body = (
        f'<{action}Response xmlns="{AUTOSCALING_NS}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>converge-harness</RequestId></ResponseMetadata></{action}Response>"
    ).encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def autoscaling_group_exists(environ, name):
    from moto.autoscaling.models import autoscaling_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    auth = environ.get("HTTP_AUTHORIZATION", "")
    region = auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"
    return name in autoscaling_backends[DEFAULT_ACCOUNT_ID][region].autoscaling_groups


def start_instance_refresh(environ, form, start_response):
    import uuid

    name = (form.get("AutoScalingGroupName") or [""])[0]
    if not autoscaling_group_exists(environ, name):
        body = (
            f'<ErrorResponse xmlns="{AUTOSCALING_NS}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
            f"<Message>AutoScalingGroup name not found - {name}</Message></Error>"
            "<RequestId>converge-harness</RequestId></ErrorResponse>"
        ).encode()
        start_response("400 Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]
    refresh = {
        "id": str(uuid.uuid4()),
        "min_healthy": (form.get("Preferences.MinHealthyPercentage") or ["90"])[0],
        "warmup": (form.get("Preferences.InstanceWarmup") or [None])[0],
        "started": time.time(),
    }
    REFRESHES.setdefault(name, []).insert(0, refresh)
    replace_group_instances(environ, name)
    return autoscaling_reply(start_response, "StartInstanceRefresh", f"<InstanceRefreshId>{refresh['id']}</InstanceRefreshId>")


def replace_group_instances(environ, name):
    """What a refresh does: every instance of the group is replaced by one
    launched from the group's launch template as it is now."""
    from moto.autoscaling.models import autoscaling_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    group = autoscaling_backends[DEFAULT_ACCOUNT_ID][region_of(environ)].autoscaling_groups[name]
    old = list(group.instance_states)
    if not old:
        return
    group.autoscaling_backend.ec2_backend.terminate_instances([s.instance.id for s in old])
    group.instance_states = [s for s in group.instance_states if s not in old]
    group.replace_autoscaling_group_instances(len(old), group.get_propagated_tags())
    group.autoscaling_backend.update_attached_target_groups(name)


def fix_elbv2_idempotency():
    """ELBv2 CreateLoadBalancer and CreateTargetGroup are idempotent (ELBv2
    API reference): a repeated call with the same name and settings returns
    the existing object, one with the same name and other settings fails
    with DuplicateLoadBalancerName / DuplicateTargetGroupName. moto 5.2.5
    creates a second load balancer with the same name (its check compares
    ARNs, which hold a random id), and refuses a repeated target group."""
    from moto.elbv2.exceptions import DuplicateLoadBalancerName, DuplicateTargetGroupName
    from moto.elbv2.models import ELBv2Backend

    create_lb = ELBv2Backend.create_load_balancer
    create_tg = ELBv2Backend.create_target_group

    def load_balancer(self, name, security_groups, subnet_ids, subnet_mappings=None, scheme="internet-facing",
                      loadbalancer_type=None, ip_address_type="ipv4", tags=None):
        wanted = sorted(list(subnet_ids or []) + [m["SubnetId"] for m in subnet_mappings or []])
        for lb in self.load_balancers.values():
            if lb.name == name:
                same = (
                    lb.scheme == (scheme or "internet-facing")
                    and (lb.loadbalancer_type or "application") == (loadbalancer_type or "application")
                    and sorted(s.id for s in lb.subnets) == wanted
                )
                if same:
                    return lb
                raise DuplicateLoadBalancerName()
        return create_lb(self, name, security_groups, subnet_ids, subnet_mappings, scheme, loadbalancer_type,
                         ip_address_type, tags)

    def target_group(self, name, **kwargs):
        for tg in self.target_groups.values():
            if tg.name == name:
                port = kwargs.get("port")
                same = (
                    tg.vpc_id == kwargs.get("vpc_id")
                    and (tg.protocol or None) == (kwargs.get("protocol") or None)
                    and (port is None or str(tg.port) == str(port))
                )
                if same:
                    return tg
                raise DuplicateTargetGroupName()
        return create_tg(self, name, **kwargs)

    ELBv2Backend.create_load_balancer = load_balancer
    ELBv2Backend.create_target_group = target_group


def fix_launch_template_user_data():
    """moto 5.2.5 keeps a launch template version's UserData as the plain
    string CreateLaunchTemplateVersion sent, where the rest of moto expects
    its Base64EncodedString: Auto Scaling then fails (AssertionError) to
    launch instances from any version but the first. The string is wrapped
    as moto's CreateLaunchTemplate does; the bytes are unchanged."""
    from moto.core.types import Base64EncodedString
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    original = LaunchTemplateVersion.__init__

    def init(self, template, number, data, description):
        original(self, template, number, data, description)
        user_data = self.data.get("UserData")
        if isinstance(user_data, str):
            self.data["UserData"] = Base64EncodedString(user_data)

    LaunchTemplateVersion.__init__ = init


def refresh_status(r):
    """(status, percent) of a refresh: InProgress for WARMUP seconds."""
    done = min(1.0, (time.time() - r["started"]) / WARMUP) if WARMUP else 1.0
    return ("Successful" if done >= 1.0 else "InProgress"), int(done * 100)


def describe_instance_refreshes(environ, form, start_response):
    name = (form.get("AutoScalingGroupName") or [""])[0]
    wanted = {v[0] for k, v in form.items() if k.startswith("InstanceRefreshIds.member.")}
    members = "".join(
        "<member>"
        f"<InstanceRefreshId>{r['id']}</InstanceRefreshId><AutoScalingGroupName>{name}</AutoScalingGroupName>"
        f"<Status>{refresh_status(r)[0]}</Status><PercentageComplete>{refresh_status(r)[1]}</PercentageComplete>"
        f"<Preferences><MinHealthyPercentage>{r['min_healthy']}</MinHealthyPercentage>"
        + (f"<InstanceWarmup>{r['warmup']}</InstanceWarmup>" if r["warmup"] else "")
        + "</Preferences></member>"
        for r in REFRESHES.get(name, [])
        if not wanted or r["id"] in wanted
    )
    return autoscaling_reply(start_response, "DescribeInstanceRefreshes", f"<InstanceRefreshes>{members}</InstanceRefreshes>")


PARAMETER_GROUPS = {}  # (region, name) -> {"family", "description", "params"}
CACHE_FAMILIES = {"redis2.6", "redis2.8", "redis3.2", "redis4.0", "redis5.0", "redis6.x", "redis7", "valkey7", "valkey8", "memcached1.4", "memcached1.5", "memcached1.6"}


def region_of(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"


def elasticache_backend(environ):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.elasticache.models import elasticache_backends

    return elasticache_backends[DEFAULT_ACCOUNT_ID][region_of(environ)]


def members(form, prefix, fields):
    """[{field: value}] of a Query-protocol list: `Prefix.Member.N.Field`."""
    import re

    found = {}
    for key, values in form.items():
        m = re.match(re.escape(prefix) + r"\.[^.]+\.(\d+)\.(\w+)$", key)
        if m and m.group(2) in fields:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = values[0]
    return [found[i] for i in sorted(found)]


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


def fix_ec2_tag_lookup():
    """An EC2 object's tags are read from moto's tag store by its id. moto
    5.2.5 scans every tag in the account for each object (get_tags calls
    DescribeTags with a resource-id pattern), so each Describe call with a
    tag filter costs the square of the account's size: 3 s of CPU for one
    DescribeSecurityGroups in an account of 25 stacks. Same answer, one
    lookup; the account's size then costs what it costs on AWS."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self):
        if not self.id:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        tags = self.ec2_backend.tags.get(self.id, {})
        return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]

    TaggedEC2Resource.get_tags = get_tags


def fix_list_instance_profiles():
    """IAM ListInstanceProfiles honours PathPrefix, as IAM does (moto 5.2.5
    lists every profile whatever the prefix)."""
    from moto.iam.responses import IamResponse

    original = IamResponse.list_instance_profiles

    def listed(self):
        result = original(self)
        prefix = self._get_param("PathPrefix", "/")
        profiles = [p for p in result.result["InstanceProfiles"] if p.path.startswith(prefix)]
        result.result["InstanceProfiles"] = profiles
        return result

    IamResponse.list_instance_profiles = listed


def fix_ecs_deployments():
    """ECS services deploy, as on AWS. moto 5.2.5's services never run
    tasks: a deployment stays IN_PROGRESS with runningCount 0, and
    UpdateService changes the service's task definition but leaves the
    PRIMARY deployment on the old one. Here a deployment completes as soon
    as it starts (the service's task definition is registered and ACTIVE):
    CreateService, and an UpdateService that changes the task definition or
    forces a new deployment, make a new PRIMARY deployment of that revision,
    COMPLETED with desiredCount tasks running; the one it replaces is
    dropped, as ECS drops a finished deployment's old ACTIVE entry.

    As ECS does, CreateService and UpdateService refuse an INACTIVE
    (deregistered) revision: ClientException "TaskDefinition is inactive".
    DescribeTaskDefinition with a family and no revision answers the
    latest ACTIVE revision (moto answers the latest, deregistered or not).
    CreateService keeps deploymentConfiguration and
    healthCheckGracePeriodSeconds (moto drops them), so DescribeServices
    reports them as ECS does."""
    from moto.ecs import models
    from moto.ecs.exceptions import EcsClientException, TaskDefinitionNotFoundException
    from moto.ecs.responses import EC2ContainerServiceResponse

    backend = models.EC2ContainerServiceBackend

    def active(self, task_definition_str):
        if not task_definition_str:
            return
        if self.describe_task_definition(task_definition_str).status != "ACTIVE":
            raise EcsClientException("TaskDefinition is inactive")

    def deploy(service):
        now = models.utcnow()
        deployment_id = f"ecs-svc/{models.mock_random.randint(0, 32**12)}"
        service.running_count = service.desired_count
        service.pending_count = 0
        service.deployments = [{
            "createdAt": now,
            "desiredCount": service.desired_count,
            "failedTasks": 0,
            "id": deployment_id,
            "launchType": service.launch_type,
            "pendingCount": 0,
            "rolloutState": "COMPLETED",
            "rolloutStateReason": f"ECS deployment {deployment_id} completed.",
            "runningCount": service.desired_count,
            "platformVersion": service.platform_version,
            "networkConfiguration": service.network_configuration or None,
            "platformFamily": "EC2" if service.launch_type == "EC2" else "FARGATE",
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "updatedAt": now,
        }]
        service.events.insert(0, {
            "id": deployment_id.split("/")[-1],
            "createdAt": now,
            "message": f"(service {service.name}) has reached a steady state.",
        })

    original_create = backend.create_service

    def create_service(self, cluster_str, service_name, desired_count, task_definition_str=None, *args, **kwargs):
        active(self, task_definition_str)
        service = original_create(self, cluster_str, service_name, desired_count, task_definition_str, *args, **kwargs)
        if service.deployment_controller.get("type", "ECS") == "ECS":
            deploy(service)
        return service

    original_update = backend.update_service

    def update_service(self, props):
        task_definition_str = props.get("task_definition")
        forced = props.get("force_new_deployment", False)
        active(self, task_definition_str)
        service = original_update(self, props)
        if task_definition_str or forced or "desired_count" in props:
            if service.deployment_controller.get("type", "ECS") == "ECS":
                deploy(service)
        return service

    original_describe = backend.describe_task_definition

    def describe_task_definition(self, task_definition_str):
        name = task_definition_str.split("/")[-1]
        if ":" in name:
            return original_describe(self, task_definition_str)
        revisions = [t for _, t in sorted(self.task_definitions.get(name, {}).items()) if t.status == "ACTIVE"]
        if not revisions:
            raise TaskDefinitionNotFoundException()
        return revisions[-1]

    original_create_response = EC2ContainerServiceResponse.create_service

    def create_service_response(self):
        result = original_create_response(self)
        service = result.result["service"]
        config = self._get_param("deploymentConfiguration")
        if config is not None:
            service.deployment_configuration = config
        grace = self._get_param("healthCheckGracePeriodSeconds")
        if grace is not None:
            service.health_check_grace_period_seconds = grace
        return result

    backend.create_service = create_service
    backend.update_service = update_service
    backend.describe_task_definition = describe_task_definition
    EC2ContainerServiceResponse.create_service = create_service_response


def fix_cloudwatch_delete_alarms():
    """DeleteAlarms takes the alarms' tags with them (moto keeps them)."""
    from moto.cloudwatch.models import CloudWatchBackend

    delete = CloudWatchBackend.delete_alarms

    def delete_alarms(self, alarm_names):
        arns = [self.alarms[n].alarm_arn for n in alarm_names if n in self.alarms]
        delete(self, alarm_names)
        for arn in arns:
            self.tagger.delete_all_tags_for_resource(arn)

    CloudWatchBackend.delete_alarms = delete_alarms


def add_logs_kms_calls():
    """CloudWatch Logs AssociateKmsKey / DisassociateKmsKey (moto 5.2.5
    answers NotImplemented): the log group's KMS key, as DescribeLogGroups
    then reports it."""
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def group(self):
        found = self.logs_backend.groups.get(self._get_param("logGroupName"))
        if found is None:
            raise ResourceNotFoundException()
        return found

    def associate_kms_key(self):
        group(self).kms_key_id = self._get_param("kmsKeyId")
        return ""

    def disassociate_kms_key(self):
        group(self).kms_key_id = None
        return ""

    LogsResponse.associate_kms_key = associate_kms_key
    LogsResponse.disassociate_kms_key = disassociate_kms_key


BACKUP_SELECTIONS = {}  # (account, region) -> {plan id: {selection id: selection}}


def add_backup_calls():
    """AWS Backup as its API reference describes it, where moto 5.2.5 falls
    short: UpdateBackupPlan and the backup selections (CreateBackupSelection,
    GetBackupSelection, ListBackupSelections, DeleteBackupSelection) answer
    NotImplemented there; DeleteBackupPlan deletes a plan that still has
    selections (AWS refuses: InvalidRequestException); a deleted plan's name
    could not be used again (moto compares against deleted plans too);
    plans are missing from the Resource Groups Tagging API
    (`backup:backup-plan`), so a plan removed from a spec was never found;
    and ListTags read its ARN from `/tags/{arn}/` only, where the AWS SDK
    for Rust sends `/tags/{arn}` (AWS answers both): without the slash
    moto answered every ARN with no tags."""
    import json
    from urllib.parse import unquote

    from moto.backup.exceptions import AlreadyExistsException, InvalidRequestException, ResourceNotFoundException
    from moto.backup.models import BackupBackend, Plan
    from moto.backup.responses import BackupResponse
    from moto.core.resource_tagging import TaggedResource
    from moto.core.utils import unix_time
    from moto.moto_api._internal import mock_random

    def live_plan(backend, plan_id):
        plan = backend.plans.get(plan_id)
        if plan is None or plan.deletion_date is not None:
            raise ResourceNotFoundException(msg=f"Failed reading Backup plan with provided version: {plan_id}")
        return plan

    def selections(backend, plan_id):
        return BACKUP_SELECTIONS.setdefault((backend.account_id, backend.region_name), {}).setdefault(plan_id, {})

    def plan_and_rest(self):
        # /backup/plans/{plan}/selections/[{selection}]
        parts = [unquote(p) for p in self.path.split("?")[0].split("/") if p]
        return parts[2], parts[4] if len(parts) > 4 else None

    create_plan = BackupBackend.create_backup_plan

    def create_backup_plan(self, backup_plan, backup_plan_tags, creator_request_id):
        taken = [p for p in self.plans.values() if p.deletion_date is None]
        if any(p.backup_plan["BackupPlanName"] == backup_plan["BackupPlanName"] for p in taken):
            raise AlreadyExistsException(msg="Backup plan with the same plan document already exists")
        deleted = {k: v for k, v in self.plans.items() if v.deletion_date is not None}
        for k in deleted:
            del self.plans[k]
        try:
            return create_plan(self, backup_plan, backup_plan_tags, creator_request_id)
        finally:
            self.plans.update(deleted)

    delete_plan = BackupBackend.delete_backup_plan

    def delete_backup_plan(self, backup_plan_id):
        if selections(self, backup_plan_id):
            raise InvalidRequestException(msg="Related backup plan selections must be deleted prior to backup plan deletion")
        return delete_plan(self, backup_plan_id)

    own = BackupBackend.iter_tagged_resources

    def iter_tagged_resources(self):
        yield from own(self)
        for plan in list(self.plans.values()):
            if plan.deletion_date is None:
                tags = self.tagger.get_tag_dict_for_resource(plan.backup_plan_arn)
                yield TaggedResource(arn=plan.backup_plan_arn, tags=tags, resource_type="backup:backup-plan")

    def update_backup_plan(self):
        plan = live_plan(self.backup_backend, self.path.split("?")[0].strip("/").split("/")[-1])
        fresh = Plan(json.loads(self.body)["BackupPlan"], plan.creator_request_id, self.backup_backend)
        plan.backup_plan, plan.version_id = fresh.backup_plan, fresh.version_id
        return json.dumps({"BackupPlanId": plan.backup_plan_id, "BackupPlanArn": plan.backup_plan_arn,
                           "CreationDate": plan.creation_date, "VersionId": plan.version_id})

    def create_backup_selection(self):
        plan_id, _ = plan_and_rest(self)
        live_plan(self.backup_backend, plan_id)
        body = json.loads(self.body)
        selection = body["BackupSelection"]
        if not selection.get("SelectionName") or not selection.get("IamRoleArn"):
            raise InvalidRequestException(msg="SelectionName and IamRoleArn are required")
        found = selections(self.backup_backend, plan_id)
        request = body.get("CreatorRequestId")
        for sid, s in found.items():
            # A retried request with the same CreatorRequestId gets the
            # selection it made (the parameter's documented purpose).
            if request and s["CreatorRequestId"] == request:
                return json.dumps({"SelectionId": sid, "BackupPlanId": plan_id, "CreationDate": s["CreationDate"]})
        sid = str(mock_random.uuid4())
        found[sid] = {"BackupSelection": selection, "CreatorRequestId": request, "CreationDate": unix_time()}
        return json.dumps({"SelectionId": sid, "BackupPlanId": plan_id, "CreationDate": found[sid]["CreationDate"]})

    def one_selection(self):
        plan_id, sid = plan_and_rest(self)
        live_plan(self.backup_backend, plan_id)
        s = selections(self.backup_backend, plan_id).get(sid)
        if s is None:
            raise ResourceNotFoundException(msg=f"Failed reading selection {sid}")
        return plan_id, sid, s

    def get_backup_selection(self):
        plan_id, sid, s = one_selection(self)
        return json.dumps({"BackupSelection": s["BackupSelection"], "SelectionId": sid, "BackupPlanId": plan_id,
                           "CreationDate": s["CreationDate"], "CreatorRequestId": s["CreatorRequestId"]})

    def list_backup_selections(self):
        plan_id, _ = plan_and_rest(self)
        live_plan(self.backup_backend, plan_id)
        rows = [{"SelectionId": sid, "SelectionName": s["BackupSelection"]["SelectionName"], "BackupPlanId": plan_id,
                 "CreationDate": s["CreationDate"], "CreatorRequestId": s["CreatorRequestId"],
                 "IamRoleArn": s["BackupSelection"]["IamRoleArn"]}
                for sid, s in selections(self.backup_backend, plan_id).items()]
        return json.dumps({"BackupSelectionsList": rows})

    def delete_backup_selection(self):
        plan_id, sid, _ = one_selection(self)
        del selections(self.backup_backend, plan_id)[sid]
        return "{}"

    def list_tags(self):
        arn = unquote(self.path.split("?")[0].split("/tags/", 1)[1].rstrip("/"))
        return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=arn)})

    BackupResponse.list_tags = list_tags
    BackupBackend.create_backup_plan = create_backup_plan
    BackupBackend.delete_backup_plan = delete_backup_plan
    BackupBackend.iter_tagged_resources = iter_tagged_resources
    BackupResponse.update_backup_plan = update_backup_plan
    BackupResponse.create_backup_selection = create_backup_selection
    BackupResponse.get_backup_selection = get_backup_selection
    BackupResponse.list_backup_selections = list_backup_selections
    BackupResponse.delete_backup_selection = delete_backup_selection


# family → (exit code, container reason) of the one-off tasks RunTask
# starts: POST /moto-api/converge/task-exit.
TASK_EXITS = {}


def fix_ecs_run_task():
    """One-off tasks stop by their first DescribeTasks, with the exit code
    a test set for their family (TASK_EXITS; 0 otherwise)."""
    from moto.ecs import models

    backend = models.EC2ContainerServiceBackend
    original_run = backend.run_task
    original_describe = backend.describe_tasks

    def run_task(self, *args, **kwargs):
        tasks = original_run(self, *args, **kwargs)
        for task in tasks:
            task.converge_one_off = True
        return tasks

    def finish(task):
        family = task.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        code, reason = TASK_EXITS.get(family, (0, None))
        task.status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stop_code = "EssentialContainerExited"
        task.stopped_reason = "Essential container in task exited"
        for container in task.containers:
            container.last_status = "STOPPED"
            container.exitCode = code
            container.exit_code = code
            if reason:
                container.reason = reason

    def describe_tasks(self, cluster_str, tasks):
        found = original_describe(self, cluster_str, tasks)
        for task in found:
            if getattr(task, "converge_one_off", False) and task.status != "STOPPED":
                finish(task)
        return found

    # A Fargate task's size is the task definition's; its containers need
    # no memory of their own (ECS Developer Guide, Fargate task
    # definitions). moto 5.2.5's RunTask adds None to an int for such a
    # container and answers 500: it counts as 0 here.
    from types import SimpleNamespace

    original_requirements = backend._calculate_task_resource_requirements
    sized = ("memory", "Memory", "memoryReservation", "MemoryReservation")

    def requirements(task_definition):
        containers = [
            c if any(c.get(k) is not None for k in sized) else dict(c, memory=0)
            for c in task_definition.container_definitions
        ]
        return original_requirements(SimpleNamespace(container_definitions=containers))

    backend.run_task = run_task
    backend.describe_tasks = describe_tasks
    backend._calculate_task_resource_requirements = staticmethod(requirements)


def set_task_exit(environ, start_response):
    """POST /moto-api/converge/task-exit: how a family's one-off tasks end."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    if body.get("exit_code") is None:
        TASK_EXITS.pop(body["family"], None)
    else:
        TASK_EXITS[body["family"]] = (int(body["exit_code"]), body.get("reason"))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b"{}"]


def fix_ecr_scan_on_push():
    """ECR PutImageScanningConfiguration with `scanOnPush` false turns
    scanning off. The AWS SDKs leave a boolean member out of the request
    when it is false (its default), so the configuration arrives as `{}`;
    moto 5.2.5 takes an empty configuration for no change at all and leaves
    scanning on. ECR reads the missing member as false."""
    from moto.ecr.models import Repository

    def update(self, image_scanning_configuration):
        if image_scanning_configuration is not None:
            self.image_scanning_configuration = {"scanOnPush": bool(image_scanning_configuration.get("scanOnPush", False))}

    Repository._update_image_scanning_configuration = update


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


def form_of(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"))


CONDITIONAL_WRITES = threading.Lock()


def create_bucket_with_tags(environ, app, start_response):
    """CreateBucket, then the tags its configuration carries (see the docstring)."""
    import xml.etree.ElementTree as ET

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    tags = {}
    if body.strip():
        try:
            root = ET.fromstring(body)
            for tag in root.iter():
                if tag.tag.endswith("}Tag") or tag.tag == "Tag":
                    key = next((c.text for c in tag if c.tag.endswith("Key")), None)
                    value = next((c.text or "" for c in tag if c.tag.endswith("Value")), "")
                    if key is not None:
                        tags[key] = value
        except ET.ParseError:
            pass
    status = {}

    def capture(s, headers, exc_info=None):
        status["code"] = s
        return start_response(s, headers, exc_info)

    out = list(app(environ, capture))
    if tags and status.get("code", "").startswith("200"):
        bucket = environ.get("PATH_INFO", "").strip("/")
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_bucket_tagging(bucket, tags)
    return out


class Faults:
    """Seeded fault injection for one access key (see the docstring)."""

    KINDS = ("throttle", "5xx", "reset", "drop")

    def __init__(self, spec, seed, key):
        import random

        self.rates = {k: 0.0 for k in self.KINDS}
        for part in filter(None, (spec or "").split(",")):
            name, rate = part.split("=")
            if name not in self.rates:
                raise SystemExit(f"--faults: unknown fault {name!r}; expected {', '.join(self.KINDS)}")
            self.rates[name] = float(rate)
        self.seed = seed
        self.key = key
        self.lock = threading.Lock()
        self.seen = {}

    def pick(self, environ, service, op):
        """The fault for this request, or None. The roll depends on the seed,
        the operation and how many of it came before, not on how concurrent
        requests of different operations interleave: a seed replays."""
        import random

        if not any(self.rates.values()):
            return None
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if self.key and f"Credential={self.key}/" not in auth:
            return None
        with self.lock:
            n = self.seen.get((service, op), 0)
            self.seen[(service, op)] = n + 1
        roll = random.Random(f"{self.seed}:{service}:{op}:{n}").random()
        for name in self.KINDS:
            if roll < self.rates[name]:
                return name
            roll -= self.rates[name]
        return None


def error_reply(start_response, service, status, code, message):
    """An error as `service`'s protocol sends it."""
    headers = [("x-amzn-RequestId", "converge-fault")]
    if service == "ec2":
        body = (
            f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></Errors><RequestID>converge-fault</RequestID></Response>"
        )
        ctype = "text/xml"
    elif service == "s3":
        body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>converge-fault</RequestId></Error>"
        ctype = "application/xml"
    elif service == "elasticfilesystem":
        body = json.dumps({"ErrorCode": code, "Message": message})
        ctype = "application/json"
        headers.append(("x-amzn-ErrorType", code))
    elif service == "secretsmanager":
        body = json.dumps({"__type": code, "message": message})
        ctype = "application/x-amz-json-1.1"
    elif service == "monitoring":
        # CloudWatch: JSON 1.0 here; cbor_bridge makes it the CBOR envelope.
        body = json.dumps({"__type": code, "message": message})
        ctype = "application/x-amz-json-1.0"
    elif service == "backup":
        # REST-JSON: the code in x-amzn-ErrorType, the message in the body.
        body = json.dumps({"message": message})
        ctype = "application/json"
        headers.append(("x-amzn-ErrorType", code))
    else:
        kind = "Receiver" if status.startswith("5") else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>converge-fault</RequestId></ErrorResponse>"
        )
        ctype = "text/xml"
    data = body.encode()
    start_response(status, headers + [("Content-Type", ctype), ("Content-Length", str(len(data)))])
    return [data]


THROTTLE = {
    "ec2": ("503 Service Unavailable", "RequestLimitExceeded", "Request limit exceeded."),
    "s3": ("503 Slow Down", "SlowDown", "Please reduce your request rate."),
    "elasticfilesystem": ("429 Too Many Requests", "ThrottlingException", "Rate exceeded"),
    "secretsmanager": ("400 Bad Request", "ThrottlingException", "Rate exceeded"),
}
INTERNAL = {
    "ec2": ("500 Internal Server Error", "InternalError", "An internal error has occurred"),
    "s3": ("500 Internal Server Error", "InternalError", "We encountered an internal error. Please try again."),
    "elasticfilesystem": ("500 Internal Server Error", "InternalServerError", "Internal failure"),
    "secretsmanager": ("500 Internal Server Error", "InternalServiceError", "Internal failure"),
}


def reset(environ):
    """Resets the client's connection (TCP RST), so no response arrives."""
    import socket
    import struct

    sock = environ.get("converge.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SocketRequestHandler(MotoRequestHandler):
    """Puts the connection in the WSGI environ, for --faults reset/drop."""

    def make_environ(self):
        environ = super().make_environ()
        environ["converge.socket"] = self.connection
        return environ


def is_conditional_s3_write(environ, service):
    return (
        service == "s3"
        and environ["REQUEST_METHOD"] in ("PUT", "DELETE")
        and ("HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ)
    )


class Observer:
    def __init__(self, app, log_path, delay_ms, faults=None):
        self.app = app
        self.log = open(log_path, "a", buffering=1) if log_path else None
        self.delay = delay_ms / 1000.0
        self.lock = threading.Lock()
        self.faults = faults

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/moto-api/converge/task-exit":
            return set_task_exit(environ, start_response)
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            service, op, mutating = classify(environ)
            fault = self.faults.pick(environ, service, op) if self.faults else None
            if self.log:
                entry = {"service": service, "operation": op, "mutating": mutating, "t": time.time()}
                if fault:
                    entry["fault"] = fault
                if service == "autoscaling":
                    form = form_of(environ)
                    names = form.get("AutoScalingGroupName") or form.get("AutoScalingGroupNames.member.1") or [None]
                    entry["group"] = names[0]
                line = json.dumps(entry)
                with self.lock:
                    self.log.write(line + "\n")
            if fault == "throttle":
                status, code, message = THROTTLE.get(service, ("400 Bad Request", "Throttling", "Rate exceeded"))
                return error_reply(start_response, service, status, code, message)
            if fault == "5xx":
                status, code, message = INTERNAL.get(service, ("500 Internal Server Error", "InternalFailure", "Internal failure"))
                return error_reply(start_response, service, status, code, message)
            if fault == "reset":
                reset(environ)
                return []
            if fault == "drop":
                # moto runs the request; the response never arrives.
                def swallow(status, headers, exc_info=None):
                    return lambda data: None

                list(self.dispatch(environ, swallow, service, op, mutating))
                reset(environ)
                return []
            return self.dispatch(environ, start_response, service, op, mutating)
        return fix_root(environ, self.app, start_response)

    def dispatch(self, environ, start_response, service, op, mutating):
        """moto, with the harness's fixes and additions."""
        if mutating and self.delay:
            time.sleep(self.delay)
        missing = MISSING.get((service, op))
        if missing:
            return missing(environ, form_of(environ), start_response)
        finish = FINISH.get((service, op))
        if finish:
            return finish(environ, form_of(environ), self.app, start_response)
        path = environ.get("PATH_INFO", "").strip("/")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        creates_bucket = set(query) <= {"x-id"} and query.get("x-id", ["CreateBucket"]) == ["CreateBucket"]
        if service == "s3" and environ["REQUEST_METHOD"] == "PUT" and path and "/" not in path and creates_bucket:
            return create_bucket_with_tags(environ, self.app, start_response)
        if is_conditional_s3_write(environ, service):
            with CONDITIONAL_WRITES:
                return list(fix_root(environ, self.app, start_response))
        return fix_root(environ, self.app, start_response)

# (name, creation date) of the account's own AMIs.
SEED_AMIS = [
    ("gitlab-ee-18.5.1-20261001", "2026-10-01T08:00:00"),
    ("gitlab-ee-18.5.1-20261115", "2026-11-15T08:00:00"),
    ("gitlab-ee-18.4.3-20261120", "2026-11-20T08:00:00"),
    ("gitlab-runner-20261101", "2026-11-01T08:00:00"),
]


def seed_amis(region):
    import datetime

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
    for name, date in SEED_AMIS:
        ami = backend.register_image(name=name, description=f"{name} (built for this account)")
        ami.creation_date = datetime.datetime.fromisoformat(date)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--delay-mutations-ms", type=int, default=0)
    ap.add_argument("--watch-stdin", action="store_true")
    ap.add_argument("--acm-certificate-file")
    ap.add_argument("--region", default="eu-west-1")
    ap.add_argument("--asg-warmup-seconds", type=float, default=0.0)
    ap.add_argument("--rds-create-seconds", type=float, default=0.0)
    ap.add_argument("--latency-scale", type=float, default=0.0)
    ap.add_argument("--faults", help="e.g. throttle=0.10,5xx=0.05,reset=0.03,drop=0.03")
    ap.add_argument("--fault-seed", type=int, default=1)
    ap.add_argument("--fault-key", help="fault only requests signed with this access key id")
    args = ap.parse_args()

    global WARMUP
    WARMUP = args.asg_warmup_seconds
    if WARMUP:
        slow_instance_start(WARMUP)

    if args.rds_create_seconds:
        slow_db_create(args.rds_create_seconds)
    if args.latency_scale:
        aws_latency(args.latency_scale)
    fix_num_cache_clusters()
    fix_launch_template_user_data()
    fix_elbv2_idempotency()
    widen_elasticache_arns()
    fix_tagging_api()
    fix_list_instance_profiles()
    fix_ec2_tag_lookup()
    fix_ecs_deployments()
    fix_ecr_scan_on_push()
    add_logs_kms_calls()
    add_backup_calls()
    fix_cloudwatch_delete_alarms()
    fix_ecs_run_task()
    if args.acm_certificate_file:
        from moto.acm.models import acm_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        arn = acm_backends[DEFAULT_ACCOUNT_ID][args.region].request_certificate(
            domain_name="gitlab.example.internal", idempotency_token=None, subject_alt_names=[], tags=[]
        )
        with open(args.acm_certificate_file, "w") as f:
            f.write(arn)
    seed_amis(args.region)
    faults = Faults(args.faults, args.fault_seed, args.fault_key) if args.faults else None
    app = Observer(DomainDispatcherApplication(create_backend_app), args.log, args.delay_mutations_ms, faults)
    app = Bridge(app)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=SocketRequestHandler)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    else:
        print(port, flush=True)

    if args.watch_stdin:
        def watch():
            while sys.stdin.read(1024):
                pass
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
