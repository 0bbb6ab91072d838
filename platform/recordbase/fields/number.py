"""Numeric field types: number, currency, percent (exact decimals) and rating."""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import Problem
from . import register
from .base import ORDER_OPS, Field, FieldType, FieldValueError

if TYPE_CHECKING:
    from faker import Faker

MAX_PRECISION = 18  # 10**18 - 1 still fits a signed 64-bit integer
MAX_SCALE = 10
MASK = "•••"

# Plain decimals, optionally with thousands separators ("1,234.50") or an
# exponent ("1e3"); anything else (spaces inside, "1.2.3", "12abc") is refused.
NUMBER_RE = re.compile(
    r"^[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$", re.ASCII
)
# Quantizing and scaling need more digits than any stored value has, and must
# never round silently: each operation below is exact within this context.
EXACT = decimal.Context(prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])


class NumberType(FieldType):
    """Exact decimals stored as scaled integers: value × 10^scale in a BIGINT.

    A scaled integer sorts and compares exactly, with the same results on
    SQLite (which has no exact decimal type) and PostgreSQL. Scale 0 gives
    Python ``int`` values; a positive scale gives ``Decimal`` values quantized
    to the scale (half-up), so ``12.345`` in a scale-2 field is ``12.35``.
    """

    operators = ORDER_OPS
    default_scale = 0

    # --- options ---------------------------------------------------------
    def precision(self, f: Field) -> int:
        return int(f.options.get("precision", MAX_PRECISION))

    def scale(self, f: Field) -> int:
        return int(f.options.get("scale", self.default_scale))

    def _bound(self, f: Field, name: str) -> Decimal | None:
        bound = f.options.get(name)
        return None if bound is None else Decimal(str(bound))

    # --- storage ---------------------------------------------------------
    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    # --- codec -----------------------------------------------------------
    def parse(self, f: Field, value: Any) -> int | Decimal | None:
        number = self.to_decimal(f, value)
        if number is None:
            return None
        scale, integer_digits = self.scale(f), self.precision(f) - self.scale(f)
        # Checked before quantizing too: quantizing 1e100 would need all its digits.
        if number != 0 and number.adjusted() >= integer_digits:
            raise FieldValueError(self._too_many_digits(integer_digits))
        number = number.quantize(Decimal(1).scaleb(-scale), context=EXACT)
        if number != 0 and number.adjusted() >= integer_digits:  # 99.995 rounds to 100.00
            raise FieldValueError(self._too_many_digits(integer_digits))
        if number == 0:
            number = number.copy_abs()  # no "-0.00"
        low, high = self._bound(f, "min"), self._bound(f, "max")
        if low is not None and number < low:
            raise FieldValueError(f"is less than the minimum, {_plain(low)}")
        if high is not None and number > high:
            raise FieldValueError(f"is more than the maximum, {_plain(high)}")
        return int(number) if scale == 0 else number

    @staticmethod
    def _too_many_digits(integer_digits: int) -> str:
        if integer_digits <= 0:
            return "must be less than 1 in magnitude"
        return f"has more than {integer_digits} digits before the decimal point"

    def to_decimal(self, f: Field, value: Any) -> Decimal | None:
        """Any accepted input as a finite ``Decimal``; ``None`` for empty."""
        if value is None:
            return None
        if isinstance(value, bool):
            raise FieldValueError("expected a number, got bool")
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, float):
            # str() gives the shortest repr, so 0.1 stays 0.1 and not 0.1000000000000000055…
            number = Decimal(str(value))
        elif isinstance(value, Decimal):
            number = value
        elif isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            text = self.strip_text(f, text)
            if not NUMBER_RE.match(text):
                raise FieldValueError("is not a number (expected digits like 1234.50)")
            number = Decimal(text.replace(",", ""))
        else:
            raise FieldValueError(f"expected a number, got {type(value).__name__}")
        if not number.is_finite():
            raise FieldValueError("must be a finite number")
        return number

    def strip_text(self, f: Field, text: str) -> str:
        """The number in a text, without the decorations this type tolerates around it."""
        return text

    def to_db(self, f: Field, value: Any) -> int | None:
        if value is None:
            return None
        return int(Decimal(value).scaleb(self.scale(f), context=EXACT))

    def from_db(self, f: Field, raw: Any) -> int | Decimal | None:
        if raw is None:
            return None
        scale = self.scale(f)
        if scale == 0:
            return int(raw)
        return Decimal(int(raw)).scaleb(-scale, context=EXACT)

    def json_value(self, f: Field, value: Any) -> Any:
        # A decimal goes out as text: JSON numbers are binary floats to most readers.
        if isinstance(value, Decimal):
            return _plain(value)
        return value

    def json_schema(self, f: Field) -> dict[str, Any]:
        if self.scale(f) == 0:
            schema: dict[str, Any] = {"type": ["integer", "null"]}
            low, high = self._bound(f, "min"), self._bound(f, "max")
            if low is not None:
                schema["minimum"] = int(low) if low == int(low) else float(low)
            if high is not None:
                schema["maximum"] = int(high) if high == int(high) else float(high)
            return schema
        return {"type": ["string", "number", "null"], "format": "decimal"}

    # --- text ------------------------------------------------------------
    def to_text(self, f: Field, value: Any) -> str:
        if value is None:
            return ""
        return _plain(value) if isinstance(value, Decimal) else str(value)

    # --- samples and masks -----------------------------------------------
    def sample(self, f: Field, fake: Faker) -> int | Decimal | None:
        """A value within the field's bounds; around 0..10 000 when unbounded."""
        scale = self.scale(f)
        factor = 10**scale
        limit = 10 ** self.precision(f) - 1  # the largest scaled integer that fits
        low, high = self._bound(f, "min"), self._bound(f, "max")
        if low is None and high is None:
            low_s, high_s = 0, 10_000 * factor
        elif high is None:
            low_s = _ceil(low * factor)  # type: ignore[operator]
            high_s = max(low_s, 0) + 10_000 * factor
        elif low is None:
            high_s = _floor(high * factor)
            low_s = min(high_s, 0) - 10_000 * factor if high_s < 0 else 0
        else:
            low_s, high_s = _ceil(low * factor), _floor(high * factor)
        low_s, high_s = max(low_s, -limit), min(high_s, limit)
        if low_s > high_s:
            return None
        return self.from_db(f, fake.random_int(low_s, high_s))

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else MASK

    # --- definition ------------------------------------------------------
    def check_definition(self, definition: Mapping[str, Any], pointer: str) -> list[Problem]:
        problems: list[Problem] = []
        options = definition.get("options") or {}
        precision = options.get("precision", MAX_PRECISION)
        scale = options.get("scale", self.default_scale)
        if not _is_int(precision) or not 1 <= precision <= MAX_PRECISION:
            problems.append(Problem(pointer + "/options/precision", f"precision must be a whole number from 1 to {MAX_PRECISION}"))
        if not _is_int(scale) or not 0 <= scale <= MAX_SCALE:
            problems.append(Problem(pointer + "/options/scale", f"scale must be a whole number from 0 to {MAX_SCALE}"))
        elif _is_int(precision) and scale > precision:
            problems.append(Problem(pointer + "/options/scale", f"scale ({scale}) cannot exceed precision ({precision})"))
        for name in ("min", "max"):
            bound = options.get(name)
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                problems.append(Problem(f"{pointer}/options/{name}", f"{name} must be a number"))
        low, high = options.get("min"), options.get("max")
        if not problems and low is not None and high is not None and low > high:
            problems.append(Problem(pointer + "/options/min", "min cannot be more than max"))
        if problems:
            return problems  # a default cannot be checked against broken options
        return super().check_definition(definition, pointer)


