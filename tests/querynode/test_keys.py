"""Hashable keys of request parameters (interfaces/keys.py)."""

from __future__ import annotations

from pelagos.interfaces.keys import frozen


def test_equal_params_equal_keys_whatever_the_order() -> None:
    assert frozen({"ef": 64, "x": [1, 2]}) == frozen({"x": [1, 2], "ef": 64})
    assert hash(frozen({"a": {"b": [1, {"c": 2}]}})) == hash(frozen({"a": {"b": [1, {"c": 2}]}}))


def test_types_and_shapes_are_part_of_the_key() -> None:
    keys = [frozen(v) for v in (1, 1.0, True, "1", [1], (1,), {"1": 1}, None)]
    assert len(set(keys[:5] + keys[6:])) == 7
    assert frozen([1]) == frozen((1,))  # JSON has one sequence type


def test_unhashable_values_are_keyed_by_repr() -> None:
    assert frozen({"s": {1, 2}}) == frozen({"s": {1, 2}})
