"""The plugin protocol: what a framework tells synco about a project folder.

A framework module offers one object with ``name``, ``matches(root) -> str | None`` (the evidence,
e.g. ``"flow, Configuration/"``, or None) and ``project(ctx: Context) -> Project``; the registry
lists the modules, ``detect`` picks one and lays ``synco.yaml`` over its answer.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from synco_source.dburl import DatabaseUrl

SIDES = ("source", "local")


@dataclass
class FileSelection:
    """Which files of a set to publish, decided with the database at hand (inside the dump's
    snapshot, so files and rows agree).

    ``include``: paths relative to the set's folder ('/' separators); None means the whole folder.
    ``public``: for some of them, their path under ``public_url`` on the application's own web
    server; the client fetches those from there (checking their SHA-256) instead of through the
    encrypted session."""

    include: set[str] | None = None
    public: dict[str, str] = field(default_factory=dict)
    public_url: str | None = None
    notes: list[str] = field(default_factory=list)


# select(sql) -> rows, run by the engine inside the dump's snapshot
Select = Callable[[str], list[tuple]]


@dataclass
class Step:
    """One step after an import, in the local project folder.

    ``argv``: a command (a framework's, e.g. ``./flow flow:cache:flush``); ``shell``: ``line`` is
    a shell command line (synco.yaml's ``after_import``), run with ``sh -c``; ``action``: an
    internal step the client carries out itself (e.g. WordPress's URL rewrite), by its name, with
    ``params``; the framework library only describes it. ``runnable`` False: printed for the user
    instead (no PHP to run it with). ``origin`` says where the step comes from, for messages."""

    line: str
    argv: list[str] | None = None
    shell: bool = False
    action: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    runnable: bool = True
    origin: str = ""


@dataclass
class Project:
    """What synco needs to know about one instance of an application."""

    framework: str
    root: Path
    database: DatabaseUrl | None = None
    file_sets: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # human lines: where each setting came from
    base_url: str | None = None  # the application's public URL, when its configuration has one
    web_root: Path | None = None  # the folder the web server serves at base_url (Web/, public/)
    public_sets: set[str] = field(default_factory=set)  # file sets the web server also serves
    skip_table_data: list[str] = field(default_factory=list)  # names or fnmatch patterns
    # smart exclusions of rows: (table name or pattern, SQL condition of the rows kept, and the
    # other tables the condition reads), applied in the dump like synco.yaml's tables: {where}
    # rules, which win; only where those tables exist (empty with --all)
    row_filters: list[tuple] = field(default_factory=list)
    # after an import (local side), in this order: internal steps (the data first), the
    # framework's commands, then synco.yaml's after_import lines; see steps()
    actions: list[Step] = field(default_factory=list)  # internal steps the client carries out
    post_import: list[list[str]] = field(default_factory=list)  # argv lists, run in root
    post_import_runnable: bool = False  # False: print them for the user instead of running
    after_import: list[str] = field(default_factory=list)  # shell lines from synco.yaml
    after_import_origin: str = "synco.yaml"
    context: str = ""  # FLOW_CONTEXT or APP_ENV, for messages
    # file set name -> function choosing its files with the source database (source side only)
    file_selectors: dict[str, Callable[[Select, set[str]], FileSelection]] = field(default_factory=dict)

    def is_public(self, name: str) -> bool:
        return name in self.public_sets

    def skips_table(self, table: str) -> bool:
        """True when the rows of ``table`` stay behind (its structure is still copied)."""
        return any(fnmatch.fnmatchcase(table, pattern) for pattern in self.skip_table_data)

    def public_url(self, folder: Path) -> str | None:
        """The URL of ``folder`` (e.g. a --publish-dir) when it lies in the web root and the base
        URL is known; None otherwise."""
        if not self.base_url or self.web_root is None:
            return None
        folder, web_root = Path(folder).resolve(), self.web_root.resolve()
        if not folder.is_relative_to(web_root):
            return None
        rel = folder.relative_to(web_root).as_posix()
        return self.base_url.rstrip("/") + "/" + ("" if rel == "." else rel + "/")

    def steps(self) -> list[Step]:
        """Every step after an import, in the order they run."""
        commands = [Step(line=shlex.join(argv), argv=list(argv), runnable=self.post_import_runnable,
                         origin=self.framework) for argv in self.post_import]
        project = [Step(line=line, shell=True, origin=self.after_import_origin)
                   for line in self.after_import]
        return [*self.actions, *commands, *project]

    def post_import_lines(self) -> list[str]:
        """The steps after an import as lines, for printing (commands as shell lines, internal
        steps as what they do)."""
        return [step.line for step in self.steps()]


@dataclass
class Context:
    """What a framework module may look at besides the folder."""

    root: Path
    side: str  # "source" (the server) or "local" (the developer's checkout)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    php: str | None = None  # a PHP interpreter, when one is there
    all_data: bool = False  # --all: no smart exclusions
    want_database: bool = True  # False: the database comes from elsewhere (or is not wanted)

    def path(self, text: str) -> Path:
        """A configured folder: absolute, or relative to the project folder."""
        return (self.root / text).resolve()

    def rel(self, path: Path) -> str:
        """``path`` relative to the project folder when inside it, for messages."""
        try:
            return str(path.relative_to(self.root)) or "."
        except ValueError:
            return str(path)


class Framework(Protocol):
    """A framework module's ``FRAMEWORK``. It may also have ``privacy_presets(project) ->
    list[anonymize.ColumnRule]``: column rules that apply by themselves (docs/privacy.md)."""

    name: str

    def matches(self, root: Path) -> str | None: ...

    def project(self, ctx: Context) -> Project: ...
