"""Revealing one masked value with an audited reason; the inventory of personal data."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from recordbase import Actor, NotFound, ValidationError
from recordbase.errors import PermissionDenied

SYSTEM = Actor.system("test")
REGION = {"field": "region", "op": "eq", "value": {"$actor": "region"}}
DEFINITION: dict[str, Any] = {
    "slug": "care",
    "label": "Care",
    "roles": [
        {"slug": "agent", "label": "Agent", "clearance": ["public", "internal"]},
        {"slug": "supervisor", "label": "Supervisor", "clearance": ["public", "internal"]},
    ],
    "tables": [{
        "slug": "customers",
        "label": "Customers",
        "retention": {"field": "created", "days": 365, "action": "anonymise"},
        "consent": {"purposes": ["service"], "text": "We call you about your repairs.", "version": 3},
        "fields": [
            {"slug": "name", "label": "Name", "type": "text"},
            {"slug": "region", "label": "Region", "type": "text"},
            {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Call about repairs."},
            {"slug": "id_number", "label": "ID number", "type": "text", "sensitivity": "sensitive",
             "purpose": {"en": "Warranty checks.", "zh-CN": "用于保修核查。"}},
            {"slug": "created", "label": "Created", "type": "created_at"},
        ],
        "permissions": {
            "agent": {"read": True, "fields": {"id_number": "hidden"}},
            "supervisor": {"read": True, "reveal": True, "rows": REGION},
        },
    }],
}


def person(rb, email: str, role: str, **attributes: Any) -> Actor:
    user_id = rb.create_user(SYSTEM, email, None, attributes=attributes)
    rb.set_roles(SYSTEM, email, "care", [role])
    actor = rb.actor_for(user_id)
    assert actor is not None
    return actor


@pytest.fixture
def care(rb):
    rb.install(DEFINITION, SYSTEM)
    store = rb.records(SYSTEM, "care", "customers")
    store.create_many([
        {"name": "王芳", "region": "east", "phone": "13812345678", "id_number": "110101199003071234"},
        {"name": "John", "region": "west", "phone": "+8613900001111", "id_number": "310101198001011111"},
    ])
    return rb


def reveals(rb) -> list[dict[str, Any]]:
    with rb.read() as conn:
        rows = conn.execute(sa.text("SELECT actor_name, record_id, changes FROM rb_audit WHERE action = 'reveal' ORDER BY id")).all()
    return [{"actor": a, "record": r, **(json.loads(c) if isinstance(c, str) else c)} for a, r, c in rows]


def test_a_supervisor_reveals_one_value_and_the_reason_is_audited_without_the_value(care):
    boss = person(care, "boss@example.com", "supervisor", region="east")
    store = care.records(boss, "care", "customers")
    assert store.get(1).fields["phone"] == "+86 138****5678"
    assert store.reveal(1, "phone", "Customer asked for a call back") == "+8613812345678"
    assert store.reveal(1, "id_number", "Warranty claim 2024-118") == "110101199003071234"
    entries = reveals(care)
    assert [(e["actor"], e["record"], e["slug"], e["reason"]) for e in entries] == [
        ("boss", 1, "phone", "Customer asked for a call back"),
        ("boss", 1, "id_number", "Warranty claim 2024-118"),
    ]
    assert "13812345678" not in json.dumps(entries) and "110101199003071234" not in json.dumps(entries)


def test_reveal_needs_the_right_a_reason_and_a_record_in_the_actors_rows(care):
    agent = care.records(person(care, "agent@example.com", "agent"), "care", "customers")
    with pytest.raises(PermissionDenied, match='no access to table "customers": you may not reveal its records'):
        agent.reveal(1, "phone", "Customer asked for a call back")
    boss = care.records(person(care, "boss@example.com", "supervisor", region="east"), "care", "customers")
    with pytest.raises(ValidationError) as no_reason:
        boss.reveal(1, "phone", "  ")
    assert [p.pointer for p in no_reason.value.problems] == ["/reason"]
    with pytest.raises(NotFound) as outside:
        boss.reveal(2, "phone", "Customer asked for a call back")
    assert outside.value.message == 'no record 2 in "customers"'
    with pytest.raises(PermissionDenied):
        boss.reveal(1, "nonexistent", "Customer asked for a call back")
    assert reveals(care) == []


def test_the_inventory_lists_every_personal_and_sensitive_field_and_who_sees_it_how(care):
    assert care.inventory() == [
        {
            "app": "care", "table": "customers", "field": "phone", "field_id": care.app("care").tables["customers"].fields["phone"].uid,
            "type": "phone", "sensitivity": "personal", "purpose": "Call about repairs.", "encrypted": True,
            "retention": "anonymise 365 days after created", "consent": {"purposes": ["service"], "version": 3},
            "erasure": "delete", "roles": {"agent": "masked", "supervisor": "masked"},
        },
        {
            "app": "care", "table": "customers", "field": "id_number", "field_id": care.app("care").tables["customers"].fields["id_number"].uid,
            "type": "text", "sensitivity": "sensitive", "purpose": {"en": "Warranty checks.", "zh-CN": "用于保修核查。"},
            "encrypted": True,
            "retention": "anonymise 365 days after created", "consent": {"purposes": ["service"], "version": 3},
            "erasure": "delete", "roles": {"agent": "hidden", "supervisor": "masked"},
        },
    ]


def test_the_inventory_from_the_command_line_as_csv(cli, engine):
    engine.install(DEFINITION, SYSTEM)
    result = cli("inventory", "--format", "csv")
    assert result.code == 0, result.err
    assert result.out == [
        "app,table,field,type,sensitivity,purpose,encrypted,retention,consent,erasure,agent,supervisor",
        "care,customers,phone,phone,personal,Call about repairs.,yes,anonymise 365 days after created,service (v3),delete,masked,masked",
        "care,customers,id_number,text,sensitive,Warranty checks. | 用于保修核查。,yes,anonymise 365 days after created,service (v3),delete,hidden,masked",
    ]
