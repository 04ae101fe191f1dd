"""The particle engine's entry point: :func:`simulate`."""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import _coefficients, io
from .._validation import (as_bool, as_float_array, as_path, check_finite_positive, check_int_range, check_memory,
                           check_t_span)
from ..domains import Box, Cylinder, unbounded_kernel_arrays
from ..dynamics import Dynamics, DynamicsPlan
from ..parallel.threads import ThreadRunner, resolve_threads
from ..random import MAX_PARTICLES, philox_key, seed_entropy
from . import _kernels, _reducers
from .result import BlockMoments, ParticleHistogram, ParticleResult
from .schemes import get_scheme

__all__ = ["simulate", "StabilityWarning"]

#: Largest array of stored snapshots or trails simulate() allocates without being told otherwise.
MAX_STORED_BYTES = 4 * 2**30
#: Largest particle state one call holds (split larger ensembles: ib_physics.parallel.simulate_ensemble).
MAX_STATE_BYTES = 32 * 2**30
#: Most steps one run takes (beyond, a step count is a sign of a mistyped dt).
MAX_STEPS = 1e12
#: Particle-steps per kernel call (keeps progress updates and Ctrl-C responsive).
_WORK_PER_CALL = 20_000_000


class StabilityWarning(UserWarning):
    """The step size is too large for the stiffness of the drift."""


ProgressCallback = Callable[[int, int], None]


@dataclass
class _State:
    """Mutable state of a run between output times (checkpointed as is)."""

    x: np.ndarray
    images: np.ndarray
    alive: np.ndarray
    first_passage: np.ndarray
    exit_face: np.ndarray
    trails: np.ndarray | None
    positions: np.ndarray | None
    unwrapped: np.ndarray | None
    survival: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    msd: np.ndarray
    hist_counts: np.ndarray | None
    hist_outside: np.ndarray | None
    block_count: np.ndarray | None
    block_mean: np.ndarray | None
    block_comoment: np.ndarray | None
    block_sq: np.ndarray | None
    next_output: int
    step: int
    elapsed: float


