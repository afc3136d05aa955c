"""The faiss module, typed as Any for the rest of the index package, loaded with passive OpenMP waits.

Invariants:
- Every index module imports `faiss` from here, never directly.
- OMP_WAIT_POLICY defaults to PASSIVE (an explicit setting in the
  environment wins) before faiss, and with it libgomp, is first loaded.
  libgomp's default is to spin at barriers; when the cores are already busy
  (a query node searching many segments in parallel threads, or any other
  load) a spinning team is catastrophically slow. Measured on this 2-core
  machine under load 6: BIN_IVF_FLAT, 100k x 128 bits, batches of 100,
  nprobe 8: 96k QPS on 1 thread, 2.1k QPS on 2 spinning threads, 172-197k
  QPS on 2 passive ones. libgomp reads the variable once, when loaded, so if
  something imported faiss earlier the setting here has no effect
  (`OMP_POLICY_APPLIED` says whether it could); a process entry point that
  wants certainty sets it before any import.
- faiss-cpu ships partial type stubs that lack SearchParametersHNSW, the
  keyword constructors of SearchParameters* (``sel=``, ``nprobe=``) and the
  downcast index classes' methods; checking against them would mean a cast or
  an ignore on every call, so `faiss` is typed Any here.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

OMP_POLICY_APPLIED = "faiss" not in sys.modules
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss as _faiss  # noqa: E402  (the environment must be set first)

faiss: Any = _faiss


def vector_view(vector: Any, dtype: Any = None) -> npt.NDArray[Any]:
    """A numpy view of a faiss (MaybeOwned)Vector's memory, as `dtype` when given (empty when it is).
    The view does not keep the vector alive."""
    n = int(vector.size())
    if n == 0:
        return np.zeros(0, dtype or np.uint8)
    view: npt.NDArray[Any] = faiss.rev_swig_ptr(vector.data(), n)
    return view if dtype is None else view.view(dtype)
