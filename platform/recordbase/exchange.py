"""Exporting and importing the records of one table, always through its ``RecordStore``.

**Export** (``RecordStore.export``) needs the ``export`` and ``read`` rights and
works with the roles that grant both: their rows, their fields, masked as they
see them. Hidden fields never appear; ``sensitive`` fields only with
``export_sensitive`` (asked for by name without it: ``PermissionDenied``; not
asked for: left out and listed in ``Export.omitted``). Rows come from
``RecordStore.stream`` (bounded memory), so row rules, masks and the "filter
only by what you read in clear" rule apply as in every read. CSV and XLSX
have a header row of field labels — a field's slug where its label could
name another field — and each value in its type's text form; a text cell that
a spreadsheet would run as a formula (starting with ``= + - @``, a tab or a
carriage return) gets a leading apostrophe, which import removes again. One
``export`` audit entry records the table, the field ids, the number of
records, the format and the slugs of the fields filtered by — never values.

**Import** (``RecordStore.import_rows``) needs the ``import`` and ``create``
rights. Columns are matched to fields by slug, then by label (any language,
case-insensitive), or by an explicit mapping; cells go through the field
type's ``from_text`` and the store's validation, in chunks of at most 1,000
rows inside one transaction. ``atomic`` writes nothing unless every row is
valid; ``skip-invalid`` creates the valid rows and reports the others. Rows
are numbered as in the file: the header is row 1. Problem messages never
repeat the value of a personal or sensitive field.

An import holds at most one chunk of rows at a time — the file is read row by
row (an XLSX sheet too, read-only), a chunk is converted, validated and
inserted, then dropped — and keeps the first ``MAX_PROBLEMS`` problems only,
so its memory does not grow with the file (``bench/import_memory.py``
measures it). ``on_progress(rows_read)`` is called after every
``IMPORT_CHUNK`` rows read and once at the end.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from . import query as q
from .access import Access
from .audit import write_audit
from .database import refresh_statistics
from .errors import PermissionDenied, Problem, QueryError, ValidationError
from .fields import Field, FieldValueError
from .records import STATISTICS_AFTER, Record, RecordStore

FORMATS = ("csv", "json", "xlsx")
IMPORT_FORMATS = ("csv", "xlsx")
MODES = ("atomic", "skip-invalid")
UNKNOWN_COLUMN = "unknown column"  # how a header matching no field is reported (a page may offer to leave it out)
IMPORT_CHUNK = 1_000  # rows validated and inserted together
MAX_PROBLEMS = 1_000  # problems kept in a report; the rest are only counted
_ROWS_PER_CHUNK = 500  # export records per text chunk
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PERSONAL = ("personal", "sensitive")
_SHORTEST_ECHO = 3  # one or two characters in a message tell nothing about a value
_XLSX_EXACT_DIGITS = 15  # numbers with more significant digits go to XLSX as text (a double holds 15)


# --- cells: formula injection and headers --------------------------------------------------


def neutralise(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading apostrophe before ``= + - @``, tab or CR.

    Text that already starts with an apostrophe followed by one of those (or by
    another apostrophe) gets one too, so that ``restore`` is its exact inverse.
    """
    if text.startswith(_FORMULA_START) or (len(text) > 1 and text[0] == "'" and text[1] in (*_FORMULA_START, "'")):
        return "'" + text
    return text


def restore(text: str) -> str:
    """The text ``neutralise`` was given."""
    if len(text) > 1 and text[0] == "'" and text[1] in (*_FORMULA_START, "'"):
        return text[1:]
    return text


def display_label(f: Field) -> str:
    """The field's label as a person reads it: English when given, else the first language's."""
    label = f.label
    if isinstance(label, Mapping) and label:
        label = label.get("en", next(iter(label.values())))
    return label.strip() if isinstance(label, str) and label.strip() else f.slug


def _label_texts(f: Field) -> list[str]:
    label = f.label
    texts = list(label.values()) if isinstance(label, Mapping) else [label]
    return [t.strip().casefold() for t in texts if isinstance(t, str) and t.strip()]


