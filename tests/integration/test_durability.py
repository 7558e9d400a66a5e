"""The live database connection keeps what it acknowledges (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from medarchive.preservation.durability import problems

pytestmark = pytest.mark.django_db


def test_the_configured_connection_is_durable() -> None:
    assert problems() == []
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 2  # FULL
        else:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"  # set by our session, whatever the server's default


@pytest.mark.django_db(transaction=True)  # SQLite changes its safety level only outside a transaction
def test_a_connection_that_lowers_durability_is_reported_and_health_says_so() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA synchronous=NORMAL")
        else:
            cursor.execute("SET synchronous_commit = off")
    try:
        (problem,) = problems()
        assert "synchronous" in problem
        assert Client().get("/api/v1/health").json()["durable"] is False
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA synchronous=FULL")
            else:
                cursor.execute("SET synchronous_commit = on")
    assert Client().get("/api/v1/health").json()["durable"] is True
