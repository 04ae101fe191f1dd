"""Parameter scans of the particle engine: independent ``simulate`` runs on an executor, one file."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping

import numpy as np

from ..particles import ParticleResult, simulate
from ..particles.result import read_particle_result, write_particle_result
from ..particles.simulate import flavour_probes
from ..random import philox_key, seed_entropy
from .executors import TaskRunner
from .store import TaskStore

__all__ = ["simulate_sweep"]

_POSITIONAL = ("dynamics", "x0", "t_span")


def _run(options: dict[str, Any], per_particle: bool, threads: int) -> ParticleResult:
    """One run of a sweep (a task)."""
    kwargs = dict(options)
    args = [kwargs.pop(k) for k in _POSITIONAL]
    result = simulate(*args, threads=threads, **kwargs)
    return result if per_particle else result.reduced()


def _probe_particle(x0: Any, n_particles: Any, tracers: Any) -> int:
    """The particle whose one-particle run validates a sweep's run and compiles the kernel flavour
    the whole run takes: a tracer if the run traces any (the flavour with trail code), else 0.
    Inputs the run would refuse give 0, and that run raises simulate's own error."""
    try:
        rows = np.asarray(x0, dtype=float)
        size = rows.shape[0] if rows.ndim == 2 else int(n_particles)
    except (TypeError, ValueError):
        return 0
    if size < 1:
        return 0
    # Asked as if an untraced particle had been run: a tracer comes back when the run traces any
    # (``tracers`` checked as simulate checks it).
    traced = flavour_probes(tracers, size, [(0, size)], -1)
    return traced[0] if traced else 0


def simulate_sweep(runs: Mapping[str, Mapping[str, Any]], *, executor: Any = None, seed: Any = None,
                   path: str | os.PathLike[str] | None = None, per_particle: bool = False,
                   threads_per_worker: int = 1, retries: int = 2,
                   progress: bool = False) -> dict[str, ParticleResult]:
    """Independent :func:`~ib_physics.simulate` runs, e.g. a scan over a parameter, on an executor.

    Parameters
    ----------
    runs : mapping of str to mapping
        Per run name, the keywords of :func:`~ib_physics.simulate`, including ``dynamics``, ``x0``
        and ``t_span`` (``threads``, ``checkpoint`` and ``progress`` belong to the sweep).
    executor : None, int, concurrent.futures.Executor or dask.distributed.Client
        See :class:`~ib_physics.parallel.TaskRunner`.
    seed : int, SeedSequence or None
        Seeds the runs that state no ``seed`` of their own: run k (in the mapping's order) gets
        the k-th child of this sequence. Every result records the seed that reproduces it.
    path : path, optional
        One HDF5 file of the results, group ``tasks/<name>``, rewritten atomically as each run
        finishes; a rerun with the same runs skips the finished ones and reads them back.
    per_particle : bool
        Keep per-particle arrays in the results (by default :meth:`ParticleResult.reduced`).
    threads_per_worker, retries, progress :
        As for :func:`~ib_physics.parallel.simulate_ensemble`.

    Returns
    -------
    dict of str to ParticleResult
        In the order of ``runs``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError("`runs` must be a non-empty mapping of run name -> simulate keywords.")
    for name in ("per_particle", "progress"):
        value = locals()[name]
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    base, _, _ = philox_key(seed)
    children = base.spawn(len(runs))
    tasks: dict[str, dict[str, Any]] = {}
    for k, (name, options) in enumerate(runs.items()):
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"run names must be non-empty strings without '/', got {name!r}.")
        if not isinstance(options, Mapping):
            raise TypeError(f"run {name!r} must map simulate keywords to values, got {type(options).__name__}.")
        missing = [key for key in _POSITIONAL if key not in options]
        if missing:
            raise ValueError(f"run {name!r} lacks {missing}.")
        for key in ("threads", "checkpoint", "progress", "particles"):
            if key in options:
                raise ValueError(f"run {name!r}: `{key}` is set by the sweep, not per run.")
        opts = dict(options)
        opts.setdefault("seed", children[k])
        opts["progress"] = False
        tasks[name] = opts
    with TaskRunner(executor, threads_per_worker=threads_per_worker, retries=retries) as runner:
        # Validate every run (and compile its kernels) on its first particle, here, before any task fans out.
        for name, opts in tasks.items():
            probe = dict(opts)
            args = [probe.pop(k) for k in _POSITIONAL]
            try:
                particle = _probe_particle(args[1], probe.get("n_particles"), probe.get("tracers", 0))
                simulate(*args, threads=1, particles=(particle, particle + 1), **probe)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"run {name!r}: {exc}") from None
        store = None if path is None else TaskStore(path, _fingerprint(tasks, per_particle))
        results: dict[str, ParticleResult] = {}
        if store is not None:
            for name in store.done & set(tasks):
                results[name] = store.read(name, read_particle_result)
        results = runner.collect(_run, {name: (opts, per_particle, runner.threads_per_worker)
                                        for name, opts in tasks.items()},
                                 done=results, store=store, write=write_particle_result, progress=progress,
                                 desc="sweep", unit="run")
    return {name: results[name] for name in tasks}


def _canonical(value: Any) -> Any:
    """A JSON-able, order-stable description of a run's inputs (arrays by their hash)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.random.SeedSequence):
        return seed_entropy(value)
    if hasattr(value, "to_dict"):
        return _canonical(value.to_dict())
    if isinstance(value, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(value).tobytes() + str(value.shape).encode()).hexdigest()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


def _fingerprint(tasks: dict[str, dict[str, Any]], per_particle: bool) -> str:
    text = json.dumps({"runs": _canonical(tasks), "per_particle": per_particle}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
