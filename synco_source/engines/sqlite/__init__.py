"""The SQLite engine, on Python's own ``sqlite3`` module (nothing else on the server).

See ``synco_source.engines`` for the protocol and docs/sqlite.md for what is copied; ``dump``
reads one snapshot of the live file, ``load`` fills a shadow file next to the target and swaps it
in, ``script`` writes a script for the ``sqlite3`` shell.
"""

from .dump import Dumper
from .fingerprint import fingerprint
from .load import Loader, restore
from .script import SqlWriter

__all__ = ["Dumper", "Loader", "SqlWriter", "fingerprint", "restore"]
