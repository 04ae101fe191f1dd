"""Exact merges of particle results that ran disjoint ranges of one ensemble.

Particle i's path depends only on (seed, i), so the ranges [start, stop) of one ensemble
(``simulate(..., particles=(start, stop))``) hold exactly the paths of the whole run. What a
run reduces merges exactly too: histogram counts, survivors and exit faces are integers;
moments are merged from the ranges' per-block moments in block order, as a single run merges
its own blocks, so they are bitwise the single run's when the ranges meet at multiples of
:data:`~ib_physics.particles._reducers.REDUCTION_BLOCK` (counted from the first range's start).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import _reducers
from .result import BlockMoments, ParticleHistogram, ParticleResult

__all__ = ["merge_particle_results"]


def merge_particle_results(parts: Sequence[ParticleResult]) -> ParticleResult:
    """Join results of adjacent particle ranges of one ensemble into the result of their union.

    Parameters
    ----------
    parts : sequence of ParticleResult
        Results of ``simulate(..., particles=(start, stop))`` with the same inputs otherwise,
        in any order; together their ranges must be contiguous. All or none may be
        :meth:`~ParticleResult.reduced`.

    Returns
    -------
    ParticleResult
        Bitwise the result of one run over the union (moments, survival, histogram, first-passage
        times, exit faces, positions, trails; see :meth:`ParticleResult.digest`), with the
        union's per-block moments, so merged results merge further.

    Raises
    ------
    ValueError
        Parts of different runs, overlapping or non-adjacent ranges, ranges that do not meet at
        a block boundary, or parts without block moments.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("`parts` is empty: nothing to merge.")
    for k, p in enumerate(parts):
        if not isinstance(p, ParticleResult):
            raise TypeError(f"`parts[{k}]` must be a ParticleResult, got {type(p).__name__}.")
        if p.blocks is None:
            raise ValueError(f"`parts[{k}]` holds no block moments: run the ranges with "
                             "simulate(..., particles=(start, stop)).")
    parts.sort(key=lambda p: p.particle_range[0])
    first = parts[0]
    if len({p.final_positions is None for p in parts}) > 1:
        raise ValueError("some parts are reduced (no per-particle arrays) and some are not: reduce all or none.")
    _check_same_run(parts)
    begin = first.particle_range[0]
    block = first.blocks.block
    for prev, nxt in zip(parts[:-1], parts[1:]):
        if prev.particle_range[1] != nxt.particle_range[0]:
            raise ValueError(f"ranges {prev.particle_range} and {nxt.particle_range} are not adjacent: the parts "
                             "must cover one contiguous range without overlap.")
        if (nxt.particle_range[0] - begin) % block:
            raise ValueError(f"range {nxt.particle_range} starts {nxt.particle_range[0] - begin} particles after "
                             f"the first; an exact merge needs multiples of {block}.")
    end = parts[-1].particle_range[1]

    blocks = BlockMoments(block=block, **{name: np.concatenate([getattr(p.blocks, name) for p in parts], axis=1)
                                          for name in ("count", "mean", "comoment", "sq_disp")})
    n_t, d = first.t.size, first.dim
    count = np.zeros(n_t, dtype=np.int64)
    mean = np.full((n_t, d), np.nan)
    covariance = np.full((n_t, d, d), np.nan)
    msd = np.full(n_t, np.nan)
    for k in range(n_t):
        count[k], mean[k], covariance[k], msd[k] = _reducers.merge_moments(
            blocks.count[k], blocks.mean[k], blocks.comoment[k], blocks.sq_disp[k])
    n = end - begin
    survival = np.array([c / n for c in count.tolist()])

    histogram = None
    if first.histogram is not None:
        histogram = ParticleHistogram(edges=first.histogram.edges,
                                      counts=sum(p.histogram.counts for p in parts),
                                      outside=sum(p.histogram.outside for p in parts),
                                      n_particles=sum(p.histogram.n_particles for p in parts))
    traced = [p for p in parts if p.trails is not None]
    elapsed = float(sum(p.diagnostics.get("wall_time_s", 0.0) for p in parts))
    diagnostics: dict[str, Any] = dict(first.diagnostics)
    # The parts' times add up to the compute spent; a caller that ran them side by side knows the wall time.
    diagnostics.update(n_particles=n, wall_time_s=elapsed, compute_time_s=elapsed, merged_parts=len(parts),
                       particle_steps_per_s=(n * diagnostics.get("n_steps", 0) / elapsed) if elapsed > 0
                       else float("nan"))
    return ParticleResult(
        t=first.t, positions=_join([p.positions for p in parts], axis=1),
        unwrapped_positions=_join([p.unwrapped_positions for p in parts], axis=1),
        final_positions=_join([p.final_positions for p in parts]), alive=_join([p.alive for p in parts]),
        survival=survival, count=count, mean=mean, covariance=covariance, msd=msd, histogram=histogram,
        first_passage_time=_join([p.first_passage_time for p in parts]),
        exit_face=_join([p.exit_face for p in parts]), face_names=first.face_names,
        tracer_indices=np.concatenate([p.tracer_indices for p in parts]).astype(np.int64),
        trail_t=first.trail_t, trails=np.concatenate([p.trails for p in traced]) if traced else None,
        seed=first.seed, scheme=first.scheme, dt=first.dt, dynamics=first.dynamics, domain=first.domain,
        diagnostics=diagnostics, particle_range=(begin, end), ensemble_size=first.ensemble_size, blocks=blocks)


def _join(arrays: list[np.ndarray | None], axis: int = 0) -> np.ndarray | None:
    if any(a is None for a in arrays):
        return None
    return np.concatenate(arrays, axis=axis)


def _check_same_run(parts: list[ParticleResult]) -> None:
    """Refuse parts whose inputs (apart from the range) differ."""
    first = parts[0]
    ref = _inputs(first)
    for p in parts[1:]:
        other = _inputs(p)
        for key, value in ref.items():
            same = (np.array_equal(value, other[key]) if isinstance(value, np.ndarray)
                    else value == other[key])
            if not same:
                raise ValueError(f"parts {first.particle_range} and {p.particle_range} come from different runs "
                                 f"(their {key} differ).")


def _inputs(p: ParticleResult) -> dict[str, Any]:
    hist = p.histogram
    return {
        "seed": p.seed, "scheme": p.scheme, "dt": p.dt, "t": p.t, "trail_t": p.trail_t,
        "ensemble size": p.ensemble_size, "face names": p.face_names, "dynamics": p.dynamics.to_dict(),
        "domain": None if p.domain is None else p.domain.to_dict(), "block size": p.blocks.block,
        "histogram edges": None if hist is None else [e.tolist() for e in hist.edges],
        "stored positions": p.positions is None,
    }
