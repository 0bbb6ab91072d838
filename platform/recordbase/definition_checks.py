"""Cross-checks of an app definition: what one JSON Schema cannot say.

References (link targets, roles, view fields), duplicates, defaults that fit their
type, and the privacy rules (purpose, consent). Every check skips parts the schema
already rejected, and reference checks are skipped when the thing referred to is
itself broken, so one mistake yields one problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .definition import (
    DEFAULT_SENSITIVITY,
    FIELD_TYPES,
    RESERVED_APP_SLUGS,
    RESERVED_SLUGS,
    SLUG_RE,
    SYSTEM_TYPES,
    describe,
    is_reserved_slug,
    pointer,
)
from .errors import Problem

#: Columns every table has, usable in filters and sorts without declaring a field.
SYSTEM_COLUMNS = ("id", "created_at", "created_by", "updated_at", "updated_by")

_OPTIONS_REQUIRED = {"single_select", "multi_select", "link"}  # the checks read their options
_NUMERIC_TYPES = {"number", "currency", "percent"}
_TEXT_TYPES = {"text", "long_text", "email", "phone", "url", "address"}
_NO_DEFAULT_TYPES = {"link", "user", "attachment", "autonumber"} | SYSTEM_TYPES
_NEVER_UNIQUE_TYPES = {"multi_select", "attachment", "long_text", "boolean"} | SYSTEM_TYPES
_NEVER_REQUIRED_TYPES = {"autonumber"} | SYSTEM_TYPES
_DEFAULT_SCALE = {"number": 0, "currency": 2, "percent": 2}
_DEFAULT_PRECISION = 18
_RETENTION_TYPES = ("date", "datetime", "created_at")
_OWNER_TYPES = ("user", "created_by")

_NO_VALUE_OPS = {
    "is_empty", "is_not_empty", "today", "yesterday", "tomorrow",
    "this_week", "last_week", "this_month", "last_month", "this_year",
}  # fmt: skip
_LIST_OPS = {"in", "not_in"}
_DAYS_OPS = {"last_n_days", "next_n_days"}

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"
)


@dataclass
class _Field:
    pointer: str
    data: dict[str, Any]
    type: str | None  # None when the schema rejected the type


# View keys that only form views use (see check_form_keys).
FORM_VIEW_KEYS = (
    "description", "help", "submit_label", "thanks", "consent_labels", "consent_required",
)


@dataclass
class _Table:
    index: int
    pointer: str
    slug: str
    data: dict[str, Any]
    fields: dict[str, _Field] = field(default_factory=dict)
    field_ids: set[str] = field(default_factory=set)
    complete: bool = True  # every field has a valid slug and id, so "no such field" is reliable


def cross_check(data: Any, bad_pointers: set[str]) -> list[Problem]:
    """Problems the schema cannot see. ``bad_pointers`` are where the schema found problems."""
    if not isinstance(data, dict):
        return []
    return _Checker(data, bad_pointers).run()


def _a(kind: str) -> str:
    """``kind`` with its article: "a text field" but "an email field"."""
    vowel = kind[0] in "aeiou" and not kind.startswith(("user", "url"))
    return f"{'an' if vowel else 'a'} {kind} field"


def _either(kinds: tuple[str, ...]) -> str:
    """'a date, datetime or created_at field'."""
    names = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
    return _a(names)


def _ordered(names: Any) -> str:
    return ", ".join(sorted(names)) or "(none)"


def _label_texts(label: Any) -> list[tuple[str | None, str]]:
    """(locale, text) pairs of a label; a plain string label has locale None (matches any)."""
    if isinstance(label, str):
        return [(None, label)]
    return [(loc, text) for loc, text in label.items()]


class _Checker:
    def __init__(self, data: dict[str, Any], bad_pointers: set[str]) -> None:
        self.data = data
        self.bad = bad_pointers
        self.problems: list[Problem] = []
        self.tables: dict[str, _Table] = {}
        self.tables_complete = True
        self.roles: set[str] = set()
        self.roles_complete = True

    def ok(self, where: str) -> bool:
        """True when the schema found nothing wrong at or below ``where``."""
        return not any(p == where or p.startswith(where + "/") for p in self.bad)

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def warning(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message, "warning"))

    def run(self) -> list[Problem]:
        slug = self.data.get("slug")
        if self.ok("/slug") and isinstance(slug, str) and slug in RESERVED_APP_SLUGS:
            self.error(
                "/slug",
                f'app slug "{slug}" is reserved (it is a platform URL prefix); '
                f"reserved: {_ordered(RESERVED_APP_SLUGS)}",
            )
        self.collect_roles()
        self.collect_tables()
        for table in self.tables.values():
            self.check_table(table)
        self.check_views()
        return self.problems

    # --- roles and tables: registries the other checks refer to -------------------------

    def collect_roles(self) -> None:
        roles = self.data.get("roles", [])
        if not isinstance(roles, list) or "/roles" in self.bad:
            self.roles_complete = False
            return
        first: dict[str, str] = {}
        for i, role in enumerate(roles):
            where = pointer("roles", i, "slug")
            slug = role.get("slug") if isinstance(role, dict) else None
            if not isinstance(slug, str) or not self.ok(where):
                self.roles_complete = False
                continue
            if slug in first:
                self.error(where, f'duplicate role slug "{slug}"; already used at {first[slug]}')
            else:
                first[slug] = where
                self.roles.add(slug)

    def collect_tables(self) -> None:
        tables = self.data.get("tables")
        if not isinstance(tables, list):
            self.tables_complete = False
            return
        first_slug: dict[str, str] = {}
        first_id: dict[str, str] = {}
        field_ids: dict[str, str] = {}  # field ids are unique across the whole app
        for i, data in enumerate(tables):
            if not isinstance(data, dict):
                self.tables_complete = False
                continue
            self.first_use(data, pointer("tables", i, "id"), first_id, "table id")
            where = pointer("tables", i, "slug")
            slug = data.get("slug")
            if not isinstance(slug, str) or not self.ok(where):
                self.tables_complete = False
                continue
            if slug in first_slug:
                self.error(
                    where, f'duplicate table slug "{slug}"; already used at {first_slug[slug]}'
                )
                continue
            first_slug[slug] = where
            table = _Table(i, pointer("tables", i), slug, data)
            self.tables[slug] = table
            self.collect_fields(table, field_ids)

    def first_use(self, data: dict[str, Any], where: str, seen: dict[str, str], what: str) -> bool:
        """Record ``data["id"]`` in ``seen``; report a duplicate. False if absent, broken or a duplicate."""
        value = data.get("id")
        if not isinstance(value, str) or not self.ok(where):
            return False
        if value in seen:
            self.error(where, f'duplicate {what} "{value}"; already used at {seen[value]}')
            return False
        seen[value] = where
        return True

    def collect_fields(self, table: _Table, field_ids: dict[str, str]) -> None:
        fields = table.data.get("fields")
        if not isinstance(fields, list):
            table.complete = False
            return
        for j, data in enumerate(fields):
            where = pointer("tables", table.index, "fields", j)
            if not isinstance(data, dict):
                table.complete = False
                continue
            if self.first_use(data, where + "/id", field_ids, "field id"):
                table.field_ids.add(data["id"])
            elif "id" in data:
                table.complete = False
            slug = data.get("slug")
            if not isinstance(slug, str) or not self.ok(where + "/slug"):
                table.complete = False
                continue
            if slug in table.fields:
                self.error(
                    where + "/slug",
                    f'duplicate field slug "{slug}" in table "{table.slug}"; '
                    f"already used at {table.fields[slug].pointer}/slug",
                )
                continue
            if is_reserved_slug(slug):
                self.error(
                    where + "/slug",
                    f'field slug "{slug}" is reserved for a system column; '
                    f'reserved: {_ordered(RESERVED_SLUGS)} and names starting with "_"',
                )
            ok_type = self.ok(where + "/type") and data.get("type") in FIELD_TYPES
            table.fields[slug] = _Field(where, data, data["type"] if ok_type else None)

    # --- tables ------------------------------------------------------------------------

    def check_table(self, table: _Table) -> None:
        sensitive: list[str] = []
        for slug, f in table.fields.items():
            if f.type is None or not self.ok(f.pointer + "/options"):
                continue
            if f.type in _OPTIONS_REQUIRED and "options" not in f.data:
                continue  # the schema reported the missing options
            self.check_field(table, slug, f)
            if self.sensitivity(f) == "sensitive":
                sensitive.append(slug)
        if sensitive and "consent" not in table.data:
            self.warning(
                table.pointer,
                f'table "{table.slug}" has sensitive fields ({", ".join(sensitive)}) but declares no '
                '"consent"; declare the purposes and the text people agree to',
            )
        primary = table.data.get("primary_field")
        where = table.pointer + "/primary_field"
        if (
            isinstance(primary, str)
            and self.ok(where)
            and table.complete
            and primary not in table.fields
        ):
            self.error(
                where,
                f'primary field "{primary}" is not a field of table "{table.slug}"; '
                f"expected one of: {_ordered(table.fields)}",
            )
        self.check_retention(table)
        permissions = table.data.get("permissions")
        if isinstance(permissions, dict):
            for role, grant in permissions.items():
                self.check_permission(table, role, grant)

    def check_retention(self, table: _Table) -> None:
        where = table.pointer + "/retention"
        retention = table.data.get("retention")
        if retention is None or not self.ok(where):
            return
        self.check_field_ref(
            table, retention["field"], where + "/field", "retention field", _RETENTION_TYPES
        )

    def check_permission(self, table: _Table, role: str, grant: Any) -> None:
        where = pointer("tables", table.index, "permissions", role)
        if SLUG_RE.match(role) and self.roles_complete and role not in self.roles:
            self.error(
                where,
                f'role "{role}" is not declared in this app\'s "roles"; declared: {_ordered(self.roles)}',
            )
        if not isinstance(grant, dict):
            return
        rows = grant.get("rows")
        if rows == "own" and "owner_field" not in grant:
            self.error(
                where + "/rows",
                'rows "own" needs an "owner_field" naming a user or created_by field of the table',
            )
        elif isinstance(rows, dict):
            self.check_filter(table, rows, where + "/rows")
        clear_rows = grant.get("clear_rows")
        if clear_rows == "own" and "owner_field" not in grant:
            self.error(
                where + "/clear_rows",
                'clear_rows "own" needs an "owner_field" naming a user or created_by field of the table',
            )
        elif isinstance(clear_rows, dict):
            self.check_filter(table, clear_rows, where + "/clear_rows")
        if "owner_field" in grant and self.ok(where + "/owner_field"):
            self.check_field_ref(
                table, grant["owner_field"], where + "/owner_field", "owner field", _OWNER_TYPES
            )
        if not self.ok(where + "/fields"):
            return
        for key in grant.get("fields", {}):
            if table.complete and key not in table.fields and key not in table.field_ids:
                self.error(
                    pointer("tables", table.index, "permissions", role, "fields", key),
                    f'"{key}" is not a field of table "{table.slug}" (by id or slug); '
                    f"expected one of: {_ordered(table.fields)}",
                )

    def check_field_ref(
        self, table: _Table, slug: str, where: str, what: str, types: tuple[str, ...] | None = None
    ) -> _Field | None:
        """Report ``slug`` when it is not a field of ``table`` or (given ``types``) of the wrong type."""
        f = table.fields.get(slug)
        if f is None:
            if table.complete:
                self.error(
                    where,
                    f'{what} "{slug}" is not a field of table "{table.slug}"; '
                    f"expected one of: {_ordered(table.fields)}",
                )
            return None
        if types is not None and f.type is not None and f.type not in types:
            self.error(
                where,
                f'{what} "{slug}" is {_a(f.type)}; expected {_either(types)}',
            )
        return f

    # --- fields ------------------------------------------------------------------------

    def sensitivity(self, f: _Field) -> str:
        level = f.data.get("sensitivity")
        if isinstance(level, str) and self.ok(f.pointer + "/sensitivity"):
            return level
        return DEFAULT_SENSITIVITY(f.type or "")

    def check_field(self, table: _Table, slug: str, f: _Field) -> None:
        kind = f.type
        assert kind is not None
        data, where = f.data, f.pointer
        options = data.get("options", {})
        level = self.sensitivity(f)
        if (
            level in ("personal", "sensitive")
            and "purpose" not in data
            and self.ok(where + "/sensitivity")
        ):
            by_default = "" if "sensitivity" in data else " (by default for its type)"
            self.error(
                where,
                f'{level} field "{slug}"{by_default} needs a "purpose": '
                "say why this data is collected, in a sentence people can read",
            )
        if data.get("unique") is True and self.ok(where + "/unique"):
            many = kind in ("link", "user") and options.get("many") is True
            if kind in _NEVER_UNIQUE_TYPES or many:
                what = f'{_a(kind)} with "many": true' if many else _a(kind)
                self.error(where + "/unique", f"{what} cannot be unique")
        if (
            data.get("required") is True
            and kind in _NEVER_REQUIRED_TYPES
            and self.ok(where + "/required")
        ):
            self.error(
                where + "/required",
                f'"required" does not apply to {_a(kind)}: the platform fills it in',
            )
        if kind in _NUMERIC_TYPES:
            self.check_number_options(kind, options, where + "/options")
        if kind in ("single_select", "multi_select"):
            self.check_choices(options["choices"], where + "/options/choices")
        if kind == "link":
            self.check_link(options, data, where + "/options")
        if "default" in data:
            message = self.default_problem(kind, data["default"], options)
            if message:
                self.error(where + "/default", message)

    def check_number_options(self, kind: str, options: dict[str, Any], where: str) -> None:
        low, high = options.get("min"), options.get("max")
        if low is not None and high is not None and low > high:
            self.error(where + "/min", f"min ({low}) is greater than max ({high})")
        precision = options.get("precision", _DEFAULT_PRECISION)
        scale = options.get("scale", _DEFAULT_SCALE[kind])
        if scale > precision:
            self.error(
                where + "/scale",
                f"scale ({scale}) must not exceed precision ({precision}): "
                "precision counts all digits, scale those after the decimal point",
            )

    def check_choices(self, choices: list[dict[str, Any]], where: str) -> None:
        ids: dict[str, str] = {}
        labels: list[tuple[list[tuple[str | None, str]], str]] = []
        for k, choice in enumerate(choices):
            here = f"{where}/{k}"
            self.first_use(choice, here + "/id", ids, "choice id")
            texts = _label_texts(choice["label"])
            for earlier, earlier_at in labels:
                same = [
                    t1
                    for loc1, t1 in texts
                    for loc2, t2 in earlier
                    if t1 == t2 and (loc1 == loc2 or loc1 is None or loc2 is None)
                ]
                if same:
                    self.error(
                        here + "/label",
                        f'duplicate choice label "{same[0]}"; already used at {earlier_at}/label',
                    )
                    break
            else:
                labels.append((texts, here))

    def check_link(self, options: dict[str, Any], data: dict[str, Any], where: str) -> None:
        target = options["table"]
        if self.tables_complete and target not in self.tables:
            self.error(
                where + "/table",
                f'link target table "{target}" does not exist in this app; '
                f"expected one of: {_ordered(self.tables)}",
            )
        if options.get("on_delete") == "set_null" and data.get("required") is True:
            self.error(
                where + "/on_delete",
                'on_delete "set_null" cannot work on a required link; use "restrict" or "cascade"',
            )

    def default_problem(self, kind: str, value: Any, options: dict[str, Any]) -> str | None:
        """Why ``value`` cannot be the default of a ``kind`` field, or None when it can."""
        got = describe(value)
        if kind in _NO_DEFAULT_TYPES:
            return f"{_a(kind)} cannot have a default"
        if kind in _TEXT_TYPES:
            if not isinstance(value, str):
                return f"default of {_a(kind)} must be a string, got {got}"
            limit = options.get("max_length")
            if limit is not None and len(value) > limit:
                return f"default is {len(value)} characters long; max_length is {limit}"
            return None
        if kind == "boolean":
            return (
                None
                if isinstance(value, bool)
                else f"default of a boolean field must be true or false, got {got}"
            )
        if kind == "rating":
            top = options.get("max", 5)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top:
                return None
            return f"default of a rating field must be an integer from 0 to {top}, got {got}"
        if kind in _NUMERIC_TYPES:
            return self.number_default_problem(kind, value, options)
        if kind == "date":
            if value == "today" or (
                isinstance(value, str) and _ISO_DATE.match(value) and _parses(date, value)
            ):
                return None
            return f'default of a date field must be "today" or a date like "2024-12-31", got {got}'
        if kind == "datetime":
            if value == "now" or (
                isinstance(value, str) and _ISO_DATETIME.match(value) and _parses(datetime, value)
            ):
                return None
            return f'default of a datetime field must be "now" or a date and time like "2024-12-31T09:30:00Z", got {got}'
        if kind == "single_select":
            return self.choice_default_problem(value, options["choices"])
        if kind == "multi_select":
            if not isinstance(value, list):
                return f"default of a multi_select field must be an array of choice ids or labels, got {got}"
            for item in value:
                message = self.choice_default_problem(item, options["choices"])
                if message:
                    return message
        return None

    def number_default_problem(self, kind: str, value: Any, options: dict[str, Any]) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"default of {_a(kind)} must be a number, got {describe(value)}"
        low, high = options.get("min"), options.get("max")
        if low is not None and value < low:
            return f"default {value} is below min ({low})"
        if high is not None and value > high:
            return f"default {value} is above max ({high})"
        scale = options.get("scale", _DEFAULT_SCALE[kind])
        precision = options.get("precision", _DEFAULT_PRECISION)
        exponent = Decimal(repr(value)).normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # finite: JSON has no NaN or infinity
        if -exponent > scale:
            return f"default {value} has more decimal places than scale ({scale}) allows"
        if len(str(abs(int(value)))) > precision - scale:
            return (
                f"default {value} has more than {precision - scale} digits before the decimal point"
            )
        return None

    def choice_default_problem(self, value: Any, choices: list[dict[str, Any]]) -> str | None:
        accepted: list[str] = []
        for choice in choices:
            if "id" in choice:
                accepted.append(choice["id"])
            accepted += [text for _, text in _label_texts(choice["label"])]
        if isinstance(value, str) and value in accepted:
            return None
        return f"default {describe(value)} is not a choice; expected a choice id or label: {', '.join(accepted)}"

    # --- filters and views -------------------------------------------------------------

    def check_filter(self, table: _Table, node: Any, where: str) -> None:
        """Check field references and operator values of the conditions the schema accepted."""
        if not isinstance(node, dict):
            return
        for key in ("and", "or"):
            if key in node:
                if isinstance(node[key], list):
                    for i, child in enumerate(node[key]):
                        self.check_filter(table, child, f"{where}/{key}/{i}")
                return
        if "not" in node:
            self.check_filter(table, node["not"], where + "/not")
            return
        if not self.ok(where):
            return
        slug, op = node["field"], node["op"]
        if slug not in SYSTEM_COLUMNS:
            self.check_field_ref(table, slug, where + "/field", "filter field")
        has_value = "value" in node
        value = node.get("value")
        actor = isinstance(value, dict)  # {"$actor": ...}, already checked by the schema
        if op in _NO_VALUE_OPS:
            if has_value:
                self.error(where + "/value", f'operator "{op}" takes no value')
        elif not has_value:
            self.error(where, f'operator "{op}" needs a "value"')
        elif op in _LIST_OPS and not actor and not (isinstance(value, list) and value):
            self.error(
                where + "/value",
                f'operator "{op}" needs a non-empty array of values, got {describe(value)}',
            )
        elif op == "between" and not (isinstance(value, list) and len(value) == 2):
            self.error(
                where + "/value",
                f'operator "between" needs an array of two values [low, high], got {describe(value)}',
            )
        elif op in _DAYS_OPS and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            self.error(
                where + "/value",
                f'operator "{op}" needs a whole number of days (1 or more), got {describe(value)}',
            )

    def check_views(self) -> None:
        views = self.data.get("views")
        if not isinstance(views, list):
            return
        first: dict[str, str] = {}
        for i, view in enumerate(views):
            where = pointer("views", i)
            if not isinstance(view, dict):
                continue
            slug = view.get("slug")
            if isinstance(slug, str) and self.ok(where + "/slug"):
                if slug in first:
                    self.error(
                        where + "/slug",
                        f'duplicate view slug "{slug}"; already used at {first[slug]}',
                    )
                else:
                    first[slug] = where + "/slug"
            self.check_view(view, where)

    def check_view(self, view: dict[str, Any], where: str) -> None:
        kind = view.get("type") if self.ok(where + "/type") else None
        if kind == "kanban" and "group_by" not in view:
            self.error(where, 'a kanban view needs "group_by" naming a single_select field')
        if kind == "calendar" and "date_field" not in view:
            self.error(where, 'a calendar view needs "date_field" naming a date or datetime field')
        self.check_charts(view, kind, where)
        name = view.get("table")
        if not isinstance(name, str) or not self.ok(where + "/table"):
            return
        table = self.tables.get(name)
        if table is None:
            if self.tables_complete:
                self.error(
                    where + "/table",
                    f'view table "{name}" does not exist in this app; expected one of: {_ordered(self.tables)}',
                )
            return
        if "filter" in view:
            self.check_filter(table, view["filter"], where + "/filter")
        if self.ok(where + "/sort"):
            for i, entry in enumerate(view.get("sort", [])):
                slug = entry.lstrip("-")
                if slug not in SYSTEM_COLUMNS:
                    self.check_field_ref(table, slug, f"{where}/sort/{i}", "sort field")
        if self.ok(where + "/fields"):
            for i, slug in enumerate(view.get("fields", [])):
                self.check_field_ref(table, slug, f"{where}/fields/{i}", "view field")
        if "group_by" in view and self.ok(where + "/group_by"):
            group_types = ("single_select",) if kind == "kanban" else None
            self.check_field_ref(
                table, view["group_by"], where + "/group_by", "group_by field", group_types
            )
        if "date_field" in view and self.ok(where + "/date_field"):
            date_types = ("date", "datetime") if kind == "calendar" else None
            self.check_field_ref(
                table, view["date_field"], where + "/date_field", "date field", date_types
            )
        self.check_form_keys(view, kind, table, where)

    def check_form_keys(
        self, view: dict[str, Any], kind: str | None, table: _Table, where: str
    ) -> None:
        """The keys only form views use: help per field, submit label, thanks, required consents."""
        form_keys = [k for k in FORM_VIEW_KEYS if k in view]
        if kind is not None and kind != "form":
            for key in form_keys:
                self.error(f"{where}/{key}", f'"{key}" is for form views; this view is a {kind}')
            return
        if "help" in view and self.ok(where + "/help") and isinstance(view["help"], dict):
            for slug in view["help"]:
                self.check_field_ref(table, slug, f"{where}/help/{slug}", "help field")
        consent = table.data.get("consent")
        purposes = consent.get("purposes") if isinstance(consent, dict) else None
        for key in ("consent_required", "consent_labels"):
            named = view.get(key)
            if not named or not self.ok(f"{where}/{key}") or not isinstance(named, (list, dict)):
                continue
            if not isinstance(purposes, list):
                self.error(f"{where}/{key}", f'table "{table.slug}" declares no consent purposes')
                continue
            for i, purpose in enumerate(named):
                # Labels may also name a sensitive field's own consent, "sensitive:<field>".
                if purpose in purposes or (key == "consent_labels" and str(purpose).startswith("sensitive:")):
                    continue
                self.error(
                    f"{where}/{key}/{purpose if key == 'consent_labels' else i}",
                    f'"{purpose}" is not a consent purpose of table "{table.slug}"; '
                    f"expected one of: {_ordered(purposes)}",
                )


    def check_charts(self, view: dict[str, Any], kind: str | None, where: str) -> None:
        """A dashboard's charts: unique slugs, their table, metric, group_by and filter."""
        charts = view.get("charts")
        if charts is None or not self.ok(where + "/charts"):
            return
        if kind is not None and kind != "dashboard":
            self.error(where + "/charts", f'"charts" are for dashboard views; this view is a {kind}')
            return
        first: dict[str, str] = {}
        view_table = view.get("table") if self.ok(where + "/table") else None
        for i, chart in enumerate(charts):
            at = f"{where}/charts/{i}"
            slug = chart["slug"]
            if slug in first:
                self.error(at + "/slug", f'duplicate chart slug "{slug}"; already used at {first[slug]}')
            else:
                first[slug] = at + "/slug"
            name = chart.get("table", view_table)
            table = self.tables.get(name) if isinstance(name, str) else None
            if table is None:
                if "table" in chart and self.tables_complete:
                    self.error(
                        at + "/table",
                        f'chart table "{name}" does not exist in this app; expected one of: {_ordered(self.tables)}',
                    )
                continue
            self.check_chart(table, chart, at)

    def check_chart(self, table: _Table, chart: dict[str, Any], at: str) -> None:
        shape = chart["type"]
        metric = chart.get("metric", "count")
        if metric != "count":
            op, _, slug = metric.partition(":")
            f = self.chart_field(table, slug, at + "/metric", f"{op} field")
            numeric = f is not None and (f.type in _CHART_NUMBERS or f.type in _COMPUTED_TYPES)
            if f is not None and f.type is not None and not numeric and (op in ("sum", "avg") or shape != "number"):
                wanted = f'"{op}"' if op in ("sum", "avg") else f"a {shape} chart"
                self.error(at + "/metric", f'{wanted} needs a number field; "{slug}" is {_a(f.type)}')
            elif f is not None and self.encrypted(f):
                self.error(at + "/metric", f'cannot take "{op}" of "{slug}": it is encrypted (no order or sum in SQL)')
        group_by = chart.get("group_by")
        if shape == "number":
            if group_by is not None:
                self.error(at + "/group_by", "a number card shows one value: it has no group_by")
        elif group_by is None:
            self.error(at, f'a {shape} chart needs "group_by": a field, or a date field by bucket like "month:close_date"')
        else:
            bucket, _, slug = group_by.rpartition(":")
            f = self.chart_field(table, slug, at + "/group_by", "group_by field")
            if f is not None and f.type is not None:
                many = f.type in ("link", "user") and f.data.get("options", {}).get("many") is True
                if bucket and f.type not in _CHART_DATES and f.type not in _COMPUTED_TYPES:
                    self.error(at + "/group_by", f'group_by "{slug}" is {_a(f.type)}; grouping by {bucket} needs {_either(_CHART_DATES)}')
                elif many or f.type in ("multi_select", "attachment"):
                    self.error(at + "/group_by", f'cannot group by "{slug}": it holds several values')
                elif self.encrypted(f):
                    self.error(at + "/group_by", f'cannot group by "{slug}": it is encrypted')
        if "filter" in chart:
            self.check_filter(table, chart["filter"], at + "/filter")

    def chart_field(self, table: _Table, slug: str, where: str, what: str) -> _Field | None:
        """The field a chart names (system stamps stand in as their own types); reported when missing."""
        if slug in _CHART_SYSTEM:
            return _Field(where, {"slug": slug, "type": slug}, slug)
        return self.check_field_ref(table, slug, where, what)

    def encrypted(self, f: _Field) -> bool:
        """Whether values of ``f`` are sealed at rest (sensitive always; personal unless "encrypted": false)."""
        level = self.sensitivity(f)
        return level == "sensitive" or (level == "personal" and f.data.get("encrypted") is not False)


_CHART_NUMBERS = ("number", "currency", "percent", "rating")
_CHART_DATES = ("date", "datetime", "created_at", "updated_at")
_CHART_SYSTEM = ("created_at", "created_by", "updated_at", "updated_by")
_COMPUTED_TYPES = ("formula", "lookup", "rollup")  # their result's kind is checked on install


def _parses(kind: type[date] | type[datetime], text: str) -> bool:
    try:
        kind.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
