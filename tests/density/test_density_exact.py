"""The density engine against exact solutions (PHYSICS.md §1–§3; issue: density engine)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import erf

import ib_physics as ib
from ib_physics.potentials import ConstantForce, DoubleWell, Harmonic, Tabulated


def _gaussian_cells(edges, mean, var):
    cdf = 0.5 * (1 + erf((edges - mean) / np.sqrt(2 * var)))
    return np.diff(cdf) / np.diff(edges)


def _ou_exact(grid, t):
    """Problem F1: mean 2 e^-t, variance 1 + (0.01 - 1) e^-2t, as cell averages."""
    return _gaussian_cells(grid.edges[0], 2 * np.exp(-t), 1 + (0.01 - 1) * np.exp(-2 * t))


OU = ib.Dynamics(potential=Harmonic(1.0), diffusion=1.0)


def _l1(p, q, grid):
    return float(np.sum(np.abs(p - q) * grid.volumes()))


def test_problem_f1_matches_the_exact_gaussian_and_converges_at_second_order():
    errors, widths = [], []
    for n in (100, 200, 400, 800):
        grid = ib.Grid(ib.Box(-6.0, 6.0), n)
        res = ib.solve_fokker_planck(OU, grid, ib.gaussian_density(grid, 2.0, 0.1), (0.0, 1.0), tol=1e-10)
        errors.append(_l1(res.p[-1], _ou_exact(grid, 1.0), grid))
        widths.append(12.0 / n)
        assert abs(res.mass[-1] - 1.0) < 1e-12
    order = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert 1.8 <= order <= 2.2, f"observed spatial order {order:.3f}, errors {errors}"
    assert errors[-1] < 5e-5


def test_problem_f1_long_time_accuracy_at_the_benchmark_grid():
    grid = ib.Grid(ib.Box(-6.0, 6.0), 1000)
    res = ib.solve_fokker_planck(OU, grid, ib.gaussian_density(grid, 2.0, 0.1), (0.0, 5.0), tol=1e-8,
                                 t_eval=[1.0, 5.0])
    for k, t in enumerate(res.t):
        assert _l1(res.p[k], _ou_exact(grid, t), grid) < 2e-5
    # Moments of the density follow the exact Gaussian ones.
    x = grid.centres[0]
    mean = np.sum(res.p[-1] * x * grid.volumes())
    assert abs(mean - 2 * np.exp(-5.0)) < 1e-4


def test_problem_f2_steady_state_is_the_barometric_law_to_round_off():
    dyn = ib.Dynamics(potential=ConstantForce([0.0, -5.0]), diffusion=0.1)
    grid = ib.Grid(ib.Box([0, 0], [1, 1]), (128, 128))
    p = ib.stationary_density(dyn, grid)
    y = grid.centres[1]
    exact = np.broadcast_to(np.exp(-50 * y), grid.shape)
    exact = exact / grid.integrate(exact)
    assert _l1(p, exact, grid) <= 1e-10


def _sediment_reference(n):
    dyn = ib.Dynamics(potential=ConstantForce([0.0, -5.0]), diffusion=0.1)
    grid = ib.Grid(ib.Box([0, 0], [1, 1]), (n, n))
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, [0.5, 0.8], 0.05), (0.0, 0.1),
                                 tol=1e-8)
    return grid, res.p[-1]


def _coarsen(p, factor):
    n = p.shape[0] // factor
    return p.reshape(n, factor, n, factor).mean(axis=(1, 3))


def test_problem_f2_transient_converges_to_a_fine_reference():
    fine_grid, fine = _sediment_reference(128)
    errors = []
    for n in (16, 32, 64):
        grid, p = _sediment_reference(n)
        errors.append(_l1(p, _coarsen(fine, 128 // n), grid))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 1.5), f"errors {errors}, rates {rates}"
    assert errors[-1] < 2e-2


def _survival_series(x0, t, length, d_coef, terms=400):
    """Survival in [0, L] with absorbing ends, for each start in ``x0`` (array) at times ``t``."""
    x0 = np.atleast_1d(x0)
    n = np.arange(1, terms + 1)[:, None, None]
    k = n * np.pi / length
    coeff = 2 / (n * np.pi) * (1 - (-1.0) ** n) * np.sin(k * x0[None, :, None])
    out = np.sum(coeff * np.exp(-(k**2) * d_coef * np.asarray(t)[None, None, :]), axis=0)
    return out[0] if out.shape[0] == 1 else out


@pytest.mark.parametrize("time_integration", ["auto", "bdf2"])  # auto: contour quadrature in 1D
def test_absorbing_interval_survival_matches_the_exact_series(time_integration):
    d_coef, length = 0.5, 1.0
    grid = ib.Grid(ib.Box(0.0, length, boundaries="absorbing"), 800)
    t_eval = np.array([0.0, 0.02, 0.05, 0.1, 0.3, 0.6])
    res = ib.solve_fokker_planck(ib.Dynamics(diffusion=d_coef), grid, ib.gaussian_density(grid, 0.3, 0.01),
                                 (0.0, 0.6), t_eval=t_eval, tol=1e-10, time_integration=time_integration)
    assert (res.diagnostics["exponential_segments"] == 1) == (time_integration == "auto")
    # Exact survival of the initial density: the series averaged over the starting cells.
    weights = res.p[0] * grid.volumes()
    exact = weights @ _survival_series(grid.centres[0], t_eval, length, d_coef)
    np.testing.assert_allclose(res.mass[1:], exact[1:], atol=5e-5)
    # Probability is accounted for: what left went through the two faces.
    np.testing.assert_allclose(res.mass + res.absorbed.sum(axis=1), 1.0, atol=1e-12)
    assert res.absorbed[-1, 0] > res.absorbed[-1, 1]  # x0 = 0.3 is nearer the lower face
    # The outflow rate is the first-passage density -dS/dt.
    dsdt = weights @ np.gradient(_survival_series(grid.centres[0], np.array([0.29, 0.3, 0.31]), length, d_coef),
                                 0.01, axis=1)[:, 1]
    assert abs(res.outflow_rate[4].sum() + dsdt) < 2e-3 * abs(dsdt)


def test_glass_free_diffusion_from_the_axis_matches_the_3d_gaussian():
    glass = ib.Cylinder(radius=1.5, height=3.0)
    grid = ib.Grid(glass, (75, 150))
    s0, d_coef, t = 0.1, 0.5, 0.05
    p0 = ib.gaussian_density(grid, [0, 0, 1.5], [s0, s0])
    res = ib.solve_fokker_planck(ib.Dynamics(diffusion=d_coef), grid, p0, (0.0, t), tol=1e-8)
    var = s0**2 + 2 * d_coef * t
    exact = grid.evaluate(lambda r, z: np.exp(-(r**2 + (z - 1.5) ** 2) / (2 * var)) / (2 * np.pi * var) ** 1.5)
    assert _l1(res.p[-1], exact, grid) < 1e-2
    assert abs(res.mass[-1] - 1.0) < 1e-12
    r = grid.centres[0][:, None]
    mean_r2 = np.sum(res.p[-1] * r**2 * grid.volumes())
    assert abs(mean_r2 - 2 * var) < 5e-3 * 2 * var


def test_switched_stiffness_follows_exact_gaussian_moments():
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=1.0, potential_scale=ib.Schedule([0.5], [1.0, 4.0]))
    grid = ib.Grid(ib.Box(-6.0, 6.0), 2000)
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, 2.0, 0.1), (0.0, 1.0), t_eval=[0.5, 1.0],
                                 tol=1e-10)
    x = grid.centres[0]
    w = grid.volumes()
    m1, v1 = 2 * np.exp(-0.5), 1 + (0.01 - 1) * np.exp(-1.0)
    m2 = m1 * np.exp(-2.0)
    v2 = v1 * np.exp(-4.0) + 0.25 * (1 - np.exp(-4.0))
    for k, (m, v) in enumerate(((m1, v1), (m2, v2))):
        mean = np.sum(res.p[k] * x * w)
        var = np.sum(res.p[k] * (x - mean) ** 2 * w)
        assert abs(mean - m) < 1e-4 and abs(var - v) < 1e-4 * v


def test_space_dependent_diffusion_stationary_density_is_the_ito_law():
    """Zero flux, J = a p - d(Dp)/dx = 0: p ∝ exp(∫ a / D) / D (Itô)."""
    field = ib.DiffusionField.from_function(lambda x: 0.4 + 0.3 * np.sin(2 * x) ** 2, -3.0, 3.0, nodes=3001)
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=field)
    grid = ib.Grid(ib.Box(-3.0, 3.0), 1200)
    p = ib.stationary_density(dyn, grid)
    x = np.linspace(-3, 3, 60001)
    d_x = 0.4 + 0.3 * np.sin(2 * x) ** 2
    integrand = -x / d_x
    phi = np.concatenate([[0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(x))])
    exact = np.exp(phi) / d_x
    exact_cells = np.interp(grid.centres[0], x, exact)
    exact_cells /= grid.integrate(exact_cells)
    assert _l1(p, exact_cells, grid) < 1e-4
    # The particle engine on the same Dynamics reaches the same law.
    rng = np.random.default_rng(1)
    cdf = np.cumsum(p * grid.volumes())
    start = np.interp(rng.random(20_000), np.concatenate([[0], cdf]), grid.edges[0])[:, None]
    parts = ib.simulate(dyn, start, (0.0, 3.0), dt=2e-3, seed=3, domain=ib.Box(-3.0, 3.0), scheme="milstein")
    edges = grid.edges[0]
    law = lambda v: np.interp(v, edges, np.concatenate([[0], cdf]))  # noqa: E731
    assert stats.kstest(parts.positions[-1, :, 0], law).pvalue > 1e-3


def test_gravity_in_the_glass_reaches_the_barometric_law_with_a_reflecting_bottom():
    glass = ib.Cylinder(radius=1.0, height=1.0)
    dyn = ib.Dynamics(potential=ConstantForce([0, 0, -2.0]), diffusion=0.5)
    grid = ib.Grid(glass, (20, 200))
    p = ib.stationary_density(dyn, grid)
    z = grid.centres[1]
    exact = np.broadcast_to(np.exp(-4 * z), grid.shape)
    exact = exact / grid.integrate(exact)
    assert _l1(p, exact, grid) < 1e-11


def test_tilted_ring_carries_a_steady_current():
    """Constant force on a periodic interval: uniform density and J = mu F p everywhere."""
    dyn = ib.Dynamics(potential=ConstantForce([0.7]), diffusion=0.3)
    grid = ib.Grid(ib.Box(0.0, 2.0, boundaries="periodic"), 64)
    p = ib.stationary_density(dyn, grid)
    np.testing.assert_allclose(p, 0.5, rtol=1e-10)
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, 0.5, 0.1), (0.0, 20.0))
    np.testing.assert_allclose(res.current[0][-1], 0.7 * 0.5, rtol=1e-6)


def test_continuity_mass_in_a_region_changes_by_the_flux_through_its_boundary():
    dyn = ib.Dynamics(potential=ConstantForce([0.0, -1.0]) + Harmonic([1.0, 0.0]), diffusion=0.2)
    grid = ib.Grid(ib.Box([-1, 0], [1, 1], boundaries=[("periodic"), ("reflecting", "absorbing")]), (40, 40))
    t_eval = np.linspace(0.2, 0.4, 201)
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, [0.2, 0.6], 0.1), (0.0, 0.4),
                                 t_eval=t_eval, tol=1e-11)
    xc, yc = np.meshgrid(*grid.centres, indexing="ij")
    region = (xc ** 2 + (yc - 0.5) ** 2) < 0.3**2
    mass = res.mass_in(region)
    dmdt = np.gradient(mass, t_eval)
    flux = res.flux_out_of(region)
    np.testing.assert_allclose(dmdt[5:-5], -flux[5:-5], atol=1e-4 * np.max(np.abs(flux)) + 1e-9)
    # The whole domain: its boundary flux is the absorbed outflow.
    everything = np.ones(grid.shape, dtype=bool)
    np.testing.assert_allclose(res.flux_out_of(everything), res.outflow_rate.sum(axis=1), rtol=1e-10, atol=1e-14)


def test_three_dimensional_split_solver_agrees_with_the_direct_one_the_exponential_and_the_exact_gaussian():
    dyn = ib.Dynamics(potential=Harmonic([1.0, 2.0, 0.5]), diffusion=[1.0, 0.5, 0.8])
    grid = ib.Grid(ib.Box([-4.0] * 3, [4.0] * 3), (20, 22, 24))
    p0 = ib.gaussian_density(grid, [1.0, -0.5, 0.5], 0.7)
    kw = dict(t_eval=[0.5], tol=1e-7, time_integration="bdf2")
    split = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), linear_solver="split", **kw)
    direct = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), linear_solver="direct", **kw)
    assert split.diagnostics["linear_solver"] == "split" and split.diagnostics["krylov_iterations"] > 0
    assert _l1(split.p[-1], direct.p[-1], grid) < 1e-9
    # The operator is a Kronecker sum (each axis its own OU process): "auto" integrates it exactly in
    # time, and BDF2 at tol 1e-7 is within its time error of that.
    exponential = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), t_eval=[0.5])
    assert exponential.diagnostics["exponential_segments"] == 1 and exponential.diagnostics["factorisations"] == 0
    assert 1e-9 < _l1(exponential.p[-1], direct.p[-1], grid) < 1e-5
    assert abs(exponential.mass[-1] - 1.0) < 1e-13
    assert abs(split.mass[-1] - 1.0) < 1e-10
    # Each axis relaxes as an independent Ornstein–Uhlenbeck process.
    k = np.array([1.0, 2.0, 0.5])
    dcoef = np.array([1.0, 0.5, 0.8])
    mean = np.array([1.0, -0.5, 0.5]) * np.exp(-k * 0.5)
    var = 0.49 * np.exp(-2 * k * 0.5) + dcoef / k * (1 - np.exp(-2 * k * 0.5))
    exact = ib.gaussian_density(grid, mean, np.sqrt(var))
    assert _l1(split.p[-1], exact, grid) < 0.03


# --- Exact time integration of separable operators (density/separable.py) ---------------------------------

SEDIMENT = ib.Dynamics(potential=ConstantForce([0.0, -2.0]), diffusion=0.1)


def test_exponential_integration_is_the_limit_of_bdf2_as_its_tolerance_shrinks():
    grid = ib.Grid(ib.Box([0, 0], [1, 1]), (24, 32))
    p0 = ib.gaussian_density(grid, [0.5, 0.8], 0.1)
    te = [0.05, 0.2, 1.0]
    exact = ib.solve_fokker_planck(SEDIMENT, grid, p0, (0.0, 1.0), t_eval=te)
    assert exact.diagnostics["exponential_segments"] == 1 and exact.diagnostics["factorisations"] == 0
    gaps = []
    for tol in (1e-6, 1e-9):
        bdf2 = ib.solve_fokker_planck(SEDIMENT, grid, p0, (0.0, 1.0), t_eval=te, tol=tol, time_integration="bdf2")
        assert bdf2.diagnostics["exponential_segments"] == 0
        gaps.append(max(_l1(exact.p[k], bdf2.p[k], grid) for k in range(3)))
    # BDF2's global error scales as tol^(2/3): 1000x tighter gives ~100x closer.
    assert gaps[1] < gaps[0] / 30 and gaps[1] < 1e-6, gaps
    assert np.max(np.abs(exact.mass - 1.0)) < 1e-13 and exact.p.min() >= 0.0
    # The steady state of the same operator is reached exactly.
    late = ib.solve_fokker_planck(SEDIMENT, grid, p0, (0.0, 40.0))
    assert _l1(late.p[-1], ib.stationary_density(SEDIMENT, grid), grid) < 1e-11


def test_exponential_integration_follows_switched_stiffness_in_2d():
    dyn = ib.Dynamics(potential=Harmonic([1.0, 2.0]), diffusion=[1.0, 0.5],
                      potential_scale=ib.Schedule([0.5], [1.0, 4.0]))
    grid = ib.Grid(ib.Box([-5.0, -4.0], [5.0, 4.0]), (200, 160))
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, [2.0, -1.0], [0.3, 0.2]), (0.0, 1.0),
                                 t_eval=[0.3, 0.5, 1.0])
    assert res.diagnostics["exponential_segments"] == 2
    k = np.array([1.0, 2.0])
    d = np.array([1.0, 0.5])
    m0, v0 = np.array([2.0, -1.0]), np.array([0.09, 0.04])

    def moments(t):
        k1 = k * min(t, 0.5)
        m, v = m0 * np.exp(-k1), v0 * np.exp(-2 * k1) + d / k * (1 - np.exp(-2 * k1))
        if t > 0.5:
            k2 = 4 * k * (t - 0.5)
            m, v = m * np.exp(-k2), v * np.exp(-2 * k2) + d / (4 * k) * (1 - np.exp(-2 * k2))
        return m, v

    w = grid.volumes()
    for j, t in enumerate((0.3, 0.5, 1.0)):
        m, v = moments(t)
        for axis in range(2):
            x = grid.centres[axis].reshape((-1, 1) if axis == 0 else (1, -1))
            mean = np.sum(res.p[j] * x * w)
            var = np.sum(res.p[j] * (x - mean) ** 2 * w)
            h = grid.spacing[axis]
            # Cell-centre moments of cell averages: the variance carries h^2/12 of binning.
            assert abs(mean - m[axis]) < 1e-3 and abs(var - h * h / 12 - v[axis]) < 8e-3 * v[axis]


@pytest.mark.filterwarnings("ignore::ib_physics.DensityWarning")  # the steep case is coarse on purpose
def test_non_separable_drift_uses_bdf2_and_exponential_refuses_it():
    x = np.linspace(-3, 3, 31)
    coupled = Tabulated(np.multiply.outer(x, x) * 0.3 + 0.5 * np.add.outer(x**2, x**2), [-3, -3], [3, 3])
    dyn = ib.Dynamics(potential=coupled, diffusion=1.0)
    grid = ib.Grid(ib.Box([-3, -3], [3, 3]), (20, 20))
    p0 = ib.gaussian_density(grid, [0.5, 0.0], 0.5)
    res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.2))
    assert res.diagnostics["exponential_segments"] == 0 and res.diagnostics["steps"] > 3
    # Separable but steep (U ~ 6e4 on the box): the round-off of U = f(x) + g(y) must not hide it.
    steep = ib.Dynamics(potential=DoubleWell(1.0, 0.125) + ConstantForce([0.0, 1.0]), diffusion=1.0)
    box = ib.Grid(ib.Box([-2.0, 0.0], [-1.5, 1.0]), (40, 20))
    res = ib.solve_fokker_planck(steep, box, np.ones((40, 20)), (0.0, 0.2))
    assert res.diagnostics["exponential_segments"] == 1
    with pytest.raises(ValueError, match="not a sum of one-axis operators"):
        ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.2), time_integration="exponential")
    with pytest.raises(ValueError, match="time_integration"):
        ib.solve_fokker_planck(SEDIMENT, grid, p0, (0.0, 0.2), time_integration="rk4")


# --- Fourth-order finite volumes (density/fourth_order.py) -------------------------------------------------


def _orders(errors):
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:]))


def test_fourth_order_reconstruction_is_exact_for_polynomials():
    from ib_physics.density.fourth_order import reconstruction_weights

    value, derivative = reconstruction_weights((-2, -1, 0, 1), 0.0)
    np.testing.assert_allclose(value * 12, [-1, 7, 7, -1], atol=1e-12)
    np.testing.assert_allclose(derivative * 12, [1, -15, 15, -1], atol=1e-12)
    # Wall stencil: five cells on one side, exact for quartics.
    cells, face = (0, 1, 2, 3, 4), 1.0
    value, derivative = reconstruction_weights(cells, face)
    coeffs = np.array([0.3, -1.2, 0.7, 0.25, -0.05])
    poly = np.polynomial.Polynomial(coeffs)
    antider = poly.integ()
    averages = np.array([antider(j + 1) - antider(j) for j in cells])
    assert abs(value @ averages - poly(face)) < 1e-12
    assert abs(derivative @ averages - poly.deriv()(face)) < 1e-12


def test_fourth_order_converges_at_fourth_order_in_2d_against_the_exact_gaussian():
    dyn = ib.Dynamics(potential=Harmonic([1.0, 2.0]), diffusion=[1.0, 0.5])
    k, d = np.array([1.0, 2.0]), np.array([1.0, 0.5])
    m0, s0, t = np.array([1.0, -0.5]), 0.4, 0.7
    mean = m0 * np.exp(-k * t)
    std = np.sqrt(s0**2 * np.exp(-2 * k * t) + d / k * (1 - np.exp(-2 * k * t)))
    errors = {2: [], 4: []}
    for n in (16, 32, 64):
        # Wide enough that the mass beyond the reflecting walls (< 1e-12) does not floor the error.
        grid = ib.Grid(ib.Box([-7.0, -4.0], [7.0, 4.0]), (n, n))
        exact = ib.gaussian_density(grid, mean, std)
        for order in (2, 4):
            res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, m0, s0), (0.0, t), spatial_order=order)
            assert res.diagnostics["exponential_segments"] == 1
            assert abs(res.mass[-1] - 1.0) < 1e-12
            errors[order].append(_l1(res.p[-1], exact, grid))
    assert np.all(np.abs(_orders(errors[2]) - 2) < 0.3), errors
    assert np.all(np.abs(_orders(errors[4]) - 4) < 0.5), errors
    assert errors[4][-1] < errors[2][-1] / 10


def test_fourth_order_in_1d_with_bdf2_and_on_a_periodic_ring():
    # Ornstein–Uhlenbeck on a line (BDF2 in time, tight tolerance so the spatial error shows).
    errors = []
    for n in (30, 60, 120):
        grid = ib.Grid(ib.Box(-6.0, 6.0), n)
        res = ib.solve_fokker_planck(OU, grid, ib.gaussian_density(grid, 1.0, 0.5), (0.0, 0.5), spatial_order=4,
                                     tol=1e-10)
        var = 0.25 * np.exp(-1.0) + (1 - np.exp(-1.0))
        errors.append(_l1(res.p[-1], _gaussian_cells(grid.edges[0], np.exp(-0.5), var), grid))
    assert np.all(np.abs(_orders(errors) - 4) < 0.6), errors
    # Drift and diffusion on a ring: the exact density is a wrapped, moving Gaussian.
    dyn = ib.Dynamics(potential=ConstantForce([0.7]), diffusion=0.1)
    errors = []
    for n in (20, 40, 80):
        grid = ib.Grid(ib.Box(0.0, 1.0, boundaries="periodic"), n)
        res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, 0.5, 0.1), (0.0, 0.6), spatial_order=4,
                                     tol=1e-10)
        e = grid.edges[0]
        var = 0.01 + 2 * 0.1 * 0.6
        exact = sum(_gaussian_cells(e + j, 0.5 + 0.7 * 0.6, var) for j in range(-4, 5))
        assert abs(res.mass[-1] - 1.0) < 1e-12
        errors.append(_l1(res.p[-1], exact, grid))
    assert np.all(np.abs(_orders(errors) - 4) < 0.6), errors


@pytest.mark.parametrize(
    "grid,dyn,match",
    [
        (ib.Grid(ib.Cylinder(1.0, 1.0), (8, 8)), OU, "glass"),
        (ib.Grid(ib.Box(0.0, 1.0, boundaries="absorbing"), 10), OU, "absorbing"),
        (ib.Grid(ib.Box(0.0, 1.0), 5), OU, "at least 6 cells"),
        (ib.Grid(ib.Box(0.0, 1.0), 6), ib.Dynamics(potential=DoubleWell(1.0, 0.25), diffusion=5.0), "Péclet"),
        (ib.Grid(ib.Box(0.0, 1.0), 6), ib.Dynamics(potential=DoubleWell(1.0, 0.25), diffusion=16.0), "unstable"),
        (ib.Grid(ib.Box([-3, -3], [3, 3]), (10, 10)),
         ib.Dynamics(potential=Tabulated(np.multiply.outer(np.linspace(-3, 3, 7), np.linspace(-3, 3, 7)),
                                         [-3, -3], [3, 3])), "not separable"),
    ],
)
def test_fourth_order_refuses_what_it_cannot_do(grid, dyn, match):
    p0 = np.ones(grid.shape)
    with pytest.raises(ValueError, match=match):
        ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.1), spatial_order=4)
    with pytest.raises(ValueError, match="spatial_order"):
        ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.1), spatial_order=3)


def test_one_dimensional_contour_exponential_matches_the_dense_matrix_exponential():
    """The 1D exact-in-time path against scipy's expm of the operator with the absorbed states appended."""
    from scipy.linalg import expm

    from ib_physics.density.operator import assemble

    dyn = ib.Dynamics(potential=DoubleWell(0.5, 1.0) + ConstantForce([0.4]), diffusion=0.3)
    grid = ib.Grid(ib.Box(-1.6, 2.5, boundaries=[("absorbing", "reflecting")]), 200)
    p0 = ib.gaussian_density(grid, -1.0, 0.3)
    t_eval = [1e-3, 0.5, 3.0, 30.0]
    res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 30.0), t_eval=t_eval)
    assert res.diagnostics["exponential_segments"] == 1 and res.diagnostics["factorisations"] == 0
    op = assemble(dyn, grid, dyn.plan(1, 0.0, 30.0), 0)
    n = grid.n_cells
    augmented = np.zeros((n + 2, n + 2))
    augmented[:n, :n] = op.matrix.toarray()
    augmented[n:, :n] = op.outflow.toarray()
    for k, t in enumerate(t_eval):
        reference = expm(t * augmented) @ np.concatenate([p0, [0.0, 0.0]])
        assert _l1(res.p[k], reference[:n], grid) < 1e-11
        np.testing.assert_allclose(res.absorbed[k], reference[n:], atol=1e-12)
    assert res.absorbed[-1, 0] > 0.01 and res.absorbed[-1, 1] == 0.0
    # BDF2 converges to it.
    bdf2 = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 30.0), t_eval=t_eval, tol=1e-9, time_integration="bdf2")
    assert max(_l1(bdf2.p[k], res.p[k], grid) for k in range(4)) < 1e-5


