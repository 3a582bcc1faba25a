"""The S3 target: a session published into an S3-compatible bucket (serve --publish-s3).

Standard library only (the server binary stays small: no boto3): a SigV4 signer (header
authentication for our own requests, query authentication for the presigned GET URLs the laptop
reads with), a small S3 client on ``http.client`` (a connection per thread and host, retries with
backoff on 5xx, 429, SlowDown and broken connections; multipart above a threshold), credentials and
settings read the way AWS tools read them, and :class:`S3Session`, a :class:`session.Session`
whose objects live under ``s3://bucket/prefix/<session id>/``.

How the laptop finds each object's presigned URL (the session's *index*, docs/FORMAT.md §12) is
here too, on both sides: :func:`index_body` writes it, :class:`IndexUrls` reads it (synco's
``fetch.Remote`` uses it; it imports nothing but the standard library and ``crypto``).

Credentials never leave this module: they are not written to the session, the index or any
message. The access key id (and, with temporary credentials, the session token) is part of every
presigned URL, as in any presigned URL; the secret never is.
"""

from __future__ import annotations

import base64
import configparser
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import ssl
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LocalIOError, SyncoError, UsageError

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_PRESIGN = 7 * 86400          # SigV4 query authentication: at most 7 days
INDEX_PATH = "index"             # the session's URL index (docs/FORMAT.md §12)
INDEX_VERSION = 1
MARKER_HEADER = "x-amz-meta-synco-expires"  # "<expires> <pid> <host tag>" on the index object
SSE_ALGORITHM = "AES256"
SSE_HEADERS = ("x-amz-server-side-encryption-customer-algorithm",
               "x-amz-server-side-encryption-customer-key",
               "x-amz-server-side-encryption-customer-key-md5")
SSE_SIGNED = ";".join(("host",) + SSE_HEADERS)
# uploads: objects above MULTIPART_THRESHOLD go in parts of PART_SIZE (S3's minimum part is 5 MiB)
MULTIPART_THRESHOLD = 16 << 20
PART_SIZE = 8 << 20
UPLOADERS = 8                    # requests in flight to the store
IN_FLIGHT = 16                   # objects queued or uploading (memory: about 16 chunks)
RETRIES = int(os.environ.get("SYNCO_S3_RETRIES", "5"))  # test hook: fewer make failures fast
BACKOFF = 0.25
TIMEOUT = 60.0
RETRY_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"}


# ---------------------------------------------------------------- SigV4

def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """kSigning of SigV4 for one day (YYYYMMDD), region and service."""
    return _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode("utf-8"), date), region), service),
                 "aws4_request")


def _quote(text: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(text, safe=safe)


def canonical_query(params: dict[str, str] | list[tuple[str, str]]) -> str:
    items = params.items() if isinstance(params, dict) else params
    return "&".join(f"{k}={v}" for k, v in sorted((_quote(k), _quote(v)) for k, v in items))


def canonical_request(method: str, path: str, query: str, headers: dict[str, str],
                      signed: list[str], payload_hash: str) -> str:
    """The canonical request of SigV4; ``path`` is already URI-encoded (S3 encodes once)."""
    lines = "".join(f"{name}:{' '.join(str(headers[name]).split())}\n" for name in signed)
    return "\n".join([method, path, query, lines, ";".join(signed), payload_hash])


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope,
                      hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str = field(default="", repr=False)
    source: str = ""  # where they were read from, for messages: never the values

    def key_hint(self) -> str:
        """The access key id as messages may show it: its first and last four characters."""
        key = self.access_key
        return key if len(key) <= 8 else f"{key[:4]}...{key[-4:]}"


def sign_headers(method: str, host: str, path: str, query: str, headers: dict[str, str],
                 payload_hash: str, creds: Credentials, region: str, now: datetime.datetime,
                 service: str = "s3") -> dict[str, str]:
    """``headers`` plus x-amz-date, x-amz-content-sha256, x-amz-security-token and Authorization
    (header authentication). ``path`` URI-encoded, ``query`` canonical."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    out = {k.lower(): v for k, v in headers.items()}
    out["host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    if creds.token:
        out["x-amz-security-token"] = creds.token
    signed = sorted(out)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    canonical = canonical_request(method, path, query, out, signed, payload_hash)
    signature = hmac.new(signing_key(creds.secret_key, amz_date[:8], region, service),
                         string_to_sign(amz_date, scope, canonical).encode(),
                         hashlib.sha256).hexdigest()
    out["authorization"] = (f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
                            f"SignedHeaders={';'.join(signed)}, Signature={signature}")
    return out


def presign_query(creds: Credentials, region: str, now: datetime.datetime, expires: int,
                  signed_headers: str = "host", service: str = "s3") -> dict[str, str]:
    """The query parameters of a presigned request, all but X-Amz-Signature."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    params = {"X-Amz-Algorithm": ALGORITHM,
              "X-Amz-Credential": f"{creds.access_key}/{amz_date[:8]}/{region}/{service}/aws4_request",
              "X-Amz-Date": amz_date, "X-Amz-Expires": str(int(expires)),
              "X-Amz-SignedHeaders": signed_headers}
    if creds.token:
        params["X-Amz-Security-Token"] = creds.token
    return params


