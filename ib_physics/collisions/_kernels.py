"""Numba kernels of event-driven hard-disk dynamics.

State (arrays, one row per disk): positions ``x`` valid at each disk's own time
``t_last`` (delayed states: a disk is moved only when an event involves it),
velocities ``v``, radii, masses, an event ``counter`` per disk, its cell, and
image counts across periodic faces.

Events: a collision (i, j), a wall hit (i, face), a cell crossing (i, direction).
Each disk keeps its earliest predicted event in a binary heap; an event is valid
when the counters it was predicted with still match. When a disk's event is found
stale only because its partner changed, the disk is predicted again from that
time: every pair is re-examined by whichever of the two changed its course last,
so no collision is missed (the classic lazy-invalidation scheme).

Cells are at least as wide as the largest radius plus the largest radius of the
small disks; disks wider than half a cell ("big") also check each other directly.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import inline_kernel, inner_kernel, kernel

COLLISION, WALL, CELL = 0, 1, 2
#: Slack below which a predicted time counts as "now" (round-off of overlapping contact).
_EPS = 1e-12


@inline_kernel
def _pair_time(dx, dy, dvx, dvy, sigma):
    """Time until two disks at separation (dx, dy), relative velocity (dvx, dvy) touch; inf if never."""
    b = dx * dvx + dy * dvy
    if b >= 0.0:
        return np.inf
    vv = dvx * dvx + dvy * dvy
    rr = dx * dx + dy * dy - sigma * sigma
    disc = b * b - vv * rr
    if disc < 0.0:
        return np.inf
    if rr <= 0.0:  # touching (round-off): collide now
        return 0.0
    # Stable root of vv t^2 + 2 b t + rr = 0.
    return rr / (-b + math.sqrt(disc))


@inline_kernel
def _minimum_image(d, length, periodic):
    if periodic:
        if d > 0.5 * length:
            return d - length
        if d < -0.5 * length:
            return d + length
    return d


@inline_kernel
def _heap_set(h_time, h_i, h_j, h_kind, h_ci, h_cj, k, t, i, j, kind, ci, cj):
    h_time[k] = t
    h_i[k] = i
    h_j[k] = j
    h_kind[k] = kind
    h_ci[k] = ci
    h_cj[k] = cj


@inline_kernel
def _heap_move(h_time, h_i, h_j, h_kind, h_ci, h_cj, dst, src):
    _heap_set(h_time, h_i, h_j, h_kind, h_ci, h_cj, dst, h_time[src], h_i[src], h_j[src], h_kind[src], h_ci[src],
              h_cj[src])


@inline_kernel
def _contact_time(j, t, xi, yi, vxi, vyi, ri, x, v, t_last, radius, lx, ly, periodic):
    """Time from t until a disk at (xi, yi) moving at (vxi, vyi) touches disk j (delayed state)."""
    dt_j = t - t_last[j]
    dx = _minimum_image(xi - (x[j, 0] + v[j, 0] * dt_j), lx, periodic)
    dy = _minimum_image(yi - (x[j, 1] + v[j, 1] * dt_j), ly, periodic)
    return _pair_time(dx, dy, vxi - v[j, 0], vyi - v[j, 1], ri + radius[j])


@inner_kernel
def _heap_push(h_time, h_i, h_j, h_kind, h_ci, h_cj, size, t, i, j, kind, ci, cj):
    """Insert into the binary min-heap of capacity len(h_time); returns the new size (-1 if full)."""
    if size >= h_time.size:
        return -1
    k = size
    while k > 0:
        parent = (k - 1) >> 1
        if h_time[parent] <= t:
            break
        _heap_move(h_time, h_i, h_j, h_kind, h_ci, h_cj, k, parent)
        k = parent
    _heap_set(h_time, h_i, h_j, h_kind, h_ci, h_cj, k, t, i, j, kind, ci, cj)
    return size + 1


@inner_kernel
def _heap_pop(h_time, h_i, h_j, h_kind, h_ci, h_cj, size):
    """Remove the root (the caller read it first); returns the new size."""
    size -= 1
    if size == 0:
        return 0
    t = h_time[size]
    i, j, kind, ci, cj = h_i[size], h_j[size], h_kind[size], h_ci[size], h_cj[size]
    k = 0
    while True:
        child = 2 * k + 1
        if child >= size:
            break
        if child + 1 < size and h_time[child + 1] < h_time[child]:
            child += 1
        if h_time[child] >= t:
            break
        _heap_move(h_time, h_i, h_j, h_kind, h_ci, h_cj, k, child)
        k = child
    _heap_set(h_time, h_i, h_j, h_kind, h_ci, h_cj, k, t, i, j, kind, ci, cj)
    return size


@kernel
def cell_of(x, y, cell_w, cell_h, ncx, ncy):
    cx = min(max(int(x / cell_w), 0), ncx - 1)
    cy = min(max(int(y / cell_h), 0), ncy - 1)
    return cy * ncx + cx


@inline_kernel
def _unlink(i, cell, head, nxt, prv):
    c = cell[i]
    if prv[i] >= 0:
        nxt[prv[i]] = nxt[i]
    else:
        head[c] = nxt[i]
    if nxt[i] >= 0:
        prv[nxt[i]] = prv[i]


@inline_kernel
def _link(i, c, cell, head, nxt, prv):
    cell[i] = c
    prv[i] = -1
    nxt[i] = head[c]
    if head[c] >= 0:
        prv[head[c]] = i
    head[c] = i


@kernel
def build_cells(x, cell, head, nxt, prv, cell_w, cell_h, ncx, ncy):
    """Put every disk into its cell's doubly linked list."""
    for c in range(head.size):
        head[c] = -1
    for i in range(x.shape[0]):
        _link(i, cell_of(x[i, 0], x[i, 1], cell_w, cell_h, ncx, ncy), cell, head, nxt, prv)