def test_series_fallback_of_the_contour_path_agrees_with_it():
    """Where LAPACK cannot factorise a shifted system, expm_multiply on the extended operator takes over."""
    from ib_physics.density.contour import series_exponential, tridiagonal_exponential
    from ib_physics.density.operator import assemble

    dyn = ib.Dynamics(potential=DoubleWell(0.5, 1.0) + ConstantForce([0.4]), diffusion=0.3)
    grid = ib.Grid(ib.Box(-1.6, 2.5, boundaries=[("absorbing", "reflecting")]), 200)
    p0 = ib.gaussian_density(grid, -1.0, 0.3)
    op = assemble(dyn, grid, dyn.plan(1, 0.0, 3.0), 0)
    for tau in (0.01, 3.0):
        y_c, a_c = tridiagonal_exponential(op.matrix, op.outflow, tau, p0, np.zeros(2))
        y_s, a_s = series_exponential(op.matrix, op.outflow, tau, p0, np.zeros(2))
        assert _l1(y_s, y_c, grid) < 1e-10
        np.testing.assert_allclose(a_s, a_c, atol=1e-11)


def test_strong_drift_with_weak_noise_stays_exact_in_1d():
    """A harmonic segment with cell Péclet ~ 90 and D ~ 1e-9: the contour quadrature loses the
    mass balance there (its error grows like exp(ΔU / 2D)); the series fallback keeps the exact
    Ornstein–Uhlenbeck variance."""
    k, d_coef, tau, sd0 = 0.00457, 7.3e-10, 58.0, 2.8e-3
    grid = ib.Grid(ib.Box(-0.025, 0.025), 8000)
    dyn = ib.Dynamics(potential=Harmonic(k), diffusion=d_coef)
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, 0.0, sd0), (0.0, tau))
    x, h = grid.centres[0], np.diff(grid.edges[0])
    mass = res.p[-1] * h
    variance = float(np.sum(mass * x * x) - np.sum(mass * x) ** 2)
    decay = np.exp(-2 * k * tau)
    exact = sd0**2 * decay + d_coef / k * (1 - decay)
    assert abs(variance / exact - 1) < 1e-3 and abs(mass.sum() - 1) < 1e-9 and res.p.min() >= 0


