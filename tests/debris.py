"""What a capture left in the blob store's staging area that nothing will ever claim."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from medarchive.preservation import intents
from medarchive.preservation.models import Blob


def staging_debris(staging: Path | None = None) -> list[Path]:
    """Staged files, and publish intents whose Blob row does not exist.

    An intent whose row exists belongs to a record committed inside the test's own transaction
    (pytest-django wraps each test in one and rolls it back), whose on-commit hook that removes the
    intent never runs; a rolled-back capture must have withdrawn its intents itself."""
    staging = staging or settings.CONFIG.blob_dir / ".staging"
    if not staging.exists():
        return []
    found = []
    for path in staging.iterdir():
        intent = intents.parse(path)
        if intent is None or not Blob.objects.filter(address=intent.address).exists():
            found.append(path)
    return found
