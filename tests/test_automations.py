"""Automations on both databases: triggers, conditions, actions, failures contained, loops stopped, cron-safe runs."""

from __future__ import annotations

import copy
import datetime as dt
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from recordbase import automations
from recordbase.actor import Actor
from recordbase.collab import list_notifications
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import PermissionDenied
from recordbase.models import AutomationRun

SYSTEM = Actor.system("test")
runs_t = AutomationRun.__table__

STAGES = {"choices": [{"id": "open", "label": "Open"}, {"id": "won", "label": "Won"}, {"id": "lost", "label": "Lost"}]}

APP: dict[str, Any] = {
    "slug": "sales",
    "label": "Sales",
    "roles": [
        {"slug": "rep", "label": "Rep"},
        {"slug": "boss", "label": "Boss"},
    ],
    "tables": [
        {
            "slug": "deals",
            "label": "Deals",
            "fields": [
                {"slug": "name", "label": "Name", "type": "text"},
                {"slug": "stage", "label": "Stage", "type": "single_select", "options": STAGES},
                {"slug": "owner", "label": "Owner", "type": "user"},
                {"slug": "close_date", "label": "Close date", "type": "date"},
                {"slug": "note", "label": "Note", "type": "text"},
                {"slug": "touched", "label": "Touched", "type": "number"},
            ],
            "permissions": {
                "rep": {"read": True, "create": True, "update": True, "rows": "own", "owner_field": "owner"},
                "boss": {"read": True, "update": True},
            },
            "automations": [
                {
                    "slug": "won_follow_up",
                    "label": {"en": "Follow up a won deal", "zh-CN": "赢单回访"},
                    "trigger": {"on": "updated"},
                    "condition": {"field": "stage", "op": "eq", "value": "won"},
                    "actions": [
                        {"do": "create", "table": "tasks", "values": {"title": "Thank-you call", "deal": {"$record": "id"}, "due": {"$today": 2}}},
                        {"do": "notify", "to": {"role": "boss"}, "message": {"en": "A deal was won", "zh-CN": "赢单了"}},
                    ],
                },
                {
                    "slug": "new_deal",
                    "label": "Stamp new deals",
                    "trigger": {"on": "created"},
                    "actions": [{"do": "set", "values": {"note": "new"}}],
                },
                {
                    "slug": "closing_soon",
                    "label": "Closing soon",
                    "trigger": {"on": "date", "field": "close_date", "offset_days": -1},
                    "condition": {"field": "stage", "op": "eq", "value": "open"},
                    "actions": [{"do": "notify", "to": {"$record": "owner"}, "message": "Closes tomorrow"}],
                },
            ],
        },
        {
            "slug": "tasks",
            "label": "Tasks",
            "fields": [
                {"slug": "title", "label": "Title", "type": "text", "required": True},
                {"slug": "deal", "label": "Deal", "type": "link", "options": {"table": "deals"}},
                {"slug": "due", "label": "Due", "type": "date"},
            ],
            "permissions": {"boss": {"read": True}},
        },
    ],
}


def member(rb: Recordbase, email: str, role: str) -> Actor:
    uid = rb.create_user(SYSTEM, email, "password-123456", display_name=email.split("@")[0])
    rb.set_roles(SYSTEM, email, "sales", [role])
    actor = rb.actor_for(uid)
    assert actor is not None
    return actor


def runs(rb: Recordbase) -> list[dict[str, Any]]:
    with rb.read() as conn:
        return [dict(r) for r in conn.execute(sa.select(runs_t).order_by(runs_t.c.id)).mappings()]


@pytest.fixture
def sales(rb: Recordbase) -> Recordbase:
    rb.install(copy.deepcopy(APP), SYSTEM)
    return rb


