#!/usr/bin/env python3
"""moto server for converge's tests and demo, on a free loopback port.

This is moto's own WSGI application (the one `moto_server` runs) behind a
small middleware that only observes:

- every request is logged as one JSON line to --log: the AWS service, the
  operation and whether it mutates. Tests count converge's AWS calls from
  this log, independently of converge.
- --delay-mutations-ms N sleeps before each mutating request, so a test can
  kill converge in the middle of an apply; with --delay-key KEY, only the
  requests signed with that access key id wait, so a test's own requests
  can overtake converge's (a race made on purpose).

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

Secrets Manager CreateSecret of a name scheduled for deletion fails with
InvalidRequestException, as on AWS (moto 5.2.5 answers ResourceExistsException,
or hands the deleted secret back).

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
botocore 1.44), which moto 5.2.5 cannot parse: emulator/cbor_bridge.py
translates each CBOR request to the AWS JSON 1.0 moto answers, and
the answer back to CBOR, typed by botocore's model of the service (its
docstring says how). CloudWatch DeleteAlarms removes the alarms' tags, as
CloudWatch does: moto keeps them, and an alarm made again under the name
came back with the deleted one's tags (and so its owner).

The code is the package emulator/ beside this file: one module per
service's fixes (ec2, s3, elasticache, autoscaling, elbv2, iam, ecs, ecr,
logs, backup, cloudwatch, secretsmanager, tagging), the request log and routing
(observer, wire, routes), --faults (faults), the slow creates (timing),
and the CBOR bridge (cbor_bridge). This file is the launcher.

It binds 127.0.0.1 on a free port and writes the port to --port-file. With
--watch-stdin it exits when its stdin closes, so a test process that dies
cannot leave a server behind.
"""

import argparse
import os
import sys
import threading

# AWS's managed policies (AmazonSSMManagedInstanceCore …) exist in every
# account; moto loads them only when asked, before it is imported.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from emulator import autoscaling
from emulator.backup import add_backup_calls
from emulator.cbor_bridge import Bridge
from emulator.cloudwatch import fix_cloudwatch_delete_alarms
from emulator.ec2 import fix_ec2_tag_lookup, fix_launch_template_user_data, seed_amis
from emulator.ecr import fix_ecr_scan_on_push
from emulator.ecs import fix_ecs_deployments, fix_ecs_run_task
from emulator.elasticache import fix_num_cache_clusters, widen_elasticache_arns
from emulator.elbv2 import fix_elbv2_idempotency
from emulator.faults import Faults
from emulator.iam import fix_list_instance_profiles
from emulator.logs import add_logs_kms_calls
from emulator.secretsmanager import fix_create_over_deleted_secret
from emulator.observer import Observer, SocketRequestHandler
from emulator.tagging import fix_tagging_api
from emulator.timing import aws_latency, slow_db_create, slow_instance_start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--delay-mutations-ms", type=int, default=0)
    ap.add_argument("--delay-key", help="delay only requests signed with this access key id")
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

    autoscaling.WARMUP = args.asg_warmup_seconds
    if autoscaling.WARMUP:
        slow_instance_start(autoscaling.WARMUP)

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
    fix_create_over_deleted_secret()
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
    app = Observer(DomainDispatcherApplication(create_backend_app), args.log, args.delay_mutations_ms, faults, args.delay_key)
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
