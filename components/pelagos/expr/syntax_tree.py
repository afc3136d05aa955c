"""The syntax tree of a filter expression, as the parser produces it.

Invariants:
- nodes are frozen (hashable, shareable between threads and cached plans);
- every node carries `pos`, the 0-based offset in the expression where its
  text starts; operator nodes also carry `op_pos`, where the operator is;
- nothing here knows about schemas or types: names are not resolved and
  literals are Python values. The planner (`pelagos.expr.planner`) gives
  the tree meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A literal scalar as written: int, float, str or bool.
Scalar = int | float | str | bool


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar
    pos: int


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Template:
    """`{name}`: a value taken from the caller's parameters."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Subscript:
    key: str | int
    pos: int


@dataclass(frozen=True, slots=True)
class Path:
    """A name, optionally subscripted: `price`, `meta["a"][0]`, `arr[2]`."""

    name: str
    subscripts: tuple[Subscript, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Unary:
    """`-x` or `+x`."""

    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Arithmetic:
    """`left op right` with op one of + - * / % **."""

    op: str
    left: Node
    right: Node
    pos: int
    op_pos: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """`a op b` or a chain `a op b op c` (ranges); ops[i] sits between operands[i] and operands[i+1]."""

    operands: tuple[Node, ...]
    ops: tuple[str, ...]
    op_positions: tuple[int, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class In:
    value: Node
    container: Node
    negated: bool
    pos: int
    op_pos: int


@dataclass(frozen=True, slots=True)
class Like:
    value: Node
    pattern: Node
    pos: int
    op_pos: int


@dataclass(frozen=True, slots=True)
class IsNull:
    value: Node
    negated: bool
    pos: int
    op_pos: int


@dataclass(frozen=True, slots=True)
class Exists:
    value: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node
    pos: int
    op_pos: int


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node
    pos: int
    op_pos: int


Node = (
    Literal
    | ListLiteral
    | Template
    | Path
    | Call
    | Unary
    | Arithmetic
    | Comparison
    | In
    | Like
    | IsNull
    | Exists
    | Not
    | And
    | Or
)
