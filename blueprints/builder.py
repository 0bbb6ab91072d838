"""The no-code builder: change an app's definition in the browser, through the engine's plan and install.

``/builder`` lists the apps the user may change (administrators: every app),
starts a new app (administrators only) and imports a definition file.
``/builder/apps/<app>`` edits a *working draft* of the app's definition:
tables, fields (type, choices, required, sensitivity and purpose), roles and
the roles × tables × rights matrix, with a live preview of a table's form.

**The draft lives in the page**: a hidden JSON field posted with every step.
Each step reads the posted inputs into the draft (:func:`sync` only writes
what an input really changed, so an untouched draft stays equal to the
installed definition), carries out the step's operation, and re-checks the
whole draft with ``rb.check`` — each problem shown next to the table, field,
role or permission its JSON pointer names. "Review changes" shows
``rb.plan(draft)`` with destructive steps flagged, and a dry run of the
install as the user (what a real run would refuse or empty); "Apply"
re-checks, re-plans and installs with ``rb.install(draft, actor)`` in one
transaction, a destructive plan only with an explicit confirmation (then with
``force``). The engine decides who may change what (``require_builder``):
the page only disables what it already knows will be refused, and shows the
engine's refusal as such. A tampered draft therefore gains nothing.

Access: a signed-in user who may ``manage`` at least one table of the app,
or an administrator. An app the user has no role in is 404 (like a missing
one); a role without ``manage`` anywhere is 403. New apps: administrators.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from recordbase.access import OPERATIONS
from recordbase.definition import (
    DEFAULT_SENSITIVITY,
    FIELD_TYPES,
    RESERVED_APP_SLUGS,
    SENSITIVITY_LEVELS,
    SLUG_RE,
)
from recordbase.errors import (
    DefinitionError,
    NotFound,
    PermissionDenied,
    PlanRefused,
    Problem,
)
from recordbase.plan import Plan, Step
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

bp = page_blueprint(Blueprint("builder", __name__))
bp.before_request(require_login)

APP = "/builder/apps/<app>"
RIGHTS = (
    OPERATIONS  # create, read, update, delete, export, import, manage, reveal, export_sensitive
)
DESTRUCTIVE = frozenset({"remove_table", "remove_field", "convert_field"})
SELECT_TYPES = ("single_select", "multi_select")
PRIVATE_LEVELS = ("personal", "sensitive")
LANGS = ("en", "zh-CN")


def type_names() -> dict[str, str]:
    return {
        "text": _("Text"),
        "long_text": _("Long text"),
        "number": _("Number"),
        "currency": _("Currency"),
        "percent": _("Percent"),
        "boolean": _("Yes / no"),
        "date": _("Date"),
        "datetime": _("Date and time"),
        "single_select": _("Single choice"),
        "multi_select": _("Multiple choice"),
        "email": _("Email"),
        "phone": _("Phone"),
        "url": _("Web address"),
        "address": _("Address"),
        "link": _("Link to another table"),
        "user": _("User"),
        "attachment": _("Attachment"),
        "autonumber": _("Automatic number"),
        "rating": _("Rating"),
        "created_at": _("Created at"),
        "created_by": _("Created by"),
        "updated_at": _("Updated at"),
        "updated_by": _("Updated by"),
        "formula": _("Formula"),
        "lookup": _("Lookup"),
        "rollup": _("Rollup"),
    }


def sensitivity_levels() -> list[dict[str, str]]:
    """Each level with its one line of guidance, in the user's language."""
    return [
        {"slug": "public", "name": _("Public"),
         "help": _("Anyone who may open the table may see it, e.g. a product name.")},
        {"slug": "internal", "name": _("Internal"),
         "help": _("For colleagues, and not about a person, e.g. a deal's amount.")},
        {"slug": "personal", "name": _("Personal"),
         "help": _("Identifies or describes a person, e.g. a phone number: encrypted, masked, needs a purpose.")},
        {"slug": "sensitive", "name": _("Sensitive"),
         "help": _("Health, ID numbers, a person's finances: encrypted, masked, never exported without a special right; needs a purpose.")},
    ]  # fmt: skip


def right_names() -> dict[str, str]:
    return {
        "create": _("create"),
        "read": _("read"),
        "update": _("update"),
        "delete": _("delete"),
        "export": _("export"),
        "import": _("import"),
        "manage": _("manage"),
        "reveal": _("reveal"),
        "export_sensitive": _("export sensitive"),
    }


# --- who may build what -------------------------------------------------------------------


