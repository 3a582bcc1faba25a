"""``synco pull``: one command on the laptop drives the whole sync over a control channel.

1. find the remote (a URL, ``--exec``, or a remote named in synco.yaml) and check the local tool;
2. probe it over the channel: OS and architecture, the application's folder, a synco-source of
   this version already there (PATH, ~/.local/bin, the folders install.sh uses); sweep the
   folders of earlier pulls whose process is gone;
3. when there is none, upload the release binary (``sourcebin``) into a private folder made by
   ``mktemp -d`` (mode 0700) and check its SHA-256 there;
4. run ``synco-source serve --stdio --recipient KEY`` in the application's folder over the
   channel, with a fresh key pair of which only the public key leaves this machine, and import
   exactly as ``synco download`` does, the pipe being the object source.

Everything the remote side writes is inside one folder ``$TMPDIR/synco-pull-<pid>.<random>``
(``TMPDIR`` of synco-source points there, so its session folder and the binary's unpacked
libraries are inside too): a shell wrapper removes it when synco-source ends, which happens at the
end of its stdin, i.e. whenever this side goes away for any reason; a shell killed with SIGKILL
leaves it for the next pull to sweep (its pid is in the name). Nothing is written into the
application's folders and nothing listens.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from synco_source import __version__, engines
from synco_source.errors import (ServerUnreachable, SourceFailed, SyncoError, UnsupportedFormat,
                                 UsageError)

from . import channels, sourcebin
from .channels import Channel, Target, last_line
from .download import Download, DownloadOptions, Summary
from .ui import UI

SUPPORTED = ("Linux x86_64", "Linux amd64")
PROBE_TIMEOUT = 120
POLL = 0.05  # seconds between two looks at the remote session's state (one small frame each)

# Every remote script runs as `sh -c SCRIPT synco-pull ARGS...`: arguments are never pasted into
# the script, so no quoting of ours can go wrong on the remote side.
_HOME = 'case $p in "~") p=$HOME ;; "~/"*) p=$HOME/${p#"~/"} ;; esac\n'

# where a pull may keep its folder, as the release binary's launcher looks for one: the first
# that is writable and lets programs run (a /tmp mounted noexec is common on hardened servers)
BASES = '"${TMPDIR:-/tmp}" /tmp /var/tmp /dev/shm ${XDG_RUNTIME_DIR:+"$XDG_RUNTIME_DIR"} "$HOME"'

# where synco-source may be installed: PATH, install.sh's folder (~/.local/bin), its fallback the
# current folder (the home folder or the application's)
CANDIDATES = ('"$(command -v synco-source 2>/dev/null)" "$HOME/.local/bin/synco-source" '
              '"$HOME/synco-source" "$p/synco-source"')

# folders of earlier pulls whose owning shell is gone and that are older than a minute
SWEEP = r'''for base in BASES; do
  for f in "$base"/synco-pull-*; do
    [ -d "$f" ] && [ -O "$f" ] || continue
    pid=${f##*/synco-pull-}; pid=${pid%%.*}
    case $pid in ''|*[!0-9]*) continue ;; esac
    kill -0 "$pid" 2>/dev/null && continue
    [ -n "$(find "$f" -maxdepth 0 -mmin +1 2>/dev/null)" ] || continue
    rm -rf "$f" && echo "swept $f"
  done
done
'''.replace("BASES", BASES)

PROBE = 'p=$1\n' + _HOME + r'''
echo "os $(uname -sm 2>/dev/null)"
if [ ! -e "$p" ]; then echo "dir missing"
elif [ ! -d "$p" ]; then echo "dir notdir"
elif ! cd "$p" 2>/dev/null || [ ! -r . ]; then echo "dir denied"
else echo "dir ok"; fi
for c in CANDIDATES; do
  if [ -n "$c" ] && [ -f "$c" ] && [ -x "$c" ]; then
    echo "have $("$c" --version 2>/dev/null | head -n 1) @ $c"
  fi
done
'''.replace("CANDIDATES", CANDIDATES) + SWEEP + "echo end\n"

UPLOAD = r'''d= keep= tried=
trap '[ -n "$keep" ] || [ -z "$d" ] || rm -rf "$d"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
for base in BASES; do
  [ -d "$base" ] && [ -w "$base" ] || continue
  d=$(mktemp -d "$base/synco-pull-$$.XXXXXX" 2>/dev/null) || { d=; continue; }
  chmod 700 "$d" && printf '#!/bin/sh\n' >"$d/run-test" && chmod 700 "$d/run-test" &&
    "$d/run-test" 2>/dev/null && rm -f "$d/run-test" && break
  rm -rf "$d"; d=; tried="$tried $base"
done
[ -n "$d" ] || { echo "synco-pull: no folder where programs may run (tried:$tried)" >&2; exit 3; }
cat >"$d/synco-source" && chmod 700 "$d/synco-source" || {
  echo "synco-pull: cannot write $d/synco-source" >&2; exit 3; }
echo "dir $d"
if command -v sha256sum >/dev/null 2>&1; then echo "sha256 $(sha256sum "$d/synco-source" | cut -d' ' -f1)"
elif command -v shasum >/dev/null 2>&1; then echo "sha256 $(shasum -a 256 "$d/synco-source" | cut -d' ' -f1)"
fi
echo "version $(TMPDIR=$d "$d/synco-source" --version 2>&1 | tail -n 1)"
touch "$d"
keep=1
echo end
'''.replace("BASES", BASES)

# The remote command of the pull. Without a binary or an upload it first looks for an installed
# synco-source of this version itself (one login instead of two for the common case) and, when
# there is none, says NOT_INSTALLED and ends before anything is made.
NOT_INSTALLED = "synco-pull: no synco-source of this version here"
SERVE = 'p=$1; bin=$2; up=$3; want=$4; shift 4\n' + _HOME + r'''
if [ -z "$bin" ] && [ -z "$up" ]; then
  for c in CANDIDATES; do
    if [ -n "$c" ] && [ -f "$c" ] && [ -x "$c" ] &&
       [ "$("$c" --version 2>/dev/null | head -n 1)" = "$want" ]; then bin=$c; break; fi
  done
  if [ -z "$bin" ]; then echo "NOT_INSTALLED" >&2; exit 3; fi
  echo "synco-pull: using $bin" >&2
  { SWEEP } >&2
fi
if [ -n "$up" ]; then'''.replace("CANDIDATES", CANDIDATES).replace("NOT_INSTALLED", NOT_INSTALLED).replace(
    "{ SWEEP }", "{\n" + SWEEP + "}") + r'''
  d=${up%/*}/synco-pull-$$.${up##*.}
  mv "$up" "$d" || { echo "synco-pull: the uploaded synco-source in $up is gone" >&2; exit 3; }
  bin=$d/synco-source
else
  for base in BASES; do
    d=$(mktemp -d "$base/synco-pull-$$.XXXXXX" 2>/dev/null) && break
    d=
  done
  [ -n "$d" ] || { echo "synco-pull: no folder where a temporary folder can be made" >&2; exit 3; }
fi
trap 'rm -rf "$d"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
chmod 700 "$d"
cd "$p" 2>/dev/null && [ -r . ] || { echo "synco-pull: cannot enter $p" >&2; exit 3; }
TMPDIR=$d "$bin" serve --stdio "$@"
'''.replace("BASES", BASES)


class Unserved(Exception):
    """The remote command ended before synco-source ran (none of this version there, or the
    folder cannot be entered): internal, pull then probes (which names a folder problem) and
    uploads."""


@dataclass
class PullOptions:
    target: str | None = None          # URL, remote name, or the folder with --exec
    container: str | None = None
    context: str | None = None
    exec_prefix: str | None = None
    source_binary: Path | None = None
    all_data: bool = False
    root: Path = field(default_factory=Path.cwd)  # where synco.yaml names the remotes
    download: DownloadOptions = field(default_factory=DownloadOptions)


@dataclass
class Probe:
    os: str = ""
    folder: str = ""
    have: list[tuple[str, str]] = field(default_factory=list)  # (version line, path)
    swept: list[str] = field(default_factory=list)

    def installed(self) -> str | None:
        want = f"synco-source {__version__}"
        return next((path for line, path in self.have if line.strip() == want), None)


# ------------------------------------------------------------------------------------ targets

def resolve_target(opts: PullOptions) -> Target:
    """The remote: ``--exec`` with a folder, a URL, or a remote named in synco.yaml (the only one
    when none is named)."""
    if opts.exec_prefix:
        if opts.container or opts.context:
            raise UsageError("--container and --context are for kubectl:// URLs, not --exec")
        return channels.exec_target(opts.exec_prefix, opts.target or "")
    if opts.target and channels.is_url(opts.target):
        return channels.parse(opts.target, container=opts.container, context=opts.context)
    remotes = _remotes(opts.root)
    if opts.target is None:
        if len(remotes) != 1:
            raise UsageError("which remote? " + (f"synco.yaml names {len(remotes)}: "
                                                 f"{', '.join(sorted(remotes))}" if remotes
                                                 else "none is named in synco.yaml"),
                             hint="synco pull ssh://[user@]host/path, or NAME of a remote in "
                                  "synco.yaml (remotes: {production: {url: ssh://...}})")
        spec = next(iter(remotes.values()))
    elif opts.target in remotes:
        spec = remotes[opts.target]
    else:
        raise UsageError(f"{opts.target!r} is neither a URL nor a remote named in synco.yaml",
                         hint="write ssh://[user@]host/path, kubectl://NS/POD/path, "
                              "docker://CONTAINER/path" + (f", or one of: {', '.join(sorted(remotes))}"
                                                           if remotes else ""))
    return target_of(spec, opts)


def _remotes(root: Path) -> dict:
    from synco_frameworks import config

    found = config.load(root, os.environ)
    return dict(found.remotes) if found is not None else {}


def target_of(spec, opts: PullOptions) -> Target:
    """A synco.yaml remote as a Target; command-line --container/--context win."""
    container = opts.container or spec.container
    context = opts.context or spec.context
    if spec.exec:
        return channels.exec_target(spec.exec, spec.path or "")
    return channels.parse(spec.url, container=container, context=context, path=spec.path)


# ------------------------------------------------------------------------------- remote steps

def sh(script: str, *args: str) -> list[str]:
    return ["sh", "-c", script, "synco-pull", *args]


def _channel_error(channel: Channel, code: int, stderr: str, what: str) -> SyncoError:
    found = channel.explain(code, stderr)
    if found is not None:
        return found
    ours = [line for line in stderr.splitlines() if line.startswith("synco-pull: ")]
    if ours:  # our own scripts' words: the channel worked, the remote side could not
        return SyncoError(f"{ours[-1].removeprefix('synco-pull: ')} on {channel.label}",
                          hint="set TMPDIR there to a folder where programs may run, or install "
                               "synco-source there (install.sh)")
    return ServerUnreachable(f"{what} failed: {last_line(stderr) or f'exit status {code}'}",
                             url=channel.label)


def probe(target: Target) -> Probe:
    channel = target.channel
    try:
        run = subprocess.run(channel.argv(sh(PROBE, target.path)), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except FileNotFoundError:
        raise UsageError(f"{channel.tool} is not installed on this machine (needed for "
                         f"{channel.label})", hint=f"install {channel.tool} or put it on PATH") from None
    except subprocess.TimeoutExpired:
        raise ServerUnreachable(f"no answer within {PROBE_TIMEOUT} s", url=channel.label) from None
    lines = run.stdout.splitlines()
    if "end" not in lines:
        raise _channel_error(channel, run.returncode, run.stderr, "the first command there")
    found = Probe()
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "os":
            found.os = rest.strip()
        elif word == "dir":
            found.folder = rest.strip()
        elif word == "have":
            version, _, path = rest.rpartition(" @ ")
            found.have.append((version, path))
        elif word == "swept":
            found.swept.append(rest)
    where = f"{target.path} on {channel.label}"
    if found.folder == "missing":
        raise UsageError(f"no folder {where}", hint="give the application's folder (where its "
                         "configuration is) after the host")
    if found.folder == "notdir":
        raise UsageError(f"{where} is not a folder", hint="give the application's folder")
    if found.folder == "denied":
        raise SyncoError(f"no permission to read {where}",
                         hint="log in as the application's user, e.g. "
                              "--exec 'ssh HOST sudo -u www-data' FOLDER")
    return found


def upload(target: Target, binary: Path, ui: UI) -> str:
    """Send the binary through the channel into a new private folder; its path there."""
    channel = target.channel
    size = binary.stat().st_size
    ui.info(f"uploading synco-source ({size / 1e6:.1f} MB) to {channel.label}")
    with open(binary, "rb") as fh:
        run = subprocess.run(channel.argv(sh(UPLOAD)), stdin=fh, capture_output=True)
    out = run.stdout.decode("utf-8", "replace").splitlines()
    err = run.stderr.decode("utf-8", "replace")
    if "end" not in out:
        raise _channel_error(channel, run.returncode, err, "uploading synco-source")
    fields = {line.partition(" ")[0]: line.partition(" ")[2].strip() for line in out}
    folder = fields.get("dir", "")
    want = sourcebin.sha256_of(binary)
    version = fields.get("version", "")
    if "sha256" in fields and fields["sha256"] != want:
        _remove(target, folder)
        raise SyncoError(f"the uploaded synco-source has SHA-256 {fields['sha256'][:16]}… on "
                         f"{channel.label}, not {want[:16]}… (damaged on the way)",
                         hint="run synco pull again")
    if not version.startswith("synco-source "):
        _remove(target, folder)
        if "ermission denied" in version or "cannot execute" in version.lower():
            raise SyncoError(f"programs cannot run from {folder.rsplit('/', 1)[0]} on "
                             f"{channel.label} (mounted noexec?)",
                             hint="point TMPDIR on the server at a folder where programs may run, "
                                  "or install synco-source there (install.sh)")
        raise SyncoError(f"the uploaded synco-source does not run on {channel.label}: "
                         f"{version or 'no output'}", hint=sourcebin.OPTIONS)
    if version != f"synco-source {__version__}":
        ui.warn(f"{binary} is {version}, this synco is {__version__}")
    return folder


def _remove(target: Target, folder: str) -> None:
    if folder:
        subprocess.run(target.channel.argv(sh('rm -rf "$1"', folder)), stdin=subprocess.DEVNULL,
                       capture_output=True)


def serve_argv(target: Target, binary: str, uploaded: str, recipient: str | None,
               all_data: bool) -> list[str]:
    """The channel's command line for synco-source; ``recipient`` None only in tests of the
    transport (the session key then travels in the hello)."""
    args = (["--recipient", recipient] if recipient else []) + (["--all"] if all_data else [])
    return target.channel.argv(sh(SERVE, target.path, binary, uploaded,
                                  f"synco-source {__version__}", *args))


def remote_failure(channel: Channel, code: int | None, stderr: str,
                   fallback: SyncoError | None = None) -> SyncoError:
    """Why the remote side ended: synco-source's own error line, a channel error, or its last
    line of stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.split("error:", 1)[1].strip() for line in lines
              if line.startswith("synco-source: error:")]
    hints = [line.split("hint:", 1)[1].strip() for line in lines
             if line.startswith("synco-source: hint:")]
    if errors:
        return SourceFailed(errors[-1], hint=hints[-1] if hints else None)
    found = channel.explain(code if code is not None else -1, stderr)
    if found is not None:
        return found
    if fallback is not None:
        return fallback
    return ServerUnreachable(f"the remote side ended: {lines[-1] if lines else 'no message'}"
                             + (f" (exit status {code})" if code not in (None, 0) else ""),
                             url=channel.label,
                             hint="run synco pull again; the line above is the remote side's last")


