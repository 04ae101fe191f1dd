"""Counter-based random numbers shared by every kernel of ib_physics.

The scheme
----------
Every random number is a pure function of ``(key, particle, draw index)``:

* ``key`` is two 32-bit words derived from the user's ``seed`` through
  :class:`numpy.random.SeedSequence` (:func:`philox_key`).
* The bit source is Philox4x32-10 (Salmon, Moraes, Dror & Shaw, SC'11), a
  bijection of a 128-bit counter under a 64-bit key that passes BigCrush.
  Counter words are ``(c0, c1, c2, c3) = (block_lo, block_hi, particle, tag)``.
* Stream ``tag = 0`` is the main stream of particle ``i``: block ``b`` gives the
  64-bit words ``2b`` and ``2b + 1``. The ``n``-th standard normal of particle
  ``i`` starts from main word ``n`` through a 256-layer ziggurat (Marsaglia &
  Tsang 2000, 64-bit variant: 8 bits choose the layer, 1 bit the sign, 53 bits
  the abscissa).
* The rare ziggurat rejections (about 1 %) draw from a side stream
  ``tag = 0x80000000 | attempt`` with counter block ``n``, so a rejection never
  shifts the draws that follow it.
* Uniforms for Brownian-bridge tests at absorbing walls come from the side stream
  ``tag = 0x40000000`` with counter block = step index.

Consequently particle ``i``'s path depends only on ``(seed, i)``: results are
bitwise identical for any thread count, chunking, time splitting or worker
layout. Particle indices must be below ``2**32``.
"""

from __future__ import annotations

import numpy as np
from ._jit import inline_kernel, inner_kernel, kernel

__all__ = [
    "MAX_PARTICLES",
    "philox_key",
    "philox4x32_10",
    "standard_normals",
    "seed_entropy",
]

#: Particle indices occupy one 32-bit counter word.
MAX_PARTICLES = 2**32

_MASK32 = np.uint64(0xFFFFFFFF)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_SHIFT32 = np.uint64(32)
_TAG_REJECTION = np.uint64(0x80000000)
_TAG_BRIDGE = np.uint64(0x40000000)


