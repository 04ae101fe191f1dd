"""The data of the information-bottleneck experiment (Shwartz-Ziv & Tishby 2017).

Twelve binary inputs sit on the twelve vertices of an icosahedron; every one of
the 4096 patterns occurs once and p(x) is uniform. The label is a rotation- and
reflection-invariant function of the pattern (PHYSICS.md §6):

    y = [ Σ x_i + ‖Σ x_i r_i‖ ≥ 7.6 ],

with r_i the unit vertex vectors in the order below. 2118 of the 4096 labels are 1.
The data are generated, not shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_int_range

__all__ = ["icosahedron_vertices", "ib_dataset", "IBDataset", "split_indices", "N_PATTERNS", "N_INPUTS"]

N_INPUTS = 12
N_PATTERNS = 2**N_INPUTS
#: Threshold of the labelling rule.
LABEL_THRESHOLD = 7.6
#: Order of the generated vertices that reproduces the original file's columns.
VERTEX_ORDER = (0, 1, 3, 7, 8, 6, 4, 10, 11, 9, 5, 2)


def icosahedron_vertices() -> np.ndarray:
    """Unit vectors of the 12 vertices in the dataset's column order, shape (12, 3)."""
    golden = (1 + 5**0.5) / 2
    v = []
    for a in (-1.0, 1.0):
        for b in (-golden, golden):
            v += [(0.0, a, b), (a, b, 0.0), (b, 0.0, a)]
    vertices = np.array(v)
    vertices /= np.linalg.norm(vertices, axis=1)[:, None]
    return vertices[list(VERTEX_ORDER)]


def label(x: np.ndarray, vertices: np.ndarray | None = None) -> np.ndarray:
    """The rule's label of binary patterns ``x`` (n, 12), shape (n,) of int8."""
    r = icosahedron_vertices() if vertices is None else vertices
    x = np.asarray(x, dtype=float)
    return (x.sum(axis=1) + np.linalg.norm(x @ r, axis=1) >= LABEL_THRESHOLD).astype(np.int8)


@dataclass(frozen=True)
class IBDataset:
    """All 4096 patterns and their labels.

    Attributes
    ----------
    x : numpy.ndarray, shape (4096, 12)
        Binary inputs (0.0 / 1.0); row i is i in binary, most significant bit in column 0.
    y : numpy.ndarray of int8, shape (4096,)
    """

    x: np.ndarray
    y: np.ndarray

    @property
    def label_entropy(self) -> float:
        """H(Y) in bits (0.9992 for this rule)."""
        p = float(self.y.mean())
        return float(-(p * np.log2(p) + (1 - p) * np.log2(1 - p)))


def ib_dataset() -> IBDataset:
    """Generate the dataset (deterministic: no arguments)."""
    i = np.arange(N_PATTERNS)
    x = ((i[:, None] >> (N_INPUTS - 1 - np.arange(N_INPUTS))) & 1).astype(np.float64)
    return IBDataset(x=x, y=label(x))


def split_indices(fraction: float, seed: int, *, n: int = N_PATTERNS) -> tuple[np.ndarray, np.ndarray]:
    """A shuffled split: ``round(fraction * n)`` training indices, the rest for testing.

    Parameters
    ----------
    fraction : float
        Training fraction in (0, 1].
    seed : int
        The split is a permutation drawn by ``numpy.random.Generator(PCG64(SeedSequence(seed)))``.

    Returns
    -------
    train, test : numpy.ndarray of int64
        Sorted pattern indices.
    """
    if not isinstance(fraction, (int, float, np.floating)) or not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"`fraction` must be in (0, 1], got {fraction!r}.")
    check_int_range(seed, "seed", 0)
    n_train = max(1, int(round(float(fraction) * n)))
    perm = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed)))).permutation(n)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])
