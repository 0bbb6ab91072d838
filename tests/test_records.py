"""Writing records: create, validate, update with versions, audit, trash, links and autonumbers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from factories import field, make_app, make_deals_app
from recordbase.actor import Actor
from recordbase.audit import audit_table
from recordbase.core import Recordbase
from recordbase.errors import Conflict, NotFound, ValidationError
from recordbase.records import Record, RecordStore
from recordbase.schema import AppSchema
from recordbase.trash import LinkedRecordError, trash_table

ACTOR = Actor.system("test")
T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2024, 5, 2, 9, 30, tzinfo=dt.UTC)

EMPTY_DEAL = {
    "name": None,
    "company": None,
    "email": None,
    "phone": None,
    "amount": None,
    "stage": None,
    "close_date": None,
    "notes": None,
    "tags": None,
    "score": None,
    "done": None,
    "when": None,
    "pct": None,
    "company_ref": None,
    "partners": None,
}


class Clock:
    """The time the record store stamps on writes; tests move it by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T0
        monkeypatch.setattr("recordbase.records.utcnow", lambda: self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def crm(rb: Recordbase) -> AppSchema:
    return make_deals_app(rb)


@pytest.fixture
def deals(rb: Recordbase, crm: AppSchema) -> RecordStore:
    return rb.records(ACTOR, "crm", "deals")


@pytest.fixture
def companies(rb: Recordbase, crm: AppSchema) -> RecordStore:
    return rb.records(ACTOR, "crm", "companies")


def problems_of(excinfo: pytest.ExceptionInfo[Any]) -> list[tuple[str, str]]:
    return [(p.pointer, p.message) for p in excinfo.value.problems]


def deal(**values: Any) -> dict[str, Any]:
    return {**EMPTY_DEAL, **values}


def audit_entries(rb: Recordbase, table_id: int) -> list[tuple[str, int | None, dict[str, Any]]]:
    a = audit_table
    with rb.read() as conn:
        rows = conn.execute(
            sa.select(a.c.action, a.c.record_id, a.c.changes)
            .where(a.c.table_id == table_id)
            .order_by(a.c.id)
        ).all()
    return [(action, record_id, changes) for action, record_id, changes in rows]


def trashed_ids(rb: Recordbase, table_id: int) -> list[int]:
    t = trash_table
    with rb.read() as conn:
        return list(
            conn.execute(
                sa.select(t.c.record_id).where(t.c.table_id == table_id).order_by(t.c.record_id)
            ).scalars()
        )


def all_ids(store: RecordStore) -> list[int]:
    return [r.id for r in store.query(page_size=1000).records]


# --- create ------------------------------------------------------------------------


def test_create_returns_every_value_normalised(
    deals: RecordStore, companies: RecordStore, clock: Clock
) -> None:
    acme = companies.create({"name": "Acme"})
    record = deals.create(
        {
            "name": "  Big deal  ",
            "email": "Bob.Smith@Example.COM",
            "phone": "138 0013 8000",
            "amount": "1,234.5",
            "stage": "Won",
            "tags": ["Urgent", "vip"],
            "score": "3",
            "done": "yes",
            "when": "2024-05-01T09:30:00+08:00",
            "pct": "12.5%",
            "close_date": "2024年5月1日",
            "notes": "line one\nline two",
            "company_ref": str(acme.id),
            "partners": [acme.id],
        }
    )
    assert record == Record(
        id=1,
        fields=deal(
            name="Big deal",
            email="bob.smith@example.com",
            phone="+8613800138000",
            amount=Decimal("1234.50"),
            stage="won",
            tags=["vip", "urgent"],
            score=3,
            done=True,
            when=dt.datetime(2024, 5, 1, 1, 30, tzinfo=dt.UTC),
            pct=Decimal("12.50"),
            close_date=dt.date(2024, 5, 1),
            notes="line one\nline two",
            company_ref=1,
            partners=[1],
        ),
        version=1,
        created_at=T0,
        updated_at=T0,
        created_by=None,
        updated_by=None,
    )
    assert record.as_json(deals.ts)["fields"] == deal(
        name="Big deal",
        email="bob.smith@example.com",
        phone="+8613800138000",
        amount="1234.50",
        stage="won",
        tags=["vip", "urgent"],
        score=3,
        done=True,
        when="2024-05-01T01:30:00+00:00",
        pct="12.50",
        close_date="2024-05-01",
        notes="line one\nline two",
        company_ref=1,
        partners=[1],
    )
    assert deals.get(record.id) == record


def test_create_rounds_decimals_half_up_to_the_scale(deals: RecordStore) -> None:
    records = deals.create_many(
        [
            {"name": "a", "amount": "12.345"},
            {"name": "b", "amount": 0.1},
            {"name": "c", "amount": -0.001},
            {"name": "d", "amount": Decimal("99.995")},
            {"name": "e", "amount": 7},
        ]
    )
    assert [r.as_json(deals.ts)["fields"]["amount"] for r in records] == [
        "12.35",
        "0.10",
        "0.00",
        "100.00",
        "7.00",
    ]


def test_create_many_returns_records_in_order_with_ascending_ids(deals: RecordStore) -> None:
    assert deals.create_many([]) == []
    records = deals.create_many([{"name": "one"}, {"name": "two"}, {"name": "three"}])
    assert [(r.id, r.fields["name"], r.version) for r in records] == [
        (1, "one", 1),
        (2, "two", 1),
        (3, "three", 1),
    ]
    assert [deals.get(i).fields["name"] for i in (1, 2, 3)] == ["one", "two", "three"]


def test_autonumbers_are_formatted_with_prefix_and_digits(rb: Recordbase) -> None:
    make_app(
        rb,
        {
            "orders": [
                field("number", "autonumber", options={"prefix": "ORD-", "digits": 4}),
                field("name", "text"),
            ]
        },
    )
    orders = rb.records(ACTOR, "shop", "orders")
    first = orders.create({"name": "a"})
    rest = orders.create_many([{"name": "b"}, {"name": "c"}])
    assert [first.fields["number"], *(r.fields["number"] for r in rest)] == [
        "ORD-0001",
        "ORD-0002",
        "ORD-0003",
    ]
    assert orders.get(rest[1].id).fields == {"number": "ORD-0003", "name": "c"}


def test_defaults_fill_fields_left_out_but_not_fields_given(rb: Recordbase) -> None:
    make_app(
        rb,
        {
            "tasks": [
                field("title", "text", default="Untitled"),
                field(
                    "status",
                    "single_select",
                    options={
                        "choices": [
                            {"id": "open", "label": "Open"},
                            {"id": "closed", "label": "Closed"},
                        ]
                    },
                    default="Open",
                ),
                field("estimate", "number", options={"scale": 1}, default=2.5),
                field("flag", "boolean", default=False),
                field("due", "date", default="2024-12-31"),
                field("opened", "date", default="today"),
            ]
        },
    )
    tasks = rb.records(ACTOR, "shop", "tasks")
    before = dt.datetime.now(dt.UTC).date()
    defaulted = tasks.create({})
    after = dt.datetime.now(dt.UTC).date()
    assert defaulted.fields["opened"] in (before, after)
    assert {k: v for k, v in defaulted.fields.items() if k != "opened"} == {
        "title": "Untitled",
        "status": "open",
        "estimate": Decimal("2.5"),
        "flag": False,
        "due": dt.date(2024, 12, 31),
    }
    given = tasks.create(
        {
            "title": "Write tests",
            "status": "closed",
            "estimate": None,
            "flag": True,
            "opened": "2024-01-02",
        }
    )
    assert given.fields == {
        "title": "Write tests",
        "status": "closed",
        "estimate": None,
        "flag": True,
        "due": dt.date(2024, 12, 31),
        "opened": dt.date(2024, 1, 2),
    }


def test_a_required_field_must_have_a_value(deals: RecordStore) -> None:
    for values in ({}, {"name": None}, {"name": "   "}):
        with pytest.raises(ValidationError) as excinfo:
            deals.create(values)
        assert problems_of(excinfo) == [("/fields/name", '"name" is required')]
    assert deals.count() == 0


def test_every_bad_field_is_reported_at_once(deals: RecordStore) -> None:
    with pytest.raises(ValidationError) as excinfo:
        deals.create(
            {
                "amount": "12abc",
                "email": "not-an-email",
                "phone": "12",
                "stage": "maybe",
                "score": 6,
                "done": "perhaps",
                "close_date": "2024-02-30",
                "tags": ["vip", "hot"],
            }
        )
    assert problems_of(excinfo) == [
        ("/fields/amount", '"amount" is not a number (expected digits like 1234.50)'),
        ("/fields/email", '"email" is not an email address (expected name@example.com)'),
        ("/fields/phone", '"phone" is not a valid phone number for region CN (use +country code)'),
        (
            "/fields/stage",
            '"stage" is not one of the choices: lead, qualified, proposal, won, lost',
        ),
        ("/fields/score", '"score" must be from 0 to 5'),
        ("/fields/done", '"done" is not yes or no (expected true/false, yes/no, 1/0 or 是/否)'),
        ("/fields/close_date", '"close_date" is not a calendar date'),
        ("/fields/tags", '"tags" is not one of the choices: vip, urgent, cold'),
        ("/fields/name", '"name" is required'),
    ]
    assert (
        excinfo.value.message
        == '1 record(s) are invalid: /fields/amount: "amount" is not a number (expected digits like 1234.50)'
    )


def test_unknown_fields_and_system_columns_are_refused_by_name(deals: RecordStore) -> None:
    with pytest.raises(ValidationError) as excinfo:
        deals.create(
            {
                "name": "x",
                "colour": "red",
                "id": 7,
                "created_at": "2024-01-01",
                "updated_at": None,
                "created_by": 1,
                "updated_by": 1,
            }
        )
    assert problems_of(excinfo) == [
        ("/fields/colour", 'unknown field "colour" in table "deals"'),
        ("/fields/id", '"id" is set by Recordbase and cannot be written'),
        ("/fields/created_at", '"created_at" is set by Recordbase and cannot be written'),
        ("/fields/updated_at", '"updated_at" is set by Recordbase and cannot be written'),
        ("/fields/created_by", '"created_by" is set by Recordbase and cannot be written'),
        ("/fields/updated_by", '"updated_by" is set by Recordbase and cannot be written'),
    ]


def test_the_version_column_cannot_be_written(deals: RecordStore) -> None:
    record = deals.create({"name": "x"})
    with pytest.raises(ValidationError) as excinfo:
        deals.update(record.id, {"version": 7}, version=1)
    assert problems_of(excinfo) == [
        ("/fields/version", '"version" is set by Recordbase and cannot be written')
    ]


def test_autonumber_and_stamp_fields_cannot_be_written(rb: Recordbase) -> None:
    make_app(
        rb,
        {
            "orders": [
                field("number", "autonumber"),
                field("made", "created_at"),
                field("name", "text"),
            ]
        },
    )
    orders = rb.records(ACTOR, "shop", "orders")
    with pytest.raises(ValidationError) as excinfo:
        orders.create({"number": 5, "made": "2024-01-01", "name": "x"})
    assert problems_of(excinfo) == [
        ("/fields/number", '"number" is set by Recordbase and cannot be written'),
        ("/fields/made", '"made" is set by Recordbase and cannot be written'),
    ]
    record = orders.create({"name": "x"})
    with pytest.raises(ValidationError) as excinfo:
        orders.update(record.id, {"number": 9}, version=1)
    assert problems_of(excinfo) == [
        ("/fields/number", '"number" is set by Recordbase and cannot be written')
    ]


def test_bulk_create_is_atomic_and_lists_every_problem(rb: Recordbase, deals: RecordStore) -> None:
    with pytest.raises(ValidationError) as excinfo:
        deals.create_many(
            [
                {"name": "fine"},
                {"name": "bad amount", "amount": "lots"},
                {"name": "fine too"},
                {"stage": "nope"},
                "not an object",
            ]
        )
    assert problems_of(excinfo) == [
        ("/records/1/fields/amount", '"amount" is not a number (expected digits like 1234.50)'),
        (
            "/records/3/fields/stage",
            '"stage" is not one of the choices: lead, qualified, proposal, won, lost',
        ),
        ("/records/3/fields/name", '"name" is required'),
        ("/records/4/fields", "expected an object of field values"),
    ]
    assert excinfo.value.message.startswith("3 record(s) are invalid: /records/1/fields/amount")
    assert deals.count() == 0
    assert audit_entries(rb, deals.ts.pk) == []


def test_bulk_create_refuses_more_than_the_batch_limit(deals: RecordStore) -> None:
    with pytest.raises(ValidationError) as excinfo:
        deals.create_many([{"name": "x"}] * 10_001)
    assert problems_of(excinfo) == [("/records", "at most 10000 records per call")]
    assert deals.count() == 0


def test_unique_values_are_checked_within_a_batch_and_against_the_database(
    companies: RecordStore,
) -> None:
    companies.create({"name": "Acme"})
    with pytest.raises(ValidationError) as excinfo:
        companies.create_many(
            [{"name": "Globex"}, {"name": "Initech"}, {"name": "Globex"}, {"name": "Acme"}]
        )
    assert problems_of(excinfo) == [
        ("/records/2/fields/name", '"name" must be unique; the same value is given twice'),
        ("/records/3/fields/name", '"name" must be unique; another record has this value'),
    ]
    with pytest.raises(ValidationError) as excinfo:
        companies.create({"name": " Acme "})
    assert problems_of(excinfo) == [
        ("/fields/name", '"name" must be unique; another record has this value')
    ]
    assert [r.fields["name"] for r in companies.query().records] == ["Acme"]


def test_unique_update_ignores_the_record_itself(companies: RecordStore) -> None:
    acme, globex = companies.create_many([{"name": "Acme"}, {"name": "Globex"}])
    assert companies.update(acme.id, {"name": "Acme", "city": "Paris"}, version=1).fields == {
        "name": "Acme",
        "city": "Paris",
    }
    with pytest.raises(ValidationError) as excinfo:
        companies.update(globex.id, {"name": "Acme"}, version=1)
    assert problems_of(excinfo) == [
        ("/fields/name", '"name" must be unique; another record has this value')
    ]
    assert companies.get(globex.id).fields["name"] == "Globex"


def test_links_must_point_at_existing_records(deals: RecordStore, companies: RecordStore) -> None:
    acme = companies.create({"name": "Acme"})
    with pytest.raises(ValidationError) as excinfo:
        deals.create({"name": "x", "company_ref": 99, "partners": [acme.id, 98]})
    assert problems_of(excinfo) == [
        ("/fields/company_ref", '"company_ref": there is no record in "companies" with id 99'),
        ("/fields/partners", '"partners": there is no record in "companies" with id 98'),
    ]
    with pytest.raises(ValidationError) as excinfo:
        deals.create_many([{"name": "a", "company_ref": acme.id}, {"name": "b", "company_ref": 42}])
    assert problems_of(excinfo) == [
        (
            "/records/1/fields/company_ref",
            '"company_ref": there is no record in "companies" with id 42',
        )
    ]
    with pytest.raises(ValidationError) as excinfo:
        deals.create({"name": "x", "company_ref": 0})
    assert problems_of(excinfo) == [
        ("/fields/company_ref", '"company_ref" expected a record id (a positive integer)')
    ]
    assert deals.count() == 0


# --- get -------------------------------------------------------------------------------


def test_get_returns_the_fields_asked_for_or_raises_not_found(deals: RecordStore) -> None:
    record = deals.create({"name": "x", "amount": 5, "stage": "lead"})
    assert deals.get(record.id, fields=["stage", "name"]).fields == {"name": "x", "stage": "lead"}
    with pytest.raises(NotFound) as excinfo:
        deals.get(999)
    assert excinfo.value.message == 'no record 999 in "deals"'
    with pytest.raises(NotFound):
        deals.get("1")  # type: ignore[arg-type]


# --- update -----------------------------------------------------------------------------


def test_update_changes_given_fields_and_bumps_the_version(
    deals: RecordStore, clock: Clock
) -> None:
    created = deals.create({"name": "x", "amount": "10", "stage": "lead", "tags": ["vip"]})
    clock.now = T1
    updated = deals.update(
        created.id, {"amount": "20.5", "stage": "Qualified", "tags": None}, version=1
    )
    assert updated == Record(
        id=created.id,
        fields=deal(name="x", amount=Decimal("20.50"), stage="qualified"),
        version=2,
        created_at=T0,
        updated_at=T1,
    )
    assert deals.get(created.id) == updated
    assert deals.update(created.id, {"name": "y"}, version=2).version == 3


def test_update_with_a_stale_version_conflicts_and_writes_nothing(deals: RecordStore) -> None:
    created = deals.create({"name": "x", "amount": "10"})
    current = deals.update(created.id, {"amount": "11"}, version=1)
    with pytest.raises(Conflict) as excinfo:
        deals.update(created.id, {"amount": "99", "name": "overwritten"}, version=1)
    assert (
        excinfo.value.message
        == f"record {created.id} was changed by someone else (now at version 2)"
    )
    assert excinfo.value.current == current
    assert deals.get(created.id) == current


def test_update_validates_like_create(deals: RecordStore) -> None:
    created = deals.create({"name": "x"})
    with pytest.raises(ValidationError) as excinfo:
        deals.update(created.id, {"name": None, "score": -1}, version=1)
    assert problems_of(excinfo) == [
        ("/fields/score", '"score" must be from 0 to 5'),
        ("/fields/name", '"name" is required'),
    ]
    assert deals.get(created.id) == created
    with pytest.raises(NotFound):
        deals.update(999, {"name": "x"}, version=1)


# --- audit -------------------------------------------------------------------------------


def test_each_write_is_audited_with_field_changes_by_stable_id(
    rb: Recordbase, crm: AppSchema, deals: RecordStore, companies: RecordStore
) -> None:
    uid = {slug: f.uid for slug, f in deals.ts.fields.items()}
    acme = companies.create({"name": "Acme"})
    record = deals.create(
        {
            "name": "x",
            "amount": "10",
            "stage": "lead",
            "close_date": "2024-05-01",
            "partners": [acme.id],
        }
    )
    deals.update(record.id, {"amount": "12.5", "stage": "lead", "tags": ["cold", "vip"]}, version=1)
    deals.delete(record.id)
    deals.restore(record.id)
    assert audit_entries(rb, deals.ts.pk) == [
        (
            "create",
            record.id,
            {
                "fields": {
                    uid["name"]: [None, "x"],
                    uid["amount"]: [None, "10.00"],
                    uid["stage"]: [None, "lead"],
                    uid["close_date"]: [None, "2024-05-01"],
                    uid["partners"]: [None, [acme.id]],
                }
            },
        ),
        (
            "update",
            record.id,
            {"fields": {uid["amount"]: ["10.00", "12.50"], uid["tags"]: [None, ["vip", "cold"]]}},
        ),
        (
            "delete",
            record.id,
            {
                "fields": {
                    uid["name"]: ["x", None],
                    uid["amount"]: ["12.50", None],
                    uid["stage"]: ["lead", None],
                    uid["close_date"]: ["2024-05-01", None],
                    uid["tags"]: [["vip", "cold"], None],
                    uid["partners"]: [[acme.id], None],
                }
            },
        ),
        ("restore", record.id, {}),
    ]
    a = audit_table
    with rb.read() as conn:
        who = conn.execute(
            sa.select(a.c.actor_kind, a.c.actor_id, a.c.actor_name, a.c.app_id).where(
                a.c.table_id == deals.ts.pk
            )
        ).all()
    assert set(who) == {("system", None, "system:test", crm.pk)}


def test_audit_is_written_in_the_same_transaction_as_the_change(
    rb: Recordbase, deals: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = deals.create({"name": "x"})

    def broken_audit(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("audit unavailable")

    monkeypatch.setattr("recordbase.records.audit_rows", broken_audit)
    with pytest.raises(RuntimeError):
        deals.create({"name": "lost"})
    with pytest.raises(RuntimeError):
        deals.update(record.id, {"name": "lost"}, version=1)
    assert [(r.id, r.fields["name"], r.version) for r in deals.query().records] == [
        (record.id, "x", 1)
    ]
    assert deals.query(search="lost").records == []
    assert [action for action, _, _ in audit_entries(rb, deals.ts.pk)] == ["create"]


# --- autonumbers and ids ----------------------------------------------------------------------


def test_autonumbers_stay_gap_free_when_a_create_fails(
    rb: Recordbase, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_app(
        rb,
        {
            "orders": [
                field("number", "autonumber", options={"prefix": "N", "digits": 3}),
                field("name", "text", unique=True),
            ]
        },
    )
    orders = rb.records(ACTOR, "shop", "orders")
    orders.create({"name": "a"})
    with pytest.raises(ValidationError):
        orders.create_many([{"name": "b"}, {"name": "a"}])  # refused before numbers are drawn
    with (
        monkeypatch.context() as patched
    ):  # fails after the numbers are drawn, inside the transaction
        patched.setattr(
            "recordbase.records.audit_rows",
            lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")),
        )
        with pytest.raises(RuntimeError):
            orders.create_many([{"name": "b"}, {"name": "c"}])
    created = orders.create_many([{"name": "b"}, {"name": "c"}])
    assert [r.fields["number"] for r in orders.query(sort=["number"]).records] == [
        "N001",
        "N002",
        "N003",
    ]
    assert [r.fields for r in created] == [
        {"number": "N002", "name": "b"},
        {"number": "N003", "name": "c"},
    ]


def test_the_id_of_a_trashed_or_purged_record_is_never_reused(
    rb: Recordbase, deals: RecordStore
) -> None:
    deals.create_many([{"name": "a"}, {"name": "b"}, {"name": "c"}])
    deals.delete(3)
    assert deals.create({"name": "d"}).id == 4
    deals.delete(4)
    deals.purge(4)
    assert deals.create({"name": "e"}).id == 5
    assert deals.restore(3).id == 3
    assert all_ids(deals) == [1, 2, 3, 5]


# --- many links ---------------------------------------------------------------------------------


def test_many_links_keep_the_order_given(deals: RecordStore, companies: RecordStore) -> None:
    a, b, c = (r.id for r in companies.create_many([{"name": "A"}, {"name": "B"}, {"name": "C"}]))
    record = deals.create({"name": "x", "partners": [c, a, b, a]})
    assert record.fields["partners"] == [c, a, b]
    assert deals.get(record.id).fields["partners"] == [c, a, b]
    assert deals.query().records[0].fields["partners"] == [c, a, b]
    assert [r.fields["partners"] for r in deals.stream()] == [[c, a, b]]
    updated = deals.update(record.id, {"partners": [b, c]}, version=1)
    assert updated.fields["partners"] == [b, c]
    assert deals.get(record.id).fields["partners"] == [b, c]
    assert deals.update(record.id, {"partners": []}, version=2).fields["partners"] is None
    assert deals.get(record.id).fields["partners"] is None


# --- delete, restore, purge -----------------------------------------------------------------------


def test_delete_moves_a_record_to_the_trash_and_restore_brings_it_back(
    rb: Recordbase, deals: RecordStore, companies: RecordStore
) -> None:
    a, b = (r.id for r in companies.create_many([{"name": "A"}, {"name": "B"}]))
    kept = deals.create({"name": "kept"})
    record = deals.create(
        {"name": "Big deal", "amount": "5", "tags": ["cold"], "company_ref": a, "partners": [b, a]}
    )
    deals.delete(record.id)
    with pytest.raises(NotFound):
        deals.get(record.id)
    assert all_ids(deals) == [kept.id]
    assert deals.count(search="big") == 0
    assert trashed_ids(rb, deals.ts.pk) == [record.id]

    restored = deals.restore(record.id)
    assert (restored.id, restored.version) == (record.id, 2)
    assert restored.fields == record.fields
    assert deals.get(record.id) == restored
    assert [r.id for r in deals.query(search="big").records] == [record.id]
    assert trashed_ids(rb, deals.ts.pk) == []
    with pytest.raises(NotFound) as excinfo:
        deals.restore(record.id)
    assert excinfo.value.message == f'record {record.id} of "deals" is not in the trash'


def test_restore_drops_links_to_records_that_are_gone(
    deals: RecordStore, companies: RecordStore
) -> None:
    a, b = (r.id for r in companies.create_many([{"name": "A"}, {"name": "B"}]))
    record = deals.create({"name": "x", "company_ref": a, "partners": [a, b]})
    deals.delete(record.id)
    companies.delete(a)
    assert deals.restore(record.id).fields == deal(name="x", company_ref=None, partners=[b])


def test_purge_removes_a_trashed_record_for_good(rb: Recordbase, deals: RecordStore) -> None:
    record = deals.create({"name": "x"})
    with pytest.raises(NotFound):
        deals.purge(record.id)  # not in the trash
    deals.delete(record.id)
    deals.purge(record.id)
    with pytest.raises(NotFound) as excinfo:
        deals.delete(record.id)
    assert excinfo.value.message == f'no record {record.id} in "deals"'
    assert trashed_ids(rb, deals.ts.pk) == []
    with pytest.raises(NotFound):
        deals.restore(record.id)
    assert [action for action, _, _ in audit_entries(rb, deals.ts.pk)] == [
        "create",
        "delete",
        "purge",
    ]


def test_restoring_a_unique_value_taken_meanwhile_conflicts(companies: RecordStore) -> None:
    acme = companies.create({"name": "Acme"})
    companies.delete(acme.id)
    companies.create({"name": "Acme"})
    with pytest.raises(Conflict) as excinfo:
        companies.restore(acme.id)
    assert (
        excinfo.value.message
        == f'cannot restore record {acme.id}: another record now has its "name"'
    )


# --- on_delete ---------------------------------------------------------------------------------------


def test_on_delete_restrict_refuses_while_records_link_here(rb: Recordbase) -> None:
    make_deals_app(rb, on_delete="restrict", partners_on_delete="restrict")
    deals, companies = rb.records(ACTOR, "crm", "deals"), rb.records(ACTOR, "crm", "companies")
    a, b = (r.id for r in companies.create_many([{"name": "A"}, {"name": "B"}]))
    first, second = deals.create_many(
        [{"name": "x", "company_ref": a}, {"name": "y", "partners": [b]}]
    )
    with pytest.raises(LinkedRecordError) as excinfo:
        companies.delete(a)
    assert excinfo.value.message == (
        f'cannot delete: 1 record(s) in "deals" link here through "company_ref" (first: {first.id}); unlink them first'
    )
    with pytest.raises(LinkedRecordError) as excinfo:
        companies.delete(b)
    assert excinfo.value.message == (
        f'cannot delete: 1 record(s) in "deals" link here through "partners" (first: {second.id}); unlink them first'
    )
    assert all_ids(companies) == [a, b]
    assert deals.get(first.id) == first
    deals.delete(first.id)
    companies.delete(a)  # nothing links to it any more
    assert all_ids(companies) == [b]


def test_on_delete_set_null_empties_the_links(rb: Recordbase) -> None:
    make_deals_app(rb, on_delete="set_null", partners_on_delete="set_null")
    deals, companies = rb.records(ACTOR, "crm", "deals"), rb.records(ACTOR, "crm", "companies")
    a, b = (r.id for r in companies.create_many([{"name": "A"}, {"name": "B"}]))
    linked, other = deals.create_many(
        [{"name": "x", "company_ref": a, "partners": [b, a]}, {"name": "y", "company_ref": b}]
    )
    companies.delete(a)
    after = deals.get(linked.id)
    assert (after.fields["company_ref"], after.fields["partners"], after.version) == (None, [b], 2)
    assert deals.get(other.id) == other
    assert audit_entries(rb, deals.ts.pk)[-2:] == [
        ("unlink", linked.id, {"field": deals.ts.fields["company_ref"].uid, "removed": [a]}),
        ("unlink", linked.id, {"field": deals.ts.fields["partners"].uid, "removed": [a]}),
    ]


def test_on_delete_cascade_trashes_the_linking_records(rb: Recordbase) -> None:
    make_deals_app(rb, on_delete="cascade")
    deals, companies = rb.records(ACTOR, "crm", "deals"), rb.records(ACTOR, "crm", "companies")
    a, b = (r.id for r in companies.create_many([{"name": "A"}, {"name": "B"}]))
    first, second, third = deals.create_many(
        [
            {"name": "x", "company_ref": a},
            {"name": "y", "company_ref": b},
            {"name": "z", "company_ref": a},
        ]
    )
    companies.delete(a)
    assert all_ids(deals) == [second.id]
    assert trashed_ids(rb, deals.ts.pk) == [first.id, third.id]
    companies.restore(a)
    assert deals.restore(first.id).fields["company_ref"] == a
