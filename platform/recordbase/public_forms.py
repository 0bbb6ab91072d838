"""Public links to form views: anyone with the link may submit a record, nothing more.

A link is made for a view of type ``form`` by a platform administrator or a
user with ``manage`` on the view's table (:func:`create_link`); there is
none until someone makes one, and :func:`revoke_link` ends it for good. The
token (``secrets.token_urlsafe(32)``) is looked up by its SHA-256 and also
kept sealed with the data keys, so a manager can see the link again
(:func:`list_links`) while a stolen database alone does not open it.

:func:`submit` is all a visitor can do: in one transaction it creates one
record holding only the form's fields — any other key is refused — as the
system actor ``public-form:<app>/<view>`` (so the audit trail says which form
wrote it), and records the ticked consents in the consent ledger under the
table's current consent text. A form never reads a record: :func:`find`
returns the form, not data.

**Which fields.** The view's ``fields`` in their order (every field when the
view lists none), except those a public visitor cannot fill without seeing
data: links and users (choosing one would list existing records or people),
attachments, and the values Recordbase sets or computes itself (autonumbers,
stamps, formulas, lookups, rollups).

**Consent.** A form that collects personal or sensitive data needs the table
to declare ``consent`` (:func:`create_link` refuses otherwise). Each declared
purpose is offered, unticked; those in the view's ``consent_required`` must be
ticked — when the view does not say, the table's first purpose is required
as soon as the form has a personal or sensitive field. Each sensitive field
on the form has its own purpose ``sensitive:<field>``, required when that
field is filled in. A missing consent is a ``ValidationError`` naming it
(``/consents/<purpose>``) and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .access import Access
from .actor import Actor
from .audit import write_audit
from .consent import SENSITIVE_PREFIX, consent_t
from .errors import NotFound, PermissionDenied, Problem, ValidationError
from .fields import Field
from .migrate import apps_t
from .models import FormShare, utcnow
from .schema import AppSchema, TableSchema

if TYPE_CHECKING:
    from .core import Recordbase

shares_t: sa.Table = FormShare.__table__  # type: ignore[assignment]
SEAL_CONTEXT = "rb_form_share"
ACTOR_PREFIX = "public-form:"
# Types a public visitor cannot fill in without seeing existing data, or that Recordbase sets.
NOT_PUBLIC = frozenset({"link", "user", "attachment", "autonumber"})
PERSONAL = ("personal", "sensitive")


@dataclass(frozen=True)
class FormLink:
    """A public link as its managers see it; ``token`` is the secret in clear."""

    id: int
    app: str
    view: str
    token: str
    created_by: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class Purpose:
    """A consent the form asks for: a table purpose, or ``sensitive:<field>`` for one field."""

    purpose: str
    required: bool
    field: str | None = None  # the sensitive field this consent is for


@dataclass(frozen=True)
class PublicForm:
    """What a visitor's form is made of: the view, its table, its fields and consents. No data."""

    link_id: int
    app: AppSchema
    view: Mapping[str, Any]
    table: TableSchema
    fields: list[Field]
    purposes: list[Purpose]
    consent: Mapping[str, Any] | None  # the table's declaration: text and version

    @property
    def actor(self) -> Actor:
        return form_actor(self.app.slug, str(self.view["slug"]))


