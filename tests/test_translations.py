"""Every string the pages show has a Chinese translation, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"
METHODS = [("blueprints/**.py", "python"), ("templates/**.html", "jinja2")]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def catalogue() -> dict[str, str | tuple[str, ...]]:
    with CATALOGUE.open("rb") as handle:
        return {
            (m.id[0] if isinstance(m.id, tuple) else m.id): m.string
            for m in read_po(handle, locale="zh_CN") if m.id and not m.fuzzy
        }


def test_every_page_string_is_translated_into_chinese() -> None:
    known = catalogue()
    missing = []
    checked = 0
    for _file, _line, msgid, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        checked += 1
        translated = known.get(key)
        if not translated or (isinstance(translated, tuple) and not all(translated)):
            missing.append(f"{_file}:{_line}: {key}")
    assert checked > 500  # the extraction found the pages' strings
    assert missing == []


def test_translations_keep_their_placeholders() -> None:
    with CATALOGUE.open("rb") as handle:
        for m in read_po(handle, locale="zh_CN"):
            if not m.id:
                continue
            ids = m.id if isinstance(m.id, tuple) else (m.id,)
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
            for text in strings:
                assert set(PLACEHOLDER.findall(text or "")) <= wanted, (ids[0], text)
