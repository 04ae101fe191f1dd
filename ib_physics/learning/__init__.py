"""The deep-learning side: the information-bottleneck data, nets trained many at once,
gradient statistics per layer, the information plane and the drift-to-diffusion transition."""

from __future__ import annotations

from .data import IBDataset, ib_dataset, icosahedron_vertices, split_indices
from .information import DEFAULT_EDGES, InformationEstimate, binned_information, kde_information
from .least_squares import LeastSquares, train_least_squares
from .network import Architecture, EpochStatistics, Trainer, WeightTrace, init_params
from .records import GradientStatistics, read_gradient_statistics
from .transition import transition_epoch, transition_epochs

__all__ = ["IBDataset", "ib_dataset", "icosahedron_vertices", "split_indices", "DEFAULT_EDGES",
           "InformationEstimate", "binned_information", "kde_information", "Architecture", "EpochStatistics",
           "Trainer", "WeightTrace", "init_params", "transition_epoch", "transition_epochs", "GradientStatistics",
           "read_gradient_statistics", "LeastSquares", "train_least_squares"]
