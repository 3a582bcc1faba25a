"""serve --publish-s3: the session in an S3-compatible bucket, read by synco with presigned URLs.

The store is moto's standalone server (a subprocess on a free port, path-style) with its IAM
checks on: every request synco-source signs is verified by moto (botocore's SigV4), unknown keys,
wrong secrets and missing rights are refused as S3 refuses them. moto does not check presigned
URLs (nor SSE-C), so the laptop's requests go through ``Verifier``, a small proxy in front of it
that does what S3 does with them: it recomputes every presigned signature with botocore, refuses
an expired URL, and refuses a GET of an SSE-C object without that object's key, then forwards
the request to moto signed as the bucket's owner.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dbfixtures import mysql_fingerprint, url_text
from e2e import MARKER, make_files, shop, tree  # noqa: F401  (shop is a fixture)
from sourceproc import REPO, Source, StaticServer, synco

from synco_source import s3

boto3 = pytest.importorskip("boto3", reason="moto[server] (the test extra) brings boto3")
from botocore.auth import S3SigV4QueryAuth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials as BotoCredentials  # noqa: E402

BUCKET = "transfer"
REGION = "eu-central-1"
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
            "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_DEFAULT_PROFILE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the store

MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop()
"""


class Verifier(ThreadingHTTPServer):
    """Forwards everything to moto; checks presigned GETs (signature, expiry) and SSE-C keys."""

    daemon_threads = True

    def __init__(self, moto: str, secrets: dict[str, str], owner: s3.Credentials) -> None:
        self.moto, self.secrets, self.owner = moto, secrets, owner
        self.sse: dict[str, str] = {}  # object path -> MD5 of its SSE-C key (base64)
        self.presigned = 0             # presigned GETs verified and let through
        self.plain_gets = 0            # GETs of objects with header authentication
        self.index_gets = 0            # presigned GETs of an index
        self.refused: list[str] = []
        self.lock = threading.Lock()
        verifier = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                verifier.handle_one(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def refuse(self, handler, status: int, code: str, message: str) -> None:
        with self.lock:
            self.refused.append(code)
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error>").encode()
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def handle_one(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urllib.parse.urlsplit(handler.path)
        params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        path = urllib.parse.unquote(parts.path)
        if handler.command == "PUT" and "partNumber" not in params:
            md5 = headers.get("x-amz-server-side-encryption-customer-key-md5")
            with self.lock:
                if md5:
                    self.sse[path] = md5
                else:
                    self.sse.pop(path, None)
        if "X-Amz-Signature" in params:
            problem = self.check_presigned(handler, parts, params, headers, path)
            if problem:
                self.refuse(handler, *problem)
                return
            # as the owner, so moto (whose IAM checks are on) takes it
            keep = {k: v for k, v in headers.items() if k == "range"}
            headers = s3.sign_headers(handler.command, urllib.parse.urlsplit(self.moto).netloc,
                                      urllib.parse.quote(path, safe="/-_.~"), "", keep,
                                      s3.EMPTY_SHA256, self.owner, REGION,
                                      datetime.datetime.now(datetime.timezone.utc))
            target = urllib.parse.quote(path, safe="/-_.~")
            with self.lock:
                self.presigned += 1
                self.index_gets += path.endswith("/index")
        else:
            target = handler.path
            if handler.command == "GET" and path.strip("/").count("/"):
                with self.lock:
                    self.plain_gets += 1
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(self.moto).netloc, timeout=60)
        forward = {k: v for k, v in headers.items() if k not in ("connection", "content-length")}
        conn.request(handler.command, target, body=body, headers=forward)
        response = conn.getresponse()
        data = response.read()
        handler.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length", "server",
                                    "date"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", response.getheader("Content-Length", "0")
                            if handler.command == "HEAD" else str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
        conn.close()

    def check_presigned(self, handler, parts, params, headers, path):
        """What S3 checks of a presigned GET, with botocore's signer as the reference."""
        try:
            key_id, day, region, service, _ = params["X-Amz-Credential"].split("/")
            start = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            return 400, "AuthorizationQueryParametersError", "malformed"
        if not 1 <= expires <= 604800:
            return 400, "AuthorizationQueryParametersError", "X-Amz-Expires out of range"
        if datetime.datetime.now(datetime.timezone.utc) > start + datetime.timedelta(seconds=expires):
            return 403, "AccessDenied", "Request has expired"
        secret = self.secrets.get(key_id)
        if secret is None:
            return 403, "InvalidAccessKeyId", "unknown key"
        signed = params["X-Amz-SignedHeaders"].split(";")
        unsigned = [h for h in headers if h.startswith("x-amz-") and h not in signed]
        if unsigned:
            return 403, "AccessDenied", f"There were headers present in the request which were not signed: {unsigned}"
        query = "&".join(f"{k}={urllib.parse.quote(v, safe='-_.~')}" for k, v in params.items()
                         if k != "X-Amz-Signature")
        request = AWSRequest(method=handler.command,
                             url=f"http://{headers['host']}{parts.path}?{query}",
                             headers={h: headers[h] for h in signed if h != "host"})
        request.context["timestamp"] = params["X-Amz-Date"]
        auth = S3SigV4QueryAuth(BotoCredentials(key_id, secret, params.get("X-Amz-Security-Token")),
                                service, region, expires=expires)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if expected != params["X-Amz-Signature"]:
            return 403, "SignatureDoesNotMatch", "signature"
        with self.lock:
            sse = self.sse.get(path)
        if sse and headers.get("x-amz-server-side-encryption-customer-key-md5") != sse:
            return 400, "InvalidRequest", "The object was stored using a form of Server Side " \
                                          "Encryption. The correct parameters must be provided"
        return None


class Store:
    def __init__(self, tmp: Path) -> None:
        port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", MOTO, str(port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        self.moto = f"http://127.0.0.1:{port}"
        fake = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup",
                "region_name": REGION}
        iam = boto3.client("iam", endpoint_url=self.moto, **fake)
        boto3.client("s3", endpoint_url=self.moto, **fake).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        keys = {}
        for user, policy in (("publisher", True), ("nobody", False)):
            iam.create_user(UserName=user)
            if policy:
                iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(
                    {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
            made = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = s3.Credentials(made["AccessKeyId"], made["SecretAccessKey"])
        self.creds, self.nobody = keys["publisher"], keys["nobody"]
        conn = http.client.HTTPConnection(f"127.0.0.1:{port}")
        conn.request("POST", "/moto-api/reset-auth", body=b"0")  # IAM checks on from here
        assert conn.getresponse().status == 200
        self.verifier = Verifier(self.moto, {c.access_key: c.secret_key for c in keys.values()},
                                 self.creds)
        self.endpoint = self.verifier.url
        self.client = s3.Client(BUCKET, s3.Settings(self.creds, REGION, self.moto))

    def env(self, creds: s3.Credentials | None = None) -> dict[str, str]:
        creds = creds or self.creds
        return {"AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key,
                "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint}

    def keys(self, prefix: str) -> list[str]:
        return self.client.list(prefix)[0]

    def close(self) -> None:
        self.verifier.shutdown()
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("s3"))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """Nothing of the machine's own AWS settings; ``aws(env)`` sets the server side's."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def set_env(env: dict[str, str]) -> None:
        for name in AWS_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
    return set_env


def laptop(monkeypatch) -> None:
    """The client runs with no AWS settings at all."""
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)


def prefix() -> str:
    return f"synco-{uuid.uuid4().hex[:8]}/"


# ---------------------------------------------------------------- SigV4 against AWS's examples

AWS_KEY = s3.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
AWS_DAY = datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc)


def test_sigv4_get_object_example_of_the_s3_documentation():
    """'Example: GET Object' of AWS's 'Signature Calculations for the Authorization Header'."""
    headers = s3.sign_headers("GET", "examplebucket.s3.amazonaws.com", "/test.txt", "",
                              {"Range": "bytes=0-9"}, s3.EMPTY_SHA256, AWS_KEY, "us-east-1",
                              AWS_DAY)
    canonical = s3.canonical_request("GET", "/test.txt", "", headers,
                                     ["host", "range", "x-amz-content-sha256", "x-amz-date"],
                                     s3.EMPTY_SHA256)
    assert hashlib.sha256(canonical.encode()).hexdigest() == \
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_sigv4_presigned_url_example_of_the_s3_documentation():
    """The example of AWS's 'Authenticating Requests: Using Query Parameters'."""
    params = s3.presign_query(AWS_KEY, "us-east-1", AWS_DAY, 86400)
    assert s3.canonical_query(params) == (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
        "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
        "X-Amz-SignedHeaders=host")
    assert s3.presign_signature("GET", "examplebucket.s3.amazonaws.com", "/test.txt", params, {},
                                AWS_KEY, "us-east-1") == \
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    # one changed byte anywhere changes the signature
    assert s3.presign_signature("GET", "examplebucket.s3.amazonaws.com", "/test.txu", params, {},
                                AWS_KEY, "us-east-1") != \
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"


def test_sigv4_presigned_with_session_token_and_sse_c_matches_botocore():
    """Beyond the examples: a session token and signed SSE-C headers, against botocore."""
    creds = s3.Credentials("ASIAEXAMPLE", "secret/with+chars", "FwoGZXIvYXdzE//token+=")
    now = datetime.datetime(2026, 3, 1, 12, 30, 5, tzinfo=datetime.timezone.utc)
    params = s3.presign_query(creds, "eu-central-1", now, 3600, s3.SSE_SIGNED)
    sse = s3.sse_c_headers(bytes(range(32)))
    mine = s3.presign_signature("GET", "127.0.0.1:9000", "/bucket/p%20q/o/ab", params, sse,
                                creds, "eu-central-1")
    query = s3.canonical_query(params)
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:9000/bucket/p%20q/o/ab?{query}",
                         headers=sse)
    request.context["timestamp"] = params["X-Amz-Date"]
    auth = S3SigV4QueryAuth(BotoCredentials(creds.access_key, creds.secret_key, creds.token),
                            "s3", "eu-central-1", expires=3600)
    assert mine == auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                                  request)


