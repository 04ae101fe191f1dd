"""Potentials U(x) for the drift ``a = mobility * (-grad U + f(t))``.

Every potential is a frozen dataclass. Potentials add: ``Harmonic(1.0) +
ConstantForce([0, 0, -9.81])`` is a :class:`SumPotential`. For the kernels a
potential is split into an *affine* part of the force (harmonic springs and
constant forces: ``-grad U = lin * x + off`` per axis) and *nonlinear terms*
passed as integer codes plus a parameter table, never as Python callables.

Dimension: a potential may be dimension-agnostic (a scalar stiffness works in
any dimension) or fix the dimension through the length of its arrays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ._validation import as_float_array, as_float_vector, check_finite_positive, check_finite_scalar, check_int_range

__all__ = [
    "Potential",
    "Flat",
    "Harmonic",
    "DoubleWell",
    "ConstantForce",
    "Tabulated",
    "SumPotential",
    "gravity",
    "potential_from_dict",
]

#: Codes of the nonlinear terms understood by the kernels.
CODE_DOUBLE_WELL = 1
CODE_TABULATED = 2
#: Width of one row of the nonlinear parameter table.
PARAM_WIDTH = 12


class Potential:
    """Base class of potentials; subclasses are frozen dataclasses."""

    #: Dimension fixed by the parameters, or ``None`` when any dimension works.
    @property
    def dim(self) -> int | None:
        return None

    def terms(self) -> tuple["Potential", ...]:
        """The elementary potentials whose sum this is."""
        return (self,)

    def __add__(self, other: "Potential") -> "SumPotential":
        if not isinstance(other, Potential):
            return NotImplemented
        return SumPotential(tuple(self.terms()) + tuple(other.terms()))

    def value(self, x: np.ndarray) -> np.ndarray:
        """U at points ``x`` of shape (n, d); returns shape (n,)."""
        raise NotImplementedError

    def affine_force(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(lin, off)`` with ``-grad U = lin * x + off`` for the affine part, shape (dim,) each."""
        return np.zeros(dim), np.zeros(dim)

    def nonlinear_rows(self, dim: int, tables: list[np.ndarray]) -> list[np.ndarray]:
        """Parameter rows (code first) of the nonlinear part; appends table data to ``tables``."""
        return []

    def curvature_bound(self, dim: int) -> float:
        """A typical largest curvature |U''| (for the step-size stability warning)."""
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description; inverse of :func:`potential_from_dict`."""
        return fields_description(self)


def fields_description(obj: Any) -> dict[str, Any]:
    """``{"kind": class name, field: value, ...}`` of a dataclass, arrays as lists (JSON-compatible)."""
    out: dict[str, Any] = {"kind": type(obj).__name__}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def _check_dim(x: np.ndarray, dim: int | None, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n, d), got {x.shape}.")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"`{name}` has {x.shape[1]} coordinates but the potential is {dim}-dimensional.")
    return x


def _broadcast(v: np.ndarray, dim: int, name: str) -> np.ndarray:
    if v.size == 1:
        return np.full(dim, float(v.ravel()[0]))
    if v.size != dim:
        raise ValueError(f"`{name}` has {v.size} entries but the problem is {dim}-dimensional.")
    return v.astype(float).copy()


@dataclass(frozen=True)
class Flat(Potential):
    """U = 0: free diffusion."""

    def value(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(_check_dim(x, None).shape[0])


@dataclass(frozen=True, eq=False)
class Harmonic(Potential):
    r"""Harmonic well :math:`U = \tfrac12 \sum_i k_i (x_i - c_i)^2`.

    Parameters
    ----------
    stiffness : float or array_like, shape (d,)
        Spring constants :math:`k_i \ge 0` (energy / length²).
    centre : float or array_like, shape (d,)
        Position of the minimum.
    """

    stiffness: Any = 1.0
    centre: Any = 0.0

    def __post_init__(self) -> None:
        k = as_float_vector(self.stiffness, "stiffness")
        if np.any(k < 0):
            raise ValueError(f"`stiffness` must be >= 0, got {k.tolist()}.")
        c = as_float_vector(self.centre, "centre")
        object.__setattr__(self, "stiffness", k)
        object.__setattr__(self, "centre", c)
        if k.size > 1 and c.size > 1 and k.size != c.size:
            raise ValueError(f"`stiffness` ({k.size}) and `centre` ({c.size}) lengths differ.")

    @property
    def dim(self) -> int | None:
        n = max(self.stiffness.size, self.centre.size)
        return n if n > 1 else None

    def value(self, x: np.ndarray) -> np.ndarray:
        x = _check_dim(x, self.dim)
        k = _broadcast(self.stiffness, x.shape[1], "stiffness")
        c = _broadcast(self.centre, x.shape[1], "centre")
        return 0.5 * np.sum(k * (x - c) ** 2, axis=1)

    def affine_force(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        k = _broadcast(self.stiffness, dim, "stiffness")
        c = _broadcast(self.centre, dim, "centre")
        return -k, k * c

    def curvature_bound(self, dim: int) -> float:
        return float(np.max(self.stiffness))


@dataclass(frozen=True, eq=False)
class ConstantForce(Potential):
    r"""Uniform force field, :math:`U = -F \cdot x` (gravity, an electric field).

    Parameters
    ----------
    force : array_like, shape (d,)
        The force vector F.
    """

    force: Any = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "force", as_float_vector(self.force, "force"))

    @property
    def dim(self) -> int | None:
        return self.force.size if self.force.size > 1 else None

    def value(self, x: np.ndarray) -> np.ndarray:
        x = _check_dim(x, self.dim)
        return -(x @ _broadcast(self.force, x.shape[1], "force"))

    def affine_force(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(dim), _broadcast(self.force, dim, "force")


def gravity(g: float, *, dim: int = 3, mass: float = 1.0) -> ConstantForce:
    """Weight ``-mass * g`` along the last axis of a ``dim``-dimensional space."""
    check_finite_scalar(g, "g")
    check_finite_positive(mass, "mass")
    f = np.zeros(int(dim))
    f[-1] = -mass * g
    return ConstantForce(f)


@dataclass(frozen=True, eq=False)
class DoubleWell(Potential):
    r"""Quartic double well along one axis, :math:`U = h\,((x_a/m)^2 - 1)^2`.

    Minima at :math:`x_a = \pm m`, barrier height ``h`` at :math:`x_a = 0`; flat in the
    other axes (add a :class:`Harmonic` to confine them).

    Parameters
    ----------
    barrier : float
        Barrier height h > 0 (energy).
    minimum : float
        Distance m > 0 of each minimum from the origin.
    axis : int
        Axis along which the wells lie.
    """

    barrier: float = 1.0
    minimum: float = 1.0
    axis: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "barrier", check_finite_positive(self.barrier, "barrier"))
        object.__setattr__(self, "minimum", check_finite_positive(self.minimum, "minimum"))
        object.__setattr__(self, "axis", check_int_range(self.axis, "axis", 0, 2))

    def value(self, x: np.ndarray) -> np.ndarray:
        x = _check_dim(x, None)
        if self.axis >= x.shape[1]:
            raise ValueError(f"`axis`={self.axis} does not exist in {x.shape[1]} dimensions.")
        s = (x[:, self.axis] / self.minimum) ** 2 - 1.0
        return self.barrier * s * s

    def nonlinear_rows(self, dim: int, tables: list[np.ndarray]) -> list[np.ndarray]:
        if self.axis >= dim:
            raise ValueError(f"DoubleWell `axis`={self.axis} does not exist in {dim} dimensions.")
        row = np.zeros(PARAM_WIDTH)
        row[:4] = (CODE_DOUBLE_WELL, self.barrier, self.minimum, self.axis)
        return [row]

    def curvature_bound(self, dim: int) -> float:
        return 8.0 * self.barrier / self.minimum**2


@dataclass(frozen=True, eq=False)
class Tabulated(Potential):
    """Any potential given by its values on a regular grid of nodes.

    The force is ``-grad U`` from second-order differences at the nodes,
    interpolated multilinearly between them; outside the table the nearest
    node's force is used.

    Parameters
    ----------
    values : array_like, shape (n_0,) or (n_0, n_1) or (n_0, n_1, n_2)
        U at the nodes, at least 3 nodes per axis.
    lower, upper : array_like, shape (d,)
        Coordinates of the first and last node along each axis.
    """

    values: Any
    lower: Any
    upper: Any

    def __post_init__(self) -> None:
        v = as_float_array(self.values, "values")
        if v.ndim not in (1, 2, 3):
            raise ValueError(f"`values` must be 1-, 2- or 3-dimensional, got shape {v.shape}.")
        if min(v.shape) < 3:
            raise ValueError(f"`values` needs at least 3 nodes per axis, got shape {v.shape}.")
        if not np.all(np.isfinite(v)):
            raise ValueError("`values` must be finite everywhere.")
        lo = as_float_vector(self.lower, "lower")
        hi = as_float_vector(self.upper, "upper")
        if lo.size != v.ndim or hi.size != v.ndim:
            raise ValueError(f"`lower` and `upper` must have {v.ndim} entries, one per axis of `values`.")
        if np.any(hi <= lo):
            raise ValueError("`upper` must exceed `lower` on every axis.")
        v = v.copy()
        v.flags.writeable = False
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def dim(self) -> int | None:
        return self.values.ndim

    @property
    def spacing(self) -> np.ndarray:
        return (self.upper - self.lower) / (np.array(self.values.shape) - 1)

    def value(self, x: np.ndarray) -> np.ndarray:
        from scipy.interpolate import RegularGridInterpolator

        x = _check_dim(x, self.dim)
        axes = [np.linspace(self.lower[i], self.upper[i], n) for i, n in enumerate(self.values.shape)]
        xc = np.clip(x, self.lower, self.upper)
        return RegularGridInterpolator(axes, self.values)(xc)

    def force_tables(self) -> np.ndarray:
        """-grad U at the nodes, shape (d, n_0, ...)."""
        h = self.spacing
        grads = np.gradient(self.values, *h, edge_order=2)
        if self.values.ndim == 1:
            grads = [grads]
        return -np.stack(grads)

    def nonlinear_rows(self, dim: int, tables: list[np.ndarray]) -> list[np.ndarray]:
        if dim != self.values.ndim:
            raise ValueError(f"Tabulated potential is {self.values.ndim}-dimensional, the problem {dim}-dimensional.")
        offset = sum(t.size for t in tables)
        # Node after node, the d components of each node together (see _coefficients._interpolate_lanes).
        tables.append(np.moveaxis(self.force_tables(), 0, -1).ravel())
        row = np.zeros(PARAM_WIDTH)
        row[0] = CODE_TABULATED
        row[1] = offset
        row[2:11] = grid_description(self.lower, self.spacing, self.values.shape)
        return [row]

    def curvature_bound(self, dim: int) -> float:
        h = self.spacing
        bound = 0.0
        for i in range(self.values.ndim):
            second = np.diff(self.values, 2, axis=i) / h[i] ** 2
            bound = max(bound, float(np.max(np.abs(second))))
        return bound

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "Tabulated", "values": self.values.tolist(),
                "lower": self.lower.tolist(), "upper": self.upper.tolist()}


def grid_description(lower: np.ndarray, spacing: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Node grid as 9 numbers for the kernels: lower (3), spacing (3), node counts (3).

    Unused axes get one node, so interpolation ignores them.
    """
    row = np.zeros(9)
    row[6:9] = 1
    d = len(shape)
    row[0:d] = lower
    row[3:3 + d] = spacing
    row[6:6 + d] = shape
    return row


