"""The one conversion layer of the public API: scalars, integers, flags, arrays, paths and sizes.

Every entry point converts its arguments here before any work starts, so that errors name the
argument and the allowed range, NumPy scalars and 0-d arrays count as the numbers they hold, and
strings or booleans are never taken as numbers (nor numbers or strings as flags).
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["as_bool", "as_float_array", "as_float_vector", "as_path", "check_choice", "check_finite_positive",
           "check_finite_scalar", "check_int_range", "check_memory", "check_t_span"]

#: Largest single allocation the package makes without being told otherwise (a check before the work).
MAX_ALLOCATION_BYTES = 32 * 2**30


def _scalar(value: Any) -> Any:
    """A 0-d array as the scalar it holds; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return type(value).__name__


def check_finite_scalar(value: Any, name: str) -> float:
    """A finite real number (Python or NumPy scalar, or a 0-d array; not a bool or a string)."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {_kind(value)}.")
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
    """An integer in [low, high] (Python or NumPy integer, or a 0-d integer array; not a bool)."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {_kind(value)}.")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"`{name}` must be {allowed}, got {value}.")
    return value


def as_bool(value: Any, name: str) -> bool:
    """True or False (a Python or NumPy bool, or a 0-d bool array); not a string or a number."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_choice(value: Any, name: str, allowed: Any) -> str:
    """One of the strings ``allowed``."""
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}.")
    return value


def as_float_array(value: Any, name: str) -> np.ndarray:
    """A float array of numbers (no strings, booleans or None inside)."""
    if value is None:
        raise TypeError(f"`{name}` must be numbers, got None.")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be numbers (a scalar or an array).") from None
    if raw.dtype.kind == "O" and all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
                                     for v in raw.ravel()):
        raw = raw.astype(float)  # e.g. Python ints too large for int64 beside floats
    if isinstance(value, (list, tuple)) and raw.dtype.kind in "iu" and _holds_bool(value):
        raise TypeError(f"`{name}` must be numbers, got booleans.")  # NumPy would read True as 1
    if raw.dtype.kind not in "iuf":
        what = {"b": "booleans", "U": "strings", "S": "bytes", "O": "objects"}.get(raw.dtype.kind, str(raw.dtype))
        raise TypeError(f"`{name}` must be numbers, got {what}.")
    return raw.astype(float)


def _holds_bool(items: Any) -> bool:
    for v in items:
        if isinstance(v, (bool, np.bool_)) or (isinstance(v, (list, tuple)) and _holds_bool(v)):
            return True
    return False


def as_float_vector(value: Any, name: str) -> np.ndarray:
    """A finite 1-D float array (a scalar becomes length 1) of 1 to 3 entries, read-only."""
    arr = as_float_array(value, name)
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
    """A pair of finite times with t1 > t0 (a sequence or an array of two)."""
    if isinstance(t_span, (str, bytes)):
        raise TypeError("`t_span` must be a pair (t0, t1).")
    try:
        t0, t1 = t_span
    except (TypeError, ValueError):
        raise TypeError("`t_span` must be a pair (t0, t1).") from None
    t0 = check_finite_scalar(t0, "t_span[0]")
    t1 = check_finite_scalar(t1, "t_span[1]")
    if not t1 > t0:
        raise ValueError(f"`t_span` must have t1 > t0, got ({t0}, {t1}).")
    return t0, t1


def as_path(value: Any, name: str, *, must_exist: bool = False, writable_dir: bool = False) -> Path:
    """A filesystem path (str or os.PathLike) whose directory exists (and is writable, if asked)."""
    if isinstance(value, (bytes, bool)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a path (str or os.PathLike), got {_kind(value)}.")
    path = Path(value)
    if must_exist and not path.exists():
        raise ValueError(f"`{name}`: no such file: {path}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"`{name}`: the directory {parent} does not exist.")
    if writable_dir and not os.access(parent, os.W_OK):
        raise ValueError(f"`{name}`: the directory {parent} is not writable.")
    return path


def check_memory(n_bytes: float, what: str, name: str, limit: float = MAX_ALLOCATION_BYTES, hint: str = "") -> None:
    """Refuse, before the work, an allocation beyond ``limit`` bytes, naming its size."""
    if n_bytes > limit:
        raise ValueError(f"{what} would need {_bytes(n_bytes)} (at most {_bytes(limit)} here): reduce `{name}`"
                         f"{hint}.")


def _bytes(n: float) -> str:
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"