def test_sse_c_key_vector():
    """docs/FORMAT.md §12.4."""
    key = s3.sse_c_key(bytes(range(32)), bytes(range(16)))
    assert key.hex() == SSE_C_VECTOR
    assert s3.sse_c_headers(key)["x-amz-server-side-encryption-customer-key-md5"] == \
        __import__("base64").b64encode(hashlib.md5(key).digest()).decode()


def botocore_signature(url: str, headers: dict[str, str], secret: str) -> str:
    """X-Amz-Signature of a presigned URL as botocore computes it (the reference signer)."""
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query))
    key_id, _, region, service, _ = params["X-Amz-Credential"].split("/")
    query = "&".join(f"{k}={urllib.parse.quote(v, safe='-_.~')}" for k, v in params.items()
                     if k != "X-Amz-Signature")
    request = AWSRequest(method="GET", url=f"{parts.scheme}://{parts.netloc}{parts.path}?{query}",
                         headers=headers)
    request.context["timestamp"] = params["X-Amz-Date"]
    auth = S3SigV4QueryAuth(BotoCredentials(key_id, secret, params.get("X-Amz-Security-Token")),
                            service, region, expires=int(params["X-Amz-Expires"]))
    return auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)


def test_index_vectors_of_format_md():
    """docs/FORMAT.md §12.6: the index URL, the index and the URLs it gives, with and without
    SSE-C; each signature also as botocore computes it."""
    text = (REPO / "docs" / "FORMAT.md").read_text().split("### 12.6")[1]
    index_url, meta_url = re.findall(r"(?m)^(http://127\.0\.0\.1:9000/\S+)$", text)
    body = re.search(r"(?m)^(\{\"synco-s3\".*\})$", text).group(1)
    creds = s3.Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    client = s3.Client("transfer", s3.Settings(creds, "us-east-1", "http://127.0.0.1:9000"))
    params = s3.presign_query(creds, "us-east-1", AWS_DAY, 10800)
    prefix = f"synco/{bytes(range(16)).hex()}/"
    sig = client.presign(prefix + "index", params)
    assert index_url == (f"http://127.0.0.1:9000/transfer/{prefix}index?"
                         f"{s3.canonical_query(params)}&X-Amz-Signature={sig}")
    assert botocore_signature(index_url, {}, creds.secret_key) == sig
    objects = {"meta": client.presign(prefix + "meta", params),
               "o/" + "ab" * 32: client.presign(prefix + "o/" + "ab" * 32, params)}
    assert s3.index_body(objects, False).decode() == body
    index = s3.IndexUrls(index_url)
    index.load(body.encode())
    assert index.url("meta") == meta_url and index.url("o/" + "cd" * 32) is None
    assert botocore_signature(meta_url, {}, creds.secret_key) == objects["meta"]
    key = s3.sse_c_key(bytes(range(32)), bytes(range(16)))
    assert key.hex() in text
    sse = s3.sse_c_headers(key)
    assert sse[s3.SSE_HEADERS[1]] in text and sse[s3.SSE_HEADERS[2]] in text
    sse_sig = client.presign(prefix + "meta", dict(params, **{"X-Amz-SignedHeaders": s3.SSE_SIGNED}),
                             sse)
    assert sse_sig in text
    index.load(s3.index_body({"meta": sse_sig, "key": objects["meta"]}, True))
    index.sse_key = key
    assert botocore_signature(index.url("meta"), index.headers("meta"), creds.secret_key) == sse_sig
    assert "SignedHeaders=host&" in index.url("key") and index.headers("key") == {}
    for bad in (b"[]", b'{"synco-s3":2,"sse_c":false,"objects":{}}',
                b'{"synco-s3":1,"sse_c":false,"objects":{},"more":1}',
                b'{"synco-s3":1,"sse_c":false,"objects":{"../x":"' + b"a" * 64 + b'"}}',
                b'{"synco-s3":1,"sse_c":0,"objects":{}}',
                b'{"synco-s3":1,"sse_c":false,"objects":{"meta":"A1"}}'):
        with pytest.raises(s3.IndexError_):
            index.load(bad)


