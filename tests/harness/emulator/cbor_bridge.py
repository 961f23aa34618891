"""Smithy RPC v2 CBOR in front of moto, which speaks only JSON and Query.

CloudWatch's current API (and so the AWS SDK for Rust's aws-sdk-cloudwatch)
uses the Smithy RPC v2 CBOR protocol: POST /service/{Service}/operation/{Op}
with `smithy-protocol: rpc-v2-cbor` and a CBOR body (RFC 8949). moto 5.2.5
cannot parse it; it answers CloudWatch in AWS JSON 1.0, which the same
service model lists among its protocols (`protocols: [smithy-rpc-v2-cbor,
json, query]`). This middleware translates, and nothing else:

- the request: the CBOR body is decoded to JSON (timestamps, CBOR tag 1, are
  epoch seconds in both; byte strings become base64, as JSON sends blobs),
  and the call is addressed as JSON is: POST / with
  `X-Amz-Target: {targetPrefix}.{Op}`;
- the response: moto's JSON is encoded back to CBOR along the operation's
  output shape from botocore's model of the service, because CBOR is typed
  where JSON is not: a timestamp is tag 1 around epoch seconds, a double a
  float, a blob a byte string. The Rust SDK checks those types. Errors keep
  their status; their `__type` and `message` become the CBOR error envelope
  the protocol specifies, and `x-amzn-query-error` (awsQueryCompatible)
  passes through.

Request and response semantics are moto's own, unchanged.
"""

import base64
import datetime
import io
import json
import re
import struct

ROUTE = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")

_models = {}  # target prefix -> botocore ServiceModel


def service_model(prefix):
    """botocore's model of the CBOR service whose target prefix is `prefix`."""
    if prefix not in _models:
        import botocore.session

        session = botocore.session.get_session()
        for name in ("cloudwatch",):
            model = session.get_service_model(name)
            if model.metadata.get("targetPrefix") == prefix:
                _models[prefix] = model
        _models.setdefault(prefix, None)
    return _models[prefix]


# --- decoding (RFC 8949), generic: the JSON side needs no shapes ---------


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated CBOR")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def argument(self, info):
        if info < 24:
            return info
        if info == 24:
            return self.take(1)[0]
        if info == 25:
            return struct.unpack(">H", self.take(2))[0]
        if info == 26:
            return struct.unpack(">I", self.take(4))[0]
        if info == 27:
            return struct.unpack(">Q", self.take(8))[0]
        if info == 31:
            return None  # indefinite length
        raise ValueError(f"bad CBOR additional info {info}")

    def item(self):
        first = self.take(1)[0]
        major, info = first >> 5, first & 31
        if major == 7:
            if info == 20:
                return False
            if info == 21:
                return True
            if info in (22, 23):
                return None
            if info == 25:
                return _half(self.take(2))
            if info == 26:
                return struct.unpack(">f", self.take(4))[0]
            if info == 27:
                return struct.unpack(">d", self.take(8))[0]
            if info == 31:
                return _BREAK
            raise ValueError(f"unsupported CBOR simple value {info}")
        n = self.argument(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major in (2, 3):
            if n is None:
                chunks = []
                while (c := self.item()) is not _BREAK:
                    chunks.append(c)
                raw = (b"" if major == 2 else "").join(chunks)
                return raw
            raw = self.take(n)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            if n is None:
                out = []
                while (v := self.item()) is not _BREAK:
                    out.append(v)
                return out
            return [self.item() for _ in range(n)]
        if major == 5:
            out = {}
            while True:
                if n is None:
                    k = self.item()
                    if k is _BREAK:
                        return out
                elif len(out) == n:
                    return out
                else:
                    k = self.item()
                out[k] = self.item()
        if major == 6:
            return self.item()  # tag 1 (epoch time) and others: the value
        raise ValueError(f"bad CBOR major type {major}")


_BREAK = object()


def _half(b):
    h = struct.unpack(">H", b)[0]
    sign = -1.0 if h & 0x8000 else 1.0
    exp, frac = (h >> 10) & 0x1F, h & 0x3FF
    if exp == 0:
        return sign * frac * 2.0**-24
    if exp == 31:
        return sign * (float("inf") if frac == 0 else float("nan"))
    return sign * (1 + frac / 1024.0) * 2.0 ** (exp - 15)


def decode(data):
    return _Reader(data).item()


def _jsonable(v):
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


# --- encoding, along a botocore shape -----------------------------------


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt, limit in ((24, ">B", 0xFF), (25, ">H", 0xFFFF), (26, ">I", 0xFFFFFFFF)):
        if n <= limit:
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


def _epoch(v):
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    return datetime.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()


def encode(v, shape=None):
    """CBOR of a JSON value; typed by `shape` (botocore) where one is known."""
    t = shape.type_name if shape is not None else None
    if v is None:
        return b"\xf6"
    if t == "timestamp":
        return b"\xc1" + encode(float(_epoch(v)))
    if t == "blob":
        raw = base64.b64decode(v) if isinstance(v, str) else bytes(v)
        return _head(2, len(raw)) + raw
    if t in ("double", "float"):
        return b"\xfb" + struct.pack(">d", float(v))
    if t in ("integer", "long", "short", "byte"):
        v = int(v)
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        raw = v.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(v, list):
        member = shape.member if t == "list" else None
        return _head(4, len(v)) + b"".join(encode(x, member) for x in v)
    if isinstance(v, dict):
        if t == "structure":
            members = shape.members
            items = [(k, x, members[k]) for k, x in v.items() if k in members and x is not None]
        elif t == "map":
            items = [(k, x, shape.value) for k, x in v.items()]
        else:
            items = [(k, x, None) for k, x in v.items()]
        return _head(5, len(items)) + b"".join(encode(str(k)) + encode(x, s) for k, x, s in items)
    raise TypeError(f"cannot encode {type(v).__name__} as CBOR")


class Bridge:
    """WSGI middleware: RPC v2 CBOR requests reach `app` as AWS JSON 1.0."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        m = ROUTE.match(environ.get("PATH_INFO", ""))
        if not m or environ.get("HTTP_SMITHY_PROTOCOL", "").lower() != "rpc-v2-cbor":
            return self.app(environ, start_response)
        prefix, op = m.groups()
        model = service_model(prefix)
        if model is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.dumps(_jsonable(decode(raw)) if raw else {}).encode()
        environ["PATH_INFO"] = "/"
        environ["CONTENT_TYPE"] = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["HTTP_X_AMZ_TARGET"] = f"{prefix}.{op}"
        environ["wsgi.input"] = io.BytesIO(body)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        out = b"".join(self.app(environ, capture))
        if "status" not in captured:
            return []  # the connection was reset (--faults)
        status = captured["status"]
        value = json.loads(out) if out.strip() else {}
        if int(status.split()[0]) >= 300:
            code = value.get("__type") or value.get("code") or "InternalFailure"
            message = value.get("message") or value.get("Message") or ""
            data = encode({"__type": code, "message": message})
        else:
            output = model.operation_model(op).output_shape
            data = encode(value, output) if output is not None else encode({})
        skip = {"content-type", "content-length", "x-amz-crc32"}
        headers = [(k, v) for k, v in captured["headers"] if k.lower() not in skip]
        headers += [
            ("Content-Type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(data))),
        ]
        start_response(status, headers)
        return [data]
