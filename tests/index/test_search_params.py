"""SearchParams.parse: what applies, what is tolerated, what is refused."""

from __future__ import annotations

import pytest

from pelagos.errors import IndexParamError
from pelagos.index import IndexSpec, SearchParams

HNSW = IndexSpec.parse("HNSW", "L2", {"M": 16, "efConstruction": 64}, 8, False)
IVF = IndexSpec.parse("IVF_FLAT", "IP", {"nlist": 100}, 8, False)
FLAT = IndexSpec.parse("FLAT", "COSINE", {}, 8, False)
BIN_IVF = IndexSpec.parse("BIN_IVF_FLAT", "JACCARD", {"nlist": 16}, 64, True)


def test_applicable_keys_flat_and_nested() -> None:
    assert SearchParams.parse({"ef": "50"}, HNSW, 10).ef == 50
    assert SearchParams.parse({"params": {"ef": 50}}, HNSW, 10).ef == 50
    assert SearchParams.parse({"params": '{"nprobe": 16}', "metric_type": "ip"}, IVF, 10).nprobe == 16
    assert SearchParams.parse({"nprobe": 16}, BIN_IVF, 10).nprobe == 16
    p = SearchParams.parse({"radius": "0.5", "range_filter": 0.9}, FLAT, 10)
    assert (p.radius, p.range_filter) == (0.5, 0.9)


def test_defaults() -> None:
    p = SearchParams.parse(None, HNSW, 10)
    assert p.ef is None and p.ef_for(10) == 64 and p.ef_for(100) == 100
    assert SearchParams.parse({}, IVF, 10).nprobe_for(100) == 8
    assert SearchParams.parse({"nprobe": 64}, IVF, 10).nprobe_for(20) == 20  # clamped to the built nlist


def test_other_index_keys_and_request_keys_are_tolerated() -> None:
    p = SearchParams.parse({"nprobe": 10, "level": 2, "offset": 0, "round_decimal": -1}, HNSW, 10)
    assert p.ef is None and set(p.ignored) == {"nprobe", "level", "offset", "round_decimal"}
    assert SearchParams.parse({"ef": 10}, IVF, 10).ignored == ("ef",)
    assert SearchParams.parse({"nprobe": 10, "ef": 64}, FLAT, 10).ignored == ("nprobe", "ef")


@pytest.mark.parametrize(
    ("spec", "params", "k", "message"),
    [
        (HNSW, {"ef": 5}, 10, r"ef must be in \[10, 32768\]"),
        (HNSW, {"ef": 40000}, 10, r"ef must be in \[10, 32768\]"),
        (HNSW, {"ef": "wide"}, 10, "ef must be an integer"),
        (IVF, {"nprobe": 0}, 10, r"nprobe must be in \[1, 100\]"),
        (IVF, {"nprobe": 101}, 10, r"nprobe must be in \[1, 100\]"),
        (IVF, {"nprob": 8}, 10, "unknown search parameter 'nprob'; it takes nprobe, radius, range_filter"),
        (FLAT, {"efSearch": 8}, 10, "unknown search parameter 'efSearch'; it takes radius, range_filter"),
        (FLAT, {"metric_type": "L2"}, 10, "metric_type L2 does not match the index's metric COSINE"),
        (FLAT, {"range_filter": 0.5}, 10, "range_filter needs radius"),
        (FLAT, {"radius": 0.9, "range_filter": 0.5}, 10, "range_filter .* must be greater than radius"),
        (HNSW, {"radius": 1.0, "range_filter": 2.0}, 10, "range_filter .* must be less than radius"),
        (BIN_IVF, {"radius": 0.3, "range_filter": 0.3}, 10, "must be less than radius"),
        (HNSW, {"radius": "far"}, 10, "radius must be a finite number"),
        (HNSW, {"radius": float("nan")}, 10, "radius must be a finite number"),
        (HNSW, {}, 0, "k .* must be at least 1"),
        (HNSW, {"params": 3}, 10, "must be a JSON object"),
    ],
)
def test_refusals(spec: IndexSpec, params: dict[str, object], k: int, message: str) -> None:
    with pytest.raises(IndexParamError, match=message):
        SearchParams.parse(params, spec, k)
