"""Who may change an installed app: `manage` per table, and privacy rules only for administrators."""

from __future__ import annotations

import copy

import pytest
from access_defs import APP, SYSTEM, crm_definition, make_user
from recordbase.errors import PermissionDenied


@pytest.fixture
def people(rb):
    definition = crm_definition()
    definition["roles"].append({"slug": "builder", "label": "Builder"})
    definition["tables"][0]["permissions"]["builder"] = {"read": True, "manage": True}
    definition["views"] = [
        {"slug": "deals_grid", "label": "Deals", "table": "deals", "type": "grid"},
        {"slug": "companies_grid", "label": "Companies", "table": "companies", "type": "grid"},
    ]
    assert rb.install(definition, SYSTEM).applied
    return {
        "builder": make_user(rb, "builder@example.com", ["builder"]),
        "viewer": make_user(rb, "viewer@example.com", ["viewer"]),
        "admin": make_user(rb, "admin@example.com", is_admin=True),
    }


def change(rb, edit):
    definition = rb.export(APP)
    edit(definition)
    return definition


def deals(d):
    return d["tables"][0]


def fields(d, table: int = 0):
    return {f["slug"]: f for f in d["tables"][table]["fields"]}


def add_field(d):
    deals(d)["fields"].append({"slug": "source", "label": "Source", "type": "text"})


def test_a_builder_changes_the_tables_it_manages(rb, people):
    result = rb.install(change(rb, add_field), people["builder"])
    assert result.applied and "source" in rb.app(APP).tables["deals"].fields
    relabel = change(rb, lambda d: deals(d).update(label="Opportunities"))
    assert rb.install(relabel, people["builder"]).applied
    new_table = change(rb, lambda d: d["tables"].append({"slug": "notes", "label": "Notes", "fields": [
        {"slug": "text", "label": "Text", "type": "long_text"}]}))
    assert rb.install(new_table, people["builder"]).applied


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["tables"][1].update(label="Firms"), 'you may not change the table "companies"'),
    (lambda d: d["views"][1].update(label="Firms"), 'you may not change the view "companies_grid"'),
    (lambda d: deals(d)["permissions"]["builder"].update(reveal=True), 'only a platform administrator may change the permissions of "deals"'),
    (lambda d: fields(d)["phone"].update(sensitivity="public"), 'the sensitivity, encryption or purpose of "deals.phone"'),
    (lambda d: fields(d)["phone"].update(encrypted=False), 'the sensitivity, encryption or purpose of "deals.phone"'),
    (lambda d: d["roles"].append({"slug": "boss", "label": "Boss"}), "only a platform administrator may change the roles"),
    (lambda d: deals(d).update(consent={"purposes": ["calls"], "text": "We call you.", "version": 1}), 'the consent of "deals"'),
    (lambda d: deals(d).update(erasure={"action": "anonymise", "reason": "kept for audits"}), 'the erasure of "deals"'),
    (lambda d: d["tables"].append({"slug": "t", "label": "T", "fields": [{"slug": "a", "label": "A", "type": "text"}],
                                   "permissions": {"builder": {"read": True, "reveal": True}}}), 'the privacy rules of the new table "t"'),
])
def test_a_builder_cannot_reach_past_its_tables_or_touch_privacy_rules(rb, people, edit, message):
    before = rb.export(APP)
    with pytest.raises(PermissionDenied, match=message):
        rb.install(change(rb, edit), people["builder"])
    assert rb.export(APP) == before


def test_without_manage_nothing_changes_and_new_apps_need_an_admin(rb, people):
    with pytest.raises(PermissionDenied, match='you may not change the app "crm"'):
        rb.install(change(rb, add_field), people["viewer"])
    other = copy.deepcopy(crm_definition())
    other["slug"] = "crm2"
    with pytest.raises(PermissionDenied, match="installing an app needs a platform administrator"):
        rb.install(other, people["builder"])
    assert rb.install(other, people["admin"]).applied
    anything = change(rb, lambda d: (fields(d)["phone"].update(sensitivity="sensitive"), d["roles"].append({"slug": "boss", "label": "Boss"})))
    assert rb.install(anything, people["admin"]).applied
