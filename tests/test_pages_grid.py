"""Browser pages, the grid: filter builder, multi-sort, columns, views, inline editing, bulk actions.

The CRM of ``access_defs`` (seeded: deals 1–5) with the ``manage`` right
given to the manager (east deals 1, 2, 5; phone in clear) and two grid views
in the definition. The rep reads and updates only its deals (1 and 3), sees
the phone masked and may not write ``amount``; the viewer reads every deal
but not the notes, and changes nothing.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from access_defs import DEALS_PERMISSIONS, PHONES, SYSTEM, Crm, crm_definition, seed
from flask.testing import FlaskClient
from page_helpers import csrf_from, login
from recordbase import saved_views, users
from recordbase.core import Recordbase
from recordbase.errors import NotFound

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

DEALS = "/apps/crm/tables/deals"
PASSWORD = "grid-password-1"
HTMX = {"HX-Request": "true"}
VIEWS = [
    {
        "slug": "big_east",
        "label": {"en": "Big east deals", "zh-CN": "东区大单"},
        "table": "deals",
        "type": "grid",
        "filter": {
            "and": [
                {"field": "region", "op": "eq", "value": "east"},
                {"field": "amount", "op": "gte", "value": 200},
            ]
        },
        "sort": ["-amount"],
        "fields": ["name", "amount", "notes"],
    },
    {
        "slug": "not_east",
        "label": "Not east",
        "table": "deals",
        "type": "grid",
        "filter": {"not": {"field": "region", "op": "eq", "value": "east"}},
    },
    {
        "slug": "by_region",
        "label": "By region",
        "table": "deals",
        "type": "kanban",
        "group_by": "region",
    },
]


def definition(**manager_grant: Any) -> dict[str, Any]:
    grants = copy.deepcopy(DEALS_PERMISSIONS)
    grants["manager"].update({"manage": True, **manager_grant})
    app = crm_definition(deals_permissions=grants)
    app["views"] = copy.deepcopy(VIEWS)
    return app


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    seeded = seed(rb)
    assert rb.install(definition(), SYSTEM).applied
    return seeded


def sign_in(client: FlaskClient, crm: Crm, person: str) -> None:
    with (
        crm.rb.write() as conn
    ):  # only the people a test signs in as get a password (hashing is slow)
        users.set_password(conn, SYSTEM, f"{person}@example.com", PASSWORD)
    response = login(client, f"{person}@example.com", PASSWORD)
    assert response.status_code == 303, response.status_code


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def headers(html: str) -> list[str]:
    return re.findall(r'<th scope="col" data-field="([a-z_]+)"', html)


def row_of(html: str, record_id: int) -> str:
    return html.split(f'<tr data-id="{record_id}"', 1)[1].split("</tr>", 1)[0]


def cell(html: str, record_id: int, field: str) -> str:
    found = re.search(
        rf'<td data-field="{field}"[^>]*><span class="cell-value">(.*?)</span>',
        row_of(html, record_id),
        re.S,
    )
    assert found, (record_id, field)
    return found.group(1).strip()


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


def deal(crm: Crm, record_id: int) -> Any:
    return crm.deals().get(record_id)


# --- filter builder -------------------------------------------------------------------------


def test_conditions_combine_with_all_or_any(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "viewer")
    both = {"field": ["amount", "region"], "op": ["gte", "eq"], "value": ["200", "east"]}
    page = client.get(DEALS, query_string=both)
    assert page.status_code == 200
    assert row_ids(page.text) == [2, 5]
    assert 'id="grid-total">2 records<' in page.text
    assert page.text.count('class="grid-condition"') == 2
    any_of = {
        "field": ["amount", "region"],
        "op": ["gte", "eq"],
        "value": ["400", "west"],
        "match": "any",
    }
    assert row_ids(client.get(DEALS, query_string=any_of).text) == [3, 4, 5]
    # Conditions not filled in are left out; valueless operators need none.
    partial = {
        "field": ["amount", "", "owner"],
        "op": ["gte", "eq", "is_empty"],
        "value": ["", "", ""],
    }
    assert row_ids(client.get(DEALS, query_string=partial).text) == [1, 2, 3, 4, 5][4:]
    listed = {"field": "region", "op": "ne", "value": "west"}
    assert row_ids(client.get(DEALS, query_string=listed).text) == [1, 2, 5]


def test_each_field_offers_only_its_operators(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    amount = client.get(
        f"{DEALS}/grid/condition", query_string={"field": "amount", "index": "2"}, headers=HTMX
    )
    assert amount.status_code == 200 and "<html" not in amount.text
    ops = re.findall(
        r'<option value="([a-z_]+)"', amount.text.split('name="op"', 1)[1].split("</select>", 1)[0]
    )
    assert ops == ["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "is_empty", "is_not_empty"]
    assert 'id="cond-field-2"' in amount.text and 'inputmode="decimal"' in amount.text
    # A choice is picked by its label; the operator falls back to the field's first one.
    region = client.get(
        f"{DEALS}/grid/condition", query_string={"field": "region", "op": "gte"}, headers=HTMX
    )
    value = region.text.split('name="value"', 1)[1].split("</select>", 1)[0]
    assert (
        '<option value="east">East</option>' in value
        and '<option value="west">West</option>' in value
    )
    assert '<option value="eq" selected>' in region.text
    # The phone is masked for the rep: not offered at all.
    page = client.get(DEALS)
    fields = page.text.split('id="grid-add-condition"', 1)[0]
    assert 'value="phone"' not in fields.split('name="sort_field"', 1)[0]
    empty = client.get(DEALS, query_string={"add": "condition"}, follow_redirects=True)
    options = re.findall(
        r'<option value="([a-z_]+)"',
        empty.text.split('id="cond-field-0"', 1)[1].split("</select>", 1)[0],
    )
    assert options == ["name", "region", "amount", "notes", "owner"]


def test_a_filter_on_a_field_not_read_in_clear_is_refused(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    page = client.get(
        DEALS,
        query_string={
            "field": ["name", "phone"],
            "op": ["contains", "eq"],
            "value": ["a", PHONES[1]],
        },
    )
    assert page.status_code == 422
    assert 'cannot filter by "phone"' in page.text.replace("&#34;", '"')
    assert row_ids(page.text) == []
    error = re.search(
        r'<small class="grid-condition-error" role="alert">(.*?)</small>', page.text, re.S
    )
    assert error and "phone" in error.group(1)
    assert page.text.count('aria-invalid="true"') == 1
    wrong = client.get(DEALS, query_string={"field": "amount", "op": "contains", "value": "1"})
    assert wrong.status_code == 422 and "contains" in wrong.text


def test_conditions_are_added_and_removed_without_javascript(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "viewer")
    added = client.get(
        DEALS,
        query_string={
            "s": "form",
            "q": "a",
            "field": "amount",
            "op": "gte",
            "value": "300",
            "add": "condition",
        },
    )
    assert added.status_code == 303
    query = query_of(added.headers["Location"])
    assert (
        query["field"] == ["amount", ""] and query["value"] == ["300", ""] and query["q"] == ["a"]
    )
    assert "add" not in query
    page = client.get(added.headers["Location"])
    assert page.text.count('class="grid-condition"') == 2
    removed = client.get(
        DEALS,
        query_string={
            "field": ["amount", "region"],
            "op": ["gte", "eq"],
            "value": ["300", "west"],
            "remove": "0",
        },
    )
    assert query_of(removed.headers["Location"])["field"] == ["region"]
    # With htmx: the new state is rendered at once and its URL pushed.
    part = client.get(DEALS, query_string={"add": "condition"}, headers=HTMX)
    assert part.status_code == 200 and "<html" not in part.text
    assert part.headers["HX-Push-Url"] == f"{DEALS}?field=&op=&value="


# --- sorting and columns --------------------------------------------------------------------


def test_several_sort_keys(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "viewer")
    page = client.get(DEALS, query_string={"sort": ["region", "-amount"]})
    assert row_ids(page.text) == [5, 2, 1, 4, 3]
    form = {"s": "form", "sort_field": ["region", "amount"], "sort_dir": ["asc", "desc"]}
    assert row_ids(client.get(DEALS, query_string=form).text) == [5, 2, 1, 4, 3]
    # A header click sorts by that column alone; clicking it again reverses.
    assert f'href="{DEALS}?sort=name"' in page.text
    one = client.get(DEALS, query_string={"sort": "amount"})
    assert f'href="{DEALS}?sort=-amount"' in one.text and 'aria-sort="ascending"' in one.text
    added = client.get(DEALS, query_string={"sort": "region", "add": "sort"})
    assert query_of(added.headers["Location"])["sort"] == ["region", ""]
    # The controls form without sort keys: "Add sort" gives one row to fill in, and the form alone
    # (its rows all removed) clears the sort.
    first = client.get(DEALS, query_string={"s": "form", "sort": "region", "add": "sort"})
    assert query_of(first.headers["Location"])["sort"] == [""]
    cleared = client.get(DEALS, query_string={"s": "form", "sort": "-amount"})
    assert cleared.status_code == 200 and row_ids(cleared.text) == row_ids(client.get(DEALS).text)
    removed = client.get(DEALS, query_string={"sort": ["region", "-amount"], "remove_sort": "0"})
    assert query_of(removed.headers["Location"])["sort"] == ["-amount"]
    refused = client.get(DEALS, query_string={"sort": ["name", "-phone"]})
    assert refused.status_code == 422 and row_ids(refused.text) == []


def test_columns_are_hidden_and_reordered_in_the_url(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "viewer")
    page = client.get(DEALS, query_string={"cols": "amount,name"})
    assert headers(page.text) == ["amount", "name"]
    assert 'data-field="region"' not in row_of(page.text, 1)
    assert (
        'href="/apps/crm/tables/deals?cols=amount,name&amp;sort=name"' in page.text
    )  # the state travels
    # The form's checkboxes, in their (dragged) order; the arrows move a column.
    form = client.get(DEALS, query_string={"s": "form", "col": ["region", "name"]})
    assert headers(form.text) == ["region", "name"]
    moved = client.get(
        DEALS, query_string={"s": "form", "col": ["region", "name"], "move": "name:-1"}
    )
    assert query_of(moved.headers["Location"])["cols"] == ["name,region"]
    # A column the user may not read is dropped, whatever the URL says.
    hidden = client.get(DEALS, query_string={"cols": "notes,name"})
    assert headers(hidden.text) == ["name"] and "call after lunch" not in hidden.text


# --- views ----------------------------------------------------------------------------------


def test_a_definition_view_is_the_starting_state(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "viewer")
    page = client.get(DEALS, query_string={"view": "big_east"})
    assert page.status_code == 200
    assert row_ids(page.text) == [5, 2]
    assert headers(page.text) == ["name", "amount"]  # notes: hidden from the viewer
    assert page.text.count('class="grid-condition"') == 2
    assert 'aria-current="page">Big east deals<' in page.text
    assert 'name="view" value="big_east"' in page.text
    # A filter that is not a flat list of conditions stays the view's own.
    other = client.get(DEALS, query_string={"view": "not_east"})
    assert row_ids(other.text) == [3, 4]
    assert "own filter applies as well." in other.text
    narrowed = client.get(
        DEALS,
        query_string={"view": "not_east", "s": "1", "field": "amount", "op": "gt", "value": "300"},
    )
    assert row_ids(narrowed.text) == [4]
    for missing in ("nothing", "by_region"):  # only grid views of this table
        assert client.get(DEALS, query_string={"view": missing}).status_code == 404


def test_saving_and_opening_a_personal_view(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    sign_in(client, crm, "rep")
    page = client.get(DEALS, query_string={"q": "a", "sort": "-name", "cols": "name,region"})
    token = csrf_from(page.text)
    query = re.search(r'name="query" value="([^"]*)"', page.text)
    assert query
    saved = client.post(
        f"{DEALS}/views",
        data={"csrf_token": token, "name": "Mine", "query": query.group(1).replace("&amp;", "&")},
    )
    assert saved.status_code == 303
    view_id = int(query_of(saved.headers["Location"])["saved"][0])
    view = saved_views.get_view(rb, crm["rep"], "crm", "deals", view_id)
    assert view.state == {
        "filter": None,
        "sort": ["-name"],
        "fields": ["name", "region"],
        "search": "a",
    }
    opened = client.get(saved.headers["Location"])
    assert headers(opened.text) == ["name", "region"] and row_ids(opened.text) == [3, 1]
    assert 'aria-current="page">Mine<' in opened.text and 'value="Mine"' in opened.text
    # Sharing needs manage: refused, nothing saved.
    refused = client.post(
        f"{DEALS}/views", data={"csrf_token": token, "name": "Ours", "shared": "yes", "query": ""}
    )
    assert refused.status_code == 403
    assert [v.name for v in saved_views.list_views(rb, crm["rep"], "crm", "deals")] == ["Mine"]
    # Another user's personal view is not there for anyone else.
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, crm, "other_rep")
    assert client.get(DEALS, query_string={"saved": view_id}).status_code == 404
    assert 'data-saved-view="' not in client.get(DEALS).text
    token = csrf_from(client.get(DEALS).text)
    for action in ("rename", "delete"):
        response = client.post(
            f"{DEALS}/views/{view_id}",
            data={"csrf_token": token, "action": action, "name": "Stolen"},
        )
        assert response.status_code == 404
    assert saved_views.get_view(rb, crm["rep"], "crm", "deals", view_id).name == "Mine"


def test_a_saved_view_that_does_not_compile_is_refused(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, crm, "rep")
    token = csrf_from(client.get(DEALS).text)
    bad = client.post(
        f"{DEALS}/views",
        data={"csrf_token": token, "name": "Phones", "query": "field=phone&op=is_empty&value="},
    )
    assert bad.status_code == 422
    assert 'id="grid-views-error"' in bad.text and "phone" in bad.text
    unnamed = client.post(f"{DEALS}/views", data={"csrf_token": token, "name": " ", "query": ""})
    assert unnamed.status_code == 422
    assert saved_views.list_views(rb, crm["rep"], "crm", "deals") == []


def test_a_shared_view_runs_as_the_user_opening_it(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    state = {
        "filter": {"field": "phone", "op": "is_not_empty"},
        "sort": ["-amount"],
        "fields": ["name", "phone", "notes"],
    }
    shared = saved_views.save_view(
        rb, crm["manager"], "crm", "deals", "With phone", state, shared=True
    )
    sign_in(client, crm, "viewer")
    page = client.get(DEALS, query_string={"saved": shared.id})
    assert page.status_code == 422  # the viewer may not filter by the phone it sees masked
    assert row_ids(page.text) == [] and not any(p in page.text for p in PHONES.values())
    assert "call after lunch" not in page.text
    # Renaming or deleting it needs manage.
    token = csrf_from(client.get(DEALS).text)
    for action in ("rename", "delete"):
        response = client.post(
            f"{DEALS}/views/{shared.id}",
            data={"csrf_token": token, "action": action, "name": "Mine now"},
        )
        assert response.status_code == 403
    assert saved_views.get_view(rb, crm["manager"], "crm", "deals", shared.id).name == "With phone"


def test_the_manager_shares_renames_replaces_and_deletes(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, crm, "manager")
    token = csrf_from(client.get(DEALS).text)
    saved = client.post(
        f"{DEALS}/views",
        data={"csrf_token": token, "name": "Team", "shared": "yes", "query": "sort=-amount"},
    )
    view_id = int(query_of(saved.headers["Location"])["saved"][0])
    assert saved_views.get_view(rb, crm["viewer"], "crm", "deals", view_id).shared
    renamed = client.post(
        f"{DEALS}/views/{view_id}",
        data={"csrf_token": token, "action": "rename", "name": "East team", "shared": "yes"},
    )
    assert renamed.status_code == 303
    replaced = client.post(
        f"{DEALS}/views/{view_id}",
        data={"csrf_token": token, "action": "replace", "query": "s=1&sort=name&cols=name"},
    )
    assert replaced.status_code == 303
    view = saved_views.get_view(rb, crm["viewer"], "crm", "deals", view_id)
    assert (view.name, view.state["sort"], view.state["fields"]) == (
        "East team",
        ["name"],
        ["name"],
    )
    deleted = client.post(
        f"{DEALS}/views/{view_id}", data={"csrf_token": token, "action": "delete"}
    )
    assert deleted.status_code == 303
    with pytest.raises(NotFound):
        saved_views.get_view(rb, crm["manager"], "crm", "deals", view_id)
    missing_token = client.post(f"{DEALS}/views", data={"name": "x", "query": ""})
    assert missing_token.status_code == 403


# --- cells ----------------------------------------------------------------------------------


def test_cells_are_formatted_for_the_users_language(client: FlaskClient, crm: Crm) -> None:
    crm.deals().update(5, {"amount": "1234567.5"}, version=1)
    sign_in(client, crm, "viewer")
    assert cell(client.get(DEALS).text, 5, "amount") == "CN¥1,234,567.50"
    zh = client.get(DEALS, headers={"Accept-Language": "zh-CN"})
    assert cell(zh.text, 5, "amount") == "¥1,234,567.50"


def test_a_long_value_keeps_to_its_line_and_shows_whole_on_hover(client: FlaskClient, crm: Crm) -> None:
    long = "Call the buyer about the second delivery before the end of the quarter"
    crm.deals().update(5, {"notes": long}, version=1)
    sign_in(client, crm, "manager")
    row = row_of(client.get(DEALS).text, 5)
    assert f'<td data-field="notes" title="{long}"><span class="cell-value">{long}</span>' in row
    assert 'data-field="name"><span' in row  # a short value needs no title


def test_new_record_link_needs_the_create_right(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    assert f'href="{DEALS}/new"' in client.get(DEALS).text
    client.post("/logout", data={"csrf_token": csrf_from(client.get(DEALS).text)})
    sign_in(client, crm, "viewer")
    page = client.get(DEALS)
    assert f'href="{DEALS}/new"' not in page.text
    assert 'class="cell-edit"' not in page.text and 'id="grid-bulk"' not in page.text


def test_a_cell_is_edited_with_the_rows_version(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    page = client.get(DEALS)
    assert '<tr data-id="1" data-version="1"' in page.text
    edit = re.search(r'href="([^"]*/records/1/cells/name[^"]*)"', page.text)
    assert edit
    form = client.get(edit.group(1).replace("&amp;", "&"), headers=HTMX)
    assert form.status_code == 200 and form.text.lstrip().startswith('<tr data-id="1"')
    assert 'name="value" value="Acme"' in form.text and 'name="version" value="1"' in form.text
    saved = client.post(
        f"{DEALS}/records/1/cells/name",
        data={
            "csrf_token": csrf_from(form.text),
            "value": "Acme Corp",
            "version": "1",
            "cols": "name,amount",
        },
        headers=HTMX,
    )
    assert saved.status_code == 200
    assert (
        '<tr data-id="1" data-version="2"' in saved.text
        and cell(saved.text, 1, "name") == "Acme Corp"
    )
    assert re.findall(r'<td data-field="([a-z_]+)"', saved.text) == ["name", "amount"]
    assert deal(crm, 1).fields["name"] == "Acme Corp"
    # A choice by its id from a select; emptying a field sends "".
    client.post(
        f"{DEALS}/records/1/cells/region",
        data={"csrf_token": csrf_from(form.text), "value": "west", "version": "2"},
        headers=HTMX,
    )
    client.post(
        f"{DEALS}/records/1/cells/notes",
        data={"csrf_token": csrf_from(form.text), "value": "", "version": "3"},
        headers=HTMX,
    )
    assert (deal(crm, 1).fields["region"], deal(crm, 1).fields["notes"], deal(crm, 1).version) == (
        "west",
        None,
        4,
    )


def test_a_stale_version_shows_the_conflict_instead_of_overwriting(
    client: FlaskClient, crm: Crm
) -> None:
    sign_in(client, crm, "rep")
    token = csrf_from(client.get(DEALS).text)
    crm.deals().update(1, {"name": "Acme (theirs)"}, version=1)
    conflict = client.post(
        f"{DEALS}/records/1/cells/name",
        data={"csrf_token": token, "value": "Acme (mine)", "version": "1"},
        headers=HTMX,
    )
    assert conflict.status_code == 409
    assert '<strong class="grid-theirs">Acme (theirs)</strong>' in conflict.text
    assert '<strong class="grid-yours">Acme (mine)</strong>' in conflict.text
    assert 'name="version" value="2"' in conflict.text  # "overwrite" sends the version just seen
    assert 'class="secondary grid-cancel"' in conflict.text  # "keep theirs"
    assert deal(crm, 1).fields["name"] == "Acme (theirs)"
    overwrite = client.post(
        f"{DEALS}/records/1/cells/name",
        data={"csrf_token": token, "value": "Acme (mine)", "version": "2"},
        headers=HTMX,
    )
    assert overwrite.status_code == 200 and deal(crm, 1).fields["name"] == "Acme (mine)"
    keep = client.get(f"{DEALS}/records/1/row", headers=HTMX)
    assert (
        keep.status_code == 200
        and 'data-version="3"' in keep.text
        and "grid-cell-form" not in keep.text
    )


def test_a_conflict_never_shows_a_masked_value_in_clear(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    token = csrf_from(client.get(DEALS).text)
    crm.deals().update(1, {"phone": "+8613811112222"}, version=1)
    conflict = client.post(
        f"{DEALS}/records/1/cells/phone",
        data={"csrf_token": token, "value": "+8613800000000", "version": "1"},
        headers=HTMX,
    )
    assert conflict.status_code == 409
    assert "+8613811112222" not in conflict.text and "+86 138****2222" in conflict.text


def test_invalid_values_are_shown_next_to_the_cell(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    token = csrf_from(client.get(DEALS).text)
    invalid = client.post(
        f"{DEALS}/records/1/cells/amount",
        data={"csrf_token": token, "value": "lots", "version": "1"},
        headers=HTMX,
    )
    assert invalid.status_code == 422
    error = re.search(
        r'<small id="edit-1-amount-error" class="grid-cell-error" role="alert">(.*?)</small>',
        invalid.text,
        re.S,
    )
    assert error and "amount" in error.group(1)
    assert 'name="value" value="lots"' in invalid.text and 'aria-invalid="true"' in invalid.text
    assert deal(crm, 1).version == 1
    # The manager sees the phone in clear, so it may be edited in place.
    page = client.get(DEALS)
    assert f"{DEALS}/records/1/cells/phone" in page.text
    form = client.get(f"{DEALS}/records/1/cells/phone", query_string={"version": "1"}, headers=HTMX)
    assert f'value="{PHONES[1]}"' in form.text
    region = client.get(f"{DEALS}/records/1/cells/region", headers=HTMX)
    assert '<option value="east" selected>East</option>' in region.text


def test_cells_the_user_may_not_change(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    page = client.get(DEALS)
    token = csrf_from(page.text)
    assert "/records/1/cells/amount" not in page.text  # amount is read-only for the rep
    assert "/records/1/cells/phone" not in page.text  # masked: never put into an input
    assert client.get(f"{DEALS}/records/1/cells/amount", headers=HTMX).status_code == 403
    assert client.get(f"{DEALS}/records/1/cells/phone", headers=HTMX).status_code == 403
    refused = client.post(
        f"{DEALS}/records/1/cells/amount",
        data={"csrf_token": token, "value": "1", "version": "1"},
        headers=HTMX,
    )
    assert refused.status_code == 403 and "You may not change this field." in refused.text
    assert deal(crm, 1).fields["amount"] == 100
    outside = client.post(
        f"{DEALS}/records/2/cells/name",
        data={"csrf_token": token, "value": "x", "version": "1"},
        headers=HTMX,
    )
    assert (
        outside.status_code == 404
        and client.get(f"{DEALS}/records/2/cells/name").status_code == 404
    )
    no_token = client.post(
        f"{DEALS}/records/1/cells/name", data={"value": "x", "version": "1"}, headers=HTMX
    )
    assert no_token.status_code == 403
    assert deal(crm, 1).fields["name"] == "Acme" and deal(crm, 2).fields["name"] == "Birch"
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, crm, "viewer")
    token = csrf_from(client.get(DEALS).text)
    assert client.get(f"{DEALS}/records/1/cells/name", headers=HTMX).status_code == 403
    assert (
        client.post(
            f"{DEALS}/records/1/cells/name",
            data={"csrf_token": token, "value": "x", "version": "1"},
        ).status_code
        == 403
    )
    assert deal(crm, 1).fields["name"] == "Acme"


def test_cells_are_edited_without_javascript_too(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    page = client.get(
        f"{DEALS}/records/3/cells/name", query_string={"version": "1", "next": f"{DEALS}?sort=name"}
    )
    assert page.status_code == 200 and "<html" in page.text and "hx-post" not in page.text
    saved = client.post(
        f"{DEALS}/records/3/cells/name",
        data={
            "csrf_token": csrf_from(page.text),
            "value": "Cedar II",
            "version": "1",
            "next": f"{DEALS}?sort=name",
        },
    )
    assert saved.status_code == 303 and saved.headers["Location"] == f"{DEALS}?sort=name"
    assert deal(crm, 3).fields["name"] == "Cedar II"
    evil = client.post(
        f"{DEALS}/records/3/cells/name",
        data={
            "csrf_token": csrf_from(page.text),
            "value": "Cedar",
            "version": "2",
            "next": "//evil.example/",
        },
    )
    assert evil.headers["Location"] == DEALS


# --- several rows ----------------------------------------------------------------------------


def test_bulk_update_reports_each_rows_failure(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    token = csrf_from(client.get(DEALS).text)
    crm.deals().update(5, {"notes": "changed meanwhile"}, version=1)
    rows = ["1:1", "2:1", "5:1", "3:1"]  # 5 is stale; 3 is not the manager's (west)
    done = client.post(
        f"{DEALS}/bulk",
        data={
            "csrf_token": token,
            "action": "update",
            "field": "notes",
            "value": "bulk",
            "row": rows,
        },
        headers=HTMX,
    )
    assert done.status_code == 200 and done.headers["HX-Trigger"] == "grid-changed"
    assert '<p id="grid-bulk-done">2 records updated.</p>' in done.text
    failures = dict(re.findall(r'<li data-id="(\d+)">Record \d+: (.*?)</li>', done.text))
    assert failures == {
        "5": "changed by someone else since the page was loaded",
        "3": "not found, or no longer yours to change",
    }
    assert [deal(crm, i).fields["notes"] for i in (1, 2, 5)] == [
        "bulk",
        "bulk",
        "changed meanwhile",
    ]
    assert crm.deals().get(3).fields["notes"] == "zebra crossing"
    invalid = client.post(
        f"{DEALS}/bulk",
        data={
            "csrf_token": token,
            "action": "update",
            "field": "amount",
            "value": "x",
            "row": ["1:2"],
        },
        headers=HTMX,
    )
    assert invalid.status_code == 409 and "amount" in invalid.text
    nothing = client.post(
        f"{DEALS}/bulk",
        data={"csrf_token": token, "action": "update", "field": "notes", "value": "x"},
    )
    assert nothing.status_code == 422 and "Select at least one record." in nothing.text


def test_select_all_on_this_page(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    page = client.get(DEALS, query_string={"sort": "-amount"})
    page_rows = re.findall(r'name="page_row" value="([0-9:]+)"', page.text)
    assert page_rows == ["5:1", "2:1", "1:1"]
    done = client.post(
        f"{DEALS}/bulk",
        data={
            "csrf_token": csrf_from(page.text),
            "action": "update",
            "field": "region",
            "value": "East",
            "all_page": "yes",
            "page_row": page_rows,
            "row": ["1:1"],
        },
    )
    assert done.status_code == 200 and "3 records updated." in done.text and "<html" in done.text
    assert [deal(crm, i).version for i in (1, 2, 5)] == [2, 2, 2]


def test_bulk_delete_asks_first(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    token = csrf_from(client.get(DEALS).text)
    ask = client.post(
        f"{DEALS}/bulk",
        data={"csrf_token": token, "action": "delete", "row": ["1:1", "2:1"]},
        headers=HTMX,
    )
    assert ask.status_code == 200 and 'id="grid-confirm"' in ask.text
    assert "<li>#1 · Acme</li>" in ask.text and "<li>#2 · Birch</li>" in ask.text
    assert "Delete 2 records" in ask.text
    assert row_ids(client.get(DEALS).text) == [1, 2, 5]  # nothing deleted yet
    done = client.post(
        f"{DEALS}/bulk",
        data={"csrf_token": token, "action": "delete", "row": ["1:1", "2:1"], "confirm": "yes"},
        headers=HTMX,
    )
    assert done.status_code == 200 and "2 records moved to the trash." in done.text
    assert row_ids(client.get(DEALS).text) == [5]
    with pytest.raises(NotFound):
        deal(crm, 1)
    assert crm.deals().restore(1).id == 1  # in the trash, restorable


def test_bulk_actions_need_their_rights(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    page = client.get(DEALS)
    token = csrf_from(page.text)
    assert 'value="delete"' not in page.text.split('id="grid-bulk"', 1)[1].split("</form>", 1)[0]
    assert (
        client.post(
            f"{DEALS}/bulk",
            data={"csrf_token": token, "action": "delete", "row": ["1:1"], "confirm": "yes"},
        ).status_code
        == 403
    )
    amount = client.post(
        f"{DEALS}/bulk",
        data={
            "csrf_token": token,
            "action": "update",
            "field": "amount",
            "value": "1",
            "row": ["1:1"],
        },
    )
    assert amount.status_code == 422 and "Choose a field you may change." in amount.text
    assert (
        client.post(
            f"{DEALS}/bulk",
            data={"action": "update", "field": "name", "value": "x", "row": ["1:1"]},
        ).status_code
        == 403
    )
    assert deal(crm, 1).version == 1
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, crm, "viewer")
    token = csrf_from(client.get(DEALS).text)
    refused = client.post(
        f"{DEALS}/bulk",
        data={
            "csrf_token": token,
            "action": "update",
            "field": "name",
            "value": "x",
            "row": ["1:1"],
        },
        headers=HTMX,
    )
    assert refused.status_code == 403 and "You are not allowed to do this." in refused.text
    assert "<html" not in refused.text and deal(crm, 1).version == 1


# --- who may reach the grid's routes ------------------------------------------------------------


ROUTES = [
    ("get", f"{DEALS}/grid/condition?field=name"),
    ("get", f"{DEALS}/records/1/row"),
    ("get", f"{DEALS}/records/1/cells/name"),
    ("post", f"{DEALS}/records/1/cells/name"),
    ("post", f"{DEALS}/bulk"),
    ("post", f"{DEALS}/views"),
    ("post", f"{DEALS}/views/1"),
]


def test_the_routes_need_sign_in(client: FlaskClient, crm: Crm) -> None:
    for method, path in ROUTES:
        response = getattr(client, method)(path)
        if method == "get":
            assert response.status_code == 303 and "/login?next=" in response.headers["Location"], (
                path
            )
        else:  # the CSRF check comes first for a POST without a token
            assert response.status_code in (303, 403), path
        assert "Acme" not in response.text


def test_a_user_without_a_role_in_the_app_gets_404(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "stranger")
    token = csrf_from(client.get("/").text)
    for method, path in ROUTES:
        kwargs: dict[str, Any] = (
            {
                "data": {
                    "csrf_token": token,
                    "action": "update",
                    "version": "1",
                    "row": ["1:1"],
                    "name": "x",
                }
            }
            if method == "post"
            else {}
        )
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 404, path
        assert "Acme" not in response.text


# --- the gallery's CRM ---------------------------------------------------------------------------


def test_the_gallery_crm_grid(client: FlaskClient, rb: Recordbase) -> None:
    from pathlib import Path

    from page_helpers import ADMIN, add_admin
    from recordbase.definition import load_definition_file

    definition, problems = load_definition_file(
        Path(__file__).resolve().parent.parent / "schemas/gallery/crm.json"
    )
    assert not problems and rb.install(definition, SYSTEM).applied
    add_admin(rb)
    company = rb.records(SYSTEM, "crm", "companies").create({"name": "Acme Ltd"})
    deals = rb.records(SYSTEM, "crm", "deals")
    deals.create_many(
        [
            {
                "name": "Renewal",
                "company": company.id,
                "amount": "120000",
                "stage": "proposal",
                "probability": "12.5",
                "close_date": "2026-05-01",
            },
            {
                "name": "Lost cause",
                "company": company.id,
                "stage": "lost",
                "close_date": "2026-04-01",
            },
        ]
    )
    assert login(client, *ADMIN).status_code == 303
    page = client.get("/apps/crm/tables/deals", query_string={"view": "open_deals"})
    assert page.status_code == 200
    assert row_ids(page.text) == [1]  # "not won or lost": the view's own filter
    assert headers(page.text) == [
        "number",
        "name",
        "company",
        "stage",
        "amount",
        "probability",
        "close_date",
        "owner",
    ]
    assert cell(page.text, 1, "close_date") == "May 1, 2026"
    assert cell(page.text, 1, "probability") == "12.50 %"
    assert cell(page.text, 1, "company") == "Acme Ltd" and cell(page.text, 1, "stage") == "Proposal"
    assert (
        "/records/1/cells/company" not in page.text and "/records/1/cells/number" not in page.text
    )
    zh = client.get(
        "/apps/crm/tables/deals",
        query_string={"view": "open_deals"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert (
        cell(zh.text, 1, "close_date") == "2026年5月1日" and cell(zh.text, 1, "stage") == "方案报价"
    )
    edit = client.get("/apps/crm/tables/deals/records/1/cells/close_date", headers=HTMX)
    assert 'type="date"' in edit.text and 'value="2026-05-01"' in edit.text
    saved = client.post(
        "/apps/crm/tables/deals/records/1/cells/close_date",
        data={"csrf_token": csrf_from(edit.text), "value": "2026-06-30", "version": "1"},
        headers=HTMX,
    )
    assert saved.status_code == 200 and cell(saved.text, 1, "close_date") == "Jun 30, 2026"
    assert str(deals.get(1).fields["close_date"]) == "2026-06-30"
