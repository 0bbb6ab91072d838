"""The REST API (``/api/v1``): every endpoint and error code of the contract, on both databases.

Callers are the seeded CRM's people (``access_defs``), each with a personal
access token, so the access-control leak tests run again through HTTP: a rep
sees its own deals with the phone masked, a deal outside its rows is a 404
identical to a missing one, filtering by a masked field is a 400 naming it,
hidden fields are absent.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from access_defs import DEALS_PERMISSIONS, PHONES, SYSTEM, VISIBLE, Crm, crm_definition, seed
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase_web import create_app
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

PROBLEM_JSON = "application/problem+json"
DEALS = "/api/v1/apps/crm/tables/deals"
COMPANIES = "/api/v1/apps/crm/tables/companies"

Call = Callable[..., TestResponse]


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    return seed(rb)


@pytest.fixture
def token(rb: Recordbase, crm: Crm) -> Callable[[str], str]:
    """A personal access token per person, made on first use."""
    made: dict[str, str] = {}

    def for_person(person: str) -> str:
        if person not in made:
            made[person] = rb.create_token(
                SYSTEM, f"{person}@example.com", name=f"{person}'s token"
            )[1]
        return made[person]

    return for_person


@pytest.fixture
def call(client: FlaskClient, token: Callable[[str], str]) -> Call:
    """``call(method, path, person, **kwargs)``: a request with that person's bearer token."""

    def request(
        method: str, path: str, person: str | None = "admin", **kwargs: Any
    ) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}) or {})
        if person is not None:
            headers["Authorization"] = f"Bearer {token(person)}"
        return client.open(path, method=method, headers=headers, **kwargs)

    return request


