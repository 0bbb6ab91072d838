"""What the gallery template tests (``test_gallery_*.py``) share.

Each template's test file keeps its own people, roles, fixtures and template-specific helpers;
this module only loads a template from ``schemas/gallery/``, installs it with its sample data,
walks a definition for its user-visible texts and reads or writes records as a person.

Two styles of test use it:

- a :class:`World` (after-sales, CRM, orders): users named by a short key, made by
  :func:`make_world`, and ``world.store(table, person)`` to act as one of them;
- a :class:`GalleryApp` subclass (HR, inventory, maintenance, projects): people made with
  :meth:`GalleryApp.person` on an app installed with :func:`install_with_sample_data`.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from recordbase import RecordQuery
from recordbase.actor import Actor
from recordbase.collab import list_notifications
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file

GALLERY = Path(__file__).resolve().parent.parent / "schemas" / "gallery"
SYSTEM = Actor.system("tests")
TODAY = dt.datetime.now(dt.UTC).date()


# --- the template ---------------------------------------------------------------------------------


def template_path(name: str) -> Path:
    return GALLERY / f"{name}.json"


def load_template(name: str) -> dict[str, Any]:
    """The gallery template ``name``, which must load without a problem."""
    data, problems = load_definition_file(template_path(name))
    assert problems == [], problems
    return data


def install_with_sample_data(rb: Recordbase, name: str) -> tuple[dict[str, int], float]:
    """Install template ``name`` and fill its sample data; the rows per table and the seconds taken."""
    data = load_template(name)
    started = time.perf_counter()
    rb.install(data, SYSTEM)
    counts = rb.fill_sample_data(SYSTEM, name)
    seconds = time.perf_counter() - started
    print(f"\n{name}: install + sample data in {seconds:.2f} s on {rb.dialect}")
    return counts, seconds


# --- user-visible texts ---------------------------------------------------------------------------

LABEL_KEYS = ("label", "description", "message", "text", "submit_label", "thanks", "reason", "purpose")


def labels_in(node: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every user-facing text of a definition, with its JSON pointer.

    Skips rules and record values; a field's ``help`` is one text, any other ``help`` (a form's)
    and ``consent_labels`` hold one text per key, ``use_cases`` one per item.
    """
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}/{key}"
            if key in ("permissions", "values", "filter", "condition", "trigger"):
                continue  # rules and record values, not texts
            if key in LABEL_KEYS or (
                key == "help" and "slug" in node and "type" in node and "table" not in node
            ):
                found.append((here, value))
            elif key in ("help", "consent_labels"):
                found += [(f"{here}/{k}", v) for k, v in value.items()]
            elif key == "use_cases":
                found += [(f"{here}/{i}", v) for i, v in enumerate(value)]
            else:
                found += labels_in(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += labels_in(item, f"{where}/{i}")
    return found


def not_bilingual(texts: list[tuple[str, Any]], *, filled: bool = False) -> list[str]:
    """Where a text is not ``{"en": …, "zh-CN": …}`` (with ``filled``: or has an empty side)."""
    return [
        where
        for where, text in texts
        if not (
            isinstance(text, dict)
            and set(text) == {"en", "zh-CN"}
            and (not filled or all(text.values()))
        )
    ]


def texts_in(node: Any, where: str = "", *, split_form_help: bool = True) -> list[tuple[str, Any]]:
    """Every label, description, help, message and consent text of a definition, with its pointer.

    Unlike :func:`labels_in` it also looks inside the texts it found, and skips only rules
    (``permissions``, ``filter``, ``condition``) and dashboard ``rows``. With ``split_form_help``
    a ``help`` without an ``en`` or ``zh-CN`` key (a form's help per field) gives one text per
    field; without it every ``help`` is one text.
    """
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("permissions", "filter", "condition", "rows"):
                continue  # rules, not texts
            if key in LABEL_KEYS or key == "help":
                per_field = (
                    split_form_help
                    and key == "help"
                    and isinstance(value, dict)
                    and not {"en", "zh-CN"} & set(value)
                )
                if per_field:
                    found += [(f"{where}/help/{k}", v) for k, v in value.items()]
                else:
                    found.append((f"{where}/{key}", value))
            if key == "consent_labels":
                found += [(f"{where}/consent_labels/{k}", v) for k, v in value.items()]
            found += texts_in(value, f"{where}/{key}", split_form_help=split_form_help)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += texts_in(item, f"{where}/{i}", split_form_help=split_form_help)
    return found


# --- people named by a key: the World style -------------------------------------------------------


class World:
    """An installed template with its people; ``store(table, person)`` acts as that person (system: None)."""

    def __init__(
        self,
        rb: Recordbase,
        app: str,
        ids: dict[str, int],
        counts: dict[str, int],
        seconds: float = 0.0,
    ) -> None:
        self.rb, self.app, self.ids, self.counts, self.seconds = rb, app, ids, counts, seconds

    def actor(self, person: str) -> Actor:
        found = self.rb.actor_for(self.ids[person])
        assert found is not None
        return found

    def store(self, table: str, person: str | None = None):  # type: ignore[no-untyped-def]
        return self.rb.records(SYSTEM if person is None else self.actor(person), self.app, table)

    def all(self, table: str, person: str | None = None, where: Any = None) -> list[Any]:
        return (
            self.store(table, person)
            .query(RecordQuery(filter=where, sort=["id"], page_size=500))
            .records
        )

    def ids_of(self, table: str, person: str | None = None, where: Any = None) -> list[int]:
        return [r.id for r in self.all(table, person, where)]

    def by_id(self, table: str, person: str | None = None) -> dict[int, Any]:
        return {r.id: r for r in self.all(table, person)}


def make_world(
    rb: Recordbase,
    app: str,
    roles: dict[str, list[str]],
    attributes: dict[str, dict[str, str]] | None = None,
) -> World:
    """Create a user ``<name>@example.com`` per name of ``roles``, install template ``app`` with
    its sample data, then give each user their roles in it."""
    ids = {
        name: rb.create_user(
            SYSTEM,
            f"{name}@example.com",
            None,
            display_name=name.title(),
            attributes=(attributes or {}).get(name),
        )
        for name in roles
    }
    counts, seconds = install_with_sample_data(rb, app)
    for name, theirs in roles.items():
        rb.set_roles(SYSTEM, f"{name}@example.com", app, theirs)
    return World(rb, app, ids, counts, seconds)


def notes_from(world: World, person: str, automation: str) -> list[Any]:
    """The notifications ``person`` got from ``automation``."""
    return [
        n
        for n in list_notifications(world.rb, world.actor(person))
        if n.actor.endswith("/" + automation)
    ]


# --- people as actors: the GalleryApp style -------------------------------------------------------


def person(rb: Recordbase, app: str, email: str, role: str) -> Actor:
    """A new user with a password and one role in ``app``, as an actor."""
    uid = rb.create_user(SYSTEM, email, "password-123456", display_name=email.split("@")[0])
    rb.set_roles(SYSTEM, email, app, [role])
    actor = rb.actor_for(uid)
    assert actor is not None
    return actor


class GalleryApp:
    """An installed template ``app`` (set by the subclass) and the people acting in it."""

    app: str

    def __init__(self, rb: Recordbase) -> None:
        self.rb = rb

    def person(self, email: str, role: str) -> Actor:
        return person(self.rb, self.app, email, role)

    def store(self, actor: Actor, table: str) -> Any:
        return self.rb.records(actor, self.app, table)
