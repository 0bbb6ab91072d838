"""The runtime shape of installed apps: fields resolved to types and SQL tables.

An ``AppSchema`` is built from an app's stored definition plus the physical
ids in ``rb_table`` / ``rb_field``; it is immutable and cached by the engine
until the app's version changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from . import fields as field_types
from .crypto import KeyRing
from .database import UTCDateTime
from .fields import Field
from .fields.encrypted import EncryptedType, wants_encryption

SYSTEM_COLUMNS = ("id", "version", "created_at", "created_by", "updated_at", "updated_by")


def physical_table_name(table_pk: int) -> str:
    return f"t{table_pk}"


def system_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
    ]


@dataclass
class TableSchema:
    pk: int
    uid: str
    slug: str
    definition: Mapping[str, Any]
    app: AppSchema
    fields: dict[str, Field] = field(default_factory=dict)  # by slug, definition order
    table: sa.Table = None  # type: ignore[assignment]
    junctions: dict[str, sa.Table] = field(default_factory=dict)  # by field slug
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # statements built once per schema version

    @property
    def name(self) -> str:
        return physical_table_name(self.pk)

    @property
    def label(self) -> Any:
        return self.definition.get("label", self.slug)

    def field(self, slug: str) -> Field:
        return self.fields[slug]

    def field_by_uid(self, uid: str) -> Field | None:
        return next((f for f in self.fields.values() if f.uid == uid), None)

    @property
    def stored_fields(self) -> list[Field]:
        """Fields with a column of their own in this table."""
        return [f for f in self.fields.values() if f.type.stores_in_column and slug_has_column(self, f)]

    @property
    def has_computed(self) -> bool:
        """Whether any field is computed on read (formula, lookup, rollup); asked on every get, so kept."""
        found = self.cache.get("has_computed")
        if found is None:
            found = self.cache["has_computed"] = any(getattr(f.type, "computed", False) for f in self.fields.values())
        return bool(found)

    @property
    def searchable_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.type.searchable]

    @property
    def primary_field(self) -> Field | None:
        slug = self.definition.get("primary_field")
        if slug and slug in self.fields:
            return self.fields[slug]
        return next((f for f in self.fields.values() if f.type.name == "text"), None)


def slug_has_column(table: TableSchema, f: Field) -> bool:
    return f.slug not in table.junctions


@dataclass
class AppSchema:
    pk: int
    uid: str
    slug: str
    version: int
    definition: Mapping[str, Any]
    tables: dict[str, TableSchema] = field(default_factory=dict)
    metadata: sa.MetaData = field(default_factory=sa.MetaData)

    def table(self, slug: str) -> TableSchema:
        return self.tables[slug]

    def table_by_uid(self, uid: str) -> TableSchema | None:
        return next((t for t in self.tables.values() if t.uid == uid), None)


def effective_definition(definition: Mapping[str, Any], settings_region: str) -> dict[str, Any]:
    """Field definitions with instance-level defaults folded in (e.g. the phone region)."""
    result = dict(definition)
    if result.get("type") == "phone" and not (result.get("options") or {}).get("region"):
        result["options"] = {**(result.get("options") or {}), "region": settings_region}
    return result


def build_app_schema(
    app_row: Mapping[str, Any],
    table_pks: Mapping[str, int],
    field_pks: Mapping[tuple[str, str], int],
    phone_region: str = "CN",
    keys: KeyRing | None = None,
) -> AppSchema:
    """Resolve an app's stored definition against its physical ids.

    ``table_pks`` maps table uid → rb_table.id; ``field_pks`` maps
    (table uid, field uid) → rb_field.id.
    """
    definition = app_row["definition"]
    app = AppSchema(
        pk=app_row["id"], uid=app_row["uid"], slug=app_row["slug"],
        version=app_row["version"], definition=definition,
    )
    for tdef in definition["tables"]:
        tpk = table_pks[tdef["id"]]
        ts = TableSchema(pk=tpk, uid=tdef["id"], slug=tdef["slug"], definition=tdef, app=app)
        for fdef in tdef["fields"]:
            ftype = field_types.get(fdef["type"])
            computed = getattr(ftype, "computed", False)
            if keys is not None and not computed and wants_encryption(fdef, ftype.default_sensitivity):
                ftype = EncryptedType(ftype, keys)
            ts.fields[fdef["slug"]] = Field(
                pk=field_pks[(tdef["id"], fdef["id"])], uid=fdef["id"], slug=fdef["slug"], type=ftype,
                definition=effective_definition(fdef, phone_region), table_pk=tpk,
            )
        app.tables[ts.slug] = ts
    for ts in app.tables.values():
        columns = system_columns()
        for f in ts.fields.values():
            junction = f.type.junction(f, ts.name, app.metadata)
            if junction is not None:
                ts.junctions[f.slug] = junction
            elif f.type.stores_in_column:
                columns.extend(f.type.columns(f))
        # AUTOINCREMENT: SQLite must never reuse the id of a record in the trash.
        ts.table = sa.Table(ts.name, app.metadata, *columns, sqlite_autoincrement=True)
    for ts in app.tables.values():
        derive_computed(ts)
    return app


def derive_computed(ts: TableSchema) -> None:
    """Give each computed field the highest sensitivity among what it reads, and check it once.

    A formula over a personal field is personal: it is then masked wherever
    that field would be. A computed field that cannot be built (its source
    gone or changed type) is treated as sensitive and fails when read, with
    the reason, rather than computing nonsense.
    """
    from .fields.computed import SENSITIVITY_RANK, ComputeError, sources

    for slug, f in list(ts.fields.items()):
        if not getattr(f.type, "computed", False):
            continue
        try:
            levels = [source.sensitivity for _table, source in sources(ts, f)]
            f.type.result(f, ts)  # type: ignore[attr-defined]
        except ComputeError:
            levels = ["sensitive"]
        declared = f.definition.get("sensitivity")
        if declared:
            levels.append(declared)
        derived = max(levels or ["internal"], key=lambda level: SENSITIVITY_RANK.get(level, 3))
        definition = {**f.definition, "sensitivity": derived, "derived_sensitivity": derived != declared}
        ts.fields[slug] = replace(f, definition=definition, _memo=dict(f._memo))


def index_specs(ts: TableSchema) -> list[tuple[str, list[str], bool]]:
    """(index name, columns, unique) for every unique, indexed or link field."""
    specs = []
    for f in ts.stored_fields:
        column = f.type.index_column(f)
        if f.unique:
            specs.append((f"ux_{ts.name}_{f.column_name}", [column], True))
        elif f.indexed or f.type.encrypted or f.type.name in ("link", "autonumber"):
            # An encrypted field's blind index is how it is found at all: always indexed.
            specs.append((f"ix_{ts.name}_{f.column_name}", [column], False))
    return specs


def _text(label: Any) -> str:
    if isinstance(label, Mapping):
        return str(label.get("en") or next(iter(label.values()), ""))
    return str(label)


def record_json_schema(ts: TableSchema) -> dict[str, Any]:
    """The JSON Schema of a record's ``fields`` object, built from each field type's fragment.

    Read-only fields (system stamps, autonumbers) are marked ``readOnly``;
    required fields are listed in ``required`` (for writes that create).
    """
    properties: dict[str, Any] = {}
    for f in ts.fields.values():
        fragment = dict(f.type.json_schema(f))
        fragment["title"] = _text(f.label)
        if f.definition.get("help"):
            fragment["description"] = _text(f.definition["help"])
        if f.type.system or f.type.name == "autonumber":
            fragment["readOnly"] = True
        properties[f.slug] = fragment
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": _text(ts.label),
        "type": "object",
        "properties": properties,
        "required": [f.slug for f in ts.fields.values() if f.required],
        "additionalProperties": False,
    }
