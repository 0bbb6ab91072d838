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


def sign_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/")
    assert "/login?next=/" in page.url
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


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
    page.get_by_role("link", name="Deals").click()
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
