"""Group, aggregate, distinct values and link labels: computed in the actor's view, never past it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from access_defs import APP, SYSTEM, Crm, crm_definition, make_user, seed
from recordbase.errors import QueryError


@pytest.fixture
def crm(rb) -> Crm:
    return seed(rb)


def table(groups) -> dict:
    return {tuple(g.values.values()): g.metrics for g in groups}


def test_metrics_per_group_are_exact(crm):
    groups = crm.deals().aggregate(group_by="region", metrics=["count", "sum:amount", "avg:amount", "min:amount", "max:name", "filled:phone"])
    assert table(groups) == {
        ("east",): {"count": 3, "sum:amount": Decimal("800.00"), "avg:amount": Decimal("800.00") / 3,
                    "min:amount": Decimal("100.00"), "max:name": "Elm", "filled:phone": 2},
        ("west",): {"count": 2, "sum:amount": Decimal("700.00"), "avg:amount": Decimal("350.00"),
                    "min:amount": Decimal("300.00"), "max:name": "Dune", "filled:phone": 2},
    }
    assert [g.values["region"] for g in groups] == ["east", "west"]  # the choices' order
    whole = crm.deals().aggregate(metrics=["count", "sum:amount", "empty:notes", "distinct:region"],
                                  filter={"field": "amount", "op": "gt", "value": 150})
    assert [(g.values, g.metrics) for g in whole] == [({}, {"count": 4, "sum:amount": Decimal("1400.00"), "empty:notes": 1, "distinct:region": 2})]


def test_groups_and_counts_cover_only_the_actors_rows(crm):
    assert table(crm.deals("manager").aggregate(group_by=["region"])) == {("east",): {"count": 3}}
    assert table(crm.deals("rep").aggregate(group_by=["region"], metrics=["count", "sum:amount"])) == {
        ("east",): {"count": 1, "sum:amount": Decimal("100.00")},
        ("west",): {"count": 1, "sum:amount": Decimal("300.00")},
    }
    assert crm.deals("rep").distinct("region") == [("east", 1), ("west", 1)]
    assert crm.deals().distinct("region") == [("east", 3), ("west", 2)]


@pytest.mark.parametrize(("person", "kwargs", "message"), [
    ("rep", {"metrics": ["filled:phone"]}, 'cannot aggregate by "phone": you cannot read it in clear'),
    ("viewer", {"group_by": ["notes"]}, 'cannot group by "notes": you cannot read it in clear'),
    ("viewer", {"metrics": ["count"], "filter": {"field": "notes", "op": "is_empty"}}, 'cannot filter by "notes"'),
    ("system", {"group_by": ["phone"]}, 'cannot group by "phone": it is encrypted'),
    ("system", {"metrics": ["max:phone"]}, 'cannot take "max" of "phone": it is encrypted'),
    ("system", {"metrics": ["sum:name"]}, '"sum" needs a number field; "name" is text'),
    ("system", {"metrics": ["median:amount"]}, 'unknown metric "median"'),
    ("system", {"metrics": []}, "ask for at least one metric"),
    ("system", {"group_by": ["nope"]}, 'unknown field "nope"'),
])
def test_what_the_actor_may_not_see_cannot_be_grouped_or_aggregated(crm, person, kwargs, message):
    with pytest.raises(QueryError, match=message):
        crm.deals(person).aggregate(**kwargs)


def test_a_role_without_read_gets_no_aggregate(crm):
    from recordbase.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        crm.deals("nobody").aggregate()


def test_link_labels_follow_the_linked_tables_rules(rb):
    definition = crm_definition()
    definition["tables"][0]["fields"].append({"id": "fld_deals_company", "slug": "company", "label": "Company",
                                              "type": "link", "options": {"table": "companies"}})
    definition["tables"][1]["permissions"]["manager"]["rows"] = {"field": "name", "op": "eq", "value": "Acme"}
    assert rb.install(definition, SYSTEM).applied
    manager = make_user(rb, "manager@example.com", ["manager"], region="east")
    rep = make_user(rb, "rep@example.com", ["rep"], region="east")
    acme, birch = rb.records(SYSTEM, APP, "companies").create_many([{"name": "Acme"}, {"name": "Birch"}])
    rb.records(SYSTEM, APP, "deals").create_many([
        {"name": "one", "region": "east", "company": acme.id, "owner": rep.user_id},
        {"name": "two", "region": "east", "company": birch.id, "owner": rep.user_id},
    ])
    as_manager = rb.records(manager, APP, "deals")
    assert as_manager.link_labels(as_manager.query().records) == {"company": {acme.id: "Acme", birch.id: None}}
    as_rep = rb.records(rep, APP, "deals")  # no grant on companies at all
    assert as_rep.link_labels(as_rep.query().records) == {"company": {acme.id: None, birch.id: None}}
    system = rb.records(SYSTEM, APP, "deals")
    assert system.link_labels(system.query().records, fields=["company"]) == {"company": {acme.id: "Acme", birch.id: "Birch"}}