def problem(response: TestResponse, status: int) -> dict[str, Any]:
    """The problem+json body of an error response, checked for shape and for leaks."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["status"] == status and body["title"] and isinstance(body["detail"], str)
    assert isinstance(body["errors"], list)
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "SELECT", "sqlalchemy", "psycopg", "sqlite3"):
        assert leak not in text
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in body["errors"]]


def ids(response: TestResponse) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r["id"] for r in response.get_json()["records"]]


def filter_param(tree: Any) -> dict[str, str]:
    return {"filter": json.dumps(tree)}


# --- authentication -------------------------------------------------------------------------


def test_no_credentials_is_401_with_a_bearer_challenge(client: FlaskClient, crm: Crm) -> None:
    for path in ("/api/v1/apps", f"{DEALS}/records", f"{DEALS}/records/1"):
        response = client.get(path)
        body = problem(response, 401)
        assert "Bearer" in body["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = client.post(f"{DEALS}/records", json={"fields": {"name": "x"}})
    problem(response, 401)
    assert crm.deals().count() == 5


@pytest.mark.parametrize(
    "header", ["Bearer rb_not-a-real-token", "Bearer ", "Basic YWRtaW46cGFzcw==", "rb_abc"]
)
def test_a_token_that_does_not_work_is_401(client: FlaskClient, crm: Crm, header: str) -> None:
    response = client.get("/api/v1/apps", headers={"Authorization": header})
    problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoked_token_is_401_and_every_use_is_audited(
    rb: Recordbase, client: FlaskClient, crm: Crm
) -> None:
    token_id, secret = rb.create_token(SYSTEM, "rep@example.com")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/apps", headers=headers).status_code == 200
    rb.revoke_token(SYSTEM, token_id)
    problem(client.get("/api/v1/apps", headers=headers), 401)
    actions = [
        e["action"] for e in rb.audit_entries() if (e["changes"] or {}).get("token_id") == token_id
    ]
    assert actions[-3:] == ["token_use", "token_revoke", "token_rejected"]


def test_a_token_use_is_audited_in_the_write_it_opens_or_before_the_answer(
    rb: Recordbase, client: FlaskClient, crm: Crm
) -> None:
    token_id, secret = rb.create_token(SYSTEM, "admin@example.com")
    headers = {"Authorization": f"Bearer {secret}"}

    def since(mark: int) -> list[tuple[str, int | None]]:
        return [(e["action"], (e["changes"] or {}).get("token_id")) for e in rb.audit_entries(after_id=mark)]

    mark = rb.audit_entries(newest_first=True, limit=1)[0]["id"]
    made = client.post(f"{DEALS}/records", json={"fields": {"name": "Audited"}}, headers=headers)
    assert made.status_code == 201
    assert since(mark) == [("token_use", token_id), ("create", None)]  # one transaction, use first

    mark = rb.audit_entries(newest_first=True, limit=1)[0]["id"]
    problem(client.post(f"{DEALS}/records", json={"fields": {"nope": 1}}, headers=headers), 422)
    assert since(mark) == [("token_use", token_id)]  # the refused write rolled back; the use was not lost
    assert client.get(f"{DEALS}/records/{made.get_json()['id']}", headers=headers).status_code == 200
    assert since(mark) == [("token_use", token_id)] * 2  # a read writes its use alone
    assert rb.discard_deferred() == 0  # nothing left behind for the next request


def test_deactivated_user_is_401_at_the_next_request(rb: Recordbase, call: Call) -> None:
    assert ids(call("GET", f"{DEALS}/records", "rep")) == VISIBLE["rep"]
    rb.set_active(SYSTEM, "rep@example.com", False)
    problem(call("GET", f"{DEALS}/records", "rep"), 401)
    rb.set_active(SYSTEM, "rep@example.com", True)
    assert ids(call("GET", f"{DEALS}/records", "rep")) == VISIBLE["rep"]


def test_token_limited_to_an_app_opens_only_that_app(
    rb: Recordbase, client: FlaskClient, crm: Crm
) -> None:
    other = {
        "slug": "notes",
        "label": "Notes",
        "roles": [{"slug": "member", "label": "Member"}],
        "tables": [
            {
                "slug": "notes",
                "label": "Notes",
                "fields": [{"slug": "text", "label": "Text", "type": "text"}],
                "permissions": {"member": {"read": True}},
            }
        ],
    }
    assert rb.install(other, SYSTEM).applied
    rb.set_roles(SYSTEM, "manager@example.com", "notes", ["member"])
    _, scoped = rb.create_token(SYSTEM, "manager@example.com", apps=["notes"])
    headers = {"Authorization": f"Bearer {scoped}"}
    assert [a["slug"] for a in client.get("/api/v1/apps", headers=headers).get_json()["apps"]] == [
        "notes"
    ]
    assert client.get("/api/v1/apps/notes/tables/notes/records", headers=headers).status_code == 200
    missing = problem(client.get("/api/v1/apps/nope/tables/deals/records", headers=headers), 404)
    outside = problem(client.get(f"{DEALS}/records", headers=headers), 404)
    assert outside["detail"] == missing["detail"].replace('"nope"', '"crm"')


# --- session cookies and CSRF ------------------------------------------------------------------


def sign_in(client: FlaskClient, crm: Crm, person: str) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = str(crm.user_id(person))


def test_signed_in_page_user_calls_the_api_with_its_cookie(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    response = client.get(f"{DEALS}/records")
    assert ids(response) == VISIBLE["rep"]
    assert response.headers["X-CSRFToken"]
    assert response.get_json()["records"][0]["fields"]["phone"] == "+86 138****5678"


def test_cookie_authenticated_writes_need_the_csrf_token(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    csrf = client.get("/api/v1/apps").headers["X-CSRFToken"]
    body = problem(client.post(f"{DEALS}/records", json={"fields": {"name": "No token"}}), 403)
    assert "CSRF" in body["detail"]
    problem(
        client.post(
            f"{DEALS}/records",
            json={"fields": {"name": "Wrong"}},
            headers={"X-CSRFToken": "forged"},
        ),
        403,
    )
    assert crm.deals().count() == 5
    response = client.post(
        f"{DEALS}/records", json={"fields": {"name": "With token"}}, headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["fields"]["owner"] == crm.user_id("rep")


def test_bearer_requests_need_no_csrf_token(call: Call) -> None:
    assert (
        call("POST", f"{DEALS}/records", "rep", json={"fields": {"name": "Scripted"}}).status_code
        == 201
    )


def test_deactivated_session_user_is_401_at_the_next_request(
    rb: Recordbase, client: FlaskClient, crm: Crm
) -> None:
    sign_in(client, crm, "viewer")
    assert client.get(f"{DEALS}/records").status_code == 200
    rb.set_active(SYSTEM, "viewer@example.com", False)
    problem(client.get(f"{DEALS}/records"), 401)


# --- GET /apps ----------------------------------------------------------------------------------


def test_apps_lists_the_apps_and_tables_the_caller_sees(call: Call) -> None:
    admin = call("GET", "/api/v1/apps").get_json()["apps"]
    assert [(a["slug"], [t["slug"] for t in a["tables"]]) for a in admin] == [
        ("crm", ["deals", "companies"])
    ]
    assert "delete" in admin[0]["tables"][0]["operations"]
    rep = call("GET", "/api/v1/apps", "rep").get_json()["apps"]
    assert [t["slug"] for t in rep[0]["tables"]] == ["deals"]  # no grant on companies
    assert rep[0]["tables"][0]["operations"] == ["create", "read", "update"]
    assert [r["slug"] for r in rep[0]["roles"]] == ["rep"]
    viewer = call("GET", "/api/v1/apps", "viewer").get_json()["apps"]
    assert "notes" not in [f["slug"] for f in viewer[0]["tables"][0]["fields"]]
    assert call("GET", "/api/v1/apps", "stranger").get_json() == {"apps": []}


# --- listing ------------------------------------------------------------------------------------


def test_list_shape_and_what_each_person_sees(call: Call) -> None:
    response = call("GET", f"{DEALS}/records", "rep")
    body = response.get_json()
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert body["total"] == 2 and body["next_cursor"] is None
    first = body["records"][0]
    assert set(first) == {
        "id",
        "fields",
        "version",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    }
    assert first["fields"] == {
        "name": "Acme",
        "region": "east",
        "amount": "100.00",
        "phone": "+86 138****5678",
        "notes": "call after lunch",
        "owner": first["fields"]["owner"],
    }
    for person in ("manager", "west_manager", "other_rep", "viewer", "dual", "admin"):
        assert ids(call("GET", f"{DEALS}/records", person)) == VISIBLE[person], person
    manager = call("GET", f"{DEALS}/records", "manager").get_json()["records"]
    assert manager[0]["fields"]["phone"] == PHONES[1]  # personal clearance: in clear
    viewer = call("GET", f"{DEALS}/records", "viewer").get_json()["records"]
    assert all("notes" not in r["fields"] for r in viewer)  # hidden: absent, not empty
    assert all(
        r["fields"].get("phone")
        in (None, "+86 138****5678", "+86 139****1111", "+86 137****2222", "+86 136****3333")
        for r in viewer
    )


def test_filter_sort_search_fields_page_size_and_cursor(call: Call) -> None:
    query = {
        **filter_param({"field": "amount", "op": "gte", "value": 200}),
        "sort": "-amount,name",
        "page_size": "2",
        "fields": "name,amount",
    }
    first = call("GET", f"{DEALS}/records", query_string=query).get_json()
    assert [r["id"] for r in first["records"]] == [5, 4]
    assert first["total"] == 4 and first["next_cursor"]
    assert set(first["records"][0]["fields"]) == {"name", "amount"}
    second = call(
        "GET", f"{DEALS}/records", query_string={**query, "cursor": first["next_cursor"]}
    ).get_json()
    assert [r["id"] for r in second["records"]] == [3, 2] and second["next_cursor"] is None
    assert ids(call("GET", f"{DEALS}/records", query_string={"q": "zebra"})) == [3]
    assert len(call("GET", f"{DEALS}/records").get_json()["records"]) == 5  # default page size 50


def test_filtering_or_sorting_by_a_masked_field_is_400_naming_it(call: Call) -> None:
    body = problem(
        call(
            "GET",
            f"{DEALS}/records",
            "rep",
            query_string=filter_param({"field": "phone", "op": "eq", "value": PHONES[1]}),
        ),
        400,
    )
    assert "phone" in body["detail"] and pointers(body) == ["/filter/field"]
    body = problem(call("GET", f"{DEALS}/records", "rep", query_string={"sort": "phone"}), 400)
    assert "phone" in body["detail"]
    body = problem(
        call(
            "GET",
            f"{DEALS}/records",
            "viewer",
            query_string=filter_param({"field": "notes", "op": "contains", "value": "zebra"}),
        ),
        400,
    )
    assert "notes" in body["detail"]


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ({"filter": "{not json"}, "/filter"),
        ({"filter": json.dumps({"field": "nope", "op": "eq", "value": 1})}, "/filter/field"),
        ({"filter": json.dumps({"field": "amount", "op": "like", "value": 1})}, "/filter/op"),
        ({"page_size": "501"}, "/page_size"),
        ({"page_size": "0"}, "/page_size"),
        ({"page_size": "ten"}, "/page_size"),
        ({"cursor": "garbage!"}, "/cursor"),
        ({"sort": "nope"}, "/sort/0"),
        ({"fields": "name,nope"}, "/fields/1"),
    ],
)
def test_bad_query_parameters_are_400_with_a_pointer(
    call: Call, query: dict[str, str], pointer: str
) -> None:
    assert pointers(problem(call("GET", f"{DEALS}/records", query_string=query), 400)) == [pointer]


def test_a_table_without_any_grant_is_403_to_list_and_404_by_id(call: Call) -> None:
    problem(call("GET", f"{COMPANIES}/records", "rep"), 403)
    assert (
        problem(call("GET", f"{COMPANIES}/records/1", "rep"), 404)["detail"]
        == 'no record 1 in "companies"'
    )


def test_unknown_app_or_table_is_404(call: Call) -> None:
    problem(call("GET", "/api/v1/apps/nope/tables/deals/records"), 404)
    problem(call("GET", "/api/v1/apps/crm/tables/nope/records"), 404)
    assert (
        problem(call("GET", f"{DEALS}/records", "stranger"), 404)["detail"]
        == 'no app "crm" is installed'
    )


# --- one record: a record outside the caller's rows is a missing record ---------------------------


def test_get_record_with_etag_and_projection(call: Call) -> None:
    response = call("GET", f"{DEALS}/records/3", "rep")
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.get_json()["fields"]["phone"] == "+86 137****2222"
    projected = call("GET", f"{DEALS}/records/3", "rep", query_string={"fields": "name"}).get_json()
    assert projected["fields"] == {"name": "Cedar"}


def test_a_record_outside_the_rows_is_a_404_identical_to_a_missing_one(
    rb: Recordbase, crm: Crm, call: Call
) -> None:
    """For every verb: what the rep gets for deal 2 (someone else's) equals what it gets once deal 2 is gone."""
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{DEALS}/records/2", {}),
        ("PATCH", f"{DEALS}/records/2", {"json": {"fields": {"name": "mine now"}, "version": 1}}),
        ("DELETE", f"{DEALS}/records/2", {}),
        ("GET", f"{DEALS}/records/2/history", {}),
    ]
    before = [call(method, path, "rep", **kw) for method, path, kw in requests]
    crm.deals().delete(2)
    crm.deals().purge(2)
    after = [call(method, path, "rep", **kw) for method, path, kw in requests]
    for (method, _, _), hidden, missing in zip(requests, before, after, strict=True):
        if method == "DELETE":  # the rep may not delete at all: refused before any row is looked at
            assert hidden.status_code == missing.status_code == 403
            continue
        problem(hidden, 404)
        assert (hidden.status_code, hidden.headers["Content-Type"], hidden.get_data()) == (
            missing.status_code,
            missing.headers["Content-Type"],
            missing.get_data(),
        ), method


