"""Text -> syntax tree: the grammar of Pelagos filter expressions (Milvus's dialect).

Invariants:
- one LALR(1) parser with lark's basic lexer, built once at import; the tree
  is built by an inline transformer while parsing (no intermediate lark tree);
- keywords (`and or not in like is null exists`) are case-insensitive and
  reserved; `&& || !` are synonyms of `and or not`; booleans are
  `true/True/TRUE/false/False/FALSE`;
- precedence, loosest first: or, and, not, predicates (comparisons and
  ranges `1 < x <= 5`, in / not in, like, is [not] null, exists),
  + -, * / %, unary + -, ** (right-associative, binds tighter than unary
  minus on its left as in Python: `-a ** 2` is `-(a ** 2)`);
- every syntax error becomes `ExpressionError` with the 0-based offset of
  the offending character or token (the length of the text for a premature
  end);
- `parse_expression` is memoised (LRU) on the text: trees are immutable.
"""

from __future__ import annotations

import functools
import re
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from pelagos.errors import ExpressionError
from pelagos.expr import syntax_tree as st

_GRAMMAR = r"""
?start: expr

?expr: or_expr
?or_expr: and_expr
        | or_expr OR and_expr -> or_
?and_expr: not_expr
        | and_expr AND not_expr -> and_
?not_expr: pred
        | NOT not_expr -> not_
?pred: sum
     | sum (CMP sum)+ -> compare
     | sum IN sum -> in_
     | sum NOT IN sum -> not_in
     | sum LIKE sum -> like
     | sum IS NULL -> is_null
     | sum IS NOT NULL -> is_not_null
     | EXISTS atom -> exists
?sum: product
    | sum ADD product -> arith
?product: unary
    | product MUL unary -> arith
?unary: power
    | ADD unary -> unary
?power: atom
    | atom POW unary -> arith
?atom: INT -> int_lit
    | FLOAT -> float_lit
    | STRING -> str_lit
    | BOOL -> bool_lit
    | NAME subscript* -> path
    | NAME LPAR (expr ("," expr)*)? ")" -> call
    | LSQB (expr ("," expr)* ","?)? "]" -> list_
    | LBRACE NAME "}" -> template
    | "(" expr ")"
subscript: LSQB (STRING | INT) "]"

OR.2: /(or\b|\|\|)/i
AND.2: /(and\b|&&)/i
NOT.2: /(not\b|!(?!=))/i
IN.2: /in\b/i
LIKE.2: /like\b/i
IS.2: /is\b/i
NULL.2: /null\b/i
EXISTS.2: /exists\b/i
BOOL.2: /(true|True|TRUE|false|False|FALSE)\b/
FLOAT.3: /([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+/
INT: /0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|[0-9]+/
STRING: /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/s
NAME: /\$meta|[A-Za-z_][A-Za-z0-9_]*/
CMP: /==|!=|<=|>=|<|>/
ADD: /[+-]/
POW: "**"
MUL: /\*(?!\*)|\/|%/
LPAR: "("
LSQB: "["
LBRACE: "{"
%ignore /\s+/
"""

#: How terminals read in "expected ..." messages.
_TERMINAL_NAMES = {
    "OR": "or",
    "AND": "and",
    "NOT": "not",
    "IN": "in",
    "LIKE": "like",
    "IS": "is",
    "NULL": "null",
    "EXISTS": "exists",
    "BOOL": "a boolean",
    "FLOAT": "a number",
    "INT": "a number",
    "STRING": "a string",
    "NAME": "a field name",
    "CMP": "a comparison",
    "ADD": "+ or -",
    "POW": "**",
    "MUL": "* / %",
    "LPAR": "(",
    "RPAR": ")",
    "LSQB": "[",
    "RSQB": "]",
    "LBRACE": "{",
    "RBRACE": "}",
    "COMMA": ",",
    "$END": "the end",
}

_SIMPLE_ESCAPES = {
    "\\": "\\",
    '"': '"',
    "'": "'",
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "/": "/",
}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)


def unescape_string(quoted: str) -> str:
    """The value of a quoted literal: JSON-style escapes are decoded; any other
    backslash pair (e.g. `\\%` or `\\_` in a like pattern) is kept as written."""

    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        if esc.startswith("u") and len(esc) == 5:
            return chr(int(esc[1:], 16))
        return m.group(0)

    return _ESCAPE.sub(one, quoted[1:-1])


def _int_value(text: str) -> int:
    if text[:2].lower() in ("0x", "0b", "0o"):
        return int(text, 0)
    return int(text, 10)


def _nodes(children: list[Any]) -> list[Any]:
    return [c for c in children if not isinstance(c, Token)]


