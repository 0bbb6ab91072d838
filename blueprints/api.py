"""The REST API, ``/api/v1``: HTTP in, engine calls with an explicit actor, JSON out.

The engine decides everything — rights, rows, masks, validation, audit. This
blueprint only translates: it finds the caller, parses parameters and JSON
bodies, calls the ``RecordStore`` and writes the result; engine errors leave
as ``application/problem+json`` through ``errors.py``.

**Who is calling.** ``Authorization: Bearer <token>`` (a personal access token)
is resolved with ``Recordbase.actor_for_token``, which loads the user as of
now and audits every use — inside the request's own writing transaction when
it has one, else just before the answer (``flush_deferred``); a missing or
refused token is 401 with ``WWW-Authenticate: Bearer``. Without the header, a signed-in page user (the
session cookie, see ``identity.py``) is the caller, and every state-changing
request must then carry the CSRF token (``X-CSRFToken``; cookie-authenticated
responses hand it out in the same header). The actor is loaded once per
request, so revoking a token or deactivating a user counts at the next one.

**Limits.** Rate limits (``limit_rate``, counted by ``ratelimits.py``) per
caller — token, session user or, for anonymous calls, address — and per
address, counted before authentication; every answer
carries ``X-RateLimit-Limit/-Remaining/-Reset`` of the tighter one, and a
429 says when to come back in ``Retry-After``: ``RECORDBASE_RATE_LIMIT``
(default ``600/minute``), ``RECORDBASE_RATE_LIMIT_IP`` (default the same),
stored in ``RECORDBASE_RATELIMIT_STORAGE`` (default ``memory://``: per
process; give ``redis://…`` or ``memcached://…`` to share between workers).
Request bodies are limited by ``MAX_CONTENT_LENGTH`` (``create_app``).

**Import** (``POST …/records/import``) takes the file as a multipart part
``file`` (``.csv`` or ``.xlsx``) or as a ``text/csv`` body. Neither is held in
memory: a ``text/csv`` body is copied in 64 KB pieces to a temporary file, and
the form parser spools a multipart file over 500 KB to one too; the engine
then reads it row by row, a chunk at a time. The rights (``import`` and
``create``) are checked before the body is read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from decimal import Decimal
from itertools import chain
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request, session, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from limits import parse as parse_limit
from recordbase import automations, dashboards
from recordbase.actor import Actor
from recordbase.errors import Conflict, NotFound, Problem, QueryError, ValidationError
from recordbase.exchange import MODES, ImportReport
from recordbase.fields import Field
from recordbase.query import RecordQuery
from recordbase.records import Record, RecordStore
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import wrap_file

from . import openapi
from .config import config_value, engine
from .errors import problem_response
from .ratelimits import counter

bp = Blueprint("api", __name__, url_prefix="/api/v1")

TABLE = "/apps/<app>/tables/<table>"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_BATCH = 1_000
MAX_RECORD_ID = 2**63 - 1  # the largest id either database stores; beyond it nothing can exist
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPTIONAL_AUTH = frozenset({"api.openapi_document"})  # anonymous callers get the generic part
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
IMPORT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
_COPY_CHUNK = 64 * 1024
_PLAIN = (str, int, bool, float)
NUL = "\x00"


# --- who is calling --------------------------------------------------------------------


def actor() -> Actor:
    found: Actor = g.api_actor
    return found


def _bearer_secret() -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" for any other header), ``None`` without one."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _unauthorized(detail: str, *, invalid: bool) -> BaseResponse:
    challenge = 'Bearer realm="recordbase"' + (', error="invalid_token"' if invalid else "")
    return problem_response(401, detail, headers={"WWW-Authenticate": challenge})


@bp.before_request
def limit_rate() -> BaseResponse | None:
    """Count the call against its caller's and its address's limits: over either, 429 before anything runs.

    Counted with the app's ``RateCounter`` (``ratelimits.py``), as sign-in
    throttling is; flask-limiter's decorators did the same and cost more per
    request than the counting itself.
    """
    g.api_limit = None
    limiter = counter()
    if not limiter.enabled:
        return None
    strategy = limiter.limiter
    for kind, item, key in zip(("caller", "address"), current_app.extensions["recordbase_api_limits"],
                               (caller_key(), request.remote_addr or "unknown"), strict=True):
        allowed = strategy.hit(item, "recordbase", "api", kind, key)
        stats = strategy.get_window_stats(item, "recordbase", "api", kind, key)
        if not allowed or g.api_limit is None or stats.remaining < g.api_limit[1].remaining:
            g.api_limit = (item, stats)  # the limit closest to running out, for the headers
        if not allowed:
            return problem_response(429, f"too many requests ({item}); wait and try again")
    return None


@bp.before_request
def authenticate() -> BaseResponse | None:
    g.api_actor = None
    g.api_via = None
    if request.method == "OPTIONS":
        return None
    secret = _bearer_secret()
    if secret is not None:
        found = (
            engine().actor_for_token(secret, source=request.remote_addr, audit_with_next_write=True)
            if secret else None
        )
        if found is None:
            return _unauthorized(
                "this bearer token does not work: it is unknown, revoked or expired, "
                "or its user is deactivated",
                invalid=True,
            )
        g.api_actor, g.api_via = found, "token"
        return None
    if current_user.is_authenticated:
        g.api_actor, g.api_via = current_user.actor, "session"
        if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
            current_app.extensions["csrf"].protect()  # raises CSRFError → 403
        return None
    if request.endpoint in OPTIONAL_AUTH:
        return None
    return _unauthorized(
        "authentication required: send a personal access token as "
        "'Authorization: Bearer <token>', or sign in",
        invalid=False,
    )


@bp.after_request
def finish(response: BaseResponse) -> BaseResponse:
    # The token's use is audited before anything is answered: with the request's own write, or now.
    engine().flush_deferred()
    # Records carry personal data: never cached, and the answer depends on who asks.
    response.headers.setdefault("Cache-Control", "no-store")
    response.vary.update(("Authorization", "Cookie"))
    limit = g.get("api_limit")
    if limit is not None:
        item, stats = limit
        response.headers["X-RateLimit-Limit"] = str(item.amount)
        response.headers["X-RateLimit-Remaining"] = str(stats.remaining)
        response.headers["X-RateLimit-Reset"] = str(int(stats.reset_time))
        response.headers["Retry-After"] = str(max(1, math.ceil(stats.reset_time - time.time())))
    if g.get("api_via") == "session":
        response.headers["X-CSRFToken"] = generate_csrf()
    return response


@bp.teardown_request
def forget_deferred(_error: BaseException | None) -> None:
    # Only when answering failed before ``finish``: nothing pending may leak into this thread's next request.
    engine().discard_deferred()


@bp.before_request
def refuse_nul() -> None:
    """Text holding U+0000 is refused up front: PostgreSQL cannot store or compare it, SQLite could."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and NUL in value:
            raise NotFound(f"no {name} with that name")
    for name, value in request.args.items(multi=True):
        if NUL in value:
            raise QueryError(f"/{name}: {NUL_MESSAGE}", [Problem(f"/{name}", NUL_MESSAGE)])


