"""The ``recordbase`` command line: init, check, install, apps, users, audit, inventory, retention, trash, serve.

Exit status 0 on success, 1 on a user error with a one-line message (or one
line per problem), never a traceback for bad input.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from .actor import Actor
from .config import Settings
from .core import Recordbase, check_all
from .definition import load_definition_file
from .errors import Problem, RecordbaseError

GALLERY = Path(__file__).resolve().parents[2] / "schemas" / "gallery"
CLI_ACTOR = Actor.system("cli")


def _engine() -> Recordbase:
    rb = Recordbase(Settings.from_env())
    rb.init_db()
    return rb


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _print_problems(source: str, problems: list[Problem]) -> None:
    for p in problems:
        label = "warning: " if p.severity == "warning" else ""
        click.echo(f"{source}: {p.pointer or '/'}: {label}{p.message}", err=p.severity == "error")


def _resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".json" or "/" in name_or_path:
        return path
    candidate = GALLERY / f"{name_or_path}.json"
    if not candidate.exists():
        names = ", ".join(sorted(p.stem for p in GALLERY.glob("*.json")))
        _fail(f'"{name_or_path}" is neither a file nor a gallery template (templates: {names})')
    return candidate


class _Group(click.Group):
    """Turns the errors a user can cause (bad input, an unreachable database) into one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RecordbaseError as exc:
            for p in exc.problems:
                click.echo(f"  {p.pointer or '/'}: {p.message}", err=True)
            _fail(exc.message)
        except sa.exc.OperationalError as exc:
            _fail(f"cannot use the database ({_redact(str(exc.orig or exc)).splitlines()[0]})")
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


def _redact(text: str) -> str:
    """Database errors can quote a connection URL; never print its password."""
    return re.sub(r"://([^:/@\s]+):[^@\s]*@", r"://\1:***@", text)


@click.group(cls=_Group)
def main() -> None:
    """Recordbase: low-code record apps that keep personal data lawful."""


@main.command()
@click.option("--admin-email", default="admin@localhost", show_default=True)
@click.option("--admin-password", default=None, help="Generated and printed when left out.")
def init(admin_email: str, admin_password: str | None) -> None:
    """Create or upgrade the database and the first admin (idempotent)."""
    try:
        rb = _engine()
        generated = rb.ensure_admin(CLI_ACTOR, admin_email, admin_password)
    except RecordbaseError as exc:
        _fail(exc.message)
    click.echo(f"database ready: {rb.settings.database_url.split('@')[-1]}")
    if generated:
        click.echo(f"admin account: {admin_email}  password: {generated}")


@main.command()
@click.argument("paths", nargs=-1, required=True)
def check(paths: tuple[str, ...]) -> None:
    """Check definitions; print every problem as FILE: /pointer: message."""
    failed = False
    for name in paths:
        path = _resolve(name)
        data, problems = load_definition_file(path)
        if not problems:
            problems = check_all(data)
        _print_problems(str(path), problems)
        failed |= any(p.severity == "error" for p in problems)
        if not problems:
            click.echo(f"{path}: ok")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("name_or_path")
@click.option("--dry-run", is_flag=True, help="Show the plan and what would fail; change nothing.")
@click.option("--force", is_flag=True, help="Empty values that cannot be converted (recorded in the audit).")
@click.option("--sample-data", is_flag=True, help="Fill a newly installed app with sample records.")
@click.option("--rows", default=25, show_default=True, type=click.IntRange(1, 10_000), help="Sample records per table.")
def install(name_or_path: str, dry_run: bool, force: bool, sample_data: bool, rows: int) -> None:
    """Install an app from a definition file or a gallery template, or apply its changes."""
    path = _resolve(name_or_path)
    data, problems = load_definition_file(path)
    if problems:
        _print_problems(str(path), problems)
        sys.exit(1)
    rb = _engine()
    try:
        result = rb.install(data, CLI_ACTOR, dry_run=dry_run, force=force)
    except RecordbaseError as exc:
        if exc.problems:
            _print_problems(str(path), exc.problems)
        _fail(exc.message)
    for line in result.plan.describe():
        click.echo(f"  {line}")
    if result.problems:
        click.echo(f"{len(result.problems)} value(s) {'would be' if dry_run else 'were'} emptied:")
        _print_problems(str(path), [Problem(p.pointer, p.message, "warning") for p in result.problems])
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    click.echo(f"{data['slug']}: {'installed' if result.applied else 'already up to date'}")
    if sample_data:
        if not any(step.kind == "create_app" for step in result.plan.steps):
            click.echo("sample data: skipped, the app was installed before (sample data only fills a new app)")
            return
        counts = rb.fill_sample_data(CLI_ACTOR, data["slug"], rows=rows)
        click.echo("sample data: " + ", ".join(f"{slug} {n}" for slug, n in counts.items()))