def test_first_passage_out_of_a_square_is_exact_in_time_and_matches_the_product_of_1d_survivals():
    """Free diffusion in a square with absorbing faces on x and on the bottom y face, reflecting top.

    x and y are independent, so the survival of a product initial density is S_x(t) S_y(t); the
    density itself is checked against BDF2 at a tight tolerance, face by face for the absorbed mass.
    """
    d_coef = 0.5
    box = ib.Box([0.0, 0.0], [1.0, 1.0], boundaries=["absorbing", ("absorbing", "reflecting")])
    grid = ib.Grid(box, (40, 48))
    p0 = ib.gaussian_density(grid, [0.3, 0.6], 0.08)
    t_eval = np.array([0.02, 0.1, 0.3, 0.8])
    dyn = ib.Dynamics(diffusion=d_coef)
    exact_path = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.8), t_eval=t_eval)
    assert exact_path.diagnostics["exponential_segments"] == 1
    reference = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.8), t_eval=t_eval, tol=1e-10, time_integration="bdf2")
    for k in range(t_eval.size):
        assert _l1(exact_path.p[k], reference.p[k], grid) < 2e-6
    np.testing.assert_allclose(exact_path.absorbed, reference.absorbed, atol=2e-6)
    np.testing.assert_allclose(exact_path.mass + exact_path.absorbed.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(exact_path.absorbed[:, 3] == 0.0)  # the reflecting top
    # Survival: x in [0, 1] absorbing at both ends; y absorbing at 0 and reflecting at 1 is the
    # interval [0, 2] absorbing at both ends with the density mirrored about y = 1.
    wx = np.sum(p0 * grid.volumes(), axis=1)
    wy = np.sum(p0 * grid.volumes(), axis=0)
    s_x = wx @ _survival_series(grid.centres[0], t_eval, 1.0, d_coef)
    y = grid.centres[1]
    s_y = 0.5 * (wy @ _survival_series(y, t_eval, 2.0, d_coef) + wy @ _survival_series(2.0 - y, t_eval, 2.0, d_coef))
    np.testing.assert_allclose(exact_path.mass, s_x * s_y, atol=1e-3)  # the grid's error at h = 1/40


def test_three_dimensional_absorbing_box_exact_path_agrees_with_bdf2():
    dyn = ib.Dynamics(potential=Harmonic([1.0, 0.0, 2.0]) + ConstantForce([0.0, 0.5, 0.0]), diffusion=[0.5, 0.3, 0.4])
    box = ib.Box([-2.0, -1.0, -1.5], [2.0, 1.0, 1.5], boundaries=["reflecting", "absorbing", ("absorbing", "reflecting")])
    grid = ib.Grid(box, (14, 12, 10))
    p0 = ib.gaussian_density(grid, [0.5, 0.2, -0.3], 0.4)
    exact_path = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 1.0), t_eval=[0.1, 1.0])
    assert exact_path.diagnostics["exponential_segments"] == 1
    reference = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 1.0), t_eval=[0.1, 1.0], tol=1e-10, time_integration="bdf2")
    assert max(_l1(exact_path.p[k], reference.p[k], grid) for k in range(2)) < 1e-5
    np.testing.assert_allclose(exact_path.absorbed, reference.absorbed, atol=1e-5)
    assert exact_path.absorbed[-1, 2] > 0.01 and exact_path.absorbed[-1, 4] > 0.01
    np.testing.assert_allclose(exact_path.mass + exact_path.absorbed.sum(axis=1), 1.0, atol=1e-12)


