"""Numba kernels of the training engine: many small fully connected nets at once.

Parameters of replica r live in one flat row ``params[r]``; layer l's weights are
the ``n_in x n_out`` block at ``layers[l, 2]`` (row-major: input k, unit j at
``offset + k * n_out + j``) and its biases the ``n_out`` values at ``layers[l, 3]``.
Kernels loop over a replica range [r0, r1) serially and release the GIL; the
Python side runs disjoint ranges on threads.

Minibatch orders come from the package's counter-based generator
(:mod:`ib_physics.random`): a Fisher–Yates shuffle whose uniforms are Philox words
keyed by the seed, with counter ``(epoch << 20 | i // 2, replica, SHUFFLE_TAG)``, so
a replica's batches depend only on (seed, replica, epoch). Per-step sampling (i.i.d.
rows, or a fresh subset by a partial Fisher–Yates shuffle) draws word ``j`` of step
``b`` from counter ``(epoch << 20 | (b * batch_size + j) // 2, replica, tag)``.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np

from .._jit import contracting_kernel, inline_kernel, inner_kernel, kernel, specialised
from ..random import _to_unit, philox_words

TANH, RELU = 0, 1
SGD, ADAM = 0, 1
#: Minibatch sampling codes: reshuffled epochs, one fixed shuffle, i.i.d. rows drawn with
#: replacement for every step, a fresh uniform subset (without replacement) for every step.
RESHUFFLED, FIXED, IID, SUBSET = 0, 1, 2, 3
#: Philox stream tags of the minibatch draws (distinct from the particle engine's tags).
SHUFFLE_TAG = np.uint64(0x20000000)
IID_TAG = np.uint64(0x20000001)
SUBSET_TAG = np.uint64(0x20000002)
#: Tags of the traced second minibatch (independent of the step's own batch): i.i.d. rows
#: under i.i.d. sampling, else a fresh subset (the marginal law of one reshuffled batch).
SECOND_IID_TAG = np.uint64(0x20000003)
SECOND_SUBSET_TAG = np.uint64(0x20000004)
#: False in the flavours of :func:`train_epochs` for runs without a second-batch trace (its code,
#: and the batch draws it calls, are pruned before typing).
_SECOND_BATCH = True
#: False in the flavours for epoch-wise sampling (reshuffled, fixed): no per-step row draws.
_STEP_DRAWS = True


@kernel
def shuffle_order(order, epoch, replica, k0, k1):
    """Fill ``order`` (n,) with a permutation of range(n) for (epoch, replica)."""
    n = order.size
    for i in range(n):
        order[i] = i
    for i in range(n - 1, 0, -1):
        block = (np.uint64(epoch) << np.uint64(20)) | np.uint64(i >> 1)
        wa, wb = philox_words(block, np.uint64(replica), SHUFFLE_TAG, k0, k1)
        w = wa if (i & 1) == 0 else wb
        j = int(_to_unit(w) * (i + 1))
        if j > i:
            j = i
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


@kernel
def fill_batch(order, picks, sampling, epoch, b, batch_size, replica, k0, k1):
    """Rows of step ``b`` of ``epoch`` into ``picks``; returns their number m.

    Reshuffled and fixed sampling copy the slice ``b`` of ``order`` (the epoch's
    permutation, filled by the caller); i.i.d. sampling draws m uniform rows with
    replacement; subset sampling draws m distinct rows by a partial Fisher–Yates
    shuffle of ``order`` (reset to the identity first, so the draw depends only on
    (seed, replica, epoch, b)). m is ``batch_size`` except for the last step of an
    epoch, which holds the remainder in every mode, so that all modes take the same steps.
    """
    n = order.size
    start = b * batch_size
    m = min(n, start + batch_size) - start
    if not _STEP_DRAWS or sampling == RESHUFFLED or sampling == FIXED:
        for s in range(m):
            picks[s] = order[start + s]
        return m
    # One call with a run-time flag: literal True/False would compile draw_rows twice.
    iid = sampling == IID
    draw_rows(order, picks, iid, epoch, start, m, replica, IID_TAG if iid else SUBSET_TAG, k0, k1)
    return m


@kernel
def fill_second_batch(order, picks, sampling, epoch, b, batch_size, replica, k0, k1):
    """An independent minibatch of step ``b``'s size into ``picks`` (``order`` is scratch); returns m.

    I.i.d. rows under i.i.d. sampling, else a fresh uniform subset: the law of one step's
    batch in every mode but "fixed", drawn from its own stream.
    """
    n = order.size
    start = b * batch_size
    m = min(n, start + batch_size) - start
    iid = sampling == IID
    draw_rows(order, picks, iid, epoch, start, m, replica, SECOND_IID_TAG if iid else SECOND_SUBSET_TAG, k0, k1)
    return m


@kernel
def draw_rows(order, picks, with_replacement, epoch, start, m, replica, tag, k0, k1):
    """m rows into ``picks``: uniform with replacement, or distinct by a partial Fisher–Yates
    shuffle of ``order`` (reset to the identity). Word j of the draw is counter
    ``(epoch << 20 | (start + j) // 2, replica, tag)``."""
    n = order.size
    base = (np.uint64(epoch) << np.uint64(20))
    if with_replacement:
        for s in range(m):
            j = start + s
            wa, wb = philox_words(base | np.uint64(j >> 1), np.uint64(replica), tag, k0, k1)
            w = wa if (j & 1) == 0 else wb
            i = int(_to_unit(w) * n)
            picks[s] = i if i < n else n - 1
        return
    for i in range(n):
        order[i] = i
    for s in range(m):
        j = start + s
        wa, wb = philox_words(base | np.uint64(j >> 1), np.uint64(replica), tag, k0, k1)
        w = wa if (j & 1) == 0 else wb
        k = s + int(_to_unit(w) * (n - s))
        if k > n - 1:
            k = n - 1
        tmp = order[s]
        order[s] = order[k]
        order[k] = tmp
        picks[s] = order[s]


@inline_kernel
def _tanh(z):
    """tanh through one exp (about twice as fast as libm's tanh; absolute error ~1e-16)."""
    if z > 20.0:
        return 1.0
    if z < -20.0:
        return -1.0
    return 1.0 - 2.0 / (math.exp(2.0 * z) + 1.0)


@inline_kernel
def _dot(a, b, m):
    """Σ_s a[s] b[s] for s < m with four accumulators (a fixed order: results are reproducible)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    q = m - m % 4
    for s in range(0, q, 4):
        s0 += a[s] * b[s]
        s1 += a[s + 1] * b[s + 1]
        s2 += a[s + 2] * b[s + 2]
        s3 += a[s + 3] * b[s + 3]
    for s in range(q, m):
        s0 += a[s] * b[s]
    return (s0 + s1) + (s2 + s3)


@inner_kernel
def _forward_batch(p, x, idx, start, m, layers, activation, acts, pre):
    """Samples idx[start:start + m] through the net, feature-major: acts[l, unit, sample].

    acts[0] holds the inputs, acts[l + 1] the output of layer l (softmax last), pre[l]
    the pre-activations. Inner loops run over samples (contiguous, vectorisable).
    """
    n_layers = layers.shape[0]
    for s in range(m):
        i = idx[start + s]
        for k in range(layers[0, 0]):
            acts[0, k, s] = x[i, k]
    for l in range(n_layers):
        n_in, n_out, wo, bo = layers[l, 0], layers[l, 1], layers[l, 2], layers[l, 3]
        for j in range(n_out):
            z = pre[l, j]
            bias = p[bo + j]
            for s in range(m):
                z[s] = bias
            for k in range(n_in):
                w = p[wo + k * n_out + j]
                a = acts[l, k]
                for s in range(m):
                    z[s] += w * a[s]
        if l < n_layers - 1:
            for j in range(n_out):
                z = pre[l, j]
                out = acts[l + 1, j]
                if activation == TANH:
                    for s in range(m):
                        out[s] = _tanh(z[s])
                else:
                    for s in range(m):
                        out[s] = z[s] if z[s] > 0.0 else 0.0
        else:
            for s in range(m):
                top = pre[l, 0, s]
                for j in range(1, n_out):
                    if pre[l, j, s] > top:
                        top = pre[l, j, s]
                total = 0.0
                for j in range(n_out):
                    e = math.exp(pre[l, j, s] - top)
                    acts[l + 1, j, s] = e
                    total += e
                for j in range(n_out):
                    acts[l + 1, j, s] /= total


@kernel
def batch_gradient(p, x, y, idx, start, stop, layers, activation, acts, pre, delta, delta_prev, g):
    """Mean cross-entropy gradient over samples idx[start:stop] into ``g`` (P,); returns the summed loss.

    Scratch arrays (see :func:`gradient_scratch`): acts (L + 1, width, batch), pre (L, width,
    batch), delta and delta_prev (width, batch).
    """
    n_layers = layers.shape[0]
    m = stop - start
    _forward_batch(p, x, idx, start, m, layers, activation, acts, pre)
    top = layers[n_layers - 1, 1]
    loss = 0.0
    for s in range(m):
        label = y[idx[start + s]]
        loss -= math.log(max(acts[n_layers, label, s], 1e-300))
        for j in range(top):
            delta[j, s] = acts[n_layers, j, s] - (1.0 if j == label else 0.0)
    inv = 1.0 / m
    for l in range(n_layers - 1, -1, -1):
        n_in, n_out, wo, bo = layers[l, 0], layers[l, 1], layers[l, 2], layers[l, 3]
        for j in range(n_out):
            d = delta[j]
            total = 0.0
            for s in range(m):
                total += d[s]
            g[bo + j] = total * inv
        for k in range(n_in):
            a = acts[l, k]
            for j in range(n_out):
                g[wo + k * n_out + j] = _dot(a, delta[j], m) * inv
        if l > 0:
            for k in range(n_in):
                back = delta_prev[k]
                for s in range(m):
                    back[s] = 0.0
                for j in range(n_out):
                    w = p[wo + k * n_out + j]
                    d = delta[j]
                    for s in range(m):
                        back[s] += w * d[s]
                a = acts[l, k]
                if activation == TANH:
                    for s in range(m):
                        back[s] *= 1.0 - a[s] * a[s]
                else:
                    z = pre[l - 1, k]
                    for s in range(m):
                        if z[s] <= 0.0:
                            back[s] = 0.0
            for k in range(n_in):
                d = delta[k]
                back = delta_prev[k]
                for s in range(m):
                    d[s] = back[s]
    return loss


def gradient_scratch(layers: np.ndarray, batch: int) -> tuple[np.ndarray, ...]:
    """Scratch arrays of :func:`batch_gradient` for minibatches of up to ``batch`` samples:
    acts (L + 1, width, batch), pre (L, width, batch), delta and delta_prev (width, batch).

    The kernels allocate nothing themselves: every allocation site in a kernel compiles NumPy's
    allocation code for its shape and dtype (seconds of a first call).
    """
    n_layers = layers.shape[0]
    width = int(max(layers[:, 0].max(), layers[:, 1].max()))
    return (np.zeros((n_layers + 1, width, batch)), np.zeros((n_layers, width, batch)), np.zeros((width, batch)),
            np.zeros((width, batch)))


def epoch_scratch(layers: np.ndarray, n_rows: int, batch_size: int, n_params: int) -> tuple[np.ndarray, ...]:
    """Scratch of one :func:`train_epochs` call: :func:`gradient_scratch`, then (7, n_params) vectors
    (gradient, update, Welford sums of both, second-batch gradient) and the int64 row orders (n,),
    picks (batch,) and second-batch order (n,)."""
    batch = min(batch_size, n_rows)
    return (*gradient_scratch(layers, batch), np.zeros((7, n_params)), np.zeros(n_rows, np.int64),
            np.zeros(batch, np.int64), np.zeros(n_rows, np.int64))


@kernel
def train_epochs(params, adam_m, adam_v, steps, x, y, layers, activation, optimizer, lr, beta1, beta2, eps,
                 batch_size, sampling, k0, k1, epoch0, n_epochs, r0, r1, replica_offset,
                 grad_mean, grad_std, update_mean, update_std, weight_norm, epoch_loss,
                 trace_slot, weight_index, trace_weights, trace_gradients, trace_updates, trace_second,
                 acts, pre, delta, delta_prev, vectors, order, picks, order2):
    """Train replicas [r0, r1) for epochs epoch0 .. epoch0 + n_epochs - 1, in place.

    Row r is replica ``r + replica_offset`` of a study: that global index keys its batches.

    Per replica, epoch (relative to epoch0) and layer it writes: the Frobenius norm of
    the mean weight gradient over the epoch's minibatches, the square root of the
    summed variance over minibatches (population), the same for the weight updates,
    the weight norm at the epoch's end; and the mean training loss seen during the epoch.

    Trace: where ``trace_slot[e] >= 0`` the weights ``params[r, weight_index]`` at the
    epoch's start go to ``trace_weights[r, slot]`` (R, S, W) and every step's weight
    gradient and applied weight update to ``trace_gradients[r, slot, b]`` and
    ``trace_updates[r, slot, b]`` (R, S, n_b, W); where ``trace_second`` has n_b steps, the
    gradient of an independent minibatch (:func:`fill_second_batch`) at the same weights
    goes to ``trace_second[r, slot, b]``. The last eight arguments are :func:`epoch_scratch`.
    """
    n = x.shape[0]
    n_layers = layers.shape[0]
    n_params = params.shape[1]
    n_traced = weight_index.size
    g, du_all, g_mean, g_m2, u_mean, u_m2, g2 = (vectors[0], vectors[1], vectors[2], vectors[3], vectors[4],
                                                 vectors[5], vectors[6])
    n_batches = (n + batch_size - 1) // batch_size
    second = trace_second.shape[2] == n_batches
    for r in range(r0, r1):
        p = params[r]
        replica = r + replica_offset
        for e in range(n_epochs):
            epoch = epoch0 + e
            if sampling == RESHUFFLED or sampling == FIXED:
                shuffle_order(order, 0 if sampling == FIXED else epoch, replica, k0, k1)
            slot = trace_slot[e]
            if slot >= 0:
                for q in range(n_traced):
                    trace_weights[r, slot, q] = p[weight_index[q]]
            for q in range(n_params):
                g_mean[q] = 0.0
                g_m2[q] = 0.0
                u_mean[q] = 0.0
                u_m2[q] = 0.0
            loss = 0.0
            for b in range(n_batches):
                m = fill_batch(order, picks, sampling, epoch, b, batch_size, replica, k0, k1)
                loss += batch_gradient(p, x, y, picks, 0, m, layers, activation, acts, pre, delta,
                                       delta_prev, g)
                if _SECOND_BATCH and slot >= 0 and second:
                    fill_second_batch(order2, picks, sampling, epoch, b, batch_size, replica, k0, k1)
                    batch_gradient(p, x, y, picks, 0, m, layers, activation, acts, pre, delta, delta_prev, g2)
                    for q in range(n_traced):
                        trace_second[r, slot, b, q] = g2[weight_index[q]]
                steps[r] += 1
                t = steps[r]
                count = b + 1.0
                if optimizer == ADAM:
                    c1 = 1.0 - beta1**t
                    c2 = 1.0 - beta2**t
                for q in range(n_params):
                    gq = g[q]
                    if optimizer == ADAM:
                        adam_m[r, q] = beta1 * adam_m[r, q] + (1.0 - beta1) * gq
                        adam_v[r, q] = beta2 * adam_v[r, q] + (1.0 - beta2) * gq * gq
                        du = -lr * (adam_m[r, q] / c1) / (math.sqrt(adam_v[r, q] / c2) + eps)
                    else:
                        du = -lr * gq
                    p[q] += du
                    du_all[q] = du
                    # Welford over the epoch's minibatches: gradients and updates.
                    dg = gq - g_mean[q]
                    g_mean[q] += dg / count
                    g_m2[q] += dg * (gq - g_mean[q])
                    dd = du - u_mean[q]
                    u_mean[q] += dd / count
                    u_m2[q] += dd * (du - u_mean[q])
                if slot >= 0:
                    for q in range(n_traced):
                        trace_gradients[r, slot, b, q] = g[weight_index[q]]
                        trace_updates[r, slot, b, q] = du_all[weight_index[q]]
            epoch_loss[r, e] = loss / n
            for l in range(n_layers):
                wo = layers[l, 2]
                size = layers[l, 0] * layers[l, 1]
                gm = 0.0
                gv = 0.0
                um = 0.0
                uv = 0.0
                wn = 0.0
                for q in range(wo, wo + size):
                    gm += g_mean[q] * g_mean[q]
                    gv += g_m2[q]
                    um += u_mean[q] * u_mean[q]
                    uv += u_m2[q]
                    wn += p[q] * p[q]
                grad_mean[r, e, l] = math.sqrt(gm)
                grad_std[r, e, l] = math.sqrt(gv / n_batches)
                update_mean[r, e, l] = math.sqrt(um)
                update_std[r, e, l] = math.sqrt(uv / n_batches)
                weight_norm[r, e, l] = math.sqrt(wn)


@kernel
def forward_all(params, x, layers, activation, r0, r1, outputs, pre_outputs, idx, acts, pre):
    """Every layer's output (and pre-activation) for every input row, replicas [r0, r1).

    ``outputs`` and ``pre_outputs`` have shape (R, n, total units); layer l fills the
    columns from the sum of the earlier layers' widths. ``idx`` is ``arange(n)``; ``acts``
    and ``pre`` are the first two arrays of :func:`gradient_scratch` for chunks of
    ``acts.shape[2]`` rows.
    """
    n_layers = layers.shape[0]
    n = x.shape[0]
    chunk = acts.shape[2]
    for r in range(r0, r1):
        p = params[r]
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            _forward_batch(p, x, idx, start, m, layers, activation, acts, pre)
            col = 0
            for l in range(n_layers):
                for j in range(layers[l, 1]):
                    for s in range(m):
                        outputs[r, start + s, col + j] = acts[l + 1, j, s]
                        pre_outputs[r, start + s, col + j] = pre[l, j, s]
                col += layers[l, 1]


#: exp(x) for x <= 0 in single precision as 2^k · e^r, |r| <= ln2 / 2, e^r by its Taylor
#: polynomial of degree 7 (truncation below 6e-9, under float32's rounding), 2^k built from k's
#: bits: plain float32 and int32 arithmetic, so the pair loops run eight pairs per AVX2 instruction
#: where a libm call (or a float-to-int conversion) would not vectorise. Arguments below -87 are
#: taken as -87 (e^-87 ≈ 1.6e-38, the smallest normal float32; nothing beside row sums >= 1).
_LOG2E_32 = np.float32(1.4426950408889634)
#: ln 2 in two parts (Cody–Waite): k · _LN2_HI_32 is exact for |k| < 2^15.
_LN2_HI_32 = np.float32(0.693359375)
_LN2_LO_32 = np.float32(-2.12194440e-4)
#: 1.5 · 2^23: x + _ROUND_32 rounds x to an integer that sits in the low mantissa bits.
_ROUND_32 = np.float32(12582912.0)
_EXP_FLOOR_32 = np.float32(-87.0)
#: Pairs with ‖h_i - h_j‖² / scale above this are skipped: each would add below e^-64 ≈ 1.6e-28 to a
#: row sum that is at least 1, so even 10^12 of them stay below the sum's rounding (2^-53 ≈ 1.1e-16).
KDE_CUTOFF = 64.0


@contracting_kernel
def kde_pairwise_bounds(h, labels, n_classes, scale, axis):
    """The pairwise-distance bound over all rows of h (n, d) and its class-weighted mean within the
    classes ``labels`` (n,) in [0, n_classes), in nats, from one pass over the pairs:

        whole  = -(1/n) Σ_i log((1/n) Σ_j K_ij),
        within = Σ_c p(c) · -(1/n_c) Σ_{i∈c} log((1/n_c) Σ_{j∈c} K_ij),   K_ij = exp(-‖h_i - h_j‖² / scale).

    With scale = 2σ² these are the Kolchinsky–Tracey upper bounds of H(T) and H(T|Y) for
    T = h(X) + N(0, σ² I); with 8σ² the Bhattacharyya lower bounds. Each pair is evaluated once (K is
    symmetric, and K_ii = 1 is the largest term, so the row sums lie in [1, n] and need no log-sum-exp
    shift). Distances and K_ij are single precision (h should be centred, so that differences keep
    their digits), each K_ij within about 1e-6 of its value relative; the sums are double. The rows
    must be sorted by column ``axis``: the partners of row i are then the run j = i+1, ... up to the
    first row whose ``axis`` value alone puts it beyond ``KDE_CUTOFF`` (later rows are farther still).
    """
    n, d = h.shape
    ht = np.ascontiguousarray(h.T).astype(np.float32)  # one unit's values contiguous: j loops run over memory
    lab = labels.astype(np.float32)
    row = np.ones(n)
    same = np.ones(n)
    buf = np.empty(n, dtype=np.float32)
    rest = np.empty(n, dtype=np.float32)
    scaled = np.empty(n, dtype=np.float32)
    scaled_bits = scaled.view(np.int32)
    round_bits = np.array([_ROUND_32]).view(np.int32)[0]
    inv = np.float32(-1.0 / scale)
    zero = np.float32(0.0)
    reach = math.sqrt(KDE_CUTOFF * scale)
    key = h[:, axis]
    end = 0
    for i in range(n):
        end = max(end, i + 1)
        while end < n and key[end] - key[i] <= reach:
            end += 1
        m = end - i - 1
        for j in range(m):
            buf[j] = zero
        for k in range(d):
            x = ht[k, i]
            for j in range(m):
                diff = x - ht[k, i + 1 + j]
                buf[j] += diff * diff
        for j in range(m):
            x = max(buf[j] * inv, _EXP_FLOOR_32)
            rounded = x * _LOG2E_32 + _ROUND_32
            kf = rounded - _ROUND_32
            rest[j] = x - kf * _LN2_HI_32 - kf * _LN2_LO_32
            scaled[j] = rounded
        for j in range(m):  # k's bits into the exponent field: the float 2^k
            scaled_bits[j] = (scaled_bits[j] - round_bits + 127) << 23
        for j in range(m):
            r = rest[j]
            p = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (np.float32(1.0 / 6.0) + r * (
                np.float32(1.0 / 24.0) + r * (np.float32(1.0 / 120.0) + r * (np.float32(1.0 / 720.0) + r * np.float32(
                    1.0 / 5040.0)))))))
            buf[j] = p * scaled[j]
        li = lab[i]
        for j in range(m):  # the partners' sums: independent updates, one vector loop
            e = buf[j]
            w = e if lab[i + 1 + j] == li else zero
            row[i + 1 + j] += e
            same[i + 1 + j] += w
            rest[j] = w
        # Row i's own sums as four interleaved partial sums (a fixed order, so fixed bits), which the
        # vectoriser keeps in one register where a single running sum is a chain of dependent adds.
        a0 = a1 = a2 = a3 = 0.0
        s0 = s1 = s2 = s3 = 0.0
        full = m - m % 4
        for j in range(0, full, 4):
            a0 += buf[j]
            a1 += buf[j + 1]
            a2 += buf[j + 2]
            a3 += buf[j + 3]
            s0 += rest[j]
            s1 += rest[j + 1]
            s2 += rest[j + 2]
            s3 += rest[j + 3]
        for j in range(full, m):
            a0 += buf[j]
            s0 += rest[j]
        row[i] += (a0 + a1) + (a2 + a3)
        same[i] += (s0 + s1) + (s2 + s3)
    counts = np.zeros(n_classes)
    for i in range(n):
        counts[labels[i]] += 1.0
    whole = 0.0
    within = 0.0
    for i in range(n):
        whole -= math.log(row[i] / n)
        within -= math.log(same[i] / counts[labels[i]])
    # Class c contributes p(c) · -(1/n_c) Σ_{i∈c} log(...) = -(1/n) Σ_{i∈c} log(...).
    return whole / n, within / n


@inner_kernel
def _sorted_entropy(codes):
    """Entropy in bits of the values of an int64 array (sorted in place)."""
    n = codes.size
    if n == 0:
        return 0.0
    codes.sort()
    h = 0.0
    run = 1
    for i in range(1, n + 1):
        if i < n and codes[i] == codes[i - 1]:
            run += 1
        else:
            p = run / n
            h -= p * math.log2(p)
            run = 1
    return h


@kernel
def binned_entropies(t, y, edges, n_labels):
    """H(T) and Σ_y p(y) H(T | y) in bits for the rows of t (n, w) binned by ``edges``.

    A unit's bin is ``searchsorted(edges, v, 'right')`` (numpy.digitize); a row's bins
    are packed into one int64 (the caller checks that w log2(len(edges) + 1) < 62).
    """
    n, w = t.shape
    base = edges.size + 1
    n_edges = edges.size
    first = edges[0]
    inv_width = (n_edges - 1) / (edges[-1] - edges[0]) if n_edges > 1 else 0.0
    codes = np.empty(n, np.int64)
    for i in range(n):
        c = 0
        for k in range(w):
            # The number of edges <= v (numpy.digitize's index): guessed for equal widths,
            # then corrected against the edges themselves, so any increasing edges work.
            v = t[i, k]
            guess = (v - first) * inv_width + 1.0
            lo = 0 if not guess > 0.0 else (n_edges if guess > n_edges else int(guess))
            while lo > 0 and edges[lo - 1] > v:
                lo -= 1
            while lo < n_edges and edges[lo] <= v:
                lo += 1
            c = c * base + lo
        codes[i] = c
    by_label = np.empty(n, np.int64)
    h_given = 0.0
    for label in range(n_labels):
        m = 0
        for i in range(n):
            if y[i] == label:
                by_label[m] = codes[i]
                m += 1
        if m:
            h_given += (m / n) * _sorted_entropy(by_label[:m])
    return _sorted_entropy(codes), h_given


@kernel
def per_sample_moments(params, x, y, layers, activation, r0, r1, grad_mean, grad_std,
                       idx, acts, pre, delta, delta_prev, vectors):
    """Per layer: ‖mean_i g_i‖ and sqrt(tr Cov_i g_i) of single-sample weight gradients over all rows.

    Replicas [r0, r1); outputs (R, L). The population covariance over the n rows. Scratch:
    ``idx = arange(n)``, :func:`gradient_scratch` for batches of one, ``vectors`` (3, n_params).
    """
    n = x.shape[0]
    n_layers = layers.shape[0]
    n_params = params.shape[1]
    g, mean, m2 = vectors[0], vectors[1], vectors[2]
    for r in range(r0, r1):
        p = params[r]
        for q in range(n_params):
            mean[q] = 0.0
            m2[q] = 0.0
        for i in range(n):
            batch_gradient(p, x, y, idx, i, i + 1, layers, activation, acts, pre, delta, delta_prev, g)
            count = i + 1.0
            for q in range(n_params):
                d = g[q] - mean[q]
                mean[q] += d / count
                m2[q] += d * (g[q] - mean[q])
        for l in range(n_layers):
            wo = layers[l, 2]
            size = layers[l, 0] * layers[l, 1]
            gm = 0.0
            gv = 0.0
            for q in range(wo, wo + size):
                gm += mean[q] * mean[q]
                gv += m2[q]
            grad_mean[r, l] = math.sqrt(gm)
            grad_std[r, l] = math.sqrt(gv / n)


def _build_training_flavours() -> Any:
    built: dict[Any, Any] = {}
    return MappingProxyType({(second, draws): specialised(train_epochs, {"_SECOND_BATCH": second,
                                                                         "_STEP_DRAWS": draws}, built)
                             for second in (False, True) for draws in (False, True)})


_TRAINING_FLAVOURS = _build_training_flavours()


def training_kernel(*, second_batch: bool, step_draws: bool) -> Any:
    """The flavour of :func:`train_epochs` a run takes: without the second-batch trace's code when
    none is kept, without per-step row draws under epoch-wise sampling (the same arithmetic)."""
    return _TRAINING_FLAVOURS[bool(second_batch), bool(step_draws)]
