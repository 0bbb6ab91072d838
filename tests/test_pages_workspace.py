"""Browser pages, workspace: the apps a user can open and an app's home; the pages' assets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from page_helpers import ADMIN, SYSTEM, USER, add_admin, add_user, login, post_form
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file
from recordbase_web.i18n import label

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"


def small_app(slug: str, label_: object) -> dict:
    return {
        "slug": slug,
        "label": label_,
        "version": 1,
        "roles": [
            {
                "slug": "staff",
                "label": {"en": "Staff", "zh-CN": "员工"},
                "clearance": ["public", "internal"],
            }
        ],
        "tables": [
            {
                "slug": "notes",
                "label": {"en": "Notes", "zh-CN": "笔记"},
                "fields": [{"slug": "title", "label": "Title", "type": "text"}],
                "permissions": {"staff": {"read": True, "create": True}},
            }
        ],
        "views": [
            {
                "slug": "all_notes",
                "label": {"en": "All notes", "zh-CN": "全部笔记"},
                "table": "notes",
                "type": "grid",
            }
        ],
    }


@pytest.fixture
def world(rb: Recordbase) -> Recordbase:
    """The CRM and two small apps; the user has a role in the CRM and in "notes" only."""
    definition, problems = load_definition_file(CRM)
    assert not problems
    rb.install(definition, SYSTEM)
    rb.install(small_app("notes", {"en": "Team notes", "zh-CN": "团队笔记"}), SYSTEM)
    rb.install(small_app("secret", "Secret plans"), SYSTEM)
    add_admin(rb)
    add_user(rb)
    rb.set_roles(SYSTEM, USER[0], "crm", ["sales_rep"])
    rb.set_roles(SYSTEM, USER[0], "notes", ["staff"])
    return rb


def app_links(html: str) -> list[str]:
    return re.findall(r'<a href="/apps/([a-z_0-9]+)">', html)


def test_workspace_lists_only_the_users_apps(client: FlaskClient, world: Recordbase) -> None:
    login(client, *USER)
    page = client.get("/")
    assert page.status_code == 200
    assert sorted(app_links(page.text)) == ["crm", "notes"]
    assert "Secret plans" not in page.text
    assert "CRM" in page.text and "Team notes" in page.text
    assert "Companies, contacts, deals" in page.text  # the description, in English


def test_workspace_of_an_admin_lists_every_app(client: FlaskClient, world: Recordbase) -> None:
    login(client, *ADMIN)
    assert sorted(app_links(client.get("/").text)) == ["crm", "notes", "secret"]


def test_workspace_without_apps_says_so(client: FlaskClient, rb: Recordbase) -> None:
    add_user(rb)
    login(client, *USER)
    page = client.get("/")
    assert app_links(page.text) == []
    assert "You have no apps yet" in page.text
    assert 'href="/gallery"' not in page.text.split("<main", 1)[1]  # the way to install is for administrators


def test_workspace_of_an_admin_without_apps_points_to_the_gallery_and_the_builder(
    client: FlaskClient, rb: Recordbase
) -> None:
    add_admin(rb)
    login(client, *ADMIN)
    page = client.get("/", headers={"Accept-Language": "zh-CN"})
    main = page.text.split("<main", 1)[1]
    assert "还没有应用" in main
    assert 'href="/gallery"' in main and 'href="/builder#new-heading"' in main
    assert "请联系管理员" not in main  # an administrator is the one to ask


def test_workspace_labels_in_chinese(client: FlaskClient, world: Recordbase) -> None:
    login(client, *USER)
    page = client.get("/", headers={"Accept-Language": "zh-CN"})
    assert "客户关系管理" in page.text and "团队笔记" in page.text
    assert "公司、联系人、商机" in page.text
    assert "工作台" in page.text


def test_app_home_lists_tables_and_views_the_user_may_use(
    client: FlaskClient, world: Recordbase
) -> None:
    login(client, *USER)
    page = client.get("/apps/crm")
    assert page.status_code == 200
    expected = world.schema_for(world.actor_for(2), "crm")  # type: ignore[arg-type]
    for table in expected["tables"]:
        assert f'id="table-{table["slug"]}"' in page.text
        assert label(table["label"], "en") in page.text
    for view in expected["views"]:
        assert f'id="view-{view["slug"]}"' in page.text
    assert "<h1>CRM</h1>" in page.text


def test_app_home_in_chinese(client: FlaskClient, world: Recordbase) -> None:
    login(client, *USER)
    post_form(client, "/language", {"lang": "zh-CN"}, form_page="/")
    page = client.get("/apps/notes")
    assert "<h1>团队笔记</h1>" in page.text
    assert "笔记" in page.text and "全部笔记" in page.text
    assert "数据表" in page.text and "视图" in page.text and "表格" in page.text


def test_app_home_links_to_grids_new_record_forms_and_views(
    client: FlaskClient, world: Recordbase
) -> None:
    login(client, *USER)  # a sales rep: reads and creates in every CRM table
    page = client.get("/apps/crm").text
    assert 'href="/apps/crm/tables/deals"' in page
    assert 'href="/apps/crm/tables/deals/new"' in page
    assert '<a href="/apps/crm/views/pipeline">Pipeline</a>' in page
    assert '<a href="/apps/crm/views/activity_calendar">Activity calendar</a>' in page
    pipeline = page.split('id="view-pipeline"', 1)[1].split("</tr>", 1)[0]
    assert "<td>Kanban</td>" in pipeline


def test_app_home_offers_only_what_the_roles_allow(client: FlaskClient, world: Recordbase) -> None:
    app = small_app("drop", "Drop box")
    app["tables"][0]["permissions"] = {"staff": {"create": True}}  # may add notes, not read them
    app["views"].append(
        {"slug": "numbers", "label": "Numbers", "table": "notes", "type": "dashboard"}
    )
    assert world.install(app, SYSTEM).applied
    world.set_roles(SYSTEM, USER[0], "drop", ["staff"])
    login(client, *USER)
    page = client.get("/apps/drop").text
    assert 'href="/apps/drop/tables/notes"' not in page  # no grid without the read right
    assert 'href="/apps/drop/tables/notes/new"' in page
    assert 'id="view-numbers"' not in page  # a dashboard it may not read any table of
    assert 'href="/apps/drop/views/all_notes"' in page
    world.set_roles(SYSTEM, USER[0], "crm", ["auditor"])  # reads, never creates
    crm = client.get("/apps/crm").text
    assert 'href="/apps/crm/tables/deals"' in crm
    assert not re.search(r'/tables/[a-z_]+/new"', crm)
    assert 'id="view-new_contact"' not in crm  # a form the auditor could not send
    assert 'href="/apps/crm/views/pipeline"' in crm


@pytest.mark.parametrize("slug", ["secret", "not_installed"])
def test_app_home_of_a_foreign_or_missing_app_is_404(
    client: FlaskClient, world: Recordbase, slug: str
) -> None:
    login(client, *USER)
    response = client.get(f"/apps/{slug}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "This page does not exist, or you have no access to it." in response.text
    assert "Secret plans" not in response.text


def test_label_helper() -> None:
    both = {"en": "Deals", "zh-CN": "商机"}
    assert label(both, "en") == "Deals"
    assert label(both, "zh-CN") == "商机"
    assert label({"en": "Deals"}, "zh-CN") == "Deals"  # falls back to English
    assert label({"zh": "商机"}, "zh-CN") == "商机"  # the base language
    assert label({"zh_CN": "商机", "en": "Deals"}, "zh-CN") == "商机"
    assert label({"fr": "Affaires"}, "zh-CN") == "Affaires"  # whatever there is
    assert label("Plain", "zh-CN") == "Plain"
    assert label(None) == ""


# --- assets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, mimetype",
    [
        ("htmx.min.js", "text/javascript"),
        ("pico.min.css", "text/css"),
    ],
)
def test_vendor_assets_are_served_from_node_modules(
    client: FlaskClient, rb: Recordbase, name: str, mimetype: str
) -> None:
    add_user(rb)
    login(client, *USER)
    url = re.search(rf'"(/assets/{re.escape(name)}\?v=[^"]+)"', client.get("/").text)
    assert url, name
    response = client.get(url.group(1))
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert "max-age=31536000" in response.headers["Cache-Control"]
    assert "immutable" in response.headers["Cache-Control"]
    unversioned = client.get(f"/assets/{name}")
    assert "max-age=3600" in unversioned.headers["Cache-Control"]


def test_htmx_is_a_2_0_release(client: FlaskClient) -> None:
    body = client.get("/assets/htmx.min.js").text
    assert re.search(r'version:\s*"2\.0\.\d+"', body)


@pytest.mark.parametrize(
    "path",
    [
        "/assets/htmx.js",
        "/assets/..%2Fpackage.json",
        "/assets/swagger-ui.css",
        "/static/../__init__.py",
        "/static/nothing.css",
    ],
)
def test_only_listed_assets_are_served(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_own_static_files(client: FlaskClient) -> None:
    login_page = client.get("/login").text
    url = re.search(r'"(/static/app\.css\?v=[0-9a-f]+)"', login_page)
    assert url
    response = client.get(url.group(1))
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert "immutable" in response.headers["Cache-Control"]
    assert client.get("/static/app.js").mimetype == "text/javascript"
