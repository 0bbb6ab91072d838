"""Saved grid views: a user's own state of a table's grid, or one shared with the table's readers.

A saved view (``rb_saved_view``) holds a grid's state in the engine's own
terms — ``{"filter": <filter tree>, "sort": ["-amount", "name"], "fields":
["name", "amount"] or None, "search": "text"}`` — so it is checked and run
exactly like a query typed by hand. What this module promises:

- **Personal views are private.** A view that is not shared is visible to,
  and changeable by, its owner only; anyone else asking for it gets
  ``NotFound``, exactly as for a view that does not exist.
- **Sharing needs ``manage``.** Sharing a view, and changing or deleting a
  shared one (whoever owns it), needs the ``manage`` right on the table
  (platform admins have it); otherwise ``PermissionDenied``. Reading and
  listing views needs the ``read`` right on the table.
- **The state is checked on save** by compiling it for the saving actor (a
  one-row query through the ``RecordStore``): a filter, sort, search or
  column the actor may not use is refused with the engine's ``QueryError``
  (pointers under ``/state``), and nothing is stored.
- **A view never reveals anything.** This module only hands the state back;
  the caller runs it through ``rb.records(<the user opening it>, …)``, so a
  shared view shows each user no more than that user's own roles allow.

Every function takes the engine, the acting user, the app and the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .actor import Actor
from .errors import NotFound, PermissionDenied, Problem, QueryError, ValidationError
from .models import SavedView, utcnow
from .query import RecordQuery

if TYPE_CHECKING:
    from .core import Recordbase
    from .records import RecordStore

views_table: sa.Table = SavedView.__table__  # type: ignore[assignment]
MAX_NAME = 200
MAX_SEARCH = 500
STATE_KEYS = ("filter", "sort", "fields", "search")


@dataclass(frozen=True)
class GridView:
    """A saved view as its reader gets it; ``mine`` says whether the reader owns it."""

    id: int
    name: str
    shared: bool
    owner_id: int
    mine: bool
    state: dict[str, Any]
    updated_at: dt.datetime


def normalise_state(state: Any) -> dict[str, Any]:
    """The state in normal form (every key present), or ``QueryError`` pointing under ``/state``.

    Only the shape is checked here; :func:`check_state` checks it against the table and the actor.
    """
    if not isinstance(state, Mapping):
        raise QueryError("a view's state must be an object", [Problem("/state", "expected an object")])
    unknown = sorted(set(state) - set(STATE_KEYS))
    if unknown:
        problems = [Problem(f"/state/{key}", f'unknown key "{key}"; keys are: {", ".join(STATE_KEYS)}') for key in unknown]
        raise QueryError(f'unknown key "{unknown[0]}" in a view\'s state', problems)
    tree = state.get("filter") or None
    sort = state.get("sort") or []
    if isinstance(sort, str):
        sort = [part.strip() for part in sort.split(",") if part.strip()]
    if not isinstance(sort, list) or not all(isinstance(s, str) and s.strip("-+") for s in sort):
        raise QueryError("a view's sort is a list of field names", [Problem("/state/sort", 'expected a list like ["-amount", "name"]')])
    fields = state.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise QueryError("a view's fields are a list of field names", [Problem("/state/fields", "expected a list of field names")])
    search = state.get("search") or ""
    if not isinstance(search, str) or len(search) > MAX_SEARCH:
        raise QueryError("a view's search is text", [Problem("/state/search", f"expected text of at most {MAX_SEARCH} characters")])
    return {"filter": tree, "sort": list(sort), "fields": None if fields is None else list(dict.fromkeys(fields)), "search": search.strip()}


def check_state(store: RecordStore, state: Any) -> dict[str, Any]:
    """The normalised state, after compiling and running it once (one row) as the store's actor.

    The engine's ``QueryError`` (a field not read in clear, an unknown field,
    a wrong operator) comes back with its pointers moved under ``/state``.
    """
    clean = normalise_state(state)
    try:
        store.query(RecordQuery(
            filter=clean["filter"], sort=clean["sort"] or None, search=clean["search"] or None,
            fields=clean["fields"], page_size=1, with_total=False,
        ))
    except QueryError as refused:
        raise QueryError(refused.message, [Problem("/state" + p.pointer, p.message) for p in refused.problems]) from None
    return clean


def _user_id(actor: Actor) -> int:
    if actor.user_id is None:
        raise PermissionDenied("saved views belong to users; a system actor has none")
    return actor.user_id


def _clean_name(name: Any) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME:
        message = f"a view needs a name of 1 to {MAX_NAME} characters"
        raise ValidationError(message, [Problem("/name", message)])
    return text


def _store(rb: Recordbase, actor: Actor, app: str, table: str) -> RecordStore:
    store = rb.records(actor, app, table)
    store.access.require("read")
    return store


def _visible(store: RecordStore, user_id: int) -> sa.ColumnElement[bool]:
    t = views_table
    return sa.and_(t.c.table_id == store.ts.pk, sa.or_(t.c.shared.is_(True), t.c.owner_id == user_id))


def _view(row: Mapping[Any, Any], user_id: int) -> GridView:
    return GridView(
        id=row["id"], name=row["name"], shared=bool(row["shared"]), owner_id=row["owner_id"],
        mine=row["owner_id"] == user_id, state=dict(row["state"] or {}), updated_at=row["updated_at"],
    )


def list_views(rb: Recordbase, actor: Actor, app: str, table: str) -> list[GridView]:
    """The actor's own views and the shared ones of the table, by name (then id)."""
    store = _store(rb, actor, app, table)
    user_id = _user_id(actor)
    t = views_table
    with rb.read() as conn:
        rows = conn.execute(sa.select(t).where(_visible(store, user_id)).order_by(t.c.name, t.c.id)).mappings().all()
    return [_view(row, user_id) for row in rows]


