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

It completes ElastiCache DeleteReplicationGroup: moto marks the group
`deleting` and keeps it forever, where ElastiCache removes it once deleted;
here the removal happens as soon as moto has accepted the delete (moto's
other services delete at once too), so waiters see the final state.

And it implements calls moto 5.2.5 lacks (it answers NotImplemented),
faithfully, on moto's own backends; converge sends the real calls:
- ElastiCache DeleteCacheSubnetGroup: the group is removed; one still used
  by a replication group answers CacheSubnetGroupInUse, an unknown one
  CacheSubnetGroupNotFoundFault, as the ElastiCache API reference documents.
- Auto Scaling StartInstanceRefresh and DescribeInstanceRefreshes: a refresh
  of an existing group is recorded with its preferences and reported
  Successful (moto runs no instances to replace); an unknown group answers
  ValidationError.

--acm-certificate-file PATH requests a certificate from moto's own ACM (an
HTTPS listener needs one that exists) and writes its ARN there, for
`CONVERGE_VAR_certificate_arn`.

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

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

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

    body = list(app(environ, capture))
    if status.get("code", "").startswith("200"):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        region = auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"
        backend = elasticache_backends[DEFAULT_ACCOUNT_ID][region]
        backend.replication_groups.pop((form.get("ReplicationGroupId") or [""])[0], None)
    return body


# Calls moto answers but does not finish, by (service, action).
FINISH = {("elasticache", "DeleteReplicationGroup"): finish_replication_group_delete}

AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
REFRESHES = {}  # group name -> [refresh]


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
    }
    REFRESHES.setdefault(name, []).insert(0, refresh)
    return autoscaling_reply(start_response, "StartInstanceRefresh", f"<InstanceRefreshId>{refresh['id']}</InstanceRefreshId>")


def describe_instance_refreshes(environ, form, start_response):
    name = (form.get("AutoScalingGroupName") or [""])[0]
    members = "".join(
        "<member>"
        f"<InstanceRefreshId>{r['id']}</InstanceRefreshId><AutoScalingGroupName>{name}</AutoScalingGroupName>"
        "<Status>Successful</Status><PercentageComplete>100</PercentageComplete>"
        f"<Preferences><MinHealthyPercentage>{r['min_healthy']}</MinHealthyPercentage>"
        + (f"<InstanceWarmup>{r['warmup']}</InstanceWarmup>" if r["warmup"] else "")
        + "</Preferences></member>"
        for r in REFRESHES.get(name, [])
    )
    return autoscaling_reply(start_response, "DescribeInstanceRefreshes", f"<InstanceRefreshes>{members}</InstanceRefreshes>")


# Calls moto lacks, by (service, action).
MISSING = {
    ("elasticache", "DeleteCacheSubnetGroup"): delete_cache_subnet_group,
    ("autoscaling", "StartInstanceRefresh"): start_instance_refresh,
    ("autoscaling", "DescribeInstanceRefreshes"): describe_instance_refreshes,
}


def form_of(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"))


class Observer:
    def __init__(self, app, log_path, delay_ms):
        self.app = app
        self.log = open(log_path, "a", buffering=1) if log_path else None
        self.delay = delay_ms / 1000.0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            service, op, mutating = classify(environ)
            if self.log:
                line = json.dumps({"service": service, "operation": op, "mutating": mutating})
                with self.lock:
                    self.log.write(line + "\n")
            if mutating and self.delay:
                time.sleep(self.delay)
            missing = MISSING.get((service, op))
            if missing:
                return missing(environ, form_of(environ), start_response)
            finish = FINISH.get((service, op))
            if finish:
                return finish(environ, form_of(environ), self.app, start_response)
        return fix_root(environ, self.app, start_response)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--delay-mutations-ms", type=int, default=0)
    ap.add_argument("--watch-stdin", action="store_true")
    ap.add_argument("--acm-certificate-file")
    ap.add_argument("--region", default="eu-west-1")
    args = ap.parse_args()

    fix_num_cache_clusters()
    if args.acm_certificate_file:
        from moto.acm.models import acm_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        arn = acm_backends[DEFAULT_ACCOUNT_ID][args.region].request_certificate(
            domain_name="gitlab.example.internal", idempotency_token=None, subject_alt_names=[], tags=[]
        )
        with open(args.acm_certificate_file, "w") as f:
            f.write(arn)
    app = Observer(DomainDispatcherApplication(create_backend_app), args.log, args.delay_mutations_ms)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
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
