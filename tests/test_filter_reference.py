"""Random filter trees and sorts, compiled by the engine, against a plain-Python reference.

One table of random records (text, number with scale 2, date, single_select,
boolean) is inserted once per backend; hypothesis then draws filter trees up
to three levels deep and sort orders, and each must select exactly the ids,
in exactly the order, that the reference below computes from the same rows.

The reference is the specification, in a few lines:
- empty (None) never matches eq, in, comparisons, contains or starts_with;
- ne and not_in do match empties ("stage is not won" includes "no stage");
- contains and starts_with ignore case;
- relative dates match days in ``relative_range(op, n, today)`` of the query clock;
- not, and, or are plain two-valued logic over those answers;
- sorts put empties last in both directions; the id breaks ties.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKENDS, postgres_database
from factories import choices, field, make_app
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from recordbase.actor import Actor
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase.fields.base import RELATIVE_DATE_OPS
from recordbase.fields.temporal import relative_range
from recordbase.records import RecordStore

ACTOR = Actor.system("reference")
NOW = dt.datetime(2024, 5, 15, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
KINDS = ("small", "medium", "large", "huge")  # the choices' order is the sort order

TITLES = [
    None,
    "apple",
    "Apple pie",
    "banana",
    "BANANA split",
    "cherry",
    "张三丰",
    "张三",
    "100% juice",
    "under_score",
    "pie",
]
QTYS = [None] + [
    Decimal(v) for v in ("-1.50", "0.00", "0.01", "2.00", "2.50", "10.00", "99.99", "100.00")
]
DAYS = [None] + [
    TODAY + dt.timedelta(days=d) for d in (-400, -45, -31, -8, -7, -2, -1, 0, 1, 2, 6, 13, 30, 70)
]
FLAGS = [None, True, False]
RECORDS = 60

FIELD_OPS = {
    "title": ["eq", "ne", "in", "not_in", "contains", "starts_with", "is_empty", "is_not_empty"],
    "qty": [
        "eq",
        "ne",
        "in",
        "not_in",
        "lt",
        "lte",
        "gt",
        "gte",
        "between",
        "is_empty",
        "is_not_empty",
    ],
    "day": [
        "eq",
        "ne",
        "in",
        "not_in",
        "lt",
        "lte",
        "gt",
        "gte",
        "between",
        "is_empty",
        "is_not_empty",
        *sorted(RELATIVE_DATE_OPS),
    ],
    "kind": ["eq", "ne", "in", "not_in", "is_empty", "is_not_empty"],
    "flag": ["eq", "ne", "is_empty", "is_not_empty"],
}

SETTINGS = hypothesis_settings(
    max_examples=int(os.environ.get("RECORDBASE_REFERENCE_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure is reproducible
)


class Items:
    """The store and each record's values by id, as the reference sees them (a short repr for failures)."""

    def __init__(self, store: RecordStore, rows: dict[int, dict[str, Any]]) -> None:
        self.store, self.rows = store, rows

    def __repr__(self) -> str:
        return f"<{len(self.rows)} items on {self.store.rb.dialect}>"


