"""Data-subject requests end to end: find a person across apps, export them, erase them everywhere."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import field, link
from recordbase import Actor, Recordbase, ValidationError, subjects
from recordbase.errors import NotFound, PermissionDenied

SYSTEM = Actor.system("test")
EMAIL, PHONE, ID_NUMBER = "Wang.Fang@Example.com", "+8613812345678", "110101199003071234"

CRM = {
    "slug": "crm",
    "label": "CRM",
    "tables": [
        {
            "slug": "contacts", "label": "Contacts",
            "consent": {"purposes": ["marketing"], "text": "We may write to you.", "version": 1},
            "fields": [
                field("name", "text", sensitivity="personal", encrypted=False),
                field("email", "email", unique=True),
                field("phone", "phone"),
                field("id_number", "text", sensitivity="sensitive", purpose="Invoices need it."),
                field("photo", "attachment", sensitivity="personal", purpose="Recognise the customer."),
                field("company", "text"),
            ],
        },
        {
            "slug": "deals", "label": "Deals",
            "fields": [field("title", "text"), link("contact", "contacts", on_delete="cascade"), field("amount", "number")],
        },
        {
            "slug": "calls", "label": "Calls",
            "fields": [
                field("topic", "text"),
                link("contact", "contacts", on_delete="set_null"),
                field("caller_note", "long_text", sensitivity="personal", purpose="What the customer said."),
            ],
        },
    ],
}

SUPPORT = {
    "slug": "support",
    "label": "Support",
    "tables": [{
        "slug": "tickets", "label": "Tickets",
        "erasure": {"action": "anonymise", "reason": "warranty claims must be kept for 3 years"},
        "fields": [
            field("subject", "text"),
            field("customer_email", "email", encrypted=False),
            field("customer_phone", "phone", encrypted=False),
        ],
    }],
}


@pytest.fixture
def people(rb: Recordbase):
    rb.install(CRM, SYSTEM)
    rb.install(SUPPORT, SYSTEM)
    contacts = rb.records(SYSTEM, "crm", "contacts")
    photo = rb.files.put(b"a photo of Wang Fang", "wang.jpg", "image/jpeg")
    shared = rb.files.put(b"a logo both contacts use", "logo.png", "image/png")
    wang = contacts.create({"name": "王芳", "email": EMAIL, "phone": "138 1234 5678", "id_number": ID_NUMBER,
                            "photo": [photo, shared], "company": "Acme"})
    other = contacts.create({"name": "John", "email": "john@example.com", "phone": "+8613900001111", "photo": [shared]})
    contacts.give_consent(wang.id, ["marketing"], version=1, channel="web form")
    deals = rb.records(SYSTEM, "crm", "deals")
    deal = deals.create({"title": "Big order", "contact": wang.id, "amount": 1000})
    deals.create({"title": "John's order", "contact": other.id, "amount": 5})
    calls = rb.records(SYSTEM, "crm", "calls")
    call = calls.create({"topic": "Delivery", "contact": wang.id, "caller_note": "她说周三在家"})
    tickets = rb.records(SYSTEM, "support", "tickets")
    ticket = tickets.create({"subject": "Broken lid", "customer_email": "wang.fang@example.com", "customer_phone": PHONE})
    tickets.create({"subject": "Other", "customer_email": "john@example.com"})
    return {"wang": wang.id, "other": other.id, "deal": deal.id, "call": call.id, "ticket": ticket.id,
            "photo": photo["sha256"], "shared": shared["sha256"]}


def located(hits):
    return {(h.app, h.table, h.record_id, h.linked_from is not None, h.in_trash) for h in hits}


def test_find_a_person_by_email_across_apps_through_blind_indexes(rb, people):
    hits = subjects.find(rb, SYSTEM, emails=["wang.fang@example.com"])
    assert located(hits) == {
        ("crm", "contacts", people["wang"], False, False),
        ("support", "tickets", people["ticket"], False, False),
        ("crm", "deals", people["deal"], True, False),
        ("crm", "calls", people["call"], True, False),
    }
    direct = next(h for h in hits if h.table == "contacts")
    assert direct.matched == ["email"]


def test_find_by_phone_in_any_format_and_in_the_trash(rb, people):
    rb.records(SYSTEM, "crm", "contacts").delete(people["wang"])  # cascades to the deal
    hits = subjects.find(rb, SYSTEM, phones=["+86 138-1234-5678"])
    assert located(hits) == {
        ("crm", "contacts", people["wang"], False, True),
        ("support", "tickets", people["ticket"], False, False),
    }


def test_only_administrators_handle_subject_requests(rb, people):
    clerk = Actor(kind="user", user_id=99, name="clerk@example.com", is_admin=False)
    for call in (subjects.find, subjects.export, subjects.erase):
        with pytest.raises(PermissionDenied):
            call(rb, clerk, emails=[EMAIL])
    with pytest.raises(ValidationError, match="email address or a phone number"):
        subjects.find(rb, SYSTEM)


def test_export_gives_values_in_clear_with_the_consent_ledger(rb, people):
    document = subjects.export(rb, SYSTEM, emails=[EMAIL])
    contact = next(r for r in document["records"] if r["table"] == "contacts")
    assert contact["fields"]["id_number"] == ID_NUMBER and contact["fields"]["phone"] == PHONE
    assert contact["labels"]["id_number"] == "Id number"
    assert [(c["purpose"], c["channel"]) for c in contact["consents"]] == [("marketing", "web form")]
    json.dumps(document, ensure_ascii=False)  # plain JSON throughout
    entry = rb.audit_entries()[-1]
    assert entry["action"] == "subject_export" and entry["changes"]["records"] == 4
    assert "wang" not in json.dumps(entry, default=str).lower()


def raw_rows(rb: Recordbase, name: str) -> list[dict]:
    with rb.read() as conn:
        return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {name}")).mappings()]


def test_erase_deletes_anonymises_and_erases_history(rb, people):
    contacts = rb.app("crm").tables["contacts"]
    report = subjects.erase(rb, SYSTEM, emails=[EMAIL])
    assert {(h.table, h.record_id) for h in report.deleted} == {("contacts", people["wang"])}
    anonymised = {(h.table, h.record_id): why for h, why in report.anonymised}
    assert anonymised[("tickets", people["ticket"])] == "warranty claims must be kept for 3 years"
    assert ("calls", people["call"]) in anonymised and ("deals", people["deal"]) in anonymised
    assert report.cascaded == 1  # the deal went with its contact
    assert report.history_values > 0 and report.files_removed == 1
    assert any("consent ledger" in k for k in report.kept)

    # The records: gone for good (not in the trash), or kept without personal values.
    assert [r["id"] for r in raw_rows(rb, contacts.name)] == [people["other"]]
    assert rb.list_trash("crm") == []
    ticket = rb.records(SYSTEM, "support", "tickets").get(people["ticket"]).fields
    assert ticket == {**ticket, "subject": "Broken lid", "customer_email": None, "customer_phone": None}
    call = rb.records(SYSTEM, "crm", "calls").get(people["call"]).fields
    assert call["caller_note"] is None and call["topic"] == "Delivery" and call["contact"] is None
    assert rb.records(SYSTEM, "crm", "contacts").get(people["other"]).fields["email"] == "john@example.com"

    # Search, history and files hold nothing of her; the chain still verifies.
    with rb.read() as conn:
        bodies = " ".join(conn.execute(sa.text(f"SELECT body FROM {contacts.name}_search")).scalars())
        calls = rb.app("crm").tables["calls"].name
        bodies += " ".join(conn.execute(sa.text(f"SELECT body FROM {calls}_search")).scalars())
    assert "王芳" not in bodies and "周三" not in bodies
    crm, support = rb.app("crm").tables, rb.app("support").tables
    erased = {(crm["contacts"].pk, people["wang"]), (crm["deals"].pk, people["deal"]),
              (crm["calls"].pk, people["call"]), (support["tickets"].pk, people["ticket"])}
    history = [e for e in rb.audit_entries(limit=100_000) if (e["table_id"], e["record_id"]) in erased]
    assert {e["action"] for e in history} >= {"create", "delete", "subject_erase"}
    assert all("$sealed" not in json.dumps(e["changes"]) for e in history)
    assert any("$erased" in json.dumps(e["changes"]) for e in history)
    trail = json.dumps([e["changes"] for e in rb.audit_entries()], ensure_ascii=False)
    assert "王芳" not in trail and "wang.fang" not in trail.lower() and "周三" not in trail
    count, broken = rb.verify_audit()
    assert broken is None and count > 10
    assert not rb.files.path_for(people["photo"]).exists()
    assert rb.files.path_for(people["shared"]).exists()  # John's record still uses it

    # The consent ledger is kept as proof; nobody is found any more.
    with rb.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rb_consent")).scalar_one() == 1
    assert subjects.find(rb, SYSTEM, emails=[EMAIL], phones=[PHONE]) == []
    assert rb.audit_entries()[-1]["action"] == "subject_erase"


def test_a_person_in_the_trash_is_exported_as_deleted_and_erased_from_the_trash(rb, people):
    contacts = rb.records(SYSTEM, "crm", "contacts")
    contacts.delete(people["wang"])  # her deal goes with her (cascade); the call keeps its topic

    # What the trash holds is still held: her access request shows it, decrypted, and until when.
    document = subjects.export(rb, SYSTEM, emails=[EMAIL])
    trashed = next(r for r in document["records"] if r["table"] == "contacts")
    assert trashed["in_trash"] is True
    assert trashed["fields"]["id_number"] == ID_NUMBER and trashed["fields"]["phone"] == PHONE
    assert trashed["fields"]["name"] == "王芳" and trashed["labels"]["id_number"] == "Id number"
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=rb.settings.trash_days)).date().isoformat()
    assert trashed["note"] == f"deleted; kept in the trash until {expires}"
    assert [(c["purpose"], c["channel"]) for c in trashed["consents"]] == [("marketing", "web form")]
    json.dumps(document, ensure_ascii=False)

    report = subjects.erase(rb, SYSTEM, emails=[EMAIL])
    assert [(h.table, h.record_id, h.in_trash) for h in report.deleted] == [("contacts", people["wang"], True)]
    assert report.files_removed == 1  # her photo; the logo John's record uses stays
    assert not rb.files.path_for(people["photo"]).exists() and rb.files.path_for(people["shared"]).exists()
    with pytest.raises(NotFound):
        contacts.restore(people["wang"])  # nothing of hers left to bring back
    with rb.read() as conn:
        kept = conn.execute(sa.text("SELECT table_id, record_id FROM rb_trash WHERE kind = 'record'")).all()
    assert (rb.app("crm").tables["contacts"].pk, people["wang"]) not in [tuple(r) for r in kept]
    assert subjects.find(rb, SYSTEM, emails=[EMAIL], phones=[PHONE]) == []
    count, broken = rb.verify_audit()
    assert broken is None and count > 10


def test_erasure_is_atomic_and_a_dry_run_changes_nothing(rb, people):
    before = raw_rows(rb, rb.app("crm").tables["contacts"].name)
    trail = len(rb.audit_entries(limit=100_000))
    report = subjects.erase(rb, SYSTEM, emails=[EMAIL], dry_run=True)
    assert len(report.deleted) == 1 and report.files_removed == 1
    assert raw_rows(rb, rb.app("crm").tables["contacts"].name) == before
    assert len(rb.audit_entries(limit=100_000)) == trail
    assert rb.files.path_for(people["photo"]).exists()


def test_a_restricting_link_keeps_the_record_but_not_its_personal_values(rb, people):
    definition = rb.export("crm")
    for f in definition["tables"][1]["fields"]:
        if f["slug"] == "contact":
            f["options"]["on_delete"] = "restrict"
    rb.install(definition, SYSTEM)
    report = subjects.erase(rb, SYSTEM, phones=[PHONE])
    why = {(h.table, h.record_id): why for h, why in report.anonymised}
    assert "must keep linking" in why[("contacts", people["wang"])]
    kept = rb.records(SYSTEM, "crm", "contacts").get(people["wang"]).fields
    assert kept["email"] is None and kept["id_number"] is None and kept["photo"] is None and kept["company"] == "Acme"
    assert rb.records(SYSTEM, "crm", "deals").get(people["deal"]).fields["contact"] == people["wang"]


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_subject_requests_from_the_command_line(cli, engine, tmp_path: Path):
    engine.install(SUPPORT, SYSTEM)
    tickets = engine.records(SYSTEM, "support", "tickets")
    ticket = tickets.create({"subject": "Lid", "customer_email": "li@example.com", "customer_phone": PHONE})

    found = cli("subject", "find", "--phone", "13812345678", "--format", "json")
    assert found.code == 0, found.err
    assert [(h["table"], h["record_id"]) for h in json.loads("\n".join(found.out))] == [("tickets", ticket.id)]

    out = tmp_path / "li.json"
    exported = cli("subject", "export", "--email", "li@example.com", "--output", str(out))
    assert exported.code == 0, exported.err
    assert json.loads(out.read_text())["records"][0]["fields"]["customer_phone"] == PHONE

    assert cli("subject", "erase", "--email", "li@example.com", "--dry-run").out[0].startswith("would be anonymised\tsupport\ttickets")
    erased = cli("subject", "erase", "--email", "li@example.com", "--yes")
    assert erased.code == 0, erased.err
    assert erased.out[0] == f"anonymised\tsupport\ttickets\t{ticket.id}\twarranty claims must be kept for 3 years"
    assert tickets.get(ticket.id).fields["customer_email"] is None

    refused = cli("subject", "find")
    assert refused.code == 1 and "email address or a phone number" in refused.err[0]
