r"""exp(tA) v for a one-dimensional (tridiagonal) operator by contour quadrature.

For a matrix whose eigenvalues lie on the non-positive real axis,

.. math:: e^{tA} v = \frac{1}{2\pi i}\int_\Gamma e^{z}\,(zI - tA)^{-1} v\,dz ,

with Γ a parabola opening to the left around the spectrum. The trapezoid rule with N
nodes on the parabola :math:`z(\theta) = N(0.1309 - 0.1194\,\theta^2 + 0.25\,i\theta)`,
:math:`\theta \in (-\pi, \pi)`, converges like :math:`2.85^{-N}` uniformly over the
negative real axis (Trefethen, Weideman & Schmelzer, BIT 46 (2006) 653–670). With
N = 32 and conjugate symmetry that is 16 complex tridiagonal solves, O(n) each, for
an error near round-off: no time steps at all.

The one-dimensional Scharfetter–Gummel operator with reflecting or absorbing ends is
tridiagonal with positive off-diagonals, hence similar to a symmetric matrix with
non-positive eigenvalues: the quadrature applies whatever the drift and D(x).
Absorbed probability is carried exactly by appending the outflow as extra states:
they only receive, so their part of the resolvent is :math:`(a_0 + t\,O x)/z`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

__all__ = ["tridiagonal_exponential", "series_exponential", "is_tridiagonal", "bandwidth"]

#: Quadrature nodes on the whole parabola (half of them are solved, by conjugate symmetry).
NODES = 32



def bandwidth(matrix: sp.spmatrix) -> int:
    """Largest distance of a stored entry from the diagonal."""
    coo = sp.coo_matrix(matrix)
    return int(np.max(np.abs(coo.row - coo.col))) if coo.nnz else 0


def is_tridiagonal(matrix: sp.spmatrix) -> bool:
    """True when every entry lies within one place of the diagonal."""
    return bandwidth(matrix) <= 1


def _nodes(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper-half nodes z_k and weights w_k with e^{A} v ≈ 2 Re sum_k w_k (z_k - A)^{-1} v."""
    theta = -np.pi + (np.arange(n_nodes) + 0.5) * (2 * np.pi / n_nodes)
    theta = theta[theta > 0]
    z = n_nodes * (0.1309 - 0.1194 * theta**2 + 0.25j * theta)
    dz = n_nodes * (-2 * 0.1194 * theta + 0.25j)
    # Trapezoid rule: (1 / 2 pi i) e^z z'(theta) dtheta with dtheta = 2 pi / N.
    w = np.exp(z) * dz / (1j * n_nodes)
    return z, w


def tridiagonal_exponential(matrix: sp.spmatrix, outflow: sp.spmatrix, tau: float, y: np.ndarray,
                            absorbed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Density and absorbed amounts after a time ``tau`` of dp/dt = A p, da/dt = O p.

    Parameters
    ----------
    matrix : sparse (n, n)
        Tridiagonal operator A (eigenvalues on the non-positive real axis).
    outflow : sparse (m, n)
        Outflow rates O through each face.
    tau : float
        Time (>= 0).
    y : numpy.ndarray, shape (n,)
        Density at the start.
    absorbed : numpy.ndarray, shape (m,)
        Absorbed amounts at the start.

    Returns
    -------
    y_tau : numpy.ndarray, shape (n,)
    absorbed_tau : numpy.ndarray, shape (m,)
    """
    if tau == 0.0:
        return y.copy(), absorbed.copy()
    a = sp.csr_matrix(matrix)
    sub = tau * a.diagonal(-1)
    diag = tau * a.diagonal()
    sup = tau * a.diagonal(1)
    o = sp.csr_matrix(outflow)
    rhs = y.astype(complex)
    y_out = np.zeros(y.size)
    a_out = np.zeros(absorbed.size)
    z_nodes, weights = _nodes(NODES)
    for z, w in zip(z_nodes, weights):
        dl, d, du, du2, ipiv, info = lapack.zgttrf(-sub.astype(complex), z - diag, -sup.astype(complex))
        if info != 0 or not np.isfinite(d).all():
            # A shifted system that LAPACK cannot factorise (seen with rates spanning 40 decades):
            # the truncated Taylor series of scipy's expm_multiply on the operator extended by the
            # absorbed amounts, d/dt (p, a) = (A p, O p), is slower but needs no factorisation.
            return series_exponential(a, o, tau, y, absorbed)
        x, info = lapack.zgttrs(dl, d, du, du2, ipiv, rhs)
        y_out += 2.0 * np.real(w * x)
        a_out += 2.0 * np.real(w * (absorbed + tau * (o @ x)) / z)
    return y_out, a_out


def series_exponential(matrix: sp.csr_matrix, outflow: sp.csr_matrix, tau: float, y: np.ndarray,
                           absorbed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """e^{tau M} (y, absorbed) with M = [[A, 0], [O, 0]] by :func:`scipy.sparse.linalg.expm_multiply`."""
    from scipy.sparse.linalg import expm_multiply

    n, m = matrix.shape[0], outflow.shape[0]
    extended = sp.bmat([[matrix, sp.csr_matrix((n, m))], [outflow, sp.csr_matrix((m, m))]], format="csr")
    out = expm_multiply(tau * extended, np.concatenate([y, absorbed]))
    return out[:n], out[n:]
