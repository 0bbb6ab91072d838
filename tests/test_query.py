"""Querying records: filters of every operator family, sorting, keyset pages, projection and search."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from factories import make_deals_app
from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.errors import QueryError
from recordbase.query import RecordQuery
from recordbase.records import RecordStore

ACTOR = Actor.system("test")
NOW = dt.datetime(2024, 5, 15, 12, 0, tzinfo=dt.UTC)  # a Wednesday: this week is 13–19 May

A, B, C = 1, 2, 3  # companies
# The deals, ids 1..8. Record 3 has nothing but a name; "" is stored as empty.
DEALS: list[dict[str, Any]] = [
    {
        "name": "Alpha Deal",
        "company": "Acme Corp",
        "amount": "100",
        "stage": "lead",
        "close_date": "2024-05-01",
        "tags": ["vip"],
        "score": 3,
        "done": True,
        "pct": 10,
        "partners": [A],
        "when": "2024-05-15T08:00:00Z",
    },
    {
        "name": "beta deal",
        "company": "acme labs",
        "amount": "250.50",
        "stage": "qualified",
        "close_date": "2024-04-30",
        "tags": ["vip", "urgent"],
        "score": 5,
        "done": False,
        "pct": 20,
        "partners": [B, A],
        "when": "2024-05-14T23:59:59Z",
    },
    {"name": "Gamma"},
    {
        "name": "Delta",
        "company": "Globex",
        "amount": "100",
        "stage": "won",
        "close_date": "2024-05-10",
        "tags": ["urgent"],
        "score": 1,
        "done": True,
        "partners": [B],
        "company_ref": B,
    },
    {
        "name": "张三丰",
        "company": "武当派",
        "amount": "-5",
        "stage": "lost",
        "close_date": "2024-05-15",
        "tags": ["cold"],
        "score": 0,
        "done": False,
        "pct": 50,
        "company_ref": A,
    },
    {
        "name": "Epsilon",
        "company": "100% Pure",
        "amount": "1000",
        "stage": "won",
        "close_date": "2023-12-31",
        "score": 4,
        "partners": [C],
        "company_ref": A,
    },
    {
        "name": "Zeta",
        "company": "Acme_Corp",
        "amount": "0.01",
        "stage": "proposal",
        "close_date": "2024-05-14",
        "tags": ["vip", "cold"],
        "score": 2,
        "done": True,
        "pct": 0,
    },
    {
        "name": "Eta",
        "company": "",
        "amount": "99.99",
        "close_date": "2024-05-18",
        "tags": ["urgent", "cold"],
        "done": False,
    },
]
ALL = [1, 2, 3, 4, 5, 6, 7, 8]
DEAL_FIELDS = "id, name, company, email, phone, amount, stage, close_date, notes, tags, score, done, when, pct, company_ref, partners"
UNKNOWN_COLOUR = f'unknown field "colour" in table "deals"; fields are: {DEAL_FIELDS}'


@pytest.fixture
def deals(rb: Recordbase) -> RecordStore:
    make_deals_app(rb)
    companies = rb.records(ACTOR, "crm", "companies")
    companies.create_many([{"name": "A"}, {"name": "B"}, {"name": "C"}])
    store = rb.records(ACTOR, "crm", "deals")
    store.create_many(DEALS)
    return store


def ids(store: RecordStore, filter: Any = None, **kwargs: Any) -> list[int]:
    return [r.id for r in store.query(filter=filter, page_size=1000, now=NOW, **kwargs).records]


def cond(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return (
        {"field": field, "op": op} if value is None else {"field": field, "op": op, "value": value}
    )


def results(store: RecordStore, cases: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    return {name: ids(store, node) for name, node in cases.items()}


def query_problems(excinfo: pytest.ExceptionInfo[QueryError]) -> list[tuple[str, str]]:
    return [(p.pointer, p.message) for p in excinfo.value.problems]


# --- filters by operator family ------------------------------------------------------------


def test_equality_filters_and_negations_that_match_empties(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "stage eq": cond("stage", "eq", "won"),
            "stage eq by label": cond("stage", "eq", "Won"),
            "stage ne": cond("stage", "ne", "won"),
            "stage in": cond("stage", "in", ["lead", "won"]),
            "stage not_in": cond("stage", "not_in", ["lead", "won"]),
            "amount eq": cond("amount", "eq", 100),
            "amount ne": cond("amount", "ne", "100.00"),
            "company eq": cond("company", "eq", "Globex"),
            "company ne": cond("company", "ne", "Globex"),
            "score in": cond("score", "in", [0, 5]),
            "id in": cond("id", "in", [8, 3]),
            "id not_in": cond("id", "not_in", [1, 2, 3]),
            "company_ref eq": cond("company_ref", "eq", A),
            "company_ref ne": cond("company_ref", "ne", A),
        },
    ) == {
        "stage eq": [4, 6],
        "stage eq by label": [4, 6],
        "stage ne": [1, 2, 3, 5, 7, 8],
        "stage in": [1, 4, 6],
        "stage not_in": [2, 3, 5, 7, 8],
        "amount eq": [1, 4],
        "amount ne": [2, 3, 5, 6, 7, 8],
        "company eq": [4],
        "company ne": [1, 2, 3, 5, 6, 7, 8],
        "score in": [2, 5],
        "id in": [3, 8],
        "id not_in": [4, 5, 6, 7, 8],
        "company_ref eq": [5, 6],
        "company_ref ne": [1, 2, 3, 4, 7, 8],
    }


def test_order_filters_never_match_empties(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "lt": cond("amount", "lt", 100),
            "lte": cond("amount", "lte", "100"),
            "gt": cond("amount", "gt", 100),
            "gte": cond("amount", "gte", 100),
            "between": cond("amount", "between", [0, 100]),
            "negative": cond("amount", "lt", 0),
            "score gte": cond("score", "gte", 3),
            "date lt": cond("close_date", "lt", "2024-05-01"),
            "date between": cond("close_date", "between", ["2024-05-10", "2024-05-15"]),
            "datetime gte": cond("when", "gte", "2024-05-15T07:00:00+00:00"),
            "id gt": cond("id", "gt", 6),
        },
    ) == {
        "lt": [5, 7, 8],
        "lte": [1, 4, 5, 7, 8],
        "gt": [2, 6],
        "gte": [1, 2, 4, 6],
        "between": [1, 4, 7, 8],
        "negative": [5],
        "score gte": [1, 2, 6],
        "date lt": [2, 6],
        "date between": [4, 5, 7],
        "datetime gte": [1],
        "id gt": [7, 8],
    }


def test_text_filters_are_case_insensitive_and_take_wildcards_literally(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "contains": cond("company", "contains", "acme"),
            "contains upper": cond("company", "contains", "ACME"),
            "contains underscore": cond("company", "contains", "_"),
            "contains percent": cond("company", "contains", "%"),
            "contains chinese": cond("name", "contains", "三"),
            "starts_with": cond("company", "starts_with", "ACME"),
            "starts_with middle": cond("company", "starts_with", "corp"),
            "name contains": cond("name", "contains", "DEAL"),
        },
    ) == {
        "contains": [1, 2, 7],
        "contains upper": [1, 2, 7],
        "contains underscore": [7],
        "contains percent": [6],
        "contains chinese": [5],
        "starts_with": [1, 2, 7],
        "starts_with middle": [],
        "name contains": [1, 2],
    }


def test_empty_filters(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "company is_empty": cond("company", "is_empty"),
            "company is_not_empty": cond("company", "is_not_empty"),
            "amount is_empty": cond("amount", "is_empty"),
            "tags is_empty": cond("tags", "is_empty"),
            "partners is_empty": cond("partners", "is_empty"),
            "partners is_not_empty": cond("partners", "is_not_empty"),
            "done is_empty": cond("done", "is_empty"),
            "score is_empty": cond("score", "is_empty"),
        },
    ) == {
        "company is_empty": [3, 8],
        "company is_not_empty": [1, 2, 4, 5, 6, 7],
        "amount is_empty": [3],
        "tags is_empty": [3, 6],
        "partners is_empty": [3, 5, 7, 8],
        "partners is_not_empty": [1, 2, 4, 6],
        "done is_empty": [3, 6],
        "score is_empty": [3, 8],
    }


def test_relative_date_filters_count_from_the_query_clock(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "today": cond("close_date", "today"),
            "yesterday": cond("close_date", "yesterday"),
            "tomorrow": cond("close_date", "tomorrow"),
            "this_week": cond("close_date", "this_week"),
            "last_week": cond("close_date", "last_week"),
            "next_week": cond("close_date", "next_week"),
            "this_month": cond("close_date", "this_month"),
            "last_month": cond("close_date", "last_month"),
            "this_year": cond("close_date", "this_year"),
            "last_year": cond("close_date", "last_year"),
            "last_n_days": cond("close_date", "last_n_days", 7),
            "next_n_days": cond("close_date", "next_n_days", 3),
            "datetime today": cond("when", "today"),
            "datetime yesterday": cond("when", "yesterday"),
        },
    ) == {
        "today": [5],
        "yesterday": [7],
        "tomorrow": [],
        "this_week": [5, 7, 8],
        "last_week": [4],
        "next_week": [],
        "this_month": [1, 4, 5, 7, 8],
        "last_month": [2],
        "this_year": [1, 2, 4, 5, 7, 8],
        "last_year": [6],
        "last_n_days": [4, 5, 7],
        "next_n_days": [5, 8],
        "datetime today": [1],
        "datetime yesterday": [2],
    }
    later = dt.datetime(2024, 5, 18, 0, 0, tzinfo=dt.UTC)
    assert ids(deals, cond("close_date", "today"), sort=None) == [
        5
    ]  # the fixed clock, not the real one
    assert [r.id for r in deals.query(filter=cond("close_date", "today"), now=later).records] == [8]


def test_multi_select_and_many_link_filters(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "tags contains one": cond("tags", "contains", ["vip"]),
            "tags contains all": cond("tags", "contains", ["vip", "cold"]),
            "tags contains by label": cond("tags", "contains", "Urgent"),
            "tags in any": cond("tags", "in", ["urgent", "cold"]),
            "tags not_in": cond("tags", "not_in", ["vip"]),
            "tags eq exact set": cond("tags", "eq", ["urgent", "vip"]),
            "partners contains": cond("partners", "contains", A),
            "partners eq": cond("partners", "eq", B),
            "partners in": cond("partners", "in", [B, C]),
            "partners ne": cond("partners", "ne", A),
            "partners not_in": cond("partners", "not_in", [A, C]),
        },
    ) == {
        "tags contains one": [1, 2, 7],
        "tags contains all": [7],
        "tags contains by label": [2, 4, 8],
        "tags in any": [2, 4, 5, 7, 8],
        "tags not_in": [3, 4, 5, 6, 8],
        "tags eq exact set": [2],
        "partners contains": [1, 2],
        "partners eq": [2, 4],
        "partners in": [2, 4, 6],
        "partners ne": [3, 4, 5, 6, 7, 8],
        "partners not_in": [3, 4, 5, 7, 8],
    }


def test_boolean_filters(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "eq true": cond("done", "eq", True),
            "eq false": cond("done", "eq", False),
            "eq yes": cond("done", "eq", "yes"),
            "ne true": cond("done", "ne", True),
            "is_not_empty": cond("done", "is_not_empty"),
        },
    ) == {
        "eq true": [1, 4, 7],
        "eq false": [2, 5, 8],
        "eq yes": [1, 4, 7],
        "ne true": [2, 3, 5, 6, 8],
        "is_not_empty": [1, 2, 4, 5, 7, 8],
    }


def test_and_or_not_nest(deals: RecordStore) -> None:
    assert results(
        deals,
        {
            "and": {"and": [cond("stage", "in", ["lead", "won"]), cond("amount", "lte", 100)]},
            "or": {"or": [cond("stage", "eq", "lost"), cond("tags", "contains", ["vip", "cold"])]},
            "nested": {
                "and": [
                    {"or": [cond("stage", "eq", "won"), cond("stage", "eq", "lead")]},
                    {"not": cond("amount", "gt", 100)},
                ]
            },
            "empty and": {"and": []},
            "empty or": {"or": []},
            "not or": {"not": {"or": [cond("id", "lt", 3), cond("id", "gt", 6)]}},
            "deep": {
                "or": [
                    {"and": [{"not": {"not": cond("id", "eq", 2)}}]},
                    {"and": [cond("company", "starts_with", "Glob")]},
                ]
            },
        },
    ) == {
        "and": [1, 4],
        "or": [5, 7],
        "nested": [1, 4],
        "empty and": ALL,
        "empty or": [],
        "not or": [3, 4, 5, 6],
        "deep": [2, 4],
    }


def test_not_is_the_complement_even_where_values_are_empty(deals: RecordStore) -> None:
    """ "not X" is every record X does not match: SQL's unknown (NULL) must not leak out."""
    assert results(
        deals,
        {
            "not gt": {"not": cond("amount", "gt", 100)},
            "not contains": {"not": cond("company", "contains", "acme")},
            "not eq": {"not": cond("stage", "eq", "won")},
            "not tags contains": {"not": cond("tags", "contains", ["vip"])},
            "not today": {"not": cond("close_date", "today")},
            "not of or": {"not": {"or": [cond("done", "eq", True), cond("score", "gte", 4)]}},
        },
    ) == {
        "not gt": [1, 3, 4, 5, 7, 8],
        "not contains": [3, 4, 5, 6, 8],
        "not eq": [1, 2, 3, 5, 7, 8],
        "not tags contains": [3, 4, 5, 6, 8],
        "not today": [1, 2, 3, 4, 6, 7, 8],
        "not of or": [3, 5, 8],
    }


