"""Gap-free counters (see `Sequence`)."""

from __future__ import annotations

from django.db import connection, transaction

from medarchive.core.models import Sequence

# One statement takes the number: UPDATE … RETURNING (SQLite ≥ 3.35, PostgreSQL) holds the row
# lock (PostgreSQL) or the write lock (SQLite) until the caller's transaction ends.
_TAKE = f"UPDATE {Sequence._meta.db_table} SET value = value + 1 WHERE name = %s RETURNING value"  # noqa: S608


def next_value(name: str) -> int:
    """Take the next number of `name`; must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_value() must run inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, [name])
        row = cursor.fetchone()
        if row is None:  # first use of this counter: create it race-free, then take again
            Sequence.objects.bulk_create([Sequence(name=name, value=0)], ignore_conflicts=True)
            cursor.execute(_TAKE, [name])
            row = cursor.fetchone()
    return int(row[0])
