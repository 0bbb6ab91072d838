"""Formulas: a small, safe expression language, parsed, type-checked and compiled to SQL.

A formula field's ``options.formula`` is text like::

    IF(stage = "won", amount * probability / 100, 0)
    name & " (" & company & ")"
    DAYS(close_date, TODAY())

What it is: numbers, "text" in double quotes, ``TRUE``/``FALSE``; field
references by slug; ``+ - * /``, ``&`` (joins text), ``= != <> < <= > >=``;
and the functions in :data:`FUNCTIONS` (``IF``, ``AND``, ``OR``, ``NOT``,
``ROUND``, ``TODAY``, ``DAYS``…). What it is not: there are no loops, no
assignment, no attribute access and nothing is ever handed to ``eval`` — text
is parsed by a real grammar (lark, LALR) into a tree of our own node types,
every node is type-checked, and the tree is compiled to a SQLAlchemy
expression that the database evaluates in the same statement as the rest of
the query. So a formula can be filtered and sorted like a stored column, is
never stale, and is evaluated where the data lives.

Types are ``number``, ``text``, ``boolean``, ``date`` and ``datetime``. Empty
values propagate as SQL NULL (``amount * 2`` of an empty amount is empty);
division by zero is empty too, never an error. Numbers are computed as double
precision on both databases and rounded to the field's ``scale`` when read.

:func:`check` parses and types a formula against a table's fields and answers
problems with the definition's JSON pointer; :func:`compile_formula` turns the
same text into SQL for one dialect. Both re-read the field types each time, so
a formula whose field changed type or disappeared fails with a clear error
instead of computing nonsense.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

TYPES = ("number", "text", "boolean", "date", "datetime")
MAX_LENGTH = 2_000
MAX_DEPTH = 40

GRAMMAR = r"""
?start: expr
?expr: comparison
?comparison: concat (COMPARE concat)?
?concat: sum ("&" sum)*
?sum: product (ADD product)*
?product: unary (MUL unary)*
?unary: "-" unary -> neg
      | atom
?atom: NUMBER -> number
     | STRING -> string
     | "TRUE" -> true
     | "FALSE" -> false
     | FUNC "(" [expr ("," expr)*] ")" -> call
     | FIELD -> ref
     | "(" expr ")"