def form_actor(app: str, view: str) -> Actor:
    """The system actor a public form writes as; the audit trail names it."""
    return Actor.system(f"{ACTOR_PREFIX}{app}/{view}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the form ---------------------------------------------------------------------------


def form_view(app: AppSchema, view: str) -> tuple[Mapping[str, Any], TableSchema]:
    """The view definition and its table; ``NotFound`` unless it is a form view of the app."""
    found = next((v for v in app.definition.get("views") or [] if v.get("slug") == view), None)
    if found is None or found.get("table") not in app.tables:
        raise NotFound(f'app "{app.slug}" has no view "{view}"')
    if found.get("type") != "form":
        raise ValidationError(
            f'"{view}" is not a form view',
            [Problem("/view", "only a form view can have a public link")],
        )
    return found, app.tables[found["table"]]


def public_fields(view: Mapping[str, Any], ts: TableSchema) -> list[Field]:
    """The fields a public visitor fills in, in the view's order."""
    slugs = view.get("fields") or list(ts.fields)
    out = []
    for slug in slugs:
        f = ts.fields.get(slug)
        computed = getattr(f.type, "computed", False) if f is not None else False
        if f is not None and not f.type.system and not computed and f.type.name not in NOT_PUBLIC:
            out.append(f)
    return out


def purposes_for(
    view: Mapping[str, Any], ts: TableSchema, fields: Sequence[Field]
) -> list[Purpose]:
    """The consents the form asks for, table purposes first, then one per sensitive field."""
    declaration = ts.definition.get("consent")
    if not declaration:
        return []
    declared = list(declaration.get("purposes") or [])
    personal = any(f.sensitivity in PERSONAL for f in fields)
    required = view.get("consent_required")
    if required is None:
        required = declared[:1] if personal else []
    out = [Purpose(p, p in required) for p in declared]
    for f in fields:
        if f.sensitivity == "sensitive":
            out.append(Purpose(SENSITIVE_PREFIX + f.slug, False, f.slug))  # required when filled in
    return out


def _public_form(app: AppSchema, link_id: int, view_slug: str) -> PublicForm | None:
    try:
        view, ts = form_view(app, view_slug)
    except (NotFound, ValidationError):
        return None  # the view was removed or is no longer a form: the link leads nowhere
    fields = public_fields(view, ts)
    return PublicForm(
        link_id, app, view, ts, fields, purposes_for(view, ts, fields), ts.definition.get("consent")
    )


def find(rb: Recordbase, token: str) -> PublicForm | None:
    """The form a token opens; ``None`` for an unknown or revoked token (or a form that is gone)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    with rb.read() as conn:
        row = conn.execute(
            sa.select(shares_t.c.id, shares_t.c.view, shares_t.c.revoked_at, apps_t.c.slug)
            .join(apps_t, apps_t.c.id == shares_t.c.app_id)
            .where(shares_t.c.token_hash == token_hash(token))
        ).first()
    if row is None or row.revoked_at is not None:
        return None
    try:
        app = rb.app(row.slug)
    except NotFound:
        return None
    return _public_form(app, row.id, row.view)


# --- managing links -------------------------------------------------------------------------


def may_manage(actor: Actor, ts: TableSchema) -> bool:
    """Admins, and users with ``manage`` on the table, may make and revoke its forms' links."""
    access = Access.for_actor(actor, ts)
    return access.full or any(r.can("manage") for r in access.roles)


def _managed_view(
    rb: Recordbase, actor: Actor, app: str, view: str
) -> tuple[AppSchema, Mapping[str, Any], TableSchema]:
    schema = rb.app(app)
    if not (actor.kind == "system" or actor.is_admin) and not actor.roles_in(app):
        raise NotFound(f'no app "{app}" is installed')  # like every other call
    found, ts = form_view(schema, view)
    if not may_manage(actor, ts):
        raise PermissionDenied(
            f'you may not share forms of "{ts.slug}": that needs the manage right'
        )
    return schema, found, ts


def create_link(rb: Recordbase, actor: Actor, app: str, view: str) -> FormLink:
    """A new public link to the form view ``view`` (audited, without the token)."""
    schema, found, ts = _managed_view(rb, actor, app, view)
    fields = public_fields(found, ts)
    if not fields:
        raise ValidationError(
            "this form has no field a visitor could fill in",
            [Problem("/view", "the form has no field a visitor could fill in")],
        )
    if any(f.sensitivity in PERSONAL for f in fields) and not ts.definition.get("consent"):
        raise ValidationError(
            f'the form collects personal data but "{ts.slug}" declares no consent',
            [
                Problem(
                    "/view",
                    f'declare a consent on "{ts.slug}" before sharing a form that collects personal data',
                )
            ],
        )
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with rb.write() as conn:
        link_id = conn.execute(
            sa.insert(shares_t)
            .values(
                app_id=schema.pk,
                view=view,
                token_hash=token_hash(token),
                token=rb.keys.encrypt(token, SEAL_CONTEXT),
                created_by=actor.label,
                created_at=now,
            )
            .returning(shares_t.c.id)
        ).scalar_one()
        write_audit(
            conn,
            actor,
            "form_link_created",
            app_id=schema.pk,
            table_id=ts.pk,
            entries=[(None, {"view": view, "link": link_id})],
        )
    return FormLink(link_id, app, view, token, actor.label, now, None)


def list_links(rb: Recordbase, actor: Actor, app: str, view: str) -> list[FormLink]:
    """The form's links that still work, oldest first, each with its token (managers only)."""
    schema, _, _ = _managed_view(rb, actor, app, view)
    with rb.read() as conn:
        rows = (
            conn.execute(
                sa.select(shares_t)
                .where(
                    shares_t.c.app_id == schema.pk,
                    shares_t.c.view == view,
                    shares_t.c.revoked_at.is_(None),
                )
                .order_by(shares_t.c.id)
            )
            .mappings()
            .all()
        )
    return [
        FormLink(
            r["id"],
            app,
            view,
            rb.keys.decrypt(r["token"], SEAL_CONTEXT),
            r["created_by"],
            r["created_at"],
            None,
        )
        for r in rows
    ]


def revoke_link(rb: Recordbase, actor: Actor, app: str, view: str, link_id: int) -> None:
    """End a link for good (audited); ``NotFound`` for a link that is not this form's or already revoked."""
    schema, _, ts = _managed_view(rb, actor, app, view)
    with rb.write() as conn:
        done = conn.execute(
            sa.update(shares_t)
            .where(
                shares_t.c.id == link_id,
                shares_t.c.app_id == schema.pk,
                shares_t.c.view == view,
                shares_t.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        ).rowcount
        if done != 1:
            raise NotFound(f"no link {link_id} on this form")
        write_audit(
            conn,
            actor,
            "form_link_revoked",
            app_id=schema.pk,
            table_id=ts.pk,
            entries=[(None, {"view": view, "link": link_id})],
        )


# --- submitting ----------------------------------------------------------------------------


def submit(
    rb: Recordbase,
    token: str,
    values: Mapping[str, Any],
    consents: Sequence[str],
    *,
    source: str | None,
) -> int:
    """Create one record from a visitor's values and consents; returns its id.

    ``NotFound`` for an unknown or revoked token. ``ValidationError`` — and
    nothing written — for a key that is not one of the form's fields, a bad
    value, an unknown consent or a required one not given. The record, its
    audit entry (by ``public-form:<app>/<view>``, with ``source``) and the
    consent ledger entries commit together.
    """
    form = find(rb, token)
    if form is None:
        raise NotFound("this form does not exist or is no longer shared")
    allowed = {f.slug for f in form.fields}
    problems = [
        Problem(f"/fields/{key}", f'"{key}" is not a field of this form')
        for key in values
        if key not in allowed
    ]
    offered = {p.purpose: p for p in form.purposes}
    given = list(dict.fromkeys(consents))
    problems += [
        Problem(f"/consents/{p}", f'"{p}" is not a consent this form asks for')
        for p in given
        if p not in offered
    ]
    for p in form.purposes:
        needed = p.required or (p.field is not None and values.get(p.field) not in (None, "", []))
        if needed and p.purpose not in given:
            problems.append(
                Problem(f"/consents/{p.purpose}", "this consent is needed to send the form")
            )
    if problems:
        raise ValidationError(f"the form was not sent: {problems[0]}", problems)
    actor = form.actor
    store = rb._store_for(actor, form.table)
    store._form = form.view["slug"]  # automations with a "form" trigger on this view run too
    with rb.write() as conn:
        record = store._create([dict(values)], "/fields", conn=conn)[0]
        write_audit(
            conn,
            actor,
            "public_form_submit",
            app_id=form.app.pk,
            table_id=form.table.pk,
            entries=[
                (record.id, {"view": form.view["slug"], "link": form.link_id, "source": source})
            ],
        )
        if given and form.consent:
            version = str(form.consent["version"])
            channel = actor.name[:100]
            now = utcnow()
            conn.execute(
                sa.insert(consent_t),
                [
                    {
                        "app_id": form.app.pk,
                        "table_id": form.table.pk,
                        "record_id": record.id,
                        "purpose": p,
                        "version": version,
                        "channel": channel,
                        "given_at": now,
                        "given_by": actor.label[:200],
                    }
                    for p in given
                ],
            )
            write_audit(
                conn,
                actor,
                "consent_given",
                app_id=form.app.pk,
                table_id=form.table.pk,
                entries=[(record.id, {"purposes": given, "version": version, "channel": channel})],
            )
    return record.id
