"""Shared data for the index tests: one clustered float set and its binary codes, per session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from tests.index.helpers import BINARY_DIM, DIM, N_QUERIES, N_ROWS, binarize, gaussian_mixture


@dataclass
class Dataset:
    x: npt.NDArray[np.float32]
    q: npt.NDArray[np.float32]
    xb: npt.NDArray[np.uint8]
    qb: npt.NDArray[np.uint8]


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    both = gaussian_mixture(N_ROWS + N_QUERIES, DIM, seed=42)
    x, q = both[:N_ROWS], both[N_ROWS:]
    return Dataset(x=x, q=q, xb=binarize(x, BINARY_DIM), qb=binarize(q, BINARY_DIM))
