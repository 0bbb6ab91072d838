"""File attachments: references to content-addressed files in the instance folder.

A value is a list of ``{"sha256", "name", "size", "content_type"}``. Upload
goes through ``FileStore.put`` first; the record store checks that every
referenced file exists. The user's file name is display text only: files are
stored under their SHA-256, never under a name someone typed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from . import register
from .base import EMPTY_OPS, Field, FieldType, FieldValueError

if TYPE_CHECKING:
    from faker import Faker

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def clean_file_name(name: str) -> str:
    """A display name with path separators and control characters removed."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255] or "file"


@register
class Attachment(FieldType):
    name = "attachment"
    operators = EMPTY_OPS
    can_be_unique = False
    json_type = "array"

    def parse(self, f: Field, value: Any) -> Any:
        if value is None or value == []:
            return None
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise FieldValueError("expected a list of files")
        limit = f.options.get("max_files")
        if limit and len(value) > limit:
            raise FieldValueError(f"has {len(value)} files; at most {limit} allowed")
        max_bytes = float(f.options.get("max_size_mb", 25)) * 1024 * 1024
        patterns = f.options.get("types") or []
        files = []
        for item in value:
            if not isinstance(item, dict) or not SHA256_RE.match(str(item.get("sha256", ""))):
                raise FieldValueError("each file needs the sha256 of an uploaded file")
            size = item.get("size")
            if not isinstance(size, int) or size < 0:
                raise FieldValueError("each file needs its size in bytes")
            if size > max_bytes:
                raise FieldValueError(f"a file is larger than {f.options.get('max_size_mb', 25)} MB")
            content_type = str(item.get("content_type") or "application/octet-stream")
            if patterns and not any(fnmatch.fnmatch(content_type, p) for p in patterns):
                raise FieldValueError(f"file type {content_type} is not allowed here")
            files.append({
                "sha256": item["sha256"], "name": clean_file_name(str(item.get("name") or "file")),
                "size": size, "content_type": content_type,
            })
        return files

    def to_db(self, f: Field, value: Any) -> Any:
        return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def from_db(self, f: Field, raw: Any) -> Any:
        return None if raw is None else json.loads(raw)

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {
            "type": ["array", "null"],
            "items": {
                "type": "object",
                "required": ["sha256", "size"],
                "properties": {
                    "sha256": {"type": "string", "pattern": SHA256_RE.pattern},
                    "name": {"type": "string"}, "size": {"type": "integer", "minimum": 0},
                    "content_type": {"type": "string"},
                },
            },
        }

    def to_text(self, f: Field, value: Any) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False)

    def from_text(self, f: Field, text: str) -> Any:
        text = text.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise FieldValueError("expected the JSON list of files written by an export") from None

    def sample(self, f: Field, fake: Faker) -> Any:
        raise NotImplementedError("sample files are not generated")

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else [{"name": "••••", "size": None} for _ in value]
