"""Flow's ``Neos.Flow`` settings for one context: from Flow itself, or from the YAML files.

With a PHP interpreter, ``$PHP ./flow configuration:show --type Settings --path Neos.Flow`` (one
boot of Flow for everything synco reads) with ``FLOW_CONTEXT`` set. Without one (or when that
fails), the project's own files are merged the way Flow's ``MergeLoader`` does: for
``Configuration/``, then ``Configuration/<Root>/``, then ``Configuration/<Root>/<Sub>/``,
``Settings.yaml`` then ``Settings.*.yaml`` in sorted order, each deep-merged over the last
(``Arrays::arrayMergeRecursiveOverrule``: mappings merge, anything else replaces). Packages'
configuration is not read; Flow's own defaults for the keys synco uses stand in for it. Then
``%env:VAR%``, ``%env(int|bool|float|string):VAR%`` and the ``%FLOW_PATH_…%`` constants are
replaced as ``ConfigurationManager::replaceVariablesInPhpString`` does.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from synco_source.errors import UsageError

from . import yamlfile
from .base import Context

ROOT_CONTEXTS = ("Development", "Production", "Testing")
DEFAULT_CONTEXT = {"source": "Production", "local": "Development"}
SHOW = ["configuration:show", "--type", "Settings", "--path", "Neos.Flow"]
TIMEOUT = 120

# Flow's own defaults (Neos.Flow/Configuration/Settings.Persistence.yaml, Settings.Resource.yaml)
# for what synco reads, standing in for package configuration when the files are merged.
DEFAULTS = {
    "persistence": {"backendOptions": {"driver": "pdo_mysql", "host": None, "dbname": None,
                                       "user": None, "password": None, "charset": "utf8mb4"}},
    "resource": {
        "storages": {"defaultPersistentResourcesStorage": {
            "storage": "Neos\\Flow\\ResourceManagement\\Storage\\WritableFileSystemStorage",
            "storageOptions": {"path": "%FLOW_PATH_DATA%Persistent/Resources/"}}},
        "collections": {"persistent": {"storage": "defaultPersistentResourcesStorage",
                                       "target": "localWebDirectoryPersistentResourcesTarget"}},
        "targets": {"localWebDirectoryPersistentResourcesTarget": {
            "target": "Neos\\Flow\\ResourceManagement\\Target\\FileSystemSymlinkTarget",
            "targetOptions": {"path": "%FLOW_PATH_WEB%_Resources/Persistent/",
                              "baseUri": "_Resources/Persistent/"}}},
    },
}

EXPRESSION = re.compile(r"%(?:(?:\\?[\w\\]+::)|(?P<prefix>[a-z]+)(?:\((?P<type>int|bool|float|string)\))?:)?"
                        r"(?P<name>[A-Z_0-9]+)%")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|</?b>")
HEADER = re.compile(r'^Configuration "Settings: Neos\.Flow"(:| was empty!)\s*$', re.M)


@dataclass
class Settings:
    """The ``Neos.Flow`` settings, with where they came from."""

    tree: dict
    source: str  # for the notes: how the settings were read
    layers: list[tuple[str, dict]] = field(default_factory=list)  # (file, Neos.Flow part), merged

    def get(self, *path: str) -> object:
        node: object = self.tree
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def origin(self, *path: str) -> str:
        """The file that set ``Neos.Flow.<path>`` last (or how the settings were read)."""
        for name, layer in reversed(self.layers):
            node: object = layer
            for key in path:
                node = node.get(key, _MISSING) if isinstance(node, dict) else _MISSING
            if node is not _MISSING:
                return name
        return self.source if not self.layers else "Flow's defaults"


_MISSING = object()


def context_name(ctx: Context) -> str:
    name = ctx.env.get("FLOW_CONTEXT") or DEFAULT_CONTEXT[ctx.side]
    parts = name.split("/")
    if parts[0] not in ROOT_CONTEXTS or not all(parts):
        raise UsageError(f"FLOW_CONTEXT {name!r} is not a Flow context",
                         hint="it starts with Development, Production or Testing, e.g. Production/Live")
    return name


def hierarchy(context: str) -> list[str]:
    """``Production/Live`` → ``["Production", "Production/Live"]``."""
    parts = context.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def settings_files(root: Path, context: str) -> list[Path]:
    files = []
    for folder in [root / "Configuration"] + [root / "Configuration" / c for c in hierarchy(context)]:
        files += [f for f in [folder / "Settings.yaml"] + sorted(folder.glob("Settings.*.yaml"))
                  if f.is_file()]
    return files


def merge(first: object, second: object) -> object:
    """Flow's ``arrayMergeRecursiveOverrule`` (lists are PHP arrays with integer keys)."""
    if not isinstance(first, (dict, list)) or not isinstance(second, (dict, list)) or not second:
        return second
    a, b = _as_dict(first), _as_dict(second)
    out = dict(a)
    for key, value in b.items():
        out[key] = merge(a[key], value) if key in a and isinstance(a[key], (dict, list)) else value
    if isinstance(first, list) and isinstance(second, list) and list(out) == list(range(len(out))):
        return list(out.values())
    return out


