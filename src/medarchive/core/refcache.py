"""A short-lived, per-process cache for reference data that every capture reads.

Fonds, departments, the active classification scheme and retention table change rarely and
are read several times per record; caching them halves the queries of a capture. Rules:

* Only values read outside a transaction are cached: a value read inside one might be rolled
  back (and in tests every test is a transaction, so tests never see cached data).
* A save or delete of any reference model clears the cache in this process at once; another
  process's change (say a CLI `init` activating a new scheme) is seen within `TTL_SECONDS`.
* Misses (None) are never cached, so an unknown code is looked up again every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.db import transaction

T = TypeVar("T")
TTL_SECONDS = 60.0

_entries: dict[Hashable, tuple[float, Any]] = {}


def cached(key: Hashable, load: Callable[[], T | None]) -> T | None:
    now = time.monotonic()
    hit = _entries.get(key)
    if hit is not None and now - hit[0] < TTL_SECONDS:
        value: T = hit[1]
        return value
    loaded = load()
    if loaded is not None and not transaction.get_connection().in_atomic_block:
        _entries[key] = (now, loaded)
    return loaded


def clear(*args: Any, **kwargs: Any) -> None:
    """Signal receiver and explicit reset."""
    _entries.clear()


def invalidate_on_change(*models: type) -> None:
    from django.db.models.signals import post_delete, post_save  # noqa: PLC0415 - only when apps are ready

    for model in models:
        post_save.connect(clear, sender=model, weak=False, dispatch_uid=f"refcache-save-{model.__name__}")
        post_delete.connect(clear, sender=model, weak=False, dispatch_uid=f"refcache-delete-{model.__name__}")


def row(model: type[T], pk: Any) -> T | None:
    """A reference row by primary key (a department, a class, a fonds), cached like the rest."""
    from medarchive.core import fastsql  # noqa: PLC0415 - fastsql imports Django models

    return cached(("row", model, pk), lambda: fastsql.get(model, pk))  # type: ignore[type-var]
