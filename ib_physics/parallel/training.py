"""The replicas of one training run, split into replica ranges on an executor.

A replica's initial weights and minibatches depend only on (seed, global replica index), so
ranges trained apart and joined along the replica axis equal one
:class:`~ib_physics.learning.Trainer` of all replicas, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import io
from .._validation import check_int_range
from ..learning.network import Architecture, EpochStatistics, Trainer, WeightTrace
from ..particles.result import hash_array
from .executors import TaskRunner
from .store import TaskStore

__all__ = ["ReplicaRun", "train_replicas"]

_STAT_FIELDS = ("grad_mean", "grad_std", "update_mean", "update_std", "weight_norm", "loss")
_STATE_FIELDS = ("params", "adam_m", "adam_v", "steps")
_TRACE_FIELDS = ("weights", "gradients", "updates", "second_gradients")


@dataclass(frozen=True, eq=False)
class ReplicaRun:
    """Replicas trained for a number of epochs: their statistics, final state and trace.

    Attributes
    ----------
    stats : EpochStatistics
        Arrays (R, E, L), loss (R, E).
    params, adam_m, adam_v : numpy.ndarray, shape (R, P)
        Final parameters and Adam moments.
    steps : numpy.ndarray of int, shape (R,)
        Optimiser steps taken.
    trace : WeightTrace or None
        At the options' ``trace_epochs``.
    first_replica : int
        Global index of row 0.
    """

    stats: EpochStatistics
    params: np.ndarray
    adam_m: np.ndarray
    adam_v: np.ndarray
    steps: np.ndarray
    trace: WeightTrace | None
    first_replica: int = 0

    @property
    def replicas(self) -> int:
        return int(self.params.shape[0])

    def digest(self) -> str:
        """SHA-256 of every array: equal digests mean bitwise equal runs."""
        h = hashlib.sha256()
        arrays = [self.stats.epochs, *(getattr(self.stats, k) for k in _STAT_FIELDS),
                  *(getattr(self, k) for k in _STATE_FIELDS)]
        if self.trace is not None:
            arrays += [self.trace.epochs, *(getattr(self.trace, k) for k in _TRACE_FIELDS)]
        for a in arrays:
            hash_array(h, a)
        return h.hexdigest()

    @staticmethod
    def concatenate(parts: list["ReplicaRun"]) -> "ReplicaRun":
        """Join runs of adjacent replica ranges (in any order) along the replica axis."""
        if not parts:
            raise ValueError("`parts` is empty: nothing to join.")
        parts = sorted(parts, key=lambda p: p.first_replica)
        for prev, nxt in zip(parts[:-1], parts[1:]):
            if prev.first_replica + prev.replicas != nxt.first_replica:
                raise ValueError(f"replica ranges starting at {prev.first_replica} and {nxt.first_replica} are "
                                 "not adjacent.")
        stats = EpochStatistics(epochs=parts[0].stats.epochs,
                                **{k: np.concatenate([getattr(p.stats, k) for p in parts]) for k in _STAT_FIELDS})
        trace = None
        if parts[0].trace is not None:
            fields = {k: (None if getattr(parts[0].trace, k) is None
                          else np.concatenate([getattr(p.trace, k) for p in parts])) for k in _TRACE_FIELDS}
            trace = WeightTrace(epochs=parts[0].trace.epochs, **fields)
        return ReplicaRun(stats=stats, trace=trace, first_replica=parts[0].first_replica,
                          **{k: np.concatenate([getattr(p, k) for p in parts]) for k in _STATE_FIELDS})


def _train_range(arch: Architecture, x: np.ndarray, y: np.ndarray, first: int, count: int, epochs: int,
                 options: dict[str, Any], threads: int) -> ReplicaRun:
    """One task: replicas [first, first + count) trained for ``epochs`` epochs."""
    trainer = Trainer(arch=arch, x=x, y=y, replicas=count, first_replica=first, threads=threads, **options)
    stats = trainer.run(epochs)
    trace = trainer.trace() if trainer.trace_epochs else None
    return ReplicaRun(stats=stats, params=trainer.params, adam_m=trainer.adam_m, adam_v=trainer.adam_v,
                      steps=trainer.steps, trace=trace, first_replica=first)


def train_replicas(arch: Architecture, x: Any, y: Any, *, replicas: int, epochs: int, executor: Any = None,
                   block_replicas: int | None = None, first_replica: int = 0, threads_per_worker: int = 1,
                   retries: int = 2, checkpoint: str | os.PathLike[str] | None = None, progress: bool = False,
                   **trainer_options: Any) -> ReplicaRun:
    """Train ``replicas`` networks for ``epochs`` epochs, in replica ranges on an executor.

    Parameters
    ----------
    arch, x, y :
        As for :class:`~ib_physics.learning.Trainer`.
    replicas, epochs : int
    executor : None, int, concurrent.futures.Executor or dask.distributed.Client
        See :class:`~ib_physics.parallel.TaskRunner`.
    block_replicas : int, optional
        Replicas per task; default about two tasks per worker.
    first_replica : int
        Global index of the first replica (its random streams).
    threads_per_worker, retries :
        See :class:`~ib_physics.parallel.TaskRunner`.
    checkpoint : path, optional
        HDF5 file of finished replica ranges (rewritten atomically as each finishes); a rerun
        with the same inputs skips them.
    progress : bool
        A tqdm bar over ranges.
    **trainer_options
        Other keywords of :class:`~ib_physics.learning.Trainer` (seed, optimizer, learning_rate,
        batch_size, batches, shared_initialization, trace_epochs, trace_second_batch, ...).

    Returns
    -------
    ReplicaRun
        Bitwise what ``Trainer(replicas=replicas, ...).run(epochs)`` gives (see
        :meth:`ReplicaRun.digest`), whatever the executor and ``block_replicas``.
    """
    for bad in ("replicas", "first_replica", "threads", "arch", "x", "y"):
        if bad in trainer_options:
            raise TypeError(f"`{bad}` is set by train_replicas itself.")
    R = check_int_range(replicas, "replicas", 1, 2**31 - 1)
    E = check_int_range(epochs, "epochs", 1)
    first = check_int_range(first_replica, "first_replica", 0, 2**31 - 1)
    if not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"`progress` must be True or False, got {progress!r}.")
    # Validate the options once, here, on one replica (a bad argument fails before any task).
    probe = Trainer(arch=arch, x=x, y=y, replicas=1, first_replica=first, threads=1, **trainer_options)
    x_arr, y_arr = probe.x, probe.y
    with TaskRunner(executor, threads_per_worker=threads_per_worker, retries=retries) as runner:
        size = (max(1, -(-R // (2 * runner.workers))) if block_replicas is None
                else check_int_range(block_replicas, "block_replicas", 1, 2**31 - 1))
        ranges = [(first + a, min(R, a + size) - a) for a in range(0, R, size)]
        store = None
        if checkpoint is not None:
            store = TaskStore(checkpoint, _fingerprint(arch, x_arr, y_arr, R, E, first, size, trainer_options))
        parts: dict[str, ReplicaRun] = {}
        if store is not None:
            for name in store.done:
                parts[name] = store.read(name, _read_run)
        shared_x, shared_y = runner.share(x_arr), runner.share(y_arr)
        tasks = {f"{a}-{a + n}": (arch, shared_x, shared_y, a, n, E, dict(trainer_options), runner.threads_per_worker)
                 for a, n in ranges}
        parts = runner.collect(_train_range, tasks, done=parts, store=store, write=_write_run, progress=progress,
                               desc="replicas", unit="range")
    return ReplicaRun.concatenate(list(parts.values()))


def _write_run(g: Any, run: ReplicaRun) -> None:
    g.attrs["first_replica"] = run.first_replica
    io.write_arrays(g, {"epochs": run.stats.epochs, **{k: getattr(run.stats, k) for k in _STAT_FIELDS},
                        **{k: getattr(run, k) for k in _STATE_FIELDS}})
    if run.trace is not None:
        t = g.create_group("trace")
        io.write_arrays(t, {"epochs": run.trace.epochs, **{k: getattr(run.trace, k) for k in _TRACE_FIELDS}})


def _read_run(g: Any) -> ReplicaRun:
    stats = EpochStatistics(epochs=g["epochs"][()], **{k: g[k][()] for k in _STAT_FIELDS})
    trace = None
    if "trace" in g:
        t = g["trace"]
        trace = WeightTrace(epochs=t["epochs"][()], **{k: (t[k][()] if k in t else None) for k in _TRACE_FIELDS})
    return ReplicaRun(stats=stats, trace=trace, first_replica=int(g.attrs["first_replica"]),
                      **{k: g[k][()] for k in _STATE_FIELDS})


def _fingerprint(arch: Architecture, x: np.ndarray, y: np.ndarray, R: int, E: int, first: int, size: int,
                 options: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"arch": [list(map(int, arch.widths)), arch.activation], "replicas": R, "epochs": E,
                         "first": first, "block": size, "options": options}, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()
