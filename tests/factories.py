"""A small factory for test apps: field and table definitions, installed in one call.

``field("amount", "currency")`` gives a valid field definition (label filled
in, a purpose for personal types, the options its type needs);
``make_app(rb, {"deals": [...]})`` installs an app of such tables as the
system actor and returns its schema. ``deals_definition()`` is the shared CRM
example: a ``deals`` table with one field of most types, linked to ``companies``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.schema import AppSchema

INSTALLER = Actor.system("test")

STAGES = ("lead", "qualified", "proposal", "won", "lost")
TAGS = ("vip", "urgent", "cold")
PERSONAL_TYPES = frozenset({"email", "phone", "address"})

# The options a type cannot do without, filled in unless the caller gives its own.
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "currency": {"currency": "CNY"},
    "single_select": {"choices": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]},
    "multi_select": {"choices": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]},
}


def choices(*ids: str) -> list[dict[str, str]]:
    """Choices whose id is given and whose label is the id capitalised ("won" → "Won")."""
    return [{"id": choice_id, "label": choice_id.capitalize()} for choice_id in ids]


def field(slug: str, type: str, **kw: Any) -> dict[str, Any]:
    """A field definition; keyword arguments are definition keys (``required=True``, ``options={...}``)."""
    definition: dict[str, Any] = {
        "slug": slug,
        "label": slug.replace("_", " ").capitalize(),
        "type": type,
    }
    if type in _DEFAULT_OPTIONS and "options" not in kw:
        definition["options"] = copy.deepcopy(_DEFAULT_OPTIONS[type])
    if (
        type in PERSONAL_TYPES or kw.get("sensitivity") in ("personal", "sensitive")
    ) and "purpose" not in kw:
        definition["purpose"] = f"to get in touch ({slug})"
    definition.update(kw)
    return definition


def link(
    slug: str, table: str, *, many: bool = False, on_delete: str | None = None, **kw: Any
) -> dict[str, Any]:
    options: dict[str, Any] = {"table": table}
    if many:
        options["many"] = True
    if on_delete is not None:
        options["on_delete"] = on_delete
    return field(slug, "link", options=options, **kw)


def table(slug: str, fields: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "label": slug.replace("_", " ").capitalize(), "fields": fields, **extra}


def app_definition(
    tables: Mapping[str, list[dict[str, Any]]], slug: str = "shop", **extra: Any
) -> dict[str, Any]:
    return {
        "slug": slug,
        "label": slug.capitalize(),
        "tables": [table(name, list(fields)) for name, fields in tables.items()],
        **extra,
    }


def make_app(
    rb: Recordbase,
    tables: Mapping[str, list[dict[str, Any]]] | None = None,
    slug: str = "shop",
    **extra: Any,
) -> AppSchema:
    """Install an app of ``tables`` (slug → field definitions) and return its schema.

    Without ``tables``: one ``items`` table with a required ``name``.
    """
    if tables is None:
        tables = {"items": [field("name", "text", required=True)]}
    result = rb.install(app_definition(tables, slug, **extra), INSTALLER)
    assert result.applied, result.plan
    return rb.app(slug)


def deals_tables(
    on_delete: str = "restrict", partners_on_delete: str = "set_null"
) -> dict[str, list[dict[str, Any]]]:
    """``companies`` and ``deals``: one field of most types, and both kinds of link."""
    return {
        "companies": [
            field("name", "text", required=True, unique=True),
            field("city", "text"),
        ],
        "deals": [
            field("name", "text", required=True),
            field("company", "text"),
            field("email", "email"),
            field("phone", "phone"),
            field("amount", "currency", options={"currency": "CNY"}),
            field("stage", "single_select", options={"choices": choices(*STAGES)}),
            field("close_date", "date"),
            field("notes", "long_text"),
            field("tags", "multi_select", options={"choices": choices(*TAGS)}),
            field("score", "rating"),
            field("done", "boolean"),
            field("when", "datetime"),
            field("pct", "percent"),
            link("company_ref", "companies", on_delete=on_delete),
            link("partners", "companies", many=True, on_delete=partners_on_delete),
        ],
    }


def deals_definition(
    on_delete: str = "restrict", partners_on_delete: str = "set_null", slug: str = "crm"
) -> dict[str, Any]:
    """The CRM test app; ``on_delete`` is the rule of the single link ``company_ref``."""
    return app_definition(deals_tables(on_delete, partners_on_delete), slug)


def make_deals_app(
    rb: Recordbase, on_delete: str = "restrict", partners_on_delete: str = "set_null"
) -> AppSchema:
    return make_app(rb, deals_tables(on_delete, partners_on_delete), slug="crm")
