"""Real-browser journeys: Playwright driving Debian's headless chromium against a live server.

Each journey saves a screenshot of its last page under ``<pytest basetemp>/artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from page_helpers import ADMIN, SYSTEM, add_admin
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"
REP = ("rep@example.org", "rep-password-1")


@pytest.fixture
def crm(rb: Recordbase) -> Recordbase:
    """The CRM installed from the gallery (as ``recordbase install crm`` does) and an administrator."""
    definition, problems = load_definition_file(CRM)
    assert not problems
    rb.install(definition, SYSTEM)
    add_admin(rb)
    return rb


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, artifacts: Path) -> Any:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.problems = problems
    yield tab
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    tab.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    context.close()


def htmx_settled(page: Any) -> None:
    """Wait until no htmx request, swap or settle is in progress on the page."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def grid_columns_line_up(page: Any) -> list[tuple[int, int]]:
    """Left edges of the grid's header cells and of its first record's cells, column by column."""
    edges: list[list[float]] = page.evaluate(
        """() => {
          const heads = [...document.querySelectorAll('#grid thead th')];
          const cells = [...document.querySelector('#grid tbody tr[data-id]').children];
          return [heads.map(h => h.getBoundingClientRect().left), cells.map(c => c.getBoundingClientRect().left)];
        }"""
    )
    heads, cells = edges
    assert len(heads) == len(cells) > 2
    return [(round(h), round(c)) for h, c in zip(heads, cells, strict=True)]


def sideways(page: Any) -> int:
    """How far the page itself scrolls sideways, in CSS pixels (0: it fits the window)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/")
    assert "/login?next=/" in page.url
    page.locator('input[name="email"]').fill(email)  # by name: the page may be in any language
    page.locator('input[name="password"]').fill(password)
    page.locator('main form button[type="submit"]').click()
    page.wait_for_url(f"{base}/")


def add_rep(page: Any, base: str) -> Any:
    """On the users page, as an admin: add the sales rep ``REP`` with a password and its CRM role; its row."""
    page.get_by_role("link", name="Users").click()
    page.wait_for_url(f"{base}/admin/users")
    form = page.locator("#add-user")
    form.get_by_label("Email").fill(REP[0])
    form.get_by_label("Name").fill("Wang Fang")
    form.get_by_label("Password").fill(REP[1])
    form.get_by_label("Role").select_option("crm:sales_rep")
    form.get_by_role("button", name="Add user").click()
    page.wait_for_url(f"{base}/admin/users")
    row = page.locator(f'tr[data-email="{REP[0]}"]')
    assert "CRM: Sales rep" in row.inner_text()
    return row


def test_admin_adds_a_rep_who_signs_in_and_switches_to_chinese(
    page: Any, live_server: str, crm: Recordbase
) -> None:
    base = live_server
    # The admin signs in and sees every app in the workspace.
    sign_in(page, base, *ADMIN)
    assert page.get_by_role("heading", name="Workspace").is_visible()
    assert page.get_by_role("link", name="CRM").is_visible()
    assert page.evaluate("window.htmx && htmx.version").startswith("2.0.")

    # Users page: add the rep with a password and a role in the CRM.
    row = add_rep(page, base)

    # Give a second role through htmx: only the user list is replaced, the token rides along.
    row.get_by_label(f"Role to give {REP[0]}").select_option("crm:marketing")
    with page.expect_response(
        lambda r: r.url.endswith("/admin/users") and r.request.method == "GET"
    ):
        row.get_by_role("button", name="Add role").click()
    page.locator(f'tr[data-email="{REP[0]}"] >> text=CRM: Marketing').wait_for()
    assert sorted(next(u["roles"] for u in crm.list_users() if u["email"] == REP[0])) == [
        "crm:marketing",
        "crm:sales_rep",
    ]
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/login")

    # The rep signs in, sees the CRM and opens it.
    sign_in(page, base, *REP)
    assert page.locator("header").get_by_text("Wang Fang").is_visible()
    assert page.get_by_role("link", name="CRM").is_visible()
    assert page.locator('a[href="/admin/users"]').count() == 0
    page.get_by_role("link", name="CRM").click()
    page.wait_for_url(f"{base}/apps/crm")
    assert page.get_by_role("heading", name="Tables").is_visible()
    assert page.locator("#table-deals").is_visible()

    # Switching to Chinese shows the UI and the definition's labels in Chinese, on the same page.
    page.get_by_role("button", name="中文").click()
    page.wait_for_url(f"{base}/apps/crm")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", name="客户关系管理").is_visible()
    assert page.get_by_role("heading", name="数据表").is_visible()
    assert page.get_by_role("button", name="退出登录").is_visible()
    assert "商机" in page.locator("#table-deals").inner_text()
    page.get_by_role("link", name="工作台").first.click()
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("heading", name="工作台").is_visible()
    assert page.get_by_role("link", name="客户关系管理").is_visible()
    assert page.problems == [], page.problems  # no CSP violation or script error on the way


@pytest.fixture
def access_crm(rb: Recordbase) -> Recordbase:
    """The access tests' CRM (deals 1–5) with the reveal right for the rep, who gets a password."""
    import copy

    from access_defs import DEALS_PERMISSIONS, crm_definition, seed
    from recordbase import users

    seed(rb)
    grants = copy.deepcopy(DEALS_PERMISSIONS)
    grants["rep"]["reveal"] = True
    assert rb.install(crm_definition(deals_permissions=grants), SYSTEM).applied
    with rb.write() as conn:
        users.set_password(conn, SYSTEM, "rep@example.com", REP[1])
    return rb