# --- filter errors --------------------------------------------------------------------------


def query_error(store: RecordStore, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(QueryError) as excinfo:
        store.query(now=NOW, **kwargs)
    return query_problems(excinfo)


def test_filter_errors_point_at_the_offending_node(deals: RecordStore) -> None:
    fields = DEAL_FIELDS
    cases = {
        "unknown op": {"and": [cond("stage", "eq", "won"), cond("stage", "bogus", "x")]},
        "wrong op for the type": cond("done", "gt", True),
        "text op on a number": {
            "or": [cond("id", "eq", 1), {"not": cond("amount", "contains", "1")}]
        },
        "unknown field": {"or": [cond("colour", "eq", "red")]},
        "bad value": {"and": [cond("amount", "gt", "abc")]},
        "not a choice": cond("stage", "in", ["won", "maybe"]),
        "in needs a list": cond("stage", "in", "won"),
        "between needs two": cond("amount", "between", [1]),
        "missing value": cond("name", "eq"),
        "empty value": cond("name", "eq", ""),
        "value on is_empty": cond("name", "is_empty", "x"),
        "bad n days": cond("close_date", "last_n_days", 0),
        "not a node": {"and": [cond("id", "eq", 1), "nope"]},
        "and not a list": {"and": cond("id", "eq", 1)},
        "mixed keys": {"field": "name", "op": "eq", "value": "x", "and": []},
    }
    found = {}
    for name, node in cases.items():
        with pytest.raises(QueryError) as excinfo:
            deals.query(filter=node, now=NOW)
        found[name] = query_problems(excinfo)
    node_shape = (
        'a filter node is {"and": [...]}, {"or": [...]}, {"not": {...}}, {"field", "op", "value"} or {"consent", "op"}'
    )
    assert found == {
        "unknown op": [
            (
                "/filter/and/1/op",
                'operator "bogus" is not supported by single_select field "stage"; use one of: eq, in, is_empty, is_not_empty, ne, not_in',
            )
        ],
        "wrong op for the type": [
            (
                "/filter/op",
                'operator "gt" is not supported by boolean field "done"; use one of: eq, is_empty, is_not_empty, ne',
            )
        ],
        "text op on a number": [
            (
                "/filter/or/1/not/op",
                'operator "contains" is not supported by currency field "amount"; use one of: between, eq, gt, gte, in, is_empty, is_not_empty, lt, lte, ne, not_in',
            )
        ],
        "unknown field": [
            ("/filter/or/0/field", f'unknown field "colour" in table "deals"; fields are: {fields}')
        ],
        "bad value": [
            (
                "/filter/and/0/value",
                'is not a number (expected digits like 1234.50) (field "amount", operator "gt")',
            )
        ],
        "not a choice": [
            (
                "/filter/value",
                'is not one of the choices: lead, qualified, proposal, won, lost (field "stage", operator "in")',
            )
        ],
        "in needs a list": [
            (
                "/filter/value",
                '"in" needs a non-empty list of values (field "stage", operator "in")',
            )
        ],
        "between needs two": [
            (
                "/filter/value",
                '"between" needs a list of two values [low, high] (field "amount", operator "between")',
            )
        ],
        "missing value": [("/filter/value", '"eq" needs a value')],
        "empty value": [
            (
                "/filter/value",
                'a filter value cannot be empty; use is_empty (field "name", operator "eq")',
            )
        ],
        "value on is_empty": [("/filter/value", '"is_empty" takes no value')],
        "bad n days": [
            (
                "/filter/value",
                '"last_n_days" needs a whole number of days, 1 or more (field "close_date", operator "last_n_days")',
            )
        ],
        "not a node": [
            ("/filter/and/1", "a filter node must be an object with and / or / not, or field + op")
        ],
        "and not a list": [("/filter/and", '"and" takes a list of filter nodes')],
        "mixed keys": [("/filter", node_shape)],
    }
    assert str(excinfo.value) == f"/filter: {node_shape}"


# --- sorting -----------------------------------------------------------------------------


def test_sorting_by_several_columns_puts_empties_last_in_both_directions(
    deals: RecordStore,
) -> None:
    sorts: dict[str, Any] = {
        "amount": ["amount"],
        "-amount": ["-amount"],
        "stage, -amount": ["stage", "-amount"],
        "-stage, amount": ["-stage", "amount"],
        "comma text": "-close_date, id",
        "objects": [{"field": "score", "direction": "desc"}, {"field": "done"}],
        "done, -id": ["done", "-id"],
        "-id": ["-id", "amount"],
        "created_at": ["created_at"],
    }
    assert {name: ids(deals, sort=sort) for name, sort in sorts.items()} == {
        "amount": [5, 7, 8, 1, 4, 2, 6, 3],
        "-amount": [6, 2, 1, 4, 8, 7, 5, 3],
        "stage, -amount": [1, 2, 7, 6, 4, 5, 8, 3],  # choices' order, not the ids' alphabet
        "-stage, amount": [5, 4, 6, 7, 2, 1, 8, 3],
        "comma text": [8, 5, 7, 4, 1, 2, 6, 3],
        "objects": [2, 6, 1, 7, 4, 5, 8, 3],
        "done, -id": [8, 5, 2, 7, 4, 1, 6, 3],
        "-id": [8, 7, 6, 5, 4, 3, 2, 1],
        "created_at": ALL,
    }


def test_sort_errors_point_at_the_key(deals: RecordStore) -> None:
    assert query_error(deals, sort=["amount", "colour"]) == [("/sort/1", UNKNOWN_COLOUR)]
    assert query_error(deals, sort=["partners"]) == [
        ("/sort/0", 'cannot sort by "partners": it links to several records')
    ]
    assert query_error(deals, sort=[3]) == [("/sort/0", 'a sort key is "field" or "-field"')]


# --- keyset pages ---------------------------------------------------------------------------


def extra_deals() -> list[dict[str, Any]]:
    """More ties and empties than the base data: every value comes twice or more."""
    return [
        {
            "name": f"extra {i}",
            "amount": [None, "100", "-5", "0.01"][i % 4],
            "stage": [None, "won", "lead"][i % 3],
            "close_date": [None, "2024-05-15", "2024-04-30"][i % 3],
            "done": [None, True, False][i % 3],
            "score": i % 2,
        }
        for i in range(17)
    ]


def walk(store: RecordStore, page_size: int, **kwargs: Any) -> tuple[list[int], list[int | None]]:
    """Every page's ids in order, and each page's total."""
    seen: list[int] = []
    totals: list[int | None] = []
    cursor = None
    while True:
        page = store.query(page_size=page_size, cursor=cursor, now=NOW, **kwargs)
        seen.extend(r.id for r in page.records)
        totals.append(page.total)
        if page.next_cursor is None:
            return seen, totals
        cursor = page.next_cursor


def test_walking_the_pages_gives_the_one_big_sorted_query(deals: RecordStore) -> None:
    deals.create_many(extra_deals())
    filters = [None, cond("stage", "ne", "lead"), cond("amount", "is_not_empty")]
    sorts = [
        ["amount"],
        ["-amount"],
        ["stage", "-close_date"],
        ["-stage", "amount", "score"],
        ["-score", "close_date"],
        ["-close_date", "-id"],
        None,
    ]
    for filter in filters:
        for sort in sorts:
            expected = ids(deals, filter, sort=sort)
            for page_size in (1, 3, 7):
                walked, totals = walk(deals, page_size, filter=filter, sort=sort)
                assert (filter, sort, page_size, walked) == (filter, sort, page_size, expected)
                assert set(totals) == {len(expected)}


def test_walking_the_pages_sorted_by_a_boolean(deals: RecordStore) -> None:
    deals.create_many(extra_deals())
    for sort in (["done"], ["-done", "score"], ["stage", "-done", "-amount"]):
        walked, _ = walk(deals, 4, sort=sort)
        assert (sort, walked) == (sort, ids(deals, sort=sort))


def test_a_bad_or_foreign_cursor_is_refused(deals: RecordStore) -> None:
    cursor = deals.query(sort=["amount"], page_size=2).next_cursor
    assert cursor is not None
    assert query_error(deals, sort=["-amount"], cursor=cursor) == [
        ("/cursor", "this cursor belongs to a query with another sort order")
    ]
    assert query_error(deals, sort=["amount"], cursor="not a cursor!") == [
        ("/cursor", "this cursor is not valid; start again from the first page")
    ]
    assert query_error(deals, sort=["amount"], cursor="eyJ4IjoxfQ") == [
        ("/cursor", "this cursor is not valid; start again from the first page")
    ]
    assert query_error(deals, page_size=0) == [("/page_size", "must be between 1 and 1000")]
    assert [r.id for r in deals.query(sort=["amount"], page_size=2, cursor=cursor).records] == [
        8,
        1,
    ]


# --- projection, totals --------------------------------------------------------------------------


def test_projection_returns_only_the_fields_asked_for(deals: RecordStore) -> None:
    page = deals.query(fields=["amount", "name", "partners"], filter=cond("id", "in", [1, 2]))
    assert [(r.id, r.fields) for r in page.records] == [
        (
            1,
            {
                "name": "Alpha Deal",
                "amount": deals.ts.fields["amount"].type.parse(deals.ts.fields["amount"], "100"),
                "partners": [A],
            },
        ),
        (
            2,
            {
                "name": "beta deal",
                "amount": deals.ts.fields["amount"].type.parse(deals.ts.fields["amount"], "250.5"),
                "partners": [B, A],
            },
        ),
    ]
    assert [r.fields for r in deals.query(fields="stage,done", page_size=1).records] == [
        {"stage": "lead", "done": True}
    ]
    assert query_error(deals, fields=["name", "colour"]) == [("/fields/1", UNKNOWN_COLOUR)]


def test_total_counts_every_match_not_just_the_page(deals: RecordStore) -> None:
    page = deals.query(filter=cond("tags", "contains", ["cold"]), page_size=2)
    assert ([r.id for r in page.records], page.total) == ([5, 7], 3)
    assert deals.query(page_size=2, with_total=False).total is None
    assert deals.count() == 8
    assert deals.count(cond("stage", "eq", "won")) == 2
    assert deals.count(search="acme") == 3


# --- search -----------------------------------------------------------------------------------


def test_search_finds_substrings_of_every_term(deals: RecordStore) -> None:
    assert {
        text: ids(deals, search=text)
        for text in [
            "acme",
            "ACME",
            "deal acme",
            "acme   labs",
            "张三",
            "三丰",
            "张",
            "ta",
            "z",
            "100%",
            "_corp",
            "nothing",
            "",
        ]
    } == {
        "acme": [1, 2, 7],
        "ACME": [1, 2, 7],
        "deal acme": [1, 2],
        "acme   labs": [2],
        "张三": [5],
        "三丰": [5],
        "张": [5],
        "ta": [2, 4, 7, 8],
        "z": [7],
        "100%": [6],
        "_corp": [7],
        "nothing": [],
        "": ALL,
    }
    assert ids(deals, cond("stage", "eq", "lead"), search="acme") == [1]


def test_search_follows_updates_and_deletes(deals: RecordStore) -> None:
    deals.update(7, {"name": "Omega"}, version=1)
    assert (
        ids(deals, search="zeta"),
        ids(deals, search="omega"),
        ids(deals, search="acme_corp"),
    ) == ([], [7], [7])
    deals.update(7, {"company": None}, version=2)
    assert ids(deals, search="acme") == [1, 2]
    deals.delete(5)
    assert ids(deals, search="张三") == []
    deals.restore(5)
    assert ids(deals, search="张三") == [5]


# --- streaming --------------------------------------------------------------------------------


def test_stream_yields_what_query_returns_in_the_same_order(deals: RecordStore) -> None:
    for sort in (["-amount"], ["stage", "close_date"], None):
        request = RecordQuery(filter=cond("id", "ne", 4), sort=sort, now=NOW, page_size=1000)
        assert list(deals.stream(request, batch_size=3)) == deals.query(request).records
    assert [r.fields for r in deals.stream(fields=["name"], search="acme")] == [
        {"name": "Alpha Deal"},
        {"name": "beta deal"},
        {"name": "Zeta"},
    ]
