"""Background jobs of this stage. None are scheduled yet; the worker collects `JOBS` from each stage."""

from medarchive.core.jobs import Periodic

JOBS: list[Periodic] = []
