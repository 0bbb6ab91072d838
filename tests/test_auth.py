"""Signing in and access tokens: every attempt and every use lands in the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from access_defs import APP, SYSTEM, install_crm
from recordbase.auth import tokens_t
from recordbase.errors import NotFound


@pytest.fixture
def people(rb):
    install_crm(rb)
    rb.create_user(SYSTEM, "li@example.com", "correct horse battery", display_name="Li")
    rb.set_roles(SYSTEM, "li@example.com", APP, ["viewer"])
    rb.create_user(SYSTEM, "boss@example.com", "boss password 1", is_admin=True)
    return rb


def last(rb, n: int = 1):
    return rb.audit_entries(limit=100_000)[-n:]


def test_a_right_password_signs_in_and_is_audited(people):
    actor = people.authenticate("Li@Example.com", "correct horse battery", source="127.0.0.1")
    assert actor is not None and actor.roles[APP] == frozenset({"viewer"})
    entry = last(people)[0]
    assert (entry["action"], entry["actor_id"], entry["changes"]) == ("login", actor.user_id, {"source": "127.0.0.1"})


@pytest.mark.parametrize(("email", "password", "reason", "who"), [
    ("li@example.com", "Tr0ub4dor-guess", "wrong password", "Li"),
    ("nobody@example.com", "Tr0ub4dor-guess", "unknown email", "anonymous"),
    ("not an email", "Tr0ub4dor-guess", "unknown email", "anonymous"),
])
def test_a_failed_sign_in_is_audited_with_its_reason(people, email, password, reason, who):
    assert people.authenticate(email, password, source="10.0.0.7") is None
    entry = last(people)[0]
    assert (entry["action"], entry["actor_name"], entry["changes"]) == ("login_failed", who, {"source": "10.0.0.7", "reason": reason})
    assert password not in str(entry)


def test_an_unknown_email_is_checked_against_a_hash_as_costly_as_a_real_one():
    from argon2 import extract_parameters
    from recordbase.auth import _DUMMY_HASH
    from recordbase.users import PASSWORD_HASHING, verify_password

    # Same algorithm, memory, time and parallelism as a stored password: a wrong email takes as long.
    # (Compared with the product's parameters, not hash_password's: the tests hash cheaply, see conftest.)
    assert extract_parameters(_DUMMY_HASH) == PASSWORD_HASHING
    assert not verify_password(_DUMMY_HASH, "")


def test_a_deactivated_user_cannot_sign_in(people):
    people.set_active(SYSTEM, "li@example.com", False)
    assert people.authenticate("li@example.com", "correct horse battery") is None
    assert last(people)[0]["changes"]["reason"] == "deactivated user"


def test_a_token_is_shown_once_stored_hashed_and_every_use_audited(people):
    token_id, secret = people.create_token(SYSTEM, "li@example.com", name="script")
    assert secret.startswith("rb_") and len(secret) > 40
    with people.read() as conn:
        stored = conn.execute(sa.text("SELECT * FROM rb_token")).mappings().one()
    assert secret not in str(dict(stored)) and stored["prefix"] == secret[:10]
    for _ in range(2):
        actor = people.actor_for_token(secret, source="10.1.1.1")
        assert actor is not None and actor.name == "Li"
    uses = last(people, 2)
    assert [e["action"] for e in uses] == ["token_use", "token_use"]
    assert uses[0]["changes"] == {"token_id": token_id, "source": "10.1.1.1"}
    listed = people.list_tokens("li@example.com")[0]
    assert listed["last_used_at"] is not None and "token_hash" not in listed


def test_last_used_is_kept_to_the_minute_while_every_use_is_audited(people):
    token_id, secret = people.create_token(SYSTEM, "li@example.com", name="busy script")

    def last_used():
        return next(t for t in people.list_tokens("li@example.com") if t["id"] == token_id)["last_used_at"]

    people.actor_for_token(secret)
    first = last_used()
    for _ in range(3):
        people.actor_for_token(secret)
    assert last_used() == first  # not rewritten within the minute
    assert [e["action"] for e in last(people, 4)] == ["token_use"] * 4  # but every use is in the trail

    with people.write() as conn:  # a minute and more later, the next use moves it
        conn.execute(sa.update(tokens_t).where(tokens_t.c.id == token_id)
                     .values(last_used_at=first - dt.timedelta(minutes=2)))
    people.actor_for_token(secret)
    assert last_used() > first - dt.timedelta(minutes=2)


def test_a_deferred_token_use_waits_for_the_next_write_and_survives_its_rollback(people):
    token_id, secret = people.create_token(SYSTEM, "li@example.com", name="api")
    before = len(last(people, 100_000))
    assert people.actor_for_token(secret, audit_with_next_write=True).name == "Li"
    assert len(last(people, 100_000)) == before  # pending, not yet written

    with pytest.raises(RuntimeError), people.write() as conn:  # a write that fails rolls the use back…
        conn.execute(sa.text("SELECT 1"))
        raise RuntimeError("refused")
    assert len(last(people, 100_000)) == before
    people.flush_deferred()  # …and it is still pending, so the request's flush writes it
    assert [(e["action"], e["changes"]["token_id"]) for e in last(people)] == [("token_use", token_id)]
    people.flush_deferred()
    assert len(last(people, 100_000)) == before + 1  # once

    people.actor_for_token(secret, audit_with_next_write=True)
    people.set_active(SYSTEM, "li@example.com", True)  # the next write carries it, first
    assert [e["action"] for e in last(people, 2)] == ["token_use", "user_activate"]
    people.actor_for_token(secret, audit_with_next_write=True)
    assert people.discard_deferred() == 1 and people.discard_deferred() == 0


def test_a_random_string_is_no_token_and_writes_nothing(people):
    before = len(last(people, 100_000))
    assert people.actor_for_token("rb_" + "x" * 43) is None
    assert people.actor_for_token("Bearer nonsense") is None
    assert len(last(people, 100_000)) == before


def test_revoking_deactivating_and_removing_roles_count_at_the_next_use(people):
    _, secret = people.create_token(SYSTEM, "li@example.com")
    people.set_roles(SYSTEM, "li@example.com", APP, [])
    assert people.actor_for_token(secret).roles == {}
    people.set_active(SYSTEM, "li@example.com", False)
    assert people.actor_for_token(secret) is None
    assert last(people)[0]["changes"]["reason"] == "user deactivated"
    people.set_active(SYSTEM, "li@example.com", True)
    token_id, secret = people.create_token(SYSTEM, "li@example.com")
    people.revoke_token(SYSTEM, token_id)
    assert people.actor_for_token(secret) is None
    assert last(people)[0]["action"] == "token_rejected" and last(people)[0]["changes"]["reason"] == "revoked"


def test_an_expired_token_stops_working(people):
    token_id, secret = people.create_token(SYSTEM, "li@example.com", expires_days=30)
    assert people.actor_for_token(secret) is not None
    with people.write() as conn:
        conn.execute(sa.text("UPDATE rb_token SET expires_at = created_at WHERE id = :id"), {"id": token_id})
    assert people.actor_for_token(secret) is None
    assert last(people)[0]["changes"]["reason"] == "expired"


def test_a_token_limited_to_apps_opens_only_them_even_for_an_admin(people):
    _, secret = people.create_token(SYSTEM, "boss@example.com", apps=[APP])
    boss = people.actor_for_token(secret)
    assert boss.is_admin is False and people.apps_for(boss) == []  # no role in the CRM itself
    _, open_secret = people.create_token(SYSTEM, "boss@example.com")
    assert people.actor_for_token(open_secret).is_admin is True
    with pytest.raises(NotFound, match='no app "nope"'):
        people.create_token(SYSTEM, "boss@example.com", apps=["nope"])


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_tokens_from_the_command_line(cli, engine):
    created = cli("tokens", "create", "admin@localhost", "--name", "ci", "--expires", "7")
    assert created.code == 0, created.err
    assert len(created.out) == 1 and created.out[0].startswith("rb_")  # the token alone on stdout
    assert engine.actor_for_token(created.out[0]).is_admin
    listed = cli("tokens", "list")
    assert listed.out[0].split("\t")[:3] == ["1", "admin@localhost", "ci"] and listed.out[0].endswith("active")
    assert cli("tokens", "revoke", "1").out == ["token 1 revoked"]
    assert engine.actor_for_token(created.out[0]) is None
    assert cli("tokens", "revoke", "9").err == ["error: no token 9"]
