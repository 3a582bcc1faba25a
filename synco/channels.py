"""Control channels of ``synco pull``: how a command runs on the remote side with its stdin and
stdout joined to ours (ssh, ``kubectl exec -i``, ``docker exec -i``, a generic ``--exec`` prefix).

A channel turns the remote command, given as an argument list, into the local argument list to
run (never through a local shell): ssh passes a command *line* to the remote user's shell, so
each word is quoted for a POSIX shell there; kubectl and docker pass arguments as they are.
``explain()`` turns a failed run (exit status and stderr) into one clear SyncoError: ssh says
everything with exit status 255 and a message, kubectl and docker with their own messages.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from synco_source.errors import ServerUnreachable, SyncoError, UsageError

SSH_ENV = "SYNCO_SSH_COMMAND"
KUBECTL = "kubectl"
DOCKER = "docker"
SCHEMES = ("ssh", "kubectl", "docker")
# argv[0] names of prefixes for --exec that pass a command line (not arguments) to a shell
LINE_PROGRAMS = {"ssh", "autossh"}


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class Channel:
    """The base: ``label`` names the remote in messages (no passwords: none can be given)."""

    label = ""
    tool = ""  # the local program the channel needs

    def argv(self, words: list[str]) -> list[str]:
        raise NotImplementedError

    def check_local(self) -> None:
        """The local program is there (before anything is run)."""
        if self.tool and shutil.which(self.tool) is None:
            raise UsageError(f"{self.tool} is not installed on this machine (needed for "
                             f"{self.label})", hint=f"install {self.tool} or put it on PATH")

    def prepare(self) -> None:
        """Work done once before the first command (kubectl: find the pod of a deployment)."""

    def explain(self, code: int, stderr: str) -> SyncoError | None:
        """The error for a run that failed in the channel itself, or None when the remote
        command ran (its own exit status and messages then tell)."""
        return None


# ------------------------------------------------------------------------------------------ ssh

@dataclass
class Ssh(Channel):
    host: str
    user: str | None = None
    port: int | None = None
    batch: bool | None = None  # None: BatchMode when there is no terminal to ask on

    tool = "ssh"

    def __post_init__(self) -> None:
        if not self.host or self.host.startswith("-"):
            raise UsageError(f"bad ssh host {self.host!r}", hint="write ssh://[user@]host[:port]/path")
        self.label = "ssh://" + (f"{self.user}@" if self.user else "") + self.host + (
            f":{self.port}" if self.port else "")
        self.command = shlex.split(os.environ.get(SSH_ENV, "") or "ssh")
        self.tool = self.command[0] if self.command else "ssh"

    def base(self) -> list[str]:
        batch = self.batch if self.batch is not None else not sys.stdin.isatty()
        argv = [*self.command, "-T", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if batch:
            argv += ["-o", "BatchMode=yes"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        return argv

    def argv(self, words: list[str]) -> list[str]:
        return [*self.base(), self.host, " ".join(shlex.quote(w) for w in words)]

    def login_hint(self) -> str:
        return "ssh " + " ".join(shlex.quote(w) for w in (
            (["-p", str(self.port)] if self.port else [])
            + [f"{self.user}@{self.host}" if self.user else self.host]))

    def explain(self, code: int, stderr: str) -> SyncoError | None:
        if code not in (255, -1):  # -1: not known (it ended before the pipe opened)
            return None
        text = stderr
        try_it = self.login_hint()
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
            return ServerUnreachable("its host key has changed since it was accepted (a new "
                                     "server, or someone in between)", url=self.label,
                                     hint=f"check with the server's admin, then fix known_hosts "
                                          f"(ssh-keygen -R {self.host}) and run: {try_it}")
        if "Host key verification failed" in text or "No ED25519 host key is known" in text \
                or re.search(r"No \S+ host key is known", text):
            return ServerUnreachable("its host key is not known here, so ssh refused to connect",
                                     url=self.label,
                                     hint=f"check the key and accept it once by running: {try_it}")
        if "Permission denied" in text or "Too many authentication failures" in text:
            return ServerUnreachable(f"the login was refused ({last_line(text)})", url=self.label,
                                     hint="check the user name, that your key is loaded (ssh-add "
                                          f"-l) and authorized there; try: {try_it}")
        for pattern in ("Could not resolve hostname", "Connection refused", "Connection timed out",
                        "No route to host", "Network is unreachable", "Connection reset",
                        "Connection closed", "kex_exchange_identification", "Broken pipe",
                        "Timeout, server"):
            if pattern in text:
                return ServerUnreachable(last_line(text) or pattern, url=self.label,
                                         hint=f"check the host name and port, and try: {try_it}")
        return ServerUnreachable(last_line(text) or "ssh failed (exit status 255)", url=self.label,
                                 hint=f"try: {try_it}")


# -------------------------------------------------------------------------------------- kubectl

def label_selector(selector: dict) -> str:
    """A deployment's ``spec.selector`` as a ``kubectl -l`` argument (set-based terms too)."""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(terms)


