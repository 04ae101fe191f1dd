"""One particle ensemble split into ranges, run on an executor, merged exactly."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from .._validation import as_float_array, check_int_range
from ..domains import Box, Cylinder
from ..dynamics import Dynamics
from ..particles import REDUCTION_BLOCK, ParticleResult, merge_particle_results, simulate
from ..particles.result import read_particle_result, write_particle_result
from ..particles.simulate import flavour_probes
from ..random import MAX_PARTICLES, philox_key, seed_entropy
from .executors import TaskRunner
from .store import TaskStore

__all__ = ["simulate_ensemble", "ensemble_ranges"]


def ensemble_ranges(n_particles: int, block_particles: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of ``block_particles`` (a multiple of the merge's block) covering
    ``n_particles``; the last one holds the remainder."""
    n = check_int_range(n_particles, "n_particles", 1, MAX_PARTICLES - 1)
    size = check_int_range(block_particles, "block_particles", 1, MAX_PARTICLES - 1)
    if size % REDUCTION_BLOCK:
        raise ValueError(f"`block_particles` must be a multiple of {REDUCTION_BLOCK} (the moments' block, so that "
                         f"ranges merge exactly), got {size}.")
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _simulate_range(dynamics: Dynamics, x0: np.ndarray, t_span: tuple[float, float], n_particles: int,
                    particles: tuple[int, int], options: dict[str, Any], per_particle: bool) -> ParticleResult:
    """One task: a particle range, reduced on the worker unless per-particle arrays are asked for."""
    result = simulate(dynamics, x0, t_span, n_particles=n_particles, particles=particles, **options)
    return result if per_particle else result.reduced()


