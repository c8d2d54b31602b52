"""Numbers from user code as plain Python floats: numpy scalars and one-element tensors included.

Metrics computed with numpy or torch come as np.float32 or 0-d tensors; stored as they are, they were
dropped from the curve and the stored metrics (not JSON numbers), and pruning saw no value at all.
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any


def plain_number(value: Any) -> Any:
    """`value` as a float (int stays int) when it is one number of any of those kinds; else unchanged."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    if isinstance(value, Integral):        # numpy integers register as numbers.Integral
        return int(value)
    if isinstance(value, Real):            # and numpy floats as numbers.Real
        return float(value)
    item = getattr(value, "item", None)   # torch tensors and numpy arrays of one element
    size = getattr(value, "numel", None) or getattr(value, "size", None)
    count = size() if callable(size) else size
    if callable(item) and count == 1:
        number = item()
        return number if isinstance(number, (int, float)) and not isinstance(number, bool) else value
    return value


def is_truth_value(value: Any) -> bool:
    """A bool of Python, numpy or torch: float() takes each, as 1.0 or 0.0, though none is a measured number."""
    return isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")