@main.group()
def apps() -> None:
    """List and export installed apps."""


@apps.command("list")
def apps_list() -> None:
    for app in _engine().list_apps():
        label = app["definition"].get("label")
        if isinstance(label, dict):
            label = label.get("en") or next(iter(label.values()))
        click.echo(f"{app['slug']}\tv{app['version']}\t{label}")


@apps.command("export")
@click.argument("app")
def apps_export(app: str) -> None:
    """Print an app's definition (with its stable ids) as JSON."""
    try:
        definition = _engine().export(app)
    except RecordbaseError as exc:
        _fail(exc.message)
    click.echo(json.dumps(definition, ensure_ascii=False, indent=2))


@main.group()
def users() -> None:
    """Platform users and their roles in apps."""


def _attributes(pairs: tuple[str, ...]) -> dict[str, str]:
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            _fail(f"--attr takes key=value, not {pair!r}")
        attributes[key.strip()] = value.strip()
    return attributes


def _app_roles(apps: tuple[str, ...], roles: tuple[str, ...]) -> dict[str, list[str]]:
    """Pair each --app with the --role that follows it (``--app crm --role sales_rep``)."""
    if len(apps) != len(roles):
        _fail("give --app and --role in pairs: --app APP --role ROLE")
    wanted: dict[str, list[str]] = {}
    for app, role in zip(apps, roles, strict=True):
        wanted.setdefault(app, []).append(role)
    return wanted


@users.command("add")
@click.argument("email")
@click.option("--password", default=None, help="Generated and printed when left out.")
@click.option("--name", default=None, help="Display name (default: the part before @).")
@click.option("--admin", is_flag=True, help="A platform administrator.")
@click.option("--attr", "attrs", multiple=True, help="An attribute row rules can use, as key=value (repeatable).")
@click.option("--app", "apps", multiple=True, help="An app to give a role in (pairs with --role).")
@click.option("--role", "roles", multiple=True, help="The role in the preceding --app.")
def users_add(email: str, password: str | None, name: str | None, admin: bool, attrs: tuple[str, ...], apps: tuple[str, ...], roles: tuple[str, ...]) -> None:
    """Add a user, optionally with roles: users add EMAIL [--app APP --role ROLE]..."""
    from . import users as user_ops
    from .users import generate_password

    attributes = _attributes(attrs)
    wanted = _app_roles(apps, roles)
    rb = _engine()
    generated = None if password else generate_password()
    with rb.write() as conn:  # the user and their roles, all or nothing
        user_ops.create_user(conn, CLI_ACTOR, email, password or generated, display_name=name, is_admin=admin, attributes=attributes)
        for app, app_roles in wanted.items():
            user_ops.set_roles(conn, CLI_ACTOR, email, app, app_roles)
    click.echo(f"added {email}" + "".join(f"  {app}: {', '.join(r)}" for app, r in wanted.items()))
    if generated:
        click.echo(f"password: {generated}")


