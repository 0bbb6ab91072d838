"""A delete that cascades through links needs the right to delete every record it takes with it."""

from __future__ import annotations

import pytest
from access_defs import APP, SYSTEM, crm_definition, make_user
from recordbase.errors import PermissionDenied
from recordbase.trash import LinkedRecordError


def install(rb, on_delete: str) -> None:
    definition = crm_definition()
    deals = definition["tables"][0]
    deals["fields"].append({"id": "fld_deals_company", "slug": "company", "label": "Company", "type": "link",
                            "options": {"table": "companies", "on_delete": on_delete}})
    assert rb.install(definition, SYSTEM).applied


@pytest.fixture
def world(rb):
    """Two companies: Acme has an east deal only, Birch an east and a west deal. The manager works the east."""
    def make(on_delete: str):
        install(rb, on_delete)
        manager = make_user(rb, "manager@example.com", ["manager"], region="east")
        acme, birch = rb.records(SYSTEM, APP, "companies").create_many([{"name": "Acme"}, {"name": "Birch"}])
        rb.records(SYSTEM, APP, "deals").create_many([
            {"name": "A east", "region": "east", "company": acme.id},
            {"name": "B east", "region": "east", "company": birch.id},
            {"name": "B west", "region": "west", "company": birch.id},
        ])
        return manager, acme.id, birch.id
    return make


def names(rb) -> list[str]:
    return sorted(r.fields["name"] for r in rb.records(SYSTEM, APP, "deals").query(page_size=50).records)


def test_a_cascade_inside_the_actors_rows_goes_ahead(rb, world):
    manager, acme, _ = world("cascade")
    rb.records(manager, APP, "companies").delete(acme)
    assert names(rb) == ["B east", "B west"]


def test_a_cascade_into_rows_the_actor_may_not_delete_is_refused_whole(rb, world):
    manager, _, birch = world("cascade")
    with pytest.raises(PermissionDenied, match='records in "deals" link here through "company" and would be deleted with it'):
        rb.records(manager, APP, "companies").delete(birch)
    assert names(rb) == ["A east", "B east", "B west"]
    assert rb.records(SYSTEM, APP, "companies").get(birch).fields["name"] == "Birch"


def test_a_role_that_cannot_delete_the_linked_table_cannot_cascade_into_it(rb, world):
    definition_manager, acme, _ = world("cascade")
    definition = rb.export(APP)
    definition["tables"][0]["permissions"]["manager"]["delete"] = False
    rb.install(definition, SYSTEM)
    manager = rb.actor_for(definition_manager.user_id)
    with pytest.raises(PermissionDenied, match="you may not delete them"):
        rb.records(manager, APP, "companies").delete(acme)
    assert names(rb) == ["A east", "B east", "B west"]


def test_a_restricting_link_names_no_hidden_record(rb, world):
    manager, _, birch = world("restrict")
    with pytest.raises(LinkedRecordError) as refused:
        rb.records(manager, APP, "companies").delete(birch)
    assert str(refused.value) == 'cannot delete: records in "deals" link here through "company"; unlink them first'
    with pytest.raises(LinkedRecordError, match=r'2 record\(s\) in "deals" .* \(first: 2\)'):
        rb.records(SYSTEM, APP, "companies").delete(birch)
