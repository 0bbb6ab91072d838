"""Small app definitions for the planner, schema-evolution and CLI tests.

Every table and field carries a readable stable id (``tbl_items``,
``fld_name``) so plans can be compared exactly; ``without_ids`` strips them
to test matching by slug and label.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Definition = dict[str, Any]

#: The field types the planner is told feed the search index (``diff``'s argument).
SEARCHABLE = frozenset({"text", "long_text", "email"})


def field(
    slug: str, type: str = "text", *, id: str | None = None, label: Any = None, **extra: Any
) -> dict[str, Any]:
    """A field definition; ``id`` defaults to ``fld_<slug>`` (``id=""`` leaves it out)."""
    definition: dict[str, Any] = {
        "id": f"fld_{slug}" if id is None else id,
        "slug": slug,
        "label": label or slug.replace("_", " ").title(),
        "type": type,
        **extra,
    }
    if not definition["id"]:
        del definition["id"]
    return definition


def table(
    slug: str, *fields: dict[str, Any], id: str | None = None, label: Any = None
) -> dict[str, Any]:
    """A table definition; ``id`` defaults to ``tbl_<slug>`` (``id=""`` leaves it out)."""
    definition: dict[str, Any] = {
        "id": f"tbl_{slug}" if id is None else id,
        "slug": slug,
        "label": label or slug.title(),
        "fields": list(fields),
    }
    if not definition["id"]:
        del definition["id"]
    return definition


def app(*tables: dict[str, Any], slug: str = "shop", label: Any = "Shop") -> Definition:
    return {"slug": slug, "label": label, "tables": list(tables)}


def choice(id: str | None, en: str, zh: str | None = None) -> dict[str, Any]:
    label: Any = {"en": en, "zh-CN": zh} if zh else en
    return {"id": id, "label": label} if id else {"label": label}


def shop() -> Definition:
    """The app most tests start from: items with a few field types, and vendors."""
    return app(
        table(
            "items",
            field("name", required=True),
            field("qty"),
            field("price", "number", options={"precision": 12, "scale": 2}),
            field(
                "colour",
                "single_select",
                options={"choices": [choice("red", "Red", "红"), choice("blue", "Blue", "蓝")]},
            ),
            field("owner_email", "email", purpose="to contact the owner of an item"),
            field("vendor", "link", options={"table": "vendors"}),
        ),
        table("vendors", field("title")),
    )


def without_ids(definition: Definition) -> Definition:
    """A copy with every table, field and choice id removed (as a hand-written file)."""
    result = copy.deepcopy(definition)
    for t in result["tables"]:
        t.pop("id", None)
        for f in t["fields"]:
            f.pop("id", None)
            for c in (f.get("options") or {}).get("choices", []):
                c.pop("id", None)
    return result


def changed(definition: Definition, change: Callable[[Definition], Any]) -> Definition:
    """A deep copy of ``definition`` after ``change`` edited it in place."""
    result = copy.deepcopy(definition)
    change(result)
    return result


def get_table(definition: Definition, slug: str) -> dict[str, Any]:
    return next(t for t in definition["tables"] if t["slug"] == slug)


def get_field(definition: Definition, table_slug: str, slug: str) -> dict[str, Any]:
    return next(f for f in get_table(definition, table_slug)["fields"] if f["slug"] == slug)
