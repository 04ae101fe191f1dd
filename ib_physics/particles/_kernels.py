"""Fused Numba kernels of the particle engine.

One kernel advances a range of particles from one global step index to another:
particles outer (groups of :data:`LANES` particles), steps inner. The kernels are
serial and release the GIL; :mod:`ib_physics.parallel` runs disjoint particle
ranges on threads (serial kernels compile in seconds, where ``prange`` bodies of
this size take minutes).
Within a group the Philox blocks of all lanes are computed together, which lets
LLVM vectorise the generator; each particle's state then stays in registers for
the step. Normals are taken from the counter-based scheme of
:mod:`ib_physics.random`: draw ``step * m + j`` of particle ``i``, with ``m`` the
normals per step, so a path depends only on ``(seed, i)``.

One inline helper, :func:`_step_lanes`, takes a group's step for every scheme; the test
driver :func:`integrate_increments` runs that same helper on given Brownian increments
(for strong order measurements on nested paths).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np

# _TABLES guards the field code here too, so the analytic flavours (no DiffusionField) prune it.
from .._coefficients import _TABLES, diffusion_lanes, drift_lanes
from .._jit import inline_kernel, inner_kernel, kernel, specialised
from ..random import bridge_uniform, fill_lane_normals

#: Particles that move together: their random blocks are generated together and their updates run
#: as loops over the group. Wide enough that the independent lanes hide the latency of one step's
#: chain (a division, the drift, the update) and of the generator; a (3, LANES) block of each kind
#: still fits the L1 cache. Paths depend only on (seed, particle), not on this width.
LANES = 64

SCHEME_EULER_MARUYAMA = 0
SCHEME_MILSTEIN = 1
SCHEME_SRA1 = 2

_REFLECTING, _ABSORBING, _PERIODIC = 0, 1, 2
_DOMAIN_NONE, _DOMAIN_BOX, _DOMAIN_CYLINDER = 0, 1, 2
_INV_SQRT3 = 0.5773502691896258
#: exp(-36) ~ 2e-16: a Brownian-bridge crossing less likely than this is ignored.
_BRIDGE_CUTOFF = 36.0
# Module constants that the kernels' flavours (:func:`particle_kernel`) set to False: Numba
# prunes the code they guard before typing, so a flavour compiles only what its runs can execute.
#: Domain walls, absorption and the bridge test (off in free space without tracers).
_WALLS = True
#: Tracer trails (off when no particle is traced).
_TRAILS = True
#: The glass (cylinder) among the domains (off for boxes and free space).
_CYLINDER = True


#: Rows of normals a kernel call draws per pair of steps at most (SRA1 in 3D: 2 steps x 2 x 3).
_NORMAL_ROWS = 12
#: Rows of a group's step scratch (:func:`_lane_scratch`).
_STEP_ROWS = 40


def kernel_scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zeroed scratch of one kernel call, allocated by the caller: the kernels allocate nothing,
    since every allocation site in a kernel compiles NumPy's allocation code for its shape and
    dtype (seconds of a first call).

    Returns
    -------
    floats : (_NORMAL_ROWS + _STEP_ROWS + 1, LANES) float64
        The pair's normals, the step's lane blocks (:func:`_lane_scratch`), one row of per-point values.
    words : (_NORMAL_ROWS + 1, LANES) uint64
        The pair's random words, then each lane's global particle number.
    rows : (LANES,) int64
        The row of ``x`` each lane carries.
    flags : (LANES,) bool
        The lanes that need the wall treatment after a step.
    """
    return (np.zeros((_NORMAL_ROWS + _STEP_ROWS + 1, LANES)), np.zeros((_NORMAL_ROWS + 1, LANES), np.uint64),
            np.zeros(LANES, np.int64), np.zeros(LANES, np.bool_))


@inline_kernel
def _lane_scratch(block):
    """A group's step scratch as views of ``block`` (_STEP_ROWS, LANES): ten (3, LANES) blocks —
    positions, proposals, the SRA1 stage, drift at both, D, dD/dx, sqrt(2 D), dW, dZ — then
    ``cells`` (6, LANES) and ``values`` (4, LANES)."""
    return (block[0:3], block[3:6], block[6:9], block[9:12], block[12:15], block[15:18], block[18:21],
            block[21:24], block[24:27], block[27:30], block[30:36], block[36:40])


