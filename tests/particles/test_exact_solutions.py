"""The particle engine against exact solutions (PHYSICS.md §1, §2; issue: particle engine)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import ib_physics as ib
from ib_physics.potentials import ConstantForce, DoubleWell, Harmonic


def _within(value, exact, sigma, k=4.0):
    assert abs(value - exact) < k * sigma, f"{value} vs exact {exact} (sigma {sigma})"


def test_ornstein_uhlenbeck_1d_mean_and_variance():
    n, k, d_coef, x0 = 1_000_000, 1.0, 1.0, 1.0
    res = ib.simulate(ib.Dynamics(potential=Harmonic(k), diffusion=d_coef), x0, (0.0, 1.0), dt=2e-3,
                      n_particles=n, seed=1, store_positions=False, t_eval=[0.0, 0.5, 1.0])
    for t, mean, var in zip(res.t, res.mean[:, 0], res.variance[:, 0]):
        exact_var = d_coef / k * (1 - np.exp(-2 * k * t))
        _within(mean, x0 * np.exp(-k * t), np.sqrt(max(exact_var, 1e-12) / n))
        if t > 0:
            _within(var, exact_var, exact_var * np.sqrt(2 / n))


def test_ornstein_uhlenbeck_3d_with_gravity_problem_s1():
    """BENCHMARKS.md S1: harmonic trap plus gravity, exact Gaussian at T = 1 (SRA1, weak order 2)."""
    n = 1_000_000
    dyn = ib.Dynamics(potential=Harmonic(1.0) + ConstantForce([0.0, 0.0, -1.0]), diffusion=1.0)
    res = ib.simulate(dyn, [1.0, -0.5, 2.0], (0.0, 1.0), dt=0.02, n_particles=n, seed=2,
                      scheme="sra1", store_positions=False)
    e = np.exp(-1.0)
    exact_mean = [e, -0.5 * e, 2 * e - (1 - e)]
    exact_var = 1 - np.exp(-2.0)
    for ax in range(3):
        _within(res.mean[-1, ax], exact_mean[ax], np.sqrt(exact_var / n))
        _within(res.variance[-1, ax], exact_var, exact_var * np.sqrt(2 / n))
    # Axes are independent: off-diagonal covariances vanish.
    off = res.covariance[-1][~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) < 4 * exact_var / np.sqrt(n))


def _reflected_cdf(x, x0, t, length, d_coef, terms=200):
    n = np.arange(1, terms + 1)[:, None]
    k = n * np.pi / length
    return x / length + np.sum(2 / (n * np.pi) * np.cos(k * x0) * np.sin(k * x) * np.exp(-(k**2) * d_coef * t), axis=0)


def test_free_diffusion_between_reflecting_walls_matches_image_series():
    length, x0, d_coef = 1.0, 0.3, 0.7
    t_eval = [0.02, 0.1, 0.4]
    res = ib.simulate(ib.Dynamics(diffusion=d_coef), x0, (0.0, 0.4), dt=2e-3, n_particles=40_000, seed=3,
                      domain=ib.Box(0.0, length), t_eval=t_eval)
    assert np.all((res.positions >= 0) & (res.positions <= length))
    assert res.survival[-1] == 1.0
    for k, t in enumerate(t_eval):
        sample = res.positions[k, :, 0]
        p = stats.kstest(sample, lambda x, t=t: _reflected_cdf(np.atleast_1d(x), x0, t, length, d_coef)).pvalue
        assert p > 1e-3, f"KS p={p} at t={t}"


def _survival_series(x0, t, length, d_coef, terms=400):
    n = np.arange(1, terms + 1)[:, None]
    k = n * np.pi / length
    coeff = 2 / (n * np.pi) * (1 - (-1.0) ** n) * np.sin(k * x0)
    return np.sum(coeff * np.exp(-(k**2) * d_coef * np.asarray(t)[None, :]), axis=0)


def test_absorbing_interval_survival_and_mean_first_passage_time():
    length, d_coef = 1.0, 0.5
    starts = np.repeat([0.2, 0.5, 0.8], 20_000)[:, None]
    t_eval = np.array([0.02, 0.05, 0.1, 0.2, 0.4, 3.0])
    res = ib.simulate(ib.Dynamics(diffusion=d_coef), starts, (0.0, 3.0), dt=5e-4, seed=4,
                      domain=ib.Box(0.0, length, boundaries="absorbing"), t_eval=t_eval, store_positions=False)
    n = starts.shape[0]
    fpt = res.first_passage_time
    exact_s = np.mean([_survival_series(x, t_eval, length, d_coef) for x in (0.2, 0.5, 0.8)], axis=0)
    for s, e in zip(res.survival, exact_s):
        _within(s, e, np.sqrt(max(e * (1 - e), 1e-4) / n) + 2e-3)
    assert res.survival[-1] < 1e-3
    for k, x0 in enumerate((0.2, 0.5, 0.8)):
        block = fpt[k * 20_000:(k + 1) * 20_000]
        block = block[np.isfinite(block)]
        exact = x0 * (length - x0) / (2 * d_coef)
        _within(block.mean(), exact, block.std() / np.sqrt(block.size) + 0.005 * exact)
    # Symmetry: from the centre, both faces are hit equally often.
    faces = res.exit_face[20_000:40_000]
    frac = np.mean(faces == 1)
    _within(frac, 0.5, np.sqrt(0.25 / 20_000))
    assert set(np.unique(res.exit_face)) <= {0, 1}


def test_periodic_box_mean_squared_displacement():
    d_coef = 0.3
    res = ib.simulate(ib.Dynamics(diffusion=d_coef), [0.2, 0.7, 0.5], (0.0, 2.0), dt=0.01,
                      n_particles=50_000, seed=5, domain=ib.Box([0, 0, 0], [1, 1, 1], boundaries="periodic"),
                      t_eval=[0.5, 1.0, 2.0])
    assert np.all((res.positions >= 0) & (res.positions <= 1))
    for t, msd in zip(res.t, res.msd):
        exact = 2 * 3 * d_coef * t
        _within(msd, exact, np.sqrt(2 * 3) * 2 * d_coef * t / np.sqrt(50_000))
    # Unwrapped positions are continuous paths: they differ from wrapped by whole periods.
    shift = res.unwrapped_positions - res.positions
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-9)
    assert np.max(np.abs(shift)) >= 1


def test_double_well_stationary_histogram_is_boltzmann():
    barrier, d_coef = 1.0, 0.5
    pot = DoubleWell(barrier, 1.0)
    grid = np.linspace(-3.0, 3.0, 6001)
    weight = np.exp(-pot.value(grid[:, None]) / d_coef)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (weight[1:] + weight[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    rng = np.random.default_rng(0)
    n = 50_000
    start = np.interp(rng.random(n), cdf, grid)[:, None]  # equilibrium sample
    res = ib.simulate(ib.Dynamics(potential=pot, diffusion=d_coef), start, (0.0, 4.0), dt=2e-3, seed=6,
                      store_positions=True)
    final = res.positions[-1, :, 0]
    assert stats.kstest(final, lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3
    # The same run started in one well relaxes to the same law (checks the drift's sign and size).
    res_left = ib.simulate(ib.Dynamics(potential=pot, diffusion=d_coef), -1.0, (0.0, 40.0), dt=5e-3,
                           n_particles=10_000, seed=7)
    assert stats.kstest(res_left.positions[-1, :, 0], lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_glass_keeps_particles_inside_and_fills_it_uniformly():
    glass = ib.Cylinder(radius=1.0, height=2.0)
    res = ib.simulate(ib.Dynamics(diffusion=1.0), [0.0, 0.0, 1.8], (0.0, 6.0), dt=0.01, n_particles=20_000,
                      seed=8, domain=glass, t_eval=[1.0, 6.0])
    p = res.positions[-1]
    r2 = p[:, 0] ** 2 + p[:, 1] ** 2
    assert np.all(r2 <= 1.0 + 1e-12) and np.all((p[:, 2] >= 0) & (p[:, 2] <= 2.0))
    # Uniform in the volume: r^2 / R^2 and z / H are uniform on [0, 1].
    assert stats.kstest(r2, "uniform").pvalue > 1e-3
    assert stats.kstest(p[:, 2] / 2.0, "uniform").pvalue > 1e-3


def test_glass_with_open_top_absorbs_only_through_the_top():
    glass = ib.Cylinder(radius=0.5, height=1.0, top="absorbing")
    res = ib.simulate(ib.Dynamics(diffusion=1.0), [0.0, 0.0, 0.5], (0.0, 1.0), dt=1e-3, n_particles=20_000,
                      seed=9, domain=glass, store_positions=False)
    gone = ~res.alive
    assert gone.any()
    assert np.all(res.exit_face[gone] == 2)
    # Radial motion does not matter for the z marginal: survival equals the 1D
    # interval with a reflecting bottom and absorbing top (image of [0, 2H] absorbing).
    exact = _survival_series(1.5, [1.0], 2.0, 1.0)[0]
    _within(res.survival[-1], exact, np.sqrt(exact * (1 - exact) / 20_000) + 2e-3)


@pytest.mark.parametrize("convention,expected_exponent", [("ito", -1.0), ("isothermal", 0.0)])
def test_space_dependent_diffusion_stationary_density_follows_the_convention(convention, expected_exponent):
    """Zero flux between reflecting walls: Itô gives p ∝ 1/D(x), isothermal p = const (PHYSICS.md §1)."""
    field = ib.DiffusionField.from_function(lambda x: 0.3 + 0.2 * x, 0.0, 1.0, nodes=201)
    dyn = ib.Dynamics(diffusion=field, convention=convention)
    res = ib.simulate(dyn, np.linspace(0.01, 0.99, 20_000)[:, None], (0.0, 6.0), dt=1e-3, seed=10,
                      domain=ib.Box(0.0, 1.0), scheme="milstein", store_positions=True, t_eval=[6.0])
    grid = np.linspace(0, 1, 2001)
    weight = (0.3 + 0.2 * grid) ** expected_exponent
    cdf = np.concatenate([[0], np.cumsum(0.5 * (weight[1:] + weight[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    assert stats.kstest(res.positions[-1, :, 0], lambda x: np.interp(x, grid, cdf)).pvalue > 1e-3


def test_switched_stiffness_schedule_matches_exact_gaussian_moments():
    """Stiffness 1 until t = 0.5, then 4: the variance relaxes piecewise exactly."""
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=1.0, potential_scale=ib.Schedule([0.5], [1.0, 4.0]))
    n = 400_000
    res = ib.simulate(dyn, 2.0, (0.0, 1.0), dt=1e-3, n_particles=n, seed=11, store_positions=False,
                      t_eval=[0.5, 1.0])
    m1 = 2.0 * np.exp(-0.5)
    v1 = 1 - np.exp(-1.0)
    m2 = m1 * np.exp(-4 * 0.5)
    v2 = v1 * np.exp(-8 * 0.5) + 0.25 * (1 - np.exp(-8 * 0.5))
    # EM bias ~ k dt / 2 relative; include it in the tolerance.
    _within(res.mean[0, 0], m1, np.sqrt(v1 / n) + 1e-3 * m1)
    _within(res.variance[0, 0], v1, v1 * np.sqrt(2 / n) + 1e-3 * v1)
    _within(res.mean[1, 0], m2, np.sqrt(v2 / n) + 4e-3 * m2)
    _within(res.variance[1, 0], v2, v2 * np.sqrt(2 / n) + 4e-3 * v2)


def test_time_dependent_force_schedule_moves_the_mean_exactly():
    dyn = ib.Dynamics(diffusion=0.2, force=ib.Schedule([1.0], [[1.0, 0.0], [0.0, -2.0]]))
    n = 100_000
    res = ib.simulate(dyn, [0.0, 0.0], (0.0, 2.0), dt=0.01, n_particles=n, seed=12, store_positions=False,
                      t_eval=[1.0, 2.0])
    np.testing.assert_allclose(res.mean[0], [1.0, 0.0], atol=4 * np.sqrt(0.4 / n))
    np.testing.assert_allclose(res.mean[1], [1.0, -2.0], atol=4 * np.sqrt(0.8 / n))
    np.testing.assert_allclose(res.variance[1], [0.8, 0.8], rtol=4 * np.sqrt(2 / n))


def test_histogram_matches_numpy_and_counts_every_living_particle():
    res = ib.simulate(ib.Dynamics(potential=Harmonic([1.0, 2.0])), [0.0, 0.0], (0.0, 1.0), dt=0.01,
                      n_particles=30_000, seed=13, t_eval=[0.5, 1.0],
                      histogram_edges=[np.linspace(-2, 2, 41), np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 3.0])])
    for k in range(2):
        expected, _ = np.histogramdd(res.positions[k], bins=res.histogram.edges)
        np.testing.assert_array_equal(res.histogram.counts[k], expected)
        assert res.histogram.counts[k].sum() + res.histogram.outside[k] == 30_000
    density = res.histogram.density()[-1]
    assert np.sum(density * res.histogram.cell_volumes) <= 1.0


def test_a_deterministic_crossing_is_timed_at_the_midpoint_of_its_step():
    """Vanishing noise, a constant force and no bridge test: the particle crosses the absorbing face in
    the step from x = 0.995 to 1.005, so its first-passage time is (94 + 1/2) dt exactly."""

    dyn = ib.Dynamics(potential=ConstantForce([1.0]), diffusion=1e-30)
    box = ib.Box([0.0], [1.0], boundaries=[("reflecting", "absorbing")])
    for dt, x0, steps in ((0.01, 0.055, 94), (0.004, 0.001, 249)):
        res = ib.simulate(dyn, [x0], (0.0, 2.0), dt=dt, n_particles=8, domain=box, brownian_bridge=False, seed=0)
        np.testing.assert_allclose(res.first_passage_time, (steps + 0.5) * dt, rtol=1e-12)
        assert np.all(res.exit_face == 1) and not res.alive.any()
