"""Forms: new and edit record pages, form views, and public links to form views.

**Widgets.** :func:`widgets` turns a table's fields into the inputs of a form
— one widget per field type (``templates/forms/_widgets.html``): text,
textarea, email, url, a phone number with its region, numbers with an
``inputmode``, date, datetime in the browser's time zone, a checkbox,
selects, checkboxes for multi selects, linked records the user may read
(labelled through the linked table's own rules), app members for user
fields, and file uploads. :func:`parse` turns ``request.form`` and
``request.files`` back into engine values; the engine validates, and each
problem it names (``/fields/<slug>``) is shown next to its input
(``aria-invalid``, ``aria-describedby``), with what the user typed kept.

**Pages.** ``/apps/<app>/tables/<table>/new`` creates a record with the
fields the user may write when creating (403 without the create right);
``…/records/<id>/edit`` changes one: the record's version travels in the
form, so a change made meanwhile by someone else is shown (who changed what)
instead of being overwritten; a value the user sees masked is never put in
the page — its input stays empty and an empty answer keeps the value — and
fields the user may not write are shown read-only. ``/apps/<app>/forms/<view>``
is a definition view of type ``form``: its fields in its order, with its help
texts, for signed-in users with the create right; those who may manage the
table also make and revoke its public links there.

**Public forms** (blueprint ``public_forms``, no sign-in): ``/f/<token>``
shows the form of a link that works (404 otherwise) with no data in it,
one unticked consent per purpose and one per sensitive field, and a honeypot
input people never see; it goes through ``recordbase.public_forms.submit``.
Submissions are counted per client address with the app's rate-limit
storage (``RECORDBASE_PUBLIC_FORM_LIMIT``, default ``10/minute;100/hour``);
beyond it the page answers 429. Success leads to ``/f/<token>/thanks``.

Every read and write goes through ``rb.records(actor, app, table)`` with the
signed-in user as actor; no value the engine masked or hid reaches a page.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
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
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from recordbase import public_forms
from recordbase.errors import Conflict, NotFound, PermissionDenied, Problem, ValidationError
from recordbase.fields import Field
from recordbase.records import Record, RecordStore
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.wrappers import Response as BaseResponse

from .accounts import blocked_for, count_failure
from .config import config_value
from .i18n import label
from .pages import actor, engine, error_page, page_blueprint, require_login
from .records_pages import EMPTY, TABLE, cells, columns_of, maybe_masked, table_for

bp = page_blueprint(Blueprint("forms", __name__))
bp.before_request(require_login)
public = page_blueprint(Blueprint("public_forms", __name__))

PREFIX = (
    "field-"  # input names: slugs cannot contain "-", so no field collides with csrf_token & co.
)
HONEYPOT = "homepage"  # humans never see it; bots fill it in
LIMIT_SETTING = "RECORDBASE_PUBLIC_FORM_LIMIT"
DEFAULT_LIMIT = "10/minute;100/hour"
LINK_OPTIONS = 200  # linked records offered in a select
NOT_ON_FORMS = frozenset({"autonumber"})
TEXT_INPUTS = {"text": "text", "email": "email", "url": "url"}
NUMBERS = frozenset({"number", "currency", "percent"})


# --- widgets ---------------------------------------------------------------------------


@dataclass
class Widget:
    """One field as a form shows it (see ``templates/forms/_widgets.html``)."""

    slug: str
    label: str
    kind: str  # text, email, url, textarea, phone, number, rating, checkbox, date, datetime,
    #            select, checkboxes, file, readonly
    required: bool = False
    help: str = ""
    value: str = ""  # what the input shows
    selected: set[str] = field(default_factory=set)  # chosen option values
    options: list[tuple[str, str]] = field(default_factory=list)
    multiple: bool = False
    masked: bool = False  # a value is there that this user may not see: never pre-filled
    error: str = ""
    attrs: dict[str, str] = field(default_factory=dict)  # inputmode, accept, min, max, step…
    region: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)  # attachments already there
    suffix: str = ""

    @property
    def name(self) -> str:
        return PREFIX + self.slug


def level(store: RecordStore, operation: str, slug: str) -> int:
    """The best field level (0 hidden, 1 read, 2 write) among the roles granting ``operation``."""
    access = store.access
    if access.full:
        return 2
    return max((r.levels[slug] for r in access.roles if r.can(operation)), default=0)


def writable_type(f: Field) -> bool:
    """Whether values of this field are typed in (not set by Recordbase, not computed)."""
    return not (f.type.system or f.type.name in NOT_ON_FORMS or getattr(f.type, "computed", False))


def form_fields(store: RecordStore, slugs: Iterable[str], operation: str) -> list[Field]:
    """The fields of ``slugs`` that can be typed into and the user may write for ``operation``."""
    out = []
    for slug in slugs:
        f = store.ts.fields.get(slug)
        if f is None or not writable_type(f):
            continue
        if level(store, operation, slug) >= 2:
            out.append(f)
    return out


def user_timezone() -> dt.tzinfo:
    """The zone datetimes are shown and read in: the one the form was shown in, else the browser's.

    The page carries the zone it was rendered in (hidden ``tz``), so a value shown
    and sent back unchanged means the same instant. forms.js keeps the browser's
    zone in the ``rb_tz`` cookie; without it (no JavaScript yet), UTC.
    """
    name = request.form.get("tz") or request.cookies.get("rb_tz") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def zone_name() -> str:
    return str(user_timezone())


@functools.lru_cache(maxsize=8)
def _regions(locale: str) -> list[tuple[str, str]]:
    from babel import Locale

    names = Locale.parse(locale).territories
    listed = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        code = phonenumbers.country_code_for_region(region)
        listed.append((region, f"{names.get(region, region)} (+{code})"))
    return sorted(listed, key=lambda item: item[1])


def phone_regions() -> list[tuple[str, str]]:
    return _regions(str(get_locale() or "en"))


def input_text(f: Field, value: Any, tz: dt.tzinfo) -> str:
    """A stored value as the text its input shows."""
    if value is None:
        return ""
    kind = f.type.name
    if kind == "datetime" and isinstance(value, dt.datetime):
        return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat()
    try:
        return f.type.to_text(f, value)
    except (TypeError, ValueError, AttributeError):
        return str(value)


def chosen(value: Any) -> set[str]:
    if value is None:
        return set()
    return {str(v) for v in value} if isinstance(value, list) else {str(value)}


def link_options(store: RecordStore, f: Field, current: Any) -> list[tuple[str, str]]:
    """Records of the linked table the user may read, by their label (masked where it is masked)."""
    target_slug = f.options.get("table")
    target_ts = next(
        (t for t in store.ts.app.tables.values() if target_slug in (t.slug, t.uid)), None
    )
    if target_ts is None:
        return []
    target = engine().records(store.actor, store.ts.app.slug, target_ts.slug)
    primary = target.ts.primary_field
    access = target.access
    if not (access.full or access.readers):
        return []
    shown_primary = primary is not None and access.visible_somewhere(primary)
    try:
        page = target.query(
            fields=[primary.slug] if shown_primary and primary else None,
            page_size=LINK_OPTIONS,
            with_total=False,
        )
    except (PermissionDenied, NotFound):
        return []
    options = []
    for linked in page.records:
        value = linked.fields.get(primary.slug) if shown_primary and primary else None
        if value is None:
            text = _("Record %(id)s", id=linked.id)
        elif access.clear_everywhere(primary):  # type: ignore[arg-type]
            text = primary.type.to_text(primary, value)  # type: ignore[union-attr]
        else:
            text = str(value)
        options.append((str(linked.id), text))
    listed = {value for value, _text in options}
    # A current link outside the first page (or no longer readable) stays selectable by its label.
    missing = [int(v) for v in chosen(current) if v not in listed]
    if missing:
        holder = Record(
            id=0,
            fields={f.slug: missing},
            version=0,
            created_at=dt.datetime.now(dt.UTC),
            updated_at=dt.datetime.now(dt.UTC),
        )
        labels = store.link_labels([holder], [f.slug]).get(f.slug, {})
        for rid in missing:
            options.append((str(rid), labels.get(rid) or _("Record %(id)s", id=rid)))
    return options


def member_options(app: str, current: Any) -> list[tuple[str, str]]:
    """The app's active members (name only), for user fields."""
    prefix = app + ":"
    people = [
        (str(u["id"]), u["display_name"] or _("User %(id)s", id=u["id"]))
        for u in engine().list_users()
        if u["is_active"] and any(role.startswith(prefix) for role in u["roles"])
    ]
    listed = {value for value, _text in people}
    people += [(v, _("User %(id)s", id=v)) for v in sorted(chosen(current)) if v not in listed]
    return people


