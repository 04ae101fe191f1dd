"""The drift-to-diffusion transition of a layer: where its gradient SNR drops below 1 for good.

PHYSICS.md §5: smooth log SNR, find its peak, and report the first epoch after the
peak from which the smoothed SNR stays below 1. A naive "first epoch with SNR < 1"
fires in the first, noisy epochs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["smooth_log", "transition_epoch", "transition_epochs"]


def smooth_log(epochs: np.ndarray, values: np.ndarray, *, width: float = 0.1) -> np.ndarray:
    """Mean of log(values) over the window [e / (1 + width), e (1 + width)] around each epoch.

    The window is a fixed fraction of a decade wide, which suits curves that change
    over many decades of epochs. Non-positive or non-finite values are ignored.
    """
    e = np.asarray(epochs, dtype=float)
    v = np.asarray(values, dtype=float)
    if e.shape != v.shape or e.ndim != 1:
        raise ValueError("`epochs` and `values` must be 1D arrays of one length.")
    if not width > 0:
        raise ValueError(f"`width` must be > 0, got {width}.")
    ok = np.isfinite(v) & (v > 0)
    logs = np.where(ok, np.log(np.where(ok, v, 1.0)), 0.0)
    csum = np.concatenate([[0.0], np.cumsum(logs)])
    ccount = np.concatenate([[0], np.cumsum(ok)])
    lo = np.searchsorted(e, e / (1 + width), side="left")
    hi = np.searchsorted(e, e * (1 + width), side="right")
    count = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), np.nan)


def transition_epoch(epochs: np.ndarray, snr: np.ndarray, *, width: float = 0.1) -> float:
    """First epoch after the peak of the smoothed SNR from which it stays below 1 (NaN if never).

    Parameters
    ----------
    epochs : numpy.ndarray, shape (E,)
        Increasing epoch numbers (> 0).
    snr : numpy.ndarray, shape (E,)
        Gradient signal-to-noise ratio per epoch.
    width : float
        Smoothing window (see :func:`smooth_log`).
    """
    e = np.asarray(epochs, dtype=float)
    if e.size == 0 or np.any(e <= 0) or np.any(np.diff(e) <= 0):
        raise ValueError("`epochs` must be increasing and > 0.")
    s = smooth_log(e, snr, width=width)
    if not np.any(np.isfinite(s)):
        return float("nan")
    peak = int(np.nanargmax(s))
    above = np.flatnonzero(~(s[peak:] < 0.0))  # log SNR >= 0, or undefined, after the peak
    last_above = peak + int(above[-1]) if above.size else peak - 1
    if last_above + 1 >= e.size:
        return float("nan")
    return float(e[last_above + 1])


def transition_epochs(epochs: np.ndarray, snr: np.ndarray, *, width: float = 0.1) -> np.ndarray:
    """:func:`transition_epoch` for every replica and layer of ``snr`` (R, E, L) -> (R, L)."""
    snr = np.asarray(snr, dtype=float)
    if snr.ndim != 3:
        raise ValueError(f"`snr` must have shape (replicas, epochs, layers), got {snr.shape}.")
    out = np.empty((snr.shape[0], snr.shape[2]))
    for r in range(snr.shape[0]):
        for l in range(snr.shape[2]):
            out[r, l] = transition_epoch(epochs, snr[r, :, l], width=width)
    return out
