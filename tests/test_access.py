"""Access control: which deals each role sees, which fields, in clear or masked, and what it may change.

The app and its people are in ``access_defs.py``: a ``manager`` works its
region's deals and sees personal data; a ``rep`` works the deals it owns and
sees ``phone`` masked; a ``viewer`` reads every deal except its ``notes``;
``nobody`` has a role with no permissions; ``stranger`` has no role at all.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from access_defs import (
    APP,
    DEALS,
    PHONES,
    SYSTEM,
    VISIBLE,
    Crm,
    install_crm,
    make_user,
    seed,
)
from recordbase.core import Recordbase
from recordbase.errors import NotFound, PermissionDenied, QueryError, RecordbaseError

#: The phones of deals 1–5 as a role without "personal" clearance sees them.
MASKED_PHONES = {
    1: "+86 138****5678",
    2: "+86 139****1111",
    3: "+86 137****2222",
    4: "+86 136****3333",
    5: None,
}


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    return seed(rb)


def ids(records: Any) -> list[int]:
    return [r.id for r in records]


def pointers(excinfo: pytest.ExceptionInfo[Any]) -> list[str]:
    return [p.pointer for p in excinfo.value.problems]


def live_deals(crm: Crm) -> list[tuple[int, str, int]]:
    """``(id, name, version)`` of every deal not in the trash, as the system sees them."""
    return [(r.id, r.fields["name"], r.version) for r in crm.deals().query(page_size=100).records]


def full_deal(crm: Crm, deal_id: int) -> dict[str, Any]:
    """Deal ``deal_id`` as seeded, every field in clear."""
    name, region, amount, phone, notes, owner = DEALS[deal_id - 1]
    return {
        "name": name,
        "region": region,
        "amount": Decimal(f"{amount}.00"),
        "phone": phone,
        "notes": notes,
        "owner": None if owner is None else crm.user_id(owner),
    }


SEEDED = [(i, deal[0], 1) for i, deal in enumerate(DEALS, start=1)]


def test_permission_denied_is_a_403_recordbase_error() -> None:
    assert issubclass(PermissionDenied, RecordbaseError)
    assert PermissionDenied.status == 403
    assert not issubclass(PermissionDenied, NotFound)


# --- the matrix: each person × each table operation ---------------------------------------

PERMISSION_OF = {
    "query": "read",
    "count": "read",
    "stream": "read",
    "get": "read",
    "create": "create",
    "create_many": "create",
    "update": "update",
    "delete": "delete",
    "restore": "delete",
    "purge": "delete",
}
EVERYTHING = frozenset({"read", "create", "update", "delete"})
GRANTED = {
    "manager": EVERYTHING,
    "rep": frozenset({"read", "create", "update"}),
    "viewer": frozenset({"read"}),
    "nobody": frozenset(),
    "stranger": frozenset(),
    "admin": EVERYTHING,
    "system": EVERYTHING,
}
#: Record operations on which a person without any access may get NotFound or PermissionDenied
#: (the spec fixes only ``get``: NotFound); either way the answer must not depend on the record.
NO_ACCESS_RECORD_OPS = {"update", "delete", "restore", "purge"}


def run(op: str, crm: Crm, person: str) -> Any:
    """Do ``op`` as ``person`` on deal 1 (in everyone's rows) or the table; return what came back."""
    deals, system = crm.deals(person), crm.deals()
    if op == "query":
        return ids(deals.query(page_size=100).records)
    if op == "count":
        return deals.count()
    if op == "stream":
        return ids(deals.stream())
    if op == "get":
        return deals.get(1).fields["name"]
    if op == "create":
        return deals.create({"name": "Fig", "region": "east"}).id
    if op == "create_many":
        created = deals.create_many(
            [{"name": "Fig", "region": "east"}, {"name": "Gum", "region": "east"}]
        )
        return ids(created)
    if op == "update":
        return deals.update(1, {"name": "Acme II"}, version=1).version
    if op == "delete":
        return deals.delete(1)
    if op == "restore":
        system.delete(1)
        return deals.restore(1).id
    if op == "purge":
        system.delete(1)
        deals.purge(1)
        with pytest.raises(NotFound):
            system.restore(1)  # gone for good
        return None
    raise AssertionError(op)


def allowed_result(op: str, person: str) -> Any:
    return {
        "query": VISIBLE[person],
        "count": len(VISIBLE[person]),
        "stream": VISIBLE[person],
        "get": "Acme",
        "create": 6,
        "create_many": [6, 7],
        "update": 2,
        "delete": None,
        "restore": 1,
        "purge": None,
    }[op]


def state_after(op: str, allowed: bool) -> list[tuple[int, str, int]]:
    without_1 = SEEDED[1:]
    if op in ("restore", "purge") and not allowed:
        return without_1  # the system's delete stands; deal 1 stays in the trash
    if not allowed:
        return SEEDED
    return {
        "create": [*SEEDED, (6, "Fig", 1)],
        "create_many": [*SEEDED, (6, "Fig", 1), (7, "Gum", 1)],
        "update": [(1, "Acme II", 2), *SEEDED[1:]],
        "delete": without_1,
        "restore": [(1, "Acme", 2), *SEEDED[1:]],
        "purge": without_1,
    }.get(op, SEEDED)


@pytest.mark.parametrize("op", list(PERMISSION_OF))
@pytest.mark.parametrize("person", list(GRANTED))
def test_permission_matrix(crm: Crm, person: str, op: str) -> None:
    permission = PERMISSION_OF[op]
    allowed = permission in GRANTED[person]
    if allowed:
        assert run(op, crm, person) == allowed_result(op, person)
    elif GRANTED[person]:
        # A role in the table without this permission: refused by name.
        with pytest.raises(PermissionDenied) as excinfo:
            run(op, crm, person)
        message = excinfo.value.message
        assert "deals" in message, message
        assert permission in message or op in message, message
    elif op == "get":
        with pytest.raises(NotFound) as excinfo:
            run(op, crm, person)
        assert excinfo.value.message == 'no record 1 in "deals"'
    elif op in NO_ACCESS_RECORD_OPS:
        with pytest.raises((NotFound, PermissionDenied)):
            run(op, crm, person)
    else:
        with pytest.raises(PermissionDenied) as excinfo:
            run(op, crm, person)
        assert "no access to table" in excinfo.value.message, excinfo.value.message
        assert "deals" in excinfo.value.message, excinfo.value.message
    assert live_deals(crm) == state_after(op, allowed)


@pytest.mark.parametrize("person", ["nobody", "stranger"])
@pytest.mark.parametrize("op", sorted(NO_ACCESS_RECORD_OPS))
def test_without_access_a_record_operation_fails_alike_for_a_deal_that_exists_or_not(
    crm: Crm, person: str, op: str
) -> None:
    deals = crm.deals(person)
    calls: dict[str, Callable[[int], Any]] = {
        "update": lambda i: deals.update(i, {"name": "x"}, version=1),
        "delete": deals.delete,
        "restore": deals.restore,
        "purge": deals.purge,
    }
    if op in ("restore", "purge"):
        crm.deals().delete(1)
    failures = []
    for deal_id in (1, 99):
        with pytest.raises(RecordbaseError) as excinfo:
            calls[op](deal_id)
        error = excinfo.value
        failures.append((type(error), error.message.replace(str(deal_id), "N"), error.status))
    assert failures[0] == failures[1]
    assert failures[0][0] in (NotFound, PermissionDenied)


# --- rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize("person", list(VISIBLE))
def test_each_person_sees_exactly_the_deals_its_rows_allow(crm: Crm, person: str) -> None:
    deals = crm.deals(person)
    visible = VISIBLE[person]
    page = deals.query(page_size=100)
    assert (ids(page.records), page.total, page.next_cursor) == (visible, len(visible), None)
    assert deals.count() == len(visible)
    assert ids(deals.stream()) == visible
    assert [deals.get(i).id for i in visible] == visible
    for unseen in sorted({1, 2, 3, 4, 5} - set(visible)):
        with pytest.raises(NotFound) as excinfo:
            deals.get(unseen)
        assert excinfo.value.message == f'no record {unseen} in "deals"'


def test_a_deal_outside_the_rows_is_not_found_with_the_message_of_a_missing_one(crm: Crm) -> None:
    rep, manager = crm.deals("rep"), crm.deals("manager")

    def failure(call: Callable[[], Any]) -> tuple[type, str, int, list[Any]]:
        with pytest.raises(RecordbaseError) as excinfo:
            call()
        error = excinfo.value
        return type(error), error.message, error.status, error.problems

    # Deal 2 exists (another rep's); deal 99 does not. Same error, same words.
    assert failure(lambda: rep.get(2)) == (NotFound, 'no record 2 in "deals"', 404, [])
    assert failure(lambda: rep.get(99)) == (NotFound, 'no record 99 in "deals"', 404, [])
    assert failure(lambda: rep.update(2, {"name": "Mine now"}, version=1)) == (
        NotFound,
        'no record 2 in "deals"',
        404,
        [],
    )
    assert failure(lambda: rep.update(99, {"name": "Mine now"}, version=1)) == (
        NotFound,
        'no record 99 in "deals"',
        404,
        [],
    )
    # Deal 3 is in the west; the east manager may delete, but not there.
    assert failure(lambda: manager.delete(3)) == (NotFound, 'no record 3 in "deals"', 404, [])
    assert failure(lambda: manager.delete(99)) == (NotFound, 'no record 99 in "deals"', 404, [])
    assert live_deals(crm) == SEEDED


@pytest.mark.parametrize("op", ["restore", "purge"])
def test_a_manager_cannot_restore_or_purge_a_trashed_deal_of_another_region(
    crm: Crm, op: str
) -> None:
    system, manager = crm.deals(), crm.deals("manager")
    system.delete(3)  # west
    call = getattr(manager, op)
    failures = []
    for deal_id in (3, 99):  # trashed but outside the rows; never existed
        with pytest.raises((NotFound, PermissionDenied)) as excinfo:
            call(deal_id)
        error = excinfo.value
        failures.append((type(error), error.message.replace(str(deal_id), "N")))
    assert failures[0] == failures[1]
    assert system.restore(3).id == 3  # still in the trash, not purged


@pytest.mark.parametrize(
    "attributes",
    [{}, {"region": None}, {"region": ""}, {"region": []}],
    ids=["missing", "none", "empty-text", "empty-list"],
)
def test_a_rule_over_an_empty_attribute_matches_no_rows(
    crm: Crm, attributes: dict[str, Any]
) -> None:
    # A deal with no region: "region eq <nothing>" must not be read as "region is empty".
    assert crm.deals().create({"name": "Nowhere"}).id == 6
    lost = make_user(crm.rb, "lost@example.com", ["manager"], **attributes)
    deals = crm.rb.records(lost, APP, "deals")
    page = deals.query(page_size=100)
    assert (ids(page.records), page.total) == ([], 0)
    assert deals.count() == 0
    assert ids(deals.stream()) == []
    for deal_id in (1, 3, 6):
        with pytest.raises(NotFound) as excinfo:
            deals.get(deal_id)
        assert excinfo.value.message == f'no record {deal_id} in "deals"'
    for values in ({"name": "Fig", "region": "east"}, {"name": "Fig"}):
        with pytest.raises(PermissionDenied):
            deals.create(values)
    assert crm.deals().count() == 6


def test_a_role_without_an_entry_in_a_tables_permissions_has_no_access_to_it(crm: Crm) -> None:
    companies = crm.companies("rep")  # rep has deals permissions, none on companies
    for call in (
        companies.query,
        companies.count,
        lambda: list(companies.stream()),
        lambda: companies.create({"name": "Cedar Inc"}),
        lambda: companies.create_many([{"name": "Cedar Inc"}]),
    ):
        with pytest.raises(PermissionDenied) as excinfo:
            call()
        assert "no access to table" in excinfo.value.message, excinfo.value.message
        assert "companies" in excinfo.value.message, excinfo.value.message
    with pytest.raises(NotFound) as not_found:
        companies.get(1)
    assert not_found.value.message == 'no record 1 in "companies"'
    assert ids(crm.companies("viewer").query().records) == [1, 2]
    assert crm.companies().count() == 2


# --- fields: hidden, masked, clear -------------------------------------------------------------


def test_a_manager_sees_every_field_in_clear(crm: Crm) -> None:
    manager = crm.deals("manager")
    assert manager.get(1).fields == full_deal(crm, 1)
    assert {r.id: r.fields for r in manager.query().records} == {
        i: full_deal(crm, i) for i in (1, 2, 5)
    }


def test_phone_is_masked_for_roles_without_personal_clearance(crm: Crm) -> None:
    rep, viewer = crm.deals("rep"), crm.deals("viewer")
    assert rep.get(1).fields == {**full_deal(crm, 1), "phone": "+86 138****5678"}
    assert {r.id: r.fields["phone"] for r in rep.query().records} == {
        1: MASKED_PHONES[1],
        3: MASKED_PHONES[3],
    }
    assert {r.id: r.fields["phone"] for r in rep.stream()} == {
        1: MASKED_PHONES[1],
        3: MASKED_PHONES[3],
    }
    # viewer declares no clearance: public and internal only.
    assert {r.id: r.fields["phone"] for r in viewer.query().records} == MASKED_PHONES
    assert viewer.get(2).as_json(viewer.ts)["fields"]["phone"] == "+86 139****1111"
    assert {r.id: r.fields["phone"] for r in crm.deals("manager").query().records} == {
        1: PHONES[1],
        2: PHONES[2],
        5: None,
    }


def test_hidden_notes_are_absent_for_the_viewer(crm: Crm) -> None:
    viewer = crm.deals("viewer")
    clear_but_notes = {k: v for k, v in full_deal(crm, 1).items() if k != "notes"}
    assert viewer.get(1).fields == {**clear_but_notes, "phone": MASKED_PHONES[1]}
    assert viewer.get(1).as_json(viewer.ts)["fields"].keys() == clear_but_notes.keys()
    assert all("notes" not in r.fields for r in viewer.query().records)
    assert all("notes" not in r.fields for r in viewer.stream())
    assert viewer.query(fields=["name", "amount"]).records[0].fields == {
        "name": "Acme",
        "amount": Decimal("100.00"),
    }
    for call in (
        lambda: viewer.query(fields=["name", "notes"]),
        lambda: list(viewer.stream(fields=["notes"])),
    ):
        with pytest.raises(QueryError) as excinfo:
            call()
        assert "notes" in str(excinfo.value), str(excinfo.value)


def test_two_roles_combine_per_record(crm: Crm) -> None:
    """``dual`` is a rep (owns deal 4) and a viewer: all rows, notes only where the rep rule matches."""
    dual = crm.deals("dual")
    by_id = {r.id: r.fields for r in dual.query().records}
    assert list(by_id) == [1, 2, 3, 4, 5]
    # Deal 4 is its own: rep shows notes (viewer hides them); nobody clears phone.
    assert by_id[4] == {**full_deal(crm, 4), "phone": MASKED_PHONES[4]}
    for other in (1, 2, 3, 5):
        expected = {k: v for k, v in full_deal(crm, other).items() if k != "notes"}
        assert by_id[other] == {**expected, "phone": MASKED_PHONES[other]}
    assert dual.get(4).fields == by_id[4]
    assert dual.get(1).fields == by_id[1]
    assert {r.id: r.fields for r in dual.stream()} == by_id
    # Writes follow the roles that may update *that* record.
    assert dual.update(4, {"notes": "walrus lunch"}, version=1).fields["notes"] == "walrus lunch"
    with pytest.raises((PermissionDenied, NotFound)):  # readable via viewer, not updatable
        dual.update(1, {"name": "Taken"}, version=1)
    assert crm.deals().get(1).fields == full_deal(crm, 1)


def test_a_role_that_sees_a_field_in_clear_unmasks_it_only_where_its_rows_match(
    rb: Recordbase,
) -> None:
    install_crm(rb)
    boss = make_user(rb, "boss@example.com", ["manager", "rep"], region="east")
    rb.records(SYSTEM, APP, "deals").create_many(
        [
            {"name": "East", "region": "east", "phone": PHONES[1], "amount": 1},
            {"name": "West mine", "region": "west", "phone": PHONES[2], "owner": boss.user_id},
            {"name": "West other", "region": "west", "phone": PHONES[3]},
        ]
    )
    deals = rb.records(boss, APP, "deals")
    # Deal 1 through manager (clear), deal 2 only through rep (masked), deal 3 not at all.
    assert {r.id: r.fields["phone"] for r in deals.query().records} == {
        1: PHONES[1],
        2: MASKED_PHONES[2],
    }
    # Phone is masked under one reading role: no filtering or searching by it at all.
    with pytest.raises(QueryError):
        deals.query(filter={"field": "phone", "op": "eq", "value": PHONES[1]})
    assert ids(deals.query(search="1234").records) == []
    # amount is writable through manager on deal 1, read-only through rep on deal 2.
    assert deals.update(1, {"amount": 10}, version=1).fields["amount"] == Decimal("10.00")
    with pytest.raises(PermissionDenied) as excinfo:
        deals.update(2, {"amount": 20}, version=1)
    assert pointers(excinfo) == ["/fields/amount"]
    assert deals.update(2, {"name": "West still mine"}, version=1).version == 2


# --- query clauses ---------------------------------------------------------------------------

REFUSED_CLAUSES = [
    ("rep", "phone"),  # masked
    ("viewer", "phone"),  # masked
    ("viewer", "notes"),  # hidden
    ("dual", "notes"),  # hidden under viewer, though rep writes it
    ("dual", "phone"),  # masked under both
]


@pytest.mark.parametrize("person, field", REFUSED_CLAUSES)
def test_filtering_by_a_field_not_clear_under_every_role_is_refused(
    crm: Crm, person: str, field: str
) -> None:
    deals = crm.deals(person)
    condition = {"field": field, "op": "is_not_empty"}
    with pytest.raises(QueryError) as excinfo:
        deals.query(filter=condition)
    assert pointers(excinfo) == ["/filter/field"]
    message = excinfo.value.problems[0].message
    assert field in message and "cannot filter" in message, message

    nested = {"or": [{"field": "name", "op": "eq", "value": "Acme"}, {"not": condition}]}
    with pytest.raises(QueryError) as excinfo:
        deals.query(filter=nested)
    assert pointers(excinfo) == ["/filter/or/1/not/field"]
    for call in (
        lambda: deals.count(filter=condition),
        lambda: list(deals.stream(filter=condition)),
    ):
        with pytest.raises(QueryError) as excinfo:
            call()
        assert "cannot filter" in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("person, field", REFUSED_CLAUSES)
def test_sorting_by_a_field_not_clear_under_every_role_is_refused(
    crm: Crm, person: str, field: str
) -> None:
    deals = crm.deals(person)
    for sort in ([field], ["name", f"-{field}"]):
        for call in (
            lambda sort=sort: deals.query(sort=sort),
            lambda sort=sort: list(deals.stream(sort=sort)),
        ):
            with pytest.raises(QueryError) as excinfo:
                call()
            message = " ".join(p.message for p in excinfo.value.problems)
            assert field in message and "cannot sort" in message, message


def test_fields_clear_under_every_role_filter_and_sort_as_usual(crm: Crm) -> None:
    manager, rep, viewer, dual = (crm.deals(p) for p in ("manager", "rep", "viewer", "dual"))
    assert ids(
        manager.query(filter={"field": "phone", "op": "eq", "value": PHONES[2]}).records
    ) == [2]
    assert ids(
        manager.query(filter={"field": "notes", "op": "contains", "value": "lunch"}).records
    ) == [1]
    assert ids(manager.query(sort=["-name"]).records) == [5, 2, 1]
    with pytest.raises(QueryError, match='cannot sort by "phone": it is encrypted'):
        manager.query(sort=["-phone"])
    assert ids(rep.query(filter={"field": "amount", "op": "gt", "value": 150}).records) == [3]
    assert ids(viewer.query(sort=["-amount"]).records) == [5, 4, 3, 2, 1]
    assert ids(dual.query(filter={"field": "region", "op": "eq", "value": "west"}).records) == [
        3,
        4,
    ]


def test_search_never_finds_a_deal_by_a_term_only_in_a_hidden_or_masked_field(crm: Crm) -> None:
    def found(person: str, text: str) -> tuple[list[int], int | None, int, list[int]]:
        deals = crm.deals(person)
        page = deals.query(search=text)
        return (
            ids(page.records),
            page.total,
            deals.count(search=text),
            ids(deals.stream(search=text)),
        )

    # "zebra" is only in deal 3's notes (hidden from viewer and dual).
    assert found("viewer", "zebra") == ([], 0, 0, [])
    assert found("viewer", "cedar") == ([3], 1, 1, [3])
    assert found("viewer", "cedar zebra") == ([], 0, 0, [])
    # "walrus" is in the notes of dual's own deal 4: visible there, but notes are hidden
    # under dual's viewer role, so search does not look at them.
    assert found("dual", "walrus") == ([], 0, 0, [])
    # "1234" is only in deal 1's phone: masked for rep and viewer, and encrypted, so
    # never part of any search text — not even for the manager who reads it in clear.
    assert found("rep", "1234") == ([], 0, 0, [])
    assert found("viewer", "1234") == ([], 0, 0, [])
    assert found("rep", "lunch") == ([1], 1, 1, [1])  # rep reads its notes in clear
    assert found("manager", "1234") == ([], 0, 0, [])
    assert found("manager", "budget") == ([2], 1, 1, [2])
    assert found("manager", "zebra") == ([], 0, 0, [])  # deal 3 is in the west
    assert found("west_manager", "zebra") == ([3], 1, 1, [3])


def test_totals_and_pages_count_only_the_visible_deals(crm: Crm) -> None:
    rep = crm.deals("rep")
    first = rep.query(page_size=1)
    assert (ids(first.records), first.total) == ([1], 2)
    assert first.next_cursor is not None
    second = rep.query(page_size=1, cursor=first.next_cursor)
    assert (ids(second.records), second.total, second.next_cursor) == ([3], 2, None)
    manager = crm.deals("manager")
    west = {"field": "region", "op": "eq", "value": "west"}
    assert (ids(manager.query(filter=west).records), manager.query(filter=west).total) == ([], 0)
    assert manager.count(filter=west) == 0
    assert manager.count(search="acme") == 1
    assert crm.deals("viewer").count(filter=west) == 2


# --- writes ----------------------------------------------------------------------------------


def test_a_rep_may_read_amount_but_not_write_it(crm: Crm) -> None:
    rep = crm.deals("rep")
    with pytest.raises(PermissionDenied) as excinfo:
        rep.create({"name": "Fig", "amount": 10})
    assert pointers(excinfo) == ["/fields/amount"]
    with pytest.raises(PermissionDenied) as excinfo:
        rep.update(1, {"name": "Acme II", "amount": 1}, version=1)
    assert pointers(excinfo) == ["/fields/amount"]
    with pytest.raises(PermissionDenied) as excinfo:
        rep.create_many([{"name": "Fig"}, {"name": "Gum", "amount": 10}])
    assert pointers(excinfo) == ["/records/1/fields/amount"]
    assert live_deals(crm) == SEEDED
    assert crm.deals().get(1).fields == full_deal(crm, 1)
    # What the rep may write, it writes; what it gets back is masked like any read.
    updated = rep.update(1, {"name": "Acme II", "notes": "call at 3"}, version=1)
    assert updated.fields == {
        **full_deal(crm, 1),
        "name": "Acme II",
        "notes": "call at 3",
        "phone": MASKED_PHONES[1],
    }


def test_a_manager_writes_every_field_of_its_region(crm: Crm) -> None:
    manager = crm.deals("manager")
    values = {
        "name": "Acme II",
        "amount": 150,
        "phone": "13811112222",
        "notes": "renewal",
        "owner": crm.user_id("other_rep"),
    }
    updated = manager.update(1, values, version=1)
    expected = {
        **full_deal(crm, 1),
        **values,
        "amount": Decimal("150.00"),
        "phone": "+8613811112222",
    }
    assert updated.fields == expected
    assert crm.deals().get(1).fields == expected


def test_a_rep_owns_what_it_creates_and_cannot_choose_the_owner(crm: Crm) -> None:
    rep = crm.deals("rep")
    created = rep.create({"name": "Fig", "region": "west", "phone": "13811112222"})
    assert created.id == 6
    assert created.fields["owner"] == crm.user_id("rep")
    assert created.fields["phone"] == "+86 138****2222"  # stored in clear, returned masked
    assert crm.deals().get(6).fields == {
        "name": "Fig",
        "region": "west",
        "amount": None,
        "phone": "+8613811112222",
        "notes": None,
        "owner": crm.user_id("rep"),
    }
    assert ids(rep.query().records) == [1, 3, 6]
    for owner in ("rep", "other_rep"):
        with pytest.raises(PermissionDenied) as excinfo:
            rep.create({"name": "Gum", "owner": crm.user_id(owner)})
        assert pointers(excinfo) == ["/fields/owner"]
        with pytest.raises(PermissionDenied) as excinfo:
            rep.update(1, {"owner": crm.user_id(owner)}, version=1)
        assert pointers(excinfo) == ["/fields/owner"]
    assert crm.deals().count() == 6
    assert crm.deals().get(1).fields == full_deal(crm, 1)


def test_with_the_owner_field_granted_a_rep_still_cannot_give_a_deal_away(rb: Recordbase) -> None:
    install_crm(rb, rep_fields={"amount": "read", "owner": "write"})
    rep = make_user(rb, "rep@example.com", ["rep"])
    other = make_user(rb, "other@example.com", ["rep"])
    deals = rb.records(rep, APP, "deals")
    assert deals.create({"name": "Fig"}).fields["owner"] == rep.user_id
    assert deals.create({"name": "Gum", "owner": rep.user_id}).fields["owner"] == rep.user_id
    with pytest.raises(PermissionDenied):  # would be outside the rep's rows
        deals.create({"name": "Hazel", "owner": other.user_id})
    with pytest.raises(PermissionDenied):
        deals.create_many([{"name": "Ivy"}, {"name": "Hazel", "owner": other.user_id}])
    with pytest.raises(PermissionDenied):  # would move out of the rep's rows
        deals.update(1, {"owner": other.user_id}, version=1)
    system = rb.records(SYSTEM, APP, "deals")
    assert [
        (r.id, r.fields["name"], r.fields["owner"], r.version) for r in system.query().records
    ] == [
        (1, "Fig", rep.user_id, 1),
        (2, "Gum", rep.user_id, 1),
    ]


def test_an_update_that_would_move_a_deal_out_of_the_rows_is_refused(crm: Crm) -> None:
    manager = crm.deals("manager")
    with pytest.raises(PermissionDenied):
        manager.update(1, {"name": "Moved", "region": "west"}, version=1)
    with pytest.raises(PermissionDenied):
        manager.update(1, {"region": None}, version=1)
    assert crm.deals().get(1).fields == full_deal(crm, 1)
    assert crm.deals().get(1).version == 1
    assert manager.update(1, {"name": "Kept", "region": "east"}, version=1).version == 2


def test_a_create_outside_the_rows_is_refused_and_a_batch_with_one_writes_nothing(crm: Crm) -> None:
    manager = crm.deals("manager")
    for values in ({"name": "Fig", "region": "west"}, {"name": "Fig"}):
        with pytest.raises(PermissionDenied):
            manager.create(values)
    with pytest.raises(PermissionDenied):
        manager.create_many([{"name": "Fig", "region": "east"}, {"name": "Gum", "region": "west"}])
    assert live_deals(crm) == SEEDED
    # (Refused creates may use up ids on PostgreSQL, whose sequences never roll back.)
    created = manager.create({"name": "Fig", "region": "east"})
    assert live_deals(crm) == [*SEEDED, (created.id, "Fig", 1)]


def test_roles_without_create_or_update_write_nothing(crm: Crm) -> None:
    viewer = crm.deals("viewer")
    with pytest.raises(PermissionDenied) as excinfo:
        viewer.create({"name": "Fig"})
    assert "create" in excinfo.value.message and "deals" in excinfo.value.message
    with pytest.raises(PermissionDenied) as excinfo:
        viewer.update(1, {"name": "Acme II"}, version=1)
    assert "update" in excinfo.value.message and "deals" in excinfo.value.message
    assert live_deals(crm) == SEEDED


# --- system and admin ----------------------------------------------------------------------


@pytest.mark.parametrize("person", ["system", "admin"])
def test_system_and_admin_actors_are_not_restricted(crm: Crm, person: str) -> None:
    deals = crm.deals(person)
    assert {r.id: r.fields for r in deals.query().records} == {
        i: full_deal(crm, i) for i in range(1, 6)
    }
    assert ids(deals.query(filter={"field": "phone", "op": "eq", "value": PHONES[3]}).records) == [
        3
    ]
    assert ids(
        deals.query(filter={"field": "notes", "op": "contains", "value": "zebra"}).records
    ) == [3]
    assert ids(deals.query(search="zebra").records) == [3]
    assert ids(deals.query(search="1234").records) == []  # the phone is encrypted: not searchable
    assert ids(
        deals.query(sort=["name"], filter={"field": "phone", "op": "is_not_empty"}).records
    ) == [1, 2, 3, 4]
    assert deals.update(1, {"region": "west", "owner": None, "amount": 1}, version=1).version == 2
    assert deals.create({"name": "Fig", "region": "west"}).fields["owner"] is None
    deals.delete(2)
    assert ids(deals.query().records) == [1, 3, 4, 5, 6]


# --- metadata: what the actor may know exists ----------------------------------------------


def test_schema_listings_show_only_what_the_actor_may_see(crm: Crm) -> None:
    rb = crm.rb
    viewer = rb.schema_for(crm["viewer"], APP)
    deals = next(t for t in viewer["tables"] if t["slug"] == "deals")
    assert [f["slug"] for f in deals["fields"]] == ["name", "region", "amount", "phone", "owner"]  # notes hidden
    assert set(deals["permissions"]) == {"viewer"}  # no other role's rules
    assert [r["slug"] for r in viewer["roles"]] == ["viewer"]
    rep = rb.schema_for(crm["rep"], APP)
    assert [t["slug"] for t in rep["tables"]] == ["deals"]  # no grant on companies
    assert [t["slug"] for t in rb.schema_for(crm["system"], APP)["tables"]] == ["deals", "companies"]
    assert rb.schema_for(crm["nobody"], APP)["tables"] == []  # a member whose role grants nothing
    with pytest.raises(NotFound) as excinfo:
        rb.schema_for(crm["stranger"], APP)
    assert excinfo.value.message == 'no app "crm" is installed'
    assert rb.apps_for(crm["stranger"]) == []
    assert rb.apps_for(crm["viewer"]) == [APP]
