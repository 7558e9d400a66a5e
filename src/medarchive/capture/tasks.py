"""Background jobs of the capture stage; the worker collects `JOBS` from each stage."""

import datetime as dt

from medarchive.capture import resumable
from medarchive.core.jobs import Periodic

JOBS: list[Periodic] = [
    Periodic("capture.purge-abandoned-uploads", dt.timedelta(hours=6), resumable.purge_stale),
]
