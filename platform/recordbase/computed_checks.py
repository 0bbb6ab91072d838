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

from collections.abc import Mapping
from typing import Any

from .errors import Problem

COMPUTED_TYPES = ("formula", "lookup", "rollup")


def computed_problems(data: Any) -> list[Problem]:
    from .fields.computed import ComputedType, ComputeError
    from .schema import build_app_schema

    if not isinstance(data, Mapping) or not isinstance(data.get("tables"), list):
        return []
    problems: list[Problem] = []
    wanted: list[tuple[str, str, str]] = []  # (table slug, field slug, pointer)
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
            if field.get("type") in COMPUTED_TYPES:
                where = f"/tables/{i}/fields/{j}"
                for key, what in (("required", "filled in"), ("unique", "unique"), ("default", "given a default")):
                    if key in field and field[key] not in (False, None):
                        problems.append(Problem(f"{where}/{key}", f"a computed field cannot be {what}: Recordbase computes it"))
                wanted.append((table["slug"], field["slug"], where))
        tables.append({**table, "id": tid, "fields": fields})
    if not wanted:
        return problems
    definition = {**data, "tables": tables}
    app = build_app_schema(
        {"id": 0, "uid": "check", "slug": data.get("slug", "app"), "version": 0, "definition": definition},
        table_pks, field_pks,
    )
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
