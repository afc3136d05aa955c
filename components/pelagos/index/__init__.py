"""Vector indexes of one segment: specs, faiss indexes, the brute-force oracle, top-k reduction.

Pure logic over numpy and faiss, no servers. Callers use:

- `IndexSpec.parse(index_type, metric_type, params, dim, is_binary)` to
  validate a create-index request, `SearchParams.parse(params, spec, k)` to
  validate search params;
- `create_index(spec)` / `load_index(spec, data)` for a segment's index
  (`VectorIndex` protocol: build, search, range_search, serialize),
  `exact_index(metric, dim)` for a growing segment;
- `reduce_topk(parts, k, metric)` to merge per-segment results.
"""

from pelagos.index.binary_index import FaissBinaryIndex
from pelagos.index.brute_force import BruteForceIndex
from pelagos.index.factory import create_index, exact_index, load_index, load_index_file, save_index
from pelagos.index.float_index import FaissFloatIndex
from pelagos.index.kinds import IndexType, MetricType
from pelagos.index.protocol import DerivesSubsets, VectorIndex
from pelagos.index.reduce import reduce_topk
from pelagos.index.results import RangeResult
from pelagos.index.search_params import SearchParams
from pelagos.index.spec import IndexSpec
from pelagos.index.threads import set_max_threads

__all__ = [
    "BruteForceIndex",
    "DerivesSubsets",
    "FaissBinaryIndex",
    "FaissFloatIndex",
    "IndexSpec",
    "IndexType",
    "MetricType",
    "RangeResult",
    "SearchParams",
    "VectorIndex",
    "create_index",
    "exact_index",
    "load_index",
    "load_index_file",
    "reduce_topk",
    "save_index",
    "set_max_threads",
]