@inline_kernel
def _step_lanes(xs, new_l, k, d, seg, dt, scheme, alpha, lin, off, nl_scale, nl_rows, tables, diff,
                field_on, field_grid, field_tables, a_l, a_stage_l, stage_l, dd_l, gd_l, b_l, dw_l, dz_l,
                cells, values):
    """One step of the scheme for the first ``k`` lanes: ``new_l`` from ``xs`` (both (3, LANES)).

    ``dw_l`` holds the lanes' Brownian increments, ``dz_l`` their time integrals (read by SRA1 only);
    with a diffusion field the step evaluates D(x) itself, else ``dd_l``, ``gd_l`` and
    ``b_l = sqrt(2 D)`` must hold the segment's constants. The rest is scratch.
    """
    drift_lanes(xs, k, d, seg, lin, off, nl_scale, nl_rows, tables, a_l, cells, values)
    if _TABLES and field_on:
        diffusion_lanes(xs, k, d, seg, diff, field_on, field_grid, field_tables, dd_l, gd_l, cells, values)
        for ax in range(d):
            for g in range(k):
                b_l[ax, g] = np.sqrt(2.0 * dd_l[ax, g])
    if scheme == SCHEME_SRA1:
        for ax in range(d):
            for g in range(k):
                # First stage of Rößler's SRA1: H = x + 3/4 a dt + 3/2 b dZ / dt.
                stage_l[ax, g] = xs[ax, g] + 0.75 * a_l[ax, g] * dt + 1.5 * b_l[ax, g] * dz_l[ax, g] / dt
        drift_lanes(stage_l, k, d, seg, lin, off, nl_scale, nl_rows, tables, a_stage_l, cells, values)
        for ax in range(d):
            for g in range(k):
                # SRA1 update: x + dt (a(x)/3 + 2 a(H)/3) + b dW.
                new_l[ax, g] = xs[ax, g] + dt * (a_l[ax, g] / 3.0 + 2.0 * a_stage_l[ax, g] / 3.0) + (
                    b_l[ax, g] * dw_l[ax, g])
    else:
        for ax in range(d):
            for g in range(k):
                new_l[ax, g] = xs[ax, g] + (a_l[ax, g] + alpha * gd_l[ax, g]) * dt + b_l[ax, g] * dw_l[ax, g]
        if scheme == SCHEME_MILSTEIN:
            for ax in range(d):
                for g in range(k):
                    # g g' = d/dx sqrt(2D) * sqrt(2D) = dD/dx
                    dw = dw_l[ax, g]
                    new_l[ax, g] += 0.5 * gd_l[ax, g] * (dw * dw - dt)


@inner_kernel
def _box_walls(new, images, i, d, lower, upper, face_kind):
    """Apply the box faces to a proposed position; returns the exit face or -1."""
    for ax in range(d):
        lo = lower[ax]
        hi = upper[ax]
        v = new[ax]
        while v < lo or v > hi:
            if v < lo:
                kind = face_kind[2 * ax]
                if kind == _ABSORBING:
                    new[ax] = v
                    return 2 * ax
                if kind == _REFLECTING:
                    v = lo + (lo - v)
                else:
                    v += hi - lo
                    images[i, ax] -= 1
            else:
                kind = face_kind[2 * ax + 1]
                if kind == _ABSORBING:
                    new[ax] = v
                    return 2 * ax + 1
                if kind == _REFLECTING:
                    v = hi - (v - hi)
                else:
                    v -= hi - lo
                    images[i, ax] += 1
        new[ax] = v
    return -1


