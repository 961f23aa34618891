"""S3: the root element of GetBucketVersioning, CreateBucket with its tags, atomic conditional writes."""

import io
import threading
import urllib.parse


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


def is_conditional_s3_write(environ, service):
    return (
        service == "s3"
        and environ["REQUEST_METHOD"] in ("PUT", "DELETE")
        and ("HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ)
    )
