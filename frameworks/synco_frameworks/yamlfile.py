"""Reading YAML configuration files the way PHP applications mean them.

PyYAML speaks YAML 1.1, where ``yes``, ``on`` and ``no`` are booleans, ``0123`` is octal and
``12:30`` is a number; Symfony's YAML component (used by Flow and Symfony) reads all of those as
strings, and a password like ``on`` must stay one. The loader here only knows the YAML 1.2 core
scalars: ``true``/``false``, ``null``/``~``, decimal integers and plain floats.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from synco_source.errors import UsageError

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}


class Loader(_BASE):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.2 core booleans and numbers."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in _BASE.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                             list("tTfF"))
Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"),
                             list("-+0123456789"))
_FLOAT = (r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?"
          r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_FLOAT), list("-+0123456789."))


def parse(text: str, name: str) -> object:
    """Parse YAML text; errors become one UsageError line naming ``name`` and the line."""
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}, line {mark.line + 1}" if mark else name
        raise UsageError(f"{where}: invalid YAML: {exc.problem or exc.context}",
                         hint=f"fix the YAML syntax in {name}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{name}: invalid YAML: {exc}", hint=f"fix the YAML syntax in {name}") from None


def read_text(path: Path, name: str) -> str:
    """A configuration file's text; ``name`` is how messages call it (relative to the project)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read {name}: {reason}",
                         hint="check that the file exists and is readable by this user") from None


def load(path: Path, name: str) -> object:
    """Read and parse one YAML file."""
    return parse(read_text(path, name), name)