# --- the data, once per backend -----------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like the shared fixture, but one database for the whole module (the data is only read)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('reference')}/reference.db"
        return
    server = request.getfixturevalue("postgres_server")
    with postgres_database(server, f"rb_reference_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def items(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Items]:
    settings = Settings.from_env(
        environ={},
        instance_path=Path(tmp_path_factory.mktemp("instance")),
        database_url=database_url,
        secret_key="test",
    )
    rb = Recordbase(settings)
    rb.init_db()
    make_app(
        rb,
        {
            "items": [
                field("title", "text"),
                field("qty", "number", options={"scale": 2}),
                field("day", "date"),
                field("kind", "single_select", options={"choices": choices(*KINDS)}),
                field("flag", "boolean"),
            ]
        },
        slug="reference",
    )
    store = rb.records(ACTOR, "reference", "items")
    rng = random.Random(20240515)
    values = [
        {
            "title": rng.choice(TITLES),
            "qty": rng.choice(QTYS),
            "day": rng.choice(DAYS),
            "kind": rng.choice((None, *KINDS)),
            "flag": rng.choice(FLAGS),
        }
        for _ in range(RECORDS)
    ]
    created = store.create_many(values)
    rows = {record.id: record.fields for record in created}
    assert list(rows.values()) == values  # the data went in as the reference holds it
    yield Items(store, rows)
    rb.dispose()


# --- the reference ----------------------------------------------------------------------------


def matches(node: dict[str, Any], row: dict[str, Any]) -> bool:
    if "and" in node:
        return all(matches(child, row) for child in node["and"])
    if "or" in node:
        return any(matches(child, row) for child in node["or"])
    if "not" in node:
        return not matches(node["not"], row)
    op, wanted = node["op"], reference_value(node["field"], node.get("value"))
    value = row[node["field"]]
    if op == "is_empty":
        return value is None
    if op == "is_not_empty":
        return value is not None
    if op == "ne":
        return value is None or value != wanted
    if op == "not_in":
        return value is None or value not in wanted
    if value is None:
        return False
    if op in RELATIVE_DATE_OPS:
        start, end = relative_range(op, wanted, TODAY)
        return bool(start <= value < end)
    test: dict[str, Callable[[], bool]] = {
        "eq": lambda: value == wanted,
        "in": lambda: value in wanted,
        "lt": lambda: value < wanted,
        "lte": lambda: value <= wanted,
        "gt": lambda: value > wanted,
        "gte": lambda: value >= wanted,
        "between": lambda: wanted[0] <= value <= wanted[1],
        "contains": lambda: wanted.lower() in value.lower(),
        "starts_with": lambda: value.lower().startswith(wanted.lower()),
    }
    return test[op]()


def reference_value(field_slug: str, value: Any) -> Any:
    """A filter operand (as JSON the engine takes) as the Python value rows hold."""
    if isinstance(value, list):
        return [reference_value(field_slug, v) for v in value]
    if field_slug == "qty" and isinstance(value, str):
        return Decimal(value)
    if field_slug == "day" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def reference_sort(rows: dict[int, dict[str, Any]], keys: list[str]) -> list[int]:
    order = sorted(rows)  # the id breaks ties
    for key in reversed(keys):
        slug, descending = key.lstrip("-"), key.startswith("-")

        def rank(rid: int, slug: str = slug) -> Any:
            value = rows[rid][slug]
            return KINDS.index(value) if slug == "kind" else value

        filled = [rid for rid in order if rows[rid][slug] is not None]
        empty = [rid for rid in order if rows[rid][slug] is None]
        order = sorted(filled, key=rank, reverse=descending) + empty  # stable, even reversed
    return order


# --- strategies --------------------------------------------------------------------------------


def _needles() -> list[str]:
    found = set()
    for title in TITLES:
        if title is None:
            continue
        for start in range(len(title)):
            for length in (1, 2, 3, 5, len(title)):
                piece = title[start : start + length].strip()
                if piece:
                    found.update({piece, piece.upper(), piece.lower()})
    return sorted(found | {"zzz", "%", "_"})


NEEDLES = _needles()
WHOLE_TITLES = sorted({t for t in TITLES if t} | {"APPLE", "Cherry", "nothing"})
qty_values = st.one_of(
    st.sampled_from([q for q in QTYS if q is not None]).flatmap(
        lambda q: st.sampled_from([q, q + Decimal("0.01"), q - Decimal("0.01")])
    ),
    st.integers(-20_000, 20_000).map(lambda cents: Decimal(cents).scaleb(-2)),
).map(lambda q: format(q, "f"))
day_values = st.one_of(
    st.sampled_from([d for d in DAYS if d is not None]).flatmap(
        lambda d: st.sampled_from([d, d + dt.timedelta(days=1), d - dt.timedelta(days=1)])
    ),
    st.dates(dt.date(2022, 1, 1), dt.date(2026, 1, 1)),
).map(dt.date.isoformat)
VALUE_STRATEGIES: dict[str, Any] = {
    "title": st.sampled_from(WHOLE_TITLES),
    "qty": qty_values,
    "day": day_values,
    "kind": st.sampled_from(KINDS),
    "flag": st.booleans(),
}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    slug = draw(st.sampled_from(sorted(FIELD_OPS)))
    op = draw(st.sampled_from(FIELD_OPS[slug]))
    values = VALUE_STRATEGIES[slug]
    if op in ("is_empty", "is_not_empty") or op in RELATIVE_DATE_OPS - {
        "last_n_days",
        "next_n_days",
    }:
        return {"field": slug, "op": op}
    if op in ("last_n_days", "next_n_days"):
        value: Any = draw(st.integers(1, 400))
    elif op in ("contains", "starts_with"):
        value = draw(st.sampled_from(NEEDLES))
    elif op in ("in", "not_in"):
        value = draw(st.lists(values, min_size=1, max_size=3))
    elif op == "between":
        value = (
            sorted(
                draw(st.lists(values, min_size=2, max_size=2)),
                key=lambda v: reference_value(slug, v),
            )
            if draw(st.booleans())
            else draw(st.lists(values, min_size=2, max_size=2))
        )
    else:
        value = draw(values)
    return {"field": slug, "op": op, "value": value}


def trees(depth: int) -> Any:
    if depth == 0:
        return conditions()
    children = trees(depth - 1)
    return st.one_of(
        conditions(),
        st.lists(children, max_size=3).map(lambda nodes: {"and": nodes}),
        st.lists(children, max_size=3).map(lambda nodes: {"or": nodes}),
        children.map(lambda node: {"not": node}),
    )


SORT_FIELDS = ["title", "qty", "day", "kind", "flag", "id"]
sorts = st.lists(st.sampled_from(SORT_FIELDS), min_size=1, max_size=3, unique=True).flatmap(
    lambda slugs: st.tuples(*(st.sampled_from([s, "-" + s]) for s in slugs)).map(list)
)


# --- the properties ----------------------------------------------------------------------------


def engine_ids(store: RecordStore, **kwargs: Any) -> list[int]:
    return [
        r.id
        for r in store.query(
            page_size=1000, now=NOW, fields=["title"], with_total=False, **kwargs
        ).records
    ]


@SETTINGS
@given(tree=trees(3))
def test_filters_select_what_the_reference_selects(items: Items, tree: dict[str, Any]) -> None:
    store, rows = items.store, items.rows
    expected = [rid for rid, row in rows.items() if matches(tree, row)]
    assert engine_ids(store, filter=tree) == expected


@SETTINGS
@given(keys=sorts)
def test_sorts_order_like_the_reference(items: Items, keys: list[str]) -> None:
    store, rows = items.store, items.rows
    id_keys = [k for k in keys if k.lstrip("-") == "id"]
    cut = keys.index(id_keys[0]) if id_keys else len(keys)
    expected = reference_sort(rows, [k for k in keys[:cut] if k.lstrip("-") != "id"])
    if id_keys:  # the id is unique: it decides everything the keys before it leave open
        descending = id_keys[0].startswith("-")
        expected = _resort_ties(rows, keys[:cut], expected, descending)
    assert engine_ids(store, sort=keys) == expected


def _resort_ties(
    rows: dict[int, dict[str, Any]], keys: list[str], order: list[int], descending: bool
) -> list[int]:
    """``order`` with each run of records equal on ``keys`` ordered by id, as asked."""
    groups: list[list[int]] = []
    for rid in order:
        signature = [rows[rid][k.lstrip("-")] for k in keys]
        if groups and [rows[groups[-1][0]][k.lstrip("-")] for k in keys] == signature:
            groups[-1].append(rid)
        else:
            groups.append([rid])
    return [rid for group in groups for rid in sorted(group, reverse=descending)]


@SETTINGS
@given(tree=trees(1), keys=sorts, page_size=st.integers(1, 25))
def test_walking_pages_gives_the_one_big_query(
    items: Items, tree: dict[str, Any], keys: list[str], page_size: int
) -> None:
    store = items.store
    walked: list[int] = []
    cursor = None
    while True:
        page = store.query(
            filter=tree, sort=keys, page_size=page_size, cursor=cursor, now=NOW, with_total=False
        )
        walked.extend(r.id for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert walked == engine_ids(store, filter=tree, sort=keys)