def widget_for(
    store: RecordStore,
    f: Field,
    *,
    value: Any = None,
    masked: bool = False,
    help_text: Any = None,
    public: bool = False,
) -> Widget:
    """The widget of one writable field, showing ``value`` (never a masked one)."""
    kind = f.type.name
    tz = user_timezone()
    w = Widget(
        slug=f.slug,
        label=label(f.label) or f.slug,
        kind=TEXT_INPUTS.get(kind, kind),
        required=f.required,
        help=label(help_text if help_text is not None else f.definition.get("help")),
        masked=masked,
    )
    if masked:
        value = None
    options = f.options
    if kind in ("long_text", "address"):
        w.kind = "textarea"
    elif kind == "phone":
        w.kind = "phone"
        w.region = str(options.get("region") or "CN")
        w.options = phone_regions()
    elif kind in NUMBERS:
        w.kind = "number"
        whole = int(options.get("scale", 2 if kind != "number" else 0)) == 0
        non_negative = options.get("min") is not None and float(options["min"]) >= 0
        w.attrs["inputmode"] = "numeric" if whole and non_negative else "decimal"
        w.suffix = str(options.get("currency") or "") if kind == "currency" else ""
        if kind == "percent":
            w.suffix = "%"
    elif kind == "rating":
        w.kind = "select"
        w.options = [(str(n), str(n)) for n in range(int(options.get("max", 5)) + 1)]
    elif kind == "boolean":
        w.kind = "checkbox" if not masked else "select"
        if masked:
            w.options = [("true", _("Yes")), ("false", _("No"))]
    elif kind == "single_select":
        w.kind = "select"
        w.options = [
            (c["id"], label(c.get("label")) or c["id"]) for c in options.get("choices") or []
        ]
    elif kind == "multi_select":
        w.kind = "checkboxes"
        w.multiple = True
        w.options = [
            (c["id"], label(c.get("label")) or c["id"]) for c in options.get("choices") or []
        ]
    elif kind in ("link", "user"):
        w.kind = "select"
        w.multiple = bool(options.get("many"))
        if not public:
            w.options = (
                member_options(store.ts.app.slug, value)
                if kind == "user"
                else link_options(store, f, value)
            )
    elif kind == "attachment":
        w.kind = "file"
        w.multiple = options.get("max_files") != 1
        if options.get("types"):
            w.attrs["accept"] = ",".join(options["types"])
        w.files = [{"index": i, "name": item.get("name")} for i, item in enumerate(value or [])]
    if kind in ("boolean",) and not masked:
        w.value = "true" if value else ""
    elif kind in ("single_select", "multi_select", "link", "user", "rating") or (
        kind == "boolean" and masked
    ):
        w.selected = chosen(value)
    elif kind != "attachment":
        w.value = input_text(f, value, tz)
    return w


