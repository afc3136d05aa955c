"""The benchmark data set: a seeded Gaussian mixture, held-out queries, exact ground truth.

Vectors: `clusters` anisotropic Gaussian clusters in `dim` dimensions. Each
cluster has a centre drawn from N(0, 1)^dim, its own random rotation and its
own per-axis spread (log-uniform over one decade, times `spread`), and a
log-normal weight, so clusters differ in size, shape and orientation. Rows
are drawn i.i.d. from the mixture; the last `nq` draws are the queries, which
are therefore held out (never inserted).

Scalars, each from its own random stream (changing one never changes another):
- `pk` = 0..n-1 (int64), equal to the row's position;
- `category` uniform in [0, 10) (int64): `category == 3` selects ~10%;
- `tag` = "g%03d" of a code uniform in [0, 1000): `tag == "g042"` selects
  ~n/1000 rows (~100 at 100k); the exact count is `tag_count(code)`.

Ground truth: exact L2 top-`k` by faiss IndexFlatL2, for all rows and for the
rows with `category == FILTER_CATEGORY` (ids are pks in both).

Invariants:
- the same DatasetSpec gives bit-identical arrays on any machine with the
  same numpy (the generator is PCG64 through SeedSequence.spawn);
- the cache directory of a spec is complete once its meta.json exists
  (written last); a partial directory is rebuilt.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

FILTER_CATEGORY = 3
CACHE_FORMAT = 1

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines the data set; its `key` names the cache entry."""

    n: int = 100_000
    nq: int = 1_000
    dim: int = 128
    clusters: int = 1_000
    spread: float = 3.0
    categories: int = 10
    tags: int = 1_000
    k: int = 10
    seed: int = 20_260_601

    def key(self) -> str:
        return (
            f"v{CACHE_FORMAT}-n{self.n}-q{self.nq}-d{self.dim}-c{self.clusters}-s{self.spread:g}"
            f"-cat{self.categories}-t{self.tags}-k{self.k}-seed{self.seed}"
        )


@dataclass(frozen=True)
class Dataset:
    """Arrays of one spec; row i has pk i."""

    spec: DatasetSpec
    vectors: F32
    queries: F32
    category: I64
    tag_codes: npt.NDArray[np.int16]
    truth: I64
    truth_filtered: I64

    @property
    def pks(self) -> I64:
        return np.arange(self.spec.n, dtype=np.int64)

    def tag_strings(self, start: int, stop: int) -> list[str]:
        return [f"g{code:03d}" for code in self.tag_codes[start:stop].tolist()]

    def tag_count(self, code: int) -> int:
        return int(np.count_nonzero(self.tag_codes == code))

    def filtered_count(self) -> int:
        return int(np.count_nonzero(self.category == FILTER_CATEGORY))


def _streams(seed: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


def mixture(spec: DatasetSpec) -> tuple[F32, F32]:
    """(base vectors, held-out queries) drawn from the spec's Gaussian mixture."""
    rng = _streams(spec.seed)[0]
    total = spec.n + spec.nq
    centres = rng.standard_normal((spec.clusters, spec.dim)).astype(np.float32)
    weights = rng.lognormal(0.0, 0.5, spec.clusters)
    assignment = rng.choice(spec.clusters, size=total, p=weights / weights.sum())
    order = np.argsort(assignment, kind="stable")
    bounds = np.searchsorted(assignment[order], np.arange(spec.clusters + 1))
    out = np.empty((total, spec.dim), dtype=np.float32)
    for c in range(spec.clusters):  # one matmul per cluster, never per row
        rows = order[bounds[c] : bounds[c + 1]]
        rotation = np.linalg.qr(rng.standard_normal((spec.dim, spec.dim)))[0].astype(np.float32)
        axes = (spec.spread * np.exp(rng.uniform(np.log(0.1), 0.0, spec.dim))).astype(np.float32)
        noise = rng.standard_normal((rows.size, spec.dim), dtype=np.float32)
        out[rows] = centres[c] + (noise * axes) @ rotation
    return out[: spec.n], out[spec.n :]


def scalars(spec: DatasetSpec) -> tuple[I64, npt.NDArray[np.int16]]:
    """(category, tag code) per row, each from its own stream."""
    _, cat_rng, tag_rng = _streams(spec.seed)
    category = cat_rng.integers(0, spec.categories, spec.n, dtype=np.int64)
    tag_codes = tag_rng.integers(0, spec.tags, spec.n, dtype=np.int16)
    return category, tag_codes


def exact_knn(base: F32, queries: F32, k: int, ids: I64 | None = None) -> I64:
    """Exact L2 top-k row ids of each query (ids[i] names base row i when given)."""
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(np.ascontiguousarray(base))
    _, raw = index.search(np.ascontiguousarray(queries), k)
    found: I64 = np.asarray(raw, dtype=np.int64)
    if ids is None:
        return found
    mapped: I64 = np.where(found >= 0, ids[np.maximum(found, 0)], -1)
    return mapped


def build(spec: DatasetSpec) -> Dataset:
    vectors, queries = mixture(spec)
    category, tag_codes = scalars(spec)
    truth = exact_knn(vectors, queries, spec.k)
    keep = np.flatnonzero(category == FILTER_CATEGORY).astype(np.int64)
    truth_filtered = exact_knn(vectors[keep], queries, spec.k, ids=keep)
    return Dataset(spec, vectors, queries, category, tag_codes, truth, truth_filtered)


_ARRAYS = ("vectors", "queries", "category", "tag_codes", "truth", "truth_filtered")


def _mark_ignored(cache_root: Path) -> None:
    """The cache holds generated data only: keep it out of git without touching .gitignore."""
    cache_root.mkdir(parents=True, exist_ok=True)
    marker = cache_root / ".gitignore"
    if not marker.exists():
        marker.write_text("# generated by bench; never commit\n*\n")


def load_or_build(spec: DatasetSpec, cache_root: Path) -> tuple[Dataset, bool]:
    """The data set of `spec` from `cache_root/<key>/`, building it on a miss; (data, was_cached)."""
    _mark_ignored(cache_root)
    folder = cache_root / spec.key()
    meta = folder / "meta.json"
    if meta.exists():
        arrays = {name: np.load(folder / f"{name}.npy") for name in _ARRAYS}
        return Dataset(spec=spec, **arrays), True
    if folder.exists():
        shutil.rmtree(folder)
    data = build(spec)
    tmp = cache_root / f".{spec.key()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name in _ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(data, name))
    (tmp / "meta.json").write_text(json.dumps(asdict(spec), indent=2))
    tmp.rename(folder)
    return data, False
