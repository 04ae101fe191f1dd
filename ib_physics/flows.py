r"""Flows of the medium: drift that is not the gradient of a potential.

A flow is a velocity field u(x) of the fluid the particles sit in (a stirred glass, a
rotating stage). It advects the particles as it is, without the mobility: the drift is

.. math:: a = \mu\,\bigl(-s(t)\,\nabla U + f(t)\bigr) + u(x) + \alpha\,\nabla D.

A flow with a curl has no potential, so its stationary state is not the Boltzmann
density in general and carries a steady probability current; only time integrators that
do not rely on detailed balance apply to it (the density engine's BDF2, every particle
scheme). Like the nonlinear potentials, a flow reaches the kernels as a parameter row
with an integer code, never as a Python callable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._coefficients import CODE_ROTATION
from ._validation import as_float_vector
from .potentials import fields_description

__all__ = ["Flow", "Rotation", "flow_from_dict"]

#: Width of one kernel parameter row (the potentials' rows share it).
PARAM_WIDTH = 12


class Flow:
    """Base class of flows u(x); subclasses are frozen dataclasses."""

    @property
    def dim(self) -> int | None:
        """Dimension fixed by the parameters, or ``None`` when several work."""
        return None

    def velocity(self, x: Any) -> np.ndarray:
        """u at points ``x`` of shape (n, d); returns shape (n, d)."""
        raise NotImplementedError

    def rows(self, dim: int) -> list[np.ndarray]:
        """Kernel parameter rows (code first) of this flow in ``dim`` dimensions."""
        raise NotImplementedError

    def rate_bound(self, dim: int) -> float:
        """Largest rate |du/dx| (for the step-size stability warning)."""
        return 0.0

    def is_axisymmetric(self) -> bool:
        """True when the flow keeps densities symmetric about the z axis (the glass)."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description; inverse of :func:`flow_from_dict`."""
        return fields_description(self)


@dataclass(frozen=True, eq=False)
class Rotation(Flow):
    r"""Rigid rotation of the medium, :math:`u(x) = \Omega \times (x - c)`.

    Divergence-free with curl :math:`2\Omega`. With an isotropic harmonic trap centred on
    the axis the stationary density stays Boltzmann's, carrying the current
    :math:`J = p\,u` around the axis; in a double well it does not.

    Parameters
    ----------
    angular_velocity : float or array_like, shape (3,)
        A scalar ω rotates counter-clockwise about the last axis (the plane's normal in 2D,
        z in 3D), in radians per unit time; a 3-vector Ω is the angular velocity in 3D.
    centre : float or array_like, shape (d,)
        A point on the axis of rotation.

    Examples
    --------
    >>> Rotation(2.0).velocity([[1.0, 0.0]])
    array([[0., 2.]])
    """

    angular_velocity: Any = 1.0
    centre: Any = 0.0

    def __post_init__(self) -> None:
        w = as_float_vector(self.angular_velocity, "angular_velocity")
        if w.size not in (1, 3):
            raise ValueError(f"`angular_velocity` must be a scalar or a 3-vector, got {w.size} entries.")
        c = as_float_vector(self.centre, "centre")
        if c.size not in (1, 2, 3):
            raise ValueError(f"`centre` must be a scalar or have 2 or 3 entries, got {c.size}.")
        if w.size == 3 and c.size == 2:
            raise ValueError("a 3-vector `angular_velocity` is 3-dimensional; `centre` then needs 3 entries.")
        object.__setattr__(self, "angular_velocity", w)
        object.__setattr__(self, "centre", c)

    @property
    def dim(self) -> int | None:
        if self.angular_velocity.size == 3:
            return 3
        return self.centre.size if self.centre.size > 1 else None

    def _vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(Omega as a 3-vector, centre as a 3-vector) in ``dim`` dimensions."""
        if dim not in (2, 3):
            raise ValueError(f"`flow`: a Rotation needs 2 or 3 dimensions, the problem has {dim}.")
        own = self.dim
        if own is not None and own != dim:
            raise ValueError(f"the Rotation is {own}-dimensional, the problem {dim}-dimensional.")
        w = self.angular_velocity
        omega = w.copy() if w.size == 3 else np.array([0.0, 0.0, float(w[0])])
        centre = np.zeros(3)
        centre[:dim] = self.centre if self.centre.size > 1 else float(self.centre[0])
        return omega, centre

    def velocity(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"`x` must have shape (n, d), got {x.shape}.")
        d = x.shape[1]
        omega, centre = self._vectors(d)
        r = np.zeros((x.shape[0], 3))
        r[:, :d] = x - centre[:d]
        return np.cross(omega, r)[:, :d]

    def rows(self, dim: int) -> list[np.ndarray]:
        omega, centre = self._vectors(dim)
        row = np.zeros(PARAM_WIDTH)
        row[0] = CODE_ROTATION
        row[1:4] = omega
        row[4:7] = centre
        return [row]

    def rate_bound(self, dim: int) -> float:
        omega, _ = self._vectors(dim)
        return float(np.linalg.norm(omega if dim == 3 else omega[2:]))

    def is_axisymmetric(self) -> bool:
        w = self.angular_velocity
        about_z = w.size == 1 or (w[0] == 0.0 and w[1] == 0.0)
        return bool(about_z and np.all(self.centre[:2] == 0.0))


_KINDS = {c.__name__: c for c in (Rotation,)}


def flow_from_dict(data: dict[str, Any]) -> Flow:
    """Rebuild a flow from :meth:`Flow.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"unknown flow kind {kind!r}; allowed: {sorted(_KINDS)}.")
    return _KINDS[kind](**data)
