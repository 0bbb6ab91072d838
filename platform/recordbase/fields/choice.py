"""Choice field types: boolean, single_select and multi_select."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import Problem
from . import register
from .base import EMPTY_OPS, EQUALITY_OPS, Field, FieldType, FieldValueError, FilterContext

if TYPE_CHECKING:
    from faker import Faker

MASK = "•••"
TRUE_WORDS = frozenset({"true", "yes", "1", "是"})
FALSE_WORDS = frozenset({"false", "no", "0", "否"})
LISTED_IN_MESSAGES = 8  # choices named in an error before "..."


@register
class Boolean(FieldType):
    """Yes or no; empty (NULL) is a third state, "not answered"."""

    name = "boolean"
    operators = frozenset({"eq", "ne"}) | EMPTY_OPS
    json_type = "boolean"
    can_be_unique = False

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.Boolean()

    def parse(self, f: Field, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if not word:
                return None
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
        raise FieldValueError("is not yes or no (expected true/false, yes/no, 1/0 or 是/否)")

    def from_db(self, f: Field, raw: Any) -> bool | None:
        return None if raw is None else bool(raw)

    def to_text(self, f: Field, value: Any) -> str:
        return "" if value is None else ("true" if value else "false")

    def sample(self, f: Field, fake: Faker) -> bool:
        return fake.pybool()

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else MASK


class ChoiceType(FieldType):
    """What single and multi selects share: the choices and finding one by id or label.

    A choice is ``{"id", "label", "color"}``; the label is a string or
    ``{locale: text}``. Values are stored as choice ids, so relabelling a
    choice touches the definition only. A choice without an id cannot be
    stored; the definition loader gives every choice one.
    """

    def choices(self, f: Field | Mapping[str, Any]) -> list[tuple[str, list[str]]]:
        """``(id, labels)`` of each choice, in the definition's order."""
        if isinstance(f, Field):
            return f.memo("choices", lambda: self._choices(f.definition))  # type: ignore[no-any-return]
        return self._choices(f)

    def _choices(self, definition: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
        result = []
        for choice in (definition.get("options") or {}).get("choices") or []:
            if isinstance(choice, Mapping) and isinstance(choice.get("id"), str):
                result.append((choice["id"], _labels(choice.get("label"))))
        return result

    def choice_ids(self, f: Field) -> list[str]:
        return [choice_id for choice_id, _ in self.choices(f)]

    def lookup(self, f: Field, text: str, prefer_label: bool = False) -> str | None:
        """The id of the choice whose id or label is ``text``, or ``None``.

        Ids win over labels, except when reading text that ``to_text`` wrote
        (labels), where a label equal to another choice's id must still round-trip.
        """
        by_id, by_label = f.memo("index", lambda: self._index(f)) if isinstance(f, Field) else self._index(f)
        found_id, found_label = (text if text in by_id else None), by_label.get(text)
        return (found_label or found_id) if prefer_label else (found_id or found_label)

    def _index(self, f: Field | Mapping[str, Any]) -> tuple[set[str], dict[str, str]]:
        """The set of choice ids, and each label's choice id (the first choice wins)."""
        by_label: dict[str, str] = {}
        for cid, labels in self.choices(f):
            for label in labels:
                by_label.setdefault(label, cid)
        return {cid for cid, _ in self.choices(f)}, by_label

    def one(self, f: Field, value: Any, prefer_label: bool = False) -> str:
        if not isinstance(value, str):
            raise FieldValueError(f"expected a choice id or label, got {type(value).__name__}")
        choice_id = self.lookup(f, value.strip(), prefer_label)
        if choice_id is None:
            raise FieldValueError(self.not_a_choice(f))
        return choice_id

    def not_a_choice(self, f: Field) -> str:
        ids = self.choice_ids(f)
        if not ids:
            return "is not a choice: the field has no choices"
        listed = ", ".join(ids[:LISTED_IN_MESSAGES]) + (", ..." if len(ids) > LISTED_IN_MESSAGES else "")
        return f"is not one of the choices: {listed}"

    def label(self, f: Field, choice_id: str) -> str:
        """The label a person reads: English if given, else the first locale's."""
        for choice in f.options.get("choices") or []:
            if isinstance(choice, Mapping) and choice.get("id") == choice_id:
                return _display_label(choice.get("label"), fallback=choice_id)
        return choice_id  # a value left from a removed choice still reads as something

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else MASK

    # --- definition ------------------------------------------------------
    def check_definition(self, definition: Mapping[str, Any], pointer: str) -> list[Problem]:
        problems = []
        seen_ids: set[str] = set()
        seen_labels: dict[str, int] = {}
        for i, choice in enumerate((definition.get("options") or {}).get("choices") or []):
            if not isinstance(choice, Mapping):
                continue  # the app schema reports the shape
            choice_id = choice.get("id")
            if isinstance(choice_id, str):
                if choice_id in seen_ids:
                    problems.append(Problem(f"{pointer}/options/choices/{i}/id", f'choice id "{choice_id}" is used twice'))
                seen_ids.add(choice_id)
            for text in _labels(choice.get("label")):
                if seen_labels.setdefault(text, i) != i:
                    problems.append(
                        Problem(
                            f"{pointer}/options/choices/{i}/label",
                            f'label "{text}" is also choice {seen_labels[text]}\'s; the two cannot be told apart in imports',
                            severity="warning",
                        )
                    )
        return problems + super().check_definition(definition, pointer)

    def check_default(self, definition: Mapping[str, Any], default: Any, pointer: str) -> list[Problem]:
        # Unlike a record's value, a default is part of the definition: naming it helps.
        problems = super().check_default(definition, default, pointer)
        shown = json.dumps(default, ensure_ascii=False)
        renamed = []
        for problem in problems:
            reason = problem.message.split(": ", 1)[1]
            if reason.startswith("is not one of the choices"):
                problem = Problem(problem.pointer, f"default {shown} {reason}", problem.severity)
            renamed.append(problem)
        return renamed


@register
class SingleSelect(ChoiceType):
    """One choice, given by id or any of its labels; stored and returned as its id."""

    name = "single_select"
    operators = EQUALITY_OPS

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.String(64)

    def parse(self, f: Field, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.one(f, value)

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": ["string", "null"], "enum": [*self.choice_ids(f), None]}

    def sort_expression(self, f: Field, col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The choices' order, not the ids' alphabetical order; unknown ids after them.

        Empty stays NULL, so the caller's "empties last" applies in both directions.
        """
        ids = self.choice_ids(f)
        if not ids:
            return col
        positions = sa.case({choice_id: position for position, choice_id in enumerate(ids)}, value=col, else_=len(ids))
        return sa.case((col.is_(None), sa.null()), else_=positions)

    def to_text(self, f: Field, value: Any) -> str:
        return "" if value is None else self.label(f, value)

    def from_text(self, f: Field, text: str) -> Any:
        text = text.strip()
        if not text:
            return None
        return self.lookup(f, text, prefer_label=True) or text

    def sample(self, f: Field, fake: Faker) -> str | None:
        ids = self.choice_ids(f)
        return fake.random_element(ids) if ids else None


@register
class MultiSelect(ChoiceType):
    """Several choices, stored as the JSON text ``["id1","id2"]`` in the choices' order.

    Keeping one canonical text per set makes "eq" a plain comparison; each id
    appears quoted in it, so "has this choice" is ``LIKE '%"id"%'`` on both
    databases (choice ids are letters, digits, "_" and "-", so one id's quoted
    form never occurs inside another's).
    """

    name = "multi_select"
    operators = frozenset({"eq", "contains", "in", "not_in"}) | EMPTY_OPS
    json_type = "array"
    can_be_unique = False

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def parse(self, f: Field, value: Any) -> list[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            items: Sequence[Any] = self.split(f, value)
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            raise FieldValueError(f"expected a list of choices, got {type(value).__name__}")
        chosen = {self.one(f, item) for item in items if not (isinstance(item, str) and not item.strip())}
        if not chosen:
            return None
        return self.in_order(f, chosen)

    def in_order(self, f: Field, chosen: Iterable[str]) -> list[str]:
        chosen = set(chosen)
        return [choice_id for choice_id in self.choice_ids(f) if choice_id in chosen]

    def split(self, f: Field, text: str, prefer_label: bool = False) -> list[str]:
        """A comma-separated text as its items; a label containing commas stays whole.

        At each position the longest run of comma-separated pieces naming a
        choice wins; a piece naming none is kept alone (and refused by ``one``).
        """
        pieces = text.split(",")
        items, i = [], 0
        while i < len(pieces):
            for j in range(len(pieces), i, -1):
                candidate = ",".join(pieces[i:j]).strip()
                if j == i + 1 or self.lookup(f, candidate, prefer_label) is not None:
                    break
            items.append(candidate)
            i = j
        return items

    def to_db(self, f: Field, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(list(value), separators=(",", ":"), ensure_ascii=False)

    def from_db(self, f: Field, raw: Any) -> list[str] | None:
        return None if raw is None else list(json.loads(raw))

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {
            "type": ["array", "null"],
            "items": {"type": "string", "enum": self.choice_ids(f)},
            "uniqueItems": True,
        }

    # --- query -----------------------------------------------------------
    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        """``eq``: the canonical stored text; ``contains``/``in``/``not_in``: a list of ids."""
        if op in EMPTY_OPS:
            return None
        ids = self.parse(f, value)
        if not ids:
            raise FieldValueError("a filter value cannot be empty; use is_empty")
        return self.to_db(f, ids) if op == "eq" else ids

    def filter(self, f: Field, col: sa.ColumnElement[Any], op: str, value: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
        if op in ("contains", "in", "not_in"):
            has = [col.contains(json.dumps(choice_id, ensure_ascii=False), autoescape=True) for choice_id in value]
            if op == "contains":
                return has[0] if len(has) == 1 else sa.and_(*has)
            has_any = has[0] if len(has) == 1 else sa.or_(*has)
            if op == "in":
                return has_any
            return sa.or_(sa.not_(has_any), col.is_(None))
        if op not in self.operators:
            raise FieldValueError(f'operator "{op}" is not supported by {self.name} fields')
        return super().filter(f, col, op, value, ctx)

    # --- text ------------------------------------------------------------
    def to_text(self, f: Field, value: Any) -> str:
        return "" if not value else ", ".join(self.label(f, choice_id) for choice_id in value)

    def from_text(self, f: Field, text: str) -> Any:
        items = self.split(f, text, prefer_label=True)
        ids = [self.lookup(f, item, prefer_label=True) or item for item in items if item]
        return ids or None

    def sample(self, f: Field, fake: Faker) -> list[str] | None:
        ids = self.choice_ids(f)
        if not ids:
            return None
        count = fake.random_int(1, min(3, len(ids)))
        return self.in_order(f, fake.random_elements(ids, length=count, unique=True))


def _labels(label: Any) -> list[str]:
    """Every text a label can be matched by: the string, or each locale's text."""
    if isinstance(label, str):
        return [label]
    if isinstance(label, Mapping):
        return [text for text in label.values() if isinstance(text, str)]
    return []


def _display_label(label: Any, fallback: str) -> str:
    if isinstance(label, str):
        return label
    if isinstance(label, Mapping) and label:
        text = label.get("en", next(iter(label.values())))
        return text if isinstance(text, str) else fallback
    return fallback
