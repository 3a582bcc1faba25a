"""Row-aligned, content-defined chunking of a table's rows.

A table is a sequence of row records (bytes, already formatted by the engine) in a deterministic
order. The chunker groups consecutive rows into chunks; a chunk ends after a row when

- the chunk holds at least ``min_size`` bytes and the row's CRC-32 is below
  ``len(row) * 2**32 / target_size`` (so a cut is as likely per byte whatever the row width and the
  expected chunk size is about ``min_size + target_size``), or
- the chunk has reached ``max_size`` bytes.

The cut decision depends only on the row's own bytes and the bytes since the previous cut, so an
insert, update or delete moves at most the chunk it lands in (and, rarely, its successor): the other
chunks keep their exact bytes and so their ids, which is what later lets a client skip chunks it
already has. See docs/FORMAT.md, "Database chunks".
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

MIN_SIZE = 256 * 1024
TARGET_SIZE = 768 * 1024
MAX_SIZE = 4 * 1024 * 1024


def cut_rows(rows: Iterable[bytes], *, min_size: int = MIN_SIZE, target_size: int = TARGET_SIZE,
             max_size: int = MAX_SIZE) -> Iterator[list[bytes]]:
    """Group ``rows`` into lists of rows, each list one chunk; yields nothing for no rows."""
    scale = (1 << 32) // target_size
    crc32 = zlib.crc32
    batch: list[bytes] = []
    size = 0
    for row in rows:
        batch.append(row)
        n = len(row)
        size += n
        if size >= max_size or (size >= min_size and crc32(row) < n * scale):
            yield batch
            batch = []
            size = 0
    if batch:
        yield batch
