"""Planning a definition change: a pure diff of two definitions, by stable ids.

``assign_ids`` gives every table, field and choice of a new definition its
stable id (keeping the ids of what it matches in the installed definition);
``diff`` returns the ``Plan`` of steps that turns one into the other. Nothing
here touches the database, so tests compare plans exactly.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .definition import new_id

# Options whose change alters what is stored, so values must be converted.
_STORAGE_OPTIONS = ("scale", "many", "table")


@dataclass(frozen=True)
class Step:
    kind: str  # create_app, add_table, remove_table, rename_table, add_field, remove_field,
    #            rename_field, convert_field, change_index, rebuild_search, update_definition
    table: str | None = None  # table uid
    field: str | None = None  # field uid
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def tuid(self) -> str:
        """The table's stable id, for steps about a table."""
        assert self.table is not None, f"{self.kind} names no table"
        return self.table

    @property
    def fuid(self) -> str:
        """The field's stable id, for steps about a field."""
        assert self.field is not None, f"{self.kind} names no field"
        return self.field

    def describe(self) -> str:
        d = self.detail
        text = {
            "create_app": "create app {app}",
            "add_table": "add table {slug}",
            "remove_table": "remove table {slug} (to the trash)",
            "rename_table": "rename table {old} → {new}",
            "add_field": "add field {table_slug}.{slug} ({type})",
            "remove_field": "remove field {table_slug}.{slug} (to the trash)",
            "rename_field": "rename field {table_slug}.{old} → {new}",
            "convert_field": "convert field {table_slug}.{slug}: {old_type} → {new_type}{why}",
            "change_index": "{action} {index} on {table_slug}.{slug}",
            "rebuild_search": "rebuild the search index of {table_slug}",
            "update_definition": "update labels, options and settings",
        }[self.kind]
        return text.format(**{"why": "", **d})

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "field": self.field, "detail": dict(self.detail), "text": self.describe()}


@dataclass
class Plan:
    steps: list[Step]
    definition: dict[str, Any]  # the new definition, with every id assigned

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def describe(self) -> list[str]:
        return [step.describe() for step in self.steps] or ["nothing to change"]


def _match(new_items: list[dict[str, Any]], old_items: list[Mapping[str, Any]], prefix: str) -> None:
    """Give each new item its id: its own, else that of the old item with the same slug, else a new one."""
    old_by_slug = {o["slug"]: o["id"] for o in old_items if "slug" in o and "id" in o}
    taken = {n["id"] for n in new_items if n.get("id")}
    for item in new_items:
        if not item.get("id"):
            candidate = old_by_slug.get(item.get("slug"))
            item["id"] = candidate if candidate and candidate not in taken else new_id(prefix)
            taken.add(item["id"])


def _match_choices(new_field: dict[str, Any], old_field: Mapping[str, Any] | None) -> None:
    choices = (new_field.get("options") or {}).get("choices")
    if not isinstance(choices, list):
        return
    old = ((old_field or {}).get("options") or {}).get("choices") or []
    old_by_label = {_label_key(c.get("label")): c["id"] for c in old if "id" in c}
    taken = {c["id"] for c in choices if c.get("id")}
    for choice in choices:
        if not choice.get("id"):
            candidate = old_by_label.get(_label_key(choice.get("label")))
            choice["id"] = candidate if candidate and candidate not in taken else new_id("opt")
            taken.add(choice["id"])


def _label_key(label: Any) -> str:
    return repr(sorted(label.items())) if isinstance(label, Mapping) else repr(label)