def test_created_and_becomes_true_triggers_run_in_the_write(sales: Recordbase) -> None:
    rep = member(sales, "rep@example.org", "rep")
    boss = member(sales, "boss@example.org", "boss")
    deals = sales.records(rep, "sales", "deals")
    deal = deals.create({"name": "Acme", "stage": "open"})
    assert deal.fields["note"] == "new"  # set by "created", returned with the write
    assert sales.records(SYSTEM, "sales", "tasks").count() == 0
    won = deals.update(deal.id, {"stage": "won"}, version=deal.version)
    tasks = sales.records(SYSTEM, "sales", "tasks").query().records
    assert [(t.fields["title"], t.fields["deal"], t.fields["due"]) for t in tasks] == [
        ("Thank-you call", deal.id, dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2))
    ]
    # Still won after another change: the condition did not *become* true again.
    deals.update(deal.id, {"name": "Acme Ltd"}, version=won.version)
    assert sales.records(SYSTEM, "sales", "tasks").count() == 1
    inbox = list_notifications(sales, boss)
    assert len(inbox) == 1 and inbox[0].kind == "automation"
    assert list_notifications(sales, rep) == []  # "to": the boss role only
    log = runs(sales)
    assert [(r["automation"], r["status"]) for r in log] == [("new_deal", "done"), ("won_follow_up", "done")]
    # The audit names the automation for what it wrote.
    actions = [(e["actor_name"], e["action"]) for e in sales.audit_entries(app="sales", table="tasks")]
    assert ("system:automation:sales/won_follow_up", "create") in actions


def test_a_failing_action_never_loses_the_write(sales: Recordbase) -> None:
    definition = sales.export("sales")
    definition["tables"][0]["automations"][0]["actions"][0]["values"] = {"deal": {"$record": "id"}}  # title is required
    sales.install(definition, SYSTEM)
    deals = sales.records(SYSTEM, "sales", "deals")
    deal = deals.create({"name": "Acme", "stage": "open"})
    won = deals.update(deal.id, {"stage": "won"}, version=deal.version)
    assert won.fields["stage"] == "won"
    assert deals.get(deal.id).fields["stage"] == "won"
    assert sales.records(SYSTEM, "sales", "tasks").count() == 0  # the failed run left nothing half-done
    failed = [r for r in runs(sales) if r["automation"] == "won_follow_up"]
    assert failed[0]["status"] == "failed"
    assert "title" in failed[0]["error"]


def test_loops_are_stopped_and_logged(sales: Recordbase) -> None:
    definition = sales.export("sales")
    definition["tables"][0]["automations"] = [
        {"slug": "ping", "label": "Ping", "trigger": {"on": "updated", "fields": ["touched"]},
         "actions": [{"do": "set", "values": {"note": "ping"}}]},
        {"slug": "pong", "label": "Pong", "trigger": {"on": "updated", "fields": ["note"]},
         "actions": [{"do": "set", "values": {"touched": 1}}]},
    ]
    sales.install(definition, SYSTEM)
    deals = sales.records(SYSTEM, "sales", "deals")
    deal = deals.create({"name": "Loop"})
    deals.update(deal.id, {"touched": 5}, version=deal.version)
    statuses = [(r["automation"], r["status"]) for r in runs(sales)]
    assert ("ping", "stopped") in statuses or ("pong", "stopped") in statuses
    assert len(statuses) <= automations.MAX_DEPTH + 2
    assert deals.get(deal.id).fields["note"] == "ping"


def test_date_triggers_fire_once_per_record_and_date(sales: Recordbase) -> None:
    rep = member(sales, "rep@example.org", "rep")
    other = member(sales, "other@example.org", "rep")
    deals = sales.records(SYSTEM, "sales", "deals")
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    soon = deals.create({"name": "Soon", "stage": "open", "owner": rep.user_id, "close_date": tomorrow})
    deals.create({"name": "Later", "stage": "open", "owner": other.user_id, "close_date": "2099-01-01"})
    deals.create({"name": "Done", "stage": "lost", "owner": other.user_id, "close_date": tomorrow})
    results = automations.run_scheduled(sales)
    assert [(r.automation, r.fired) for r in results] == [("closing_soon", 1)]
    assert [n.record_id for n in list_notifications(sales, rep)] == [soon.id]
    assert list_notifications(sales, other) == []
    again = automations.run_scheduled(sales)  # idempotent: the same date never fires twice
    assert [(r.automation, r.fired) for r in again] == [("closing_soon", 0)]
    assert len(list_notifications(sales, rep)) == 1
    # A new date is a new occasion.
    current = deals.get(soon.id)
    deals.update(soon.id, {"close_date": dt.datetime.now(dt.UTC).date().isoformat()}, version=current.version)
    assert [(r.automation, r.fired) for r in automations.run_scheduled(sales)] == [("closing_soon", 1)]


