r"""The physics defined once: drift and diffusion of overdamped Langevin dynamics.

.. math::

    dX = a(X, t)\,dt + \sqrt{2 D(X, t)}\,dW, \qquad
    a = \mu\,\bigl(-s(t)\,\nabla U(X) + f(t)\bigr) + u(X) + \alpha\,\nabla D

(Itô, per axis). ``mu`` is the mobility, ``s(t)`` a potential scale, ``f(t)`` an
external force, ``u`` the velocity of a flow of the medium (:mod:`ib_physics.flows`,
the drift that is not a gradient); ``alpha`` is 0 for the Itô convention (the default), 1/2 for a
Stratonovich reading and 1 for the isothermal (Hänggi–Klimontovich) one, so that
any convention is explicit. The ensemble density obeys
:math:`\partial_t p = -\nabla\cdot J`, :math:`J_i = a_i p - \partial_i (D_i p)`.

Time dependence is piecewise constant: :class:`Schedule` values hold on
``[times[j-1], times[j])``. A :class:`Dynamics` is handed unchanged to the
particle engine and to the density engine; both read it through
:meth:`Dynamics.plan`, a table of constant-coefficient segments.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _coefficients
from ._validation import as_float_vector, check_choice, check_finite_positive, check_finite_scalar
from .flows import Flow, flow_from_dict
from .potentials import Flat, Potential, grid_description, potential_from_dict

__all__ = ["Schedule", "DiffusionField", "Dynamics", "DynamicsPlan", "CONVENTIONS"]

#: Drift correction alpha * grad D of each stochastic-calculus convention.
CONVENTIONS = {"ito": 0.0, "stratonovich": 0.5, "isothermal": 1.0}


@dataclass(frozen=True, eq=False)
class Schedule:
    """A piecewise-constant function of time.

    Parameters
    ----------
    times : array_like, shape (m - 1,)
        Strictly increasing switching times.
    values : array_like, shape (m,) or (m, d)
        ``values[j]`` holds on ``[times[j-1], times[j])`` (``values[0]`` before the
        first switch, ``values[-1]`` after the last).

    Examples
    --------
    Stiffness 1 until t = 2, then 4:

    >>> Schedule([2.0], [1.0, 4.0]).at(3.0)
    array(4.)
    """

    times: Any
    values: Any

    def __post_init__(self) -> None:
        t = np.atleast_1d(np.asarray(self.times, dtype=float))
        v = np.asarray(self.values, dtype=float)
        if t.ndim != 1:
            raise ValueError(f"`times` must be 1-dimensional, got shape {t.shape}.")
        if v.ndim not in (1, 2) or v.shape[0] != t.size + 1:
            raise ValueError(
                f"`values` must have shape ({t.size + 1},) or ({t.size + 1}, d): one more entry than "
                f"`times`; got {v.shape}."
            )
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
            raise ValueError("`times` and `values` must be finite.")
        if np.any(np.diff(t) <= 0):
            raise ValueError("`times` must be strictly increasing.")
        for a in (t, v):
            a.flags.writeable = False
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "values", v)

    def at(self, t: float) -> np.ndarray:
        """The value in force at time ``t``."""
        return self.values[int(np.searchsorted(self.times, t, side="right"))]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "Schedule", "times": self.times.tolist(), "values": self.values.tolist()}


@dataclass(frozen=True, eq=False)
class DiffusionField:
    """A space-dependent scalar diffusion coefficient D(x) tabulated on nodes.

    Interpolated multilinearly between nodes (so it stays positive); its gradient
    comes from second-order differences at the nodes, interpolated the same way.
    Outside the table the nearest node's values are used.

    Parameters
    ----------
    values : array_like, shape (n_0,), (n_0, n_1) or (n_0, n_1, n_2)
        D > 0 at the nodes, at least 3 nodes per axis.
    lower, upper : array_like, shape (d,)
        First and last node along each axis.
    """

    values: Any
    lower: Any
    upper: Any

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=float)
        if v.ndim not in (1, 2, 3) or min(v.shape) < 3:
            raise ValueError(f"`values` must be a 1-3 dimensional table with >= 3 nodes per axis, got {v.shape}.")
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError("diffusion field `values` must be finite and > 0 at every node.")
        lo = as_float_vector(self.lower, "lower")
        hi = as_float_vector(self.upper, "upper")
        if lo.size != v.ndim or hi.size != v.ndim or np.any(hi <= lo):
            raise ValueError(f"`lower` < `upper` must give one entry per axis of `values` ({v.ndim}).")
        v = v.copy()
        v.flags.writeable = False
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @classmethod
    def from_function(cls, func: Any, lower: Any, upper: Any, nodes: int | tuple[int, ...] = 201) -> "DiffusionField":
        """Tabulate ``func(*coordinates)`` (vectorised) on a regular node grid."""
        lo = np.atleast_1d(np.asarray(lower, float))
        hi = np.atleast_1d(np.asarray(upper, float))
        counts = (nodes,) * lo.size if isinstance(nodes, (int, np.integer)) else tuple(nodes)
        axes = [np.linspace(lo[i], hi[i], counts[i]) for i in range(lo.size)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return cls(np.asarray(func(*mesh), dtype=float), lo, hi)

    @property
    def dim(self) -> int:
        return self.values.ndim

    @property
    def spacing(self) -> np.ndarray:
        return (self.upper - self.lower) / (np.array(self.values.shape) - 1)

    def tables(self) -> np.ndarray:
        """The value then the d gradient components at every node, node after node (C order of the
        nodes), flattened: shape (n_nodes * (1 + d),). A node's components lie together, so an
        interpolation touches one or two cache lines per pair of corner nodes, not one per component."""
        grads = np.gradient(self.values, *self.spacing, edge_order=2)
        if self.values.ndim == 1:
            grads = [grads]
        return np.stack([self.values] + list(grads), axis=-1).ravel()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "DiffusionField", "values": self.values.tolist(),
                "lower": self.lower.tolist(), "upper": self.upper.tolist()}


@dataclass(frozen=True, eq=False)
class DynamicsPlan:
    """Constant-coefficient segments of a :class:`Dynamics` in ``dim`` dimensions.

    Segment ``j`` holds on ``[starts[j], starts[j+1])`` (the last one forever).

    Attributes
    ----------
    starts : (n_seg,) segment start times (``starts[0]`` is the plan's start).
    lin, off : (n_seg, d) affine force part: ``a_i = lin_i x_i + off_i + ...``.
    nl_scale : (n_seg,) factor of the potential forces (mobility x scale), mu s(t).
    external : (n_seg, d) mobility x external force, mu f(t).
    nl_rows : (n_terms, 12) nonlinear term rows (potential terms, scaled by ``nl_scale``, then the
        flow's rows, unscaled); ``tables`` their data.
    diff : (n_seg, d) diffusion constants (multipliers of the field when present).
    field_on, field_grid, field_tables : tabulated D(x), if any.
    alpha : convention drift factor.
    """

    dim: int
    starts: np.ndarray
    lin: np.ndarray
    off: np.ndarray
    nl_scale: np.ndarray
    external: np.ndarray
    nl_rows: np.ndarray
    tables: np.ndarray
    diff: np.ndarray
    field_on: bool
    field_grid: np.ndarray
    field_tables: np.ndarray
    alpha: float

    @property
    def n_segments(self) -> int:
        return self.starts.size

    def segment_of(self, t: np.ndarray | float) -> np.ndarray:
        """Index of the segment in force at each time."""
        return np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, self.n_segments - 1)

    @property
    def is_additive(self) -> bool:
        """True when the noise amplitude does not depend on position."""
        return not self.field_on

    @property
    def has_nonlinear_terms(self) -> bool:
        return self.nl_rows.shape[0] > 0


def _schedule_or_constant(value: Any, name: str, *, allow_vector: bool = True) -> Any:
    if isinstance(value, Schedule):
        if not allow_vector and value.values.ndim != 1:
            raise ValueError(f"`{name}` schedule must hold scalars.")
        return value
    if allow_vector:
        return as_float_vector(value, name)
    return check_finite_scalar(value, name)


@dataclass(frozen=True, eq=False, kw_only=True)
class Dynamics:
    r"""Drift and diffusion of overdamped Langevin dynamics (Itô by default).

    Parameters
    ----------
    potential : Potential
        U(x); the conservative force is ``-grad U``. Default: :class:`~ib_physics.potentials.Flat`.
    diffusion : float, array_like (d,), DiffusionField or Schedule
        D: a scalar, one value per axis, a tabulated field D(x), or a piecewise-constant
        schedule of scalars or per-axis values. Must be > 0.
    mobility : float
        mu > 0 multiplying the forces (for one temperature, D = mu k T).
    force : None, array_like (d,) or Schedule
        External force f(t) (not derived from U), added to ``-grad U``.
    potential_scale : float or Schedule
        s(t) >= 0 multiplying U (switch a trap on and off, change its stiffness).
    convention : {"ito", "stratonovich", "isothermal"}
        How to read the multiplicative noise when D depends on x: adds
        ``alpha * grad D`` to the drift with alpha = 0, 1/2, 1.
    flow : None or Flow
        Velocity u(x) of the medium (e.g. :class:`~ib_physics.flows.Rotation`), added to the
        drift as it is (not multiplied by the mobility or the potential scale).
    """

    potential: Potential = dataclasses.field(default_factory=Flat)
    diffusion: Any = 1.0
    mobility: float = 1.0
    force: Any = None
    potential_scale: Any = 1.0
    convention: str = "ito"
    flow: Flow | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.potential, Potential):
            raise TypeError(f"`potential` must be a Potential, got {type(self.potential).__name__}.")
        if self.flow is not None and not isinstance(self.flow, Flow):
            raise TypeError(f"`flow` must be None or an ib_physics.flows.Flow, got {type(self.flow).__name__}.")
        d = self.diffusion
        if isinstance(d, DiffusionField):
            pass
        elif isinstance(d, Schedule):
            if np.any(d.values <= 0):
                raise ValueError("`diffusion` schedule values must be > 0.")
        else:
            d = as_float_vector(d, "diffusion")
            if np.any(d <= 0):
                raise ValueError(f"`diffusion` must be > 0 and finite, got {d.tolist()}.")
        object.__setattr__(self, "diffusion", d)
        object.__setattr__(self, "mobility", check_finite_positive(self.mobility, "mobility"))
        if self.force is not None:
            object.__setattr__(self, "force", _schedule_or_constant(self.force, "force"))
        scale = _schedule_or_constant(self.potential_scale, "potential_scale", allow_vector=False)
        if (np.any(scale.values < 0) if isinstance(scale, Schedule) else scale < 0):
            raise ValueError("`potential_scale` must be >= 0.")
        object.__setattr__(self, "potential_scale", scale)
        check_choice(self.convention, "convention", sorted(CONVENTIONS))
        self.dim  # noqa: B018  (raises on inconsistent dimensions)

    @property
    def dim(self) -> int | None:
        """Dimension fixed by the parameters, or None when any dimension works."""
        dims: dict[str, int] = {}
        if self.potential.dim is not None:
            dims["potential"] = self.potential.dim
        if self.flow is not None and self.flow.dim is not None:
            dims["flow"] = self.flow.dim
        for name in ("diffusion", "force"):
            v = getattr(self, name)
            if isinstance(v, DiffusionField):
                dims[name] = v.dim
            elif isinstance(v, Schedule):
                if v.values.ndim == 2 and v.values.shape[1] > 1:
                    dims[name] = v.values.shape[1]
            elif isinstance(v, np.ndarray) and v.size > 1:
                dims[name] = v.size
        if len(set(dims.values())) > 1:
            raise ValueError(f"inconsistent dimensions: {dims}.")
        return next(iter(dims.values()), None)

    @property
    def has_field(self) -> bool:
        return isinstance(self.diffusion, DiffusionField)

    def switch_times(self) -> np.ndarray:
        """All times at which some coefficient switches."""
        times = [v.times for v in (self.diffusion, self.force, self.potential_scale) if isinstance(v, Schedule)]
        return np.unique(np.concatenate(times)) if times else np.zeros(0)

    def plan(self, dim: int, t_start: float, t_end: float) -> DynamicsPlan:
        """Constant-coefficient segments covering ``[t_start, t_end]`` in ``dim`` dimensions."""
        if dim not in (1, 2, 3):
            raise ValueError(f"dimension must be 1, 2 or 3, got {dim}.")
        own = self.dim
        if own is not None and own != dim:
            raise ValueError(f"the dynamics is {own}-dimensional, the problem {dim}-dimensional.")
        switches = self.switch_times()
        starts = np.concatenate([[t_start], switches[(switches > t_start) & (switches < t_end)]])
        n_seg = starts.size
        lin_u, off_u = self.potential.affine_force(dim)
        tables: list[np.ndarray] = []
        rows = self.potential.nonlinear_rows(dim, tables)
        if self.flow is not None:
            rows = rows + self.flow.rows(dim)
        nl_rows = np.array(rows).reshape(len(rows), -1) if rows else np.zeros((0, 12))
        lin = np.empty((n_seg, dim))
        off = np.empty((n_seg, dim))
        nl_scale = np.empty(n_seg)
        external = np.empty((n_seg, dim))
        diff = np.empty((n_seg, dim))
        mu = self.mobility
        for j, t in enumerate(starts):
            s = float(self.potential_scale.at(t)) if isinstance(self.potential_scale, Schedule) else self.potential_scale
            f = np.zeros(dim)
            if self.force is not None:
                f = _per_axis(self.force.at(t) if isinstance(self.force, Schedule) else self.force, dim, "force")
            lin[j] = mu * s * lin_u
            off[j] = mu * (s * off_u + f)
            nl_scale[j] = mu * s
            external[j] = mu * f
            if isinstance(self.diffusion, DiffusionField):
                diff[j] = 1.0
            elif isinstance(self.diffusion, Schedule):
                diff[j] = _per_axis(self.diffusion.at(t), dim, "diffusion")
            else:
                diff[j] = _per_axis(self.diffusion, dim, "diffusion")
        if isinstance(self.diffusion, DiffusionField):
            if self.diffusion.dim != dim:
                raise ValueError(f"the diffusion field is {self.diffusion.dim}-dimensional, the problem {dim}-dimensional.")
            field_grid = grid_description(self.diffusion.lower, self.diffusion.spacing, self.diffusion.values.shape)
            field_tables = self.diffusion.tables()
        else:
            field_grid = grid_description(np.zeros(1), np.ones(1), (1,))
            field_tables = np.zeros(1)
        return DynamicsPlan(
            dim=dim, starts=starts, lin=lin, off=off, nl_scale=nl_scale, external=external,
            nl_rows=np.ascontiguousarray(nl_rows, dtype=float),
            tables=np.concatenate(tables) if tables else np.zeros(1),
            diff=diff, field_on=isinstance(self.diffusion, DiffusionField),
            field_grid=field_grid, field_tables=field_tables,
            alpha=CONVENTIONS[self.convention],
        )

    def coefficients(self, x: Any, t: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Drift a(x, t) and per-axis diffusion D(x, t) at points.

        Parameters
        ----------
        x : array_like, shape (n, d)
            Points.
        t : float
            Time.

        Returns
        -------
        drift, diffusion : numpy.ndarray, shape (n, d) each
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] not in (1, 2, 3):
            raise ValueError(f"`x` must have shape (n, d) with d in 1..3, got {x.shape}.")
        t = check_finite_scalar(t, "t")
        p = self.plan(x.shape[1], t, t)
        seg = np.zeros(x.shape[0], dtype=np.int64)
        return _coefficients.evaluate_coefficients(
            np.ascontiguousarray(x), seg, p.lin, p.off, p.nl_scale, p.nl_rows, p.tables, p.diff,
            p.field_on, p.field_grid, p.field_tables, p.alpha,
        )

    def drift(self, x: Any, t: float = 0.0) -> np.ndarray:
        """Drift a(x, t), shape (n, d); see :meth:`coefficients`."""
        return self.coefficients(x, t)[0]

    def diffusion_at(self, x: Any, t: float = 0.0) -> np.ndarray:
        """Per-axis D(x, t), shape (n, d); see :meth:`coefficients`."""
        return self.coefficients(x, t)[1]

    def stiffness_bound(self, dim: int) -> float:
        """Largest rate mu * s * |U''| (over the schedule) plus the flow's |du/dx|: the stability of explicit steps."""
        s = self.potential_scale
        s_max = float(np.max(s.values)) if isinstance(s, Schedule) else float(s)
        flow_rate = self.flow.rate_bound(dim) if self.flow is not None else 0.0
        return self.mobility * s_max * self.potential.curvature_bound(dim) + flow_rate

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description; inverse of :meth:`from_dict`."""
        def enc(v: Any) -> Any:
            if hasattr(v, "to_dict"):
                return v.to_dict()
            if isinstance(v, np.ndarray):
                return v.tolist()
            return v

        out = {"potential": self.potential.to_dict(), "diffusion": enc(self.diffusion),
               "mobility": self.mobility, "force": enc(self.force),
               "potential_scale": enc(self.potential_scale), "convention": self.convention}
        if self.flow is not None:  # absent otherwise, so descriptions without a flow keep their form
            out["flow"] = self.flow.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Dynamics":
        """Rebuild from :meth:`to_dict` output."""
        def dec(v: Any) -> Any:
            if isinstance(v, dict):
                kind = v.get("kind")
                if kind == "Schedule":
                    return Schedule(v["times"], v["values"])
                if kind == "DiffusionField":
                    return DiffusionField(v["values"], v["lower"], v["upper"])
                raise ValueError(f"unknown coefficient kind {kind!r}.")
            return v

        return cls(potential=potential_from_dict(data["potential"]), diffusion=dec(data["diffusion"]),
                   mobility=data["mobility"], force=dec(data["force"]),
                   potential_scale=dec(data["potential_scale"]), convention=data["convention"],
                   flow=None if data.get("flow") is None else flow_from_dict(data["flow"]))


def _per_axis(value: Any, dim: int, name: str) -> np.ndarray:
    v = np.atleast_1d(np.asarray(value, dtype=float))
    if v.size == 1:
        return np.full(dim, float(v[0]))
    if v.size != dim:
        raise ValueError(f"`{name}` has {v.size} entries but the problem is {dim}-dimensional.")
    return v