def presign_signature(method: str, host: str, path: str, params: dict[str, str],
                      headers: dict[str, str], creds: Credentials, region: str,
                      service: str = "s3") -> str:
    """X-Amz-Signature of a presigned request (query authentication, unsigned payload):
    ``params`` from :func:`presign_query`, ``headers`` the values of its signed headers but host."""
    amz_date = params["X-Amz-Date"]
    values = {"host": host, **{k.lower(): v for k, v in headers.items()}}
    signed = params["X-Amz-SignedHeaders"].split(";")
    canonical = canonical_request(method, path, canonical_query(params), values, signed, UNSIGNED)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    return hmac.new(signing_key(creds.secret_key, amz_date[:8], region, service),
                    string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- SSE-C

def sse_c_key(session_key: bytes, session_id: bytes) -> bytes:
    """The SSE-C customer key of a session: derived from the session key, so whoever can open
    the session can read it and nobody else (docs/FORMAT.md §12.4)."""
    from . import crypto

    return crypto._hkdf(session_key, None, b"synco/s3 sse-c" + session_id)


def sse_c_headers(key: bytes) -> dict[str, str]:
    return {SSE_HEADERS[0]: SSE_ALGORITHM,
            SSE_HEADERS[1]: base64.b64encode(key).decode("ascii"),
            SSE_HEADERS[2]: base64.b64encode(hashlib.md5(key).digest()).decode("ascii")}


# ---------------------------------------------------------------- the index (reader side)

class IndexError_(Exception):
    """The index or its URL is not what §12 describes."""


class IndexUrls:
    """The presigned URLs of a session published in a bucket (docs/FORMAT.md §12): the token's
    URL is the index's own presigned URL; every other object's URL is the index URL's folder,
    the object's path, the index URL's query without its signature (SignedHeaders widened to the
    SSE-C headers for SSE-C objects) and the object's signature from the index."""

    def __init__(self, index_url: str) -> None:
        parts = urllib.parse.urlsplit(index_url)
        if not parts.path.endswith("/" + INDEX_PATH) or not parts.query:
            raise IndexError_("not an index URL")
        self.index_url = index_url
        self.folder = urllib.parse.urlunsplit((parts.scheme, parts.netloc,
                                               parts.path[:-len(INDEX_PATH)], "", ""))
        self.params = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                       if k != "X-Amz-Signature"]
        names = dict(self.params)
        if names.get("X-Amz-Algorithm") != ALGORITHM or "X-Amz-Date" not in names:
            raise IndexError_("not a SigV4 presigned URL")
        self.signatures: dict[str, str] = {}
        self.sse_c = False
        self.sse_key: bytes | None = None
        try:
            start = datetime.datetime.strptime(names["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
            self.expires = (start.replace(tzinfo=datetime.timezone.utc).timestamp()
                            + int(names.get("X-Amz-Expires", "0")))
        except ValueError:
            raise IndexError_("its X-Amz-Date or X-Amz-Expires is malformed") from None

    @staticmethod
    def is_index_url(url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        return bool(parts.query) and "X-Amz-Signature=" in parts.query

    def load(self, body: bytes) -> None:
        """Take a fetched index (strictly: unknown versions and malformed entries are refused)."""
        try:
            doc = json.loads(body)
        except ValueError:
            raise IndexError_("the index is not JSON") from None
        if not isinstance(doc, dict) or doc.get("synco-s3") != INDEX_VERSION:
            raise IndexError_(f"unknown index version {doc.get('synco-s3') if isinstance(doc, dict) else None!r}")
        sigs, sse = doc.get("objects"), doc.get("sse_c")
        if not isinstance(sigs, dict) or type(sse) is not bool or set(doc) != {"synco-s3", "sse_c", "objects"}:
            raise IndexError_("malformed index")
        for path, sig in sigs.items():
            if not (re.fullmatch(r"meta|key|o/[0-9a-f]{64}", path)
                    and isinstance(sig, str) and re.fullmatch(r"[0-9a-f]{64}", sig)):
                raise IndexError_(f"malformed index entry {str(path)[:80]!r}")
        self.signatures, self.sse_c = sigs, sse

    def url(self, path: str) -> str | None:
        """The presigned URL of ``path`` (meta, key, o/<name>), or None if the index lacks it."""
        sig = self.signatures.get(path)
        if sig is None:
            return None
        params = self.params
        if self.sse_c and path != "key":
            params = [(k, SSE_SIGNED if k == "X-Amz-SignedHeaders" else v) for k, v in params]
        query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params)
        return f"{self.folder}{path}?{query}&X-Amz-Signature={sig}"

    def headers(self, path: str) -> dict[str, str]:
        """The SSE-C headers a GET of ``path`` must send (none for the key object)."""
        if not self.sse_c or path == "key":
            return {}
        if self.sse_key is None:
            raise IndexError_("the session uses SSE-C but its key is not known yet")
        return sse_c_headers(self.sse_key)


def index_body(signatures: dict[str, str], sse_c: bool) -> bytes:
    return json.dumps({"synco-s3": INDEX_VERSION, "sse_c": sse_c,
                       "objects": dict(sorted(signatures.items()))},
                      separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------- settings

@dataclass
class Settings:
    creds: Credentials | None
    region: str
    endpoint: str        # "" for AWS
    region_source: str = ""


def _profile_section(parser: configparser.ConfigParser, profile: str, config: bool):
    names = ([profile] if profile == "default" else [f"profile {profile}", profile]) if config \
        else [profile]
    for name in names:
        if parser.has_section(name):
            return parser[name]
    return None


def _read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {type(exc).__name__}",
                         hint="fix the file, or give the credentials in AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY") from None
    return parser


def load_settings(env: dict[str, str] | None = None, endpoint: str | None = None) -> Settings:
    """Credentials, region and endpoint as the AWS CLI reads them: the environment
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) first, then the profile
    (AWS_PROFILE, else ``default``) of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE,
    else ~/.aws/credentials), then of the config file (AWS_CONFIG_FILE, else ~/.aws/config).
    Region: AWS_REGION, AWS_DEFAULT_REGION, the profile's ``region``. Endpoint: ``endpoint``
    (--s3-endpoint), AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's ``endpoint_url``."""
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    cred_file = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    conf_file = Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    creds_ini = _profile_section(_read_ini(cred_file), profile, config=False)
    conf_ini = _profile_section(_read_ini(conf_file), profile, config=True)
    if env.get("AWS_PROFILE") and creds_ini is None and conf_ini is None:
        raise UsageError(f"AWS_PROFILE names profile {profile!r}, which is in neither {cred_file} "
                         f"nor {conf_file}", hint="set AWS_PROFILE to a profile of those files")
    creds = None
    if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_SECRET_ACCESS_KEY"):
        if not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
            raise UsageError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together",
                             hint="set both, or neither to use a profile of ~/.aws/credentials")
        creds = Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                            env.get("AWS_SESSION_TOKEN", ""), "the environment")
    else:
        for section, where in ((creds_ini, cred_file), (conf_ini, conf_file)):
            if section is not None and section.get("aws_access_key_id"):
                if not section.get("aws_secret_access_key"):
                    raise UsageError(f"profile {profile!r} of {where} has aws_access_key_id but "
                                     f"no aws_secret_access_key", hint=f"complete {where}")
                creds = Credentials(section["aws_access_key_id"].strip(),
                                    section["aws_secret_access_key"].strip(),
                                    (section.get("aws_session_token") or "").strip(),
                                    f"profile {profile!r} of {where}")
                break
    region, region_source = "", ""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            region, region_source = env[name].strip(), name
            break
    if not region and conf_ini is not None and conf_ini.get("region"):
        region, region_source = conf_ini["region"].strip(), f"profile {profile!r}"
    url = (endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
           or (conf_ini.get("endpoint_url") if conf_ini is not None else "") or "").strip()
    if url and not re.fullmatch(r"https?://[^/\s?#]+/?", url):
        raise UsageError(f"S3 endpoint {url!r} is not an http(s) URL of a host",
                         hint="write it like https://s3.example.net or http://127.0.0.1:9000")
    if region and not re.fullmatch(r"[a-z0-9-]{1,40}", region):
        raise UsageError(f"region {region!r} ({region_source}) is not a region name")
    return Settings(creds, region or "us-east-1", url.rstrip("/"), region_source)


