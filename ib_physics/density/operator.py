r"""The finite-volume Fokker–Planck operator with Scharfetter–Gummel fluxes.

With :math:`q = D p` the Itô current is :math:`J = v q - \partial q`, :math:`v = a / D`.
Between cells L and R a distance h apart, with :math:`z = \int_L^R v\,dx`, the
exponentially fitted (Scharfetter–Gummel) flux is

.. math:: J = \frac{1}{h}\bigl[B(-z)\,q_L - B(z)\,q_R\bigr], \qquad B(z) = \frac{z}{e^z - 1}.

The integral is taken from potential differences,
:math:`z = [-\mu s\,(U_R - U_L) + \mu f h + u_f h] / D_f + \alpha \ln(D_R / D_L)`, so that
for gradient drift and constant D the discrete stationary state is
:math:`\exp(-\mu U / D)` on the cell centres to round-off; a flow's velocity component
:math:`u_f` enters by the midpoint rule at the face centre (exact for a rigid rotation,
whose component along an axis does not vary along that axis). Absorbing faces hold
p = 0 half a cell away; periodic faces wrap (the potential is evaluated one period
away, so tilted periodic potentials keep their tilt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..dynamics import Dynamics, DynamicsPlan
from .grid import Grid

__all__ = ["Operator", "assemble", "bernoulli"]


def bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (exp(z) - 1), accurate near 0 and for large |z|."""
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < 1e-6
    safe = np.where(small, 1.0, z)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        # z e^-z / (1 - e^-z) for z > 0 never overflows; z / (e^z - 1) for z < 0 neither.
        positive = safe * np.exp(-np.abs(safe)) / -np.expm1(-np.abs(safe))
        negative = safe / np.expm1(safe)
    out = np.where(safe > 0, positive, negative)
    return np.where(small, 1.0 - 0.5 * z + z * z / 12.0, out)


@dataclass(frozen=True, eq=False)
class Operator:
    """dp/dt = A p on one constant-coefficient segment.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, (n_cells, n_cells)
    face_flux : tuple of scipy.sparse.csr_matrix
        Per grid axis, total probability flux through each face (positive along
        the axis), rows = faces in C order of the face array shape.
    face_shapes : tuple of tuple
        Shape of each axis' face array (n_k + 1 along axis k).
    outflow : scipy.sparse.csr_matrix, (n_faces, n_cells)
        Outflow rate through each domain face (zero rows for non-absorbing faces).
    max_cell_peclet : float
        Largest |z| over interior faces.
    axis_matrices : tuple of scipy.sparse.csr_matrix
        The part of ``matrix`` coupling cells along each grid axis (their sum is ``matrix``);
        used by the split preconditioner of the 3D path.
    """

    matrix: sp.csr_matrix
    face_flux: tuple[sp.csr_matrix, ...]
    face_shapes: tuple[tuple[int, ...], ...]
    outflow: sp.csr_matrix
    max_cell_peclet: float
    axis_matrices: tuple[sp.csr_matrix, ...] = ()


def _physical_axis(grid: Grid, axis: int) -> int:
    """Dynamics axis of a grid axis (the glass: r -> x, z -> z)."""
    if grid.cylindrical:
        return 0 if axis == 0 else 2
    return axis


