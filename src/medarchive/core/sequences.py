"""Gap-free counters (see `Sequence`)."""

from __future__ import annotations

from django.db import transaction

from medarchive.core.models import Sequence


def next_value(name: str) -> int:
    """Take the next number of `name`; must run inside the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_value() must run inside transaction.atomic()")
    # Create the row race-free (ON CONFLICT DO NOTHING), then lock it.
    Sequence.objects.bulk_create([Sequence(name=name, value=0)], ignore_conflicts=True)
    row = Sequence.objects.select_for_update().get(name=name)
    row.value += 1
    row.save(update_fields=["value"])
    return row.value