@users.command("set-role")
@click.argument("email")
@click.option("--app", required=True)
@click.option("--role", "roles", multiple=True, help="Repeat for several; none removes every role in the app.")
def users_set_role(email: str, app: str, roles: tuple[str, ...]) -> None:
    """Replace a user's roles in one app."""
    done = _engine().set_roles(CLI_ACTOR, email, app, list(roles))
    click.echo(f"{email} in {app}: {', '.join(done) or 'no role'}")


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Stop a user at once: their next request, session or token is refused."""
    _engine().set_active(CLI_ACTOR, email, False)
    click.echo(f"deactivated {email}")


@users.command("activate")
@click.argument("email")
def users_activate(email: str) -> None:
    _engine().set_active(CLI_ACTOR, email, True)
    click.echo(f"activated {email}")


@users.command("list")
def users_list() -> None:
    """One line per user: email, name, active/admin, roles (app:role)."""
    for user in _engine().list_users():
        flags = ("active" if user["is_active"] else "inactive") + (", admin" if user["is_admin"] else "")
        click.echo(f"{user['email']}\t{user['display_name']}\t{flags}\t{' '.join(user['roles'])}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
def inventory(fmt: str) -> None:
    """Every personal and sensitive field: purpose, encryption, retention, consent, who sees it how."""
    import csv

    rows = _engine().inventory()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    roles = sorted({role for row in rows for role in row["roles"]})
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["app", "table", "field", "type", "sensitivity", "purpose", "encrypted", "retention", "consent", *roles])
    for row in rows:
        consent = "" if not row["consent"] else f'{", ".join(row["consent"]["purposes"] or [])} (v{row["consent"]["version"]})'
        out.writerow([
            row["app"], row["table"], row["field"], row["type"], row["sensitivity"], row["purpose"] or "",
            "yes" if row["encrypted"] else "no", row["retention"] or "", consent, *(row["roles"].get(r, "") for r in roles),
        ])


@main.group()
def audit() -> None:
    """The audit trail: verify its hash chain, show who did what."""


@audit.command("verify")
def audit_verify() -> None:
    """Check every entry against its hash and its predecessor; name the first that does not fit."""
    count, broken = _engine().verify_audit()
    if broken is not None:
        _fail(str(broken))
    click.echo(f"audit chain intact: {count} entries")


@audit.command("show")
@click.option("--app", default=None)
@click.option("--record", type=int, default=None, help="A record id (combine with --app).")
@click.option("--user", default=None, help="The acting user's email.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None, help="UTC date or time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def audit_show(app: str | None, record: int | None, user: str | None, since: Any, limit: int) -> None:
    """One line per entry: when, who, what, which record, and the change."""
    import datetime as dt

    when = since.replace(tzinfo=dt.UTC) if since is not None else None
    for e in _engine().audit_entries(app=app, record=record, user=user, since=when, limit=limit):
        changes = json.dumps(e["changes"], ensure_ascii=False, sort_keys=True)
        click.echo(f"{e['id']}\t{e['at']:%Y-%m-%d %H:%M:%S}\t{e['actor_name']}\t{e['action']}\t{e['record_id'] or ''}\t{changes}")


@main.group()
def retention() -> None:
    """Apply each table's retention rule."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what is due; change nothing.")
def retention_run(dry_run: bool) -> None:
    """Delete or anonymise records past their retention period (idempotent, safe from cron)."""
    from .retention import run_retention

    results = run_retention(_engine(), dry_run=dry_run)
    for result in results:
        click.echo(result.line(dry_run))
    if not results:
        click.echo("no table declares a retention rule")
    if any(r.error for r in results):
        sys.exit(1)


@main.group()
def trash() -> None:
    """Removed fields and tables, deleted records: list, restore, purge."""


@trash.command("list")
@click.argument("app")
def trash_list(app: str) -> None:
    """One line per entry: id, kind, what, when it was deleted and when it expires."""
    rb = _engine()
    schema = rb.app(app)
    tables = {ts.pk: ts.slug for ts in schema.tables.values()}
    for entry in rb.list_trash(app):
        what = (entry["payload"].get("definition") or {}).get("slug") or f"record {entry['record_id']}"
        where = tables.get(entry["table_id"], "") if entry["kind"] != "table" else ""
        label = f"{where}.{what}" if where and entry["kind"] == "field" else (f"{where} {what}" if where else what)
        click.echo(f"{entry['id']}\t{entry['kind']}\t{label}\t{entry['deleted_at']:%Y-%m-%d %H:%M}\texpires {entry['expires_at']:%Y-%m-%d}")


@trash.command("restore")
@click.argument("app")
@click.argument("entry_id", type=int)
def trash_restore(app: str, entry_id: int) -> None:
    """Bring an entry back: a field or table with its data, or a record with its id."""
    result = _engine().restore_from_trash(CLI_ACTOR, app, entry_id)
    if result is not None:
        for line in result.plan.describe():
            click.echo(f"  {line}")
    click.echo(f"restored trash entry {entry_id}")


@trash.command("purge")
def trash_purge() -> None:
    """Erase for good what has been in the trash past RECORDBASE_TRASH_DAYS (safe from cron)."""
    count = _engine().purge_trash(CLI_ACTOR)
    click.echo(f"purged {count} expired trash entr{'y' if count == 1 else 'ies'}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the web app."""
    from recordbase_web import create_app

    app = create_app()
    app.extensions["recordbase"].init_db()
    click.echo(f"serving on http://{host}:{port}")
    app.run(host=host, port=port, threaded=True)


if __name__ == "__main__":
    main()
