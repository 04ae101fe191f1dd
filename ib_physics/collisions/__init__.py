"""Where Brownian motion comes from: exact event-driven dynamics of hard disks, and what it measures."""

from __future__ import annotations

from .analysis import (Trajectory, TransportFit, fit_transport, local_slope, mean_squared_displacement, record,
                       velocity_autocorrelation)
from .disks import EventCounts, HardDisks, random_disks

__all__ = ["HardDisks", "random_disks", "EventCounts", "Trajectory", "TransportFit", "record", "fit_transport",
           "mean_squared_displacement", "velocity_autocorrelation", "local_slope"]
