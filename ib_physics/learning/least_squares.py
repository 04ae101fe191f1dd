r"""Linear least squares trained by minibatch SGD: the exact oracle of the SGD-as-diffusion picture.

Loss L(θ) = (1/2n) Σ_i (x_i·θ − y_i)², Hessian H = XᵀX/n, minimiser θ̂, residuals e_i = x_i·θ̂ − y_i.
A minibatch gradient at δ = θ − θ̂ is H_B δ + r_B with H_B = mean_{i∈B} x_i x_iᵀ and
r_B = mean_{i∈B} e_i x_i, so one SGD step δ' = (I − η H_B) δ − η r_B has moments that close
exactly, for any η and batch size m (Mandt, Hoffman & Blei 2017; Ziyin et al. 2022):

.. math::

    m' = (I - \eta H)\, m

    M' = M - \eta (H M + M H) + \eta^2 (\alpha \langle A M A\rangle + \beta H M H)
         + \eta^2 \alpha (\langle A m b^T\rangle + \langle b m^T A\rangle) + \eta^2 \alpha \langle b b^T\rangle

with M = E[δδᵀ], A_i = x_i x_iᵀ, b_i = e_i x_i, ⟨·⟩ the mean over the n rows, and for a batch of
m rows drawn i.i.d. with replacement α = 1/m, β = 1 − 1/m; as a fresh uniform subset
α = (n − m)/(m (n − 1)), β = (m − 1) n/(m (n − 1)) (pairs of distinct rows without replacement).

:func:`train_least_squares` trains an ensemble with the package's minibatch streams (the same
kernels and keys as the network trainer) and returns its weight trace as
:class:`~ib_physics.learning.records.GradientStatistics`, so the adapter can be tested on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .._jit import kernel
from .._validation import check_finite_positive, check_int_range
from ..random import philox_key
from . import _kernels
from .network import SAMPLINGS, EpochStatistics, WeightTrace, _check_epochs
from .records import GradientStatistics

__all__ = ["LeastSquares", "sampling_weights", "train_least_squares"]

#: The samplings with independent steps, for which the moment recursion is exact.
EXACT_SAMPLINGS = ("iid", "subset")


def sampling_weights(n: int, m: int, sampling: str) -> tuple[float, float]:
    """(α, β) with E[H_B M H_B] = α ⟨A M A⟩ + β H M H for a batch of m of n rows."""
    n = check_int_range(n, "n", 1)
    m = check_int_range(m, "m", 1, n)
    if sampling == "iid":
        return 1.0 / m, 1.0 - 1.0 / m
    if sampling == "subset":
        if n == 1:
            return 0.0, 1.0
        return (n - m) / (m * (n - 1)), (m - 1) * n / (m * (n - 1))
    raise ValueError(f"`sampling` must be one of {EXACT_SAMPLINGS} (independent steps), got {sampling!r}.")


@dataclass(frozen=True, eq=False)
class LeastSquares:
    """A least-squares problem: rows ``x`` (n, d) and targets ``y`` (n,)."""

    x: Any
    y: Any

    def __post_init__(self) -> None:
        x = np.array(self.x, dtype=float)
        y = np.array(self.y, dtype=float)
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"`x` must have shape (n >= 1, d >= 1), got {x.shape}.")
        if y.shape != (x.shape[0],):
            raise ValueError(f"`y` must have shape ({x.shape[0]},), got {y.shape}.")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("`x` and `y` must be finite.")
        if np.linalg.matrix_rank(x) < x.shape[1]:
            raise ValueError("`x` must have full column rank (a unique minimiser).")
        for a in (x, y):
            a.flags.writeable = False
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    @property
    def hessian(self) -> np.ndarray:
        return self.x.T @ self.x / self.n

    @property
    def minimiser(self) -> np.ndarray:
        return np.linalg.lstsq(self.x, self.y, rcond=None)[0]

    @property
    def residuals(self) -> np.ndarray:
        return self.x @ self.minimiser - self.y

    def _step_map(self, learning_rate: float, m: int, sampling: str):
        """The affine maps (m, M) -> (m', M') of one step with batches of m rows."""
        x, e, H = self.x, self.residuals, self.hessian
        alpha, beta = sampling_weights(self.n, m, sampling)
        eta = learning_rate
        outer = np.einsum("ni,nj->nij", x, x)  # A_i
        bb = np.einsum("n,nij->ij", e * e, outer) / self.n
        step = np.eye(self.dim) - eta * H

        def advance(mean: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            quad = np.einsum("ni,ij,nj->n", x, second, x)
            ama = np.einsum("n,nij->ij", quad, outer) / self.n
            amb = np.einsum("n,nij->ij", (x @ mean) * e, outer) / self.n
            new = (second - eta * (H @ second + second @ H) + eta**2 * (alpha * ama + beta * H @ second @ H)
                   + eta**2 * alpha * (amb + amb.T) + eta**2 * alpha * bb)
            return step @ mean, new

        return advance

    def moments(self, theta0: Any, *, learning_rate: float, batch_size: int, sampling: str, steps: int,
                theta0_covariance: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean and covariance of θ after every step, shapes (steps + 1, d), (steps + 1, d, d).

        Batches follow the trainer's layout: every epoch has ceil(n / B) steps, the last
        holding the remainder.
        """
        eta = check_finite_positive(learning_rate, "learning_rate")
        B = check_int_range(batch_size, "batch_size", 1, self.n)
        K = check_int_range(steps, "steps", 0)
        theta0 = np.broadcast_to(np.asarray(theta0, dtype=float), (self.dim,))
        cov0 = np.zeros((self.dim, self.dim)) if theta0_covariance is None else np.asarray(theta0_covariance, float)
        n_b = -(-self.n // B)
        sizes = [min(self.n, (b + 1) * B) - b * B for b in range(n_b)]
        maps = {m: self._step_map(eta, m, sampling) for m in set(sizes)}
        mean = theta0 - self.minimiser
        second = cov0 + np.outer(mean, mean)
        means, covs = [mean.copy()], [second - np.outer(mean, mean)]
        for k in range(K):
            mean, second = maps[sizes[k % n_b]](mean, second)
            means.append(mean.copy())
            covs.append(second - np.outer(mean, mean))
        return np.array(means) + self.minimiser, np.array(covs)

    def stationary_covariance(self, *, learning_rate: float, batch_size: int, sampling: str) -> np.ndarray:
        """The fixed point of the covariance recursion (batches of ``batch_size`` every step)."""
        eta = check_finite_positive(learning_rate, "learning_rate")
        B = check_int_range(batch_size, "batch_size", 1, self.n)
        advance = self._step_map(eta, B, sampling)
        d = self.dim
        zero = np.zeros(d)
        offset = advance(zero, np.zeros((d, d)))[1].ravel()
        columns = [advance(zero, np.eye(d * d)[k].reshape(d, d))[1].ravel() - offset for k in range(d * d)]
        T = np.array(columns).T
        solution = np.linalg.solve(np.eye(d * d) - T, offset).reshape(d, d)
        spectrum = np.abs(np.linalg.eigvals(T)).max()
        if spectrum >= 1.0:
            raise ValueError(f"the second moment diverges at learning_rate={eta} (spectral radius {spectrum:.3g}).")
        return (solution + solution.T) / 2.0


@kernel
def _train_kernel(theta, x, y, lr, batch_size, sampling, k0, k1, epoch0, n_epochs, r0, r1,
                  trace_slot, trace_w, trace_g, trace_u):
    n, d = x.shape
    n_batches = (n + batch_size - 1) // batch_size
    order = np.zeros(n, np.int64)
    picks = np.zeros(min(batch_size, n), np.int64)
    g = np.zeros(d)
    for r in range(r0, r1):
        for e in range(n_epochs):
            epoch = epoch0 + e
            if sampling == _kernels.RESHUFFLED or sampling == _kernels.FIXED:
                _kernels.shuffle_order(order, 0 if sampling == _kernels.FIXED else epoch, r, k0, k1)
            slot = trace_slot[e]
            if slot >= 0:
                for q in range(d):
                    trace_w[r, slot, q] = theta[r, q]
            for b in range(n_batches):
                m = _kernels.fill_batch(order, picks, sampling, epoch, b, batch_size, r, k0, k1)
                for q in range(d):
                    g[q] = 0.0
                for s in range(m):
                    i = picks[s]
                    res = -y[i]
                    for q in range(d):
                        res += x[i, q] * theta[r, q]
                    for q in range(d):
                        g[q] += x[i, q] * res
                for q in range(d):
                    g[q] /= m
                    du = -lr * g[q]
                    theta[r, q] += du
                    if slot >= 0:
                        trace_g[r, slot, b, q] = g[q]
                        trace_u[r, slot, b, q] = du


def train_least_squares(problem: LeastSquares, theta0: Any, *, learning_rate: float, batch_size: int,
                        epochs: int, replicas: int, sampling: str = "iid", seed: int = 0,
                        trace_epochs: Sequence[int] = ()) -> tuple[np.ndarray, GradientStatistics]:
    """Train ``replicas`` least-squares runs by SGD from ``theta0``; final θ and their statistics.

    Replica r's minibatches come from the trainer's streams keyed by (seed, r, epoch, step).

    Returns
    -------
    theta : numpy.ndarray, shape (replicas, d)
    statistics : GradientStatistics
        One layer ``"theta"``; per-epoch norms are left zero (the trace carries the data).
    """
    if not isinstance(problem, LeastSquares):
        raise TypeError(f"`problem` must be a LeastSquares, got {type(problem).__name__}.")
    eta = check_finite_positive(learning_rate, "learning_rate")
    B = check_int_range(batch_size, "batch_size", 1, problem.n)
    E = check_int_range(epochs, "epochs", 1)
    R = check_int_range(replicas, "replicas", 1, 2**31 - 1)
    if sampling not in SAMPLINGS:
        raise ValueError(f"`sampling` must be one of {tuple(SAMPLINGS)}, got {sampling!r}.")
    traced = np.array([t for t in _check_epochs(trace_epochs, "trace_epochs") if t <= E], dtype=np.int64)
    d = problem.dim
    n_b = -(-problem.n // B)
    if 8.0 * R * traced.size * d * (2 * n_b + 1) > 2.0**33:
        raise ValueError("`trace_epochs` would keep more than 8 GiB: trace fewer epochs or replicas.")
    theta = np.repeat(np.broadcast_to(np.asarray(theta0, dtype=float), (d,))[None], R, axis=0).copy()
    if not np.all(np.isfinite(theta)):
        raise ValueError("`theta0` must be finite.")
    slots = np.full(E, -1, np.int64)
    slots[traced - 1] = np.arange(traced.size)
    tw, tg, tu = np.zeros((R, traced.size, d)), np.zeros((R, traced.size, n_b, d)), np.zeros((R, traced.size, n_b, d))
    _, k0, k1 = philox_key(check_int_range(seed, "seed", 0))
    _train_kernel(theta, np.ascontiguousarray(problem.x), np.ascontiguousarray(problem.y), eta, B,
                  SAMPLINGS[sampling], np.uint64(k0), np.uint64(k1), 0, E, 0, R, slots, tw, tg, tu)
    zeros = np.zeros((R, E, 1))
    stats = EpochStatistics(epochs=np.arange(1, E + 1), grad_mean=zeros, grad_std=zeros, update_mean=zeros,
                            update_std=zeros, weight_norm=zeros, loss=np.zeros((R, E)))
    trace = WeightTrace(epochs=traced, weights=tw, gradients=tg, updates=tu) if traced.size else None
    return theta, GradientStatistics(layer_names=("theta",), layer_sizes=(d,), learning_rate=eta, batch_size=B,
                                     n_train=problem.n, steps_per_epoch=n_b, sampling=sampling, optimizer="sgd",
                                     stats=stats, trace=trace, shared_initialization=True, seed=seed,
                                     producer="ib_physics.least_squares")