def keep_input(w: Widget, form: MultiDict[str, str]) -> None:
    """Show what the user typed, after a refused submission."""
    if w.kind in ("file", "readonly"):
        return
    if w.kind == "checkbox":
        w.value = "true" if form.get(w.name) else ""
    elif w.kind in ("select", "checkboxes"):
        w.selected = set(form.getlist(w.name)) - {""}
    else:
        w.value = form.get(w.name, "")
    if w.kind == "phone":
        w.region = form.get(w.name + "-region") or w.region


# --- parsing -----------------------------------------------------------------------------


def parse(
    fields: Sequence[Field],
    form: MultiDict[str, str],
    files: MultiDict[str, FileStorage],
    *,
    current: Record | None = None,
    masked: Iterable[str] = (),
) -> dict[str, Any]:
    """The engine values of a submitted form, one per field in ``fields``.

    When editing (``current`` given), fields left as they were are not sent,
    and an empty answer for a masked field keeps its value.
    """
    tz = user_timezone()
    hidden = set(masked)
    values: dict[str, Any] = {}
    for f in fields:
        name = PREFIX + f.slug
        kind = f.type.name
        before = current.fields.get(f.slug) if current is not None else None
        if kind == "attachment":
            value = _files(f, form, files, before if f.slug not in hidden else None)
            if value is _UNCHANGED:
                continue
        elif kind in ("multi_select",) or (kind in ("link", "user") and f.options.get("many")):
            value = [v for v in form.getlist(name) if v] or None
        elif kind == "boolean" and f.slug not in hidden:
            value = bool(form.get(name))
            if current is not None and before is None and not value:
                continue  # unticked and never answered: stays unanswered
        else:
            text = form.get(name, "")
            value = text if text.strip() else None
            if value is not None and kind == "phone":
                value = _phone(value, form.get(name + "-region") or "")
            elif value is not None and kind == "datetime":
                value = _local_datetime(value, tz)
        if f.slug in hidden and value in (None, []):
            continue  # an empty answer keeps a value the user cannot see
        if current is not None and f.slug not in hidden and _same(f, value, before):
            continue
        values[f.slug] = value
    return values


