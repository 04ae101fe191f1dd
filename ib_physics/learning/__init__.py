"""The deep-learning side: the information-bottleneck data, nets trained many at once,
gradient statistics per layer, the information plane and the drift-to-diffusion transition."""

from __future__ import annotations

from .data import IBDataset, ib_dataset, icosahedron_vertices, split_indices
from .information import DEFAULT_EDGES, InformationEstimate, binned_information, kde_information
from .network import Architecture, EpochStatistics, Trainer, init_params
from .transition import transition_epoch, transition_epochs

__all__ = ["IBDataset", "ib_dataset", "icosahedron_vertices", "split_indices", "DEFAULT_EDGES",
           "InformationEstimate", "binned_information", "kde_information", "Architecture", "EpochStatistics",
           "Trainer", "init_params", "transition_epoch", "transition_epochs"]
