"""What a request is: its service, operation and form, as the log records it."""

import io
import urllib.parse


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


def region_of(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return auth.split("Credential=", 1)[1].split("/")[2] if "Credential=" in auth else "us-east-1"


def members(form, prefix, fields):
    """[{field: value}] of a Query-protocol list: `Prefix.Member.N.Field`."""
    import re

    found = {}
    for key, values in form.items():
        m = re.match(re.escape(prefix) + r"\.[^.]+\.(\d+)\.(\w+)$", key)
        if m and m.group(2) in fields:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = values[0]
    return [found[i] for i in sorted(found)]


def form_of(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"))