_UNCHANGED = object()


def _same(f: Field, value: Any, before: Any) -> bool:
    try:
        return bool(f.type.parse(f, value) == before)
    except (ValueError, TypeError):
        return False


def _phone(text: str, region: str) -> str:
    """A number typed without ``+`` read in the chosen region, as E.164; anything else as typed."""
    text = text.strip()
    if text.startswith("+") or region not in phonenumbers.SUPPORTED_REGIONS:
        return text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_valid_number(number):
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _local_datetime(text: str, tz: dt.tzinfo) -> str:
    """``2026-05-01T09:30`` in the browser's time zone, as ISO 8601 with its offset."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return text  # the engine says what is wrong with it
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.isoformat()


def _files(
    f: Field, form: MultiDict[str, str], files: MultiDict[str, FileStorage], before: Any
) -> Any:
    """Kept attachments plus new uploads (stored by content); ``_UNCHANGED`` when nothing changed."""
    name = PREFIX + f.slug
    kept_indexes = {int(i) for i in form.getlist(name + "-keep") if i.isdigit()}
    kept = [item for i, item in enumerate(before or []) if i in kept_indexes]
    uploads = [u for u in files.getlist(name) if u and u.filename]
    if not uploads and len(kept) == len(before or []):
        return _UNCHANGED
    try:
        stored = [
            engine().files.put(
                u.stream, u.filename or "file", u.mimetype or "application/octet-stream"
            )
            for u in uploads
        ]
    except ValidationError as refused:  # too large for this installation: name the field
        reason = refused.problems[0].message if refused.problems else refused.message
        raise ValidationError(refused.message, [Problem(f"/fields/{f.slug}", reason)]) from None
    return (kept + stored) or None


def field_errors(error: ValidationError | PermissionDenied) -> tuple[dict[str, str], list[str]]:
    """Messages per field slug (``/fields/<slug>``), and the others."""
    per_field: dict[str, str] = {}
    general: list[str] = []
    for problem in error.problems or [Problem("", error.message)]:
        parts = problem.pointer.split("/")
        if len(parts) >= 3 and parts[1] == "fields":
            per_field.setdefault(parts[2], field_message(parts[2], problem.message, error))
        elif len(parts) >= 3 and parts[1] == "consents":
            per_field.setdefault(
                "consent:" + "/".join(parts[2:]), _("Tick this box to send the form.")
            )
        else:
            general.append(problem.message)
    return per_field, general


def field_message(slug: str, message: str, error: ValidationError | PermissionDenied) -> str:
    if isinstance(error, PermissionDenied):
        return _("You may not change this field.")
    if message.endswith(" is required"):
        return _("This field is required.")
    if "must be unique" in message:
        return _("Another record already has this value.")
    if "is not a field of this form" in message:
        return _("This field is not on this form.")
    prefix = f'"{slug}" '
    text = message[len(prefix) :] if message.startswith(prefix) else message
    return _("Not valid: %(reason)s", reason=text)


def show_errors(widgets: list[Widget], errors: Mapping[str, str]) -> None:
    for w in widgets:
        w.error = errors.get(w.slug, "")


# --- context shared by the pages ---------------------------------------------------------


def app_context(definition: Mapping[str, Any], table_def: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "app": {
            "slug": definition["slug"],
            "label": label(definition.get("label")) or definition["slug"],
        },
        "table": {
            "slug": table_def["slug"],
            "label": label(table_def.get("label")) or table_def["slug"],
        },
    }


def render(template: str, status: int = 200, **context: Any) -> Response:
    # The zone the page's datetimes are shown in; a first GET without the cookie is redone by
    # forms.js in the browser's zone (never a POST's answer).
    context.setdefault("zone", zone_name())
    context.setdefault("zone_reload", request.method == "GET")
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def after_create(
    app: str, table: str, store: RecordStore, record_id: int, back: str
) -> BaseResponse:
    """To the new record's page when the user may read it, else back to the form, with a notice."""
    try:
        store.get(record_id)
    except (NotFound, PermissionDenied):
        flash(_("The record has been saved."), "success")
        return redirect(back, 303)
    flash(_("The record has been created."), "success")
    return redirect(
        url_for("record_page.record_page", app=app, table=table, record_id=record_id), 303
    )