@inner_kernel
def _cylinder_walls(new, radius, height, face_kind):
    """Side wall (radial mirror), bottom (mirror) and top of the glass; exit face or -1."""
    r2 = new[0] * new[0] + new[1] * new[1]
    if r2 > radius * radius:
        r = np.sqrt(r2)
        # Signed distance along the ray through the axis; fold into [-R, R].
        s = r
        while s > radius or s < -radius:
            if s > radius:
                s = 2.0 * radius - s
            else:
                s = -2.0 * radius - s
        f = s / r
        new[0] *= f
        new[1] *= f
    z = new[2]
    while z < 0.0 or z > height:
        if z < 0.0:
            z = -z
        else:
            if face_kind[2] == _ABSORBING:
                new[2] = z
                return 2
            z = 2.0 * height - z
    new[2] = z
    return -1


@inline_kernel
def _bridge_argument(pos, new, dd, dt, ax, side, lower, upper):
    """s0 s1 / (D dt) for the face ``side`` of axis ``ax``: the exponent of the bridge's crossing chance."""
    if side == 0:
        s0 = pos[ax] - lower[ax]
        s1 = new[ax] - lower[ax]
    else:
        s0 = upper[ax] - pos[ax]
        s1 = upper[ax] - new[ax]
    return s0 * s1 / (dd[ax] * dt)


