"""Streaming reductions over the particle state, independent of threads and chunking.

Moments are accumulated per fixed block of :data:`REDUCTION_BLOCK` particles (by
global index) with Welford's update in particle order, then the blocks are merged
in block order with Chan's formula. Histograms are integer counts, exact in any
order. Hence every reduction is bitwise reproducible for any thread count.
"""

from __future__ import annotations

import numpy as np
from .._jit import kernel

#: Particles per moment block (also the alignment that makes split ensembles merge exactly).
REDUCTION_BLOCK = 4096


def block_moments(x: np.ndarray, images: np.ndarray, lengths: np.ndarray, alive: np.ndarray, x0: np.ndarray,
                  block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-block count, mean, co-moment and summed squared displacement.

    Moments are of the unwrapped position ``x + images * lengths`` (x, images: (n, d);
    lengths: (d,)); the squared displacement is from ``x0`` (n, d). Returns
    (count (nb,), mean (nb, d), comoment (nb, d, d), sq_disp (nb,)), nb = ceil(n / block).
    """
    n, d = x.shape
    nb = (n + block - 1) // block
    out = (np.zeros(nb), np.zeros((nb, d)), np.zeros((nb, d, d)), np.zeros(nb))
    # Allocated here, not in the kernel: each allocation site there compiles NumPy's code for it.
    _accumulate_block_moments(x, images, lengths, alive, x0, block, *out, np.empty((2, d)))
    return out


@kernel
def _accumulate_block_moments(x, images, lengths, alive, x0, block, count, mean, comoment, sq_disp, scratch):
    """The loop of :func:`block_moments` into zeroed outputs; ``scratch`` (2, d)."""
    n, d = x.shape
    nb = count.size
    u = scratch[0]
    delta = scratch[1]
    for b in range(nb):
        c = 0.0
        for i in range(b * block, min(n, (b + 1) * block)):
            if alive[i] == 0:
                continue
            c += 1.0
            s = 0.0
            for ax in range(d):
                u[ax] = x[i, ax] + images[i, ax] * lengths[ax]
                delta[ax] = u[ax] - mean[b, ax]
                mean[b, ax] += delta[ax] / c
                r = u[ax] - x0[i, ax]
                s += r * r
            for p in range(d):
                for q in range(d):
                    comoment[b, p, q] += delta[p] * (u[q] - mean[b, q])
            sq_disp[b] += s
        count[b] = c


def merge_moments(count: np.ndarray, mean: np.ndarray, comoment: np.ndarray, sq_disp: np.ndarray):
    """Merge block moments in block order (Chan et al. 1979).

    Returns (count, mean (d,), covariance (d, d) with divisor count - 1, mean squared displacement).
    """
    d = mean.shape[1]
    n_tot = 0.0
    m_tot = np.zeros(d)
    c_tot = np.zeros((d, d))
    sq_tot = 0.0
    for b in range(count.size):
        nb = count[b]
        if nb == 0:
            continue
        delta = mean[b] - m_tot
        n_new = n_tot + nb
        m_tot = m_tot + delta * (nb / n_new)
        c_tot = c_tot + comoment[b] + np.outer(delta, delta) * (n_tot * nb / n_new)
        n_tot = n_new
        sq_tot += sq_disp[b]
    if n_tot == 0:
        nan = np.full(d, np.nan)
        return 0, nan, np.full((d, d), np.nan), np.nan
    cov = c_tot / (n_tot - 1) if n_tot > 1 else np.full((d, d), np.nan)
    return int(n_tot), m_tot, cov, sq_tot / n_tot


@kernel
def histogram_counts(x, alive, edges, edge_start, n_bins, uniform):
    """Counts of living particles in a d-dimensional histogram.

    edges : flat edges of all axes, axis ``k`` at ``edges[edge_start[k] : edge_start[k] + n_bins[k] + 1]``.
    uniform : (d,) whether the axis has equal bins (index by arithmetic).
    Returns (counts flat in C order, number of living particles outside).
    The last bin of each axis includes its right edge, as in :func:`numpy.histogramdd`.
    """
    n, d = x.shape
    total = 1
    for k in range(d):
        total *= n_bins[k]
    counts = np.zeros(total, dtype=np.int64)
    outside = 0
    for i in range(n):
        if alive[i] == 0:
            continue
        flat = 0
        ok = True
        for k in range(d):
            e0 = edges[edge_start[k]]
            e1 = edges[edge_start[k] + n_bins[k]]
            v = x[i, k]
            if not (v >= e0 and v <= e1):
                ok = False
                break
            if v == e1:
                idx = n_bins[k] - 1
            elif uniform[k]:
                idx = int((v - e0) / (e1 - e0) * n_bins[k])
                # Guard the arithmetic against rounding at bin edges.
                if idx >= n_bins[k]:
                    idx = n_bins[k] - 1
                while idx > 0 and v < edges[edge_start[k] + idx]:
                    idx -= 1
                while idx < n_bins[k] - 1 and v >= edges[edge_start[k] + idx + 1]:
                    idx += 1
            else:
                e = edges[edge_start[k]:edge_start[k] + n_bins[k] + 1]
                idx = np.searchsorted(e, v, side="right") - 1
            flat = flat * n_bins[k] + idx
        if ok:
            counts[flat] += 1
        else:
            outside += 1
    return counts, outside
