"""The OpenAPI 3.1 document of ``/api/v1``, generated per request from the installed definitions.

Built with apispec. Each app table the caller can see gets its own paths
(``/api/v1/apps/crm/tables/deals/records`` …) and schemas, named
``<app>.<table>.<Schema>``:

- ``Fields``: a record's ``fields`` object as the API returns it, from the
  engine's ``record_json_schema`` — each field type's JSON Schema (types,
  ``enum`` of choice ids, ``format``), ``readOnly`` for system stamps and
  autonumbers — limited to the fields the caller may read. A field the caller
  may see masked (below a role's clearance) is ``anyOf`` its type and a
  masked value (text in the type's shape, e.g. ``+86 138****5678``).
- ``NewFields`` / ``ChangedFields``: what a create or update may send — the
  writable fields, with ``required`` for a create.
- ``Record``, ``Page``, ``CreateBody``, ``PatchBody``.

An app with dashboard views the caller may see also gets
``/api/v1/apps/<app>/dashboards/{view}``, answering a ``Dashboard``: every
chart's data as ``recordbase.dashboards`` computes it for the caller; one
with automations on tables the caller may build,
``/api/v1/apps/<app>/automation-runs`` (``AutomationRuns``).

The document is the caller's view, like ``Recordbase.schema_for``: an
anonymous request gets the generic part only (``/apps`` and this document),
so the document never tells a stranger which apps, tables or fields exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apispec import APISpec
from recordbase.access import OPERATIONS, Access
from recordbase.actor import Actor
from recordbase.automations import RUN_STATUSES, readable_tables
from recordbase.core import Recordbase
from recordbase.errors import NotFound, PermissionDenied
from recordbase.schema import TableSchema, record_json_schema
from werkzeug.http import HTTP_STATUS_CODES

MAX_RECORD_ID = 2**63 - 1
MASKED: dict[str, Any] = {
    "description": "masked: you may not read this value in clear (see reveal)",
    "type": ["string", "array"],
}
PROBLEM_JSON = "application/problem+json"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"sessionCookie": []}]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error (RFC 9457). `errors` points at each mistake in the input.",
    "required": ["status", "title", "detail", "errors"],
    "properties": {
        "status": {"type": "integer"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "pointer": {"type": "string", "description": "JSON pointer into the request"},
                    "field": {"type": "string"},
                    "row": {"type": "integer", "description": "An import's row (the header is row 1)"},
                    "column": {"type": "string", "description": "An import's column"},
                    "message": {"type": "string"},
                },
            },
        },
        "current": {
            "type": ["object", "null"],
            "description": "On 409/412: the record as it is now (as you may see it).",
        },
        "report": {
            "type": "object",
            "description": "On an import that wrote nothing: its report (see ImportReport).",
        },
    },
}

IMPORT_REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "What an import did. `problems` holds the first 1,000 of `problem_count`.",
    "required": ["mode", "committed", "created", "skipped", "rows", "problem_count", "problems"],
    "properties": {
        "mode": {"type": "string", "enum": ["atomic", "skip-invalid"]},
        "committed": {"type": "boolean", "description": "Whether the rows were written"},
        "created": {"type": "integer", "minimum": 0},
        "skipped": {"type": "integer", "minimum": 0, "description": "Rows with a problem"},
        "rows": {"type": "integer", "minimum": 0, "description": "Data rows read"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "ignored": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["column", "reason"],
                "properties": {"column": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "problem_count": {"type": "integer", "minimum": 0},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["row", "column", "message"],
                "properties": {
                    "row": {"type": "integer", "minimum": 1},
                    "column": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

LABEL_SCHEMA: dict[str, Any] = {
    "description": "text, or text per language: {\"en\": …, \"zh-CN\": …}",
    "type": ["string", "object"],
    "additionalProperties": {"type": "string"},
}
VALUE_SCHEMA: dict[str, Any] = {
    "description": "a count (integer), an exact decimal (string) or an ISO date; null when there is none",
    "type": ["integer", "string", "null"],
}
DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A dashboard view's charts, computed under your permissions (your rows, fields in clear).",
    "required": ["app", "view", "label", "table", "charts"],
    "properties": {
        "app": {"type": "string"},
        "view": {"type": "string"},
        "label": LABEL_SCHEMA,
        "table": {"type": "string", "description": "the view's table"},
        "charts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["slug", "label", "type", "table", "metric", "group_by", "available"],
                "properties": {
                    "slug": {"type": "string"},
                    "label": LABEL_SCHEMA,
                    "type": {"type": "string", "enum": ["number", "bar", "line", "pie"]},
                    "table": {"type": "string"},
                    "metric": {"type": "string", "description": "`count`, or `sum|avg|min|max:<field>`"},
                    "group_by": {"type": ["string", "null"]},
                    "available": {
                        "type": "boolean",
                        "description": "false: you cannot compute this chart (see `reason`); no numbers then",
                    },
                    "reason": {
                        "type": "string",
                        "enum": ["no_access", "not_clear", "invalid"],
                        "description": "`no_access`: you may not read its table; `not_clear`: it uses a field "
                        "you cannot read in clear; `invalid`: the engine refused it (see `message`)",
                    },
                    "message": {"type": "string"},
                    "value_kind": {
                        "type": "string",
                        "description": "`count`, or the metric field's kind: number, currency, percent, rating, date…",
                    },
                    "currency": {"type": ["string", "null"], "description": "ISO 4217, for a currency metric"},
                    "metric_label": {**LABEL_SCHEMA, "type": ["string", "object", "null"]},
                    "value": {**VALUE_SCHEMA, "description": "number cards: the one value"},
                    "group_kind": {
                        "type": "string",
                        "enum": ["choice", "link", "user", "bucket", "date", "datetime", "boolean", "value"],
                    },
                    "bucket": {"type": ["string", "null"], "enum": ["day", "week", "month", "quarter", "year", None]},
                    "group_label": LABEL_SCHEMA,
                    "points": {
                        "type": "array",
                        "description": "bar, line and pie charts: one point per group, in the field's order",
                        "items": {
                            "type": "object",
                            "required": ["key", "label", "value"],
                            "properties": {
                                "key": {
                                    "description": "the group's value: choice id, record or user id, bucket "
                                    "label (2026-11, 2026-Q4), …; null for records without one",
                                },
                                "label": {
                                    **LABEL_SCHEMA,
                                    "type": ["string", "object", "null"],
                                    "description": "what to call the group; null when empty or not yours to see",
                                },
                                "value": VALUE_SCHEMA,
                            },
                        },
                    },
                },
            },
        },
    },
}


def operations_of(access: Access) -> set[str]:
    """What the caller may do with a table: every operation some role of its grants."""
    if access.full:
        return set(OPERATIONS)
    return {op for role in access.roles for op in role.operations}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def problems(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": HTTP_STATUS_CODES.get(code, "Error"),
            "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
        }
        for code in codes
    }


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(schema)}}}


def _query(name: str, schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": dict(schema),
        "description": description,
    }


# Every authenticated operation may meet these; each operation adds its own.
COMMON = (400, 401, 403, 404, 422, 429)

PARAMETERS = {
    "filter": _query(
        "filter",
        {"type": "string"},
        "The filter tree as JSON, URL-encoded: "
        '{"field": "stage", "op": "eq", "value": "won"}, combined with "and"/"or"/"not".',
    ),
    "sort": _query(
        "sort",
        {"type": "string"},
        "Comma-separated field slugs, `-` for descending: `-amount,name`.",
    ),
    "q": _query(
        "q",
        {"type": "string"},
        "Full-text search (substring match on the text fields you read in clear).",
    ),
    "fields": _query(
        "fields",
        {"type": "string"},
        "Comma-separated field slugs to return (default: all you may read).",
    ),
    "page_size": _query(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        "Records per page.",
    ),
    "cursor": _query("cursor", {"type": "string"}, "`next_cursor` of the previous page."),
    "format": _query(
        "format",
        {"type": "string", "enum": ["csv", "json", "xlsx"], "default": "csv"},
        "File format.",
    ),
    "group_by": _query(
        "group_by", {"type": "string"}, "Comma-separated fields to group by (at most 3)."
    ),
    "metrics": _query(
        "metrics",
        {"type": "string", "default": "count"},
        "Comma-separated metrics: `count`, or `sum|avg|min|max|filled|empty|distinct:<field>`.",
    ),
    "mode": _query(
        "mode",
        {"type": "string", "enum": ["atomic", "skip-invalid"], "default": "atomic"},
        "`atomic`: nothing is written unless every row is valid; "
        "`skip-invalid`: the valid rows are created, the others reported.",
    ),
    "map": {
        **_query(
            "map",
            {"type": "array", "items": {"type": "string"}},
            "`Column=field` (repeatable): the field a column fills; `Column=` ignores it. "
            "Columns are otherwise matched by field slug or label.",
        ),
        "style": "form",
        "explode": True,
    },
    "limit": _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
        "At most this many values.",
    ),
    "id": {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The record id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RECORD_ID},
    },
    "if_match": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": 'The version you last saw, as the record\'s ETag gives it: `"3"`.',
        "schema": {"type": "string"},
    },
}
ETAG = {
    "ETag": {
        "description": 'The record\'s version: `"3"`; send it back in If-Match.',
        "schema": {"type": "string"},
    }
}


def _params(*names: str) -> list[dict[str, Any]]:
    return [PARAMETERS[name] for name in names]


def _text(label: Any) -> str:
    if isinstance(label, Mapping):
        return str(label.get("en") or next(iter(label.values()), ""))
    return str(label)


# --- one table ------------------------------------------------------------------------------


def _table_schemas(
    spec: APISpec, prefix: str, ts: TableSchema, visible: set[str], access: Access
) -> None:
    base = record_json_schema(ts)
    shown: dict[str, Any] = {}
    writable: dict[str, Any] = {}
    for slug, fragment in base["properties"].items():
        if slug not in visible:
            continue
        f = ts.fields[slug]
        if access.clear_everywhere(f):
            shown[slug] = fragment
        else:
            typed = {k: v for k, v in fragment.items() if k not in ("title", "description")}
            shown[slug] = {"title": fragment["title"], "anyOf": [typed, MASKED]}
        if not fragment.get("readOnly"):
            writable[slug] = fragment
    title = _text(ts.label)
    spec.components.schema(
        f"{prefix}.Fields",
        {
            "type": "object",
            "title": f"{title}: fields",
            "properties": shown,
            "additionalProperties": False,
        },
    )
    spec.components.schema(
        f"{prefix}.NewFields",
        {
            "type": "object",
            "title": f"{title}: a new record's fields",
            "properties": writable,
            "required": [slug for slug in base["required"] if slug in writable],
            "additionalProperties": False,
        },
    )
    spec.components.schema(
        f"{prefix}.ChangedFields",
        {
            "type": "object",
            "title": f"{title}: changed fields",
            "properties": writable,
            "additionalProperties": False,
        },
    )
    stamp = {"type": "string", "format": "date-time", "readOnly": True}
    author = {"type": ["integer", "null"], "readOnly": True}
    spec.components.schema(
        f"{prefix}.Record",
        {
            "type": "object",
            "title": title,
            "required": ["id", "fields", "version", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer", "minimum": 1, "readOnly": True},
                "fields": _ref(f"{prefix}.Fields"),
                "version": {"type": "integer", "minimum": 1, "readOnly": True},
                "created_at": stamp,
                "updated_at": stamp,
                "created_by": author,
                "updated_by": author,
            },
            "additionalProperties": False,
        },
    )
    spec.components.schema(
        f"{prefix}.Page",
        {
            "type": "object",
            "required": ["records", "next_cursor", "total"],
            "properties": {
                "records": {"type": "array", "items": _ref(f"{prefix}.Record")},
                "next_cursor": {"type": ["string", "null"]},
                "total": {"type": ["integer", "null"]},
            },
            "additionalProperties": False,
        },
    )
    one = {
        "type": "object",
        "required": ["fields"],
        "properties": {"fields": _ref(f"{prefix}.NewFields")},
        "additionalProperties": False,
    }
    spec.components.schema(
        f"{prefix}.CreateBody",
        {
            "oneOf": [
                one,
                {
                    "type": "object",
                    "required": ["records"],
                    "additionalProperties": False,
                    "properties": {"records": {"type": "array", "maxItems": 1000, "items": one}},
                },
            ]
        },
    )
    spec.components.schema(
        f"{prefix}.PatchBody",
        {
            "type": "object",
            "required": ["fields"],
            "additionalProperties": False,
            "properties": {
                "fields": _ref(f"{prefix}.ChangedFields"),
                "version": {"type": "integer", "minimum": 1, "description": "instead of If-Match"},
            },
        },
    )


def _table_paths(spec: APISpec, app: str, ts: TableSchema, visible: list[str]) -> None:
    prefix = f"{app}.{ts.slug}"
    base = f"/api/v1/apps/{app}/tables/{ts.slug}"
    tag = f"{app}.{ts.slug}"
    record = _ref(f"{prefix}.Record")
    slugs: dict[str, Any] = {"enum": visible} if visible else {}

    def op(summary: str, responses: dict[str, Any], *codes: int, **more: Any) -> dict[str, Any]:
        return {
            "tags": [tag],
            "summary": summary,
            "operationId": f"{prefix}.{more.pop('name')}",
            "security": BEARER,
            "responses": {**responses, **problems(*sorted(set(COMMON) | set(codes)))},
            **more,
        }

    spec.path(
        path=f"{base}/records",
        operations={
            "get": op(
                "List records",
                {"200": _json(_ref(f"{prefix}.Page"), "A page of records")},
                name="list",
                parameters=_params("filter", "sort", "q", "fields", "page_size", "cursor"),
            ),
            "post": op(
                "Create one record, or up to 1,000 atomically",
                {
                    "201": {
                        **_json(
                            {
                                "oneOf": [
                                    record,
                                    {
                                        "type": "object",
                                        "required": ["records"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "records": {"type": "array", "items": record}
                                        },
                                    },
                                ]
                            },
                            "The created record(s)",
                        )
                    }
                },
                409,
                413,
                415,
                name="create",
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref(f"{prefix}.CreateBody")}},
                },
            ),
        },
    )
    spec.path(
        path=f"{base}/records/{{id}}",
        operations={
            "get": op(
                "Get a record",
                {"200": {**_json(record, "The record"), "headers": ETAG}},
                name="get",
                parameters=_params("id", "fields"),
            ),
            "patch": op(
                "Change some fields (optimistic: If-Match or version)",
                {"200": {**_json(record, "The record as changed"), "headers": ETAG}},
                409,
                412,
                413,
                415,
                428,
                name="update",
                parameters=_params("id", "if_match"),
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref(f"{prefix}.PatchBody")}},
                },
            ),
            "delete": op(
                "Delete a record (to the trash)",
                {"204": {"description": "Deleted"}},
                409,
                name="delete",
                parameters=_params("id"),
            ),
        },
    )
    spec.path(
        path=f"{base}/records/{{id}}/reveal",
        operations={
            "post": op(
                "Reveal one masked value, with a reason (audited)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["field", "value"],
                            "properties": {"field": {"type": "string"}, "value": {}},
                        },
                        "The value in clear",
                    )
                },
                413,
                415,
                name="reveal",
                parameters=_params("id"),
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["field", "reason"],
                                "additionalProperties": False,
                                "properties": {
                                    "field": {"type": "string", **slugs},
                                    "reason": {"type": "string", "minLength": 5},
                                },
                            }
                        }
                    },
                },
            ),
        },
    )
    spec.path(
        path=f"{base}/records/{{id}}/history",
        operations={
            "get": op(
                "The record's history, as you may see it",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["history"],
                            "properties": {
                                "history": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["at", "actor", "action", "fields", "details"],
                                        "properties": {
                                            "at": {"type": "string", "format": "date-time"},
                                            "actor": {"type": "string"},
                                            "action": {"type": "string"},
                                            "fields": {
                                                "type": "object",
                                                "description": "slug: [before, after]",
                                                "additionalProperties": {
                                                    "type": "array",
                                                    "minItems": 2,
                                                    "maxItems": 2,
                                                },
                                            },
                                            "details": {"type": "object"},
                                        },
                                    },
                                }
                            },
                        },
                        "Changes, oldest first",
                    )
                },
                name="history",
                parameters=_params("id"),
            ),
        },
    )
    spec.path(
        path=f"{base}/records/export",
        operations={
            "get": op(
                "Export the records (streamed, audited)",
                {
                    "200": {
                        "description": "The file",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "array", "items": record}},
                            XLSX: {
                                "schema": {"type": "string", "contentEncoding": "binary"}
                            },
                        },
                    }
                },
                name="export",
                parameters=_params("format", "filter", "sort", "q", "fields"),
            ),
        },
    )
    spec.path(
        path=f"{base}/records/import",
        operations={
            "post": op(
                "Import records from a CSV or XLSX file (needs import and create)",
                {"200": _json(_ref("ImportReport"), "Something was imported: the report")},
                413,
                415,
                name="import",
                description="The file as the multipart part `file` (`.csv` or `.xlsx`), or CSV "
                "as a `text/csv` body. Rows are numbered as in the file (the header is row 1). "
                "When nothing was written (an atomic import with a bad row, a header that does "
                "not fit), the answer is 422 with each problem's row and column in `errors`.",
                parameters=_params("mode", "map"),
                requestBody={
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            },
                            "encoding": {"file": {"contentType": f"text/csv, {XLSX}"}},
                        },
                        "text/csv": {
                            "schema": {"type": "string"},
                            **({"example": ",".join(visible) + "\n"} if visible else {}),
                        },
                    },
                },
            ),
        },
    )
    spec.path(
        path=f"{base}/aggregate",
        operations={
            "get": op(
                "Metrics per group",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["groups"],
                            "properties": {
                                "groups": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["values", "metrics"],
                                        "properties": {
                                            "values": {"type": "object"},
                                            "metrics": {"type": "object"},
                                        },
                                    },
                                }
                            },
                        },
                        "The groups",
                    )
                },
                name="aggregate",
                parameters=_params("group_by", "metrics", "filter", "q"),
            ),
        },
    )
    spec.path(
        path=f"{base}/distinct/{{field}}",
        operations={
            "get": op(
                "Distinct values of a field, most frequent first",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["values"],
                            "properties": {
                                "values": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["value", "count"],
                                        "properties": {
                                            "value": {},
                                            "count": {"type": "integer", "minimum": 0},
                                        },
                                    },
                                }
                            },
                        },
                        "Values and counts",
                    )
                },
                name="distinct",
                parameters=[
                    {
                        "name": "field",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", **slugs},
                    },
                    *_params("filter", "q", "limit"),
                ],
            ),
        },
    )


def _dashboard_path(spec: APISpec, app: str, definition: Mapping[str, Any]) -> None:
    """``/apps/<app>/dashboards/{view}`` when the app has dashboard views the caller may see."""
    views = [v["slug"] for v in definition.get("views") or [] if v.get("type") == "dashboard"]
    if not views:
        return
    spec.path(
        path=f"/api/v1/apps/{app}/dashboards/{{view}}",
        operations={
            "get": {
                "tags": [app],
                "summary": "A dashboard's charts with their data, as you see them",
                "operationId": f"{app}.dashboard",
                "security": BEARER,
                "parameters": [
                    {
                        "name": "view",
                        "in": "path",
                        "required": True,
                        "description": "The dashboard view's slug.",
                        "schema": {"type": "string", "enum": views},
                    }
                ],
                "responses": {
                    "200": _json(_ref("Dashboard"), "The dashboard"),
                    **problems(401, 404, 429),
                },
            }
        },
    )


AUTOMATION_RUNS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Runs of an app's automations, newest first: ids, counts and messages, never a record's values.",
    "required": ["runs", "next_before"],
    "properties": {
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "table", "automation", "label", "record_id", "trigger", "status", "error",
                             "actions", "created_at"],
                "properties": {
                    "id": {"type": "integer"},
                    "table": {"type": "string"},
                    "automation": {"type": "string", "description": "the automation's slug"},
                    "label": {**LABEL_SCHEMA, "type": ["string", "object", "null"],
                              "description": "as defined now; null when the automation was removed since"},
                    "record_id": {"type": ["integer", "null"]},
                    "trigger": {"type": "string", "enum": ["created", "updated", "date", "form"]},
                    "status": {"type": "string", "enum": ["done", "failed", "stopped"]},
                    "error": {"type": ["string", "null"]},
                    "actions": {
                        "type": "array",
                        "description": 'what each action did: {"action": index, "do": kind, …ids and counts}',
                        "items": {"type": "object"},
                    },
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "next_before": {"type": ["integer", "null"], "description": "`before` for the next, older page"},
    },
}  # fmt: skip


def _automation_runs_path(spec: APISpec, rb: Recordbase, actor: Actor, app: str) -> None:
    """``/apps/<app>/automation-runs`` when the caller may read runs of tables that have automations."""
    try:
        tables = [ts.slug for ts in readable_tables(rb, actor, app) if ts.definition.get("automations")]
    except (NotFound, PermissionDenied):
        return
    if not tables:
        return
    spec.path(
        path=f"/api/v1/apps/{app}/automation-runs",
        operations={
            "get": {
                "tags": [app],
                "summary": "What the app's automations did, newest first (their builders only)",
                "operationId": f"{app}.automation_runs",
                "security": BEARER,
                "parameters": [
                    _query("table", {"type": "string", "enum": tables}, "Only this table's automations."),
                    _query("automation", {"type": "string"}, "Only this automation's runs (its slug)."),
                    _query("status", {"type": "string", "enum": list(RUN_STATUSES)}, "Only runs that ended so."),
                    _query("before", {"type": "integer", "minimum": 1}, "`next_before` of the previous page."),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Runs per page."),
                ],
                "responses": {
                    "200": _json(_ref("AutomationRuns"), "The runs"),
                    **problems(400, 401, 403, 404, 429),
                },
            }
        },
    )


# --- the document ---------------------------------------------------------------------------


def build_document(rb: Recordbase, actor: Actor | None) -> dict[str, Any]:
    spec = APISpec(
        title="Recordbase API",
        version="1",
        openapi_version="3.1.0",
        info={
            "description": "Records of the installed apps, under the caller's permissions. "
            "Errors are application/problem+json. This document is the caller's view: fetched "
            "with a token (or signed in), it lists the tables that token's user may use."
        },
    )
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token: `recordbase tokens create EMAIL`.",
        },
    )
    spec.components.security_scheme(
        "sessionCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "session",
            "description": "A signed-in page's session; state-changing calls also need the X-CSRFToken header.",
        },
    )
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    spec.path(
        path="/api/v1/apps",
        operations={
            "get": {
                "summary": "The apps and tables you can see",
                "operationId": "apps",
                "security": BEARER,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["apps"],
                            "properties": {
                                "apps": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["slug", "tables"],
                                        "properties": {
                                            "slug": {"type": "string"},
                                            "tables": {
                                                "type": "array",
                                                "items": {"type": "object"},
                                            },
                                        },
                                    },
                                }
                            },
                        },
                        "Apps",
                    ),
                    **problems(401, 429),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/openapi.json",
        operations={
            "get": {
                "summary": "This document (your view of it)",
                "operationId": "openapi",
                "security": [{}, *BEARER],
                "responses": {
                    "200": _json({"type": "object"}, "OpenAPI 3.1"),
                    **problems(401, 429),
                },
            }
        },
    )
    if actor is not None:
        spec.components.schema("ImportReport", IMPORT_REPORT_SCHEMA)
        spec.components.schema("Dashboard", DASHBOARD_SCHEMA)
        spec.components.schema("AutomationRuns", AUTOMATION_RUNS_SCHEMA)
        for app in rb.apps_for(actor):
            definition = rb.schema_for(actor, app)
            schema = rb.app(app)
            for tdef in definition["tables"]:
                ts = schema.tables[tdef["slug"]]
                visible = [f["slug"] for f in tdef["fields"]]
                access = rb.records(actor, app, ts.slug).access
                _table_schemas(spec, f"{app}.{ts.slug}", ts, set(visible), access)
                _table_paths(spec, app, ts, visible)
            _dashboard_path(spec, app, definition)
            _automation_runs_path(spec, rb, actor, app)
    document = spec.to_dict()
    document["security"] = BEARER
    return document
