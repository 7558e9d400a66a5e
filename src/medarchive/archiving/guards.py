"""PRE-07: archived content and core metadata are immutable, enforced by the database too.

A state change among the frozen states (archived ⇄ on hold → disposed) stays possible; the
services decide which ones are legal. The columns listed are the core DA/T 46 description.

Guards are versioned like migrations: `RECORD_GUARDS` (v1) is what migration 0003 installed;
`RECORD_GUARDS_V2` (migration 0005) also refuses un-freezing a record (a two-step edit:
archived → draft, edit, back) and adding or moving files into an archived record.
"""

from medarchive.core.dbtriggers import Guard

_CORE = [
    "title",
    "responsible",
    "date",
    "year",
    "doc_number",
    "security_level",
    "retention",
    "organization",
    "archival_code",
    "item_number",
    "electronic_no",
    "fonds_id",
    "archive_class_id",
    "department_id",
    "metadata",
]
_FROZEN = "('archived','on_hold','disposed')"

RECORD_GUARDS = [
    Guard(
        name="record_archived_immutable",
        table="archiving_record",
        events=("UPDATE",),
        reason="archived record metadata is immutable",
        condition=f"OLD.state IN {_FROZEN} AND (" + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _CORE) + ")",
        pg_condition=f"OLD.state IN {_FROZEN} AND ("
        + " OR ".join(f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in _CORE)
        + ")",
    ),
    Guard(
        name="record_archived_nodelete",
        table="archiving_record",
        events=("DELETE",),
        reason="archived records are never deleted",
        condition="OLD.state IN ('archived','on_hold')",
    ),
    Guard(
        name="component_archived_immutable",
        table="archiving_component",
        events=("UPDATE", "DELETE"),
        reason="files of an archived record are immutable",
        condition=f"(SELECT state FROM archiving_record WHERE id = OLD.record_id) IN {_FROZEN}",  # noqa: S608 - constants only
    ),
]

RECORD_GUARDS_V2 = [
    Guard(
        name="record_archived_immutable",
        table="archiving_record",
        events=("UPDATE",),
        reason="archived record metadata is immutable",
        condition=f"OLD.state IN {_FROZEN} AND (NEW.state NOT IN {_FROZEN} OR "
        + " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _CORE)
        + ")",
        pg_condition=f"OLD.state IN {_FROZEN} AND (NEW.state NOT IN {_FROZEN} OR "
        + " OR ".join(f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in _CORE)
        + ")",
    ),
    RECORD_GUARDS[1],  # no DELETE of archived or held records (unchanged)
    RECORD_GUARDS[2],  # no UPDATE/DELETE of their files (unchanged)
    Guard(
        name="component_into_archived",
        table="archiving_component",
        events=("INSERT", "UPDATE"),
        reason="files of an archived record are immutable",
        condition=f"(SELECT state FROM archiving_record WHERE id = NEW.record_id) IN {_FROZEN}",  # noqa: S608
    ),
]