SSE_C_VECTOR = "b72fbcb2be6f3cef5d4b1bc4158901838e5c34a234520fc96ade1975c2bf88e3"


# ---------------------------------------------------------------- settings

def test_credentials_region_and_endpoint_as_aws_tools_read_them(tmp_path):
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKDEFAULT\n"
                                     "aws_secret_access_key = sdefault\n\n[work]\n"
                                     "aws_access_key_id = AKWORK\naws_secret_access_key = swork\n"
                                     "aws_session_token = twork\n")
    (aws / "config").write_text("[default]\nregion = eu-west-1\n\n[profile work]\n"
                                "region = eu-north-1\nendpoint_url = https://s3.work.example\n")
    home = {"HOME": str(tmp_path)}
    got = s3.load_settings(home)
    assert (got.creds.access_key, got.creds.secret_key, got.region, got.endpoint) == \
        ("AKDEFAULT", "sdefault", "eu-west-1", "")
    got = s3.load_settings({**home, "AWS_PROFILE": "work"})
    assert (got.creds.access_key, got.creds.token, got.region, got.endpoint) == \
        ("AKWORK", "twork", "eu-north-1", "https://s3.work.example")
    # the environment wins over the files, --s3-endpoint over everything
    got = s3.load_settings({**home, "AWS_PROFILE": "work", "AWS_ACCESS_KEY_ID": "AKENV",
                            "AWS_SECRET_ACCESS_KEY": "senv", "AWS_DEFAULT_REGION": "us-west-2",
                            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"},
                           endpoint="http://minio:9000/")
    assert (got.creds.access_key, got.creds.token, got.region, got.endpoint) == \
        ("AKENV", "", "us-west-2", "http://minio:9000")
    assert "senv" not in repr(got.creds) and "AKENV" in repr(got.creds)
    got = s3.load_settings({**home, "AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "x-1",
                            "AWS_ENDPOINT_URL_S3": "https://s3only.example",
                            "AWS_ENDPOINT_URL": "https://all.example"})
    assert (got.region, got.endpoint) == ("ap-south-1", "https://s3only.example")
    assert s3.load_settings({"HOME": str(tmp_path / "none")}).creds is None
    with pytest.raises(s3.UsageError, match="profile 'gone'"):
        s3.load_settings({**home, "AWS_PROFILE": "gone"})
    with pytest.raises(s3.UsageError, match="must be set together"):
        s3.load_settings({**home, "AWS_ACCESS_KEY_ID": "AK"})


def test_addressing_virtual_hosted_on_aws_path_style_elsewhere():
    creds = s3.Credentials("AK", "s")
    aws = s3.Client("my-bucket", s3.Settings(creds, "eu-central-1", ""))
    assert (aws.endpoint_text, aws.path("p/x")) == \
        ("https://my-bucket.s3.eu-central-1.amazonaws.com", "/p/x")
    dotted = s3.Client("my.bucket", s3.Settings(creds, "eu-central-1", ""))
    assert (dotted.endpoint_text, dotted.path("p/x")) == \
        ("https://s3.eu-central-1.amazonaws.com", "/my.bucket/p/x")
    minio = s3.Client("my-bucket", s3.Settings(creds, "us-east-1", "http://127.0.0.1:9000"))
    assert (minio.endpoint_text, minio.path("p/x")) == ("http://127.0.0.1:9000", "/my-bucket/p/x")
    assert s3.parse_s3_url("s3://my-bucket") == ("my-bucket", "")
    assert s3.parse_s3_url("s3://my-bucket/a/b") == ("my-bucket", "a/b/")
    for bad in ("http://x/", "s3://", "s3://Bad_Bucket/", "s3://bkt/a//b/", "s3://bkt/../x/"):
        with pytest.raises(s3.UsageError):
            s3.parse_s3_url(bad)


# ---------------------------------------------------------------- round trips

def test_round_trip_through_the_bucket_with_no_credentials_on_the_laptop(
        store, shop, mysql_db, tmp_path, aws, monkeypatch):
    files = make_files(tmp_path / "uploads")
    dst = mysql_db("dst", create=False)
    where = prefix()
    aws(store.env())
    verified = store.verifier.presigned
    with Source(["--publish-s3", f"s3://{BUCKET}/{where}", "--files", f"uploads={files}"],
                db_url=url_text(shop)) as source:
        source.wait_ready()
        keys = store.keys(where)
        sid = keys[0][len(where):].split("/")[0]
        # in the bucket: the index, the meta and keyed names, nothing about the content
        assert all(re.fullmatch(rf"{where}{sid}/(index|meta|o/[0-9a-f]{{64}})", k) for k in keys)
        published = b"".join(store.client.request("GET", k)[2] for k in keys)
        from synco_source.format import Token
        token = Token.decode(source.token)
        for secret in (MARKER.encode(), token.key, token.key.hex().encode(), b"customer 1",
                       store.creds.secret_key.encode()):
            assert secret not in published
        assert store.creds.secret_key not in source.token + source.stderr
        laptop(monkeypatch)
        result = synco("download", source.token, "--db-url", url_text(dst),
                       "--files-dir", f"uploads={tmp_path / 'local'}", "--yes")
        assert result.code == 0, result.stderr + source.stderr
        code = source.stop(signal.SIGTERM)
    assert code == 0, source.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    assert tree(tmp_path / "local") == tree(files)
    # every read of the laptop was a presigned GET (index, meta, key, manifests, chunks)
    assert store.verifier.presigned - verified >= 10 and store.verifier.plain_gets == 0
    assert "removed everything published" in source.stderr
    assert store.keys(where) == []
    assert store.client.unfinished_uploads(where) == []


def test_the_laptop_imports_while_the_server_still_uploads(store, shop, mysql_db, aws,
                                                          monkeypatch):
    """Started right after the token, the download reads parts as they appear: each new part
    and its chunks are in a newer index, which the client fetches again when it meets them."""
    dst = mysql_db("dst", create=False)
    where = prefix()
    aws(store.env())
    monkeypatch.setenv("SYNCO_TEST_DUMP_PAUSE", "1.0")
    with Source(["--publish-s3", f"s3://{BUCKET}/{where}"], db_url=url_text(shop)) as source:
        laptop(monkeypatch)
        before = store.verifier.index_gets
        result = synco("download", source.token, "--db-url", url_text(dst), "--yes")
        assert result.code == 0, result.stderr + source.stderr
    assert mysql_fingerprint(dst) == mysql_fingerprint(shop)
    # the first index listed only what existed when the laptop began; later parts were not in it
    assert store.verifier.index_gets - before >= 2, "the index was fetched again as it grew"
    assert store.keys(where) == []


def test_sse_c_round_trip_with_a_recipient_key(store, tmp_path, aws, monkeypatch):
    """--sse-c: every object but the index and the wrapped key is stored under the session's
    SSE-C key, which the laptop derives once it has unwrapped the session key."""
    keygen = synco("keygen")
    assert keygen.code == 0, keygen.stderr
    public = re.search(r"syncopk1[a-z2-7]+", keygen.stdout + keygen.stderr).group(0)
    files = make_files(tmp_path / "uploads")
    where = prefix()
    aws(store.env())
    with Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--sse-c",
                 "--files", f"uploads={files}", "--recipient", public]) as source:
        source.wait_ready()
        sse = {path for path in store.verifier.sse if where in path}
        keys = store.keys(where)
        stored = {f"/{BUCKET}/{k}" for k in keys}
        assert {k for k in stored if not k.endswith(("/index", "/key"))} <= sse
        assert not {k for k in stored if k.endswith(("/index", "/key"))} & sse
        assert any(k.endswith("/key") for k in keys)
        # without the key, the store refuses (as S3 does): the laptop must send it
        meta = next(k for k in keys if k.endswith("/meta"))
        laptop(monkeypatch)
        result = synco("download", source.token, "--files-dir",
                       f"uploads={tmp_path / 'local'}", "--yes")
        assert result.code == 0, result.stderr + source.stderr
    assert tree(tmp_path / "local") == tree(files)
    assert "InvalidRequest" not in store.verifier.refused
    assert meta and store.keys(where) == []


