"""Cell-centred finite-volume grids on the package's domains.

A :class:`Grid` on a :class:`~ib_physics.Box` has Cartesian cells of equal size
per axis. On the glass (:class:`~ib_physics.Cylinder`) it is axisymmetric: axes
(r, z), face areas and cell volumes carry the factor r, and the density is the
3D density p(r, z) per unit volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validation import check_int_range, check_memory

#: Memory the density engine needs per cell, about (operator, factorisation, work arrays).
BYTES_PER_CELL = 200
from ..domains import Box, Cylinder

__all__ = ["Grid"]


@dataclass(frozen=True, eq=False)
class Grid:
    """Finite-volume cells on a domain.

    Parameters
    ----------
    domain : Box or Cylinder
        Where the density lives; its faces' boundary kinds are the solver's.
    shape : int or tuple of int
        Cells per axis: ``(n_0[, n_1[, n_2]])`` on a box, ``(n_r, n_z)`` on a cylinder.

    Attributes
    ----------
    edges : tuple of numpy.ndarray
        Cell edges per axis, each of shape (n_k + 1,).
    """

    domain: Any
    shape: Any

    def __post_init__(self) -> None:
        if not isinstance(self.domain, (Box, Cylinder)):
            raise TypeError(f"`domain` must be a Box or a Cylinder, got {type(self.domain).__name__}.")
        raw = self.shape[()] if isinstance(self.shape, np.ndarray) and self.shape.ndim == 0 else self.shape
        if isinstance(raw, (str, bytes)):
            raise TypeError(f"`shape` must be an int or a tuple of ints, got {raw!r}.")
        try:
            shape = (raw,) if isinstance(raw, (int, np.integer)) else tuple(raw)
        except TypeError:
            raise TypeError(f"`shape` must be an int or a tuple of ints, got {type(raw).__name__}.") from None
        axes = 2 if isinstance(self.domain, Cylinder) else self.domain.dim
        if len(shape) != axes:
            what = "(n_r, n_z)" if isinstance(self.domain, Cylinder) else f"{axes} entries"
            raise ValueError(f"`shape` must have {what} for this domain, got {shape}.")
        shape = tuple(check_int_range(n, f"shape[{k}]", 2) for k, n in enumerate(shape))
        cells = float(np.prod([float(n) for n in shape]))
        # A density, its sparse operator (a 7-point stencil in 3D) and the solver's work arrays per cell.
        check_memory(cells * BYTES_PER_CELL, f"a grid of {cells:.3g} cells", "shape")
        object.__setattr__(self, "shape", shape)

    @property
    def cylindrical(self) -> bool:
        return isinstance(self.domain, Cylinder)

    @property
    def ndim(self) -> int:
        """Number of grid axes (2 on the glass)."""
        return len(self.shape)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @property
    def lower(self) -> np.ndarray:
        if self.cylindrical:
            return np.array([0.0, 0.0])
        return self.domain.lower.copy()

    @property
    def upper(self) -> np.ndarray:
        if self.cylindrical:
            return np.array([self.domain.radius, self.domain.height])
        return self.domain.upper.copy()

    @property
    def spacing(self) -> np.ndarray:
        return (self.upper - self.lower) / np.array(self.shape)

    @property
    def edges(self) -> tuple[np.ndarray, ...]:
        return tuple(np.linspace(lo, hi, n + 1) for lo, hi, n in zip(self.lower, self.upper, self.shape))

    @property
    def centres(self) -> tuple[np.ndarray, ...]:
        return tuple(0.5 * (e[1:] + e[:-1]) for e in self.edges)

    @property
    def face_kinds(self) -> tuple[str, ...]:
        """Boundary kind of the faces (axis 0 lower, axis 0 upper, ...) in grid axes.

        On the glass the r = 0 "face" is the axis (no flux by symmetry).
        """
        if self.cylindrical:
            return ("reflecting", "reflecting", "reflecting", self.domain.top)
        return self.domain.face_kinds

    @property
    def face_names(self) -> tuple[str, ...]:
        if self.cylindrical:
            return ("axis", "side", "bottom", "top")
        return self.domain.face_names

    def volumes(self) -> np.ndarray:
        """Cell volumes, shape ``shape``."""
        if self.cylindrical:
            re, ze = self.edges
            ring = np.pi * (re[1:] ** 2 - re[:-1] ** 2)
            return np.multiply.outer(ring, np.diff(ze))
        out = np.diff(self.edges[0])
        for e in self.edges[1:]:
            out = np.multiply.outer(out, np.diff(e))
        return out

    def face_areas(self, axis: int) -> np.ndarray:
        """Areas of the faces normal to ``axis``, shape ``shape`` with n_axis + 1 along ``axis``."""
        edges = self.edges
        if self.cylindrical:
            re, ze = edges
            if axis == 0:
                return np.multiply.outer(2 * np.pi * re, np.diff(ze))
            return np.multiply.outer(np.pi * (re[1:] ** 2 - re[:-1] ** 2), np.ones(ze.size))
        parts = []
        for k, e in enumerate(edges):
            parts.append(np.ones(e.size) if k == axis else np.diff(e))
        out = parts[0]
        for p in parts[1:]:
            out = np.multiply.outer(out, p)
        return out

    def points(self, coords: tuple[np.ndarray, ...]) -> np.ndarray:
        """Physical points (n, d) for grid coordinates: on the glass (r, z) -> (r, 0, z)."""
        mesh = np.meshgrid(*coords, indexing="ij")
        flat = [m.ravel() for m in mesh]
        if self.cylindrical:
            return np.column_stack([flat[0], np.zeros_like(flat[0]), flat[1]])
        return np.column_stack(flat)

    def cell_points(self) -> np.ndarray:
        """Physical coordinates of the cell centres, (n_cells, d) in C order."""
        return self.points(self.centres)

    def evaluate(self, func: Callable[..., Any]) -> np.ndarray:
        """``func(*centre_coordinates)`` (vectorised) on the cells, shape ``shape``.

        On the glass ``func`` receives ``(r, z)``.
        """
        mesh = np.meshgrid(*self.centres, indexing="ij")
        return np.broadcast_to(np.asarray(func(*mesh), dtype=float), self.shape).copy()

    def integrate(self, p: np.ndarray) -> float:
        """Integral of a cell field (mass)."""
        return float(np.sum(np.asarray(p) * self.volumes()))

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain.to_dict(), "shape": list(self.shape)}
