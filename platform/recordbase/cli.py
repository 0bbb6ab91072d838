"""The ``recordbase`` command line: init, check, install, apps, users, tokens, inventory, subject, audit, keys, retention, export, import, trash, webhooks, backup, restore, serve.

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
from .automations import DEFAULT_KEEP_DAYS, RUN_STATUSES
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
    if not candidate.exists():  # "after-sales" names the after_sales template (slugs use underscores)
        candidate = GALLERY / f"{name_or_path.replace('-', '_')}.json"
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
    out.writerow(["app", "table", "field", "type", "sensitivity", "purpose", "encrypted", "retention", "consent", "erasure", *roles])
    for row in rows:
        consent = "" if not row["consent"] else f'{", ".join(row["consent"]["purposes"] or [])} (v{row["consent"]["version"]})'
        out.writerow([
            row["app"], row["table"], row["field"], row["type"], row["sensitivity"], _texts(row["purpose"]),
            "yes" if row["encrypted"] else "no", row["retention"] or "", consent, row["erasure"],
            *(row["roles"].get(r, "") for r in roles),
        ])


def _texts(value: Any) -> str:
    """A text of the definition in one cell: a label's languages joined ("To call them | 用于致电")."""
    if isinstance(value, dict):
        return " | ".join(str(v) for v in value.values())
    return "" if value is None else str(value)


