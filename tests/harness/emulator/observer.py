"""The middleware in front of moto: it logs every request, injects faults, and routes to the fixes."""

import json
import threading
import time
import urllib.parse

from moto.moto_server.werkzeug_app import MotoRequestHandler

from .ecs import set_task_exit
from .faults import INTERNAL, THROTTLE, error_reply, reset
from .routes import FINISH, MISSING
from .s3 import CONDITIONAL_WRITES, create_bucket_with_tags, fix_root, is_conditional_s3_write
from .wire import classify, form_of


class SocketRequestHandler(MotoRequestHandler):
    """Puts the connection in the WSGI environ, for --faults reset/drop."""

    def make_environ(self):
        environ = super().make_environ()
        environ["converge.socket"] = self.connection
        return environ


class Observer:
    def __init__(self, app, log_path, delay_ms, faults=None, delay_key=None):
        self.app = app
        self.log = open(log_path, "a", buffering=1) if log_path else None
        self.delay = delay_ms / 1000.0
        self.delay_key = delay_key
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
        signed_by_key = not self.delay_key or f"Credential={self.delay_key}/" in environ.get("HTTP_AUTHORIZATION", "")
        if mutating and self.delay and signed_by_key:
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
