"""``/admin/compliance``: the compliance officer's pages, for platform administrators only.

Five pages under one sub-navigation, each a thin rendering of an engine call:

- **Data inventory** (``/inventory``): ``Recordbase.inventory()`` — every
  personal and sensitive field with its purpose, encryption, the table's
  consent, retention and erasure rule, and how each role sees it.
- **Audit log** (``/audit``): ``Recordbase.audit_entries`` narrowed by app,
  table, field, record, user (chosen from the users list, so no address is
  put in the URL), dates and action, 50 entries a page, newest first, paged
  by entry id (each page one indexed range, however long the trail). Values
  are shown as ``audit.readable`` shows them: sealed ones only ever as
  ``[sealed]``; a reveal shows its reason.
- **Subject requests** (``/subjects``): ``subjects.find``, ``export`` and
  ``erase`` by email or phone number. The identifiers travel in POST bodies
  only (never in a URL); the export is a JSON download; erasing needs a
  reason and an explicit confirmation. The engine audits each step; the
  erasure's reason is recorded in one more audit entry.
- **Consent ledger** (``/consent``): every consent given and withdrawn, with
  dates and channel, per app/table and purpose; filter by table, purpose and
  record; newest first, paged by id.
- **Retention** (``/retention``): each table's rule and how many records are
  due now (a dry run); "Run retention now" (POST) runs it and records in the
  audit which administrator started it.

Anyone but a platform administrator gets 403; every POST checks the CSRF token.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
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
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from recordbase import consent as consent_ledger
from recordbase import subjects
from recordbase.audit import readable, write_audit
from recordbase.consent import SENSITIVE_PREFIX
from recordbase.errors import NotFound, ValidationError
from recordbase.retention import run_retention
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

BASE = "/admin/compliance"
bp = page_blueprint(Blueprint("compliance", __name__))

PAGE_SIZE = 50
MIN_REASON = 5
EMPTY = "—"
LONGEST = 300  # characters of one value shown in an audit entry


@bp.before_request
def admins_only() -> BaseResponse | None:
    refused = require_login()
    if refused is not None:
        return refused
    if not actor().is_admin:
        abort(403)
    return None


def sections() -> list[tuple[str, str]]:
    """The sub-navigation: (endpoint, title)."""
    return [
        ("compliance.index", _("Overview")),
        ("compliance.inventory", _("Data inventory")),
        ("compliance.audit", _("Audit log")),
        ("compliance.subjects_page", _("Subject requests")),
        ("compliance.consent", _("Consent ledger")),
        ("compliance.retention", _("Retention")),
    ]


def page(template: str, status: int = 200, **context: Any) -> Response:
    body = render_template(template, sections=sections(), **context)
    return Response(body, status=status, mimetype="text/html")


# --- names of things, from the installed definitions -------------------------------------------


@dataclass
class TableInfo:
    app: str
    app_label: str
    slug: str
    label: str
    fields: dict[str, str] = field(default_factory=dict)  # field uid → label
    slugs: dict[str, str] = field(default_factory=dict)  # field slug → label
    definition: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Catalogue:
    """Every installed app and table by database id, with labels in the user's language."""

    apps: dict[int, tuple[str, str]]  # app pk → (slug, label)
    tables: dict[int, TableInfo]

    @classmethod
    def load(cls) -> Catalogue:
        rb = engine()
        apps: dict[int, tuple[str, str]] = {}
        tables: dict[int, TableInfo] = {}
        for row in rb.list_apps():
            schema = rb.app(row["slug"])
            app_label = label(schema.definition.get("label")) or schema.slug
            apps[schema.pk] = (schema.slug, app_label)
            for ts in schema.tables.values():
                tables[ts.pk] = TableInfo(
                    schema.slug,
                    app_label,
                    ts.slug,
                    label(ts.label) or ts.slug,
                    {f.uid: label(f.label) or f.slug for f in ts.fields.values()},
                    {f.slug: label(f.label) or f.slug for f in ts.fields.values()},
                    ts.definition,
                )
        return cls(apps, tables)

    def table(self, app: str, slug: str) -> TableInfo | None:
        return next((t for t in self.tables.values() if t.app == app and t.slug == slug), None)

    def table_choices(self) -> list[dict[str, str]]:
        return [
            {"value": f"{t.app}.{t.slug}", "label": f"{t.app_label} · {t.label}"}
            for t in sorted(self.tables.values(), key=lambda t: (t.app, t.slug))
        ]