def test_exact_path_falls_back_to_bdf2_when_the_absorbed_mass_does_not_balance(monkeypatch):
    import ib_physics.density.solve as solve_module

    real = solve_module.solve_kronecker_sum
    monkeypatch.setattr(solve_module, "solve_kronecker_sum", lambda *args: 1.01 * real(*args))
    grid = ib.Grid(ib.Box([0.0, 0.0], [1.0, 1.0], boundaries="absorbing"), (12, 12))
    p0 = ib.gaussian_density(grid, [0.4, 0.5], 0.15)
    dyn = ib.Dynamics(diffusion=0.3)
    res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), t_eval=[0.2, 0.5], tol=1e-9)
    assert res.diagnostics["exponential_segments"] == 0 and res.diagnostics["steps"] > 10
    np.testing.assert_allclose(res.mass + res.absorbed.sum(axis=1), 1.0, atol=1e-12)
    with pytest.raises(ValueError, match="mass balance"):
        ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), time_integration="exponential")


def test_drift_into_an_absorbing_face_matches_the_eigenfunction_series_at_a_fixed_grid():
    """dp/dt = D p'' − v p' on [0, 1], both faces absorbing, drift v towards the upper one:
    p = exp(a x − b t) Σ c_n sin(nπx) exp(−D n²π² t), a = v/2D, b = v²/4D, with c_n from the same
    piecewise-constant start. Survival and the upper face's outflow at 50 cells are second-order
    close (both faces' Scharfetter–Gummel weights enter; a flipped one triples the error)."""

    D, v = 0.1, 1.0
    errors = []
    for n in (50, 100):
        grid = ib.Grid(ib.Box([0.0], [1.0], boundaries="absorbing"), n)
        x = grid.centres[0]
        p0 = np.exp(-0.5 * ((x - 0.4) / 0.08) ** 2)
        p0 /= grid.integrate(p0)
        ts = np.array([0.0, 0.1, 0.2, 0.4, 0.8])
        res = ib.solve_fokker_planck(ib.Dynamics(potential=ConstantForce([v]), diffusion=D), grid, p0,
                                     (0.0, ts[-1]), t_eval=ts)
        a, b = v / (2 * D), v * v / (4 * D)
        k = np.arange(1, 401) * np.pi
        e = grid.edges[0][:, None]
        anti = np.exp(-a * e) * (-a * np.sin(k * e) - k * np.cos(k * e)) / (a * a + k * k)
        c = 2.0 * (p0[:, None] * (anti[1:] - anti[:-1])).sum(axis=0)
        grow = lambda z: np.exp(a * z) * (a * np.sin(k * z) - k * np.cos(k * z)) / (a * a + k * k)  # noqa: E731
        survival = np.array([np.sum(c * np.exp(-(D * k * k + b) * t) * (grow(1.0) - grow(0.0))) for t in ts[1:]])
        outflow = np.array([-D * np.exp(a - b * t) * np.sum(c * k * np.cos(k) * np.exp(-D * k * k * t))
                            for t in ts[1:]])
        errors.append((np.abs(res.mass[1:] - survival).max(),
                       np.abs(res.outflow_rate[1:, 1] - outflow).max() / outflow.max()))
    (s50, o50), (s100, o100) = errors
    assert s50 < 8e-4 and o50 < 3.5e-3  # measured 6.3e-4 and 2.6e-3 (with a flipped upper weight: 2.0e-3, 5.2e-3)
    assert s50 / s100 > 3.0 and o50 / o100 > 3.0  # second order
