"""Where Brownian motion comes from: exact event-driven dynamics of hard disks."""

from __future__ import annotations

from .disks import EventCounts, HardDisks, random_disks

__all__ = ["HardDisks", "random_disks", "EventCounts"]
