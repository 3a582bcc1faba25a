"""The destination guard: ``synco download``/``pull`` replace only a database on this machine.

A download drops and replaces the whole destination database. The URL comes from a project's
settings, an ``.env``, ``SYNCO_DB_URL`` or the command line, and any of them can point at a
production server by mistake (a copied ``.env``, a mistyped host). So the client replaces a
database only where the host is local:

* a Unix socket, ``localhost`` (and ``*.localhost``), a loopback address (127.0.0.0/8, ``::1``)
  or the unspecified address (``0.0.0.0``, which reaches this machine);
* a name the local project declares as its own development server: ``local_hosts`` in
  synco.yaml (e.g. ``local_hosts: [db]``) and the service names of the project's Docker Compose
  file (``db``, ``mysql``... reachable by name only inside its own network).

Names are not resolved: a DNS or hosts-file answer is no proof that a name is this machine.
Anything else needs ``--allow-remote-target``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from synco_source.dburl import DatabaseUrl
from synco_source.errors import UsageError

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def _normal(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def is_local(url: DatabaseUrl, local_hosts: Iterable[str] = ()) -> bool:
    """Whether ``url`` names a database server on this machine (see the module docstring)."""
    if url.socket or url.engine == "sqlite":  # a socket, or a file: on this machine
        return True
    host = _normal(url.host)
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    if host in {_normal(h) for h in local_hosts}:
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped or address
    return address.is_loopback or address.is_unspecified


def check_target(url: DatabaseUrl, *, allow: bool = False, local_hosts: Iterable[str] = ()) -> None:
    """Raise UsageError (one line, naming the host) unless ``url`` is local or ``allow``."""
    if allow or is_local(url, local_hosts):
        return
    where = f"{url.host}:{url.port}"
    raise UsageError(f"refusing to replace database {url.database!r} on {where}: that host is "
                     f"not this machine",
                     hint="check --db-url / SYNCO_DB_URL / the project's settings; if you do "
                          "mean to overwrite it, pass --allow-remote-target (or list the host "
                          "under local_hosts in synco.yaml)")


def compose_services(root: Path) -> list[str]:
    """The service names of the Docker Compose file in ``root`` (none when it has none or cannot
    be read: the guard then simply knows fewer names)."""
    import yaml

    for name in COMPOSE_FILES:
        path = root / name
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, yaml.YAMLError):
            return []
        services = data.get("services") if isinstance(data, dict) else None
        return [str(s) for s in services] if isinstance(services, dict) else []
    return []


def project_hosts(root: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Host names the project in ``root`` declares as its own: synco.yaml's ``local_hosts`` and
    the Docker Compose services."""
    from synco_frameworks import config

    hosts = compose_services(root)
    try:
        cfg = config.load(root, dict(os.environ if env is None else env))
    except UsageError:
        cfg = None
    if cfg is not None:
        hosts += getattr(cfg, "local_hosts", [])
    return hosts
