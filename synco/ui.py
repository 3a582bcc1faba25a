"""Everything the client shows a person; the only module that uses rich.

Rules: data on stdout, messages on stderr; ``synco: error: ...`` and ``synco: hint: ...``
(lowercase, no final period); progress bars only on a terminal.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from synco_source.errors import Aborted


class UI:
    def __init__(self, *, assume_yes: bool = False, quiet: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.assume_yes = assume_yes
        self.quiet = quiet
        # What this run has already changed on this machine, and what it meant to change but has
        # not yet: the edge of the CLI words an error or an interruption after them truthfully.
        self.changed: list[str] = []
        self.pending: list[str] = []

    def will_change(self, what: str) -> None:
        """Note a change this run is about to make (e.g. "the files of set 'uploads'")."""
        self.pending.append(what)

    def did_change(self, what: str, done: str) -> None:
        """Note that ``what`` was changed; ``done`` says so ("the database 'shop' was replaced")."""
        if what in self.pending:
            self.pending.remove(what)
        self.changed.append(done)

    def aftermath(self) -> str:
        """What a stopped run leaves: "" when nothing was changed, else e.g. "the database 'shop'
        was replaced; the files of set 'f' were not updated: run again"."""
        if not self.changed:
            return ""
        text = " and ".join(self.changed)
        if self.pending:
            verb = "were" if len(self.pending) > 1 or self.pending[0].startswith("the files") else "was"
            text += f"; {' and '.join(self.pending)} {verb} not updated: run again"
        return text

    def secret(self, prompt: str) -> str:
        """Ask for a password on the terminal (not echoed); UsageError-free: the caller decides."""
        try:
            return self.console.input(f"synco: {prompt}: ", password=True, markup=False)
        except EOFError:
            raise Aborted("no answer (end of input); nothing was changed") from None

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"synco: {message}", markup=False)

    def warn(self, message: str) -> None:
        self.console.print(f"synco: warning: {message}", style="yellow", markup=False)

    def error(self, message: str, hint: str = "") -> None:
        self.console.print(f"synco: error: {message}", style="bold red", markup=False)
        if hint:
            self.console.print(f"synco: hint: {hint}", markup=False)

    def confirm(self, question: str, refuse_hint: str) -> None:
        """Ask a yes/no question; raise Aborted unless the answer is yes."""
        if self.assume_yes:
            return
        if not sys.stdin.isatty():
            raise Aborted(f"{question}: no terminal to ask", hint=refuse_hint)
        # markup=False: rich would take "[y/N]" for a style tag and print nothing of it
        try:
            answer = self.console.input(f"synco: {question} [y/N] ", markup=False).strip().lower()
        except EOFError:
            answer = ""
        if answer not in ("y", "yes"):
            raise Aborted("stopped; nothing was changed")

    @contextmanager
    def library_messages(self):
        """Show what the library modules log (logger ``synco``, e.g. fetch.py's "server not
        answering, retry 2 of 5 in 2 s") as this UI's messages while the block runs."""
        logger = logging.getLogger("synco")
        handler = _ToUI(self)
        logger.addHandler(handler)
        propagate, level = logger.propagate, logger.level
        logger.propagate = False
        logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.propagate, logger.level = propagate, level

    @contextmanager
    def status(self, text: str):
        if self.quiet or not self.console.is_terminal:
            self.info(text)
            yield lambda new_text: None
            return
        with self.console.status(text) as status:
            yield lambda new_text: status.update(new_text)

    def progress(self) -> Progress:
        return Progress(TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                        DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                        console=self.console, disable=self.quiet or not self.console.is_terminal,
                        transient=False)


class _ToUI(logging.Handler):
    """A log record as a message line of the UI (info: hidden by --quiet)."""

    def __init__(self, ui: UI) -> None:
        super().__init__(logging.INFO)
        self.ui = ui

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ui.info(record.getMessage())
        except Exception:
            self.handleError(record)
