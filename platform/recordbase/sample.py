"""Realistic sample records for any installed app, deterministic for a seed.

Each field type makes its own sample value (``FieldType.sample``) with a
seeded Faker speaking Chinese and English; links point at sample records of
their target table, so tables are filled in dependency order.
"""

from __future__ import annotations

import random

from faker import Faker

from .actor import Actor
from .fields import FieldValueError
from .schema import AppSchema, TableSchema

NOT_SAMPLED = ("attachment", "autonumber", "formula", "lookup", "rollup")
#: Faker providers a field may name as its ``sample`` (a template's hint for realistic data).
#: Only these names are ever looked up on Faker: a definition cannot call anything else.
SAMPLE_PROVIDERS = (
    "name", "first_name", "last_name", "company", "job", "address", "street_address", "city", "province",
    "country", "postcode", "phone_number", "email", "company_email", "url", "user_name", "catch_phrase",
    "bs", "sentence", "paragraph", "word", "color_name", "license_plate", "ean13", "isbn13", "ssn",
    "iban", "bban", "credit_card_number", "uuid4", "file_name", "domain_name", "ipv4", "building_number",
)


def _order(app: AppSchema) -> list[TableSchema]:
    """Tables so that a link's target comes before the table linking to it (cycles broken)."""
    ordered: list[TableSchema] = []
    visiting: set[str] = set()

    def visit(ts: TableSchema) -> None:
        if ts in ordered or ts.slug in visiting:
            return
        visiting.add(ts.slug)
        for f in ts.fields.values():
            if f.type.name == "link":
                target = next((t for t in app.tables.values() if f.options.get("table") in (t.slug, t.uid)), None)
                if target is not None and target is not ts:
                    visit(target)
        ordered.append(ts)

    for ts in app.tables.values():
        visit(ts)
    return ordered


def fill_sample_data(rb, app: AppSchema, actor: Actor, *, rows: int = 25, seed: int = 42) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Create ``rows`` sample records per table; returns the count per table slug."""
    fake = Faker(["zh_CN", "en_US"])
    fake.seed_instance(seed)
    rng = random.Random(seed)
    created: dict[str, list[int]] = {}
    user_ids = rb.user_ids()
    for ts in _order(app):
        batch = []
        taken: dict[str, set[object]] = {}
        for i in range(rows):
            values: dict[str, object] = {}
            for f in ts.fields.values():
                if f.type.system or f.type.name in NOT_SAMPLED:
                    continue
                if f.type.name == "link":
                    target = next(t for t in app.tables.values() if f.options.get("table") in (t.slug, t.uid))
                    pool = created.get(target.slug) or []
                    if not pool:
                        continue
                    values[f.slug] = rng.sample(pool, k=min(len(pool), rng.randint(1, 3))) if f.options.get("many") else rng.choice(pool)
                    continue
                if f.type.name == "user":
                    if user_ids:
                        values[f.slug] = [rng.choice(user_ids)] if f.options.get("many") else rng.choice(user_ids)
                    continue
                if not f.required and rng.random() < 0.1:
                    continue  # some blanks, as in real data
                hint = f.definition.get("sample")
                value = getattr(fake, hint)() if hint in SAMPLE_PROVIDERS else f.type.sample(f, fake)
                if f.unique:
                    seen = taken.setdefault(f.slug, set())
                    if value in seen:
                        value = f"{value} {i}" if isinstance(value, str) else value
                    if value in seen:
                        continue
                    seen.add(value)
                try:
                    f.type.parse(f, value)
                except FieldValueError:
                    continue
                values[f.slug] = value
            batch.append(values)
        store = rb._store_for(actor, ts)
        created[ts.slug] = [r.id for r in store.create_many(batch)]
    return {slug: len(ids) for slug, ids in created.items()}
