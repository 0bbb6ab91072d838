"""The CRM app and the people the access-control tests act as.

``crm_definition()`` is a small app with roles and per-table permissions:

- ``manager`` sees personal data in clear and works the deals of its own
  region (``{"$actor": "region"}``), with every table operation;
- ``rep`` reads, creates and updates only the deals it owns (``owner``), may
  read but not write ``amount`` (granted by field *slug*), and sees the
  personal ``phone`` masked;
- ``viewer`` reads every deal but not ``notes`` (hidden by field *id*,
  ``fld_deals_notes``, so both ways of naming a field are exercised), and has
  no ``clearance`` of its own: public and internal only;
- ``nobody`` is a declared role with no entry in any table's permissions.

``companies`` grants nothing to ``rep``: a role without an entry there.

``DEALS`` are the seeded records, ids 1 to 5 in order; ``seed`` creates the
users first (deals point at them through ``owner``) and the deals as the
system actor.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recordbase.actor import Actor
from recordbase.core import Recordbase

SYSTEM = Actor.system("test")
APP = "crm"
REGION_RULE = {"field": "region", "op": "eq", "value": {"$actor": "region"}}

ROLES = [
    {"slug": "manager", "label": "Manager", "clearance": ["public", "internal", "personal"]},
    {"slug": "rep", "label": "Sales rep", "clearance": ["public", "internal"]},
    {"slug": "viewer", "label": "Viewer"},
    {"slug": "nobody", "label": "Nobody"},
]

DEALS_PERMISSIONS: dict[str, Any] = {
    "manager": {
        "read": True,
        "create": True,
        "update": True,
        "delete": True,
        "rows": REGION_RULE,
    },
    "rep": {
        "read": True,
        "create": True,
        "update": True,
        "rows": "own",
        "owner_field": "owner",
        "fields": {"amount": "read"},
    },
    "viewer": {"read": True, "rows": "all", "fields": {"fld_deals_notes": "hidden"}},
}

COMPANIES_PERMISSIONS: dict[str, Any] = {
    "manager": {"read": True, "create": True, "update": True, "delete": True},
    "viewer": {"read": True},
}


def crm_definition(
    *,
    rep_fields: Mapping[str, str] | None = None,
    deals_permissions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CRM app; ``rep_fields`` replaces the rep's ``fields`` on deals,
    ``deals_permissions`` the whole of the deals permissions."""
    deals_grants = copy.deepcopy(dict(deals_permissions or DEALS_PERMISSIONS))
    if rep_fields is not None:
        deals_grants["rep"]["fields"] = dict(rep_fields)
    return {
        "slug": APP,
        "label": "CRM",
        "roles": copy.deepcopy(ROLES),
        "tables": [
            {
                "id": "tbl_deals",
                "slug": "deals",
                "label": "Deals",
                "fields": [
                    {"id": "fld_deals_name", "slug": "name", "label": "Name", "type": "text"},
                    {
                        "id": "fld_deals_region",
                        "slug": "region",
                        "label": "Region",
                        "type": "single_select",
                        "options": {
                            "choices": [
                                {"id": "east", "label": "East"},
                                {"id": "west", "label": "West"},
                            ]
                        },
                    },
                    {
                        "id": "fld_deals_amount",
                        "slug": "amount",
                        "label": "Amount",
                        "type": "currency",
                        "options": {"currency": "CNY"},
                    },
                    {
                        "id": "fld_deals_phone",
                        "slug": "phone",
                        "label": "Phone",
                        "type": "phone",
                        "sensitivity": "personal",
                        "purpose": "to call the customer about the deal",
                    },
                    {
                        "id": "fld_deals_notes",
                        "slug": "notes",
                        "label": "Notes",
                        "type": "long_text",
                    },
                    {"id": "fld_deals_owner", "slug": "owner", "label": "Owner", "type": "user"},
                ],
                "permissions": deals_grants,
            },
            {
                "id": "tbl_companies",
                "slug": "companies",
                "label": "Companies",
                "fields": [
                    {"id": "fld_companies_name", "slug": "name", "label": "Name", "type": "text"}
                ],
                "permissions": copy.deepcopy(COMPANIES_PERMISSIONS),
            },
        ],
    }


