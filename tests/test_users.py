"""Platform users and their roles per app: the engine API and `recordbase users`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from recordbase import Actor, RecordbaseError
from recordbase.users import verify_password

ACTOR = Actor.system("test")
CRM = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "gallery" / "crm.json").read_text(encoding="utf-8"))


@pytest.fixture
def crm(rb):
    rb.install(CRM, ACTOR)
    return rb


def test_a_user_has_the_roles_set_for_each_app_and_keeps_their_attributes(crm):
    user_id = crm.create_user(ACTOR, "Li.Wei@Example.COM", "pw-123456", attributes={"region": "east"})
    assert crm.set_roles(ACTOR, "li.wei@example.com", "crm", ["sales_rep", "marketing", "sales_rep"]) == ["sales_rep", "marketing"]
    actor = crm.actor_for(user_id)
    assert actor is not None
    assert (actor.kind, actor.user_id, actor.name, actor.is_admin) == ("user", user_id, "li.wei", False)
    assert actor.attributes == {"region": "east"}
    assert actor.roles_in("crm") == frozenset({"sales_rep", "marketing"})
    assert actor.roles_in("orders") == frozenset()


def test_deactivation_and_role_removal_count_on_the_very_next_lookup(crm):
    user_id = crm.create_user(ACTOR, "rep@example.com", "pw-123456")
    crm.set_roles(ACTOR, "rep@example.com", "crm", ["sales_rep"])
    # The role disappears from the app's definition: the membership no longer counts.
    changed = crm.export("crm")
    changed["roles"] = [r for r in changed["roles"] if r["slug"] != "sales_rep"]
    for table in changed["tables"]:
        table.get("permissions", {}).pop("sales_rep", None)
    crm.install(changed, ACTOR)
    assert crm.actor_for(user_id).roles_in("crm") == frozenset()
    crm.set_active(ACTOR, "rep@example.com", False)
    assert crm.actor_for(user_id) is None
    crm.set_active(ACTOR, "rep@example.com", True)
    assert crm.actor_for(user_id) is not None


def test_roles_must_be_declared_by_the_app_and_users_must_exist(crm):
    crm.create_user(ACTOR, "a@example.com", None)
    with pytest.raises(RecordbaseError, match='app "crm" has no role "boss"; its roles are: sales_manager, sales_rep, marketing, auditor'):
        crm.set_roles(ACTOR, "a@example.com", "crm", ["boss"])
    with pytest.raises(RecordbaseError, match="no user with email nobody@example.com"):
        crm.set_roles(ACTOR, "nobody@example.com", "crm", ["auditor"])
    with pytest.raises(RecordbaseError, match='no app "orders" is installed'):
        crm.set_roles(ACTOR, "a@example.com", "orders", ["auditor"])
    with pytest.raises(RecordbaseError, match="already exists"):
        crm.create_user(ACTOR, "A@example.com", None)


def test_role_changes_are_audited_with_before_and_after(crm):
    user_id = crm.create_user(ACTOR, "a@example.com", None)
    crm.set_roles(ACTOR, "a@example.com", "crm", ["auditor"])
    crm.set_roles(ACTOR, "a@example.com", "crm", ["marketing"])
    with crm.read() as conn:
        rows = conn.execute(sa.text("SELECT action, changes FROM rb_audit WHERE action = 'role_change' ORDER BY id")).all()
    changes = [json.loads(c) if isinstance(c, str) else c for _, c in rows]
    assert changes == [
        {"user_id": user_id, "before": [], "after": ["auditor"]},
        {"user_id": user_id, "before": ["auditor"], "after": ["marketing"]},
    ]


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_users_from_the_command_line(cli, engine):
    assert cli("install", "crm").code == 0
    added = cli("users", "add", "rep@example.com", "--name", "Rep", "--attr", "region=east",
                "--app", "crm", "--role", "sales_rep", "--app", "crm", "--role", "marketing")
    assert added.code == 0, added.err
    assert added.out[0] == "added rep@example.com  crm: sales_rep, marketing"
    password = added.out[1].removeprefix("password: ")
    with engine.read() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM rb_user WHERE email = 'rep@example.com'")).scalar()
    assert verify_password(stored, password) and not verify_password(stored, "wrong")

    assert cli("users", "set-role", "rep@example.com", "--app", "crm", "--role", "auditor").out == ["rep@example.com in crm: auditor"]
    listed = cli("users", "list").out
    assert "rep@example.com\tRep\tactive\tcrm:auditor" in listed
    assert cli("users", "deactivate", "rep@example.com").out == ["deactivated rep@example.com"]
    assert "rep@example.com\tRep\tinactive\tcrm:auditor" in cli("users", "list").out

    bad_role = cli("users", "add", "x@example.com", "--app", "crm", "--role", "boss")
    assert bad_role.code == 1
    assert bad_role.err == ['error: app "crm" has no role "boss"; its roles are: sales_manager, sales_rep, marketing, auditor']
    assert "x@example.com" not in "\n".join(cli("users", "list").out)  # nothing half-added
    unpaired = cli("users", "add", "y@example.com", "--app", "crm")
    assert (unpaired.code, unpaired.err) == (1, ["error: give --app and --role in pairs: --app APP --role ROLE"])
