"""Results of the density engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .. import io
from .._pickling import PicklableDiagnostics
from ..domains import domain_from_dict
from ..dynamics import Dynamics
from .grid import Grid

__all__ = ["DensityResult", "load_density_result"]

_GROUP = "density"


@dataclass(frozen=True, eq=False)
class DensityResult(PicklableDiagnostics):
    """What :func:`ib_physics.solve_fokker_planck` returns; time is the first axis.

    Attributes
    ----------
    t : numpy.ndarray, shape (n_t,)
    p : numpy.ndarray, shape (n_t, *grid.shape)
        Density (per unit volume) on the cells.
    mass : numpy.ndarray, shape (n_t,)
        Probability inside the domain.
    absorbed : numpy.ndarray, shape (n_t, n_faces)
        Probability that has left through each face (absorbing faces only) since t[0].
    outflow_rate : numpy.ndarray, shape (n_t, n_faces)
        Probability leaving per unit time through each face.
    current : tuple of numpy.ndarray
        Per grid axis, the probability current density J (flux per unit area,
        positive along the axis) on the faces, shape (n_t, *face_shape).
    grid : Grid
    dynamics : Dynamics
    face_names : tuple of str
    diagnostics : Mapping
        Steps, rejected steps, factorisations, mass error, the largest relative mass correction
        applied against round-off (``mass_projection``), cell Péclet number, wall time, and
        ``exponential_segments``: the constant-coefficient segments solved exactly in time
        (each counts as one step).
    """

    t: np.ndarray
    p: np.ndarray
    mass: np.ndarray
    absorbed: np.ndarray
    outflow_rate: np.ndarray
    current: tuple[np.ndarray, ...]
    grid: Grid
    dynamics: Dynamics
    face_names: tuple[str, ...]
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(self.diagnostics)))

    def digest(self) -> str:
        """SHA-256 of the solution (times, densities, masses, currents, grid, dynamics), not of the
        diagnostics: equal digests mean bitwise equal solutions."""
        import hashlib
        import json

        h = hashlib.sha256()
        h.update(json.dumps({"dynamics": self.dynamics.to_dict(), "faces": list(self.face_names)},
                            sort_keys=True, default=str).encode())
        for a in (self.t, self.p, self.mass, self.absorbed, self.outflow_rate, *self.current, *self.grid.edges):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape};".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    @property
    def survival(self) -> np.ndarray:
        """Mass relative to the initial mass, shape (n_t,)."""
        return self.mass / (self.mass[0] + self.absorbed[0].sum())

    def face_flux(self, axis: int) -> np.ndarray:
        """Total flux through each face normal to ``axis`` (current x area), shape (n_t, *face_shape)."""
        return self.current[axis] * self.grid.face_areas(axis)

    def mass_in(self, region: np.ndarray) -> np.ndarray:
        """Probability inside a set of cells (boolean mask of ``grid.shape``), shape (n_t,)."""
        mask = _mask(region, self.grid)
        return np.sum(self.p * (self.grid.volumes() * mask), axis=tuple(range(1, self.p.ndim)))

    def flux_out_of(self, region: np.ndarray) -> np.ndarray:
        """Net probability flux out of a set of cells through its boundary, shape (n_t,).

        Continuity: ``d/dt mass_in(region) = -flux_out_of(region)``.
        """
        mask = _mask(region, self.grid)
        total = np.zeros(self.t.size)
        kinds = self.grid.face_kinds
        for axis in range(self.grid.ndim):
            flux = self.face_flux(axis)
            n = self.grid.shape[axis]
            inside = np.moveaxis(mask, axis, 0)
            f = np.moveaxis(flux, axis + 1, 1)
            # Interior faces j = 1..n-1 between cells j-1 and j.
            leaving = inside[:-1] & ~inside[1:]
            entering = ~inside[:-1] & inside[1:]
            total += np.sum(f[:, 1:n] * leaving, axis=tuple(range(1, f.ndim)))
            total -= np.sum(f[:, 1:n] * entering, axis=tuple(range(1, f.ndim)))
            if kinds[2 * axis] == "periodic":
                leaving = inside[-1] & ~inside[0]
                entering = ~inside[-1] & inside[0]
                total += np.sum(f[:, n] * leaving, axis=tuple(range(1, f.ndim - 1)))
                total -= np.sum(f[:, n] * entering, axis=tuple(range(1, f.ndim - 1)))
            else:
                total -= np.sum(f[:, 0] * inside[0], axis=tuple(range(1, f.ndim - 1)))
                total += np.sum(f[:, n] * inside[-1], axis=tuple(range(1, f.ndim - 1)))
        return total

    def select(self, indices: Any) -> "DensityResult":
        """The result at a subset of its output times (integer indices or a boolean mask)."""
        idx = np.arange(self.t.size)[indices]
        idx = np.atleast_1d(idx)
        if idx.size == 0:
            raise ValueError("`indices` must select at least one output time.")
        return DensityResult(t=self.t[idx], p=self.p[idx], mass=self.mass[idx], absorbed=self.absorbed[idx],
                             outflow_rate=self.outflow_rate[idx], current=tuple(c[idx] for c in self.current),
                             grid=self.grid, dynamics=self.dynamics, face_names=self.face_names,
                             diagnostics=self.diagnostics)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to an HDF5 file atomically."""
        with io.atomic_h5(path) as f:
            write_density_result(f.create_group(_GROUP), self)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "DensityResult":
        return load_density_result(path)


def _mask(region: np.ndarray, grid: Grid) -> np.ndarray:
    mask = np.asarray(region, dtype=bool)
    if mask.shape != grid.shape:
        raise ValueError(f"`region` must be a boolean mask of shape {grid.shape}, got {mask.shape}.")
    return mask


def write_density_result(g: Any, r: DensityResult) -> None:
    io.write_json_attr(g, "grid", r.grid.to_dict())
    io.write_json_attr(g, "dynamics", r.dynamics.to_dict())
    io.write_json_attr(g, "diagnostics", dict(r.diagnostics))
    io.write_json_attr(g, "face_names", list(r.face_names))
    io.write_arrays(g, {"t": r.t, "p": r.p, "mass": r.mass, "absorbed": r.absorbed,
                        "outflow_rate": r.outflow_rate})
    for k, c in enumerate(r.current):
        io.write_arrays(g, {f"current_{k}": c})


def read_density_result(g: Any) -> DensityResult:
    grid_d = io.read_json_attr(g, "grid")
    grid = Grid(domain_from_dict(grid_d["domain"]), tuple(grid_d["shape"]))
    arrays = io.read_arrays(g, ["t", "p", "mass", "absorbed", "outflow_rate"])
    current = tuple(g[f"current_{k}"][()] for k in range(grid.ndim))
    return DensityResult(**arrays, current=current, grid=grid,
                         dynamics=Dynamics.from_dict(io.read_json_attr(g, "dynamics")),
                         face_names=tuple(io.read_json_attr(g, "face_names", [])),
                         diagnostics=io.read_json_attr(g, "diagnostics", {}))


def load_density_result(path: str | os.PathLike[str]) -> DensityResult:
    """Read a :class:`DensityResult` saved with :meth:`DensityResult.save`."""
    return io.read_group(path, _GROUP, read_density_result, "density result")
