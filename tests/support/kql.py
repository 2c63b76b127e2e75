"""A tiny evaluator for the few Kusto (KQL) operators the alert rules in bicep/modules/alerts.bicep use:
`<table> | where <predicate> | where ...` with `and`, `or`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `has`,
`toint()`, `isnotempty()`, `isempty()`, `customDimensions["key"]`, string ("…" or '…') and integer literals.

Semantics from the Kusto reference (learn.microsoft.com/kusto/query): `has` matches a whole term,
case-insensitively ("String operators": a term is a run of ASCII alphanumeric characters; a needle that
begins or ends with another character may meet the term there); `==` on strings is case-sensitive;
`toint()` of text that is not an integer is null, and a comparison with null is false; `isnotempty()` is
false for null and "". Anything else raises, so a rule using more KQL than this needs the evaluator
extended on purpose.
"""
from __future__ import annotations

import re

TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<num>\d+)|(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\|)'
                   r'|(?P<name>[A-Za-z_][A-Za-z0-9_]*))')


def tokens(text: str) -> list[tuple[str, object]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"KQL the evaluator does not know at {text[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m[kind]
        out.append((kind, re.sub(r"\\(.)", r"\1", value[1:-1]) if kind == "str" else int(value) if kind == "num" else value))
    return out


def _alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def has(haystack, needle: str) -> bool:
    if haystack is None:
        return False
    hay, needle = str(haystack).lower(), needle.lower()
    start = hay.find(needle)
    while start >= 0:
        end = start + len(needle)
        left = not _alnum(needle[0]) or start == 0 or not _alnum(hay[start - 1])
        right = not _alnum(needle[-1]) or end == len(hay) or not _alnum(hay[end])
        if left and right:
            return True
        start = hay.find(needle, start + 1)
    return False


def toint(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


class _Parser:
    def __init__(self, toks):
        self.toks, self.i = toks, 0

    def peek(self, value=None):
        if self.i >= len(self.toks):
            return None
        tok = self.toks[self.i]
        return tok if value is None or tok[1] == value else None

    def take(self, value=None):
        tok = self.peek(value)
        if tok is None:
            raise ValueError(f"expected {value!r} at token {self.i} of {self.toks}")
        self.i += 1
        return tok

    # predicate := and ('or' and)* ; and := cmp ('and' cmp)* ; cmp := value (op value)?
    def _chain(self, word, operand, join):
        left = operand()
        while self.peek(word):
            self.take()
            a, b = left, operand()
            def left(r, a=a, b=b):
                return join(a(r), b(r))
        return left

    def predicate(self):
        return self._chain("or", self.conj, lambda x, y: x or y)

    def conj(self):
        return self._chain("and", self.comparison, lambda x, y: x and y)

    def comparison(self):
        left = self.value()
        tok = self.peek()
        ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
               "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
        if tok and tok[1] in ops:
            self.take()
            right, op = self.value(), ops[tok[1]]
            return lambda r: (lambda a, b: a is not None and b is not None and op(a, b))(left(r), right(r))
        if tok and tok[1] == "has":
            self.take()
            kind, needle = self.take()
            if kind != "str":
                raise ValueError("has takes a string literal")
            return lambda r: has(left(r), needle)
        return lambda r: bool(left(r))

    def value(self):
        kind, tok = self.take()
        if kind in ("str", "num"):
            return lambda r, v=tok: v
        if tok == "(":
            inner = self.predicate()
            self.take(")")
            return inner
        if kind == "name" and self.peek("("):
            self.take("(")
            arg = self.value()
            self.take(")")
            functions = {"toint": lambda v: toint(v), "isnotempty": lambda v: v not in (None, ""),
                         "isempty": lambda v: v in (None, "")}
            if tok not in functions:
                raise ValueError(f"function {tok} is not known to the evaluator")
            return lambda r, f=functions[tok]: f(arg(r))
        if kind == "name":
            if self.peek("["):
                self.take("[")
                _, key = self.take()
                self.take("]")
                return lambda r, c=tok, k=key: (r.get(c) or {}).get(k)
            return lambda r, c=tok: r.get(c)
        raise ValueError(f"unexpected {tok!r}")


def run(query: str, tables: dict[str, list[dict]]) -> list[dict]:
    """The rows of `query` over `tables` (table name -> rows)."""
    parser = _Parser(tokens(query))
    kind, table = parser.take()
    if kind != "name":
        raise ValueError("a query starts with a table")
    rows = list(tables.get(table, []))
    while parser.peek("|"):
        parser.take("|")
        operator = parser.take()[1]
        if operator != "where":
            raise ValueError(f"operator {operator} is not known to the evaluator")
        keep = parser.predicate()
        rows = [r for r in rows if keep(r)]
    if parser.peek() is not None:
        raise ValueError(f"unparsed KQL from token {parser.i}: {parser.toks[parser.i:]}")
    return rows