def test_rep_reveals_a_masked_phone_with_a_reason(
    page: Any, live_server: str, access_crm: Recordbase
) -> None:
    base = live_server
    sign_in(page, base, "rep@example.com", REP[1])
    page.get_by_role("link", name="CRM").click()
    page.wait_for_url(f"{base}/apps/crm")
    page.get_by_role("link", name="Deals", exact=True).click()
    page.wait_for_url(f"{base}/apps/crm/tables/deals")
    assert page.locator("#grid-total").inner_text() == "2 records"

    # Searching swaps only the results (htmx), and the address follows.
    page.get_by_label("Search").fill("acme")
    with page.expect_response(lambda r: "/apps/crm/tables/deals?" in r.url):
        page.get_by_role("button", name="Apply").click()
    page.locator("#grid-total", has_text="1 record").wait_for()
    assert page.locator("tbody tr").count() == 1

    # The deal: its phone masked, revealed with a reason, in place.
    page.get_by_role("link", name="Open record 1").click()
    page.wait_for_url(f"{base}/apps/crm/tables/deals/records/1")
    phone = page.locator("#field-phone")
    assert phone.locator(".value").inner_text() == "+86 138****5678"
    phone.locator("summary").click()  # the reveal form is folded until asked for
    phone.get_by_label("Reason for revealing Phone").fill("customer called back")
    phone.get_by_role("button", name="Reveal").click()
    phone.locator("[data-revealed]").wait_for()
    assert phone.locator("[data-revealed]").inner_text() == "+8613812345678"
    assert page.url == f"{base}/apps/crm/tables/deals/records/1"  # swapped, not reloaded
    entries = access_crm.audit_entries(app="crm", table="deals", record=1)
    assert [e["changes"]["reason"] for e in entries if e["action"] == "reveal"] == [
        "customer called back"
    ]
    assert page.problems == [], page.problems


# --- the journeys of the browser app (issue 4) --------------------------------------------------


def test_admin_installs_the_crm_from_the_gallery_and_adds_a_rep(
    page: Any, live_server: str, rb: Recordbase
) -> None:
    base = live_server
    add_admin(rb)
    sign_in(page, base, *ADMIN)
    page.get_by_role("link", name="Gallery").click()
    page.wait_for_url(f"{base}/gallery")
    card = page.locator("#template-crm")
    assert card.get_by_role("heading", name="CRM").is_visible()
    card.get_by_role("button", name="Preview").click()
    page.wait_for_url(f"{base}/gallery/crm")
    assert page.locator("#table-contacts").is_visible()  # the preview lists tables and fields
    page.get_by_label("Add sample records to try it out").uncheck()
    page.get_by_role("button", name="Install CRM").click()
    page.wait_for_url(f"{base}/apps/crm")
    assert page.locator("#table-deals").is_visible()
    assert "crm" in [a["slug"] for a in rb.list_apps()]

    add_rep(page, base)

    # The builder's form preview lays the fields out as the form does: one under another.
    page.get_by_role("link", name="Builder").click()
    page.wait_for_url(f"{base}/builder")
    page.goto(f"{base}/builder/apps/crm")
    boxes = [box for box in page.locator(".form-preview label").evaluate_all(
        "labels => labels.map(l => l.getBoundingClientRect().toJSON())"
    ) if box["height"]]
    assert len(boxes) > 3
    assert all(b["top"] >= a["bottom"] - 1 for a, b in zip(boxes, boxes[1:], strict=False)), boxes
    assert page.problems == [], page.problems