class _Build(Transformer[Token, st.Node]):
    """Builds `syntax_tree` nodes while lark parses (inline transformer)."""

    def int_lit(self, c: list[Token]) -> st.Literal:
        return st.Literal(_int_value(str(c[0])), c[0].start_pos or 0)

    def float_lit(self, c: list[Token]) -> st.Literal:
        return st.Literal(float(str(c[0])), c[0].start_pos or 0)

    def str_lit(self, c: list[Token]) -> st.Literal:
        return st.Literal(unescape_string(str(c[0])), c[0].start_pos or 0)

    def bool_lit(self, c: list[Token]) -> st.Literal:
        return st.Literal(str(c[0]).lower() == "true", c[0].start_pos or 0)

    def subscript(self, c: list[Token]) -> st.Subscript:
        bracket, key = c
        value: str | int = unescape_string(str(key)) if key.type == "STRING" else _int_value(str(key))
        return st.Subscript(value, bracket.start_pos or 0)

    def path(self, c: list[Any]) -> st.Path:
        name: Token = c[0]
        return st.Path(str(name), tuple(c[1:]), name.start_pos or 0)

    def call(self, c: list[Any]) -> st.Call:
        name: Token = c[0]
        return st.Call(str(name), tuple(_nodes(c[2:])), name.start_pos or 0)

    def list_(self, c: list[Any]) -> st.ListLiteral:
        return st.ListLiteral(tuple(_nodes(c[1:])), c[0].start_pos or 0)

    def template(self, c: list[Token]) -> st.Template:
        return st.Template(str(c[1]), c[0].start_pos or 0)

    def unary(self, c: list[Any]) -> st.Unary:
        op: Token = c[0]
        return st.Unary(str(op), c[1], op.start_pos or 0)

    def arith(self, c: list[Any]) -> st.Arithmetic:
        left, op, right = c
        return st.Arithmetic(str(op), left, right, left.pos, op.start_pos or 0)

    def compare(self, c: list[Any]) -> st.Comparison:
        operands = tuple(c[0::2])
        ops: list[Token] = c[1::2]
        return st.Comparison(
            operands, tuple(str(o) for o in ops), tuple(o.start_pos or 0 for o in ops), operands[0].pos
        )

    def in_(self, c: list[Any]) -> st.In:
        return st.In(c[0], c[2], False, c[0].pos, c[1].start_pos or 0)

    def not_in(self, c: list[Any]) -> st.In:
        return st.In(c[0], c[3], True, c[0].pos, c[1].start_pos or 0)

    def like(self, c: list[Any]) -> st.Like:
        return st.Like(c[0], c[2], c[0].pos, c[1].start_pos or 0)

    def is_null(self, c: list[Any]) -> st.IsNull:
        return st.IsNull(c[0], False, c[0].pos, c[1].start_pos or 0)

    def is_not_null(self, c: list[Any]) -> st.IsNull:
        return st.IsNull(c[0], True, c[0].pos, c[1].start_pos or 0)

    def exists(self, c: list[Any]) -> st.Exists:
        return st.Exists(c[1], c[0].start_pos or 0)

    def not_(self, c: list[Any]) -> st.Not:
        return st.Not(c[1], c[0].start_pos or 0)

    def and_(self, c: list[Any]) -> st.And:
        return st.And(c[0], c[2], c[0].pos, c[1].start_pos or 0)

    def or_(self, c: list[Any]) -> st.Or:
        return st.Or(c[0], c[2], c[0].pos, c[1].start_pos or 0)


_PARSER = Lark(
    _GRAMMAR,
    parser="lalr",
    lexer="basic",
    maybe_placeholders=False,
    transformer=_Build(),
)


def _expected(names: set[str] | frozenset[str]) -> str:
    readable = sorted({_TERMINAL_NAMES.get(n, n) for n in names})
    return ", ".join(readable)


def _syntax_error(err: UnexpectedInput, text: str) -> ExpressionError:
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            msg = f"unexpected end of expression; expected {_expected(err.expected)}"
            return ExpressionError(msg, len(text), text)
        pos = tok.start_pos if tok.start_pos is not None else 0
        msg = f"unexpected {str(tok)!r}; expected {_expected(err.expected)}"
        return ExpressionError(msg, pos, text)
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream if err.pos_in_stream is not None else 0
        ch = text[pos] if pos < len(text) else ""
        if ch in "\"'":
            return ExpressionError("unterminated string literal", pos, text)
        return ExpressionError(f"unexpected character {ch!r}", pos, text)
    return ExpressionError("malformed expression", getattr(err, "pos_in_stream", None), text)


@functools.lru_cache(maxsize=2048)
def parse_expression(text: str) -> st.Node:
    """The syntax tree of `text`; raises `ExpressionError` with the position on malformed input."""
    try:
        tree = cast(st.Node, _PARSER.parse(text))
    except UnexpectedInput as err:
        raise _syntax_error(err, text) from None
    return tree
