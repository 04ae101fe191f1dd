"""The particle engine: SDE trajectories, one per particle (PHYSICS.md §1, §2, §4)."""

from __future__ import annotations

from ._reducers import REDUCTION_BLOCK
from .merge import merge_particle_results
from .result import BlockMoments, ParticleHistogram, ParticleResult, load_particle_result
from .schemes import SCHEMES, Scheme, get_scheme
from .simulate import StabilityWarning, simulate

__all__ = [
    "REDUCTION_BLOCK",
    "SCHEMES",
    "BlockMoments",
    "ParticleHistogram",
    "ParticleResult",
    "Scheme",
    "StabilityWarning",
    "get_scheme",
    "load_particle_result",
    "merge_particle_results",
    "simulate",
]
