"""/api/v1/departments/aliases: the archivist's table of hospital department codes (docs/api.md)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from medarchive.core import aliases
from medarchive.core.department_codes import ALIAS_KINDS
from medarchive.core.schemas import ERRORS, a_code, one_line
from medarchive.security.api_auth import actor_of

router = Router()
KINDS = ", ".join(k.value for k in ALIAS_KINDS)
# The document names the kinds. Blank keys and departments are the service's to refuse, with every other
# problem of the same body at once (schemathesis.toml allows their 422).
KIND_PATTERN = "^(" + "|".join(k.value for k in ALIAS_KINDS) + ")$"  # kinds are [a-z0-9-]


class AliasOut(Schema):
    id: int
    kind: str
    system: str
    key: str
    department: str
    department_name: str
    note: str
    created_at: str
    updated_at: str


class AliasIn(Schema):
    kind: str = Field(description=KINDS, pattern=KIND_PATTERN)
    key: str = one_line(200, description="the code, or for dicom-institution the name (stored normalised)")
    department: str = a_code(description="the archive's department code")
    system: str = one_line(
        200, default="", description="code system; for hl7-location the PV1-3.4 facility (blank: any)"
    )
    note: str = one_line(200, default="")


class AliasPatch(Schema):
    kind: str | None = Field(None, pattern=KIND_PATTERN)
    key: str | None = one_line(200, default=None)
    department: str | None = a_code(default=None)
    system: str | None = one_line(200, default=None)
    note: str | None = one_line(200, default=None)


class AliasQuery(Schema):
    kind: str = one_line(40, default="", description=KINDS)
    department: str = one_line(32, default="", description="a department code")
    q: str = one_line(200, default="", description="text in the key, system or note")


@router.get("/aliases", response={200: list[AliasOut], **ERRORS}, summary="Department aliases (archivist)")
def alias_list(request: HttpRequest, query: Query[AliasQuery]) -> list[dict[str, object]]:
    rows = aliases.list_aliases(actor_of(request), kind=query.kind, department=query.department, search=query.q)
    return [aliases.as_dict(a) for a in rows]


@router.post("/aliases", response={201: AliasOut, **ERRORS}, summary="Map a hospital code to a department")
def alias_add(request: HttpRequest, body: AliasIn) -> Status:
    alias = aliases.add_alias(
        body.kind, body.key, body.department, system=body.system, note=body.note, actor=actor_of(request)
    )
    return Status(201, aliases.as_dict(alias))


@router.get("/aliases/{alias_id}", response={200: AliasOut, **ERRORS}, summary="One department alias")
def alias_get(request: HttpRequest, alias_id: int) -> dict[str, object]:
    return aliases.as_dict(aliases.get_alias(alias_id, actor=actor_of(request)))


@router.patch("/aliases/{alias_id}", response={200: AliasOut, **ERRORS}, summary="Change a department alias")
def alias_change(request: HttpRequest, alias_id: int, body: AliasPatch) -> dict[str, object]:
    changes = {k: v for k, v in body.dict(exclude_unset=True).items() if v is not None}
    return aliases.as_dict(aliases.change_alias(alias_id, changes, actor=actor_of(request)))


@router.delete("/aliases/{alias_id}", response={204: None, **ERRORS}, summary="Remove a department alias")
def alias_remove(request: HttpRequest, alias_id: int) -> Status:
    aliases.remove_alias(alias_id, actor=actor_of(request))
    return Status(204, None)
