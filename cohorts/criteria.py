"""Eligibility criteria: a small, safe expression language for who may enter a trial.

    c = parse_criteria("18 <= age <= 75 and site_of_onset == 'Bulbar' and alsfrs_r >= 30")
    c.columns; c.evaluate(frame)  # ('age', 'site_of_onset', 'alsfrs_r'); numpy bool array, one per row

Nothing reaches ``eval``/``exec``/``pandas.eval``: a whitelist tokenizer feeds a recursive-descent parser that
builds an AST of frozen nodes, evaluated with vectorised numpy. Grammar, lowest precedence first::

    expr       := and ("or" and)*                    and := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum ((CMP sum)+ | ["not"] "in" list)?           CMP: == != < <= > >=
    sum        := product (("+" | "-") product)*      product := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | 'text' | "text" | true | false | name | `name with spaces` | "(" expr ")"
    list       := "[" literal ("," literal)* [","] "]"           literal := [-]NUMBER | 'text' | true | false

``18 <= age <= 75`` means ``18 <= age and age <= 75``. Keywords (and or not in true false) are case-insensitive,
column names case-sensitive; numbers look like ``3``, ``2.5``, ``.5``, ``1e3``. Anything else (function calls,
attribute access, indexing, lambdas, dunder names, assignment, ``&&`` ``||`` ``!``) raises a
:class:`CriteriaError` (an :class:`~cohorts.errors.InvalidScenarioError`) with a caret under the position.
Types: text compares with text (``== != in``; ordering would be alphabetical, so it is refused), numbers with
numbers (and arithmetic); ``and``/``or``/``not`` combine conditions. A mismatch is an error.

**Missing values** follow SQL's three-valued logic: a comparison involving a missing value (NaN, None, or a
division by zero) is *unknown*, and a patient whose criteria are unknown is **not eligible**. So ``age >= 18``
and ``not (age < 18)`` both exclude a missing age, while ``age >= 18 or sex == 'Female'`` admits a woman with
missing age (``unknown or true`` is true).
"""

from __future__ import annotations

import difflib
import keyword
import operator
import re
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cohorts.errors import InvalidScenarioError

__all__ = ["Criteria", "CriteriaError", "Node", "parse_criteria", "ALLOWED"]

ALLOWED = ("column names (age, `name with spaces`), numbers (3, 2.5, 1e3), 'text' or \"text\", true/false, "
           "+ - * / and unary -, == != < <= > >= (chains like 18 <= age <= 75), and / or / not, "
           "in [...] / not in [...] with literal lists, parentheses")
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}
_MAX_DEPTH = 60
_KIND = {"num": "a number", "str": "text", "bool": "a condition (true/false)"}


class CriteriaError(InvalidScenarioError):
    """A problem in an eligibility expression; ``positions`` are 0-based offsets into ``text``."""

    def __init__(self, text: str, problems: list[tuple[str, int]], *, allowed: bool = False):
        self.text, self.positions = text, [p for _, p in problems]
        self.position = self.positions[0]
        tail = f"\n  Allowed: {ALLOWED}." if allowed else ""
        super().__init__([f"{msg} {_where(text, pos)}{tail}" for msg, pos in problems], source="eligibility criteria")


def _where(text: str, pos: int) -> str:
    start, end = text.rfind("\n", 0, pos) + 1, (text.find("\n", pos) + 1 or len(text) + 1) - 1
    col = pos - start
    at = f"line {text.count(chr(10), 0, pos) + 1}, column {col + 1}" if "\n" in text else f"column {col + 1}"
    return f"(at {at}):\n    {text[start:end].replace(chr(9), ' ')}\n    {' ' * col}^"


def _fail(text: str, pos: int, msg: str, allowed: bool = False):
    raise CriteriaError(text, [(msg, pos)], allowed=allowed)