def simulate_ensemble(
    dynamics: Dynamics,
    x0: Any,
    t_span: Sequence[float],
    *,
    dt: float,
    n_particles: int | None = None,
    domain: Box | Cylinder | None = None,
    t_eval: Any = None,
    seed: int | np.random.SeedSequence | None = None,
    scheme: str = "euler_maruyama",
    store_positions: bool = False,
    histogram_edges: Sequence[Any] | None = None,
    tracers: int | Sequence[int] = 0,
    trail_every: int = 1,
    brownian_bridge: bool = True,
    executor: Any = None,
    block_particles: int | None = None,
    per_particle: bool = False,
    threads_per_worker: int = 1,
    retries: int = 2,
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> ParticleResult:
    """:func:`~ib_physics.simulate` for one ensemble, split into particle ranges run on an executor.

    The physics arguments are those of :func:`~ib_physics.simulate` (``store_positions``
    defaults to False here). The result is bitwise the one of a single ``simulate`` call with
    the same seed (its :meth:`~ib_physics.ParticleResult.digest`), for any executor, number of
    workers, ``block_particles`` or completion order: particle i's path depends only on
    (seed, i), and the ranges' moments merge in the single run's block order.

    Parameters
    ----------
    executor : None, int, concurrent.futures.Executor or dask.distributed.Client
        Where the ranges run (see :class:`~ib_physics.parallel.TaskRunner`): None, a local
        process pool of one worker per CPU; an int, a pool of that many workers.
    block_particles : int, optional
        Particles per task, a multiple of :data:`~ib_physics.particles.REDUCTION_BLOCK`;
        default about four tasks per worker.
    per_particle : bool
        Bring per-particle arrays (final positions, survivors, first-passage times, exit faces,
        stored positions) back from the workers; by default only the reductions travel
        (moments, survival, histogram, trails) and the result is
        :meth:`~ib_physics.ParticleResult.reduced`.
    threads_per_worker : int
        Kernel threads per task.
    retries : int
        Tries of a task whose worker was lost.
    checkpoint : path, optional
        HDF5 file of finished ranges, rewritten atomically as each finishes; a rerun with the same
        inputs skips them (and gives the same result).
    progress : bool
        A tqdm bar over particle ranges.

    Returns
    -------
    ParticleResult
        With ``diagnostics["merged_parts"]`` the number of ranges.
    """
    if not isinstance(dynamics, Dynamics):
        raise TypeError(f"`dynamics` must be an ib_physics.Dynamics, got {type(dynamics).__name__}.")
    for name, value in (("per_particle", per_particle), ("store_positions", store_positions),
                        ("progress", progress)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    if store_positions and not per_particle:
        raise ValueError("`store_positions=True` keeps per-particle arrays: it needs `per_particle=True`.")
    try:
        arr = as_float_array(x0, "x0")
    except TypeError:
        raise TypeError(f"`x0` must be numbers: shape (N, d), (d,) or a scalar, got {type(x0).__name__}.") from None
    if arr.ndim == 2:
        ensemble = arr.shape[0] if n_particles is None else check_int_range(n_particles, "n_particles", 1,
                                                                             MAX_PARTICLES - 1)
        if arr.shape[0] != ensemble:
            raise ValueError(f"`n_particles`={ensemble} disagrees with `x0` rows ({arr.shape[0]}).")
    else:
        if n_particles is None:
            raise ValueError("`n_particles` is required when `x0` is a single point.")
        ensemble = check_int_range(n_particles, "n_particles", 1, MAX_PARTICLES - 1)
    started = time.perf_counter()
    # One seed for every range: None draws fresh entropy once, here.
    sequence, _, _ = philox_key(seed)
    options = dict(dt=dt, domain=domain, t_eval=t_eval, seed=sequence, scheme=scheme,
                   store_positions=store_positions, histogram_edges=histogram_edges, tracers=tracers,
                   trail_every=trail_every, brownian_bridge=brownian_bridge, progress=False)
    with TaskRunner(executor, threads_per_worker=threads_per_worker, retries=retries) as runner:
        if block_particles is None:
            per_task = -(-ensemble // (4 * runner.workers))
            block_particles = max(1, -(-per_task // REDUCTION_BLOCK)) * REDUCTION_BLOCK
        ranges = ensemble_ranges(ensemble, block_particles)
        options["threads"] = runner.threads_per_worker
        # Validate every input and compile the kernels here, once, before any task fans out: a
        # bad argument fails now, and workers on this machine load the compiled kernels from disk.
        # Then one particle of each other kernel flavour the ranges take (with or without tracers).
        first = ranges[0][0]
        for probe in [first] + flavour_probes(tracers, ensemble, ranges, first):
            simulate(dynamics, arr[probe:probe + 1] if arr.ndim == 2 else arr, t_span,
                     n_particles=ensemble, particles=(probe, probe + 1), **options)
        store = None
        if checkpoint is not None:
            store = TaskStore(checkpoint, _fingerprint(dynamics, arr, t_span, ensemble, options, per_particle,
                                                       block_particles))
        parts: dict[str, ParticleResult] = {}
        if store is not None:
            for name in store.done:
                parts[name] = store.read(name, read_particle_result)
        shared_dynamics = runner.share(dynamics)
        tasks = {f"{a}-{b}": (shared_dynamics, arr[a:b] if arr.ndim == 2 else arr, tuple(t_span), ensemble, (a, b),
                              options, per_particle) for a, b in ranges}
        parts = runner.collect(_simulate_range, tasks, done=parts, store=store, write=write_particle_result,
                               progress=progress, desc="ensemble", unit="range")
    merged = merge_particle_results(list(parts.values()))
    wall = time.perf_counter() - started
    steps = merged.diagnostics.get("n_steps", 0)
    return replace(merged, diagnostics={**merged.diagnostics, "wall_time_s": wall, "workers": runner.workers,
                                        "particle_steps_per_s": ensemble * steps / wall if wall > 0 else float("nan")})


def _fingerprint(dynamics: Dynamics, x0: np.ndarray, t_span: Sequence[float], ensemble: int,
                 options: dict[str, Any], per_particle: bool, block: int) -> str:
    h = hashlib.sha256()
    plain = {k: v for k, v in options.items() if k not in ("seed", "domain", "threads", "progress",
                                                            "histogram_edges", "t_eval", "tracers")}
    h.update(json.dumps({"dynamics": dynamics.to_dict(), "t_span": [float(t) for t in t_span],
                         "ensemble": ensemble, "per_particle": per_particle, "block": block,
                         "seed": seed_entropy(options["seed"]), "options": plain,
                         "domain": None if options["domain"] is None else options["domain"].to_dict(),
                         "edges": None if options["histogram_edges"] is None
                         else [np.asarray(e, dtype=float).tolist() for e in options["histogram_edges"]],
                         "t_eval": None if options["t_eval"] is None
                         else np.asarray(options["t_eval"], dtype=float).tolist(),
                         "tracers": np.asarray(options["tracers"]).tolist()},
                        sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(x0, dtype=float).tobytes())
    return h.hexdigest()
