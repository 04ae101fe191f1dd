"""Mutual information of a layer's representation T with the input X and the label Y.

Two estimators (PHYSICS.md §6); every figure says which one it used.

``binning`` (Shwartz-Ziv & Tishby 2017): each unit's output is put into bins with
the given edges (default 30 equal edges on [-1, 1]); T is then discrete, the map
X -> T deterministic and p(x) uniform over the patterns, so I(X;T) = H(T) and
I(T;Y) = H(T) - Σ_y p(y) H(T | y), in bits.

``kde`` (Kolchinsky & Tracey 2017, as used by Saxe et al. 2018): T = h(X) + N(0, σ² I);
I(X;T) is bounded above by -(1/n) Σ_i log((1/n) Σ_j exp(-‖h_i - h_j‖² / 2σ²)) and
below by the same with 8σ² (Bhattacharyya); I(T;Y) by the difference of that
bound over all patterns and within each class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import as_float_array, check_choice, check_finite_positive
from . import _kernels

__all__ = ["DEFAULT_EDGES", "binned_information", "kde_information", "entropy_bits", "InformationEstimate"]

#: 30 equal edges on [-1, 1] (the original study's bins for tanh units).
DEFAULT_EDGES = np.linspace(-1.0, 1.0, 30)
LN2 = np.log(2.0)


@dataclass(frozen=True)
class InformationEstimate:
    """I(X;T) and I(T;Y) in bits, with the estimator that produced them."""

    i_xt: float
    i_ty: float
    estimator: str


def entropy_bits(codes: np.ndarray) -> float:
    """Entropy in bits of the empirical distribution of integers (n,) or of the rows of (n, w)."""
    codes = np.asarray(codes)
    if codes.shape[0] == 0:
        return 0.0
    if codes.ndim == 1:  # packed rows: a plain sort, far faster than unique rows
        counts = np.unique(codes, return_counts=True)[1]
    else:
        counts = np.unique(codes, axis=0, return_counts=True)[1]
    p = counts / codes.shape[0]
    return float(-np.sum(p * np.log2(p)))


def _pack(codes: np.ndarray, n_symbols: int) -> np.ndarray:
    """Rows of small integers as one int64 each when they fit (fast unique), else the rows."""
    w = codes.shape[1]
    if w * np.log2(max(n_symbols, 2)) < 62:
        weights = n_symbols ** np.arange(w, dtype=np.int64)
        return codes.astype(np.int64) @ weights
    return codes


def binned_information(t: np.ndarray, y: np.ndarray, *, edges: np.ndarray | None = None) -> InformationEstimate:
    """Binning estimate for one layer over all patterns.

    Parameters
    ----------
    t : numpy.ndarray, shape (n, units)
        The layer's outputs (or pre-activations) for every pattern (p(x) uniform).
    y : numpy.ndarray of int, shape (n,)
    edges : numpy.ndarray, optional
        Increasing bin edges (default :data:`DEFAULT_EDGES`); values outside fall in the end bins.
    """
    t = np.asarray(t, dtype=float)
    if t.ndim == 1:
        t = t[:, None]
    y = np.asarray(y)
    if y.shape != (t.shape[0],):
        raise ValueError(f"`y` must have shape ({t.shape[0]},), got {y.shape}.")
    edges = DEFAULT_EDGES if edges is None else np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 1 or np.any(np.diff(edges) <= 0):
        raise ValueError("`edges` must be a 1D increasing array.")
    if t.shape[1] * np.log2(edges.size + 1) < 62 and np.issubdtype(y.dtype, np.integer) and y.min() >= 0:
        h_t, h_t_given_y = _kernels.binned_entropies(np.ascontiguousarray(t), y.astype(np.int64), edges,
                                                     int(y.max()) + 1)
    else:  # wide layers: unique rows
        codes = _pack(np.digitize(t, edges), edges.size + 1)
        h_t = entropy_bits(codes)
        h_t_given_y = 0.0
        for label in np.unique(y):
            sel = y == label
            h_t_given_y += sel.mean() * entropy_bits(codes[sel])
    return InformationEstimate(i_xt=h_t, i_ty=h_t - h_t_given_y, estimator="binning")


#: Largest distance of an activity from its layer's mean that the single-precision kernel takes
#: (squared differences stay below float32's largest value, 3.4e38).
MAX_KDE_MAGNITUDE = 1e18


def kde_information(t: np.ndarray, y: np.ndarray, *, noise_variance: float = 0.1,
                    bound: str = "upper") -> InformationEstimate:
    """Pairwise-distance (KDE) bound for one layer over all patterns, in bits.

    Parameters
    ----------
    t : numpy.ndarray, shape (n, units)
    y : numpy.ndarray of int, shape (n,)
    noise_variance : float
        σ² of the Gaussian noise added to T (Saxe et al. used 0.1).
    bound : {"upper", "lower"}
        Kolchinsky–Tracey upper bound (KL, 2σ²) or lower bound (Bhattacharyya, 8σ²).

    Notes
    -----
    Each pair's kernel value is computed in single precision (eight pairs per vector instruction)
    and summed in double; pairs whose squared distance exceeds 64 · 2σ² (upper) are skipped, as each
    would change a row sum by less than e^-64. Measured against a double-precision evaluation the
    estimates agree to about 1e-9 bits (tests hold them to 1e-6).
    """
    t = np.ascontiguousarray(as_float_array(t, "t"))
    if t.ndim == 1:
        t = t[:, None]
    y = np.asarray(y)
    if y.shape != (t.shape[0],):
        raise ValueError(f"`y` must have shape ({t.shape[0]},), got {y.shape}.")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"`t` must have at least one row (pattern) and one column (unit), got shape {t.shape}.")
    noise_variance = check_finite_positive(noise_variance, "noise_variance")
    check_choice(bound, "bound", ("upper", "lower"))
    scale = (2.0 if bound == "upper" else 8.0) * noise_variance
    _, codes = np.unique(y, return_inverse=True)  # labels of any kind as 0 .. n_classes - 1
    codes = codes.astype(np.int64).ravel()
    # Sorted along the unit of widest spread, each row's partners within the cutoff are one run of rows.
    axis = int(np.argmax(np.ptp(t, axis=0)))
    order = np.argsort(t[:, axis], kind="stable")
    # Centred, so that the kernel's single-precision differences keep their digits.
    centred = t[order] - t.mean(axis=0)
    if np.abs(centred).max() > MAX_KDE_MAGNITUDE:
        raise ValueError(f"`t` must lie within {MAX_KDE_MAGNITUDE:g} of its mean for the KDE estimate "
                         f"(squared distances in single precision), got {np.abs(centred).max():.3g}.")
    whole, within = _kernels.kde_pairwise_bounds(np.ascontiguousarray(centred), codes[order],
                                                 int(codes.max()) + 1, scale, axis)
    return InformationEstimate(i_xt=whole / LN2, i_ty=(whole - within) / LN2, estimator=f"kde-{bound}")
