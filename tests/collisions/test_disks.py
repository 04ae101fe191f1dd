"""Event-driven hard disks: exact event order, conservation, no overlaps, Maxwell–Boltzmann."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ib_physics.collisions import HardDisks, random_disks


def _brute_force_events(x, v, radius, mass, box, n_events):
    """Reference: the next event by an O(N^2) search over all pairs and walls, every time."""
    x, v = x.copy(), v.copy()
    t = 0.0
    out = []
    n = len(x)
    iu, ju = np.triu_indices(n, 1)
    while len(out) < n_events:
        d = x[iu] - x[ju]
        dv = v[iu] - v[ju]
        b = np.einsum("ij,ij->i", d, dv)
        vv = np.einsum("ij,ij->i", dv, dv)
        rr = np.einsum("ij,ij->i", d, d) - (radius[iu] + radius[ju]) ** 2
        disc = b * b - vv * rr
        ok = (b < 0) & (disc >= 0)
        tc = np.full(b.size, np.inf)
        tc[ok] = rr[ok] / (-b[ok] + np.sqrt(disc[ok]))
        walls = np.full((n, 4), np.inf)
        for axis in range(2):
            pos, neg = v[:, axis] > 0, v[:, axis] < 0
            walls[pos, 2 * axis + 1] = (box[axis] - radius[pos] - x[pos, axis]) / v[pos, axis]
            walls[neg, 2 * axis] = (radius[neg] - x[neg, axis]) / v[neg, axis]
        k, w = int(np.argmin(tc)), np.unravel_index(np.argmin(walls), walls.shape)
        dt = min(tc[k], walls[w])
        x += v * dt
        t += dt
        if tc[k] <= walls[w]:
            i, j = iu[k], ju[k]
            dx = x[i] - x[j]
            proj = (v[i] - v[j]) @ dx / (dx @ dx)
            v[i] -= 2 * mass[j] / (mass[i] + mass[j]) * proj * dx
            v[j] += 2 * mass[i] / (mass[i] + mass[j]) * proj * dx
            out.append((min(i, j), max(i, j), t))
        else:
            i, face = w
            v[i, face // 2] *= -1
            out.append((i, -1 - face, t))
    return out


def test_event_sequence_matches_a_direct_search_of_all_pairs():
    sys_ = random_disks(n_big=2, n_small=30, radius_big=3.0, radius_small=1.0, mass_big=9.0, area_fraction=0.3,
                        seed=4)
    ref = _brute_force_events(sys_.x, sys_.v, sys_.radius, sys_.mass, sys_.box, 400)
    _, events = sys_.run(1e9, max_events=400, log=400)
    got = [(min(int(i), int(j)) if j >= 0 else int(i), max(int(i), int(j)) if j >= 0 else int(j), t)
           for i, j, t in events]
    assert [e[:2] for e in got] == [e[:2] for e in ref]
    # Hard disks are chaotic: round-off differences between the two bookkeepings grow by orders of
    # magnitude per few dozen collisions, so times agree to 1e-9 only over the first events.
    np.testing.assert_allclose([e[2] for e in got[:150]], [e[2] for e in ref[:150]], rtol=1e-9)
    np.testing.assert_allclose([e[2] for e in got], [e[2] for e in ref], rtol=1e-3)


@pytest.mark.parametrize("periodic", [False, True])
def test_energy_and_momentum_are_conserved_and_disks_never_overlap(periodic):
    sys_ = random_disks(n_big=5, n_small=400, area_fraction=0.3, periodic=periodic, seed=1)
    e0, p0 = sys_.kinetic_energy(), sys_.momentum()
    counts = 0
    for _ in range(5):
        c, _ = sys_.run(1e9, max_events=200_000)
        counts += c.collisions
        assert sys_.overlap() < 1e-9
    assert counts > 900_000  # the issue asks for 1e6 events: collisions plus wall hits
    assert abs(sys_.kinetic_energy() - e0) / e0 < 1e-10
    if periodic:  # walls take momentum; a periodic box keeps it
        np.testing.assert_allclose(sys_.momentum(), p0, atol=1e-10)


def test_velocities_relax_to_maxwell_boltzmann():
    sys_ = random_disks(n_big=0, n_small=900, radius_small=1.0, area_fraction=0.2, seed=2)
    sys_.v[:] = 0.0
    sys_.v[:, 0] = np.where(np.arange(sys_.n) % 2 == 0, 1.0, -1.0)  # far from equilibrium: two beams
    kT = sys_.kinetic_energy() / sys_.n  # 2D: E = N kT
    sys_.run(1e9, max_events=100_000)
    for axis in range(2):
        assert stats.kstest(sys_.v[:, axis] / np.sqrt(kT), "norm").pvalue > 1e-3


def test_bad_states_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        HardDisks(x=[[2.0, 2.0], [2.5, 2.0]], v=np.zeros((2, 2)), radius=[1.0, 1.0], mass=[1.0, 1.0], box=(10, 10))
    with pytest.raises(ValueError, match="inside the box"):
        HardDisks(x=[[0.5, 2.0]], v=np.zeros((1, 2)), radius=[1.0], mass=[1.0], box=(10, 10))
    with pytest.raises(ValueError, match="area_fraction"):
        random_disks(area_fraction=0.8)
