"""Data and measures shared by the index tests, independent of the code under test.

The true scores here are computed naively in float64 (and with boolean ops for
binary codes), so they check the brute-force index as well as the faiss ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

N_ROWS = 5000
DIM = 32
N_QUERIES = 50
BINARY_DIM = 128
K = 10


def gaussian_mixture(n: int, dim: int, seed: int, clusters: int = 40) -> npt.NDArray[np.float32]:
    """Clustered float32 data: anisotropic Gaussian blobs around random centres (fixed seed)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)) * 3.0
    scales = rng.uniform(0.3, 1.5, (clusters, dim))
    label = rng.integers(0, clusters, n)
    return (centres[label] + rng.standard_normal((n, dim)) * scales[label]).astype(np.float32)


def binarize(x: npt.NDArray[np.float32], bits: int, seed: int = 7) -> npt.NDArray[np.uint8]:
    """Packed codes from random hyperplanes (the same planes for data and queries)."""
    planes = np.random.default_rng(seed).standard_normal((x.shape[1], bits))
    return np.packbits((x @ planes > 0).astype(np.uint8), axis=1)


def true_scores(q: npt.NDArray[Any], x: npt.NDArray[Any], metric: str) -> npt.NDArray[np.float64]:
    """(nq, n) scores computed naively in float64."""
    if metric in ("HAMMING", "JACCARD"):
        qb = np.unpackbits(q, axis=1).astype(bool)
        xb = np.unpackbits(x, axis=1).astype(bool)
        if metric == "HAMMING":
            hamming: npt.NDArray[np.float64] = (qb[:, None, :] != xb[None, :, :]).sum(-1).astype(np.float64)
            return hamming
        inter = (qb[:, None, :] & xb[None, :, :]).sum(-1).astype(np.float64)
        union = (qb[:, None, :] | xb[None, :, :]).sum(-1).astype(np.float64)
        # the exact rational (union - inter) / union, correctly rounded once
        return np.where(union > 0, (union - inter) / np.maximum(union, 1), 0.0)
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "COSINE":
        q64 = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
        x64 = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
    if metric == "L2":
        l2: npt.NDArray[np.float64] = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
        return l2
    return q64 @ x64.T


def larger_is_better(metric: str) -> bool:
    return metric in ("IP", "COSINE")


def kth_best(truth: npt.NDArray[np.float64], k: int, metric: str, allowed: Any = None) -> npt.NDArray[Any]:
    t = truth if allowed is None else truth[:, allowed]
    if larger_is_better(metric):
        return -np.sort(-t, axis=1)[:, k - 1]
    return np.sort(t, axis=1)[:, k - 1]


def recall(
    ids: npt.NDArray[np.int64], truth: npt.NDArray[np.float64], k: int, metric: str, allowed: Any = None
) -> float:
    """Tie-aware recall@k: the share of returned rows at least as good as the true k-th best.

    Rows outside `allowed` never count.
    """
    kth = kth_best(truth, k, metric, allowed)
    tol = 1e-5 * np.maximum(1.0, np.abs(kth))
    good = np.zeros(ids.shape, dtype=bool)
    valid = ids >= 0
    rows = np.nonzero(valid)
    got = truth[rows[0], ids[valid]]
    if larger_is_better(metric):
        ok = got >= kth[rows[0]] - tol[rows[0]]
    else:
        ok = got <= kth[rows[0]] + tol[rows[0]]
    if allowed is not None:
        ok &= allowed[ids[valid]]
    good[rows] = ok
    # a row returned twice only counts once
    for i in range(ids.shape[0]):
        assert len(set(ids[i][valid[i]].tolist())) == int(valid[i].sum()), "duplicate ids in a result row"
    return float(good.sum() / (ids.shape[0] * k))
