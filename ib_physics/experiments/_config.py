"""Building an experiment's frozen settings from a mapping (command-line flags, a file)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

__all__ = ["build_config"]

T = TypeVar("T")


def build_config(cls: type[T], values: Mapping[str, Any]) -> T:
    """``cls(**values)``, refusing unknown keys by name with the allowed ones."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; allowed: {sorted(known)}.")
    return cls(**values)