COMPARE: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
ADD: "+" | "-"
MUL: "*" | "/"
FUNC.2: /[A-Z][A-Z0-9_]*(?=\s*\()/
FIELD: /[a-z][a-z0-9_]{0,62}/
NUMBER: /\d+(\.\d+)?/
STRING: /"([^"\\\n]|\\["\\n])*"/

%import common.WS
%ignore WS
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


class FormulaError(ValueError):
    """A formula that cannot be parsed, typed or computed; ``at`` is a character offset when known."""

    def __init__(self, message: str, at: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.at = at


# --- the tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    pass


@dataclass(frozen=True)
class Literal(Node):
    value: Any
    type: str


@dataclass(frozen=True)
class Ref(Node):
    slug: str
    at: int


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node
    at: int


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]
    at: int


class _Build(Transformer[Token, Node]):
    @v_args(inline=True)
    def number(self, token: Token) -> Node:
        return Literal(float(token) if "." in token else int(token), "number")

    @v_args(inline=True)
    def string(self, token: Token) -> Node:
        body = str(token)[1:-1]
        return Literal(body.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"), "text")

    def true(self, _: Sequence[Any]) -> Node:
        return Literal(True, "boolean")

    def false(self, _: Sequence[Any]) -> Node:
        return Literal(False, "boolean")

    @v_args(inline=True)
    def ref(self, token: Token) -> Node:
        return Ref(str(token), token.start_pos or 0)

    @v_args(inline=True)
    def neg(self, operand: Node) -> Node:
        return Unary("-", operand)

    def call(self, children: Sequence[Any]) -> Node:
        name = children[0]
        args = tuple(c for c in children[1:] if c is not None)
        return Call(str(name), args, name.start_pos or 0)

    def _chain(self, children: Sequence[Any]) -> Node:
        node: Node = children[0]
        i = 1
        while i < len(children):
            op = children[i]
            node = Binary(str(op), node, children[i + 1], op.start_pos or 0)
            i += 2
        return node

    sum = product = _chain

    def comparison(self, children: Sequence[Any]) -> Node:
        return self._chain(children)

    def concat(self, children: Sequence[Any]) -> Node:
        node: Node = children[0]
        for child in children[1:]:
            node = Binary("&", node, child, 0)
        return node


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Node:
    """The formula's tree; :class:`FormulaError` saying where it stops making sense.

    Cached: the tree is made of frozen nodes, and every read of a formula field
    compiles its text again (the fields it reads may have changed since).
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("a formula is required")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"a formula may have at most {MAX_LENGTH} characters")
    try:
        tree = _PARSER.parse(text)
    except UnexpectedEOF:
        raise FormulaError("the formula ends too early (a missing value or closing parenthesis?)", len(text)) from None
    except UnexpectedCharacters as error:
        at = error.pos_in_stream or 0
        raise FormulaError(f'unexpected "{text[at]}" at character {error.column}', at) from None
    except UnexpectedToken as error:
        if error.token.type == "$END":
            raise FormulaError("the formula ends too early (a missing value or closing parenthesis?)", len(text)) from None
        raise FormulaError(f'unexpected "{error.token}" at character {error.column}', error.token.start_pos) from None
    except (UnexpectedInput, LarkError):
        raise FormulaError("the formula cannot be read") from None
    node = _Build().transform(tree)
    if _depth(node) > MAX_DEPTH:
        raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels")
    return node


def _depth(node: Node) -> int:
    if isinstance(node, Unary):
        return 1 + _depth(node.operand)
    if isinstance(node, Binary):
        return 1 + max(_depth(node.left), _depth(node.right))
    if isinstance(node, Call):
        return 1 + max((_depth(a) for a in node.args), default=0)
    return 1


def references(node: Node) -> list[str]:
    """The field slugs a formula reads, each once, in order of appearance."""
    found: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Ref):
            if n.slug not in found:
                found.append(n.slug)
        elif isinstance(n, Unary):
            walk(n.operand)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)

    walk(node)
    return found


# --- types and SQL --------------------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    """A field as a formula sees it: its formula type and the SQL giving its value."""

    type: str
    sql: sa.ColumnElement[Any]


Resolver = Callable[[str], Operand]
"""slug → the field's operand; raises :class:`FormulaError` for a field a formula cannot read."""


@dataclass(frozen=True)
class Compiled:
    type: str
    sql: sa.ColumnElement[Any]


@dataclass(frozen=True)
class Context:
    dialect: str
    today: dt.date
    now: dt.datetime


def _float(sql: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.cast(sql, sa.Float())


def _days(dialect: str, sql: sa.ColumnElement[Any], kind: str) -> sa.ColumnElement[Any]:
    """A date or datetime as a day number (fractional for datetimes), for differences."""
    if dialect == "sqlite":
        return sa.func.julianday(sql)
    if kind == "date":
        return sa.cast(sa.extract("epoch", sa.cast(sql, sa.DateTime())), sa.Float()) / 86400.0
    return sa.cast(sa.extract("epoch", sql), sa.Float()) / 86400.0


def _text_of(dialect: str, c: Compiled, digits: int | None = None) -> sa.ColumnElement[Any]:
    """A value as text, the same on both databases."""
    if c.type == "text":
        return c.sql
    if c.type == "number":
        places = 0 if digits is None else digits
        if dialect == "sqlite":  # printf() turns NULL into "0.00": keep empty empty
            return sa.case((c.sql.is_(None), sa.null()), else_=sa.func.printf(f"%.{places}f", c.sql))
        return sa.cast(sa.func.round(sa.cast(c.sql, sa.Numeric()), places), sa.Text())
    if c.type == "boolean":
        return sa.case((c.sql.is_(None), sa.null()), (c.sql, "TRUE"), else_="FALSE")
    if c.type == "date":
        return sa.cast(c.sql, sa.Text()) if dialect != "sqlite" else c.sql
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%d %H:%M", c.sql)
    return sa.func.to_char(sa.func.timezone("UTC", c.sql), "YYYY-MM-DD HH24:MI")


class _Compiler:
    def __init__(self, resolve: Resolver, ctx: Context) -> None:
        self.resolve = resolve
        self.ctx = ctx

    def run(self, node: Node) -> Compiled:
        if isinstance(node, Literal):
            if node.type == "number":
                return Compiled("number", sa.literal(float(node.value), sa.Float()))
            if node.type == "boolean":
                return Compiled("boolean", sa.true() if node.value else sa.false())
            return Compiled("text", sa.literal(node.value, sa.Text()))
        if isinstance(node, Ref):
            operand = self.resolve(node.slug)
            sql = _float(operand.sql) if operand.type == "number" else operand.sql
            return Compiled(operand.type, sql)
        if isinstance(node, Unary):
            inner = self.expect(node.operand, "number", "-")
            return Compiled("number", -inner.sql)
        if isinstance(node, Binary):
            return self.binary(node)
        assert isinstance(node, Call)
        return self.call(node)

    def expect(self, node: Node, kind: str, where: str) -> Compiled:
        c = self.run(node)
        if c.type != kind:
            raise FormulaError(f"{where} needs {_a(kind)}, not {_a(c.type)}")
        return c

    def binary(self, node: Binary) -> Compiled:
        op = node.op
        if op == "&":
            left, right = self.run(node.left), self.run(node.right)
            parts = [sa.func.coalesce(_text_of(self.ctx.dialect, part), "") for part in (left, right)]
            return Compiled("text", parts[0].op("||")(parts[1]))
        if op in "+-*/":
            left, right = self.run(node.left), self.run(node.right)
            if op == "-" and left.type in ("date", "datetime") and right.type in ("date", "datetime"):
                raise FormulaError("subtract dates with DAYS(end, start)")
            for side in (left, right):
                if side.type != "number":
                    raise FormulaError(f'"{op}" needs numbers, not {_a(side.type)}')
            if op == "+":
                return Compiled("number", left.sql + right.sql)
            if op == "-":
                return Compiled("number", left.sql - right.sql)
            if op == "*":
                return Compiled("number", left.sql * right.sql)
            return Compiled("number", left.sql / sa.func.nullif(right.sql, 0.0))
        left, right = self.run(node.left), self.run(node.right)
        if left.type != right.type:
            raise FormulaError(f'"{op}" compares {_a(left.type)} with {_a(right.type)}')
        if op in ("<", "<=", ">", ">=") and left.type == "boolean":
            raise FormulaError(f'"{op}" cannot order yes/no values')
        ops = {
            "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<>": lambda a, b: a != b,
            "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
        }
        return Compiled("boolean", ops[op](left.sql, right.sql))

    def call(self, node: Call) -> Compiled:
        spec = FUNCTIONS.get(node.name)
        if spec is None:
            raise FormulaError(f"unknown function {node.name}", node.at)
        low, high = spec.arity
        if len(node.args) < low or (high is not None and len(node.args) > high):
            expected = str(low) if low == high else (f"{low} to {high}" if high is not None else f"at least {low}")
            raise FormulaError(f"{node.name} takes {expected} argument{'s' if expected != '1' else ''}, got {len(node.args)}", node.at)
        return spec.build(self, node)


def _a(kind: str) -> str:
    return {"number": "a number", "text": "text", "boolean": "a yes/no value", "date": "a date", "datetime": "a date and time"}[kind]


@dataclass(frozen=True)
class Function:
    arity: tuple[int, int | None]
    build: Callable[[_Compiler, Call], Compiled]
    help: str


def _if(c: _Compiler, node: Call) -> Compiled:
    cond = c.expect(node.args[0], "boolean", "IF's condition")
    then = c.run(node.args[1])
    otherwise = c.run(node.args[2]) if len(node.args) == 3 else Compiled(then.type, sa.null())
    if then.type != otherwise.type:
        raise FormulaError(f"IF gives {_a(then.type)} or {_a(otherwise.type)}: both results must be of one type", node.at)
    return Compiled(then.type, sa.case((cond.sql, then.sql), else_=otherwise.sql))


def _logic(kind: str) -> Callable[[_Compiler, Call], Compiled]:
    def build(c: _Compiler, node: Call) -> Compiled:
        parts = [c.expect(a, "boolean", node.name).sql for a in node.args]
        return Compiled("boolean", sa.and_(*parts) if kind == "and" else sa.or_(*parts))

    return build


def _not(c: _Compiler, node: Call) -> Compiled:
    return Compiled("boolean", sa.not_(c.expect(node.args[0], "boolean", "NOT").sql))


def _digits(c: _Compiler, node: Call, index: int, name: str) -> int:
    if len(node.args) <= index:
        return 0
    arg = node.args[index]
    if not (isinstance(arg, Literal) and arg.type == "number" and isinstance(arg.value, int) and arg.value <= 10):
        raise FormulaError(f"{name}'s number of decimals must be a whole number from 0 to 10", node.at)
    return int(arg.value)


def _round(c: _Compiler, node: Call) -> Compiled:
    value = c.expect(node.args[0], "number", "ROUND")
    digits = _digits(c, node, 1, "ROUND")
    if c.ctx.dialect == "sqlite":
        return Compiled("number", sa.func.round(value.sql, digits))
    return Compiled("number", sa.cast(sa.func.round(sa.cast(value.sql, sa.Numeric()), digits), sa.Float()))


def _abs(c: _Compiler, node: Call) -> Compiled:
    return Compiled("number", sa.func.abs(c.expect(node.args[0], "number", "ABS").sql))


def _extreme(kind: str) -> Callable[[_Compiler, Call], Compiled]:
    def build(c: _Compiler, node: Call) -> Compiled:
        parts = [c.expect(a, "number", node.name).sql for a in node.args]
        if len(parts) == 1:
            return Compiled("number", parts[0])
        if c.ctx.dialect == "sqlite":
            # SQLite's scalar min/max are NULL when any argument is; PostgreSQL's LEAST/GREATEST
            # skip NULLs. Give each argument the others as fallbacks, so both skip empties.
            fallback = [sa.func.coalesce(p, *(q for q in parts if q is not p)) for p in parts]
            return Compiled("number", getattr(sa.func, kind)(*fallback))
        return Compiled("number", (sa.func.least if kind == "min" else sa.func.greatest)(*parts))

    return build


def _concat(c: _Compiler, node: Call) -> Compiled:
    parts = [sa.func.coalesce(_text_of(c.ctx.dialect, c.run(a)), "") for a in node.args]
    sql: sa.ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        sql = sql.op("||")(part)
    return Compiled("text", sql)


def _text(c: _Compiler, node: Call) -> Compiled:
    value = c.run(node.args[0])
    digits = _digits(c, node, 1, "TEXT") if value.type == "number" else None
    return Compiled("text", _text_of(c.ctx.dialect, value, digits))


def _text_fn(fn: str) -> Callable[[_Compiler, Call], Compiled]:
    def build(c: _Compiler, node: Call) -> Compiled:
        value = c.expect(node.args[0], "text", node.name)
        if fn == "length":
            return Compiled("number", _float(sa.func.length(value.sql)))
        return Compiled("text", getattr(sa.func, fn)(value.sql))

    return build


def _today(c: _Compiler, node: Call) -> Compiled:
    return Compiled("date", sa.literal(c.ctx.today, sa.Date()))


def _now(c: _Compiler, node: Call) -> Compiled:
    from .database import UTCDateTime

    return Compiled("datetime", sa.literal(c.ctx.now, UTCDateTime()))


def _temporal(c: _Compiler, node: Node, where: str) -> Compiled:
    value = c.run(node)
    if value.type not in ("date", "datetime"):
        raise FormulaError(f"{where} needs a date, not {_a(value.type)}")
    return value


def _days_fn(c: _Compiler, node: Call) -> Compiled:
    end, start = (_temporal(c, a, "DAYS") for a in node.args)
    dialect = c.ctx.dialect
    diff = _days(dialect, end.sql, end.type) - _days(dialect, start.sql, start.type)
    if end.type == "date" and start.type == "date":
        return Compiled("number", _float(sa.func.round(diff)))
    return Compiled("number", diff)


def _part(unit: str) -> Callable[[_Compiler, Call], Compiled]:
    def build(c: _Compiler, node: Call) -> Compiled:
        value = _temporal(c, node.args[0], node.name)
        if c.ctx.dialect == "sqlite":
            fmt = {"year": "%Y", "month": "%m", "day": "%d"}[unit]
            return Compiled("number", _float(sa.cast(sa.func.strftime(fmt, value.sql), sa.Integer())))
        sql = sa.func.timezone("UTC", value.sql) if value.type == "datetime" else value.sql
        return Compiled("number", _float(sa.extract(unit, sql)))

    return build


def _isblank(c: _Compiler, node: Call) -> Compiled:
    value = c.run(node.args[0])
    if value.type == "text":
        return Compiled("boolean", sa.or_(value.sql.is_(None), value.sql == ""))
    return Compiled("boolean", value.sql.is_(None))


FUNCTIONS: dict[str, Function] = {
    "IF": Function((2, 3), _if, "IF(condition, then, otherwise)"),
    "AND": Function((1, None), _logic("and"), "AND(a, b, …): all true"),
    "OR": Function((1, None), _logic("or"), "OR(a, b, …): any true"),
    "NOT": Function((1, 1), _not, "NOT(a)"),
    "ROUND": Function((1, 2), _round, "ROUND(number, decimals)"),
    "ABS": Function((1, 1), _abs, "ABS(number)"),
    "MIN": Function((1, None), _extreme("min"), "MIN(a, b, …)"),
    "MAX": Function((1, None), _extreme("max"), "MAX(a, b, …)"),
    "CONCAT": Function((1, None), _concat, "CONCAT(a, b, …): joined as text"),
    "TEXT": Function((1, 2), _text, "TEXT(value, decimals): a value as text"),
    "LEN": Function((1, 1), _text_fn("length"), "LEN(text)"),
    "UPPER": Function((1, 1), _text_fn("upper"), "UPPER(text)"),
    "LOWER": Function((1, 1), _text_fn("lower"), "LOWER(text)"),
    "TRIM": Function((1, 1), _text_fn("trim"), "TRIM(text)"),
    "TODAY": Function((0, 0), _today, "TODAY(): today's date (UTC)"),
    "NOW": Function((0, 0), _now, "NOW(): the current date and time"),
    "DAYS": Function((2, 2), _days_fn, "DAYS(end, start): days between two dates"),
    "YEAR": Function((1, 1), _part("year"), "YEAR(date)"),
    "MONTH": Function((1, 1), _part("month"), "MONTH(date)"),
    "DAY": Function((1, 1), _part("day"), "DAY(date)"),
    "ISBLANK": Function((1, 1), _isblank, "ISBLANK(value): true when empty"),
}


def compile_formula(text: str, resolve: Resolver, ctx: Context) -> Compiled:
    """The formula as a SQL expression for ``ctx.dialect`` and its result type."""
    return _Compiler(resolve, ctx).run(parse(text))


def result_type(text: str, resolve: Resolver) -> str:
    """The type a formula gives, checking it end to end (the SQL is built and dropped)."""
    now = dt.datetime.now(dt.UTC)
    return compile_formula(text, resolve, Context("sqlite", now.date(), now)).type
