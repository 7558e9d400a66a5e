"""Background jobs of the capture stage; the worker collects `JOBS` from each stage."""

import datetime as dt

from django.conf import settings

from medarchive.capture import resumable
from medarchive.capture.batch.folder import scan_as
from medarchive.core.jobs import Periodic


def watch_folder() -> str:
    """Take what was dropped into MEDARCHIVE_WATCH_DIR, as MEDARCHIVE_WATCH_USER (skipped when unset)."""
    return scan_as(settings.CONFIG.watch_dir, settings.CONFIG.watch_user)


JOBS: list[Periodic] = [
    Periodic("capture.purge-abandoned-uploads", dt.timedelta(hours=6), resumable.purge_stale),
    Periodic("capture.watch-folder", dt.timedelta(minutes=1), watch_folder),
]
