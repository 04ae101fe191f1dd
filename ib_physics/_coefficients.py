"""Drift and diffusion at groups of points (lanes), as Numba functions shared by every engine.

The coefficients arrive as a :class:`ib_physics.dynamics.DynamicsPlan`'s arrays:
per constant-coefficient segment ``seg`` the affine force (``lin``, ``off``), the
scale of the nonlinear potential terms, the per-axis diffusion constants, plus the
nonlinear term rows, their tables and an optional tabulated diffusion field.
"""

from __future__ import annotations

import numpy as np
from ._jit import inline_kernel, inner_kernel, kernel

CODE_DOUBLE_WELL = 1
CODE_TABULATED = 2
#: A flow of the medium, u = Omega x (x - c) (:class:`ib_physics.flows.Rotation`); not scaled by mu s(t).
CODE_ROTATION = 3
#: False in the analytic variants of the lane helpers (:func:`ib_physics._jit.specialised`), for
#: problems without a Tabulated potential and without a DiffusionField: their table code is pruned
#: before typing (nothing of it compiles).
_TABLES = True


@inline_kernel
def double_well_force_term(xa, height, minimum, scale):
    """scale · dU/dx of U = h ((x/m)² - 1)² along one axis (subtracted from the drift)."""
    q = xa / minimum
    return scale * 4.0 * height * (q * q - 1.0) * xa / (minimum * minimum)


@inner_kernel
def _interpolate_lanes(tables, offset, grid, xs, lanes, d, count, values, cells):
    """values[c, g] = table component ``c`` at lane g's point, for c < ``count``.

    Multilinear interpolation on the node grid ``grid`` (lower (3), spacing (3), node counts (3)).
    From ``offset`` the table holds node after node (C order), each node's ``count`` components
    together: the corners of a cell lie in pairs of neighbouring nodes, one or two cache lines per
    pair for all components (tables larger than L1 miss there once per line, not per component). The cell
    and the fractional position per axis are clamped to the table (below the first node: the first
    cell at weight 0; above the last: the last cell at weight 1; NaN: the first cell), then the
    corners are summed in C order of their offsets. The cells come first for all lanes in loops of
    float arithmetic only (node index as a float), which vectorise; ``cells`` (6, >= lanes) is
    scratch (2 d rows, and in 2D the offset of the cell's first node in row 4). Then the corner sums, in 2D
    and 3D components outer and lanes inner (a component's pass finds in L1 the lines the first
    one loaded).
    """
    for ax in range(d):
        lo = grid[ax]
        spacing = grid[3 + ax]
        top = grid[6 + ax] - 2.0
        for g in range(lanes):
            s = (xs[ax, g] - lo) / spacing
            f = np.floor(s)
            w = s - f
            low = not f >= 0.0
            high = f > top
            cells[ax, g] = 0.0 if low else (top if high else f)
            cells[d + ax, g] = 0.0 if low else (1.0 if high else w)
    n1 = int(grid[7])
    n2 = int(grid[8])
    if d == 1:
        for g in range(lanes):
            i0 = int(cells[0, g])
            w0 = cells[1, g]
            for c in range(count):
                base = offset + i0 * count + c
                total = 0.0
                total += (1.0 - w0) * tables[base]
                total += w0 * tables[base + count]
                values[c, g] = total
    elif d == 2:
        # The offset of the cell's first node as a float (exact: far below 2**53) in the free row 4,
        # then components outer and lanes inner: straight-line gathers that vectorise.
        n1_float = float(n1)
        count_float = float(count)
        row = n1 * count
        for g in range(lanes):
            cells[4, g] = (cells[0, g] * n1_float + cells[1, g]) * count_float
        for c in range(count):
            component = offset + c
            for g in range(lanes):
                w0 = cells[2, g]
                w1 = cells[3, g]
                a0 = 1.0 - w0
                base = component + int(cells[4, g])
                total = 0.0
                total += a0 * (1.0 - w1) * tables[base]
                total += a0 * w1 * tables[base + count]
                total += w0 * (1.0 - w1) * tables[base + row]
                total += w0 * w1 * tables[base + row + count]
                values[c, g] = total
    else:
        # As in 2D: components outer, lanes inner, the cell's first node from float arithmetic
        # (exact), the eight corners in C order of their offsets.
        n1_float = float(n1)
        n2_float = float(n2)
        count_float = float(count)
        row = n2 * count
        plane = n1 * row
        for c in range(count):
            component = offset + c
            for g in range(lanes):
                w0 = cells[3, g]
                w1 = cells[4, g]
                w2 = cells[5, g]
                base = component + int(((cells[0, g] * n1_float + cells[1, g]) * n2_float + cells[2, g])
                                       * count_float)
                a0 = 1.0 - w0
                b2 = 1.0 - w2
                total = 0.0
                f1 = a0 * (1.0 - w1)
                total += f1 * b2 * tables[base]
                total += f1 * w2 * tables[base + count]
                f1 = a0 * w1
                total += f1 * b2 * tables[base + row]
                total += f1 * w2 * tables[base + row + count]
                f1 = w0 * (1.0 - w1)
                total += f1 * b2 * tables[base + plane]
                total += f1 * w2 * tables[base + plane + count]
                f1 = w0 * w1
                total += f1 * b2 * tables[base + plane + row]
                total += f1 * w2 * tables[base + plane + row + count]
                values[c, g] = total


