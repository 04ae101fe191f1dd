"""Batched tridiagonal solves along one grid axis: the factors of the split preconditioner.

A one-axis Scharfetter–Gummel operator couples each cell only with its two neighbours on the
same grid line, so ``I - c A_k`` is a set of independent tridiagonal systems, one per line
along axis ``k``. The Thomas algorithm solves all of them in O(cells) with no fill, where a
general sparse LU of the same matrix spends most of its time ordering and in indirect access.
Without pivoting it is stable here: ``I - c A_k`` (c > 0) is diagonally dominant by columns,
since A_k's off-diagonals are non-negative and its columns sum to at most zero.

Layout: a flat C-order array of the grid seen as (before, n, after), with ``before`` and
``after`` the products of the axis lengths before and after axis ``k``; the stride along the
line is ``after``. The kernels run the recurrence along the line with the ``after`` index
innermost, so for every axis but the last the inner loop is contiguous and vectorises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._jit import kernel
from .._validation import check_int_range

__all__ = ["LineSystem", "line_system"]


@dataclass(frozen=True, eq=False)
class LineSystem:
    """One axis' operator as the three diagonals of its lines (flat arrays of the grid's size).

    ``lower[r]`` couples cell r with its predecessor on the line (zero at a line's first
    cell), ``upper[r]`` with its successor (zero at the last), ``diagonal[r]`` with itself.
    """

    lower: np.ndarray
    diagonal: np.ndarray
    upper: np.ndarray
    before: int
    length: int
    after: int

    def factor(self, c: float) -> "LineFactors":
        """The Thomas factors of ``I - c A`` for every line."""
        inverse, modified = _factor_lines(-c * self.lower, 1.0 - c * self.diagonal, -c * self.upper,
                                          self.before, self.length, self.after)
        return LineFactors(-c * self.lower, inverse, modified, self.before, self.length, self.after)


@dataclass(frozen=True, eq=False)
class LineFactors:
    """Forward-sweep factors of ``I - c A`` along the lines of one axis."""

    sub: np.ndarray
    inverse: np.ndarray
    modified: np.ndarray
    before: int
    length: int
    after: int

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """x with (I - c A) x = rhs, shape (cells,)."""
        return _solve_lines(self.sub, self.inverse, self.modified, np.ascontiguousarray(rhs, dtype=float),
                            self.before, self.length, self.after)


def line_system(matrix: sp.spmatrix, shape: tuple[int, ...], axis: int) -> LineSystem | None:
    """``matrix`` (cells, cells) as tridiagonal lines along ``axis`` of a C-order grid of ``shape``.

    Returns None where the matrix has any other entry (a periodic axis' wrap-around coupling,
    or a coupling across axes), so the caller keeps a general solver for it.
    """
    shape = tuple(check_int_range(v, "shape", 1) for v in shape)
    axis = check_int_range(axis, "axis", 0, len(shape) - 1)
    if not sp.issparse(matrix):
        raise TypeError(f"`matrix` must be a scipy.sparse matrix, got {type(matrix).__name__}.")
    n = shape[axis]
    after = int(np.prod(shape[axis + 1:], dtype=np.int64))
    before = int(np.prod(shape[:axis], dtype=np.int64))
    cells = before * n * after
    csr = sp.csr_matrix(matrix)
    if csr.shape != (cells, cells):
        raise ValueError(f"matrix of shape {csr.shape} does not match a grid of {cells} cells.")
    diagonal = csr.diagonal(0).copy()
    lower = np.zeros(cells)
    upper = np.zeros(cells)
    if n > 1:
        lower[after:] = csr.diagonal(-after)
        upper[:-after] = csr.diagonal(after)
    position = (np.arange(cells) // after) % n  # index along the line
    if np.any(lower[position == 0] != 0.0) or np.any(upper[position == n - 1] != 0.0):
        return None  # couplings that cross from one line to the next
    stored = np.count_nonzero(csr.data)
    if stored != np.count_nonzero(diagonal) + np.count_nonzero(lower) + np.count_nonzero(upper):
        return None  # entries off the three line diagonals (periodic wrap, cross-axis terms)
    return LineSystem(lower, diagonal, upper, before, n, after)


#: Lines that advance together in the kernels: enough cells side by side (lines × the contiguous
#: run ``after``) to keep independent work in flight, few enough that their rows stay in L2.
_TILE_CELLS = 4096


@kernel
def _factor_lines(sub, main, sup, before, length, after):
    """Thomas forward factors of the tridiagonal lines (sub, main, sup): 1/pivot and sup/pivot.

    Lines go in tiles; within a tile, position j along the line is the outer loop, so that
    consecutive operations belong to different lines (no chain of dependent divisions even for
    the last axis, after = 1) while the tile's rows stay in cache.
    """
    inverse = np.empty(main.size)
    modified = np.empty(main.size)
    block = length * after
    tile = max(1, _TILE_CELLS // block)
    for b0 in range(0, before, tile):
        b1 = min(before, b0 + tile)
        for b in range(b0, b1):
            for a in range(after):
                r = b * block + a
                inverse[r] = 1.0 / main[r]
                modified[r] = sup[r] * inverse[r]
        for j in range(1, length):
            for b in range(b0, b1):
                row = b * block + j * after
                for a in range(after):
                    r = row + a
                    pivot = main[r] - sub[r] * modified[r - after]
                    inverse[r] = 1.0 / pivot
                    modified[r] = sup[r] * inverse[r]
    return inverse, modified


@kernel
def _solve_lines(sub, inverse, modified, rhs, before, length, after):
    """Forward elimination and back substitution on every line, tiles of lines advancing together."""
    x = np.empty(rhs.size)
    block = length * after
    if after == 1:  # lines along the last axis are rows: one line's recurrence, lines side by side
        rows = max(1, _TILE_CELLS // length)
        for b0 in range(0, before, rows):
            b1 = min(before, b0 + rows)
            for b in range(b0, b1):
                x[b * length] = rhs[b * length] * inverse[b * length]
            for j in range(1, length):
                for b in range(b0, b1):
                    r = b * length + j
                    x[r] = (rhs[r] - sub[r] * x[r - 1]) * inverse[r]
            for j in range(length - 2, -1, -1):
                for b in range(b0, b1):
                    r = b * length + j
                    x[r] -= modified[r] * x[r + 1]
        return x
    tile = max(1, _TILE_CELLS // block)
    for b0 in range(0, before, tile):
        b1 = min(before, b0 + tile)
        for b in range(b0, b1):
            for a in range(after):
                r = b * block + a
                x[r] = rhs[r] * inverse[r]
        for j in range(1, length):
            for b in range(b0, b1):
                row = b * block + j * after
                for a in range(after):
                    r = row + a
                    x[r] = (rhs[r] - sub[r] * x[r - after]) * inverse[r]
        for j in range(length - 2, -1, -1):
            for b in range(b0, b1):
                row = b * block + j * after
                for a in range(after):
                    r = row + a
                    x[r] -= modified[r] * x[r + after]
    return x
