"""The gallery's project template (``schemas/gallery/projects.json``), on both databases.

Installed with its sample data, then used by a project manager (plans
projects, sees budgets and client contacts), two team members (create, move
and reassign tasks; told when a task is theirs or overdue) and a stakeholder
(follows progress, sees no budget, no client contact, no cancelled project).
A project's progress is a formula over two rollups of its tasks.
"""

from __future__ import annotations

import datetime as dt
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
from recordbase.actor import Actor
from recordbase.collab import list_notifications
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import NotFound, PermissionDenied


def test_the_template_has_no_problem_and_no_warning() -> None:
    assert check_definition(load_template("projects")) == []


def test_every_text_is_in_english_and_chinese() -> None:
    texts = labels_in(load_template("projects"))
    assert len(texts) > 100
    assert not_bilingual(texts, filled=True) == []


@pytest.fixture
def projects(rb: Recordbase) -> Recordbase:
    counts, _ = install_with_sample_data(rb, "projects")
    assert counts == {"projects": 25, "milestones": 25, "tasks": 25}
    return rb


class Team(GalleryApp):
    """A project manager, members Ann and Bo, a stakeholder; a project with a milestone."""

    app = "projects"

    def __init__(self, rb: Recordbase) -> None:
        super().__init__(rb)
        self.pm = self.person("pm@example.org", "project_manager")
        self.ann = self.person("ann@example.org", "member")
        self.bo = self.person("bo@example.org", "member")
        self.sponsor = self.person("sponsor@example.org", "stakeholder")
        self.project = self.store(self.pm, "projects").create(
            {
                "name": "New website",
                "status": "active",
                "owner": self.pm.user_id,
                "client": "Acme Ltd",
                "client_contact": "Zhang Wei",
                "client_email": "zhang.wei@acme.example",
                "budget": "250000",
                "start_date": TODAY.isoformat(),
                "due_date": (TODAY + dt.timedelta(days=60)).isoformat(),
            }
        )
        self.milestone = self.store(self.pm, "milestones").create(
            {
                "name": "Design approved",
                "project": self.project.id,
                "owner": self.pm.user_id,
                "due_date": (TODAY + dt.timedelta(days=7)).isoformat(),
            }
        )

    def task(self, actor: Actor, **values: Any) -> Any:
        return self.store(actor, "tasks").create({"project": self.project.id, **values})


@pytest.fixture
def team(projects: Recordbase) -> Team:
    return Team(projects)


def test_progress_is_the_share_of_tasks_done_for_every_sample_project(projects: Recordbase) -> None:
    tasks = projects.records(SYSTEM, "projects", "tasks").query(page_size=100).records
    for p in projects.records(SYSTEM, "projects", "projects").query(page_size=100).records:
        mine = [t for t in tasks if t.fields["project"] == p.id]
        done = sum(1 for t in mine if t.fields["status"] == "done")
        assert (p.fields["task_count"], p.fields["tasks_done"]) == (len(mine), done)
        assert p.fields["progress"] == (round(done * 100 / len(mine)) if mine else 0)
    assert any(
        p.fields["task_count"]
        for p in projects.records(SYSTEM, "projects", "projects").query(page_size=100).records
    )


def test_assignees_are_told_and_progress_follows_the_board(team: Team) -> None:
    rb = team.rb
    first = team.task(
        team.pm, title="Wireframes", assignee=team.ann.user_id, milestone=team.milestone.id
    )
    second = team.task(team.ann, title="Copy", milestone=team.milestone.id)
    assert [n.record_id for n in list_notifications(rb, team.ann)] == [first.id]
    moved = team.store(team.ann, "tasks").update(
        second.id, {"assignee": team.bo.user_id}, version=second.version
    )
    assert [n.record_id for n in list_notifications(rb, team.bo)] == [second.id]
    done = team.store(team.bo, "tasks").update(second.id, {"status": "done"}, version=moved.version)
    assert done.fields["completed_on"] == TODAY and done.fields["done_point"] == 1
    project = team.store(team.sponsor, "projects").get(team.project.id)
    assert (
        project.fields["task_count"],
        project.fields["tasks_done"],
        project.fields["progress"],
    ) == (2, 1, 50)
    milestone = team.store(team.sponsor, "milestones").get(team.milestone.id)
    assert (milestone.fields["task_count"], milestone.fields["tasks_done"]) == (2, 1)
    assert list_notifications(rb, team.sponsor) == [] and list_notifications(rb, team.pm) == []
    closed = team.store(team.pm, "projects").update(
        team.project.id, {"status": "done"}, version=team.project.version
    )
    assert closed.fields["closed_on"] == TODAY and closed.fields["days_left"] == 0


