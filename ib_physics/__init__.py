"""ib_physics: Brownian particles, Fokker–Planck densities and the drift/diffusion picture of SGD."""

from __future__ import annotations

__version__ = "0.1.0"

from . import flows, potentials
from .adapter import CoordinateModel, LayerwiseDynamics, layer_dynamics
from .compare import Comparison, compare, compare_sample, convergence_in_n
from .density import (DensityResult, DensityWarning, Grid, density_from_particles, gaussian_density,
                      solve_fokker_planck, stationary_density)
from .domains import Box, Cylinder
from .dynamics import DiffusionField, Dynamics, Schedule
from .particles import ParticleHistogram, ParticleResult, StabilityWarning, simulate

__all__ = [
    "__version__",
    "Box",
    "Comparison",
    "CoordinateModel",
    "LayerwiseDynamics",
    "layer_dynamics",
    "Cylinder",
    "DensityResult",
    "DensityWarning",
    "Grid",
    "density_from_particles",
    "gaussian_density",
    "solve_fokker_planck",
    "stationary_density",
    "DiffusionField",
    "Dynamics",
    "ParticleHistogram",
    "ParticleResult",
    "Schedule",
    "compare",
    "compare_sample",
    "convergence_in_n",
    "StabilityWarning",
    "flows",
    "potentials",
    "simulate",
]
