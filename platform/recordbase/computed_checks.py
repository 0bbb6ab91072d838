"""Definition checks for computed fields: formulas type-checked, lookups and rollups resolved.

Run by :func:`recordbase.definition.check_definition` once the rest of the
definition holds together. The definition is resolved into a throwaway
``AppSchema`` (made-up physical ids, no database) and every computed field is
built exactly as the record store will build it on a read — the same parser,
type checker and SQL compiler — so a formula that passes here cannot fail to
compile later unless the fields it reads change (and then this check fails
the change that breaks it). Problems carry the JSON pointer of the option at
fault: ``/tables/2/fields/5/options/formula``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import Problem

if TYPE_CHECKING:
    from .schema import AppSchema

COMPUTED_TYPES = ("formula", "lookup", "rollup")


def throwaway_schema(data: Mapping[str, Any]) -> AppSchema:
    """The definition resolved as if installed, with made-up physical ids and no database."""
    from .schema import build_app_schema

    tables = []
    table_pks: dict[str, int] = {}
    field_pks: dict[tuple[str, str], int] = {}
    for i, table in enumerate(data["tables"]):
        tid = str(table.get("id") or f"table-{i}")
        table_pks[tid] = i + 1
        fields = []
        for j, field in enumerate(table.get("fields") or []):
            fid = str(field.get("id") or f"field-{i}-{j}")
            field_pks[(tid, fid)] = len(field_pks) + 1
            fields.append({**field, "id": fid})
        tables.append({**table, "id": tid, "fields": fields})
    return build_app_schema(
        {"id": 0, "uid": "check", "slug": data.get("slug", "app"), "version": 0, "definition": {**data, "tables": tables}},
        table_pks, field_pks,
    )


def computed_problems(data: Any) -> list[Problem]:
    from .fields.computed import ComputedType, ComputeError

    if not isinstance(data, Mapping) or not isinstance(data.get("tables"), list):
        return []
    problems: list[Problem] = []
    wanted: list[tuple[str, str, str]] = []  # (table slug, field slug, pointer)
    for i, table in enumerate(data["tables"]):
        for j, field in enumerate(table.get("fields") or []):
            if field.get("type") in COMPUTED_TYPES:
                where = f"/tables/{i}/fields/{j}"
                for key, what in (("required", "filled in"), ("unique", "unique"), ("default", "given a default")):
                    if key in field and field[key] not in (False, None):
                        problems.append(Problem(f"{where}/{key}", f"a computed field cannot be {what}: Recordbase computes it"))
                wanted.append((table["slug"], field["slug"], where))
    if not wanted:
        return problems
    app = throwaway_schema(data)
    for table_slug, field_slug, where in wanted:
        ts = app.tables[table_slug]
        f = ts.fields[field_slug]
        assert isinstance(f.type, ComputedType)
        f._memo.pop("result", None)  # derive_computed may have cached a failure's absence
        try:
            f.type.result(f, ts)
            f.type.expression(f, ts, None)
        except ComputeError as error:
            key = "/options/formula" if f.type.name == "formula" else "/options"
            problems.append(Problem(where + key, str(error)))
    return problems


# --- automations ---------------------------------------------------------------------------

_STAMPS = ("created_by", "updated_by")


def automation_problems(data: Any) -> list[Problem]:
    """References in each table's automations: fields, tables, views, roles, conditions, values."""
    from .errors import QueryError
    from .fields import FieldValueError, FilterContext
    from .query import compile_filter

    if not isinstance(data, Mapping) or not any(t.get("automations") for t in data.get("tables") or []):
        return []
    app = throwaway_schema(data)
    roles = {r.get("slug") for r in data.get("roles") or []}
    views = {v.get("slug"): v for v in data.get("views") or []}
    problems: list[Problem] = []
    ctx = FilterContext(now=dt.datetime.now(dt.UTC), dialect="sqlite")
    for i, table in enumerate(data["tables"]):
        ts = app.tables[table["slug"]]
        seen: set[str] = set()
        for k, automation in enumerate(table.get("automations") or []):
            where = f"/tables/{i}/automations/{k}"
            if automation["slug"] in seen:
                problems.append(Problem(where + "/slug", f'duplicate automation slug "{automation["slug"]}"'))
            seen.add(automation["slug"])
            trigger = automation["trigger"]
            on = trigger["on"]
            if on == "date":
                f = ts.fields.get(trigger.get("field", ""))
                if f is None or f.type.name not in ("date", "datetime"):
                    problems.append(Problem(where + "/trigger/field", 'a "date" trigger needs "field": a date or date-time field of this table'))
            if on == "updated":
                for n, slug in enumerate(trigger.get("fields") or []):
                    if slug not in ts.fields:
                        problems.append(Problem(f"{where}/trigger/fields/{n}", f'"{slug}" is not a field of "{ts.slug}"'))
            if on == "form":
                view = views.get(trigger.get("view"))
                if view is None or view.get("type") != "form" or view.get("table") != ts.slug:
                    problems.append(Problem(where + "/trigger/view", f'a "form" trigger needs "view": a form view of "{ts.slug}"'))
            for key in ("field", "view", "offset_days", "since_days", "fields"):
                allowed = {"field": "date", "offset_days": "date", "since_days": "date", "view": "form", "fields": "updated"}[key]
                if key in trigger and on != allowed:
                    problems.append(Problem(f"{where}/trigger/{key}", f'"{key}" applies to "{allowed}" triggers only'))
            if automation.get("condition") is not None:
                try:
                    compile_filter(ts, automation["condition"], ctx, where + "/condition")
                except QueryError as error:
                    problems.extend(error.problems)
            for n, action in enumerate(automation["actions"]):
                problems.extend(_action_problems(app, ts, action, f"{where}/actions/{n}", roles, FieldValueError))
    return problems