def sensitivity_names() -> dict[str, str]:
    return {"personal": _("personal"), "sensitive": _("sensitive")}


# --- overview and inventory ----------------------------------------------------------------


@bp.get(BASE)
def index() -> Response:
    rows = engine().inventory()
    catalogue = Catalogue.load()
    ruled = [t for t in catalogue.tables.values() if t.definition.get("retention")]
    consented = [t for t in catalogue.tables.values() if t.definition.get("consent")]
    return page(
        "compliance/index.html",
        personal_fields=len(rows),
        tables=len(catalogue.tables),
        retention_tables=len(ruled),
        consent_tables=len(consented),
    )


def exposure_names() -> dict[str, str]:
    return {
        "clear": _("in clear"),
        "masked": _("masked"),
        # The grant's clear_rows: e.g. a rep sees the phones of their own contacts, others masked.
        "masked except on clear_rows": _("in clear on some rows, masked elsewhere"),
        "hidden": _("hidden"),
        "no access": _("no access"),
    }


def rule_text(info: TableInfo) -> str:
    """A table's retention rule in words, in the user's language."""
    rule = info.definition.get("retention")
    if not rule:
        return EMPTY
    actions = {"delete": _("delete"), "anonymise": _("anonymise")}
    return _(
        "%(action)s %(days)s days after %(field)s",
        action=actions.get(rule["action"], rule["action"]),
        days=rule["days"],
        field=info.slugs.get(rule["field"], rule["field"]),
    )


def erasure_text(info: TableInfo) -> str:
    """What a subject's erasure does to the table's records (and why a record is kept)."""
    rule = info.definition.get("erasure") or {}
    if rule.get("action") != "anonymise":
        return _("delete")
    return f"{_('anonymise')}: {rule.get('reason')}" if rule.get("reason") else _("anonymise")


@bp.get(BASE + "/inventory")
def inventory() -> Response:
    rb = engine()
    catalogue = Catalogue.load()
    apps: dict[str, dict[str, Any]] = {}
    exposure = exposure_names()
    for row in rb.inventory():
        schema = rb.app(row["app"])
        info = catalogue.table(row["app"], row["table"])
        app = apps.setdefault(
            row["app"],
            {
                "slug": row["app"],
                "label": label(schema.definition.get("label")) or row["app"],
                "roles": [
                    {"slug": r["slug"], "label": label(r.get("label")) or r["slug"]}
                    for r in schema.definition.get("roles") or []
                ],
                "rows": [],
            },
        )
        consent = row["consent"]
        app["rows"].append(
            {
                "table": info.label if info else row["table"],
                "table_slug": row["table"],
                "field": info.slugs.get(row["field"], row["field"]) if info else row["field"],
                "field_slug": row["field"],
                "type": row["type"],
                "sensitivity": sensitivity_names().get(row["sensitivity"], row["sensitivity"]),
                "purpose": label(row["purpose"]) or EMPTY,
                "encrypted": row["encrypted"],
                "retention": rule_text(info) if info else row["retention"] or EMPTY,
                "consent": EMPTY
                if not consent
                else _(
                    "%(purposes)s (version %(version)s)",
                    purposes=", ".join(consent.get("purposes") or []),
                    version=consent.get("version"),
                ),
                "erasure": erasure_text(info) if info else row["erasure"],
                "roles": [
                    exposure.get(row["roles"].get(r["slug"]), row["roles"].get(r["slug"]) or EMPTY)
                    for r in app["roles"]
                ],
            }
        )
    return page("compliance/inventory.html", apps=list(apps.values()))


# --- the audit log -------------------------------------------------------------------------


