"""Browser pages, the builder: change an app's definition through the engine's check, plan and install.

The gallery's CRM is installed as the system. People:

- the administrator may change anything and start new apps;
- ``manager`` (role ``sales_manager``) has ``manage`` on companies and deals
  only, and may not touch privacy rules (roles, permissions, sensitivity);
- ``rep`` (``sales_rep``) has a role but manages nothing: 403;
- ``stranger`` has no role in the CRM: 404, like an app that is not there.

The tests post the editor's form as a browser would (every enabled input,
read from the page), so what the page shows is what the next step sends.
"""

from __future__ import annotations

import io
import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from page_helpers import ADMIN, SYSTEM, add_admin, csrf_from, login
from recordbase.core import Recordbase
from recordbase_web.builder import plan_digest
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"
EDITOR = "/builder/apps/crm"
PASSWORD = "builder-password-1"


@pytest.fixture
def crm(rb: Recordbase) -> dict[str, Any]:
    definition = json.loads(CRM.read_text(encoding="utf-8"))
    assert rb.install(definition, SYSTEM).applied
    add_admin(rb)
    for person, roles in (("manager", ["sales_manager"]), ("rep", ["sales_rep"]), ("stranger", [])):
        rb.create_user(SYSTEM, f"{person}@example.com", PASSWORD, display_name=person.title())
        if roles:
            rb.set_roles(SYSTEM, f"{person}@example.com", "crm", roles)
    return rb.export("crm")


def deal_fields(definition: dict[str, Any]) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = next(t for t in definition["tables"] if t["slug"] == "deals")[
        "fields"
    ]
    return fields


def sign_in(client: FlaskClient, person: str) -> None:
    if person == "admin":
        response = login(client, *ADMIN)
    else:
        response = login(client, f"{person}@example.com", PASSWORD)
    assert response.status_code == 303, response.status_code


# --- reading and posting the editor's form like a browser ----------------------------------------


