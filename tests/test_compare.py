"""compare: known distances on synthetic samples, and the two engines on one Dynamics."""

from __future__ import annotations

import numpy as np
from scipy import stats
import pytest

import ib_physics as ib
from ib_physics.compare import compare, compare_sample, convergence_in_n
from ib_physics.potentials import Harmonic

GRID = ib.Grid(ib.Box(-5.0, 5.0), 100)
P = ib.gaussian_density(GRID, 0.0, 1.0)


def test_exact_samples_sit_at_the_sampling_floor():
    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(20):
        res = compare_sample(rng.normal(size=(20_000, 1)), GRID, P)
        ratios.append(res.l1 / res.l1_floor)
        assert res.wasserstein[0] < 0.03
    # The floor is the expected distance: the mean ratio is close to 1.
    assert 0.85 < np.mean(ratios) < 1.15
    assert res.ks_pvalue[0] > 1e-4 and abs(res.mean_particles[0]) < 5 * res.mean_standard_error[0]


def test_a_shifted_law_is_far_and_its_wasserstein_distance_is_the_shift():
    rng = np.random.default_rng(1)
    res = compare_sample(rng.normal(0.5, 1.0, size=(50_000, 1)), GRID, P)
    assert res.l1 > 10 * res.l1_floor
    assert res.ks_pvalue[0] < 1e-10
    assert abs(res.wasserstein[0] - 0.5) < 0.02
    assert abs(res.mean_particles[0] - res.mean_density[0] - 0.5) < 0.02


def test_sampling_distance_converges_at_minus_one_half():
    rng = np.random.default_rng(2)
    sizes = [1000, 4000, 16000, 64000]
    l1 = [np.mean([compare_sample(rng.normal(size=(n, 1)), GRID, P).l1 for _ in range(5)]) for n in sizes]
    slope = np.polyfit(np.log(sizes), np.log(l1), 1)[0]
    assert abs(slope + 0.5) < 0.1


def test_glass_samples_are_binned_in_rings():
    grid = ib.Grid(ib.Cylinder(1.0, 2.0), (20, 40))
    p = np.full(grid.shape, 1 / (2 * np.pi))
    rng = np.random.default_rng(3)
    n = 100_000
    r, phi = np.sqrt(rng.random(n)), rng.random(n) * 2 * np.pi
    pts = np.column_stack([r * np.cos(phi), r * np.sin(phi), 2 * rng.random(n)])
    res = compare_sample(pts, grid, p)
    assert res.l1 < 1.3 * res.l1_floor
    # KS on r must weigh each ring by its volume inside the cell too (CDF linear in r²).
    assert np.all(res.ks_pvalue > 1e-3), res.ks_pvalue
    coarse = ib.Grid(ib.Cylinder(1.0, 2.0), (3, 4))
    assert compare_sample(pts, coarse, np.full(coarse.shape, 1 / (2 * np.pi))).ks_pvalue[0] > 1e-3
    with pytest.raises(ValueError, match="positions"):
        compare_sample(pts[:, :2], grid, p)


def test_particles_and_density_of_one_dynamics_agree_to_sampling_noise():
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=0.5)
    box = ib.Box(-5.0, 5.0)
    grid = ib.Grid(box, 200)
    rng = np.random.default_rng(4)
    t_eval = [0.5, 1.0]
    density = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, 1.5, 0.3), (0.0, 1.0), t_eval=t_eval,
                                     tol=1e-10)

    def run(n: int):
        return ib.simulate(dyn, rng.normal(1.5, 0.3, size=(n, 1)), (0.0, 1.0), dt=1e-3, seed=n, domain=box,
                           t_eval=t_eval)

    cmp = compare(run(50_000), density)
    np.testing.assert_allclose(cmp.t, t_eval)
    assert np.all(cmp.ratio_to_floor < 1.5)
    assert np.all(np.abs(cmp.mean_particles - cmp.mean_density) < 4 * cmp.mean_standard_error)
    sizes, l1, slope = convergence_in_n(run, density, [2000, 8000, 32000])
    assert abs(slope + 0.5) < 0.2


def test_glass_particles_in_3d_agree_with_the_axisymmetric_density():
    """The dye set-up in miniature: a drop sinking and spreading in a glass with an open top."""
    glass = ib.Cylinder(radius=1.0, height=2.0, top="absorbing")
    dyn = ib.Dynamics(potential=ib.potentials.ConstantForce([0.0, 0.0, -0.5]), diffusion=0.2)
    grid = ib.Grid(glass, (40, 80))
    rng = np.random.default_rng(5)
    n = 60_000
    s_r, s_z, z0 = 0.15, 0.15, 1.5
    start = np.column_stack([rng.normal(0, s_r, n), rng.normal(0, s_r, n), rng.normal(z0, s_z, n)])
    inside = glass.contains(start)
    start = start[inside]
    p0 = ib.gaussian_density(grid, [0.0, 0.0, z0], [s_r, s_z])
    t_eval = [0.5, 1.5]
    density = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 1.5), t_eval=t_eval, tol=1e-9)
    parts = ib.simulate(dyn, start, (0.0, 1.5), dt=1e-3, seed=6, domain=glass, t_eval=t_eval)
    cmp = compare(parts, density)
    assert np.all(cmp.ratio_to_floor < 1.6), cmp.ratio_to_floor
    # Both views lose the same probability through the open top.
    np.testing.assert_allclose(parts.survival, density.survival, atol=4 * np.sqrt(0.25 / start.shape[0]))
    np.testing.assert_allclose(cmp.mean_particles[:, 1], cmp.mean_density[:, 1],
                               atol=float(4 * cmp.mean_standard_error[:, 1].max()) + 2e-3)


def test_ks_uses_a_smooth_marginal_cdf_within_cells():
    """A barometric law across coarse cells: a CDF linear within cells would be rejected by KS."""
    ell, height, n = 9.9, 100.0, 200_000
    grid = ib.Grid(ib.Box(0.0, height), 40)
    e = grid.edges[0]
    cdf = (1 - np.exp(-e / ell)) / (1 - np.exp(-height / ell))
    p = np.diff(cdf) / np.diff(e)
    rng = np.random.default_rng(11)
    z = -ell * np.log(1 - rng.random(n) * (1 - np.exp(-height / ell)))
    res = compare_sample(z[:, None], grid, p)
    assert res.ks_pvalue[0] > 1e-3
    assert res.l1 < 1.3 * res.l1_floor
    linear = stats.kstest(z, lambda v: np.interp(v, e, cdf)).pvalue
    assert linear < 1e-3  # what the previous, uniform-within-cell CDF gave