@inner_kernel
def _predict(i, t, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic, cell_w, cell_h,
             ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj, size):
    """Push disk i's earliest event from time t; returns the heap size (-1 if full)."""
    lx, ly = box[0], box[1]
    xi = x[i, 0] + v[i, 0] * (t - t_last[i])
    yi = x[i, 1] + v[i, 1] * (t - t_last[i])
    vxi, vyi = v[i, 0], v[i, 1]
    ri = radius[i]
    best = np.inf
    best_j = -1
    best_kind = CELL
    # Cell crossing (and, in a closed box, walls).
    cx = cell[i] % ncx
    cy = cell[i] // ncx
    if vxi > 0.0:
        tc = ((cx + 1) * cell_w - xi) / vxi
        if tc < best:
            best, best_j, best_kind = tc, 1, CELL
    elif vxi < 0.0:
        tc = (cx * cell_w - xi) / vxi
        if tc < best:
            best, best_j, best_kind = tc, 0, CELL
    if vyi > 0.0:
        tc = ((cy + 1) * cell_h - yi) / vyi
        if tc < best:
            best, best_j, best_kind = tc, 3, CELL
    elif vyi < 0.0:
        tc = (cy * cell_h - yi) / vyi
        if tc < best:
            best, best_j, best_kind = tc, 2, CELL
    if not periodic:
        if vxi > 0.0:
            tw = (lx - ri - xi) / vxi
            if tw < best:
                best, best_j, best_kind = tw, 1, WALL
        elif vxi < 0.0:
            tw = (ri - xi) / vxi
            if tw < best:
                best, best_j, best_kind = tw, 0, WALL
        if vyi > 0.0:
            tw = (ly - ri - yi) / vyi
            if tw < best:
                best, best_j, best_kind = tw, 3, WALL
        elif vyi < 0.0:
            tw = (ri - yi) / vyi
            if tw < best:
                best, best_j, best_kind = tw, 2, WALL
    # Collisions with the disks of the 3 x 3 neighbouring cells.
    for oy in range(-1, 2):
        ny = cy + oy
        if periodic:
            ny = (ny + ncy) % ncy
        elif ny < 0 or ny >= ncy:
            continue
        for ox in range(-1, 2):
            nx_ = cx + ox
            if periodic:
                nx_ = (nx_ + ncx) % ncx
            elif nx_ < 0 or nx_ >= ncx:
                continue
            j = head[ny * ncx + nx_]
            while j >= 0:
                if j != i and not (is_big[i] and is_big[j]):
                    tc = _contact_time(j, t, xi, yi, vxi, vyi, ri, x, v, t_last, radius, lx, ly, periodic)
                    if tc < best:
                        best, best_j, best_kind = tc, j, COLLISION
                j = nxt[j]
    if is_big[i]:
        for q in range(big.size):
            j = big[q]
            if j != i:
                tc = _contact_time(j, t, xi, yi, vxi, vyi, ri, x, v, t_last, radius, lx, ly, periodic)
                if tc < best:
                    best, best_j, best_kind = tc, j, COLLISION
    if best == np.inf:
        return size
    if best < 0.0:
        best = 0.0
    cj = counter[best_j] if best_kind == COLLISION else 0
    return _heap_push(h_time, h_i, h_j, h_kind, h_ci, h_cj, size, t + best, i, best_j, best_kind, counter[i], cj)


@inner_kernel
def _rebuild(t, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic, cell_w, cell_h,
             ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj):
    """Empty the heap and predict every disk from time t."""
    size = 0
    for i in range(x.shape[0]):
        size = _predict(i, t, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic,
                        cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj, size)
    return size