@register
class Number(NumberType):
    name = "number"


@register
class Currency(NumberType):
    """An amount in one currency (``options.currency``, an ISO 4217 code).

    Text (CSV) is the plain number, ``1234.50``: no symbol, so it round-trips
    and spreadsheets read it as a number. Reading text tolerates the field's
    own code or a common symbol in front (``CNY 1,234.50``, ``¥1,234.50``).
    """

    name = "currency"
    default_scale = 2
    symbols = "$€£¥￥"

    def strip_text(self, f: Field, text: str) -> str:
        # Only in front, so "1$" stays invalid; a sign may precede the symbol.
        sign = text[:1] if text[:1] in "+-" else ""
        text = text[len(sign):]
        code = f.options.get("currency")
        if code and text.upper().startswith(code):
            text = text[len(code):].lstrip()
        elif text[:1] and text[:1] in self.symbols:
            text = text[1:].lstrip()
        return sign + text

    def check_definition(self, definition: Mapping[str, Any], pointer: str) -> list[Problem]:
        code = (definition.get("options") or {}).get("currency")
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
            return [Problem(pointer + "/options/currency", 'currency must be an ISO 4217 code like "CNY" or "EUR"')]
        return super().check_definition(definition, pointer)


@register
class Percent(NumberType):
    """A percentage as its number: 12.5 means 12.5 %. Text may end in "%"."""

    name = "percent"
    default_scale = 2

    def strip_text(self, f: Field, text: str) -> str:
        return text[:-1].rstrip() if text.endswith("%") else text


@register
class Rating(FieldType):
    """A whole number of stars from 0 to ``options.max`` (default 5); 0 is a value, not empty."""

    name = "rating"
    operators = ORDER_OPS
    json_type = "integer"
    default_max = 5

    def maximum(self, f: Field) -> int:
        return int(f.options.get("max", self.default_max))

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.SmallInteger()

    def parse(self, f: Field, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise FieldValueError("expected a whole number, got bool")
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            if not re.fullmatch(r"[+-]?\d+", text):
                raise FieldValueError("is not a whole number of stars")
            value = int(text)
        elif isinstance(value, (float, Decimal)):
            if not math.isfinite(value) or value != int(value):
                raise FieldValueError("is not a whole number of stars")
            value = int(value)
        elif not isinstance(value, int):
            raise FieldValueError(f"expected a whole number, got {type(value).__name__}")
        top = self.maximum(f)
        if not 0 <= value <= top:
            raise FieldValueError(f"must be from 0 to {top}")
        return value

    def from_db(self, f: Field, raw: Any) -> int | None:
        return None if raw is None else int(raw)

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": ["integer", "null"], "minimum": 0, "maximum": self.maximum(f)}

    def sample(self, f: Field, fake: Faker) -> int:
        return fake.random_int(0, self.maximum(f))

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else MASK

    def check_definition(self, definition: Mapping[str, Any], pointer: str) -> list[Problem]:
        top = (definition.get("options") or {}).get("max", self.default_max)
        if not _is_int(top) or not 1 <= top <= 10:
            return [Problem(pointer + "/options/max", "max must be a whole number from 1 to 10")]
        return super().check_definition(definition, pointer)


def _plain(number: Decimal) -> str:
    """A decimal in positional notation: never "1E-7" or "1E+3"."""
    return format(number, "f")


def _ceil(number: Decimal) -> int:
    return int(number.to_integral_value(rounding=decimal.ROUND_CEILING))


def _floor(number: Decimal) -> int:
    return int(number.to_integral_value(rounding=decimal.ROUND_FLOOR))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
