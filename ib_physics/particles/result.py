"""Results of the particle engine."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .. import io
from .._pickling import PicklableDiagnostics
from ..domains import Domain, domain_from_dict
from ..dynamics import Dynamics

__all__ = ["BlockMoments", "ParticleHistogram", "ParticleResult", "load_particle_result"]

_GROUP = "particles"


@dataclass(frozen=True, eq=False)
class ParticleHistogram:
    """Counts of living particles on a fixed grid at each output time.

    Attributes
    ----------
    edges : tuple of numpy.ndarray
        Bin edges per axis, each of shape (n_k + 1,).
    counts : numpy.ndarray, shape (n_t, n_0[, n_1[, n_2]])
        Integer counts.
    outside : numpy.ndarray, shape (n_t,)
        Living particles outside the grid.
    n_particles : int
        Particles started (the normalisation of :meth:`density`).
    """

    edges: tuple[np.ndarray, ...]
    counts: np.ndarray
    outside: np.ndarray
    n_particles: int

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        return tuple(0.5 * (e[1:] + e[:-1]) for e in self.edges)

    @property
    def cell_volumes(self) -> np.ndarray:
        """Volume of each bin, shape (n_0[, n_1[, n_2]])."""
        widths = [np.diff(e) for e in self.edges]
        out = widths[0]
        for w in widths[1:]:
            out = np.multiply.outer(out, w)
        return out

    def density(self) -> np.ndarray:
        """Counts / (N x bin volume): the density of the *started* ensemble, shape like ``counts``.

        Its integral is the surviving fraction inside the grid.
        """
        return self.counts / (self.n_particles * self.cell_volumes)


@dataclass(frozen=True, eq=False)
class BlockMoments:
    """Per-block moments of the living particles at each output time, the input of an exact merge.

    Block b holds particles ``[b * block, (b + 1) * block)`` of the result's range
    (:data:`~ib_physics.particles._reducers.REDUCTION_BLOCK` particles, the last one shorter);
    a run's moments are these blocks merged in block order, so results whose ranges meet at
    multiples of the block size merge into bitwise the moments of one run.

    Attributes
    ----------
    block : int
        Particles per block.
    count : numpy.ndarray, shape (n_t, n_blocks)
        Living particles per block.
    mean : numpy.ndarray, shape (n_t, n_blocks, d)
    comoment : numpy.ndarray, shape (n_t, n_blocks, d, d)
        Σ (x − mean)(x − mean)ᵀ over the block's living particles.
    sq_disp : numpy.ndarray, shape (n_t, n_blocks)
        Σ |x − x(0)|² over the block's living particles.
    """

    block: int
    count: np.ndarray
    mean: np.ndarray
    comoment: np.ndarray
    sq_disp: np.ndarray


@dataclass(frozen=True, eq=False)
class ParticleResult(PicklableDiagnostics):
    """What :func:`ib_physics.simulate` returns; time is the first axis of every series.

    Attributes
    ----------
    t : numpy.ndarray, shape (n_t,)
        Output times.
    positions : numpy.ndarray or None, shape (n_t, N, d)
        Positions (wrapped into periodic boxes) at ``t``; NaN once absorbed. ``None``
        unless ``store_positions``.
    unwrapped_positions : numpy.ndarray or None, shape (n_t, N, d)
        Positions without periodic wrapping (only in boxes with periodic faces).
    final_positions : numpy.ndarray or None, shape (N, d)
        Last position of every particle (where it left, for absorbed ones); None in a
        :meth:`reduced` result.
    alive : numpy.ndarray of bool or None, shape (N,)
        Particles still in the domain at the end (None in a :meth:`reduced` result).
    survival : numpy.ndarray, shape (n_t,)
        Fraction of particles not absorbed.
    count : numpy.ndarray of int, shape (n_t,)
        Living particles, the sample size of the moments.
    mean : numpy.ndarray, shape (n_t, d)
        Mean unwrapped position of living particles.
    covariance : numpy.ndarray, shape (n_t, d, d)
        Their covariance (divisor count - 1).
    msd : numpy.ndarray, shape (n_t,)
        Mean squared displacement |x(t) - x(0)|² of living particles (unwrapped).
    histogram : ParticleHistogram or None
        Counts on the requested grid.
    first_passage_time : numpy.ndarray or None, shape (N,)
        Time of absorption (the midpoint of the step in which the particle crossed),
        NaN for survivors (only when the domain absorbs).
    exit_face : numpy.ndarray of int8 or None, shape (N,)
        Face index of absorption (see ``face_names``), -1 for survivors.
    face_names : tuple of str
        Names of the domain's faces.
    tracer_indices : numpy.ndarray of int, shape (n_tracers,)
        Particles whose full trails were kept.
    trail_t : numpy.ndarray, shape (n_points,)
        Times of the trail points.
    trails : numpy.ndarray or None, shape (n_tracers, n_points, d)
        Unwrapped tracer paths; NaN after absorption.
    seed : str
        The seed sequence that reproduces the run.
    scheme : str
    dt : float
    dynamics : Dynamics
    domain : Box, Cylinder or None
    diagnostics : Mapping
        Steps, wall time, throughput and dimensionless numbers.
    particle_range : (int, int), optional
        Global indices [start, stop) of the particles run (default: all of ``final_positions``);
        particle i's path depends only on (seed, i), so ranges of one ensemble join exactly.
    ensemble_size : int, optional
        Particles of the whole ensemble (default: those of this result).
    blocks : BlockMoments or None
        Per-block moments, kept by runs of a ``particles`` range (see :func:`merge_particle_results`).
    """

    t: np.ndarray
    positions: np.ndarray | None
    unwrapped_positions: np.ndarray | None
    final_positions: np.ndarray
    alive: np.ndarray
    survival: np.ndarray
    count: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    msd: np.ndarray
    histogram: ParticleHistogram | None
    first_passage_time: np.ndarray | None
    exit_face: np.ndarray | None
    face_names: tuple[str, ...]
    tracer_indices: np.ndarray
    trail_t: np.ndarray
    trails: np.ndarray | None
    seed: str
    scheme: str
    dt: float
    dynamics: Dynamics
    domain: Domain | None
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    particle_range: tuple[int, int] | None = None
    ensemble_size: int | None = None
    blocks: BlockMoments | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(self.diagnostics)))
        if self.particle_range is None:
            if self.final_positions is None:
                raise ValueError("a result without `final_positions` must state its `particle_range`.")
            object.__setattr__(self, "particle_range", (0, int(self.final_positions.shape[0])))
        start, stop = (int(v) for v in self.particle_range)
        object.__setattr__(self, "particle_range", (start, stop))
        if self.ensemble_size is None:
            object.__setattr__(self, "ensemble_size", stop)
        if not 0 <= start < stop <= self.ensemble_size:
            raise ValueError(f"`particle_range` {self.particle_range} must satisfy 0 <= start < stop <= "
                             f"ensemble_size ({self.ensemble_size}).")

    @property
    def n_particles(self) -> int:
        """Particles of this result (its range)."""
        return self.particle_range[1] - self.particle_range[0]

    @property
    def dim(self) -> int:
        return int(self.mean.shape[1])

    def reduced(self) -> "ParticleResult":
        """The same result without per-particle arrays (positions, final positions, survivors'
        flags, first-passage times, exit faces): what travels from a worker by default."""
        return replace(self, positions=None, unwrapped_positions=None, final_positions=None, alive=None,
                       first_passage_time=None, exit_face=None)

    def digest(self) -> str:
        """SHA-256 of every number the run produced (not its diagnostics, which hold wall times):
        equal digests mean bitwise equal results, e.g. a distributed run and a local one."""
        h = hashlib.sha256()
        h.update(json.dumps({"seed": self.seed, "scheme": self.scheme, "dt": self.dt,
                             "range": list(self.particle_range), "ensemble": self.ensemble_size,
                             "faces": list(self.face_names)}, sort_keys=True).encode())
        arrays = [self.t, self.positions, self.unwrapped_positions, self.final_positions, self.alive,
                  self.survival, self.count, self.mean, self.covariance, self.msd, self.first_passage_time,
                  self.exit_face, self.tracer_indices, self.trail_t, self.trails]
        if self.histogram is not None:
            arrays += [*self.histogram.edges, self.histogram.counts, self.histogram.outside,
                       np.array([self.histogram.n_particles])]
        for a in arrays:
            hash_array(h, a)
        return h.hexdigest()

    @property
    def variance(self) -> np.ndarray:
        """Per-axis variance, shape (n_t, d)."""
        return np.diagonal(self.covariance, axis1=1, axis2=2).copy()

    @property
    def mean_standard_error(self) -> np.ndarray:
        """Standard error of ``mean``, shape (n_t, d)."""
        return np.sqrt(self.variance / np.maximum(self.count, 1)[:, None])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to an HDF5 file atomically (see :mod:`ib_physics.io`)."""
        with io.atomic_h5(path) as f:
            write_particle_result(f.create_group(_GROUP), self)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ParticleResult":
        """Read a file written by :meth:`save`."""
        return load_particle_result(path)