def parse_s3_url(text: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` → (bucket, prefix ending in '/' or empty)."""
    match = re.fullmatch(r"s3://([^/\s]+)(/[^\s]*)?", text.strip())
    if not match:
        raise UsageError(f"--publish-s3 {text!r} is not an s3:// URL",
                         hint="write it like s3://bucket/synco/")
    bucket, prefix = match.group(1), (match.group(2) or "/").lstrip("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]", bucket):
        raise UsageError(f"--publish-s3: {bucket!r} is not a bucket name",
                         hint="bucket names are 3 to 63 lowercase letters, digits, '.', '-'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if "//" in prefix or any(p in (".", "..") for p in prefix.split("/")):
        raise UsageError(f"--publish-s3: prefix {prefix!r} has an empty, '.' or '..' part")
    return bucket, prefix


# ---------------------------------------------------------------- the client

class S3Error(Exception):
    """A request the store refused (or that never got an answer: ``status`` 0)."""

    def __init__(self, status: int, code: str, message: str, *, region: str = "",
                 what: str = "", body: bytes = b"") -> None:
        super().__init__(f"{what}: HTTP {status} {code} {message}".strip())
        self.status, self.code, self.message, self.region, self.what = (status, code, message,
                                                                         region, what)
        self.body = body


def _error_of(status: int, headers, body: bytes, what: str) -> S3Error:
    code, message, region = "", "", headers.get("x-amz-bucket-region", "") if headers else ""
    if body:
        try:
            root = ET.fromstring(body)
            code = root.findtext("Code") or ""
            message = root.findtext("Message") or ""
            region = root.findtext("Region") or region
        except ET.ParseError:
            code = "NotS3"
            message = body[:120].decode("utf-8", "replace").split("\n")[0]
    if not code:
        code = {301: "PermanentRedirect", 403: "Forbidden", 404: "NotFound"}.get(status, "")
    return S3Error(status, code, message, region=region, what=what, body=body)


class Client:
    """Signed requests to one bucket. Path-style with an endpoint (MinIO, Ceph, R2, moto),
    virtual-hosted on AWS when the bucket name is a DNS label (no dots), else path-style."""

    def __init__(self, bucket: str, settings: Settings) -> None:
        self.bucket = bucket
        self.creds = settings.creds
        self.settings = settings
        self._local = threading.local()
        self.set_region(settings.region)

    def set_region(self, region: str) -> None:
        self.region = region
        if self.settings.endpoint:
            parts = urllib.parse.urlsplit(self.settings.endpoint)
            self.scheme, self.host, self.base = parts.scheme, parts.netloc, f"/{self.bucket}/"
        elif "." not in self.bucket:
            self.scheme, self.host, self.base = ("https", f"{self.bucket}.s3.{region}.amazonaws.com",
                                                 "/")
        else:
            self.scheme, self.host, self.base = "https", f"s3.{region}.amazonaws.com", f"/{self.bucket}/"

    @property
    def endpoint_text(self) -> str:
        return f"{self.scheme}://{self.host}"

    def path(self, key: str) -> str:
        return _quote(self.base + key, safe="/-_.~")

    # ------------------------------------------------------------ transport

    def _connection(self) -> http.client.HTTPConnection:
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        where = (self.scheme, self.host)
        conn = conns.get(where)
        if conn is None:
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(self.host, timeout=TIMEOUT,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(self.host, timeout=TIMEOUT)
            conns[where] = conn
        return conn

    def _drop_connection(self) -> None:
        conns = getattr(self._local, "conns", {})
        conn = conns.pop((self.scheme, self.host), None)
        if conn is not None:
            conn.close()

    def request(self, method: str, key: str, *, query: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, body: bytes | memoryview = b"",
                what: str = "", ok: tuple[int, ...] = (200, 204, 206)) -> tuple[int, dict, bytes]:
        """One request, retried on broken connections, 5xx, 429 and SlowDown with exponential
        backoff (with jitter); any other refusal raises :class:`S3Error` at once."""
        query = query or {}
        data = memoryview(body)
        payload_hash = hashlib.sha256(data).hexdigest() if len(data) else EMPTY_SHA256
        delay = BACKOFF
        for attempt in range(RETRIES + 1):
            path, cq = self.path(key), canonical_query(query)
            signed = sign_headers(method, self.host, path, cq, dict(headers or {}), payload_hash,
                                  self.creds, self.region, datetime.datetime.now(datetime.timezone.utc))
            signed.pop("host")
            signed["content-length"] = str(len(data))
            try:
                conn = self._connection()
                conn.request(method, path + (f"?{cq}" if cq else ""), body=data, headers=signed)
                response = conn.getresponse()
                payload = response.read()
                status, got = response.status, {k.lower(): v for k, v in response.getheaders()}
                if response.will_close:
                    self._drop_connection()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                error = S3Error(0, type(exc).__name__, str(exc) or type(exc).__name__, what=what)
            else:
                if status in ok:
                    return status, got, payload
                error = _error_of(status, got, payload, what)
                if not (status >= 500 or status == 429 or error.code in RETRY_CODES):
                    raise error
            if attempt < RETRIES:
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 8.0)
        raise error

    # ------------------------------------------------------------ operations

    def list_page(self, prefix: str, *, delimiter: str = "", token: str = "",
                  max_keys: int = 1000) -> tuple[list[str], list[str], str]:
        """(keys, common prefixes, continuation token or "") of one ListObjectsV2 page."""
        query = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys)}
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        _, _, body = self.request("GET", "", query=query, what=f"list s3://{self.bucket}/{prefix}")
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise S3Error(200, "NotS3", body[:120].decode("utf-8", "replace"),
                          what=f"list s3://{self.bucket}/{prefix}") from None
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        if root.tag != f"{ns}ListBucketResult":
            raise S3Error(200, "NotS3", f"answered <{root.tag}>", what="list")
        keys = [e.findtext(f"{ns}Key") or "" for e in root.findall(f"{ns}Contents")]
        prefixes = [e.findtext(f"{ns}Prefix") or "" for e in root.findall(f"{ns}CommonPrefixes")]
        more = root.findtext(f"{ns}IsTruncated") == "true"
        return keys, prefixes, (root.findtext(f"{ns}NextContinuationToken") or "") if more else ""

    def list(self, prefix: str, delimiter: str = "") -> tuple[list[str], list[str]]:
        keys, prefixes, token = [], [], ""
        while True:
            page, common, token = self.list_page(prefix, delimiter=delimiter, token=token)
            keys += page
            prefixes += common
            if not token:
                return keys, prefixes

    def put(self, key: str, blob: bytes, headers: dict[str, str] | None = None) -> str:
        """Upload one object (multipart above MULTIPART_THRESHOLD); returns its ETag."""
        if len(blob) > MULTIPART_THRESHOLD:
            return self.put_multipart(key, blob, headers)
        _, got, _ = self.request("PUT", key, headers=headers, body=blob, what=f"upload {key}")
        return got.get("etag", "")

    def put_multipart(self, key: str, blob: bytes, headers: dict[str, str] | None = None,
                      part_size: int = PART_SIZE) -> str:
        """CreateMultipartUpload, the parts (SSE-C headers on each), Complete; aborted on any
        failure, so no unfinished upload is left behind."""
        what = f"upload {key}"
        sse = {k: v for k, v in (headers or {}).items() if k.lower().startswith(
            "x-amz-server-side-encryption-customer")}
        _, _, body = self.request("POST", key, query={"uploads": ""}, headers=headers,
                                  what=what)
        upload_id = _xml_text(body, "UploadId")
        try:
            view, etags = memoryview(blob), []
            for number, start in enumerate(range(0, len(blob), part_size), 1):
                _, got, _ = self.request("PUT", key, query={"partNumber": str(number),
                                                             "uploadId": upload_id},
                                         headers=sse, body=view[start:start + part_size],
                                         what=f"{what}, part {number}")
                etags.append((number, got.get("etag", "")))
            done = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                           for n, e in etags)
            _, _, answer = self.request(
                "POST", key, query={"uploadId": upload_id}, what=f"{what} (complete)",
                body=f"<CompleteMultipartUpload>{done}</CompleteMultipartUpload>".encode())
            if b"<Error>" in answer:  # a 200 whose body is an error (S3 does that on Complete)
                raise _error_of(500, {}, answer, f"{what} (complete)")
            return _xml_text(answer, "ETag")
        except BaseException:
            try:
                self.request("DELETE", key, query={"uploadId": upload_id}, what=f"{what} (abort)")
            except S3Error:
                pass
            raise

    def head(self, key: str, headers: dict[str, str] | None = None) -> dict | None:
        """The object's headers, or None if it does not exist."""
        try:
            return self.request("HEAD", key, headers=headers, what=f"check {key}")[1]
        except S3Error as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, keys: list[str]) -> list[str]:
        """Delete ``keys`` (DeleteObjects, 1000 at a time; single deletes where the store has no
        DeleteObjects); returns the keys that could not be deleted."""
        failed = []
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            body = ("<Delete><Quiet>true</Quiet>" + "".join(
                f"<Object><Key>{_xml_escape(k)}</Key></Object>" for k in batch)
                + "</Delete>").encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            try:
                _, _, answer = self.request("POST", "", query={"delete": ""}, body=body,
                                            headers={"content-md5": md5}, what="delete")
            except S3Error as exc:
                if exc.status not in (400, 405, 501) or exc.code in ("AccessDenied",):
                    raise
                for key in batch:  # no DeleteObjects here: one at a time
                    try:
                        self.request("DELETE", key, what=f"delete {key}")
                    except S3Error:
                        failed.append(key)
                continue
            root = ET.fromstring(answer)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            failed += [e.findtext(f"{ns}Key") or "" for e in root.findall(f"{ns}Error")]
        return failed

    def unfinished_uploads(self, prefix: str) -> list[tuple[str, str]]:
        _, _, body = self.request("GET", "", query={"uploads": "", "prefix": prefix},
                                  what="list unfinished uploads")
        root = ET.fromstring(body)
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        return [(u.findtext(f"{ns}Key") or "", u.findtext(f"{ns}UploadId") or "")
                for u in root.findall(f"{ns}Upload")]

    def abort_uploads(self, prefix: str) -> int:
        count = 0
        for key, upload_id in self.unfinished_uploads(prefix):
            try:
                self.request("DELETE", key, query={"uploadId": upload_id}, what=f"abort {key}")
                count += 1
            except S3Error as exc:
                if exc.status != 404:
                    raise
        return count

    def presign(self, key: str, params: dict[str, str], headers: dict[str, str] | None = None) -> str:
        """X-Amz-Signature of a GET of ``key`` with ``params`` (from :func:`presign_query`)."""
        return presign_signature("GET", self.host, self.path(key), params, headers or {},
                                 self.creds, self.region)


def _xml_text(body: bytes, tag: str) -> str:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error(200, "NotS3", body[:120].decode("utf-8", "replace"), what=tag) from None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == tag:
            return element.text or ""
    raise S3Error(200, "NotS3", f"no {tag} in the answer", what=tag)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- errors said in one line

def explain(exc: S3Error, client: Client, where: str) -> SyncoError:
    """A refusal of the store as one line (and a hint) for the user."""
    code, url = exc.code, f"s3://{client.bucket}/{where}"
    endpoint = client.endpoint_text
    if exc.status == 0:
        return SyncoError(f"cannot reach the S3 endpoint {endpoint}: {exc.message}",
                          hint="check --s3-endpoint (or AWS_ENDPOINT_URL) and this host's network")
    if code == "NoSuchBucket":
        return UsageError(f"bucket {client.bucket} does not exist at {endpoint}",
                          hint="create it, or name an existing one in --publish-s3")
    if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
        return UsageError(f"the S3 store does not know the access key id {client.creds.key_hint()} "
                          f"(from {client.creds.source})",
                          hint="check AWS_ACCESS_KEY_ID or the profile's aws_access_key_id")
    if code == "SignatureDoesNotMatch":
        return UsageError(f"the S3 store refused the signature: the secret access key does not "
                          f"belong to the access key id {client.creds.key_hint()} (from "
                          f"{client.creds.source})", hint="check AWS_SECRET_ACCESS_KEY or the "
                          "profile's aws_secret_access_key")
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return UsageError(f"the S3 store refused the session token ({code}) from "
                          f"{client.creds.source}", hint="get fresh temporary credentials")
    if code == "RequestTimeTooSkewed":
        return UsageError("the S3 store says this host's clock is wrong (RequestTimeTooSkewed): "
                          "signed requests must be within 15 minutes of its time",
                          hint="set the clock (NTP), then run again")
    if code in ("AccessDenied", "Forbidden", "AllAccessDisabled"):
        return UsageError(f"no permission to {exc.what or 'use'} in {url} (as "
                          f"{client.creds.key_hint()}): {exc.message or code}",
                          hint="the credentials need s3:ListBucket, s3:PutObject, s3:GetObject, "
                               "s3:DeleteObject and s3:AbortMultipartUpload on that prefix")
    if code == "NotVisible":
        return SyncoError(f"the S3 store at {endpoint} does not show what was just uploaded: "
                          f"{exc.message}", hint="try again; if it persists, the store does not "
                          "read its own writes back (not supported)")
    if code == "NotS3" or (exc.status == 404 and not code.startswith("NoSuch")):
        return UsageError(f"{endpoint} does not answer like an S3 store ({exc.what}: HTTP "
                          f"{exc.status} {exc.message[:80]})".rstrip(),
                          hint="check --s3-endpoint (or AWS_ENDPOINT_URL)")
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"):
        return UsageError(f"bucket {client.bucket} is in another region than {client.region}"
                          + (f" ({exc.region})" if exc.region else ""),
                          hint="set AWS_REGION to the bucket's region")
    if code in ("InvalidRequest", "InvalidArgument", "NotImplemented") and \
            "encrypt" in (exc.message + exc.what).lower():
        return UsageError(f"the S3 store refused SSE-C: {exc.message or code}",
                          hint="leave out --sse-c (the data is sealed by synco either way); "
                               "AWS S3 needs https for SSE-C")
    return SyncoError(f"the S3 store refused to {exc.what or 'answer'} in {url}: HTTP "
                      f"{exc.status} {code} {exc.message}".rstrip())


# ---------------------------------------------------------------- the target

class Target:
    """``s3://bucket/prefix/`` with its client: checked (and its region found) by :meth:`check`."""

    def __init__(self, url: str, *, endpoint: str | None = None, sse_c: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.settings = load_settings(env, endpoint)
        if self.settings.creds is None:
            raise UsageError("--publish-s3 needs credentials: none in AWS_ACCESS_KEY_ID/"
                             "AWS_SECRET_ACCESS_KEY or the profile's files",
                             hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE "
                                  "with ~/.aws/credentials); instance roles and SSO are not read")
        self.client = Client(self.bucket, self.settings)
        self.sse_c = sse_c

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def check(self, say) -> None:
        """List the prefix: the endpoint answers like S3, the bucket exists, the credentials and
        the clock are accepted, listing is allowed; follows a region hint once."""
        for attempt in range(2):
            try:
                self.client.list_page(self.prefix, delimiter="/", max_keys=1)
                return
            except S3Error as exc:
                moved = exc.region and exc.region != self.client.region and exc.code in (
                    "PermanentRedirect", "AuthorizationHeaderMalformed",
                    "IllegalLocationConstraintException", "InvalidRequest")
                if attempt == 0 and moved:
                    say(f"bucket {self.bucket} is in region {exc.region}, not "
                        f"{self.client.region}: using {exc.region}")
                    self.client.set_region(exc.region)
                    continue
                raise explain(exc, self.client, self.prefix) from None

    def sweep(self, say) -> int:
        """Remove the sessions of earlier runs under the prefix whose time limit has passed (or
        whose process on this host is gone), and their unfinished uploads."""
        from .session import host_tag, _alive

        removed = 0
        try:
            _, folders = self.client.list(self.prefix, delimiter="/")
        except S3Error as exc:
            say(f"could not look for sessions of earlier runs in {self.url}: {explain(exc, self.client, self.prefix)}")
            return 0
        for folder in folders:
            sid = folder[len(self.prefix):].rstrip("/")
            if not re.fullmatch(r"[0-9a-f]{32}", sid):
                continue
            try:
                head = self.client.head(folder + INDEX_PATH)
            except S3Error:
                continue
            marker = re.fullmatch(r"(\d{1,12}) (\d{1,10}) ([0-9a-f]{12})",
                                  (head or {}).get(MARKER_HEADER, ""))
            if marker is None:
                continue  # not ours to judge
            expires, pid, host = int(marker.group(1)), int(marker.group(2)), marker.group(3)
            if time.time() >= expires:
                why = f"its time limit passed at {time.strftime('%Y-%m-%d %H:%M', time.localtime(expires))}"
            elif pid and host == host_tag() and pid != os.getpid() and not _alive(pid):
                why = f"its process {pid} is gone"
            else:
                continue
            try:
                if not remove_prefix(self.client, folder):
                    say(f"removed session {sid} of an earlier run from {self.url}: {why}")
                    removed += 1
            except S3Error as exc:
                say(f"could not remove session {sid} of an earlier run: {explain(exc, self.client, folder)}")
        return removed

    def session(self, ttl: float, recipient: bytes | None, say) -> "S3Session":
        check_ttl(ttl)
        return S3Session(self, ttl, recipient, say)


def check_ttl(ttl: float) -> None:
    if ttl > MAX_PRESIGN:
        raise UsageError("--ttl with --publish-s3 is at most 7 days (presigned URLs expire "
                         "after that)", hint="give --ttl 7d or less")


def remove_prefix(client: Client, prefix: str) -> list[str]:
    """Abort the unfinished uploads under ``prefix`` and delete every object in it, the index
    last (it carries the expiry a later run sweeps by); returns what is left."""
    try:
        client.abort_uploads(prefix)
    except S3Error as exc:
        if exc.status not in (400, 404, 405, 501):
            raise
    keys, _ = client.list(prefix)
    index = prefix + INDEX_PATH
    failed = client.delete([k for k in keys if k != index])
    if not failed and index in keys:
        failed = client.delete([index])
    left, _ = client.list(prefix)
    return left


# ---------------------------------------------------------------- the session

from .session import Session, host_tag  # noqa: E402  (session imports nothing of this module)


class S3Session(Session):
    """A session whose objects are uploaded to ``s3://bucket/prefix/<session id>/``.

    Objects are uploaded on a pool of threads (at most IN_FLIGHT queued); before each meta,
    every object written since the previous one is confirmed to be there (HEAD, size), the index
    (its presigned URLs) is republished if it grew, and only then the meta. The meta and the
    objects carry SSE-C headers with --sse-c; the index and the key object never do (the laptop
    reads them before it has the session key)."""

    def __init__(self, target: Target, ttl: float, recipient: bytes | None, say) -> None:
        self.target, self.client, self.say = target, target.client, say
        self._begin(ttl, recipient)
        self.folder = f"{target.url}{self.id_hex}/"  # for messages: where the session is
        self.prefix = f"{target.prefix}{self.id_hex}/"
        start = datetime.datetime.fromtimestamp(int(self.created), datetime.timezone.utc)
        self.params = presign_query(target.settings.creds, self.client.region, start,
                                    int(self.expires) - int(self.created))
        self.sse_key = sse_c_key(self.key, self.session_id) if target.sse_c else None
        self.sse = sse_c_headers(self.sse_key) if self.sse_key else {}
        self.signatures: dict[str, str] = {}
        self._unconfirmed: dict[str, int] = {}
        self._listed = 0
        self._pending: list[Future] = []
        self._pending_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(IN_FLIGHT)
        self._publish_lock = threading.RLock()
        self.pool = ThreadPoolExecutor(max_workers=UPLOADERS, thread_name_prefix="s3put")
        index_query = canonical_query(self.params)
        sig = self.client.presign(self.prefix + INDEX_PATH, self.params)
        self.token = self._token(f"{target.client.endpoint_text}{self.client.path(self.prefix + INDEX_PATH)}"
                                 f"?{index_query}&X-Amz-Signature={sig}")
        try:
            self._put_index(pid=os.getpid())  # first: a killed run can be swept by its expiry
            self._probe()
            if recipient is not None:
                from . import crypto, format

                self._write(format.KEY_PATH,
                            crypto.wrap_session_key(self.key, self.session_id, recipient))
                self._flush()
        except S3Error as exc:
            problem = explain(exc, self.client, self.prefix)
            self._cleanup_quietly()
            raise problem from None
        except BaseException:
            self._cleanup_quietly()
            raise

    # ------------------------------------------------------------ writing

    def _sign(self, relpath: str) -> None:
        sse = self.sse if relpath != "key" else {}
        params = dict(self.params, **({"X-Amz-SignedHeaders": SSE_SIGNED} if sse else {}))
        self.signatures[relpath] = self.client.presign(self.prefix + relpath, params, sse)

    def _put_index(self, pid: int) -> None:
        body = index_body(self.signatures, bool(self.sse))
        self.client.put(self.prefix + INDEX_PATH, body, {
            MARKER_HEADER: f"{int(self.expires)} {pid} {host_tag()}",
            "cache-control": "no-store", "content-type": "application/json"})
        self._index_body = body

    def _probe(self) -> None:
        """Upload and delete a small object, so missing rights (or SSE-C refused) show before
        the token is printed."""
        key = self.prefix + "probe"
        self.client.put(key, b"synco", self.sse)
        if self.sse and self.client.head(key, self.sse) is None:
            raise S3Error(404, "NotFound", "the probe object is not there", what="upload")
        failed = self.client.delete([key])
        if failed:
            raise S3Error(403, "AccessDenied", "may upload but not delete", what="delete")

    def _write(self, relpath: str, blob: bytes) -> None:
        if self.closed:
            raise LocalIOError("the session was closed")
        self._slots.acquire()
        try:
            future = self.pool.submit(self._upload, relpath, blob)
        except RuntimeError:  # the pool was shut down: the session is being removed
            self._slots.release()
            raise LocalIOError("the session was closed") from None
        with self._pending_lock:
            self._pending.append(future)

    def _upload(self, relpath: str, blob: bytes) -> None:
        try:
            if self.closed:
                return
            self.client.put(self.prefix + relpath, blob, {} if relpath == "key" else self.sse)
            with self._pending_lock:
                self._unconfirmed[relpath] = len(blob)
        finally:
            self._slots.release()

    def _flush(self) -> None:
        """Wait for every upload, confirm each new object (HEAD: there, with its size), sign
        them, and republish the index when it grew."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        try:
            for future in pending:
                future.result()
        except S3Error as exc:
            raise explain(exc, self.client, self.prefix) from None
        with self._pending_lock:
            new, self._unconfirmed = self._unconfirmed, {}

        def confirm(item: tuple[str, int]) -> str:
            relpath, size = item
            for wait in (0.0, 0.2, 0.5, 1.0, 2.0, 4.0):
                time.sleep(wait)
                head = self.client.head(self.prefix + relpath, {} if relpath == "key" else self.sse)
                if head is not None and head.get("content-length") == str(size):
                    return relpath
            raise S3Error(404, "NotVisible", f"{relpath} is not readable after its upload",
                          what=f"check {relpath}")

        try:
            for relpath in self.pool.map(confirm, new.items()):
                self._sign(relpath)
        except S3Error as exc:
            raise explain(exc, self.client, self.prefix) from None

    def publish_meta(self, state: str, **kwargs) -> None:
        from . import format

        with self._publish_lock:  # (the meta lock is the base class's, taken below)
            self._flush()
            if format.META_PATH not in self.signatures:
                self._sign(format.META_PATH)
            if len(self.signatures) != self._listed:
                try:
                    self._put_index(pid=os.getpid())
                    head = self.client.head(self.prefix + INDEX_PATH)
                    if head is None or head.get("content-length") != str(len(self._index_body)):
                        raise S3Error(404, "NotVisible", "the index is not readable after its "
                                      "upload", what="check the index")
                except S3Error as exc:
                    raise explain(exc, self.client, self.prefix) from None
                self._listed = len(self.signatures)
            super().publish_meta(state, **kwargs)

    def _write_meta(self, blob: bytes) -> None:
        from . import format

        try:
            self.client.put(self.prefix + format.META_PATH, blob,
                            dict(self.sse, **{"cache-control": "no-store"}))
        except S3Error as exc:
            raise explain(exc, self.client, self.prefix) from None

    def required_objects(self, sets):  # only the built-in listener counts downloads
        raise NotImplementedError("downloads from a bucket are not counted")

    # ------------------------------------------------------------ removal

    def _stop_uploads(self) -> None:
        self.closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _cleanup_quietly(self) -> None:
        try:
            self._stop_uploads()
            remove_prefix(self.client, self.prefix)
        except (S3Error, OSError):
            pass

    def remove(self) -> bool:
        self._stop_uploads()
        try:
            self._left = remove_prefix(self.client, self.prefix)
        except S3Error as exc:
            self._left = [f"({explain(exc, self.client, self.prefix)})"]
        return not self._left

    def leftovers(self) -> list[str]:
        return [k[len(self.prefix):] if k.startswith(self.prefix) else k
                for k in getattr(self, "_left", [])]

    def mark_kept(self) -> None:
        """--keep: the index's expiry stays, the process is marked gone (pid 0), so a later run
        removes the session once its time limit has passed."""
        self._stop_uploads()
        try:
            self._put_index(pid=0)
        except S3Error as exc:
            self.say(f"could not mark the kept session: {explain(exc, self.client, self.prefix)}")
