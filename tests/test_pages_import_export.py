"""Browser pages: downloading what a grid shows, and importing a CSV or Excel file into a table.

The CRM of ``access_defs`` (deals 1–5). The manager (east deals 1, 2, 5; phone
in clear) may import and export; the viewer (every deal, phone masked, notes
hidden) may export; the rep may do neither.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from access_defs import DEALS_PERMISSIONS, PHONES, SYSTEM, Crm, crm_definition, seed
from flask.testing import FlaskClient
from openpyxl import Workbook
from page_helpers import csrf_from
from recordbase.core import Recordbase
from test_pages_grid import row_ids, sign_in

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

DEALS = "/apps/crm/tables/deals"
IMPORT = DEALS + "/import"


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    seeded = seed(rb)
    grants = copy.deepcopy(DEALS_PERMISSIONS)
    grants["manager"].update({"import": True, "export": True})
    grants["viewer"]["export"] = True
    assert rb.install(crm_definition(deals_permissions=grants), SYSTEM).applied
    return seeded


def export_link(html: str, fmt: str) -> str:
    found = re.search(rf'<a href="([^"]+format={fmt}[^"]*)" download>', html)
    assert found, f"no {fmt} download link"
    return found.group(1).replace("&amp;", "&")


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def deal_names(crm: Crm) -> list[str]:
    return [r.fields["name"] for r in crm.deals().query(sort=["id"], page_size=100).records]


def upload(client: FlaskClient, page: str, content: bytes, name: str, mode: str = "atomic", **more: str):  # type: ignore[no-untyped-def]
    return client.post(
        IMPORT,
        data={"csrf_token": csrf_from(page), "mode": mode, "file": (io.BytesIO(content), name), **more},
        content_type="multipart/form-data",
    )


# --- export -------------------------------------------------------------------------------------


def test_the_grid_downloads_what_it_shows(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    state = {"field": "amount", "op": "gte", "value": "150", "sort": "-amount", "cols": "name,amount,phone"}
    page = client.get(DEALS, query_string=state)
    assert row_ids(page.text) == [5, 2]
    link = export_link(page.text, "csv")
    query = parse_qs(urlsplit(link).query)
    assert query["sort"] == ["-amount"] and query["fields"] == ["name,amount,phone"]
    download = client.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = csv_rows(download.data)
    assert [r["Name"] for r in rows] == ["Elm", "Birch"]  # the grid's filter, sort and columns
    assert list(rows[0]) == ["Name", "Amount", "Phone"]
    assert rows[1]["Phone"] == "'" + PHONES[2]  # in clear; a leading "+" is quoted against formula injection
    workbook = client.get(export_link(page.text, "xlsx"))
    assert workbook.status_code == 200 and workbook.data[:2] == b"PK"  # a zip: an XLSX workbook
    exports = [e for e in crm.rb.audit_entries(app="crm", table="deals") if e["action"] == "export"]
    assert len(exports) == 2  # every download is in the audit trail


def test_a_download_masks_what_the_user_sees_masked(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "viewer")
    page = client.get(DEALS)
    rows = csv_rows(client.get(export_link(page.text, "csv")).data)
    assert [r["Name"] for r in rows] == ["Acme", "Birch", "Cedar", "Dune", "Elm"]
    assert "Notes" not in rows[0]  # hidden to the viewer
    assert rows[0]["Phone"] and rows[0]["Phone"] != PHONES[1]  # masked
    assert not any(phone in client.get(export_link(page.text, "csv")).text for phone in PHONES.values())


def test_no_download_or_import_without_the_rights(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "rep")
    page = client.get(DEALS)
    assert page.status_code == 200
    assert 'id="grid-export"' not in page.text and 'id="grid-import"' not in page.text
    assert client.get("/api/v1/apps/crm/tables/deals/records/export").status_code == 403
    assert client.get(IMPORT).status_code == 403


# --- import -------------------------------------------------------------------------------------


def test_a_csv_is_imported_with_its_columns_matched_by_label(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    grid = client.get(DEALS).text
    assert f'href="{IMPORT}"' in grid  # the Import button
    page = client.get(IMPORT).text
    assert 'enctype="multipart/form-data"' in page and "<code>phone</code>" in page
    # A column that matches no field stops the import, and the report says which (row 1: the header).
    unknown = upload(client, page, b"Name,Region,Shoe size\nFir,east,42\n", "deals.csv")
    assert unknown.status_code == 422
    assert re.search(r'<tr data-row="1"><td>1</td><td>Shoe size</td><td>unknown column', unknown.text)
    assert 'id="import-leave-out" name="leave_out" value="yes" checked' in unknown.text  # offered
    assert deal_names(crm) == ["Acme", "Birch", "Cedar", "Dune", "Elm"]
    # Chosen: the column is left out and named.
    kept = upload(client, page, b"Name,Region,Shoe size\nYew,east,42\n", "deals.csv", leave_out="yes")
    assert kept.status_code == 200 and "1 record imported" in kept.text
    assert "<strong>Shoe size</strong> (matches no field)" in kept.text
    assert deal_names(crm)[-1] == "Yew"
    content = "\ufeffName,Region,Amount,Phone\nFir,east,120,+8613900001111\n杉树,east,80.5,\n"
    done = upload(client, page, content.encode(), "deals.csv")
    assert done.status_code == 200, done.text
    report = done.text.split('id="import-report"', 1)[1].split("</section>", 1)[0]
    assert "2 records imported" in report and "deals.csv: 2 rows read." in report
    assert deal_names(crm)[-3:] == ["Yew", "Fir", "杉树"]
    fir = crm.deals().query(filter={"field": "name", "op": "eq", "value": "Fir"}).records[0]
    assert fir.fields["phone"] == "+8613900001111" and fir.fields["region"] == "east"
    created = [e for e in crm.rb.audit_entries(app="crm", table="deals") if e["action"] == "create"]
    assert len(created) == 5 + 1 + 2  # the seed, then one entry per imported record


def test_an_atomic_import_with_a_bad_row_writes_nothing_and_says_where(
    client: FlaskClient, crm: Crm
) -> None:
    sign_in(client, crm, "manager")
    page = client.get(IMPORT).text
    content = b"Name,Region,Amount\nFir,east,120\nPine,east,lots\n"
    refused = upload(client, page, content, "deals.csv")
    assert refused.status_code == 422
    assert "Nothing was imported" in refused.text
    problem = re.search(r'<tr data-row="3"><td>3</td><td>Amount</td><td>([^<]+)</td></tr>', refused.text)
    assert problem, refused.text  # the spreadsheet's row number (the header is row 1) and the column
    assert deal_names(crm) == ["Acme", "Birch", "Cedar", "Dune", "Elm"]
    # Importing the valid rows only.
    partial = upload(client, page, content, "deals.csv", mode="skip-invalid")
    assert partial.status_code == 200
    assert "1 record imported" in partial.text and "1 row with a problem was left out." in partial.text
    assert 'data-row="3"' in partial.text
    assert deal_names(crm)[-1] == "Fir"


def test_an_excel_file_is_imported_too(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Region", "Amount"])
    sheet.append(["Larch", "east", 310])
    data = io.BytesIO()
    book.save(data)
    done = upload(client, client.get(IMPORT).text, data.getvalue(), "deals.xlsx")
    assert done.status_code == 200 and "1 record imported" in done.text
    assert deal_names(crm)[-1] == "Larch"


def test_files_that_cannot_be_imported_are_refused_plainly(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    page = client.get(IMPORT).text
    wrong = upload(client, page, b"%PDF-1.4", "deals.pdf")
    assert wrong.status_code == 422 and "Only .csv and .xlsx files can be imported." in wrong.text
    broken = upload(client, page, b"not a zip", "deals.xlsx")
    assert broken.status_code == 422 and "The file could not be read: the file is not an XLSX workbook" in broken.text
    missing = client.post(IMPORT, data={"csrf_token": csrf_from(page), "mode": "atomic"})
    assert missing.status_code == 422 and "Choose a CSV or Excel (.xlsx) file." in missing.text
    forged = client.post(IMPORT, data={"mode": "atomic", "file": (io.BytesIO(b"Name\nX\n"), "d.csv")},
                         content_type="multipart/form-data")  # fmt: skip
    assert forged.status_code in (400, 403)  # no CSRF token
    assert deal_names(crm) == ["Acme", "Birch", "Cedar", "Dune", "Elm"]


def test_the_import_page_in_chinese(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, crm, "manager")
    page = client.get(IMPORT, headers={"Accept-Language": "zh-CN"}).text
    assert "导入" in page and "全部或全不" in page
    grid = client.get(DEALS, headers={"Accept-Language": "zh-CN"}).text
    assert "导入…" in grid and "下载这些记录" in grid