def _headers(fields: Sequence[Field], every: Sequence[Field]) -> list[str]:
    """A header per field: its label, or its slug where the label could name another field."""
    names: dict[str, int] = {}
    for f in every:
        for key in {f.slug.casefold(), *_label_texts(f)}:
            names[key] = names.get(key, 0) + 1
    out = []
    for f in fields:
        label = display_label(f)
        key = label.casefold()
        own = {f.slug.casefold(), *_label_texts(f)}
        clash = names.get(key, 0) > (1 if key in own else 0)
        out.append(f.slug if clash else label)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)


def _masked(f: Field, value: Any) -> bool:
    """Whether a value the store returned is a mask: each type's mask is its own mask."""
    try:
        return bool(value == f.type.mask(f, value))
    except Exception:  # a clear value the mask cannot take is not a mask
        return False


# --- export -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Omitted:
    """A field (or column) left out, and why."""

    field: str
    reason: str


class Export:
    """A prepared export: its columns are decided; its rows are read as it is written.

    ``count`` is the number of matching records when it was prepared, then the
    number actually written. Write it with ``write_to(fileobj)`` (any format;
    bytes to a binary file, text to a text file) or take ``chunks()`` (CSV and
    JSON text, for a streaming response). Each writing, complete or abandoned,
    is one ``export`` audit entry.
    """

    def __init__(
        self, store: RecordStore, fmt: str, fields: list[Field], omitted: list[Omitted],
        request: q.RecordQuery, count: int, filter_fields: list[str],
    ) -> None:
        self.store = store
        self.format = fmt
        self.fields = fields
        self.omitted = omitted
        self.count = count
        self.headers = _headers(fields, list(store.ts.fields.values()))
        self._request = request
        self._filter_fields = filter_fields
        self._may_mask = [not store.access.clear_everywhere(f) for f in fields]

    # --- rows ------------------------------------------------------------------------

    def _records(self) -> Iterator[Record]:
        """The records, counted; the audit entry is written when the stream ends or is dropped."""
        written = 0
        complete = False
        stream = self.store.stream(self._request)
        assert isinstance(stream, Generator)
        try:
            for record in stream:
                written += 1
                yield record
            complete = True
        finally:
            stream.close()  # release the reading connection before the audit entry is written
            self.count = written
            self._audit(written, complete)

    def _audit(self, written: int, complete: bool) -> None:
        ts = self.store.ts
        changes = {
            "format": self.format, "fields": [f.uid for f in self.fields], "records": written,
            "filter_fields": self._filter_fields, "searched": bool(q.search_terms(self._request.search)),
            "complete": complete,
        }
        with self.store.rb.write() as conn:
            write_audit(conn, self.store.actor, "export", app_id=ts.app.pk, table_id=ts.pk, entries=[(None, changes)])

    def _text_cells(self, record: Record) -> list[str]:
        cells = []
        for f, may_mask in zip(self.fields, self._may_mask, strict=True):
            value = record.fields.get(f.slug)
            if value is None:
                cells.append("")
                continue
            if may_mask and _masked(f, value):
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            else:
                text = f.type.to_text(f, value)
            cells.append(text if _is_number(value) else neutralise(text))
        return cells

    def _xlsx_cells(self, record: Record) -> list[Any]:
        # openpyxl is loaded with the first spreadsheet, not by every server process.
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        cells: list[Any] = []
        texts = self._text_cells(record)
        for f, may_mask, text in zip(self.fields, self._may_mask, texts, strict=True):
            value = record.fields.get(f.slug)
            if value is None or (may_mask and _masked(f, value)):
                cells.append(text or None)
            elif isinstance(value, bool):
                cells.append(value)
            elif isinstance(value, int) and len(str(abs(value))) <= _XLSX_EXACT_DIGITS:
                cells.append(value)
            elif isinstance(value, Decimal) and len(value.as_tuple().digits) <= _XLSX_EXACT_DIGITS:
                cells.append(value)
            elif type(value) is dt.date and value.year >= 1900:  # spreadsheets count days from 1900
                cells.append(value)
            else:
                # Spreadsheets cannot hold control characters (ESC, BEL…): they are dropped, not fatal.
                cells.append(ILLEGAL_CHARACTERS_RE.sub("", text) if text else text)
        return cells

    # --- writing ---------------------------------------------------------------------

    def chunks(self) -> Iterator[str]:
        """The CSV or JSON text in pieces of a few hundred records (no byte-order mark)."""
        if self.format == "csv":
            return self._csv_chunks()
        if self.format == "json":
            return self._json_chunks()
        raise ValueError("an XLSX export is written with write_to(a binary file)")

    def _csv_chunks(self) -> Iterator[str]:
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\r\n")
        out.writerow([neutralise(h) for h in self.headers])
        pending = 1
        for record in self._records():
            out.writerow(self._text_cells(record))
            pending += 1
            if pending >= _ROWS_PER_CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        yield buffer.getvalue()

    def _json_chunks(self) -> Iterator[str]:
        ts = self.store.ts
        parts = ["["]
        first = True
        for record in self._records():
            parts.append(("\n" if first else ",\n") + json.dumps(record.as_json(ts), ensure_ascii=False))
            first = False
            if len(parts) >= _ROWS_PER_CHUNK:
                yield "".join(parts)
                parts = []
        parts.append("]\n" if first else "\n]\n")
        yield "".join(parts)

    def write_to(self, fileobj: IO[Any]) -> int:
        """Write the export to an open file; returns the number of records written.

        CSV written to a binary file starts with a UTF-8 byte-order mark, so that
        spreadsheet programs read Chinese text right; a text file gets none.
        """
        if self.format == "xlsx":
            self._write_xlsx(fileobj)
            return self.count
        binary = not isinstance(fileobj, io.TextIOBase)
        if binary and self.format == "csv":
            fileobj.write("\ufeff".encode())
        for chunk in self.chunks():
            fileobj.write(chunk.encode() if binary else chunk)
        return self.count

    def _write_xlsx(self, fileobj: IO[Any]) -> None:
        from openpyxl import Workbook

        if isinstance(fileobj, io.TextIOBase):
            raise ValueError("an XLSX export needs a binary file")
        workbook = Workbook(write_only=True)  # rows go to a temporary file as they are appended
        sheet = workbook.create_sheet(title=re.sub(r"[\[\]:*?/\\]", "_", self.store.ts.slug)[:31])
        sheet.append([neutralise(h) for h in self.headers])
        for record in self._records():
            sheet.append(self._xlsx_cells(record))
        workbook.save(fileobj)