def test_overdue_tasks_and_coming_milestones_remind_their_people_once(team: Team) -> None:
    late = team.task(
        team.pm, title="Hosting contract", due_date=(TODAY - dt.timedelta(days=2)).isoformat()
    )
    team.task(
        team.pm,
        title="Kick-off",
        due_date=(TODAY - dt.timedelta(days=2)).isoformat(),
        status="done",
        assignee=team.bo.user_id,
    )
    assigned = team.store(team.pm, "tasks").update(
        late.id, {"assignee": team.ann.user_id}, version=late.version
    )
    assert assigned.fields["overdue"] is True
    automations.run_scheduled(team.rb)
    assert [n.message for n in list_notifications(team.rb, team.ann)] == [
        '{"en": "Your task is overdue.", "zh-CN": "你的任务已逾期。"}',
        '{"en": "A task was assigned to you.", "zh-CN": "有一项任务分配给了你。"}',
    ]
    assert [n.record_id for n in list_notifications(team.rb, team.pm)] == [
        team.milestone.id
    ]  # due in 7 days
    # Bo was told of his task when it was made, but it is done: no overdue reminder.
    assert [n.message for n in list_notifications(team.rb, team.bo)] == [
        '{"en": "A task was assigned to you.", "zh-CN": "有一项任务分配给了你。"}'
    ]
    automations.run_scheduled(team.rb)
    assert len(list_notifications(team.rb, team.ann)) == 2


def test_members_work_on_tasks_but_see_no_budget(team: Team) -> None:
    project = team.store(team.ann, "projects").get(team.project.id)
    assert "budget" not in project.fields and "client_email" not in project.fields
    assert project.fields["client_contact"] not in (None, "Zhang Wei")  # masked: personal data
    with pytest.raises(PermissionDenied):
        team.store(team.ann, "projects").create({"name": "Side project"})
    with pytest.raises(PermissionDenied):
        team.store(team.ann, "projects").update(
            project.id, {"status": "on_hold"}, version=project.version
        )
    task = team.task(team.ann, title="Logo", assignee=team.bo.user_id)
    with pytest.raises(PermissionDenied):
        team.store(team.ann, "tasks").delete(task.id)
    assert (
        team.store(team.pm, "projects").get(team.project.id).fields["client_contact"] == "Zhang Wei"
    )


def test_stakeholders_follow_progress_without_budgets_contacts_or_cancelled_projects(
    team: Team,
) -> None:
    sponsor = team.store(team.sponsor, "projects")
    seen = sponsor.get(team.project.id)
    assert {"budget", "client_contact", "client_email"}.isdisjoint(seen.fields) and seen.fields[
        "progress"
    ] == 0
    cancelled = team.store(team.pm, "projects").create(
        {"name": "Abandoned idea", "status": "cancelled"}
    )
    with pytest.raises(NotFound):
        sponsor.get(cancelled.id)
    task = team.task(team.pm, title="Budget review", estimate_hours="4")
    assert "estimate_hours" not in team.store(team.sponsor, "tasks").get(task.id).fields
    with pytest.raises(PermissionDenied):
        team.store(team.sponsor, "tasks").update(task.id, {"status": "done"}, version=task.version)


def test_the_views_and_dashboard_charts_work_for_the_project_manager(team: Team) -> None:
    team.task(team.pm, title="Done already", status="done")
    for v in load_template("projects")["views"]:
        if v["type"] in ("grid", "kanban", "calendar"):
            team.store(team.pm, v["table"]).query(
                filter=v.get("filter"), sort=v.get("sort"), fields=v.get("fields"), page_size=10
            )
        for c in v.get("charts", []):
            groups = team.store(team.pm, c.get("table", v["table"])).aggregate(
                group_by=[c["group_by"]] if "group_by" in c else None,
                metrics=[c.get("metric", "count")],
                filter=c.get("filter"),
            )
            assert groups, c["slug"]