def action_names() -> dict[str, str]:
    """The audit actions the engine writes, named for people."""
    return {
        "create": _("created a record"),
        "update": _("changed a record"),
        "delete": _("deleted a record"),
        "restore": _("restored a record"),
        "purge": _("purged a record"),
        "unlink": _("unlinked a record"),
        "reveal": _("revealed a value"),
        "export": _("exported"),
        "import": _("imported"),
        "consent_given": _("consent given"),
        "consent_withdrawn": _("consent withdrawn"),
        "consent_withdrawn_anonymise": _("anonymised on withdrawal"),
        "retention_anonymise": _("anonymised by retention"),
        "retention_run": _("ran retention"),
        "subject_export": _("subject export"),
        "subject_erase": _("subject erasure"),
        "subject_erase_reason": _("reason for a subject erasure"),
        "install": _("installed or changed an app"),
        "values_dropped": _("values dropped by a change"),
        "login": _("signed in"),
        "login_failed": _("failed sign-in"),
        "password_change": _("changed a password"),
        "user_create": _("created a user"),
        "user_activate": _("activated or deactivated a user"),
        "role_change": _("changed roles"),
        "token_create": _("created a token"),
        "token_revoke": _("revoked a token"),
        "token_use": _("used a token"),
        "token_rejected": _("refused a token"),
        "trash_purge": _("emptied the trash"),
        "keys_rotated": _("rotated the keys"),
        "backup": _("made a backup"),
        "webhook_create": _("added a webhook"),
        "webhook_delete": _("removed a webhook"),
    }


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def as_text(value: Any) -> str:
    if value is None or value == "" or value == []:
        return EMPTY
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    return (
        text if len(text) <= LONGEST else text[: LONGEST - 1] + "…"
    )  # an install's whole plan, say


def entry_details(changes: Mapping[str, Any], info: TableInfo | None) -> list[dict[str, str]]:
    """An entry's changes as (label, text) lines: field ids by their labels, sealed values as markers."""
    shown = readable(changes or {})
    names = info.fields if info else {}
    out: list[dict[str, str]] = []
    for key, value in shown.items():
        if key == "fields" and isinstance(value, dict):
            for uid, pair in value.items():
                name = names.get(uid, uid)
                if isinstance(pair, list) and len(pair) == 2:
                    out.append({"label": name, "text": f"{as_text(pair[0])} → {as_text(pair[1])}"})
                else:
                    out.append({"label": name, "text": as_text(pair)})
        elif key == "fields" and isinstance(value, list):
            out.append(
                {"label": _("Fields"), "text": ", ".join(names.get(str(u), str(u)) for u in value)}
            )
        elif key == "field":
            out.append({"label": _("Field"), "text": names.get(str(value), str(value))})
        elif key == "reason":
            out.append({"label": _("Reason"), "text": as_text(value), "kind": "reason"})
        elif key == "slug" and "field" in shown:
            continue
        else:
            out.append({"label": key, "text": as_text(value)})
    return out


