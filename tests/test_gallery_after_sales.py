"""The gallery's after-sales template: clean definition, sample data, SLAs, roles and the public survey.

Installs ``schemas/gallery/after_sales.json`` with sample data on both
databases and acts as each role with users of our own:

- ``agent`` (Amy, Alan): customers in clear, every ticket, returns and
  warranties; reads surveys without the respondent's name and phone;
- ``technician`` (Tom, Tia): open tickets only, their own service visits with
  the address and phone in clear, writing only the work done and the status;
  never another technician's visit, no surveys, no follow-ups, no export;
- ``supervisor`` (Sue): everything, surveys in full, makes the survey's public link.

Automations: an SLA from the priority, urgent tickets alert supervisors, a
ticket past its SLA escalates (once), resolving dates it, closing plans a
follow-up call; a new visit tells its technician; a low survey rating alerts
supervisors. The survey is a public form with consent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from gallery_helpers import (
    World,
    load_template,
    make_world,
    not_bilingual,
    notes_from,
    template_path,
    texts_in,
)
from recordbase import RecordQuery, automations, public_forms
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import NotFound, PermissionDenied, ValidationError

TEMPLATE = template_path("after_sales")
TABLES = [
    "customers",
    "products",
    "warranties",
    "tickets",
    "returns",
    "service_visits",
    "follow_ups",
    "surveys",
]
OPEN = {"field": "status", "op": "in", "value": ["new", "in_progress", "waiting_customer"]}
PEOPLE = {
    "amy": ["agent"],
    "alan": ["agent"],
    "tom": ["technician"],
    "tia": ["technician"],
    "sue": ["supervisor"],
}


@pytest.fixture
def world(rb: Recordbase) -> World:
    return make_world(rb, "after_sales", PEOPLE)


@pytest.fixture
def ticket(world: World) -> Any:
    customer = world.store("customers").create(
        {
            "name": "王芳",
            "phone": "13812345678",
            "email": "wang.fang@example.com",
            "address": "杭州市西湖区文三路1号",
        }
    )
    return world.store("tickets", "amy").create(
        {
            "subject": "洗衣机不脱水",
            "customer": customer.id,
            "issue": "The drum does not spin.",
            "priority": "high",
            "agent": world.ids["amy"],
        }
    )


# --- the definition -------------------------------------------------------------------------------


def test_the_template_checks_without_a_problem_or_a_warning(rb: Recordbase) -> None:
    data = load_template("after_sales")
    assert check_definition(data) == []
    assert rb.check(data) == []


def test_every_text_is_bilingual_and_the_app_has_what_the_issue_asks() -> None:
    data = load_template("after_sales")
    assert not_bilingual(texts_in(data)) == []
    assert data["slug"] == "after_sales" and TEMPLATE.stem == "after_sales"
    assert [t["slug"] for t in data["tables"]] == TABLES
    assert [r["slug"] for r in data["roles"]] == ["agent", "technician", "supervisor"]
    tickets = {f["slug"]: f for f in data["tables"][3]["fields"]}
    assert {
        "customer",
        "product",
        "serial_number",
        "issue",
        "priority",
        "sla_due",
        "status",
    } <= set(tickets)
    assert {(v["slug"], v["type"]) for v in data["views"]} >= {
        ("ticket_board", "kanban"),
        ("visit_calendar", "calendar"),
        ("satisfaction_survey", "form"),
        ("service_dashboard", "dashboard"),
        ("open_tickets", "grid"),
    }
    visits = {f["slug"]: f for f in data["tables"][5]["fields"]}
    assert visits["address"]["type"] == "address" and visits["address"]["purpose"]
    assert visits["technician"]["type"] == "user"
    for table in data["tables"]:
        personal = [
            f
            for f in table["fields"]
            if f["type"] in ("phone", "email", "address") or f.get("sensitivity") == "personal"
        ]
        if personal:
            assert table["consent"]["purposes"] and table["erasure"]


# --- sample data -----------------------------------------------------------------------------------


def test_install_with_sample_data_fills_every_table(world: World) -> None:
    assert world.counts == dict.fromkeys(TABLES, 25)
    tickets = world.store("tickets").query(RecordQuery(sort=["id"], page_size=100)).records
    assert tickets[0].fields["number"] == "TK-000001"
    # Sampled, or set from the priority
    assert all(t.fields["sla_due"] is not None for t in tickets)
    visits = world.store("service_visits").query(RecordQuery(page_size=100)).records
    for t in tickets:
        assert t.fields["visit_count"] == sum(1 for v in visits if v.fields["ticket"] == t.id)
    now = dt.datetime.now(dt.UTC)
    for t in tickets:
        late = t.fields["sla_due"] < now and t.fields["status"] not in ("resolved", "closed")
        assert t.fields["sla_breached"] is late


def test_every_dashboard_chart_adds_up(world: World) -> None:
    [dashboard] = [v for v in load_template("after_sales")["views"] if v["type"] == "dashboard"]
    for chart in dashboard["charts"]:
        groups = world.store(chart.get("table", dashboard["table"]), "sue").aggregate(
            group_by=chart.get("group_by"), metrics=[chart["metric"]], filter=chart.get("filter")
        )
        assert groups, chart["slug"]
    by_status = world.store("tickets", "sue").aggregate(
        group_by="status", metrics=["count"], filter=OPEN
    )
    assert (
        sum(g.metrics["count"] for g in by_status) == len(world.ids_of("tickets", None, OPEN)) > 1
    )


def test_a_number_card_counts_the_open_tickets(world: World) -> None:
    [open_count] = world.store("tickets", "sue").aggregate(metrics=["count"], filter=OPEN)
    assert open_count.metrics["count"] == len(world.ids_of("tickets", None, OPEN))


# --- roles -------------------------------------------------------------------------------------------


def test_an_agent_works_every_ticket_and_reads_surveys_without_names(
    world: World, ticket: Any
) -> None:
    assert world.ids_of("tickets", "alan") == world.ids_of("tickets")
    customer = world.store("customers", "alan").get(ticket.fields["customer"]).fields
    assert customer["phone"] == "+8613812345678"
    survey = world.store("surveys").create(
        {"rating": 4, "name": "王芳", "phone": "13812345678", "comments": "很好"}
    )
    seen = world.store("surveys", "amy").get(survey.id).fields
    assert seen["rating"] == 4 and seen["comments"] == "很好"
    assert {"name", "phone"} & set(seen) == set()
    with pytest.raises(PermissionDenied):
        world.store("surveys", "amy").update(survey.id, {"comments": "x"}, version=survey.version)
    with pytest.raises(PermissionDenied):
        world.store("customers", "amy").export("csv")
    rma = world.store("returns", "amy").create(
        {"ticket": ticket.id, "reason": "defective", "resolution": "replace"}
    )
    assert rma.fields["rma_number"] == "RMA-000026" and rma.fields["status"] == "requested"


def test_a_technician_sees_open_tickets_and_only_their_own_visits(
    world: World, ticket: Any
) -> None:
    assert world.ids_of("tickets", "tom") == world.ids_of("tickets", None, OPEN)
    mine = {"field": "technician", "op": "eq", "value": world.ids["tom"]}
    assert world.ids_of("service_visits", "tom") == world.ids_of("service_visits", None, mine)
    visits = world.store("service_visits", "amy")
    toms = visits.create(
        {
            "ticket": ticket.id,
            "technician": world.ids["tom"],
            "scheduled_at": "2026-12-01T01:30:00Z",
            "address": "杭州市西湖区文三路1号",
            "contact_phone": "13812345678",
        }
    )
    tias = visits.create(
        {
            "ticket": ticket.id,
            "technician": world.ids["tia"],
            "scheduled_at": "2026-12-02T01:30:00Z",
            "address": "杭州市滨江区江南大道2号",
        }
    )
    seen = world.store("service_visits", "tom").get(toms.id)
    assert (
        seen.fields["address"] == "杭州市西湖区文三路1号"
        and seen.fields["contact_phone"] == "+8613812345678"
    )
    with pytest.raises(NotFound):
        world.store("service_visits", "tom").get(tias.id)
    with pytest.raises(PermissionDenied):
        world.store("service_visits", "tom").update(
            toms.id, {"address": "elsewhere"}, version=seen.version
        )
    done = world.store("service_visits", "tom").update(
        toms.id,
        {"status": "done", "work_done": "更换了排水泵", "hours": "1.5"},
        version=seen.version,
    )
    assert done.fields["status"] == "done"
    with pytest.raises(PermissionDenied):
        world.store("service_visits", "tom").export("csv")
    for table in ("surveys", "follow_ups"):
        with pytest.raises(PermissionDenied):
            world.store(table, "tom").query(RecordQuery())
    customer = world.store("customers", "tom").get(ticket.fields["customer"]).fields
    assert "email" not in customer and "wechat_id" not in customer
    assert "channel" not in world.store("tickets", "tom").get(ticket.id).fields
    closed = world.store("tickets").update(
        ticket.id, {"status": "closed"}, version=world.store("tickets").get(ticket.id).version
    )
    with pytest.raises(NotFound):
        world.store("tickets", "tom").get(closed.id)


def test_the_supervisor_sees_everything_in_clear(world: World) -> None:
    for table in TABLES:
        assert world.ids_of(table, "sue") == world.ids_of(table)
    survey = world.store("surveys").create({"rating": 2, "name": "王芳", "phone": "13812345678"})
    assert world.store("surveys", "sue").get(survey.id).fields["phone"] == "+8613812345678"


# --- automations ---------------------------------------------------------------------------------


def test_a_new_ticket_gets_its_sla_from_the_priority(world: World, ticket: Any) -> None:
    today = dt.datetime.now(dt.UTC).date()
    assert ticket.fields["sla_due"] == dt.datetime.combine(
        today + dt.timedelta(days=2), dt.time(), dt.UTC
    )
    customer = ticket.fields["customer"]
    urgent = world.store("tickets", "amy").create(
        {"subject": "冰箱漏水", "customer": customer, "issue": "Leaks.", "priority": "urgent"}
    )
    assert urgent.fields["sla_due"].date() == today + dt.timedelta(days=1)
    assert [n.record_id for n in notes_from(world, "sue", "urgent_ticket")] == [urgent.id]
    assert notes_from(world, "amy", "urgent_ticket") == []
    given = world.store("tickets", "amy").create(
        {
            "subject": "x",
            "customer": customer,
            "issue": "y",
            "priority": "low",
            "sla_due": "2026-07-01T08:00:00Z",
        }
    )
    # A given SLA is kept
    assert given.fields["sla_due"] == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)


def test_a_ticket_past_its_sla_escalates_once(world: World, ticket: Any) -> None:
    due = ticket.fields["sla_due"]
    for _ in range(2):
        automations.run_scheduled(world.rb, now=due + dt.timedelta(hours=1))
    # (sample tickets due in the same window escalate too: only this ticket's notes are counted)
    assert [n.record_id for n in notes_from(world, "sue", "sla_breach")].count(ticket.id) == 1
    assert [n.record_id for n in notes_from(world, "amy", "sla_breach")].count(ticket.id) == 1
    assert ticket.id not in [n.record_id for n in notes_from(world, "alan", "sla_breach")]
    resolved = world.store("tickets").create(
        {
            "subject": "done",
            "customer": ticket.fields["customer"],
            "issue": "x",
            "status": "resolved",
            "sla_due": due.isoformat(),
        }
    )
    automations.run_scheduled(world.rb, now=due + dt.timedelta(hours=2))
    assert resolved.id not in [n.record_id for n in notes_from(world, "sue", "sla_breach")]


def test_a_resolved_ticket_is_dated_and_a_closed_one_gets_a_follow_up(
    world: World, ticket: Any
) -> None:
    tickets = world.store("tickets", "amy")
    resolved = tickets.update(ticket.id, {"status": "resolved"}, version=ticket.version)
    today = dt.datetime.now(dt.UTC).date()
    assert resolved.fields["resolved_on"] == today and resolved.fields["sla_breached"] is False
    closed = tickets.update(ticket.id, {"status": "closed"}, version=resolved.version)
    [follow_up] = (
        world.store("follow_ups", "amy")
        .query(RecordQuery(filter={"field": "ticket", "op": "eq", "value": closed.id}))
        .records
    )
    assert (
        follow_up.fields["kind"] == "satisfaction_call"
        and follow_up.fields["owner"] == world.ids["amy"]
    )
    assert (
        follow_up.fields["due_on"] == today + dt.timedelta(days=3)
        and follow_up.fields["done"] is False
    )


def test_a_new_visit_tells_its_technician(world: World, ticket: Any) -> None:
    visit = world.store("service_visits", "amy").create(
        {
            "ticket": ticket.id,
            "technician": world.ids["tia"],
            "scheduled_at": "2026-12-01T01:30:00Z",
            "address": "杭州市",
        }
    )
    assert [n.record_id for n in notes_from(world, "tia", "tell_technician")] == [visit.id]
    assert notes_from(world, "tom", "tell_technician") == []


def test_warranty_in_force_follows_its_end_date(world: World, ticket: Any) -> None:
    product = world.ids_of("products")[0]
    today = dt.datetime.now(dt.UTC).date()
    valid = world.store("warranties", "amy").create(
        {
            "serial_number": "SN-1",
            "product": product,
            "ends_on": (today + dt.timedelta(days=30)).isoformat(),
        }
    )
    over = world.store("warranties", "amy").create(
        {"serial_number": "SN-2", "product": product, "ends_on": "2020-01-01"}
    )
    assert (valid.fields["in_force"], over.fields["in_force"]) == (True, False)
    covered = world.store("tickets", "amy").update(
        ticket.id, {"warranty": valid.id}, version=ticket.version
    )
    assert covered.fields["under_warranty"] is True


# --- the public satisfaction survey -------------------------------------------------------------


def test_the_satisfaction_survey_is_a_public_form_with_consent(world: World, ticket: Any) -> None:
    with pytest.raises(PermissionDenied):
        public_forms.create_link(world.rb, world.actor("amy"), "after_sales", "satisfaction_survey")
    link = public_forms.create_link(
        world.rb, world.actor("sue"), "after_sales", "satisfaction_survey"
    )
    form = public_forms.find(world.rb, link.token)
    assert form is not None
    assert [f.slug for f in form.fields] == [
        "ticket_number",
        "rating",
        "solved",
        "speed",
        "comments",
        "name",
        "phone",
    ]
    assert [(p.purpose, p.required) for p in form.purposes] == [
        ("survey", True),
        ("call_back", False),
    ]
    answers = {
        "ticket_number": ticket.fields["number"],
        "rating": 1,
        "solved": False,
        "comments": "师傅迟到了两小时",
    }
    with pytest.raises(ValidationError):
        public_forms.submit(world.rb, link.token, answers, [], source=None)
    with pytest.raises(ValidationError):
        public_forms.submit(
            world.rb, link.token, {**answers, "ticket": ticket.id}, ["survey"], source=None
        )
    unhappy = public_forms.submit(
        world.rb,
        link.token,
        {**answers, "name": "王芳", "phone": "13812345678"},
        ["survey", "call_back"],
        source=None,
    )
    happy = public_forms.submit(world.rb, link.token, {"rating": 5}, ["survey"], source=None)
    assert [n.record_id for n in notes_from(world, "sue", "unhappy_customer")] == [
        unhappy
    ]  # not the happy one
    got = world.store("surveys", "sue").get(unhappy).fields
    assert got["phone"] == "+8613812345678" and got["ticket_number"] == "TK-000026"
    assert sorted(c["purpose"] for c in world.store("surveys").consents(unhappy)) == [
        "call_back",
        "survey",
    ]
    assert world.store("surveys", "amy").get(happy).fields["rating"] == 5
    public_forms.revoke_link(
        world.rb, world.actor("sue"), "after_sales", "satisfaction_survey", link.id
    )
    with pytest.raises(NotFound):
        public_forms.submit(world.rb, link.token, {"rating": 3}, ["survey"], source=None)
