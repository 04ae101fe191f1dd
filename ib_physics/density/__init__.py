"""The density engine: finite-volume Fokker–Planck equation (PHYSICS.md §1–§3)."""

from __future__ import annotations

from .grid import Grid
from .operator import assemble, bernoulli
from .result import DensityResult, load_density_result
from .solve import (DensityWarning, density_from_particles, gaussian_density, solve_fokker_planck,
                    stationary_density)

__all__ = [
    "DensityResult",
    "DensityWarning",
    "Grid",
    "assemble",
    "bernoulli",
    "density_from_particles",
    "gaussian_density",
    "load_density_result",
    "solve_fokker_planck",
    "stationary_density",
]