def test_ids_beyond_the_database_range_are_404_not_500(call: Call) -> None:
    huge = 2**63
    for method in ("GET", "DELETE"):
        assert (
            problem(call(method, f"{DEALS}/records/{huge}"), 404)["detail"]
            == f'no record {huge} in "deals"'
        )
    problem(call("GET", f"{DEALS}/records/{10**30}/history"), 404)


# --- create --------------------------------------------------------------------------------------


def test_create_one_record(call: Call, crm: Crm) -> None:
    response = call(
        "POST",
        f"{DEALS}/records",
        "rep",
        json={"fields": {"name": "Fir", "region": "East", "phone": "13812345678"}},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["fields"]["region"] == "east"  # a choice by label in, its id out
    assert (
        body["fields"]["phone"] == "+86 138****5678"
    )  # created records come back as the rep reads them
    assert body["fields"]["owner"] == crm.user_id("rep") and body["version"] == 1
    assert response.headers["Location"].endswith(f"{DEALS}/records/{body['id']}")
    assert response.headers["ETag"] == '"1"'
    assert crm.deals().get(body["id"]).fields["phone"] == PHONES[1]


def test_create_a_batch_atomically(call: Call, crm: Crm) -> None:
    response = call(
        "POST",
        f"{DEALS}/records",
        json={"records": [{"fields": {"name": "A"}}, {"fields": {"name": "B"}}]},
    )
    assert response.status_code == 201
    assert [r["fields"]["name"] for r in response.get_json()["records"]] == ["A", "B"]
    bad = {"records": [{"fields": {"name": "C"}}, {"fields": {"name": "D", "region": "north"}}]}
    body = problem(call("POST", f"{DEALS}/records", json=bad), 422)
    assert pointers(body) == ["/records/1/fields/region"]
    assert crm.deals().count() == 7  # nothing of the bad batch


def test_create_validation_errors_point_at_each_field(call: Call, crm: Crm) -> None:
    body = problem(
        call(
            "POST",
            f"{DEALS}/records",
            json={"fields": {"region": "north", "amount": "lots", "nope": 1}},
        ),
        422,
    )
    assert sorted(pointers(body)) == ["/fields/amount", "/fields/nope", "/fields/region"]
    assert crm.deals().count() == 5


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"fields": {}, "records": []},
        {"records": "many"},
        {"records": [{"name": "x"}]},
        {"fields": "x"},
        [1, 2],
        "text",
    ],
    ids=[
        "empty",
        "both",
        "records-not-list",
        "record-without-fields",
        "fields-not-object",
        "array",
        "string",
    ],
)
def test_create_body_of_the_wrong_shape_is_422(call: Call, body: Any) -> None:
    problem(call("POST", f"{DEALS}/records", json=body), 422)


