"""The faiss module, typed as Any for the rest of the index package.

faiss-cpu ships partial type stubs that lack SearchParametersHNSW, the
keyword constructors of SearchParameters* (``sel=``, ``nprobe=``) and the
downcast index classes' methods; checking against them would mean a cast or
an ignore on every call. The index modules import `faiss` from here instead
and keep their own signatures typed.
"""

from __future__ import annotations

from typing import Any

import faiss as _faiss

faiss: Any = _faiss