@pytest.fixture
def crm_with_rep(crm: Recordbase) -> Recordbase:
    """The gallery CRM, an admin, and a sales rep with a password (the deals journey)."""
    crm.create_user(SYSTEM, REP[0], REP[1], display_name="Wang Fang")
    crm.set_roles(SYSTEM, REP[0], "crm", ["sales_rep"])
    crm.records(SYSTEM, "crm", "companies").create({"name": "Lakeside Trading 湖畔贸易"})
    return crm


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_rep_creates_a_deal_finds_it_by_filter_and_drags_it_on_the_kanban(
    browser: Any, live_server: str, crm_with_rep: Recordbase, artifacts: Path,
    request: pytest.FixtureRequest, language: str,
) -> None:
    base = live_server
    zh = language == "zh-CN"
    words = {
        "Deals": "商机", "New record": "新建记录", "Company": "公司", "Name": "名称", "Amount": "金额", "Stage": "阶段",
        "Create": "创建", "Add condition": "添加条件", "Apply": "应用", "Pipeline": "销售管道",
        "contains": "包含", "Lead": "线索", "Qualified": "已确认",
    }

    def t(text: str) -> str:
        return words[text] if zh else text

    context = browser.new_context(locale=language, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        sign_in(page, base, *REP)
        assert page.locator("html").get_attribute("lang") == language
        page.goto(f"{base}/apps/crm")
        # A deal through the form.
        page.locator("#table-deals").get_by_role("link", name=t("New record")).click()
        page.wait_for_url(f"{base}/apps/crm/tables/deals/new")
        form = page.locator("form.record-form")
        assert form.get_by_text(t("Amount")).first.is_visible()  # labels in the user's language
        page.get_by_role("textbox", name=t("Name")).first.fill("Lakeside kiosk 湖畔")
        page.get_by_role("combobox", name=t("Company")).first.select_option(label="Lakeside Trading 湖畔贸易")
        page.get_by_label(t("Amount")).fill("88000")
        page.get_by_label(t("Stage")).select_option(label=t("Lead"))
        page.get_by_role("button", name=t("Create")).click()
        page.wait_for_url(f"{base}/apps/crm/tables/deals/records/*")
        deal_id = int(page.url.rsplit("/", 1)[1])
        deals = crm_with_rep.records(SYSTEM, "crm", "deals")
        created = deals.get(deal_id)
        assert created.fields["stage"] == "lead"
        assert created.fields["owner"] == crm_with_rep.actor_for(created.created_by).user_id  # the rep owns it

        # Found in the grid by a filter on its name.
        deals.create({"name": "Someone else's", "stage": "lead", "company": created.fields["company"]})
        page.goto(f"{base}/apps/crm/tables/deals")
        page.get_by_role("button", name=t("Add condition")).click()
        # Adding a condition and each choice in it swap content in through htmx: wait until htmx is
        # done each time, or the next choice lands on a row htmx has not wired up yet or is about
        # to replace (a loaded machine makes both likely).
        page.locator("#cond-field-0").wait_for()
        htmx_settled(page)
        with page.expect_response(lambda r: "/grid/condition" in r.url):
            page.locator("#cond-field-0").select_option("name")
        htmx_settled(page)
        with page.expect_response(lambda r: "/grid/condition" in r.url):
            page.locator("#cond-op-0").select_option("contains")
        htmx_settled(page)
        page.locator("#cond-value-0").fill("Lakeside")
        page.locator("#grid-controls").get_by_role("button", name=t("Apply"), exact=True).click()
        page.locator(f'tbody tr[data-id="{deal_id}"]').wait_for()
        assert page.locator("tbody tr[data-id]").count() == 1
        # A column's header sits above its cells (a table laid out as a table, not as CSS grid items).
        assert all(head == cell for head, cell in grid_columns_line_up(page)), grid_columns_line_up(page)

        # Dragged from "Lead" to "Qualified" on the pipeline board.
        page.goto(f"{base}/apps/crm/views/pipeline")
        card = page.locator(f'.kanban-card[data-id="{deal_id}"]')
        target = page.locator('.kanban-cards[data-column="qualified"]')
        with page.expect_response(lambda r: r.url.endswith("/apps/crm/views/pipeline/move")):
            card.drag_to(target)
        page.locator(f'.kanban-cards[data-column="qualified"] .kanban-card[data-id="{deal_id}"]').wait_for()
        assert deals.get(deal_id).fields["stage"] == "qualified"
        assert sideways(page) == 0  # the board scrolls inside itself, not the page
        if zh:
            assert page.get_by_role("heading", name=t("Qualified")).is_visible()
        assert problems == [], problems
    finally:
        name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        context.close()


def test_pages_fit_a_phone_in_chinese(
    browser: Any, live_server: str, crm_with_rep: Recordbase, artifacts: Path
) -> None:
    base = live_server
    company = crm_with_rep.records(SYSTEM, "crm", "companies").query().records[0].id
    crm_with_rep.records(SYSTEM, "crm", "deals").create_many(  # a card in each column of the board
        [{"name": f"Deal {stage}", "stage": stage, "company": company}
         for stage in ("lead", "qualified", "proposal", "won", "lost")]  # fmt: skip
    )
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, base, *ADMIN)  # an administrator's header has the most links
        for path in ("/", "/apps/crm", "/apps/crm/tables/deals", "/apps/crm/views/pipeline",
                     "/apps/crm/tables/deals/new", "/inbox", "/admin/compliance/inventory"):  # fmt: skip
            page.goto(base + path)
            assert sideways(page) == 0, path  # wide tables and boards scroll inside themselves
    finally:
        page.screenshot(path=str(artifacts / "pages_fit_a_phone.png"), full_page=True)
        context.close()