def test_create_more_than_1000_is_422(call: Call, crm: Crm) -> None:
    body = problem(
        call("POST", f"{DEALS}/records", json={"records": [{"fields": {"name": "x"}}] * 1001}), 422
    )
    assert pointers(body) == ["/records"]
    assert crm.deals().count() == 5


def test_create_without_the_right_is_403(call: Call, crm: Crm) -> None:
    problem(call("POST", f"{DEALS}/records", "viewer", json={"fields": {"name": "x"}}), 403)
    body = problem(
        call("POST", f"{DEALS}/records", "rep", json={"fields": {"name": "x", "amount": 5}}), 403
    )
    assert pointers(body) == ["/fields/amount"]  # the rep reads amount but may not write it
    assert crm.deals().count() == 5


def test_malformed_json_is_400_and_other_media_types_415(call: Call, crm: Crm) -> None:
    body = problem(
        call("POST", f"{DEALS}/records", data='{"fields": {', content_type="application/json"), 400
    )
    assert "not valid JSON" in body["detail"]
    problem(call("POST", f"{DEALS}/records", data="", content_type="application/json"), 400)
    problem(
        call("POST", f"{DEALS}/records", data=b"\xff\xfe", content_type="application/json"), 400
    )
    problem(
        call(
            "POST",
            f"{DEALS}/records",
            data='{"fields": {"amount": NaN}}',
            content_type="application/json",
        ),
        400,
    )
    problem(
        call("POST", f"{DEALS}/records", data="[" * 100_000, content_type="application/json"), 400
    )
    problem(
        call(
            "POST",
            f"{DEALS}/records",
            data="name=x",
            content_type="application/x-www-form-urlencoded",
        ),
        415,
    )
    problem(call("POST", f"{DEALS}/records", data='{"fields": {}}', content_type="text/plain"), 415)
    problem(call("PATCH", f"{DEALS}/records/1", data='{"fields": {}}'), 415)
    assert crm.deals().count() == 5


