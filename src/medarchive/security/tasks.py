"""Scheduled security housekeeping."""

from __future__ import annotations

import datetime as dt

from django.contrib.sessions.models import Session

from medarchive.core import clock
from medarchive.core.jobs import Periodic


def clear_expired_sessions() -> str:
    deleted, _ = Session.objects.filter(expire_date__lt=clock.now()).delete()
    return f"{deleted} expired sessions removed"


JOBS = [Periodic("security.clear_expired_sessions", dt.timedelta(hours=1), clear_expired_sessions)]
