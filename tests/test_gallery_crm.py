"""The gallery's CRM template: clean definition, sample data, and each role exercised through the engine.

Installs ``schemas/gallery/crm.json`` with sample data on both databases and
acts as the four roles the template declares, with users of our own:

- ``sales_manager`` (Mei, region east; Wang, region north): every contact,
  lead, deal and activity of their region, personal data in clear;
- ``sales_rep`` (Ravi, Rosa): only the contacts, leads, deals and activities
  they own, their own contacts' phones in clear; another rep's record answers
  like a missing one;
- ``marketing`` (Mark): personal data masked, no export anywhere, closed
  deals only and without amounts; may add leads from campaigns;
- ``auditor`` (Ada): reads every record, personal data masked, writes nothing.

Then the automations (a won deal plans a kick-off call, a lost one tells the
region's manager, a new contact is dated, a due follow-up reminds its owner)
and the public enquiry form with its consent.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
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
from recordbase.errors import NotFound, PermissionDenied, QueryError, ValidationError

TEMPLATE = template_path("crm")
TABLES = ["companies", "contacts", "deals", "leads", "activities"]
PHONE = "+8613812345678"

# name → (roles in the CRM, user attributes)
PEOPLE: dict[str, tuple[list[str], dict[str, str]]] = {
    "mei": (["sales_manager"], {"region": "east"}),
    "wang": (["sales_manager"], {"region": "north"}),
    "ravi": (["sales_rep"], {}),
    "rosa": (["sales_rep"], {}),
    "mark": (["marketing"], {}),
    "ada": (["auditor"], {}),
    "nora": (["sales_manager"], {}),  # a manager without a region sees no regional rows
}


@pytest.fixture
def world(rb: Recordbase) -> World:
    return make_world(
        rb,
        "crm",
        {name: roles for name, (roles, _) in PEOPLE.items()},
        {name: attrs for name, (_, attrs) in PEOPLE.items()},
    )


# --- the definition ---------------------------------------------------------------------------


def test_the_template_checks_without_a_problem_or_a_warning(rb: Recordbase) -> None:
    data = load_template("crm")
    assert check_definition(data) == []
    assert rb.check(data) == []  # field types' own checks too, as `recordbase check crm` runs them


def test_every_text_has_english_and_chinese_and_every_part_a_stable_id() -> None:
    data = load_template("crm")
    texts = texts_in(data)
    assert len(texts) > 150
    assert not_bilingual(texts) == []
    for table in data["tables"]:
        assert table["id"].startswith("tbl_")
        for f in table["fields"]:
            assert f["id"].startswith("fld_")
            assert all(c["id"] for c in f.get("options", {}).get("choices", []))
    assert len(data["use_cases"]) >= 3


def test_the_template_keeps_what_was_there_and_adds_leads_and_a_dashboard() -> None:
    data = load_template("crm")
    assert [t["slug"] for t in data["tables"]] == TABLES
    assert [r["slug"] for r in data["roles"]] == [
        "sales_manager",
        "sales_rep",
        "marketing",
        "auditor",
    ]
    views = [(v["slug"], v["type"]) for v in data["views"]]
    assert views[:4] == [
        ("open_deals", "grid"),
        ("pipeline", "kanban"),
        ("activity_calendar", "calendar"),
        ("new_contact", "form"),
    ]
    assert {"kanban", "calendar", "form", "grid", "dashboard"} <= {kind for _, kind in views}


def test_personal_data_has_a_purpose_consent_retention_and_an_erasure_rule() -> None:
    data = load_template("crm")
    for table in data["tables"]:
        personal = [
            f
            for f in table["fields"]
            if f.get(
                "sensitivity",
                "personal" if f["type"] in ("email", "phone", "address") else "internal",
            )
            in ("personal", "sensitive")
        ]
        assert all(f.get("purpose") for f in personal)
        if personal:
            assert table["slug"] in ("contacts", "leads")
            assert table["consent"]["purposes"][0] == "sales_follow_up"
            assert table["retention"]["action"] in ("anonymise", "delete")
            assert table["erasure"] == {"action": "delete"}


# --- sample data --------------------------------------------------------------------------------


def test_install_with_sample_data_fills_every_table_and_computes(world: World) -> None:
    assert world.counts == dict.fromkeys(TABLES, 25)
    deals = world.by_id("deals")
    assert [d.fields["number"] for d in deals.values()][:2] == ["DEAL-00001", "DEAL-00002"]
    for deal in deals.values():
        amount, probability = deal.fields["amount"], deal.fields["probability"]
        if amount is not None and probability is not None:
            expected = (amount * probability / 100).quantize(Decimal("0.01"))
            assert deal.fields["forecast"] == expected
    for company in world.by_id("companies").values():
        linked = [d for d in deals.values() if d.fields["company"] == company.id]
        assert company.fields["deal_count"] == len(linked)
    contacts = world.by_id("contacts")
    # Sampled, or dated by the automation
    assert all(c.fields["last_contacted"] is not None for c in contacts.values())
    # Faker names, not one value repeated
    assert len({c.fields["name"] for c in contacts.values()}) > 20


def test_every_dashboard_chart_adds_up(world: World) -> None:
    dashboards = [v for v in load_template("crm")["views"] if v["type"] == "dashboard"]
    assert dashboards
    for view in dashboards:
        for chart in view["charts"]:
            store = world.store(chart.get("table", view["table"]), "mei")
            groups = store.aggregate(
                group_by=chart.get("group_by"),
                metrics=[chart["metric"]],
                filter=chart.get("filter"),
            )
            assert groups, chart["slug"]
    by_stage = world.store("deals", "mei").aggregate(group_by="stage", metrics=["count"])
    assert sum(g.metrics["count"] for g in by_stage) == len(world.ids_of("deals", "mei"))


# --- roles ----------------------------------------------------------------------------------------


def owned_by(world: World, person: str) -> dict[str, Any]:
    return {"field": "owner", "op": "eq", "value": world.ids[person]}


def test_a_rep_sees_only_their_own_leads_deals_and_activities(world: World) -> None:
    for rep, other in (("ravi", "rosa"), ("rosa", "ravi")):
        for table in ("leads", "deals", "activities"):
            mine = world.ids_of(table, None, owned_by(world, rep))
            assert world.ids_of(table, rep) == mine
        theirs = world.ids_of("deals", None, owned_by(world, other))
        assert theirs, "the sample data gives every user some deals"
        with pytest.raises(NotFound):
            world.store("deals", rep).get(theirs[0])
        deal = world.store("deals").get(theirs[0])
        with pytest.raises(NotFound):
            world.store("deals", rep).update(deal.id, {"name": "mine now"}, version=deal.version)


def test_a_rep_sees_phones_in_clear_only_on_their_own_contacts(world: World) -> None:
    contacts = world.store("contacts")
    ravis = contacts.create(
        {"name": "王芳", "phone": "138 1234 5678", "region": "east", "owner": world.ids["ravi"]}
    )
    rosas = contacts.create(
        {"name": "李雷", "phone": "139 1234 5678", "region": "east", "owner": world.ids["rosa"]}
    )
    as_ravi = world.store("contacts", "ravi")
    assert as_ravi.get(ravis.id).fields["phone"] == PHONE
    theirs = as_ravi.get(rosas.id)  # the contact book is shared...
    assert theirs.fields["phone"] == "+86 139****5678"  # ...another rep's contact masked
    assert theirs.fields["name"] != "李雷"
    with pytest.raises(PermissionDenied):  # no taking a contact over to see it in clear
        as_ravi.update(rosas.id, {"owner": world.ids["ravi"]}, version=theirs.version)
    # A rep may reveal another rep's contact, with a reason that lands in the audit trail.
    assert as_ravi.reveal(rosas.id, "phone", "customer asked to be called back") == "+8613912345678"
    with pytest.raises(QueryError):  # nor may a filter probe a value masked on some rows
        as_ravi.query(RecordQuery(filter={"field": "phone", "op": "eq", "value": "13912345678"}))
    all_phones = {
        r.id: r.fields["phone"] for r in as_ravi.query(RecordQuery(page_size=500)).records
    }
    clear = {r.id: r.fields["phone"] for r in contacts.query(RecordQuery(page_size=500)).records}
    owned = set(world.ids_of("contacts", None, owned_by(world, "ravi")))
    assert set(all_phones) == set(clear)
    assert {i for i, p in all_phones.items() if p is not None and p == clear[i]} == {
        i for i in owned if clear[i] is not None
    }
    created = as_ravi.create({"name": "张伟", "phone": "13700001111", "region": "west"})
    assert created.fields["owner"] == world.ids["ravi"]  # whoever enters a contact owns it
    assert created.fields["phone"] == "+8613700001111"
    assert world.store("contacts", "rosa").get(created.id).fields["phone"] == "+86 137****1111"


def test_a_manager_sees_everything_of_their_region_in_clear(world: World) -> None:
    east = {"field": "region", "op": "eq", "value": "east"}
    for table in ("contacts", "leads", "deals"):
        assert world.ids_of(table, "mei") == world.ids_of(table, None, east)
        assert world.ids_of(table, "wang") == world.ids_of(table, None, {**east, "value": "north"})
    assert world.ids_of("deals", "mei"), "the sample data has deals in the east"
    activities = {"or": [east, {"field": "contact_region", "op": "eq", "value": "east"}]}
    assert world.ids_of("activities", "mei") == world.ids_of("activities", None, activities)
    assert world.ids_of("companies", "mei") == world.ids_of("companies")  # companies are shared
    contact = world.store("contacts").create({"name": "王芳", "phone": PHONE, "region": "east"})
    assert world.store("contacts", "mei").get(contact.id).fields["phone"] == PHONE
    with pytest.raises(NotFound):
        world.store("contacts", "wang").get(contact.id)
    company = world.ids_of("companies")[0]
    with pytest.raises(PermissionDenied):
        world.store("deals", "mei").create(
            {"name": "Elsewhere", "company": company, "region": "west"}
        )
    assert (
        world.store("deals", "mei")
        .create({"name": "Here", "company": company, "region": "east"})
        .id
    )
    east_deal = world.store("deals").create({"name": "East", "company": company, "region": "east"})
    west_deal = world.store("deals").create({"name": "West", "company": company, "region": "west"})
    call = world.store("activities", "mei").create({"subject": "拜访", "deal": east_deal.id})
    assert call.fields["region"] == "east"  # the deal's region decides who sees its activities
    with pytest.raises(ValidationError):  # a west deal is not one mei may link to
        world.store("activities", "mei").create({"subject": "拜访", "deal": west_deal.id})
    with pytest.raises(
        PermissionDenied
    ):  # no deal, no contact: in no region, so not mei's to create
        world.store("activities", "mei").create({"subject": "拜访"})
    for table in ("contacts", "leads", "deals", "activities"):
        assert world.ids_of(table, "nora") == []  # no region attribute: the rule matches nothing


def test_marketing_sees_personal_data_masked_and_may_not_export(world: World) -> None:
    contact = world.store("contacts").create(
        {
            "name": "王芳",
            "phone": PHONE,
            "wechat_id": "wangfang88",
            "email": "wang.fang@example.com",
            "notes": "prefers mornings",
            "region": "east",
        }
    )
    seen = world.store("contacts", "mark").get(contact.id).fields
    assert seen["phone"] == "+86 138****5678"
    assert seen["email"] != "wang.fang@example.com" and "***" in seen["email"]
    assert seen["name"] != "王芳" and seen["wechat_id"] != "wangfang88"
    assert "notes" not in seen
    for table in TABLES:
        store = world.store(table, "mark")
        with pytest.raises(PermissionDenied):
            store.export("csv")
    with pytest.raises(PermissionDenied):
        world.store("contacts", "mark").reveal(contact.id, "phone", "campaign planning")
    closed = {"field": "stage", "op": "in", "value": ["won", "lost"]}
    assert world.ids_of("deals", "mark") == world.ids_of("deals", None, closed)
    deal = world.store("deals", "mark").get(world.ids_of("deals", "mark")[0]).fields
    assert "amount" not in deal and "forecast" not in deal and "notes" not in deal
    lead = world.store("leads", "mark").create(
        {"name": "赵敏", "phone": "13900001111", "source": "campaign"}
    )
    assert lead.fields["phone"] == "+86 139****1111"  # written, but read back masked
    with pytest.raises(PermissionDenied):
        world.store("deals", "mark").create({"name": "no", "company": world.ids_of("companies")[0]})


def test_the_auditor_reads_every_record_masked_and_changes_nothing(world: World) -> None:
    for table in TABLES:
        assert world.ids_of(table, "ada") == world.ids_of(table)
    contact = world.store("contacts").create({"name": "王芳", "phone": PHONE, "notes": "secret"})
    seen = world.store("contacts", "ada").get(contact.id)
    assert seen.fields["phone"] == "+86 138****5678" and "notes" not in seen.fields
    with pytest.raises(PermissionDenied):
        world.store("contacts", "ada").update(contact.id, {"title": "CEO"}, version=seen.version)
    with pytest.raises(PermissionDenied):
        world.store("contacts", "ada").delete(contact.id)
    for table in TABLES:
        with pytest.raises(PermissionDenied):
            world.store(table, "ada").create({})


# --- automations ------------------------------------------------------------------------------


def test_a_won_deal_plans_a_kick_off_call_for_its_owner(world: World) -> None:
    company = world.ids_of("companies")[0]
    deal = world.store("deals", "ravi").create(
        {"name": "湖畔项目", "company": company, "stage": "proposal", "amount": "88000"}
    )
    won = world.store("deals", "ravi").update(deal.id, {"stage": "won"}, version=deal.version)
    assert won.fields["activity_count"] == 1
    [call] = (
        world.store("activities", "ravi")
        .query(RecordQuery(filter={"field": "deal", "op": "eq", "value": deal.id}))
        .records
    )
    assert call.fields["owner"] == world.ids["ravi"] and call.fields["kind"] == "call"
    assert call.fields["due_date"].date() == dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
    [note] = notes_from(world, "ravi", "won_kickoff")
    assert note.record_id == deal.id and note.available
    assert notes_from(world, "rosa", "won_kickoff") == []


def test_a_lost_deal_tells_the_manager_of_its_region_only(world: World) -> None:
    company = world.ids_of("companies")[0]
    deal = world.store("deals").create(
        {"name": "Tender", "company": company, "region": "east", "stage": "proposal"}
    )
    world.store("deals").update(deal.id, {"stage": "lost"}, version=deal.version)
    assert [n.record_id for n in notes_from(world, "mei", "lost_review")] == [deal.id]
    assert notes_from(world, "wang", "lost_review") == []  # north cannot read an east deal


def test_a_new_contact_is_dated_for_retention(world: World) -> None:
    contact = world.store("contacts", "ravi").create({"name": "周杰"})
    assert contact.fields["last_contacted"] == dt.datetime.now(dt.UTC).date()
    kept = world.store("contacts", "ravi").create({"name": "吴磊", "last_contacted": "2025-03-01"})
    assert kept.fields["last_contacted"] == dt.date(2025, 3, 1)


def test_a_due_follow_up_reminds_its_owner_once(world: World) -> None:
    due = dt.datetime(2026, 6, 1, 1, 0, tzinfo=dt.UTC)
    activity = world.store("activities").create(
        {
            "subject": "回访王总",
            "due_date": due.isoformat(),
            "done": False,
            "owner": world.ids["rosa"],
        }
    )
    for _ in range(2):
        automations.run_scheduled(world.rb, now=due + dt.timedelta(hours=2))
    assert [n.record_id for n in notes_from(world, "rosa", "due_reminder")] == [activity.id]


# --- the public enquiry form ------------------------------------------------------------------


def test_the_web_enquiry_form_makes_a_lead_with_consent(world: World) -> None:
    with pytest.raises(PermissionDenied):
        public_forms.create_link(world.rb, world.actor("ravi"), "crm", "web_enquiry")
    link = public_forms.create_link(world.rb, world.actor("mei"), "crm", "web_enquiry")
    form = public_forms.find(world.rb, link.token)
    assert form is not None
    assert [f.slug for f in form.fields] == [
        "name",
        "company_name",
        "title",
        "phone",
        "email",
        "wechat_id",
        "region",
        "message",
    ]
    assert [(p.purpose, p.required) for p in form.purposes] == [
        ("sales_follow_up", True),
        ("product_news", False),
    ]
    values = {
        "name": "陈静",
        "phone": "13612345678",
        "region": "east",
        "message": "想了解企业版报价",
    }
    with pytest.raises(ValidationError):
        public_forms.submit(world.rb, link.token, values, [], source=None)
    lead_id = public_forms.submit(
        world.rb, link.token, values, ["sales_follow_up"], source="203.0.113.9"
    )
    lead = world.store("leads", "mei").get(lead_id)
    assert lead.fields["source"] == "website" and lead.fields["status"] == "new"
    assert lead.fields["phone"] == "+8613612345678"
    assert [c["purpose"] for c in world.store("leads").consents(lead_id)] == ["sales_follow_up"]
    assert [n.record_id for n in notes_from(world, "mei", "web_enquiry_source")] == [lead_id]
    assert notes_from(world, "wang", "web_enquiry_source") == []
    with pytest.raises(ValidationError):
        public_forms.submit(
            world.rb,
            link.token,
            {**values, "owner": world.ids["mei"]},
            ["sales_follow_up"],
            source=None,
        )


def test_the_cli_name_resolves_to_this_template() -> None:
    from recordbase.cli import GALLERY

    assert GALLERY / "crm.json" == TEMPLATE
    assert json.loads(TEMPLATE.read_text(encoding="utf-8"))["slug"] == "crm"