@inner_kernel
def _bridge_exit(pos, new, dd, dt, d, domain_kind, lower, upper, face_kind, height,
                 step, particle, k0, k1):
    """Brownian-bridge test for an unseen crossing of an absorbing face during a step.

    Both end points lie inside; a Brownian path between them crossed a face at
    distances ``s0``, ``s1`` with probability ``exp(-s0 s1 / (D dt))``. One uniform per
    step decides among the faces (sequential conditioning), drawn only when some face is
    within reach (probability above exp(-36)).
    """
    any_p = False
    if domain_kind == _DOMAIN_BOX:
        for f in range(2 * d):
            if face_kind[f] == _ABSORBING and _bridge_argument(pos, new, dd, dt, f // 2, f % 2, lower,
                                                               upper) < _BRIDGE_CUTOFF:
                any_p = True
    elif _CYLINDER and domain_kind == _DOMAIN_CYLINDER:
        if face_kind[2] == _ABSORBING:
            any_p = (height - pos[2]) * (height - new[2]) / (dd[2] * dt) < _BRIDGE_CUTOFF
    if not any_p:
        return -1
    u = bridge_uniform(np.uint64(step), particle, k0, k1)
    if _CYLINDER and domain_kind == _DOMAIN_CYLINDER:
        arg = (height - pos[2]) * (height - new[2]) / (dd[2] * dt)
        return 2 if u < np.exp(-arg) else -1
    for f in range(2 * d):
        if face_kind[f] != _ABSORBING:
            continue
        arg = _bridge_argument(pos, new, dd, dt, f // 2, f % 2, lower, upper)
        if arg < _BRIDGE_CUTOFF:
            p = np.exp(-arg)
            if u < p:
                return f
            u = (u - p) / (1.0 - p)
    return -1


@inline_kernel
def _lanes_needing_walls(xs_old, xs_new, dd_l, lanes, d, domain_kind, lower, upper, face_kind, radius, height,
                         bridge, dt, flags):
    """flags[g] = 1 where lane g's step left the domain or (bridge) came within reach of an absorbing
    face: exactly the lanes for which :func:`_walls` can do anything. One loop over lanes per test,
    so the common case (deep inside) costs a few vector instructions per step. Returns how many."""
    for g in range(lanes):
        flags[g] = False
    if domain_kind == _DOMAIN_BOX:
        for ax in range(d):
            lo = lower[ax]
            hi = upper[ax]
            for g in range(lanes):
                v = xs_new[ax, g]
                flags[g] = flags[g] | (v < lo) | (v > hi)
            if bridge:
                for side in range(2):
                    if face_kind[2 * ax + side] == _ABSORBING:
                        for g in range(lanes):
                            if side == 0:
                                s0 = xs_old[ax, g] - lo
                                s1 = xs_new[ax, g] - lo
                            else:
                                s0 = hi - xs_old[ax, g]
                                s1 = hi - xs_new[ax, g]
                            flags[g] = flags[g] | (s0 * s1 / (dd_l[ax, g] * dt) < _BRIDGE_CUTOFF)
    elif _CYLINDER and domain_kind == _DOMAIN_CYLINDER:
        r2max = radius * radius
        for g in range(lanes):
            z = xs_new[2, g]
            flags[g] = flags[g] | (xs_new[0, g] * xs_new[0, g] + xs_new[1, g] * xs_new[1, g] > r2max) | (
                z < 0.0) | (z > height)
        if bridge and face_kind[2] == _ABSORBING:
            for g in range(lanes):
                flags[g] = flags[g] | ((height - xs_old[2, g]) * (height - xs_new[2, g]) / (dd_l[2, g] * dt)
                                       < _BRIDGE_CUTOFF)
    flagged = 0
    for g in range(lanes):
        flagged += flags[g]
    return flagged


@inner_kernel
def _record_trail(x, images, i, d, slot, point, domain_kind, lower, upper, trails):
    """Unwrapped position of particle ``i`` into ``trails[slot, point]``."""
    for ax in range(d):
        shift = 0.0
        if domain_kind == _DOMAIN_BOX:
            shift = images[i, ax] * (upper[ax] - lower[ax])
        trails[slot, point, ax] = x[i, ax] + shift


@inner_kernel
def _walls(pos, new, dd, dt, images, i, d, domain_kind, lower, upper, face_kind, radius, height,
           bridge, step, particle, k0, k1):
    """Apply the domain to a proposed step; returns the exit face or -1."""
    face = -1
    if domain_kind == _DOMAIN_BOX:
        face = _box_walls(new, images, i, d, lower, upper, face_kind)
    elif _CYLINDER and domain_kind == _DOMAIN_CYLINDER:
        face = _cylinder_walls(new, radius, height, face_kind)
    if face < 0 and bridge:
        face = _bridge_exit(pos, new, dd, dt, d, domain_kind, lower, upper, face_kind, height,
                            step, particle, k0, k1)
    return face


@inner_kernel
def _finish_step(x, images, alive, first_passage, exit_face, pos, new, dd, dt, t, i, d,
                 domain_kind, lower, upper, face_kind, radius, height, bridge, step, particle, k0, k1):
    """Walls, absorption bookkeeping and the store of the new position, for a lane that
    :func:`_lanes_needing_walls` flagged (it left the domain, or the bridge test applies)."""
    face = _walls(pos, new, dd, dt, images, i, d, domain_kind, lower, upper, face_kind, radius,
                  height, bridge, step, particle, k0, k1)
    for ax in range(d):
        x[i, ax] = new[ax]
    if face >= 0:
        alive[i] = 0
        first_passage[i] = t + 0.5 * dt  # the crossing happened inside this step
        exit_face[i] = face


@inline_kernel
def _segment_at(seg, step, seg_first_step):
    while seg + 1 < seg_first_step.size and seg_first_step[seg + 1] <= step:
        seg += 1
    return seg


@inner_kernel
def _final_trails(x, images, alive, p0, n_lanes, d, trail_slot, trail_every, step_end,
                  domain_kind, lower, upper, trails):
    if trail_every > 0 and step_end % trail_every == 0:
        for g in range(n_lanes):
            i = p0 + g
            if alive[i] and trail_slot[i] >= 0:
                _record_trail(x, images, i, d, trail_slot[i], step_end // trail_every, domain_kind,
                              lower, upper, trails)


@inline_kernel
def _pack_living(x, alive, p0, n_lanes, d, first_particle, lane_rows, lane_particles, xs):
    """The group's living particles into the first lanes (positions, rows, particle numbers);
    returns how many."""
    # np.int64, not the literal 0: a literal count would make Numba compile an extra
    # specialisation of every helper called with it while it infers the types.
    k = np.int64(0)
    for g in range(n_lanes):
        i = p0 + g
        if alive[i]:
            lane_rows[k] = i
            lane_particles[k] = first_particle + i
            for ax in range(d):
                xs[ax, k] = x[i, ax]
            k += 1
    return k


@inline_kernel
def _record_lane_trails(x, images, xs, k, lane_rows, d, trail_slot, point, domain_kind, lower, upper, trails):
    """Trail point ``point`` of the tracers among the first k lanes (their positions into x first)."""
    for g in range(k):
        i = lane_rows[g]
        if trail_slot[i] >= 0:
            for ax in range(d):
                x[i, ax] = xs[ax, g]
            _record_trail(x, images, i, d, trail_slot[i], point, domain_kind, lower, upper, trails)


@inner_kernel
def _close_up(alive, k, d, n_normal_rows, lane_rows, lane_particles, xs, normals):
    """Drop absorbed particles from the lanes (their state is in x already) and close up the living
    ones, with the pair's normals still to be used: the group's cost follows the number alive.
    Lane order never enters a path's arithmetic, so the bits stay those of each particle."""
    kept = 0
    for g in range(k):
        i = lane_rows[g]
        if alive[i]:
            if kept != g:
                lane_rows[kept] = i
                lane_particles[kept] = lane_particles[g]
                for ax in range(d):
                    xs[ax, kept] = xs[ax, g]
                for r in range(n_normal_rows):
                    normals[r, kept] = normals[r, g]
            kept += 1
    return kept


@kernel
def advance_affine(x, images, alive, first_passage, exit_face, first_particle, step_begin, step_end,
                   t0, dt, seg_first_step, lin, off, noise,
                   domain_kind, lower, upper, face_kind, radius, height,
                   absorbing, bridge, trail_slot, trail_every, trails, k0, k1, floats, words, lane_rows, flags):
    """Euler–Maruyama for drift affine per axis and additive noise: the engine's fast path.

    Drift ``a_i = lin[seg, i] x_i + off[seg, i]``; ``noise[seg, i] = sqrt(2 D_i dt)``.
    Covers Ornstein–Uhlenbeck, gravity, free diffusion and schedules of them. The
    update runs as a loop over lanes (vectorised); walls are then applied lane by
    lane. State arrays and ``first_particle`` as in :func:`advance_general`;
    ``absorbing`` says whether any particle can die, ``trail_every = 0`` means no tracers.
    ``floats, words, lane_rows, flags`` are :func:`kernel_scratch`.
    """
    n, d = x.shape
    m = d
    free = domain_kind == _DOMAIN_NONE
    n_groups = (n + LANES - 1) // LANES
    words, lane_particles = words[0:2 * m], words[_NORMAL_ROWS]  # lane_particles: each lane's global number
    normals = floats[0:2 * m]
    point = floats[_NORMAL_ROWS + _STEP_ROWS]
    new = point[0:3]
    old = point[3:6]
    dd = point[6:9]
    c_lin = point[9:12]
    c_off = point[12:15]
    c_noise = point[15:18]
    # The lanes' positions (and those before the step) stay in small local blocks.
    xs = floats[_NORMAL_ROWS:_NORMAL_ROWS + 3]
    xold = floats[_NORMAL_ROWS + 3:_NORMAL_ROWS + 6]
    dd_l = floats[_NORMAL_ROWS + 6:_NORMAL_ROWS + 9]
    dd_l[:] = 1.0
    for group in range(n_groups):
        p0 = group * LANES
        n_lanes = min(LANES, n - p0)
        k = _pack_living(x, alive, p0, n_lanes, d, first_particle, lane_rows, lane_particles, xs)
        seg = -1
        for pair in range(step_begin // 2, (step_end + 1) // 2):
            if k == 0:
                break
            # Normals of steps 2*pair and 2*pair + 1: draws 2*pair*m ... for every lane.
            fill_lane_normals(words, normals, np.uint64(pair * m), 2 * m, lane_particles, k, k0, k1)
            for h in range(2):
                step = 2 * pair + h
                if step < step_begin or step >= step_end or k == 0:
                    continue
                new_seg = _segment_at(max(seg, 0), step, seg_first_step)
                if new_seg != seg:
                    seg = new_seg
                    for ax in range(d):
                        c_lin[ax] = lin[seg, ax] * dt
                        c_off[ax] = off[seg, ax] * dt
                        c_noise[ax] = noise[seg, ax]
                        dd[ax] = 0.5 * noise[seg, ax] * noise[seg, ax] / dt
                        for g in range(LANES):
                            dd_l[ax, g] = dd[ax]
                if _TRAILS:
                    if trail_every > 0 and step % trail_every == 0:
                        _record_lane_trails(x, images, xs, k, lane_rows, d, trail_slot, step // trail_every,
                                            domain_kind, lower, upper, trails)
                for ax in range(d):
                    cl = c_lin[ax]
                    co = c_off[ax]
                    cn = c_noise[ax]
                    row = h * m + ax
                    for g in range(k):
                        xv = xs[ax, g]
                        xold[ax, g] = xv
                        xs[ax, g] = xv + (cl * xv + co) + cn * normals[row, g]
                if _WALLS and not free:
                    t = t0 + step * dt
                    flagged = _lanes_needing_walls(xold, xs, dd_l, k, d, domain_kind, lower, upper, face_kind,
                                                   radius, height, bridge, dt, flags)
                    died = False
                    for g in range(k if flagged else 0):
                        if flags[g]:
                            i = lane_rows[g]
                            for ax in range(d):
                                old[ax] = xold[ax, g]
                                new[ax] = xs[ax, g]
                            _finish_step(x, images, alive, first_passage, exit_face, old, new, dd, dt, t, i,
                                         d, domain_kind, lower, upper, face_kind, radius, height, bridge,
                                         step, lane_particles[g], k0, k1)
                            for ax in range(d):
                                xs[ax, g] = x[i, ax]
                            if alive[i] == 0:
                                died = True
                    if died:
                        k = _close_up(alive, k, d, 2 * m, lane_rows, lane_particles, xs, normals)
        for g in range(k):
            for ax in range(d):
                x[lane_rows[g], ax] = xs[ax, g]
        if _TRAILS:
            _final_trails(x, images, alive, p0, n_lanes, d, trail_slot, trail_every, step_end,
                          domain_kind, lower, upper, trails)


@kernel
def advance_general(x, images, alive, first_passage, exit_face, first_particle, step_begin, step_end,
                    t0, dt, seg_first_step, lin, off, nl_scale, nl_rows, tables, diff,
                    field_on, field_grid, field_tables, alpha,
                    domain_kind, lower, upper, face_kind, radius, height,
                    scheme, bridge, trail_slot, trail_every, trails, k0, k1, floats, words, lane_rows, flags):
    """Advance particles ``x`` (n, d) from global step ``step_begin`` to ``step_end``.

    Any drift (affine part, nonlinear potential terms, convention term) and any
    diffusion (per-axis constants or a tabulated field); Euler–Maruyama, Milstein
    or SRA1. In-place state: ``x`` positions (wrapped into periodic boxes),
    ``images`` (n, d) periodic image counts, ``alive`` (n,) uint8,
    ``first_passage`` (n,) exit times, ``exit_face`` (n,) int8.
    ``first_particle`` is the global index of row 0. Tracers
    (``trail_slot >= 0``) write their unwrapped position every ``trail_every``
    steps into ``trails[slot, step // trail_every]``. ``floats, words, lane_rows, flags`` are
    :func:`kernel_scratch`.

    A group of :data:`LANES` particles moves together: its positions live in a (3, LANES)
    block, and the drift, the diffusion and the update run as loops over the lanes (which
    vectorise for affine and double-well terms); walls and deaths are then applied lane by
    lane. Each lane does the arithmetic of one particle in the scalar order, so a path's
    bits do not depend on its group, on threads or on chunks.
    """
    n, d = x.shape
    m = 2 * d if scheme == SCHEME_SRA1 else d
    sqdt = np.sqrt(dt)
    free = domain_kind == _DOMAIN_NONE and not bridge
    n_groups = (n + LANES - 1) // LANES
    words, lane_particles = words[0:2 * m], words[_NORMAL_ROWS]  # lane_particles: each lane's global number
    normals = floats[0:2 * m]
    xs, new_l, stage_l, a_l, a_stage_l, dd_l, gd_l, b_l, dw_l, dz_l, cells, values = _lane_scratch(
        floats[_NORMAL_ROWS:_NORMAL_ROWS + _STEP_ROWS])
    point = floats[_NORMAL_ROWS + _STEP_ROWS]
    pos = point[0:3]
    new = point[3:6]
    dd = point[6:9]
    for group in range(n_groups):
        p0 = group * LANES
        n_lanes = min(LANES, n - p0)
        k = _pack_living(x, alive, p0, n_lanes, d, first_particle, lane_rows, lane_particles, xs)
        seg = -1
        for pair in range(step_begin // 2, (step_end + 1) // 2):
            if k == 0:
                break
            fill_lane_normals(words, normals, np.uint64(pair * m), 2 * m, lane_particles, k, k0, k1)
            for h in range(2):
                step = 2 * pair + h
                if step < step_begin or step >= step_end or k == 0:
                    continue
                new_seg = _segment_at(max(seg, 0), step, seg_first_step)
                if new_seg != seg:
                    seg = new_seg
                    if not field_on:  # constant diffusion: D, dD/dx = 0 and sqrt(2D) once per segment
                        diffusion_lanes(xs, np.int64(LANES), d, seg, diff, field_on, field_grid, field_tables, dd_l, gd_l, cells, values)
                        for ax in range(d):
                            for g in range(LANES):
                                b_l[ax, g] = np.sqrt(2.0 * dd_l[ax, g])
                t = t0 + step * dt
                if _TRAILS:
                    if trail_every > 0 and step % trail_every == 0:
                        _record_lane_trails(x, images, xs, k, lane_rows, d, trail_slot, step // trail_every,
                                            domain_kind, lower, upper, trails)
                for ax in range(d):
                    row = h * m + ax
                    for g in range(k):
                        dw_l[ax, g] = sqdt * normals[row, g]
                if scheme == SCHEME_SRA1:
                    for ax in range(d):
                        r0 = h * m + ax
                        r1 = h * m + d + ax
                        for g in range(k):
                            dz_l[ax, g] = 0.5 * dt * sqdt * (normals[r0, g] + normals[r1, g] * _INV_SQRT3)
                _step_lanes(xs, new_l, k, d, seg, dt, scheme, alpha, lin, off, nl_scale, nl_rows, tables, diff,
                            field_on, field_grid, field_tables, a_l, a_stage_l, stage_l, dd_l, gd_l, b_l, dw_l,
                            dz_l, cells, values)
                # The two blocks swap roles instead of copying: xs holds the proposals, new_l the
                # positions before the step (the next step overwrites it).
                xs, new_l = new_l, xs
                if _WALLS and not free:
                    flagged = _lanes_needing_walls(new_l, xs, dd_l, k, d, domain_kind, lower, upper, face_kind,
                                                   radius, height, bridge, dt, flags)
                    if flagged == 0:  # the common step: every lane stays deep inside
                        continue
                    died = False
                    for g in range(k):
                        if flags[g]:
                            i = lane_rows[g]
                            for ax in range(d):
                                pos[ax] = new_l[ax, g]
                                new[ax] = xs[ax, g]
                                dd[ax] = dd_l[ax, g]
                            _finish_step(x, images, alive, first_passage, exit_face, pos, new, dd, dt, t, i, d,
                                         domain_kind, lower, upper, face_kind, radius, height, bridge, step,
                                         lane_particles[g], k0, k1)
                            for ax in range(d):
                                xs[ax, g] = x[i, ax]
                            if alive[i] == 0:
                                died = True
                    if died:
                        # dd_l, b_l and gd_l need no moving: constant across lanes, or recomputed next step.
                        k = _close_up(alive, k, d, 2 * m, lane_rows, lane_particles, xs, normals)
        for g in range(k):
            for ax in range(d):
                x[lane_rows[g], ax] = xs[ax, g]
        if _TRAILS:
            _final_trails(x, images, alive, p0, n_lanes, d, trail_slot, trail_every, step_end,
                          domain_kind, lower, upper, trails)


@kernel
def integrate_increments(x0, dw, dz, dt, scheme, lin, off, nl_scale, nl_rows, tables, diff,
                         field_on, field_grid, field_tables, alpha, out, block):
    """The engine's step (:func:`_step_lanes`) on given increments, without walls (test driver).

    x0 : (n, d); dw, dz : (n, steps, d) Brownian increments and their time
    integrals (dz only read by SRA1); the first segment's coefficients. The end points go to
    ``out`` (n, d); ``block`` (_STEP_ROWS, LANES) is zeroed scratch.
    """
    n, steps, d = dw.shape
    xs, new_l, stage_l, a_l, a_stage_l, dd_l, gd_l, b_l, dw_l, dz_l, cells, values = _lane_scratch(block)
    seg = np.int64(0)
    if not field_on:
        diffusion_lanes(xs, np.int64(LANES), d, seg, diff, field_on, field_grid, field_tables, dd_l, gd_l,
                        cells, values)
        for ax in range(d):
            for g in range(LANES):
                b_l[ax, g] = np.sqrt(2.0 * dd_l[ax, g])
    for p0 in range(0, n, LANES):
        k = min(LANES, n - p0)
        for ax in range(d):
            for g in range(k):
                xs[ax, g] = x0[p0 + g, ax]
        for step in range(steps):
            for ax in range(d):
                for g in range(k):
                    dw_l[ax, g] = dw[p0 + g, step, ax]
                    dz_l[ax, g] = dz[p0 + g, step, ax]
            _step_lanes(xs, new_l, k, d, seg, dt, scheme, alpha, lin, off, nl_scale, nl_rows, tables, diff,
                        field_on, field_grid, field_tables, a_l, a_stage_l, stage_l, dd_l, gd_l, b_l, dw_l,
                        dz_l, cells, values)
            for ax in range(d):
                for g in range(k):
                    xs[ax, g] = new_l[ax, g]
        for ax in range(d):
            for g in range(k):
                out[p0 + g, ax] = xs[ax, g]


#: What each flavour of the kernels leaves out (see :func:`particle_kernel`).
_FLAVOUR_CONSTANTS = {
    "free": {"_WALLS": False, "_TRAILS": False},
    "box": {"_TRAILS": False, "_CYLINDER": False},
    "full": {},
}


def _build_flavours() -> tuple[Any, Any]:
    """Every flavour of both kernels and the lane helpers they call, built from the same source.

    One memo for all of them, so flavours that agree on what a helper depends on share its
    compiled copy (a first box run and a free-space run in one process compile the lane helpers
    once). The tables flag reaches the general kernel only: the affine one has no table code.
    """
    built: dict[Any, Any] = {}
    kernels = {}
    for flavour, constants in _FLAVOUR_CONSTANTS.items():
        kernels["affine", flavour, False] = specialised(advance_affine, constants, built)
        for tables in (False, True):
            kernels["general", flavour, tables] = specialised(
                advance_general, {**constants, "_TABLES": tables}, built)
    helpers = {tables: tuple(specialised(f, {"_TABLES": tables}, built) for f in (drift_lanes, diffusion_lanes))
               for tables in (False, True)}
    return MappingProxyType(kernels), MappingProxyType(helpers)


_KERNELS, _LANE_HELPERS = _build_flavours()


def particle_kernel(*, affine: bool, free_space: bool, boxes_only: bool, tracers: bool, tables: bool) -> Any:
    """The flavour of a kernel that a run takes: the same arithmetic (bitwise the same paths), with
    only the code that the run can execute compiled.

    Parameters
    ----------
    affine : bool
        The affine fast path (:func:`advance_affine`), else :func:`advance_general`.
    free_space : bool
        No domain (and no tracers): no wall, bridge and trail code.
    boxes_only : bool
        The domain is a box (or none): no glass code.
    tracers : bool
        Some particle is traced (trail code kept).
    tables : bool
        A ``Tabulated`` potential or a ``DiffusionField`` (table interpolation kept; general kernel only).
    """
    if free_space and not tracers:
        flavour = "free"
    elif boxes_only and not tracers:
        flavour = "box"
    else:
        flavour = "full"
    return _KERNELS["affine", flavour, False] if affine else _KERNELS["general", flavour, bool(tables)]


def lane_helpers(tables: bool) -> tuple[Any, Any]:
    """The drift and diffusion lane helpers that the general kernel calls (with or without table
    code), for diagnostics that should compile nothing more than a run does."""
    return _LANE_HELPERS[bool(tables)]