def test_pruning_the_log_never_lets_a_date_fire_twice(sales: Recordbase) -> None:
    rep = member(sales, "rep@example.org", "rep")
    deals = sales.records(SYSTEM, "sales", "deals")
    now = dt.datetime.now(dt.UTC)
    tomorrow = (now.date() + dt.timedelta(days=1)).isoformat()
    deals.create({"name": "Soon", "stage": "open", "owner": rep.user_id, "close_date": tomorrow})  # new_deal runs
    assert [(r.automation, r.fired) for r in automations.run_scheduled(sales, now=now)] == [("closing_soon", 1)]
    assert sorted(r["automation"] for r in runs(sales)) == ["closing_soon", "new_deal"]

    assert automations.prune_runs(sales, days=90, now=now) == 0  # nothing old yet
    # 20 days on, with a 10-day log: the created run goes; the date run stays, as tomorrow's date is
    # still inside closing_soon's 30-day window and its run is what keeps it from firing again.
    later = now + dt.timedelta(days=20)
    assert automations.prune_runs(sales, days=10, now=later) == 1
    assert [r["automation"] for r in runs(sales)] == ["closing_soon"]
    assert [(r.automation, r.fired) for r in automations.run_scheduled(sales, now=later)] == [("closing_soon", 0)]
    # 40 days on the date has left the window: its run goes too, and nothing fires again.
    much_later = now + dt.timedelta(days=40)
    assert automations.prune_runs(sales, days=10, now=much_later) == 1
    assert runs(sales) == []
    assert [(r.automation, r.fired) for r in automations.run_scheduled(sales, now=much_later)] == [("closing_soon", 0)]
    assert len(list_notifications(sales, rep)) == 1


def test_concurrent_scheduled_runs_fire_once(sales: Recordbase) -> None:
    rep = member(sales, "rep@example.org", "rep")
    deals = sales.records(SYSTEM, "sales", "deals")
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    deals.create_many([{"name": f"D{i}", "stage": "open", "owner": rep.user_id, "close_date": tomorrow} for i in range(5)])
    errors: list[BaseException] = []

    def go() -> None:
        try:
            automations.run_scheduled(sales)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(list_notifications(sales, rep)) == 5
    assert len([r for r in runs(sales) if r["automation"] == "closing_soon"]) == 5


def test_notify_skips_people_who_cannot_read_the_record(sales: Recordbase) -> None:
    rep = member(sales, "rep@example.org", "rep")
    other = member(sales, "other@example.org", "rep")
    definition = sales.export("sales")
    definition["tables"][0]["automations"] = [
        {"slug": "tell_reps", "label": "Tell reps", "trigger": {"on": "created"},
         "actions": [{"do": "notify", "to": {"role": "rep"}}]},
    ]
    sales.install(definition, SYSTEM)
    deal = sales.records(SYSTEM, "sales", "deals").create({"name": "Mine", "owner": rep.user_id})
    assert [n.record_id for n in list_notifications(sales, rep)] == [deal.id]
    assert list_notifications(sales, other) == []  # owns nothing: cannot read it, so not told
    log = runs(sales)[-1]
    assert log["actions"][0]["notified"] == [rep.user_id] and log["actions"][0]["skipped"] == 1


def test_assign_sets_the_user_field_and_notifies(sales: Recordbase) -> None:
    boss = member(sales, "boss@example.org", "boss")
    definition = sales.export("sales")
    definition["tables"][0]["automations"] = [
        {"slug": "to_boss", "label": "To the boss", "trigger": {"on": "created"},
         "actions": [{"do": "assign", "field": "owner", "to": {"user": "boss@example.org"}}]},
    ]
    sales.install(definition, SYSTEM)
    deal = sales.records(SYSTEM, "sales", "deals").create({"name": "Big"})
    assert deal.fields["owner"] == boss.user_id
    assert [n.kind for n in list_notifications(sales, boss)] == ["assigned"]


