r"""A fourth-order finite-volume operator for separable problems on boxes.

The unknowns are cell averages :math:`\bar p_i`. The current through a face,
:math:`J = a\,p - D\,\partial p`, is taken from the point value and the derivative
of :math:`p` at the face, each reconstructed from the cell averages around it with
the stencil that is exact for polynomials of degree 3 (interior faces:
:math:`p_f = (-\bar p_{-2} + 7\bar p_{-1} + 7\bar p_0 - \bar p_1)/12`,
:math:`h\,p'_f = (\bar p_{-2} - 15\bar p_{-1} + 15\bar p_0 - \bar p_1)/12`) or of
degree 4 next to a wall (five cells on the inner side). The cell update
:math:`d\bar p_i/dt = -(J_{i+1/2} - J_{i-1/2})/h` then has fourth-order truncation
error. For a separable problem (each axis' drift depends on that axis' coordinate
only, constant diffusion per axis) the face average of the current is the one-axis
current of the transverse averages, so the Kronecker sum of the one-axis operators
is fourth order in 2D and 3D as well, with no transverse corrections.

Trade-offs against the Scharfetter–Gummel operator: mass is still conserved exactly
(flux form, zero flux through reflecting walls), but the operator is not an
M-matrix: the density can dip slightly below zero where it falls steeply, and the
discrete stationary state is Boltzmann to O(h^4) instead of to round-off. It needs
drift and diffusion resolved by the grid: cell Péclet numbers above 10 are refused, and so is a
grid on which the one-axis operator has an eigenvalue with positive real part (checked for lines
of up to 2048 cells), which a varying drift on a coarse grid can cause.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from ..dynamics import Dynamics, DynamicsPlan
from .grid import Grid
from .operator import Operator

__all__ = ["reconstruction_weights", "assemble_fourth_order", "MIN_CELLS"]

#: Fewest cells per axis (the wall stencils use five cells on one side).
MIN_CELLS = 6
#: Largest cell Péclet number |a| h / D accepted (central reconstructions oscillate beyond).
MAX_CELL_PECLET = 10.0
#: Lines up to this many cells get their spectrum checked (dense eigenvalues).
MAX_SPECTRUM_CHECK = 2048


@lru_cache(maxsize=64)
def reconstruction_weights(cells: tuple[int, ...], face: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights giving p(face) and h p'(face) from the averages over unit cells [j, j + 1].

    Exact for polynomials of degree ``len(cells) - 1``.

    Parameters
    ----------
    cells : tuple of int
        Left edges of the cells, in units of the cell width.
    face : float
        Position of the face in the same units.

    Returns
    -------
    value, derivative : numpy.ndarray, shape (len(cells),)
    """
    j = np.asarray(cells, dtype=float) - face  # centred on the face for conditioning
    m = np.arange(len(cells))[:, None]
    # Average of x^m over [j, j + 1].
    averages = ((j + 1.0) ** (m + 1) - j ** (m + 1)) / (m + 1)
    value_rhs = (m[:, 0] == 0).astype(float)
    derivative_rhs = (m[:, 0] == 1).astype(float)
    value, derivative = np.linalg.solve(averages, value_rhs), np.linalg.solve(averages, derivative_rhs)
    value.flags.writeable = False  # cached: shared by every caller
    derivative.flags.writeable = False
    return value, derivative


def _line_current(n: int, h: float, drift_faces: np.ndarray, diffusion: float, periodic: bool) -> sp.csr_matrix:
    """Current J at the n + 1 faces of one axis as a matrix on the n cell averages."""
    rows, cols, vals = [], [], []
    for f in range(n + 1):
        if periodic:
            if f == n:
                continue  # the same face as f = 0, copied below
            cells = tuple(range(f - 2, f + 2))
        elif f == 0 or f == n:
            continue  # reflecting wall: no current
        elif f == 1:
            cells = tuple(range(0, 5))
        elif f == n - 1:
            cells = tuple(range(n - 5, n))
        else:
            cells = tuple(range(f - 2, f + 2))
        value, derivative = reconstruction_weights(cells, float(f))
        coef = drift_faces[f] * value - diffusion * derivative / h
        rows.extend([f] * len(cells))
        cols.extend([c % n for c in cells])
        vals.extend(coef.tolist())
    current = sp.csr_matrix((vals, (rows, cols)), shape=(n + 1, n))
    if periodic:
        current = sp.vstack([current[:n], current[:1]], format="csr")
    return current


def assemble_fourth_order(dynamics: Dynamics, grid: Grid, plan: DynamicsPlan, segment: int,
                          max_cell_peclet: float) -> Operator:
    """The fourth-order operator of ``segment`` on a box grid (separable coefficients assumed).

    The caller checks separability (the second-order operator of the same segment is a
    Kronecker sum) and the boundary kinds (reflecting or periodic).
    """
    t = float(plan.starts[segment])
    shape = grid.shape
    n_cells = grid.n_cells
    kinds = grid.face_kinds
    base = np.array([c[0] for c in grid.centres])
    terms, face_flux, face_shapes = [], [], []
    for axis, n in enumerate(shape):
        h = float(grid.spacing[axis])
        pts = np.repeat(base[None, :], n + 1, axis=0)
        pts[:, axis] = grid.edges[axis]
        drift, diff = dynamics.coefficients(pts, t)
        if not np.allclose(diff[:, axis], diff[0, axis], rtol=1e-12, atol=0.0):
            raise ValueError("`spatial_order=4` needs a diffusion coefficient constant in space along each axis.")
        periodic = kinds[2 * axis] == "periodic"
        peclet = float(np.max(np.abs(drift[:, axis]))) * h / float(diff[0, axis])
        if peclet > MAX_CELL_PECLET:
            raise ValueError(f"`spatial_order=4` needs the drift resolved: cell Péclet number |a| h / D = {peclet:.3g} "
                             f"on axis {axis} exceeds {MAX_CELL_PECLET:g}; refine the grid or use spatial_order=2.")
        current = _line_current(n, h, drift[:, axis], float(diff[0, axis]), periodic)
        line = -(current[1:] - current[:-1]) / h
        if n <= MAX_SPECTRUM_CHECK:
            # The continuous operator never grows; a coarse grid under a varying drift can make the
            # central scheme's operator do so (the scheme is not an M-matrix).
            dense = line.toarray()
            growth = float(np.max(np.linalg.eigvals(dense).real))
            if growth > 1e-8 * float(np.max(np.abs(dense).sum(axis=0))):
                raise ValueError(f"`spatial_order=4` is unstable on axis {axis} at this resolution (an eigenvalue with "
                                 f"real part {growth:.3g} > 0); refine the grid or use spatial_order=2.")
        before = sp.identity(int(np.prod(shape[:axis])), format="csr")
        after = sp.identity(int(np.prod(shape[axis + 1:])), format="csr")
        terms.append(sp.kron(sp.kron(before, line), after, format="csr"))
        area = float(np.prod([grid.spacing[k] for k in range(grid.ndim) if k != axis]))
        face_flux.append(sp.kron(sp.kron(before, current * area), after, format="csr"))
        face_shapes.append(tuple(m + 1 if k == axis else m for k, m in enumerate(shape)))
    matrix = terms[0]
    for term in terms[1:]:
        matrix = matrix + term
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError("the drift or diffusion is not finite somewhere on the grid.")
    return Operator(matrix=matrix.tocsr(), face_flux=tuple(face_flux), face_shapes=tuple(face_shapes),
                    outflow=sp.csr_matrix((2 * grid.ndim, n_cells)), max_cell_peclet=max_cell_peclet,
                    axis_matrices=tuple(terms))