def test_presigned_links_expire_with_the_session(store, tmp_path, aws, monkeypatch):
    """The links live as long as --ttl: after it, the store refuses them and synco says the
    session's links expired (here the session is kept, so only the links stop it)."""
    files = make_files(tmp_path / "uploads")
    where = prefix()
    aws(store.env())
    with Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files",
                 f"uploads={files}", "--ttl", "4s", "--keep"]) as source:
        source.wait_ready()
        url = s3.IndexUrls(Token_url(source.token))
        assert url.expires - time.time() <= 4.5
        assert source.proc.wait(30) == 0
    assert store.keys(where), "--keep: still there"
    time.sleep(max(0.0, url.expires - time.time()) + 0.5)
    laptop(monkeypatch)
    result = synco("download", source.token, "--files-dir", f"uploads={tmp_path / 'local'}",
                   "--yes")
    assert result.code == 4, result.stderr
    assert "links expired at" in result.stderr and "Traceback" not in result.stderr
    assert "Request has expired" in store.verifier.refused or "AccessDenied" in store.verifier.refused
    s3.remove_prefix(store.client, where)


def Token_url(token: str) -> str:
    from synco_source.format import Token

    return Token.decode(token).url


# ---------------------------------------------------------------- cleanup

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_every_stop_removes_every_object(store, tmp_path, aws, sig):
    files = tmp_path / "files"
    files.mkdir()
    for n in range(12):
        (files / f"f{n}.bin").write_bytes(os.urandom(3_000_000))
    where = prefix()
    aws(store.env())
    with Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files",
                 f"f={files}"]) as source:
        deadline = time.monotonic() + 60
        while not any("/o/" in k for k in store.keys(where)):
            assert time.monotonic() < deadline, source.stderr
            time.sleep(0.05)
        code = source.stop(sig)
    assert code == (130 if sig == signal.SIGINT else 0), source.stderr
    assert "removed everything published" in source.stderr
    assert store.keys(where) == [] and store.client.unfinished_uploads(where) == []


