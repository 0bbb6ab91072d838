"""Saved grid views (``recordbase.saved_views``): personal or shared, checked on save, never revealing.

The CRM of ``access_defs`` with the ``manage`` right given to the manager on
deals: the manager may share views; the rep (its own deals, phone masked) and
the viewer (every deal, no notes) may only keep personal ones.
"""

from __future__ import annotations

import copy

import pytest
from access_defs import DEALS_PERMISSIONS, SYSTEM, Crm, crm_definition, seed
from recordbase import saved_views as sv
from recordbase.core import Recordbase
from recordbase.errors import NotFound, PermissionDenied, QueryError, ValidationError

APP, TABLE = "crm", "deals"
EAST = {
    "filter": {"and": [{"field": "region", "op": "eq", "value": "east"}]},
    "sort": ["-amount"],
    "fields": ["name", "amount"],
    "search": "",
}


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    seeded = seed(rb)
    grants = copy.deepcopy(DEALS_PERMISSIONS)
    grants["manager"]["manage"] = True
    assert rb.install(crm_definition(deals_permissions=grants), SYSTEM).applied
    return seeded


def names(rb: Recordbase, crm: Crm, person: str) -> list[tuple[str, bool, bool]]:
    return [(v.name, v.shared, v.mine) for v in sv.list_views(rb, crm[person], APP, TABLE)]


def test_a_personal_view_is_its_owners_alone(rb: Recordbase, crm: Crm) -> None:
    view = sv.save_view(rb, crm["rep"], APP, TABLE, "  My east deals ", EAST)
    assert (view.name, view.shared, view.mine, view.owner_id) == (
        "My east deals",
        False,
        True,
        crm.user_id("rep"),
    )
    assert view.state == EAST
    assert names(rb, crm, "rep") == [("My east deals", False, True)]
    assert sv.get_view(rb, crm["rep"], APP, TABLE, view.id).state == EAST
    for other in ("other_rep", "viewer", "manager"):
        assert names(rb, crm, other) == []
        with pytest.raises(NotFound):
            sv.get_view(rb, crm[other], APP, TABLE, view.id)
        with pytest.raises(NotFound):
            sv.update_view(rb, crm[other], APP, TABLE, view.id, name="mine now")
        with pytest.raises(NotFound):
            sv.delete_view(rb, crm[other], APP, TABLE, view.id)
    assert sv.get_view(rb, crm["rep"], APP, TABLE, view.id).name == "My east deals"


def test_the_owner_renames_changes_and_deletes_a_personal_view(rb: Recordbase, crm: Crm) -> None:
    view = sv.save_view(rb, crm["viewer"], APP, TABLE, "Big", {"sort": ["-amount"]})
    assert view.state == {"filter": None, "sort": ["-amount"], "fields": None, "search": ""}
    renamed = sv.update_view(
        rb, crm["viewer"], APP, TABLE, view.id, name="Biggest", state={"search": "acme"}
    )
    assert (renamed.name, renamed.state["search"], renamed.state["sort"]) == ("Biggest", "acme", [])
    assert renamed.updated_at >= view.updated_at
    sv.delete_view(rb, crm["viewer"], APP, TABLE, view.id)
    assert names(rb, crm, "viewer") == []
    with pytest.raises(NotFound):
        sv.get_view(rb, crm["viewer"], APP, TABLE, view.id)


def test_sharing_needs_manage(rb: Recordbase, crm: Crm) -> None:
    with pytest.raises(PermissionDenied):
        sv.save_view(rb, crm["rep"], APP, TABLE, "For everyone", EAST, shared=True)
    assert names(rb, crm, "rep") == []
    own = sv.save_view(rb, crm["rep"], APP, TABLE, "Mine", EAST)
    with pytest.raises(PermissionDenied):
        sv.update_view(rb, crm["rep"], APP, TABLE, own.id, shared=True)
    assert sv.get_view(rb, crm["rep"], APP, TABLE, own.id).shared is False
    sv.save_view(rb, crm["manager"], APP, TABLE, "Team east", EAST, shared=True)
    assert names(rb, crm, "rep") == [("Mine", False, True), ("Team east", True, False)]
    assert names(rb, crm, "viewer") == [("Team east", True, False)]
    assert names(rb, crm, "admin") == [("Team east", True, False)]


