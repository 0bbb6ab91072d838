"""What one actor may do with one table: operations, rows, fields — decided in one place.

An ``Access`` is compiled from the app definition's roles and the table's
``permissions`` for one actor, and the record store asks it for everything:
which operations are allowed, the SQL condition on rows (applied to every
query, count, get, update and delete), each field's level per record
(hidden, read or write) and whether a value is seen in clear or masked.
System actors and platform admins have full access; anyone else starts with
none (deny by default).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from .actor import Actor
from .errors import PermissionDenied, Problem, QueryError
from .fields import Field, FilterContext
from .query import compile_filter
from .schema import TableSchema

LEVELS = {"hidden": 0, "read": 1, "write": 2}
DEFAULT_CLEARANCE = frozenset({"public", "internal"})
OPERATIONS = ("create", "read", "update", "delete", "export", "import", "manage", "reveal", "export_sensitive")


class _EmptyActorValue(Exception):
    """A row rule refers to an actor attribute the actor does not have: the rule matches nothing."""


@dataclass(frozen=True)
class RoleRule:
    """One role's grant on one table."""

    slug: str
    operations: frozenset[str]
    rows: Any  # "all", "own" or a filter tree
    owner_field: str | None
    levels: Mapping[str, int]  # field slug → LEVELS value
    clearance: frozenset[str]
    masked: frozenset[str] = frozenset()  # computed fields reading what this role sees masked elsewhere

    def can(self, operation: str) -> bool:
        return operation in self.operations

    def sees_clear(self, f: Field) -> bool:
        return self.levels[f.slug] >= 1 and f.sensitivity in self.clearance and f.slug not in self.masked


def _role_rule(role: Mapping[str, Any], grant: Mapping[str, Any], ts: TableSchema) -> RoleRule:
    operations = frozenset(op for op in OPERATIONS if grant.get(op))
    rows = grant.get("rows", "all")
    # "own" rows, or clear rows that are "own": the owner field names who owns a record, so a new
    # record is owned by its creator and the owner is not reassignable unless granted.
    owner = grant.get("owner_field") if "own" in (rows, grant.get("clear_rows")) else None
    default = 2 if operations & {"create", "update"} else 1
    listed = grant.get("fields") or {}
    levels = {}
    for f in ts.fields.values():
        level = listed.get(f.uid, listed.get(f.slug))
        if level is not None:
            levels[f.slug] = LEVELS[level]
        elif f.slug == owner:
            levels[f.slug] = min(default, 1)  # the owner field is not mass-assignable unless granted
        else:
            levels[f.slug] = default
    clearance = frozenset(role.get("clearance") or DEFAULT_CLEARANCE)
    _computed_levels(ts, levels)
    return RoleRule(role["slug"], operations, rows, owner, levels, clearance)


LOW_CLEARANCE = frozenset({"public", "internal"})


def _role_rules(role: Mapping[str, Any], grant: Mapping[str, Any], ts: TableSchema) -> list[RoleRule]:
    """A role's rules on a table: one, or two with ``clear_rows``.

    ``clear_rows`` ("own" or a filter) narrows where the role's clearance
    holds: on the other rows it may read, personal and sensitive values are
    masked ("contacts' phones are masked unless you own the contact"). It is
    a second, read-only rule over those rows with the full clearance; the
    record store already shows a value in clear when any rule covering the
    record allows it.
    """
    rule = _role_rule(role, grant, ts)
    clear_rows = grant.get("clear_rows")
    if clear_rows is None:
        return [rule]
    narrowed = replace(rule, clearance=rule.clearance & LOW_CLEARANCE)
    owner = grant.get("owner_field") if clear_rows == "own" else None
    clear = replace(rule, operations=frozenset({"read"}), rows=clear_rows, owner_field=owner)
    return [narrowed, clear]


def _computed_levels(ts: TableSchema, levels: dict[str, int]) -> None:
    """A computed field is never written, and hidden when any field of this table it reads is hidden.

    (Its sensitivity is already the highest of its sources', so masking follows
    from the clearance check; sources in other tables are checked per actor in
    ``Access.for_actor``.)
    """
    from .fields.computed import ComputeError, sources

    for f in ts.fields.values():
        if not getattr(f.type, "computed", False):
            continue
        try:
            here = [source.slug for table, source in sources(ts, f) if table is ts]
        except ComputeError:
            levels[f.slug] = 0
            continue
        level = min(levels[f.slug], 1)
        if any(levels.get(slug, 0) == 0 for slug in here):
            level = 0
        levels[f.slug] = level