# ---------------------------------------------------------------------------------- the pull

def pull(opts: PullOptions, ui: UI) -> Summary:
    from . import keys

    target = resolve_target(opts)
    channel = target.channel
    channel.check_local()
    channel.prepare()
    warm_up(opts.download)
    identity = keys.Identity.generate()  # this pull's own key pair: only the public half travels
    try:  # a synco-source of this version already there: one login does it all
        return serve(target, serve_argv(target, "", "", identity.public_text, opts.all_data),
                     identity, opts.download, ui)
    except Unserved:
        pass
    found = probe(target)
    for folder in found.swept:
        ui.info(f"removed {folder} of an earlier pull on {channel.label}")
    binary, uploaded = found.installed(), ""
    if not binary:
        for line, path in found.have:
            ui.info(f"{channel.label}: {path} is {line or 'not runnable'}, not synco-source "
                    f"{__version__}; uploading one for this pull")
        if found.os not in SUPPORTED:
            raise SyncoError(f"{channel.label} runs {found.os or 'an unknown system'}, and the "
                             f"synco-source binary is for Linux x86_64 only",
                             hint="install synco-source there with Python 3.11+ "
                                  "(pipx install synco), then run synco pull again")
        uploaded = upload(target, sourcebin.obtain(opts.source_binary, ui.info), ui)
    return serve(target, serve_argv(target, binary or "", uploaded, identity.public_text,
                                    opts.all_data), identity, opts.download, ui)


