"""Reading `COPY ... TO STDOUT (FORMAT BINARY)` of fixed-width rows with numpy: no Python object per row.

A binary COPY is a 19-byte header (signature, flags, header extension length), then per row a field count (int2)
and each field's length (int4) and bytes, big-endian, then a 2-byte trailer (-1). When every field has a fixed
width (NULLs coalesced away), a row is one numpy record and a chunk of rows one `np.frombuffer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

COPY_HEADER = 19  # PGCOPY signature (11) + flags (4) + header extension length (4)


def records(blocks: Iterable[bytes], record: np.dtype, chunk_bytes: int = 1 << 23) -> Iterator[np.ndarray]:
    """The rows of a binary COPY (`blocks`, as psycopg's copy object yields them) as arrays of `record`, about
    `chunk_bytes` at a time; each array owns its memory. The trailer is not a whole row, so it is never parsed."""
    buf, started = bytearray(), False
    for block in blocks:
        buf += block
        if not started:
            if len(buf) < COPY_HEADER:
                continue
            del buf[:COPY_HEADER]
            started = True
        if len(buf) >= chunk_bytes:
            yield from _whole_rows(buf, record)
    if started:
        yield from _whole_rows(buf, record)


def _whole_rows(buf: bytearray, record: np.dtype) -> Iterator[np.ndarray]:
    """The whole rows at the start of `buf`, removed from it."""
    whole = (len(buf) // record.itemsize) * record.itemsize
    if whole:
        rows = np.frombuffer(buf, dtype=record, count=whole // record.itemsize).copy()  # buf can shrink then
        del buf[:whole]
        yield rows


def fill(arrays: dict[str, np.ndarray], rows: np.ndarray, pos: int) -> int:
    """Copy each field of `rows` into the array of its name in `arrays` from row `pos`; returns the next row."""
    for name, array in arrays.items():
        array[pos : pos + len(rows)] = rows[name]
    return pos + len(rows)
