"""Flows (drift that is not a gradient) in both engines, against exact solutions.

A rigid rotation u = Omega x x in an isotropic harmonic trap keeps the problem linear: the
mean spirals in, m(t) = exp(tA) m0 with A = -mu k I + Omega x, and the covariance relaxes as
without the flow (the rotation commutes with an isotropic covariance). The Euler–Maruyama
mean and covariance follow the scheme's own linear recursion exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import ib_physics as ib
from ib_physics.flows import Rotation, flow_from_dict
from ib_physics.potentials import DoubleWell, Harmonic


def _cross_matrix(omega):
    wx, wy, wz = omega
    return np.array([[0.0, -wz, wy], [wz, 0.0, -wx], [-wy, wx, 0.0]])


def test_rotation_velocity_and_the_drift_it_adds():
    rot = Rotation(2.0, centre=[1.0, -1.0])
    np.testing.assert_allclose(rot.velocity([[2.0, -1.0], [1.0, 0.0]]), [[0.0, 2.0], [-2.0, 0.0]])
    tilted = Rotation([0.3, -0.4, 1.2], centre=[0.1, 0.2, 0.3])
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(tilted.velocity(x), (x - [0.1, 0.2, 0.3]) @ _cross_matrix([0.3, -0.4, 1.2]).T)
    # The flow is a velocity: neither the mobility nor the potential scale multiplies it.
    dyn = ib.Dynamics(potential=Harmonic(1.0), mobility=2.0, potential_scale=0.5, diffusion=0.3, flow=tilted)
    np.testing.assert_allclose(dyn.drift(x), -2.0 * 0.5 * x + tilted.velocity(x), rtol=1e-14, atol=1e-14)
    plain = ib.Dynamics(potential=Harmonic(1.0), diffusion=0.3)
    assert "flow" not in plain.to_dict()
    again = ib.Dynamics.from_dict(dyn.to_dict())
    np.testing.assert_array_equal(again.drift(x), dyn.drift(x))
    assert isinstance(flow_from_dict(tilted.to_dict()), Rotation)
    # A rotation adds its rate to the explicit-step stability bound.
    assert dyn.stiffness_bound(3) == pytest.approx(1.0 + np.linalg.norm([0.3, -0.4, 1.2]))


@pytest.mark.parametrize("make, match", [
    (lambda: Rotation([1.0, 2.0]), "`angular_velocity`"),
    (lambda: Rotation(np.nan), "`angular_velocity`"),
    (lambda: Rotation([0.0, 0.0, 1.0], centre=[0.0, 0.0]), "`centre`"),
    (lambda: ib.Dynamics(flow="rotation"), "`flow`"),
    (lambda: ib.Dynamics(flow=Rotation(1.0)).plan(1, 0.0, 1.0), "2 or 3 dimensions"),
    (lambda: ib.Dynamics(potential=Harmonic([1.0, 1.0]), flow=Rotation([0.0, 0.0, 1.0])), "inconsistent"),
    (lambda: ib.Dynamics(flow=Rotation({"w": 1})), "`angular_velocity`"),
])
def test_bad_flows_are_refused_by_name(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def _em_moments(a_matrix, m0, cov0, diffusion, dt, n_steps):
    """Mean and covariance of the Euler–Maruyama chain x <- x + A x dt + sqrt(2 D dt) xi."""
    step = np.eye(len(m0)) + dt * a_matrix
    m, c = np.array(m0, float), np.array(cov0, float)
    for _ in range(n_steps):
        m = step @ m
        c = step @ c @ step.T + 2.0 * diffusion * dt * np.eye(len(m0))
    return m, c


@pytest.mark.parametrize("omega", [[0.0, 0.0, 3.0], [1.0, -2.0, 1.5]])
def test_particles_follow_the_euler_maruyama_recursion_of_a_rotating_trap(omega):
    d = 2 if omega[:2] == [0.0, 0.0] else 3
    k, diff, dt, n_steps, n = 1.0, 0.5, 2e-3, 400, 40_000
    flow = Rotation(omega[2]) if d == 2 else Rotation(omega)
    dyn = ib.Dynamics(potential=Harmonic(k), diffusion=diff, flow=flow)
    m0 = np.array([1.5, 0.0, 0.5])[:d]
    res = ib.simulate(dyn, np.tile(m0, (n, 1)), (0.0, n_steps * dt), dt=dt, seed=11,
                      t_eval=[n_steps * dt], store_positions=False)
    a_matrix = -k * np.eye(3) + _cross_matrix(omega)
    m_em, c_em = _em_moments(a_matrix[:d, :d], m0, np.zeros((d, d)), diff, dt, n_steps)
    se = np.sqrt(np.diag(c_em) / n)
    assert np.all(np.abs(res.mean[-1] - m_em) < 4.5 * se), (res.mean[-1], m_em, se)
    # Sample covariance entries scatter by about sqrt((c_ii c_jj + c_ij^2) / n).
    scatter = np.sqrt((np.outer(np.diag(c_em), np.diag(c_em)) + c_em**2) / n)
    assert np.all(np.abs(res.covariance[-1] - c_em) < 4.5 * scatter)
    # And the recursion is the exact spiral to O(dt): the flow is really there.
    exact = scipy.linalg.expm(n_steps * dt * a_matrix[:d, :d]) @ m0
    assert np.linalg.norm(m_em - exact) < 1e-2
    assert np.linalg.norm(exact - np.exp(-k * n_steps * dt) * m0) > 0.3


def _rotating_trap_density(n, *, omega=3.0, k=1.0, diff=0.5, t_end=0.8):
    dyn = ib.Dynamics(potential=Harmonic(k), diffusion=diff, flow=Rotation(omega))
    grid = ib.Grid(ib.Box([-3.5, -3.5], [3.5, 3.5]), (n, n))
    m0, s0 = np.array([1.2, 0.0]), 0.4
    p0 = ib.gaussian_density(grid, m0, [s0, s0])
    res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, t_end), t_eval=[t_end], tol=1e-6)
    c, s = np.cos(omega * t_end), np.sin(omega * t_end)
    mean = np.exp(-k * t_end) * np.array([c * m0[0] - s * m0[1], s * m0[0] + c * m0[1]])
    var = s0**2 * np.exp(-2 * k * t_end) + diff / k * (1 - np.exp(-2 * k * t_end))
    exact = ib.gaussian_density(grid, mean, [np.sqrt(var)] * 2)
    return float(np.abs(res.p[-1] - exact).sum() * np.prod(grid.spacing)), res


def test_density_spirals_with_the_exact_gaussian_at_second_order():
    errors = [_rotating_trap_density(n)[0] for n in (24, 48, 96)]
    assert errors[-1] < 8e-3, errors
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.7), (errors, orders)
    _, res = _rotating_trap_density(24)
    assert res.diagnostics["exponential_segments"] == 0  # a curl: no detailed balance, BDF2 only


def test_stationary_state_of_a_rotating_trap_is_boltzmann_with_a_circulating_current():
    k, diff, omega = 1.0, 0.5, 2.0
    dyn = ib.Dynamics(potential=Harmonic(k), diffusion=diff, flow=Rotation(omega))
    l1 = []
    for n in (48, 96):
        grid = ib.Grid(ib.Box([-3.0, -3.0], [3.0, 3.0]), (n, n))
        boltzmann = ib.gaussian_density(grid, [0.0, 0.0], [np.sqrt(diff / k)] * 2)
        p = ib.stationary_density(dyn, grid)
        l1.append(float(np.abs(p - boltzmann).sum() * np.prod(grid.spacing)))
    assert l1[1] < 2e-3 and l1[0] / l1[1] > 3.0, l1
    # Started there it stays, and the current is the flow carrying it: J = p u, whose angular
    # moment int (x J_y - y J_x) dx = omega <r^2> = 2 omega D / k.
    res = ib.solve_fokker_planck(dyn, grid, p, (0.0, 0.5), t_eval=[0.5], tol=1e-8)
    np.testing.assert_allclose(res.p[-1], p, atol=1e-6 * p.max())
    jx, jy = res.current[0][-1], res.current[1][-1]
    xc, yc = grid.centres
    xe, ye = grid.edges
    h = grid.spacing
    moment = float(np.sum(xc[:, None] * jy) - np.sum(yc[None, :] * jx)) * h[0] * h[1]
    assert jx.shape == (xe.size, yc.size) and jy.shape == (xc.size, ye.size)
    assert moment == pytest.approx(2 * omega * diff / k, rel=2e-3)
    without = ib.solve_fokker_planck(ib.Dynamics(potential=Harmonic(k), diffusion=diff), grid, p, (0.0, 0.5),
                                     t_eval=[0.5], tol=1e-8)
    assert np.max(np.abs(without.current[0][-1])) < 1e-3 * np.max(np.abs(jx))


def test_particles_and_density_agree_in_a_stirred_double_well():
    # No exact solution: the flow carries probability across the barrier in a loop.
    dyn = ib.Dynamics(potential=DoubleWell(1.0, 1.0) + Harmonic([0.0, 2.0]), diffusion=0.5,
                      flow=Rotation(1.5))
    box = ib.Box([-2.5, -2.0], [2.5, 2.0])
    grid = ib.Grid(box, (100, 80))
    t_eval = [0.5, 1.5]
    p0 = ib.gaussian_density(grid, [1.0, 0.0], [0.2, 0.2])
    density = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 1.5), t_eval=t_eval, tol=1e-7)
    start = np.random.default_rng(3).normal([1.0, 0.0], 0.2, size=(60_000, 2))
    parts = ib.simulate(dyn, start, (0.0, 1.5), dt=5e-4, seed=4, domain=box, t_eval=t_eval)
    cmp = ib.compare(parts, density)
    assert np.all(cmp.ratio_to_floor < 1.6), cmp.ratio_to_floor
    assert np.all(np.abs(cmp.mean_particles - cmp.mean_density) < 4 * cmp.mean_standard_error + 2e-3)
    # The flow matters here: without it the mean y stays near 0, with it the well's population
    # has been turned towards +y.
    assert cmp.mean_density[0, 1] > 0.1


def test_the_glass_takes_a_rotation_about_its_axis_only():
    glass = ib.Cylinder(radius=1.0, height=2.0)
    grid = ib.Grid(glass, (16, 24))
    p0 = ib.gaussian_density(grid, [0.0, 0.0, 1.0], [0.2, 0.2, 0.2])
    base = dict(potential=Harmonic(1.0, centre=[0.0, 0.0, 1.0]), diffusion=0.2)
    stirred = ib.solve_fokker_planck(ib.Dynamics(**base, flow=Rotation(4.0)), grid, p0, (0.0, 0.5), t_eval=[0.5])
    still = ib.solve_fokker_planck(ib.Dynamics(**base), grid, p0, (0.0, 0.5), t_eval=[0.5])
    # A rigid rotation about the axis moves nothing in (r, z).
    np.testing.assert_allclose(stirred.p, still.p, rtol=1e-12, atol=1e-14)
    for flow in (Rotation([1.0, 0.0, 0.0]), Rotation(1.0, centre=[0.5, 0.0, 0.0])):
        with pytest.raises(ValueError, match="`flow` must be axisymmetric"):
            ib.solve_fokker_planck(ib.Dynamics(**base, flow=flow), grid, p0, (0.0, 0.5))


def test_fourth_order_refuses_a_flow():
    grid = ib.Grid(ib.Box([-3.0, -3.0], [3.0, 3.0]), (32, 32))
    p0 = ib.gaussian_density(grid, [1.0, 0.0], [0.4, 0.4])
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=0.5, flow=Rotation(1.0))
    with pytest.raises(ValueError, match="`spatial_order=4`.*`flow`"):
        ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), spatial_order=4)


def test_density_operator_turns_the_mean_about_a_tilted_axis_in_3d():
    # The cross product's orientation on every axis of the density engine, without time steps:
    # the rate of change of the mean under the assembled operator, sum_c x_c V_c (A p)_c, must be
    # <a(x)> = -mu k m + Omega x m, to second order in the cell size.
    from ib_physics.density.operator import assemble

    omega, k, diff = np.array([0.6, -0.8, 1.5]), 1.0, 0.3
    dyn = ib.Dynamics(potential=Harmonic(k), diffusion=diff, flow=Rotation(omega))
    m0 = np.array([0.8, 0.3, -0.4])
    exact = -k * m0 + np.cross(omega, m0)
    errors = []
    for n in (16, 32):
        grid = ib.Grid(ib.Box([-3.0] * 3, [3.0] * 3), (n, n, n))
        p0 = ib.gaussian_density(grid, m0, [0.5] * 3).ravel()
        op = assemble(dyn, grid, dyn.plan(3, 0.0, 0.0), 0)
        rate = (op.matrix @ p0) * grid.volumes().ravel()
        mesh = np.meshgrid(*grid.centres, indexing="ij")
        errors.append(np.linalg.norm([float(rate @ c.ravel()) for c in mesh] - exact))
    # (|Omega x m| is 1.3: a dropped or mis-signed component would not converge.)
    assert errors[1] < 0.05 and errors[0] / errors[1] > 3.0, errors


def test_survival_through_an_absorbing_face_agrees_in_a_rotating_trap():
    # The flow on the half cells next to an absorbing face: the rotation carries probability to
    # the face at x = 1.2, and both engines lose the same amount.
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=0.3, flow=Rotation(2.0))
    box = ib.Box([-2.5, -2.5], [1.2, 2.5], boundaries=[("reflecting", "absorbing"), ("reflecting", "reflecting")])
    grid = ib.Grid(box, (74, 100))
    t_eval = [0.5, 1.5]
    p0 = ib.gaussian_density(grid, [0.0, -1.0], [0.25, 0.25])
    density = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 1.5), t_eval=t_eval, tol=1e-7)
    start = np.random.default_rng(8).normal([0.0, -1.0], 0.25, size=(40_000, 2))
    parts = ib.simulate(dyn, start, (0.0, 1.5), dt=5e-4, seed=9, domain=box, t_eval=t_eval, store_positions=False)
    lost = 1.0 - density.survival
    assert lost[-1] > 0.1, lost  # the rotation brings the trap's contents to the face
    np.testing.assert_allclose(parts.survival, density.survival, atol=4 * np.sqrt(0.25 / start.shape[0]) + 3e-3)
    still = ib.solve_fokker_planck(ib.Dynamics(potential=Harmonic(1.0), diffusion=0.3), grid, p0, (0.0, 1.5),
                                   t_eval=t_eval, tol=1e-7)
    assert 1.0 - still.survival[-1] < 0.5 * lost[-1]
