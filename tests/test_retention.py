"""Retention rules delete or anonymise records past their period; reruns do nothing more."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from recordbase import Actor
from recordbase.retention import run_retention

SYSTEM = Actor.system("test")
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
DEFINITION = {
    "slug": "shop",
    "label": "Shop",
    "tables": [
        {
            "slug": "leads", "label": "Leads",
            "retention": {"field": "last_contact", "days": 30, "action": "delete"},
            "fields": [
                {"slug": "name", "label": "Name", "type": "text"},
                {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Call back."},
                {"slug": "last_contact", "label": "Last contact", "type": "date"},
            ],
        },
        {
            "slug": "orders", "label": "Orders",
            "retention": {"field": "shipped_at", "days": 365, "action": "anonymise"},
            "fields": [
                {"slug": "item", "label": "Item", "type": "text"},
                {"slug": "address", "label": "Address", "type": "address", "purpose": "Delivery."},
                {"slug": "email", "label": "Email", "type": "email", "purpose": "Receipts."},
                {"slug": "shipped_at", "label": "Shipped", "type": "datetime"},
            ],
        },
    ],
}


def seed(rb):
    rb.install(DEFINITION, SYSTEM)
    rb.records(SYSTEM, "shop", "leads").create_many([
        {"name": "old", "phone": "13812345678", "last_contact": "2026-10-01"},
        {"name": "recent", "phone": "13912345678", "last_contact": "2026-11-20"},
        {"name": "never", "phone": "13712345678"},
    ])
    rb.records(SYSTEM, "shop", "orders").create_many([
        {"item": "kettle", "address": "上海市浦东新区 1 号", "email": "a@example.com", "shipped_at": "2025-01-05T10:00:00Z"},
        {"item": "lamp", "address": "北京市 2 号", "email": "b@example.com", "shipped_at": "2026-06-01T10:00:00Z"},
    ])


def lines(results, dry_run=False):
    return [r.line(dry_run) for r in results]


def test_a_dry_run_counts_what_is_due_and_changes_nothing(rb):
    seed(rb)
    assert lines(run_retention(rb, now=NOW, dry_run=True), dry_run=True) == [
        "shop.leads: delete 30 days after last_contact: would delete 1 record(s)",
        "shop.orders: anonymise 365 days after shipped_at: would anonymise 1 record(s)",
    ]
    assert rb.records(SYSTEM, "shop", "leads").count() == 3


def test_records_past_their_period_are_deleted_for_good_or_anonymised_and_a_rerun_is_a_no_op(rb):
    seed(rb)
    assert lines(run_retention(rb, now=NOW)) == [
        "shop.leads: delete 30 days after last_contact: deleted 1 record(s)",
        "shop.orders: anonymise 365 days after shipped_at: anonymised 1 record(s)",
    ]
    leads = rb.records(SYSTEM, "shop", "leads")
    assert sorted(r.fields["name"] for r in leads.query().records) == ["never", "recent"]
    assert rb.list_trash("shop") == []  # gone, not parked in the trash
    orders = rb.records(SYSTEM, "shop", "orders").query(sort=["id"]).records
    assert [(o.fields["item"], o.fields["address"], o.fields["email"]) for o in orders] == [
        ("kettle", None, None), ("lamp", "北京市 2 号", "b@example.com"),
    ]
    assert orders[0].version == 2
    assert [r.id for r in rb.records(SYSTEM, "shop", "orders").query(search="浦东").records] == []
    assert lines(run_retention(rb, now=NOW)) == [
        "shop.leads: delete 30 days after last_contact: deleted 0 record(s)",
        "shop.orders: anonymise 365 days after shipped_at: anonymised 0 record(s)",
    ]
    with rb.read() as conn:
        entries = conn.execute(sa.text(
            "SELECT actor_name, changes FROM rb_audit WHERE action = 'retention_anonymise'")).all()
    assert len(entries) == 1 and entries[0][0] == "system:retention"
    changes = entries[0][1] if isinstance(entries[0][1], dict) else json.loads(entries[0][1])
    assert len(changes["fields"]) == 2 and "浦东" not in json.dumps(changes, ensure_ascii=False)
    # The history of what retention removed keeps who and when, not the values; the lamp's keeps them.
    pk = {t.slug: t.pk for t in rb.app("shop").tables.values()}
    history = {(e["table_id"], e["record_id"]): json.dumps(e["changes"]) for e in rb.audit_entries(app="shop", limit=10_000) if e["action"] == "create"}
    assert "$sealed" not in history[(pk["orders"], orders[0].id)] and "$erased" in history[(pk["orders"], orders[0].id)]
    assert "$sealed" in history[(pk["orders"], orders[1].id)]
    assert rb.verify_audit()[1] is None


def test_retention_from_the_command_line(cli, engine):
    engine.install(DEFINITION, SYSTEM)
    result = cli("retention", "run", "--dry-run")
    assert result.code == 0, result.err
    assert result.out == [
        "shop.leads: delete 30 days after last_contact: would delete 0 record(s)",
        "shop.orders: anonymise 365 days after shipped_at: would anonymise 0 record(s)",
    ]
