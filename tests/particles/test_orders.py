"""Measured convergence orders of every scheme against its declared order (PHYSICS.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

import ib_physics as ib
from ib_physics.particles import SCHEMES, _kernels
from ib_physics.potentials import DoubleWell, Harmonic
from ib_physics.random import standard_normals


def _increments(n_paths: int, fine_steps: int, dt: float, dim: int, seed: int):
    """Fine Brownian increments dW and their time integrals dZ = ∫ (W_s - W_t) ds per step."""
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal((n_paths, fine_steps, dim))
    eta = rng.standard_normal((n_paths, fine_steps, dim))
    dw = np.sqrt(dt) * xi
    dz = 0.5 * dt**1.5 * (xi + eta / np.sqrt(3.0))
    return dw, dz


def _coarsen(dw: np.ndarray, dz: np.ndarray, factor: int, dt: float):
    """Nested coarse increments: sums of dW and ΔZ = Σ_j [(W_{t_j} - W_0) h + dZ_j]."""
    n, steps, dim = dw.shape
    w = dw.reshape(n, steps // factor, factor, dim)
    z = dz.reshape(n, steps // factor, factor, dim)
    before = np.cumsum(w, axis=2) - w  # W_{t_j} - W_0 within each coarse step
    return w.sum(axis=2), (before * dt + z).sum(axis=2)


def _run(plan, scheme_code, x0, dw, dz, dt):
    out = np.empty_like(x0)
    _kernels.integrate_increments(
        x0, dw, dz, dt, scheme_code, plan.lin, plan.off, plan.nl_scale, plan.nl_rows, plan.tables,
        plan.diff, plan.field_on, plan.field_grid, plan.field_tables, plan.alpha, out,
        np.zeros((_kernels._STEP_ROWS, _kernels.LANES)))
    return out


def _strong_order(dynamics, scheme, x0_value, dim=1, n_paths=2000, seed=0):
    fine_log2 = 14
    fine = 2**fine_log2
    t_end = 1.0
    dt_f = t_end / fine
    plan = dynamics.plan(dim, 0.0, t_end)
    code = SCHEMES[scheme].code
    dw, dz = _increments(n_paths, fine, dt_f, dim, seed)
    x0 = np.full((n_paths, dim), x0_value)
    reference = _run(plan, code, x0, dw, dz, dt_f)
    steps, errors = [], []
    for level in (4, 5, 6, 7, 8):
        factor = fine // 2**level
        h = t_end / 2**level
        cw, cz = _coarsen(dw, dz, factor, dt_f)
        end = _run(plan, code, x0, cw, cz, h)
        steps.append(h)
        errors.append(np.mean(np.linalg.norm(end - reference, axis=1)))
    assert np.all(np.isfinite(errors))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    return slope


def _field():
    return ib.DiffusionField.from_function(lambda x: 0.6 + 0.4 * np.sin(2 * x), -12.0, 12.0, nodes=24001)


NONLINEAR = DoubleWell(0.5, 1.0) + Harmonic(0.3)


@pytest.mark.parametrize(
    "scheme,noise,declared",
    [
        ("euler_maruyama", "additive", SCHEMES["euler_maruyama"].strong_order_additive),
        ("euler_maruyama", "multiplicative", SCHEMES["euler_maruyama"].strong_order),
        ("milstein", "multiplicative", SCHEMES["milstein"].strong_order),
        ("sra1", "additive", SCHEMES["sra1"].strong_order),
    ],
)
def test_strong_order_on_nested_brownian_paths(scheme, noise, declared):
    diffusion = 0.5 if noise == "additive" else _field()
    dyn = ib.Dynamics(potential=NONLINEAR, diffusion=diffusion)
    slope = _strong_order(dyn, scheme, 0.4)
    assert abs(slope - declared) <= 0.2, f"{scheme}/{noise}: measured {slope:.3f}, declared {declared}"


def test_sra1_strong_order_in_three_dimensions():
    dyn = ib.Dynamics(potential=DoubleWell(0.5, 1.0, axis=2) + Harmonic([1.0, 0.5, 0.2]), diffusion=[0.3, 0.5, 0.4])
    slope = _strong_order(dyn, "sra1", 0.3, dim=3, n_paths=1000)
    assert abs(slope - SCHEMES["sra1"].strong_order) <= 0.2


def test_euler_maruyama_weak_order_on_the_second_moment():
    """E[X_T^2] of Ornstein–Uhlenbeck from 0: EM's bias is first order in dt."""
    n = 1_000_000
    exact = 1 - np.exp(-2.0)
    steps, errors = [], []
    for dt in (0.2, 0.1, 0.05, 0.025):
        res = ib.simulate(ib.Dynamics(potential=Harmonic(1.0)), 0.0, (0.0, 1.0), dt=dt, n_particles=n,
                          seed=21, store_positions=False)
        second = res.variance[-1, 0] * (n - 1) / n + res.mean[-1, 0] ** 2
        steps.append(dt)
        errors.append(abs(second - exact))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - SCHEMES["euler_maruyama"].weak_order) <= 0.2, f"weak order {slope:.3f}"


@pytest.mark.parametrize("scheme", ["euler_maruyama", "milstein", "sra1"])
def test_fused_kernel_follows_the_scheme_step_by_step(scheme):
    """The engine's kernel and the reference driver agree on the same normals."""
    n, steps, dt = 64, 50, 0.01
    field = ib.DiffusionField.from_function(lambda x: 0.5 + 0.2 * np.cos(x), -5, 5, nodes=501)
    dyn = ib.Dynamics(potential=NONLINEAR, diffusion=0.5 if scheme == "sra1" else field)
    res = ib.simulate(dyn, 0.2, (0.0, steps * dt), dt=dt, n_particles=n, seed=99, scheme=scheme)
    m = SCHEMES[scheme].normals_per_axis
    z = standard_normals(99, particles=n, draws=steps * m).reshape(n, steps, m)
    dw = np.sqrt(dt) * z[:, :, :1]
    dz = np.zeros_like(dw)
    if scheme == "sra1":
        dz = 0.5 * dt * np.sqrt(dt) * (z[:, :, :1] + z[:, :, 1:2] * 0.5773502691896258)
    expected = _run(dyn.plan(1, 0.0, 1.0), SCHEMES[scheme].code, np.full((n, 1), 0.2), dw, dz, dt)
    np.testing.assert_allclose(res.final_positions, expected, rtol=0, atol=1e-13)


def test_fast_affine_kernel_equals_the_general_one():
    """Ornstein–Uhlenbeck takes the affine fast path; a zero-height double well forces the general one."""
    dyn_fast = ib.Dynamics(potential=Harmonic([1.0, 2.0]), diffusion=[0.5, 1.0])
    dyn_general = ib.Dynamics(potential=Harmonic([1.0, 2.0]) + DoubleWell(1e-300, 1.0), diffusion=[0.5, 1.0])
    kw = dict(dt=0.01, n_particles=1000, seed=5, domain=ib.Box([-1, -1], [1, 1]))
    fast = ib.simulate(dyn_fast, [0.1, 0.2], (0.0, 1.0), **kw)
    general = ib.simulate(dyn_general, [0.1, 0.2], (0.0, 1.0), **kw)
    assert fast.diagnostics["kernel"] == "affine" and general.diagnostics["kernel"] == "general"
    np.testing.assert_allclose(fast.final_positions, general.final_positions, rtol=0, atol=1e-12)
