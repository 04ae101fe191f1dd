"""Results of the particle engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .. import io
from ..domains import Domain, domain_from_dict
from ..dynamics import Dynamics

__all__ = ["ParticleHistogram", "ParticleResult", "load_particle_result"]

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
class ParticleResult:
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
    final_positions : numpy.ndarray, shape (N, d)
        Last position of every particle (where it left, for absorbed ones).
    alive : numpy.ndarray of bool, shape (N,)
        Particles still in the domain at the end.
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(self.diagnostics)))

    @property
    def n_particles(self) -> int:
        return self.final_positions.shape[0]

    @property
    def dim(self) -> int:
        return self.final_positions.shape[1]

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


def write_particle_result(g: Any, r: ParticleResult) -> None:
    """Write ``r`` into HDF5 group ``g``."""
    io.write_json_attr(g, "dynamics", r.dynamics.to_dict())
    io.write_json_attr(g, "domain", None if r.domain is None else r.domain.to_dict())
    io.write_json_attr(g, "diagnostics", dict(r.diagnostics))
    io.write_json_attr(g, "face_names", list(r.face_names))
    g.attrs["seed"] = r.seed
    g.attrs["scheme"] = r.scheme
    g.attrs["dt"] = r.dt
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

    return ParticleResult(
        **arrays, histogram=hist,
        face_names=tuple(io.read_json_attr(g, "face_names", [])),
        seed=text(g.attrs["seed"]), scheme=text(g.attrs["scheme"]), dt=float(g.attrs["dt"]),
        dynamics=Dynamics.from_dict(io.read_json_attr(g, "dynamics")),
        domain=domain_from_dict(io.read_json_attr(g, "domain")),
        diagnostics=io.read_json_attr(g, "diagnostics", {}),
    )


def load_particle_result(path: str | os.PathLike[str]) -> ParticleResult:
    """Read a :class:`ParticleResult` saved with :meth:`ParticleResult.save`."""
    return io.read_group(path, _GROUP, read_particle_result, "particle result")