def managed_tables(definition: Mapping[str, Any], roles: frozenset[str]) -> set[str]:
    """Slugs of the tables on which one of ``roles`` has the ``manage`` right."""
    return {
        t.get("slug", "")
        for t in definition.get("tables") or []
        if any(((t.get("permissions") or {}).get(r) or {}).get("manage") for r in roles)
    }


def installed_or_none(app: str) -> dict[str, Any] | None:
    try:
        return engine().export(app)
    except NotFound:
        return None


def builder_access(app: str) -> dict[str, Any] | None:
    """The installed definition (``None``: not installed) once the user may build ``app``.

    Administrators may build anything; anyone else needs a role in the app
    (else 404, as for a missing app) with ``manage`` on some table (else 403).
    The engine still decides every change.
    """
    who = actor()
    installed = installed_or_none(app)
    if who.is_admin:
        return installed
    if installed is None or not who.roles_in(app):
        abort(404)
    if not managed_tables(installed, who.roles_in(app)):
        abort(403)
    return installed


def buildable_apps() -> list[dict[str, Any]]:
    rb, who = engine(), actor()
    out = []
    for row in rb.list_apps():
        definition = row["definition"]
        if not who.is_admin and not managed_tables(definition, who.roles_in(row["slug"])):
            continue
        out.append(
            {
                "slug": row["slug"],
                "label": label(definition.get("label")) or row["slug"],
                "tables": len(definition.get("tables") or []),
            }
        )
    return sorted(out, key=lambda a: a["label"].casefold())


# --- the draft ----------------------------------------------------------------------------


def usable(data: Any) -> bool:
    """Whether the editor can show ``data``: an object with tables of fields, roles and views lists."""
    if not isinstance(data, dict) or not isinstance(data.get("slug"), str):
        return False
    tables = data.get("tables")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return False
    for t in tables:
        fields = t.get("fields")
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            return False
        if not isinstance(t.get("permissions") or {}, dict):
            return False
        if not all(isinstance(g, dict) for g in (t.get("permissions") or {}).values()):
            return False
        if not all(isinstance(f.get("options") or {}, dict) for f in fields):
            return False
    for key in ("roles", "views"):
        items = data.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return False
    return True


def parse_json(text: str) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, why)`` when ``text`` is not JSON (with line and column)."""

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=no_constants), None
    except json.JSONDecodeError as exc:
        return None, _(
            "This is not valid JSON: line %(line)s, column %(column)s: %(reason)s",
            line=exc.lineno, column=exc.colno, reason=exc.msg,
        )  # fmt: skip
    except (ValueError, RecursionError):
        return None, _("This is not valid JSON.")


def posted_draft(app: str) -> dict[str, Any]:
    """The draft the page posted back: it must be a usable definition of this very app."""
    data, _why = parse_json(request.form.get("draft", ""))
    if not usable(data) or data.get("slug") != app:
        abort(400)
    result: dict[str, Any] = data
    return result


def lang_text(text: Any, tag: str) -> str:
    """A label's text in exactly one language ("" when it has none there; a plain string is English)."""
    if isinstance(text, str):
        return text if tag == "en" else ""
    if isinstance(text, Mapping):
        value = text.get(tag)
        return value if isinstance(value, str) else ""
    return ""


def merged_label(old: Any, en: str, zh: str) -> Any:
    """``old`` with its English and Chinese texts replaced; ``old`` itself when nothing changed."""
    en, zh = en.strip(), zh.strip()
    if lang_text(old, "en") == en and lang_text(old, "zh-CN") == zh:
        return old
    if not zh and not isinstance(old, Mapping):
        return en
    merged = {k: v for k, v in old.items() if k not in LANGS} if isinstance(old, Mapping) else {}
    if en:
        merged["en"] = en
    if zh:
        merged["zh-CN"] = zh
    return merged or ""


def sync_label(
    form: Mapping[str, str], prefix: str, item: dict[str, Any], key: str = "label"
) -> None:
    if f"{prefix}en" in form:
        item[key] = merged_label(
            item.get(key), form.get(f"{prefix}en", ""), form.get(f"{prefix}zh", "")
        )


def choice_line(choice: Mapping[str, Any]) -> str:
    en, zh = lang_text(choice.get("label"), "en"), lang_text(choice.get("label"), "zh-CN")
    if en and zh:
        return f"{en} | {zh}"
    return en or zh or label(choice.get("label"))