@kernel
def run_until(t_now, t_stop, max_events, x, v, t_last, radius, mass, counter, cell, head, nxt, prv, images,
              big, is_big, box, periodic, cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj,
              log_i, log_j, log_t):
    """Process every event before ``t_stop`` (or ``max_events`` collisions and wall hits).

    The heap is rebuilt from scratch at the start (and whenever it fills), so calls are
    independent of how the run is split. The first ``log_t.size`` collisions and wall
    hits are logged (i, j or -1 - face, time). Returns (time reached, collisions,
    wall hits, cell crossings).
    """
    size = _rebuild(t_now, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic,
                    cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj)
    n_coll = 0
    n_wall = 0
    n_cell = 0
    t = t_now
    lx, ly = box[0], box[1]
    while size > 0 and n_coll + n_wall < max_events:
        te = h_time[0]
        if te >= t_stop:
            break
        i, j, kind, ci, cj = h_i[0], h_j[0], h_kind[0], h_ci[0], h_cj[0]
        size = _heap_pop(h_time, h_i, h_j, h_kind, h_ci, h_cj, size)
        if ci != counter[i]:
            continue  # i has a newer prediction in the heap
        if kind == COLLISION and cj != counter[j]:
            # The partner changed course: predict i again from the stale event's time.
            size = _predict(i, max(te, t), x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box,
                            periodic, cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj, size)
        else:
            t = max(te, t)
            # Move i (and j) to time t.
            x[i, 0] += v[i, 0] * (t - t_last[i])
            x[i, 1] += v[i, 1] * (t - t_last[i])
            t_last[i] = t
            if kind == COLLISION:
                x[j, 0] += v[j, 0] * (t - t_last[j])
                x[j, 1] += v[j, 1] * (t - t_last[j])
                t_last[j] = t
                dx = _minimum_image(x[i, 0] - x[j, 0], lx, periodic)
                dy = _minimum_image(x[i, 1] - x[j, 1], ly, periodic)
                dist2 = dx * dx + dy * dy
                proj = ((v[i, 0] - v[j, 0]) * dx + (v[i, 1] - v[j, 1]) * dy) / dist2
                mi, mj = mass[i], mass[j]
                fi = 2.0 * mj / (mi + mj) * proj
                fj = 2.0 * mi / (mi + mj) * proj
                v[i, 0] -= fi * dx
                v[i, 1] -= fi * dy
                v[j, 0] += fj * dx
                v[j, 1] += fj * dy
                if n_coll + n_wall < log_t.size:
                    k = n_coll + n_wall
                    log_i[k], log_j[k], log_t[k] = i, j, t
                n_coll += 1
                counter[i] += 1
                counter[j] += 1
            elif kind == WALL:
                axis = j // 2
                v[i, axis] = -v[i, axis]
                # Sit exactly on the contact line (round-off of the predicted time).
                x[i, axis] = (box[axis] - radius[i]) if (j % 2) == 1 else radius[i]
                if n_coll + n_wall < log_t.size:
                    k = n_coll + n_wall
                    log_i[k], log_j[k], log_t[k] = i, -1 - j, t
                n_wall += 1
                counter[i] += 1
            else:
                axis = j // 2
                step = 1 if (j % 2) == 1 else -1
                cx = cell[i] % ncx
                cy = cell[i] // ncx
                if axis == 0:
                    cx += step
                    x[i, 0] = (cx if step > 0 else cx + 1) * cell_w
                else:
                    cy += step
                    x[i, 1] = (cy if step > 0 else cy + 1) * cell_h
                if periodic:
                    if cx < 0 or cx >= ncx:
                        images[i, 0] += 1 if cx >= ncx else -1
                        cx = (cx + ncx) % ncx
                        x[i, 0] = cx * cell_w if step > 0 else (cx + 1) * cell_w
                    if cy < 0 or cy >= ncy:
                        images[i, 1] += 1 if cy >= ncy else -1
                        cy = (cy + ncy) % ncy
                        x[i, 1] = cy * cell_h if step > 0 else (cy + 1) * cell_h
                else:
                    cx = min(max(cx, 0), ncx - 1)
                    cy = min(max(cy, 0), ncy - 1)
                _unlink(i, cell, head, nxt, prv)
                _link(i, cy * ncx + cx, cell, head, nxt, prv)
                n_cell += 1
                counter[i] += 1
            size = _predict(i, t, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic,
                            cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj, size)
            if size >= 0 and kind == COLLISION:
                size = _predict(j, t, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic,
                                cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj, size)
        if size < 0:  # heap full of stale entries: start again from the current time
            size = _rebuild(t, x, v, t_last, radius, counter, cell, head, nxt, big, is_big, box, periodic,
                            cell_w, cell_h, ncx, ncy, h_time, h_i, h_j, h_kind, h_ci, h_cj)
    if n_coll + n_wall < max_events:
        t = max(t, t_stop)
    # Bring everyone to the common time t (positions only; velocities are unchanged).
    for k in range(x.shape[0]):
        x[k, 0] += v[k, 0] * (t - t_last[k])
        x[k, 1] += v[k, 1] * (t - t_last[k])
        t_last[k] = t
    return t, n_coll, n_wall, n_cell
