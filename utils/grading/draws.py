"""What the checks draw their inputs from: Hypothesis strategies over a statement's whole domain.

Shapes and values shrink towards small and simple, so a failing input is reported at its smallest. Values come
from a few fixed points as well as from a range, so that ties (equal logits, equal scores) are drawn often, and
`logits` shifts a whole tensor by ±1000 now and then, where a naive exp() overflows.
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


def logit_values(dtype: torch.dtype = torch.float32) -> st.SearchStrategy[float]:
    """Values in [-8, 8], often exactly 0, 1 or 2 so that equal logits (ties) are common."""
    width = 32 if dtype == torch.float32 else 64
    return st.one_of(st.sampled_from([0.0, 1.0, 2.0]), floats(-8.0, 8.0, width))


def logits(shape, dtype: torch.dtype = torch.float32, extreme: bool = True) -> st.SearchStrategy[torch.Tensor]:
    """Logit tensors; with `extreme`, sometimes shifted as a whole by +1000 or -1000 (a softmax is unchanged)."""
    values = tensors(shape, logit_values(dtype), dtype)
    if not extreme:
        return values
    return st.tuples(values, st.sampled_from([0.0, 1000.0, -1000.0])).map(lambda vo: vo[0] + vo[1])
