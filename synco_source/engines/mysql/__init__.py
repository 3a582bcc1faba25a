"""The MySQL/MariaDB engine, in pure Python over pymysql (no mysqldump on the server).

See ``synco_source.engines`` for the protocol; ``dump`` reads one consistent snapshot,
``load`` fills a shadow database and swaps it in, ``script`` writes a plain SQL script.
"""

from .dump import Dumper
from .fingerprint import fingerprint
from .load import Loader, restore
from .script import SqlWriter
from .sql import resolve_localhost as resolve

__all__ = ["Dumper", "Loader", "SqlWriter", "fingerprint", "resolve", "restore"]