def _coefficients_at(dynamics: Dynamics, grid: Grid, coords: tuple[np.ndarray, ...], t: float,
                     shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """U and per-axis D at the points spanned by ``coords`` (each reshaped to ``shape``)."""
    pts = grid.points(coords)
    u = dynamics.potential.value(pts).reshape(shape)
    dcoef = dynamics.coefficients(pts, t)[1]
    return u, dcoef.reshape(shape + (dcoef.shape[1],))


def _flow_at(dynamics: Dynamics, grid: Grid, coords: tuple[np.ndarray, ...], shape: tuple[int, ...],
             phys: int) -> np.ndarray | float:
    """The flow's velocity component along physical axis ``phys`` at the points spanned by ``coords``."""
    if dynamics.flow is None:
        return 0.0
    return dynamics.flow.velocity(grid.points(coords))[:, phys].reshape(shape)


def assemble(dynamics: Dynamics, grid: Grid, plan: DynamicsPlan, segment: int) -> Operator:
    """Build the operator of ``segment`` of ``plan`` on ``grid``."""
    t = float(plan.starts[segment])
    mu_s = float(plan.nl_scale[segment])
    mu_f = plan.external[segment]
    alpha = plan.alpha
    if grid.cylindrical and (abs(mu_f[0]) > 0 or abs(mu_f[1]) > 0):
        raise ValueError("on the glass the external `force` must be along z only (axisymmetry).")
    if grid.cylindrical and dynamics.flow is not None and not dynamics.flow.is_axisymmetric():
        raise ValueError("on the glass the `flow` must be axisymmetric: a Rotation about the z axis "
                         "(angular velocity along z, centre on the axis).")
    shape = grid.shape
    n = grid.n_cells
    vol = grid.volumes().ravel()
    centres = grid.centres
    u_c, d_c = _coefficients_at(dynamics, grid, centres, t, shape)
    if grid.cylindrical:
        u_swapped = dynamics.potential.value(np.column_stack([np.zeros(n), grid.cell_points()[:, 0],
                                                              grid.cell_points()[:, 2]]))
        if not np.allclose(u_swapped, u_c.ravel(), rtol=1e-9, atol=1e-12):
            raise ValueError("the potential must be axisymmetric about the glass's axis (U(r, 0, z) = U(0, r, z)).")
    index = np.arange(n).reshape(shape)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    face_flux = []
    face_shapes = []
    axis_matrices = []
    n_faces = 2 * grid.ndim
    outflow = np.zeros((n_faces, n))
    max_z = 0.0
    kinds = grid.face_kinds
    spacing = grid.spacing
    lower, upper = grid.lower, grid.upper

    def add(r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        rows.append(r.ravel())
        cols.append(c.ravel())
        vals.append(v.ravel())

    for axis in range(grid.ndim):
        first_entry = len(rows)
        phys = _physical_axis(grid, axis)
        h = spacing[axis]
        nk = shape[axis]
        areas = grid.face_areas(axis)
        fshape = areas.shape
        face_shapes.append(fshape)
        f_rows: list[np.ndarray] = []
        f_cols: list[np.ndarray] = []
        f_vals: list[np.ndarray] = []
        face_index = np.arange(int(np.prod(fshape))).reshape(fshape)
        d_axis = d_c[..., phys]

        def take(a: np.ndarray, sl: slice | int) -> np.ndarray:
            return np.take(a, np.arange(nk)[sl] if isinstance(sl, slice) else [sl], axis=axis)

        # Faces and their D: coefficients at face centres.
        face_coords = list(centres)
        face_coords[axis] = grid.edges[axis]
        u_f, d_f = _coefficients_at(dynamics, grid, tuple(face_coords), t, fshape)
        d_face = d_f[..., phys]
        w_face = _flow_at(dynamics, grid, tuple(face_coords), fshape, phys)

        def pair_flux(ui, uj, di, dj, dface, wface, dist, area, left, right, faces):
            z = (-mu_s * (uj - ui) + (mu_f[phys] + wface) * dist) / dface + alpha * np.log(dj / di)
            coef = area / dist
            bl = coef * bernoulli(-z) * di  # multiplies p_left
            br = coef * bernoulli(z) * dj  # multiplies p_right
            vl = vol[left]
            vr = vol[right]
            add(left, left, -bl / vl)
            add(left, right, br / vl)
            add(right, left, bl / vr)
            add(right, right, -br / vr)
            f_rows.extend([faces.ravel(), faces.ravel()])
            f_cols.extend([left.ravel(), right.ravel()])
            f_vals.extend([bl.ravel(), -br.ravel()])
            return float(np.max(np.abs(z))) if z.size else 0.0

        # Interior faces 1..nk-1 between cells i-1 and i.
        if nk > 1:
            left = take(index, slice(0, nk - 1))
            right = take(index, slice(1, nk))
            faces = np.take(face_index, np.arange(1, nk), axis=axis)
            area = np.take(areas, np.arange(1, nk), axis=axis)
            dface = np.take(d_face, np.arange(1, nk), axis=axis)
            wface = np.take(w_face, np.arange(1, nk), axis=axis) if np.ndim(w_face) else w_face
            max_z = max(max_z, pair_flux(take(u_c, slice(0, nk - 1)), take(u_c, slice(1, nk)),
                                         take(d_axis, slice(0, nk - 1)), take(d_axis, slice(1, nk)),
                                         dface, wface, h, area, left, right, faces))
        lo_kind, hi_kind = kinds[2 * axis], kinds[2 * axis + 1]
        if lo_kind == "periodic":
            # Wrap face between the last cell and the first cell shifted by one period.
            period = upper[axis] - lower[axis]
            shifted = list(centres)
            shifted[axis] = centres[axis][:1] + period
            u_first, _ = _coefficients_at(dynamics, grid, tuple(shifted), t,
                                          tuple(1 if k == axis else s for k, s in enumerate(shape)))
            edge_coords = list(centres)
            edge_coords[axis] = grid.edges[axis][-1:]
            edge_shape = tuple(1 if k == axis else s for k, s in enumerate(shape))
            _, d_edge = _coefficients_at(dynamics, grid, tuple(edge_coords), t, edge_shape)
            w_edge = _flow_at(dynamics, grid, tuple(edge_coords), edge_shape, phys)
            last = take(index, nk - 1)
            first = take(index, 0)
            area = np.take(areas, [nk], axis=axis)
            max_z = max(max_z, pair_flux(take(u_c, nk - 1), u_first, take(d_axis, nk - 1), take(d_axis, 0),
                                         d_edge[..., phys], w_edge, h, area, last, first,
                                         np.take(face_index, [nk], axis=axis)))
            # The wrap flux is reported on both the last and the first face.
            f_rows.extend([np.take(face_index, [0], axis=axis).ravel()] * 2)
            f_cols.extend([f_cols[-2].copy(), f_cols[-1].copy()])
            f_vals.extend([f_vals[-2].copy(), f_vals[-1].copy()])
        else:
            for side, kind in ((0, lo_kind), (1, hi_kind)):
                if kind != "absorbing":
                    continue
                cell_sl = 0 if side == 0 else nk - 1
                face_sl = 0 if side == 0 else nk
                cells = take(index, cell_sl)
                u_cell = take(u_c, cell_sl)
                d_cell = take(d_axis, cell_sl)
                u_face = np.take(u_f, [face_sl], axis=axis)
                d_fc = np.take(d_face, [face_sl], axis=axis)
                w_fc = np.take(w_face, [face_sl], axis=axis) if np.ndim(w_face) else w_face
                area = np.take(areas, [face_sl], axis=axis)
                half = 0.5 * h
                if side == 0:  # face (q = 0) on the left, cell on the right
                    z = (-mu_s * (u_cell - u_face) + (mu_f[phys] + w_fc) * half) / d_fc \
                        + alpha * np.log(d_cell / d_fc)
                    rate = area / half * bernoulli(z) * d_cell
                    sign = -1.0
                else:  # cell on the left, face on the right
                    z = (-mu_s * (u_face - u_cell) + (mu_f[phys] + w_fc) * half) / d_fc \
                        + alpha * np.log(d_fc / d_cell)
                    rate = area / half * bernoulli(-z) * d_cell
                    sign = 1.0
                add(cells, cells, -rate / vol[cells])
                outflow[2 * axis + side, cells.ravel()] += rate.ravel()
                f_rows.append(np.take(face_index, [face_sl], axis=axis).ravel())
                f_cols.append(cells.ravel())
                f_vals.append(sign * rate.ravel())
        n_f = int(np.prod(fshape))
        axis_matrices.append(sp.csr_matrix((np.concatenate(vals[first_entry:]), (np.concatenate(rows[first_entry:]),
                                                                               np.concatenate(cols[first_entry:]))),
                                           shape=(n, n)))
        if f_rows:
            face_flux.append(sp.csr_matrix((np.concatenate(f_vals), (np.concatenate(f_rows), np.concatenate(f_cols))),
                                           shape=(n_f, n)))
        else:
            face_flux.append(sp.csr_matrix((n_f, n)))
    matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError("the drift or diffusion is not finite somewhere on the grid.")
    # Sparse: only cells next to absorbing faces have outflow, and it is applied every step.
    return Operator(matrix=matrix, face_flux=tuple(face_flux), face_shapes=tuple(face_shapes),
                    outflow=sp.csr_matrix(outflow),
                    max_cell_peclet=max_z, axis_matrices=tuple(axis_matrices))
