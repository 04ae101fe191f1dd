"""Numba kernels of the training engine: many small fully connected nets at once.

Parameters of replica r live in one flat row ``params[r]``; layer l's weights are
the ``n_in x n_out`` block at ``layers[l, 2]`` (row-major: input k, unit j at
``offset + k * n_out + j``) and its biases the ``n_out`` values at ``layers[l, 3]``.
Kernels loop over a replica range [r0, r1) serially and release the GIL; the
Python side runs disjoint ranges on threads.

Minibatch orders come from the package's counter-based generator
(:mod:`ib_physics.random`): a Fisher–Yates shuffle whose uniforms are Philox words
keyed by the seed, with counter ``(epoch << 20 | i // 2, replica, SHUFFLE_TAG)``, so
a replica's batches depend only on (seed, replica, epoch).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import kernel
from ..random import _to_unit, philox_words

TANH, RELU = 0, 1
SGD, ADAM = 0, 1
#: Philox stream tag of the minibatch shuffles (distinct from the particle engine's tags).
SHUFFLE_TAG = np.uint64(0x20000000)


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
def _forward(p, xi, layers, activation, acts, pre):
    """One sample through the net; acts[0] = input, acts[l + 1] = output of layer l (softmax last)."""
    n_layers = layers.shape[0]
    for k in range(layers[0, 0]):
        acts[0, k] = xi[k]
    for l in range(n_layers):
        n_in, n_out, wo, bo = layers[l, 0], layers[l, 1], layers[l, 2], layers[l, 3]
        for j in range(n_out):
            pre[l, j] = p[bo + j]
        for k in range(n_in):  # row-major weights: the inner loop runs over contiguous memory
            a = acts[l, k]
            row = wo + k * n_out
            for j in range(n_out):
                pre[l, j] += a * p[row + j]
        if l < n_layers - 1:
            for j in range(n_out):
                z = pre[l, j]
                acts[l + 1, j] = math.tanh(z) if activation == TANH else (z if z > 0.0 else 0.0)
        else:
            top = pre[l, 0]
            for j in range(1, n_out):
                if pre[l, j] > top:
                    top = pre[l, j]
            total = 0.0
            for j in range(n_out):
                acts[l + 1, j] = math.exp(pre[l, j] - top)
                total += acts[l + 1, j]
            for j in range(n_out):
                acts[l + 1, j] /= total


@kernel
def batch_gradient(p, x, y, idx, start, stop, layers, activation, acts, pre, delta, delta_prev, g):
    """Mean cross-entropy gradient over samples idx[start:stop] into ``g`` (P,); returns the summed loss."""
    n_layers = layers.shape[0]
    for q in range(g.size):
        g[q] = 0.0
    loss = 0.0
    for s in range(start, stop):
        i = idx[s]
        _forward(p, x[i], layers, activation, acts, pre)
        n_top = layers[n_layers - 1, 1]
        loss -= math.log(max(acts[n_layers, y[i]], 1e-300))
        for j in range(n_top):
            delta[j] = acts[n_layers, j] - (1.0 if j == y[i] else 0.0)
        for l in range(n_layers - 1, -1, -1):
            n_in, n_out, wo, bo = layers[l, 0], layers[l, 1], layers[l, 2], layers[l, 3]
            for j in range(n_out):
                g[bo + j] += delta[j]
            for k in range(n_in):
                a = acts[l, k]
                back = 0.0
                for j in range(n_out):
                    g[wo + k * n_out + j] += a * delta[j]
                    back += p[wo + k * n_out + j] * delta[j]
                if l > 0:
                    if activation == TANH:
                        delta_prev[k] = back * (1.0 - a * a)
                    else:
                        delta_prev[k] = back if pre[l - 1, k] > 0.0 else 0.0
            if l > 0:
                for k in range(n_in):
                    delta[k] = delta_prev[k]
    inv = 1.0 / (stop - start)
    for q in range(g.size):
        g[q] *= inv
    return loss


@kernel
def train_epochs(params, adam_m, adam_v, steps, x, y, layers, activation, optimizer, lr, beta1, beta2, eps,
                 batch_size, fixed_batches, k0, k1, epoch0, n_epochs, r0, r1, replica_offset,
                 grad_mean, grad_std, update_mean, update_std, weight_norm, epoch_loss):
    """Train replicas [r0, r1) for epochs epoch0 .. epoch0 + n_epochs - 1, in place.

    Row r is replica ``r + replica_offset`` of a study: that global index keys its shuffles.

    Per replica, epoch (relative to epoch0) and layer it writes: the Frobenius norm of
    the mean weight gradient over the epoch's minibatches, the square root of the
    summed variance over minibatches (population), the same for the weight updates,
    the weight norm at the epoch's end; and the mean training loss seen during the epoch.
    """
    n = x.shape[0]
    n_layers = layers.shape[0]
    n_params = params.shape[1]
    width = 1
    for l in range(n_layers):
        width = max(width, layers[l, 0], layers[l, 1])
    acts = np.zeros((n_layers + 1, width))
    pre = np.zeros((n_layers, width))
    delta = np.zeros(width)
    delta_prev = np.zeros(width)
    g = np.zeros(n_params)
    g_mean = np.zeros(n_params)
    g_m2 = np.zeros(n_params)
    u_mean = np.zeros(n_params)
    u_m2 = np.zeros(n_params)
    order = np.zeros(n, np.int64)
    n_batches = (n + batch_size - 1) // batch_size
    for r in range(r0, r1):
        p = params[r]
        for e in range(n_epochs):
            epoch = epoch0 + e
            shuffle_order(order, 0 if fixed_batches else epoch, r + replica_offset, k0, k1)
            for q in range(n_params):
                g_mean[q] = 0.0
                g_m2[q] = 0.0
                u_mean[q] = 0.0
                u_m2[q] = 0.0
            loss = 0.0
            for b in range(n_batches):
                start = b * batch_size
                stop = min(n, start + batch_size)
                loss += batch_gradient(p, x, y, order, start, stop, layers, activation, acts, pre, delta,
                                       delta_prev, g)
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
                    # Welford over the epoch's minibatches: gradients and updates.
                    dg = gq - g_mean[q]
                    g_mean[q] += dg / count
                    g_m2[q] += dg * (gq - g_mean[q])
                    dd = du - u_mean[q]
                    u_mean[q] += dd / count
                    u_m2[q] += dd * (du - u_mean[q])
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
def forward_all(params, x, layers, activation, r0, r1, outputs, pre_outputs):
    """Every layer's output (and pre-activation) for every input row, replicas [r0, r1).

    ``outputs`` and ``pre_outputs`` have shape (R, n, total units); layer l fills the
    columns from the sum of the earlier layers' widths.
    """
    n_layers = layers.shape[0]
    width = 1
    for l in range(n_layers):
        width = max(width, layers[l, 0], layers[l, 1])
    acts = np.zeros((n_layers + 1, width))
    pre = np.zeros((n_layers, width))
    for r in range(r0, r1):
        p = params[r]
        for i in range(x.shape[0]):
            _forward(p, x[i], layers, activation, acts, pre)
            col = 0
            for l in range(n_layers):
                for j in range(layers[l, 1]):
                    outputs[r, i, col + j] = acts[l + 1, j]
                    pre_outputs[r, i, col + j] = pre[l, j]
                col += layers[l, 1]


@kernel
def kde_pairwise_bound(h, scale):
    """-(1/n) Σ_i log((1/n) Σ_j exp(-‖h_i - h_j‖² / scale)) for rows of h (n, d), in nats.

    With scale = 2σ² this is the Kolchinsky–Tracey upper bound on I(X; T) for
    T = h(X) + N(0, σ² I); with scale = 8σ² the Bhattacharyya lower bound.
    """
    n, d = h.shape
    total = 0.0
    row = np.empty(n)
    for i in range(n):
        top = -np.inf
        for j in range(n):
            s = 0.0
            for k in range(d):
                diff = h[i, k] - h[j, k]
                s += diff * diff
            row[j] = -s / scale
            if row[j] > top:
                top = row[j]
        acc = 0.0
        for j in range(n):
            acc += math.exp(row[j] - top)
        total += top + math.log(acc / n)
    return -total / n
