"""Tasks for the executor tests; importable by spawned worker processes (module level)."""

from __future__ import annotations

import os
from pathlib import Path

from ib_physics.parallel.ensemble import _simulate_range


def dies_once(marker: str, *args):
    """Kill this worker process the first time it runs (``marker`` absent), then run the range."""
    path = Path(marker)
    if not path.exists():
        path.write_text("killed")
        os._exit(1)
    return _simulate_range(*args)


def square(value: int) -> int:
    return value * value


def fails(value: int) -> int:
    raise ArithmeticError(f"task {value} fails")
