"""Prepared statements for the hot paths: a model's INSERT or SELECT built once, values converted as the ORM does.

Building a statement through the ORM costs ~0.4-0.5 ms of CPU on this hardware (query objects, compiler,
field resolution), ten times what SQLite takes to run a single-row INSERT or an indexed lookup; capture
writes eight rows per record and a record read looks up five. `insert` keeps the ORM's meaning
(`pre_save`, so `auto_now_add` and defaults apply; `get_db_prep_save`, so JSON, UUIDs and datetimes are
stored exactly as the ORM stores them) and sends no `pre_save`/`post_save` signals: use it only for
models nobody listens to (checked), with related objects already saved. `rows` reads whole rows back
through each field's database converters and `Model.from_db`, as a queryset would. Measured in
benchmarks/ingest.py and benchmarks/api.py. Everything else uses the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections, models
from django.db.models.signals import post_save, pre_save

M = TypeVar("M", bound=models.Model)


@lru_cache(maxsize=64)
def _plan(model: type[models.Model], using: str, with_pk: bool) -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    opts = model._meta
    if opts.parents:
        raise TypeError(f"{opts.label}: fastsql.insert does not handle multi-table inheritance")
    fields = tuple(f for f in opts.local_concrete_fields if with_pk or not f.primary_key)
    quote = connections[using].ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({marks})", fields  # noqa: S608


def _check_unobserved(model: type[models.Model]) -> None:
    if pre_save.has_listeners(model) or post_save.has_listeners(model):
        raise TypeError(f"{model._meta.label} has save signal receivers: use the ORM, not fastsql.insert")


def _values(obj: models.Model, fields: Sequence[models.Field[Any, Any]], connection: Any) -> list[Any]:
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def insert(obj: M, *, using: str = "default", ignore_conflict: bool = False) -> bool:
    """INSERT `obj` (its primary key assigned from the database when it has none yet).

    With `ignore_conflict`, a row whose unique key exists already is left alone and False returned
    (one statement, no savepoint: `ON CONFLICT DO NOTHING`, SQLite and PostgreSQL alike)."""
    model = type(obj)
    _check_unobserved(model)
    connection = connections[using]
    pk = model._meta.pk
    assert pk is not None
    with_pk = obj.pk is not None
    sql, fields = _plan(model, using, with_pk)
    if ignore_conflict:
        sql += " ON CONFLICT DO NOTHING"
    if not with_pk:
        sql += f" RETURNING {connection.ops.quote_name(str(pk.column))}"
    with connection.cursor() as cursor:
        cursor.execute(sql, _values(obj, fields, connection))
        if with_pk:
            inserted = cursor.rowcount != 0
        else:
            row = cursor.fetchone()
            inserted = row is not None
            if inserted:
                setattr(obj, pk.attname, row[0])
    if inserted:
        obj._state.adding, obj._state.db = False, using
    return inserted


def insert_many(objs: Iterable[models.Model], *, using: str = "default") -> None:
    """INSERT rows of one model whose primary keys the caller does not need back (one executemany)."""
    rows = list(objs)
    if not rows:
        return
    model = type(rows[0])
    _check_unobserved(model)
    connection = connections[using]
    with_pk = rows[0].pk is not None
    sql, fields = _plan(model, using, with_pk)
    params = []
    for obj in rows:
        if type(obj) is not model or (obj.pk is not None) != with_pk:
            raise TypeError("insert_many takes rows of one model, all with or all without primary keys")
        params.append(_values(obj, fields, connection))
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    for obj in rows:
        obj._state.adding, obj._state.db = False, using


@lru_cache(maxsize=128)
def _select_plan(
    model: type[models.Model], using: str, where: str, order_by: str, limit: int | None
) -> tuple[str, tuple[str, ...], tuple[tuple[int, tuple[Any, ...], Any], ...]]:
    opts = model._meta
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = opts.concrete_fields
    columns = ", ".join(quote(str(f.column)) for f in fields)
    sql = f"SELECT {columns} FROM {quote(opts.db_table)} WHERE {where}"  # noqa: S608 - where is code, not input
    if order_by:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    converters = []
    for index, f in enumerate(fields):
        expression = f.get_col(opts.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            converters.append((index, tuple(found), expression))
    return sql, tuple(f.attname for f in fields), tuple(converters)


def rows(
    model: type[M],
    where: str,
    params: Sequence[Any],
    *,
    order_by: str = "",
    limit: int | None = None,
    using: str = "default",
) -> list[M]:
    """Instances of `model` whose rows match `where` (SQL over its columns with %s placeholders, written in
    code, never from input), as `Model.objects.filter(...)` would return them. No related objects."""
    connection = connections[using]
    sql, names, converters = _select_plan(model, using, where, order_by, limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        fetched = cursor.fetchall()
    found = []
    for raw in fetched:
        values = list(raw)
        for index, functions, expression in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, expression, connection)
            values[index] = value
        found.append(model.from_db(using, names, values))
    return found


@lru_cache(maxsize=128)
def _where(model: type[models.Model], using: str, names: tuple[str, ...]) -> tuple[str, tuple[Any, ...]]:
    opts = model._meta
    quote = connections[using].ops.quote_name
    fields = tuple(opts.pk if name == "pk" else opts.get_field(name) for name in names)
    return " AND ".join(f"{quote(str(f.column))} = %s" for f in fields), fields  # type: ignore[union-attr]


def select(
    model: type[M], *, order_by: str = "", limit: int | None = None, using: str = "default", **equals: Any
) -> list[M]:
    """`Model.objects.filter(a=x, b=y).order_by(...)[:limit]` for equality on fields (or their attnames,
    `record_id`), values prepared for the database by each field as the ORM prepares them."""
    names = tuple(sorted(equals))
    where, fields = _where(model, using, names)
    connection = connections[using]
    params = [f.get_db_prep_value(f.to_python(equals[n]), connection) for n, f in zip(names, fields, strict=True)]
    return rows(model, where, params, order_by=order_by, limit=limit, using=using)


def get(model: type[M], pk: Any, *, using: str = "default") -> M | None:
    """The instance with this primary key, or None."""
    found = select(model, pk=pk, limit=1, using=using)
    return found[0] if found else None