@dataclass(frozen=True, eq=False)
class SumPotential(Potential):
    """Sum of elementary potentials; made by ``+``."""

    parts: tuple[Potential, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        parts = tuple(self.parts)
        for p in parts:
            if not isinstance(p, Potential) or isinstance(p, SumPotential):
                raise TypeError("`parts` must be elementary Potential objects.")
        dims = {p.dim for p in parts} - {None}
        if len(dims) > 1:
            raise ValueError(f"the summed potentials have different dimensions {sorted(dims)}.")
        object.__setattr__(self, "parts", parts)

    @property
    def dim(self) -> int | None:
        dims = {p.dim for p in self.parts} - {None}
        return dims.pop() if dims else None

    def terms(self) -> tuple[Potential, ...]:
        return self.parts

    def value(self, x: np.ndarray) -> np.ndarray:
        x = _check_dim(x, self.dim)
        total = np.zeros(x.shape[0])
        for p in self.parts:
            total += p.value(x)
        return total

    def affine_force(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        lin, off = np.zeros(dim), np.zeros(dim)
        for p in self.parts:
            a, b = p.affine_force(dim)
            lin += a
            off += b
        return lin, off

    def nonlinear_rows(self, dim: int, tables: list[np.ndarray]) -> list[np.ndarray]:
        rows: list[np.ndarray] = []
        for p in self.parts:
            rows.extend(p.nonlinear_rows(dim, tables))
        return rows

    def curvature_bound(self, dim: int) -> float:
        return sum(p.curvature_bound(dim) for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "SumPotential", "parts": [p.to_dict() for p in self.parts]}


_KINDS = {c.__name__: c for c in (Flat, Harmonic, DoubleWell, ConstantForce, Tabulated)}


def potential_from_dict(data: dict[str, Any]) -> Potential:
    """Rebuild a potential from :meth:`Potential.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind == "SumPotential":
        return SumPotential(tuple(potential_from_dict(p) for p in data["parts"]))
    if kind not in _KINDS:
        raise ValueError(f"unknown potential kind {kind!r}; allowed: {sorted(_KINDS) + ['SumPotential']}.")
    return _KINDS[kind](**data)