def test_ttl_removes_every_object(store, tmp_path, aws):
    files = make_files(tmp_path / "uploads")
    where = prefix()
    aws(store.env())
    with Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files",
                 f"f={files}", "--ttl", "3s"]) as source:
        assert source.proc.wait(60) == 0, source.stderr
    assert "time limit reached" in source.stderr and "removed everything published" in source.stderr
    assert store.keys(where) == []


def test_a_killed_run_is_swept_by_the_next(store, tmp_path, aws):
    """kill -9 leaves the session; the next run here removes it (its process is gone), and
    its unfinished multipart uploads with it."""
    files = make_files(tmp_path / "uploads")
    where = prefix()
    aws(store.env())
    first = Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files", f"f={files}"])
    first.wait_ready()
    first.stop(signal.SIGKILL)
    left = store.keys(where)
    sid = left[0][len(where):].split("/")[0]
    store.client.request("POST", f"{where}{sid}/o/unfinished", query={"uploads": ""})
    assert store.client.unfinished_uploads(where)
    with Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files",
                 f"f={files}"]) as second:
        second.wait_ready()
        assert f"removed session {sid} of an earlier run" in second.stderr
        assert "its process" in second.stderr
        assert not [k for k in store.keys(where) if sid in k]
        assert store.client.unfinished_uploads(f"{where}{sid}/") == []
    assert store.keys(where) == []


