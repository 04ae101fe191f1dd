"""Input checks shared by the public API: errors name the argument and the allowed range."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["as_float_vector", "check_finite_positive", "check_finite_scalar", "check_int_range", "check_t_span"]


def check_finite_scalar(value: Any, name: str) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    return value


def check_finite_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite number > 0 (or >= 0 with ``allow_zero``)."""
    value = check_finite_scalar(value, name)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be finite and {bound}, got {value}.")
    return value


def check_int_range(value: Any, name: str, low: int, high: int | None = None) -> int:
    """An integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {type(value).__name__}.")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"`{name}` must be {allowed}, got {value}.")
    return value


def as_float_vector(value: Any, name: str) -> np.ndarray:
    """A finite 1-D float array (a scalar becomes length 1)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number or a sequence of numbers.") from None
    if arr.ndim > 1:
        raise ValueError(f"`{name}` must be a scalar or 1-dimensional, got shape {arr.shape}.")
    arr = np.atleast_1d(arr).copy()
    if arr.size == 0 or arr.size > 3:
        raise ValueError(f"`{name}` must have 1 to 3 entries, got {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite, got {arr.tolist()}.")
    arr.flags.writeable = False
    return arr


def check_t_span(t_span: Any) -> tuple[float, float]:
    """A pair of finite times with t1 > t0."""
    try:
        t0, t1 = t_span
    except (TypeError, ValueError):
        raise TypeError("`t_span` must be a pair (t0, t1).") from None
    t0 = check_finite_scalar(t0, "t_span[0]")
    t1 = check_finite_scalar(t1, "t_span[1]")
    if not t1 > t0:
        raise ValueError(f"`t_span` must have t1 > t0, got ({t0}, {t1}).")
    return t0, t1