class FormFields(HTMLParser):
    """The (name, value) pairs a browser submits from the form ``form_id`` (buttons excepted)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.disabled_depth = 0  # fieldsets open since the first disabled one
        self.fields: list[tuple[str, str]] = []
        self.select: dict[str, Any] | None = None
        self.option: dict[str, Any] | None = None
        self.textarea: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "fieldset" and (self.disabled_depth or "disabled" in a):
            self.disabled_depth += 1
        off = self.disabled_depth > 0 or "disabled" in a
        if tag == "input" and "name" in a and not off:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file"):
                return
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and "name" in a:
            self.select = {"name": a["name"], "off": off, "first": None, "chosen": None}
        elif tag == "option" and self.select is not None:
            self.option = {"value": a.get("value"), "selected": "selected" in a, "text": ""}
        elif tag == "textarea" and "name" in a:
            self.textarea = {"name": a["name"], "off": off, "text": ""}

    def handle_data(self, data: str) -> None:
        if self.option is not None:
            self.option["text"] += data
        if self.textarea is not None:
            self.textarea["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "option" and self.option is not None and self.select is not None:
            value = (
                self.option["value"] if self.option["value"] is not None else self.option["text"]
            )
            if self.select["first"] is None:
                self.select["first"] = value
            if self.option["selected"]:
                self.select["chosen"] = value
            self.option = None
        elif tag == "select" and self.select is not None:
            chosen = (
                self.select["chosen"] if self.select["chosen"] is not None else self.select["first"]
            )
            if not self.select["off"] and chosen is not None:
                self.fields.append((self.select["name"], chosen))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            if not self.textarea["off"]:
                self.fields.append(
                    (self.textarea["name"], self.textarea["text"].removeprefix("\n"))
                )
            self.textarea = None
        elif tag == "fieldset" and self.disabled_depth:
            self.disabled_depth -= 1
        elif tag == "form":
            self.inside = False


def form_of(html: str, form_id: str = "builder-form") -> MultiDict[str, str]:
    parser = FormFields(form_id)
    parser.feed(html)
    assert parser.fields, f"no form #{form_id} on the page"
    return MultiDict(parser.fields)


def step(
    client: FlaskClient,
    page: str,
    op: str,
    changes: dict[str, Any] | None = None,
    *,
    app: str = "crm",
    form_id: str = "builder-form",
    path: str | None = None,
) -> TestResponse:
    """Submit the form of ``page`` with the button ``op`` after changing some inputs."""
    data = form_of(page, form_id)
    for name, value in (changes or {}).items():
        if value is None:
            data.poplist(name)
        elif isinstance(value, list):
            data.setlist(name, value)
        else:
            data[name] = value
    if op:
        data["op"] = op
    return client.post(path or f"/builder/apps/{app}/edit", data=data)


def draft_of(html: str) -> dict[str, Any]:
    found = re.search(r'<input type="hidden" name="draft" value="([^"]*)"', html)
    assert found
    result: dict[str, Any] = json.loads(unescape(found.group(1)))
    return result


def field_index(html: str, slug: str) -> int:
    found = re.search(rf'<li id="field-(\d+)" data-slug="{slug}">', html)
    assert found, slug
    return int(found.group(1))


def table_index(html: str, slug: str) -> int:
    found = re.search(rf'<li id="table-(\d+)" data-slug="{slug}">', html)
    assert found, slug
    return int(found.group(1))


def open_table(client: FlaskClient, slug: str) -> str:
    page = client.get(EDITOR).text
    return step(client, page, f"select_table:{table_index(page, slug)}").text


def review_and_apply(client: FlaskClient, page: str, *, confirm: bool = False) -> TestResponse:
    reviewed = step(client, page, "review")
    assert reviewed.status_code == 200, reviewed.text
    changes = {"confirm": "1"} if confirm else {}
    return step(client, reviewed.text, "", changes, form_id="apply-form", path=f"{EDITOR}/apply")


# --- access -----------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, crm: dict[str, Any]) -> None:
    for path in ("/builder", EDITOR, f"{EDITOR}/export"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/login?next=")


def test_the_index_lists_the_apps_one_may_change(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "admin")
    page = client.get("/builder")
    assert page.status_code == 200
    assert f'href="{EDITOR}"' in page.text and 'id="new-app"' in page.text
    assert 'href="/gallery"' in page.text
    client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    sign_in(client, "manager")
    page = client.get("/builder")
    assert f'href="{EDITOR}"' in page.text and 'id="new-app"' not in page.text
    client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    sign_in(client, "rep")
    page = client.get("/builder")
    assert page.status_code == 200 and f'href="{EDITOR}"' not in page.text


@pytest.mark.parametrize(
    ("person", "status"), [("stranger", 404), ("rep", 403), ("manager", 200), ("admin", 200)]
)
def test_the_editor_needs_manage_on_some_table(
    client: FlaskClient, crm: dict[str, Any], person: str, status: int
) -> None:
    sign_in(client, person)
    assert client.get(EDITOR).status_code == status
    assert client.get(f"{EDITOR}/export").status_code == status


def test_a_missing_app_is_not_found(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "admin")
    assert client.get("/builder/apps/nothing").status_code == 404


def test_steps_need_the_csrf_token(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    data = form_of(page)
    data.pop("csrf_token")
    data["op"] = "refresh"
    for path in (f"{EDITOR}/edit", f"{EDITOR}/preview", f"{EDITOR}/apply"):
        assert client.post(path, data=data).status_code == 403
    data["csrf_token"] = "forged"
    assert client.post(f"{EDITOR}/edit", data=data).status_code == 403
    upload = {"definition": (io.BytesIO(b"{}"), "app.json")}
    assert client.post("/builder/import", data=upload).status_code == 403
    assert client.post("/builder/new", data={"slug": "x", "label_en": "X"}).status_code == 403


def test_a_rep_cannot_post_steps_and_a_stranger_gets_404(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    token = csrf_from(page)
    data = form_of(page)
    client.post("/logout", data={"csrf_token": token})
    for person, status in (("rep", 403), ("stranger", 404)):
        sign_in(client, person)
        fresh = csrf_from(client.get("/builder").text)
        data["csrf_token"] = fresh
        data["op"] = "refresh"
        assert client.post(f"{EDITOR}/edit", data=data).status_code == status
        assert client.post(f"{EDITOR}/apply", data=data).status_code == status
        assert client.post(f"{EDITOR}/preview", data=data).status_code == status
        client.post("/logout", data={"csrf_token": fresh})


# --- editing ----------------------------------------------------------------------------------------


def test_an_untouched_draft_plans_nothing(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    assert 'id="draft-status"' in page and "The draft is valid" in page
    again = step(client, page, "refresh")
    assert draft_of(again.text) == crm
    reviewed = step(client, again.text, "review")
    assert 'id="plan-empty"' in reviewed.text


def test_add_a_field_and_apply_it_appears_in_the_grid(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    added = step(client, page, "add_field", {
        "new_field_slug": "source", "new_field_label_en": "Source", "new_field_label_zh": "来源",
        "new_field_type": "text"})  # fmt: skip
    assert added.status_code == 200
    draft = draft_of(added.text)
    deals = next(t for t in draft["tables"] if t["slug"] == "deals")
    assert deals["fields"][-1] == {
        "slug": "source",
        "label": {"en": "Source", "zh-CN": "来源"},
        "type": "text",
    }
    assert 'data-slug="source"' in added.text
    assert '<label for="pv-16">Source</label>' in added.text  # the form preview shows it
    reviewed = step(client, added.text, "review")
    assert re.findall(r'<li data-kind="([a-z_]+)"', reviewed.text) == ["add_field"]
    assert "Add the field deals.source (text)" in reviewed.text
    assert 'id="confirm"' not in reviewed.text  # nothing destructive: no confirmation asked
    applied = step(client, reviewed.text, "", form_id="apply-form", path=f"{EDITOR}/apply")
    assert applied.status_code == 303 and applied.headers["Location"] == EDITOR
    assert "source" in rb.app("crm").tables["deals"].fields
    grid = client.get("/apps/crm/tables/deals")
    assert 'data-field="source"' in grid.text
    api = client.get("/api/v1/openapi.json")
    assert api.status_code == 200 and "source" in json.dumps(api.json)


def test_validation_problems_are_shown_on_their_field(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    i = field_index(page, "name")
    edited = step(client, page, "refresh", {f"f{i}_slug": "Bad Slug"})
    assert edited.status_code == 200
    ti = table_index(edited.text, "deals")
    card = edited.text.split(f'<li id="field-{i}"', 1)[1].split("</li>\n", 1)[0]
    assert f"<code>/tables/{ti}/fields/{i}/slug</code>" in card
    assert "is not a slug" in card
    assert "The draft has" in edited.text
    reviewed = step(client, edited.text, "review")  # review refuses an invalid draft
    assert reviewed.status_code == 422 and 'id="builder-form"' in reviewed.text


def test_the_preview_renders_widgets_from_the_posted_inputs(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    i = field_index(page, "name")
    preview = step(client, page, "", {f"f{i}_label_en": "Deal title", f"f{i}_required": "1"},
                   path=f"{EDITOR}/preview")  # fmt: skip
    assert preview.status_code == 200
    assert f'<label for="pv-{i}">Deal title *</label>' in preview.text
    stage = field_index(page, "stage")
    assert f'<select id="pv-{stage}" disabled>' in preview.text
    assert "<option>Won</option>" in preview.text
    assert 'type="date"' in preview.text  # close_date


def test_fields_reorder_with_buttons_and_with_the_order_inputs(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    slugs = re.findall(r'<li id="field-\d+" data-slug="([a-z_]+)">', page)
    moved = step(client, page, f"field_down:{field_index(page, 'number')}")
    assert re.findall(r'<li id="field-\d+" data-slug="([a-z_]+)">', moved.text)[:2] == [
        "name",
        "number",
    ]
    # What SortableJS does: the hidden "order" inputs arrive in the new order.
    dragged = step(
        client, page, "refresh", {"order": [str(i) for i in reversed(range(len(slugs)))]}
    )
    assert re.findall(r'<li id="field-\d+" data-slug="([a-z_]+)">', dragged.text) == list(
        reversed(slugs)
    )
    # A button pressed after a drag names the field by its place on the page before the drag.
    notes = field_index(page, "notes")
    order = {"order": [str(i) for i in reversed(range(len(slugs)))]}
    deleted = step(client, page, f"delete_field:{notes}", order)
    left = re.findall(r'<li id="field-\d+" data-slug="([a-z_]+)">', deleted.text)
    assert left == [s for s in reversed(slugs) if s != "notes"]


def test_tables_are_added_relabelled_reordered_and_deleted(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    added = step(client, page, "add_table", {
        "new_table_slug": "notes", "new_table_label_en": "Notes", "new_table_label_zh": "笔记"})  # fmt: skip
    draft = draft_of(added.text)
    assert draft["tables"][-1]["slug"] == "notes" and 'aria-current="true">Notes' in added.text
    relabelled = step(client, added.text, "refresh", {"t_label_zh": "备注"})
    assert draft_of(relabelled.text)["tables"][-1]["label"] == {"en": "Notes", "zh-CN": "备注"}
    up = step(client, relabelled.text, f"table_up:{len(draft['tables']) - 1}")
    assert [t["slug"] for t in draft_of(up.text)["tables"]][-2:] == ["notes", "activities"]
    gone = step(client, up.text, f"delete_table:{table_index(up.text, 'activities')}")
    after = draft_of(gone.text)
    assert "activities" not in [t["slug"] for t in after["tables"]]
    assert "activity_calendar" not in [v["slug"] for v in after["views"]]  # its views go with it


def test_choices_keep_their_ids_and_new_ones_are_added(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    i = field_index(page, "stage")
    choices = form_of(page)[f"f{i}_choices"]
    edited = step(client, page, "refresh", {f"f{i}_choices": choices + "\nOn hold | 暂停"})
    deals = next(t for t in draft_of(edited.text)["tables"] if t["slug"] == "deals")
    stage = next(f for f in deals["fields"] if f["slug"] == "stage")
    before = next(
        f
        for f in next(t for t in crm["tables"] if t["slug"] == "deals")["fields"]
        if f["slug"] == "stage"
    )
    assert stage["options"]["choices"][:-1] == before["options"]["choices"]
    assert stage["options"]["choices"][-1] == {"label": {"en": "On hold", "zh-CN": "暂停"}}


def test_the_permission_matrix_changes_rights(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    ti = table_index(page, "activities")
    data = form_of(page)
    assert f"{ti}:auditor:read" in data.getlist("perm")
    perms = [*data.getlist("perm"), f"{ti}:auditor:export"]
    edited = step(client, page, "refresh", {"perm": perms})
    activities = next(t for t in draft_of(edited.text)["tables"] if t["slug"] == "activities")
    assert activities["permissions"]["auditor"] == {"read": True, "rows": "all", "export": True}
    assert review_and_apply(client, edited.text).status_code == 303
    assert rb.export("crm")["tables"][ti]["permissions"]["auditor"]["export"] is True


def test_roles_are_added_and_deleted(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    added = step(
        client, page, "add_role", {"new_role_slug": "intern", "new_role_label_en": "Intern"}
    )
    assert draft_of(added.text)["roles"][-1] == {
        "slug": "intern",
        "label": "Intern",
        "clearance": ["public", "internal"],
    }
    assert 'id="role-intern"' in added.text
    gone = step(client, added.text, "delete_role:0")  # sales_manager, and its grants with it
    after = draft_of(gone.text)
    assert "sales_manager" not in [r["slug"] for r in after["roles"]]
    assert all("sales_manager" not in (t.get("permissions") or {}) for t in after["tables"])


# --- review and apply ------------------------------------------------------------------------------


def test_a_destructive_plan_needs_confirmation(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    rb.records(SYSTEM, "crm", "companies").create({"name": "Acme", "city": "Hangzhou"})
    page = open_table(client, "companies")
    removed = step(client, page, f"delete_field:{field_index(page, 'city')}")
    reviewed = step(client, removed.text, "review")
    assert '<li data-kind="remove_field" class="destructive">' in reviewed.text
    assert "Destructive" in reviewed.text and 'id="confirm"' in reviewed.text
    refused = step(client, reviewed.text, "", form_id="apply-form", path=f"{EDITOR}/apply")
    assert refused.status_code == 422 and 'id="review-notice"' in refused.text
    assert "city" in rb.app("crm").tables["companies"].fields  # nothing applied
    confirmed = step(
        client, reviewed.text, "", {"confirm": "1"}, form_id="apply-form", path=f"{EDITOR}/apply"
    )
    assert confirmed.status_code == 303
    assert "city" not in rb.app("crm").tables["companies"].fields


def test_a_type_change_lists_the_values_that_would_be_emptied(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    companies = rb.records(SYSTEM, "crm", "companies")
    ok = companies.create({"name": "Acme", "city": "42"})
    bad = companies.create({"name": "Beta", "city": "Shanghai"})
    page = open_table(client, "companies")
    i = field_index(page, "city")
    changed = step(client, page, "refresh", {f"f{i}_type": "number"})
    reviewed = step(client, changed.text, "review")
    assert '<li data-kind="convert_field" class="destructive">' in reviewed.text
    assert f"<code>/records/{bad.id}/city</code>" in reviewed.text
    assert "Shanghai" not in reviewed.text  # which records, never their values
    applied = review_and_apply(client, changed.text, confirm=True)
    assert applied.status_code == 303, applied.text
    converted = rb.records(SYSTEM, "crm", "companies")  # a store of the new schema
    assert (
        converted.get(ok.id).fields["city"] == 42 and converted.get(bad.id).fields["city"] is None
    )


def test_apply_notices_that_the_app_changed_since_the_review(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    added = step(client, page, "add_field", {"new_field_slug": "source", "new_field_type": "text"})
    reviewed = step(client, added.text, "review").text
    other = rb.export("crm")
    next(t for t in other["tables"] if t["slug"] == "deals")["fields"].append(
        {"slug": "channel", "label": "Channel", "type": "text"}
    )
    rb.install(other, SYSTEM)
    stale = step(client, reviewed, "", form_id="apply-form", path=f"{EDITOR}/apply")
    assert stale.status_code == 409 and 'id="review-notice"' in stale.text
    assert "source" not in rb.app("crm").tables["deals"].fields


def test_an_admin_gives_a_purpose_in_english_and_chinese(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    added = step(client, page, "add_field", {"new_field_slug": "mobile", "new_field_type": "phone"})
    i = field_index(added.text, "mobile")
    assert f'name="f{i}_purpose_en"' in added.text and f'name="f{i}_purpose_zh"' in added.text
    given = step(client, added.text, "refresh", {
        f"f{i}_purpose_en": "To call about the deal.", f"f{i}_purpose_zh": "用于就商机致电。"})  # fmt: skip
    assert review_and_apply(client, given.text).status_code == 303
    mobile = next(f for f in deal_fields(rb.export("crm")) if f["slug"] == "mobile")
    assert mobile["purpose"] == {"en": "To call about the deal.", "zh-CN": "用于就商机致电。"}
    # Emptying one language keeps the other; emptying both removes it, and the check asks for one.
    page = open_table(client, "deals")
    english = step(client, page, "refresh", {f"f{i}_purpose_zh": ""})
    assert deal_fields(draft_of(english.text))[i]["purpose"] == {"en": "To call about the deal."}
    emptied = step(client, page, "refresh", {f"f{i}_purpose_en": "", f"f{i}_purpose_zh": ""})
    assert "purpose" not in deal_fields(draft_of(emptied.text))[i]
    assert 'needs a "purpose"' in unescape(emptied.text)


def test_a_manager_changes_its_tables_but_not_privacy_rules(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "manager")
    page = open_table(client, "deals")
    i = field_index(page, "name")
    # The page already locks what only an administrator may change.
    assert f'id="f{i}-sensitivity"' in page and f'name="f{i}_sensitivity"' in page
    assert re.search(rf'<select id="f{i}-sensitivity"[^>]*disabled', page)
    assert 'name="matrix"' not in page and 'name="perm"' in page
    assert re.search(r'name="perm" value="[^"]+" checked disabled', page)
    relabelled = step(client, page, "refresh", {f"f{i}_label_zh": "商机名称"})
    assert review_and_apply(client, relabelled.text).status_code == 303
    name = next(f for f in deal_fields(rb.export("crm")) if f["slug"] == "name")
    was = next(f for f in deal_fields(crm) if f["slug"] == "name")
    assert name == {**was, "label": {**was["label"], "zh-CN": "商机名称"}}
    # A tampered draft that changes a sensitivity is refused by the engine, and nothing is applied.
    before = rb.export("crm")
    fresh = open_table(client, "deals")
    tampered = draft_of(fresh)
    deals = next(t for t in tampered["tables"] if t["slug"] == "deals")
    next(f for f in deals["fields"] if f["slug"] == "notes")["sensitivity"] = "public"
    refused = step(client, fresh, "review", {"draft": json.dumps(tampered)})
    assert refused.status_code == 403 and 'id="refusal"' in refused.text
    assert 'id="apply-form"' not in refused.text
    # Applying it straight away (with the digest of its plan) is refused by the engine too.
    data = form_of(fresh)
    data["draft"] = json.dumps(tampered)
    data["digest"] = plan_digest(rb.plan(tampered))
    applied = client.post(f"{EDITOR}/apply", data=data)
    assert applied.status_code == 403 and 'id="refusal"' in applied.text
    assert "sensitivity, encryption or purpose of" in unescape(applied.text)
    assert rb.export("crm") == before


def test_a_manager_cannot_add_a_role_or_change_an_unmanaged_table(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "manager")
    page = open_table(client, "contacts")
    assert 'id="table-locked"' in page
    assert 'name="t_present"' in page and 'name="new_role_slug"' not in page
    before = rb.export("crm")
    tampered = draft_of(page)
    tampered["roles"].append({"slug": "boss", "label": "Boss"})
    refused = step(client, page, "review", {"draft": json.dumps(tampered)})
    assert (
        refused.status_code == 403
        and "only a platform administrator may change the roles" in unescape(refused.text)
    )
    tampered = draft_of(page)
    next(t for t in tampered["tables"] if t["slug"] == "contacts")["label"] = "People"
    refused = step(client, page, "review", {"draft": json.dumps(tampered)})
    assert refused.status_code == 403 and 'you may not change the table "contacts"' in unescape(
        refused.text
    )
    assert rb.export("crm") == before


def test_a_draft_for_another_app_or_not_json_is_refused(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = client.get(EDITOR).text
    assert step(client, page, "refresh", {"draft": "{not json"}).status_code == 400
    other = draft_of(page)
    other["slug"] = "other"
    assert step(client, page, "refresh", {"draft": json.dumps(other)}).status_code == 400
    assert (
        step(
            client, page, "refresh", {"draft": json.dumps({"slug": "crm", "tables": "x"})}
        ).status_code
        == 400
    )


# --- new apps, export and import ---------------------------------------------------------------------


def test_an_admin_starts_a_blank_app_and_installs_it(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    index = client.get("/builder").text
    bad = client.post(
        "/builder/new", data={"csrf_token": csrf_from(index), "slug": "crm", "label_en": "Again"}
    )
    assert bad.status_code == 422 and "An app with this name exists already." in bad.text
    started = client.post("/builder/new", data={
        "csrf_token": csrf_from(index), "slug": "orders", "label_en": "Orders", "label_zh": "订单"})  # fmt: skip
    assert started.status_code == 200 and 'action="/builder/apps/orders/edit"' in started.text
    reviewed = step(client, started.text, "review", app="orders")
    assert re.findall(r'<li data-kind="([a-z_]+)"', reviewed.text) == ["create_app", "add_table"]
    applied = step(
        client, reviewed.text, "", form_id="apply-form", path="/builder/apps/orders/apply"
    )
    assert applied.status_code == 303
    assert rb.export("orders")["label"] == {"en": "Orders", "zh-CN": "订单"}
    assert client.get("/apps/orders/tables/items").status_code == 200


def test_only_admins_start_new_apps(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "manager")
    token = csrf_from(client.get("/builder").text)
    assert (
        client.post(
            "/builder/new", data={"csrf_token": token, "slug": "mine", "label_en": "Mine"}
        ).status_code
        == 403
    )
    upload = {"csrf_token": token, "definition": (io.BytesIO(json.dumps(
        {"slug": "mine", "label": "Mine", "tables": [{"slug": "a", "label": "A", "fields": [
            {"slug": "b", "label": "B", "type": "text"}]}]}).encode()), "mine.json")}  # fmt: skip
    assert client.post("/builder/import", data=upload).status_code == 403
    assert client.post("/builder/apps/mine/edit", data={"csrf_token": token}).status_code == 404


def test_export_downloads_the_installed_definition(
    client: FlaskClient, crm: dict[str, Any]
) -> None:
    sign_in(client, "manager")
    response = client.get(f"{EDITOR}/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="crm.json"'
    assert response.json == crm


def test_import_of_bad_json_says_where(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "admin")
    token = csrf_from(client.get("/builder").text)
    upload = {
        "csrf_token": token,
        "definition": (io.BytesIO(b'{"slug": "crm",\n "tables": [}'), "crm.json"),
    }
    response = client.post("/builder/import", data=upload)
    assert response.status_code == 422
    assert "This is not valid JSON: line 2, column 13" in response.text


def test_import_problems_carry_their_pointer(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    token = csrf_from(client.get("/builder").text)
    broken = rb.export("crm")
    broken["tables"][0]["fields"][1]["type"] = "colour"
    upload = {
        "csrf_token": token,
        "definition": (io.BytesIO(json.dumps(broken).encode()), "crm.json"),
    }
    response = client.post("/builder/import", data=upload)
    assert response.status_code == 422
    assert "<td><code>/tables/0/fields/1/type</code></td>" in response.text
    assert "unknown field type" in response.text
    assert rb.export("crm") == crm


def test_import_then_review_then_apply(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    token = csrf_from(client.get("/builder").text)
    changed = rb.export("crm")
    changed["tables"][0]["fields"].append({"slug": "founded", "label": "Founded", "type": "date"})
    upload = {
        "csrf_token": token,
        "definition": (io.BytesIO(json.dumps(changed).encode()), "crm.json"),
    }
    reviewed = client.post("/builder/import", data=upload)
    assert reviewed.status_code == 200
    assert re.findall(r'<li data-kind="([a-z_]+)"', reviewed.text) == ["add_field"]
    assert "founded" not in rb.app("crm").tables["companies"].fields
    applied = step(client, reviewed.text, "", form_id="apply-form", path=f"{EDITOR}/apply")
    assert applied.status_code == 303
    assert "founded" in rb.app("crm").tables["companies"].fields


def test_the_editor_speaks_chinese(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "admin")
    client.post(
        "/language", data={"csrf_token": csrf_from(client.get("/builder").text), "lang": "zh-CN"}
    )
    page = client.get(EDITOR)
    assert page.status_code == 200
    assert "商机" in page.text  # definition labels in the user's language


def test_automations_are_edited_as_json_checked_and_applied(
    client: FlaskClient, rb: Recordbase, crm: dict[str, Any]
) -> None:
    sign_in(client, "admin")
    page = open_table(client, "deals")
    before = rb.export("crm")
    deals_at = next(i for i, t in enumerate(before["tables"]) if t["slug"] == "deals")
    # Not JSON, then JSON naming a field that does not exist: each shown at its place, nothing applied.
    broken = step(client, page, "refresh", {"t_automations": "[{"})
    assert f"/tables/{deals_at}/automations" in broken.text
    wrong = [{"slug": "stamp", "label": "Stamp", "trigger": {"on": "created"},
              "actions": [{"do": "set", "values": {"nope": "x"}}]}]
    checked = step(client, page, "refresh", {"t_automations": json.dumps(wrong)})
    assert f"/tables/{deals_at}/automations/0/actions/0/values/nope" in checked.text
    right = [{"slug": "stamp", "label": "Stamp", "trigger": {"on": "created"},
              "actions": [{"do": "set", "values": {"notes": "from the builder"}}]}]
    edited = step(client, page, "refresh", {"t_automations": json.dumps(right)})
    assert review_and_apply(client, edited.text).status_code == 303
    assert rb.export("crm")["tables"][deals_at]["automations"][0]["slug"] == "stamp"


def test_only_admins_may_edit_automations(client: FlaskClient, crm: dict[str, Any]) -> None:
    sign_in(client, "manager")
    page = open_table(client, "deals")
    assert re.search(r'<textarea id="t-automations" name="t_automations"[^>]* disabled', page)