def parse_choices(text: str, old: list[Any]) -> list[Any]:
    """Choices from one line each ("English | 中文"); a line that reads as an old choice keeps it whole."""
    unused = [c for c in old if isinstance(c, Mapping)]
    out: list[Any] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        same = next((c for c in unused if choice_line(c) == line), None)
        if same is not None:
            unused.remove(same)
            out.append(same)
            continue
        en, _sep, zh = (part.strip() for part in line.partition("|"))
        out.append({"label": {"en": en or zh, "zh-CN": zh} if zh else en})
    return out


def set_flag(item: dict[str, Any], key: str, on: bool) -> None:
    """Set a boolean key only when it changes (an absent key and ``false`` mean the same)."""
    if bool(item.get(key)) == on:
        return
    if on:
        item[key] = True
    else:
        item.pop(key, None)


def sync_field(old: Mapping[str, Any], form: Mapping[str, str], i: int) -> dict[str, Any]:
    f = copy.deepcopy(dict(old))
    p = f"f{i}_"
    sync_label(form, p + "label_", f)
    kind = form.get(p + "type")
    if kind is not None and kind != f.get("type"):
        f["type"] = kind
        f.pop("options", None)  # options belong to a type; the new type's are asked for below
        f.pop("default", None)
    set_flag(f, "required", form.get(p + "required") == "1")
    level = form.get(p + "sensitivity")
    if level is not None and level != f.get("sensitivity", DEFAULT_SENSITIVITY(str(f.get("type")))):
        f["sensitivity"] = level
    sync_label(form, p + "purpose_", f, "purpose")  # in English and Chinese, as a label
    if not f.get("purpose"):
        f.pop("purpose", None)
    options = dict(f.get("options") or {})
    if f.get("type") in SELECT_TYPES and p + "choices" in form:
        options["choices"] = parse_choices(form[p + "choices"], list(options.get("choices") or []))
    if f.get("type") == "link" and form.get(p + "link_table"):
        options["table"] = form[p + "link_table"]
        set_flag(options, "many", form.get(p + "link_many") == "1")
    if f.get("type") == "currency" and p + "currency" in form:
        options["currency"] = form[p + "currency"].strip().upper()
    if options != (f.get("options") or {}):
        f["options"] = options
    slug = form.get(p + "slug")
    if slug is not None and slug.strip() != f.get("slug"):
        f["slug"] = slug.strip()
    return f


def field_order(form: Any, count: int) -> list[int] | None:
    """The posted order of the fields (original indexes), or ``None`` when it is not a permutation."""
    try:
        order = [int(v) for v in form.getlist("order")]
    except ValueError:
        return None
    return order if sorted(order) == list(range(count)) else None


def rename_field_refs(d: dict[str, Any], table: dict[str, Any], old: str, new: str) -> None:
    """Follow a field's rename in its table's primary field and in the views of its table."""
    if table.get("primary_field") == old:
        table["primary_field"] = new
    for view in d.get("views") or []:
        if view.get("table") != table.get("slug"):
            continue
        for key in ("group_by", "date_field"):
            if view.get(key) == old:
                view[key] = new
        if isinstance(view.get("fields"), list):
            view["fields"] = [new if s == old else s for s in view["fields"]]
        if isinstance(view.get("sort"), list):
            view["sort"] = [
                (("-" if str(s).startswith("-") else "") + new) if str(s).lstrip("-") == old else s
                for s in view["sort"]
            ]


def rename_table_refs(d: dict[str, Any], old: str, new: str) -> None:
    """Follow a table's rename in the views on it and the link fields pointing at it."""
    for view in d.get("views") or []:
        if view.get("table") == old:
            view["table"] = new
    for t in d["tables"]:
        for f in t["fields"]:
            options = f.get("options") or {}
            if f.get("type") == "link" and options.get("table") == old:
                f["options"] = {**options, "table": new}