def create_page(
    *,
    definition: Mapping[str, Any],
    table_def: Mapping[str, Any],
    store: RecordStore,
    fields: list[Field],
    template_context: dict[str, Any],
    help_texts: Mapping[str, Any],
    back: str,
) -> BaseResponse:
    """GET shows the empty form (defaults filled in); POST creates and redirects, or shows the problems."""
    app, table = definition["slug"], table_def["slug"]

    def build() -> list[Widget]:
        out = []
        for f in fields:
            default = f.default
            value = None
            if default is not None and f.type.name not in ("link", "user", "attachment"):
                try:
                    value = f.type.parse(f, f.type.resolve_default(default))
                except ValueError:
                    value = None
            out.append(widget_for(store, f, value=value, help_text=help_texts.get(f.slug)))
        return out

    context = {**app_context(definition, table_def), **template_context, "general_errors": []}
    if request.method == "GET":
        return render("forms/record_form.html", widgets=build(), **context)
    try:
        values = parse(fields, request.form, request.files)
        record = store.create(values)
    except (ValidationError, PermissionDenied) as refused:
        per_field, general = field_errors(refused)
        widgets = build()
        for w in widgets:
            keep_input(w, request.form)
        show_errors(widgets, per_field)
        context["general_errors"] = general
        status = 403 if isinstance(refused, PermissionDenied) else 422
        return render("forms/record_form.html", status=status, widgets=widgets, **context)
    return after_create(app, table, store, record.id, back)


# --- new and edit -------------------------------------------------------------------------