def _as_dict(value: dict | list) -> dict:
    return dict(enumerate(value)) if isinstance(value, list) else value


def resolve(value: object, env, constants: dict[str, str]) -> object:
    """Replace %env:VAR% and %CONSTANT% in every string of ``value``."""
    if isinstance(value, dict):
        return {k: resolve(v, env, constants) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, env, constants) for v in value]
    if not isinstance(value, str) or "%" not in value:
        return value
    whole = EXPRESSION.fullmatch(value)
    if whole:
        return _evaluate(whole, env, constants)
    return EXPRESSION.sub(lambda m: _as_text(_evaluate(m, env, constants)), value)


def _evaluate(match: re.Match, env, constants: dict[str, str]) -> object:
    name, prefix, kind = match.group("name"), match.group("prefix"), match.group("type")
    if prefix != "env":
        return constants.get(name, match.group(0)) if prefix is None else None
    raw = env.get(name)
    if kind == "bool":
        return (raw or "").lower() not in ("", "0", "false")
    if kind in ("int", "float"):
        try:
            return (int if kind == "int" else float)(raw or 0)
        except ValueError:
            return 0
    return raw if kind is None else (raw or "")


def _as_text(value: object) -> str:
    if value is None or value is False:
        return ""
    return "1" if value is True else str(value)


def constants(root: Path) -> dict[str, str]:
    base = str(root) + "/"
    return {"FLOW_PATH_ROOT": base, "FLOW_PATH_WEB": base + "Web/", "FLOW_PATH_DATA": base + "Data/",
            "FLOW_PATH_CONFIGURATION": base + "Configuration/", "FLOW_PATH_PACKAGES": base + "Packages/",
            "FLOW_PATH_TEMPORARY_BASE": base + "Data/Temporary/"}


def from_files(ctx: Context, context: str) -> Settings:
    layers = [("Flow's defaults", DEFAULTS)]
    for path in settings_files(ctx.root, context):
        name = ctx.rel(path)
        data = yamlfile.load(path, name)
        if data is not None and not isinstance(data, dict):
            raise UsageError(f"{name}: the top level must be a mapping", hint="see Flow's Settings.yaml")
        flow = (data or {}).get("Neos", {}) or {}
        flow = flow.get("Flow", {}) if isinstance(flow, dict) else {}
        if not isinstance(flow, dict):
            raise UsageError(f"{name}: Neos.Flow must be a mapping", hint="see Flow's Settings.yaml")
        layers.append((name, flow))
    tree: object = {}
    for _, layer in layers:
        tree = merge(tree, layer)
    tree = resolve(tree, ctx.env, constants(ctx.root))
    files = [name for name, _ in layers[1:]] or ["no Settings*.yaml files"]
    return Settings(tree, f"read from {', '.join(files)} (without PHP; packages' settings not read)",
                    layers)


class FlowFailed(Exception):
    """./flow configuration:show did not answer with settings."""


def from_flow(ctx: Context, context: str, php: str) -> Settings:
    env = dict(ctx.env, FLOW_CONTEXT=context)
    try:
        run = subprocess.run([php, "./flow", *SHOW], cwd=ctx.root, env=env, capture_output=True,
                             text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FlowFailed(str(exc)) from None
    out = ANSI.sub("", run.stdout)
    header = HEADER.search(out)
    if run.returncode != 0 or header is None:
        last = (run.stderr.strip() or out.strip() or f"exit status {run.returncode}").splitlines()[-1]
        raise FlowFailed(f"exit status {run.returncode}: {last[:200]}")
    tree = {} if header.group(1) != ":" else yamlfile.parse(out[header.end():], "./flow configuration:show")
    if not isinstance(tree, dict):
        raise FlowFailed("its output is not a mapping")
    return Settings(tree, f"asked Flow: {php} ./flow {' '.join(SHOW)}")


def settings(ctx: Context, context: str) -> tuple[Settings, list[str]]:
    """The settings, and notes on the route taken."""
    if ctx.php:
        try:
            return from_flow(ctx, context, ctx.php), []
        except FlowFailed as exc:
            note = f"./flow configuration:show failed ({exc}); merged the YAML files instead"
            return from_files(ctx, context), [note]
    return from_files(ctx, context), []
