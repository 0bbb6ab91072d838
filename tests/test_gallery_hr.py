"""The gallery's HR template (``schemas/gallery/hr.json``): sensitive data done right, on both databases.

Installed with its sample data, then used by the people of a small company:
HR (the only role that reveals ID numbers and health notes, with a reason that
is audited), payroll (reveals ID numbers and bank accounts, never health
notes), two managers (each sees their own team, without salaries or sensitive
data, and approves its leave) and two employees (each sees their own record,
sensitive values masked, updates their contact details and requests leave).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from gallery_helpers import (
    SYSTEM,
    TODAY,
    GalleryApp,
    install_with_sample_data,
    labels_in,
    load_template,
    not_bilingual,
)
from recordbase import automations
from recordbase.actor import Actor
from recordbase.collab import list_notifications
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import NotFound, PermissionDenied, RecordbaseError, ValidationError
from recordbase.retention import run_retention

SENSITIVE = ("id_number", "bank_account", "health_notes")
ID_NUMBER = "110101199003071234"
BANK_ACCOUNT = "6222021234567890123"
HEALTH = "Back injury: needs a standing desk"


def test_the_template_has_no_problem_and_no_warning() -> None:
    assert check_definition(load_template("hr")) == []


def test_every_text_is_in_english_and_chinese() -> None:
    texts = labels_in(load_template("hr"))
    assert len(texts) > 100
    assert not_bilingual(texts, filled=True) == []


def test_sensitive_fields_have_a_purpose_encryption_consent_and_retention_and_only_hr_roles_reveal() -> (
    None
):
    data = load_template("hr")
    employees = next(t for t in data["tables"] if t["slug"] == "employees")
    fields = {f["slug"]: f for f in employees["fields"]}
    for slug in SENSITIVE:
        assert fields[slug]["sensitivity"] == "sensitive" and fields[slug]["encrypted"] is True
        assert all(len(text) > 10 for text in fields[slug]["purpose"].values())  # en and zh-CN
    assert employees["retention"] == {"field": "end_date", "days": 730, "action": "anonymise"}
    assert employees["erasure"]["action"] == "anonymise"
    assert employees["consent"]["purposes"] == ["employment"]
    onboarding = next(v for v in data["views"] if v["slug"] == "new_hire_details")
    assert set(onboarding["consent_labels"]) == {
        "employment",
        *(f"sensitive:{s}" for s in SENSITIVE),
    }
    revealers = {
        (t["slug"], role)
        for t in data["tables"]
        for role, grant in t["permissions"].items()
        if grant.get("reveal")
    }
    assert revealers == {("employees", "hr"), ("employees", "payroll")}
    assert not any(
        g.get("export_sensitive") for t in data["tables"] for g in t["permissions"].values()
    )


# --- installed, with sample data and people ---------------------------------------------------


@pytest.fixture
def hr(rb: Recordbase) -> Recordbase:
    counts, _ = install_with_sample_data(rb, "hr")
    assert counts == {"departments": 25, "employees": 25, "leave_requests": 25}
    return rb


class Company(GalleryApp):
    """HR, payroll, managers Mei and Tao, and employees Ann (Mei's team) and Bo (Tao's team)."""

    app = "hr"

    def __init__(self, rb: Recordbase) -> None:
        super().__init__(rb)
        self.hr = self.person("hr@example.org", "hr")
        self.payroll = self.person("payroll@example.org", "payroll")
        self.mei = self.person("mei@example.org", "manager")
        self.tao = self.person("tao@example.org", "manager")
        self.ann = self.person("ann@example.org", "employee")
        self.bo = self.person("bo@example.org", "employee")
        department = rb.records(SYSTEM, "hr", "departments").create(
            {"name": "Customer service", "code": "CS"}
        )
        employees = rb.records(self.hr, "hr", "employees")
        self.ann_record = employees.create(
            {
                "name": "Ann Li",
                "account": self.ann.user_id,
                "manager": self.mei.user_id,
                "department": department.id,
                "job_title": "Agent",
                "hire_date": "2024-03-01",
                "work_email": "ann@example.org",
                "mobile": "13812345678",
                "home_address": "1 Garden Road, Shanghai",
                "emergency_contact": "Li Lei (brother) 13900001111",
                "salary": "12000",
                "annual_leave": 10,
                "id_number": ID_NUMBER,
                "bank_account": BANK_ACCOUNT,
                "health_notes": HEALTH,
            }
        )
        self.bo_record = employees.create(
            {
                "name": "Bo Wang",
                "account": self.bo.user_id,
                "manager": self.tao.user_id,
                "department": department.id,
                "salary": "9000",
                "id_number": "310101198001011111",
            }
        )

    def employees(self, actor: Actor) -> Any:
        return self.store(actor, "employees")

    def leave(self, actor: Actor) -> Any:
        return self.store(actor, "leave_requests")


@pytest.fixture
def company(hr: Recordbase) -> Company:
    return Company(hr)


def reveals(rb: Recordbase) -> list[dict[str, Any]]:
    return [
        {
            "actor": e["actor_name"],
            "record": e["record_id"],
            **(json.loads(e["changes"]) if isinstance(e["changes"], str) else e["changes"]),
        }
        for e in rb.audit_entries(app="hr", table="employees", action="reveal")
    ]


def masked(rb: Recordbase, slug: str, value: Any) -> Any:
    f = rb.app("hr").tables["employees"].fields[slug]
    return f.type.mask(f, value)


def test_the_sample_data_is_consistent(hr: Recordbase) -> None:
    employees = hr.records(SYSTEM, "hr", "employees").query(sort=["id"], page_size=100).records
    leave = hr.records(SYSTEM, "hr", "leave_requests").query(sort=["id"], page_size=100).records
    for e in employees:
        taken = sum(
            (
                r.fields["days"]
                for r in leave
                if r.fields["employee"] == e.id
                and r.fields["status"] == "approved"
                and r.fields["leave_type"] == "annual"
                and r.fields["start_date"].year == TODAY.year  # the balance is this year's
            ),
            start=0,
        )
        assert e.fields["leave_taken"] == taken
        assert e.fields["leave_balance"] == (e.fields["annual_leave"] or 0) - taken
    for r in leave:
        assert r.fields["days"] == (r.fields["end_date"] - r.fields["start_date"]).days + 1


def test_sensitive_values_are_sealed_at_rest(company: Company) -> None:
    ts = company.rb.app("hr").tables["employees"]
    with company.rb.read() as conn:
        row = (
            conn.execute(sa.select(ts.table).where(ts.table.c.id == company.ann_record.id))
            .mappings()
            .one()
        )
    stored = json.dumps({k: str(v) for k, v in row.items()}, ensure_ascii=False)
    for clear in (ID_NUMBER, BANK_ACCOUNT, HEALTH, "13812345678", "1 Garden Road"):
        assert clear not in stored
    assert "Ann Li" in stored  # the name is declared unencrypted, for a sortable directory


def test_hr_sees_sensitive_values_masked_and_reveals_them_with_an_audited_reason(
    company: Company,
) -> None:
    store = company.employees(company.hr)
    ann = store.get(company.ann_record.id)
    for slug, clear in (
        ("id_number", ID_NUMBER),
        ("bank_account", BANK_ACCOUNT),
        ("health_notes", HEALTH),
    ):
        assert ann.fields[slug] == masked(company.rb, slug, clear) != clear
    assert ann.fields["salary"] == 12000 and ann.fields["mobile"] == "+8613812345678"
    with pytest.raises(ValidationError):
        store.reveal(ann.id, "id_number", "why")
    assert store.reveal(ann.id, "id_number", "Social insurance registration") == ID_NUMBER
    assert store.reveal(ann.id, "health_notes", "Desk adjustment requested") == HEALTH
    entries = reveals(company.rb)
    assert [(e["actor"], e["record"], e["slug"], e["reason"]) for e in entries] == [
        ("hr", ann.id, "id_number", "Social insurance registration"),
        ("hr", ann.id, "health_notes", "Desk adjustment requested"),
    ]
    assert ID_NUMBER not in json.dumps(entries) and "standing desk" not in json.dumps(entries)
    # The export leaves sensitive fields out: no role has export_sensitive.
    export = store.export("json")
    assert sorted(o.field for o in export.omitted) == sorted(SENSITIVE)
    assert not {f.slug for f in export.fields} & set(SENSITIVE)


def test_payroll_reveals_bank_accounts_but_never_sees_health_notes(company: Company) -> None:
    store = company.employees(company.payroll)
    ann = store.get(company.ann_record.id)
    assert (
        "health_notes" not in ann.fields
        and "home_address" not in ann.fields
        and "emergency_contact" not in ann.fields
    )
    assert ann.fields["bank_account"] == masked(company.rb, "bank_account", BANK_ACCOUNT)
    assert store.reveal(ann.id, "bank_account", "November salary run") == BANK_ACCOUNT
    with pytest.raises(PermissionDenied):
        store.reveal(ann.id, "health_notes", "Just curious about it")
    assert [e["slug"] for e in reveals(company.rb)] == ["bank_account"]


def test_a_manager_sees_their_team_without_salary_or_sensitive_data_and_cannot_reveal(
    company: Company,
) -> None:
    store = company.employees(company.mei)
    assert [r.id for r in store.query(page_size=100).records] == [company.ann_record.id]
    with pytest.raises(NotFound):
        store.get(company.bo_record.id)  # another manager's team: as if it did not exist
    ann = store.get(company.ann_record.id)
    for slug in (*SENSITIVE, "salary", "home_address", "emergency_contact"):
        assert slug not in ann.fields
    assert ann.fields["name"] == "Ann Li" and ann.fields["mobile"] == "+8613812345678"
    with pytest.raises(PermissionDenied):
        store.reveal(ann.id, "id_number", "Checking her identity")
    with pytest.raises(PermissionDenied):
        store.update(ann.id, {"job_title": "Team lead"}, version=ann.version)
    assert [r.id for r in company.employees(company.tao).query(page_size=100).records] == [
        company.bo_record.id
    ]


def test_an_employee_sees_only_their_own_record_masked_and_updates_their_contact_details(
    company: Company,
) -> None:
    store = company.employees(company.ann)
    assert [r.id for r in store.query(page_size=100).records] == [company.ann_record.id]
    with pytest.raises(NotFound):
        store.get(company.bo_record.id)
    ann = store.get(company.ann_record.id)
    assert ann.fields["id_number"] == masked(company.rb, "id_number", ID_NUMBER)
    assert ann.fields["bank_account"] == masked(company.rb, "bank_account", BANK_ACCOUNT)
    assert "health_notes" not in ann.fields
    assert ann.fields["salary"] == 12000
    with pytest.raises(PermissionDenied):
        store.reveal(ann.id, "id_number", "It is my own number")
    updated = store.update(
        ann.id, {"mobile": "13900002222", "home_address": "2 River Street"}, version=ann.version
    )
    assert updated.fields["mobile"] == "+8613900002222"
    for change in (
        {"salary": "20000"},
        {"bank_account": "6222000000000000"},
        {"manager": company.ann.user_id},
    ):
        with pytest.raises(PermissionDenied):
            store.update(ann.id, change, version=updated.version)


def test_each_sensitive_field_has_its_own_consent(company: Company) -> None:
    store = company.employees(company.hr)
    ann = company.ann_record.id
    purposes = [
        "employment",
        "sensitive:id_number",
        "sensitive:bank_account",
        "sensitive:health_notes",
    ]
    store.give_consent(ann, purposes, version="2026-01", channel="onboarding form")
    assert [c["purpose"] for c in store.consents(ann)] == purposes
    assert (
        store.withdraw_consent(ann, "sensitive:health_notes", channel="email")
        == 'emptied "health_notes"'
    )
    assert store.reveal(ann, "health_notes", "Checking the withdrawal") is None
    assert store.reveal(ann, "id_number", "Checking the rest is kept") == ID_NUMBER
    with pytest.raises(ValidationError):
        store.give_consent(
            ann, ["sensitive:salary"], version="2026-01", channel="web"
        )  # salary is not sensitive


def test_a_new_hire_gives_each_sensitive_consent_separately_on_the_shared_form(
    company: Company,
) -> None:
    from recordbase import public_forms

    with pytest.raises(PermissionDenied):
        public_forms.create_link(company.rb, company.mei, "hr", "new_hire_details")
    link = public_forms.create_link(company.rb, company.hr, "hr", "new_hire_details")
    form = public_forms.find(company.rb, link.token)
    assert form is not None
    assert [f.slug for f in form.fields] == [
        "name",
        "mobile",
        "home_address",
        "emergency_contact",
        *SENSITIVE,
    ]  # nothing a new hire should set: no salary, no manager, no account
    details = {
        "name": "Chen Jing",
        "mobile": "13700001234",
        "id_number": ID_NUMBER,
        "bank_account": BANK_ACCOUNT,
    }
    with pytest.raises(ValidationError) as refused:
        public_forms.submit(
            company.rb, link.token, details, ["employment", "sensitive:id_number"], source="test"
        )
    assert [p.pointer for p in refused.value.problems] == ["/consents/sensitive:bank_account"]
    with pytest.raises(ValidationError):
        public_forms.submit(
            company.rb, link.token, {**details, "salary": "99999"}, ["employment"], source="test"
        )
    given = ["employment", "sensitive:id_number", "sensitive:bank_account"]
    new_id = public_forms.submit(company.rb, link.token, details, given, source="test")
    store = company.employees(company.hr)
    record = store.get(new_id)
    assert (record.fields["status"], record.fields["salary"], record.fields["health_notes"]) == (
        "onboarding",
        None,
        None,
    )
    assert record.fields["id_number"] == masked(company.rb, "id_number", ID_NUMBER)
    assert [c["purpose"] for c in store.consents(new_id)] == given


def test_retention_anonymises_leavers_two_years_after_their_contract_ends(company: Company) -> None:
    store = company.employees(company.hr)
    long_gone = store.create(
        {
            "name": "Old Timer",
            "status": "left",
            "end_date": (TODAY - dt.timedelta(days=800)).isoformat(),
            "id_number": ID_NUMBER,
            "salary": "8000",
            "job_title": "Clerk",
        }
    )
    recent = store.create(
        {
            "name": "Just Left",
            "status": "left",
            "end_date": (TODAY - dt.timedelta(days=100)).isoformat(),
            "id_number": ID_NUMBER,
        }
    )
    run_retention(company.rb)
    system = company.employees(SYSTEM)
    gone = system.get(long_gone.id).fields
    assert (gone["name"], gone["id_number"], gone["salary"], gone["job_title"]) == (
        None,
        None,
        None,
        "Clerk",
    )
    assert system.get(recent.id).fields["id_number"] == ID_NUMBER


def test_leave_is_requested_by_the_employee_and_decided_by_their_manager(company: Company) -> None:
    rb = company.rb
    mine = company.leave(company.ann)
    start = TODAY  # this year's leave, whatever the date
    request = mine.create(
        {
            "employee": company.ann_record.id,
            "leave_type": "annual",
            "start_date": start.isoformat(),
            "end_date": (start + dt.timedelta(days=2)).isoformat(),
            "reason": "Family visit",
        }
    )
    assert (
        request.fields["days"],
        request.fields["status"],
        request.fields["employee_manager"],
    ) == (3, "pending", company.mei.user_id)
    with pytest.raises(RecordbaseError):  # Bo's record is not Ann's to link to
        mine.create(
            {
                "employee": company.bo_record.id,
                "start_date": start.isoformat(),
                "end_date": start.isoformat(),
            }
        )
    with pytest.raises(PermissionDenied):
        mine.update(request.id, {"status": "approved"}, version=request.version)
    # The request went to Ann's manager, and to no other manager.
    assert [(n.kind, n.record_id) for n in list_notifications(rb, company.mei)] == [
        ("automation", request.id)
    ]
    assert list_notifications(rb, company.tao) == []
    with pytest.raises(NotFound):
        company.leave(company.tao).get(request.id)
    boss = company.leave(company.mei)
    seen = boss.get(request.id)
    assert seen.fields["reason"] == "Family visit"
    with pytest.raises(PermissionDenied):
        boss.update(request.id, {"end_date": start.isoformat()}, version=seen.version)
    decided = boss.update(
        request.id, {"status": "approved", "decision_note": "Enjoy"}, version=seen.version
    )
    assert decided.fields["decided_on"] == TODAY
    assert [n.record_id for n in list_notifications(rb, company.ann)] == [request.id]
    ann = company.employees(company.hr).get(company.ann_record.id)
    assert (ann.fields["leave_taken"], ann.fields["leave_balance"]) == (3, 7)
    # Payroll sees approved leave without its reason; Bo sees none of it.
    paid = company.leave(company.payroll).get(request.id)
    assert "reason" not in paid.fields and paid.fields["days"] == 3
    assert company.leave(company.bo).query(page_size=10).records == []


def test_a_request_still_pending_the_day_before_it_starts_reminds_the_manager(
    company: Company,
) -> None:
    tomorrow = TODAY + dt.timedelta(days=1)
    request = company.leave(company.ann).create(
        {
            "employee": company.ann_record.id,
            "leave_type": "sick",
            "start_date": tomorrow.isoformat(),
            "end_date": tomorrow.isoformat(),
        }
    )
    before = len(list_notifications(company.rb, company.mei))
    automations.run_scheduled(company.rb)
    reminders = list_notifications(company.rb, company.mei)
    assert len(reminders) == before + 1 and reminders[0].record_id == request.id
    assert list_notifications(company.rb, company.tao) == []
    automations.run_scheduled(company.rb)
    assert (
        len(list_notifications(company.rb, company.mei)) == before + 1
    )  # once per request and date


def test_the_views_and_dashboard_charts_work_for_hr(company: Company) -> None:
    data = load_template("hr")
    for v in data["views"]:
        store = company.rb.records(company.hr, "hr", v["table"])
        if v["type"] in ("grid", "kanban", "calendar"):
            store.query(
                filter=v.get("filter"), sort=v.get("sort"), fields=v.get("fields"), page_size=10
            )
        for c in v.get("charts", []):
            chart_store = company.rb.records(company.hr, "hr", c.get("table", v["table"]))
            groups = chart_store.aggregate(
                group_by=[c["group_by"]] if "group_by" in c else None,
                metrics=[c.get("metric", "count")],
                filter=c.get("filter"),
            )
            assert groups, c["slug"]
