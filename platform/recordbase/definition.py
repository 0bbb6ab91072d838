"""App definitions: load them, check them against the meta-schema and each other.

A definition is plain JSON (see ``schemas/app.schema.json``). ``check_definition``
returns every problem at once, each with a JSON pointer into the definition, so
an admin fixes a file in one pass instead of one error per run.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match

from .errors import Problem

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "app.schema.json"

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Field slugs that name system columns of every table (plus anything starting with "_").
RESERVED_SLUGS = frozenset(
    {"id", "version", "created_at", "created_by", "updated_at", "updated_by", "deleted_at"}
)
#: App slugs that would collide with the platform's own URL prefixes.
RESERVED_APP_SLUGS = frozenset({"api", "static", "admin", "auth"})

FIELD_TYPES = (
    "text", "long_text", "number", "currency", "percent", "boolean", "date", "datetime",
    "single_select", "multi_select", "email", "phone", "url", "address", "link", "user",
    "attachment", "autonumber", "rating",
    "created_at", "created_by", "updated_at", "updated_by",
    "formula", "lookup", "rollup",
)  # fmt: skip
#: Types that expose a system column; the platform fills them.
SYSTEM_TYPES = frozenset({"created_at", "created_by", "updated_at", "updated_by"})
SENSITIVITY_LEVELS = ("public", "internal", "personal", "sensitive")
_PERSONAL_BY_DEFAULT = frozenset({"email", "phone", "address"})

ID_PREFIXES = ("app", "tbl", "fld", "opt")
_ID_ALPHABET = string.ascii_lowercase + string.digits


def DEFAULT_SENSITIVITY(field_type: str) -> str:  # noqa: N802 - named like a constant table on purpose
    """The sensitivity a field of ``field_type`` has when its definition names none."""
    return "personal" if field_type in _PERSONAL_BY_DEFAULT else "internal"


def is_reserved_slug(slug: str) -> bool:
    """True when ``slug`` may not name a field: it is a system column or starts with "_"."""
    return slug in RESERVED_SLUGS or slug.startswith("_")


def new_id(prefix: str) -> str:
    """A fresh stable id: ``prefix`` and 12 random characters from [a-z0-9], like ``fld3k9x0q2m7a1b``."""
    if prefix not in ID_PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}; expected one of: {', '.join(ID_PREFIXES)}")
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


@cache
def load_schema() -> dict[str, Any]:
    """The app meta-schema, read once per process."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def load_definition_file(path: str | Path) -> tuple[Any, list[Problem]]:
    """Parse a definition file. Returns ``(data, [])``, or ``(None, [problem])`` when it
    cannot be read or is not JSON (pointer ``""``, message with line and column).

    It does not check the definition: pass ``data`` to ``check_definition``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem("", f"file not found: {path}")]
    except UnicodeDecodeError as exc:
        return None, [Problem("", f"{path} is not UTF-8 text (byte {exc.start})")]
    except OSError as exc:
        return None, [Problem("", f"cannot read {path}: {exc.strerror}")]
    try:
        return json.loads(text, parse_constant=_reject_constant), []
    except json.JSONDecodeError as exc:
        return None, [
            Problem("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
        ]
    except ValueError as exc:
        return None, [Problem("", f"invalid JSON: {exc}")]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON; use a number or null")


def check_definition(data: Any) -> list[Problem]:
    """Every problem in an app definition, sorted by pointer (numbers in numeric order).

    Meta-schema problems come first for a given pointer, then cross-checks (references,
    duplicates, defaults, privacy rules). Cross-checks only look at parts the schema
    accepted, so one mistake is reported once. Warnings have ``severity="warning"``.
    """
    from .computed_checks import automation_problems, computed_problems
    from .definition_checks import cross_check  # the checks import helpers from here

    problems = schema_problems(data)
    problems += cross_check(data, {p.pointer for p in problems})
    if not any(p.severity == "error" for p in problems):  # computed fields need the rest to hold together
        problems += computed_problems(data)
    if not any(p.severity == "error" for p in problems):
        problems += automation_problems(data)
    return sort_problems(problems)


def schema_problems(data: Any) -> list[Problem]:
    """The meta-schema's verdict on ``data``, as plain problems, deduplicated."""
    seen: dict[tuple[str, str], Problem] = {}
    for error in _validator().iter_errors(data):
        for problem in _convert(error):
            seen.setdefault((problem.pointer, problem.message), problem)
    return sort_problems(list(seen.values()))


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Sort by pointer, comparing array indexes as numbers (``/tables/2`` before ``/tables/10``)."""
    return sorted(problems, key=lambda p: _pointer_key(p.pointer))


def _pointer_key(pointer: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pointer.split("/")[1:])


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer from path parts: ``pointer("a/b", 0) == "/a~1b/0"``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# --- turning jsonschema's errors into messages an admin can act on ------------------------

_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def describe(value: Any) -> str:
    """A short rendering of a JSON value for messages: scalars as JSON, containers by kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + '..."'


