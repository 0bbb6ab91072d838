"""Browser pages: a record's page (links both ways, edit, assignment, comments, history) and the inbox.

The gallery CRM of ``test_collab`` (``seed_crm``), signed in as its people:
Mei the east sales manager, Ravi and Rosa the reps (each reads its own
deals), Mark from marketing (won and lost deals only), Stan without a role,
and Ada the administrator.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from page_helpers import csrf_from, login, token
from recordbase import collab
from recordbase.core import Recordbase
from test_collab import PASSWORD, SECRET, SYSTEM, Crm, seed_crm

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

DEALS = "/apps/crm/tables/deals"
DEAL_1 = f"{DEALS}/records/1"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    return seed_crm(rb, passwords=True)


def sign_in(client: FlaskClient, person: str) -> None:
    response = login(client, f"{person}@example.com", PASSWORD)
    assert response.status_code == 303, response.status_code


def page_token(client: FlaskClient, path: str = DEAL_1) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return csrf_from(page.text)


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"', 1)[1].split("</section>", 1)[0]


def notifications(rb: Recordbase) -> list[tuple[int, str, int]]:
    with rb.read() as conn:
        rows = conn.execute(
            sa.text("SELECT user_id, kind, record_id FROM rb_notification ORDER BY id")
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


# --- the record ----------------------------------------------------------------------------


def test_links_both_ways_users_by_name_and_an_edit_link(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "ravi")
    page = client.get(DEAL_1)
    assert page.status_code == 200
    html = page.text
    fields = section(html, "fields-heading")
    assert '<a href="/apps/crm/tables/companies/records/1">Acme Ltd</a>' in fields
    assert '<a href="/apps/crm/tables/contacts/records/1">Wang Fang</a>' in fields
    assert re.search(r'id="field-owner"[^>]*>\s*<span class="value">Ravi Rep</span>', html)
    incoming = section(html, "links-activities-deal-section")
    assert '<a href="/apps/crm/tables/activities/records/1">Call Acme</a>' in incoming
    assert 'data-count="1"' in incoming
    assert 'href="/apps/crm/tables/deals/records/1/edit"' in html
    # The company: Ravi reads only his deals among those linking there.
    company = client.get("/apps/crm/tables/companies/records/1").text
    deals = section(company, "links-deals-company-section")
    assert "Acme renewal" in deals and "Birch deal" not in deals and 'data-count="1"' in deals
    assert "Wang Fang" in section(company, "links-contacts-company-section")


def test_marketing_sees_only_its_rows_linking_here_and_no_edit(
    client: FlaskClient, crm: Crm
) -> None:
    sign_in(client, "mark")
    company = client.get("/apps/crm/tables/companies/records/1").text
    deals = section(company, "links-deals-company-section")
    assert "Birch deal" in deals and "Acme renewal" not in deals  # won deals only
    assert "links-activities" not in company  # no grant on activities at all
    deal = client.get(f"{DEALS}/records/2").text
    assert "/edit" not in deal and 'id="assign"' not in deal


def test_a_record_outside_the_rows_is_404(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rosa")
    assert client.get(DEAL_1).status_code == 404
    assert "Acme renewal" not in client.get(DEAL_1).text
    client.post("/logout", data={"csrf_token": page_token(client, f"{DEALS}/records/2")})
    sign_in(client, "stan")
    assert client.get(DEAL_1).status_code == 404


def test_record_page_needs_sign_in(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    anonymous = token(client)  # a visitor's own valid token: sign-in, not CSRF, is what stops them
    for response in (
        client.get(DEAL_1),
        client.post(f"{DEAL_1}/comments", data={"csrf_token": anonymous, "body": "hi"}),
        client.post(
            f"{DEAL_1}/assign",
            data={"csrf_token": anonymous, "field": "owner", "user": "1", "version": "1"},
        ),
        client.post(f"{DEAL_1}/comments/1/delete", data={"csrf_token": anonymous}),
        client.get("/inbox"),
        client.post("/inbox/read-all", data={"csrf_token": anonymous}),
        client.post("/inbox/1/read", data={"csrf_token": anonymous}),
    ):
        assert response.status_code == 303
        assert "/login" in response.headers["Location"]
    assert collab.list_comments(rb, SYSTEM, "crm", "deals", 1) == []


def test_history_names_choices_links_and_users(client: FlaskClient, crm: Crm) -> None:
    deals = crm.store("deals")
    deal = deals.get(1)
    deals.update(
        1, {"stage": "proposal", "owner": crm.ids["rosa"], "contact": None}, version=deal.version
    )
    sign_in(client, "mei")
    history = client.get(DEAL_1).text.split('id="history"', 1)[1]
    assert '<span class="before">Qualified</span> → <span class="after">Proposal</span>' in history
    assert '<span class="before">Ravi Rep</span> → <span class="after">Rosa Rep</span>' in history
    assert '<span class="before">Wang Fang</span> → <span class="after">—</span>' in history
    assert ">qualified<" not in history


def test_values_and_history_are_written_for_the_users_language(client: FlaskClient, crm: Crm) -> None:
    deals = crm.store("deals")
    deals.update(1, {"amount": "1234567.5", "close_date": "2026-03-05"}, version=deals.get(1).version)
    sign_in(client, "mei")
    page = client.get(DEAL_1, headers={"Accept-Language": "zh-CN"}).text
    fields, history = page.split('id="history"', 1)
    assert "¥1,234,567.50" in fields and "2026年3月5日" in fields  # as the grid writes them
    assert '<span class="before">¥120,000.00</span> → <span class="after">¥1,234,567.50</span>' in history
    assert '<span class="after">2026年3月5日</span>' in history
    # The creation stamp in the user's time zone and language, never the stored ISO text.
    assert re.search(r">[^<]*\d{4}-\d\d-\d\dT[^<]*<", page) is None  # (a <time datetime=…> keeps it)
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d:\d\d", fields)  # the creation stamp


# --- comments -------------------------------------------------------------------------------


def test_comment_with_mentions_through_the_page(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, "ravi")
    page = client.get(DEAL_1).text
    picker = page.split('id="comment-mention"', 1)[1].split("</select>", 1)[0]
    assert "Mei Manager" in picker and "Ada" not in picker
    assert "Rosa Rep" not in picker and "Mark Marketing" not in picker  # they cannot read deal 1
    response = client.post(
        f"{DEAL_1}/comments",
        data={
            "csrf_token": csrf_from(page),
            "body": "@Mei Manager and @Rosa Rep: look <b>here</b>",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{DEAL_1}#comments")
    again = client.get(DEAL_1).text
    comments = section(again, "comments-heading")
    assert '<span class="mention">@Mei Manager</span>' in comments
    assert "look &lt;b&gt;here&lt;/b&gt;" in comments  # escaped, never markup
    assert "Rosa Rep was not notified: they cannot read this record." in again
    assert notifications(rb) == [(crm.ids["mei"], "mention", 1)]
    assert "commented" in again.split('id="history"', 1)[1]


def test_the_picker_mentions_without_javascript(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, "ravi")
    client.post(
        f"{DEAL_1}/comments",
        data={"csrf_token": page_token(client), "body": "see this", "mention": str(crm.ids["mei"])},
    )
    [comment] = collab.list_comments(rb, SYSTEM, "crm", "deals", 1)
    assert comment.body == f"see this @[user:{crm.ids['mei']}]"
    assert notifications(rb) == [(crm.ids["mei"], "mention", 1)]


def test_htmx_comment_answers_with_the_comments_only(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "ravi")
    response = client.post(
        f"{DEAL_1}/comments",
        data={"csrf_token": page_token(client), "body": "quick note"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith(
        '<section aria-labelledby="comments-heading" id="comments"'
    )
    assert "quick note" in response.text and "Ravi Rep" in response.text
    refused = client.post(
        f"{DEAL_1}/comments", data={"csrf_token": page_token(client), "body": "  "}, headers=HTMX
    )
    assert refused.status_code == 422 and "<html" not in refused.text
    assert "a comment cannot be empty" in refused.text


@pytest.mark.parametrize("body", ["", "x" * (collab.MAX_COMMENT_LENGTH + 1)])
def test_empty_or_long_comments_are_refused(
    client: FlaskClient, crm: Crm, rb: Recordbase, body: str
) -> None:
    sign_in(client, "ravi")
    response = client.post(
        f"{DEAL_1}/comments", data={"csrf_token": page_token(client), "body": body}
    )
    assert response.status_code == 422
    assert 'id="comment-error"' in response.text and "<html" in response.text
    assert collab.list_comments(rb, SYSTEM, "crm", "deals", 1) == []


def test_commenting_needs_read_access_and_a_csrf_token(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, "rosa")
    token = page_token(client, f"{DEALS}/records/2")
    outside = client.post(f"{DEAL_1}/comments", data={"csrf_token": token, "body": "sneaky"})
    missing = client.post(
        f"{DEALS}/records/99/comments", data={"csrf_token": token, "body": "sneaky"}
    )
    assert outside.status_code == missing.status_code == 404
    no_token = client.post(f"{DEALS}/records/2/comments", data={"body": "no token"})
    assert no_token.status_code == 403
    assert collab.list_comments(rb, SYSTEM, "crm", "deals", 1) == []
    assert collab.list_comments(rb, SYSTEM, "crm", "deals", 2) == []


def test_deleting_comments(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    theirs = collab.add_comment(rb, crm.actor("mei"), "crm", "deals", 1, "from the manager").comment
    mine = collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "from the rep").comment
    sign_in(client, "ravi")
    page = client.get(DEAL_1).text
    assert f"/comments/{mine.id}/delete" in page and f"/comments/{theirs.id}/delete" not in page
    token = csrf_from(page)
    refused = client.post(f"{DEAL_1}/comments/{theirs.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 403
    assert (
        client.post(f"{DEAL_1}/comments/{mine.id}/delete", data={}).status_code == 403
    )  # no CSRF token
    done = client.post(
        f"{DEAL_1}/comments/{mine.id}/delete", data={"csrf_token": token}, headers=HTMX
    )
    assert (
        done.status_code == 200
        and "from the rep" not in done.text
        and "from the manager" in done.text
    )
    assert [c.id for c in collab.list_comments(rb, SYSTEM, "crm", "deals", 1)] == [theirs.id]


# --- assignment -----------------------------------------------------------------------------


def test_assign_to_a_member_notifies_them(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    sign_in(client, "mei")
    page = client.get(DEAL_1).text
    form = section(page, "assign-heading")
    assert 'name="version" value="1"' in form and "Rosa Rep" in form and "Stan" not in form
    response = client.post(
        f"{DEAL_1}/assign",
        data={
            "csrf_token": csrf_from(page),
            "field": "owner",
            "user": str(crm.ids["rosa"]),
            "version": "1",
        },
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("#assign")
    assert crm.store("deals").get(1).fields["owner"] == crm.ids["rosa"]
    assert notifications(rb) == [(crm.ids["rosa"], "assigned", 1)]
    assert "Rosa Rep was notified in their inbox." in client.get(DEAL_1).text


def test_an_assignee_without_a_role_stays_shown_and_kept(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    deals = crm.store("deals")
    deals.update(1, {"owner": crm.ids["stan"]}, version=deals.get(1).version)  # Stan has no role
    version = deals.get(1).version
    sign_in(client, "mei")
    page = client.get(DEAL_1).text
    form = section(page, "assign-heading")
    assert (
        f'<option value="{crm.ids["stan"]}" selected>Stan Stranger (not one of this app\'s people)</option>'
        in form
    )
    assert '<option value="" selected>' not in form  # not shown as "Nobody"
    kept = client.post(
        f"{DEAL_1}/assign",
        data={"csrf_token": csrf_from(page), "field": "owner", "user": str(crm.ids["stan"]),
              "version": str(version)},
    )
    assert kept.status_code == 303
    assert deals.get(1).fields["owner"] == crm.ids["stan"] and notifications(rb) == []
    # Choosing him again once someone else is assigned is refused: he is not one of the app's people.
    deals.update(1, {"owner": crm.ids["rosa"]}, version=deals.get(1).version)
    refused = client.post(
        f"{DEAL_1}/assign",
        data={"csrf_token": csrf_from(page), "field": "owner", "user": str(crm.ids["stan"]),
              "version": str(deals.get(1).version)},
    )
    assert refused.status_code == 422 and deals.get(1).fields["owner"] == crm.ids["rosa"]


def test_assign_with_a_stale_version_is_a_conflict(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, "mei")
    token = page_token(client)
    deal = crm.store("deals").get(1)
    crm.store("deals").update(1, {"stage": "proposal"}, version=deal.version)
    response = client.post(
        f"{DEAL_1}/assign",
        data={"csrf_token": token, "field": "owner", "user": str(crm.ids["rosa"]), "version": "1"},
    )
    assert response.status_code == 409
    assert "Someone else changed this record meanwhile." in response.text
    assert 'name="version" value="2"' in response.text  # the form now carries the current version
    assert crm.store("deals").get(1).fields["owner"] == crm.ids["ravi"]
    assert notifications(rb) == []


def test_assign_to_someone_who_cannot_read_does_not_notify(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, "mei")
    client.post(
        f"{DEAL_1}/assign",
        data={
            "csrf_token": page_token(client),
            "field": "owner",
            "user": str(crm.ids["mark"]),
            "version": "1",
        },
    )
    assert crm.store("deals").get(1).fields["owner"] == crm.ids["mark"]
    assert notifications(rb) == []
    assert (
        "Mark Marketing was not notified: they cannot read this record." in client.get(DEAL_1).text
    )


def test_assign_denials(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    sign_in(client, "ravi")
    page = client.get(DEAL_1).text
    assert 'id="assign"' not in page  # the owner field is not the rep's to give away
    token = csrf_from(page)
    data = {"csrf_token": token, "field": "owner", "user": str(crm.ids["rosa"]), "version": "1"}
    assert client.post(f"{DEAL_1}/assign", data=data).status_code == 403
    assert (
        client.post(f"{DEALS}/records/2/assign", data=data).status_code == 404
    )  # not in Ravi's rows
    assert client.post(f"{DEAL_1}/assign", data={**data, "field": "stage"}).status_code == 404
    client.post("/logout", data={"csrf_token": token})
    sign_in(client, "mei")
    no_token = client.post(
        f"{DEAL_1}/assign", data={k: v for k, v in data.items() if k != "csrf_token"}
    )
    assert no_token.status_code == 403
    assert crm.store("deals").get(1).fields["owner"] == crm.ids["ravi"]
    assert notifications(rb) == []


# --- the inbox --------------------------------------------------------------------------------


def test_inbox_lists_marks_read_and_counts(
    client: FlaskClient, crm: Crm, rb: Recordbase, app: Flask
) -> None:
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, "have a look @Mei Manager")
    collab.notify(rb, crm.ids["mei"], "assigned", "crm", "deals", 1, crm.actor("ada"))
    sign_in(client, "mei")
    with client:
        page = client.get("/inbox")
        assert render_template_string("{{ inbox_unread() }}") == "2"
    assert page.status_code == 200
    assert 'data-unread="2"' in page.text
    items = page.text.split('<ol class="inbox-items">', 1)[1]
    assert items.index("assigned you to") < items.index(
        "mentioned you in a comment on"
    )  # newest first
    assert 'href="/apps/crm/tables/deals/records/1#comment-1">Acme renewal</a>' in items
    first = re.findall(r'id="notification-(\d+)"', items)
    token = csrf_from(page.text)
    done = client.post(f"/inbox/{first[0]}/read", data={"csrf_token": token}, headers=HTMX)
    assert done.status_code == 200 and "<html" not in done.text and 'data-unread="1"' in done.text
    assert client.post("/inbox/read-all", data={"csrf_token": token}).status_code == 303
    assert 'data-unread="0"' in client.get("/inbox").text
    assert collab.unread_count(rb, crm.actor("mei")) == 0


def test_inbox_denials(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    theirs = collab.notify(rb, crm.ids["rosa"], "assigned", "crm", "deals", 2, SYSTEM)
    mine = collab.notify(rb, crm.ids["mei"], "assigned", "crm", "deals", 1, SYSTEM)
    sign_in(client, "mei")
    token = page_token(client, "/inbox")
    assert client.post(f"/inbox/{theirs}/read", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/inbox/{mine}/read", data={}).status_code == 403
    assert client.post("/inbox/read-all", data={}).status_code == 403
    assert collab.unread_count(rb, crm.actor("rosa")) == 1
    assert collab.unread_count(rb, crm.actor("mei")) == 1


def test_inbox_never_shows_a_record_the_reader_lost(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    collab.add_comment(rb, crm.actor("ravi"), "crm", "deals", 1, f"{SECRET} @Mei Manager")
    deal = crm.store("deals").get(1)
    crm.store("deals").update(1, {"region": "west"}, version=deal.version)  # out of Mei's region
    sign_in(client, "mei")
    page = client.get("/inbox").text
    assert "a record that is no longer available to you" in page
    assert "Acme renewal" not in page and "zebra" not in page and "/records/1" not in page
