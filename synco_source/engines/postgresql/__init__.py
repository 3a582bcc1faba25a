"""The PostgreSQL engine, in pure Python over psycopg 3 (no pg_dump on the server).

See ``synco_source.engines`` for the protocol and docs/postgresql.md for what is copied; ``dump``
reads one consistent snapshot, ``load`` fills a shadow database and swaps it in, ``script`` writes
a psql script.
"""

from .dump import Dumper
from .fingerprint import fingerprint
from .load import Loader, restore
from .script import SqlWriter

__all__ = ["Dumper", "Loader", "SqlWriter", "fingerprint", "restore"]