def sync(draft: dict[str, Any], form: Any, ti: int) -> dict[str, Any]:
    """The draft with what the posted inputs changed; inputs that were not posted change nothing."""
    d = copy.deepcopy(draft)
    sync_label(form, "app_label_", d)
    tables = d["tables"]
    if 0 <= ti < len(tables) and form.get("t_present") == "1":
        table = tables[ti]
        sync_label(form, "t_label_", table)
        order = field_order(form, len(table["fields"]))
        if order is not None:
            renamed = []
            fields = []
            for i in order:
                before = table["fields"][i]
                after = sync_field(before, form, i)
                if after.get("slug") != before.get("slug"):
                    renamed.append((before.get("slug"), after.get("slug")))
                fields.append(after)
            table["fields"] = fields
            for old, new in renamed:
                rename_field_refs(d, table, str(old), str(new))
        automations = form.get("t_automations")
        if automations is not None and automations.strip() != automations_text(table.get("automations")).strip():
            if not automations.strip():
                table.pop("automations", None)
            else:
                parsed, _error = parse_json(automations)
                # Text that is not JSON stays as text: the check then points at this table's automations.
                table["automations"] = automations if _error else parsed
        slug = form.get("t_slug")
        if slug is not None and slug.strip() and slug.strip() != table.get("slug"):
            old_slug = str(table.get("slug"))
            table["slug"] = slug.strip()
            rename_table_refs(d, old_slug, table["slug"])
    if form.get("matrix") == "1":
        sync_matrix(d, form)
    return d


def automations_text(automations: Any) -> str:
    """A table's automations as the editor shows them: indented JSON, or the text as typed when it is not JSON."""
    if automations is None:
        return ""
    if isinstance(automations, str):
        return automations
    return json.dumps(automations, ensure_ascii=False, indent=2)


def sync_matrix(d: dict[str, Any], form: Any) -> None:
    """The roles × tables × rights checkboxes into each table's ``permissions`` (other keys kept)."""
    checked = set(form.getlist("perm"))
    for ti, table in enumerate(d["tables"]):
        grants = dict(table.get("permissions") or {})
        for role in d.get("roles") or []:
            slug = role.get("slug")
            grant = dict(grants.get(slug) or {})
            for right in RIGHTS:
                set_flag(grant, right, f"{ti}:{slug}:{right}" in checked)
            if grant != (grants.get(slug) or {}):
                if grant:
                    grants[slug] = grant
                else:
                    grants.pop(slug, None)
        if grants != (table.get("permissions") or {}):
            if grants:
                table["permissions"] = grants
            else:
                table.pop("permissions", None)


# --- the steps ------------------------------------------------------------------------------


def new_field(
    kind: str, slug: str, text: Any, tables: list[dict[str, Any]], ti: int
) -> dict[str, Any]:
    field: dict[str, Any] = {"slug": slug, "label": text, "type": kind}
    if kind in SELECT_TYPES:
        field["options"] = {"choices": [{"label": {"en": "Option 1", "zh-CN": "选项 1"}}]}
    elif kind == "currency":
        field["options"] = {"currency": "CNY"}
    elif kind == "link":
        others = [t.get("slug") for i, t in enumerate(tables) if i != ti] or [
            tables[ti].get("slug")
        ]
        field["options"] = {"table": others[0]}
    return field


def carry_out(
    d: dict[str, Any], op: str, form: Mapping[str, str], ti: int, order: list[int] | None = None
) -> tuple[dict[str, Any], int]:
    """One editing step on the (synced) draft: ``(draft, selected table index)``.

    A field button names the field by its index on the page; ``order`` is the
    fields' posted order (dragged since), so the step finds the field where it is now.
    """
    name, _sep, arg = op.partition(":")
    index = int(arg) if arg.isdigit() else -1
    if name.startswith(("field_", "delete_field")) and order is not None and index in order:
        index = order.index(index)
    tables = d["tables"]
    table = tables[ti] if 0 <= ti < len(tables) else None
    if name == "select_table" and 0 <= index < len(tables):
        return d, index
    if name == "add_table":
        slug = form.get("new_table_slug", "").strip()
        text = merged_label(
            None, form.get("new_table_label_en", "") or slug, form.get("new_table_label_zh", "")
        )
        tables.append(
            {
                "slug": slug,
                "label": text,
                "fields": [
                    {"slug": "name", "label": {"en": "Name", "zh-CN": "名称"}, "type": "text"}
                ],
            }
        )
        return d, len(tables) - 1
    if name in ("table_up", "table_down") and 0 <= index < len(tables):
        other = index - 1 if name == "table_up" else index + 1
        if 0 <= other < len(tables):
            tables[index], tables[other] = tables[other], tables[index]
            return d, other
        return d, index
    if name == "delete_table" and 0 <= index < len(tables):
        gone = tables.pop(index)
        d["views"] = [v for v in d.get("views") or [] if v.get("table") != gone.get("slug")]
        if not d["views"]:
            d.pop("views")
        return d, 0
    if table is not None:
        fields = table["fields"]
        if name == "add_field":
            slug = form.get("new_field_slug", "").strip()
            text = merged_label(
                None, form.get("new_field_label_en", "") or slug, form.get("new_field_label_zh", "")
            )
            fields.append(new_field(form.get("new_field_type", "text"), slug, text, tables, ti))
        elif name in ("field_up", "field_down") and 0 <= index < len(fields):
            other = index - 1 if name == "field_up" else index + 1
            if 0 <= other < len(fields):
                fields[index], fields[other] = fields[other], fields[index]
        elif name == "delete_field" and 0 <= index < len(fields):
            fields.pop(index)
    if name == "add_role":
        clearance = [
            level for level in SENSITIVITY_LEVELS if form.get(f"new_role_clearance_{level}") == "1"
        ]
        slug = form.get("new_role_slug", "").strip()
        text = merged_label(
            None, form.get("new_role_label_en", "") or slug, form.get("new_role_label_zh", "")
        )
        d.setdefault("roles", []).append({"slug": slug, "label": text, "clearance": clearance})
    elif name == "delete_role" and 0 <= index < len(d.get("roles") or []):
        gone = d["roles"].pop(index).get("slug")
        for t in tables:
            if gone in (t.get("permissions") or {}):
                t["permissions"] = {k: v for k, v in t["permissions"].items() if k != gone}
                if not t["permissions"]:
                    t.pop("permissions")
    return d, ti