def test_cleanup_removes_what_a_killed_run_left(store, tmp_path, aws):
    files = make_files(tmp_path / "uploads")
    where = prefix()
    aws(store.env())
    first = Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files", f"f={files}"])
    first.wait_ready()
    first.stop(signal.SIGKILL)
    assert store.keys(where)
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "cleanup", "--publish-s3",
                          f"s3://{BUCKET}/{where}"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "removed session" in run.stderr and "1 session of earlier runs removed" in run.stderr
    assert store.keys(where) == []


def test_a_session_of_another_host_is_kept_until_it_expires(store, aws):
    """A session whose process may be alive elsewhere is left alone until its expiry."""
    where = prefix()
    aws(store.env())
    target = s3.Target(f"s3://{BUCKET}/{where}")
    live, dead = "a" * 32, "b" * 32
    for sid, expires in ((live, time.time() + 3600), (dead, time.time() - 1)):
        store.client.put(f"{where}{sid}/index", b"{}", {s3.MARKER_HEADER:
                                                         f"{int(expires)} 1 000000000000"})
        store.client.put(f"{where}{sid}/o/{'c' * 64}", b"x")
    said = []
    assert target.sweep(said.append) == 1
    assert [k for k in store.keys(where)] == [f"{where}{live}/index", f"{where}{live}/o/{'c' * 64}"]
    assert "time limit passed" in said[0]
    s3.remove_prefix(store.client, where)


