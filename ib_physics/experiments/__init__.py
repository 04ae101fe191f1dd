"""Experiments: each a frozen configuration plus ``run()`` writing one HDF5 file and its figures."""

from __future__ import annotations

from .double_well import DoubleWellConfig, run_double_well
from .dye import run_dye
from .dye_config import DyeConfig, DyePhysics
from .dye_plots import load_dye, plot_dye
from .information_bottleneck import StudyConfig, read_study, run_study
from .information_bottleneck_plots import plot_study

__all__ = ["DoubleWellConfig", "run_double_well", "DyeConfig", "DyePhysics", "run_dye", "load_dye", "plot_dye",
           "StudyConfig", "run_study", "read_study", "plot_study"]
