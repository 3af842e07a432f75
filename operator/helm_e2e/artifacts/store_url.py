"""The artifact store's one URL setting and its object keys, checked before anything touches storage (pure).

Accepted URLs:
- `file:///var/lib/helm-e2e` or a plain absolute path `/var/lib/helm-e2e`: a local directory (a volume);
- `s3://bucket/prefix?endpoint=http://host:port&region=us-east-1`: any S3-compatible server. `endpoint` and
  `region` are the only query parameters; without `endpoint` it is AWS itself. Credentials never come from
  the URL (a URL with `user:password@` is refused): the S3 client reads the standard AWS_ACCESS_KEY_ID /
  AWS_SECRET_ACCESS_KEY (or the pod's web identity) from the environment, so the chart feeds them from a
  Secret.

Keys are '/'-separated relative paths made of conservative characters only, so one key means the same object
on a filesystem and on every S3 implementation: no '..', '.', empty or absolute segments, no '#', '%', '+',
spaces or control characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, unquote, urlsplit

from helm_e2e.errors import StoreError

MAX_KEY_LENGTH = 1024  # S3's own limit on a key (bytes; keys here are ASCII)
MAX_KEY_DEPTH = 16
_SEGMENT = re.compile(r"[A-Za-z0-9._~=@,-]{1,255}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9-]{1,32}")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]{2,45}")  # a name, IPv4 or IPv6 (urlsplit unbrackets)
_S3_PARAMETERS = frozenset({"endpoint", "region"})


@dataclass(frozen=True, kw_only=True)
class LocalLocation:
    """A directory on the operator's filesystem (the chart's PVC, or a local directory)."""

    path: str

    @property
    def description(self) -> str:
        return f"file:{self.path}"


@dataclass(frozen=True, kw_only=True)
class S3Location:
    """A bucket and prefix on an S3-compatible server; endpoint empty = AWS."""

    bucket: str
    prefix: str
    endpoint: str = ""
    region: str = ""

    @property
    def description(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def _invalid_key(what: str) -> StoreError:
    return StoreError(f"invalid artifact key: {what}", reason="InvalidKey")


def check_key(key: str) -> str:
    """The key itself if it is a valid relative object key; StoreError(reason=InvalidKey) otherwise."""
    if not key:
        raise _invalid_key("empty")
    if len(key) > MAX_KEY_LENGTH:
        raise _invalid_key(f"longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise _invalid_key("absolute (starts with '/')")
    segments = key.split("/")
    if len(segments) > MAX_KEY_DEPTH:
        raise _invalid_key(f"more than {MAX_KEY_DEPTH} segments")
    for segment in segments:
        if not segment:
            raise _invalid_key("empty segment ('//' or a trailing '/')")
        if segment in {".", ".."}:
            raise _invalid_key(f"'{segment}' segment")
        if not _SEGMENT.fullmatch(segment):
            raise _invalid_key("characters other than letters, digits and . _ ~ = @ , -")
    return key


def check_prefix(prefix: str, *, allow_empty: bool) -> str:
    """A key prefix (whole segments; a trailing '/' is dropped). Empty means everything, if allowed."""
    stripped = prefix[:-1] if prefix.endswith("/") else prefix
    if not stripped:
        if allow_empty:
            return ""
        raise _invalid_key("empty prefix (refusing to address the whole store)")
    return check_key(stripped)


def _invalid_url(what: str) -> StoreError:
    return StoreError(f"invalid artifact store URL: {what}", reason="InvalidUrl")


def _local(path: str) -> LocalLocation:
    if not path.startswith("/"):
        raise _invalid_url("a local store needs an absolute path")
    if any(part in {".", ".."} for part in path.split("/")) or "\x00" in path:
        raise _invalid_url("the path contains '.' or '..' segments or a NUL")
    return LocalLocation(path=str(PurePosixPath(path)))


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"}:
        raise _invalid_url("endpoint must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise _invalid_url(
            "endpoint must not carry credentials (use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise _invalid_url("endpoint port is not a valid port number") from None
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        raise _invalid_url("endpoint needs a host name")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise _invalid_url("endpoint must be scheme://host[:port] only")
    return f"{parts.scheme}://{parts.netloc}"


def _s3(url: str) -> S3Location:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise _invalid_url("credentials in the URL are refused (use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    if not _BUCKET.fullmatch(parts.netloc):
        raise _invalid_url("s3:// needs a bucket name (3-63 of a-z 0-9 . -)")
    if parts.fragment:
        raise _invalid_url("fragment not allowed")
    prefix = check_prefix(unquote(parts.path.lstrip("/")), allow_empty=True) if parts.path else ""
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, max_num_fields=len(_S3_PARAMETERS)):
        if name not in _S3_PARAMETERS:
            raise _invalid_url(f"unknown query parameter {name[:40]!r} (known: endpoint, region)")
        if name in params:
            raise _invalid_url(f"query parameter {name} given twice")
        params[name] = value
    region = params.get("region", "")
    if region and not _REGION.fullmatch(region):
        raise _invalid_url("region must be a-z 0-9 -")
    endpoint = _endpoint(params["endpoint"]) if "endpoint" in params else ""
    return S3Location(bucket=parts.netloc, prefix=prefix, endpoint=endpoint, region=region)


def parse_store_url(url: str) -> LocalLocation | S3Location:
    """The location `url` names; StoreError(reason=InvalidUrl) for anything else. Never echoes the URL."""
    url = url.strip()
    if len(url) > 2048:
        raise _invalid_url("longer than 2048 characters")
    if url.startswith("/"):
        return _local(url)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in {"", "localhost"}:
            raise _invalid_url("file:// URLs name a local path (file:///path)")
        if parts.query or parts.fragment:
            raise _invalid_url("file:// URLs take no query or fragment")
        return _local(unquote(parts.path))
    if scheme == "s3":
        try:
            return _s3(url)
        except ValueError:  # parse_qsl's max_num_fields, a malformed port
            raise _invalid_url("malformed s3:// URL") from None
    raise _invalid_url("expected file:///path, an absolute path or s3://bucket/prefix")