def _action_problems(app: AppSchema, ts: Any, action: Mapping[str, Any], where: str, roles: set[Any], value_error: type[Exception]) -> list[Problem]:
    problems: list[Problem] = []
    kind = action["do"]
    needs = {"set": {"values"}, "create": {"table", "values"}, "assign": {"field", "to"}, "notify": {"to"}, "webhook": set()}[kind]
    allowed = needs | ({"message"} if kind in ("assign", "notify") else set())
    for key in needs - set(action):
        problems.append(Problem(where, f'a "{kind}" action needs "{key}"'))
    for key in set(action) - allowed - {"do"}:
        problems.append(Problem(f"{where}/{key}", f'"{key}" does not apply to a "{kind}" action'))
    target = ts
    if kind == "create" and "table" in action:
        target = app.tables.get(action["table"])
        if target is None:
            problems.append(Problem(where + "/table", f'"{action["table"]}" is not a table of this app'))
            return problems
    for slug, value in (action.get("values") or {}).items() if kind in ("set", "create") else ():
        f = target.fields.get(slug)
        here = f"{where}/values/{slug}"
        if f is None:
            problems.append(Problem(here, f'"{slug}" is not a field of "{target.slug}"'))
            continue
        if f.type.system or f.type.name == "autonumber" or getattr(f.type, "computed", False):
            problems.append(Problem(here, f'"{slug}" is set by Recordbase and cannot be written'))
            continue
        if isinstance(value, Mapping) and len(value) == 1 and "$record" in value:
            source = value["$record"]
            if source != "id" and source not in _STAMPS and source not in ts.fields:
                problems.append(Problem(here + "/$record", f'"{source}" is not a field of "{ts.slug}"'))
            continue
        if isinstance(value, Mapping) and len(value) == 1 and "$today" in value:
            if not isinstance(value["$today"], int) or isinstance(value["$today"], bool):
                problems.append(Problem(here + "/$today", '"$today" takes a whole number of days'))
            elif f.type.name not in ("date", "datetime"):
                problems.append(Problem(here, f'"$today" is a date; "{slug}" is not a date field'))
            continue
        try:
            f.type.parse(f, value)
        except value_error as error:
            problems.append(Problem(here, f'not a valid value for "{slug}": {error}'))
    if kind == "assign" and "field" in action:
        f = ts.fields.get(action["field"])
        if f is None or f.type.name != "user":
            problems.append(Problem(where + "/field", f'"{action["field"]}" is not a user field of "{ts.slug}"'))
    to = action.get("to")
    if isinstance(to, Mapping) and to:
        key, value = next(iter(to.items()))
        if key == "$record":
            f = ts.fields.get(value)
            if value not in _STAMPS and (f is None or f.type.name != "user"):
                problems.append(Problem(where + "/to/$record", f'"{value}" is not a user field of "{ts.slug}"'))
        elif key == "role":
            if value not in roles:
                problems.append(Problem(where + "/to/role", f'"{value}" is not a role of this app'))
        elif key == "user":
            if not isinstance(value, str) or "@" not in value:
                problems.append(Problem(where + "/to/user", "a user is named by email"))
        else:
            problems.append(Problem(where + "/to", '"to" is {"$record": <user field>}, {"role": <role>} or {"user": <email>}'))
    return problems
