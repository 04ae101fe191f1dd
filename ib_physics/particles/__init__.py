"""The particle engine: SDE trajectories, one per particle (PHYSICS.md §1, §2, §4)."""

from __future__ import annotations

from .result import ParticleHistogram, ParticleResult, load_particle_result
from .schemes import SCHEMES, Scheme, get_scheme
from .simulate import StabilityWarning, simulate

__all__ = [
    "SCHEMES",
    "ParticleHistogram",
    "ParticleResult",
    "Scheme",
    "StabilityWarning",
    "get_scheme",
    "load_particle_result",
    "simulate",
]