# ---------------------------------------------------------------- uploads

def test_multipart_upload_of_a_large_object_and_its_abort(store):
    client = s3.Client(BUCKET, s3.Settings(store.creds, REGION, store.moto))
    where = prefix()
    blob = os.urandom(s3.MULTIPART_THRESHOLD + 3_000_000)
    etag = client.put(f"{where}big", blob)
    assert etag.strip('"').endswith(f"-{-(-len(blob) // s3.PART_SIZE)}")  # a multipart ETag
    assert client.request("GET", f"{where}big")[2] == blob

    # a part that fails for good aborts the upload: nothing unfinished is left
    original = client.request

    def failing(method, key, **kw):
        if "partNumber" in (kw.get("query") or {}) and kw["query"]["partNumber"] == "2":
            raise s3.S3Error(500, "InternalError", "injected", what="part")
        return original(method, key, **kw)

    client.request = failing
    with pytest.raises(s3.S3Error):
        client.put(f"{where}broken", blob)
    client.request = original
    assert client.unfinished_uploads(where) == []
    assert s3.remove_prefix(client, where) == []


class Flaky(ThreadingHTTPServer):
    """Answers the first ``fail`` requests with 503 SlowDown, then forwards to the store; with
    ``region``, answers a request signed for another region as AWS does (301 PermanentRedirect
    naming the bucket's region in x-amz-bucket-region)."""

    daemon_threads = True

    def __init__(self, target: str, fail: int = 0, region: str = "", refuse: str = "") -> None:
        """``refuse``: "skew" answers every request as a store whose clock differs by more than
        15 minutes; "sse-c" refuses every request with SSE-C headers, as a store without it."""
        self.target, self.fail, self.seen, self.region, self.refuse = target, fail, 0, region, refuse
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                flaky.seen += 1
                scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/", self.headers.get("Authorization", ""))
                if flaky.region and scope and scope.group(1) != flaky.region:
                    data = (b"<Error><Code>PermanentRedirect</Code><Message>The bucket you are "
                            b"attempting to access must be addressed using the specified "
                            b"endpoint.</Message></Error>")
                    self.send_response(301)
                    self.send_header("x-amz-bucket-region", flaky.region)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                sse_c = any(k.lower().startswith("x-amz-server-side-encryption-customer")
                            for k in self.headers.keys())
                refusal = {"skew": (403, b"<Error><Code>RequestTimeTooSkewed</Code><Message>The "
                                         b"difference between the request time and the current time "
                                         b"is too large.</Message></Error>"),
                           "sse-c": (400, b"<Error><Code>NotImplemented</Code><Message>Server side "
                                          b"encryption with customer keys is not implemented"
                                          b"</Message></Error>") if sse_c else None}.get(flaky.refuse)
                if refusal:
                    self.send_response(refusal[0])
                    self.send_header("Content-Length", str(len(refusal[1])))
                    self.end_headers()
                    self.wfile.write(refusal[1])
                    return
                if flaky.seen <= flaky.fail:
                    data = b"<Error><Code>SlowDown</Code><Message>slow</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(urllib.parse.urlsplit(flaky.target).netloc)
                conn.request(self.command, self.path, body=body,
                             headers={k: v for k, v in self.headers.items()
                                      if k.lower() not in ("connection", "content-length")})
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "content-length", "transfer-encoding",
                                         "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", response.getheader("Content-Length", "0")
                                 if self.command == "HEAD" else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_slowdown_is_retried_with_backoff(store):
    flaky = Flaky(store.moto, fail=3)
    try:
        client = s3.Client(BUCKET, s3.Settings(store.creds, REGION, flaky.url))
        where = prefix()
        started = time.monotonic()
        client.put(f"{where}x", b"hello")
        assert flaky.seen == 4 and time.monotonic() - started >= 0.25 * 0.5 * 7
        assert store.client.request("GET", f"{where}x")[2] == b"hello"
        s3.remove_prefix(store.client, where)
    finally:
        flaky.shutdown()


