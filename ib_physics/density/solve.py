r"""Time integration and stationary states of the Fokker–Planck equation.

Time stepping is BDF2 with adaptive step size: steps change by factors of two,
and each step size's sparse LU factorisation of :math:`I - \tfrac23 h A` is kept
and reused while the coefficients are constant (a new segment of a schedule
assembles a new operator). The local error is estimated by Milne's device,
:math:`\tfrac{2}{11}\lVert y_{BDF2} - y_{pred}\rVert_1` with a quadratic predictor,
in the L1 norm of probability. Outputs and switch times are reached by the
quadratic interpolant through the last three accepted points, so no step is
shortened to hit them. A backward-Euler step (positive for the M-matrix of the
Scharfetter–Gummel operator) starts each segment and replaces any BDF2 step that
would produce a negative density.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack

from .._validation import (as_bool, as_float_array, check_choice, check_finite_positive, check_finite_scalar,
                           check_t_span)
from ..dynamics import Dynamics
from .contour import bandwidth, is_tridiagonal, series_exponential, tridiagonal_exponential
from .fourth_order import MIN_CELLS, assemble_fourth_order
from .grid import Grid
from .lines import line_system
from .operator import Operator, assemble
from .result import DensityResult
from .separable import apply_along_axes, line_exponentials, line_operators, solve_kronecker_sum

__all__ = ["solve_fokker_planck", "stationary_density", "DensityWarning"]


#: A BDF2 step whose negative values hold at most this share of ``tol`` (as L1 mass) is clipped to
#: zero, mass kept; a deeper undershoot takes the step again by backward Euler (positive).
_CLIP_SHARE = 0.02


class DensityWarning(UserWarning):
    """The grid resolves the solution poorly (large cell Péclet number, mass piled at a wall)."""


def _lagrange(ts: Sequence[float], t: float) -> list[float]:
    """Weights of the Lagrange polynomial through ``ts`` evaluated at ``t`` (2 or 3 points)."""
    w = []
    for i, ti in enumerate(ts):
        wi = 1.0
        for j, tj in enumerate(ts):
            if i != j:
                wi *= (t - tj) / (ti - tj)
        w.append(wi)
    return w


def _combine(weights: Sequence[float], items: Sequence[np.ndarray]) -> np.ndarray:
    """Sum of weights x items; a unit weight vector (uniform history) returns the item itself."""
    for i, wi in enumerate(weights):
        if abs(wi - 1.0) < 1e-12 and all(abs(wj) < 1e-12 for j, wj in enumerate(weights) if j != i):
            return items[i]
    out = weights[0] * items[0]
    for w, y in zip(weights[1:], items[1:]):
        out = out + w * y
    return out


class _Factorisations:
    """Solvers of (I - c A) x = b, kept per c while A is constant.

    ``direct``: a sparse LU per c. ``split``: BiCGSTAB preconditioned by the product of
    the per-axis factors (I - c A_0)(I - c A_1)(I - c A_2), each a set of independent
    tridiagonal systems (no fill); the 3D path, where a direct LU fills in too much.
    """

    def __init__(self, op: Operator, method: str, rtol: float, shape: tuple[int, ...]) -> None:
        self.matrix = op.matrix.tocsr()  # row-wise products for the Krylov matvecs
        self.axes = [m.tocsc() for m in op.axis_matrices]
        # The split factors as batched tridiagonal lines where an axis allows it (not periodic),
        # else a sparse LU of that axis' matrix.
        self.line_systems = ([line_system(m, shape, k) for k, m in enumerate(op.axis_matrices)]
                      if method == "split" else [])
        self.eye = sp.identity(op.matrix.shape[0], format="csc")
        self.method = method
        self.rtol = rtol
        self.bandwidth = bandwidth(op.matrix)
        self.cache: dict[float, Any] = {}
        self.count = 0
        self.iterations = 0

    def _factor(self, c: float) -> Any:
        solver = self.cache.get(c)
        if solver is None:
            if len(self.cache) >= 12:
                self.cache.pop(next(iter(self.cache)))
            system = (self.eye - c * self.matrix).tocsc()
            if self.method == "direct" and self.bandwidth == 2:
                # 1D fourth order (pentadiagonal): LAPACK's banded LU, O(n) per solve.
                kl = ku = 2
                n = system.shape[0]
                band = np.zeros((2 * kl + ku + 1, n))
                for offset in range(-kl, ku + 1):
                    diagonal = system.diagonal(offset)
                    if offset >= 0:
                        band[kl + ku - offset, offset:] = diagonal
                    else:
                        band[kl + ku - offset, :n + offset] = diagonal
                lu, ipiv, info = lapack.dgbtrf(band, kl, ku)
                if info != 0:
                    raise RuntimeError(f"banded factorisation failed (info {info}).")
                solver = ("banded", lu, ipiv)
            elif self.method == "direct" and self.bandwidth <= 1:
                # 1D without periodic wrap: LAPACK's tridiagonal LU, O(n) per solve.
                d = system.diagonal()
                dl = system.diagonal(-1)
                du = system.diagonal(1)
                dl, d, du, du2, ipiv, info = lapack.dgttrf(dl, d, du)
                if info != 0:
                    raise RuntimeError(f"tridiagonal factorisation failed (info {info}).")
                solver = ("tridiagonal", dl, d, du, du2, ipiv)
            elif self.method == "direct":
                # Minimum degree on A^T + A suits the structurally symmetric stencil (half COLAMD's fill).
                solver = spla.splu(system, permc_spec="MMD_AT_PLUS_A")
            else:
                solver = [lines.factor(c) if lines is not None else
                          spla.splu((self.eye - c * m).tocsc(), permc_spec="MMD_AT_PLUS_A")
                          for m, lines in zip(self.axes, self.line_systems)]
            self.cache[c] = solver
            self.count += 1
        return solver

    def solve(self, c: float, rhs: np.ndarray) -> np.ndarray:
        solver = self._factor(c)
        if isinstance(solver, tuple) and solver[0] == "banded":
            x, info = lapack.dgbtrs(solver[1], 2, 2, rhs, solver[2])
            return x
        if isinstance(solver, tuple):
            _, dl, d, du, du2, ipiv = solver
            x, info = lapack.dgttrs(dl, d, du, du2, ipiv, rhs)
            return x
        if self.method == "direct":
            return solver.solve(rhs)
        n = rhs.size

        def precondition(v: np.ndarray) -> np.ndarray:
            for factors in reversed(solver):
                v = factors.solve(v)
            return v

        system = spla.LinearOperator((n, n), matvec=lambda v: v - c * (self.matrix @ v), dtype=float)
        pre = spla.LinearOperator((n, n), matvec=precondition, dtype=float)
        counter = {"k": 0}

        def count(_: Any) -> None:
            counter["k"] += 1

        x, info = spla.bicgstab(system, rhs, x0=precondition(rhs.copy()), M=pre, rtol=self.rtol, atol=0.0,
                                maxiter=500, callback=count)
        self.iterations += counter["k"]
        if info != 0:
            raise RuntimeError(f"the split-preconditioned BiCGSTAB did not converge (info {info}); "
                               "use linear_solver='direct' or smaller steps.")
        return x


def solve_fokker_planck(
    dynamics: Dynamics,
    grid: Grid,
    p0: Any,
    t_span: Sequence[float],
    *,
    t_eval: Any = None,
    tol: float = 1e-8,
    first_step: float | None = None,
    max_step: float | None = None,
    linear_solver: str = "auto",
    time_integration: str = "auto",
    spatial_order: int = 2,
    progress: bool = False,
) -> DensityResult:
    r"""Solve :math:`\partial_t p = -\nabla\cdot J`, :math:`J_i = a_i p - \partial_i (D_i p)` on a grid.

    Parameters
    ----------
    dynamics : Dynamics
        Drift and diffusion (the same object the particle engine takes).
    grid : Grid
        Cells on a Box or on the glass; its domain's faces set the boundary conditions.
    p0 : array_like of shape ``grid.shape`` or callable
        Initial density per unit volume (>= 0, finite, positive mass), or a
        function of the cell-centre coordinates.
    t_span : (t0, t1)
    t_eval : array_like, optional
        Sorted output times in ``t_span``; default ``(t0, t1)``.
    tol : float
        Target local error per step, in L1 norm of probability.
    first_step, max_step : float, optional
        Bounds on the step size (the first step is chosen from the data otherwise).
    linear_solver : {"auto", "direct", "split"}
        ``"direct"``: sparse LU per step size (exact to round-off). ``"split"``: BiCGSTAB
        with the per-axis (dimension-split) factors as preconditioner, solved to a
        relative residual of 1e-12 (mass is then conserved to about that level). ``"auto"``
        takes ``"split"`` for 2D and 3D grids above 20 000 cells, where LU fill-in grows (2D: 2.8x faster
        at 256², measured) or explodes (3D).
    time_integration : {"auto", "bdf2", "exponential"}
        ``"bdf2"``: adaptive BDF2 (any coefficients). ``"exponential"``: exact in time
        (to about 1e-13), with no time steps. In 1D (reflecting or absorbing ends, second
        order) by contour quadrature of the resolvent (:mod:`ib_physics.density.contour`),
        absorbed amounts included; other 1D grids (periodic, fourth order) by a dense
        exponential when forced. In 2D and 3D,
        :math:`e^{tA} = \bigotimes_k e^{t a_k}` for a separable operator (each axis' drift
        and diffusion depend on that axis' coordinate only; see
        :mod:`ib_physics.density.separable`) with at most 1024 cells per axis; the absorbed
        amounts are the outflow applied to :math:`A^{-1}(p(t) - p_0)`, one Sylvester solve per
        slice. Where it does not apply it raises ``ValueError``. ``"auto"``: exponential
        wherever it applies, BDF2 elsewhere (periodic or fourth-order 1D grids, coupled
        drifts in 2D/3D, or an absorbed-mass balance off by more than 1e-9).
    spatial_order : {2, 4}
        2: Scharfetter–Gummel fluxes (positive, discrete equilibrium exactly Boltzmann; any
        coefficients, boxes and the glass). 4: fourth-order finite volumes
        (:mod:`ib_physics.density.fourth_order`) for smooth solutions of separable problems
        on boxes with reflecting or periodic faces and diffusion constant in space; far
        smaller errors on the same grid, but not guaranteed positive.
    progress : bool
        Show a tqdm bar over time.

    Returns
    -------
    DensityResult
    """
    if not isinstance(dynamics, Dynamics):
        raise TypeError(f"`dynamics` must be an ib_physics.Dynamics, got {type(dynamics).__name__}.")
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be an ib_physics.Grid, got {type(grid).__name__}.")
    t0, t1 = check_t_span(t_span)
    y0 = initial_values(grid, p0)
    tol = check_finite_positive(tol, "tol")
    if not MIN_TOL <= tol <= 1.0:
        # Below ~1e-14 the local error estimate is round-off and the step size would shrink forever.
        raise ValueError(f"`tol` must be in [{MIN_TOL:g}, 1], got {tol:g}.")
    out_t = _check_t_eval(t_eval, t0, t1)
    h_max = check_finite_positive(max_step, "max_step") if max_step is not None else (t1 - t0)
    if first_step is not None:
        first_step = check_finite_positive(first_step, "first_step")
        if first_step < _time_resolution(t0, t1):
            raise ValueError(f"`first_step` must be >= {_time_resolution(t0, t1):.3g} (the resolution of times "
                             f"near t_span), got {first_step:g}.")
    if not callable(progress):
        progress = as_bool(progress, "progress")
    check_choice(linear_solver, "linear_solver", ("auto", "direct", "split"))
    check_choice(time_integration, "time_integration", ("auto", "bdf2", "exponential"))
    if not isinstance(spatial_order, (int, np.integer)) or isinstance(spatial_order, (bool, np.bool_)) \
            or spatial_order not in (2, 4):
        raise ValueError(f"`spatial_order` must be 2 or 4, got {spatial_order!r}.")
    if spatial_order == 4:
        if grid.cylindrical:
            raise ValueError("`spatial_order=4` works on boxes; the glass (r, z) is second order.")
        if "absorbing" in grid.face_kinds:
            raise ValueError("`spatial_order=4` needs reflecting or periodic faces, not absorbing ones.")
        if dynamics.has_field:
            raise ValueError("`spatial_order=4` needs a diffusion coefficient constant in space, not a field.")
        if dynamics.flow is not None:
            raise ValueError("`spatial_order=4` needs a separable drift; a `flow` couples the axes.")
        if min(grid.shape) < MIN_CELLS:
            raise ValueError(f"`spatial_order=4` needs at least {MIN_CELLS} cells per axis, got {grid.shape}.")
    if linear_solver == "auto":
        linear_solver = "split" if (grid.ndim >= 2 and grid.n_cells > 20_000) else "direct"
    phys_dim = 3 if grid.cylindrical else grid.ndim
    plan = dynamics.plan(phys_dim, t0, t1)
    vol = grid.volumes().ravel()
    n_faces = 2 * grid.ndim
    n_out = out_t.size
    p_out = np.empty((n_out, grid.n_cells))
    abs_out = np.zeros((n_out, n_faces))
    rate_out = np.zeros((n_out, n_faces))
    current_out = [np.zeros((n_out, int(np.prod(_face_shape(grid, k))))) for k in range(grid.ndim)]
    stats = {"steps": 0, "rejected": 0, "factorisations": 0, "backward_euler_steps": 0, "clipped_steps": 0, "max_cell_peclet": 0.0,
             "krylov_iterations": 0, "linear_solver": linear_solver, "mass_projection": 0.0,
             "exponential_segments": 0}
    m0 = float(vol @ y0)
    started = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=t1 - t0, desc="density", unit="time",
                   bar_format="{l_bar}{bar}| t = {n:.4g} of {total:.4g} [{elapsed}<{remaining}]")

    next_out = 0
    y_start, a_start = y0, np.zeros(n_faces)
    h = first_step
    for seg in range(plan.n_segments):
        a = float(plan.starts[seg])
        b = float(plan.starts[seg + 1]) if seg + 1 < plan.n_segments else t1
        op = assemble(dynamics, grid, plan, seg)
        stats["max_cell_peclet"] = max(stats["max_cell_peclet"], op.max_cell_peclet)
        if spatial_order == 4:
            if grid.ndim > 1 and line_operators(op.axis_matrices, grid.shape, max_cells=None) is None:
                raise ValueError(f"`spatial_order=4`: the problem is not separable on the segment starting at t = {a} "
                                 "(a drift component depends on another axis' coordinate).")
            op = assemble_fourth_order(dynamics, grid, plan, seg, op.max_cell_peclet)
        lines = None
        one_axis = grid.ndim == 1 and spatial_order == 2 and is_tridiagonal(op.matrix)
        if time_integration == "exponential" or (time_integration == "auto" and (
                one_axis or grid.ndim >= 2)):
            lines = [] if one_axis else line_operators(op.axis_matrices, grid.shape)
            if lines is None and time_integration == "exponential":
                raise ValueError(f"`time_integration='exponential'`: the operator of the segment starting at t = {a} "
                                 "is not a sum of one-axis operators (a drift or diffusion component depends on "
                                 "another axis' coordinate), or an axis has more than 1024 cells.")
        facs = None if lines is not None else _Factorisations(op, linear_solver, 1e-12, tuple(grid.shape))

        def record(k: int, y: np.ndarray, absorbed: np.ndarray) -> None:
            low = float(np.min(y))
            if low < 0.0 and low >= -1e-9 * float(np.max(y)):
                # The interpolant between positive steps can dip below zero by round-off where the
                # density falls by many decades within a step: clip, keeping the mass.
                mass = float(vol @ y)
                y = np.maximum(y, 0.0)
                y *= mass / float(vol @ y)
            p_out[k] = y
            abs_out[k] = absorbed
            rate_out[k] = op.outflow @ y
            for axis in range(grid.ndim):
                current_out[axis][k] = op.face_flux[axis] @ y

        while next_out < n_out and out_t[next_out] <= a + 1e-13 * max(1.0, abs(a)):
            record(next_out, y_start, a_start)
            next_out += 1
        if lines is not None:
            # Exact in time: each output from the segment's start, in 1D by contour quadrature, in
            # 2D/3D by one exponential per axis; absorbed amounts included (see _propagate_exactly).
            first_out = next_out
            try:
                end = None
                while next_out < n_out and out_t[next_out] <= b + 1e-13 * max(1.0, abs(b)):
                    y_t, a_t = _propagate_exactly(op, lines, grid, vol, m0, float(out_t[next_out]) - a,
                                                  y_start, a_start, stats)
                    record(next_out, y_t, a_t)
                    if abs(out_t[next_out] - b) <= 1e-13 * max(1.0, abs(b)):
                        end = (y_t, a_t)
                    next_out += 1
                y_start, a_start = (_propagate_exactly(op, lines, grid, vol, m0, b - a, y_start, a_start, stats)
                                    if end is None else end)
                if bar is not None:
                    bar.update((b - t0) - bar.n)
                stats["exponential_segments"] += 1
                stats["steps"] += 1
                continue
            except _InexactAbsorption as exc:
                if time_integration == "exponential":
                    raise ValueError(f"`time_integration='exponential'`: {exc}; use 'bdf2'.") from None
                next_out = first_out  # redo this segment by BDF2
                facs = _Factorisations(op, linear_solver, 1e-12, tuple(grid.shape))
        if h is None:
            h = _first_step(op, y_start, vol, tol, b - a)
        # A step below the resolution of the time itself (a very stiff segment late in time) would
        # repeat a time in the history; the error control takes over from this floor.
        h = min(max(h, _time_resolution(a, b)), h_max)
        hist_t = [a]
        hist_y = [y_start]
        hist_a = [a_start]
        calm = 0
        while hist_t[-1] < b - 1e-13 * max(1.0, abs(b)):
            tn, yn, an = hist_t[-1], hist_y[-1], hist_a[-1]
            if len(hist_t) == 1:
                y_new = facs.solve(h, yn)
                a_new = an + h * (op.outflow @ y_new)
                stats["backward_euler_steps"] += 1
                err = 0.0
            else:
                w_star = _lagrange(hist_t, tn - h)
                y_star = _combine(w_star, hist_y)
                a_star = _combine(w_star, hist_a)
                y_new = facs.solve(2.0 * h / 3.0, (4.0 * yn - y_star) / 3.0)
                a_new = (4.0 * an - a_star) / 3.0 + (2.0 * h / 3.0) * (op.outflow @ y_new)
                err = 0.0
                if len(hist_t) == 3:
                    y_pred = _combine(_lagrange(hist_t, tn + h), hist_y)
                    err = (2.0 / 11.0) * float(vol @ np.abs(y_new - y_pred))
                if err > tol and h > 1e-14 * max(1.0, abs(b)):
                    stats["rejected"] += 1
                    h *= 0.5
                    calm = 0
                    continue
                low = float(np.min(y_new))
                negative = float(vol @ np.maximum(-y_new, 0.0)) if low < 0.0 else 0.0
                if spatial_order == 2 and 0.0 < negative <= _CLIP_SHARE * tol:
                    # An undershoot whose negative mass is far below the step's error tolerance (L1):
                    # clip it, keeping the mass, and keep second order; the clip moves the density
                    # by at most twice that mass, where a backward-Euler restart costs O(h²).
                    mass = float(vol @ y_new)
                    y_new = np.maximum(y_new, 0.0)
                    y_new *= mass / float(vol @ y_new)
                    stats["clipped_steps"] += 1
                elif spatial_order == 2 and low < 0.0:
                    # Positivity: take this step by backward Euler and restart the history.
                    y_new = facs.solve(h, yn)
                    a_new = an + h * (op.outflow @ y_new)
                    stats["backward_euler_steps"] += 1
                    hist_t, hist_y, hist_a = [tn], [yn], [an]
            # The scheme conserves mass + absorbed exactly in exact arithmetic; round-off in the
            # linear solves of stiff problems (cell Péclet numbers of thousands) breaks it at
            # ~1e-11. Project back onto the invariant when the correction is that small.
            inside = float(vol @ y_new)
            target = m0 - float(np.sum(a_new))
            if inside > 0.0 and abs(target / inside - 1.0) < 1e-8:
                stats["mass_projection"] = max(stats["mass_projection"], abs(target / inside - 1.0))
                y_new = y_new * (target / inside)
            stats["steps"] += 1
            hist_t.append(tn + h)
            hist_y.append(y_new)
            hist_a.append(a_new)
            if len(hist_t) > 3:
                hist_t.pop(0)
                hist_y.pop(0)
                hist_a.pop(0)
            if bar is not None:
                bar.update(min(tn + h, b) - min(tn, b))
            # Outputs inside the step, by the interpolant through the accepted points.
            limit = min(tn + h, b)
            while next_out < n_out and out_t[next_out] <= limit + 1e-13 * max(1.0, abs(limit)):
                w = _lagrange(hist_t, out_t[next_out])
                record(next_out, _combine(w, hist_y), _combine(w, hist_a))
                next_out += 1
            # Grow the step when the error has stayed well below the target; the point two
            # steps back is then exactly one doubled step back, so no history is extrapolated.
            calm = calm + 1 if err < tol / 10.0 else 0
            uniform = len(hist_t) == 3 and abs((hist_t[2] - hist_t[1]) - (hist_t[1] - hist_t[0])) < 1e-12 * h
            if calm >= 2 and uniform and 2 * h <= h_max:
                hist_t, hist_y, hist_a = [hist_t[0], hist_t[2]], [hist_y[0], hist_y[2]], [hist_a[0], hist_a[2]]
                h *= 2.0
                calm = 0
        w_end = _lagrange(hist_t, b)
        y_start, a_start = _combine(w_end, hist_y), _combine(w_end, hist_a)
        stats["factorisations"] += facs.count
        stats["krylov_iterations"] += facs.iterations
    if bar is not None:
        bar.close()
    while next_out < n_out:  # t1 itself when the last step ended exactly on it
        p_out[next_out] = y_start
        abs_out[next_out] = a_start
        next_out += 1
    mass = p_out @ vol
    mass_error = float(np.max(np.abs(mass + abs_out.sum(axis=1) - m0))) / m0
    stats.update({
        "wall_time_s": time.perf_counter() - started,
        "mass_error": mass_error,
        "min_density": float(p_out.min()),
        "tol": tol,
    })
    _warn_resolution(grid, p_out[-1].reshape(grid.shape), stats["max_cell_peclet"])
    shape = grid.shape
    return DensityResult(
        t=out_t, p=p_out.reshape((n_out,) + shape), mass=mass, absorbed=abs_out, outflow_rate=rate_out,
        current=tuple(c.reshape((n_out,) + _face_shape(grid, k)) / _safe_area(grid, k)
                      for k, c in enumerate(current_out)),
        grid=grid, dynamics=dynamics, face_names=grid.face_names, diagnostics=stats,
    )


class _InexactAbsorption(ArithmeticError):
    """The absorbed amounts of the exact path do not balance the mass lost (ill-conditioned solve)."""


def _propagate_exactly(op: Operator, lines: list[np.ndarray], grid: Grid, vol: np.ndarray, m0: float, tau: float,
                       y: np.ndarray, absorbed: np.ndarray, stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Density and absorbed amounts a time ``tau`` after (y, absorbed), exactly in time.

    In 2D/3D the absorbed amounts are O times the occupation integral of the density,
    int_0^tau p ds = A^{-1} (p(tau) - p(0)): A is a nonsingular Kronecker sum as soon as a
    face absorbs, and the solve is a Sylvester equation per slice (``solve_kronecker_sum``).
    """
    if not lines:
        y_t, a_t = tridiagonal_exponential(op.matrix, op.outflow, tau, y, absorbed)
        # The quadrature's error is amplified by the condition number of the symmetrising
        # similarity, exp(ΔU / 2D) across the grid: with strong drift and weak noise it can
        # return garbage. Mass balance and positivity tell; then the series takes over.
        scale = max(float(np.max(np.abs(y_t))) if y_t.size else 0.0, 1e-300)
        balance = abs(float(vol @ y_t) + float(np.sum(a_t)) - float(vol @ y) - float(np.sum(absorbed)))
        if not (np.all(np.isfinite(y_t)) and balance <= 1e-8 * m0 and float(np.min(y_t)) >= -1e-8 * scale):
            y_t, a_t = series_exponential(op.matrix, op.outflow, tau, y, absorbed)
            stats["series_fallbacks"] = stats.get("series_fallbacks", 0) + 1
    else:
        y_t = apply_along_axes(line_exponentials(lines, tau), y, grid.shape)
        a_t = absorbed
        if op.outflow.nnz:
            occupation = solve_kronecker_sum(lines, y_t - y, grid.shape)
            a_t = absorbed + op.outflow @ occupation
            lost = float(vol @ y) - float(vol @ y_t)
            if abs(float(np.sum(a_t - absorbed)) - lost) > 1e-9 * m0:
                raise _InexactAbsorption(f"the outflow integral misses the mass balance by "
                                         f"{abs(float(np.sum(a_t - absorbed)) - lost) / m0:.2g} of the mass")
            a_t = np.maximum(a_t, absorbed)  # round-off below the previous amount
    inside = float(vol @ y_t)
    ratio = (m0 - float(np.sum(a_t))) / inside if inside > 0 else 1.0
    if abs(ratio - 1.0) < 1e-8:  # round-off of the exponentials
        stats["mass_projection"] = max(stats["mass_projection"], abs(ratio - 1.0))
        y_t = y_t * ratio
    return y_t, a_t


