"""IndexSpec.parse: defaults, both parameter forms, and every refusal names what is allowed."""

from __future__ import annotations

import json

import pytest

from pelagos.errors import IndexParamError
from pelagos.index import IndexSpec, IndexType, MetricType


def test_autoindex_and_missing_type_resolve_to_defaults() -> None:
    for name in (None, "", "AUTOINDEX", "autoindex"):
        spec = IndexSpec.parse(name, None, {}, 128, False)
        assert spec.index_type is IndexType.HNSW and spec.metric is MetricType.COSINE
        assert (spec.hnsw_m, spec.ef_construction) == (18, 240)
        assert spec.requested_type == "AUTOINDEX"
        binary = IndexSpec.parse(name, None, None, 256, True)
        assert binary.index_type is IndexType.BIN_FLAT and binary.metric is MetricType.HAMMING


def test_defaults_per_type() -> None:
    hnsw = IndexSpec.parse("HNSW", "L2", {}, 64, False)
    assert (hnsw.hnsw_m, hnsw.ef_construction) == (30, 360)
    assert hnsw.requested_type == "HNSW"
    ivf = IndexSpec.parse("IVF_FLAT", "IP", {}, 64, False)
    assert ivf.nlist == 128
    pq = IndexSpec.parse("IVF_PQ", "L2", {}, 128, False)
    assert (pq.nlist, pq.m, pq.nbits) == (128, 32, 8)
    assert IndexSpec.parse("IVF_PQ", "L2", {}, 3, False).m == 1
    assert pq.build_params() == {"nlist": 128, "m": 32, "nbits": 8}


@pytest.mark.parametrize(
    "params",
    [
        {"M": 16, "efConstruction": 200},
        {"M": "16", "efConstruction": "200"},
        {"params": {"M": 16, "efConstruction": 200}},
        {"params": json.dumps({"M": 16, "efConstruction": 200})},
        {"M": 16, "params": '{"efConstruction": "200"}'},
        {"M": 16.0, "efConstruction": 200, "params": {"M": "16"}},
        {"index_type": "HNSW", "metric_type": "L2", "params": '{"M": 16, "efConstruction": 200}'},
        {"M": 16, "efConstruction": 200, "mmap.enabled": "true"},
    ],
)
def test_build_params_flat_nested_json_and_strings(params: dict[str, object]) -> None:
    spec = IndexSpec.parse("HNSW", "L2", params, 32, False)
    assert (spec.hnsw_m, spec.ef_construction) == (16, 200)


def test_type_and_metric_may_come_inside_params() -> None:
    spec = IndexSpec.parse(None, None, {"index_type": "ivf_sq8", "metric_type": "ip", "nlist": 7}, 8, False)
    assert (spec.index_type, spec.metric, spec.nlist) == (IndexType.IVF_SQ8, MetricType.IP, 7)
    with pytest.raises(IndexParamError, match="given twice"):
        IndexSpec.parse("HNSW", None, {"index_type": "IVF_FLAT"}, 8, False)


@pytest.mark.parametrize(
    ("index_type", "metric", "params", "dim", "binary", "message"),
    [
        (
            "HNSW",
            "L2",
            {"nlist": 128},
            32,
            False,
            "unknown build parameter 'nlist'.*HNSW takes M, efConstruction",
        ),
        ("FLAT", "L2", {"M": 8}, 32, False, "FLAT takes no build parameters"),
        ("IVF_FLAT", "L2", {"nlsit": 8}, 32, False, "unknown build parameter 'nlsit'.*takes nlist"),
        ("IVF_FLAT", "L2", {"nlist": 0}, 32, False, r"nlist must be in \[1, 65536\], got 0"),
        ("IVF_FLAT", "L2", {"nlist": 65537}, 32, False, r"nlist must be in \[1, 65536\]"),
        ("IVF_FLAT", "L2", {"nlist": "many"}, 32, False, "nlist must be an integer"),
        ("IVF_FLAT", "L2", {"nlist": 8.5}, 32, False, "nlist must be an integer"),
        ("IVF_FLAT", "L2", {"nlist": True}, 32, False, "nlist must be an integer"),
        ("HNSW", "L2", {"M": 1}, 32, False, r"M must be in \[2, 2048\]"),
        ("HNSW", "L2", {"M": 4096}, 32, False, r"M must be in \[2, 2048\]"),
        ("HNSW", "L2", {"efConstruction": 0}, 32, False, "efConstruction must be in"),
        ("IVF_PQ", "L2", {"m": 5}, 32, False, r"m must divide the dimension 32.*\[1, 2, 4, 8, 16, 32\]"),
        ("IVF_PQ", "L2", {"m": 64}, 32, False, r"m must be in \[1, 32\]"),
        ("IVF_PQ", "L2", {"m": 8, "nbits": 17}, 32, False, r"nbits must be in \[1, 16\]"),
        ("IVF_PQ", "L2", {"m": 8, "nbits": 0}, 32, False, r"nbits must be in \[1, 16\]"),
        (
            "HNSW",
            "HAMMING",
            {},
            32,
            False,
            "metric type HAMMING does not fit float vectors; use one of L2, IP, COSINE",
        ),
        (
            "BIN_FLAT",
            "L2",
            {},
            64,
            True,
            "metric type L2 does not fit binary vectors; use one of HAMMING, JACCARD",
        ),
        ("BIN_IVF_FLAT", "COSINE", {}, 64, True, "does not fit binary"),
        ("HNSW", "L2", {}, 64, True, "index type HNSW does not fit binary vectors; use one of BIN_FLAT"),
        ("BIN_FLAT", "HAMMING", {}, 64, False, "index type BIN_FLAT does not fit float vectors"),
        (
            "DISKANN",
            "L2",
            {},
            64,
            False,
            "index type 'DISKANN' is not supported; for float vectors use one of",
        ),
        ("HNSW", "EUCLID", {}, 64, False, "metric type 'EUCLID' is not supported"),
        ("BIN_FLAT", "SUPERSTRUCTURE", {}, 64, True, "not supported"),
        ("BIN_FLAT", "HAMMING", {}, 12, True, "multiple of 8"),
        ("FLAT", "L2", {}, 0, False, "dimension must be in"),
        ("HNSW", "L2", {"params": "{not json"}, 8, False, "must be a JSON object"),
        ("HNSW", "L2", {"params": "[1, 2]"}, 8, False, "must be a JSON object"),
        ("HNSW", "L2", {"M": 8, "params": {"M": 16}}, 8, False, "'M' is given twice with different values"),
    ],
)
def test_refusals_say_what_is_allowed(
    index_type: str, metric: str, params: dict[str, object], dim: int, binary: bool, message: str
) -> None:
    with pytest.raises(IndexParamError, match=message):
        IndexSpec.parse(index_type, metric, params, dim, binary)


def test_spec_dict_round_trip() -> None:
    spec = IndexSpec.parse("AUTOINDEX", "L2", {}, 16, False)
    again = IndexSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert str(spec) == "HNSW(L2, dim=16, M=18, efConstruction=240)"
