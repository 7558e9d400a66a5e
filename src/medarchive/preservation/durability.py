"""Whether the database keeps what it acknowledged: a commit a client was told about (201, AA,
C-STORE Success) must survive a power cut, not only a crash of the process (ADR 0015).

SQLite: WAL mode with `synchronous=FULL` (or EXTRA) syncs the WAL at every commit; `NORMAL`
syncs it only at checkpoints, so the last commits before a power cut are lost while their blobs
(synced by the store) survive. PostgreSQL: `fsync` must be on (a session cannot change it) and
`synchronous_commit` must not be `off` (our sessions set it `on`, see settings.py). `assess` is
pure; `problems` reads the live connection.
"""

from __future__ import annotations

from collections.abc import Mapping

# PRAGMA synchronous answers a number.
_SQLITE_LEVELS = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}


def assess(vendor: str, values: Mapping[str, str]) -> list[str]:
    """What in these database settings can lose an acknowledged commit (empty: nothing)."""
    found: list[str] = []
    if vendor == "sqlite":
        level = _SQLITE_LEVELS.get(values.get("synchronous", ""), values.get("synchronous", "").upper())
        journal = values.get("journal_mode", "").lower()
        if journal == "wal" and level not in {"FULL", "EXTRA"}:
            found.append(
                f"SQLite synchronous={level} in WAL mode: the last commits before a power cut are lost "
                "(set MEDARCHIVE_SQLITE_SYNCHRONOUS=FULL)"
            )
        elif journal != "wal" and level == "OFF":
            found.append("SQLite synchronous=OFF: commits are not synced to disk")
    elif vendor == "postgresql":
        if values.get("fsync", "on").lower() != "on":
            found.append(
                "PostgreSQL runs with fsync=off: after a power cut or an OS crash the database can be lost "
                "or corrupt (set fsync = on in postgresql.conf)"
            )
        if values.get("synchronous_commit", "on").lower() == "off":
            found.append(
                "PostgreSQL synchronous_commit=off: the last commits before a crash are lost "
                "(set synchronous_commit = on)"
            )
        if values.get("full_page_writes", "on").lower() != "on":
            found.append(
                "PostgreSQL full_page_writes=off: a power cut during a write can leave torn pages "
                "(set full_page_writes = on)"
            )
    return found


def problems(alias: str = "default") -> list[str]:
    """`assess` for the live database connection."""
    from django.db import connections  # noqa: PLC0415 - the pure part above imports nothing of Django

    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            values = {}
            for name in ("synchronous", "journal_mode"):
                cursor.execute(f"PRAGMA {name}")
                values[name] = str(cursor.fetchone()[0])
        elif connection.vendor == "postgresql":
            values = {}
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                cursor.execute(f"SHOW {name}")
                values[name] = str(cursor.fetchone()[0])
        else:
            return []
    return assess(connection.vendor, values)