def pick_pod(pods: dict) -> str | None:
    """A running pod, ready ones first, not one being deleted; None when there is none."""
    best = []
    for pod in pods.get("items", []):
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        if status.get("phase") != "Running" or meta.get("deletionTimestamp"):
            continue
        ready = all(c.get("ready") for c in status.get("containerStatuses") or [])
        best.append((not ready, meta.get("name", "")))
    return min(best)[1] if best else None


@dataclass
class Kubectl(Channel):
    namespace: str
    pod: str  # a pod name or deploy:NAME
    container: str | None = None
    context: str | None = None
    deployment: str | None = field(default=None, init=False)

    tool = KUBECTL

    def __post_init__(self) -> None:
        if self.pod.startswith(("deploy:", "deployment:")):
            self.deployment = self.pod.split(":", 1)[1]
        if not self.namespace or not self.pod or (self.deployment is not None and not self.deployment):
            raise UsageError("a kubectl URL needs a namespace and a pod",
                             hint="write kubectl://NAMESPACE/POD/path or kubectl://NAMESPACE/deploy:NAME/path")
        self.label = f"kubectl://{self.namespace}/{self.pod}"

    def common(self) -> list[str]:
        return ["-n", self.namespace] + (["--context", self.context] if self.context else [])

    def argv(self, words: list[str]) -> list[str]:
        return [KUBECTL, "exec", "-i", *self.common(), self.pod,
                *(["-c", self.container] if self.container else []), "--", *words]

    def _get(self, *args: str) -> dict:
        run = subprocess.run([KUBECTL, "get", *args, *self.common(), "-o", "json"],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if run.returncode:
            raise self.explain(run.returncode, run.stderr) or ServerUnreachable(
                last_line(run.stderr) or f"kubectl get failed ({run.returncode})", url=self.label)
        try:
            return json.loads(run.stdout)
        except ValueError:
            raise ServerUnreachable("kubectl get printed no JSON", url=self.label) from None

    def prepare(self) -> None:
        """deploy:NAME becomes a running pod of that deployment (its selector, then the pods)."""
        if self.deployment is None or not self.pod.startswith(("deploy:", "deployment:")):
            return
        deploy = self._get("deployment", self.deployment)
        selector = label_selector(deploy.get("spec", {}).get("selector") or {})
        if not selector:
            raise ServerUnreachable(f"deployment {self.deployment} has no pod selector",
                                    url=self.label)
        pod = pick_pod(self._get("pods", "-l", selector))
        if pod is None:
            raise ServerUnreachable(f"deployment {self.deployment} has no running pod",
                                    url=self.label,
                                    hint=f"check: kubectl get pods -n {self.namespace} -l {selector}")
        self.pod = pod

    def explain(self, code: int, stderr: str) -> SyncoError | None:
        text = stderr
        if re.search(r'deployments?\.apps "[^"]*" not found', text):
            return ServerUnreachable(f"no deployment {self.deployment} in namespace "
                                     f"{self.namespace}", url=self.label,
                                     hint=f"list them: kubectl get deployments -n {self.namespace}")
        if re.search(r'pods? "[^"]*" not found', text):
            return ServerUnreachable(f"no pod {self.pod} in namespace {self.namespace}",
                                     url=self.label,
                                     hint=f"list them: kubectl get pods -n {self.namespace}")
        if "container not found" in text or re.search(r"container \S+ is not valid", text):
            return ServerUnreachable(f"pod {self.pod} has no container {self.container}",
                                     url=self.label,
                                     hint=f"see its containers: kubectl get pod {self.pod} -n "
                                          f"{self.namespace} -o jsonpath='{{.spec.containers[*].name}}'")
        if re.search(r"context \"?[^\"]*\"? (was not found|does not exist)", text):
            return UsageError(f"kubectl has no context {self.context}",
                              hint="list them: kubectl config get-contexts")
        if "Unable to connect to the server" in text or "connection refused" in text:
            return ServerUnreachable(last_line(text), url=self.label,
                                     hint="check kubectl's context and that the cluster answers "
                                          "(kubectl get pods)")
        if code in (1, 126, 127) and "executable file not found" in text:
            return ServerUnreachable("the container has no sh to run synco-source with",
                                     url=self.label)
        return None


# --------------------------------------------------------------------------------------- docker

@dataclass
class Docker(Channel):
    container: str

    tool = DOCKER

    def __post_init__(self) -> None:
        if not self.container or self.container.startswith("-"):
            raise UsageError(f"bad container name {self.container!r}",
                             hint="write docker://CONTAINER/path")
        self.label = f"docker://{self.container}"

    def argv(self, words: list[str]) -> list[str]:
        return [DOCKER, "exec", "-i", self.container, *words]

    def explain(self, code: int, stderr: str) -> SyncoError | None:
        if "No such container" in stderr:
            return ServerUnreachable(f"no container {self.container}", url=self.label,
                                     hint="list the running ones: docker ps")
        if "is not running" in stderr:
            return ServerUnreachable(f"container {self.container} is not running", url=self.label,
                                     hint=f"start it: docker start {self.container}")
        if "Cannot connect to the Docker daemon" in stderr or "permission denied while trying" in stderr:
            return ServerUnreachable(last_line(stderr), url=self.label,
                                     hint="check that docker runs and that you may use it (docker ps)")
        if code in (126, 127) and "executable file not found" in stderr:
            return ServerUnreachable("the container has no sh to run synco-source with",
                                     url=self.label)
        return None


# ----------------------------------------------------------------------------------------- exec

@dataclass
class Exec(Channel):
    """Any command that runs a command with our stdin/stdout: ``--exec 'PREFIX'``. A prefix
    whose program is ssh gets the command as one quoted line (ssh hands a line to the remote
    shell; ``ssh host sudo -u www-data`` works so), any other gets it as arguments
    (``docker exec -i c``, ``kubectl exec -i pod --``)."""

    prefix: str

    def __post_init__(self) -> None:
        try:
            self.words = shlex.split(self.prefix)
        except ValueError as exc:
            raise UsageError(f"--exec {self.prefix!r}: {exc}",
                             hint="quote it like a shell command line") from None
        if not self.words:
            raise UsageError("--exec needs a command", hint="e.g. --exec 'ssh host sudo -u www-data'")
        self.tool = self.words[0]
        self.line = os.path.basename(self.words[0]) in LINE_PROGRAMS
        self.label = f"--exec {self.prefix}"

    def argv(self, words: list[str]) -> list[str]:
        if self.line:
            return [*self.words, *(shlex.quote(w) for w in words)]
        return [*self.words, *words]

    def explain(self, code: int, stderr: str) -> SyncoError | None:
        if self.line and code == 255:
            return ServerUnreachable(last_line(stderr) or "ssh failed (exit status 255)",
                                     url=self.label)
        return None


# ------------------------------------------------------------------------------------ addresses

@dataclass
class Target:
    channel: Channel
    path: str  # the application's folder on the remote side ("~/x" is under the home folder)

    @property
    def label(self) -> str:
        return f"{self.channel.label}{self.path if self.path.startswith('/') else '/' + self.path}"


def _path(raw: str) -> str:
    path = unquote(raw) or "/"
    if path.startswith("/~"):  # ssh://host/~/app as git writes it: relative to the home folder
        path = path[1:]
    return path


def is_url(text: str) -> bool:
    return bool(re.match(r"^[a-z]+://", text))


def parse(url: str, *, container: str | None = None, context: str | None = None,
          path: str | None = None) -> Target:
    """A ``ssh://``, ``kubectl://`` or ``docker://`` URL as a Target; ``path`` (a remote's
    ``path`` in synco.yaml) adds or replaces the URL's folder."""
    scheme, _, rest = url.partition("://")
    if scheme not in SCHEMES:
        raise UsageError(f"unknown remote {url!r}", hint="write ssh://[user@]host[:port]/path, "
                         "kubectl://NAMESPACE/POD/path, docker://CONTAINER/path or a remote "
                         "named in synco.yaml")
    if scheme != "kubectl" and (container or context):
        raise UsageError(f"--container and --context are for kubectl:// URLs, not {scheme}://")

    def folder(raw: str, example: str) -> str:
        if path:
            return path
        if not raw.strip("/"):
            raise UsageError(f"no application folder in {url!r}",
                             hint=f"write the folder after the {example}")
        return _path(raw)

    if scheme == "ssh":
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise UsageError(f"bad port in {url!r}", hint="write ssh://host:2222/path") from None
        if not parts.hostname:
            raise UsageError(f"no host in {url!r}", hint="write ssh://[user@]host[:port]/path")
        return Target(Ssh(parts.hostname, unquote(parts.username) if parts.username else None,
                          port), folder(parts.path, "host: ssh://host/var/www/shop"))
    if scheme == "kubectl":
        namespace, _, tail = rest.partition("/")
        pod, _, where = tail.partition("/")
        return Target(Kubectl(unquote(namespace), unquote(pod), container, context),
                      folder("/" + where, "pod: kubectl://NAMESPACE/POD/app"))
    name, _, where = rest.partition("/")
    return Target(Docker(unquote(name)), folder("/" + where, "container: docker://CONTAINER/app"))


def exec_target(prefix: str, path: str) -> Target:
    if not path:
        raise UsageError("--exec needs the application's folder on the remote side",
                         hint="e.g. synco pull --exec 'ssh host sudo -u www-data' /var/www/shop")
    return Target(Exec(prefix), path)