@bp.route(TABLE + "/new", methods=["GET", "POST"])
def new_record(app: str, table: str) -> BaseResponse:
    definition, table_def, store = table_for(app, table)
    store.access.require("create")  # PermissionDenied → 403 page
    slugs = [c["slug"] for c in columns_of(table_def, store)]
    here = url_for("forms.new_record", app=app, table=table)
    return create_page(
        definition=definition,
        table_def=table_def,
        store=store,
        fields=form_fields(store, slugs, "create"),
        template_context={
            "title": _("New record"),
            "action": here,
            "submit": _("Create"),
            "mode": "new",
        },
        help_texts={},
        back=here,
    )


@bp.route(TABLE + "/records/<int:record_id>/edit", methods=["GET", "POST"])
def edit_record(app: str, table: str, record_id: int) -> BaseResponse:
    definition, table_def, store = table_for(app, table)
    store.access.require("update")
    record = store.get(record_id)  # outside the user's rows: the same 404 as a missing record
    columns = columns_of(table_def, store)
    writable = {f.slug for f in form_fields(store, [c["slug"] for c in columns], "update")}
    masked = {
        c["slug"]
        for c in columns
        if c["slug"] in writable
        and (
            c["slug"] not in record.fields
            or (record.fields[c["slug"]] is not None and maybe_masked(store, c))
        )
    }
    fields = [store.ts.fields[c["slug"]] for c in columns if c["slug"] in writable]
    status, conflict, errors, general = 200, [], {}, []
    version = record.version
    loaded_at = record.updated_at
    if request.method == "POST":
        try:
            sent_version = int(request.form.get("version", ""))
        except ValueError:
            abort(400)
        values: dict[str, Any] = {}
        try:
            values = parse(fields, request.form, request.files, current=record, masked=masked)
            if values:
                store.update(record_id, values, version=sent_version)
        except Conflict as stale:
            status = 409
            current = stale.current if isinstance(stale.current, Record) else store.get(record_id)
            version = current.version
            conflict = changes_since(store, record_id, request.form.get("loaded_at", ""), columns)
            loaded_at = current.updated_at
        except (ValidationError, PermissionDenied) as refused:
            status = 403 if isinstance(refused, PermissionDenied) else 422
            errors, general = field_errors(refused)
            version = sent_version
            loaded_at = parse_instant(request.form.get("loaded_at", "")) or loaded_at
        else:
            flash(
                _("Your changes have been saved.") if values else _("Nothing was changed."),
                "success",
            )
            return redirect(
                url_for("record_page.record_page", app=app, table=table, record_id=record_id), 303
            )
    widgets = []
    links = store.link_labels([record])
    readonly = {c["slug"]: c for c in cells(record, columns, store, links)}
    for column in columns:
        slug = column["slug"]
        f = store.ts.fields[slug]
        if slug in writable:
            w = widget_for(store, f, value=record.fields.get(slug), masked=slug in masked)
            if request.method == "POST":
                keep_input(w, request.form)
        else:
            shown_cell = readonly[slug]
            if not shown_cell["present"]:
                continue
            w = Widget(
                slug=slug,
                label=column["label"],
                kind="readonly",
                value=shown_cell["text"],
                masked=shown_cell["masked"],
            )
        widgets.append(w)
    show_errors(widgets, errors)
    here = url_for("forms.edit_record", app=app, table=table, record_id=record_id)
    return render(
        "forms/record_form.html",
        status=status,
        widgets=widgets,
        title=_("Edit record %(id)s", id=record_id),
        action=here,
        submit=_("Save"),
        mode="edit",
        record=record,
        version=version,
        loaded_at=loaded_at.isoformat(),
        conflict=conflict,
        general_errors=general,
        **app_context(definition, table_def),
    )


