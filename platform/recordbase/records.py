"""Creating, reading, updating and querying the records of one app table.

``RecordStore`` is the one door in and out for record values: every write
passes ``_prepare`` (the field types' validation) and lands with its audit
entry in one transaction; every read is compiled by ``query.py``. Each store
is bound to an explicit ``Actor``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import AsBoolean, True_

from . import automations
from . import query as q
from .access import Access, RoleRule
from .actor import Actor
from .audit import SEALED, append_audit, audit_rows
from .database import (
    allocate_ids,
    delete_search_documents,
    insert_rows,
    refresh_statistics,
    write_search_documents,
)
from .errors import Conflict, NotFound, PermissionDenied, Problem, ValidationError
from .fields import Field, FieldType, FieldValueError, FilterContext
from .fields.relation import MAX_ID
from .models import Sequence as SequenceModel
from .models import StoredFile, User, utcnow
from .reads import PreparedSelect
from .schema import TableSchema

if TYPE_CHECKING:
    from .core import Recordbase
    from .exchange import Export, ImportReport

MAX_BATCH = 10_000
STATISTICS_AFTER = 1_000  # rows in one create after which the planner's statistics are refreshed
_CHUNK = 500
PERSONAL = ("personal", "sensitive")
sequence_table: sa.Table = SequenceModel.__table__  # type: ignore[assignment]
user_table: sa.Table = User.__table__  # type: ignore[assignment]
file_table: sa.Table = StoredFile.__table__  # type: ignore[assignment]


@dataclass
class Record:
    id: int
    fields: dict[str, Any]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by: int | None = None
    updated_by: int | None = None

    def as_json(self, ts: TableSchema) -> dict[str, Any]:
        """The record in plain JSON types (decimals as strings, dates as ISO text)."""
        out = {slug: _json(ts.fields[slug], value) for slug, value in self.fields.items()}
        return {
            "id": self.id, "fields": out, "version": self.version,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by, "updated_by": self.updated_by,
        }


@dataclass
class Page:
    records: list[Record]
    next_cursor: str | None
    total: int | None = None


@dataclass
class _Prepared:
    """A validated write: stored values by field slug, ready for SQL."""

    index: int
    parsed: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


_PLAIN_JSON = (str, int, bool, float)


def _json(f: Field, value: Any) -> Any:
    if value is None or type(value) in _PLAIN_JSON:
        return value
    return f.type.json_value(f, value)


_quoted: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]  # as json.dumps(s, ensure_ascii=False)


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _always_true(clause: sa.ColumnElement[bool]) -> bool:
    """``true()``, or a combination SQLAlchemy has already reduced to it."""
    inner = getattr(clause, "element", clause) if isinstance(clause, AsBoolean) else clause
    return isinstance(inner, True_)


class RecordStore:
    """The records of one table, as seen and changed by one actor."""

    def __init__(self, rb: Recordbase, actor: Actor, ts: TableSchema) -> None:
        self.rb = rb
        self.actor = actor
        self.ts = ts
        self.table = ts.table
        self.access = Access.for_actor(actor, ts)
        self._form: str | None = None  # the form view a public submission came through (automations' "form" trigger)
        # Per-table lists the write path consults for every record.
        self._inputs = {
            slug: f for slug, f in ts.fields.items()
            if not f.type.system and f.type.name != "autonumber" and not getattr(f.type, "computed", False)
        }
        self._defaults = [f for f in self._inputs.values() if f.default is not None]
        self._required = [f for f in self._inputs.values() if f.required]
        self._columns_out = [(slug, f) for slug, f in self._inputs.items() if slug not in ts.junctions]
        self._personal = frozenset(slug for slug, f in ts.fields.items() if f.sensitivity in PERSONAL)

    # --- validation: the one door in ----------------------------------------


    def _prepare(self, values: Any, index: int, pointer: str, *, creating: bool) -> _Prepared:
        prepared = _Prepared(index)
        if not isinstance(values, Mapping):
            prepared.problems.append(Problem(pointer, "expected an object of field values"))
            return prepared
        parsed = prepared.parsed
        for slug, value in values.items():
            f = self._inputs.get(slug)
            if f is None:
                where = f"{pointer}/{slug}"
                message = (
                    f'"{slug}" is set by Recordbase and cannot be written'
                    if slug in self.ts.fields or slug in q.SYSTEM_FIELD_TYPES or slug in ("id", "version")
                    else f'unknown field "{slug}" in table "{self.ts.slug}"'
                )
                prepared.problems.append(Problem(where, message))
                continue
            try:
                parsed[slug] = f.type.parse(f, value)
            except FieldValueError as exc:
                prepared.problems.append(Problem(f"{pointer}/{slug}", f'"{slug}" {exc}'))
        if creating:
            for f in self._defaults:
                if f.slug not in parsed:
                    parsed[f.slug] = f.type.parse(f, f.type.resolve_default(f.default))
        for f in self._required:
            if parsed.get(f.slug, None if creating else ...) is None:
                prepared.problems.append(Problem(f"{pointer}/{f.slug}", f'"{f.slug}" is required'))
        return prepared

    def _raise_problems(self, prepared: Sequence[_Prepared], what: str) -> None:
        problems = [p for item in prepared for p in item.problems]
        if problems:
            bad = sum(1 for item in prepared if item.problems)
            raise ValidationError(f"{bad} {what} invalid: {problems[0]}", problems)

    def _db_row(self, parsed: Mapping[str, Any]) -> dict[str, Any]:
        """Stored column values for the fields in ``parsed``."""
        row: dict[str, Any] = {}
        for slug, f in self._columns_out:
            if slug in parsed:
                row.update(f.type.db_values(f, parsed[slug]))
        return row

    # --- checks that need the database ---------------------------------------

    def _check_references(self, conn: sa.Connection, prepared: Sequence[_Prepared], pointer: str, exclude_id: int | None = None) -> None:
        problems: list[Problem] = []
        for f in self.ts.fields.values():
            values = [(p.index, p.parsed[f.slug]) for p in prepared if p.parsed.get(f.slug) is not None]
            if not values:
                continue
            kind = f.type.name
            if kind in ("link", "user"):
                target = user_table if kind == "user" else self._link_target(f).table
                wanted = {v for _, value in values for v in (value if isinstance(value, list) else [value])}
                # An actor may only link to records it can read: otherwise "no such record"
                # against success would tell it which ids exist.
                visible = sa.true() if kind == "user" else self._readable(self._link_target(f))
                found = self._existing(conn, target.c.id, wanted, visible)
                for index, value in values:
                    for rid in value if isinstance(value, list) else [value]:
                        if rid not in found:
                            noun = "user" if kind == "user" else f'record in "{self._link_target(f).slug}"'
                            problems.append(Problem(pointer.format(index) + f"/{f.slug}", f'"{f.slug}": there is no {noun} with id {rid}'))
            elif kind == "attachment":
                wanted = {item["sha256"] for _, value in values for item in value}
                found = self._existing(conn, file_table.c.sha256, wanted)
                for index, value in values:
                    if any(item["sha256"] not in found for item in value):
                        problems.append(Problem(pointer.format(index) + f"/{f.slug}", f'"{f.slug}": a file has not been uploaded'))
            if f.unique and f.slug not in self.ts.junctions:
                problems.extend(self._unique_problems(conn, f, values, pointer, exclude_id))
        if problems:
            raise ValidationError(f"{len(problems)} invalid value(s): {problems[0]}", problems)

    def _unique_problems(self, conn: sa.Connection, f: Field, values: list[tuple[int, Any]], pointer: str, exclude_id: int | None) -> list[Problem]:
        problems = []
        stored = [(index, f.type.unique_key(f, value)) for index, value in values]
        seen: dict[Any, int] = {}
        for index, value in stored:
            if value in seen:
                problems.append(Problem(pointer.format(index) + f"/{f.slug}", f'"{f.slug}" must be unique; the same value is given twice'))
            seen.setdefault(value, index)
        col = self.table.c[f.type.index_column(f)]
        taken: set[Any] = set()
        for chunk in chunks(list(seen)):
            stmt = sa.select(col).where(col.in_(chunk))
            if exclude_id is not None:
                stmt = stmt.where(self.table.c.id != exclude_id)
            taken.update(conn.execute(stmt).scalars())
        for value, index in seen.items():
            if value in taken:
                problems.append(Problem(pointer.format(index) + f"/{f.slug}", f'"{f.slug}" must be unique; another record has this value'))
        return problems

    @staticmethod
    def _existing(
        conn: sa.Connection, column: sa.ColumnElement[Any], wanted: Iterable[Any], where: sa.ColumnElement[bool] | None = None,
    ) -> set[Any]:
        found: set[Any] = set()
        wanted = list(wanted)
        for chunk in chunks(wanted):
            stmt = sa.select(column).where(column.in_(chunk))
            found.update(conn.execute(stmt if where is None else stmt.where(where)).scalars())
        return found

    def _readable(self, ts: TableSchema) -> sa.ColumnElement[bool]:
        """The rows of ``ts`` this store's actor may read (none without a read grant)."""
        access = Access.for_actor(self.actor, ts)
        if access.full:
            return sa.true()
        readers = [r for r in access.roles if r.can("read")]
        return access.condition(readers, utcnow(), self.rb.dialect)

    def _link_target(self, f: Field) -> TableSchema:
        target = f.options.get("table")
        for ts in self.ts.app.tables.values():
            if target in (ts.slug, ts.uid):
                return ts
        raise LookupError(f"link target {target!r} of field {f.slug!r} is not installed")

    def _next_numbers(self, conn: sa.Connection, f: Field, count: int) -> list[int]:
        """Reserve ``count`` autonumbers in this transaction (so they are gap-free)."""
        seq = sequence_table
        start = conn.execute(
            sa.update(seq).where(seq.c.field_id == f.pk).values(next_value=seq.c.next_value + count).returning(seq.c.next_value)
        ).scalar_one() - count
        return list(range(start, start + count))

    # --- create ------------------------------------------------------------------

    def create(self, values: Mapping[str, Any]) -> Record:
        """Create one record; a ``ValidationError`` lists every bad field (pointers ``/fields/<slug>``)."""
        return self._create([values], "/fields")[0]

    def create_many(self, values_list: Sequence[Mapping[str, Any]]) -> list[Record]:
        """Create several records atomically: all of them, or none (pointers ``/records/<i>/fields/<slug>``)."""
        if len(values_list) > MAX_BATCH:
            raise ValidationError(f"at most {MAX_BATCH} records per call", [Problem("/records", f"at most {MAX_BATCH} records per call")])
        return self._create(values_list, "/records/{}/fields")

    def _create(self, values_list: Sequence[Mapping[str, Any]], pointer: str, conn: sa.Connection | None = None) -> list[Record]:
        """Validate, then insert; inside ``conn``'s transaction when given (imports span many calls)."""
        many = "{}" in pointer
        creators = self.access.require("create")
        if not self.access.full:
            for i, given in enumerate(values_list):
                if isinstance(given, Mapping):  # what the caller set; owner fields are filled in below
                    self.access.writable(creators, list(given), pointer.format(i) if many else pointer)
            values_list = [self._own(creators, v) for v in values_list]
        prepared = [self._prepare(v, i, pointer.format(i) if many else pointer, creating=True) for i, v in enumerate(values_list)]
        self._raise_problems(prepared, "record(s) are")
        if not prepared:
            return []
        if conn is not None:
            return self._insert(conn, prepared, creators, pointer if many else "/fields")
        with self.rb.write() as own:
            records = self._insert(own, prepared, creators, pointer if many else "/fields")
        self._maybe_refresh_statistics(records)
        return records

    def _maybe_refresh_statistics(self, records: Sequence[Record]) -> None:
        """Refresh the planner's statistics once the table has grown by a quarter (see ``refresh_statistics``).

        Counted by the highest id this process has seen written, so a table grown
        by many small creates (an API client's batches of 500, a form at a time) gets
        them as well as one grown by a big import; the check itself runs rarely.
        """
        if not records or self.rb.dialect != "sqlite":
            return
        top = max(r.id for r in records)
        checked = self.ts.cache.get("statistics_checked_at", 0)
        if len(records) >= STATISTICS_AFTER or (top >= STATISTICS_AFTER and top > checked * 1.25):
            self.ts.cache["statistics_checked_at"] = top
            refresh_statistics(self.rb.engine, self.ts.name)

    def _insert(self, conn: sa.Connection, prepared: Sequence[_Prepared], creators: Sequence[RoleRule], pointer: str) -> list[Record]:
        now = utcnow()
        user = self.actor.user_id
        rows = [{"version": 1, "created_at": now, "updated_at": now, "created_by": user, "updated_by": user, **self._db_row(p.parsed)} for p in prepared]
        values = [self._full_values(p.parsed) for p in prepared]
        self._check_references(conn, prepared, pointer)
        for f in self.ts.fields.values():
            if f.type.name == "autonumber":
                numbers = self._next_numbers(conn, f, len(rows))
                for row, value, number in zip(rows, values, numbers, strict=True):
                    row[f.column_name] = number
                    value[f.slug] = f.type.from_db(f, number)
        ids = allocate_ids(conn, self.table, len(rows))
        for row, rid in zip(rows, ids, strict=True):
            row["id"] = rid
        insert_rows(conn, self.table, rows)
        self._require_scope(conn, ids, creators, now, "create")
        self._write_junctions(conn, ids, prepared, replace=False)
        self._write_search(conn, list(zip(ids, values, strict=True)), fresh=True)
        for value in values:
            for f in self.ts.fields.values():
                if f.type.system:
                    value[f.slug] = rows[0][f.type.column_name]  # type: ignore[attr-defined]
        records = [
            Record(id=rid, fields=value, version=1, created_at=now, updated_at=now, created_by=user, updated_by=user)
            for rid, value in zip(ids, values, strict=True)
        ]
        uids = [(slug, f.uid, f) for slug, f in self.ts.fields.items()]
        entries = [
            (r.id, {"fields": {uid: [None, self._audited(f, r.fields[slug])] for slug, uid, f in uids if r.fields[slug] is not None}})
            for r in records
        ]
        append_audit(conn, audit_rows(self.actor, "create", app_id=self.ts.app.pk, table_id=self.ts.pk, entries=entries))
        from .webhooks import enqueue  # webhooks: the outbox, in this transaction

        enqueue(conn, self, "create", records)
        if self.ts.has_computed:  # computed values need the rows (and their links) in place
            records = self._reload(conn, records)
        if automations.has_any(self.ts):
            automations.after_create(conn, self, records, form=self._form)
            records = self._reload(conn, records)  # what the automations set, returned with the write
        return self._seen_many(conn, records)

    def _reload(self, conn: sa.Connection, records: list[Record]) -> list[Record]:
        """Records just written, read back whole (computed fields included), in their order."""
        chosen = list(self.ts.fields.values())
        by_id: dict[int, Record] = {}
        decode = self._decoder(chosen)
        for chunk in chunks([r.id for r in records]):
            stmt = sa.select(*self._columns(chosen, self.compute_context(utcnow()))).where(self.table.c.id.in_(chunk))
            rows = conn.execute(stmt).all()
            many = self._load_many(conn, [r[0] for r in rows], chosen)
            for row in rows:
                by_id[row[0]] = decode(row, many.get(row[0], {}))
        return [by_id.get(r.id, r) for r in records]

    def _own(self, roles: Sequence[RoleRule], values: Mapping[str, Any]) -> Mapping[str, Any]:
        """For roles limited to their own records, a new record is owned by the actor."""
        if not isinstance(values, Mapping):
            return values
        owned = dict(values)
        for role in roles:
            owner = self.ts.fields.get(role.owner_field or "")
            if owner is not None and not owner.type.system and owner.slug not in owned:
                owned[owner.slug] = self.actor.user_id
        return owned

    def _require_scope(self, conn: sa.Connection, ids: Sequence[int], roles: Sequence[RoleRule], now: dt.datetime, operation: str) -> None:
        """Refuse (and so roll back) a write that leaves records outside every granting role's rows."""
        if self.access.full or any(r.rows == "all" for r in roles):
            return  # a role granting it on every row: nothing can fall outside
        outside = self.access.condition(roles, now, self.rb.dialect)
        stray = conn.execute(sa.select(self.table.c.id).where(self.table.c.id.in_(ids), sa.not_(outside)).limit(1)).first()
        if stray is not None:
            raise PermissionDenied(f'this {operation} would put a record outside the rows you may {operation} in "{self.ts.slug}"')

    def _full_values(self, parsed: Mapping[str, Any]) -> dict[str, Any]:
        """Every field's value after a create, in definition order (absent → empty)."""
        return {slug: parsed.get(slug) for slug in self.ts.fields}

    def _write_junctions(self, conn: sa.Connection, ids: Sequence[int], prepared: Sequence[_Prepared], *, replace: bool) -> dict[int, dict[str, list[int]]]:
        written: dict[int, dict[str, list[int]]] = {}
        for slug, junction in self.ts.junctions.items():
            rows: list[dict[str, int]] = []
            touched: list[int] = []
            for rid, p in zip(ids, prepared, strict=True):
                if slug not in p.parsed:
                    continue
                touched.append(rid)
                targets = p.parsed[slug] or []
                written.setdefault(rid, {})[slug] = list(targets)
                rows.extend({"src": rid, "dst": dst, "position": pos} for pos, dst in enumerate(targets))
            if replace and touched:
                for chunk in chunks(touched):
                    conn.execute(sa.delete(junction).where(junction.c.src.in_(chunk)))
            if rows:
                conn.execute(sa.insert(junction), rows)
        return written

    def _write_search(self, conn: sa.Connection, items: Sequence[tuple[int, Mapping[str, Any]]], *, fresh: bool = False) -> None:
        """Store each record's search document, made from its (Python) field values."""
        searchable = self.ts.searchable_fields
        if not searchable or not items:
            return
        docs = []
        for rid, values in items:
            parts = []
            for f in searchable:
                value = values.get(f.slug)
                if value is not None:
                    text = f.type.search_text(f, value)
                    if text:
                        parts.append(text)
            docs.append((rid, " ".join(parts)))
        write_search_documents(conn, self.ts.name, docs, fresh=fresh)

    def search_items(self, rows: Sequence[Mapping[Any, Any]]) -> list[tuple[int, dict[str, Any]]]:
        """(id, values) of stored rows, for rebuilding search documents."""
        searchable = self.ts.searchable_fields
        return [(row["id"], self._to_record(row, searchable, {}).fields) for row in rows]

    def _audited(self, f: Field, value: Any) -> Any:
        """A value as the audit trail keeps it: personal and sensitive ones sealed (see audit.py)."""
        plain = _json(f, value)
        if plain is None or f.slug not in self._personal:
            return plain
        # The JSON text of the value (a string's is just its quoted form: the common case, made cheap).
        text = _quoted(plain) if type(plain) is str else json.dumps(plain, ensure_ascii=False, separators=(",", ":"), default=str)
        return {SEALED: self.rb.keys.encrypt(text, f"{self.ts.pk}:{f.uid}")}

    def _changes(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Field-level before/after in JSON types, keyed by the field's stable id."""
        changes = {}
        fields = self.ts.fields
        for slug, new in after.items():
            old = before.get(slug)
            if old != new:
                f = fields[slug]
                changes[f.uid] = [self._audited(f, old), self._audited(f, new)]
        return changes

    # --- read ----------------------------------------------------------------------

    def _to_record(self, row: Mapping[Any, Any], fields: Iterable[Field], many: Mapping[str, list[int]]) -> Record:
        values: dict[str, Any] = {}
        for f in fields:
            if f.slug in self.ts.junctions:
                values[f.slug] = many.get(f.slug) or None
            elif f.type.system:
                values[f.slug] = row[f.type.column_name]  # type: ignore[attr-defined]
            else:
                raw = row.get(f.column_name)
                values[f.slug] = None if raw is None else f.type.from_db(f, raw)
        return Record(
            id=row["id"], fields=values, version=row["version"], created_at=row["created_at"],
            updated_at=row["updated_at"], created_by=row["created_by"], updated_by=row["updated_by"],
        )

    def _decoder(self, chosen: Sequence[Field]) -> Callable[[Sequence[Any], Mapping[str, list[int]]], Record]:
        """Rows selected by ``_columns(chosen)``, as tuples, to Records — built once per projection.

        The hot read paths (pages, streams, get) decode by position and skip
        ``from_db`` for types that store values as they are.
        """
        key = "decoder:" + ",".join(f.slug for f in chosen)
        cached = self.ts.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        system_index = {"created_at": 2, "updated_at": 3, "created_by": 4, "updated_by": 5}
        steps: list[tuple[str, int, Any]] = []  # (slug, tuple index or -1 for many-links, converter)
        index = 6
        for f in chosen:
            if f.slug in self.ts.junctions:
                steps.append((f.slug, -1, None))
            elif f.type.system:
                steps.append((f.slug, system_index[f.type.column_name], None))  # type: ignore[attr-defined]
            else:
                identity = type(f.type).from_db is FieldType.from_db
                steps.append((f.slug, index, None if identity else functools.partial(f.type.from_db, f)))
                index += 1

        def decode(row: Sequence[Any], many: Mapping[str, list[int]]) -> Record:
            values: dict[str, Any] = {}
            for slug, i, convert in steps:
                if i < 0:
                    values[slug] = many.get(slug) or None
                else:
                    raw = row[i]
                    values[slug] = raw if raw is None or convert is None else convert(raw)
            return Record(row[0], values, row[1], row[2], row[3], row[4], row[5])

        self.ts.cache[key] = decode
        return decode

    def _columns(self, fields: Sequence[Field], ctx: FilterContext | None = None) -> list[sa.ColumnElement[Any]]:
        """The select list for ``fields``: system columns, then one column or expression per field.

        A computed field is its expression, labelled like a column; ``ctx``
        (default: now, as this actor) decides what linked rows it reads.
        """
        t = self.table
        cols: list[sa.ColumnElement[Any]] = [t.c.id, t.c.version, t.c.created_at, t.c.updated_at, t.c.created_by, t.c.updated_by]
        for f in fields:
            if f.type.system or f.slug in self.ts.junctions:
                continue
            if getattr(f.type, "computed", False):
                ctx = ctx or self.compute_context(utcnow())
                cols.append(f.type.expression(f, self.ts, ctx).label(f.column_name))  # type: ignore[attr-defined]
            else:
                cols.append(t.c[f.column_name])
        return cols

    def _load_many(self, conn: sa.Connection, ids: Sequence[int], fields: Sequence[Field]) -> dict[int, dict[str, list[int]]]:
        loaded: dict[int, dict[str, list[int]]] = {}
        for f in fields:
            junction = self.ts.junctions.get(f.slug)
            if junction is None or not ids:
                continue
            for chunk in chunks(ids):
                stmt = sa.select(junction.c.src, junction.c.dst).where(junction.c.src.in_(chunk)).order_by(junction.c.src, junction.c.position)
                for src, dst in conn.execute(stmt):
                    loaded.setdefault(src, {}).setdefault(f.slug, []).append(dst)
        return loaded

    def get(self, record_id: int, fields: Sequence[str] | None = None) -> Record:
        """One record by id; ``NotFound`` when there is none."""
        if isinstance(record_id, bool) or not isinstance(record_id, int) or not 0 < record_id <= MAX_ID:
            raise NotFound(f'no record {record_id!r} in "{self.ts.slug}"')
        if self.ts.has_computed:
            return self._get_checked(record_id, fields)
        readers: list[RoleRule] | None = None
        if not self.access.full:
            # Roles that read every row need no row condition: the prepared statement serves them,
            # and ``present`` drops and masks as the SQL path would.
            readers = [r for r in self.access.roles if r.can("read")]
            if not readers or any(r.rows != "all" for r in readers):
                return self._get_checked(record_id, fields)
        chosen = (
            self._chosen(fields) if readers is not None
            else self.ts.fields.values() if fields is None
            else q.projection(self.ts, fields)
        )
        by_id, links, decode = self._prepared_get()
        with self.rb.reader.connection(snapshot=bool(links)) as dbapi:
            row = by_id.first(dbapi, {"rid": record_id})
            if row is None:
                raise NotFound(f'no record {record_id} in "{self.ts.slug}"')
            many: dict[str, list[int]] = {}
            for f in chosen:
                if f.slug in links:
                    many[f.slug] = [r[0] for r in links[f.slug].all(dbapi, {"rid": record_id})]
        record = decode(row, many)
        if fields is not None or readers is not None:
            record.fields = {f.slug: record.fields[f.slug] for f in chosen}
        if readers is not None:
            record.fields = self.access.present(record.fields, None if self.access.uniform() else readers)
        return record

    def _get_checked(self, record_id: int, fields: Sequence[str] | None) -> Record:
        """``get`` for an actor with rules: the row condition and per-role flags in the query.

        With no right to read the table at all, every id is simply not found.
        """
        readers = [r for r in self.access.roles if r.can("read")]
        if not readers and not self.access.full:
            raise NotFound(f'no record {record_id} in "{self.ts.slug}"')
        chosen = self._chosen(fields)
        now = utcnow()
        base = self._columns(chosen, self.compute_context(now))
        flags = self._flags(readers, now)
        stmt = sa.select(*base, *flags).where(self.table.c.id == record_id, self.access.condition(readers, now, self.rb.dialect))
        with self.rb.read() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                raise NotFound(f'no record {record_id} in "{self.ts.slug}"')
            many = self._load_many(conn, [record_id], chosen).get(record_id, {})
        return self._present(self._decoder(chosen)(row, many), readers, row[len(base):] if flags else None)

    def _scope(self, conn: sa.Connection, ids: Sequence[int], roles: Sequence[RoleRule], now: dt.datetime) -> list[RoleRule]:
        """The roles in ``roles`` whose rows cover every record in ``ids`` (checked in SQL)."""
        if self.access.full or not ids:
            return list(roles)
        covering = []
        for role in roles:
            if role.rows == "all":
                covering.append(role)  # covers every row: no query
                continue
            cond = self.access.role_condition(role, now, self.rb.dialect)
            outside = conn.execute(sa.select(sa.func.count()).select_from(self.table).where(self.table.c.id.in_(ids), sa.not_(cond))).scalar_one()
            if outside == 0:
                covering.append(role)
        return covering

    def _prepared_get(self) -> tuple[PreparedSelect, dict[str, PreparedSelect], Callable[..., Record]]:
        """Statements for reading one record, compiled once per table schema."""
        cached = self.ts.cache.get("get")
        if cached is None:
            dialect = self.rb.engine.dialect
            rid: sa.BindParameter[int] = sa.bindparam("rid")
            by_id = PreparedSelect(dialect, sa.select(*self._columns(list(self.ts.fields.values()))).where(self.table.c.id == rid))

            links = {
                slug: PreparedSelect(dialect, sa.select(j.c.dst).where(j.c.src == rid).order_by(j.c.position))
                for slug, j in self.ts.junctions.items()
            }
            cached = self.ts.cache["get"] = (by_id, links, self._decoder(list(self.ts.fields.values())))
        return cached  # type: ignore[no-any-return]

    def _get(self, conn: sa.Connection, record_id: Any, chosen: Sequence[Field], lock: bool = False) -> Record:
        if isinstance(record_id, bool) or not isinstance(record_id, int):
            raise NotFound(f'no record {record_id!r} in "{self.ts.slug}"')
        stmt = sa.select(*self._columns(chosen, self.compute_context(utcnow()))).where(self.table.c.id == record_id)
        if lock:
            stmt = stmt.with_for_update()  # SQLite has no row locks; its writer holds the database lock
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f'no record {record_id} in "{self.ts.slug}"')
        return self._to_record(row, chosen, self._load_many(conn, [record_id], chosen).get(record_id, {}))

    def _context(self, request: q.RecordQuery, dialect: str) -> FilterContext:
        return self.compute_context(request.now or utcnow())

    def compute_context(self, now: dt.datetime) -> FilterContext:
        """The context of a read: the clock, the dialect, and how this actor reads linked tables.

        Lookups and rollups read other tables through ``rows``: only the linked
        records this actor may read there take part.
        """
        return FilterContext(now=now, dialect=self.rb.dialect, schema=self.ts, extra={"rows": self._rows_in(now)})

    def _rows_in(self, now: dt.datetime) -> Callable[[TableSchema], sa.ColumnElement[bool] | None]:
        def rows(target: TableSchema) -> sa.ColumnElement[bool] | None:
            access = Access.for_actor(self.actor, target)
            if access.full:
                return None
            readers = [r for r in access.roles if r.can("read")]
            return access.condition(readers, now, self.rb.dialect) if readers else sa.false()

        return rows

    def _where(self, request: q.RecordQuery, dialect: str, readers: Sequence[RoleRule]) -> list[sa.ColumnElement[bool]]:
        """The rows a read returns: the actor's rows, the caller's filter and search.

        Every field the caller filters or searches by must be one the actor
        reads in clear under all its roles, so no result can depend on a value
        the actor may not see.
        """
        for slug, pointer in q.filter_fields(request.filter):
            self.access.require_clear(slug, "filter", pointer)
        ctx = self._context(request, dialect)
        conditions = [self.access.condition(readers, ctx.now, dialect), q.compile_filter(self.ts, request.filter, ctx)]
        if q.search_terms(request.search):
            searchable = self.ts.searchable_fields
            if all(self.access.clear_everywhere(f) for f in searchable):
                search = q.compile_search(self.ts, request.search, dialect)
            else:  # the stored document also holds text this actor may not read: search the readable columns
                columns = [f.type.column(f, self.table) for f in searchable if self.access.clear_everywhere(f)]
                search = sa.and_(*(
                    sa.or_(sa.false(), *(c.icontains(term, autoescape=True) for c in columns))
                    for term in q.search_terms(request.search)
                ))
            if search is not None:
                conditions.append(search)
        # "WHERE 1 = 1" costs: SQLite counts a table without a WHERE clause 6× faster (1M rows: 4 ms, not 28).
        return [c for c in conditions if not _always_true(c)]

    def _chosen(self, fields: Sequence[str] | None) -> list[Field]:
        """The fields a read returns: those asked for (each must be visible), or every visible one."""
        chosen = q.projection(self.ts, fields)
        if fields is None:
            return [f for f in chosen if self.access.visible_somewhere(f)]
        for i, f in enumerate(chosen):
            if not self.access.visible_somewhere(f):
                raise q.QueryError(f'unknown field "{f.slug}"', [Problem(f"/fields/{i}", f'unknown field "{f.slug}" in table "{self.ts.slug}"')])
        return chosen

    def _flags(self, readers: Sequence[RoleRule], now: dt.datetime) -> list[sa.ColumnElement[Any]]:
        """One 0/1 column per reading role, when roles see fields differently (per-record levels)."""
        if self.access.uniform():
            return []
        dialect = self.rb.dialect
        return [sa.case((self.access.role_condition(r, now, dialect), 1), else_=0).label(f"_r{i}") for i, r in enumerate(readers)]

    def _present(self, record: Record, readers: Sequence[RoleRule], flags: Sequence[Any] | None) -> Record:
        """Drop hidden fields and mask what the matching roles may not see in clear."""
        if not self.access.full:
            matching = None if flags is None else [r for r, flag in zip(readers, flags, strict=True) if flag]
            record.fields = self.access.present(record.fields, matching)
        return record

    def query(self, request: q.RecordQuery | None = None, **kwargs: Any) -> Page:
        """One page of records matching ``request`` (or keyword arguments of ``RecordQuery``)."""
        request = request or q.RecordQuery(**kwargs)
        if not 1 <= request.page_size <= 1000:
            raise q.QueryError("page_size must be between 1 and 1000", [Problem("/page_size", "must be between 1 and 1000")])
        readers = self.access.require("read")
        dialect = self.rb.dialect
        chosen = self._chosen(request.fields)
        ctx = self._context(request, dialect)
        keys = q.compile_sort(self.ts, request.sort, ctx)
        for i, k in enumerate(keys):
            if k.field is not None:
                self.access.require_clear(k.field.slug, "sort", f"/sort/{i}")
        where = self._where(request, dialect, readers)
        key_columns = [k.expression.label(f"_k{i}") for i, k in enumerate(keys)]
        flag_columns = self._flags(readers, request.now or utcnow())
        base = self._columns(chosen, ctx)
        stmt = sa.select(*base, *key_columns, *flag_columns).where(*where)
        if request.cursor:
            stmt = stmt.where(q.keyset_condition(keys, q.decode_cursor(keys, request.cursor)))
        stmt = stmt.order_by(*q.order_by(keys, key_columns)).limit(request.page_size + 1)
        with self.rb.read() as conn:
            rows = conn.execute(stmt).all()
            more = len(rows) > request.page_size
            rows = rows[: request.page_size]
            ids = [r[0] for r in rows]
            many = self._load_many(conn, ids, chosen)
            total = None
            if request.with_total:
                total = conn.execute(sa.select(sa.func.count()).select_from(self.table).where(*where)).scalar_one()
        decode = self._decoder(chosen)
        first_key, first_flag = len(base), len(base) + len(keys)
        records = [
            self._present(decode(r, many.get(r[0], {})), readers, r[first_flag:] if flag_columns else None)
            for r in rows
        ]
        cursor = q.encode_cursor(keys, list(rows[-1][first_key:first_flag])) if more and rows else None
        return Page(records, cursor, total)

    def aggregate(
        self, *, group_by: Sequence[str] | str | None = None, metrics: Sequence[str] = ("count",),
        filter: Any = None, search: str | None = None, now: dt.datetime | None = None,
    ) -> list[Any]:
        """Metrics (``"count"``, ``"sum:amount"``…) per group of the records this actor reads; see summary.py."""
        from .summary import aggregate

        return aggregate(self, group_by=group_by, metrics=metrics, filter=filter, search=search, now=now)

    def distinct(self, field: str, *, filter: Any = None, search: str | None = None, limit: int = 100) -> list[tuple[Any, int]]:
        """(value, count) of ``field`` among the records this actor reads, most frequent first."""
        from .summary import distinct

        return distinct(self, field, filter=filter, search=search, limit=limit)

    def link_labels(self, records: Sequence[Record], fields: Sequence[str] | None = None) -> dict[str, dict[int, str | None]]:
        """What each linked record is called, as this actor may see it: link slug → {id: label}.

        The label is the linked record's primary field, read through the
        linked table's own rules for the same actor: masked where the actor
        sees it masked, and ``None`` for a record outside its rows, a hidden
        primary field or a table it cannot read.
        """
        out: dict[str, dict[int, str | None]] = {}
        for f in self.ts.fields.values():
            if f.type.name != "link" or (fields is not None and f.slug not in fields):
                continue
            wanted: set[int] = set()
            for record in records:
                value = record.fields.get(f.slug)
                if value is not None:
                    wanted.update(value if isinstance(value, list) else [value])
            labels: dict[int, str | None] = dict.fromkeys(sorted(wanted))
            target = RecordStore(self.rb, self.actor, self._link_target(f))
            primary = target.ts.primary_field
            readable = target.access.full or bool(target.access.readers)
            if wanted and primary is not None and readable and target.access.visible_somewhere(primary):
                ids = sorted(wanted)
                for chunk in chunks(ids, 1000):
                    page = target.query(filter={"field": "id", "op": "in", "value": list(chunk)}, fields=[primary.slug],
                                        page_size=1000, with_total=False)
                    for linked in page.records:
                        value = linked.fields.get(primary.slug)
                        if value is None:
                            continue
                        # A masked value is already text in the type's shape; a clear one gets its text form.
                        clear = target.access.clear_everywhere(primary)
                        labels[linked.id] = primary.type.to_text(primary, value) if clear else str(value)
            out[f.slug] = labels
        return out

    def history(self, record_id: int, limit: int = 500) -> list[Any]:
        """Who changed what and when, as this actor may see it (hidden fields left out, masked ones masked)."""
        from .history import record_history

        return record_history(self, record_id, limit)

    def count(self, filter: Any = None, search: str | None = None) -> int:
        readers = self.access.require("read")
        request = q.RecordQuery(filter=filter, search=search)
        with self.rb.read() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(self.table).where(*self._where(request, self.rb.dialect, readers))).scalar_one()

    def stream(self, request: q.RecordQuery | None = None, batch_size: int = 2_000, **kwargs: Any) -> Iterator[Record]:
        """Every matching record in sort order, in bounded memory (a server-side cursor)."""
        request = request or q.RecordQuery(**kwargs)
        readers = self.access.require("read")
        chosen = self._chosen(request.fields)
        ctx = self._context(request, self.rb.dialect)
        keys = q.compile_sort(self.ts, request.sort, ctx)
        for i, k in enumerate(keys):
            if k.field is not None:
                self.access.require_clear(k.field.slug, "sort", f"/sort/{i}")
        base = self._columns(chosen, ctx)
        flag_columns = self._flags(readers, request.now or utcnow())
        stmt = sa.select(*base, *flag_columns).where(*self._where(request, self.rb.dialect, readers)).order_by(*q.order_by(keys))
        decode = self._decoder(chosen)
        first_flag = len(base)
        with self.rb.read() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(stmt)
            for batch in result.partitions():
                many = self._load_many(conn, [r[0] for r in batch], chosen) if self.ts.junctions else {}
                for row in batch:
                    record = decode(row, many.get(row[0], {}))
                    yield self._present(record, readers, row[first_flag:] if flag_columns else None)

    # --- update ----------------------------------------------------------------------

    def update(self, record_id: int, values: Mapping[str, Any], *, version: int) -> Record:
        """Change some fields of a record last seen at ``version``.

        A stale ``version`` raises ``Conflict`` carrying the current record;
        nothing is written.
        """
        with self.rb.write() as conn:
            return self._update_in(conn, record_id, values, version=version)

    def _update_in(self, conn: sa.Connection, record_id: int, values: Mapping[str, Any], *, version: int) -> Record:
        """``update`` inside the caller's transaction (automations change records within the triggering write)."""
        updaters = self.access.require("update")
        prepared = self._prepare(values, 0, "/fields", creating=False)
        self._raise_problems([prepared], "field value(s) are")
        now = utcnow()
        if not self.access.full:  # with full access, _get below is the existence check
            self._require_row(conn, record_id, updaters, now)
            self.access.writable(self._scope(conn, [record_id], updaters, now), list(prepared.parsed), "/fields")
        current = self._get(conn, record_id, list(self.ts.fields.values()), lock=True)
        if current.version != version:
            raise Conflict(f"record {record_id} was changed by someone else (now at version {current.version})", self._seen(conn, current))
        self._check_references(conn, [prepared], "/fields", exclude_id=record_id)
        automated = automations.has_any(self.ts)
        before = automations.before_update(conn, self, record_id) if automated else {}
        row = self._db_row(prepared.parsed)
        row.update(version=current.version + 1, updated_at=now, updated_by=self.actor.user_id)
        t = self.table
        done = conn.execute(sa.update(t).where(t.c.id == record_id, t.c.version == version).values(row)).rowcount
        if done != 1:  # lost a race between the read and the write
            raise Conflict(f"record {record_id} was changed by someone else", self._seen(conn, self._get(conn, record_id, list(self.ts.fields.values()))))
        self._require_scope(conn, [record_id], updaters, now, "update")
        self._write_junctions(conn, [record_id], [prepared], replace=True)
        after = {**current.fields, **{s: v for s, v in prepared.parsed.items()}}
        after = {s: (v or None) if s in self.ts.junctions else v for s, v in after.items()}
        if any(f.slug in prepared.parsed for f in self.ts.searchable_fields):
            self._write_search(conn, [(record_id, after)])
        changes = self._changes(current.fields, {s: after[s] for s in prepared.parsed})
        append_audit(conn, audit_rows(self.actor, "update", app_id=self.ts.app.pk, table_id=self.ts.pk, entries=[(record_id, {"fields": changes})]))
        updated = self._get(conn, record_id, list(self.ts.fields.values()))
        from .webhooks import enqueue  # webhooks: the outbox, in this transaction

        enqueue(conn, self, "update", [updated])
        if automated:
            automations.after_update(conn, self, record_id, before, list(prepared.parsed))
            updated = self._get(conn, record_id, list(self.ts.fields.values()))
        return self._seen(conn, updated)

    def _require_row(self, conn: sa.Connection, record_id: Any, roles: Sequence[RoleRule], now: dt.datetime) -> None:
        """``NotFound`` — the same as for a missing record — when no role in ``roles`` covers the record."""
        if isinstance(record_id, bool) or not isinstance(record_id, int) or not 0 < record_id <= MAX_ID:
            raise NotFound(f'no record {record_id!r} in "{self.ts.slug}"')
        cond = self.access.condition(roles, now, self.rb.dialect)
        if conn.execute(sa.select(self.table.c.id).where(self.table.c.id == record_id, cond)).first() is None:
            raise NotFound(f'no record {record_id} in "{self.ts.slug}"')

    def _seen_many(self, conn: sa.Connection, records: list[Record]) -> list[Record]:
        """Records written by this actor, presented as it may read them (one query for the batch)."""
        if self.access.full or not records:
            return records
        readers = [r for r in self.access.roles if r.can("read")]
        if readers and all(r.rows == "all" for r in readers):
            # Every reading role covers every row: no need to ask the database which ones match.
            for record in records:
                record.fields = self.access.present(record.fields, readers)
            return records
        now = utcnow()
        ids = [r.id for r in records]
        flags: dict[int, list[int]] = {rid: [] for rid in ids}
        if readers:
            columns = [sa.case((self.access.role_condition(r, now, self.rb.dialect), 1), else_=0) for r in readers]
            for chunk in chunks(ids):
                for row in conn.execute(sa.select(self.table.c.id, *columns).where(self.table.c.id.in_(chunk))):
                    flags[row[0]] = list(row[1:])
        for record in records:
            matching = [r for r, flag in zip(readers, flags[record.id], strict=False) if flag]
            record.fields = self.access.present(record.fields, matching)
        return records

    def _seen(self, conn: sa.Connection, record: Record) -> Record:
        """A record read inside a write, presented as the actor may see it (hidden and masked fields)."""
        if self.access.full:
            return record
        readers = [r for r in self.access.roles if r.can("read")]
        matching = self._scope(conn, [record.id], readers, utcnow())
        record.fields = self.access.present(record.fields, matching)
        return record

    # --- anonymising and consent -------------------------------------------------------

    def anonymise(self, conn: sa.Connection, ids: Sequence[int], fields: Sequence[Field], action: str) -> None:
        """Empty ``fields`` of records ``ids`` inside the caller's transaction, search text and audit included.

        The audit entry lists which fields were emptied, never their values.
        """
        t = self.table
        now = utcnow()
        for chunk in chunks(list(ids)):
            conn.execute(
                sa.update(t).where(t.c.id.in_(chunk))
                .values({**{c: None for f in fields for c in f.type.stored_columns(f)}, "version": t.c.version + 1, "updated_at": now, "updated_by": self.actor.user_id})
            )
        rows = conn.execute(sa.select(t).where(t.c.id.in_(list(ids)))).mappings().all()
        self._write_search(conn, self.search_items(rows))
        append_audit(conn, audit_rows(self.actor, action, app_id=self.ts.app.pk, table_id=self.ts.pk,
                                      entries=[(rid, {"fields": [f.uid for f in fields]}) for rid in ids]))

    def give_consent(self, record_id: int, purposes: list[str], *, version: Any, channel: str) -> list[dict[str, Any]]:
        """Record a data subject's consent to ``purposes`` under the table's current consent text."""
        from .consent import give

        return give(self, record_id, purposes, version=version, channel=channel)

    def withdraw_consent(self, record_id: int, purpose: str, *, channel: str) -> str:
        """Withdraw one consent and apply the table's withdraw action; returns what was done."""
        from .consent import withdraw

        return withdraw(self, record_id, purpose, channel=channel)

    def consents(self, record_id: int) -> list[dict[str, Any]]:
        from .consent import ledger

        self.get(record_id)  # same visibility as the record itself
        return ledger(self, record_id)

    # --- reveal ---------------------------------------------------------------------------

    def reveal(self, record_id: int, field: str, reason: str) -> Any:
        """One value in clear, for an actor whose role may ``reveal``, with a reason that is audited.

        The audit entry records who, which record and field, when and why —
        never the value. Outside the actor's rows the record is ``NotFound``.
        """
        revealers = self.access.require("reveal")
        reason = (reason or "").strip()
        if len(reason) < 5:
            raise ValidationError("give a reason for revealing this value", [Problem("/reason", "give a reason (at least 5 characters)")])
        f = self.ts.fields.get(field)
        now = utcnow()
        with self.rb.write() as conn:
            self._require_row(conn, record_id, revealers, now)
            matching = self._scope(conn, [record_id], revealers, now)
            if f is None or not (self.access.full or any(r.levels[f.slug] >= 1 for r in matching)):
                raise PermissionDenied(f'you may not reveal "{field}"', [Problem("/field", f'you may not reveal "{field}"')])
            value = self._get(conn, record_id, [f]).fields[f.slug]
            append_audit(conn, audit_rows(
                self.actor, "reveal", app_id=self.ts.app.pk, table_id=self.ts.pk,
                entries=[(record_id, {"field": f.uid, "slug": f.slug, "reason": reason})],
            ))
        return value

    # --- export and import: see exchange.py ---------------------------------------------

    def export(
        self, fmt: str = "csv", fields: Sequence[str] | str | None = None, filter: Any = None,
        sort: Sequence[Any] | str | None = None, search: str | None = None,
    ) -> Export:
        """An export of the records this actor may export (``export`` and ``read`` rights), audited when written."""
        from .exchange import export_records

        return export_records(self, fmt, fields=fields, filter=filter, sort=sort, search=search)

    def import_rows(
        self, rows: Any, *, fmt: str | None = None,
        mapping: Mapping[str, str | None] | None = None, mode: str = "atomic",
        on_progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Create records from ``rows`` — mappings of column → cell text, or a CSV/XLSX file (a path or an
        open file) — with the ``import`` and ``create`` rights; returns an ``ImportReport``."""
        from .exchange import import_records

        return import_records(self, rows, fmt=fmt, mapping=mapping, mode=mode, on_progress=on_progress)

    # --- delete, restore, purge: see trash.py -------------------------------------------

    def delete(self, record_id: int) -> None:
        """Move a record to the trash, applying each incoming link's on_delete rule."""
        from .trash import delete_records

        deleters = self.access.require("delete")
        with self.rb.write() as conn:
            self._require_row(conn, record_id, deleters, utcnow())
            delete_records(self, conn, [record_id])

    def restore(self, record_id: int) -> Record:
        from .trash import restore_record

        deleters = self.access.require("delete")
        with self.rb.write() as conn:
            restore_record(self, conn, record_id)
            self._require_trashed_row(conn, record_id, deleters)
            return self._seen(conn, self._get(conn, record_id, list(self.ts.fields.values())))

    def purge(self, record_id: int) -> None:
        """Erase a trashed record for good (only one the actor could delete)."""
        from .trash import purge_record, restore_record

        deleters = self.access.require("delete")
        with self.rb.write() as conn:
            if not self.access.full:
                # The rule is SQL over the table, so try it on the record put back for a moment.
                probe = conn.begin_nested()
                try:
                    restore_record(self, conn, record_id)
                    self._require_trashed_row(conn, record_id, deleters)
                finally:
                    probe.rollback()
            purge_record(self, conn, record_id)

    def _require_trashed_row(self, conn: sa.Connection, record_id: int, roles: Sequence[RoleRule]) -> None:
        """Outside the actor's rows, a trashed record answers like one that is not in the trash."""
        try:
            self._require_row(conn, record_id, roles, utcnow())
        except NotFound:
            raise NotFound(f'record {record_id} of "{self.ts.slug}" is not in the trash') from None

    def remove_search_documents(self, conn: sa.Connection, ids: Sequence[int]) -> None:
        if self.ts.searchable_fields:
            delete_search_documents(conn, self.ts.name, list(ids))
