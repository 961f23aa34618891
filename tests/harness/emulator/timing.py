"""Nothing is instant on AWS: instance starts, DB creates and --latency-scale."""

import time


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