def parse_instant(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def changes_since(
    store: RecordStore, record_id: int, loaded_at: str, columns: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What others changed after the user opened the form, as the user may see it (history)."""
    since = parse_instant(loaded_at)
    labels = {c["slug"]: c["label"] for c in columns}
    out = []
    for change in store.history(record_id):
        if since is not None and change.at <= since:
            continue
        if change.action not in ("update", "anonymise", "consent_withdrawn"):
            continue
        out.append(
            {
                "at": format_datetime(change.at, "medium"),
                "actor": change.actor,
                "fields": [
                    {
                        "label": labels.get(slug, slug),
                        "before": EMPTY if pair[0] is None else history_value(pair[0]),
                        "after": EMPTY if pair[1] is None else history_value(pair[1]),
                    }
                    for slug, pair in change.fields.items()
                ],
            }
        )
    return out


def history_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


# --- form views ------------------------------------------------------------------------------


def view_for(
    app: str, view: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], RecordStore]:
    """The form view as the user may see it, its app and table definitions and the table's store."""
    rb, who = engine(), actor()
    definition = rb.schema_for(who, app)  # no role in the app: 404
    found = next((v for v in definition.get("views") or [] if v.get("slug") == view), None)
    if found is None or found.get("type") != "form":
        abort(404)
    table_def = next((t for t in definition["tables"] if t["slug"] == found["table"]), None)
    if table_def is None:
        abort(404)
    return definition, found, table_def, rb.records(who, app, found["table"])


def links_context(app: str, view: str, store: RecordStore) -> dict[str, Any]:
    if not public_forms.may_manage(actor(), store.ts):
        return {"may_share": False, "links": []}
    links = public_forms.list_links(engine(), actor(), app, view)
    return {
        "may_share": True,
        "links": [
            {
                "id": link.id,
                "url": url_for("public_forms.form", token=link.token, _external=True),
                "created_by": link.created_by,
                "created_at": format_datetime(link.created_at, "medium"),
            }
            for link in links
        ],
    }


@bp.route("/apps/<app>/forms/<view>", methods=["GET", "POST"])
def form_view(app: str, view: str) -> BaseResponse:
    definition, view_def, table_def, store = view_for(app, view)
    may_share = public_forms.may_manage(actor(), store.ts)
    try:
        store.access.require("create")
    except PermissionDenied:
        if not may_share or request.method == "POST":
            raise
    slugs = view_def.get("fields") or [c["slug"] for c in columns_of(table_def, store)]
    here = url_for("forms.form_view", app=app, view=view)
    return create_page(
        definition=definition,
        table_def=table_def,
        store=store,
        fields=form_fields(store, slugs, "create"),
        template_context={
            "title": label(view_def.get("label")) or view,
            "intro": label(view_def.get("description")),
            "action": here,
            "submit": label(view_def.get("submit_label")) or _("Send"),
            "mode": "view",
            "view": {"slug": view},
            **links_context(app, view, store),
        },
        help_texts=view_def.get("help") or {},
        back=here,
    )


@bp.post("/apps/<app>/forms/<view>/links")
def create_link(app: str, view: str) -> BaseResponse:
    view_for(app, view)
    try:
        public_forms.create_link(engine(), actor(), app, view)
    except ValidationError as refused:
        message = refused.problems[0].message if refused.problems else refused.message
        flash(_("The link was not made: %(reason)s", reason=message), "error")
    else:
        flash(_("A public link has been made. Anyone with it can send this form."), "success")
    return redirect(url_for("forms.form_view", app=app, view=view), 303)


@bp.post("/apps/<app>/forms/<view>/links/<int:link_id>/revoke")
def revoke_link(app: str, view: str, link_id: int) -> BaseResponse:
    view_for(app, view)
    public_forms.revoke_link(engine(), actor(), app, view, link_id)
    flash(_("The link has been revoked; it no longer opens the form."), "success")
    return redirect(url_for("forms.form_view", app=app, view=view), 303)


# --- public forms ------------------------------------------------------------------------------


def public_widgets(form: public_forms.PublicForm) -> list[Widget]:
    store = engine().records(form.actor, form.app.slug, form.table.slug)
    help_texts = form.view.get("help") or {}
    return [
        widget_for(store, f, help_text=help_texts.get(f.slug), public=True) for f in form.fields
    ]


def consent_items(form: public_forms.PublicForm, ticked: Iterable[str]) -> list[dict[str, Any]]:
    fields = {f.slug: f for f in form.fields}
    labels = form.view.get("consent_labels") or {}
    items = []
    for p in form.purposes:
        if p.purpose in labels:
            text = label(labels[p.purpose])
        elif p.field is not None:
            text = _(
                "I agree that my %(field)s, a sensitive detail, is processed.",
                field=label(fields[p.field].label) or p.field,
            )
        else:
            text = _("I agree to: %(purpose)s", purpose=p.purpose.replace("_", " "))
        items.append(
            {
                "purpose": p.purpose,
                "text": text,
                "required": p.required,
                "checked": p.purpose in ticked,
                "id": "consent-" + p.purpose.replace(":", "-"),
            }
        )
    return items


def _public_or_404(token: str) -> public_forms.PublicForm:
    form = public_forms.find(engine(), token)
    if form is None:
        abort(404)
    return form


def _public_context(form: public_forms.PublicForm, token: str) -> dict[str, Any]:
    consent = form.consent or {}
    return {
        "title": label(form.view.get("label")) or form.view["slug"],
        "intro": label(form.view.get("description")),
        "submit": label(form.view.get("submit_label")) or _("Send"),
        "consent_text": label(consent.get("text")),
        "action": url_for("public_forms.form", token=token),
    }


@public.route("/f/<token>", methods=["GET", "POST"])
def form(token: str) -> BaseResponse:
    found = _public_or_404(token)
    context = _public_context(found, token)
    if request.method == "GET":
        return render(
            "forms/public_form.html",
            widgets=public_widgets(found),
            consents=consent_items(found, ()),
            general_errors=[],
            **context,
        )
    keys = [(LIMIT_SETTING, "public-form-ip", request.remote_addr or "unknown")]
    wait = blocked_for(keys)
    if wait is not None:
        minutes = max(1, math.ceil(wait / 60))
        response = error_page(
            429,
            _(
                "Too many forms sent from your address. Try again in %(minutes)s minute(s).",
                minutes=minutes,
            ),
        )
        response.headers["Retry-After"] = str(wait)
        return response
    count_failure(keys)  # every submission counts, sent or refused
    thanks = url_for("public_forms.thanks", token=token)
    if request.form.get(HONEYPOT):
        return redirect(thanks, 303)  # a bot: it sees success, nothing is stored
    values = parse(found.fields, request.form, MultiDict())
    ticked = [p for p in request.form.getlist("consent") if p]
    try:
        public_forms.submit(engine(), token, values, ticked, source=request.remote_addr)
    except ValidationError as refused:
        per_field, general = field_errors(refused)
        widgets = public_widgets(found)
        for w in widgets:
            keep_input(w, request.form)
        show_errors(widgets, per_field)
        consents = consent_items(found, ticked)
        for item in consents:
            item["error"] = per_field.get("consent:" + item["purpose"], "")
        return render(
            "forms/public_form.html",
            status=422,
            widgets=widgets,
            consents=consents,
            general_errors=general,
            **context,
        )
    return redirect(thanks, 303)


@public.get("/f/<token>/thanks")
def thanks(token: str) -> BaseResponse:
    found = _public_or_404(token)
    message = label(found.view.get("thanks")) or _("Thank you. Your answers have been sent.")
    return render(
        "forms/thanks.html",
        title=label(found.view.get("label")) or found.view["slug"],
        message=message,
    )


@public.after_request
def _not_indexed(response: BaseResponse) -> BaseResponse:
    response.headers["X-Robots-Tag"] = "noindex, nofollow"  # a link shared with some, not the web
    return response


def init_app(app: Flask) -> None:
    # Resolved once: the environment, else our default; a test_config value wins over both.
    app.config.setdefault(LIMIT_SETTING, config_value(app, LIMIT_SETTING, DEFAULT_LIMIT))
    app.register_blueprint(bp)
    app.register_blueprint(public)