def export_records(
    store: RecordStore, fmt: str = "csv", *, fields: Sequence[str] | str | None = None,
    filter: Any = None, sort: Sequence[Any] | str | None = None, search: str | None = None,
) -> Export:
    """Check the rights and the request and decide the columns; rows are read when it is written."""
    if fmt not in FORMATS:
        raise ValidationError(f'unknown export format "{fmt}"', [Problem("/format", f"expected one of: {', '.join(FORMATS)}")])
    access = store.access
    access.require("export")
    access.require("read")
    if not access.full:
        exporters = [r for r in access.roles if r.can("export") and r.can("read")]
        if not exporters:
            raise PermissionDenied(f'no access to table "{store.ts.slug}": no role of yours may both read and export its records')
        # An export sees what the roles granting it may read: their rows, their fields, their masks.
        store = RecordStore(store.rb, store.actor, store.ts)
        store.access = access = Access(store.actor, store.ts, full=False, roles=exporters)
    may_sensitive = access.full or any(r.can("export_sensitive") for r in access.roles)
    visible = [f for f in store.ts.fields.values() if access.visible_somewhere(f)]
    omitted: list[Omitted] = []
    chosen: list[Field] = []
    if fields is None:
        for f in visible:
            if f.sensitivity == "sensitive" and not may_sensitive:
                omitted.append(Omitted(f.slug, "sensitive: exporting it needs the export_sensitive permission"))
            else:
                chosen.append(f)
    else:
        names = [s.strip() for s in fields.split(",") if s.strip()] if isinstance(fields, str) else list(fields)
        by_slug = {f.slug: f for f in visible}
        for i, name in enumerate(names):
            found = by_slug.get(name)
            if found is None:
                message = f'unknown field "{name}" in table "{store.ts.slug}"'
                raise QueryError(message, [Problem(f"/fields/{i}", message)])
            f = found
            if f.sensitivity == "sensitive" and not may_sensitive:
                message = f'you may not export the sensitive field "{name}" (it needs the export_sensitive permission)'
                raise PermissionDenied(message, [Problem(f"/fields/{i}", message)])
            if f not in chosen:
                chosen.append(f)
    slugs = [f.slug for f in chosen]
    # One row with the total checks the filter, sort and search (rights included) before anything is written.
    probe = store.query(q.RecordQuery(filter=filter, sort=sort, search=search, fields=slugs, page_size=1, with_total=True))
    request = q.RecordQuery(filter=filter, sort=sort, search=search, fields=slugs)
    filter_fields = list(dict.fromkeys(slug for slug, _ in q.filter_fields(filter)))
    return Export(store, fmt, chosen, omitted, request, probe.total or 0, filter_fields)


