"""``il2watch migrate``: copy every table of one library into another (a SQLite file into PostgreSQL), all but
the poller lease.

Rows are upserted by each table's key, so copying again changes nothing and a copy cut short can simply be
run again; ids are kept, so outbox rows keep their claims and runs their numbers.
"""

from __future__ import annotations

from collections.abc import Callable

from il2watch.library import TABLE_KEYS, Library

BATCH = 1000  # rows per statement batch: one transaction each on the target
# The poller lease belongs to the workers of each library (a row on SQLite, a lock on PostgreSQL): a
# copied holder would hold nothing, so the new library starts with the lease free.
NOT_COPIED = ("lease",)


def copy_library(source: Library, target: Library, progress: Callable[[str, int, int], None]) -> dict[str, int]:
    """Copy every table of ``source`` into ``target``; ``progress(table, done, total)`` after each batch.
    Returns the rows copied per table."""
    copied = {}
    for table in (t for t in TABLE_KEYS if t not in NOT_COPIED):
        total = source.execute(f"select count(*) from {table}").fetchone()[0]
        cursor = source.execute(
            f"select * from {table} order by {', '.join(f'{chr(34)}{k}{chr(34)}' for k in TABLE_KEYS[table])}"
        )
        columns = [c[0] for c in cursor.description]
        done = 0
        progress(table, done, total)
        while rows := cursor.fetchmany(BATCH):
            target.copy_rows(table, columns, rows)
            done += len(rows)
            progress(table, done, total)
        copied[table] = done
    return copied
