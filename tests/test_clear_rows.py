"""``clear_rows``: a role sees personal values in clear on some rows only (masked on the others it reads)."""

from __future__ import annotations

from typing import Any

import pytest
from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import QueryError

SYSTEM = Actor.system("test")

APP: dict[str, Any] = {
    "slug": "crm",
    "label": "CRM",
    "roles": [{"slug": "rep", "label": "Rep", "clearance": ["public", "internal", "personal"]}],
    "tables": [
        {
            "slug": "contacts",
            "label": "Contacts",
            "fields": [
                {"slug": "name", "label": "Name", "type": "text"},
                {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Calls."},
                {"slug": "owner", "label": "Owner", "type": "user"},
            ],
            "permissions": {
                "rep": {"read": True, "update": True, "reveal": True, "rows": "all",
                        "clear_rows": "own", "owner_field": "owner"},
            },
        }
    ],
}


@pytest.fixture
def crm(rb: Recordbase) -> tuple[Recordbase, Actor]:
    rb.install(APP, SYSTEM)
    uid = rb.create_user(SYSTEM, "rep@example.org", "password-123456", display_name="Rep")
    other = rb.create_user(SYSTEM, "other@example.org", "password-123456", display_name="Other")
    rb.set_roles(SYSTEM, "rep@example.org", "crm", ["rep"])
    contacts = rb.records(SYSTEM, "crm", "contacts")
    contacts.create({"name": "Mine", "phone": "+8613800000001", "owner": uid})
    contacts.create({"name": "Theirs", "phone": "+8613800000002", "owner": other})
    rep = rb.actor_for(uid)
    assert rep is not None
    return rb, rep


def test_values_are_clear_on_own_rows_and_masked_elsewhere(crm: tuple[Recordbase, Actor]) -> None:
    rb, rep = crm
    store = rb.records(rep, "crm", "contacts")
    phones = {r.fields["name"]: r.fields["phone"] for r in store.query().records}
    assert phones["Mine"] == "+8613800000001"
    assert phones["Theirs"] == "+86 138****0002"  # masked
    assert store.get(2).fields["phone"] == phones["Theirs"]
    assert store.reveal(2, "phone", "customer called back") == "+8613800000002"  # with a reason, audited
    with pytest.raises(QueryError):  # not clear on every row: no filter may depend on it
        store.query(filter={"field": "phone", "op": "eq", "value": "+8613800000002"})


def test_the_inventory_says_where_it_is_clear(crm: tuple[Recordbase, Actor]) -> None:
    rb, _rep = crm
    phone = next(row for row in rb.inventory() if row["field"] == "phone")
    assert phone["roles"]["rep"] == "masked except on clear_rows"


def test_clear_rows_own_needs_an_owner_field() -> None:
    import copy

    definition = copy.deepcopy(APP)
    del definition["tables"][0]["permissions"]["rep"]["owner_field"]
    definition["tables"][0]["permissions"]["rep"]["rows"] = "all"
    problems = {p.pointer: p.message for p in check_definition(definition)}
    assert "owner_field" in problems["/tables/0/permissions/rep/clear_rows"]
