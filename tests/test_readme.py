"""The README's examples are real: its app definition checks clean and installs."""

import json
import re
from pathlib import Path

from recordbase import Actor

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_definition() -> dict:
    block = re.search(r"```json\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "the README has a JSON example"
    return json.loads(block.group(1))


def test_readme_definition_has_no_problems(rb):
    assert rb.check(readme_definition()) == []


def test_readme_definition_installs_and_takes_records(rb):
    actor = Actor.system("test")
    rb.install(readme_definition(), actor)
    customer = rb.records(actor, "orders", "customers").create({"name": "王芳", "phone": "138 1234 5678"})
    order = rb.records(actor, "orders", "orders").create({"customer": customer.id, "total": "99.5"})
    assert customer.fields["phone"] == "+8613812345678"
    assert order.fields["number"] == "ORD-000001"
    assert order.fields["status"] == "new"
    assert str(order.fields["total"]) == "99.50"
