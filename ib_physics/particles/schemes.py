"""Time-stepping schemes of the particle engine, with their orders declared as data."""

from __future__ import annotations

from dataclasses import dataclass

from . import _kernels

__all__ = ["Scheme", "SCHEMES", "get_scheme"]


@dataclass(frozen=True)
class Scheme:
    """A stochastic integration scheme.

    Attributes
    ----------
    name : str
        Name accepted by :func:`ib_physics.simulate`.
    code : int
        Kernel code.
    strong_order : float
        Strong (pathwise) order for multiplicative diagonal noise.
    strong_order_additive : float
        Strong order when the noise amplitude does not depend on x.
    weak_order : float
        Order of convergence of expectations of smooth functions.
    normals_per_axis : int
        Standard normal numbers drawn per step and axis.
    additive_only : bool
        True when the scheme requires position-independent diffusion.
    reference : str
        Where the scheme comes from.
    """

    name: str
    code: int
    strong_order: float
    strong_order_additive: float
    weak_order: float
    normals_per_axis: int
    additive_only: bool
    reference: str


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("euler_maruyama", _kernels.SCHEME_EULER_MARUYAMA, 0.5, 1.0, 1.0, 1, False,
               "Kloeden & Platen (1992), §10.2"),
        Scheme("milstein", _kernels.SCHEME_MILSTEIN, 1.0, 1.0, 1.0, 1, False,
               "Kloeden & Platen (1992), §10.3; diagonal noise, each D_i depending on x_i"),
        Scheme("sra1", _kernels.SCHEME_SRA1, 1.5, 1.5, 2.0, 2, True,
               "Rößler, SIAM J. Numer. Anal. 48 (2010) 922, SRA1 for additive noise"),
    )
}


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; ``ValueError`` listing the allowed names otherwise."""
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(f"`scheme` must be one of {sorted(SCHEMES)}, got {name!r}.")
    return SCHEMES[name]