def get_view(rb: Recordbase, actor: Actor, app: str, table: str, view_id: int) -> GridView:
    """One view the actor may see; another user's personal view is ``NotFound`` like a missing one."""
    store = _store(rb, actor, app, table)
    user_id = _user_id(actor)
    with rb.read() as conn:
        return _get(conn, store, user_id, view_id)


def _get(conn: sa.Connection, store: RecordStore, user_id: int, view_id: Any) -> GridView:
    t = views_table
    if isinstance(view_id, bool) or not isinstance(view_id, int):
        raise NotFound(f"no saved view {view_id!r}")
    row = conn.execute(sa.select(t).where(t.c.id == view_id, _visible(store, user_id))).mappings().first()
    if row is None:
        raise NotFound(f"no saved view {view_id}")
    return _view(row, user_id)


def save_view(
    rb: Recordbase, actor: Actor, app: str, table: str, name: str, state: Any, *, shared: bool = False
) -> GridView:
    """A new view owned by the actor; ``shared`` needs ``manage``. The state is checked first."""
    store = _store(rb, actor, app, table)
    user_id = _user_id(actor)
    if shared:
        store.access.require("manage")
    clean_name = _clean_name(name)
    clean = check_state(store, state)
    now = utcnow()
    with rb.write() as conn:
        new_id = conn.execute(
            sa.insert(views_table).values(
                app_id=store.ts.app.pk, table_id=store.ts.pk, owner_id=user_id, name=clean_name,
                shared=bool(shared), state=clean, created_at=now, updated_at=now,
            ).returning(views_table.c.id)
        ).scalar_one()
        return _get(conn, store, user_id, new_id)


def update_view(
    rb: Recordbase, actor: Actor, app: str, table: str, view_id: int, *,
    name: str | None = None, state: Any = None, shared: bool | None = None,
) -> GridView:
    """Rename, replace the state of, share or unshare a view.

    The owner may change a personal view; a shared one (or sharing one) needs
    ``manage``. ``None`` leaves a property as it is.
    """
    store = _store(rb, actor, app, table)
    user_id = _user_id(actor)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _clean_name(name)
    if state is not None:
        values["state"] = check_state(store, state)
    with rb.write() as conn:
        view = _get(conn, store, user_id, view_id)
        _require_change(store, view, user_id)
        if shared is not None and shared != view.shared:
            store.access.require("manage")
            values["shared"] = bool(shared)
        if values:
            values["updated_at"] = utcnow()
            conn.execute(sa.update(views_table).where(views_table.c.id == view.id).values(values))
        # Read back without the visibility rule: unsharing another user's view leaves it theirs alone.
        row = conn.execute(sa.select(views_table).where(views_table.c.id == view.id)).mappings().one()
        return _view(row, user_id)


def delete_view(rb: Recordbase, actor: Actor, app: str, table: str, view_id: int) -> None:
    """Delete a view: the owner's personal one, or a shared one with ``manage``."""
    store = _store(rb, actor, app, table)
    user_id = _user_id(actor)
    with rb.write() as conn:
        view = _get(conn, store, user_id, view_id)
        _require_change(store, view, user_id)
        conn.execute(sa.delete(views_table).where(views_table.c.id == view.id))


def _require_change(store: RecordStore, view: GridView, user_id: int) -> None:
    if view.shared:
        store.access.require("manage")
    elif view.owner_id != user_id:  # unreachable through _get, kept as the rule itself
        raise NotFound(f"no saved view {view.id}")


def flat_conditions(tree: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """``("all" | "any", [conditions])`` when ``tree`` is one condition or one and/or of conditions.

    ``None`` for any other tree (nested groups, ``not``, consent filters):
    those are kept whole rather than edited condition by condition.
    """
    if tree is None or tree == {}:
        return "all", []
    if not isinstance(tree, Mapping):
        return None
    if set(tree) <= {"field", "op", "value"} and {"field", "op"} <= set(tree):
        return "all", [dict(tree)]
    for combinator, match in (("and", "all"), ("or", "any")):
        if set(tree) == {combinator} and isinstance(tree[combinator], Sequence):
            children = list(tree[combinator])
            if all(isinstance(c, Mapping) and {"field", "op"} <= set(c) <= {"field", "op", "value"} for c in children):
                return match, [dict(c) for c in children]
    return None