@main.group()
def tokens() -> None:
    """Personal access tokens for the REST API."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="token", show_default=True)
@click.option("--expires", "expires_days", type=click.IntRange(1, 3650), default=None, help="Days until it stops working.")
@click.option("--app", "apps", multiple=True, help="Limit the token to this app (repeatable).")
def tokens_create(email: str, name: str, expires_days: int | None, apps: tuple[str, ...]) -> None:
    """Print a new token alone on standard output (it cannot be shown again)."""
    token_id, secret = _engine().create_token(CLI_ACTOR, email, name=name, expires_days=expires_days, apps=list(apps) or None)
    click.echo(secret)
    click.echo(f"token {token_id} for {email.strip().lower()}; keep it secret, it is not shown again", err=True)


@tokens.command("list")
@click.option("--user", "email", default=None, help="Only this user's tokens.")
def tokens_list(email: str | None) -> None:
    """id, user, name, start of the token, apps, expiry, last use, state."""
    for t in _engine().list_tokens(email):
        state = "revoked" if t["revoked_at"] else "active"
        when = lambda v: f"{v:%Y-%m-%d %H:%M}" if v else "-"  # noqa: E731
        apps = ",".join(t["apps"] or []) or "all apps"
        click.echo(f"{t['id']}\t{t['email']}\t{t['name']}\t{t['prefix']}…\t{apps}\t{when(t['expires_at'])}\t{when(t['last_used_at'])}\t{state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    _engine().revoke_token(CLI_ACTOR, token_id)
    click.echo(f"token {token_id} revoked")


@main.group()
def subject() -> None:
    """Data-subject requests: find, export or erase everything about one person."""


def _subject_options(command: Any) -> Any:
    command = click.option("--phone", "phones", multiple=True, help="A phone number (repeatable).")(command)
    return click.option("--email", "emails", multiple=True, help="An email address (repeatable).")(command)


@subject.command("find")
@_subject_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def subject_find(emails: tuple[str, ...], phones: tuple[str, ...], fmt: str) -> None:
    """Every record about the person, across apps (through blind indexes for encrypted fields)."""
    from . import subjects

    hits = subjects.find(_engine(), CLI_ACTOR, emails=emails, phones=phones)
    if fmt == "json":
        click.echo(json.dumps([h.as_dict() for h in hits], ensure_ascii=False, indent=2))
        return
    for h in hits:
        how = f"links to {h.linked_from[0]} {h.linked_from[1]} through {h.matched[0]}" if h.linked_from else "matched " + ", ".join(h.matched)
        click.echo(f"{h.app}\t{h.table}\t{h.record_id}\t{how}{' (in the trash)' if h.in_trash else ''}")
    click.echo(f"{len(hits)} record(s)", err=True)


@subject.command("export")
@_subject_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="A file to write (default: standard output).")
def subject_export(emails: tuple[str, ...], phones: tuple[str, ...], output: Path | None) -> None:
    """The person's records in clear and their consent ledger, as JSON (audited)."""
    from . import subjects

    document = json.dumps(subjects.export(_engine(), CLI_ACTOR, emails=emails, phones=phones), ensure_ascii=False, indent=2)
    if output is None:
        click.echo(document)
    else:
        output.write_text(document + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@subject.command("erase")
@_subject_options
@click.option("--dry-run", is_flag=True, help="Report what would be erased; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def subject_erase(emails: tuple[str, ...], phones: tuple[str, ...], dry_run: bool, yes: bool) -> None:
    """Delete or anonymise the person everywhere: records, trash, search, files, history values."""
    from . import subjects

    rb = _engine()
    if not dry_run and not yes:
        count = len(subjects.find(rb, CLI_ACTOR, emails=emails, phones=phones))
        click.confirm(f"erase {count} record(s) about this person? This cannot be undone", abort=True)
    report = subjects.erase(rb, CLI_ACTOR, emails=emails, phones=phones, dry_run=dry_run)
    verb = "would be " if dry_run else ""
    for h in report.deleted:
        click.echo(f"{verb}deleted\t{h.app}\t{h.table}\t{h.record_id}")
    for h, why in report.anonymised:
        click.echo(f"{verb}anonymised\t{h.app}\t{h.table}\t{h.record_id}\t{why}")
    click.echo(f"{verb}deleted with them through cascading links: {report.cascaded}")
    click.echo(f"{verb}erased from the audit history: {report.history_values} value(s)")
    click.echo(f"{verb}removed files: {report.files_removed}")
    for kept in report.kept:
        click.echo(f"kept: {kept}")


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
@click.option("--table", default=None, help="A table of --app.")
@click.option("--field", default=None, help="Only entries touching this field of --app --table (changes and reveals).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None, help="UTC date or time.")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None, help="UTC date or time (exclusive).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def audit_show(app: str | None, record: int | None, user: str | None, table: str | None, field: str | None,
               since: Any, until: Any, limit: int) -> None:
    """One line per entry: when, who, what, which record, and the change (personal values as [sealed])."""
    import datetime as dt

    from .audit import readable

    if (table or field) and not app:
        _fail("--table and --field need --app")
    if field and not table:
        _fail("--field needs --table")
    utc = {k: v.replace(tzinfo=dt.UTC) if v is not None else None for k, v in (("since", since), ("until", until))}
    entries = _engine().audit_entries(
        app=app, table=table, field=field, record=record, user=user, limit=limit, since=utc["since"], until=utc["until"],
    )
    for e in entries:
        changes = json.dumps(readable(e["changes"]), ensure_ascii=False, sort_keys=True)
        click.echo(f"{e['id']}\t{e['at']:%Y-%m-%d %H:%M:%S}\t{e['actor_name']}\t{e['action']}\t{e['record_id'] or ''}\t{changes}")


@main.group()
def keys() -> None:
    """Data keys of encrypted values: rotate them, see which key seals what."""


@keys.command("rotate")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 1_000_000), help="Records per write transaction.")
@click.option("--no-new-key", is_flag=True, help="Add no key: finish re-encrypting to the newest one (after an interrupted run).")
def keys_rotate(batch: int, no_new_key: bool) -> None:
    """Add a data key and re-encrypt every stored value with it, online, in batches.

    Old keys are kept: the audit trail keeps its values under the keys they were written with.
    """
    from .keys import rotate

    result = rotate(_engine(), batch=batch, new_key=not no_new_key, actor=CLI_ACTOR)
    for line in result.lines():
        click.echo(line)
    if result.failed:
        sys.exit(1)


@keys.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def keys_status(fmt: str) -> None:
    """How many stored values each data key seals, per field and in total."""
    from .keys import status

    report = status(_engine())
    if fmt == "json":
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return

    def counts(by_key: dict[str, int]) -> str:
        return "  ".join(f"key {k}: {n}" for k, n in by_key.items()) or "no values"

    source = report["path"] or "RECORDBASE_DATA_KEYS"
    click.echo(f"data keys {', '.join(map(str, report['key_ids']))} from {source}; key {report['primary']} encrypts")
    for row in report["fields"]:
        click.echo(f"{row['app']}.{row['table']}.{row['field']}\t{counts(row['counts'])}")
    for row in report["trash"]:
        click.echo(f"{row['app']}.{row['table']} (trash)\t{counts(row['counts'])}")
    click.echo(f"total\t{counts(report['totals'])}")
    pending = report["pending"]
    click.echo(
        f"{pending} value(s) under older keys: 'recordbase keys rotate --no-new-key' re-encrypts them to key {report['primary']}"
        if pending else "every value is under the newest key"
    )


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
def automations() -> None:
    """Tables' automations: run the scheduled ones, read the run log."""


@automations.command("run")
def automations_run() -> None:
    """Fire automations whose date has come (once per record and date: idempotent, safe from cron)."""
    from .automations import run_scheduled

    results = run_scheduled(_engine())
    for r in results:
        click.echo(f"{r.app}.{r.table} {r.automation}: {r.fired} fired, {r.failed} failed, {r.stopped} stopped")
    if not results:
        click.echo("no automation has a date trigger")
    if any(r.failed for r in results):
        sys.exit(1)


@automations.command("prune")
@click.option("--days", type=click.IntRange(1), default=DEFAULT_KEEP_DAYS, show_default=True)
def automations_prune(days: int) -> None:
    """Drop runs older than DAYS from the log (a date trigger's stay while its date could fire again)."""
    from .automations import prune_runs

    click.echo(f"pruned {prune_runs(_engine(), days=days)} automation runs")


@automations.command("log")
@click.argument("app")
@click.option("--table", default=None, help="Only this table's automations.")
@click.option("--automation", default=None, help="Only this automation's runs.")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs that ended so.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def automations_log(app: str, table: str | None, automation: str | None, status: str | None, limit: int) -> None:
    """Recent runs, newest first: when, table, automation, record, trigger, status, error."""
    from .automations import run_log

    runs = run_log(_engine(), CLI_ACTOR, app, table=table, automation=automation, status=status, limit=limit)
    for e in runs:
        click.echo(
            f"{e['created_at']:%Y-%m-%d %H:%M:%S}\t{e['table']}\t{e['automation']}\t{e['record_id'] or ''}"
            f"\t{e['trigger']}\t{e['status']}\t{e['error'] or ''}"
        )


def _acting_as(rb: Recordbase, email: str | None) -> Actor:
    """The actor of an export or import: the user with ``email`` as of now, or the CLI's system actor."""
    if email is None:
        return CLI_ACTOR
    from . import users as user_ops

    with rb.read() as conn:
        user = user_ops.require_user(conn, email)
    actor = rb.actor_for(user["id"])
    if actor is None:
        _fail(f"{user['email']} is deactivated")
    assert actor is not None
    return actor


@main.command("export")
@click.argument("app")
@click.argument("table")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "xlsx"]), default="csv", show_default=True)
@click.option("--fields", default=None, help="Comma-separated field slugs (default: every field you may export).")
@click.option("--filter", "filter_json", default=None, help='A filter tree as JSON, e.g. \'{"field": "stage", "op": "eq", "value": "won"}\'.')
@click.option("--sort", default=None, help="Comma-separated sort keys, e.g. -amount,name.")
@click.option("--search", default=None, help="Full-text search terms.")
@click.option("--as", "as_email", default=None, help="Act as this user (default: the system actor).")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False), help="File to write (CSV and JSON go to stdout without it).")
def export_cmd(app: str, table: str, fmt: str, fields: str | None, filter_json: str | None, sort: str | None,
               search: str | None, as_email: str | None, output: str | None) -> None:
    """Export the records of APP TABLE you may export, as CSV, JSON or XLSX (audited)."""
    import os

    if fmt == "xlsx" and output is None:
        _fail("--format xlsx needs --output FILE")
    try:
        filter_tree = None if filter_json is None else json.loads(filter_json)
    except ValueError as exc:
        _fail(f"--filter is not JSON: {exc}")
    rb = _engine()
    store = rb.records(_acting_as(rb, as_email), app, table)
    export = store.export(fmt, fields=fields, filter=filter_tree, sort=sort, search=search)
    for left in export.omitted:
        click.echo(f"left out {left.field}: {left.reason}", err=True)
    if output is None:
        export.write_to(sys.stdout)
        sys.stdout.flush()
        click.echo(f"exported {export.count} record(s)", err=True)
        return
    partial = f"{output}.part"
    try:
        with open(partial, "wb") as out:
            export.write_to(out)
        os.replace(partial, output)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    click.echo(f"exported {export.count} record(s) to {output}")