# --------------------------------------------------------------------------------------------- tokens
_TOKEN = re.compile(r"""(?P<ws>\s+)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<str>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")|(?P<qname>`[^`\n]+`)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|\[|\]|,)""", re.VERBOSE)
_REJECTED = [  # (prefix, explanation), longest first
    ("&&", "`&&` is not accepted: write `and`"), ("||", "`||` is not accepted: write `or`"),
    ("**", "powers (`**`) are not allowed: only + - * /"), ("//", "floor division (`//`) is not allowed: use /"),
    ("<>", "`<>` is not accepted: write `!=`"), ("&", "`&` is not accepted: write `and`"),
    ("|", "`|` is not accepted: write `or`"), ("!", "`!` is not accepted: write `not` (or `!=` for 'differs')"),
    ("=", "a single `=` is assignment, which is not allowed: write `==` to compare"),
    (";", "`;` is not allowed: give one expression and combine conditions with `and` / `or`"),
    (".", "attribute access (`.`) is not allowed"), (":", "`:` (lambdas, slices, dicts) is not allowed"),
    ("{", "braces (sets, dicts) are not allowed: lists are written [...] after `in`"),
    ("~", "`~` is not accepted: write `not`"), ("#", "comments (`#`) are not allowed"),
    ("'", "unterminated text: close it with '"), ('"', 'unterminated text: close it with "'),
    ("`", "unterminated column name: close it with `"),
]


_Tok = namedtuple("_Tok", "kind value pos")  # kind: num str name kw op end


