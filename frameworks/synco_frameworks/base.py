"""The plugin protocol: what a framework tells synco about a project folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synco_source.dburl import DatabaseUrl


@dataclass
class Project:
    """What synco needs to know about one instance of an application."""

    framework: str
    root: Path
    database: DatabaseUrl | None = None
    file_sets: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # where each setting came from