def test_webhook_action_queues_a_delivery_for_automation_webhooks(sales: Recordbase) -> None:
    hook_id, _secret = sales.create_webhook(SYSTEM, "sales", "deals", "https://hooks.example.org/in", events=["automation"])
    definition = sales.export("sales")
    definition["tables"][0]["automations"] = [
        {"slug": "tell_crm", "label": "Tell the CRM", "trigger": {"on": "created"}, "actions": [{"do": "webhook"}]},
    ]
    sales.install(definition, SYSTEM)
    sales.records(SYSTEM, "sales", "deals").create({"name": "Hooked"})
    deliveries = sales.deliveries(hook_id)
    assert [d["event"] for d in deliveries] == ["automation"]


def test_definition_checks_name_what_is_wrong() -> None:
    definition = copy.deepcopy(APP)
    automations_ = definition["tables"][0]["automations"]
    automations_[0]["actions"][0]["values"]["nope"] = 1
    automations_[0]["actions"][1]["to"] = {"role": "ghost"}
    automations_[2]["trigger"]["field"] = "name"
    automations_[1]["condition"] = {"field": "stage", "op": "gt", "value": "won"}
    problems = {p.pointer: p.message for p in check_definition(definition) if p.severity == "error"}
    assert "not a field" in problems["/tables/0/automations/0/actions/0/values/nope"]
    assert "not a role" in problems["/tables/0/automations/0/actions/1/to/role"]
    assert "date" in problems["/tables/0/automations/2/trigger/field"]
    assert "/tables/0/automations/1/condition/op" in problems


def test_only_admins_change_automations(sales: Recordbase) -> None:
    definition = sales.export("sales")
    definition["roles"].append({"slug": "builder", "label": "Builder"})
    for table in definition["tables"]:
        table["permissions"]["builder"] = {"read": True, "manage": True}
    sales.install(definition, SYSTEM)
    builder = member(sales, "builder@example.org", "builder")
    definition = sales.export("sales")
    definition["tables"][0]["automations"][1]["actions"][0]["values"]["note"] = "changed"
    with pytest.raises(PermissionDenied):
        sales.install(definition, builder)


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_cli_runs_scheduled_automations_and_shows_the_log(cli: Any, engine: Recordbase) -> None:
    engine.install(copy.deepcopy(APP), SYSTEM)
    rep = member(engine, "rep@example.org", "rep")
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    engine.records(SYSTEM, "sales", "deals").create({"name": "Soon", "stage": "open", "owner": rep.user_id, "close_date": tomorrow})
    first = cli("automations", "run")
    assert first.code == 0, first.err
    assert "sales.deals closing_soon: 1 fired, 0 failed, 0 stopped" in first.out
    again = cli("automations", "run")
    assert "sales.deals closing_soon: 0 fired, 0 failed, 0 stopped" in again.out
    log = cli("automations", "log", "sales")
    assert any("closing_soon" in line and "\tdone" in line for line in log.out), log.out
    assert cli("automations", "log", "sales", "--table", "deals", "--status", "failed").out == []
    assert cli("automations", "prune", "--days", "30").out == ["pruned 0 automation runs"]


def test_form_trigger_runs_for_public_submissions_only(sales: Recordbase) -> None:
    from recordbase import public_forms

    definition = sales.export("sales")
    definition.setdefault("views", []).append(
        {"slug": "enquiry", "label": "Enquiry", "table": "deals", "type": "form", "fields": ["name"], "public": True}
    )
    definition["tables"][0]["automations"] = [
        {"slug": "from_web", "label": "From the web", "trigger": {"on": "form", "view": "enquiry"},
         "actions": [{"do": "set", "values": {"note": "web"}}]},
    ]
    sales.install(definition, SYSTEM)
    link = public_forms.create_link(sales, SYSTEM, "sales", "enquiry")
    record_id = public_forms.submit(sales, link.token, {"name": "Visitor"}, [], source="127.0.0.1")
    deals = sales.records(SYSTEM, "sales", "deals")
    assert deals.get(record_id).fields["note"] == "web"
    assert deals.create({"name": "Typed in"}).fields["note"] is None  # not through the form
