"""The typed, schema-resolved tree of a filter: what the planner produces.

Two families of nodes:
- values (`Const`, `ScalarColumn`, `JsonValue`, `ArrayColumn`, `ArrayElement`,
  `Length`, `Arith`, `Negate`) evaluate to one value per row of a `Kind`;
- predicates (`Compare`, `InSet`, `Like`, `IsNull`, `Exists`, `Contains`,
  `Truth`, `Not`, `And`, `Or`, `Constant`) evaluate to a three-valued
  truth per row (true, false, unknown); a row matches when true.

Invariants:
- nodes are frozen and hold no data: one plan is shared by every caller;
- every value node is well-typed: the planner has rejected anything that
  cannot be evaluated (so evaluation never raises on type grounds);
- sub-trees made only of constants are folded away by the planner;
- `JsonValue` has a statically unknown kind (`Kind.JSON`): each row's
  value is whatever its JSON holds, and an operation that needs a kind
  sees a row of another kind (or a missing key) as "no value", which
  makes comparisons false rather than unknown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pelagos.schema.types import DataType


class Kind(enum.Enum):
    INT = "integer"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    JSON = "JSON value"
    ARRAY = "array"

    @property
    def is_numeric(self) -> bool:
        return self in (Kind.INT, Kind.FLOAT)


def kind_of(dtype: DataType) -> Kind:
    """The kind of a scalar data type's values."""
    if dtype.is_integer:
        return Kind.INT
    if dtype.is_float:
        return Kind.FLOAT
    if dtype == DataType.VARCHAR:
        return Kind.STRING
    if dtype == DataType.BOOL:
        return Kind.BOOL
    if dtype == DataType.JSON:
        return Kind.JSON
    if dtype == DataType.ARRAY:
        return Kind.ARRAY
    raise ValueError(f"{dtype!r} has no filterable kind")


#: A constant: scalar, None (the SQL null a constant division by zero gives),
#: or a tuple (a list constant, possibly nested).
ConstValue = int | float | str | bool | None | tuple["ConstValue", ...]


# --- values --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: int | float | str | bool | None
    kind: Kind


@dataclass(frozen=True, slots=True)
class ScalarColumn:
    name: str
    kind: Kind
    dtype: DataType
    nullable: bool


@dataclass(frozen=True, slots=True)
class JsonValue:
    """The value at `path` inside JSON column `column` (the whole document when the path is empty).

    `nullable`: a null cell is SQL-null (a nullable JSON field); otherwise a
    null cell reads as an empty document (the dynamic field `$meta`).
    """

    column: str
    path: tuple[str | int, ...]
    nullable: bool

    @property
    def kind(self) -> Kind:
        return Kind.JSON


@dataclass(frozen=True, slots=True)
class ArrayColumn:
    name: str
    element: Kind
    nullable: bool

    @property
    def kind(self) -> Kind:
        return Kind.ARRAY


@dataclass(frozen=True, slots=True)
class ArrayElement:
    """`arr[index]`; no value when the array is shorter."""

    array: ArrayColumn
    index: int

    @property
    def kind(self) -> Kind:
        return self.array.element


@dataclass(frozen=True, slots=True)
class Length:
    """`array_length(container)` of an ARRAY field or a JSON array."""

    container: ArrayColumn | JsonValue

    @property
    def kind(self) -> Kind:
        return Kind.INT


@dataclass(frozen=True, slots=True)
class Arith:
    """`left op right`; kind INT when both are INT (C-like truncating / and %), FLOAT otherwise."""

    op: str
    left: Value
    right: Value
    kind: Kind


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Value
    kind: Kind


Value = Const | ScalarColumn | JsonValue | ArrayColumn | ArrayElement | Length | Arith | Negate


# --- predicates --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compare:
    """`left op right` with op in == != < <= > >=; never both constants."""

    op: str
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class InSet:
    value: Value
    values: tuple[ConstValue, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Like:
    value: Value
    pattern: str


@dataclass(frozen=True, slots=True)
class IsNull:
    column: str
    negated: bool


@dataclass(frozen=True, slots=True)
class Exists:
    value: JsonValue


@dataclass(frozen=True, slots=True)
class Contains:
    """`mode` "one": contains `values[0]`; "all": every one of `values`; "any": at least one."""

    container: ArrayColumn | JsonValue
    values: tuple[ConstValue, ...]
    mode: str


@dataclass(frozen=True, slots=True)
class Truth:
    """A BOOL value (or JSON value) used as a condition: true only where it is `true`."""

    value: Value


@dataclass(frozen=True, slots=True)
class Not:
    operand: Predicate


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Constant:
    """True, False, or None (unknown: matches nothing, and neither does its negation)."""

    value: bool | None


Predicate = Compare | InSet | Like | IsNull | Exists | Contains | Truth | Not | And | Or | Constant

TRUE = Constant(True)
FALSE = Constant(False)
UNKNOWN = Constant(None)