def _face_shape(grid: Grid, axis: int) -> tuple[int, ...]:
    return tuple(n + 1 if k == axis else n for k, n in enumerate(grid.shape))


def _safe_area(grid: Grid, axis: int) -> np.ndarray:
    area = grid.face_areas(axis)
    return np.where(area > 0, area, np.inf)


#: Smallest relative tolerance of the adaptive steppers (near round-off the error estimate is noise).
MIN_TOL = 1e-14


def _time_resolution(t0: float, t1: float) -> float:
    """The smallest step the steppers take near t_span: times closer than this are not told apart."""
    return 1e-12 * max(1.0, abs(t0), abs(t1))


def _first_step(op: Operator, y: np.ndarray, vol: np.ndarray, tol: float, span: float) -> float:
    """A first backward-Euler step whose error h^2/2 |A^2 y| meets the tolerance."""
    ay = op.matrix @ y
    a2y = op.matrix @ ay
    curvature = float(vol @ np.abs(a2y))
    if curvature <= 0:
        return span
    return float(min(span, np.sqrt(2.0 * tol / curvature)))


def _check_t_eval(t_eval: Any, t0: float, t1: float) -> np.ndarray:
    if t_eval is None:
        return np.array([t0, t1])
    te = np.atleast_1d(as_float_array(t_eval, "t_eval"))
    if te.ndim != 1 or te.size == 0 or not np.all(np.isfinite(te)) or np.any(np.diff(te) <= 0):
        raise ValueError("`t_eval` must be a non-empty, strictly increasing 1-D array of finite times.")
    if te[0] < t0 or te[-1] > t1:
        raise ValueError(f"`t_eval` must lie inside `t_span` [{t0}, {t1}].")
    return te


