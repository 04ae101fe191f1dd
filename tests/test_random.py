"""The counter-based generator: known answers, distribution, independence of layout."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ib_physics.random import philox4x32_10, philox_key, standard_normals

# Random123's published known-answer vectors for Philox4x32-10 (Salmon et al. 2011).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    out = philox4x32_10(np.array(ctr, dtype=np.uint64), np.array(key, dtype=np.uint64))
    assert tuple(int(v) for v in out) == expected


def test_normals_follow_the_standard_normal_law():
    z = standard_normals(11, particles=50, draws=40_000).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    # The ziggurat's tail (|z| > r = 3.654) and wedges must carry the right mass.
    for cut in (1.0, 2.5, 3.654, 4.0):
        expected = 2 * stats.norm.sf(cut)
        observed = np.mean(np.abs(z) > cut)
        assert abs(observed - expected) < 5 * np.sqrt(expected * (1 - expected) / n) + 1e-7


def test_streams_are_pure_functions_of_particle_and_draw():
    full = standard_normals(5, particles=20, draws=64)
    part = standard_normals(5, particles=(7, 13), draws=(10, 50))
    np.testing.assert_array_equal(part, full[7:13, 10:50])


def test_particles_and_seeds_are_uncorrelated():
    z = standard_normals(3, particles=2000, draws=200)
    corr = np.corrcoef(z[:, :2].T)[0, 1]
    assert abs(corr) < 4 / np.sqrt(2000)
    lag = np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1]
    assert abs(lag) < 4 / np.sqrt(z.size)
    other = standard_normals(4, particles=2000, draws=200)
    assert abs(np.corrcoef(z.ravel(), other.ravel())[0, 1]) < 4 / np.sqrt(z.size)


def test_seed_handling():
    seq, a0, a1 = philox_key(123)
    _, b0, b1 = philox_key(np.random.SeedSequence(123))
    assert (a0, a1) == (b0, b1)
    assert seq.entropy == 123
    with pytest.raises(ValueError, match="seed"):
        philox_key(-1)
    with pytest.raises(TypeError, match="seed"):
        philox_key("abc")  # type: ignore[arg-type]
