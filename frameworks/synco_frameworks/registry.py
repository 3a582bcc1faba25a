"""The known frameworks: one module each, listed here (and nowhere else).

Each module offers ``FRAMEWORK``, an object with ``name``, ``matches(root)`` and
``project(ctx)`` (see ``base.Framework``). Adding a framework is a new module and one line here.
The imports are plain ones, not discovery, so a frozen ``synco-source`` has them too.
"""

from __future__ import annotations

from . import laravel, neos, symfony, wordpress
from .base import Framework

FRAMEWORKS: tuple[Framework, ...] = (
    neos.FRAMEWORK,
    symfony.FRAMEWORK,
    laravel.FRAMEWORK,
    wordpress.FRAMEWORK,
)


def by_name(name: str) -> Framework | None:
    return next((fw for fw in FRAMEWORKS if fw.name == name), None)


def names() -> list[str]:
    return [fw.name for fw in FRAMEWORKS] + ["generic"]
