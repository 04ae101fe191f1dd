r"""Exact time integration when the operator is a sum of commuting one-axis operators.

When the drift component and the diffusion coefficient along every axis depend only on
that axis' coordinate (harmonic traps with diagonal stiffness, gravity, constant
forces, box walls), the semi-discrete operator is a Kronecker sum,
:math:`A = a_0 \oplus a_1 \oplus a_2`, and its one-axis parts commute. Then

.. math:: p(t) = e^{tA} p_0 = \bigl(e^{t a_0} \otimes e^{t a_1} \otimes e^{t a_2}\bigr) p_0,

with no splitting error: the semi-discrete equation is solved exactly in time (to
round-off in the dense matrix exponentials of size n_k), at the cost of a few dense
products along each axis. The spatial error is the operator's, unchanged.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

__all__ = ["line_operators", "apply_along_axes", "line_exponentials", "solve_kronecker_sum"]

#: Largest axis for the dense one-axis exponentials (n^3 work each).
MAX_LINE_CELLS = 1024


def line_operators(axis_matrices: tuple[sp.spmatrix, ...], shape: tuple[int, ...],
                   rtol: float = 1e-9, max_cells: int | None = MAX_LINE_CELLS) -> list[np.ndarray] | None:
    """The one-axis matrices a_k when ``sum(axis_matrices) = a_0 (+) a_1 (+) ...``, else None.

    Parameters
    ----------
    axis_matrices : tuple of sparse matrices, each (n_cells, n_cells)
        The part of the operator coupling cells along each axis (C order of ``shape``).
    shape : tuple of int
        Grid shape.
    rtol : float
        Largest entry-wise difference, relative to the largest entry of the axis'
        matrix, between the matrix and the Kronecker product built from its first line.
        Not round-off tight: U(x, y) = f(x) + g(y) evaluated in floating point carries
        g's round-off into the differences along x (1e-11 of the entries for steep f).

    Returns
    -------
    list of numpy.ndarray of shape (n_k, n_k), or None
    """
    if len(axis_matrices) != len(shape) or (max_cells is not None and max(shape) > max_cells):
        return None
    index = np.arange(int(np.prod(shape))).reshape(shape)
    lines = []
    for axis, matrix in enumerate(axis_matrices):
        first = index[tuple(slice(None) if k == axis else 0 for k in range(len(shape)))]
        m = sp.csr_matrix(matrix)
        line = m[first][:, first]
        before = int(np.prod(shape[:axis]))
        after = int(np.prod(shape[axis + 1:]))
        kron = sp.kron(sp.kron(sp.identity(before), line), sp.identity(after), format="csr")
        scale = float(np.max(np.abs(m.data))) if m.nnz else 0.0
        diff = (m - kron).tocsr()
        if diff.nnz and float(np.max(np.abs(diff.data))) > rtol * max(scale, 1e-300):
            return None
        lines.append(line.toarray() if max_cells is not None else line)
    return lines


def line_exponentials(lines: list[np.ndarray], tau: float) -> list[np.ndarray]:
    """exp(tau a_k) for each axis (dense, shape (n_k, n_k))."""
    return [scipy.linalg.expm(tau * a) for a in lines]


def apply_along_axes(factors: list[np.ndarray], y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(f_0 ⊗ f_1 ⊗ ...) y for a flat ``y`` of C-ordered ``shape``; returns a flat array."""
    out = y.reshape(shape)
    for axis, f in enumerate(factors):
        out = np.moveaxis(np.tensordot(f, out, axes=([1], [axis])), 0, axis)
    return np.ascontiguousarray(out).ravel()


def solve_kronecker_sum(lines: list[np.ndarray], rhs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """q with (a_0 (+) a_1 (+) ...) q = rhs, for nonsingular sums (an absorbing face somewhere).

    1D: a dense solve. 2D: the Sylvester equation a_0 Q + Q a_1^T = R (Bartels–Stewart).
    3D: the complex Schur form a_2 = U T U^H turns the last axis triangular, leaving one
    2D Sylvester equation per slice, solved from the last slice back.

    Parameters
    ----------
    lines : list of numpy.ndarray, each (n_k, n_k)
    rhs : numpy.ndarray, shape (prod(shape),)
    shape : tuple of int

    Returns
    -------
    numpy.ndarray, shape (prod(shape),), real
    """
    r = rhs.reshape(shape)
    if len(shape) == 1:
        return np.linalg.solve(lines[0], r)
    if len(shape) == 2:
        return scipy.linalg.solve_sylvester(lines[0], lines[1].T, r).ravel()
    t, u = scipy.linalg.schur(lines[2], output="complex")
    r_t = r @ np.conj(u)
    q_t = np.zeros(shape, dtype=complex)
    eye = np.eye(shape[0])
    for k in range(shape[2] - 1, -1, -1):
        known = np.tensordot(q_t[:, :, k + 1:], t[k, k + 1:], axes=([2], [0]))
        q_t[:, :, k] = scipy.linalg.solve_sylvester(lines[0] + t[k, k] * eye, lines[1].T.astype(complex),
                                                    r_t[:, :, k] - known)
    return np.real(q_t @ u.T).ravel()
