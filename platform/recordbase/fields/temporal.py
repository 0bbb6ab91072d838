"""Time field types, date and datetime, and the relative date filters they share."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..database import UTCDateTime
from . import register
from .base import ORDER_OPS, RELATIVE_DATE_OPS, Field, FieldType, FieldValueError, FilterContext

if TYPE_CHECKING:
    from faker import Faker

UTC = dt.UTC
N_DAYS_OPS = frozenset({"last_n_days", "next_n_days"})
# Samples fall in a fixed span, not one around today: a seeded Faker then gives
# the same values on every day the tests run.
SAMPLE_START = dt.date(2020, 1, 1)
SAMPLE_END = dt.date(2030, 12, 31)

DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$", re.ASCII)
CHINESE_DATE_RE = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$", re.ASCII)


def relative_range(op: str, value: Any, today: dt.date) -> tuple[dt.date, dt.date]:
    """The days a relative date filter matches, as ``(first day, day after the last)``.

    Weeks are ISO weeks (Monday first). ``last_n_days`` n is the n days ending
    today, today included; ``next_n_days`` n is today through today + n.
    """
    day = dt.timedelta(days=1)
    monday = today - today.weekday() * day
    month = today.replace(day=1)
    year = today.replace(month=1, day=1)
    if op == "today":
        return today, today + day
    if op == "yesterday":
        return today - day, today
    if op == "tomorrow":
        return today + day, today + 2 * day
    if op == "this_week":
        return monday, monday + 7 * day
    if op == "last_week":
        return monday - 7 * day, monday
    if op == "next_week":
        return monday + 7 * day, monday + 14 * day
    if op == "this_month":
        return month, _add_months(month, 1)
    if op == "last_month":
        return _add_months(month, -1), month
    if op == "next_month":
        return _add_months(month, 1), _add_months(month, 2)
    if op == "this_year":
        return year, year.replace(year=year.year + 1)
    if op == "last_year":
        return year.replace(year=year.year - 1), year
    if op == "last_n_days":
        return today - (value - 1) * day, today + day
    if op == "next_n_days":
        return today, today + (value + 1) * day
    raise ValueError(f"not a relative date operator: {op}")


def parse_datetime(value: Any) -> dt.datetime | None:
    """An aware datetime, ISO 8601 text or a date as an aware UTC datetime; ``None`` if empty.

    A value without an offset is taken as UTC. Shared by the datetime type and
    the created_at/updated_at stamps, so both read instants the same way.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = dt.datetime.fromisoformat(text)  # accepts "Z" since Python 3.11
        except ValueError:
            raise FieldValueError("is not a date and time (expected ISO 8601, like 2024-05-01T09:30:00+08:00)") from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    elif not isinstance(value, dt.datetime):
        raise FieldValueError(f"expected a date and time, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise FieldValueError("is out of the supported range of dates") from None


def _add_months(first_of_month: dt.date, months: int) -> dt.date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


class TemporalType(FieldType):
    """The filters date and datetime share: ordering plus days relative to today."""

    operators = ORDER_OPS | RELATIVE_DATE_OPS

    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        if op in N_DAYS_OPS:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FieldValueError(f'"{op}" needs a whole number of days, 1 or more')
            return value
        if op in RELATIVE_DATE_OPS:
            if value not in (None, True, ""):
                raise FieldValueError(f'"{op}" takes no value')
            return None
        return super().parse_filter_value(f, op, value)

    def filter(self, f: Field, col: sa.ColumnElement[Any], op: str, value: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
        if op in RELATIVE_DATE_OPS:
            start, end = relative_range(op, value, ctx.today)
            return sa.and_(col >= self.day_bound(start), col < self.day_bound(end))
        return super().filter(f, col, op, value, ctx)

    def day_bound(self, day: dt.date) -> Any:
        """A day as the operand a column of this type is compared with."""
        return day


@register
class Date(TemporalType):
    """A calendar day without a time: ``2024-05-01``, ``2024/05/01`` or ``2024年5月1日``."""

    name = "date"

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.Date()

    def parse(self, f: Field, value: Any) -> dt.date | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime):  # a datetime is a date too, in Python
            raise FieldValueError("expected a date without a time")
        if isinstance(value, dt.date):
            return value
        if not isinstance(value, str):
            raise FieldValueError(f"expected a date, got {type(value).__name__}")
        text = value.strip()
        if not text:
            return None
        match = DATE_RE.match(text) or CHINESE_DATE_RE.match(text)
        if not match:
            raise FieldValueError("is not a date (expected YYYY-MM-DD)")
        try:
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            raise FieldValueError("is not a calendar date") from None

    def from_db(self, f: Field, raw: Any) -> dt.date | None:
        if isinstance(raw, dt.datetime):
            return raw.date()
        if isinstance(raw, str):
            return dt.date.fromisoformat(raw)
        return raw

    def json_value(self, f: Field, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": ["string", "null"], "format": "date"}

    def to_text(self, f: Field, value: Any) -> str:
        return "" if value is None else value.isoformat()

    def sample(self, f: Field, fake: Faker) -> dt.date:
        return fake.date_between_dates(date_start=SAMPLE_START, date_end=SAMPLE_END)

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "••••-••-••"

    def resolve_default(self, default: Any) -> Any:
        if default == "today":
            return dt.datetime.now(UTC).date()
        return default


@register
class DateTime(TemporalType):
    """An instant: aware datetimes or ISO 8601 text, kept in UTC to the microsecond.

    A value without an offset is taken as UTC, not as the server's local
    time, so the same text means the same instant wherever it is read.
    """

    name = "datetime"

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return UTCDateTime()

    def parse(self, f: Field, value: Any) -> dt.datetime | None:
        return parse_datetime(value)

    def from_db(self, f: Field, raw: Any) -> dt.datetime | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = dt.datetime.fromisoformat(raw)
        return raw.replace(tzinfo=UTC) if raw.tzinfo is None else raw.astimezone(UTC)

    def json_value(self, f: Field, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": ["string", "null"], "format": "date-time"}

    def to_text(self, f: Field, value: Any) -> str:
        return "" if value is None else value.isoformat()

    def day_bound(self, day: dt.date) -> Any:
        return dt.datetime.combine(day, dt.time(), tzinfo=UTC)

    def sample(self, f: Field, fake: Faker) -> dt.datetime:
        start = dt.datetime.combine(SAMPLE_START, dt.time(), tzinfo=UTC)
        end = dt.datetime.combine(SAMPLE_END, dt.time(), tzinfo=UTC)
        return fake.date_time_between_dates(datetime_start=start, datetime_end=end, tzinfo=UTC)

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "••••-••-•• ••:••"

    def resolve_default(self, default: Any) -> Any:
        if default == "now":
            return dt.datetime.now(UTC)
        return default
