"""The generated OpenAPI 3.1 document, a schemathesis run against it, and the ``/api/docs`` page.

The document is generated per request from the installed definitions, in the
caller's view: its record schemas carry each field's type, choices, format
and read-only flag, fields the caller may see masked allow a masked value,
hidden fields and tables the caller cannot use are absent. Schemathesis then
sends generated requests for every operation, as an administrator and as a
rep whose phone numbers are masked, and checks that nothing answers 5xx and
every response conforms to the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from access_defs import SYSTEM, Crm, seed
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase_web import create_app
from recordbase_web.docs import SWAGGER_UI
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

DEALS = "/api/v1/apps/crm/tables/deals"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    return seed(rb)


@pytest.fixture
def token(rb: Recordbase, crm: Crm) -> Callable[[str], str]:
    return lambda person: rb.create_token(SYSTEM, f"{person}@example.com")[1]


def document(client: FlaskClient, secret: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    response = client.get("/api/v1/openapi.json", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


# --- the document ------------------------------------------------------------------------------


def test_document_has_a_record_schema_per_table(
    client: FlaskClient, token: Callable[[str], str]
) -> None:
    doc = document(client, token("admin"))
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    schemas = doc["components"]["schemas"]
    assert {
        "crm.deals.Record",
        "crm.deals.Fields",
        "crm.deals.NewFields",
        "crm.companies.Record",
        "Problem",
    } <= set(schemas)
    fields = schemas["crm.deals.Fields"]["properties"]
    assert list(fields) == ["name", "region", "amount", "phone", "notes", "owner"]
    assert fields["region"]["enum"] == ["east", "west", None]
    assert fields["amount"]["format"] == "decimal"
    assert fields["name"]["title"] == "Name"
    record = schemas["crm.deals.Record"]
    assert record["properties"]["fields"] == {"$ref": "#/components/schemas/crm.deals.Fields"}
    assert record["properties"]["id"]["readOnly"] is True
    paths = doc["paths"]
    assert set(paths[f"{DEALS}/records"]) == {"get", "post"}
    assert set(paths[f"{DEALS}/records/{{id}}"]) == {"get", "patch", "delete"}
    for path in (
        "/records/{id}/reveal",
        "/records/{id}/history",
        "/records/export",
        "/records/import",
        "/aggregate",
        "/distinct/{field}",
    ):
        assert f"{DEALS}{path}" in paths
    assert "/api/v1/apps" in paths and "/api/v1/openapi.json" in paths
    listing = paths[f"{DEALS}/records"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {
        "filter",
        "sort",
        "q",
        "fields",
        "page_size",
        "cursor",
    }
    assert {"200", "400", "401", "403", "404", "422", "429"} <= set(listing["responses"])
    patch = paths[f"{DEALS}/records/{{id}}"]["patch"]
    assert {"409", "412", "415", "428"} <= set(patch["responses"])
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    problem = patch["responses"]["412"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    upload = paths[f"{DEALS}/records/import"]["post"]
    assert {p["name"] for p in upload["parameters"]} == {"mode", "map"}
    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "text/csv"}
    assert upload["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ImportReport"
    }
    assert {"403", "413", "415", "422"} <= set(upload["responses"])


def test_read_only_fields_and_required_fields(
    rb: Recordbase, client: FlaskClient, token: Callable[[str], str]
) -> None:
    definition = {
        "slug": "orders",
        "label": "Orders",
        "tables": [
            {
                "slug": "orders",
                "label": "Orders",
                "fields": [
                    {
                        "slug": "number",
                        "label": "No.",
                        "type": "autonumber",
                        "options": {"prefix": "ORD-", "digits": 4},
                    },
                    {"slug": "customer", "label": "Customer", "type": "text", "required": True},
                    {"slug": "due", "label": "Due", "type": "date"},
                    {"slug": "created", "label": "Created", "type": "created_at"},
                ],
            }
        ],
    }
    assert rb.install(definition, SYSTEM).applied
    schemas = document(client, token("admin"))["components"]["schemas"]
    fields = schemas["orders.orders.Fields"]["properties"]
    assert fields["number"]["readOnly"] is True and fields["created"]["readOnly"] is True
    assert fields["created"]["format"] == "date-time" and fields["due"]["format"] == "date"
    assert set(schemas["orders.orders.NewFields"]["properties"]) == {"customer", "due"}
    assert schemas["orders.orders.NewFields"]["required"] == ["customer"]


def test_document_is_the_callers_view(client: FlaskClient, token: Callable[[str], str]) -> None:
    rep = document(client, token("rep"))
    assert not any("/companies/" in path for path in rep["paths"])  # no grant on companies
    phone = rep["components"]["schemas"]["crm.deals.Fields"]["properties"]["phone"]
    assert phone["anyOf"][1]["description"].startswith("masked")
    assert rep["components"]["schemas"]["crm.deals.Fields"]["properties"]["name"]["type"] == [
        "string",
        "null",
    ]
    viewer = document(client, token("viewer"))
    assert "notes" not in viewer["components"]["schemas"]["crm.deals.Fields"]["properties"]
    anonymous = document(client, None)
    assert set(anonymous["paths"]) == {"/api/v1/apps", "/api/v1/openapi.json"}
    assert set(anonymous["components"]["schemas"]) == {"Problem"}
    assert document(client, token("stranger"))["paths"].keys() == anonymous["paths"].keys()
    response = client.get("/api/v1/openapi.json", headers={"Authorization": "Bearer rb_wrong"})
    assert response.status_code == 401


# --- schemathesis ----------------------------------------------------------------------------------


def _detail(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(_detail(e) for e in exc.exceptions)
    return str(exc)


def run_schemathesis(app: Flask, secret: str, examples: int, operations_expected: int) -> list[str]:
    """Every operation with ``examples`` generated cases; the failures, as text."""
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=headers)
    failures: list[str] = []
    operations = 0
    labels: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        labels.append(operation.label)

        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            exercise()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # every operation's failures, reported together
            failures.append(f"{operation.label}: {exc!r}\n{_detail(exc)}")
    assert operations == operations_expected, labels
    return failures


def test_schemathesis_finds_no_server_error_and_no_nonconforming_response(
    rb: Recordbase, crm: Crm, settings: Settings
) -> None:
    app = create_app(
        {"TESTING": True, "RECORDBASE_SETTINGS": settings, "RECORDBASE_RATE_LIMIT": "100000/minute"}
    )
    try:
        _, admin = rb.create_token(SYSTEM, "admin@example.com")
        _, rep = rb.create_token(SYSTEM, "rep@example.com")
        # GET /apps and 11 operations per table (schemathesis leaves out the document itself):
        # the admin's two tables, then the rep's deals, its phone masked.
        failures = run_schemathesis(app, admin, 10, 1 + 2 * 11) + run_schemathesis(
            app, rep, 5, 1 + 11
        )
    finally:
        app.extensions["recordbase"].dispose()
    assert not failures, "\n\n".join(failures)


# --- /api/docs --------------------------------------------------------------------------------------


@pytest.mark.skipif(
    not SWAGGER_UI.is_dir(), reason="front-end assets not installed: run 'make assets'"
)
def test_docs_page_serves_the_viewer_locally_without_inline_script(client: FlaskClient) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    html = response.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all(
        'src="/' in attrs and not body.strip() for attrs, body in scripts
    )  # no inline, no CDN
    assert "http://" not in html and "https://" not in html
    assert 'data-spec-url="/api/v1/openapi.json"' in html
    urls = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    types = {}
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        types[url.rsplit("/", 1)[-1]] = asset.mimetype
        asset.close()
    assert types["swagger-ui-bundle.js"] in ("text/javascript", "application/javascript")
    assert types["swagger-ui.css"] == "text/css"
    assert types["api-docs.js"] in ("text/javascript", "application/javascript")
    # Only the files the page needs are served out of node_modules.
    assert client.get("/api/docs/assets/package.json").status_code == 404
    assert client.get("/api/docs/assets/..%2Fpackage.json").status_code == 404