def test_a_body_over_the_size_limit_is_413(rb: Recordbase, crm: Crm, settings: Settings) -> None:
    app = create_app(
        {"TESTING": True, "RECORDBASE_SETTINGS": settings, "RECORDBASE_MAX_REQUEST_MB": "0.01"}
    )
    try:
        _, secret = rb.create_token(SYSTEM, "admin@example.com")
        client = app.test_client()
        big = {"fields": {"name": "x", "notes": "y" * 20_000}}
        response = client.post(
            f"{DEALS}/records", json=big, headers={"Authorization": f"Bearer {secret}"}
        )
        problem(response, 413)
        small = client.post(
            f"{DEALS}/records",
            json={"fields": {"name": "x"}},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert small.status_code == 201
    finally:
        app.extensions["recordbase"].dispose()
    assert app.config["MAX_CONTENT_LENGTH"] == 10485


def test_default_request_limit_is_16_megabytes(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024


# --- update --------------------------------------------------------------------------------------


def test_patch_with_if_match(call: Call, crm: Crm) -> None:
    response = call(
        "PATCH",
        f"{DEALS}/records/1",
        "rep",
        json={"fields": {"name": "Acme 2"}},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["version"] == 2 and response.headers["ETag"] == '"2"'
    assert response.get_json()["fields"]["phone"] == "+86 138****5678"
    # A stale ETag: 412 with the record as it is now (as the rep sees it); nothing overwritten.
    stale = call(
        "PATCH",
        f"{DEALS}/records/1",
        "rep",
        json={"fields": {"name": "Lost"}},
        headers={"If-Match": '"1"'},
    )
    body = problem(stale, 412)
    assert body["current"]["version"] == 2 and body["current"]["fields"]["name"] == "Acme 2"
    assert body["current"]["fields"]["phone"] == "+86 138****5678"
    assert stale.headers["ETag"] == '"2"'
    assert crm.deals().get(1).fields["name"] == "Acme 2"
    weak = call(
        "PATCH",
        f"{DEALS}/records/1",
        "rep",
        json={"fields": {"name": "Acme 3"}},
        headers={"If-Match": 'W/"2"'},
    )
    assert weak.status_code == 200


def test_patch_with_version_in_the_body(call: Call, crm: Crm) -> None:
    assert (
        call(
            "PATCH", f"{DEALS}/records/5", json={"fields": {"amount": "550"}, "version": 1}
        ).status_code
        == 200
    )
    body = problem(
        call("PATCH", f"{DEALS}/records/5", json={"fields": {"amount": "1"}, "version": 1}), 409
    )
    assert body["current"]["fields"]["amount"] == "550.00" and body["current"]["version"] == 2
    assert str(crm.deals().get(5).fields["amount"]) == "550.00"


def test_patch_errors(call: Call, crm: Crm) -> None:
    path = f"{DEALS}/records/1"
    body = problem(call("PATCH", path, json={"fields": {"name": "x"}}), 428)
    assert "If-Match" in body["detail"]
    problem(call("PATCH", path, json={"fields": {"name": "x"}}, headers={"If-Match": "*"}), 400)
    problem(call("PATCH", path, json={"fields": {"name": "x"}}, headers={"If-Match": '"one"'}), 400)
    assert pointers(
        problem(call("PATCH", path, json={"fields": {"name": "x"}, "version": "1"}), 422)
    ) == ["/version"]
    assert pointers(
        problem(
            call(
                "PATCH",
                path,
                json={"fields": {"name": "x"}, "version": 1},
                headers={"If-Match": '"2"'},
            ),
            422,
        )
    ) == ["/version"]
    assert pointers(problem(call("PATCH", path, json={"name": "x", "version": 1}), 422)) == [
        "/name"
    ]
    assert pointers(problem(call("PATCH", path, json={"version": 1}), 422)) == ["/fields"]
    assert pointers(
        problem(call("PATCH", path, json={"fields": {"region": "north"}, "version": 1}), 422)
    ) == ["/fields/region"]
    assert pointers(
        problem(call("PATCH", path, "rep", json={"fields": {"amount": 1}, "version": 1}), 403)
    ) == ["/fields/amount"]
    problem(call("PATCH", path, "viewer", json={"fields": {"name": "x"}, "version": 1}), 403)
    problem(call("PATCH", f"{DEALS}/records/99", json={"fields": {"name": "x"}, "version": 1}), 404)
    assert crm.deals().get(1).version == 1


# --- delete --------------------------------------------------------------------------------------


def test_delete_is_204_then_the_record_is_gone(call: Call, crm: Crm) -> None:
    problem(call("DELETE", f"{DEALS}/records/5", "viewer"), 403)
    response = call("DELETE", f"{DEALS}/records/5", "manager")
    assert response.status_code == 204 and response.get_data() == b""
    problem(call("GET", f"{DEALS}/records/5"), 404)
    problem(call("DELETE", f"{DEALS}/records/5"), 404)
    problem(
        call("DELETE", f"{DEALS}/records/3", "manager"), 404
    )  # west: outside the east manager's rows
    assert crm.deals().count() == 4


# --- reveal --------------------------------------------------------------------------------------


@pytest.fixture
def rep_may_reveal(rb: Recordbase, crm: Crm) -> None:
    grants = json.loads(json.dumps(DEALS_PERMISSIONS))
    grants["rep"].update(reveal=True, export=True)
    assert rb.install(crm_definition(deals_permissions=grants), SYSTEM).applied


def test_reveal_needs_the_right(call: Call) -> None:
    body = problem(
        call(
            "POST",
            f"{DEALS}/records/1/reveal",
            "rep",
            json={"field": "phone", "reason": "customer called"},
        ),
        403,
    )
    assert "reveal" in body["detail"]


@pytest.mark.usefixtures("rep_may_reveal")
def test_reveal_gives_one_value_in_clear_and_audits_the_reason(rb: Recordbase, call: Call) -> None:
    response = call(
        "POST",
        f"{DEALS}/records/1/reveal",
        "rep",
        json={"field": "phone", "reason": "customer called back"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"field": "phone", "value": PHONES[1]}
    entry = [e for e in rb.audit_entries(app="crm", table="deals") if e["action"] == "reveal"][-1]
    assert entry["record_id"] == 1 and entry["changes"]["reason"] == "customer called back"
    assert pointers(
        problem(
            call(
                "POST", f"{DEALS}/records/1/reveal", "rep", json={"field": "phone", "reason": "x"}
            ),
            422,
        )
    ) == ["/reason"]
    assert pointers(
        problem(call("POST", f"{DEALS}/records/1/reveal", "rep", json={"reason": "because"}), 422)
    ) == ["/field"]
    problem(
        call(
            "POST", f"{DEALS}/records/1/reveal", "rep", json={"field": "nope", "reason": "because"}
        ),
        403,
    )
    hidden = problem(
        call(
            "POST", f"{DEALS}/records/2/reveal", "rep", json={"field": "phone", "reason": "because"}
        ),
        404,
    )
    assert hidden["detail"] == 'no record 2 in "deals"'


# --- export ------------------------------------------------------------------------------------


def test_export_csv_is_streamed_with_a_filename_and_audited(rb: Recordbase, call: Call) -> None:
    response = call(
        "GET",
        f"{DEALS}/records/export",
        query_string={"format": "csv", "sort": "-amount", "fields": "name,amount,phone"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="crm-deals.csv"'
    assert response.is_streamed
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["Name", "Amount", "Phone"]
    assert [r[0] for r in rows[1:]] == ["Elm", "Dune", "Cedar", "Birch", "Acme"]
    assert rows[-1][2] == "'" + PHONES[1]  # formula-safe: a leading + gets an apostrophe
    entry = [e for e in rb.audit_entries(app="crm", table="deals") if e["action"] == "export"][-1]
    assert entry["changes"]["records"] == 5 and entry["changes"]["format"] == "csv"


def test_export_json_and_xlsx(call: Call) -> None:
    query = filter_param({"field": "region", "op": "eq", "value": "west"})
    response = call("GET", f"{DEALS}/records/export", query_string={**query, "format": "json"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert [r["id"] for r in json.loads(response.get_data())] == [3, 4]
    response = call(
        "GET",
        f"{DEALS}/records/export",
        query_string={**query, "format": "xlsx", "fields": "name,amount"},
    )
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response.headers["Content-Disposition"] == 'attachment; filename="crm-deals.xlsx"'
    sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).active
    assert [list(row) for row in sheet.iter_rows(values_only=True)][0] == ["Name", "Amount"]


@pytest.mark.usefixtures("rep_may_reveal")
def test_export_gives_the_callers_rows_and_masks(call: Call) -> None:
    response = call("GET", f"{DEALS}/records/export", "rep", query_string={"format": "json"})
    records = json.loads(response.get_data())
    assert [r["id"] for r in records] == VISIBLE["rep"]
    assert records[0]["fields"]["phone"] == "+86 138****5678"
    body = problem(
        call(
            "GET",
            f"{DEALS}/records/export",
            "rep",
            query_string=filter_param({"field": "phone", "op": "is_empty"}),
        ),
        400,
    )
    assert "phone" in body["detail"]


def test_export_errors(call: Call) -> None:
    problem(call("GET", f"{DEALS}/records/export", "rep"), 403)  # no export right
    assert pointers(
        problem(call("GET", f"{DEALS}/records/export", query_string={"format": "pdf"}), 422)
    ) == ["/format"]
    problem(call("GET", f"{DEALS}/records/export", query_string={"filter": "nope"}), 400)


# --- import ------------------------------------------------------------------------------------

IMPORT = f"{DEALS}/records/import"


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def names_now(crm: Crm) -> list[str]:
    return [r.fields["name"] for r in crm.deals().stream(sort=["id"])]


@pytest.fixture
def rep_may_import(rb: Recordbase, crm: Crm) -> None:
    grants = json.loads(json.dumps(DEALS_PERMISSIONS))
    grants["rep"].update({"import": True})
    assert rb.install(crm_definition(deals_permissions=grants), SYSTEM).applied


def test_import_a_csv_body(rb: Recordbase, call: Call, crm: Crm) -> None:
    response = call(
        "POST",
        IMPORT,
        data=b"Name,Region,Amount\r\nFig,east,12.50\r\nGum,west,7\r\n",
        content_type="text/csv; charset=utf-8",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "mode": "atomic",
        "committed": True,
        "created": 2,
        "skipped": 0,
        "rows": 2,
        "fields": ["name", "region", "amount"],
        "ignored": [],
        "problem_count": 0,
        "problems": [],
    }
    assert names_now(crm)[5:] == ["Fig", "Gum"]
    assert crm.deals().get(6).fields["amount"] == Decimal("12.50")
    entry = [e for e in rb.audit_entries(app="crm", table="deals") if e["action"] == "import"][-1]
    assert entry["changes"]["created"] == 2 and entry["changes"]["format"] == "csv"


def test_import_multipart_csv_and_xlsx_with_a_mapping(call: Call, crm: Crm) -> None:
    csv_file = io.BytesIO("\ufeffDeal,Region,Remark\nFig,east,x\nGum,west,y\n".encode())
    response = call(
        "POST",
        IMPORT,
        data={"file": (csv_file, "deals.csv", "text/csv")},
        query_string=[("map", "Deal=name"), ("map", "Remark=")],
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["created"] == 2 and response.get_json()["fields"] == ["name", "region"]
    workbook = xlsx_bytes([["Name", "Amount"], ["Hazel", 30], ["Ivy", 40.5]])
    response = call(
        "POST",
        IMPORT,
        data={"file": (io.BytesIO(workbook), "deals.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["created"] == 2
    assert names_now(crm)[5:] == ["Fig", "Gum", "Hazel", "Ivy"]
    assert crm.deals().get(9).fields["amount"] == Decimal("40.50")


BAD_ROWS = "Name,Region,Amount\nFig,east,10\nGum,north,20\nHazel,east,thirty\nIvy,east,40\n"


def test_an_atomic_import_with_bad_rows_is_422_with_rows_and_columns(rb: Recordbase, call: Call, crm: Crm) -> None:
    body = problem(call("POST", IMPORT, data=BAD_ROWS, content_type="text/csv"), 422)
    assert body["detail"] == "nothing imported: 2 problem(s) (atomic: every row must be valid)"
    assert body["errors"] == [
        {
            "pointer": "/rows/3/Region",
            "row": 3,
            "column": "Region",
            "message": "is not one of the choices: east, west",
        },
        {
            "pointer": "/rows/4/Amount",
            "row": 4,
            "column": "Amount",
            "message": "is not a number (expected digits like 1234.50)",
        },
    ]
    assert body["report"]["committed"] is False and body["report"]["created"] == 0
    assert body["report"]["rows"] == 4 and body["report"]["skipped"] == 2
    assert crm.deals().count() == 5
    entry = [e for e in rb.audit_entries(app="crm", table="deals") if e["action"] == "import"][-1]
    assert entry["changes"]["committed"] is False


def test_skip_invalid_imports_the_good_rows_and_reports_the_others(call: Call, crm: Crm) -> None:
    response = call(
        "POST",
        IMPORT,
        data={"file": (io.BytesIO(BAD_ROWS.encode()), "deals.csv")},
        query_string={"mode": "skip-invalid"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert (report["committed"], report["created"], report["skipped"]) == (True, 2, 2)
    assert [(p["row"], p["column"]) for p in report["problems"]] == [(3, "Region"), (4, "Amount")]
    assert names_now(crm)[5:] == ["Fig", "Ivy"]


def test_a_header_that_does_not_fit_is_422_in_either_mode(call: Call, crm: Crm) -> None:
    for mode in ("atomic", "skip-invalid"):
        body = problem(
            call(
                "POST",
                IMPORT,
                data="Name,Colour\nFig,red\n",
                content_type="text/csv",
                query_string={"mode": mode},
            ),
            422,
        )
        assert body["errors"][0]["pointer"] == "/rows/1/Colour"
        assert "unknown column" in body["errors"][0]["message"]
    assert crm.deals().count() == 5


def test_import_needs_the_import_and_create_rights(call: Call, crm: Crm) -> None:
    body = problem(call("POST", IMPORT, "rep", data="Name\nFig\n", content_type="text/csv"), 403)
    assert "import" in body["detail"]  # the rep may create, but not import
    problem(call("POST", IMPORT, "viewer", data="Name\nFig\n", content_type="text/csv"), 403)
    problem(call("POST", IMPORT, "stranger", data="Name\nFig\n", content_type="text/csv"), 404)
    assert crm.deals().count() == 5


@pytest.mark.usefixtures("rep_may_import")
def test_a_column_the_caller_may_not_write_is_403_naming_it(call: Call, crm: Crm) -> None:
    body = problem(
        call("POST", IMPORT, "rep", data="Name,Region,Amount\nFig,east,5\n", content_type="text/csv"),
        403,
    )
    assert '"amount"' in body["detail"]
    assert crm.deals().count() == 5
    response = call("POST", IMPORT, "rep", data="Name,Region\nFig,east\n", content_type="text/csv")
    assert response.status_code == 200 and response.get_json()["created"] == 1
    assert ids(call("GET", f"{DEALS}/records", "rep")) == [*VISIBLE["rep"], 6]  # the rep owns it


def test_import_request_errors(call: Call, crm: Crm) -> None:
    assert pointers(
        problem(call("POST", IMPORT, data="Name\nFig\n", content_type="text/csv", query_string={"mode": "all"}), 400)
    ) == ["/mode"]
    assert pointers(
        problem(call("POST", IMPORT, data="Name\nFig\n", content_type="text/csv", query_string={"map": "Name"}), 400)
    ) == ["/map/0"]
    problem(call("POST", IMPORT, json={"records": []}), 415)
    problem(call("POST", IMPORT, data={"other": (io.BytesIO(b"Name\n"), "a.csv")}, content_type="multipart/form-data"), 400)
    problem(call("POST", IMPORT, data={"file": (io.BytesIO(b"Name\n"), "a.pdf")}, content_type="multipart/form-data"), 415)
    body = problem(call("POST", IMPORT, data=b"Name\n\xff\xfe\n", content_type="text/csv"), 422)
    assert "UTF-8" in body["detail"]
    body = problem(call("POST", IMPORT, data={"file": (io.BytesIO(b"Name\n"), "a.xlsx")}, content_type="multipart/form-data"), 422)
    assert "XLSX" in body["detail"]
    assert crm.deals().count() == 5


def test_an_import_over_the_size_limit_is_413(rb: Recordbase, crm: Crm, settings: Settings) -> None:
    app = create_app(
        {"TESTING": True, "RECORDBASE_SETTINGS": settings, "RECORDBASE_MAX_REQUEST_MB": "0.01"}
    )
    try:
        headers = {"Authorization": f"Bearer {rb.create_token(SYSTEM, 'admin@example.com')[1]}"}
        client = app.test_client()
        big = "Name\n" + "a fairly long deal name\n" * 1_000
        problem(client.post(IMPORT, data=big, content_type="text/csv", headers=headers), 413)
        upload = {"file": (io.BytesIO(big.encode()), "deals.csv")}
        problem(client.post(IMPORT, data=upload, content_type="multipart/form-data", headers=headers), 413)
        assert crm.deals().count() == 5
        small = client.post(IMPORT, data="Name\nFig\n", content_type="text/csv", headers=headers)
        assert small.status_code == 200 and small.get_json()["created"] == 1
    finally:
        app.extensions["recordbase"].dispose()


# --- history, aggregate, distinct ---------------------------------------------------------------


def test_history_as_the_caller_may_see_it(call: Call) -> None:
    assert (
        call(
            "PATCH",
            f"{DEALS}/records/1",
            json={"fields": {"notes": "new note", "name": "Acme 2"}, "version": 1},
        ).status_code
        == 200
    )
    admin = call("GET", f"{DEALS}/records/1/history").get_json()["history"]
    assert [c["action"] for c in admin] == ["create", "update"]
    assert admin[1]["fields"] == {
        "notes": ["call after lunch", "new note"],
        "name": ["Acme", "Acme 2"],
    }
    assert admin[0]["fields"]["phone"] == [None, PHONES[1]]
    viewer = call("GET", f"{DEALS}/records/1/history", "viewer").get_json()["history"]
    assert viewer[1]["fields"] == {"name": ["Acme", "Acme 2"]}  # notes hidden from viewers
    rep = call("GET", f"{DEALS}/records/1/history", "rep").get_json()["history"]
    assert rep[0]["fields"]["phone"] == [None, "+86 138****5678"]


def test_aggregate_and_distinct(call: Call) -> None:
    query = {"group_by": "region", "metrics": "count,sum:amount,avg:amount,max:amount"}
    groups = call("GET", f"{DEALS}/aggregate", query_string=query).get_json()["groups"]
    assert groups == [
        {
            "values": {"region": "east"},
            "metrics": {
                "count": 3,
                "sum:amount": "800.00",
                "avg:amount": groups[0]["metrics"]["avg:amount"],
                "max:amount": "500.00",
            },
        },
        {
            "values": {"region": "west"},
            "metrics": {
                "count": 2,
                "sum:amount": "700.00",
                "avg:amount": "350.00",
                "max:amount": "400.00",
            },
        },
    ]
    assert groups[0]["metrics"]["avg:amount"].startswith("266.66")
    rep = call(
        "GET", f"{DEALS}/aggregate", "rep", query_string={"metrics": "count,sum:amount"}
    ).get_json()["groups"]
    assert rep == [{"values": {}, "metrics": {"count": 2, "sum:amount": "400.00"}}]
    assert call("GET", f"{DEALS}/aggregate", query_string={"q": "zebra"}).get_json()["groups"][0][
        "metrics"
    ] == {"count": 1}
    body = problem(
        call("GET", f"{DEALS}/aggregate", "rep", query_string={"group_by": "phone"}), 400
    )
    assert "phone" in body["detail"]
    problem(call("GET", f"{DEALS}/aggregate", query_string={"metrics": "median:amount"}), 400)
    values = call("GET", f"{DEALS}/distinct/region").get_json()["values"]
    assert values == [{"value": "east", "count": 3}, {"value": "west", "count": 2}]
    rep_values = call(
        "GET",
        f"{DEALS}/distinct/region",
        "rep",
        query_string=filter_param({"field": "amount", "op": "gt", "value": 150}),
    ).get_json()["values"]
    assert rep_values == [{"value": "west", "count": 1}]
    problem(call("GET", f"{DEALS}/distinct/phone", "rep"), 400)
    problem(call("GET", f"{DEALS}/distinct/nope"), 400)
    problem(call("GET", f"{DEALS}/distinct/region", query_string={"limit": "0"}), 400)


# --- rate limits ------------------------------------------------------------------------------


@pytest.fixture
def limited_app(rb: Recordbase, crm: Crm, settings: Settings) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "RECORDBASE_SETTINGS": settings,
            "RECORDBASE_RATE_LIMIT": "3/minute",
            "RECORDBASE_RATE_LIMIT_IP": "5/minute",
        }
    )
    yield app
    app.extensions["recordbase"].dispose()


def test_rate_limit_per_token_is_429(rb: Recordbase, limited_app: Flask) -> None:
    client = limited_app.test_client()
    first = {"Authorization": f"Bearer {rb.create_token(SYSTEM, 'rep@example.com')[1]}"}
    second = {"Authorization": f"Bearer {rb.create_token(SYSTEM, 'viewer@example.com')[1]}"}
    remaining = []
    for _ in range(3):
        response = client.get(f"{DEALS}/records", headers=first)
        assert response.status_code == 200 and response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]  # the tighter of the two limits: the token's
    response = client.get(f"{DEALS}/records", headers=first)
    body = problem(response, 429)
    assert "3 per 1 minute" in body["detail"]
    assert int(response.headers["Retry-After"]) > 0
    assert (
        client.get(f"{DEALS}/records", headers=second).status_code == 200
    )  # another token, same address


def test_rate_limit_per_address_is_429(rb: Recordbase, limited_app: Flask) -> None:
    client = limited_app.test_client()
    statuses = []
    for person in ("rep", "viewer", "manager"):
        headers = {"Authorization": f"Bearer {rb.create_token(SYSTEM, f'{person}@example.com')[1]}"}
        statuses += [client.get("/api/v1/apps", headers=headers).status_code for _ in range(2)]
    assert statuses == [200] * 5 + [429]
    other_address = client.get(
        "/api/v1/apps", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.2"}
    )
    assert other_address.status_code == 200
    assert client.get("/healthz").status_code == 200  # only the API is limited


# --- a real server --------------------------------------------------------------------------------


def test_against_a_real_server_on_loopback(app: Flask, token: Callable[[str], str]) -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    headers = {"Authorization": f"Bearer {token('rep')}", "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(f"{base}{DEALS}/records", headers=headers), timeout=10
        ) as response:
            assert response.status == 200
            assert [r["id"] for r in json.load(response)["records"]] == VISIBLE["rep"]
        create = urllib.request.Request(
            f"{base}{DEALS}/records",
            method="POST",
            headers=headers,
            data=json.dumps({"fields": {"name": "Over the wire"}}).encode(),
        )
        with urllib.request.urlopen(create, timeout=10) as response:
            assert response.status == 201
            assert json.load(response)["fields"]["name"] == "Over the wire"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}{DEALS}/records/2", timeout=10)  # no token
        assert refused.value.code == 401 and refused.value.headers["Content-Type"] == PROBLEM_JSON
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        refused.value.close()
        with pytest.raises(urllib.error.HTTPError) as hidden:
            urllib.request.urlopen(
                urllib.request.Request(f"{base}{DEALS}/records/2", headers=headers), timeout=10
            )
        assert (
            hidden.value.code == 404
            and json.load(hidden.value)["detail"] == 'no record 2 in "deals"'
        )
        hidden.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_text_with_nul_is_refused_the_same_on_both_databases(call: Call, crm: Crm) -> None:
    """PostgreSQL cannot store U+0000 (found by schemathesis): refused up front, never a 500."""
    body = problem(
        call("POST", f"{DEALS}/records", json={"records": [{"fields": {"name": "a\u0000b"}}]}), 422
    )
    assert pointers(body) == ["/records/0/fields/name"]
    problem(
        call("PATCH", f"{DEALS}/records/1", json={"fields": {"notes": "\u0000"}, "version": 1}), 422
    )
    query = filter_param({"field": "name", "op": "eq", "value": "\u0000"})
    assert pointers(problem(call("GET", f"{DEALS}/records", query_string=query), 400)) == [
        "/filter/value"
    ]
    assert pointers(
        problem(call("GET", f"{DEALS}/records", query_string={"q": "a\u0000"}), 400)
    ) == ["/q"]
    problem(call("GET", "/api/v1/apps/crm%00/tables/deals/records"), 404)
    problem(call("GET", f"{DEALS}/distinct/na%00me"), 404)
    assert crm.deals().count() == 5


def test_integers_beyond_64_bits_are_refused_not_a_500(call: Call, crm: Crm) -> None:
    huge = 10**23
    body = problem(
        call("POST", f"{DEALS}/records", json={"fields": {"name": "x", "owner": huge}}), 422
    )
    assert pointers(body) == ["/fields/owner"]
    for tree in (
        {"field": "id", "op": "eq", "value": huge},
        {"field": "owner", "op": "in", "value": [1, huge]},
    ):
        assert pointers(
            problem(call("GET", f"{DEALS}/records", query_string=filter_param(tree)), 400)
        )[0].startswith("/filter/value")
    body = problem(
        call(
            "POST",
            f"{DEALS}/records",
            data='{"fields": {"owner": ' + "9" * 5000 + "}}",
            content_type="application/json",
        ),
        400,
    )
    problem(
        call(
            "PATCH",
            f"{DEALS}/records/1",
            json={"fields": {}},
            headers={"If-Match": '"' + "9" * 40 + '"'},
        ),
        400,
    )
    problem(call("GET", f"{DEALS}/records", query_string={"page_size": "9" * 5000}), 400)
    assert crm.deals().count() == 5


def test_digit_strings_beyond_64_bits_as_ids(call: Call) -> None:
    tree = {"field": "id", "op": "eq", "value": "9" * 23}
    problem(call("GET", f"{DEALS}/records", query_string=filter_param(tree)), 400)
    problem(
        call("POST", f"{DEALS}/records", json={"fields": {"name": "x", "owner": "9" * 23}}), 422
    )


def test_xlsx_export_of_text_with_control_characters(call: Call) -> None:
    assert (
        call("POST", f"{DEALS}/records", json={"fields": {"name": "esc\u001bape"}}).status_code
        == 201
    )
    response = call("GET", f"{DEALS}/records/export", query_string={"format": "xlsx"})
    assert response.status_code == 200