def _convert(error: SchemaError) -> Iterator[Problem]:
    path: list[Any] = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    value = error.validator_value
    instance = error.instance

    if keyword in ("oneOf", "anyOf") and error.context:
        # Our schema avoids these, but if one is added, report its most relevant branch.
        yield from _convert(best_match(error.context))
        return
    if "propertyNames" in error.schema_path and keyword != "propertyNames":
        path.append(instance)  # the error is about a key: point at the key itself
    where = pointer(*path)
    title = schema.get("title")
    in_title = f" in {title}" if title else ""

    if keyword == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in instance:
            if key in allowed:
                continue
            if allowed:
                message = f'unknown key "{key}"{in_title}; expected one of: {", ".join(allowed)}'
            else:
                message = f'unknown key "{key}"; {title or "this object"} must be empty'
            yield Problem(pointer(*path, key), message)
        return
    if keyword == "required":
        for key in value:
            if isinstance(instance, dict) and key not in instance:
                yield Problem(where, f'missing required key "{key}"{in_title}')
        return
    yield Problem(where, _message(keyword, value, instance, schema, error.message))


def _message(keyword: Any, value: Any, instance: Any, schema: dict[str, Any], fallback: str) -> str:
    title = schema.get("title")
    description = schema.get("description")
    if keyword == "type":
        expected = description or " or ".join(
            _TYPE_WORDS[t] for t in ([value] if isinstance(value, str) else value)
        )
        return f"expected {expected}, got {describe(instance)}"
    if keyword == "enum":
        choices = ", ".join(str(v) for v in value)
        if title:
            return f"unknown {title} {describe(instance)}; expected one of: {choices}"
        return f"{describe(instance)} is not one of: {choices}"
    if keyword == "pattern":
        if isinstance(instance, str) and instance.startswith("_") and value == SLUG_RE.pattern:
            return f'{describe(instance)} is not a slug: names starting with "_" are reserved for the platform'
        return f"{describe(instance)} is not {description or 'in the form ' + value}"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if keyword == "maxLength":
        return f"must be at most {value} characters long, got {len(instance)}"
    if keyword == "minimum":
        return f"must be at least {value}, got {describe(instance)}"
    if keyword == "maximum":
        return f"must be at most {value}, got {describe(instance)}"
    if keyword == "exclusiveMinimum":
        return f"must be greater than {value}, got {describe(instance)}"
    if keyword == "exclusiveMaximum":
        return f"must be less than {value}, got {describe(instance)}"
    if keyword == "minItems":
        return f"must have at least {value} item{'s' if value != 1 else ''}"
    if keyword == "maxItems":
        return f"must have at most {value} item{'s' if value != 1 else ''}"
    if keyword == "minProperties":
        return "must have at least one entry"
    if keyword == "uniqueItems":
        dupes = [v for i, v in enumerate(instance) if v in instance[:i]]
        return f"must not repeat items; {describe(dupes[0])} appears more than once"
    if keyword == "const":
        return f"expected {describe(value)}, got {describe(instance)}"
    return fallback
