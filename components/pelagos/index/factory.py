"""Making and loading indexes from an IndexSpec.

Invariants:
- `create_index(spec)` returns an unbuilt index of the class that implements
  the spec's type; `load_index(spec, data)` returns the index `serialize`
  wrote, and refuses data written for a different spec or class.
- `save_index` / `load_index_file` do the same through a file, streaming the
  large faiss part (no second copy of the index in memory).
- `exact_index(metric, dim)` is the brute-force index growing segments use.
"""

from __future__ import annotations

from pathlib import Path

from pelagos.errors import IndexParamError
from pelagos.index import container
from pelagos.index.binary_index import KIND as BINARY_KIND
from pelagos.index.binary_index import FaissBinaryIndex
from pelagos.index.brute_force import KIND as BRUTE_FORCE_KIND
from pelagos.index.brute_force import BruteForceIndex
from pelagos.index.float_index import KIND as FLOAT_KIND
from pelagos.index.float_index import FaissFloatIndex
from pelagos.index.kinds import MetricType
from pelagos.index.protocol import VectorIndex
from pelagos.index.spec import IndexSpec


def create_index(spec: IndexSpec) -> VectorIndex:
    return FaissBinaryIndex(spec) if spec.is_binary else FaissFloatIndex(spec)


def exact_index(metric: MetricType | str, dim: int) -> BruteForceIndex:
    return BruteForceIndex(metric, dim)


def save_index(index: VectorIndex, path: str | Path) -> int:
    """Write `index.serialize()` to `path` (streamed where the index can); the file's size."""
    if isinstance(index, FaissFloatIndex):
        return index.save(path)
    data = index.serialize()
    Path(path).write_bytes(data)
    return len(data)


def load_index_file(spec: IndexSpec, path: str | Path) -> VectorIndex:
    """The index `save_index` (or `serialize`) wrote to `path`, streamed where it can be."""
    with open(path, "rb") as f:
        header, _ = container.read_file_header(f)
    if header.get("kind") == FLOAT_KIND:
        return FaissFloatIndex.load_file(spec, path)
    return load_index(spec, Path(path).read_bytes())


def load_index(spec: IndexSpec, data: bytes) -> VectorIndex:
    header, _ = container.unpack(data)
    kind = header.get("kind")
    if kind == FLOAT_KIND:
        return FaissFloatIndex.load(spec, data)
    if kind == BINARY_KIND:
        return FaissBinaryIndex.load(spec, data)
    if kind == BRUTE_FORCE_KIND:
        return BruteForceIndex.load(spec, data)
    raise IndexParamError(f"serialized index of unknown kind {kind!r}; rebuild it")
