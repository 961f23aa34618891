"""EC2: security groups in use, launch template user data, tag lookups by id, and the account's own AMIs."""


from .wire import region_of


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