@inline_kernel
def _add_rotation_lanes(row, xs, lanes, d, out):
    """out += Omega x (x - c) lane-wise, for a :data:`CODE_ROTATION` row (d = 2 or 3).

    Unlike the potential terms a flow is a velocity: neither the mobility nor s(t) scales it.
    """
    wx, wy, wz = row[1], row[2], row[3]
    cx, cy, cz = row[4], row[5], row[6]
    if d == 2:
        for g in range(lanes):
            rx = xs[0, g] - cx
            ry = xs[1, g] - cy
            out[0, g] -= wz * ry
            out[1, g] += wz * rx
    else:
        for g in range(lanes):
            rx = xs[0, g] - cx
            ry = xs[1, g] - cy
            rz = xs[2, g] - cz
            out[0, g] += wy * rz - wz * ry
            out[1, g] += wz * rx - wx * rz
            out[2, g] += wx * ry - wy * rx


@kernel
def drift_lanes(xs, lanes, d, seg, lin, off, nl_scale, nl_rows, tables, out, cells, values):
    """Conservative, external and flow drift a(x) of segment ``seg`` for the first ``lanes`` lanes
    (columns) of ``xs`` (3, L) into ``out`` (3, L); ``cells`` (6, L) and ``values`` (4, L) are scratch.

    Each term runs as one loop over the lanes, which vectorises for affine, double-well and
    rotation terms; the arithmetic of a lane does not depend on the others.
    """
    for i in range(d):
        c = lin[seg, i]
        o = off[seg, i]
        for g in range(lanes):
            out[i, g] = c * xs[i, g] + o
    scale = nl_scale[seg]
    for r in range(nl_rows.shape[0]):
        code = int(nl_rows[r, 0])
        if code == CODE_DOUBLE_WELL:
            height = nl_rows[r, 1]
            minimum = nl_rows[r, 2]
            a = int(nl_rows[r, 3])
            for g in range(lanes):
                out[a, g] -= double_well_force_term(xs[a, g], height, minimum, scale)
        elif code == CODE_TABULATED:
            if _TABLES:
                _interpolate_lanes(tables, int(nl_rows[r, 1]), nl_rows[r, 2:11], xs, lanes, d, d, values, cells)
                for i in range(d):
                    for g in range(lanes):
                        out[i, g] += scale * values[i, g]
        elif code == CODE_ROTATION:
            _add_rotation_lanes(nl_rows[r], xs, lanes, d, out)


@kernel
def diffusion_lanes(xs, lanes, d, seg, diff, field_on, field_grid, field_tables, d_out, grad_out, cells, values):
    """Per-axis diffusion D_i(x) into ``d_out`` and dD_i/dx_i into ``grad_out`` (3, L each) for the
    first ``lanes`` lanes (columns) of ``xs`` (3, L); ``cells`` (6, L) and ``values`` (4, L) are
    scratch (the field and its d gradient components)."""
    if field_on:
        if _TABLES:
            _interpolate_lanes(field_tables, np.int64(0), field_grid, xs, lanes, d, 1 + d, values, cells)
            for i in range(d):
                for g in range(lanes):
                    d_out[i, g] = diff[seg, i] * values[0, g]
                    grad_out[i, g] = diff[seg, i] * values[1 + i, g]
    else:
        for i in range(d):
            for g in range(lanes):
                d_out[i, g] = diff[seg, i]
                grad_out[i, g] = 0.0


#: Points evaluated together by :func:`evaluate_coefficients` (one call of the lane helpers).
_EVALUATION_LANES = 64


@kernel
def evaluate_coefficients(points, seg_index, lin, off, nl_scale, nl_rows, tables, diff,
                          field_on, field_grid, field_tables, alpha):
    """Drift (with the convention's alpha * grad D) and diffusion at many points.

    points : (n, d); seg_index : (n,) segment of each point. Returns (drift, D), each (n, d).
    Runs of points in one segment go through the particle engine's lane helpers, so both
    engines evaluate the coefficients with the same compiled code (and the same bits).
    """
    n, d = points.shape
    drift = np.empty((n, d))
    dcoef = np.empty((n, d))
    lanes = _EVALUATION_LANES
    xs = np.zeros((3, lanes))
    a = np.zeros((3, lanes))
    dd = np.zeros((3, lanes))
    gd = np.zeros((3, lanes))
    cells = np.zeros((6, lanes))
    values = np.zeros((4, lanes))
    p0 = 0
    while p0 < n:
        seg = seg_index[p0]
        m = 1
        while m < lanes and p0 + m < n and seg_index[p0 + m] == seg:
            m += 1
        for g in range(m):
            for i in range(d):
                xs[i, g] = points[p0 + g, i]
        drift_lanes(xs, m, d, seg, lin, off, nl_scale, nl_rows, tables, a, cells, values)
        diffusion_lanes(xs, m, d, seg, diff, field_on, field_grid, field_tables, dd, gd, cells, values)
        for g in range(m):
            for i in range(d):
                drift[p0 + g, i] = a[i, g] + alpha * gd[i, g]
                dcoef[p0 + g, i] = dd[i, g]
        p0 += m
    return drift, dcoef


def uses_tables(nl_rows: np.ndarray, field_on: bool) -> bool:
    """Whether a plan needs the helpers with table interpolation (else the analytic variants do)."""
    return bool(field_on) or bool(np.any(nl_rows[:, 0] == CODE_TABULATED))
