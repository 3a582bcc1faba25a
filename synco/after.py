"""The steps after an import, on the local side (docs/frameworks.md, "After the import"):
internal steps synco carries out itself (WordPress's URL rewrite), the framework's commands and
synco.yaml's ``after_import`` lines. A failing step is a warning: the import stays."""

from __future__ import annotations

import dataclasses
import re
import sys
from typing import Optional

from synco_source.errors import SyncoError, UsageError

from .ui import UI


@dataclasses.dataclass
class After:
    """What the steps after an import need from the command line: ``--no-after``,
    ``--local-url``, and what the local database said before the import replaced it."""

    run: bool = True
    local_url: Optional[str] = None
    previous_home: Optional[str] = None  # WordPress: the local home option before the import


def before_import(project, after: After) -> None:
    """Read what a step after the import needs from the local database before it is replaced:
    WordPress's home option (the local URL when nothing else gives it)."""
    from synco_frameworks.wordpress import URL_STEP

    if after.local_url and not re.match(r"^https?://[^/\s]+", after.local_url):
        raise UsageError(f"--local-url {after.local_url!r} is not an http:// or https:// URL",
                         hint="e.g. --local-url http://localhost:8080")
    steps = [s for s in getattr(project, "actions", []) if s.action == URL_STEP]
    if not after.run or after.local_url or not steps or project.database is None:
        return
    if steps[0].params.get("local_url"):
        return
    from .searchreplace import option

    try:
        after.previous_home = option(project.database, steps[0].params["prefix"], "home")
    except SyncoError:
        after.previous_home = None


def run_step(step, project, after: After, ui: UI) -> Optional[str]:
    """Run one step; None when it worked, else what went wrong (a warning, the import stays)."""
    import subprocess

    if step.action:
        from synco_frameworks.wordpress import URL_STEP

        from .searchreplace import wordpress_step

        if step.action != URL_STEP:
            return f"unknown step {step.action!r}"
        ui.info(f"{step.origin or project.framework}: {step.line}")
        try:
            left = wordpress_step(project.database, step.params, after.local_url,
                                  after.previous_home, ui.info)
        except SyncoError as exc:
            return f"{step.line}: {exc}"
        if left:
            ui.warn(left)
        return None
    ui.info(f"running {step.line}" + (f" (from {step.origin})" if step.shell else ""))
    try:
        proc = subprocess.Popen(step.line if step.shell else step.argv, shell=step.shell,
                                cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    except OSError as exc:
        return f"{step.line}: {exc.strerror}"
    for raw in proc.stdout:  # shown on stderr: stdout stays for --json
        sys.stderr.write(raw.decode("utf-8", "replace"))
    sys.stderr.flush()
    code = proc.wait()
    return f"{step.line} exited with {code}" if code else None


def after_import(project, ui: UI, after: Optional[After] = None) -> list[str]:
    """Run the steps after an import (docs/frameworks.md, "After the import"): internal steps,
    the framework's commands, synco.yaml's after_import; commands that cannot run here are
    printed. A failing step is a warning and the others still run; returns what failed."""
    after = after or After()
    steps = project.steps() if hasattr(project, "steps") else []
    if not steps:
        return []
    if not after.run:
        ui.info(f"--no-after: {len(steps)} step{'s' if len(steps) != 1 else ''} after the import "
                f"not run")
        return []
    failed = []
    for step in steps:
        if not step.runnable:
            ui.info(f"now run: {step.line}")
            continue
        problem = run_step(step, project, after, ui)
        if problem:
            ui.warn(f"{problem}; the import itself is complete: run it again by hand")
            failed.append(problem)
    return failed