def _ziggurat_tables(layers: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer edges of the 256-layer normal ziggurat (Marsaglia & Tsang 2000).

    Returns ``(k, w, f)``: integer acceptance thresholds on the 53-bit abscissa,
    widths scaled by ``2**-53`` and the density ``exp(-x**2/2)`` at each edge.
    """
    r = 3.6541528853610088  # right edge of the base strip for 256 layers
    v = 0.00492867323399  # area of every layer
    f_of = lambda x: np.exp(-0.5 * x * x)  # noqa: E731
    edges = np.zeros(layers + 1)
    edges[0] = v / f_of(r)  # pseudo-width of the base strip (rectangle + tail)
    edges[1] = r
    for i in range(1, layers - 1):
        edges[i + 1] = np.sqrt(-2.0 * np.log(f_of(edges[i]) + v / edges[i]))
    edges[layers] = 0.0
    scale = 2.0**53
    k = np.floor(edges[1:] / edges[:-1] * scale).astype(np.uint64)
    w = edges[:-1] / scale
    f = f_of(edges)
    for a in (k, w, f):
        a.flags.writeable = False
    return k, w, f


_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat_tables()
_ZIG_R = 3.6541528853610088


def philox_key(seed: int | np.random.SeedSequence | None) -> tuple[np.random.SeedSequence, int, int]:
    """Derive the Philox key from a seed.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence or None
        ``None`` draws fresh entropy from the operating system; the entropy is
        kept in the returned sequence so that the run can be repeated.

    Returns
    -------
    sequence : numpy.random.SeedSequence
    key0, key1 : int
        The two 32-bit key words.
    """
    if isinstance(seed, np.random.SeedSequence):
        sequence = seed
    elif seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed is not None and int(seed) < 0:
            raise ValueError(f"`seed` must be a non-negative integer, got {seed}.")
        sequence = np.random.SeedSequence(None if seed is None else int(seed))
    else:
        raise TypeError(
            f"`seed` must be None, a non-negative int or a numpy.random.SeedSequence, "
            f"got {type(seed).__name__}."
        )
    words = sequence.generate_state(2, np.uint32)
    return sequence, int(words[0]), int(words[1])


def seed_entropy(sequence: np.random.SeedSequence) -> str:
    """The entropy and spawn key of a seed sequence, as a string that rebuilds it."""
    return repr({"entropy": sequence.entropy, "spawn_key": list(sequence.spawn_key)})


@inline_kernel
def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 values holding 32-bit words."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0 = ((p1 >> _SHIFT32) ^ c1 ^ k0) & _MASK32
        c1 = p1 & _MASK32
        c2 = ((p0 >> _SHIFT32) ^ c3 ^ k1) & _MASK32
        c3 = p0 & _MASK32
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@inline_kernel
def philox_words(block, particle, tag, k0, k1):
    """Two 64-bit words from one Philox block (uint64 inputs)."""
    c0, c1, c2, c3 = _philox(block & _MASK32, block >> _SHIFT32, particle, tag, k0, k1)
    return (c0 << _SHIFT32) | c1, (c2 << _SHIFT32) | c3


@inner_kernel
def philox_pair(block, particle, tag, k0, k1):
    """:func:`philox_words` as a regular (not inlined) kernel, for the cold call sites (the
    ziggurat's slow path, the bridge test): compiled once and shared, where every inlined copy of
    the ten rounds is typed and lowered again (a few tenths of a second of a first call each)."""
    return philox_words(block, particle, tag, k0, k1)


@kernel
def philox4x32_10(ctr: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Reference entry point: Philox4x32-10 of one counter, shape (4,) -> (4,)."""
    c0, c1, c2, c3 = _philox(
        np.uint64(ctr[0]), np.uint64(ctr[1]), np.uint64(ctr[2]), np.uint64(ctr[3]),
        np.uint64(key[0]), np.uint64(key[1]),
    )
    out = np.empty(4, np.uint64)
    out[0] = c0
    out[1] = c1
    out[2] = c2
    out[3] = c3
    return out


@inline_kernel
def _to_unit(word):
    """53-bit uniform in the open interval (0, 1)."""
    return ((word >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@inner_kernel
def _normal_slow(word, draw, particle, k0, k1):
    """Ziggurat outside the fast rectangles: wedge, tail and retries.

    ``word`` is the first-attempt word, already known to miss its rectangle.
    Further words come from the rejection side stream of ``draw``.
    """
    # One Philox call site (each inlined copy of the ten rounds costs compile time): the tail's
    # retries loop back to it with ``tail`` set, drawing the same words in the same order.
    attempt = np.uint64(0)
    tail = False
    layer = np.uint64(0)
    negative = np.uint64(0)
    x = 0.0
    while True:
        if not tail:
            layer = word & np.uint64(0xFF)
            negative = (word >> np.uint64(8)) & np.uint64(1)
            j = word >> np.uint64(11)
            x = j * _ZIG_W[layer]
            if j < _ZIG_K[layer]:
                return -x if negative else x
        # Two uniforms per retry, then (wedge) a fresh candidate word.
        u_a, u_b = philox_pair(draw, particle, _TAG_REJECTION | attempt, k0, k1)
        attempt += np.uint64(1)
        if layer == 0:
            # Tail beyond r (Marsaglia 1964): exact exponential rejection.
            tail = True
            xt = -np.log(_to_unit(u_a)) / _ZIG_R
            yt = -np.log(_to_unit(u_b))
            if yt + yt >= xt * xt:
                value = _ZIG_R + xt
                return -value if negative else value
            continue
        y = _ZIG_F[layer] + _to_unit(u_a) * (_ZIG_F[layer + 1] - _ZIG_F[layer])
        if y < np.exp(-0.5 * x * x):
            return -x if negative else x
        word = u_b
    return 0.0  # unreachable


@inline_kernel
def normal_from_word(word, draw, particle, k0, k1):
    """The standard normal number ``draw`` of ``particle`` given its main word."""
    layer = word & np.uint64(0xFF)
    j = word >> np.uint64(11)
    if j < _ZIG_K[layer]:
        x = j * _ZIG_W[layer]
        if (word >> np.uint64(8)) & np.uint64(1):
            return -x
        return x
    return _normal_slow(word, draw, particle, k0, k1)


@inline_kernel
def bridge_uniform(step, particle, k0, k1):
    """Uniform in (0, 1) for the Brownian-bridge test of one step of one particle."""
    u_a, _ = philox_pair(step, particle, _TAG_BRIDGE, k0, k1)
    return _to_unit(u_a)


@kernel
def _standard_normals_kernel(k0, k1, first_particle, first_draw, out):
    n_particles, n_draws = out.shape
    for p in range(n_particles):
        particle = np.uint64(first_particle + p)
        for n in range(n_draws):
            draw = np.uint64(first_draw + n)
            u_a, u_b = philox_words(draw >> np.uint64(1), particle, np.uint64(0), k0, k1)
            word = u_b if draw & np.uint64(1) else u_a
            out[p, n] = normal_from_word(word, draw, particle, k0, k1)


def standard_normals(
    seed: int | np.random.SeedSequence | None,
    *,
    particles: int | tuple[int, int] = 1,
    draws: int | tuple[int, int] = 1,
) -> np.ndarray:
    """The standard normal numbers that the kernels use, for inspection and tests.

    Parameters
    ----------
    seed : int, SeedSequence or None
        As for :func:`ib_physics.simulate`.
    particles : int or (start, stop)
        Particle indices: ``range(particles)`` or ``range(start, stop)``.
    draws : int or (start, stop)
        Draw indices within each particle's main stream.

    Returns
    -------
    numpy.ndarray, shape (n_particles, n_draws)
        ``out[p, n]`` is draw ``n`` of particle ``p``.
    """
    _, k0, k1 = philox_key(seed)
    (p0, p1), (d0, d1) = (_as_range(particles, "particles"), _as_range(draws, "draws"))
    if p1 > MAX_PARTICLES:
        raise ValueError(f"`particles` must stay below 2**32, got stop={p1}.")
    # Allocated here: an allocation inside the kernel would compile NumPy's code for it.
    out = np.empty((p1 - p0, d1 - d0))
    _standard_normals_kernel(np.uint64(k0), np.uint64(k1), p0, d0, out)
    return out


def _as_range(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        start, stop = 0, int(value)
    else:
        try:
            start, stop = (int(v) for v in value)
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be an int or a (start, stop) pair.") from None
    if not 0 <= start <= stop:
        raise ValueError(f"`{name}` must satisfy 0 <= start <= stop, got ({start}, {stop}).")
    return start, stop



@kernel
def fill_lane_normals(words, normals, block0, n_words, lane_particles, lanes, k0, k1):
    """Normals ``2 * block0 + r`` (r < ``n_words``) of particles ``lane_particles[g]`` (g < ``lanes``).

    Written to ``normals[r, g]``; ``words`` (n_words, >= lanes) is scratch and ``lane_particles``
    (uint64) names the global particle of each lane. The Philox
    blocks and the ziggurat's fast path run as loops over lanes that LLVM vectorises;
    the rare misses of the fast path are redone afterwards by :func:`_normal_slow`.
    Bitwise the same numbers as :func:`normal_from_word` on the same words. A regular
    (not inlined) kernel: one call fills two steps of the given lanes, so the call costs
    nothing measurable, and the engines' kernels compile in seconds.
    """
    for j in range(n_words // 2):
        for g in range(lanes):
            w0, w1 = philox_words(block0 + np.uint64(j), lane_particles[g], np.uint64(0), k0, k1)
            words[2 * j, g] = w0
            words[2 * j + 1, g] = w1
    misses = 0
    for r in range(n_words):
        for g in range(lanes):
            w = words[r, g]
            layer = w & np.uint64(0xFF)
            j = np.int64(w >> np.uint64(11))
            sign = 1.0 - 2.0 * np.float64((w >> np.uint64(8)) & np.uint64(1))
            normals[r, g] = sign * (j * _ZIG_W[layer])
            misses += j >= np.int64(_ZIG_K[layer])
    if misses:
        for r in range(n_words):
            for g in range(lanes):
                w = words[r, g]
                if np.int64(w >> np.uint64(11)) >= np.int64(_ZIG_K[w & np.uint64(0xFF)]):
                    normals[r, g] = _normal_slow(w, block0 * np.uint64(2) + np.uint64(r), lane_particles[g],
                                                 k0, k1)


@kernel
def normals_checksum(k0, k1, n_particles, n_draws, lanes):
    """Generate ``n_particles * n_draws`` normals the way the engine does and sum them.

    The generator's own throughput (benchmarks): lanes of particles share the
    vectorised Philox blocks and ziggurat, exactly like the particle kernels, with
    no SDE step. ``n_draws`` must be a multiple of 6.
    """
    words = np.empty((6, lanes), dtype=np.uint64)
    normals = np.empty((6, lanes))
    sums = np.zeros(lanes)  # one accumulator per lane, so the sum is no serial dependency chain
    lane_particles = np.empty(lanes, dtype=np.uint64)
    for p0 in range(0, n_particles, lanes):
        for g in range(lanes):
            lane_particles[g] = p0 + g
        for block in range(0, n_draws // 2, 3):
            fill_lane_normals(words, normals, np.uint64(block), 6, lane_particles, lanes, k0, k1)
            for r in range(6):
                for g in range(lanes):
                    sums[g] += normals[r, g]
    return sums.sum()