NUL_MESSAGE = "text may not contain the NUL character (U+0000)"
RANGE_MESSAGE = "numbers must lie between -2**63 and 2**63 - 1"


def unstorable(value: Any, pointer: str = "") -> list[Problem]:
    """Every string holding U+0000 and every integer beyond 64 bits in a JSON value.

    Neither database can take them (PostgreSQL refuses NUL in text, both
    overflow past 64 bits), and no field type has such a value: refused as input
    errors up front instead of failing in SQL.
    """
    if isinstance(value, str):
        return [Problem(pointer, NUL_MESSAGE)] if NUL in value else []
    if isinstance(value, int) and not isinstance(value, bool):
        return [] if -(2**63) <= value < 2**63 else [Problem(pointer, RANGE_MESSAGE)]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in unstorable(item, f"{pointer}/{i}")]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            where = f"{pointer}/" + str(key).replace("~", "~0").replace("/", "~1")
            found += [Problem(where, NUL_MESSAGE)] if NUL in str(key) else unstorable(item, where)
        return found
    return []


def store_for(app: str, table: str) -> RecordStore:
    """The caller's store for ``app.table``; an app where it has no role answers like one not installed."""
    who = actor()
    rb = engine()
    if not (who.kind == "system" or who.is_admin or who.roles_in(app)):
        rb.schema_for(
            who, app
        )  # the engine's own answer: NotFound, as for an app that is not installed
    return rb.records(who, app, table)


