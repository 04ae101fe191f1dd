"""Domains: where particles live and what their walls do.

A :class:`Box` is an axis-aligned interval, rectangle or cuboid with one boundary
kind per face; a :class:`Cylinder` is the glass (axis along z, bottom at z = 0).
Boundary kinds (PHYSICS.md §2):

``"reflecting"``  no flux; particles are mirrored back into the domain.
``"absorbing"``   p = 0 at the face; a particle is removed at its first crossing and
                  its first-passage time and exit face are recorded.
``"periodic"``    the two faces of an axis wrap; unwrapped displacements are kept.

Faces are numbered ``2 * axis`` (lower) and ``2 * axis + 1`` (upper) in a box;
``0`` side wall, ``1`` bottom, ``2`` top in a cylinder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import as_float_vector, check_finite_positive

__all__ = ["Box", "Cylinder", "Domain", "BOUNDARY_KINDS", "domain_from_dict"]

#: Boundary kind names and their kernel codes.
BOUNDARY_KINDS = {"reflecting": 0, "absorbing": 1, "periodic": 2}
REFLECTING, ABSORBING, PERIODIC = 0, 1, 2
#: Domain kind codes for the kernels.
DOMAIN_NONE, DOMAIN_BOX, DOMAIN_CYLINDER = 0, 1, 2


def _kind(value: Any, name: str) -> str:
    if not isinstance(value, str) or value not in BOUNDARY_KINDS:
        raise ValueError(f"`{name}` must be one of {sorted(BOUNDARY_KINDS)}, got {value!r}.")
    return value


@dataclass(frozen=True, eq=False)
class Box:
    """An axis-aligned box in 1, 2 or 3 dimensions.

    Parameters
    ----------
    lower, upper : float or array_like, shape (d,)
        Corners; ``upper > lower`` on every axis.
    boundaries : str or sequence
        One kind for every face, or one entry per axis: a kind for both faces of
        that axis, or a ``(lower_kind, upper_kind)`` pair. Periodic faces come in pairs.

    Examples
    --------
    >>> Box(0.0, 1.0, boundaries=[("reflecting", "absorbing")]).face_kinds
    ('reflecting', 'absorbing')
    """

    lower: Any
    upper: Any
    boundaries: Any = "reflecting"

    def __post_init__(self) -> None:
        lo = as_float_vector(self.lower, "lower")
        hi = as_float_vector(self.upper, "upper")
        if lo.size != hi.size:
            raise ValueError(f"`lower` ({lo.size}) and `upper` ({hi.size}) must have the same length.")
        if np.any(hi <= lo):
            raise ValueError(f"`upper` must exceed `lower` on every axis, got {lo.tolist()} and {hi.tolist()}.")
        d = lo.size
        b = self.boundaries
        if isinstance(b, str):
            faces = [_kind(b, "boundaries")] * (2 * d)
        else:
            if not isinstance(b, (list, tuple)):
                raise TypeError(f"`boundaries` must be a kind or one entry per axis (a kind or a (lower, upper) "
                                f"pair), got {b!r}.")
            b = list(b)
            if len(b) != d:
                raise ValueError(f"`boundaries` needs one entry per axis ({d}), got {len(b)}.")
            faces = []
            for axis, entry in enumerate(b):
                if isinstance(entry, str):
                    faces += [_kind(entry, f"boundaries[{axis}]")] * 2
                else:
                    if not isinstance(entry, (list, tuple)):
                        raise TypeError(f"`boundaries[{axis}]` must be a kind or a (lower, upper) pair, got {entry!r}.")
                    pair = list(entry)
                    if len(pair) != 2:
                        raise ValueError(f"`boundaries[{axis}]` must be a kind or a (lower, upper) pair.")
                    faces += [_kind(pair[0], f"boundaries[{axis}][0]"), _kind(pair[1], f"boundaries[{axis}][1]")]
        for axis in range(d):
            if (faces[2 * axis] == "periodic") != (faces[2 * axis + 1] == "periodic"):
                raise ValueError(f"`boundaries[{axis}]`: periodic faces must come in pairs on one axis.")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "boundaries", tuple(faces))

    @property
    def dim(self) -> int:
        return self.lower.size

    @property
    def face_kinds(self) -> tuple[str, ...]:
        """Kind of each face, ordered (axis 0 lower, axis 0 upper, axis 1 lower, ...)."""
        return self.boundaries

    @property
    def face_names(self) -> tuple[str, ...]:
        axes = "xyz"
        return tuple(f"{axes[i // 2]}_{'lower' if i % 2 == 0 else 'upper'}" for i in range(2 * self.dim))

    @property
    def lengths(self) -> np.ndarray:
        return self.upper - self.lower

    @property
    def volume(self) -> float:
        return float(np.prod(self.lengths))

    @property
    def size(self) -> float:
        """A length scale of the domain (the largest edge)."""
        return float(np.max(self.lengths))

    def has(self, kind: str) -> bool:
        return _kind(kind, "kind") in self.boundaries

    def contains(self, x: Any) -> np.ndarray:
        """Whether points (n, d) lie in the closed box; shape (n,)."""
        x = np.asarray(x, dtype=float).reshape(-1, self.dim)
        return np.all((x >= self.lower) & (x <= self.upper), axis=1)

    def kernel_arrays(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, float, float]:
        """(domain code, lower, upper, face codes, radius, height) for the kernels."""
        codes = np.array([BOUNDARY_KINDS[k] for k in self.boundaries], dtype=np.int64)
        return DOMAIN_BOX, self.lower.copy(), self.upper.copy(), codes, 0.0, 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "Box", "lower": self.lower.tolist(), "upper": self.upper.tolist(),
                "boundaries": [list(self.boundaries[2 * i:2 * i + 2]) for i in range(self.dim)]}


@dataclass(frozen=True, eq=False)
class Cylinder:
    """The glass: a cylinder of ``radius`` and ``height``, axis along z, bottom at z = 0.

    Particles move in 3D (x, y, z); the side wall and the bottom reflect, the top
    reflects or absorbs (evaporation, an open surface).

    Parameters
    ----------
    radius, height : float
        Positive lengths.
    top : {"reflecting", "absorbing"}
        What the surface at z = height does.
    """

    radius: float
    height: float
    top: str = "reflecting"

    def __post_init__(self) -> None:
        object.__setattr__(self, "radius", check_finite_positive(self.radius, "radius"))
        object.__setattr__(self, "height", check_finite_positive(self.height, "height"))
        if self.top not in ("reflecting", "absorbing"):
            raise ValueError(f"`top` must be 'reflecting' or 'absorbing', got {self.top!r}.")

    @property
    def dim(self) -> int:
        return 3

    @property
    def face_kinds(self) -> tuple[str, ...]:
        return ("reflecting", "reflecting", self.top)

    @property
    def face_names(self) -> tuple[str, ...]:
        return ("side", "bottom", "top")

    @property
    def lower(self) -> np.ndarray:
        return np.array([-self.radius, -self.radius, 0.0])

    @property
    def upper(self) -> np.ndarray:
        return np.array([self.radius, self.radius, self.height])

    @property
    def volume(self) -> float:
        return float(np.pi * self.radius**2 * self.height)

    @property
    def size(self) -> float:
        return max(2 * self.radius, self.height)

    def has(self, kind: str) -> bool:
        return _kind(kind, "kind") in self.face_kinds

    def contains(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, 3)
        r2 = x[:, 0] ** 2 + x[:, 1] ** 2
        return (r2 <= self.radius**2) & (x[:, 2] >= 0) & (x[:, 2] <= self.height)

    def kernel_arrays(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, float, float]:
        codes = np.array([BOUNDARY_KINDS[k] for k in self.face_kinds], dtype=np.int64)
        return DOMAIN_CYLINDER, self.lower, self.upper, codes, self.radius, self.height

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "Cylinder", "radius": self.radius, "height": self.height, "top": self.top}


Domain = Box | Cylinder


def domain_from_dict(data: dict[str, Any] | None) -> Domain | None:
    """Rebuild a domain from its ``to_dict`` output (``None`` stays ``None``)."""
    if data is None:
        return None
    data = dict(data)
    kind = data.pop("kind", None)
    if kind == "Box":
        return Box(data["lower"], data["upper"], boundaries=data["boundaries"])
    if kind == "Cylinder":
        return Cylinder(**data)
    raise ValueError(f"unknown domain kind {kind!r}; allowed: 'Box', 'Cylinder'.")


def unbounded_kernel_arrays(dim: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Kernel arrays for free space."""
    return DOMAIN_NONE, np.zeros(dim), np.zeros(dim), np.zeros(2 * dim, dtype=np.int64), 0.0, 0.0


def face_count(domain: Domain | None, dim: int) -> int:
    if domain is None:
        return 0
    return len(domain.face_kinds)

