"""A record's history shows each person only what a read of the record would."""

from __future__ import annotations

import pytest
from access_defs import PHONES, Crm, seed
from recordbase.audit import erase_values
from recordbase.errors import NotFound
from recordbase.history import ERASED_VALUE


@pytest.fixture
def crm(rb) -> Crm:
    crm = seed(rb)
    deals = crm.deals()
    deals.update(1, {"phone": "+8613811112222", "notes": "call in the morning"}, version=1)
    deals.reveal(1, "phone", "the customer asked us to confirm it")
    return crm


def changes(crm: Crm, person: str, record_id: int = 1) -> list[tuple[str, dict]]:
    return [(c.action, c.fields) for c in crm.deals(person).history(record_id)]


def test_a_full_access_actor_sees_every_value_in_clear(crm):
    history = crm.deals().history(1)
    assert [c.action for c in history] == ["create", "update", "reveal"]
    assert history[0].fields["phone"] == [None, PHONES[1]] and history[0].fields["amount"] == [None, "100.00"]
    assert history[1].fields == {"phone": [PHONES[1], "+8613811112222"], "notes": ["call after lunch", "call in the morning"]}
    assert history[2].details == {"field": "phone", "reason": "the customer asked us to confirm it"}
    assert history[1].actor == "system:test"


def test_values_a_role_sees_masked_stay_masked_in_history(crm):
    rep = changes(crm, "rep")
    assert rep[1][1]["phone"] == ["+86 138****5678", "+86 138****2222"]
    assert rep[1][1]["notes"] == ["call after lunch", "call in the morning"]
    assert "13812345678" not in repr(rep) and "13811112222" not in repr(rep)


def test_hidden_fields_leave_no_trace_and_reveal_reasons_stay_private(crm):
    viewer = crm.deals("viewer").history(1)
    assert all("notes" not in c.fields for c in viewer)
    assert [c.action for c in viewer] == ["create", "update", "reveal"]
    assert viewer[1].fields == {"phone": ["+86 138****5678", "+86 138****2222"]}
    assert viewer[2].details == {"field": "phone"}  # the reason is free text: not for every reader


def test_a_record_outside_the_rows_has_no_history_to_show(crm):
    with pytest.raises(NotFound, match='no record 1 in "deals"') as outside:
        crm.deals("west_manager").history(1)
    with pytest.raises(NotFound) as missing:
        crm.deals("west_manager").history(99)
    assert str(outside.value).replace("1", "N") == str(missing.value).replace("99", "N")


def test_erased_values_show_as_erased(crm, rb):
    with rb.write() as conn:
        erase_values(conn, crm.deals().ts.pk, [1])
    history = crm.deals().history(1)
    assert history[1].fields["phone"] == [ERASED_VALUE, ERASED_VALUE]
    assert history[1].fields["notes"] == ["call after lunch", "call in the morning"]  # not personal: kept
