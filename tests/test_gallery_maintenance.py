"""The gallery's equipment maintenance template (``schemas/gallery/maintenance.json``), on both databases.

Installed with its sample data, then used by a maintenance manager (assigns
work, sees every cost), two technicians (their own inspections and repairs,
no asset costs) and a member of staff (reports breakdowns, follows their own
reports). Each asset's repair cost is a rollup of its repairs' total cost, a
formula of parts and labour.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from gallery_helpers import (
    SYSTEM,
    TODAY,
    GalleryApp,
    install_with_sample_data,
    labels_in,
    load_template,
    not_bilingual,
)
from recordbase import automations
from recordbase.collab import list_notifications
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import NotFound, PermissionDenied
from recordbase.retention import run_retention


def test_the_template_has_no_problem_and_no_warning() -> None:
    assert check_definition(load_template("maintenance")) == []


def test_every_text_is_in_english_and_chinese() -> None:
    texts = labels_in(load_template("maintenance"))
    assert len(texts) > 100
    assert not_bilingual(texts, filled=True) == []


@pytest.fixture
def maintenance(rb: Recordbase) -> Recordbase:
    counts, _ = install_with_sample_data(rb, "maintenance")
    assert counts == {"assets": 25, "technicians": 25, "inspections": 25, "repairs": 25}
    return rb


class Plant(GalleryApp):
    """A manager, technicians Wu and Zhou, Lin from the office; a press bought for 200,000."""

    app = "maintenance"

    def __init__(self, rb: Recordbase) -> None:
        super().__init__(rb)
        self.manager = self.person("manager@example.org", "maintenance_manager")
        self.wu = self.person("wu@example.org", "technician")
        self.zhou = self.person("zhou@example.org", "technician")
        self.lin = self.person("lin@example.org", "staff")
        self.press = self.store(self.manager, "assets").create(
            {
                "asset_tag": "PR-003",
                "name": "Hydraulic press 3",
                "category": "machine",
                "location": "Hall B",
                "purchase_cost": "200000",
                "responsible": self.manager.user_id,
            }
        )

    def asset(self) -> Any:
        return self.store(SYSTEM, "assets").get(self.press.id).fields


@pytest.fixture
def plant(maintenance: Recordbase) -> Plant:
    return Plant(maintenance)


def test_every_sample_assets_repair_cost_is_the_sum_of_its_repairs(maintenance: Recordbase) -> None:
    repairs = maintenance.records(SYSTEM, "maintenance", "repairs").query(page_size=100).records
    for r in repairs:
        parts, hours, rate = (
            r.fields[k] or 0 for k in ("parts_cost", "labour_hours", "labour_rate")
        )
        # Formulas compute in double precision and round to the cent when read: at most a cent apart.
        assert abs(r.fields["total_cost"] - (parts + hours * rate)) <= Decimal("0.01")
    for a in maintenance.records(SYSTEM, "maintenance", "assets").query(page_size=100).records:
        mine = [r for r in repairs if r.fields["asset"] == a.id]
        assert a.fields["repair_count"] == len(mine)
        assert a.fields["repair_cost"] == sum(
            (r.fields["total_cost"] for r in mine), start=Decimal("0.00")
        )
    assert any(
        a.fields["repair_count"]
        for a in maintenance.records(SYSTEM, "maintenance", "assets").query(page_size=100).records
    )


def test_a_breakdown_goes_from_report_to_done_and_costs_add_up_on_the_asset(plant: Plant) -> None:
    rb = plant.rb
    report = plant.store(plant.lin, "repairs").create(
        {"asset": plant.press.id, "title": "Leaks oil", "priority": "urgent"}
    )
    assert report.fields["reporter"] == plant.lin.user_id and report.fields["status"] == "reported"
    assert [n.record_id for n in list_notifications(rb, plant.manager)] == [
        report.id
    ]  # urgent: the managers are told
    with pytest.raises(PermissionDenied):
        plant.store(plant.lin, "repairs").create(
            {"asset": plant.press.id, "title": "Fix it now", "status": "done"}
        )
    with pytest.raises(NotFound):
        plant.store(plant.wu, "repairs").get(report.id)  # not assigned to Wu yet
    manager = plant.store(plant.manager, "repairs")
    assigned = manager.update(
        report.id, {"assigned_to": plant.wu.user_id, "status": "scheduled"}, version=report.version
    )
    assert [n.record_id for n in list_notifications(rb, plant.wu)] == [report.id]
    wu = plant.store(plant.wu, "repairs")
    worked = wu.update(
        report.id,
        {"parts_cost": "850", "labour_hours": "3.5", "status": "in_progress"},
        version=assigned.version,
    )
    assert (worked.fields["labour_cost"], worked.fields["total_cost"]) == (
        Decimal("420.00"),
        Decimal("1270.00"),
    )
    with pytest.raises(PermissionDenied):
        wu.update(
            report.id, {"labour_rate": "500"}, version=worked.version
        )  # the rate is the manager's
    done = wu.update(report.id, {"status": "done"}, version=worked.version)
    assert done.fields["completed_on"] == TODAY
    assert [n.record_id for n in list_notifications(rb, plant.lin)] == [
        report.id
    ]  # the reporter hears it is fixed
    asset = plant.asset()
    assert (asset["repair_count"], asset["repair_cost"], asset["cost_ratio"]) == (
        1,
        Decimal("1270.00"),
        Decimal("0.6"),
    )
    # Lin follows her report without seeing what it cost.
    mine = plant.store(plant.lin, "repairs").get(report.id)
    assert mine.fields["status"] == "done" and {
        "parts_cost",
        "labour_cost",
        "total_cost",
    }.isdisjoint(mine.fields)


def test_a_failed_inspection_opens_a_repair_and_inspections_are_reminded(plant: Plant) -> None:
    rb = plant.rb
    inspections = plant.store(plant.manager, "inspections")
    soon = inspections.create(
        {
            "asset": plant.press.id,
            "inspector": plant.wu.user_id,
            "scheduled_on": (TODAY + dt.timedelta(days=3)).isoformat(),
        }
    )
    other = inspections.create(
        {
            "asset": plant.press.id,
            "inspector": plant.zhou.user_id,
            "scheduled_on": (TODAY + dt.timedelta(days=20)).isoformat(),
        }
    )
    automations.run_scheduled(rb)
    assert [n.record_id for n in list_notifications(rb, plant.wu)] == [soon.id]
    assert list_notifications(rb, plant.zhou) == []
    wu = plant.store(plant.wu, "inspections")
    assert [i.id for i in wu.query(page_size=50).records] == [soon.id]
    with pytest.raises(NotFound):
        wu.get(other.id)
    mine = wu.get(soon.id)
    with pytest.raises(PermissionDenied):
        wu.update(soon.id, {"scheduled_on": TODAY.isoformat()}, version=mine.version)
    wu.update(
        soon.id,
        {
            "status": "done",
            "result": "fail",
            "checks": ["safety"],
            "findings": "Guard switch broken",
        },
        version=mine.version,
    )
    assert wu.get(soon.id).fields["performed_on"] == TODAY
    opened = (
        plant.store(plant.manager, "repairs")
        .query(filter={"field": "asset", "op": "eq", "value": plant.press.id})
        .records
    )
    assert [(r.fields["priority"], r.fields["status"], r.fields["due_on"]) for r in opened] == [
        ("high", "reported", TODAY + dt.timedelta(days=7))
    ]
    assert [n.record_id for n in list_notifications(rb, plant.manager)] == [soon.id]
    assert (plant.asset()["inspection_count"], plant.asset()["last_inspected"]) == (2, TODAY)


def test_technicians_and_staff_never_see_what_assets_cost(plant: Plant) -> None:
    for who in (plant.wu, plant.lin):
        seen = plant.store(who, "assets").get(plant.press.id)
        assert {"purchase_cost", "repair_cost", "cost_ratio"}.isdisjoint(seen.fields)
        assert seen.fields["name"] == "Hydraulic press 3"
    wu = plant.store(plant.wu, "assets")
    press = wu.get(plant.press.id)
    moved = wu.update(press.id, {"status": "under_repair"}, version=press.version)
    with pytest.raises(PermissionDenied):
        wu.update(press.id, {"location": "Hall C"}, version=moved.version)
    with pytest.raises(PermissionDenied):
        plant.store(plant.lin, "assets").update(
            press.id, {"status": "retired"}, version=moved.version
        )


def test_technicians_personal_data_is_for_the_team_and_removed_a_year_after_they_leave(
    plant: Plant,
) -> None:
    team = plant.store(plant.manager, "technicians")
    wu = team.create(
        {
            "name": "Wu Gang",
            "account": plant.wu.user_id,
            "phone": "13812345678",
            "skills": ["mechanical"],
        }
    )
    team.give_consent(wu.id, ["dispatch"], version="2026-01", channel="paper form")
    left = team.create(
        {
            "name": "Old Hand",
            "phone": "13900001111",
            "active": False,
            "left_on": (TODAY - dt.timedelta(days=400)).isoformat(),
        }
    )
    assert plant.store(plant.zhou, "technicians").get(wu.id).fields["phone"] == "+8613812345678"
    staff = plant.store(plant.lin, "technicians")
    assert "phone" not in staff.get(wu.id).fields
    with pytest.raises(NotFound):
        staff.get(left.id)  # staff see active technicians only
    with pytest.raises(PermissionDenied):
        staff.reveal(wu.id, "phone", "Need to call him")
    run_retention(plant.rb)
    gone = plant.store(SYSTEM, "technicians").get(left.id).fields
    assert (gone["name"], gone["phone"], gone["active"]) == (None, None, False)
    assert plant.store(SYSTEM, "technicians").get(wu.id).fields["name"] == "Wu Gang"


def test_the_views_and_dashboard_charts_work_for_the_manager(plant: Plant) -> None:
    for v in load_template("maintenance")["views"]:
        if v["type"] in ("grid", "kanban", "calendar"):
            plant.store(plant.manager, v["table"]).query(
                filter=v.get("filter"), sort=v.get("sort"), fields=v.get("fields"), page_size=10
            )
        for c in v.get("charts", []):
            groups = plant.store(plant.manager, c.get("table", v["table"])).aggregate(
                group_by=[c["group_by"]] if "group_by" in c else None,
                metrics=[c.get("metric", "count")],
                filter=c.get("filter"),
            )
            assert groups, c["slug"]