def hash_array(h: Any, a: np.ndarray | None) -> None:
    """Feed an array (or its absence) with its dtype and shape into a hash."""
    if a is None:
        h.update(b"none;")
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape};".encode())
    h.update(a.tobytes())


def write_particle_result(g: Any, r: ParticleResult) -> None:
    """Write ``r`` into HDF5 group ``g``."""
    io.write_json_attr(g, "dynamics", r.dynamics.to_dict())
    io.write_json_attr(g, "domain", None if r.domain is None else r.domain.to_dict())
    io.write_json_attr(g, "diagnostics", dict(r.diagnostics))
    io.write_json_attr(g, "face_names", list(r.face_names))
    g.attrs["seed"] = r.seed
    g.attrs["scheme"] = r.scheme
    g.attrs["dt"] = r.dt
    g.attrs["particle_range"] = np.array(r.particle_range, dtype=np.int64)
    g.attrs["ensemble_size"] = int(r.ensemble_size)
    if r.blocks is not None:
        b = g.create_group("blocks")
        b.attrs["block"] = int(r.blocks.block)
        io.write_arrays(b, {"count": r.blocks.count, "mean": r.blocks.mean, "comoment": r.blocks.comoment,
                            "sq_disp": r.blocks.sq_disp})
    io.write_arrays(g, {
        "t": r.t, "positions": r.positions, "unwrapped_positions": r.unwrapped_positions,
        "final_positions": r.final_positions, "alive": r.alive, "survival": r.survival,
        "count": r.count, "mean": r.mean, "covariance": r.covariance, "msd": r.msd,
        "first_passage_time": r.first_passage_time, "exit_face": r.exit_face,
        "tracer_indices": r.tracer_indices, "trail_t": r.trail_t, "trails": r.trails,
    })
    if r.histogram is not None:
        h = g.create_group("histogram")
        h.attrs["n_particles"] = r.histogram.n_particles
        io.write_arrays(h, {"counts": r.histogram.counts, "outside": r.histogram.outside})
        for k, e in enumerate(r.histogram.edges):
            h.create_dataset(f"edges_{k}", data=e)


