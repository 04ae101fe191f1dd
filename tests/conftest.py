"""Shared test settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", deadline=None, max_examples=200)
# CI draws the same examples every run (a failure there is reproducible); locally they vary.
settings.register_profile(
    "ci", deadline=None, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "default"))


def _assert_png(path: Path, min_height: int = 200, min_width: int = 300) -> None:
    """A figure exists, is not tiny and is not a blank canvas."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > min_height and img.shape[1] > min_width, img.shape
    assert img[..., :3].std() > 0.05


@pytest.fixture
def assert_png():
    """Check a figure: ``assert_png(path)``."""
    return _assert_png
