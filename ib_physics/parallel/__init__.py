"""Parallel runs: threads inside one process, and executors (process pools, Dask) across them.

* :mod:`~ib_physics.parallel.threads`: the kernels' thread pool over disjoint index ranges.
* :class:`TaskRunner`: named independent tasks on a local process pool, any
  ``concurrent.futures.Executor`` or a ``dask.distributed.Client``.
* :func:`simulate_ensemble`: one particle ensemble in ranges, merged into bitwise the result of
  one :func:`~ib_physics.simulate` call.
* :func:`train_replicas`: the replicas of a training run in ranges, bitwise one
  :class:`~ib_physics.learning.Trainer`.
* :func:`simulate_sweep`: independent ``simulate`` runs (parameter scans), one seed each, one file.
* :class:`TaskStore`: finished tasks in one HDF5 file, written as they finish; reruns resume.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .executors import TaskRunner, is_dask_client
from .store import TaskStore
from .threads import ThreadRunner, resolve_threads, split_range

__all__ = ["ThreadRunner", "resolve_threads", "split_range", "TaskRunner", "is_dask_client", "TaskStore",
           "ensemble_ranges", "simulate_ensemble", "simulate_sweep", "ReplicaRun", "train_replicas"]

# The engines import the thread pool from this package, so the modules that import the engines
# load on first use.
_LAZY = {"ensemble_ranges": "ensemble", "simulate_ensemble": "ensemble", "simulate_sweep": "sweep",
         "ReplicaRun": "training",
         "train_replicas": "training"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
