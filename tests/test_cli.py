"""The ``recordbase`` command line, end to end: real subprocesses on a temporary instance."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import argon2
import pytest
import sqlalchemy as sa
from conftest import Cli, clean_env, run_cli
from recordbase import users
from recordbase.actor import Actor
from recordbase.config import Settings, normalise_database_url
from recordbase.core import Recordbase
from recordbase.models import Audit

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "schemas" / "gallery"
CRM = GALLERY / "crm.json"
CRM_TABLES = ("companies", "contacts", "deals", "leads", "activities")
ACTOR = Actor.system("test")
NOT_A_NUMBER = "is not a number (expected digits like 1234.50)"
BROKEN = {
    "slug": "Bad",
    "label": "Broken",
    "tables": [
        {
            "slug": "items",
            "label": "Items",
            "fields": [{"slug": "name", "label": "Name", "type": "colour"}],
        }
    ],
}
BROKEN_LINES = [
    '/slug: "Bad" is not a slug (a lowercase letter, then lowercase letters, digits or underscores; '
    "at most 63 characters)",
    '/tables/0/fields/0/type: unknown field type "colour"; expected one of: text, long_text, number, currency, '
    "percent, boolean, date, datetime, single_select, multi_select, email, phone, url, address, link, user, "
    "attachment, autonumber, rating, created_at, created_by, updated_at, updated_by, formula, lookup, rollup",
]


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def count(rb: Recordbase, table: str) -> int:
    return rb.records(ACTOR, "crm", table).count()


def database_shown(database_url: str) -> str:
    return normalise_database_url(database_url).split("@")[-1]


# --- init -----------------------------------------------------------------------------


def test_init_prints_a_generated_password_the_first_time_only(
    cli: Cli, instance: Path, database_url: str
) -> None:
    first = cli("init")
    assert first.code == 0 and first.err == []
    assert first.out[0] == f"database ready: {database_shown(database_url)}"
    match = re.fullmatch(r"admin account: admin@localhost  password: (\S{12,})", first.out[1])
    assert match and len(first.out) == 2

    second = cli("init")
    assert (second.code, second.out, second.err) == (
        0,
        [f"database ready: {database_shown(database_url)}"],
        [],
    )

    rb = Recordbase(
        Settings.from_env(environ={}, instance_path=instance, database_url=database_url)
    )
    try:
        with rb.read() as conn:
            admin = users.find_user(conn, "admin@localhost")
        assert admin is not None and users.verify_password(admin["password_hash"], match.group(1))
        # Hashed by the command, outside the tests' cheap hashing: with the product's argon2 parameters.
        assert argon2.extract_parameters(admin["password_hash"]) == users.PASSWORD_HASHING
    finally:
        rb.dispose()


def test_init_with_a_password_prints_none(cli: Cli, instance: Path, database_url: str) -> None:
    result = cli("init", "--admin-email", "boss@example.com", "--admin-password", "s3cret-pass")
    assert (result.code, result.out, result.err) == (
        0,
        [f"database ready: {database_shown(database_url)}"],
        [],
    )
    rb = Recordbase(
        Settings.from_env(environ={}, instance_path=instance, database_url=database_url)
    )
    try:
        with rb.read() as conn:
            admin = users.find_user(conn, "boss@example.com")
        assert admin is not None and admin["is_admin"]
        assert users.verify_password(admin["password_hash"], "s3cret-pass")
    finally:
        rb.dispose()


def test_init_on_an_unreachable_database_fails_in_one_line(tmp_path: Path) -> None:
    env = clean_env(
        instance_path=str(tmp_path / "instance"), database_url="sqlite:////nonexistent/dir/rb.db"
    )
    for args in (("init",), ("apps", "list")):
        result = run_cli(args, env, tmp_path)
        assert result.code == 1
        assert len(result.err) == 1 and result.err[0].startswith("error: ")


# --- check (no database needed) -------------------------------------------------------


def test_check_a_good_definition(tmp_path: Path) -> None:
    result = run_cli(
        ("check", str(CRM)), clean_env(instance_path=str(tmp_path / "instance")), tmp_path
    )
    assert (result.code, result.out, result.err) == (0, [f"{CRM}: ok"], [])


def test_check_a_gallery_template_by_name(tmp_path: Path) -> None:
    result = run_cli(
        ("check", "crm"), clean_env(instance_path=str(tmp_path / "instance")), tmp_path
    )
    assert (result.code, result.out, result.err) == (0, [f"{CRM}: ok"], [])


def test_check_a_broken_definition_lists_every_problem(tmp_path: Path) -> None:
    broken = write_json(tmp_path / "broken.json", BROKEN)
    result = run_cli(
        ("check", str(broken)), clean_env(instance_path=str(tmp_path / "instance")), tmp_path
    )
    assert (result.code, result.out) == (1, [])
    assert result.err == [f"{broken}: {line}" for line in BROKEN_LINES]


def test_check_invalid_json_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"slug": \n', encoding="utf-8")
    result = run_cli(
        ("check", str(bad)), clean_env(instance_path=str(tmp_path / "instance")), tmp_path
    )
    assert (result.code, result.out) == (1, [])
    assert result.err == [f"{bad}: /: invalid JSON at line 2, column 1: Expecting value"]


def test_check_several_files_reports_each(tmp_path: Path) -> None:
    broken = write_json(tmp_path / "broken.json", BROKEN)
    missing = tmp_path / "missing.json"
    result = run_cli(
        ("check", str(CRM), str(broken), str(missing)),
        clean_env(instance_path=str(tmp_path / "instance")),
        tmp_path,
    )
    assert result.code == 1
    assert result.out == [f"{CRM}: ok"]
    assert result.err == [f"{broken}: {line}" for line in BROKEN_LINES] + [
        f"{missing}: /: file not found: {missing}"
    ]


# --- install --------------------------------------------------------------------------


def test_install_dry_run_prints_the_plan_and_installs_nothing(cli: Cli) -> None:
    result = cli("install", "crm", "--dry-run")
    assert (result.code, result.err) == (0, [])
    assert result.out == [
        "  create app crm",
        *(f"  add table {t}" for t in CRM_TABLES),
        "dry run: nothing was changed",
    ]
    assert cli("apps", "list").out == []


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_install_with_sample_data(cli: Cli, engine: Recordbase) -> None:
    result = cli("install", "crm", "--sample-data", "--rows", "3")
    assert (result.code, result.err) == (0, [])
    assert result.out == [
        "  create app crm",
        *(f"  add table {t}" for t in CRM_TABLES),
        "crm: installed",
        "sample data: companies 3, contacts 3, leads 3, deals 3, activities 3",
    ]
    assert [count(engine, t) for t in CRM_TABLES] == [3] * 5
    assert cli("apps", "list").out == ["crm\tv1\tCRM"]


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_sample_data_only_fills_a_newly_installed_app(cli: Cli, engine: Recordbase) -> None:
    """``--sample-data`` is documented as filling a *newly installed* app."""
    assert cli("install", "crm", "--sample-data", "--rows", "2").code == 0
    again = cli("install", "crm", "--sample-data", "--rows", "2")
    assert again.code == 0
    assert again.out[:2] == ["  nothing to change", "crm: already up to date"]
    assert [count(engine, t) for t in CRM_TABLES] == [2] * 5


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_exported_definition_reinstalls_as_nothing_to_change(
    cli: Cli, engine: Recordbase, tmp_path: Path
) -> None:
    assert cli("install", "crm").code == 0
    exported = cli("apps", "export", "crm")
    assert (exported.code, exported.err) == (0, [])
    definition = json.loads("\n".join(exported.out))
    assert definition == engine.export("crm")
    assert all(t["id"] and all(f["id"] for f in t["fields"]) for t in definition["tables"])

    again = cli("install", str(write_json(tmp_path / "exported.json", definition)))
    assert (again.code, again.out, again.err) == (
        0,
        ["  nothing to change", "crm: already up to date"],
        [],
    )
    assert cli("apps", "list").out == ["crm\tv1\tCRM"]


def test_a_change_that_cannot_convert_fails_then_force_applies_it(
    cli: Cli, engine: Recordbase, tmp_path: Path
) -> None:
    assert cli("install", "crm").code == 0
    companies = engine.records(ACTOR, "crm", "companies")
    shanghai, number, empty = companies.create_many(
        [{"name": "A", "city": "Shanghai"}, {"name": "B", "city": "42"}, {"name": "C"}]
    )
    definition = engine.export("crm")
    city = next(f for f in definition["tables"][0]["fields"] if f["slug"] == "city")
    city.update(type="number", options={})
    changed = write_json(tmp_path / "changed.json", definition)
    problem = f"/records/{shanghai.id}/city: 'Shanghai' cannot become number: {NOT_A_NUMBER}"

    refused = cli("install", str(changed))
    assert (refused.code, refused.out) == (1, [])
    assert refused.err == [
        f"{changed}: {problem}",
        'error: 1 value(s) of "companies.city" cannot be converted to number; fix them or apply with --force to empty them',
    ]
    assert cli("apps", "list").out == ["crm\tv1\tCRM"]

    forced = cli("install", str(changed), "--force")
    assert (forced.code, forced.err) == (0, [])
    assert forced.out == [
        "  convert field companies.city: text → number",
        "  rebuild the search index of companies",
        "1 value(s) were emptied:",
        f"{changed}: {problem.replace(': ', ': warning: ', 1)}",
        "crm: installed",
    ]
    assert [companies_city(engine, rid) for rid in (shanghai.id, number.id, empty.id)] == [
        None,
        42,
        None,
    ]
    audit: sa.Table = Audit.__table__  # type: ignore[assignment]
    with engine.read() as conn:
        dropped = conn.execute(
            sa.select(audit.c.actor_name, audit.c.changes).where(audit.c.action == "values_dropped")
        ).all()
    assert [(name, [v["pointer"] for v in changes["values"]]) for name, changes in dropped] == [
        ("system:cli", [f"/records/{shanghai.id}/city"])
    ]
    assert cli("apps", "list").out == ["crm\tv2\tCRM"]


def companies_city(rb: Recordbase, record_id: int) -> Any:
    return rb.records(ACTOR, "crm", "companies").get(record_id).fields["city"]


def test_conversion_problems_mask_personal_values(
    cli: Cli, engine: Recordbase, tmp_path: Path
) -> None:
    assert cli("install", "crm").code == 0
    contact = engine.records(ACTOR, "crm", "contacts").create(
        {"name": "Zhang Wei", "wechat_id": "zhangwei88"}
    )
    definition = engine.export("crm")
    wechat = next(f for f in definition["tables"][1]["fields"] if f["slug"] == "wechat_id")
    wechat.update(type="number", options={})
    changed = write_json(tmp_path / "changed.json", definition)

    for args in (("install", str(changed)), ("install", str(changed), "--dry-run", "--force")):
        result = cli(*args)
        assert "zhangwei88" not in "\n".join(result.out + result.err)
        assert f"{changed}: /records/{contact.id}/wechat_id: " in "\n".join(result.out + result.err)


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_install_a_broken_file_lists_its_problems(cli: Cli, tmp_path: Path) -> None:
    broken = write_json(tmp_path / "broken.json", BROKEN)
    result = cli("install", str(broken))
    assert result.code == 1
    assert result.err == [f"{broken}: {line}" for line in BROKEN_LINES] + [
        "error: the definition has 2 problem(s)"
    ]
    assert cli("apps", "list").out == []


def test_install_an_unknown_template_is_one_line(cli: Cli) -> None:
    templates = ", ".join(sorted(p.stem for p in GALLERY.glob("*.json")))
    result = cli("install", "nosuchtemplate")
    assert (result.code, result.out) == (1, [])
    assert result.err == [
        f'error: "nosuchtemplate" is neither a file nor a gallery template (templates: {templates})'
    ]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("install", "{tmp}/missing.json"), 1),
        (("install", "{tmp}/invalid.json"), 1),
        (("install", "{tmp}/list.json"), 1),
        (("install", "{tmp}/binary.json"), 1),
        (("install", "{tmp}"), 1),
        (("check", "{tmp}/binary.json"), 1),
        (("check", "{tmp}/list.json"), 1),
        (("check", "nosuchtemplate"), 1),
        (("apps", "export", "nosuch"), 1),
        (("install", "crm", "--rows", "abc"), 2),
        (("nosuchcommand",), 2),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v),
)
def test_bad_input_never_shows_a_traceback(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    (tmp_path / "invalid.json").write_text("{", encoding="utf-8")
    (tmp_path / "list.json").write_text("[]", encoding="utf-8")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    result = cli(*(a.format(tmp=tmp_path) for a in args))  # asserts no "Traceback" itself
    assert result.code == code
    assert result.err != []
    assert not any("Traceback" in line or line.startswith("  File ") for line in result.err)


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_trash_lists_restores_and_purges_from_the_command_line(cli: Cli, engine: Recordbase) -> None:
    """A removed field is listed, comes back with its data, and expired entries are purged."""
    import datetime as dt

    from recordbase import Actor

    actor = Actor.system("test")
    definition = {"slug": "memo", "label": "Memo", "tables": [{"slug": "notes", "label": "Notes", "fields": [
        {"slug": "title", "label": "Title", "type": "text"}, {"slug": "body", "label": "Body", "type": "long_text"}]}]}
    engine.install(definition, actor)
    note = engine.records(actor, "memo", "notes").create({"title": "Hello", "body": "kept"})
    smaller = engine.export("memo")
    smaller["tables"][0]["fields"] = smaller["tables"][0]["fields"][:1]
    engine.install(smaller, actor)

    listed = cli("trash", "list", "memo")
    assert listed.code == 0, listed.err
    entry_id, kind, what = listed.out[0].split("\t")[:3]
    assert (kind, what) == ("field", "notes.body")

    restored = cli("trash", "restore", "memo", entry_id)
    assert restored.code == 0, restored.err
    assert restored.out == ["  add field notes.body (long_text)", f"restored trash entry {entry_id}"]
    assert engine.records(actor, "memo", "notes").get(note.id).fields["body"] == "kept"

    engine.records(actor, "memo", "notes").delete(note.id)
    assert cli("trash", "purge").out == ["purged 0 expired trash entries"]
    assert engine.purge_trash(actor, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31)) == 1
    assert engine.list_trash("memo") == []

    missing = cli("trash", "restore", "memo", "999")
    assert (missing.code, missing.err) == (1, ["error: no trash entry 999 in app 'memo'"])