def read_particle_result(g: Any) -> ParticleResult:
    """Read a :class:`ParticleResult` from HDF5 group ``g``."""
    names = ["t", "positions", "unwrapped_positions", "final_positions", "alive", "survival", "count",
             "mean", "covariance", "msd", "first_passage_time", "exit_face", "tracer_indices",
             "trail_t", "trails"]
    arrays = io.read_arrays(g, names)
    hist = None
    if "histogram" in g:
        h = g["histogram"]
        n_axes = sum(1 for k in h if k.startswith("edges_"))
        hist = ParticleHistogram(edges=tuple(h[f"edges_{k}"][()] for k in range(n_axes)),
                                 counts=h["counts"][()], outside=h["outside"][()],
                                 n_particles=int(h.attrs["n_particles"]))

    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    blocks = None
    if "blocks" in g:
        b = g["blocks"]
        blocks = BlockMoments(block=int(b.attrs["block"]), count=b["count"][()], mean=b["mean"][()],
                              comoment=b["comoment"][()], sq_disp=b["sq_disp"][()])
    window = g.attrs.get("particle_range")

    return ParticleResult(
        **arrays, histogram=hist,
        face_names=tuple(io.read_json_attr(g, "face_names", [])),
        seed=text(g.attrs["seed"]), scheme=text(g.attrs["scheme"]), dt=float(g.attrs["dt"]),
        dynamics=Dynamics.from_dict(io.read_json_attr(g, "dynamics")),
        domain=domain_from_dict(io.read_json_attr(g, "domain")),
        diagnostics=io.read_json_attr(g, "diagnostics", {}),
        particle_range=None if window is None else (int(window[0]), int(window[1])),
        ensemble_size=int(g.attrs["ensemble_size"]) if "ensemble_size" in g.attrs else None, blocks=blocks,
    )


def load_particle_result(path: str | os.PathLike[str]) -> ParticleResult:
    """Read a :class:`ParticleResult` saved with :meth:`ParticleResult.save`."""
    return io.read_group(path, _GROUP, read_particle_result, "particle result")
