"""The consent ledger: consent per purpose and text version; withdrawing runs the table's action."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from recordbase import Actor, NotFound, ValidationError

SYSTEM = Actor.system("test")


def definition(action: str) -> dict[str, Any]:
    return {
        "slug": "clinic",
        "label": "Clinic",
        "tables": [{
            "slug": "patients",
            "label": "Patients",
            "consent": {"purposes": ["appointments", "newsletter"], "text": "We use your data to book visits.",
                        "version": "2026-01", "withdraw_action": action},
            "fields": [
                {"slug": "name", "label": "Name", "type": "text", "sensitivity": "personal", "purpose": "Identify the patient."},
                {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Remind of visits."},
                {"slug": "health", "label": "Health notes", "type": "long_text", "sensitivity": "sensitive", "purpose": "Treatment."},
                {"slug": "visits", "label": "Visits", "type": "number"},
            ],
        }],
    }


@pytest.fixture
def patients(rb):
    def make(action: str = "anonymise"):
        rb.install(definition(action), SYSTEM)
        store = rb.records(SYSTEM, "clinic", "patients")
        record = store.create({"name": "李雷", "phone": "13812345678", "health": "allergic to penicillin", "visits": 3})
        return store, record.id
    return make


def test_consent_is_recorded_per_purpose_with_text_version_and_channel(patients):
    store, rid = patients()
    ledger = store.give_consent(rid, ["appointments", "sensitive:health"], version="2026-01", channel="paper form")
    assert [(c["purpose"], c["version"], c["channel"], c["given_by"], c["withdrawn_at"]) for c in ledger] == [
        ("appointments", "2026-01", "paper form", "system:test", None),
        ("sensitive:health", "2026-01", "paper form", "system:test", None),
    ]
    assert store.give_consent(rid, ["appointments"], version="2026-01", channel="web") == ledger  # already open: no duplicate


def test_consent_to_an_unknown_purpose_or_an_old_text_is_refused_with_pointers(patients):
    store, rid = patients()
    with pytest.raises(ValidationError) as excinfo:
        store.give_consent(rid, ["marketing", "sensitive:phone"], version="2025-06", channel="web")
    assert [p.pointer for p in excinfo.value.problems] == ["/purposes/0", "/purposes/1", "/version"]
    assert store.consents(rid) == []


def test_withdrawing_anonymises_the_record(patients):
    store, rid = patients("anonymise")
    store.give_consent(rid, ["appointments"], version="2026-01", channel="web")
    assert store.withdraw_consent(rid, "appointments", channel="phone call") == "anonymised the record"
    fields = store.get(rid).fields
    assert (fields["name"], fields["phone"], fields["health"], fields["visits"]) == (None, None, None, 3)
    [entry] = store.consents(rid)
    assert entry["withdrawn_by"] == "system:test" and entry["withdrawn_at"] is not None
    with pytest.raises(NotFound):
        store.withdraw_consent(rid, "appointments", channel="web")  # nothing open any more


def test_withdrawing_deletes_the_record_for_good(patients, rb):
    store, rid = patients("delete")
    store.give_consent(rid, ["newsletter"], version="2026-01", channel="web")
    assert store.withdraw_consent(rid, "newsletter", channel="web") == "deleted the record"
    with pytest.raises(NotFound):
        store.get(rid)
    assert rb.list_trash("clinic") == []


def test_withdrawing_the_separate_consent_of_a_sensitive_field_empties_that_field_only(patients):
    store, rid = patients("flag")
    store.give_consent(rid, ["appointments", "sensitive:health"], version="2026-01", channel="web")
    assert store.withdraw_consent(rid, "sensitive:health", channel="web") == 'emptied "health"'
    fields = store.get(rid).fields
    assert (fields["name"], fields["health"]) == ("李雷", None)
    assert store.withdraw_consent(rid, "appointments", channel="web") == "flagged: processing for this purpose must stop"
    assert store.get(rid).fields["name"] == "李雷"


def test_a_table_without_a_consent_declaration_takes_none(rb):
    plain = copy.deepcopy(definition("flag"))
    del plain["tables"][0]["consent"]
    plain["tables"][0]["fields"] = plain["tables"][0]["fields"][:2]
    rb.install(plain, SYSTEM)
    store = rb.records(SYSTEM, "clinic", "patients")
    rid = store.create({"name": "x"}).id
    with pytest.raises(ValidationError, match="declares no consent"):
        store.give_consent(rid, ["appointments"], version="1", channel="web")


def test_records_are_filtered_by_consent_so_a_flag_stops_processing_for_its_purpose(patients):
    store, first = patients("flag")
    second = store.create({"name": "韩梅梅", "visits": 1}).id
    third = store.create({"name": "Lily", "visits": 2}).id
    store.give_consent(first, ["newsletter"], version="2026-01", channel="web")
    store.give_consent(second, ["newsletter"], version="2026-01", channel="web")
    store.withdraw_consent(second, "newsletter", channel="email reply")

    def ids(op: str, purpose: str = "newsletter") -> list[int]:
        return [r.id for r in store.query(filter={"consent": purpose, "op": op}).records]

    assert ids("given") == [first]  # the mailing list: only who consents now
    assert ids("withdrawn") == [second]  # flagged: processing for the newsletter stopped
    assert ids("not_given") == [second, third]
    assert store.count({"not": {"consent": "newsletter", "op": "given"}}) == 2
    store.give_consent(second, ["newsletter"], version="2026-01", channel="web")  # consent again
    assert ids("given") == [first, second] and ids("withdrawn") == []
    assert ids("given", "sensitive:health") == []


@pytest.mark.parametrize(("node", "message"), [
    ({"consent": "marketing", "op": "given"}, '"marketing" is not a purpose of this table'),
    ({"consent": "newsletter", "op": "maybe"}, "a consent filter takes one of: given, not_given, withdrawn"),
])
def test_a_bad_consent_filter_says_what_and_where(patients, node, message):
    from recordbase import QueryError

    store, _ = patients("flag")
    with pytest.raises(QueryError, match=message) as refused:
        store.query(filter={"and": [node]})
    assert refused.value.problems[0].pointer.startswith("/filter/and/0/")