class _ImportProgress:
    """A progress bar on stderr while an import runs — only when stderr is a terminal.

    Shows the rows read and the rows per second; for a CSV file also how much of
    the file has been read (the position of the binary file under the reader).
    Scripts and pipes get no bar, so their stderr holds the problems alone.
    """

    def __init__(self, handle: Any, size: int | None, *, enabled: bool | None = None) -> None:
        self.handle = handle
        self.size = size
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.progress: Any = None
        self.task: Any = None
        self.started = 0.0

    def __enter__(self) -> _ImportProgress:
        if not self.enabled:
            return self
        import time

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.started = time.perf_counter()
        share = [TaskProgressColumn()] if self.size else []  # an XLSX file's rows are not known up front
        self.progress = Progress(
            TextColumn("importing"), BarColumn(), *share,
            TextColumn("{task.fields[rows]:,} rows read"), TextColumn("{task.fields[rate]:,.0f} rows/s"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("import", total=self.size, rows=0, rate=0.0)
        return self

    def update(self, rows: int) -> None:
        if self.progress is None:
            return
        import time

        elapsed = time.perf_counter() - self.started
        done: int | None = None
        if self.size:
            try:
                done = min(self.handle.tell(), self.size)
            except (OSError, ValueError):
                done = None
        self.progress.update(self.task, completed=done, rows=rows, rate=rows / elapsed if elapsed > 0 else 0.0)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            if self.size and exc[0] is None:
                self.progress.update(self.task, completed=self.size)
            self.progress.stop()


@main.command("import")
@click.argument("app")
@click.argument("table")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None, help="Default: from the file name.")
@click.option("--map", "maps", multiple=True, help='"Column=field_slug" (repeatable); "Column=" ignores a column.')
@click.option("--mode", type=click.Choice(["atomic", "skip-invalid"]), default="atomic", show_default=True)
@click.option("--as", "as_email", default=None, help="Act as this user (default: the system actor).")
def import_cmd(app: str, table: str, file: str, fmt: str | None, maps: tuple[str, ...], mode: str, as_email: str | None) -> None:
    """Create records in APP TABLE from a CSV or XLSX file; print each problem as "row N, column C: message"."""
    mapping: dict[str, str | None] = {}
    for pair in maps:
        column, sep, slug = pair.rpartition("=")
        if not sep or not column.strip():
            _fail(f'--map takes "Column=field", not {pair!r}')
        mapping[column.strip()] = slug.strip() or None
    rb = _engine()
    store = rb.records(_acting_as(rb, as_email), app, table)
    path = Path(file)
    kind = fmt or path.suffix.lower().lstrip(".") or "csv"
    with open(path, "rb") as handle, _ImportProgress(handle, path.stat().st_size if kind == "csv" else None) as progress:
        report = store.import_rows(handle, fmt=kind, mapping=mapping, mode=mode, on_progress=progress.update)
    for problem in report.problems:
        click.echo(str(problem), err=True)
    if report.problem_count > len(report.problems):
        click.echo(f"... and {report.problem_count - len(report.problems)} more problem(s)", err=True)
    for left in report.ignored:
        click.echo(f"ignored column {left.field}: {left.reason}")
    if not report.committed:
        _fail(f"nothing imported: {report.problem_count} problem(s)" + (" (atomic: every row must be valid)" if mode == "atomic" else ""))
    click.echo(f"imported {report.created} record(s)" + (f", skipped {report.skipped} invalid row(s)" if report.skipped else ""))


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


@main.group()
def webhooks() -> None:
    """Webhooks: a signed POST for each create, update and delete of a table's records."""


@webhooks.command("add")
@click.argument("app")
@click.argument("table")
@click.argument("url")
@click.option("--event", "events", multiple=True, type=click.Choice(["create", "update", "delete"]),
              help="Repeatable; default: all three.")
@click.option("--owner", "owner_email", default=None,
              help="Send the records as this user sees them (default: everything, as the system).")
@click.option("--allow-private", is_flag=True, help="Let it reach loopback and private addresses (trusted targets only).")
def webhooks_add(app: str, table: str, url: str, events: tuple[str, ...], owner_email: str | None, allow_private: bool) -> None:
    """Add a webhook; prints its signing secret, which is not shown again."""
    webhook_id, secret = _engine().create_webhook(CLI_ACTOR, app, table, url, list(events) or None,
                                                  owner_email=owner_email, allow_private=allow_private)
    click.echo(secret)
    click.echo(f"webhook {webhook_id} on {app}.{table}; the secret above signs its deliveries and is not shown again", err=True)


@webhooks.command("list")
@click.option("--app", default=None)
def webhooks_list(app: str | None) -> None:
    """id, app.table, URL, events, owner, private addresses allowed, pending and failed deliveries."""
    for w in _engine().list_webhooks(app):
        flags = ("" if w["active"] else "inactive ") + ("private-ok" if w["allow_private"] else "")
        click.echo(f"{w['id']}\t{w['app']}.{w['table']}\t{w['url']}\t{','.join(w['events'])}\t{w['owner'] or 'system'}"
                   f"\t{flags.strip() or '-'}\tpending {w['pending']}\tfailed {w['failed']}")


@webhooks.command("remove")
@click.argument("webhook_id", type=int)
def webhooks_remove(webhook_id: int) -> None:
    """Delete a webhook and its delivery log."""
    _engine().delete_webhook(CLI_ACTOR, webhook_id)
    click.echo(f"webhook {webhook_id} removed")


@webhooks.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def webhooks_deliveries(webhook_id: int, limit: int) -> None:
    """The delivery log, newest first: id, event, record, status, attempts, last answer, next attempt."""
    when = lambda v: f"{v:%Y-%m-%d %H:%M:%S}" if v else "-"  # noqa: E731
    for d in _engine().deliveries(webhook_id, limit):
        answer = d["last_error"] or (str(d["last_status_code"]) if d["last_status_code"] else "-")
        click.echo(f"{d['id']}\t{d['event']}\t{d['record_id']}\t{d['status']}\t{d['attempts']}\t{answer}"
                   f"\t{when(d['delivered_at'] or d['next_attempt_at'])}")


@webhooks.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until interrupted (default: one pass, for cron).")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True, help="Seconds between passes with --loop.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True, help="Deliveries per pass.")
def webhooks_deliver(loop: bool, interval: float, limit: int) -> None:
    """Send the deliveries that are due; retried ones wait 30 s, 1 min, 2 min … (8 attempts)."""
    import time

    from .webhooks import deliver_due

    rb = _engine()
    errors = False
    try:
        while True:
            counts = deliver_due(rb, limit=limit)
            errors = bool(counts.errors)
            for error in counts.errors:
                click.echo(f"error: {error}", err=True)
            if counts.attempted or not loop:
                click.echo(f"delivered {counts.delivered}, to retry {counts.retrying}, failed {counts.failed}")
            if not loop:
                break
            if counts.attempted < limit:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    if errors and not loop:
        sys.exit(1)