# --- reading files -----------------------------------------------------------------------

Cells = list[tuple[str, Any]]  # (column, cell) in file order; "" for a cell beyond the header


@dataclass
class _Table:
    """A header and numbered rows: a file's, or rows given as mappings (the first row's keys)."""

    header: list[str]
    rows: Iterator[tuple[int, Cells]]
    close: Any = None


def _csv_table(source: str | Path | IO[Any]) -> _Table:
    close: Any = None
    if isinstance(source, (str, Path)):
        handle: Any = open(source, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by _Table.close
        close = handle.close
    elif isinstance(source, io.TextIOBase):
        handle = source
    else:
        handle = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
        close = handle.detach  # leave the caller's file open
    reader = csv.reader(handle)
    try:
        header = next(reader, [])
    except BaseException:
        if close:
            close()
        raise
    if header and header[0].startswith("\ufeff"):  # a byte-order mark in a text stream read as plain UTF-8
        header[0] = header[0][1:]
    header = [restore(h).strip() for h in header]

    def rows() -> Iterator[tuple[int, Cells]]:
        for number, cells in enumerate(reader, start=2):
            yield number, [(header[i] if i < len(header) else "", cell) for i, cell in enumerate(cells)]

    return _Table(header, rows(), close)


def _xlsx_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")  # never "1e-10"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _xlsx_table(source: str | Path | IO[Any]) -> _Table:
    from openpyxl import load_workbook

    workbook = load_workbook(source, read_only=True, data_only=True)
    try:
        values = workbook.worksheets[0].iter_rows(values_only=True)
        header = [restore(_xlsx_text(v)).strip() for v in next(values, ())]
    except BaseException:
        workbook.close()
        raise

    def rows() -> Iterator[tuple[int, Cells]]:
        for number, cells in enumerate(values, start=2):
            yield number, [(header[i] if i < len(header) else "", _xlsx_text(v)) for i, v in enumerate(cells)]

    return _Table(header, rows(), workbook.close)


def _mapping_table(rows: Iterable[Mapping[str, Any]]) -> _Table:
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return _Table([], iter(()))

    def numbered() -> Iterator[tuple[int, Cells]]:
        for number, row in enumerate(itertools.chain([first], iterator), start=2):
            if not isinstance(row, Mapping):
                message = f"row {number} is not a mapping of column to cell"
                raise ValidationError(message, [Problem(f"/rows/{number}", message)])
            yield number, [(str(column).strip(), cell) for column, cell in row.items()]

    header = [str(column).strip() for column in first] if isinstance(first, Mapping) else []
    return _Table(header, numbered())


def _rows_of(table: _Table) -> Iterator[dict[str, str]]:
    try:
        for _, cells in table.rows:
            yield {column: restore(cell) for column, cell in cells if column}
    finally:
        if table.close:
            table.close()


def read_csv(source: str | Path | IO[Any]) -> Iterator[dict[str, str]]:
    """The data rows of a CSV file (UTF-8, with or without a byte-order mark) as column → cell.

    Blank lines come as empty mappings, so the n-th mapping is row n + 1 of the
    file; apostrophes written by an export against formulas are removed.
    """
    return _rows_of(_csv_table(source))


def read_xlsx(source: str | Path | IO[Any]) -> Iterator[dict[str, str]]:
    """The data rows of an XLSX workbook's first sheet as column → cell text (read-only, streamed)."""
    return _rows_of(_xlsx_table(source))


# --- import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    row: int  # as in the file: the header is row 1, the first data row 2
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column is not None else "")
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    mode: str
    created: int = 0
    skipped: int = 0  # rows with a problem, not imported
    rows: int = 0  # data rows read (blank rows not counted)
    problems: list[ImportProblem] = field(default_factory=list)  # the first MAX_PROBLEMS
    problem_count: int = 0
    fields: list[str] = field(default_factory=list)  # slugs of the fields the columns fill
    ignored: list[Omitted] = field(default_factory=list)  # columns left alone (fields set by Recordbase)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return self.committed and self.problem_count == 0

    def problem(self, row: int, column: str | None, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ImportProblem(row, column, message))