def audit_filters(
    catalogue: Catalogue, users: list[dict[str, Any]]
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """(the form as sent, the engine's keyword arguments, errors by form field)."""
    args = request.args
    form = {
        k: args.get(k, "").strip()
        for k in ("table", "field", "record", "user", "since", "until", "action")
    }
    query: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if form["table"]:
        app, _sep, table = form["table"].partition(".")
        if app in {a for a, _label in catalogue.apps.values()}:
            query["app"] = app
            if table:
                query["table"] = table
        else:
            errors["table"] = _("Choose one of the listed apps or tables.")
    if form["field"]:
        if "table" not in query:
            errors["field"] = _("Choose a table to search by field.")
        else:
            query["field"] = form["field"]
    if form["record"]:
        if form["record"].isdigit():
            query["record"] = int(form["record"])
        else:
            errors["record"] = _("A record id is a whole number.")
    if form["user"]:
        email = next((u["email"] for u in users if str(u["id"]) == form["user"]), None)
        if email is None:
            errors["user"] = _("Choose one of the listed users.")
        else:
            query["user"] = email
    for key in ("since", "until"):
        day = parse_date(form[key])
        if form[key] and day is None:
            errors[key] = _("Enter a date like 2026-05-01.")
        elif day is not None:
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            query[key] = (
                start if key == "since" else start + dt.timedelta(days=1)
            )  # "until" includes the day
    if form["action"] and form["action"] not in action_names():
        errors["action"] = _("Choose one of the listed actions.")
    return form, query, errors


@bp.get(BASE + "/audit")
def audit() -> Response:
    rb = engine()
    catalogue = Catalogue.load()
    users = rb.list_users()
    form, query, errors = audit_filters(catalogue, users)
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() else None
    entries: list[dict[str, Any]] = []
    more = False
    if not errors:
        action = form["action"]
        try:
            found = rb.audit_entries(
                limit=PAGE_SIZE + 1, action=action or None, before_id=before_id, newest_first=True, **query
            )
        except NotFound:
            errors["field" if "field" in query else "table"] = _(
                "There is no such table or field in this app."
            )
            found = []
        more = len(found) > PAGE_SIZE
        entries = [audit_row(e, catalogue) for e in found[:PAGE_SIZE]]
    params = {k: v for k, v in form.items() if v}
    return page(
        "compliance/audit.html",
        422 if errors else 200,
        form=form,
        errors=errors,
        entries=entries,
        first_url=url_for("compliance.audit", **params) if before_id is not None else None,
        next_url=url_for("compliance.audit", **params, before=entries[-1]["id"]) if more else None,
        # The filters' choices, as (value, text): apps, then their tables; users; actions.
        places=[*sorted(catalogue.apps.values()), *((t["value"], t["label"]) for t in catalogue.table_choices())],
        people=[(u["id"], f"{u['display_name']} ({u['email']})") for u in users],
        actions=action_names().items(),
    )


def audit_row(entry: Mapping[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    info = catalogue.tables.get(entry["table_id"]) if entry.get("table_id") else None
    app = catalogue.apps.get(entry["app_id"]) if entry.get("app_id") else None
    record_url = None
    if info is not None and entry.get("record_id"):
        record_url = url_for(
            "record_page.record_page", app=info.app, table=info.slug, record_id=entry["record_id"]
        )
    return {
        "id": entry["id"],
        "at": format_datetime(entry["at"], "medium"),
        "iso": entry["at"].isoformat(),
        "actor": entry["actor_name"],
        "action": action_names().get(entry["action"], entry["action"]),
        "action_slug": entry["action"],
        "where": (f"{info.app_label} · {info.label}" if info else app[1] if app else ""),
        "record_id": entry.get("record_id"),
        "record_url": record_url,
        "details": entry_details(entry.get("changes") or {}, info),
    }


# --- data-subject requests -------------------------------------------------------------------


def identifiers() -> dict[str, list[str]]:
    """The email address and phone number of the request, from the POST body only."""
    email = request.form.get("email", "").strip()
    phone = request.form.get("phone", "").strip()
    return {"emails": [email] if email else [], "phones": [phone] if phone else []}


def hit_rows(hits: list[subjects.Hit], catalogue: Catalogue) -> list[dict[str, Any]]:
    out = []
    for hit in hits:
        info = catalogue.table(hit.app, hit.table)
        names = info.slugs if info else {}
        linked = None
        if hit.linked_from is not None:
            target = catalogue.table(hit.app, hit.linked_from[0])
            linked = _(
                "links to %(table)s %(id)s",
                table=target.label if target else hit.linked_from[0],
                id=hit.linked_from[1],
            )
        out.append(
            {
                "where": f"{info.app_label} · {info.label}" if info else f"{hit.app}.{hit.table}",
                "record_id": hit.record_id,
                "url": None
                if hit.in_trash
                else url_for(
                    "record_page.record_page", app=hit.app, table=hit.table, record_id=hit.record_id
                ),
                "matched": ", ".join(names.get(s, s) for s in hit.matched),
                "linked": linked,
                "in_trash": hit.in_trash,
            }
        )
    return out


def named(name: str, catalogue: Catalogue) -> list[dict[str, Any]]:
    """Records with a personal or sensitive text field equal to ``name`` (exact; encrypted ones by blind index).

    Only to locate a person whose email or phone is not known yet: export and
    erasure work by email or phone (``subjects``), which are what identifies
    them reliably.
    """
    rb, who = engine(), actor()
    out = []
    for listed in rb.list_apps():
        for ts in rb.app(listed["slug"]).tables.values():
            fields = [
                f.slug
                for f in ts.fields.values()
                if f.type.name == "text" and f.sensitivity in ("personal", "sensitive")
            ]
            if not fields:
                continue
            tree = {"or": [{"field": f, "op": "eq", "value": name} for f in fields]}
            store = rb.records(who, ts.app.slug, ts.slug)
            for record in store.query(filter=tree, page_size=100, sort=["id"]).records:
                matched = [f for f in fields if record.fields.get(f) == name]
                out.append(subjects.Hit(ts.app.slug, ts.slug, record.id, matched))
    return hit_rows(out, catalogue)


def render_subjects(status: int = 200, **context: Any) -> Response:
    context.setdefault("form", {"email": "", "phone": "", "name": ""})
    context.setdefault("errors", {})
    context.setdefault("named", None)
    return page("compliance/subjects.html", status, min_reason=MIN_REASON, **context)


@bp.get(BASE + "/subjects")
def subjects_page() -> Response:
    return render_subjects()


@bp.post(BASE + "/subjects")
def subjects_find() -> Response:
    wanted = identifiers()
    form = {
        "email": request.form.get("email", "").strip(),
        "phone": request.form.get("phone", "").strip(),
        "name": request.form.get("name", "").strip(),
    }
    catalogue = Catalogue.load()
    by_name = named(form["name"], catalogue) if form["name"] else None
    if not wanted["emails"] and not wanted["phones"]:
        if by_name is not None:
            return render_subjects(form=form, named=by_name)
        return render_subjects(
            422, form=form, errors={"who": _("Give an email address, a phone number or a name.")}
        )
    hits = subjects.find(engine(), actor(), **wanted)
    return render_subjects(form=form, hits=hit_rows(hits, catalogue), searched=True, named=by_name)


@bp.post(BASE + "/subjects/export")
def subjects_export() -> BaseResponse:
    wanted = identifiers()
    try:
        document = subjects.export(engine(), actor(), **wanted)
    except ValidationError:
        return render_subjects(422, errors={"who": _("Give an email address or a phone number.")})
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str)
    day = dt.datetime.now(dt.UTC).date().isoformat()
    return Response(
        body + "\n",
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="subject-export-{day}.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.post(BASE + "/subjects/erase")
def subjects_erase() -> Response:
    rb, who = engine(), actor()
    wanted = identifiers()
    form = {
        "email": request.form.get("email", "").strip(),
        "phone": request.form.get("phone", "").strip(),
    }
    reason = request.form.get("reason", "").strip()
    errors: dict[str, str] = {}
    if not wanted["emails"] and not wanted["phones"]:
        errors["who"] = _("Give an email address or a phone number.")
    if len(reason) < MIN_REASON:
        errors["reason"] = _("Give a reason of at least %(count)s characters.", count=MIN_REASON)
    if request.form.get("confirm") != "yes":
        errors["confirm"] = _("Tick the box to confirm that this cannot be undone.")
    if errors:
        catalogue = Catalogue.load()
        hits = subjects.find(rb, who, **wanted) if "who" not in errors else []
        return render_subjects(
            422,
            form=form,
            errors=errors,
            reason=reason,
            hits=hit_rows(hits, catalogue),
            searched="who" not in errors,
        )
    report = subjects.erase(rb, who, reason=reason, **wanted)  # the reason goes into its audit entry
    catalogue = Catalogue.load()
    return render_subjects(
        report={
            "deleted": [{**row, "url": None} for row in hit_rows(report.deleted, catalogue)],
            "anonymised": [
                {**row, "why": why}
                for row, (_hit, why) in zip(
                    hit_rows([h for h, _w in report.anonymised], catalogue),
                    report.anonymised,
                    strict=True,
                )
            ],
            "cascaded": report.cascaded,
            "history_values": report.history_values,
            "files_removed": report.files_removed,
            "kept": report.kept,
        },
    )


# --- the consent ledger --------------------------------------------------------------------


def purpose_name(purpose: str, info: TableInfo | None) -> str:
    if purpose.startswith(SENSITIVE_PREFIX):
        slug = purpose.removeprefix(SENSITIVE_PREFIX)
        return _("sensitive field: %(field)s", field=info.slugs.get(slug, slug) if info else slug)
    return purpose


@bp.get(BASE + "/consent")
def consent() -> Response:
    catalogue = Catalogue.load()
    args = request.args
    form = {k: args.get(k, "").strip() for k in ("table", "purpose", "record")}
    errors: dict[str, str] = {}
    query: dict[str, Any] = {}
    if form["table"]:
        app, _sep, table = form["table"].partition(".")
        info = catalogue.table(app, table)
        pk = next((pk for pk, t in catalogue.tables.items() if t is info), None)
        if pk is None:
            errors["table"] = _("Choose one of the listed tables.")
        else:
            query["table_pk"] = pk
    if form["purpose"]:
        query["purpose"] = form["purpose"]
    if form["record"]:
        if form["record"].isdigit():
            query["record"] = int(form["record"])
        else:
            errors["record"] = _("A record id is a whole number.")
    before = args.get("before", "")
    rb = engine()
    totals = consent_ledger.totals(rb)
    rows: list[Mapping[str, Any]] = []
    if not errors:
        rows = consent_ledger.entries(
            rb, limit=PAGE_SIZE + 1, before_id=int(before) if before.isdigit() else None, **query
        )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    entries = []
    for r in rows:
        info = catalogue.tables.get(r["table_id"])
        entries.append(
            {
                "id": r["id"],
                "where": f"{info.app_label} · {info.label}" if info else "",
                "record_id": r["record_id"],
                "url": url_for(
                    "record_page.record_page",
                    app=info.app,
                    table=info.slug,
                    record_id=r["record_id"],
                )
                if info
                else None,
                "purpose": purpose_name(r["purpose"], info),
                "version": r["version"],
                "channel": r["channel"],
                "given_at": format_datetime(r["given_at"], "medium"),
                "given_by": r["given_by"],
                "withdrawn_at": format_datetime(r["withdrawn_at"], "medium")
                if r["withdrawn_at"]
                else None,
                "withdrawn_by": r["withdrawn_by"],
            }
        )
    summary = [
        {
            "where": f"{catalogue.tables[t['table_id']].app_label} · {catalogue.tables[t['table_id']].label}",
            "purpose": purpose_name(t["purpose"], catalogue.tables[t["table_id"]]),
            "given": t["given"],
            "withdrawn": t["withdrawn"],
        }
        for t in totals
        if t["table_id"] in catalogue.tables
    ]
    params = {k: v for k, v in form.items() if v}
    purposes = sorted({t["purpose"] for t in totals})
    return page(
        "compliance/consent.html",
        422 if errors else 200,
        form=form,
        errors=errors,
        entries=entries,
        summary=summary,
        tables=[
            t
            for t in catalogue.table_choices()
            if (info := catalogue.table(*t["value"].split(".", 1)))
            and info.definition.get("consent")
        ],
        purposes=purposes,
        next_url=url_for("compliance.consent", **params, before=rows[-1]["id"]) if more else None,
        first_url=url_for("compliance.consent", **params) if before else None,
    )


# --- retention -------------------------------------------------------------------------------


def retention_rows(catalogue: Catalogue, results: list[Any]) -> list[dict[str, Any]]:
    out = []
    for result in results:
        info = catalogue.table(result.app, result.table)
        out.append(
            {
                "where": f"{info.app_label} · {info.label}"
                if info
                else f"{result.app}.{result.table}",
                "rule": rule_text(info) if info else result.rule,
                "due": result.due,
                "done": result.done,
                "error": result.error,
            }
        )
    return out


@bp.get(BASE + "/retention")
def retention() -> Response:
    catalogue = Catalogue.load()
    results = run_retention(engine(), dry_run=True)
    without = sorted(
        f"{t.app_label} · {t.label}"
        for t in catalogue.tables.values()
        if not t.definition.get("retention")
    )
    return page(
        "compliance/retention.html",
        rows=retention_rows(catalogue, results),
        without=without,
        due=sum(r.due for r in results),
    )


@bp.post(BASE + "/retention/run")
def retention_run() -> BaseResponse:
    rb, who = engine(), actor()
    results = run_retention(rb, actor=who)  # each record's entry names the administrator
    # One summary entry for the run as a whole.
    with rb.write() as conn:
        write_audit(
            conn,
            who,
            "retention_run",
            entries=[
                (
                    None,
                    {
                        "tables": [
                            {
                                "app": r.app,
                                "table": r.table,
                                "due": r.due,
                                "done": r.done,
                                "error": r.error,
                            }
                            for r in results
                        ],
                    },
                )
            ],
        )
    done = sum(r.done for r in results)
    failed = [r for r in results if r.error]
    catalogue = Catalogue.load()
    for row in retention_rows(catalogue, failed):
        flash(
            _(
                "Retention could not finish on %(table)s: %(reason)s",
                table=row["where"],
                reason=row["error"],
            ),
            "error",
        )
    flash(
        ngettext(
            "Retention ran: %(num)d record was deleted or anonymised.",
            "Retention ran: %(num)d records were deleted or anonymised.",
            done,
        ),
        "success",
    )
    return redirect(url_for("compliance.retention"), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
