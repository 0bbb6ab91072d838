"""Encryption at rest for one field: any storable type, sealed with AES-256-GCM.

Not a field type of its own (nothing registers it): the schema wraps the
type of every encrypted field — ``sensitive`` fields always, ``personal``
ones unless the definition says ``"encrypted": false``. The wrapper keeps
the inner type's rules for values and changes only storage: the column holds
ciphertext, and a second column ``f<id>_bi`` a keyed blind index, so equality
filters, uniqueness and data-subject lookups work without a plaintext index.
Ordering, ranges, substrings and search are refused: ciphertext has no order.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..crypto import KeyRing
from .base import EMPTY_OPS, Field, FieldType, FieldValueError, FilterContext

ENCRYPTABLE = frozenset({
    "text", "long_text", "email", "phone", "url", "address", "number", "currency", "percent",
    "rating", "boolean", "date", "datetime", "single_select", "multi_select",
})

# The canonical JSON of a stored value, with one encoder made once (json.dumps with options builds one per call).
_encode = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":")).encode


def wants_encryption(definition: dict[str, Any], default_sensitivity: str) -> bool:
    if definition.get("type") not in ENCRYPTABLE:
        return False
    sensitivity = definition.get("sensitivity") or default_sensitivity
    if sensitivity == "sensitive":
        return True
    return sensitivity == "personal" and definition.get("encrypted", True) is not False


class EncryptedType(FieldType):
    """Wraps ``inner``; every method about values delegates, storage is sealed."""

    operators = frozenset({"eq", "ne", "in", "not_in"}) | EMPTY_OPS
    searchable = False
    sortable = False
    encrypted = True

    def __init__(self, inner: FieldType, keys: KeyRing) -> None:
        self.inner = inner
        self.keys = keys
        self.name = inner.name  # type: ignore[misc]
        self.default_sensitivity = inner.default_sensitivity  # type: ignore[misc]
        self.can_be_unique = inner.can_be_unique  # type: ignore[misc]
        self.can_be_required = inner.can_be_required  # type: ignore[misc]
        self.json_type = inner.json_type  # type: ignore[misc]

    @staticmethod
    def context(f: Field) -> str:
        return f"{f.table_pk}:{f.uid}"

    @staticmethod
    def index_name(f: Field) -> str:
        return f"{f.column_name}_bi"

    # --- storage -----------------------------------------------------------------
    def columns(self, f: Field) -> list[sa.Column[Any]]:
        return [sa.Column(f.column_name, sa.Text(), nullable=True), sa.Column(self.index_name(f), sa.String(40), nullable=True)]

    def index_column(self, f: Field) -> str:
        return self.index_name(f)

    def stored_columns(self, f: Field) -> list[str]:
        return [f.column_name, self.index_name(f)]

    def _canonical(self, f: Field, value: Any) -> str:
        return _encode(self.inner.to_db(f, value))

    def to_db(self, f: Field, value: Any) -> Any:
        return self.keys.encrypt(self._canonical(f, value), self.context(f))

    def db_values(self, f: Field, value: Any) -> dict[str, Any]:
        if value is None:
            return {f.column_name: None, self.index_name(f): None}
        canonical, context = self._canonical(f, value), self.context(f)
        return {
            f.column_name: self.keys.encrypt(canonical, context),
            self.index_name(f): self.keys.blind_index(canonical, context),
        }

    def unique_key(self, f: Field, value: Any) -> Any:
        return self.keys.blind_index(self._canonical(f, value), self.context(f))

    def from_db(self, f: Field, raw: Any) -> Any:
        stored = json.loads(self.keys.decrypt(raw, self.context(f)))
        return None if stored is None else self.inner.from_db(f, stored)

    # --- values: the inner type's rules --------------------------------------------
    def parse(self, f: Field, value: Any) -> Any:
        return self.inner.parse(f, value)

    def json_value(self, f: Field, value: Any) -> Any:
        return self.inner.json_value(f, value)

    def json_schema(self, f: Field) -> dict[str, Any]:
        return self.inner.json_schema(f)

    def to_text(self, f: Field, value: Any) -> str:
        return self.inner.to_text(f, value)

    def from_text(self, f: Field, text: str) -> Any:
        return self.inner.from_text(f, text)

    def sample(self, f: Field, fake: Any) -> Any:
        return self.inner.sample(f, fake)

    def mask(self, f: Field, value: Any) -> Any:
        return self.inner.mask(f, value)

    def resolve_default(self, default: Any) -> Any:
        return self.inner.resolve_default(default)

    # --- query: equality through the blind index ----------------------------------------
    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        if op not in self.operators:
            raise FieldValueError(f'"{f.slug}" is encrypted: only eq, ne, in, not_in and emptiness filters work on it')
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise FieldValueError(f'"{op}" needs a non-empty list of values')
            return [self._key(f, v) for v in value]
        return self._key(f, value)

    def _key(self, f: Field, value: Any) -> str:
        parsed = self.inner.parse(f, value)
        if parsed is None:
            raise FieldValueError("a filter value cannot be empty; use is_empty")
        return str(self.unique_key(f, parsed))

    def filter(self, f: Field, col: sa.ColumnElement[Any], op: str, value: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
        index = col.table.c[self.index_name(f)]  # type: ignore[attr-defined]
        return FieldType.filter(self, f, index, op, value, ctx)

    def sort_expression(self, f: Field, col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        raise FieldValueError(f'"{f.slug}" is encrypted and has no order')
