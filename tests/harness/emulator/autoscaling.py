"""Auto Scaling: instance refreshes, which moto lacks."""

import time

from .wire import members, region_of


AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


REFRESHES = {}  # group name -> [refresh]


WARMUP = 0.0  # --asg-warmup-seconds


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
