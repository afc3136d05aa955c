"""An IndexSpec from the string parameters an index was created with (as stored in the catalog)."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from pelagos.index.spec import IndexSpec

META_KEYS = ("index_type", "metric_type")


def spec_from_params(params: Mapping[str, str], dim: int, is_binary: bool) -> IndexSpec:
    """Parsed once per distinct parameters (searches ask for it on every request)."""
    return _parse(tuple(sorted(params.items())), dim, is_binary)


@functools.lru_cache(maxsize=1024)
def _parse(items: tuple[tuple[str, str], ...], dim: int, is_binary: bool) -> IndexSpec:
    params = dict(items)
    rest = {k: v for k, v in params.items() if k not in META_KEYS}
    return IndexSpec.parse(params.get("index_type"), params.get("metric_type"), rest, dim, is_binary)
