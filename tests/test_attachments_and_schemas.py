"""Attachments are content-addressed files; each table has a generated JSON Schema."""

import os

import jsonschema
import pytest
from recordbase import Actor, ValidationError
from recordbase.schema import record_json_schema

ACTOR = Actor.system("test")

DEFINITION = {
    "slug": "docs",
    "label": "Docs",
    "tables": [
        {
            "slug": "files",
            "label": "Files",
            "fields": [
                {"slug": "title", "label": "Title", "type": "text", "required": True},
                {"slug": "scan", "label": "Scan", "type": "attachment",
                 "options": {"types": ["image/*", "application/pdf"], "max_files": 2, "max_size_mb": 1}},
                {"slug": "pages", "label": "Pages", "type": "number", "help": "How many pages"},
                {"slug": "no", "label": "No", "type": "autonumber", "options": {"prefix": "F"}},
            ],
        }
    ],
}


@pytest.fixture
def files(rb):
    rb.install(DEFINITION, ACTOR)
    return rb.records(ACTOR, "docs", "files")


def test_a_stored_file_lives_under_its_hash_never_under_its_name(rb):
    value = rb.files.put(b"%PDF-1.7 test", "../../etc/passwd", "application/pdf")
    path = rb.files.path_for(value["sha256"])
    assert value["name"] == "passwd"
    assert path.is_relative_to(rb.settings.attachments_path)
    assert path.name == value["sha256"]
    assert path.read_bytes() == b"%PDF-1.7 test"
    assert value["size"] == len(b"%PDF-1.7 test")
    assert not any(name.startswith(".upload-") for name in os.listdir(rb.settings.attachments_path))


def test_the_same_content_is_stored_once(rb):
    first = rb.files.put(b"same", "a.png", "image/png")
    second = rb.files.put(b"same", "b.png", "image/png")
    assert first["sha256"] == second["sha256"]
    assert (first["name"], second["name"]) == ("a.png", "b.png")


def test_a_file_over_the_instance_limit_is_refused_and_leaves_nothing(rb):
    rb.files.max_bytes = 10
    with pytest.raises(ValidationError):
        rb.files.put(b"x" * 11, "big.bin")
    assert not any(p.is_file() for p in rb.settings.attachments_path.rglob("*"))


def test_records_keep_attachments_and_check_type_count_and_upload(rb, files):
    scan = rb.files.put(b"png bytes", "scan.png", "image/png")
    record = files.create({"title": "Contract", "scan": [scan]})
    assert record.fields["scan"] == [scan]
    with pytest.raises(ValidationError) as bad_type:
        files.create({"title": "x", "scan": [{**scan, "content_type": "text/html"}]})
    assert [p.pointer for p in bad_type.value.problems] == ["/fields/scan"]
    assert "text/html is not allowed" in bad_type.value.problems[0].message
    with pytest.raises(ValidationError) as too_many:
        files.create({"title": "x", "scan": [scan, scan, scan]})
    assert "at most 2" in too_many.value.problems[0].message
    with pytest.raises(ValidationError) as missing:
        files.create({"title": "x", "scan": [{**scan, "sha256": "0" * 64}]})
    assert missing.value.problems[0].message == '"scan": a file has not been uploaded'


def test_each_table_has_a_json_schema_from_its_field_types(rb, files):
    schema = record_json_schema(files.ts)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["title"]
    assert schema["properties"]["pages"]["description"] == "How many pages"
    assert schema["properties"]["no"]["readOnly"] is True
    assert schema["additionalProperties"] is False
    record = files.create({"title": "Memo", "pages": 3})
    jsonschema.validate(files.get(record.id).as_json(files.ts)["fields"], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"title": "x", "pages": "many"}, schema)