def install_crm(rb: Recordbase, **changes: Any) -> None:
    result = rb.install(crm_definition(**changes), SYSTEM)
    assert result.applied, result.plan


def make_user(
    rb: Recordbase,
    email: str,
    roles: list[str] | tuple[str, ...] = (),
    *,
    is_admin: bool = False,
    **attributes: Any,
) -> Actor:
    """A user with ``roles`` in the CRM and ``attributes``; returns the actor as loaded now."""
    # No password: hashing one costs ~0.1 s, and these users never sign in.
    user_id = rb.create_user(SYSTEM, email, None, is_admin=is_admin, attributes=attributes)
    if roles:
        rb.set_roles(SYSTEM, email, APP, list(roles))
    actor = rb.actor_for(user_id)
    assert actor is not None
    return actor


# The people of the seeded CRM: email local part → (roles, attributes).
PEOPLE: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "manager": (("manager",), {"region": "east"}),
    "west_manager": (("manager",), {"region": "west"}),
    "rep": (("rep",), {"region": "east"}),
    "other_rep": (("rep",), {"region": "east"}),
    "viewer": (("viewer",), {}),
    "dual": (("rep", "viewer"), {}),  # owns deal 4 as a rep, reads everything as a viewer
    "nobody": (("nobody",), {}),
    "stranger": ((), {}),  # no role in the app at all
}

PHONES = {
    1: "+8613812345678",
    2: "+8613900001111",
    3: "+8613700002222",
    4: "+8613600003333",
}

# name, region, amount, phone, notes, owner (a key of PEOPLE)
DEALS: list[tuple[str, str, int, str | None, str | None, str | None]] = [
    ("Acme", "east", 100, PHONES[1], "call after lunch", "rep"),
    ("Birch", "east", 200, PHONES[2], "budget approved", "other_rep"),
    ("Cedar", "west", 300, PHONES[3], "zebra crossing", "rep"),
    ("Dune", "west", 400, PHONES[4], "walrus meeting", "dual"),
    ("Elm", "east", 500, None, None, None),
]

#: The deal ids each person sees.
VISIBLE = {
    "manager": [1, 2, 5],
    "west_manager": [3, 4],
    "rep": [1, 3],
    "other_rep": [2],
    "viewer": [1, 2, 3, 4, 5],
    "dual": [1, 2, 3, 4, 5],
    "admin": [1, 2, 3, 4, 5],
    "system": [1, 2, 3, 4, 5],
}


@dataclass
class Crm:
    """The seeded CRM: the engine and an actor per person (plus ``admin`` and ``system``)."""

    rb: Recordbase
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, person: str) -> Actor:
        return self.actors[person]

    def deals(self, person: str = "system") -> Any:
        return self.rb.records(self.actors[person], APP, "deals")

    def companies(self, person: str = "system") -> Any:
        return self.rb.records(self.actors[person], APP, "companies")

    def user_id(self, person: str) -> int:
        user_id = self.actors[person].user_id
        assert user_id is not None
        return user_id


def seed(rb: Recordbase) -> Crm:
    """Install the CRM, create ``PEOPLE`` and an admin, and the ``DEALS`` (ids 1–5)."""
    install_crm(rb)
    crm = Crm(rb, {"system": SYSTEM})
    for person, (roles, attributes) in PEOPLE.items():
        crm.actors[person] = make_user(rb, f"{person}@example.com", roles, **attributes)
    crm.actors["admin"] = make_user(rb, "admin@example.com", is_admin=True)
    records = crm.deals().create_many(
        [
            {
                "name": name,
                "region": region,
                "amount": amount,
                "phone": phone,
                "notes": notes,
                "owner": None if owner is None else crm.user_id(owner),
            }
            for name, region, amount, phone, notes, owner in DEALS
        ]
    )
    assert [r.id for r in records] == [1, 2, 3, 4, 5]
    crm.companies().create_many([{"name": "Acme Ltd"}, {"name": "Birch plc"}])
    return crm
