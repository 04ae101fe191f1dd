"""Property tests, bad input and files of the density engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

import ib_physics as ib
from ib_physics.density import bernoulli
from ib_physics.potentials import ConstantForce, DoubleWell, Harmonic


@st.composite
def problems(draw, allow_absorbing=True):
    dim = draw(st.integers(1, 2))
    lower = np.array(draw(st.lists(st.floats(-2, 0), min_size=dim, max_size=dim)))
    size = np.array(draw(st.lists(st.floats(0.5, 3), min_size=dim, max_size=dim)))
    kinds = ["reflecting", "periodic"] + (["absorbing"] if allow_absorbing else [])
    faces = []
    for _ in range(dim):
        lo = draw(st.sampled_from(kinds))
        hi = "periodic" if lo == "periodic" else draw(st.sampled_from([k for k in kinds if k != "periodic"]))
        faces.append((lo, hi))
    box = ib.Box(lower, lower + size, boundaries=faces)
    shape = tuple(draw(st.lists(st.integers(3, 24), min_size=dim, max_size=dim)))
    k = draw(st.lists(st.floats(0, 4), min_size=dim, max_size=dim))
    f = draw(st.lists(st.floats(-4, 4), min_size=dim, max_size=dim))
    d_coef = draw(st.lists(st.floats(0.05, 2), min_size=dim, max_size=dim))
    pot = Harmonic(k, centre=lower + size / 2) + ConstantForce(f)
    if draw(st.booleans()):
        pot = pot + DoubleWell(draw(st.floats(0.1, 2)), float(size[0]) / 4, axis=0)
    dyn = ib.Dynamics(potential=pot, diffusion=d_coef)
    seed = draw(st.integers(0, 2**31))
    return dyn, ib.Grid(box, shape), seed


@pytest.mark.filterwarnings("ignore::ib_physics.DensityWarning")  # coarse random grids on purpose
@pytest.mark.parametrize("time_integration", ["auto", "bdf2"])
@given(problem=problems(allow_absorbing=False))
def test_mass_is_conserved_and_density_stays_non_negative(problem, time_integration):
    dyn, grid, seed = problem
    p0 = np.random.default_rng(seed).random(grid.shape) + 1e-3
    res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), t_eval=[0.1, 0.5], tol=1e-6,
                                 time_integration=time_integration)
    m0 = grid.integrate(p0)
    np.testing.assert_allclose(res.mass, m0, rtol=1e-12)
    assert res.p.min() >= -1e-13 * res.p.max()
    assert res.diagnostics["mass_error"] < 1e-12
    if time_integration == "bdf2":
        assert res.diagnostics["exponential_segments"] == 0


@pytest.mark.filterwarnings("ignore::ib_physics.DensityWarning")
@given(problem=problems(allow_absorbing=False), refine=st.integers(6, 20))
def test_fourth_order_conserves_mass(problem, refine):
    dyn, grid, seed = problem
    grid = ib.Grid(grid.domain, tuple(max(n, refine) for n in grid.shape))
    p0 = np.random.default_rng(seed).random(grid.shape) + 1e-3
    try:
        fourth = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.3), t_eval=[0.3], tol=1e-7, spatial_order=4)
    except ValueError as exc:  # under-resolved drift: refused by name, never a blown-up answer
        assert "refine the grid" in str(exc)
        reject()
    np.testing.assert_allclose(fourth.mass, grid.integrate(p0), rtol=1e-12)
    assert np.all(np.isfinite(fourth.p)) and fourth.p.max() < 1e3 * p0.max()


@pytest.mark.filterwarnings("ignore::ib_physics.DensityWarning")
@given(problems())
def test_probability_is_either_inside_or_absorbed(problem):
    dyn, grid, seed = problem
    p0 = np.random.default_rng(seed).random(grid.shape)
    res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.3), t_eval=[0.1, 0.3], tol=1e-6)
    total = res.mass + res.absorbed.sum(axis=1)
    np.testing.assert_allclose(total, grid.integrate(p0), rtol=1e-11)
    assert np.all(res.absorbed >= -1e-15)
    absorbing = [i for i, kind in enumerate(grid.face_kinds) if kind == "absorbing"]
    others = [i for i in range(len(grid.face_kinds)) if i not in absorbing]
    assert np.all(res.absorbed[:, others] == 0)


@given(problems(allow_absorbing=False))
def test_discrete_equilibrium_is_exactly_boltzmann_for_gradient_drift(problem):
    dyn, grid, _ = problem
    box = grid.domain
    reflecting = ib.Box(box.lower, box.upper, boundaries="reflecting")
    grid = ib.Grid(reflecting, grid.shape)
    diffusion = float(np.asarray(dyn.diffusion)[0])
    dyn = ib.Dynamics(potential=dyn.potential, diffusion=diffusion, mobility=0.7)
    u = dyn.potential.value(grid.cell_points()).reshape(grid.shape)
    boltzmann = np.exp(-0.7 * (u - u.min()) / diffusion)
    boltzmann /= grid.integrate(boltzmann)
    # The operator annihilates exp(-mu U / D) on the cell centres: every face flux cancels to round-off.
    from ib_physics.density.operator import assemble

    op = assemble(dyn, grid, dyn.plan(grid.ndim, 0.0, 0.0), 0)
    residual = op.matrix @ boltzmann.ravel()
    scale = abs(op.matrix) @ boltzmann.ravel()
    assert np.all(np.abs(residual) <= 1e-12 * scale + 1e-300)
    # The solve finds it; its accuracy is limited by the conditioning (metastable wells split their
    # mass through couplings as small as e^-20, which amplifies round-off to ~1e-9).
    p = ib.stationary_density(dyn, grid)
    np.testing.assert_allclose(p, boltzmann, rtol=1e-7, atol=1e-12 * boltzmann.max())


def test_bernoulli_function_is_accurate_everywhere():
    z = np.array([-800.0, -50.0, -1.0, -1e-9, 0.0, 1e-9, 1.0, 50.0, 800.0])
    expected = np.array([800.0, 50.0 / (1 - np.exp(-50.0)), 1 / (1 - np.exp(-1.0)), 1 + 5e-10, 1.0, 1 - 5e-10,
                         1 / (np.e - 1), 50 / np.expm1(50.0), 0.0])
    np.testing.assert_allclose(bernoulli(z), expected, rtol=1e-12, atol=1e-300)
    # B(-z) = B(z) e^z: the identity behind the exact discrete equilibrium.
    zz = np.linspace(-30, 30, 101)
    np.testing.assert_allclose(bernoulli(-zz), bernoulli(zz) * np.exp(zz), rtol=1e-12)


GRID = ib.Grid(ib.Box(0.0, 1.0), 10)
DYN = ib.Dynamics()


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(p0=-np.ones(10)), ValueError, "p0"),
        (dict(p0=np.full(10, np.nan)), ValueError, "p0"),
        (dict(p0=np.zeros(10)), ValueError, "p0"),
        (dict(p0=np.ones(11)), ValueError, "p0"),
        (dict(t_span=(1.0, 0.0)), ValueError, "t_span"),
        (dict(t_eval=[2.0]), ValueError, "t_eval"),
        (dict(tol=0.0), ValueError, "tol"),
        (dict(grid=ib.Box(0.0, 1.0)), TypeError, "grid"),
        (dict(dynamics=None), TypeError, "dynamics"),
        (dict(dynamics=ib.Dynamics(potential=Harmonic([1.0, 1.0]))), ValueError, "dimensional"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match):
    args = dict(dynamics=DYN, grid=GRID, p0=np.ones(10), t_span=(0.0, 1.0))
    args.update(kwargs)
    dyn, grid, p0, span = args.pop("dynamics"), args.pop("grid"), args.pop("p0"), args.pop("t_span")
    with pytest.raises(error, match=match):
        ib.solve_fokker_planck(dyn, grid, p0, span, **args)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: ib.Grid(ib.Box([0, 0], [1, 1]), 10), "shape"),
        (lambda: ib.Grid(ib.Box(0, 1), 1), "shape"),
        (lambda: ib.Grid(ib.Cylinder(1, 1), (10, 10, 10)), "shape"),
        (lambda: ib.Grid("box", 10), "domain"),
        (lambda: ib.stationary_density(DYN, ib.Grid(ib.Box(0, 1, boundaries="absorbing"), 10)), "absorbing"),
        (lambda: ib.stationary_density(ib.Dynamics(potential=Harmonic([1, 2, 3])), ib.Grid(ib.Cylinder(1, 1), (5, 5))),
         "axisymmetric"),
    ],
)
def test_bad_grids_and_problems_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_unresolved_boundary_layer_and_large_cell_peclet_warn():
    dyn = ib.Dynamics(potential=ConstantForce([-50.0]), diffusion=0.1)
    grid = ib.Grid(ib.Box(0.0, 1.0), 10)
    with pytest.warns(ib.DensityWarning):
        ib.solve_fokker_planck(dyn, grid, np.ones(10), (0.0, 1.0))


def test_density_result_round_trips_through_hdf5(tmp_path):
    dyn = ib.Dynamics(potential=Harmonic(1.0), diffusion=ib.Schedule([0.5], [1.0, 0.5]))
    grid = ib.Grid(ib.Box([-2, -2], [2, 2], boundaries=["absorbing", "periodic"]), (12, 10))
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, [0, 0], 0.5), (0.0, 1.0),
                                 t_eval=[0.0, 0.5, 1.0])
    path = tmp_path / "d.h5"
    res.save(path)
    back = ib.DensityResult.load(path)
    for name in ("t", "p", "mass", "absorbed", "outflow_rate"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    for a, b in zip(back.current, res.current):
        np.testing.assert_array_equal(a, b)
    assert back.grid.shape == grid.shape and back.dynamics.to_dict() == dyn.to_dict()


def test_initial_density_from_particles_matches_their_histogram():
    grid = ib.Grid(ib.Cylinder(1.0, 2.0), (10, 20))
    rng = np.random.default_rng(0)
    n = 200_000
    r = np.sqrt(rng.random(n))
    phi = rng.random(n) * 2 * np.pi
    pts = np.column_stack([r * np.cos(phi), r * np.sin(phi), 2 * rng.random(n)])
    p = ib.density_from_particles(grid, pts)
    # Uniform particles in the glass give the uniform density 1 / volume: check the radial and
    # vertical profiles, each averaged over >= 2000 particles per entry (sampling noise < 3 %).
    np.testing.assert_allclose(p.mean(axis=1), 1 / (np.pi * 2.0), rtol=0.1)
    np.testing.assert_allclose(p.mean(axis=0), 1 / (np.pi * 2.0), rtol=0.05)
    assert abs(grid.integrate(p) - 1) < 1e-12


def test_mass_is_conserved_in_a_stiff_tilted_periodic_problem():
    """Found by hypothesis: cell Péclet numbers of 1e4 made the LU round-off drift mass by 9e-12."""
    pot = Harmonic([0.0, 0.0], centre=[-1.75, 0.5]) + DoubleWell(1.0, 0.125, axis=0)
    dyn = ib.Dynamics(potential=pot, diffusion=[1.0, 1.0])
    box = ib.Box([-2.0, 0.0], [-1.5, 1.0], boundaries=[("periodic", "periodic"), ("reflecting", "reflecting")])
    grid = ib.Grid(box, (3, 3))
    p0 = np.random.default_rng(0).random(grid.shape) + 1e-3
    with pytest.warns(ib.DensityWarning, match="Péclet"):
        res = ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.5), t_eval=[0.1, 0.5], tol=1e-6)
    np.testing.assert_allclose(res.mass, grid.integrate(p0), rtol=1e-13)
    assert res.diagnostics["mass_projection"] < 1e-10