def test_the_region_hint_is_followed(store, aws, tmp_path, monkeypatch):
    """Signed for us-east-1, the store answers 301 naming eu-central-1: synco-source says so,
    signs for that region from then on (the presigned links too) and the download works."""
    redirect = Flaky(store.endpoint, region=REGION)  # then the verifier, then moto
    try:
        files = make_files(tmp_path / "uploads")
        where = prefix()
        aws({**store.env(), "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": redirect.url})
        with Source(["--no-db", "--publish-s3", f"s3://{BUCKET}/{where}", "--files",
                     f"f={files}"]) as source:
            source.wait_ready()
            assert f"bucket {BUCKET} is in region {REGION}, not us-east-1: using {REGION}" \
                in source.stderr
            assert f"%2F{REGION}%2Fs3%2F" in Token_url(source.token)
            laptop(monkeypatch)
            result = synco("download", source.token, "--files-dir", f"f={tmp_path / 'local'}",
                           "--yes")
            assert result.code == 0, result.stderr
        assert tree(tmp_path / "local") == tree(files) and store.keys(where) == []
    finally:
        redirect.shutdown()


# ---------------------------------------------------------------- errors, before the token

def serve_error(args: list[str], env: dict[str, str], aws) -> tuple[int, str, str]:
    aws(env)
    run = subprocess.run([sys.executable, "-m", "synco_source.cli", "serve", "--no-db",
                          "--files", f"f={REPO / 'docs' / 'demo' / 'uploads'}", *args],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SYNCO_S3_RETRIES": "1"})
    errors = [line for line in run.stderr.splitlines() if line.startswith("synco-source: error:")]
    assert run.stdout == "", "no token"
    assert "Traceback" not in run.stderr and len(errors) == 1, run.stderr
    return run.returncode, errors[0], run.stderr


@pytest.mark.parametrize("case", ["unknown key", "wrong secret", "no permission", "no bucket",
                                  "unreachable", "not s3", "no credentials", "ttl", "clock skew",
                                  "no sse-c"])
def test_bad_setups_are_one_line_and_leave_nothing(store, aws, case, tmp_path):
    where = prefix()
    env, bucket = store.env(), BUCKET
    args = []
    if case == "unknown key":
        env["AWS_ACCESS_KEY_ID"] = "AKIANOSUCHKEY0000000"
        expect = "does not know the access key id AKIA...0000"
    elif case == "wrong secret":
        env["AWS_SECRET_ACCESS_KEY"] = "wrong"
        expect = "secret access key does not belong"
    elif case == "no permission":
        env = store.env(store.nobody)
        expect = "no permission to list"
    elif case == "no bucket":
        bucket = "no-such-bucket"
        expect = "bucket no-such-bucket does not exist"
    elif case == "unreachable":
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
        expect = "cannot reach the S3 endpoint"
    elif case == "not s3":
        web = StaticServer(tmp_path)
        env["AWS_ENDPOINT_URL"] = web.url.rstrip("/")
        expect = "does not answer like an S3 store"
    elif case == "no credentials":
        env = {"AWS_ENDPOINT_URL": store.endpoint}
        expect = "--publish-s3 needs credentials"
    elif case == "clock skew":
        env["AWS_ENDPOINT_URL"] = Flaky(store.moto, refuse="skew").url
        expect = "this host's clock is wrong (RequestTimeTooSkewed)"
    elif case == "no sse-c":
        env["AWS_ENDPOINT_URL"] = Flaky(store.moto, refuse="sse-c").url
        args = ["--sse-c"]
        expect = "the S3 store refused SSE-C"
    else:
        args = ["--ttl", "8d"]
        expect = "at most 7 days"
    code, line, stderr = serve_error(["--publish-s3", f"s3://{bucket}/{where}", *args], env, aws)
    assert code != 0 and expect in line, stderr
    for name in ("AWS_SECRET_ACCESS_KEY",):
        if env.get(name) and len(env[name]) > 5:
            assert env[name] not in stderr
    assert store.keys(where) == []


def test_options_that_exclude_publish_s3(aws, tmp_path):
    for args, expect in ((["--publish-dir", str(tmp_path)], "--publish-dir exclude"),
                         (["--once"], "--once exclude"), (["--stdio"], "--stdio exclude")):
        code, line, _ = serve_error(["--publish-s3", "s3://bkt/p/", *args],
                                    {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, aws)
        assert code == 2 and expect in line
    code, line, _ = serve_error(["--sse-c"], {}, aws)
    assert code == 2 and "--sse-c needs --publish-s3" in line
