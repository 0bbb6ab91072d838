"""The automation run history: the page (who may read it, what it shows, filters, pages), the engine's run log and the API.

The page tests run on SQLite only (see the ``sqlite_only`` marker); the run log's and the API's, on both databases.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from page_helpers import csrf_from, login
from recordbase.actor import Actor
from recordbase.automations import readable_tables, run_log
from recordbase.core import Recordbase
from recordbase.errors import NotFound, PermissionDenied, RecordbaseError
from test_automations import APP, member

SYSTEM = Actor.system("test")
PASSWORD = "password-123456"  # test_automations.member's
RUNS = "/builder/apps/sales/automations"


def definition() -> dict[str, Any]:
    """The automations tests' sales app, plus: the boss manages tasks (not deals), tasks stamp
    themselves when created, and new deals are assigned to someone who does not exist (a run that fails)."""
    d = copy.deepcopy(APP)
    deals, tasks = d["tables"]
    deals["automations"].append(
        {
            "slug": "hand_over",
            "label": "Hand over to the ghost",
            "trigger": {"on": "created"},
            "actions": [{"do": "assign", "field": "owner", "to": {"user": "ghost@example.org"}}],
        }
    )
    tasks["permissions"]["boss"]["manage"] = True
    tasks["automations"] = [
        {
            "slug": "stamp_task",
            "label": {"en": "Stamp new tasks", "zh-CN": "标记新任务"},
            "trigger": {"on": "created"},
            "actions": [{"do": "set", "values": {"due": "2027-01-01"}}],
        }
    ]
    return d


@pytest.fixture
def sales(rb: Recordbase) -> dict[str, Any]:
    """The app with one won deal: its runs, and the people who read them."""
    result = rb.install(definition(), SYSTEM)
    assert result.applied, result.problems
    rb.create_user(SYSTEM, "ada@example.org", PASSWORD, display_name="Ada", is_admin=True)
    rep = member(rb, "rep@example.org", "rep")
    member(rb, "boss@example.org", "boss")
    rb.create_user(SYSTEM, "stranger@example.org", PASSWORD, display_name="Stranger")
    deals = rb.records(rep, "sales", "deals")
    deal = deals.create({"name": "ACME", "stage": "open"})
    deals.update(deal.id, {"stage": "won"}, version=deal.version)
    return {"rb": rb, "deal": deal.id, "rep": rep}


def sign_in(client: FlaskClient, who: str) -> None:
    assert login(client, f"{who}@example.org", PASSWORD).status_code == 303


def rows(html: str) -> dict[str, list[str]]:
    """Each run shown, newest first: automation slug → statuses, in order."""
    found: dict[str, list[str]] = {}
    for status, slug in re.findall(r'<tr id="run-\d+" data-status="(\w+)" data-automation="(\w+)"', html):
        found.setdefault(slug, []).append(status)
    return found


@pytest.mark.sqlite_only
def test_an_admin_sees_every_run_with_what_each_action_did(client: FlaskClient, sales: dict[str, Any]) -> None:
    sign_in(client, "ada")
    page = client.get(RUNS)
    assert page.status_code == 200
    assert rows(page.text) == {
        "stamp_task": ["done"],  # the task the won deal created, stamped in its own run
        "won_follow_up": ["done"],
        "hand_over": ["failed"],
        "new_deal": ["done"],
    }
    won = re.search(r'<tr id="run-\d+" data-status="done" data-automation="won_follow_up">.*?</tr>', page.text, re.S)
    assert won is not None
    task = re.search(r'<a href="/apps/sales/tables/tasks/records/\d+">Created record \d+ in Tasks</a>', won.group(0))
    assert task is not None, won.group(0)
    assert "Notified boss" in won.group(0)  # by name; the log itself keeps the id
    assert f'<a href="/apps/sales/tables/deals/records/{sales["deal"]}">{sales["deal"]}</a>' in won.group(0)
    assert "Record updated" in won.group(0) and "Follow up a won deal" in won.group(0)
    failed = re.search(r'<tr id="run-\d+" data-status="failed" data-automation="hand_over">.*?</tr>', page.text, re.S)
    assert failed is not None
    assert "nobody to assign to" in failed.group(0)
    assert "Failed: nothing this run did was kept" in failed.group(0)
    # The link from the builder's editor.
    assert f'href="{RUNS}"' in client.get("/builder/apps/sales").text


@pytest.mark.sqlite_only
def test_filters_narrow_to_one_automation_or_outcome_and_say_what_is_wrong(
    client: FlaskClient, sales: dict[str, Any]
) -> None:
    sign_in(client, "ada")
    assert rows(client.get(RUNS, query_string={"status": "failed"}).text) == {"hand_over": ["failed"]}
    page = client.get(RUNS, query_string={"automation": "deals/new_deal", "status": "done"})
    assert rows(page.text) == {"new_deal": ["done"]}
    assert '<option value="deals/new_deal" selected>Deals · Stamp new deals</option>' in page.text
    assert rows(client.get(RUNS, query_string={"automation": "deals/new_deal", "status": "stopped"}).text) == {}
    wrong = client.get(RUNS, query_string={"automation": "nowhere/new_deal", "status": "finished"})
    assert wrong.status_code == 400
    assert 'id="runs-automation-error"' in wrong.text and 'id="runs-status-error"' in wrong.text
    assert len(rows(wrong.text)) == 4  # what it shows is the unfiltered list


@pytest.mark.sqlite_only
def test_runs_come_fifty_to_a_page_newest_first(client: FlaskClient, sales: dict[str, Any]) -> None:
    deals = sales["rb"].records(SYSTEM, "sales", "deals")
    deals.create_many([{"name": f"Deal {i}", "stage": "open"} for i in range(60)])  # 60 more done, 60 failed
    sign_in(client, "ada")
    first = client.get(RUNS, query_string={"status": "done"})
    ids = [int(i) for i in re.findall(r'<tr id="run-(\d+)"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = re.search(r'<a href="([^"]+)" rel="next">Older runs</a>', first.text)
    assert older is not None and "status=done" in older.group(1)
    second = client.get(older.group(1).replace("&amp;", "&"))
    rest = [int(i) for i in re.findall(r'<tr id="run-(\d+)"', second.text)]
    assert len(rest) == 63 - 50  # 3 done runs from the fixture, 60 new deals stamped
    assert max(rest) < min(ids) and set(rows(second.text)) <= {"new_deal", "hand_over", "won_follow_up", "stamp_task"}
    assert 'rel="next"' not in second.text and 'rel="first"' in second.text


@pytest.mark.sqlite_only
def test_a_manager_sees_only_the_runs_of_the_tables_it_manages(client: FlaskClient, sales: dict[str, Any]) -> None:
    sign_in(client, "boss")
    page = client.get(RUNS)
    assert page.status_code == 200
    assert rows(page.text) == {"stamp_task": ["done"]}
    assert "deals/new_deal" not in page.text  # nor the other tables' automations in the filter
    assert client.get(RUNS, query_string={"automation": "deals/new_deal"}).status_code == 400


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("who", "status"), [("rep", 403), ("stranger", 404)])
def test_who_manages_nothing_is_refused(client: FlaskClient, sales: dict[str, Any], who: str, status: int) -> None:
    sign_in(client, who)
    page = client.get(RUNS)
    assert page.status_code == status
    assert "data-automation" not in page.text


@pytest.mark.sqlite_only
def test_signing_in_comes_first(client: FlaskClient, sales: dict[str, Any]) -> None:
    page = client.get(RUNS)
    assert page.status_code in (302, 303) and "/login" in page.headers["Location"]


@pytest.mark.sqlite_only
def test_the_page_in_chinese(client: FlaskClient, sales: dict[str, Any]) -> None:
    sign_in(client, "ada")
    client.post("/language", data={"csrf_token": csrf_from(client.get("/builder").text), "lang": "zh-CN"})
    page = client.get(RUNS).text
    assert "标记新任务" in page and "赢单回访" in page  # the automations' own labels
    assert "Automation runs" not in page and "Older runs" not in page


# --- the engine's run log ---------------------------------------------------------------------


def test_the_run_log_decides_who_reads_which_table(sales: dict[str, Any]) -> None:
    rb: Recordbase = sales["rb"]
    people = {
        "boss": member_actor(rb, "boss@example.org"),
        "rep": sales["rep"],
        "stranger": member_actor(rb, "stranger@example.org"),
    }
    assert [ts.slug for ts in readable_tables(rb, SYSTEM, "sales")] == ["deals", "tasks"]
    assert [ts.slug for ts in readable_tables(rb, people["boss"], "sales")] == ["tasks"]
    with pytest.raises(PermissionDenied):
        readable_tables(rb, people["rep"], "sales")
    with pytest.raises(NotFound):
        readable_tables(rb, people["stranger"], "sales")
    with pytest.raises(NotFound):
        run_log(rb, people["boss"], "sales", table="deals")
    assert {r["automation"] for r in run_log(rb, people["boss"], "sales")} == {"stamp_task"}


def test_the_run_log_filters_and_names_removed_automations(sales: dict[str, Any]) -> None:
    rb: Recordbase = sales["rb"]
    everything = run_log(rb, SYSTEM, "sales")
    assert [r["id"] for r in everything] == sorted((r["id"] for r in everything), reverse=True)
    assert [r["automation"] for r in run_log(rb, SYSTEM, "sales", status="failed")] == ["hand_over"]
    newest = everything[0]["id"]
    assert [r["id"] for r in run_log(rb, SYSTEM, "sales", before=newest)] == [r["id"] for r in everything[1:]]
    assert len(run_log(rb, SYSTEM, "sales", table="deals", automation="new_deal", limit=1)) == 1
    with pytest.raises(RecordbaseError, match="unknown run status"):
        run_log(rb, SYSTEM, "sales", status="finished")
    changed = rb.export("sales")
    changed["tables"][0]["automations"] = [a for a in changed["tables"][0]["automations"] if a["slug"] != "hand_over"]
    assert rb.install(changed, SYSTEM).applied
    gone = run_log(rb, SYSTEM, "sales", automation="hand_over")
    assert [(r["status"], r["label"]) for r in gone] == [("failed", None)]  # kept, its automation removed


def member_actor(rb: Recordbase, email: str) -> Actor:
    from recordbase import users

    with rb.read() as conn:
        user = users.find_user(conn, email)
    assert user is not None
    actor = rb.actor_for(user["id"])
    assert actor is not None
    return actor


# --- the REST API ------------------------------------------------------------------------------

API = "/api/v1/apps/sales/automation-runs"


def bearer(rb: Recordbase, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {rb.create_token(SYSTEM, email, name='runs')[1]}"}


def test_the_api_pages_and_filters_runs_as_the_page_does(client: FlaskClient, sales: dict[str, Any]) -> None:
    ada = bearer(sales["rb"], "ada@example.org")
    everything = client.get(API, headers=ada).get_json()
    assert [r["automation"] for r in everything["runs"]] == ["won_follow_up", "stamp_task", "hand_over", "new_deal"]
    assert everything["next_before"] is None
    won = everything["runs"][0]
    assert (won["table"], won["record_id"], won["trigger"], won["status"]) == ("deals", sales["deal"], "updated", "done")
    assert won["label"] == {"en": "Follow up a won deal", "zh-CN": "赢单回访"}
    assert [a["do"] for a in won["actions"]] == ["create", "notify"]
    failed = client.get(API, headers=ada, query_string={"status": "failed"}).get_json()["runs"]
    assert [(r["automation"], r["error"]) for r in failed] == [("hand_over", "nobody to assign to")]
    first = client.get(API, headers=ada, query_string={"limit": 3}).get_json()
    rest = client.get(API, headers=ada, query_string={"limit": 3, "before": first["next_before"]}).get_json()
    assert [r["id"] for r in first["runs"] + rest["runs"]] == [r["id"] for r in everything["runs"]]
    assert rest["next_before"] is None
    only = client.get(API, headers=ada, query_string={"table": "tasks"}).get_json()["runs"]
    assert [r["automation"] for r in only] == ["stamp_task"]
    for bad, pointer in (({"status": "finished"}, "/status"), ({"limit": "0"}, "/limit"), ({"before": "x"}, "/before")):
        answer = client.get(API, headers=ada, query_string=bad)
        assert answer.status_code == 400 and answer.get_json()["errors"][0]["pointer"] == pointer


def test_the_api_answers_builders_only_and_the_document_says_so(client: FlaskClient, sales: dict[str, Any]) -> None:
    rb: Recordbase = sales["rb"]
    boss = bearer(rb, "boss@example.org")
    assert [r["automation"] for r in client.get(API, headers=boss).get_json()["runs"]] == ["stamp_task"]
    assert client.get(API, headers=boss, query_string={"table": "deals"}).status_code == 404
    assert client.get(API, headers=bearer(rb, "rep@example.org")).status_code == 403
    assert client.get(API, headers=bearer(rb, "stranger@example.org")).status_code == 404
    assert client.get(API).status_code == 401

    document = client.get("/api/v1/openapi.json", headers=boss).get_json()
    operation = document["paths"]["/api/v1/apps/sales/automation-runs"]["get"]
    table = next(p for p in operation["parameters"] if p["name"] == "table")
    assert table["schema"]["enum"] == ["tasks"]  # only the tables whose runs it may read
    schema = {**document["components"]["schemas"]["AutomationRuns"], "components": document["components"]}
    Draft202012Validator(schema).validate(client.get(API, headers=boss).get_json())
    rep = client.get("/api/v1/openapi.json", headers=bearer(rb, "rep@example.org")).get_json()
    assert "/api/v1/apps/sales/automation-runs" not in rep["paths"]