def test_outsider_submits_the_public_form_with_consent_and_the_admin_sees_it(
    page: Any, browser: Any, live_server: str, crm: Recordbase, artifacts: Path
) -> None:
    base = live_server
    sign_in(page, base, *ADMIN)
    page.goto(f"{base}/apps/crm/forms/new_contact")
    page.get_by_role("button", name="Create public link").click()
    link = page.locator(".link-list input[data-copy]").first
    link.wait_for()
    url = link.input_value()
    assert url.startswith(f"{base}/f/")

    # The outsider: no account, a phone-sized screen.
    outsider = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    visitor = outsider.new_page()
    try:
        visitor.goto(url)
        assert visitor.locator("form.record-form").is_visible()
        assert visitor.locator('input[type="checkbox"][name="consent"]:checked').count() == 0  # unticked
        visitor.get_by_role("textbox", name="Name").first.fill("Zhao Min 赵敏")
        visitor.get_by_role("textbox", name="Email").first.fill("zhao.min@example.com")
        visitor.locator('input[type="checkbox"][value="sales_follow_up"]').check()
        visitor.locator("form.record-form button[type=submit]").click()
        visitor.wait_for_url(f"{url}/thanks")
        visitor.screenshot(path=str(artifacts / "public-form-thanks.png"), full_page=True)
    finally:
        outsider.close()

    # The admin finds the contact and the consent it came with.
    contacts = crm.records(SYSTEM, "crm", "contacts")
    found = contacts.query(filter={"field": "email", "op": "eq", "value": "zhao.min@example.com"}).records
    assert len(found) == 1
    page.goto(f"{base}/apps/crm/tables/contacts/records/{found[0].id}")
    assert "Zhao Min" in page.locator("main").inner_text()
    page.get_by_role("link", name="Compliance").click()
    page.wait_for_url(f"{base}/admin/compliance")
    page.goto(f"{base}/admin/compliance/consent?record={found[0].id}")
    ledger = page.locator("main").inner_text()
    assert "sales_follow_up" in ledger or "follow" in ledger.lower()
    assert [c["purpose"] for c in contacts.consents(found[0].id)] == ["sales_follow_up"]
    assert page.problems == [], page.problems


@pytest.fixture
def crm_contacts(crm_with_rep: Recordbase) -> Recordbase:
    """A contact another rep owns: its phone is masked for our rep (clear only on the rep's own contacts)."""
    other = crm_with_rep.create_user(SYSTEM, "li.na@example.org", "li-na-password-1", display_name="Li Na")
    crm_with_rep.set_roles(SYSTEM, "li.na@example.org", "crm", ["sales_rep"])
    contacts = crm_with_rep.records(SYSTEM, "crm", "contacts")
    contacts.create({"name": "Chen Jie 陈杰", "phone": "+8613812345678", "owner": other})
    return crm_with_rep


def test_rep_reveals_a_contacts_phone_and_the_admin_finds_it_in_the_audit_log(
    page: Any, browser: Any, live_server: str, crm_contacts: Recordbase
) -> None:
    base = live_server
    sign_in(page, base, *REP)
    page.goto(f"{base}/apps/crm/tables/contacts")
    page.get_by_role("link", name="Open record 1").click()
    page.wait_for_url(f"{base}/apps/crm/tables/contacts/records/1")
    phone = page.locator("#field-phone")
    assert phone.locator(".value").inner_text() == "+86 138****5678"
    phone.locator("summary").click()  # the reveal form is folded until asked for
    phone.get_by_label("Reason for revealing Phone").fill("customer called back about the order")
    phone.get_by_role("button", name="Reveal").click()
    phone.locator("[data-revealed]").wait_for()
    assert phone.locator("[data-revealed]").inner_text() == "+8613812345678"
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/login")

    # The administrator finds the reveal, and its reason, in the audit log.
    sign_in(page, base, *ADMIN)
    page.get_by_role("link", name="Compliance").click()
    page.wait_for_url(f"{base}/admin/compliance")
    page.goto(f"{base}/admin/compliance/audit")
    page.locator("#audit-action").select_option("reveal")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_url(f"{base}/admin/compliance/audit?*")
    entries = page.locator("main table")
    assert "customer called back about the order" in entries.inner_text()
    assert "Wang Fang" in entries.inner_text()
    assert "+8613812345678" not in page.content()  # the value itself is never in the log
    assert page.problems == [], page.problems
