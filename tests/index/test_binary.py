"""BIN_IVF_FLAT: exact Hamming/Jaccard over exactly the rows faiss's inverted lists probe."""

from __future__ import annotations

import numpy as np
import pytest

from pelagos.index import SearchParams
from pelagos.index.faiss_api import faiss
from tests.index.cases import build
from tests.index.conftest import Dataset
from tests.index.helpers import K, true_scores


@pytest.mark.parametrize("nprobe", [1, 8])
@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_probed_lists_are_scanned_exactly(dataset: Dataset, metric: str, nprobe: int) -> None:
    index = build("BIN_IVF_FLAT", metric, {"nlist": 64}, dataset.xb)
    truth = true_scores(dataset.qb, dataset.xb, metric)
    # the lists, read from the faiss index itself through a round trip of its serialisation
    raw = faiss.deserialize_index_binary(np.frombuffer(_faiss_blob(index), dtype=np.uint8))
    invlists = raw.invlists
    members = {
        lst: set(faiss.rev_swig_ptr(invlists.get_ids(lst), invlists.list_size(lst)).tolist())
        for lst in range(raw.nlist)
    }
    _, probed = raw.quantizer.search(dataset.qb, nprobe)
    params = SearchParams.parse({"nprobe": nprobe}, index.spec, K)
    # the candidate-scan path: a filter that allows every row but one that is never a candidate
    allowed = np.ones(len(dataset.xb), dtype=bool)
    scores_all, ids_all = index.search(dataset.qb, K, params)
    for scores, ids in (
        (scores_all, ids_all),
        index.search(dataset.qb, K, params, allowed=_all_but_far(truth, allowed)),
    ):
        for i in range(len(dataset.qb)):
            candidates = sorted(set().union(*(members[int(lst)] for lst in probed[i])))
            best = np.sort(truth[i, candidates])[:K]
            np.testing.assert_allclose(scores[i, : len(best)], best, rtol=1e-6)
            assert set(ids[i][ids[i] >= 0].tolist()) <= set(candidates)


def _all_but_far(truth: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Every row except the one farthest from every query (never in a top-k)."""
    out = allowed.copy()
    out[int(np.argmax(truth.min(axis=0)))] = False
    return out


def _faiss_blob(index: object) -> bytes:
    from pelagos.index import container

    _, sections = container.unpack(index.serialize())  # type: ignore[attr-defined]
    return bytes(sections["faiss"])