def simulate(
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
    store_positions: bool = True,
    histogram_edges: Sequence[Any] | None = None,
    tracers: int | Sequence[int] = 0,
    trail_every: int = 1,
    brownian_bridge: bool = True,
    chunk_size: int = 1 << 20,
    threads: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_interval: float = 60.0,
    progress: bool | ProgressCallback = False,
    particles: tuple[int, int] | None = None,
) -> ParticleResult:
    r"""Simulate Brownian particles of an Itô SDE, one trajectory per particle.

    .. math:: dX = a(X, t)\,dt + \sqrt{2 D(X, t)}\,dW

    with ``a`` and ``D`` from ``dynamics``, inside ``domain`` (free space when None).

    Parameters
    ----------
    dynamics : Dynamics
        Drift and diffusion.
    x0 : array_like, shape (N, d), (d,) or scalar
        Initial positions; a single point is used for all ``n_particles``.
    t_span : (t0, t1)
        Start and end; ``t1 - t0`` must be a whole number of steps ``dt``.
    dt : float
        Step size > 0.
    n_particles : int, optional
        Number of particles when ``x0`` is a single point (1 <= N < 2**32).
    domain : Box, Cylinder or None
        Walls; see :mod:`ib_physics.domains`.
    t_eval : array_like, optional
        Sorted output times on the step grid inside ``t_span``; default ``(t0, t1)``.
    seed : int, SeedSequence or None
        Seed of the counter-based generator. Particle ``i``'s path depends only on
        ``(seed, i)``: identical for any thread count, ``chunk_size`` or resume.
    scheme : {"euler_maruyama", "milstein", "sra1"}
        Integrator; see :data:`ib_physics.particles.SCHEMES` for declared orders.
        ``"sra1"`` needs position-independent diffusion.
    store_positions : bool
        Keep all positions at every output time (memory N x d x n_t). Set False
        for large ensembles and use the streaming moments and histograms.
    histogram_edges : sequence of d array_like, optional
        Bin edges per axis; counts of living particles at every output time.
    tracers : int or sequence of int
        Particles whose full trails are kept: the first ``tracers`` particles or
        explicit indices.
    trail_every : int
        Keep every ``trail_every``-th step of the trails.
    brownian_bridge : bool
        Test each step for an unseen crossing of absorbing faces (Brownian-bridge
        probability), which makes first-passage statistics first order in dt.
    chunk_size : int
        Particles per kernel call (granularity of progress and interruption only).
    threads : int, optional
        Worker threads; default Numba's thread count (``NUMBA_NUM_THREADS``).
        Results are bitwise the same for any value.
    checkpoint : path, optional
        HDF5 file holding the run state, written atomically every
        ``checkpoint_interval`` seconds and on Ctrl-C; if it exists and matches
        the inputs, the run resumes from it and gives bitwise the same result.
    checkpoint_interval : float
        Seconds between checkpoints.
    progress : bool or callable
        Show a tqdm bar, or call ``progress(done, total)`` with particle-steps.
    particles : (start, stop), optional
        Run only particles ``[start, stop)`` of the ensemble (of ``n_particles``, or of
        ``x0``'s rows): the same paths, bit for bit, as those particles in the whole run.
        ``x0`` may be a point, the whole ensemble's rows or the range's own rows (then
        ``n_particles`` gives the ensemble's size); ``tracers`` are global indices, and
        those inside the range are traced. The result records the range and keeps its
        per-block moments, so that :func:`~ib_physics.particles.merge_particle_results`
        joins ranges that meet at multiples of
        :data:`~ib_physics.particles.REDUCTION_BLOCK` into the whole run's result.

    Returns
    -------
    ParticleResult

    Raises
    ------
    ValueError, TypeError
        On invalid input, naming the argument and the allowed range.

    Warns
    -----
    StabilityWarning
        When stiffness x dt exceeds 1 (explicit steps overshoot; above 2 they diverge).
    """
    if not isinstance(dynamics, Dynamics):
        raise TypeError(f"`dynamics` must be an ib_physics.Dynamics, got {type(dynamics).__name__}.")
    sch = get_scheme(scheme)
    t0, t1 = check_t_span(t_span)
    dt = check_finite_positive(dt, "dt")
    n_steps = _whole_steps(t1 - t0, dt, "t_span")
    x_init, first, ensemble = _ensemble_rows(x0, n_particles, particles, dynamics, domain)
    n, d = x_init.shape
    plan = dynamics.plan(d, t0, t1)
    if sch.additive_only and not plan.is_additive:
        raise ValueError(f"`scheme`={scheme!r} needs position-independent diffusion; use 'milstein' "
                         "or 'euler_maruyama' with a DiffusionField.")
    out_steps = _output_steps(t_eval, t0, t1, dt, n_steps)
    t_out = t0 + out_steps * dt
    store_positions = as_bool(store_positions, "store_positions")
    brownian_bridge = as_bool(brownian_bridge, "brownian_bridge")
    if not (progress is True or progress is False or callable(progress)):
        progress = as_bool(progress, "progress")
    edges = _check_edges(histogram_edges, d)
    if edges is not None:
        bins = float(np.prod([e.size - 1.0 for e in edges]))
        check_memory(8.0 * bins * out_steps.size, f"histograms of {bins:.3g} bins at {out_steps.size} output times",
                     "histogram_edges")
    if checkpoint is not None:
        checkpoint = as_path(checkpoint, "checkpoint", writable_dir=True)
    tracer_global = _check_tracers(tracers, ensemble)
    tracer_global = tracer_global[(tracer_global >= first) & (tracer_global < first + n)]
    tracer_idx = tracer_global - first
    trail_every = check_int_range(trail_every, "trail_every", 1, n_steps)
    chunk_size = check_int_range(chunk_size, "chunk_size", 1)
    checkpoint_interval = check_finite_positive(checkpoint_interval, "checkpoint_interval")
    n_trail = n_steps // trail_every + 1
    periodic = isinstance(domain, Box) and domain.has("periodic")
    stored = (out_steps.size * n * d * 8 * (2 if periodic else 1) if store_positions else 0)
    stored += tracer_idx.size * n_trail * d * 8
    if stored > MAX_STORED_BYTES:
        raise ValueError(
            f"storing positions/trails would take {stored / 2**30:.1f} GiB (> 4 GiB): set "
            "`store_positions=False` and use moments or `histogram_edges`, or raise `trail_every`."
        )
    _warn_stiffness(dynamics, d, dt, sch.name)
    sequence, key0, key1 = philox_key(seed)
    seed_text = seed_entropy(sequence)

    if domain is None:
        kind, lower, upper, faces, radius, height = unbounded_kernel_arrays(d)
    else:
        kind, lower, upper, faces, radius, height = domain.kernel_arrays()
    absorbing = domain is not None and domain.has("absorbing")
    lengths = (upper - lower) if isinstance(domain, Box) else np.zeros(d)
    seg_first = _segment_steps(plan, t0, dt)

    keep_blocks = particles is not None
    fingerprint = _fingerprint(dynamics, domain, x_init, t0, dt, n_steps, out_steps, seed_text, sch.name,
                               store_positions, edges, tracer_idx, trail_every, brownian_bridge,
                               (first, ensemble, keep_blocks))
    state = _load_checkpoint(checkpoint, fingerprint) if checkpoint is not None else None
    if state is None:
        state = _new_state(x_init, out_steps.size, tracer_idx.size, n_trail, store_positions, periodic, edges,
                           keep_blocks)
    trail_slot = np.full(n, -1, dtype=np.int64)
    trail_slot[tracer_idx] = np.arange(tracer_idx.size)
    trails_arg = state.trails if state.trails is not None else np.zeros((0, 1, d))
    n_threads = resolve_threads(threads)
    # Affine drift with additive noise takes the fast Euler–Maruyama kernel (Milstein equals EM there).
    affine = plan.is_additive and not plan.has_nonlinear_terms and sch.code != _kernels.SCHEME_SRA1
    noise_dt = np.sqrt(2.0 * plan.diff * dt)
    trail_stride = trail_every if tracer_idx.size else 0
    bridge = bool(brownian_bridge and absorbing)
    key0, key1 = np.uint64(key0), np.uint64(key1)

    # The kernel flavour compiled without the code this run cannot execute (walls, glass, trails, tables).
    run_kernel = _kernels.particle_kernel(
        affine=affine, free_space=domain is None, boxes_only=not isinstance(domain, Cylinder),
        tracers=tracer_idx.size > 0, tables=_coefficients.uses_tables(plan.nl_rows, plan.field_on))

    def advance(step_begin: int, step_end: int, a: int, b: int) -> None:
        scratch = _kernels.kernel_scratch()  # per call: calls on threads run at once
        if affine:
            run_kernel(
                state.x[a:b], state.images[a:b], state.alive[a:b], state.first_passage[a:b],
                state.exit_face[a:b], first + a, step_begin, step_end, t0, dt, seg_first, plan.lin, plan.off,
                noise_dt, kind, lower, upper, faces, radius, height, absorbing, bridge,
                trail_slot[a:b], trail_stride, trails_arg, key0, key1, *scratch,
            )
        else:
            run_kernel(
                state.x[a:b], state.images[a:b], state.alive[a:b], state.first_passage[a:b],
                state.exit_face[a:b], first + a, step_begin, step_end, t0, dt,
                seg_first, plan.lin, plan.off, plan.nl_scale, plan.nl_rows, plan.tables, plan.diff,
                plan.field_on, plan.field_grid, plan.field_tables, plan.alpha,
                kind, lower, upper, faces, radius, height, sch.code, bridge,
                trail_slot[a:b], trail_stride, trails_arg, key0, key1, *scratch,
            )

    total_work = n * n_steps
    reporter = _Progress(progress, total_work, done=n * state.step)
    runner = ThreadRunner(n_threads)
    started = time.perf_counter()
    last_checkpoint = started
    try:
        while state.next_output < out_steps.size:
            target = int(out_steps[state.next_output])
            while state.step < target:
                # One piece of steps for all particles; an interrupt is deferred to its end so
                # that every particle stands at the same step when the state is saved.
                steps_per_call = max(1, min(target - state.step, _WORK_PER_CALL // n))
                end = state.step + steps_per_call
                interrupted: KeyboardInterrupt | None = None
                for a in range(0, n, chunk_size):
                    b = min(n, a + chunk_size)
                    try:
                        runner.run(partial(advance, state.step, end), a, b, align=_kernels.LANES)
                    except KeyboardInterrupt as exc:  # the piece finished; stop after this step range
                        interrupted = interrupted or exc
                    try:
                        reporter.advance((b - a) * (end - state.step))
                    except KeyboardInterrupt as exc:
                        interrupted = interrupted or exc
                state.step = end
                if interrupted is not None:
                    raise interrupted
            _record(state, state.next_output, x_init, lengths, edges)
            state.next_output += 1
            now = time.perf_counter()
            if checkpoint is not None and now - last_checkpoint >= checkpoint_interval:
                state.elapsed += now - started
                started = now
                _save_checkpoint(checkpoint, fingerprint, state)
                last_checkpoint = now
    except KeyboardInterrupt:
        if checkpoint is not None:
            state.elapsed += time.perf_counter() - started
            _save_checkpoint(checkpoint, fingerprint, state)
        raise
    finally:
        runner.close()
        reporter.close()
    state.elapsed += time.perf_counter() - started
    if checkpoint is not None:
        _save_checkpoint(checkpoint, fingerprint, state)

    hist = None
    if edges is not None:
        shape = tuple(e.size - 1 for e in edges)
        hist = ParticleHistogram(edges=tuple(edges), counts=state.hist_counts.reshape((out_steps.size,) + shape),
                                 outside=state.hist_outside, n_particles=n)
    face_names = () if domain is None else domain.face_names
    diagnostics = {
        "n_steps": n_steps,
        "n_particles": n,
        "wall_time_s": state.elapsed,
        "particle_steps_per_s": (n * n_steps / state.elapsed) if state.elapsed > 0 else float("nan"),
        "threads": n_threads,
        "stiffness_dt": dynamics.stiffness_bound(d) * dt,
        "normals_per_step": sch.normals_per_axis * d,
        "brownian_bridge": bridge,
        "kernel": "affine" if affine else "general",
        **_dimensionless(plan, domain, x_init, dt),
    }
    return ParticleResult(
        t=t_out, positions=state.positions, unwrapped_positions=state.unwrapped,
        final_positions=state.x.copy(), alive=state.alive.astype(bool), survival=state.survival,
        count=state.count, mean=state.mean, covariance=state.covariance, msd=state.msd, histogram=hist,
        first_passage_time=state.first_passage if absorbing else None,
        exit_face=state.exit_face if absorbing else None, face_names=face_names,
        tracer_indices=tracer_global, trail_t=t0 + np.arange(n_trail) * trail_every * dt,
        trails=state.trails, seed=seed_text, scheme=sch.name, dt=dt, dynamics=dynamics, domain=domain,
        diagnostics=diagnostics, particle_range=(first, first + n), ensemble_size=ensemble,
        blocks=(BlockMoments(block=_reducers.REDUCTION_BLOCK, count=state.block_count, mean=state.block_mean,
                             comoment=state.block_comoment, sq_disp=state.block_sq) if keep_blocks else None),
    )


# ----------------------------------------------------------------------------- validation

def _whole_steps(length: float, dt: float, name: str) -> int:
    steps = length / dt
    if not steps <= MAX_STEPS:
        raise ValueError(f"`{name}` spans {steps:.3g} steps of dt={dt!r}; at most {MAX_STEPS:.0e} steps are "
                         "allowed: raise `dt`.")
    k = int(round(steps))
    if k < 1 or abs(steps - k) > 1e-9 * max(1.0, steps):
        raise ValueError(f"`{name}` spans {length!r}, which is not a whole number of steps dt={dt!r} "
                         f"({steps:.6g} steps).")
    return k


def _output_steps(t_eval: Any, t0: float, t1: float, dt: float, n_steps: int) -> np.ndarray:
    if t_eval is None:
        return np.array([0, n_steps], dtype=np.int64)
    te = np.atleast_1d(as_float_array(t_eval, "t_eval"))
    if te.ndim != 1 or te.size == 0 or not np.all(np.isfinite(te)):
        raise ValueError("`t_eval` must be a non-empty 1-D array of finite times.")
    if np.any(np.diff(te) <= 0):
        raise ValueError("`t_eval` must be strictly increasing.")
    tol = 1e-9 * max(1.0, abs(t0), abs(t1))
    if te[0] < t0 - tol or te[-1] > t1 + tol:
        raise ValueError(f"`t_eval` must lie inside `t_span` [{t0}, {t1}], got [{te[0]}, {te[-1]}].")
    steps = (te - t0) / dt
    k = np.round(steps).astype(np.int64)
    off = np.abs(steps - k) > 1e-9 * np.maximum(1.0, steps)
    if np.any(off):
        bad = te[np.argmax(off)]
        raise ValueError(f"`t_eval` must lie on the step grid t0 + k*dt (dt={dt}); {bad} does not.")
    return k


def _initial_positions(x0: Any, n_particles: int | None, dynamics: Dynamics,
                       domain: Box | Cylinder | None) -> np.ndarray:
    try:
        arr = as_float_array(x0, "x0")
    except TypeError:
        raise TypeError(f"`x0` must be numbers: shape (N, d), (d,) or a scalar, got {type(x0).__name__}.") from None
    if domain is not None and not isinstance(domain, (Box, Cylinder)):
        raise TypeError(f"`domain` must be a Box, a Cylinder or None, got {type(domain).__name__}.")
    if arr.ndim == 2:
        if n_particles is not None and n_particles != arr.shape[0]:
            raise ValueError(f"`n_particles`={n_particles} disagrees with `x0` rows ({arr.shape[0]}).")
        x = arr
    elif arr.ndim <= 1:
        if n_particles is None:
            raise ValueError("`n_particles` is required when `x0` is a single point.")
        n = check_int_range(n_particles, "n_particles", 1, MAX_PARTICLES - 1)
        point = np.atleast_1d(arr)
        x = np.broadcast_to(point, (n, point.size))
    else:
        raise ValueError(f"`x0` must have shape (N, d), (d,) or be a scalar, got {arr.shape}.")
    n, d = x.shape
    if not 1 <= d <= 3:
        raise ValueError(f"`x0` must have 1 to 3 coordinates, got {d}.")
    if not 1 <= n < MAX_PARTICLES:
        raise ValueError(f"the number of particles must be in [1, 2**32), got {n}.")
    # The run's state: positions (three copies over a run), periodic images, flags, first passages.
    check_memory(n * (32.0 * d + 10.0), f"the state of {n:,} particles in {d}D", "n_particles",
                 limit=MAX_STATE_BYTES, hint=" or run the ensemble in ranges (ib_physics.parallel.simulate_ensemble)")
    if not np.all(np.isfinite(x)):
        raise ValueError("`x0` must be finite.")
    if dynamics.dim is not None and dynamics.dim != d:
        raise ValueError(f"`x0` is {d}-dimensional but the dynamics is {dynamics.dim}-dimensional.")
    if domain is not None:
        if domain.dim != d:
            raise ValueError(f"`x0` is {d}-dimensional but the domain is {domain.dim}-dimensional.")
        inside = domain.contains(x)
        if not np.all(inside):
            i = int(np.argmin(inside))
            raise ValueError(f"`x0` must lie inside the domain; particle {i} at {x[i].tolist()} does not.")
    return np.ascontiguousarray(x, dtype=float)


def _ensemble_rows(x0: Any, n_particles: int | None, particles: Any, dynamics: Dynamics,
                   domain: Box | Cylinder | None) -> tuple[np.ndarray, int, int]:
    """Initial rows of the particles run, the global index of the first, and the ensemble's size."""
    if particles is None:
        x = _initial_positions(x0, n_particles, dynamics, domain)
        return x, 0, x.shape[0]
    try:
        start, stop = particles
    except (TypeError, ValueError):
        raise TypeError(f"`particles` must be a pair (start, stop), got {particles!r}.") from None
    start = check_int_range(start, "particles[0] (start)", 0, MAX_PARTICLES - 2)
    stop = check_int_range(stop, "particles[1] (stop)", start + 1, MAX_PARTICLES - 1)
    try:
        arr = as_float_array(x0, "x0")
    except TypeError:
        raise TypeError(f"`x0` must be numbers: shape (N, d), (d,) or a scalar, got {type(x0).__name__}.") from None
    if arr.ndim == 2:
        rows = arr.shape[0]
        ensemble = rows if n_particles is None else check_int_range(n_particles, "n_particles", 1,
                                                                    MAX_PARTICLES - 1)
        _check_inside(start, stop, ensemble)
        if rows == ensemble:
            arr = arr[start:stop]
        elif rows != stop - start:
            raise ValueError(f"`x0` has {rows} rows: with `particles`=({start}, {stop}) it must hold the "
                             f"ensemble's {ensemble} rows or the range's {stop - start}.")
        x = _initial_positions(arr, None, dynamics, domain)
    else:
        if n_particles is None:
            raise ValueError("`n_particles` (the ensemble's size) is required when `x0` is a single point.")
        ensemble = check_int_range(n_particles, "n_particles", 1, MAX_PARTICLES - 1)
        _check_inside(start, stop, ensemble)
        x = _initial_positions(arr, stop - start, dynamics, domain)
    _check_inside(start, stop, ensemble)
    return x, start, ensemble


def _check_inside(start: int, stop: int, ensemble: int) -> None:
    if stop > ensemble:
        raise ValueError(f"`particles`=({start}, {stop}) must lie inside the ensemble of {ensemble} particles.")


def _check_edges(edges: Sequence[Any] | None, d: int) -> list[np.ndarray] | None:
    if edges is None:
        return None
    if isinstance(edges, np.ndarray) and edges.ndim == 1 and d == 1:
        edges = [edges]
    if not isinstance(edges, (list, tuple, np.ndarray)):
        raise TypeError(f"`histogram_edges` must be one array of bin edges per axis, got {type(edges).__name__}.")
    edges = list(edges)
    if len(edges) != d:
        raise ValueError(f"`histogram_edges` needs one edge array per axis ({d}), got {len(edges)}.")
    out = []
    for k, e in enumerate(edges):
        e = as_float_array(e, f"histogram_edges[{k}]")
        if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise ValueError(f"`histogram_edges[{k}]` must be >= 2 finite, strictly increasing edges.")
        out.append(e)
    return out


def flavour_probes(tracers: int | Sequence[int], ensemble_size: int, ranges: Sequence[tuple[int, int]],
                   probed: int) -> list[int]:
    """Particles whose one-particle runs compile the kernel flavours that ``ranges`` take beyond the
    one the run of particle ``probed`` compiled.

    Ensembles and sweeps validate their inputs on one particle before fanning out, and that run
    compiles the kernels the workers then load. A range with a traced particle takes the flavour
    with trail code, one without tracers the flavour without it; when the ranges need both, or
    the other one, a further one-particle run compiles it here, instead of every worker that gets
    such a range. ``tracers`` as for :func:`simulate` (checked the same way); ``ranges`` are
    [start, stop) in the ensemble.
    """
    traced = _check_tracers(tracers, ensemble_size)  # sorted
    bounds = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    first_inside = np.searchsorted(traced, bounds[:, 0])
    has_tracer = np.searchsorted(traced, bounds[:, 1]) > first_inside
    at = int(np.searchsorted(traced, probed))
    probed_traced = at < traced.size and traced[at] == probed
    if probed_traced and not has_tracer.all():
        return [int(bounds[np.argmin(has_tracer), 0])]  # the first particle of an untraced range
    if not probed_traced and has_tracer.any():
        return [int(traced[first_inside[np.argmax(has_tracer)]])]  # the first tracer of a traced range
    return []


def _check_tracers(tracers: int | Sequence[int], n: int) -> np.ndarray:
    if isinstance(tracers, np.ndarray) and tracers.ndim == 0:
        tracers = tracers[()]
    if isinstance(tracers, (int, np.integer)) and not isinstance(tracers, (bool, np.bool_)):
        k = check_int_range(tracers, "tracers", 0, n)
        return np.arange(k, dtype=np.int64)
    try:
        idx = np.asarray(tracers)
    except ValueError:
        raise TypeError("`tracers` must be an int or a 1-D sequence of particle indices.") from None
    if idx.ndim != 1 or (idx.size and (not np.issubdtype(idx.dtype, np.integer) or any(
            isinstance(v, (bool, np.bool_)) for v in (tracers if isinstance(tracers, (list, tuple)) else ())))):
        raise TypeError("`tracers` must be an int or a 1-D sequence of particle indices.")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"`tracers` indices must be in [0, {n - 1}].")
    if np.unique(idx).size != idx.size:
        raise ValueError("`tracers` indices must be distinct.")
    return np.sort(idx)  # trails in particle order: ranges of an ensemble join in order


def _warn_stiffness(dynamics: Dynamics, d: int, dt: float, scheme: str) -> None:
    value = dynamics.stiffness_bound(d) * dt
    if value > 1.0:
        warnings.warn(
            f"stiffness x dt = {value:.3g} > 1 for scheme {scheme!r}: the drift step overshoots "
            "(explicit schemes diverge above 2); reduce `dt`.",
            StabilityWarning, stacklevel=3,
        )


def _segment_steps(plan: DynamicsPlan, t0: float, dt: float) -> np.ndarray:
    """First step index of each constant-coefficient segment."""
    steps = np.zeros(plan.n_segments, dtype=np.int64)
    for j in range(1, plan.n_segments):
        exact = (plan.starts[j] - t0) / dt
        k = int(np.ceil(exact - 1e-9))
        if abs(exact - round(exact)) > 1e-9 * max(1.0, exact):
            warnings.warn(f"coefficient switch at t={plan.starts[j]} falls between steps; it takes effect "
                          f"at t={t0 + k * dt}.", StabilityWarning, stacklevel=3)
        steps[j] = k
    return steps


def _lane_coefficients(plan: DynamicsPlan, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drift (with alpha grad D) and per-axis D at ``points`` (n, d) in the plan's first segment.

    Through the particle kernel's own lane helpers, called with the argument types the kernel
    uses, so a first run compiles nothing more for these diagnostics.
    """
    n, d = points.shape
    lanes = _kernels.LANES
    drift_lanes, diffusion_lanes = _kernels.lane_helpers(_coefficients.uses_tables(plan.nl_rows, plan.field_on))
    xs = np.zeros((3, lanes))
    a = np.zeros((3, lanes))
    dd = np.zeros((3, lanes))
    gd = np.zeros((3, lanes))
    cells = np.zeros((6, lanes))
    values = np.zeros((4, lanes))
    drift = np.empty((n, d))
    dcoef = np.empty((n, d))
    for p0 in range(0, n, lanes):
        m = min(lanes, n - p0)
        xs[:d, :m] = points[p0:p0 + m].T
        drift_lanes(xs, np.int64(m), np.int64(d), np.int64(0), plan.lin, plan.off, plan.nl_scale,
                    plan.nl_rows, plan.tables, a, cells, values)
        diffusion_lanes(xs, np.int64(m), np.int64(d), np.int64(0), plan.diff, plan.field_on,
                        plan.field_grid, plan.field_tables, dd, gd, cells, values)
        drift[p0:p0 + m] = (a[:d, :m] + plan.alpha * gd[:d, :m]).T
        dcoef[p0:p0 + m] = dd[:d, :m].T
    return drift, dcoef


def _dimensionless(plan: DynamicsPlan, domain: Box | Cylinder | None, x: np.ndarray,
                   dt: float) -> dict[str, float]:
    """Péclet number and step ratios from the drift and diffusion at (a sample of) the start points."""
    sample = x[:: max(1, x.shape[0] // 1000)]
    if plan.has_nonlinear_terms or plan.field_on:
        a, dcoef = _lane_coefficients(plan, sample)
    else:
        a = sample * plan.lin[0] + plan.off[0]
        dcoef = np.broadcast_to(plan.diff[0], a.shape)
    speed = float(np.max(np.linalg.norm(a, axis=1)))
    d_min = float(np.min(dcoef))
    out = {"drift_step_over_noise_step": speed * dt / np.sqrt(2 * d_min * dt)}
    if domain is not None:
        out["peclet"] = speed * domain.size / d_min
        out["noise_step_over_domain"] = float(np.sqrt(2 * float(np.max(dcoef)) * dt) / domain.size)
    return out


# ----------------------------------------------------------------------------- state

def _new_state(x0: np.ndarray, n_out: int, n_tracers: int, n_trail: int, store: bool, periodic: bool,
               edges: list[np.ndarray] | None, keep_blocks: bool = False) -> _State:
    n, d = x0.shape
    n_bins = int(np.prod([e.size - 1 for e in edges])) if edges is not None else 0
    nb = -(-n // _reducers.REDUCTION_BLOCK)
    return _State(
        x=x0.copy(), images=np.zeros((n, d), dtype=np.int64), alive=np.ones(n, dtype=np.uint8),
        first_passage=np.full(n, np.nan), exit_face=np.full(n, -1, dtype=np.int8),
        trails=np.full((n_tracers, n_trail, d), np.nan) if n_tracers else None,
        positions=np.full((n_out, n, d), np.nan) if store else None,
        unwrapped=np.full((n_out, n, d), np.nan) if (store and periodic) else None,
        survival=np.zeros(n_out), count=np.zeros(n_out, dtype=np.int64), mean=np.full((n_out, d), np.nan),
        covariance=np.full((n_out, d, d), np.nan), msd=np.full(n_out, np.nan),
        hist_counts=np.zeros((n_out, n_bins), dtype=np.int64) if edges is not None else None,
        hist_outside=np.zeros(n_out, dtype=np.int64) if edges is not None else None,
        block_count=np.zeros((n_out, nb)) if keep_blocks else None,
        block_mean=np.zeros((n_out, nb, d)) if keep_blocks else None,
        block_comoment=np.zeros((n_out, nb, d, d)) if keep_blocks else None,
        block_sq=np.zeros((n_out, nb)) if keep_blocks else None,
        next_output=0, step=0, elapsed=0.0,
    )


def _record(state: _State, k: int, x0: np.ndarray, lengths: np.ndarray, edges: list[np.ndarray] | None) -> None:
    """Fill output slot ``k`` from the current state."""
    alive = state.alive.astype(bool)
    n = alive.size
    if state.positions is not None:
        state.positions[k][alive] = state.x[alive]
    if state.unwrapped is not None:
        state.unwrapped[k][alive] = state.x[alive] + state.images[alive] * lengths
    state.survival[k] = np.count_nonzero(alive) / n
    blocks = _reducers.block_moments(state.x, state.images, np.ascontiguousarray(lengths, dtype=float),
                                     state.alive, x0, _reducers.REDUCTION_BLOCK)
    count, mean, cov, msd = _reducers.merge_moments(*blocks)
    if state.block_count is not None:
        state.block_count[k], state.block_mean[k], state.block_comoment[k], state.block_sq[k] = blocks
    state.count[k] = count
    state.mean[k] = mean
    state.covariance[k] = cov
    state.msd[k] = msd
    if edges is not None:
        flat = np.concatenate(edges)
        starts = np.cumsum([0] + [e.size for e in edges[:-1]]).astype(np.int64)
        nb = np.array([e.size - 1 for e in edges], dtype=np.int64)
        uniform = np.array([np.allclose(np.diff(e), (e[-1] - e[0]) / (e.size - 1), rtol=1e-12, atol=0)
                            for e in edges])
        counts, outside = _reducers.histogram_counts(state.x, state.alive, flat, starts, nb, uniform)
        state.hist_counts[k] = counts
        state.hist_outside[k] = outside


class _Progress:
    """One progress path: a tqdm bar, a callback, or nothing."""

    def __init__(self, progress: bool | ProgressCallback, total: int, done: int) -> None:
        self.total = total
        self.done = done
        self.callback: ProgressCallback | None = None
        self.bar = None
        if callable(progress):
            self.callback = progress
        elif progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit="particle-step", unit_scale=True,
                            desc="particles")
        elif progress is not False:
            raise TypeError("`progress` must be True, False or a callable(done, total).")

    def advance(self, work: int) -> None:
        self.done += work
        if self.bar is not None:
            self.bar.update(work)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ----------------------------------------------------------------------------- checkpoints

def _fingerprint(dynamics: Dynamics, domain: Any, x0: np.ndarray, t0: float, dt: float, n_steps: int,
                 out_steps: np.ndarray, seed: str, scheme: str, store: bool, edges: Any,
                 tracers: np.ndarray, trail_every: int, bridge: bool, window: tuple[int, int, bool]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({
        "dynamics": dynamics.to_dict(), "domain": None if domain is None else domain.to_dict(),
        "t0": t0, "dt": dt, "n_steps": n_steps, "out": out_steps.tolist(), "seed": seed,
        "scheme": scheme, "store": store, "trail_every": trail_every, "bridge": bool(bridge),
        "edges": None if edges is None else [e.tolist() for e in edges],
        "window": list(window),
    }, sort_keys=True).encode())
    h.update(np.ascontiguousarray(x0).tobytes())
    h.update(tracers.tobytes())
    return h.hexdigest()


_STATE_ARRAYS = ("x", "images", "alive", "first_passage", "exit_face", "trails", "positions", "unwrapped",
                 "survival", "count", "mean", "covariance", "msd", "hist_counts", "hist_outside",
                 "block_count", "block_mean", "block_comoment", "block_sq")


def _save_checkpoint(path: str | os.PathLike[str], fingerprint: str, state: _State) -> None:
    with io.atomic_h5(path) as f:
        g = f.create_group("particle_checkpoint")
        g.attrs["fingerprint"] = fingerprint
        g.attrs["next_output"] = state.next_output
        g.attrs["step"] = state.step
        g.attrs["elapsed"] = state.elapsed
        io.write_arrays(g, {name: getattr(state, name) for name in _STATE_ARRAYS})


def _load_checkpoint(path: str | os.PathLike[str], fingerprint: str) -> _State | None:
    import h5py

    if not Path(path).exists():
        return None
    with h5py.File(path, "r") as f:
        io.check_schema(f, path)
        if "particle_checkpoint" not in f:
            raise ValueError(f"`checkpoint` file {path} is not a particle checkpoint.")
        g = f["particle_checkpoint"]
        stored = g.attrs["fingerprint"]
        stored = stored.decode() if isinstance(stored, bytes) else stored
        if stored != fingerprint:
            raise ValueError(f"`checkpoint` file {path} belongs to a run with other inputs; "
                             "remove it or choose another path.")
        arrays = io.read_arrays(g, list(_STATE_ARRAYS))
        return _State(**arrays, next_output=int(g.attrs["next_output"]), step=int(g.attrs["step"]),
                      elapsed=float(g.attrs["elapsed"]))