def assign_ids(definition: Mapping[str, Any], installed: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``definition`` with stable ids on every table, field and choice.

    The app itself is identified by its slug.
    """
    new = copy.deepcopy(dict(definition))
    old = installed or {}
    _match(new["tables"], old.get("tables", []), "tbl")
    old_tables = {t["id"]: t for t in old.get("tables", [])}
    for table in new["tables"]:
        old_fields = old_tables.get(table["id"], {}).get("fields", [])
        _match(table["fields"], old_fields, "fld")
        old_by_id = {f["id"]: f for f in old_fields}
        for f in table["fields"]:
            _match_choices(f, old_by_id.get(f["id"]))
    return new


def _encrypted(definition: Mapping[str, Any]) -> bool:
    from . import fields as field_types
    from .fields.encrypted import wants_encryption

    return wants_encryption(dict(definition), field_types.get(definition["type"]).default_sensitivity)


def table_ids(definition: Mapping[str, Any] | None) -> dict[str, str]:
    """Table slug (and id) → table id, to compare link targets across renames."""
    ids: dict[str, str] = {}
    for table in (definition or {}).get("tables", []):
        if table.get("id"):
            ids[table["slug"]] = ids[table["id"]] = table["id"]
    return ids


def needs_conversion(
    old: Mapping[str, Any], new: Mapping[str, Any],
    old_tables: Mapping[str, str] | None = None, new_tables: Mapping[str, str] | None = None,
) -> str | None:
    """Why a field's stored values must be rewritten, or ``None`` if they stay valid.

    A link's target is compared by table id (via ``old_tables`` / ``new_tables``),
    so renaming the linked table keeps its links.
    """
    if old["type"] != new["type"]:
        return ""
    if _encrypted(old) != _encrypted(new):
        return " (encryption changes)"
    old_opts, new_opts = old.get("options") or {}, new.get("options") or {}
    for key in _STORAGE_OPTIONS:
        before, after = old_opts.get(key), new_opts.get(key)
        if key == "table" and before is not None and after is not None:
            before = (old_tables or {}).get(before, before)
            after = (new_tables or {}).get(after, after)
        if before != after:
            return f" ({key} changes)"
    old_choices = {c["id"] for c in old_opts.get("choices") or []}
    new_choices = {c["id"] for c in new_opts.get("choices") or []}
    if old_choices - new_choices:
        return " (choices removed)"
    if new_opts.get("max_length", 10**9) < old_opts.get("max_length", 10**9):
        return " (max_length shrinks)"
    return None


def diff(installed: Mapping[str, Any] | None, definition: Mapping[str, Any], searchable: set[str]) -> Plan:
    """The steps from ``installed`` to ``definition`` (which must already have its ids).

    ``searchable`` names the field types that feed the full-text index.
    """
    steps: list[Step] = []
    if installed is None:
        steps.append(Step("create_app", detail={"app": definition["slug"]}))
        for table in definition["tables"]:
            steps.append(Step("add_table", table["id"], detail={"slug": table["slug"]}))
        return Plan(steps, dict(definition))
    old_tables = {t["id"]: t for t in installed["tables"]}
    new_tables = {t["id"]: t for t in definition["tables"]}
    for uid, table in old_tables.items():
        if uid not in new_tables:
            steps.append(Step("remove_table", uid, detail={"slug": table["slug"]}))
    for uid, table in new_tables.items():
        old_table = old_tables.get(uid)
        if old_table is None:
            steps.append(Step("add_table", uid, detail={"slug": table["slug"]}))
            continue
        if old_table["slug"] != table["slug"]:
            steps.append(Step("rename_table", uid, detail={"old": old_table["slug"], "new": table["slug"]}))
        steps.extend(_diff_fields(old_table, table, searchable, table_ids(installed), table_ids(definition)))
    if not steps and installed != definition:
        steps.append(Step("update_definition"))
    return Plan(steps, dict(definition))


def _diff_fields(
    old_table: Mapping[str, Any], table: Mapping[str, Any], searchable: set[str],
    old_tables: Mapping[str, str], new_tables: Mapping[str, str],
) -> list[Step]:
    steps: list[Step] = []
    tuid, tslug = table["id"], table["slug"]
    old_fields = {f["id"]: f for f in old_table["fields"]}
    new_fields = {f["id"]: f for f in table["fields"]}
    search_changed = False
    for uid, f in old_fields.items():
        if uid not in new_fields:
            steps.append(Step("remove_field", tuid, uid, {"table_slug": tslug, "slug": f["slug"], "type": f["type"]}))
            search_changed |= f["type"] in searchable
    for uid, f in new_fields.items():
        old = old_fields.get(uid)
        detail = {"table_slug": tslug, "slug": f["slug"], "type": f["type"]}
        if old is None:
            steps.append(Step("add_field", tuid, uid, detail))
            continue
        if old["slug"] != f["slug"]:
            steps.append(Step("rename_field", tuid, uid, {"table_slug": tslug, "old": old["slug"], "new": f["slug"]}))
        why = needs_conversion(old, f, old_tables, new_tables)
        if why is not None:
            steps.append(Step("convert_field", tuid, uid, {**detail, "old_type": old["type"], "new_type": f["type"], "why": why}))
            search_changed |= old["type"] in searchable or f["type"] in searchable
            continue
        for flag in ("unique", "indexed"):
            if bool(old.get(flag)) != bool(f.get(flag)):
                action = "create" if f.get(flag) else "drop"
                steps.append(Step("change_index", tuid, uid, {**detail, "action": action, "index": "unique index" if flag == "unique" else "index", "flag": flag}))
    if search_changed:
        steps.append(Step("rebuild_search", tuid, detail={"table_slug": tslug}))
    return steps
