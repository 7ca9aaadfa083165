"""What the checks draw their inputs from: Hypothesis strategies over a statement's whole domain.

Shapes and values shrink towards small and simple, so a failing input is reported at its smallest. Logits come
from a few fixed points as well as from a grid, so that ties (equal logits) are drawn often and values that are not
tied differ by far more than float32 rounding; `logits` now and then shifts a whole tensor by ±1000 or spreads each
row from +1000 to -1000, where a naive exp() overflows.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64, torch.bool: np.bool_}


def floats(low: float = -10.0, high: float = 10.0, width: int = 64) -> st.SearchStrategy[float]:
    """Finite floats in [low, high], no subnormals."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=width)


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 6) -> st.SearchStrategy[tuple]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def tensors(shape, elements: st.SearchStrategy | None = None, dtype: torch.dtype = torch.float32) -> st.SearchStrategy:
    """Tensors of `shape` (a tuple or a strategy of tuples) with entries drawn from `elements`."""
    np_dtype = NUMPY_DTYPES[dtype]
    if elements is None:
        elements = floats(width=32 if dtype == torch.float32 else 64)
    return hnp.arrays(np_dtype, shape, elements=elements).map(lambda a: torch.from_numpy(np.array(a, dtype=np_dtype)))


def logit_values() -> st.SearchStrategy[float]:
    """Values on a grid of 1e-4 in [-8, 8], often exactly 0, 1 or 2: equal logits (ties) are common, and logits that
    are not equal are at least 1e-4 apart, so that float32 probabilities tell them apart too."""
    return st.one_of(st.sampled_from([0.0, 1.0, 2.0]), st.integers(-80_000, 80_000).map(lambda i: i / 10_000))


def _extreme(x: torch.Tensor, how: str) -> torch.Tensor:
    if how == "spread":  # each row's last logit +1000, its first -1000 (its mean, minimum or first is no safe shift)
        x = x.clone()
        x[..., 0] -= 1000.0 if x.shape[-1] > 1 else 0.0
        x[..., -1] += 1000.0
        return x
    return x + {"none": 0.0, "up": 1000.0, "down": -1000.0}[how]


def logits(shape, dtype: torch.dtype = torch.float32, extreme: bool = True) -> st.SearchStrategy[torch.Tensor]:
    """Logit tensors; with `extreme`, now and then shifted as a whole by ±1000 (a softmax is unchanged) or spread
    from +1000 to -1000 within each row."""
    values = tensors(shape, logit_values(), dtype)
    if not extreme:
        return values
    return st.tuples(values, st.sampled_from(["none", "none", "up", "down", "spread"])).map(lambda vh: _extreme(*vh))
