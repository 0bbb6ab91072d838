"""Comments, @mentions and the inbox in the engine (``recordbase.collab``), on the gallery CRM.

The people: a sales manager of the east region (reads east deals), two reps
(each reads only the deals it owns), marketing (reads won and lost deals
only) and a stranger without a role. Deal 1 "Acme renewal" (east, qualified)
belongs to Ravi the rep; deal 2 "Birch deal" (west, won) to Rosa the rep.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from recordbase import collab, subjects, users
from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file
from recordbase.errors import NotFound, PermissionDenied, ValidationError

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"
SYSTEM = Actor.system("tests")
SECRET = "the customer whispered zebra-7731"
PASSWORD = "collab-password-1"

# email local part → (display name, roles in the CRM, attributes)
PEOPLE = {
    "mei": ("Mei Manager", ["sales_manager"], {"region": "east"}),
    "ravi": ("Ravi Rep", ["sales_rep"], {}),
    "rosa": ("Rosa Rep", ["sales_rep"], {}),
    "mark": ("Mark Marketing", ["marketing"], {}),
    "stan": ("Stan Stranger", [], {}),
}


@dataclass
class Crm:
    rb: Recordbase
    ids: dict[str, int] = field(default_factory=dict)

    def actor(self, person: str) -> Actor:
        found = self.rb.actor_for(self.ids[person])
        assert found is not None
        return found

    def store(self, table: str, person: str | None = None):  # type: ignore[no-untyped-def]
        return self.rb.records(SYSTEM if person is None else self.actor(person), "crm", table)


@functools.cache
def password_hash() -> str:
    return users.hash_password(PASSWORD)


def seed_crm(rb: Recordbase, *, passwords: bool = False) -> Crm:
    """The gallery CRM with ``PEOPLE``, an admin, and a company, a contact, two deals and an activity."""
    definition, problems = load_definition_file(CRM)
    assert not problems
    assert rb.install(definition, SYSTEM).applied
    crm = Crm(rb)
    for person, (name, roles, attributes) in PEOPLE.items():
        email = f"{person}@example.com"
        crm.ids[person] = rb.create_user(
            SYSTEM, email, None, display_name=name, attributes=attributes
        )
        if roles:
            rb.set_roles(SYSTEM, email, "crm", roles)
    crm.ids["ada"] = rb.create_user(
        SYSTEM, "ada@example.com", None, display_name="Ada Admin", is_admin=True
    )
    if passwords:  # one argon2 hash for everybody: hashing costs most of a second on a busy machine
        with rb.write() as conn:
            conn.execute(sa.update(users.users_t).values(password_hash=password_hash()))
    company = crm.store("companies").create({"name": "Acme Ltd"})
    contact = crm.store("contacts").create(
        {
            "name": "Wang Fang",
            "company": company.id,
            "email": "wang.fang@example.cn",
            "region": "east",
            "owner": crm.ids["ravi"],
        }
    )
    deals = crm.store("deals").create_many(
        [
            {
                "name": "Acme renewal",
                "company": company.id,
                "contact": contact.id,
                "stage": "qualified",
                "region": "east",
                "owner": crm.ids["ravi"],
                "amount": "120000",
            },
            {
                "name": "Birch deal",
                "company": company.id,
                "stage": "won",
                "region": "west",
                "owner": crm.ids["rosa"],
                "amount": "5000",
            },
        ]
    )
    assert [d.id for d in deals] == [1, 2]
    crm.store("activities").create(
        {"subject": "Call Acme", "deal": 1, "kind": "call", "owner": crm.ids["ravi"]}
    )
    return crm


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    return seed_crm(rb)


def notifications(rb: Recordbase) -> list[dict]:  # type: ignore[type-arg]
    with rb.read() as conn:
        return [
            dict(r)
            for r in conn.execute(sa.text("SELECT * FROM rb_notification ORDER BY id")).mappings()
        ]


def comment_rows(rb: Recordbase) -> list[dict]:  # type: ignore[type-arg]
    with rb.read() as conn:
        return [
            dict(r)
            for r in conn.execute(sa.text("SELECT * FROM rb_comment ORDER BY id")).mappings()
        ]


# --- mentions in text ------------------------------------------------------------------------


def test_names_become_stable_mentions() -> None:
    people = [collab.Member(1, "Li Wei"), collab.Member(2, "Li"), collab.Member(3, "王芳")]
    assert collab.resolve_mentions("hi @Li Wei and @li, ask @王芳好吗", people) == (
        "hi @[user:1] and @[user:2], ask @[user:3]好吗"
    )
    # An email address is no mention; a longer word is not the shorter name; unknown names stay text.
    assert collab.resolve_mentions("mail li@Li.com or @Liang or @Nobody", people) == (
        "mail li@Li.com or @Liang or @Nobody"
    )
    twins = [collab.Member(1, "Sam"), collab.Member(2, "sam")]
    assert collab.resolve_mentions("@Sam", twins) == "@Sam"  # two people share the name: neither
    assert collab.split_body("a @[user:1] b @[user:9]", {1: "Li Wei"}) == [
        {"kind": "text", "text": "a "},
        {"kind": "mention", "user_id": 1, "name": "Li Wei"},
        {"kind": "text", "text": " b "},
        {"kind": "mention", "user_id": 9, "name": None},
    ]


# --- comments ---------------------------------------------------------------------------------


def test_a_reader_comments_and_mentions_notify_only_who_can_read(crm: Crm) -> None:
    rb = crm.rb
    added = collab.add_comment(
        rb, crm.actor("ravi"), "crm", "deals", 1, "@Mei Manager please check, and @Rosa Rep too"
    )
    assert [m.name for m in added.notified] == ["Mei Manager"]
    assert [m.name for m in added.undelivered] == ["Rosa Rep"]  # Rosa reads only her own deals
    assert (
        added.comment.body
        == f"@[user:{crm.ids['mei']}] please check, and @[user:{crm.ids['rosa']}] too"
    )
    sent = notifications(rb)
    assert [(n["user_id"], n["kind"], n["record_id"], n["comment_id"]) for n in sent] == [
        (crm.ids["mei"], "mention", 1, added.comment.id)
    ]
    assert sent[0]["actor"] == "Ravi Rep" and sent[0]["message"] is None
    listed = collab.list_comments(rb, crm.actor("mei"), "crm", "deals", 1)
    assert [(c.author, c.may_delete) for c in listed] == [("Ravi Rep", False)]
    assert [p.get("name") or p.get("text") for p in listed[0].parts] == [
        "Mei Manager",
        " please check, and ",
        "Rosa Rep",
        " too",
    ]


def test_comments_are_listed_oldest_first_and_a_mention_of_oneself_notifies_nobody(
    crm: Crm,
) -> None:
    rb = crm.rb
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "first")
    collab.add_comment(rb, crm.actor("mei"), "crm", "deals", 1, "second, @Mei Manager")
    assert [
        c.body.split(",")[0] for c in collab.list_comments(rb, crm.actor("ravi"), "crm", "deals", 1)
    ] == ["first", "second"]
    assert notifications(rb) == []


def test_only_readers_may_comment_or_read_comments(crm: Crm) -> None:
    rb = crm.rb
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "hello")
    for person in ("rosa", "mark", "stan"):  # outside their rows, or no role at all
        with pytest.raises(NotFound):
            collab.add_comment(rb, crm.actor(person), "crm", "deals", 1, "let me in")
        with pytest.raises(NotFound):
            collab.list_comments(rb, crm.actor(person), "crm", "deals", 1)
    with pytest.raises(NotFound):
        collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 99, "missing")
    assert len(comment_rows(rb)) == 1


@pytest.mark.parametrize("body", ["", "   \n ", "x" * (collab.MAX_COMMENT_LENGTH + 1)])
def test_empty_and_overlong_comments_are_refused(crm: Crm, body: str) -> None:
    with pytest.raises(ValidationError) as refused:
        collab.add_comment(crm.rb, crm.actor("ravi"), "crm", "deals", 1, body)
    assert refused.value.problems[0].pointer == "/body"
    assert comment_rows(crm.rb) == []


def test_a_mention_of_someone_outside_the_app_names_nobody(crm: Crm) -> None:
    added = collab.add_comment(
        crm.rb,
        crm.actor("ravi"),
        "crm",
        "deals",
        1,
        f"hi @[user:{crm.ids['stan']}] and @[user:{crm.ids['mei']}]",
    )
    assert added.comment.body == f"hi @? and @[user:{crm.ids['mei']}]"
    assert [m.name for m in added.notified] == ["Mei Manager"] and added.undelivered == []


def test_delete_by_author_or_admin_only(crm: Crm) -> None:
    rb = crm.rb
    mine = collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "ping @Mei Manager").comment
    with pytest.raises(PermissionDenied):
        collab.delete_comment(rb, crm.actor("mei"), "crm", "deals", 1, mine.id)
    with pytest.raises(NotFound):  # not a comment of this record
        collab.delete_comment(rb, crm.actor("ravi"), "crm", "deals", 2, mine.id)
    collab.delete_comment(rb, crm.actor("ravi"), "crm", "deals", 1, mine.id)
    assert collab.list_comments(rb, crm.actor("ravi"), "crm", "deals", 1) == []
    assert notifications(rb) == []  # the mention went with the comment
    assert comment_rows(rb)[0]["deleted_at"] is not None
    theirs = collab.add_comment(rb, crm.actor("mei"), "crm", "deals", 1, "manager here").comment
    collab.delete_comment(rb, crm.actor("ada"), "crm", "deals", 1, theirs.id)
    with pytest.raises(NotFound):  # already deleted
        collab.delete_comment(rb, crm.actor("ada"), "crm", "deals", 1, theirs.id)
    actions = [e["action"] for e in rb.audit_entries(app="crm", table="deals", record=1)]
    assert actions.count("comment_add") == 2 and actions.count("comment_delete") == 2


def test_comment_bodies_are_sealed_in_the_database_and_the_audit(crm: Crm) -> None:
    rb = crm.rb
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, SECRET)
    stored = comment_rows(rb)[0]["body"]
    assert stored.startswith("v1:") and "zebra" not in stored
    with rb.read() as conn:
        trail = " ".join(
            str(c) for c in conn.execute(sa.text("SELECT changes FROM rb_audit")).scalars()
        )
    assert "zebra" not in trail
    entry = [
        e
        for e in rb.audit_entries(app="crm", table="deals", record=1)
        if e["action"] == "comment_add"
    ][0]
    assert entry["changes"] == {
        "comment_id": 1,
        "length": len(SECRET),
        "mentions": [],
        "undelivered": [],
    }
    assert collab.list_comments(rb, crm.actor("ravi"), "crm", "deals", 1)[0].body == SECRET
    if rb.dialect == "sqlite":
        rb.dispose()  # checkpoint and close, so everything is in the files
        database = Path(rb.engine.url.database or "")
        content = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert b"zebra-7731" not in content


# --- notifications ---------------------------------------------------------------------------


def test_notify_list_and_mark_read(crm: Crm) -> None:
    rb = crm.rb
    mei = crm.actor("mei")
    first = collab.notify(
        rb,
        crm.ids["mei"],
        "automation",
        "crm",
        "deals",
        1,
        "rule: big deal",
        message="Check the amount",
    )
    with rb.write() as conn:
        second = collab.notify(
            conn, crm.ids["mei"], "assigned", "crm", "deals", 1, crm.actor("ravi")
        )
    collab.notify(rb, crm.ids["rosa"], "assigned", "crm", "deals", 2, SYSTEM)
    assert collab.unread_count(rb, mei) == 2
    listed = collab.list_notifications(rb, mei)
    assert [(n.id, n.kind, n.actor, n.available, n.label) for n in listed] == [
        (second, "assigned", "Ravi Rep", True, "Acme renewal"),
        (first, "automation", "rule: big deal", True, "Acme renewal"),
    ]
    assert listed[1].message == "Check the amount"
    with pytest.raises(NotFound):  # Rosa's
        collab.mark_read(rb, mei, listed[0].id + 1)
    collab.mark_read(rb, mei, first)
    assert collab.unread_count(rb, mei) == 1
    assert collab.mark_all_read(rb, mei) == 1
    assert collab.unread_count(rb, mei) == 0
    assert collab.unread_count(rb, crm.actor("rosa")) == 1
    with pytest.raises(ValueError):
        collab.notify(rb, crm.ids["mei"], "gossip", "crm", "deals", 1, SYSTEM)
    with pytest.raises(NotFound):
        collab.notify(rb, crm.ids["mei"], "assigned", "crm", "nothing", 1, SYSTEM)


def test_a_record_out_of_reach_is_listed_without_its_data(crm: Crm) -> None:
    rb = crm.rb
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "over to you @Mei Manager")
    deal = crm.store("deals").get(1)
    crm.store("deals").update(1, {"region": "west"}, version=deal.version)  # out of Mei's rows
    [seen] = collab.list_notifications(rb, crm.actor("mei"))
    assert (seen.available, seen.label, seen.table_label, seen.app_label) == (
        False,
        None,
        None,
        None,
    )
    crm.store("deals").delete(1)
    [seen] = collab.list_notifications(rb, crm.actor("mei"))
    assert seen.available is False and seen.label is None


def test_assign_notifies_a_new_assignee_who_can_read(crm: Crm) -> None:
    rb = crm.rb
    deal = crm.store("deals").get(1)
    done = collab.assign(
        rb, crm.actor("mei"), "crm", "deals", 1, "owner", crm.ids["rosa"], version=deal.version
    )
    assert done.notified and done.assignee == collab.Member(crm.ids["rosa"], "Rosa Rep")
    assert [(n["user_id"], n["kind"]) for n in notifications(rb)] == [(crm.ids["rosa"], "assigned")]
    done = collab.assign(
        rb,
        crm.actor("mei"),
        "crm",
        "deals",
        1,
        "owner",
        crm.ids["mark"],
        version=done.record.version,
    )
    assert done.cannot_read and not done.notified  # marketing reads won and lost deals only
    assert len(notifications(rb)) == 1
    with pytest.raises(ValidationError):  # not a member of the app
        collab.assign(
            rb,
            crm.actor("mei"),
            "crm",
            "deals",
            1,
            "owner",
            crm.ids["stan"],
            version=done.record.version,
        )
    # Keeping an assignee who has (since) no role is no choice of a non-member: it is allowed.
    kept = crm.store("deals").update(1, {"owner": crm.ids["stan"]}, version=done.record.version)
    again = collab.assign(
        rb, crm.actor("mei"), "crm", "deals", 1, "owner", crm.ids["stan"], version=kept.version
    )
    assert again.assignee == collab.Member(crm.ids["stan"], "Stan Stranger")
    assert again.record.fields["owner"] == crm.ids["stan"] and not again.notified
    assert len(notifications(rb)) == 1


def test_update_scope_follows_roles_and_rows(crm: Crm) -> None:
    scope = collab.update_scope(crm.store("deals", "ravi"), 1)
    assert (
        scope is not None and "stage" in scope and "owner" not in scope
    )  # the owner field is not theirs to give
    assert "owner" in (collab.update_scope(crm.store("deals", "mei"), 1) or set())
    assert collab.update_scope(crm.store("deals", "mark"), 2) is None  # reads, may not update
    assert collab.update_scope(crm.store("deals", "ravi"), 2) is None  # not in Ravi's rows


# --- erasure ---------------------------------------------------------------------------------


def test_purging_a_record_removes_its_comments_and_notifications(crm: Crm) -> None:
    rb = crm.rb
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "hi @Mei Manager")
    collab.add_comment(rb, crm.actor("rosa"), "crm", "deals", 2, "other deal")
    collab.notify(rb, crm.ids["mei"], "assigned", "crm", "deals", 1, SYSTEM)
    deals = crm.store("deals")
    deals.delete(1)  # in the trash: restorable, so its comments stay
    assert len(comment_rows(rb)) == 2 and len(notifications(rb)) == 2
    deals.purge(1)
    assert [(c["record_id"], c["table_id"]) for c in comment_rows(rb)] == [(2, deals.ts.pk)]
    assert notifications(rb) == []


def test_a_subject_erasure_removes_the_comments_of_what_it_erases(crm: Crm) -> None:
    rb = crm.rb
    collab.add_comment(rb, crm.actor("ravi"), "crm", "contacts", 1, "Wang Fang prefers WeChat")
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "deal note")
    report = subjects.erase(rb, crm.actor("ada"), emails=["wang.fang@example.cn"])
    assert [h.table for h in report.deleted] == ["contacts"]
    contacts_pk = crm.store("contacts").ts.pk
    assert [c["table_id"] for c in comment_rows(rb)] == [
        crm.store("deals").ts.pk
    ]  # the deal keeps its own
    assert contacts_pk not in [c["table_id"] for c in comment_rows(rb)]
