"""Hard disks in a box: exact event-driven dynamics (the microscopic origin of Brownian motion).

:func:`random_disks` places big tracer disks and small bath disks without overlap
at a given area fraction and draws Maxwell–Boltzmann velocities at temperature kT
(zero total momentum). :class:`HardDisks` advances them exactly from collision to
collision (:mod:`ib_physics.collisions._kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import as_bool, as_float_array, check_finite_positive, check_int_range
from . import _kernels

__all__ = ["HardDisks", "random_disks", "EventCounts"]


@dataclass(frozen=True)
class EventCounts:
    """Events processed by one :meth:`HardDisks.run` call."""

    collisions: int
    wall_hits: int
    cell_crossings: int


def _float_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be numbers.") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite.")
    return arr


def random_disks(*, n_big: int = 5, n_small: int = 800, radius_big: float = 5.0, radius_small: float = 1.0,
                 mass_big: float = 25.0, mass_small: float = 1.0, area_fraction: float = 0.25, aspect: float = 1.0,
                 kT: float = 1.0, periodic: bool = False, seed: int = 0) -> "HardDisks":
    """Big disks among small ones at random, non-overlapping positions.

    The box (aspect ratio width/height) is sized so that the disks cover
    ``area_fraction`` of it. Positions by random sequential addition (big disks
    first), velocities normal with variance kT/m per component, the centre-of-mass
    velocity removed. Random numbers: ``numpy.random.Generator(PCG64(seed))``.
    """
    n_big = check_int_range(n_big, "n_big", 0, MAX_DISKS)
    n_small = check_int_range(n_small, "n_small", 0, MAX_DISKS)
    if n_big + n_small < 1:
        raise ValueError("need at least one disk (`n_big` + `n_small` >= 1).")
    if n_big + n_small > MAX_DISKS:
        raise ValueError(f"`n_big` + `n_small` must be at most {MAX_DISKS:,} (event-driven dynamics of more disks "
                         f"takes days), got {n_big + n_small:,}.")
    radius_big, radius_small, mass_big, mass_small, kT, aspect = (
        check_finite_positive(value, name) for name, value in (
            ("radius_big", radius_big), ("radius_small", radius_small), ("mass_big", mass_big),
            ("mass_small", mass_small), ("kT", kT), ("aspect", aspect)))
    area_fraction = check_finite_positive(area_fraction, "area_fraction")
    if not area_fraction <= MAX_RANDOM_AREA_FRACTION:
        raise ValueError(f"`area_fraction` must be in (0, {MAX_RANDOM_AREA_FRACTION}] for random placement (random "
                         f"sequential addition jams near 0.547), got {area_fraction}.")
    periodic = as_bool(periodic, "periodic")
    radius = np.concatenate([np.full(n_big, radius_big), np.full(n_small, radius_small)])
    mass = np.concatenate([np.full(n_big, mass_big), np.full(n_small, mass_small)])
    with np.errstate(over="ignore", invalid="ignore"):  # extreme sizes are refused just below
        area = np.pi * np.sum(radius**2) / area_fraction
        ly = np.sqrt(area / aspect)
        box = np.array([aspect * ly, ly])
    if not np.all(np.isfinite(box)) or np.any(box <= 2.0 * radius.max()):
        raise ValueError(f"the box ({box[0]:.3g} x {box[1]:.3g}) must be finite and wider and higher than the largest "
                         "disk: change `aspect`, `radius_big`, `radius_small` or `area_fraction`.")
    rng = np.random.Generator(np.random.PCG64(check_int_range(seed, "seed", 0)))
    x = _place(radius, box, periodic, rng)
    v = rng.normal(size=(radius.size, 2)) * np.sqrt(kT / mass)[:, None]
    v -= np.sum(mass[:, None] * v, axis=0) / mass.sum()
    return HardDisks(x=x, v=v, radius=radius, mass=mass, box=box, periodic=periodic)


#: Most disks random_disks places (and HardDisks is meant for).
MAX_DISKS = 200_000
#: Densest packing random sequential addition reaches reliably (its jamming limit is about 0.547).
MAX_RANDOM_AREA_FRACTION = 0.5
#: Tries per disk before random sequential addition gives up.
_PLACEMENT_TRIES = 20_000


def _place(radius: np.ndarray, box: np.ndarray, periodic: bool, rng: np.random.Generator) -> np.ndarray:
    """Random sequential addition in the given order, each candidate checked against the disks in
    its own and the neighbouring cells only (cells no narrower than the widest pair): O(N)."""
    n = radius.size
    reach = 2.0 * float(radius.max())
    ncx, ncy = max(1, int(box[0] // reach)), max(1, int(box[1] // reach))
    cells: dict[tuple[int, int], list[int]] = {}
    x = np.empty((n, 2))
    for i, r in enumerate(radius):
        for _ in range(_PLACEMENT_TRIES):
            p = rng.uniform([r, r], box - r) if not periodic else rng.uniform([0, 0], box)
            cx, cy = min(int(p[0] / box[0] * ncx), ncx - 1), min(int(p[1] / box[1] * ncy), ncy - 1)
            near = []
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    qx, qy = cx + dx, cy + dy
                    if periodic:
                        qx, qy = qx % ncx, qy % ncy
                    elif not (0 <= qx < ncx and 0 <= qy < ncy):
                        continue
                    near.extend(cells.get((qx, qy), ()))
            if near:
                idx = np.unique(np.array(near, dtype=np.int64))
                d = p - x[idx]
                if periodic:
                    d -= box * np.round(d / box)
                if not np.all(np.einsum("ij,ij->i", d, d) > (radius[idx] + r) ** 2):
                    continue
            x[i] = p
            cells.setdefault((cx, cy), []).append(i)
            break
        else:
            raise ValueError(f"could not place disk {i} of {n} without overlap in {_PLACEMENT_TRIES} tries; "
                             "lower `area_fraction`.")
    return x


@dataclass(eq=False)
class HardDisks:
    """An event-driven hard-disk system (mutable: :meth:`run` advances it).

    Parameters
    ----------
    x, v : numpy.ndarray, shape (N, 2)
        Positions inside the box (no overlaps) and velocities.
    radius, mass : numpy.ndarray, shape (N,)
    box : (float, float)
        Width and height; the box is [0, width] x [0, height].
    periodic : bool
        Periodic faces (else reflecting walls).
    """

    x: np.ndarray
    v: np.ndarray
    radius: np.ndarray
    mass: np.ndarray
    box: Any
    periodic: bool = False
    t: float = field(default=0.0, init=False)
    collisions: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.x = np.array(as_float_array(self.x, "x"))
        self.v = np.array(as_float_array(self.v, "v"))
        if self.x.ndim != 2 or self.v.ndim != 2:
            raise ValueError(f"`x` and `v` must have shape (N >= 1, 2), got {self.x.shape} and {self.v.shape}.")
        self.periodic = as_bool(self.periodic, "periodic")
        n = self.x.shape[0]
        if self.x.shape != (n, 2) or self.v.shape != (n, 2) or n < 1:
            raise ValueError(f"`x` and `v` must have shape (N >= 1, 2), got {self.x.shape} and {self.v.shape}.")
        self.radius = _float_array(self.radius, "radius")
        self.mass = _float_array(self.mass, "mass")
        if self.radius.shape != (n,) or self.mass.shape != (n,):
            raise ValueError("`radius` and `mass` must have one entry per disk.")
        if np.any(self.radius <= 0) or np.any(self.mass <= 0):
            raise ValueError("`radius` and `mass` must be > 0.")
        self.box = _float_array(self.box, "box")
        if self.box.shape != (2,) or np.any(self.box <= 0):
            raise ValueError(f"`box` must be (width, height) > 0, got {self.box}.")
        if not np.all(np.isfinite(self.x)) or not np.all(np.isfinite(self.v)):
            raise ValueError("`x` and `v` must be finite.")
        if self.periodic:
            self.x %= self.box
        elif np.any(self.x < self.radius[:, None]) or np.any(self.x > self.box - self.radius[:, None]):
            raise ValueError("every disk must lie inside the box (centre at least a radius from each wall).")
        if self.overlap() > 1e-9 * float(self.radius.min()):
            raise ValueError("disks overlap in `x`.")
        # Cells no narrower than the widest pair with at most one big disk.
        small = self.radius[self.radius <= 0.5 * self.radius.max()]
        reach = self.radius.max() + (small.max() if small.size else self.radius.max())
        self.ncx = max(1, int(self.box[0] // reach))
        self.ncy = max(1, int(self.box[1] // reach))
        if self.periodic and (self.ncx < 3 or self.ncy < 3):
            raise ValueError("a periodic box must be at least 3 cells (3 x (largest + small radius)) wide and high.")
        self.cell_w = self.box[0] / self.ncx
        self.cell_h = self.box[1] / self.ncy
        self.is_big = self.radius > 0.5 * min(self.cell_w, self.cell_h)
        self.big = np.flatnonzero(self.is_big).astype(np.int64)
        self.t_last = np.zeros(n)
        self.counter = np.zeros(n, np.int64)
        self.cell = np.zeros(n, np.int64)
        self.head = np.zeros(self.ncx * self.ncy, np.int64)
        self.nxt = np.zeros(n, np.int64)
        self.prv = np.zeros(n, np.int64)
        self.images = np.zeros((n, 2), np.int64)
        capacity = 16 * n + 64
        self._heap = (np.zeros(capacity), np.zeros(capacity, np.int64), np.zeros(capacity, np.int64),
                      np.zeros(capacity, np.int64), np.zeros(capacity, np.int64), np.zeros(capacity, np.int64))
        _kernels.build_cells(self.x, self.cell, self.head, self.nxt, self.prv, self.cell_w, self.cell_h,
                             self.ncx, self.ncy)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    def overlap(self) -> float:
        """Largest overlap depth between two disks now (0 when none), from the pairs closer than the
        widest contact distance (a k-d tree: O(N log N))."""
        from scipy.spatial import cKDTree

        if self.x.shape[0] < 2:
            return 0.0
        reach = 2.0 * float(self.radius.max())
        if self.periodic:
            tree = cKDTree(np.mod(self.x, self.box), boxsize=self.box)
        else:
            tree = cKDTree(self.x)
        pairs = tree.query_pairs(reach, output_type="ndarray")
        if pairs.size == 0:
            return 0.0
        d = self.x[pairs[:, 0]] - self.x[pairs[:, 1]]
        if self.periodic:
            d -= self.box * np.round(d / self.box)
        gap = self.radius[pairs[:, 0]] + self.radius[pairs[:, 1]] - np.sqrt(np.einsum("ij,ij->i", d, d))
        return float(max(gap.max(), 0.0))

    @property
    def unwrapped(self) -> np.ndarray:
        """Positions with periodic images undone (for displacements), shape (N, 2)."""
        return self.x + self.images * self.box

    def kinetic_energy(self) -> float:
        return float(0.5 * np.sum(self.mass[:, None] * self.v**2))

    def momentum(self) -> np.ndarray:
        return np.sum(self.mass[:, None] * self.v, axis=0)

    def run(self, duration: float, *, max_events: int | None = None, log: int = 0) -> tuple[EventCounts, np.ndarray]:
        """Advance by ``duration`` (or until ``max_events`` collisions plus wall hits).

        Returns
        -------
        counts : EventCounts
        events : numpy.ndarray, shape (n_logged, 3)
            The first ``log`` collisions and wall hits: (i, j, time) with j = -1 - face for walls.
        """
        duration = check_finite_positive(duration, "duration")
        cap = np.iinfo(np.int64).max if max_events is None else check_int_range(max_events, "max_events", 1)
        log = check_int_range(log, "log", 0)
        log_i, log_j, log_t = np.zeros(log, np.int64), np.zeros(log, np.int64), np.zeros(log)
        t, n_coll, n_wall, n_cell = _kernels.run_until(
            self.t, self.t + duration, cap, self.x, self.v, self.t_last, self.radius, self.mass, self.counter,
            self.cell, self.head, self.nxt, self.prv, self.images, self.big, self.is_big, self.box,
            bool(self.periodic), self.cell_w, self.cell_h, self.ncx, self.ncy, *self._heap, log_i, log_j, log_t)
        self.t = float(t)
        self.collisions += int(n_coll)
        k = min(log, int(n_coll + n_wall))
        events = np.column_stack([log_i[:k], log_j[:k], log_t[:k]])
        return EventCounts(int(n_coll), int(n_wall), int(n_cell)), events