@webhooks.command("prune")
@click.option("--days", type=click.IntRange(1, 36_500), default=30, show_default=True)
def webhooks_prune(days: int) -> None:
    """Delete delivered and failed deliveries older than --days from the log (cron: daily)."""
    from .webhooks import prune

    click.echo(f"pruned {prune(_engine(), days=days)} deliveries")


@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(path: Path) -> None:
    """Write a backup of the database to PATH while the app keeps running (keys are not in it)."""
    from .backup import backup

    result = backup(_engine(), path, CLI_ACTOR)
    click.echo(f"wrote {result.path} ({result.size:,} bytes); back the keys up separately")


@main.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore_command(path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH. Stop every server on it first."""
    from .backup import restore

    if not yes:
        click.confirm("replace the whole database with this backup?", abort=True)
    settings = Settings.from_env()
    restore(settings, path)
    _engine()  # upgrades an older backup's system tables
    click.echo(f"restored {path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes (2 or more share rate-limit counters through a file or Redis).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Threads per gunicorn worker.")
@click.option("--access-log", is_flag=True, help="Log every request on standard output (gunicorn).")
@click.option("--no-webhooks", is_flag=True, help="Do not deliver webhooks from this server (run `webhooks deliver --loop` elsewhere).")
@click.option("--webhook-interval", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between webhook delivery passes.")
def serve(host: str, port: int, workers: int, threads: int, access_log: bool, no_webhooks: bool, webhook_interval: float) -> None:
    """Serve the web app with gunicorn, and deliver webhooks from a separate process.

    Production mode at any size: gunicorn worker processes with threads. With
    --workers 2 or more, rate-limit counters are shared between them.
    """
    import os

    from . import serving

    settings = Settings.from_env()
    try:
        storage = serving.shared_ratelimit_storage(os.environ, settings.instance_path, workers)
    except ValueError as exc:
        _fail(str(exc))
    rb = Recordbase(settings)
    rb.init_db()
    rb.dispose()  # the server's processes open their own connections (none may cross gunicorn's fork)
    if storage:
        os.environ[serving.RATELIMIT_VARIABLE] = storage  # read by every worker's app
    where = os.environ.get(serving.RATELIMIT_VARIABLE, "memory://").split("@")[-1]
    click.echo(f"serving on http://{host}:{port} with {workers} worker{'s' if workers > 1 else ''} × {threads} threads; "
               f"rate limits in {where}")
    sender = None if no_webhooks else serving.start_webhook_sender(webhook_interval)
    try:
        serving.serve_with_gunicorn(serving.gunicorn_options(host, port, workers, threads, access_log=access_log))
    finally:
        if sender is not None:
            serving.stop_process(sender)


if __name__ == "__main__":
    main()