def initial_values(grid: Grid, p0: Any) -> np.ndarray:
    """Validated initial density as a flat array over the cells."""
    if callable(p0):
        try:
            p0 = grid.evaluate(p0)
        except ValueError as exc:
            if "broadcast" not in str(exc):
                raise
            raise ValueError(f"`p0` (a function) must return one density per cell, shape {grid.shape} or "
                             "broadcastable to it, from the centres' coordinate arrays.") from None
    try:
        arr = as_float_array(p0, "p0")
    except TypeError:
        raise TypeError("`p0` must be an array of densities or a function of the cell centres.") from None
    if arr.shape != grid.shape:
        raise ValueError(f"`p0` must have the grid's shape {grid.shape}, got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("`p0` must be finite.")
    if np.any(arr < 0):
        raise ValueError(f"`p0` must be >= 0; its minimum is {arr.min()}.")
    if grid.integrate(arr) <= 0:
        raise ValueError("`p0` must have positive mass.")
    return arr.ravel().copy()


def _warn_resolution(grid: Grid, p: np.ndarray, max_peclet: float) -> None:
    if max_peclet > 20:
        warnings.warn(f"cell Péclet number {max_peclet:.3g} > 20: the drift changes the density by a factor "
                      f"e^{max_peclet:.0f} between neighbouring cells; refine the grid.", DensityWarning, stacklevel=3)
    vol = grid.volumes()
    mass = float(np.sum(p * vol))
    if mass <= 0:
        return
    kinds = grid.face_kinds
    for axis in range(grid.ndim):
        for side in (0, 1):
            if kinds[2 * axis + side] != "reflecting" or (grid.cylindrical and axis == 0 and side == 0):
                continue
            layer = np.take(p * vol, [0 if side == 0 else grid.shape[axis] - 1], axis=axis).sum()
            if layer > 0.5 * mass:
                warnings.warn(f"{layer / mass:.0%} of the mass sits in the cells next to face "
                              f"{grid.face_names[2 * axis + side]!r}: the boundary layer is not resolved.",
                              DensityWarning, stacklevel=3)


def stationary_density(dynamics: Dynamics, grid: Grid, *, t: float = 0.0) -> np.ndarray:
    """The stationary density (unit mass) of the coefficients in force at time ``t``.

    One sparse solve of A p = 0 with the mass constraint replacing one equation
    (the equations are linearly dependent because probability is conserved); for a
    separable operator (see :mod:`ib_physics.density.separable`) the product of the
    one-axis stationary states, each from its own solve.

    Returns
    -------
    numpy.ndarray, shape ``grid.shape``
    """
    if not isinstance(dynamics, Dynamics):
        raise TypeError(f"`dynamics` must be an ib_physics.Dynamics, got {type(dynamics).__name__}.")
    if not isinstance(grid, Grid):
        raise TypeError(f"`grid` must be an ib_physics.Grid, got {type(grid).__name__}.")
    if "absorbing" in grid.face_kinds:
        raise ValueError("with absorbing faces all probability leaves: there is no stationary density.")
    t = check_finite_scalar(t, "t")
    phys_dim = 3 if grid.cylindrical else grid.ndim
    plan = dynamics.plan(phys_dim, t, t)
    op = assemble(dynamics, grid, plan, 0)
    vol = grid.volumes().ravel()
    u = dynamics.potential.value(grid.cell_points()).reshape(grid.shape)
    lines = line_operators(op.axis_matrices, grid.shape, max_cells=None) if grid.ndim > 1 else None
    if lines is not None:
        # Separable: the product of the one-axis stationary states is annihilated by the Kronecker
        # sum, so each axis is solved on its own (milliseconds instead of one 2D/3D sparse LU).
        p = np.ones(1)
        for axis, line in enumerate(lines):
            u_line = u[tuple(slice(None) if k == axis else 0 for k in range(grid.ndim))]
            p = np.multiply.outer(p, _null_vector(sp.csr_matrix(line), np.ones(grid.shape[axis]), u_line))
        p = p.ravel()
    else:
        p = _null_vector(op.matrix, vol, u.ravel())
    p = p / float(vol @ p)
    return p.reshape(grid.shape)


def _null_vector(matrix: sp.spmatrix, vol: np.ndarray, u: np.ndarray) -> np.ndarray:
    """p >= 0 with A p = 0 (unnormalised), for a conservative operator A (V^T A = 0)."""
    # The equations are linearly dependent: pin one cell, solve. The pinned cell must carry
    # weight, or the other equations decouple numerically: take the potential's minimum, the
    # densest cell under gradient drift.
    n = matrix.shape[0]
    k = int(np.argmin(u))
    keep = np.ones(n)
    keep[k] = 0.0
    a = sp.diags(keep) @ matrix + sp.csr_matrix(([1.0], ([k], [k])), shape=matrix.shape)
    rhs = np.zeros(n)
    rhs[k] = 1.0
    try:
        lu = spla.splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A")
        p = lu.solve(rhs)
        for _ in range(2):  # iterative refinement: stiff drifts leave ~1e-9 of round-off otherwise
            p = p + lu.solve(rhs - a @ p)
        ok = bool(np.all(np.isfinite(p)) and np.min(p) >= -1e-12 * np.max(np.abs(p)))
    except RuntimeError:
        ok = False
    if not ok:
        # Bordered system [A V; V^T 0] [p; lambda] = [0; 1]: nonsingular whenever the
        # stationary state is unique, whatever the drift.
        col = sp.csr_matrix(vol.reshape(-1, 1))
        bordered = sp.bmat([[matrix, col], [col.T, None]], format="csc")
        rhs = np.zeros(n + 1)
        rhs[n] = 1.0
        p = spla.splu(bordered).solve(rhs)[:n]
    return p


def gaussian_density(grid: Grid, mean: Any, std: Any) -> np.ndarray:
    """A normalised Gaussian as cell averages (boxes) or centre values (the glass).

    Parameters
    ----------
    mean, std : float or array_like (d,)
        Centre and per-axis standard deviation; on the glass ``mean`` is (x, y, z)
        with x = y = 0 (axisymmetric) and ``std`` is (radial-per-axis, z).
    """
    from scipy.special import erf

    if grid.cylindrical:
        mu = np.atleast_1d(np.asarray(mean, float))
        sd = np.atleast_1d(np.asarray(std, float))
        if mu.size != 3 or abs(mu[0]) > 0 or abs(mu[1]) > 0:
            raise ValueError("`mean` on the glass must be (0, 0, z): the density is axisymmetric.")
        s_r, s_z = (sd[0], sd[-1])
        p = grid.evaluate(lambda r, z: np.exp(-0.5 * (r / s_r) ** 2 - 0.5 * ((z - mu[2]) / s_z) ** 2))
        return p / grid.integrate(p)
    mu = np.broadcast_to(np.asarray(mean, float), (grid.ndim,))
    sd = np.broadcast_to(np.asarray(std, float), (grid.ndim,))
    if np.any(sd <= 0):
        raise ValueError("`std` must be > 0.")
    factors = []
    for k, e in enumerate(grid.edges):
        cdf = 0.5 * (1 + erf((e - mu[k]) / (np.sqrt(2) * sd[k])))
        factors.append(np.diff(cdf) / np.diff(e))
    p = factors[0]
    for f in factors[1:]:
        p = np.multiply.outer(p, f)
    return p / grid.integrate(p)


def density_from_particles(grid: Grid, positions: np.ndarray) -> np.ndarray:
    """Histogram of particle positions (n, d) as a density on the grid (unit mass inside)."""
    x = np.asarray(positions, dtype=float)
    if grid.cylindrical:
        if x.ndim != 2 or x.shape[1] != 3:
            raise ValueError("`positions` on the glass must have shape (n, 3).")
        coords = np.column_stack([np.hypot(x[:, 0], x[:, 1]), x[:, 2]])
    else:
        coords = x.reshape(len(x), -1)
        if coords.shape[1] != grid.ndim:
            raise ValueError(f"`positions` must have {grid.ndim} coordinates per particle.")
    counts, _ = np.histogramdd(coords, bins=grid.edges)
    if counts.sum() == 0:
        raise ValueError("no particle lies on the grid.")
    return counts / (counts.sum() * grid.volumes())

