"""``Recordbase``: the engine's front door — install apps, open record stores.

One instance per process (the web app keeps one; the CLI makes one per
command). It owns the SQLAlchemy engine and a cache of app schemas keyed by
app version, so a definition change is seen by every later call.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from . import fields as field_types
from . import users
from .access import require_builder
from .actor import Actor
from .audit import ChainBreak, audit_table, verify_chain, write_audit
from .config import Settings
from .crypto import KeyRing
from .database import create_search_index, drop_field_storage, drop_table_storage, make_engine
from .definition import check_definition
from .errors import DefinitionError, NotFound, PermissionDenied, PlanRefused, Problem
from .files import FileStore
from .migrate import Migrator, apps_t, physical_ids
from .models import utcnow
from .plan import Plan, assign_ids, diff
from .reads import FastReader
from .records import RecordStore
from .schema import AppSchema, TableSchema, build_app_schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Steps waiting for the next writing transaction (``Recordbase.defer``), per context (thread, request).
_DEFERRED: ContextVar[tuple[tuple[Recordbase, Callable[[sa.Connection], None]], ...]] = ContextVar(
    "recordbase_deferred", default=()
)


@dataclass
class InstallResult:
    plan: Plan
    applied: bool
    problems: list[Problem] = field(default_factory=list)  # values a --force run emptied
    app: AppSchema | None = None


def erasure_text(rule: Mapping[str, Any] | None) -> str:
    """What a data subject's erasure does to a table's records, in words."""
    if not rule or rule.get("action") == "delete":
        return "delete"
    return f'anonymise ({rule.get("reason")})'


def check_all(definition: Any) -> list[Problem]:
    """Every problem with a definition: the meta-schema, cross-checks, then each field type's own.

    Needs no database, so ``recordbase check`` runs it offline.
    """
    problems = check_definition(definition)
    if any(p.severity == "error" for p in problems):
        return problems
    for ti, table in enumerate(definition["tables"]):
        for fi, fdef in enumerate(table["fields"]):
            problems.extend(field_types.get(fdef["type"]).check_definition(fdef, f"/tables/{ti}/fields/{fi}"))
    return problems


class Recordbase:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.dialect = self.engine.dialect.name
        self._schemas: dict[str, AppSchema] = {}
        self.reader = FastReader(self.engine)
        self.keys = KeyRing.load(settings.extra, settings.instance_path)
        self.files = FileStore(settings.attachments_path, self.engine, settings.max_attachment_mb * 1024 * 1024)
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------

    def init_db(self) -> None:
        """Create or upgrade the system tables (Alembic), idempotently."""
        from alembic import command  # only here: alembic takes a fifth of a second to import
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect().execution_options(rb_write=True) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.reader.close()
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A writing transaction (on SQLite it takes the write lock at BEGIN).

        It starts with the steps ``defer`` left pending in this context; if it
        rolls back, they stay pending.
        """
        pending = _DEFERRED.get()
        mine = tuple(step for rb, step in pending if rb is self)
        with self.engine.connect().execution_options(rb_write=True) as conn, conn.begin():
            if not mine:
                yield conn
                return
            _DEFERRED.set(tuple(p for p in pending if p[0] is not self))
            try:
                for step in mine:
                    step(conn)
                yield conn
            except BaseException:
                _DEFERRED.set(_DEFERRED.get() + tuple((self, step) for step in mine))
                raise

    def defer(self, step: Callable[[sa.Connection], None]) -> None:
        """Run ``step`` at the start of this context's next writing transaction (see ``flush_deferred``)."""
        _DEFERRED.set(_DEFERRED.get() + ((self, step),))

    def flush_deferred(self) -> None:
        """Commit what ``defer`` left pending, in a transaction of its own, unless a write has taken it."""
        if any(rb is self for rb, _ in _DEFERRED.get()):
            with self.write():
                pass

    def discard_deferred(self) -> int:
        """Drop what ``defer`` left pending (after a failed request); how many steps."""
        pending = _DEFERRED.get()
        _DEFERRED.set(tuple(p for p in pending if p[0] is not self))
        return len(pending) - len(_DEFERRED.get())

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A reading transaction: one consistent snapshot for a page and its count."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # --- definitions ----------------------------------------------------------------

    def check(self, definition: Any) -> list[Problem]:
        """Every problem with a definition: schema, cross-references and field types."""
        return check_all(definition)

    def _app_row(self, conn: sa.Connection, slug: str) -> Mapping[Any, Any] | None:
        return conn.execute(sa.select(apps_t).where(apps_t.c.slug == slug)).mappings().first()

    def plan(self, definition: Mapping[str, Any]) -> Plan:
        """The plan that installing ``definition`` would carry out (raises ``DefinitionError``)."""
        self._require_valid(definition)
        with self.read() as conn:
            row = self._app_row(conn, definition["slug"])
        installed = row["definition"] if row else None
        return diff(installed, assign_ids(definition, installed), self._searchable_types())

    def _require_valid(self, definition: Any) -> None:
        problems = [p for p in self.check(definition) if p.severity == "error"]
        if problems:
            raise DefinitionError(f"the definition has {len(problems)} problem(s)", problems)

    @staticmethod
    def _searchable_types() -> set[str]:
        return {name for name, t in field_types.all_types().items() if t.searchable}

    def install(self, definition: Mapping[str, Any], actor: Actor, *, dry_run: bool = False, force: bool = False) -> InstallResult:
        """Install an app or apply a changed definition, atomically.

        With ``dry_run`` the whole change is carried out and rolled back, so
        unconvertible values are reported exactly as a real run would.
        """
        self._require_valid(definition)
        with self.engine.connect().execution_options(rb_write=True) as conn:
            transaction = conn.begin()
            try:
                row = self._app_row(conn, definition["slug"])
                installed = row["definition"] if row else None
                plan = diff(installed, assign_ids(definition, installed), self._searchable_types())
                if plan.is_empty:
                    transaction.rollback()
                    return InstallResult(plan, applied=False)
                require_builder(actor, installed, plan.definition)
                old = self._load_schema(conn, row) if row else None
                migrator = Migrator(self, conn, actor, force=force)
                app = migrator.apply(plan, row, old)
                if dry_run:
                    transaction.rollback()
                    return InstallResult(plan, applied=False, problems=migrator.forced)
                transaction.commit()
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
        with self._lock:
            self._schemas.pop(definition["slug"], None)
        return InstallResult(plan, applied=True, problems=migrator.forced, app=app)

    def export(self, slug: str) -> dict[str, Any]:
        """The installed definition, with every stable id written in (a copy the caller may change)."""
        return copy.deepcopy(dict(self.app(slug).definition))

    def list_apps(self) -> list[Mapping[str, Any]]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute(sa.select(apps_t.c.slug, apps_t.c.version, apps_t.c.definition, apps_t.c.updated_at).order_by(apps_t.c.slug)).mappings()]

    def schema_for(self, actor: Actor, app: str) -> dict[str, Any]:
        """The app's definition as ``actor`` may see it: only tables it can use, fields it can read.

        Other roles' permission rules are never shown. An app where the actor
        has no role answers like an app that is not installed.
        """
        from .access import Access

        schema = self.app(app)
        definition = copy.deepcopy(dict(schema.definition))
        if actor.kind == "system" or actor.is_admin:
            return definition
        if not actor.roles_in(app):
            raise NotFound(f'no app "{app}" is installed')
        tables = []
        visible_fields: dict[str, set[str]] = {}
        for tdef, ts in zip(definition["tables"], schema.tables.values(), strict=True):
            access = Access.for_actor(actor, ts)
            usable = [r for r in access.roles if r.operations & {"read", "create"}]
            if not usable:
                continue
            shown = {
                f.slug for f in ts.fields.values()
                if any(r.levels[f.slug] >= (1 if r.can("read") else 2) for r in usable)
            }
            visible_fields[tdef["slug"]] = shown
            mine = {slug: grant for slug, grant in (tdef.get("permissions") or {}).items() if slug in actor.roles_in(app)}
            tables.append({**tdef, "fields": [f for f in tdef["fields"] if f["slug"] in shown], "permissions": mine})
        definition["tables"] = tables
        definition["roles"] = [r for r in definition.get("roles") or [] if r["slug"] in actor.roles_in(app)]
        definition["views"] = [
            {**v, "fields": [f for f in v.get("fields", []) if f in visible_fields[v["table"]]]} if "fields" in v else v
            for v in definition.get("views") or [] if v.get("table") in visible_fields
        ]
        return definition

    def apps_for(self, actor: Actor) -> list[str]:
        """Slugs of the apps an actor may open."""
        slugs = [a["slug"] for a in self.list_apps()]
        if actor.kind == "system" or actor.is_admin:
            return slugs
        return [slug for slug in slugs if actor.roles_in(slug)]

    # --- trash ------------------------------------------------------------------------

    def list_trash(self, app: str) -> list[dict[str, Any]]:
        """What an app's trash holds: removed tables and fields, deleted records."""
        from .trash import trash_table as tt

        schema = self.app(app)
        with self.read() as conn:
            rows = conn.execute(sa.select(tt).where(tt.c.app_id == schema.pk).order_by(tt.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def restore_from_trash(self, actor: Actor, app: str, trash_id: int) -> InstallResult | None:
        """Restore a removed field or table (by re-adding its definition) or a deleted record."""
        entry = next((e for e in self.list_trash(app) if e["id"] == trash_id), None)
        if entry is None:
            raise NotFound(f"no trash entry {trash_id} in app {app!r}")
        schema = self.app(app)
        if entry["kind"] == "record":
            ts = next(t for t in schema.tables.values() if t.pk == entry["table_id"])
            self._store_for(actor, ts).restore(entry["record_id"])
            return None
        if "replaced_by" in entry["payload"]:
            raise PlanRefused("this is the column a type change replaced; its values were converted, not removed")
        definition = self.export(app)
        restored = dict(entry["payload"]["definition"])
        if entry["kind"] == "table":
            if any(t["slug"] == restored["slug"] for t in definition["tables"]):
                raise PlanRefused(f'a table named "{restored["slug"]}" exists; rename it first')
            definition["tables"] = [*definition["tables"], restored]
        else:
            table = next((t for t in definition["tables"] if t["id"] == entry["payload"]["table"]), None)
            if table is None:
                raise PlanRefused("the field's table has been removed; restore the table first")
            if any(f["slug"] == restored["slug"] for f in table["fields"]):
                raise PlanRefused(f'a field named "{restored["slug"]}" exists in "{table["slug"]}"; rename it first')
            table["fields"] = [*table["fields"], restored]
        return self.install(definition, actor)

    def purge_trash(self, actor: Actor, *, now: dt.datetime | None = None) -> int:
        """Delete for good what has been in the trash past its time; returns how many entries."""
        from .migrate import fields_t, tables_t
        from .trash import trash_table as tt

        now = now or utcnow()
        with self.write() as conn:
            entries = conn.execute(sa.select(tt).where(tt.c.expires_at <= now)).mappings().all()
            for entry in entries:
                if entry["kind"] == "field":
                    row = conn.execute(sa.select(fields_t).where(fields_t.c.id == entry["field_id"])).mappings().first()
                    if row is not None and row["removed_at"] is not None:
                        table_name = f"t{entry['table_id']}"
                        drop_field_storage(conn, table_name, int(row["id"]))
                        conn.execute(sa.delete(fields_t).where(fields_t.c.id == row["id"]))
                elif entry["kind"] == "table":
                    row = conn.execute(sa.select(tables_t).where(tables_t.c.id == entry["table_id"])).mappings().first()
                    if row is not None and row["removed_at"] is not None:
                        drop_table_storage(conn, int(row["id"]), [
                            int(pk) for pk in conn.execute(sa.select(fields_t.c.id).where(fields_t.c.table_id == row["id"])).scalars()
                        ])
                        conn.execute(sa.delete(fields_t).where(fields_t.c.table_id == row["id"]))
                        conn.execute(sa.delete(tables_t).where(tables_t.c.id == row["id"]))
                elif entry["kind"] == "record":
                    from .collab import forget_records

                    forget_records(conn, int(entry["table_id"]), [int(entry["record_id"])])
                conn.execute(sa.delete(tt).where(tt.c.id == entry["id"]))
            if entries:
                write_audit(conn, actor, "trash_purge", entries=[(None, {"entries": [e["id"] for e in entries]})])
        return len(entries)

    # --- compliance -------------------------------------------------------------------

    def verify_audit(self) -> tuple[int, ChainBreak | None]:
        """(entries checked, the first break or ``None``)."""
        with self.read() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(audit_table)).scalar_one()
            return count, verify_chain(conn)

    def audit_entries(
        self, *, app: str | None = None, table: str | None = None, field: str | None = None,
        record: int | None = None, user: str | None = None,
        since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 1000,
        action: str | None = None, after_id: int | None = None, before_id: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Audit entries, oldest first, narrowed by app, table, field, record id, user email, action and time.

        Answers "who read or changed field X of record Y between t1 and t2":
        ``field`` keeps the entries whose changes name that field (creates,
        updates, deletes, anonymisations) or that revealed it. Pages go by
        entry id: ``after_id`` / ``before_id`` (with ``newest_first`` for the
        latest first), so a page is one indexed range however deep it is.
        """
        a = audit_table
        stmt = sa.select(a).order_by(a.c.id.desc() if newest_first else a.c.id)
        if action is not None:
            stmt = stmt.where(a.c.action == action)
        if after_id is not None:
            stmt = stmt.where(a.c.id > after_id)
        if before_id is not None:
            stmt = stmt.where(a.c.id < before_id)
        uid = None
        with self.read() as conn:
            if app is not None:
                schema = self.app(app)
                stmt = stmt.where(a.c.app_id == schema.pk)
                if table is not None:
                    if table not in schema.tables:
                        raise NotFound(f'app "{app}" has no table "{table}"')
                    ts = schema.tables[table]
                    stmt = stmt.where(a.c.table_id == ts.pk)
                    if field is not None:
                        if field not in ts.fields:
                            raise NotFound(f'table "{table}" has no field "{field}"')
                        uid = ts.fields[field].uid
            if until is not None:
                stmt = stmt.where(a.c.at < until)
            if record is not None:
                stmt = stmt.where(a.c.record_id == record)
            if user is not None:
                found = users.find_user(conn, user)
                stmt = stmt.where(a.c.actor_id == (found["id"] if found else -1))
            if since is not None:
                stmt = stmt.where(a.c.at >= since)
            if uid is None:
                rows = conn.execute(stmt.limit(limit)).mappings().all()
                return [dict(r) for r in rows]
            named = []
            for r in conn.execute(stmt).mappings():
                changes = r["changes"] or {}
                if changes.get("field") == uid or uid in (changes.get("fields") or {}):
                    named.append(dict(r))
                    if len(named) >= limit:
                        break
            return named

    def inventory(self) -> list[dict[str, Any]]:
        """Every personal and sensitive field of every app: a record of processing activities.

        One row per field: where it lives, its purpose, whether it is encrypted,
        the table's retention and consent, and how each role of the app sees it.
        """
        from .access import field_exposure

        rows = []
        for listed in self.list_apps():
            app = self.app(listed["slug"])
            roles = app.definition.get("roles") or []
            for ts in app.tables.values():
                grants = ts.definition.get("permissions") or {}
                retention = ts.definition.get("retention")
                consent = ts.definition.get("consent")
                for f in ts.fields.values():
                    if f.sensitivity not in ("personal", "sensitive"):
                        continue
                    rows.append({
                        "app": app.slug, "table": ts.slug, "field": f.slug, "field_id": f.uid, "type": f.type.name,
                        "sensitivity": f.sensitivity, "purpose": f.definition.get("purpose"),
                        "encrypted": f.type.encrypted,
                        "retention": None if not retention else f'{retention["action"]} {retention["days"]} days after {retention["field"]}',
                        "consent": None if not consent else {"purposes": consent.get("purposes"), "version": consent.get("version")},
                        "erasure": erasure_text(ts.definition.get("erasure")),
                        "roles": {r["slug"]: field_exposure(r, grants.get(r["slug"]), ts, f) for r in roles},
                    })
        return rows

    # --- users ------------------------------------------------------------------------

    def create_user(self, actor: Actor, email: str, password: str | None, **kwargs: Any) -> int:
        with self.write() as conn:
            return users.create_user(conn, actor, email, password, **kwargs)

    def ensure_admin(self, actor: Actor, email: str, password: str | None) -> str | None:
        """Create the first admin unless one exists; returns the password when one was generated."""
        with self.write() as conn:
            exists = conn.execute(sa.select(users.users_t.c.id).where(users.users_t.c.is_admin.is_(True)).limit(1)).first()
            if exists:
                return None
            generated = None if password else users.generate_password()
            users.create_user(conn, actor, email, password or generated, display_name="Administrator", is_admin=True)
            return generated

    def set_roles(self, actor: Actor, email: str, app: str, roles: list[str]) -> list[str]:
        """Replace a user's roles in an app with ``roles`` (declared in its definition)."""
        with self.write() as conn:
            return users.set_roles(conn, actor, email, app, roles)

    def set_active(self, actor: Actor, email: str, active: bool) -> None:
        with self.write() as conn:
            users.set_active(conn, actor, email, active)

    def change_password(self, actor: Actor, current: str, new: str) -> None:
        """Change the actor's own password once ``current`` is verified (audited, never a password)."""
        if actor.user_id is None:
            raise PermissionDenied("only a user has a password")
        with self.write() as conn:
            user = conn.execute(sa.select(users.users_t.c.email, users.users_t.c.password_hash)
                                .where(users.users_t.c.id == actor.user_id)).mappings().first()
            if user is None or not users.verify_password(user["password_hash"], current):
                raise PermissionDenied("the current password is wrong")
            users.set_password(conn, actor, user["email"], new)

    def authenticate(self, email: str, password: str, *, source: str | None = None) -> Actor | None:
        """Sign-in: the actor for a right email and password of an active user, else ``None`` (audited)."""
        from . import auth

        with self.write() as conn:
            return auth.authenticate(conn, email, password, source=source)

    def create_token(self, actor: Actor, email: str, *, name: str = "token", expires_days: int | None = None,
                     apps: list[str] | None = None) -> tuple[int, str]:
        """A personal access token for ``email``: (its id, the secret, shown only now)."""
        from . import auth

        with self.write() as conn:
            return auth.create_token(conn, actor, email, name=name, expires_days=expires_days, apps=apps)

    def actor_for_token(self, secret: str, *, source: str | None = None, audit_with_next_write: bool = False) -> Actor | None:
        """The acting user of a bearer token as of now (``None`` if it does not work); every use is audited.

        With ``audit_with_next_write`` the ``token_use`` entry goes into this
        context's next writing transaction (``defer``), so a request that
        writes commits once; the caller must then ``flush_deferred`` before it
        answers. A token that no longer works is audited at once.
        """
        from . import auth

        check = auth.check_token(self.reader, secret)
        if check is None:
            return None
        step = partial(auth.record_token_use, check=check, source=source)
        if audit_with_next_write and check.opens is not None:
            self.defer(step)
        else:
            with self.write() as conn:
                step(conn)
        return check.opens

    def revoke_token(self, actor: Actor, token_id: int) -> None:
        from . import auth

        with self.write() as conn:
            auth.revoke_token(conn, actor, token_id)

    def list_tokens(self, email: str | None = None) -> list[dict[str, Any]]:
        from . import auth

        with self.read() as conn:
            return auth.list_tokens(conn, email)

    def actor_for(self, user_id: int) -> Actor | None:
        """The acting user as of now (``None`` when deactivated): call once per request."""
        with self.read() as conn:
            return users.load_actor(conn, user_id)

    def list_users(self) -> list[dict[str, Any]]:
        """Every user with their roles per app."""
        with self.read() as conn:
            people = [dict(r) for r in conn.execute(sa.select(users.users_t).order_by(users.users_t.c.email)).mappings()]
            memberships = conn.execute(
                sa.select(users.members_t.c.user_id, users.apps_t.c.slug, users.members_t.c.role)
                .join(users.apps_t, users.apps_t.c.id == users.members_t.c.app_id)
                .order_by(users.apps_t.c.slug, users.members_t.c.role)
            ).all()
        for person in people:
            person.pop("password_hash", None)
            person["roles"] = [f"{app}:{role}" for uid, app, role in memberships if uid == person["id"]]
        return people

    def user_ids(self) -> list[int]:
        with self.read() as conn:
            return list(conn.execute(sa.select(users.users_t.c.id).where(users.users_t.c.is_active.is_(True)).order_by(users.users_t.c.id)).scalars())

    def fill_sample_data(self, actor: Actor, app: str, rows: int = 25, seed: int = 42) -> dict[str, int]:
        from .sample import fill_sample_data

        return fill_sample_data(self, self.app(app), actor, rows=rows, seed=seed)

    # --- schemas and stores ---------------------------------------------------------

    def _load_schema(self, conn: sa.Connection, row: Mapping[Any, Any]) -> AppSchema:
        table_pks, field_pks = physical_ids(conn, row["id"])
        return build_app_schema(row, table_pks, field_pks, self.settings.default_phone_region, self.keys)

    def app(self, slug: str) -> AppSchema:
        """The schema of an installed app, cached until its version changes."""
        cached = self._schemas.get(slug)
        if cached is not None:
            # Every request asks: one prepared statement on a driver connection, no transaction.
            version_of = self.reader.prepared(
                "app_version", lambda: sa.select(apps_t.c.version).where(apps_t.c.slug == sa.bindparam("slug"))
            )
            with self.reader.connection() as dbapi:
                row = version_of.first(dbapi, {"slug": slug})
            if row is not None and row[0] == cached.version:
                return cached
        with self.read() as conn:
            version = conn.execute(sa.select(apps_t.c.version).where(apps_t.c.slug == slug)).scalar()
            if version is None:
                raise NotFound(f'no app "{slug}" is installed')
            cached = self._schemas.get(slug)
            if cached is not None and cached.version == version:
                return cached
            schema = self._load_schema(conn, self._app_row(conn, slug))  # type: ignore[arg-type]
        with self._lock:
            self._schemas[slug] = schema
        return schema

    def records(self, actor: Actor, app: str, table: str) -> RecordStore:
        """The records of ``app``.``table`` as ``actor`` sees them."""
        schema = self.app(app)
        if table not in schema.tables:
            raise NotFound(f'app "{app}" has no table "{table}"')
        return RecordStore(self, actor, schema.tables[table])

    def _store_for(self, actor: Actor, ts: TableSchema) -> RecordStore:
        return RecordStore(self, actor, ts)

    def rebuild_search(self, conn: sa.Connection, ts: TableSchema, batch: int = 5_000) -> None:
        """Recompute every search document of a table (after its text fields change)."""
        create_search_index(conn, ts.name)
        conn.execute(sa.text(f"DELETE FROM {ts.name}_search"))
        store = RecordStore(self, Actor.system("search"), ts)
        last = 0
        while True:
            rows = conn.execute(sa.select(ts.table).where(ts.table.c.id > last).order_by(ts.table.c.id).limit(batch)).mappings().all()
            if not rows:
                break
            store._write_search(conn, store.search_items(rows), fresh=True)
            last = rows[-1]["id"]

    # --- webhooks (see webhooks.py) -----------------------------------------------------

    def create_webhook(self, actor: Actor, app: str, table: str, url: str, events: list[str] | None = None,
                       owner_email: str | None = None, allow_private: bool = False) -> tuple[int, str]:
        """A webhook on ``app``.``table``: (its id, its signing secret — shown only now).

        Needs an administrator, or ``manage`` and ``read`` on the table (the
        webhook then sends what that user sees). Only an administrator may name
        another owner or allow private addresses. Audited, without the secret.
        """
        from . import webhooks

        return webhooks.create(self, actor, app, table, url, events, owner_email=owner_email, allow_private=allow_private)

    def list_webhooks(self, app: str | None = None) -> list[dict[str, Any]]:
        from . import webhooks

        return webhooks.listing(self, app)

    def delete_webhook(self, actor: Actor, webhook_id: int) -> None:
        from . import webhooks

        webhooks.remove(self, actor, webhook_id)

    def deliveries(self, webhook_id: int, limit: int = 50) -> list[dict[str, Any]]:
        """A webhook's delivery log, newest first (status, attempts, last answer; not the bodies)."""
        from . import webhooks

        return webhooks.delivery_log(self, webhook_id, limit)

    def deliver_webhooks(self, *, limit: int = 100) -> Any:
        """Send the webhook deliveries that are due (``webhooks.deliver_due``); never raises."""
        from . import webhooks

        return webhooks.deliver_due(self, limit=limit)


__all__ = ["Recordbase", "InstallResult", "PlanRefused"]
