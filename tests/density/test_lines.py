"""Batched tridiagonal line solves (the split preconditioner's factors) against a sparse direct solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import ib_physics as ib
from ib_physics.density import Grid
from ib_physics.density.lines import line_system
from ib_physics.density.operator import assemble
from ib_physics.domains import Box
from ib_physics.potentials import DoubleWell, Harmonic, Tabulated

DYN = ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 1.0, 2.0]), diffusion=[0.5, 0.3, 0.7])


@pytest.mark.parametrize("boundaries", ["reflecting", ["absorbing", "reflecting", ("reflecting", "absorbing")]])
@pytest.mark.parametrize("shape", [(7, 5, 6), (3, 40, 2), (33, 4, 70)])
def test_line_solves_equal_a_sparse_lu_on_every_axis(boundaries, shape):
    """(I - c A_k) x = b along each axis, for shapes whose last axis is long, short or a single pair
    of cells (the kernels' tiling of lines and their last-axis branch), to round-off."""
    grid = Grid(Box([-2.0] * 3, [2.0, 1.5, 1.0], boundaries=boundaries), shape)
    op = assemble(DYN, grid, DYN.plan(3, 0.0, 1.0), 0)
    rng = np.random.default_rng(0)
    for axis, matrix in enumerate(op.axis_matrices):
        system = line_system(matrix, shape, axis)
        assert system is not None
        for c in (1e-3, 0.3, 50.0):
            rhs = rng.standard_normal(grid.n_cells)
            reference = spla.spsolve((sp.identity(grid.n_cells) - c * matrix).tocsc(), rhs)
            assert np.max(np.abs(system.factor(c).solve(rhs) - reference)) < 1e-12 * np.max(np.abs(reference))


def test_periodic_axes_and_coupled_matrices_are_not_taken_as_lines():
    grid = Grid(Box([-2.0] * 3, [2.0] * 3, boundaries=["periodic", "reflecting", "reflecting"]), (6, 5, 4))
    op = assemble(DYN, grid, DYN.plan(3, 0.0, 1.0), 0)
    assert line_system(op.axis_matrices[0], (6, 5, 4), 0) is None  # the wrap-around coupling
    assert line_system(op.axis_matrices[1], (6, 5, 4), 1) is not None
    assert line_system(op.matrix, (6, 5, 4), 2) is None  # couples every axis


def test_split_solver_with_line_factors_matches_the_direct_solver_on_a_coupled_3d_problem():
    """A coupled (non-separable) 3D drift: BDF2 with the line-factor preconditioned BiCGSTAB gives the
    direct LU's density (same steps) to the Krylov tolerance."""
    g = np.linspace(-2.0, 2.0, 17)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    dyn = ib.Dynamics(potential=Tabulated((x**2 - 1) ** 2 + y**2 + z**2 + 0.8 * x * y, [-2.0] * 3, [2.0] * 3),
                      diffusion=0.5)
    grid = Grid(Box([-2.0] * 3, [2.0] * 3), (14, 12, 10))
    p0 = ib.density.gaussian_density(grid, [0.5, 0.0, 0.0], [0.4, 0.4, 0.4])
    runs = [ib.solve_fokker_planck(dyn, grid, p0, (0.0, 0.3), t_eval=[0.3], tol=1e-5, linear_solver=solver)
            for solver in ("split", "direct")]
    assert runs[0].diagnostics["krylov_iterations"] > 0
    assert runs[0].diagnostics["steps"] == runs[1].diagnostics["steps"]
    assert np.abs(runs[0].p[-1] - runs[1].p[-1]).sum() * np.prod(grid.spacing) < 1e-9


def test_line_system_refuses_bad_arguments_by_name():
    m = sp.identity(24, format="csr")
    for args, error, name in (((m, (2, 3, 4), 3), ValueError, "`axis`"), ((m, (2, 3, 4), True), TypeError, "`axis`"),
                              ((m, (2, 3, 4), None), TypeError, "`axis`"), ((m, (2, 0, 4), 0), ValueError, "`shape`"),
                              (("x", (2, 3, 4), 0), TypeError, "`matrix`"), ((m, (2, 3, 5), 0), ValueError, "30 cells")):
        with pytest.raises(error, match=name):
            line_system(*args)