def record_id_in_range(store: RecordStore, record_id: int) -> None:
    """An id beyond what the database stores is a record that does not exist, said as the engine says it."""
    if record_id > MAX_RECORD_ID:
        raise NotFound(f'no record {record_id} in "{store.ts.slug}"')


# --- request parsing -----------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_body() -> dict[str, Any]:
    """The request's JSON object: 415 when it is not JSON, 400 when malformed, 413 when too large."""
    mimetype = request.mimetype or ""
    if not (mimetype == "application/json" or mimetype.endswith("+json")):
        raise UnsupportedMediaType("send the body as JSON, with 'Content-Type: application/json'")
    raw = request.get_data(cache=True)  # beyond MAX_CONTENT_LENGTH: 413
    if not raw.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc}"
            if isinstance(exc, ValueError)
            else "the request body is nested too deeply"
        ) from None
    if not isinstance(body, dict):
        raise ValidationError(
            "the request body must be a JSON object", [Problem("", "expected a JSON object")]
        )
    if b"\\u0000" in raw or _LONG_NUMBER.search(raw):
        # Only an escape can put U+0000 in a JSON string (a raw control character is invalid JSON),
        # and an integer beyond 64 bits has at least 19 digits: other bodies need no walk.
        refuse_unstorable(body, ValidationError)
    return body


_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def refuse_unstorable(
    value: Any, error: type[ValidationError] | type[QueryError], prefix: str = ""
) -> None:
    found = unstorable(value, prefix)
    if found:
        raise error(f"{found[0]}", found)


