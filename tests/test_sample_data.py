"""Sample data fills any installed app, deterministically for a seed."""

from recordbase import Actor, Recordbase, Settings

ACTOR = Actor.system("test")

CUSTOM = {
    "slug": "library",
    "label": "Library",
    "tables": [
        {"slug": "authors", "label": "Authors", "fields": [
            {"slug": "name", "label": "Name", "type": "text", "required": True, "unique": True},
            {"slug": "email", "label": "Email", "type": "email", "purpose": "contact"},
        ]},
        {"slug": "books", "label": "Books", "fields": [
            {"slug": "title", "label": "Title", "type": "text", "required": True},
            {"slug": "author", "label": "Author", "type": "link", "options": {"table": "authors"}},
            {"slug": "genres", "label": "Genres", "type": "multi_select",
             "options": {"choices": [{"id": "fiction", "label": "Fiction"}, {"id": "history", "label": "History"}]}},
            {"slug": "price", "label": "Price", "type": "currency", "options": {"currency": "EUR"}},
            {"slug": "published", "label": "Published", "type": "date"},
            {"slug": "in_stock", "label": "In stock", "type": "boolean"},
            {"slug": "code", "label": "Code", "type": "autonumber", "options": {"prefix": "B-"}},
        ]},
    ],
}


def snapshot(rb: Recordbase, app: str) -> dict[str, list[dict]]:
    out = {}
    for slug in rb.app(app).tables:
        records = rb.records(ACTOR, app, slug).query(sort=["id"], page_size=1000).records
        out[slug] = [
            {k: v for k, v in r.fields.items() if rb.app(app).tables[slug].fields[k].type.name not in ("created_at", "created_by")}
            for r in records
        ]
    return out


def test_sample_data_fills_any_app_the_same_way_for_the_same_seed(rb, tmp_path):
    rb.install(CUSTOM, ACTOR)
    assert rb.fill_sample_data(ACTOR, "library", rows=12) == {"authors": 12, "books": 12}
    other = Recordbase(Settings.from_env(environ={}, instance_path=tmp_path / "other", database_url=f"sqlite:///{tmp_path}/other.db", secret_key="x"))
    other.init_db()
    try:
        other.install(CUSTOM, ACTOR)
        other.fill_sample_data(ACTOR, "library", rows=12)
        assert snapshot(rb, "library") == snapshot(other, "library")
    finally:
        other.dispose()
    books = snapshot(rb, "library")["books"]
    author_ids = {r.id for r in rb.records(ACTOR, "library", "authors").query(page_size=100).records}
    assert all(b["author"] in author_ids for b in books if b["author"] is not None)
    assert [b["code"] for b in books] == [f"B-{n:06d}" for n in range(1, 13)]
    assert len({a["name"] for a in snapshot(rb, "library")["authors"]}) == 12  # unique honoured


def test_the_crm_template_installs_with_sample_data(rb):
    import json
    from pathlib import Path

    crm = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "gallery" / "crm.json").read_text())
    rb.install(crm, ACTOR)
    counts = rb.fill_sample_data(ACTOR, "crm", rows=10)
    assert counts == {"companies": 10, "contacts": 10, "deals": 10, "leads": 10, "activities": 10}
    deal = rb.records(ACTOR, "crm", "deals").query(sort=["id"], page_size=1).records[0]
    assert deal.fields["number"] == "DEAL-00001"  # crm.json: five digits
