"""Where ``synco pull`` gets the synco-source binary it uploads to a remote that has none.

In order: ``--source-binary FILE`` or ``$SYNCO_SOURCE_BINARY``; else the copy in synco's cache
(``<platformdirs user cache>/bin/synco-source-<version>-linux-x86_64``); else it is downloaded once
from the release location, the same addresses install.sh uses (``$SYNCO_DOWNLOAD_URL``, default
the GitHub releases: ``<url>/v<version>/<file>`` and ``<url>/v<version>/SHA256SUMS``), checked
against SHA256SUMS and kept in the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from synco_source import __version__
from synco_source.errors import IntegrityError, SyncoError, UsageError

PLATFORM = "linux-x86_64"
FILE = f"synco-source-{PLATFORM}"
DEFAULT_URL = "https://github.com/synco-dev/synco/releases/download"
BINARY_ENV = "SYNCO_SOURCE_BINARY"
URL_ENV = "SYNCO_DOWNLOAD_URL"
OPTIONS = ("pass --source-binary FILE (or set SYNCO_SOURCE_BINARY) to a synco-source-linux-x86_64 "
           "of this version, or install synco-source on the server (install.sh)")


def NoBinary(message: str, hint: str = OPTIONS) -> SyncoError:  # noqa: N802 - raised like a class
    """A plain SyncoError (exit 1): a subclass would change the README's table of exit codes."""
    return SyncoError(f"no synco-source binary to upload: {message}", hint=hint)


def cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("synco")) / "bin"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_url() -> str:
    base = (os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
    return f"{base}/v{__version__}"


def obtain(option: Path | None, say=lambda text: None) -> Path:
    """The local file to upload (see the module docstring)."""
    given = option or (Path(os.environ[BINARY_ENV]) if os.environ.get(BINARY_ENV) else None)
    if given is not None:
        if not given.is_file() or not os.access(given, os.R_OK):
            source = "--source-binary" if option else BINARY_ENV
            raise UsageError(f"{source} {given}: no such readable file",
                             hint="give the path of a synco-source-linux-x86_64 binary")
        return given
    cached = cache_dir() / f"synco-source-{__version__}-{PLATFORM}"
    if cached.is_file():
        return cached
    return download(cached, say)


def parse_sums(text: str, name: str) -> str | None:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and len(parts[0]) == 64:
            return parts[0].lower()
    return None


def download(dest: Path, say) -> Path:
    """Fetch the release binary and SHA256SUMS; keep the binary only when they agree."""
    import httpx

    where = release_url()
    say(f"downloading {where}/{FILE} (once; kept in {dest.parent})")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NoBinary(f"cannot write the cache folder {dest.parent}: {exc.strerror}",
                       hint=OPTIONS) from None
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=10.0),
                          headers={"User-Agent": "synco"}) as client:
            sums = client.get(f"{where}/SHA256SUMS")
            sums.raise_for_status()
            want = parse_sums(sums.text, FILE)
            if want is None:
                raise NoBinary(f"{where}/SHA256SUMS lists no {FILE}", hint=OPTIONS)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{FILE}.")
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as fh, client.stream("GET", f"{where}/{FILE}") as resp:
                    resp.raise_for_status()
                    for block in resp.iter_bytes(1 << 20):
                        digest.update(block)
                        fh.write(block)
                if digest.hexdigest() != want:
                    raise IntegrityError(f"{where}/{FILE} does not match its SHA256SUMS "
                                         f"(expected {want}, got {digest.hexdigest()})",
                                         hint="try again; report it if it persists")
                os.chmod(tmp, 0o755)
                os.replace(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except httpx.HTTPStatusError as exc:
        raise NoBinary(f"{exc.request.url} answered HTTP {exc.response.status_code}",
                       hint=OPTIONS) from None
    except httpx.HTTPError as exc:
        raise NoBinary(f"cannot download from {where}: {exc or type(exc).__name__}",
                       hint=OPTIONS) from None
    except OSError as exc:
        raise NoBinary(f"cannot write {dest}: {exc.strerror}", hint=OPTIONS) from None
    return dest
