"""Experiments: each a frozen configuration plus ``run()`` writing one HDF5 file and its figures."""

from __future__ import annotations

from .double_well import DoubleWellConfig, run_double_well

__all__ = ["DoubleWellConfig", "run_double_well"]