def scrub(f: Field | None, text: str, message: str) -> str:
    """A problem message safe for logs and screens: a personal or sensitive value never appears in it.

    Field types' messages do not repeat values; should one ever do (or should
    the value happen to read like the message), the message becomes a generic one.
    """
    value = text.strip()
    if f is None or f.sensitivity not in _PERSONAL or len(value) < _SHORTEST_ECHO or value not in message:
        return message
    return f"is not a valid {f.type.name} value (not repeated here: the field holds {f.sensitivity} data)"


class _RollBack(Exception):
    """Raised inside the import's transaction so that nothing of a failed atomic import stays."""


class _Importer:
    """Columns → fields, cells → values, and the inserts of one import."""

    def __init__(self, store: RecordStore, mapping: Mapping[str, str | None] | None, report: ImportReport) -> None:
        self.store = store
        self.ts = store.ts
        self.report = report
        self.mapping = {str(k).strip().casefold(): v for k, v in (mapping or {}).items()}
        access = store.access
        self.creators = access.require("create")
        # The fields the actor may know of: those it can read or write. Others are unknown columns.
        self.known = [
            f for f in self.ts.fields.values()
            if access.full or access.visible_somewhere(f) or max((r.levels[f.slug] for r in self.creators), default=0) >= 2
        ]
        self.columns: dict[str, Field | None] = {}  # column → field (None: ignored)
        self.bad_columns: set[str] = set()
        self.targets: dict[str, str] = {}  # field slug → the column that fills it

    # --- columns ---------------------------------------------------------------------

    def _find(self, column: str) -> Field | str | None:
        """The field a column fills; ``None`` to ignore it; a message when there is none."""
        key = column.strip().casefold()
        if key in self.mapping:
            wanted = self.mapping[key]
            if wanted is None or not str(wanted).strip():
                return None
            key = str(wanted).strip().casefold()
        if not key:
            return None
        for f in self.known:
            if f.slug.casefold() == key:
                return f
        matches = [f for f in self.known if key in _label_texts(f)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            return f'matches several fields ({", ".join(f.slug for f in matches)}); map it to one of them'
        return f'{UNKNOWN_COLUMN}: no field of "{self.ts.slug}" has this label or slug'

    def resolve(self, column: str, row: int) -> Field | None:
        """The field of a column (resolved once); a problem is reported the first time."""
        if column in self.columns:
            return self.columns[column]
        found = self._find(column)
        target: Field | None = None
        if isinstance(found, str):
            self.report.problem(row, column, found)
            self.bad_columns.add(column)
        elif found is not None:
            if found.type.system or found.type.name == "autonumber":
                self.report.ignored.append(Omitted(column, f'"{found.slug}" is set by Recordbase'))
            elif getattr(found.type, "computed", False):
                self.report.ignored.append(Omitted(column, f'"{found.slug}" is computed by Recordbase'))
            elif found.slug in self.targets:
                self.report.problem(row, column, f'fills the same field "{found.slug}" as column {self.targets[found.slug]}')
                self.bad_columns.add(column)
            else:
                self.store.access.writable(self.creators, [found.slug], "/columns")  # PermissionDenied naming it
                self.targets[found.slug] = column
                self.report.fields.append(found.slug)
                target = found
        self.columns[column] = target
        return target

    def column_of(self, slug: str) -> str:
        return self.targets.get(slug, slug)

    # --- rows ------------------------------------------------------------------------

    def convert(self, number: int, cells: Cells) -> dict[str, Any] | None:
        """A row's values by field slug, or ``None`` when the row has a problem (each one reported)."""
        values: dict[str, Any] = {}
        ok = True
        for column, cell in cells:
            text = "" if cell is None else restore(cell if isinstance(cell, str) else str(cell))
            if not column:
                if text.strip():
                    self.report.problem(number, None, "a value in a column without a header")
                    ok = False
                continue
            f = self.resolve(column, number)  # header columns were resolved at row 1
            if column in self.bad_columns:
                ok = False
                continue
            if f is None or not text.strip():
                continue
            try:
                value = f.type.from_text(f, text)
                f.type.parse(f, value)
            except FieldValueError as exc:
                self.report.problem(number, column, scrub(f, text, str(exc)))
                ok = False
                continue
            if value is not None:
                values[f.slug] = value
        return values if ok else None

    def insert(self, conn: sa.Connection, pending: list[tuple[int, dict[str, Any], dict[str, str]]]) -> None:
        """Create ``pending`` rows (number, values, cell texts); refused rows are reported, the others retried.

        Each attempt runs in a savepoint, so an attempt the store refuses leaves nothing behind.
        """
        store, report = self.store, self.report
        while pending:
            savepoint = conn.begin_nested()
            try:
                store._create([values for _, values, _ in pending], "/records/{}/fields", conn)
            except ValidationError as exc:
                savepoint.rollback()
                bad: set[int] = set()
                for p in exc.problems:
                    match = _POINTER.match(p.pointer)
                    if not match or int(match.group(1)) >= len(pending):
                        continue
                    index, slug = int(match.group(1)), match.group(2)
                    number, _, texts = pending[index]
                    message = scrub(store.ts.fields.get(slug or ""), texts.get(slug or "", ""), p.message)
                    report.problem(number, self.column_of(slug) if slug else None, message)
                    bad.add(index)
                if not bad:  # nothing points at a row: the rows share the fate
                    for number, _, _ in pending:
                        report.problem(number, None, exc.message)
                    report.skipped += len(pending)
                    return
                report.skipped += len(bad)
                pending = [item for i, item in enumerate(pending) if i not in bad]
            except PermissionDenied as exc:  # e.g. a record outside the rows the actor may create in
                savepoint.rollback()
                if len(pending) == 1:
                    report.problem(pending[0][0], None, exc.message)
                    report.skipped += 1
                    return
                for item in pending:  # find the rows at fault one by one
                    self.insert(conn, [item])
                return
            else:
                savepoint.commit()
                report.created += len(pending)
                return


_POINTER = re.compile(r"^/records/(\d+)(?:/fields/([^/]+))?")


def import_records(
    store: RecordStore, source: Iterable[Mapping[str, Any]] | str | Path | IO[Any], *,
    fmt: str | None = None, mapping: Mapping[str, str | None] | None = None, mode: str = "atomic",
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import rows (mappings of column → cell text) or a CSV or XLSX file; see the module docstring.

    ``on_progress(rows_read)``, when given, is called after every ``IMPORT_CHUNK``
    data rows read (blank rows not counted) and once when the last row is in.
    """
    if mode not in MODES:
        raise ValidationError(f'unknown import mode "{mode}"', [Problem("/mode", f"expected one of: {', '.join(MODES)}")])
    store.access.require("import")
    store.access.require("create")
    report = ImportReport(mode)
    importer = _Importer(store, mapping, report)
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return _import(store, source, fmt, report, importer, on_progress)
    except UnicodeDecodeError:
        message = 'the file is not UTF-8 text (save it as "CSV UTF-8")'
    except csv.Error as exc:
        message = f"the file is not valid CSV: {exc}"
    except (zipfile.BadZipFile, InvalidFileException, KeyError) as exc:
        if isinstance(exc, KeyError) and not _is_file(source):
            raise
        message = "the file is not an XLSX workbook"
    raise ValidationError(message, [Problem("/file", message)])


def _is_file(source: Any) -> bool:
    return isinstance(source, (str, Path)) or hasattr(source, "read")


def _format_of(source: Any, fmt: str | None) -> str:
    if fmt is None:
        suffix = Path(source).suffix.lower().lstrip(".") if isinstance(source, (str, Path)) else ""
        fmt = suffix or "csv"
    if fmt not in IMPORT_FORMATS:
        raise ValidationError(f'cannot import "{fmt}" files', [Problem("/format", f"expected one of: {', '.join(IMPORT_FORMATS)}")])
    return fmt


def _import(
    store: RecordStore, source: Any, fmt: str | None, report: ImportReport, importer: _Importer,
    on_progress: Callable[[int], None] | None,
) -> ImportReport:
    if _is_file(source):
        kind = _format_of(source, fmt)
        table = _csv_table(source) if kind == "csv" else _xlsx_table(source)
    else:
        kind = "rows"
        table = _mapping_table(source)
    try:
        seen: dict[str, str] = {}
        for column in table.header:
            if not column:
                continue
            if column.casefold() in seen:
                report.problem(1, column, f"appears twice (also as {seen[column.casefold()]})")
                importer.bad_columns.add(column)
                continue
            seen[column.casefold()] = column
            importer.resolve(column, 1)
        if report.problem_count:  # a header that does not fit the table: no row can be read right
            _audit_apart(store, kind, report)
            return report
        try:
            with store.rb.write() as conn:
                pending: list[tuple[int, dict[str, Any], dict[str, str]]] = []
                for number, cells in table.rows:
                    if not any(cell is not None and str(cell).strip() for _, cell in cells):
                        continue  # a blank row
                    report.rows += 1
                    values = importer.convert(number, cells)
                    if values is None:
                        report.skipped += 1
                    else:
                        texts = {f.slug: str(cell or "") for column, cell in cells if (f := importer.columns.get(column)) is not None}
                        pending.append((number, values, texts))
                        if len(pending) >= IMPORT_CHUNK:
                            importer.insert(conn, pending)
                            pending = []
                    if on_progress is not None and report.rows % IMPORT_CHUNK == 0:
                        on_progress(report.rows)
                importer.insert(conn, pending)
                pending = []
                if on_progress is not None:
                    on_progress(report.rows)
                if report.mode == "atomic" and report.problem_count:
                    raise _RollBack
                report.committed = True
                _write_audit(conn, store, kind, report)
        except _RollBack:
            report.created = 0
            _audit_apart(store, kind, report)
            return report
    finally:
        if table.close:
            table.close()
    if report.created >= STATISTICS_AFTER:
        refresh_statistics(store.rb.engine, store.ts.name)
    return report


def _write_audit(conn: sa.Connection, store: RecordStore, kind: str, report: ImportReport) -> None:
    changes = {
        "format": kind, "mode": report.mode, "fields": [store.ts.fields[slug].uid for slug in report.fields],
        "rows": report.rows, "created": report.created, "skipped": report.skipped,
        "problems": report.problem_count, "committed": report.committed,
    }
    write_audit(conn, store.actor, "import", app_id=store.ts.app.pk, table_id=store.ts.pk, entries=[(None, changes)])


def _audit_apart(store: RecordStore, kind: str, report: ImportReport) -> None:
    """The entry of an import that wrote nothing, in a transaction of its own."""
    with store.rb.write() as conn:
        _write_audit(conn, store, kind, report)