def _blocked_computed(actor: Actor, ts: TableSchema) -> tuple[set[str], set[str]]:
    """Computed fields reading fields of other tables as the actor sees them there: (hidden, masked).

    Hidden when the actor cannot read the source there at all; masked when it
    reads it only masked under some role.
    """
    from .fields.computed import ComputeError, sources

    blocked: set[str] = set()
    masked: set[str] = set()
    declared = {r["slug"]: r for r in ts.app.definition.get("roles") or []}
    for f in ts.fields.values():
        if not getattr(f.type, "computed", False):
            continue
        try:
            elsewhere = [(table, source) for table, source in sources(ts, f) if table is not ts]
        except ComputeError:
            blocked.add(f.slug)
            continue
        for table, source in elsewhere:
            grants = table.definition.get("permissions") or {}
            readers = [
                _role_rule(declared[slug], grants[slug], table)
                for slug in sorted(actor.roles_in(ts.app.slug))
                if slug in declared and slug in grants and grants[slug].get("read")
            ]
            if not readers or all(r.levels[source.slug] == 0 for r in readers):
                blocked.add(f.slug)
                break
            if not all(r.sees_clear(source) for r in readers):
                masked.add(f.slug)
    return blocked, masked - blocked


@dataclass
class Access:
    actor: Actor
    ts: TableSchema
    full: bool
    roles: list[RoleRule] = field(default_factory=list)
    # How each combination of matching roles presents the fields (see ``present``), built on first use.
    _plans: dict[tuple[int, ...], dict[str, bool]] = field(default_factory=dict, repr=False, compare=False)
    # The fields each combination of roles may write (see ``writable``).
    _writes: dict[tuple[int, ...], frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def for_actor(cls, actor: Actor, ts: TableSchema) -> Access:
        if actor.kind == "system" or actor.is_admin:
            return cls(actor, ts, full=True)
        declared = {r["slug"]: r for r in ts.app.definition.get("roles") or []}
        grants = ts.definition.get("permissions") or {}
        roles = [
            rule
            for slug in sorted(actor.roles_in(ts.app.slug)) if slug in declared and slug in grants
            for rule in _role_rules(declared[slug], grants[slug], ts)
        ]
        if ts.has_computed and roles:
            blocked, masked = _blocked_computed(actor, ts)
            if blocked or masked:
                roles = [
                    replace(r, levels={**r.levels, **dict.fromkeys(blocked, 0)}, masked=frozenset(masked))
                    for r in roles
                ]
        return cls(actor, ts, full=False, roles=roles)

    # --- operations ----------------------------------------------------------------

    def require(self, operation: str) -> list[RoleRule]:
        """The roles granting ``operation``; ``PermissionDenied`` when none does."""
        if self.full:
            return []
        granted = [r for r in self.roles if r.can(operation)]
        if not granted:
            raise PermissionDenied(f'no access to table "{self.ts.slug}": you may not {operation} its records')
        return granted

    def require_any(self, *operations: str) -> list[RoleRule]:
        """The roles granting any of ``operations``; ``PermissionDenied`` when none does."""
        if self.full:
            return []
        granted = [r for r in self.roles if any(r.can(op) for op in operations)]
        if not granted:
            raise PermissionDenied(f'no access to table "{self.ts.slug}": you may not {" or ".join(operations)} its records')
        return granted

    # --- rows ----------------------------------------------------------------------

    def condition(self, roles: Sequence[RoleRule], now: dt.datetime, dialect: str) -> sa.ColumnElement[bool]:
        """SQL for "some role in ``roles`` covers this row" (``true`` for full access)."""
        if self.full:
            return sa.true()
        return sa.or_(sa.false(), *(self.role_condition(r, now, dialect) for r in roles))

    def role_condition(self, role: RoleRule, now: dt.datetime, dialect: str) -> sa.ColumnElement[bool]:
        if role.rows == "all":
            return sa.true()
        if role.rows == "own":
            owner = self.ts.fields.get(role.owner_field or "")
            if owner is None or self.actor.user_id is None:
                return sa.false()
            return owner.type.column(owner, self.ts.table) == self.actor.user_id
        try:
            tree = self._bind_actor(role.rows)
        except _EmptyActorValue:
            return sa.false()
        ctx = FilterContext(now=now, dialect=dialect, schema=self.ts)
        return sa.func.coalesce(compile_filter(self.ts, tree, ctx, f"/permissions/{role.slug}/rows"), sa.false())

    def _bind_actor(self, node: Any) -> Any:
        """The rule with every ``{"$actor": "attr"}`` replaced by the actor's value."""
        if isinstance(node, Mapping):
            if set(node) == {"$actor"}:
                name = node["$actor"]
                value = self.actor.user_id if name == "id" else self.actor.attributes.get(name)
                if value is None or value == "" or value == []:
                    raise _EmptyActorValue(name)
                return value
            return {k: self._bind_actor(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._bind_actor(v) for v in node]
        return node

    # --- fields --------------------------------------------------------------------

    @property
    def readers(self) -> list[RoleRule]:
        return [r for r in self.roles if r.can("read")]

    def uniform(self) -> bool:
        """Whether every reading role sees every field the same way (no per-record work)."""
        readers = self.readers
        if self.full or len(readers) <= 1:
            return True
        first = readers[0]
        return all(
            r.levels[f.slug] == first.levels[f.slug] and r.sees_clear(f) == first.sees_clear(f)
            for r in readers[1:] for f in self.ts.fields.values()
        )

    def clear_everywhere(self, f: Field) -> bool:
        """Readable in clear under every reading role: only then may a query filter, sort or search by it."""
        return self.full or all(r.sees_clear(f) for r in self.readers)

    def visible_somewhere(self, f: Field) -> bool:
        return self.full or any(r.levels[f.slug] >= 1 for r in self.readers)

    def require_clear(self, slug: str, clause: str, pointer: str) -> None:
        f = self.ts.fields.get(slug)
        if f is None or self.clear_everywhere(f):
            return
        raise QueryError(
            f'cannot {clause} by "{slug}": you cannot read it in clear',
            [Problem(pointer, f'cannot {clause} by "{slug}": you cannot read it in clear')],
        )

    def present(self, values: dict[str, Any], matching: Sequence[RoleRule] | None) -> dict[str, Any]:
        """A record's values as this actor sees them: hidden fields dropped, others masked or clear.

        ``matching`` are the reading roles whose rows cover the record (``None``:
        the access is uniform, any reading role stands for all).
        """
        if self.full:
            return values
        roles = self.readers if matching is None else matching
        if matching is None:
            roles = roles[:1]
        plan = self._plan(roles)
        fields = self.ts.fields
        out = {}
        for slug, value in values.items():
            clear = plan.get(slug)
            if clear is None:
                continue  # hidden from every matching role
            if clear or value is None:
                out[slug] = value
            else:
                f = fields[slug]
                out[slug] = f.type.mask(f, value)
        return out

    def _plan(self, roles: Sequence[RoleRule]) -> dict[str, bool]:
        """For these matching roles: each field they may see, and whether in clear (absent: hidden).

        A page of records meets only a few combinations of roles, so each is
        worked out once per ``Access`` instead of once per field of every record.
        """
        key = tuple(map(id, roles))  # the rules live as long as this Access: their ids are stable
        plan = self._plans.get(key)
        if plan is None:
            plan = {
                f.slug: any(r.sees_clear(f) for r in roles)
                for f in self.ts.fields.values()
                if max((r.levels[f.slug] for r in roles), default=0) > 0
            }
            self._plans[key] = plan
        return plan

    def writable(self, roles: Sequence[RoleRule], slugs: Sequence[str], pointer: str) -> None:
        """``PermissionDenied`` naming each field in ``slugs`` that no role in ``roles`` may write."""
        if self.full:
            return
        key = tuple(map(id, roles))
        allowed = self._writes.get(key)
        if allowed is None:
            allowed = self._writes[key] = frozenset(
                slug for slug in self.ts.fields if max((r.levels[slug] for r in roles), default=0) >= 2
            )
        refused = [s for s in slugs if s in self.ts.fields and s not in allowed]
        if refused:
            problems = [Problem(f"{pointer}/{s}", f'you may not write "{s}"') for s in refused]
            raise PermissionDenied(f'you may not write "{refused[0]}" in "{self.ts.slug}"', problems)


def field_exposure(role: Mapping[str, Any], grant: Mapping[str, Any] | None, ts: TableSchema, f: Field) -> str:
    """How a role sees a field, ignoring row rules: "clear", "masked", "hidden" or "no access"."""
    if not grant or not grant.get("read"):
        return "no access"
    rule = _role_rule(role, grant, ts)
    if rule.levels[f.slug] == 0:
        return "hidden"
    if not rule.sees_clear(f):
        return "masked"
    if grant.get("clear_rows") is not None and f.sensitivity not in LOW_CLEARANCE:
        return "masked except on clear_rows"
    return "clear"


# --- who may change an app's definition ------------------------------------------------

_PRIVACY_TABLE_KEYS = ("permissions", "consent", "retention", "erasure", "automations")
_PRIVACY_FIELD_KEYS = ("sensitivity", "encrypted", "purpose")


def require_builder(actor: Actor, installed: Mapping[str, Any] | None, changed: Mapping[str, Any]) -> None:
    """Refuse a definition change the actor may not make (``PermissionDenied`` naming what).

    Platform admins and system actors may change anything. Anyone else needs
    the ``manage`` right on every table the change touches (a new table needs
    ``manage`` on some table of the app) and may not
    change the privacy rules: roles, permissions, consent, retention, erasure,
    nor a field's sensitivity, encryption or purpose — otherwise a builder
    could grant itself more than it has, or unseal what it may not read.
    Installing a new app is for admins.
    """
    if actor.kind == "system" or actor.is_admin:
        return
    if installed is None:
        raise PermissionDenied("installing an app needs a platform administrator")
    mine = actor.roles_in(installed["slug"])
    managed = {
        t["id"] for t in installed["tables"]
        if any((t.get("permissions") or {}).get(role, {}).get("manage") for role in mine)
    }
    if not managed:
        raise PermissionDenied(f'you may not change the app "{installed["slug"]}"')
    new_tables = {t["id"]: t for t in changed["tables"]}
    for table in installed["tables"]:
        if new_tables.get(table["id"]) != table and table["id"] not in managed:
            raise PermissionDenied(f'you may not change the table "{table["slug"]}"')
    unmanaged = {t["slug"] for t in installed["tables"] if t["id"] not in managed}
    old_views = {v["slug"]: v for v in installed.get("views") or []}
    new_views = {v["slug"]: v for v in changed.get("views") or []}
    for slug in sorted(set(old_views) | set(new_views)):
        before, after = old_views.get(slug), new_views.get(slug)
        if before != after and {v.get("table") for v in (before, after) if v} & unmanaged:
            raise PermissionDenied(f'you may not change the view "{slug}": its table is not yours to manage')
    refused = _privacy_changes(installed, changed)
    if refused:
        raise PermissionDenied(
            f"only a platform administrator may change {refused[0]}",
            [Problem("/", f"only a platform administrator may change {what}") for what in refused],
        )


def _privacy_changes(installed: Mapping[str, Any], changed: Mapping[str, Any]) -> list[str]:
    found = []
    if (installed.get("roles") or []) != (changed.get("roles") or []):
        found.append("the roles")
    old_tables = {t["id"]: t for t in installed["tables"]}
    for table in changed["tables"]:
        old = old_tables.get(table["id"])
        if old is None:
            if any(table.get(key) for key in _PRIVACY_TABLE_KEYS):
                found.append(f'the privacy rules of the new table "{table["slug"]}"')
            continue
        for key in _PRIVACY_TABLE_KEYS:
            if old.get(key) != table.get(key):
                found.append(f'the {key} of "{table["slug"]}"')
        old_fields = {f["id"]: f for f in old["fields"]}
        for f in table["fields"]:
            before = old_fields.get(f["id"])
            if before is not None and any(before.get(k) != f.get(k) for k in _PRIVACY_FIELD_KEYS):
                found.append(f'the sensitivity, encryption or purpose of "{table["slug"]}.{f["slug"]}"')
    return found