def warm_up(download: DownloadOptions) -> None:
    """Import the local database's engine (its driver: about 0.15 s) on a thread while the channel
    logs in and the remote side starts, instead of once the schema has arrived."""
    url = download.db_url
    if url is None or download.output is not None:
        return

    def load() -> None:
        try:
            engines.engine_module(url.engine)
        except Exception:  # noqa: BLE001 - the import is tried again where it is needed
            pass

    threading.Thread(target=load, name="warm-up", daemon=True).start()


def serve(target: Target, argv: list[str], identity, download: DownloadOptions, ui: UI,
          env: dict | None = None) -> Summary:
    """Run synco-source over the channel and import from it; the remote side's messages are
    shown as ``remote: ...`` and its last ones explain a failure."""
    from .pipe import PipeSource, open_session

    channel = target.channel
    tail: deque[str] = deque(maxlen=40)

    def heard(line: str) -> None:
        tail.append(line)
        if line.startswith("swept "):
            ui.info(f"removed {line[6:]} of an earlier pull on {channel.label}")
        elif line.startswith("synco-pull: using "):
            ui.info(f"{channel.label}: using {line[18:]}")
        elif not line.startswith(("synco-source: error:", "synco-source: hint:", NOT_INSTALLED)) \
                and "stop with Ctrl-C" not in line:  # its words for a server someone watches
            ui.info(f"remote: {line.removeprefix('synco-source: ')}")

    # asking the remote side for its state costs a frame, not a request to a web server: ask often
    download = dataclasses.replace(download, poll_interval=min(download.poll_interval, POLL))
    source = None
    try:
        source = PipeSource(argv, env, on_stderr=heard, name=channel.label)
        sc = open_session(source, identity)
        return Download(download, ui, remote=source, sc=sc).run()
    except (ServerUnreachable, UnsupportedFormat) as exc:
        code = source.close(wait=2.0) if source is not None else None
        if source is None and any(line.startswith("synco-pull: ")
                                  and not line.startswith("synco-pull: using ") for line in tail):
            raise Unserved() from None
        raise remote_failure(channel, code, "\n".join(tail), fallback=exc) from None
    finally:
        if source is not None:
            source.close()


def describe_remotes(root: Path) -> list[str]:
    """The lines of ``synco remotes``."""
    remotes = _remotes(root)
    if not remotes:
        raise UsageError("no remotes in synco.yaml here",
                         hint="add remotes: {production: {url: ssh://user@host/var/www/app}}")
    lines = []
    for name, spec in sorted(remotes.items()):
        where = f"--exec {spec.exec} {spec.path}" if spec.exec else target_of(spec, PullOptions()).label
        extra = [f"{k} {v}" for k, v in (("container", spec.container), ("context", spec.context)) if v]
        lines.append(f"{name}  {where}" + (f"  ({', '.join(extra)})" if extra else ""))
    return lines