def test_a_shared_view_is_changed_only_with_manage(rb: Recordbase, crm: Crm) -> None:
    shared = sv.save_view(rb, crm["manager"], APP, TABLE, "Team east", EAST, shared=True)
    for person in ("rep", "viewer"):
        with pytest.raises(PermissionDenied):
            sv.update_view(rb, crm[person], APP, TABLE, shared.id, name="Hijacked")
        with pytest.raises(PermissionDenied):
            sv.delete_view(rb, crm[person], APP, TABLE, shared.id)
    assert sv.get_view(rb, crm["viewer"], APP, TABLE, shared.id).name == "Team east"
    # An administrator manages every table: may rename and unshare it.
    changed = sv.update_view(rb, crm["admin"], APP, TABLE, shared.id, name="East", shared=False)
    assert (changed.name, changed.shared, changed.mine) == ("East", False, False)
    assert names(rb, crm, "viewer") == []  # now the manager's personal view
    assert names(rb, crm, "manager") == [("East", False, True)]
    sv.delete_view(rb, crm["manager"], APP, TABLE, shared.id)
    assert names(rb, crm, "manager") == []


@pytest.mark.parametrize(
    "state, pointer",
    [
        (
            {"filter": {"field": "phone", "op": "eq", "value": "+8613812345678"}},
            "/state/filter/field",
        ),
        ({"sort": ["-phone"]}, "/state/sort/0"),
        ({"filter": {"field": "amount", "op": "contains", "value": "1"}}, "/state/filter/op"),
        ({"filter": {"field": "nothing", "op": "eq", "value": "1"}}, "/state/filter/field"),
        ({"fields": ["name", "nothing"]}, "/state/fields/1"),
        ({"colour": "red"}, "/state/colour"),
        ({"sort": "amount,"} | {"fields": "name"}, "/state/fields"),
    ],
)
def test_the_state_is_checked_for_the_saving_user(
    rb: Recordbase, crm: Crm, state: dict, pointer: str
) -> None:
    with pytest.raises(QueryError) as refused:
        sv.save_view(rb, crm["rep"], APP, TABLE, "Bad", state)
    assert [p.pointer for p in refused.value.problems] == [pointer]
    assert "+8613812345678" not in refused.value.message
    assert names(rb, crm, "rep") == []


def test_a_hidden_field_cannot_be_saved_by_who_cannot_see_it(rb: Recordbase, crm: Crm) -> None:
    with pytest.raises(QueryError):
        sv.save_view(
            rb,
            crm["viewer"],
            APP,
            TABLE,
            "Notes",
            {"filter": {"field": "notes", "op": "contains", "value": "a"}},
        )
    with pytest.raises(QueryError):
        sv.save_view(rb, crm["viewer"], APP, TABLE, "Notes", {"fields": ["notes"]})
    # The manager sees the phone in clear: filtering by it is fine for the manager.
    ok = sv.save_view(
        rb,
        crm["manager"],
        APP,
        TABLE,
        "Phones",
        {"filter": {"field": "phone", "op": "is_not_empty"}},
    )
    assert ok.state["filter"] == {"field": "phone", "op": "is_not_empty"}


def test_names_are_required_and_bounded(rb: Recordbase, crm: Crm) -> None:
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValidationError) as refused:
            sv.save_view(rb, crm["rep"], APP, TABLE, bad, {})
        assert refused.value.problems[0].pointer == "/name"


def test_views_need_read_and_a_user(rb: Recordbase, crm: Crm) -> None:
    with pytest.raises(PermissionDenied):
        sv.list_views(rb, crm["nobody"], APP, TABLE)
    with pytest.raises(PermissionDenied):
        sv.save_view(rb, crm["nobody"], APP, TABLE, "x", {})
    with pytest.raises(PermissionDenied):
        sv.save_view(rb, SYSTEM, APP, TABLE, "x", {})
    with pytest.raises(NotFound):
        sv.list_views(rb, crm["rep"], APP, "nothing")


def test_views_belong_to_their_table(rb: Recordbase, crm: Crm) -> None:
    view = sv.save_view(rb, crm["manager"], APP, TABLE, "Deals", {}, shared=True)
    assert sv.list_views(rb, crm["manager"], APP, "companies") == []
    with pytest.raises(NotFound):
        sv.get_view(rb, crm["manager"], APP, "companies", view.id)


@pytest.mark.parametrize(
    "tree, flat",
    [
        (None, ("all", [])),
        ({"field": "a", "op": "eq", "value": 1}, ("all", [{"field": "a", "op": "eq", "value": 1}])),
        ({"or": [{"field": "a", "op": "is_empty"}]}, ("any", [{"field": "a", "op": "is_empty"}])),
        ({"and": [{"or": [{"field": "a", "op": "is_empty"}]}]}, None),
        ({"not": {"field": "a", "op": "is_empty"}}, None),
        ({"consent": "news", "op": "given"}, None),
    ],
)
def test_flat_conditions(tree: object, flat: object) -> None:
    assert sv.flat_conditions(tree) == flat