def allow_keys(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [key for key in body if key not in allowed]
    if unknown:
        problems = [
            Problem(f"/{key}", f'unknown member "{key}"; expected: {", ".join(allowed)}')
            for key in unknown
        ]
        raise ValidationError(f'unknown member "{unknown[0]}" in the request body', problems)


def filter_arg() -> Any:
    text = request.args.get("filter")
    if text is None or not text.strip():
        return None
    try:
        tree = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise QueryError(
            "filter is not valid JSON",
            [Problem("/filter", "expected the filter tree as JSON (URL-encoded)")],
        ) from None
    refuse_unstorable(tree, QueryError, "/filter")
    return tree


def list_arg(name: str) -> list[str] | None:
    text = request.args.get(name)
    if text is None or not text.strip():
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def text_arg(name: str) -> str | None:
    text = request.args.get(name)
    return text if text is not None and text.strip() else None


def int_arg(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        message = f"{name} must be a whole number from {low} to {high}"
        raise QueryError(message, [Problem(f"/{name}", message)])
    return value


def if_match_version() -> int | None:
    """The version in ``If-Match`` (an ETag as this API writes it: ``"3"``), ``None`` without the header."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    if not tag.isdigit() or not tag.isascii() or len(tag) > 18:
        raise BadRequest(
            "If-Match must hold the record's version as its ETag gives it, e.g. '\"3\"'"
        )
    return int(tag)


# --- JSON out --------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Any engine value in JSON types (what a field type has no say in: averages, system stamps)."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def field_json(f: Field | None, value: Any) -> Any:
    """A value of field ``f`` in JSON types, as ``Record.as_json`` writes it."""
    if value is None or type(value) in _PLAIN or f is None:
        return plain(value)
    return plain(f.type.json_value(f, value))


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False, default=plain),
        status=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def etag(record: Record) -> dict[str, str]:
    return {"ETag": f'"{record.version}"'}


def record_url(app: str, table: str, record_id: int) -> str:
    return url_for("api.record", app=app, table=table, record_id=record_id)


# --- apps --------------------------------------------------------------------------------


@bp.get("/apps")
def apps() -> Response:
    """The apps and tables the caller can see, as the engine shows them (``schema_for``)."""
    rb, who = engine(), actor()
    out = []
    for slug in rb.apps_for(who):
        definition = rb.schema_for(who, slug)
        tables = []
        for tdef in definition["tables"]:
            access = rb.records(who, slug, tdef["slug"]).access
            operations = sorted(openapi.operations_of(access))
            tables.append({**tdef, "operations": operations})
        out.append(
            {
                "slug": slug,
                "label": definition.get("label", slug),
                "description": definition.get("description"),
                "version": definition.get("version"),
                "roles": definition.get("roles") or [],
                "tables": tables,
                "views": definition.get("views") or [],
            }
        )
    return json_response({"apps": out})


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 document, generated now from the installed definitions, as the caller sees them."""
    return json_response(
        openapi.build_document(engine(), actor() if g.api_actor is not None else None)
    )


# --- records ---------------------------------------------------------------------------


@bp.get(TABLE + "/records")
def records(app: str, table: str) -> Response:
    store = store_for(app, table)
    page = store.query(
        RecordQuery(
            filter=filter_arg(),
            sort=text_arg("sort"),
            search=text_arg("q"),
            fields=list_arg("fields"),
            page_size=int_arg("page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
            cursor=text_arg("cursor"),
        )
    )
    return json_response(
        {
            "records": [r.as_json(store.ts) for r in page.records],
            "next_cursor": page.next_cursor,
            "total": page.total,
        }
    )


@bp.post(TABLE + "/records")
def create(app: str, table: str) -> Response:
    store = store_for(app, table)
    body = json_body()
    if set(body) == {"fields"}:
        record = store.create(body["fields"])
        headers = {"Location": record_url(app, table, record.id), **etag(record)}
        return json_response(record.as_json(store.ts), 201, headers)
    if set(body) == {"records"}:
        items = body["records"]
        if not isinstance(items, list):
            raise ValidationError(
                "records must be a list",
                [Problem("/records", 'expected a list of {"fields": {...}}')],
            )
        if len(items) > MAX_BATCH:
            message = f"at most {MAX_BATCH} records per request"
            raise ValidationError(message, [Problem("/records", message)])
        problems = [
            Problem(f"/records/{i}", 'expected {"fields": {...}}')
            for i, item in enumerate(items)
            if not isinstance(item, dict) or set(item) != {"fields"}
        ]
        if problems:
            raise ValidationError(
                f'{len(problems)} record(s) are not shaped as {{"fields": {{...}}}}', problems
            )
        created = store.create_many([item["fields"] for item in items])
        return json_response({"records": [r.as_json(store.ts) for r in created]}, 201)
    message = 'send {"fields": {...}} for one record, or {"records": [{"fields": {...}}, ...]} for several'
    raise ValidationError(message, [Problem("", message)])


@bp.get(TABLE + "/records/<int:record_id>")
def record(app: str, table: str, record_id: int) -> Response:
    store = store_for(app, table)
    record_id_in_range(store, record_id)
    found = store.get(record_id, fields=list_arg("fields"))
    return json_response(found.as_json(store.ts), headers=etag(found))


@bp.patch(TABLE + "/records/<int:record_id>")
def update(app: str, table: str, record_id: int) -> BaseResponse:
    store = store_for(app, table)
    record_id_in_range(store, record_id)
    body = json_body()
    allow_keys(body, ("fields", "version"))
    if "fields" not in body:
        raise ValidationError(
            'give the changed values as {"fields": {...}}', [Problem("/fields", "required")]
        )
    header = if_match_version()
    given = body.get("version")
    if given is not None and (isinstance(given, bool) or not isinstance(given, int) or given < 1):
        raise ValidationError(
            "version must be a positive whole number",
            [Problem("/version", "expected the record's version (an integer)")],
        )
    if header is not None and given is not None and header != given:
        raise ValidationError(
            "If-Match and version disagree",
            [Problem("/version", "differs from the If-Match header")],
        )
    version = header if header is not None else given
    if version is None:
        return problem_response(
            428,
            "say which version you are changing: send 'If-Match: \"<version>\"' "
            '(the record\'s ETag) or "version" in the body',
        )
    try:
        updated = store.update(record_id, body["fields"], version=version)
    except Conflict as exc:
        current = exc.current.as_json(store.ts) if isinstance(exc.current, Record) else None
        headers = etag(exc.current) if isinstance(exc.current, Record) else {}
        return problem_response(
            412 if header is not None else 409,
            exc.message,
            extra={"current": current},
            headers=headers,
        )
    return json_response(updated.as_json(store.ts), headers=etag(updated))


@bp.delete(TABLE + "/records/<int:record_id>")
def delete(app: str, table: str, record_id: int) -> Response:
    store = store_for(app, table)
    record_id_in_range(store, record_id)
    store.delete(record_id)
    return Response(status=204)


@bp.post(TABLE + "/records/<int:record_id>/reveal")
def reveal(app: str, table: str, record_id: int) -> Response:
    store = store_for(app, table)
    record_id_in_range(store, record_id)
    body = json_body()
    allow_keys(body, ("field", "reason"))
    field, reason = body.get("field"), body.get("reason")
    problems = []
    if not isinstance(field, str):
        problems.append(Problem("/field", "give the field's slug"))
    if reason is not None and not isinstance(reason, str):
        problems.append(Problem("/reason", "give the reason as text"))
    if problems:
        raise ValidationError(f"{problems[0]}", problems)
    value = store.reveal(record_id, field, reason or "")
    return json_response({"field": field, "value": field_json(store.ts.fields.get(field), value)})


@bp.get(TABLE + "/records/<int:record_id>/history")
def history(app: str, table: str, record_id: int) -> Response:
    store = store_for(app, table)
    record_id_in_range(store, record_id)
    changes = store.history(record_id)
    return json_response(
        {
            "history": [
                {
                    "at": plain(c.at),
                    "actor": c.actor,
                    "action": c.action,
                    "fields": plain(c.fields),
                    "details": plain(c.details),
                }
                for c in changes
            ]
        }
    )


@bp.get(TABLE + "/records/export")
def export(app: str, table: str) -> BaseResponse:
    """The records as a file, streamed: what the engine lets this caller export, audited when written."""
    store = store_for(app, table)
    fmt = request.args.get("format", "csv")
    prepared = store.export(
        fmt,
        fields=list_arg("fields"),
        filter=filter_arg(),
        sort=text_arg("sort"),
        search=text_arg("q"),
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{store.ts.app.slug}-{store.ts.slug}.{fmt}"',
        "X-Total-Count": str(prepared.count),
    }
    if prepared.omitted:
        headers["X-Omitted-Fields"] = ", ".join(o.field for o in prepared.omitted)
    if fmt == "xlsx":
        # A workbook is a zip whose directory comes last: spooled (in memory, then on disk), then streamed.
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed by wrap_file
        prepared.write_to(spool)
        headers["Content-Length"] = str(spool.tell())
        spool.seek(0)
        body: Any = wrap_file(request.environ, spool, buffer_size=64 * 1024)  # type: ignore[arg-type]
        return Response(
            body, headers=headers, content_type=EXPORT_TYPES[fmt], direct_passthrough=True
        )
    chunks: Iterator[str] = prepared.chunks()
    if fmt == "csv":
        chunks = chain(
            ["\ufeff"], chunks
        )  # a byte-order mark, so spreadsheets read Chinese text right
    return Response(chunks, headers=headers, content_type=EXPORT_TYPES[fmt])


def import_mapping() -> dict[str, str | None]:
    """The repeated ``map=Column=field`` parameters; ``Column=`` ignores a column."""
    mapping: dict[str, str | None] = {}
    for i, pair in enumerate(request.args.getlist("map")):
        column, sep, slug = pair.rpartition("=")
        if not sep or not column.strip():
            message = f'give map as "Column=field", not "{pair}"'
            raise QueryError(message, [Problem(f"/map/{i}", message)])
        mapping[column.strip()] = slug.strip() or None
    return mapping


def import_mode() -> str:
    mode = request.args.get("mode", "atomic").strip() or "atomic"
    if mode not in MODES:
        message = f"mode must be one of: {', '.join(MODES)}"
        raise QueryError(message, [Problem("/mode", message)])
    return mode


def _upload_format(upload: FileStorage) -> str:
    name = (upload.filename or "").lower()
    for suffix in ("csv", "xlsx"):
        if name.endswith("." + suffix):
            return suffix
    found = IMPORT_TYPES.get(upload.mimetype or "")
    if found is None:
        raise UnsupportedMediaType("send a .csv or .xlsx file (by its file name or its part's Content-Type)")
    return found


def import_source(files: ExitStack) -> tuple[Any, str]:
    """The uploaded file (a binary file object, not in memory when large) and its format."""
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        upload = request.files.get("file")  # beyond MAX_CONTENT_LENGTH: 413
        if upload is None:
            message = 'send the file as the multipart part "file"'
            raise BadRequest(message)
        return upload.stream, _upload_format(upload)
    if mimetype in ("text/csv", "application/csv"):
        spool = files.enter_context(tempfile.TemporaryFile())
        stream = request.stream  # beyond MAX_CONTENT_LENGTH: 413, at once or while reading
        while chunk := stream.read(_COPY_CHUNK):
            spool.write(chunk)
        spool.seek(0)
        return spool, "csv"
    raise UnsupportedMediaType(
        "send a CSV or XLSX file as the multipart part 'file', or CSV as the body with 'Content-Type: text/csv'"
    )


def report_json(report: ImportReport) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "committed": report.committed,
        "created": report.created,
        "skipped": report.skipped,
        "rows": report.rows,
        "fields": report.fields,
        "ignored": [{"column": o.field, "reason": o.reason} for o in report.ignored],
        "problem_count": report.problem_count,
        "problems": [{"row": p.row, "column": p.column, "message": p.message} for p in report.problems],
    }


def _pointer_part(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


@bp.post(TABLE + "/records/import")
def import_records(app: str, table: str) -> BaseResponse:
    """Create records from a CSV or XLSX file; the report, or a 422 when nothing was written."""
    store = store_for(app, table)
    store.access.require("import")  # before the body is read; the engine checks again
    store.access.require("create")
    mode, mapping = import_mode(), import_mapping()
    with ExitStack() as files:
        source, fmt = import_source(files)
        report = store.import_rows(source, fmt=fmt, mapping=mapping, mode=mode)
    body = report_json(report)
    if report.committed:
        return json_response(body)
    errors = [
        {
            "pointer": f"/rows/{p.row}" + ("" if p.column is None else f"/{_pointer_part(p.column)}"),
            "row": p.row,
            **({} if p.column is None else {"column": p.column}),
            "message": p.message,
        }
        for p in report.problems
    ]
    detail = f"nothing imported: {report.problem_count} problem(s)" + (
        " (atomic: every row must be valid)" if mode == "atomic" and report.rows else ""
    )
    return problem_response(422, detail, extra={"errors": errors, "report": body})


@bp.get(TABLE + "/aggregate")
def aggregate(app: str, table: str) -> Response:
    store = store_for(app, table)
    groups = store.aggregate(
        group_by=list_arg("group_by"),
        metrics=list_arg("metrics") or ["count"],
        filter=filter_arg(),
        search=text_arg("q"),
    )
    fields = store.ts.fields

    def metric(name: str, value: Any) -> Any:
        op, _, slug = name.partition(":")
        return plain(value) if op in ("avg", "count") else field_json(fields.get(slug), value)

    return json_response(
        {
            "groups": [
                {
                    "values": {
                        slug: field_json(fields.get(slug), v) for slug, v in group.values.items()
                    },
                    "metrics": {name: metric(name, v) for name, v in group.metrics.items()},
                }
                for group in groups
            ]
        }
    )


@bp.get(TABLE + "/distinct/<field>")
def distinct(app: str, table: str, field: str) -> Response:
    store = store_for(app, table)
    values = store.distinct(
        field, filter=filter_arg(), search=text_arg("q"), limit=int_arg("limit", 100, 1, 1000)
    )
    f = store.ts.fields.get(field)
    return json_response(
        {"values": [{"value": field_json(f, value), "count": count} for value, count in values]}
    )


# --- dashboards --------------------------------------------------------------------------


@bp.get("/apps/<app>/dashboards/<view>")
def dashboard(app: str, view: str) -> Response:
    """Every chart of a dashboard view with its data, computed as the caller sees it.

    A chart the caller cannot compute is ``"available": false`` with a
    ``reason``; a view that is not a dashboard the caller can see is 404.
    """
    return json_response(dashboards.dashboard(engine(), actor(), app, view).as_json())


# --- automations -------------------------------------------------------------------------


@bp.get("/apps/<app>/automation-runs")
def automation_runs(app: str) -> Response:
    """Runs of the app's automations, newest first, on the tables the caller may build.

    As the run history page shows them (``automations.run_log``): ids, counts
    and the engine's messages, never a record's values. ``next_before`` pages
    on to older runs (``null`` on the last page).
    """
    limit = int_arg("limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    before = int_arg("before", 0, 1, 2**63 - 1) or None
    found = automations.run_log(
        engine(), actor(), app, table=text_arg("table"), automation=text_arg("automation"),
        status=text_arg("status"), before=before, limit=limit + 1,
    )  # fmt: skip
    shown = found[:limit]
    keys = ("id", "table", "automation", "label", "record_id", "trigger", "status", "error", "actions")
    return json_response(
        {
            "runs": [{**{k: r[k] for k in keys}, "created_at": r["created_at"].isoformat()} for r in shown],
            "next_before": shown[-1]["id"] if len(found) > limit else None,
        }
    )


# --- wiring ------------------------------------------------------------------------------


def caller_key() -> str:
    """The rate-limit key of the caller: its token (hashed), its session user, or its address."""
    secret = _bearer_secret()
    if secret:
        return "token:" + hashlib.sha256(secret.encode()).hexdigest()[:32]
    user = session.get("_user_id")
    if user:
        return f"user:{user}"
    return "ip:" + (request.remote_addr or "unknown")


def init_app(app: Flask) -> None:
    rate = config_value(app, "RECORDBASE_RATE_LIMIT", "600/minute")
    app.extensions["recordbase_api_limits"] = (
        parse_limit(rate), parse_limit(config_value(app, "RECORDBASE_RATE_LIMIT_IP", rate)))
    app.extensions["csrf"].exempt(
        bp
    )  # checked in authenticate(), for cookie-authenticated calls only
    app.register_blueprint(bp)
