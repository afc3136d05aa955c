"""Hashable keys for request parameters, so prepared work can be cached per request shape."""

from __future__ import annotations

from typing import Any


def frozen(value: Any) -> Any:
    """A hashable stand-in for JSON-like values (dicts, lists, scalars); equal values, equal keys.

    The type is part of a scalar's key (True, 1 and 1.0 differ); what cannot be hashed is keyed by
    its repr.
    """
    if isinstance(value, dict):
        if not value:  # most requests: no filter parameters
            return ()
        if len(value) == 1:  # most search params: {"ef": 64}, {"nprobe": 16}
            ((k, v),) = value.items()
            return ((str(k), frozen(v)),)
        return tuple(sorted((str(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("[", *(frozen(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return (type(value).__name__, value)
