"""The grammar: literals, keywords, precedence, and syntax errors with their positions."""

from __future__ import annotations

import pytest

from pelagos.errors import ExpressionError
from pelagos.expr import syntax_tree as st
from pelagos.expr.parser import parse_expression, unescape_string


def literal(text: str) -> object:
    node = parse_expression(f"x == {text}")
    assert isinstance(node, st.Comparison)
    lit = node.operands[1]
    assert isinstance(lit, st.Literal)
    return lit.value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("0", 0),
        ("0x1F", 31),
        ("0b101", 5),
        ("0o17", 15),
        ("007", 7),
        ("1.5", 1.5),
        (".5", 0.5),
        ("2.", 2.0),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        ('"abc"', "abc"),
        ("'abc'", "abc"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        (r'"a\"b"', 'a"b'),
        (r"'a\'b'", "a'b"),
        (r'"tab\there"', "tab\there"),
        (r'"\u00e9"', "é"),
        (r'"back\\slash"', "back\\slash"),
        (r'"50\%"', "50\\%"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
    ],
)
def test_literals(text: str, value: object) -> None:
    got = literal(text)
    assert got == value and type(got) is type(value)


def test_unknown_escapes_stay_for_like() -> None:
    assert unescape_string(r'"a\_b\%"') == r"a\_b\%"


def test_list_literal_with_trailing_comma_and_nesting() -> None:
    node = parse_expression('x in [1, "a", [2, 3],]')
    assert isinstance(node, st.In) and isinstance(node.container, st.ListLiteral)
    assert len(node.container.items) == 3
    assert isinstance(node.container.items[2], st.ListLiteral)


def test_empty_list() -> None:
    node = parse_expression("x in []")
    assert isinstance(node, st.In) and node.container == st.ListLiteral((), 5)


def test_template() -> None:
    node = parse_expression("x > {low}")
    assert isinstance(node, st.Comparison)
    assert node.operands[1] == st.Template("low", 4)


def test_and_binds_tighter_than_or() -> None:
    node = parse_expression("a == 1 or b == 2 and c == 3")
    assert isinstance(node, st.Or)
    assert isinstance(node.right, st.And)


def test_not_applies_to_the_whole_predicate() -> None:
    node = parse_expression("not a == 1 and b == 2")
    assert isinstance(node, st.And)
    assert isinstance(node.left, st.Not) and isinstance(node.left.operand, st.Comparison)


def test_arithmetic_precedence_and_power_associativity() -> None:
    node = parse_expression("a + b * c ** d ** e > 0")
    assert isinstance(node, st.Comparison)
    add = node.operands[0]
    assert isinstance(add, st.Arithmetic) and add.op == "+"
    mul = add.right
    assert isinstance(mul, st.Arithmetic) and mul.op == "*"
    pow1 = mul.right
    assert isinstance(pow1, st.Arithmetic) and pow1.op == "**"
    assert isinstance(pow1.right, st.Arithmetic) and pow1.right.op == "**"  # right-associative


def test_unary_minus_binds_looser_than_power() -> None:
    node = parse_expression("-a ** 2 > 0")
    assert isinstance(node, st.Comparison)
    neg = node.operands[0]
    assert isinstance(neg, st.Unary) and isinstance(neg.operand, st.Arithmetic)


@pytest.mark.parametrize(
    "text",
    [
        "a == 1 and b == 2",
        "a == 1 AND b == 2",
        "a == 1 And b == 2",
        "a == 1 && b == 2",
    ],
)
def test_and_spellings(text: str) -> None:
    assert isinstance(parse_expression(text), st.And)


@pytest.mark.parametrize("text", ["a == 1 or b == 2", "a == 1 OR b == 2", "a == 1 || b == 2"])
def test_or_spellings(text: str) -> None:
    assert isinstance(parse_expression(text), st.Or)


@pytest.mark.parametrize("text", ["not a", "NOT a", "!a", "! a"])
def test_not_spellings(text: str) -> None:
    assert isinstance(parse_expression(text), st.Not)


@pytest.mark.parametrize("text", ["x not in [1]", "x NOT IN [1]", "x Not In [1]"])
def test_not_in_spellings(text: str) -> None:
    node = parse_expression(text)
    assert isinstance(node, st.In) and node.negated


@pytest.mark.parametrize(
    ("text", "negated"),
    [("x is null", False), ("x IS NULL", False), ("x is not null", True), ("x IS NOT NULL", True)],
)
def test_is_null_spellings(text: str, negated: bool) -> None:
    node = parse_expression(text)
    assert isinstance(node, st.IsNull) and node.negated is negated


def test_keywords_are_not_prefixes_of_names() -> None:
    node = parse_expression("android == 1 or order_id in [1] or notes like 'a%' or island is null")
    assert isinstance(node, st.Or)


def test_not_equal_is_not_negation() -> None:
    node = parse_expression("a != 1")
    assert isinstance(node, st.Comparison) and node.ops == ("!=",)


def test_chained_comparison_keeps_all_operators() -> None:
    node = parse_expression("1 < x <= 5")
    assert isinstance(node, st.Comparison)
    assert node.ops == ("<", "<=") and node.op_positions == (2, 6)


def test_json_path_and_dynamic_meta() -> None:
    node = parse_expression('$meta["a"][0] > 1')
    assert isinstance(node, st.Comparison)
    path = node.operands[0]
    assert isinstance(path, st.Path)
    assert path.name == "$meta"
    assert [s.key for s in path.subscripts] == ["a", 0]
    assert [s.pos for s in path.subscripts] == [5, 10]


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("a >", 3, "unexpected end"),
        ("a > 1 1", 6, "unexpected '1'"),
        ("(a > 1", 6, "expected )"),
        ('a == "abc', 5, "unterminated string"),
        ("a @ 1", 2, "unexpected character '@'"),
        ("a == 1 and", 10, "unexpected end"),
        ("a in [1, 2", 10, "unexpected end"),
        ("meta[1.5] > 1", 5, "unexpected '1.5'"),
        ("a = 1", 2, "unexpected character '='"),
        ("and a == 1", 0, "unexpected 'and'"),
        ("f(1,)", 4, "unexpected ')'"),
    ],
)
def test_syntax_errors_have_positions(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.position == position
    assert fragment in str(info.value)
    assert info.value.expression == text


def test_parse_is_memoised() -> None:
    assert parse_expression("a > 1 and b < 2") is parse_expression("a > 1 and b < 2")