# --- problems where they apply ----------------------------------------------------------------


def placed(problems: list[Problem]) -> dict[str, Any]:
    """Problems by where the page shows them: a field, a table, its permissions, the roles, the app."""
    out: dict[str, Any] = {"app": [], "roles": [], "tables": {}, "fields": {}, "matrix": {}}
    for p in problems:
        parts = p.pointer.split("/")[1:]
        item = {"pointer": p.pointer or "/", "message": p.message, "warning": p.severity != "error"}
        if len(parts) >= 2 and parts[0] == "tables" and parts[1].isdigit():
            ti = int(parts[1])
            if len(parts) >= 4 and parts[2] == "fields" and parts[3].isdigit():
                out["fields"].setdefault((ti, int(parts[3])), []).append(item)
            elif len(parts) >= 3 and parts[2] == "permissions":
                out["matrix"].setdefault(ti, []).append(item)
            else:
                out["tables"].setdefault(ti, []).append(item)
        elif parts and parts[0] == "roles":
            out["roles"].append(item)
        else:
            out["app"].append(item)
    return out


def count_by_table(where: Mapping[str, Any]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for ti, items in [*where["tables"].items(), *where["matrix"].items()]:
        counts[ti] = counts.get(ti, 0) + sum(1 for i in items if not i["warning"])
    for (ti, _fi), items in where["fields"].items():
        counts[ti] = counts.get(ti, 0) + sum(1 for i in items if not i["warning"])
    return counts


# --- rendering ---------------------------------------------------------------------------------


def field_rows(
    table: Mapping[str, Any], ti: int, where: Mapping[str, Any], privacy_locked: bool
) -> list[dict[str, Any]]:
    rows = []
    for i, f in enumerate(table.get("fields") or []):
        kind = str(f.get("type"))
        options = f.get("options") or {}
        level = f.get("sensitivity") or (
            DEFAULT_SENSITIVITY(kind) if kind in FIELD_TYPES else "internal"
        )
        rows.append({
            "i": i, "slug": f.get("slug", ""), "type": kind,
            "en": lang_text(f.get("label"), "en"), "zh": lang_text(f.get("label"), "zh-CN"),
            "name": label(f.get("label")) or str(f.get("slug", "")),
            "required": bool(f.get("required")), "sensitivity": level,
            "purpose_en": lang_text(f.get("purpose"), "en"), "purpose_zh": lang_text(f.get("purpose"), "zh-CN"),
            "asks_purpose": level in PRIVATE_LEVELS,
            "choices": "\n".join(choice_line(c) for c in options.get("choices") or [] if isinstance(c, Mapping)),
            "link_table": options.get("table", ""), "link_many": bool(options.get("many")),
            "currency": options.get("currency", ""),
            # An installed field's privacy keys are for administrators only; a new field may set them.
            "privacy_locked": privacy_locked and bool(f.get("id")),
            "problems": where["fields"].get((ti, i), []),
        })  # fmt: skip
    return rows


def preview_fields(table: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each field of a table as its form would ask for it: label, widget kind, choices, required."""
    out = []
    for i, f in enumerate((table or {}).get("fields") or []):
        options = f.get("options") or {}
        choices = [
            label(c.get("label")) for c in options.get("choices") or [] if isinstance(c, Mapping)
        ]
        out.append({
            "i": i, "label": label(f.get("label")) or str(f.get("slug", "")), "type": str(f.get("type")),
            "required": bool(f.get("required")), "choices": choices, "help": label(f.get("help")),
            "max": options.get("max", 5) if f.get("type") == "rating" else None,
            "currency": options.get("currency", ""), "link_table": options.get("table", ""),
        })  # fmt: skip
    return out


def matrix_rows(d: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    roles = [r for r in d.get("roles") or [] if isinstance(r.get("slug"), str)]
    for ti, t in enumerate(d.get("tables") or []):
        grants = t.get("permissions") or {}
        for role in roles:
            grant = grants.get(role["slug"]) or {}
            rows.append({
                "ti": ti, "table": label(t.get("label")) or t.get("slug", ""), "first": role is roles[0],
                "span": len(roles), "role": role["slug"], "role_label": label(role.get("label")) or role["slug"],
                "rights": {r: bool(grant.get(r)) for r in RIGHTS},
                "scoped": grant.get("rows", "all") != "all" or bool(grant.get("fields")),
            })  # fmt: skip
    return rows


def editor(
    app: str, draft: dict[str, Any], ti: int, installed: Mapping[str, Any] | None, status: int = 200
) -> Response:
    who = actor()
    tables = draft["tables"]
    ti = ti if 0 <= ti < len(tables) else 0
    problems = engine().check(draft)
    where = placed(problems)
    errors = count_by_table(where)
    mine = managed_tables(installed or {}, who.roles_in(app))
    table = tables[ti] if tables else None
    context = {
        "app": {"slug": app, "label": label(draft.get("label")) or app,
                "en": lang_text(draft.get("label"), "en"), "zh": lang_text(draft.get("label"), "zh-CN")},
        "new_app": installed is None,
        "admin": who.is_admin,
        "draft_json": json.dumps(draft, ensure_ascii=False, separators=(",", ":")),
        "ti": ti,
        "tables": [
            {"i": i, "slug": t.get("slug", ""), "label": label(t.get("label")) or t.get("slug", ""),
             "errors": errors.get(i, 0),
             "editable": who.is_admin or t.get("slug") in mine or not t.get("id")}
            for i, t in enumerate(tables)
        ],
        "table": None if table is None else {
            "slug": table.get("slug", ""), "en": lang_text(table.get("label"), "en"),
            "zh": lang_text(table.get("label"), "zh-CN"),
            "label": label(table.get("label")) or table.get("slug", ""),
            "editable": who.is_admin or table.get("slug") in mine or not table.get("id"),
            "problems": where["tables"].get(ti, []),
            "automations": automations_text(table.get("automations")),
            "automation_problems": [p for p in problems if p.pointer.startswith(f"/tables/{ti}/automations")],
        },
        "fields": field_rows(table, ti, where, not who.is_admin) if table else [],
        "preview": preview_fields(table),
        "roles": [
            {"i": i, "slug": r.get("slug", ""), "label": label(r.get("label")) or r.get("slug", ""),
             "clearance": r.get("clearance") or ["public", "internal"]}
            for i, r in enumerate(draft.get("roles") or [])
        ],
        "matrix": matrix_rows(draft),
        "where": where,
        "error_count": sum(1 for p in problems if p.severity == "error"),
        "table_slugs": [t.get("slug", "") for t in tables],
        "type_names": type_names(),
        "levels": sensitivity_levels(),
        "rights": right_names(),
    }  # fmt: skip
    body = render_template("builder/editor.html", **context)
    return Response(body, status=status, mimetype="text/html")


def step_text(step: Step) -> str:
    d = step.detail
    field = f"{d.get('table_slug')}.{d.get('slug')}"
    if step.kind == "create_app":
        return _("Create the app %(app)s", app=d.get("app"))
    if step.kind == "add_table":
        return _("Add the table %(table)s", table=d.get("slug"))
    if step.kind == "remove_table":
        return _("Remove the table %(table)s (to the trash, restorable)", table=d.get("slug"))
    if step.kind == "rename_table":
        return _("Rename the table %(old)s to %(new)s", old=d.get("old"), new=d.get("new"))
    if step.kind == "add_field":
        return _("Add the field %(field)s (%(type)s)", field=field, type=d.get("type"))
    if step.kind == "remove_field":
        return _("Remove the field %(field)s (to the trash, restorable)", field=field)
    if step.kind == "rename_field":
        return _(
            "Rename the field %(table)s.%(old)s to %(new)s",
            table=d.get("table_slug"),
            old=d.get("old"),
            new=d.get("new"),
        )
    if step.kind == "convert_field":
        return _("Convert the values of %(field)s from %(old)s to %(new)s: values that cannot convert are emptied",
                 field=field, old=d.get("old_type"), new=d.get("new_type"))  # fmt: skip
    if step.kind == "change_index":
        if d.get("action") == "create":
            return _("Index the field %(field)s", field=field)
        return _("Drop the index of %(field)s", field=field)
    if step.kind == "rebuild_search":
        return _("Rebuild the search index of %(table)s", table=d.get("table_slug"))
    return _("Update labels, options and settings")


def plan_digest(plan: Plan) -> str:
    """What the user reviewed, to notice at "Apply" that the app changed meanwhile (ids left out)."""
    return hashlib.sha256("\n".join(plan.describe()).encode()).hexdigest()[:16]


def review(
    app: str,
    draft: dict[str, Any],
    installed: Mapping[str, Any] | None,
    ti: int,
    status: int = 200,
    notice: str | None = None,
    refusal: Any = None,
) -> Response:
    """The plan of the draft, destructive steps flagged, and a dry run of it as the user."""
    rb, who = engine(), actor()
    try:
        plan = rb.plan(draft)
    except DefinitionError:
        return editor(app, draft, ti, installed, status=422)
    emptied: list[str] = []
    blocked = None
    if refusal is None and not plan.is_empty:
        try:
            emptied = [p.pointer for p in rb.install(draft, who, dry_run=True, force=True).problems]
        except PermissionDenied as exc:
            refusal = exc
        except PlanRefused as exc:
            blocked = exc
    context = {
        "app": {"slug": app, "label": label(draft.get("label")) or app},
        "new_app": installed is None,
        "draft_json": json.dumps(draft, ensure_ascii=False, separators=(",", ":")),
        "ti": ti,
        "steps": [{"text": step_text(s), "kind": s.kind, "destructive": s.kind in DESTRUCTIVE} for s in plan.steps],
        "destructive": any(s.kind in DESTRUCTIVE for s in plan.steps),
        "digest": plan_digest(plan),
        "emptied": emptied,
        "refusal": None if refusal is None else {
            "message": refusal.message, "problems": [p.message for p in refusal.problems]},
        "blocked": None if blocked is None else {
            "message": blocked.message, "pointers": [p.pointer for p in blocked.problems]},
        "notice": notice,
    }  # fmt: skip
    if refusal is not None and status == 200:
        status = 403
    body = render_template("builder/review.html", **context)
    return Response(body, status=status, mimetype="text/html")


def selected_table() -> int:
    value = request.form.get("table", "0")
    return int(value) if value.isdigit() else 0


# --- routes --------------------------------------------------------------------------------------


def render_index(status: int = 200, **context: Any) -> Response:
    body = render_template(
        "builder/index.html",
        apps=buildable_apps(),
        admin=actor().is_admin,
        form=context.pop("form", {}),
        errors=context.pop("errors", {}),
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/builder")
def index() -> Response:
    return render_index()


@bp.post("/builder/new")
def new_app() -> Response:
    if not actor().is_admin:
        abort(403)
    form = {k: request.form.get(k, "").strip() for k in ("slug", "label_en", "label_zh")}
    errors = {}
    if not SLUG_RE.fullmatch(form["slug"]) or form["slug"] in RESERVED_APP_SLUGS:
        errors["slug"] = _(
            "Use a lowercase letter, then lowercase letters, digits or _ (not api, static, admin or auth)."
        )
    elif installed_or_none(form["slug"]) is not None:
        errors["slug"] = _("An app with this name exists already.")
    if not form["label_en"] and not form["label_zh"]:
        errors["label"] = _("Give the app a name.")
    if errors:
        return render_index(422, form=form, errors=errors)
    draft = {
        "slug": form["slug"],
        "label": merged_label(None, form["label_en"] or form["label_zh"], form["label_zh"]),
        "version": 1,
        "tables": [{
            "slug": "items", "label": {"en": "Items", "zh-CN": "条目"},
            "fields": [{"slug": "name", "label": {"en": "Name", "zh-CN": "名称"}, "type": "text", "required": True}],
        }],
    }  # fmt: skip
    return editor(form["slug"], draft, 0, None)


@bp.get(APP)
def app_editor(app: str) -> Response:
    installed = builder_access(app)
    if installed is None:
        abort(404)
    return editor(app, installed, 0, installed)


@bp.post(APP + "/edit")
def edit(app: str) -> Response:
    installed = builder_access(app)
    ti = selected_table()
    posted = posted_draft(app)
    fields = posted["tables"][ti]["fields"] if ti < len(posted["tables"]) else []
    order = field_order(request.form, len(fields)) if request.form.get("t_present") == "1" else None
    draft = sync(posted, request.form, ti)
    op = request.form.get("op", "")
    if op == "review":
        return review(app, draft, installed, ti)
    draft, ti = carry_out(draft, op, request.form, ti, order)
    return editor(app, draft, ti, installed)


@bp.post(APP + "/preview")
def preview(app: str) -> Response:
    builder_access(app)
    ti = selected_table()
    draft = sync(posted_draft(app), request.form, ti)
    table = draft["tables"][ti] if 0 <= ti < len(draft["tables"]) else None
    body = render_template(
        "builder/_preview.html",
        preview=preview_fields(table),
        table_label=label((table or {}).get("label")),
        type_names=type_names(),
    )
    return Response(body, mimetype="text/html")


@bp.post(APP + "/apply")
def apply(app: str) -> BaseResponse:
    installed = builder_access(app)
    ti = selected_table()
    draft = posted_draft(app)
    rb, who = engine(), actor()
    try:
        plan = rb.plan(draft)
    except DefinitionError:
        return editor(app, draft, ti, installed, status=422)
    if plan_digest(plan) != request.form.get("digest"):
        return review(
            app,
            draft,
            installed,
            ti,
            status=409,
            notice=_("The app changed since you reviewed this plan: review the new plan."),
        )
    if plan.is_empty:
        flash(_("Nothing to change: the app is already like this."), "success")
        return redirect(url_for("builder.app_editor", app=app), 303)
    destructive = any(s.kind in DESTRUCTIVE for s in plan.steps)
    confirmed = request.form.get("confirm") == "1"
    if destructive and not confirmed:
        return review(
            app,
            draft,
            installed,
            ti,
            status=422,
            notice=_("This plan removes or converts data: tick the confirmation to apply it."),
        )
    try:
        rb.install(draft, who, force=destructive and confirmed)
    except DefinitionError:
        return editor(app, draft, ti, installed, status=422)
    except PermissionDenied as refused:
        return review(app, draft, installed, ti, refusal=refused)
    except PlanRefused:
        return review(app, draft, installed, ti, status=409)
    flash(_("The changes were applied."), "success")
    return redirect(url_for("builder.app_editor", app=app), 303)


@bp.get(APP + "/export")
def export(app: str) -> Response:
    installed = builder_access(app)
    if installed is None:
        abort(404)
    body = json.dumps(installed, ensure_ascii=False, indent=2) + "\n"
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{app}.json"'},
    )


@bp.post("/builder/import")
def import_definition() -> BaseResponse:
    upload = request.files.get("definition")
    raw = upload.read() if upload is not None else b""
    why = None
    data: Any = None
    if not raw:
        why = _("Choose a JSON file to import.")
    else:
        try:
            data, why = parse_json(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            why = _("This file is not UTF-8 text.")
    if why is None and not (
        isinstance(data, dict)
        and isinstance(data.get("slug"), str)
        and SLUG_RE.fullmatch(data["slug"])
    ):
        problems = engine().check(data)
        why = _('This is not an app definition: it needs a valid "slug".')
        return render_import(422, why, problems)
    if why is not None:
        return render_import(422, why, [])
    app = data["slug"]
    if installed_or_none(app) is None and not actor().is_admin:
        abort(403)  # installing a new app is for administrators
    installed = builder_access(app)
    problems = [p for p in engine().check(data) if p.severity == "error"]
    if problems:
        return render_import(
            422,
            _("The definition has problems; nothing was changed."),
            problems,
            app=app,
            draft=data if usable(data) else None,
        )
    return review(app, data, installed, 0)


def render_import(
    status: int,
    why: str,
    problems: list[Problem],
    app: str | None = None,
    draft: dict[str, Any] | None = None,
) -> Response:
    body = render_template(
        "builder/import.html", why=why, app=app,
        problems=[{"pointer": p.pointer or "/", "message": p.message} for p in problems],
        draft_json=None if draft is None else json.dumps(draft, ensure_ascii=False, separators=(",", ":")),
    )  # fmt: skip
    return Response(body, status=status, mimetype="text/html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
