"""--faults: seeded throttling, 5xx, resets and lost responses, each in its service's wire protocol."""

import json
import threading


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
