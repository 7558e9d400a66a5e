"""Database-level guards that hold even against code that bypasses the services.

Installed by migrations as vendor-specific SQL. A trigger that refuses a statement
raises "medarchive:<reason>" so callers can tell these apart from other failures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Guard:
    name: str
    table: str
    events: tuple[str, ...]  # "INSERT", "UPDATE", "DELETE"
    reason: str
    condition: str = ""  # SQL boolean over OLD/NEW (SQLite dialect; NEW only for INSERT); "" = always
    pg_condition: str | None = None  # PostgreSQL dialect, when it differs

    def sqlite_create(self) -> list[str]:
        statements = []
        for event in self.events:
            when = f" WHEN {self.condition}" if self.condition else ""
            statements.append(
                f"CREATE TRIGGER {self.name}_{event.lower()} BEFORE {event} ON {self.table} FOR EACH ROW{when} "
                f"BEGIN SELECT RAISE(ABORT, 'medarchive:{self.reason}'); END;"
            )
        return statements

    def sqlite_drop(self) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {self.name}_{event.lower()};" for event in self.events]

    def postgresql_create(self) -> list[str]:
        # The test lives in the function body: PostgreSQL trigger WHEN clauses cannot hold subqueries.
        condition = self.pg_condition if self.pg_condition is not None else self.condition
        function = (
            f"CREATE OR REPLACE FUNCTION {self.name}_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF {condition or 'TRUE'} THEN RAISE EXCEPTION 'medarchive:{self.reason}'; END IF; "
            "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$;"
        )
        statements = [function]
        for event in self.events:
            statements.append(
                f"CREATE TRIGGER {self.name}_{event.lower()} BEFORE {event} ON {self.table} "
                f"FOR EACH ROW EXECUTE FUNCTION {self.name}_fn();"
            )
        return statements

    def postgresql_drop(self) -> list[str]:
        drops = [f"DROP TRIGGER IF EXISTS {self.name}_{e.lower()} ON {self.table};" for e in self.events]
        return [*drops, f"DROP FUNCTION IF EXISTS {self.name}_fn();"]


def install(schema_editor: object, guards: list[Guard]) -> None:
    vendor = schema_editor.connection.vendor  # type: ignore[attr-defined]
    for guard in guards:
        for sql in getattr(guard, f"{vendor}_create")():
            schema_editor.execute(sql)  # type: ignore[attr-defined]


def uninstall(schema_editor: object, guards: list[Guard]) -> None:
    vendor = schema_editor.connection.vendor  # type: ignore[attr-defined]
    for guard in guards:
        for sql in getattr(guard, f"{vendor}_drop")():
            schema_editor.execute(sql)  # type: ignore[attr-defined]
