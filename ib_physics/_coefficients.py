"""Drift and diffusion of one point, as Numba functions shared by every engine.

The coefficients arrive as a :class:`ib_physics.dynamics.DynamicsPlan`'s arrays:
per constant-coefficient segment ``seg`` the affine force (``lin``, ``off``), the
scale of the nonlinear potential terms, the per-axis diffusion constants, plus the
nonlinear term rows, their tables and an optional tabulated diffusion field.
"""

from __future__ import annotations

import numpy as np
from ._jit import inline_kernel, kernel

CODE_DOUBLE_WELL = 1
CODE_TABULATED = 2


@inline_kernel
def _cell(x, lower, spacing, n):
    """Cell index and fractional position on a node axis, clamped to the table."""
    if n <= 1:
        return 0, 0.0
    s = (x - lower) / spacing
    i = int(np.floor(s))
    if i < 0:
        return 0, 0.0
    if i > n - 2:
        return n - 2, 1.0
    return i, s - i


@inline_kernel
def interp_grid(tables, offset, component, grid, pos, d):
    """Multilinear interpolation of table ``component`` stored from ``offset``.

    ``grid`` holds lower (3), spacing (3) and node counts (3); nodes in C order.
    """
    n0 = int(grid[6])
    n1 = int(grid[7])
    n2 = int(grid[8])
    base = offset + component * n0 * n1 * n2
    i0, w0 = _cell(pos[0], grid[0], grid[3], n0)
    i1, w1 = 0, 0.0
    i2, w2 = 0, 0.0
    if d > 1:
        i1, w1 = _cell(pos[1], grid[1], grid[4], n1)
    if d > 2:
        i2, w2 = _cell(pos[2], grid[2], grid[5], n2)
    total = 0.0
    for c0 in range(2 if n0 > 1 else 1):
        f0 = w0 if c0 else 1.0 - w0
        for c1 in range(2 if n1 > 1 else 1):
            f1 = f0 * (w1 if c1 else 1.0 - w1)
            for c2 in range(2 if n2 > 1 else 1):
                f2 = f1 * (w2 if c2 else 1.0 - w2)
                total += f2 * tables[base + ((i0 + c0) * n1 + i1 + c1) * n2 + i2 + c2]
    return total


@inline_kernel
def drift_at(pos, d, seg, lin, off, nl_scale, nl_rows, tables, out):
    """Conservative plus external drift a(x) for segment ``seg`` into ``out[:d]``."""
    for i in range(d):
        out[i] = lin[seg, i] * pos[i] + off[seg, i]
    scale = nl_scale[seg]
    for r in range(nl_rows.shape[0]):
        code = int(nl_rows[r, 0])
        if code == CODE_DOUBLE_WELL:
            h = nl_rows[r, 1]
            m = nl_rows[r, 2]
            a = int(nl_rows[r, 3])
            xa = pos[a]
            q = xa / m
            out[a] -= scale * 4.0 * h * (q * q - 1.0) * xa / (m * m)
        elif code == CODE_TABULATED:
            offset = int(nl_rows[r, 1])
            for i in range(d):
                out[i] += scale * interp_grid(tables, offset, i, nl_rows[r, 2:11], pos, d)


@inline_kernel
def diffusion_at(pos, d, seg, diff, field_on, field_grid, field_tables, d_out, grad_out):
    """Per-axis diffusion D_i(x) into ``d_out`` and dD_i/dx_i into ``grad_out``."""
    if field_on:
        f = interp_grid(field_tables, 0, 0, field_grid, pos, d)
        for i in range(d):
            d_out[i] = diff[seg, i] * f
            grad_out[i] = diff[seg, i] * interp_grid(field_tables, 0, 1 + i, field_grid, pos, d)
    else:
        for i in range(d):
            d_out[i] = diff[seg, i]
            grad_out[i] = 0.0


@kernel
def evaluate_coefficients(points, seg_index, lin, off, nl_scale, nl_rows, tables, diff,
                          field_on, field_grid, field_tables, alpha):
    """Drift (with the convention's alpha * grad D) and diffusion at many points.

    points : (n, d); seg_index : (n,) segment of each point. Returns (drift, D), each (n, d).
    """
    n, d = points.shape
    drift = np.empty((n, d))
    dcoef = np.empty((n, d))
    for p in range(n):
        pos = np.empty(3)
        a = np.empty(3)
        dd = np.empty(3)
        gd = np.empty(3)
        for i in range(d):
            pos[i] = points[p, i]
        seg = seg_index[p]
        drift_at(pos, d, seg, lin, off, nl_scale, nl_rows, tables, a)
        diffusion_at(pos, d, seg, diff, field_on, field_grid, field_tables, dd, gd)
        for i in range(d):
            drift[p, i] = a[i] + alpha * gd[i]
            dcoef[p, i] = dd[i]
    return drift, dcoef