def _tokenize(text: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = None if text.startswith(("**", "//", "<>"), pos) else _TOKEN.match(text, pos)
        if m is None:
            _fail(text, pos, next((m for p, m in _REJECTED if text.startswith(p, pos)),
                                  f"character {text[pos]!r} is not allowed"), allowed=True)
        kind, raw, start, pos = m.lastgroup, m.group(), m.start(), m.end()
        if kind == "num":
            if pos < len(text) and (text[pos].isalpha() or text[pos] == "_"):
                _fail(text, start, f"malformed number {text[start:pos + 1]!r}: numbers look like 3, 2.5, 1e3")
            toks.append(_Tok("num", float(raw) if any(c in raw for c in ".eE") else int(raw), start))
        elif kind == "str":
            toks.append(_Tok("str", re.sub(r"\\(.)", r"\1", raw[1:-1]), start))
        elif kind == "qname":
            toks.append(_Tok("name", raw[1:-1], start))
        elif kind == "name":
            if raw.startswith("__"):
                _fail(text, start, f"dunder names like `{raw}` are not allowed", allowed=True)
            if keyword.iskeyword(raw) and raw.lower() not in _KEYWORDS:
                _fail(text, start, f"`{raw}` is not allowed (a column of that name goes in backticks: `{raw}`)",
                      allowed=True)
            toks.append(_Tok("kw", raw.lower(), start) if raw.lower() in _KEYWORDS else _Tok("name", raw, start))
        elif kind == "op":
            toks.append(_Tok("op", raw, start))
    return toks + [_Tok("end", None, len(text))]


# --------------------------------------------------------------------------------------------- parser
@dataclass(frozen=True)
class Node:
    """An AST node. ``kind``: lit (``value``), col (``value`` = name), neg, arith (``value`` = operator), cmp
    (``ops`` = ((operator, position), ...)), in (``value`` = negated, ``ops`` = the list's values), not, and, or;
    ``args`` are the children; ``pos`` is where the node's own token starts."""

    kind: str
    pos: int
    value: object = None
    args: tuple = ()
    ops: tuple = ()


def _lit_kind(v) -> str:
    return "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "num"


class _Parser:
    def __init__(self, text: str):
        self.text, self.toks, self.i, self.depth = text, _tokenize(text), 0, 0

    def at(self, kind, *values) -> bool:
        t = self.toks[self.i]
        return t.kind == kind and (not values or t.value in values)

    def take(self) -> _Tok:
        self.i += 1
        return self.toks[self.i - 1]

    def fail(self, msg, pos=None, allowed=False):
        _fail(self.text, self.toks[self.i].pos if pos is None else pos, msg, allowed)

    def shown(self) -> str:
        t = self.toks[self.i]
        return "the end of the text" if t.kind == "end" else f"`{self.text[t.pos:self.toks[self.i + 1].pos].strip()}`"

    def parse(self) -> Node:
        if self.at("end"):
            self.fail("the criteria are empty: write a condition such as `age >= 18`, or leave the criteria unset")
        node = self.logic("or")
        if not self.at("end"):
            self.fail(f"unexpected {self.shown()} after a complete expression: combine conditions with `and` / "
                      "`or`", allowed=True)
        stack = [(node, 1)]  # long operator chains nest too (and would exhaust recursion when evaluated)
        while stack:
            n, depth = stack.pop()
            if depth > _MAX_DEPTH:
                self.fail(f"the expression nests deeper than {_MAX_DEPTH} levels: simplify it", n.pos)
            stack += [(c, depth + 1) for c in n.args]
        return node

    def logic(self, op) -> Node:
        sub = (lambda: self.logic("and")) if op == "or" else self.negation
        pos, parts = self.toks[self.i].pos, [sub()]
        while self.at("kw", op):
            self.take()
            parts.append(sub())
        flat = tuple(a for p in parts for a in (p.args if p.kind == op else (p,)))
        return parts[0] if len(parts) == 1 else Node(op, pos, args=flat)

    def nested(self, fn) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.fail(f"the expression nests deeper than {_MAX_DEPTH} levels: simplify it")
        node = fn()
        self.depth -= 1
        return node

    def negation(self) -> Node:
        if self.at("kw", "not"):
            return Node("not", self.take().pos, args=(self.nested(self.negation),))
        start, first = self.toks[self.i].pos, self.arith()
        if self.at("kw", "in") or (self.at("kw", "not") and self.toks[self.i + 1].value == "in"):
            pos, negated = self.toks[self.i].pos, self.take().value == "not"
            self.i += negated
            return Node("in", pos, negated, (first,), self.literal_list())
        if self.at("kw", "not"):
            self.fail("`not` here must be followed by `in` (as in `site not in ['Bulbar']`); to negate a "
                      "condition put `not` before it")
        ops, operands = [], [first]
        while self.at("op", "==", "!=", "<", "<=", ">", ">="):
            t = self.take()
            ops.append((t.value, t.pos))
            operands.append(self.arith())
        return Node("cmp", start, args=tuple(operands), ops=tuple(ops)) if ops else first

    def literal_list(self) -> tuple:
        if not self.at("op", "["):
            self.fail("`in` needs a list in square brackets, e.g. site_of_onset in ['Bulbar', 'Limb']")
        open_pos, values = self.take().pos, []
        while not self.at("op", "]"):
            neg = self.take() if self.at("op", "-") else None
            if not (self.at("num") or (not neg and (self.at("str") or self.at("kw", "true", "false")))):
                self.fail("the list is not closed: add `]`" if self.at("end") else "list items must be literals "
                          "(numbers, 'text', true/false), not column names or expressions")
            t = self.take()
            values.append(t.value == "true" if t.kind == "kw" else -t.value if neg else t.value)
            if not self.at("op", "]") and not self.take().value == ",":
                self.fail("expected `,` or `]` in the list", self.toks[self.i - 1].pos)
        kinds = {_lit_kind(v) for v in values}
        if len(kinds) != 1:
            self.fail("the list mixes " + " and ".join(sorted(_KIND[k] for k in kinds)) + ": use one type"
                      if kinds else "the list is empty: give at least one value", open_pos)
        self.take()
        return tuple(values)

    def arith(self, level=0) -> Node:
        sub = (lambda: self.arith(1)) if level == 0 else self.unary
        left = sub()
        while self.at("op", *(("+", "-") if level == 0 else ("*", "/"))):
            t = self.take()
            left = Node("arith", t.pos, t.value, (left, sub()))
        return left

    def unary(self) -> Node:
        t = self.toks[self.i]
        if self.at("op", "-"):
            self.take()
            operand = self.nested(self.unary)
            num = operand.kind == "lit" and _lit_kind(operand.value) == "num"
            return Node("lit", t.pos, -operand.value) if num else Node("neg", t.pos, args=(operand,))
        if t.kind in ("num", "str") or self.at("kw", "true", "false"):
            node = Node("lit", t.pos, t.value == "true" if t.kind == "kw" else t.value)
        elif t.kind == "name":
            node = Node("col", t.pos, t.value)
        elif self.at("op", "("):
            self.take()
            node = self.nested(lambda: self.logic("or"))
            if not self.at("op", ")"):
                self.fail(f"expected `)` to close the `(` at column {t.pos + 1}, found {self.shown()}")
        elif self.at("op", "["):
            self.fail("a list [...] may only follow `in` or `not in`", allowed=True)
        else:
            self.fail(f"expected a value (a column, number, 'text', true/false or `(`), found {self.shown()}",
                      allowed=True)
        self.take()
        if self.at("op", "("):
            self.fail("function calls are not allowed", allowed=True)
        if self.at("op", "["):
            self.fail("indexing (`x[...]`) is not allowed; `[` only opens a list after `in`", allowed=True)
        return node


def first_pos(node: Node) -> int:
    return min([node.pos] + [first_pos(c) for c in node.args])


def _walk(node: Node):
    yield node
    for c in node.args:
        yield from _walk(c)


# --------------------------------------------------------------------------------------------- rendering
def _literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" if isinstance(v, str) else repr(v)


def _render(node: Node, need: int = 0) -> str:
    """Normalized text with the fewest parentheses; ``need`` is the precedence the context requires."""
    k, a = node.kind, node.args
    p = {"or": 1, "and": 2, "not": 3, "cmp": 4, "in": 4, "neg": 7}.get(
        k, (5 if node.value in "+-" else 6) if k == "arith" else 8)
    if k == "lit":
        s = _literal(node.value)
    elif k == "col":
        plain = re.fullmatch(r"[A-Za-z_]\w*", node.value, re.ASCII) and node.value.lower() not in _KEYWORDS \
            and not keyword.iskeyword(node.value) and not node.value.startswith("__")
        s = node.value if plain else f"`{node.value}`"
    elif k in ("neg", "not"):
        s = ("-" if k == "neg" else "not ") + _render(a[0], p)
    elif k == "arith":
        s = f"{_render(a[0], p)} {node.value} {_render(a[1], p + 1)}"
    elif k == "cmp":
        s = _render(a[0], 5) + "".join(f" {op} {_render(o, 5)}" for (op, _), o in zip(node.ops, a[1:]))
    elif k == "in":
        s = f"{_render(a[0], 5)} {'not in' if node.value else 'in'} [{', '.join(map(_literal, node.ops))}]"
    else:
        s = f" {k} ".join(_render(o, p + 1) for o in a)
    return f"({s})" if p < need else s


# --------------------------------------------------------------------------------------------- evaluation
def _column(series: pd.Series) -> tuple[str | None, np.ndarray, np.ndarray]:
    """(kind, data, known) of a column; kind None for values criteria cannot compare (mixed, dates ...)."""
    dtype, known = series.dtype, series.notna().to_numpy(dtype=bool)
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
        series = series.astype(float if pd.api.types.is_numeric_dtype(dtype) else object)
    if pd.api.types.is_bool_dtype(dtype):
        kind = "bool"
    elif pd.api.types.is_numeric_dtype(dtype):
        kind = "num"
    else:
        kind = {"string": "str", "empty": "str", "integer": "num", "floating": "num", "mixed-integer-float": "num",
                "boolean": "bool"}.get(pd.api.types.infer_dtype(series, skipna=True))
    if kind == "num":
        data = series.to_numpy(dtype=float, na_value=np.nan)
        return kind, data, known & ~np.isnan(data)
    data = series.to_numpy(dtype=object, na_value=None).copy()
    if kind == "bool":
        data[~known] = False
        data = data.astype(bool)
    return kind, data, known


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge, "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _eval(text: str, node: Node, column, n: int) -> tuple[str | None, np.ndarray, np.ndarray]:
    """(kind, data, known) of ``node`` over ``n`` rows; ``column(name)`` gives a column's triple. Kind None is
    a column of unknown type (the static check at parse time, ``n = 0``). Type errors raise here. Conditions
    use Kleene logic: ``data`` is True only where ``known``."""
    k, a = node.kind, node.args
    if k == "lit":
        v = node.value
        kind = _lit_kind(v)
        return kind, np.full(n, v, dtype={"bool": bool, "str": object, "num": float}[kind]), np.ones(n, bool)
    if k == "col":
        return column(node.value)
    parts = [_eval(text, c, column, n) for c in a]
    r = lambda i: f"`{_render(a[i])}`"  # noqa: E731
    if k in ("neg", "arith", "not", "and", "or"):
        want, what = ("num", "unary `-`" if k == "neg" else f"arithmetic `{node.value}`") \
            if k in ("neg", "arith") else ("bool", f"`{k}`")
        for i, (got, _, _) in enumerate(parts):
            if got not in (None, want):
                hint = f"; did you mean {r(i)[:-1]} > 0`?" if got == "num" else ""
                _fail(text, first_pos(a[i]), f"{what} needs {_KIND[want]}, but {r(i)} is {_KIND[got]}{hint}")
    if k == "neg":
        return "num", -parts[0][1], parts[0][2]
    if k == "arith":
        (_, x, kx), (_, y, ky) = parts
        with np.errstate(all="ignore"):
            d = _OPS[node.value](x, y)
        d = np.where(y == 0, np.nan, d) if node.value == "/" else d
        return "num", d, kx & ky & ~np.isnan(d)
    if k == "not":
        return "bool", ~parts[0][1].astype(bool, copy=False) & parts[0][2], parts[0][2]
    if k == "in":
        (got, d, known), want = parts[0], _lit_kind(node.ops[0])
        if got not in (None, want):
            _fail(text, node.pos, f"{r(0)} is {_KIND[got]} but the list holds {_KIND[want]}")
        hit = pd.Series(d, dtype=object).isin(list(node.ops)).to_numpy(dtype=bool)
        return "bool", (~hit if node.value else hit) & known, known
    if k == "cmp":  # a chain is the Kleene `and` of its links
        links = []
        for i, ((kx, x, known_x), (ky, y, known_y), (op, pos)) in enumerate(zip(parts, parts[1:], node.ops)):
            if kx is not None and ky is not None and kx != ky:
                fix = " (quote text values: sex == 'Female')" if "str" in (kx, ky) else ""
                _fail(text, pos, f"cannot compare {r(i)} ({_KIND[kx]}) with {r(i + 1)} ({_KIND[ky]}){fix}")
            if op not in ("==", "!=") and ("str" in (kx, ky) or "bool" in (kx, ky)):
                _fail(text, pos, f"`{op}` cannot order text or true/false values: use == != or in [...], "
                      "e.g. grade in ['I', 'II']")
            with np.errstate(invalid="ignore"):
                links.append(("bool", np.asarray(_OPS[op](x, y), dtype=bool), known_x & known_y))
        parts = links
    true = [d.astype(bool, copy=False) & known for _, d, known in parts]  # (a column of unknown type: static)
    false = [~d.astype(bool, copy=False) & known for _, d, known in parts]
    any_, all_ = np.logical_or.reduce, np.logical_and.reduce
    is_true, is_false = (any_(true), all_(false)) if k == "or" else (all_(true), any_(false))
    return "bool", is_true, is_true | is_false


# --------------------------------------------------------------------------------------------- public
@dataclass(frozen=True)
class Criteria:
    """Parsed eligibility criteria: the source ``text`` and its AST; ``str()`` is the normalized text (of
    ``tree``, which for a clause is a part of ``text``)."""

    text: str
    tree: Node = field(repr=False, compare=False)

    def __str__(self) -> str:
        return _render(self.tree)

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names referenced, in order of first appearance."""
        return tuple(dict.fromkeys(n.value for n in _walk(self.tree) if n.kind == "col"))

    def clauses(self) -> tuple["Criteria", ...]:
        """The top-level ``and`` clauses (the whole expression when it is not an ``and``)."""
        return tuple(Criteria(self.text, p) for p in self.tree.args) if self.tree.kind == "and" else (self,)

    def check(self, columns: Iterable[str] | pd.DataFrame) -> "Criteria":
        """Raise :class:`CriteriaError` for unknown column names (listing the closest ones); given a frame,
        also check the types. Returns ``self``."""
        available = [str(c) for c in columns]
        problems = [(f"unknown column `{n.value}`; {_suggest(n.value, available)}", n.pos)
                    for n in _walk(self.tree) if n.kind == "col" and n.value not in available]
        if problems:
            raise CriteriaError(self.text, sorted(problems, key=lambda p: p[1]))
        if isinstance(columns, pd.DataFrame):
            self._run(columns.iloc[:0])
        return self

    def _run(self, frame: pd.DataFrame) -> np.ndarray:
        cache = {}

        def column(name):
            if name not in cache:
                cache[name] = _column(frame[name])
                if cache[name][0] is None:
                    pos = next(n.pos for n in _walk(self.tree) if n.kind == "col" and n.value == name)
                    _fail(self.text, pos, f"column `{name}` ({frame[name].dtype}) mixes types or holds values "
                          "that are not text, numbers or true/false: criteria cannot compare it")
            return cache[name]

        kind, data, known = _eval(self.text, self.tree, column, len(frame))
        if kind != "bool":
            _fail(self.text, first_pos(self.tree), f"the criteria must be a condition (true/false per patient), "
                  f"but `{self}` is {_KIND[kind]}: compare it, e.g. `{self} > 0`")
        return np.asarray(data & known, dtype=bool)

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        """Eligibility per row (numpy bool); unknown (missing values) counts as not eligible."""
        self.check(frame.columns)
        return self._run(frame)

    def pass_rates(self, frame: pd.DataFrame) -> list[tuple[str, float]]:
        """Each top-level ``and`` clause with the fraction of rows passing it, most restrictive first."""
        return sorted(((str(c), float(np.mean(c.evaluate(frame))) if len(frame) else float("nan"))
                       for c in self.clauses()), key=lambda r: r[1])

    def value_hints(self, frame: pd.DataFrame) -> list[str]:
        """Text values compared with a text column that never occur in ``frame`` (likely typos)."""
        hints = []
        for node in _walk(self.tree):
            pairs = [(node.args[0], v) for v in node.ops] if node.kind == "in" else \
                [(c, lit.value) for x, y in zip(node.args, node.args[1:]) for c, lit in ((x, y), (y, x))
                 if lit.kind == "lit"] if node.kind == "cmp" else []
            for col, value in pairs:
                if col.kind == "col" and isinstance(value, str) and col.value in frame:
                    seen = [str(v) for v in pd.unique(frame[col.value].dropna())]
                    if value not in seen:
                        hints.append(f"{value!r} never occurs in `{col.value}`; {_suggest(value, seen, 'values')}")
        return hints

    def describe(self, frame: pd.DataFrame | None = None) -> str:
        """Plain-language summary for the report; with a frame, each clause's pass rate and the overall one."""
        clauses, overall = self.clauses(), None if frame is None else np.mean(self.evaluate(frame))
        rates = dict(self.pass_rates(frame)) if frame is not None else {}
        lines = ["Eligible when " + ("all of these hold:" if len(clauses) > 1 else "this holds:")]
        lines += [f"  - {c}" + (f"  ({rates[str(c)]:.1%} pass)" if str(c) in rates else "") for c in clauses]
        if frame is not None:
            lines.append(f"Overall {overall:.1%} of {len(frame):,} rows are eligible.")
        return "\n".join(lines + ["A condition on a missing value is unknown, and unknown is not eligible (SQL's "
                                  "three-valued logic)."])


def _suggest(name: str, available: list[str], what: str = "columns") -> str:
    lower = {a.lower(): a for a in available}
    close = list(dict.fromkeys(([lower[name.lower()]] if name.lower() in lower else [])
                               + difflib.get_close_matches(name, available, n=3, cutoff=0.6)))
    if close:
        return "did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    shown = ", ".join(available[:25]) + (" ..." if len(available) > 25 else "")
    return f"available {what}: {shown}" + (" (write names with spaces in backticks)" if what == "columns" else "")


def parse_criteria(text: str) -> Criteria:
    """Parse eligibility criteria; raises :class:`CriteriaError` with the position on any syntax error."""
    if isinstance(text, Criteria):
        return text
    if not isinstance(text, str) or len(text) > 20_000:
        raise InvalidScenarioError("eligibility criteria must be text of at most 20,000 characters, got "
                                   + (f"{len(text):,} characters" if isinstance(text, str) else type(text).__name__),
                                   source="eligibility criteria")
    criteria = Criteria(text, _Parser(text).parse())
    kind = _eval(text, criteria.tree, lambda name: (None, np.empty(0), np.empty(0, bool)), 0)[0]
    if kind not in (None, "bool"):
        _fail(text, first_pos(criteria.tree), f"the criteria must be a condition (true/false per patient), but "
              f"`{criteria}` is {_KIND[kind]}: compare it, e.g. `age >= 18`")
    return criteria
