"""Fully connected classifiers trained many at once (a replica axis), with gradient statistics.

:class:`Architecture` describes the net (default 12-10-7-5-4-3-2, tanh hidden
units, softmax output, cross-entropy). :func:`init_params` draws the initial
weights; :class:`Trainer` holds the training state of R replicas and advances it
by whole epochs with SGD or Adam, recording per layer and epoch the statistics of
PHYSICS.md §5: the norm of the mean minibatch gradient, the square root of the
trace of the minibatch covariance, the same two for the actual weight updates,
and the weight norm. Statistics cover a layer's weight matrix (not its biases).

Random numbers: replica r's initial weights are truncated normals (cut at 2σ,
σ = 1/sqrt(fan_in)) from the package's Philox stream of
``SeedSequence(seed, spawn_key=(2,))``, particle index r; its minibatch order in
epoch e is a Fisher–Yates shuffle keyed by (seed, r, e) (or e = 0 every epoch with
fixed batches); with per-step sampling ("iid", "subset") step b of epoch e draws
its rows from the stream keyed by (seed, r, e, b). A replica's run therefore depends
only on (seed, r): training replicas together or one at a time, on any number of
threads, gives the same numbers. With ``shared_initialization`` every replica starts
from replica 0's weights, so that replicas differ only in their minibatches.

At chosen ``trace_epochs`` the trainer also keeps what the adapter needs beyond the
per-layer norms: every replica's weights at the epoch's start and every step's weight
gradient and applied weight update (:class:`WeightTrace`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from .._validation import (as_bool, as_float_array, check_choice, check_finite_positive, check_finite_scalar,
                           check_int_range, check_memory)
from ..parallel.threads import ThreadRunner, resolve_threads
from ..random import philox_key, standard_normals
from . import _kernels

__all__ = ["Architecture", "init_params", "Trainer", "EpochStatistics", "WeightTrace", "OPTIMIZERS", "BATCHES",
           "SAMPLINGS"]

ACTIVATIONS = {"tanh": _kernels.TANH, "relu": _kernels.RELU}
OPTIMIZERS = {"sgd": _kernels.SGD, "adam": _kernels.ADAM}
#: Minibatch sampling: reshuffled every epoch (without replacement within the epoch), one
#: shuffle kept for all epochs, i.i.d. rows with replacement for every step, or a fresh
#: uniform subset (without replacement) for every step. PHYSICS.md §5 gives the covariance
#: of a minibatch mean under each.
SAMPLINGS = {"reshuffled": _kernels.RESHUFFLED, "fixed": _kernels.FIXED, "iid": _kernels.IID,
             "subset": _kernels.SUBSET}
BATCHES = tuple(SAMPLINGS)


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """A fully connected classifier.

    Parameters
    ----------
    widths : sequence of int
        Units per layer from input to output; the output layer is a softmax over
        ``widths[-1]`` classes (>= 2).
    activation : {"tanh", "relu"}
        Hidden units.
    """

    widths: tuple[int, ...] = (12, 10, 7, 5, 4, 3, 2)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if isinstance(self.widths, (str, bytes)):
            raise TypeError(f"`widths` must be a sequence of integers, got {self.widths!r}.")
        try:
            items = list(self.widths)
        except TypeError:
            raise TypeError(f"`widths` must be a sequence of integers, got {self.widths!r}.") from None
        widths = tuple(check_int_range(w, f"widths[{k}]", 1, 100_000) for k, w in enumerate(items))
        if len(widths) < 2 or widths[-1] < 2:
            raise ValueError(f"`widths` needs >= 2 layers of >= 1 unit and >= 2 output classes, got {widths}.")
        object.__setattr__(self, "widths", widths)
        check_choice(self.activation, "activation", sorted(ACTIVATIONS))

    @property
    def n_layers(self) -> int:
        return len(self.widths) - 1

    @property
    def layers(self) -> np.ndarray:
        """(n_layers, 4) int64: n_in, n_out, weight offset, bias offset into a parameter row."""
        rows, offset = [], 0
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            rows.append((n_in, n_out, offset, offset + n_in * n_out))
            offset += n_in * n_out + n_out
        return np.array(rows, dtype=np.int64)

    @property
    def n_params(self) -> int:
        last = self.layers[-1]
        return int(last[3] + last[1])

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(f"W{l + 1}" for l in range(self.n_layers))

    def weights(self, params: np.ndarray, layer: int) -> np.ndarray:
        """Weight matrix of ``layer`` from parameter rows (..., P), shape (..., n_in, n_out)."""
        n_in, n_out, wo, _ = self.layers[layer]
        return params[..., wo:wo + n_in * n_out].reshape(params.shape[:-1] + (int(n_in), int(n_out)))

    def biases(self, params: np.ndarray, layer: int) -> np.ndarray:
        _, n_out, _, bo = self.layers[layer]
        return params[..., bo:bo + n_out]

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "activation": self.activation}


def init_params(arch: Architecture, seed: int, replicas: int | tuple[int, int]) -> np.ndarray:
    """Initial parameters of replicas ``range(replicas)`` (or ``range(*replicas)``), shape (R, P).

    Weights: normal with std 1/sqrt(fan_in) truncated at two standard deviations
    (by the inverse CDF, one draw per weight); biases 0.
    """
    start, stop = (0, int(replicas)) if np.isscalar(replicas) else (int(replicas[0]), int(replicas[1]))
    if not 0 <= start < stop:
        raise ValueError(f"`replicas` must name a non-empty range of indices >= 0, got {replicas!r}.")
    sequence = np.random.SeedSequence(check_int_range(seed, "seed", 0), spawn_key=(2,))
    z = standard_normals(sequence, particles=(start, stop), draws=arch.n_params)
    lo = ndtr(-2.0)
    truncated = ndtri(lo + (1.0 - 2.0 * lo) * ndtr(z))
    params = np.zeros((stop - start, arch.n_params))
    for n_in, n_out, wo, _ in arch.layers:
        block = slice(wo, wo + n_in * n_out)
        params[:, block] = truncated[:, block] / np.sqrt(n_in)
    return params


@dataclass(frozen=True)
class EpochStatistics:
    """Per replica, epoch and layer (arrays (R, E, L)); ``loss`` is (R, E).

    Attributes
    ----------
    epochs : numpy.ndarray, shape (E,)
        Epoch numbers (1 = the first epoch of training).
    grad_mean, grad_std : numpy.ndarray
        ‖mean_b g_b‖_F and sqrt(tr Cov_b g) of the layer's weight gradients over the
        epoch's minibatches b (population covariance).
    update_mean, update_std : numpy.ndarray
        The same for the weight updates Δw actually applied (Adam included).
    weight_norm : numpy.ndarray
        ‖W‖_F at the end of the epoch.
    loss : numpy.ndarray
        Mean cross-entropy over the epoch's minibatches (before each update).
    """

    epochs: np.ndarray
    grad_mean: np.ndarray
    grad_std: np.ndarray
    update_mean: np.ndarray
    update_std: np.ndarray
    weight_norm: np.ndarray
    loss: np.ndarray

    @property
    def snr(self) -> np.ndarray:
        """Signal-to-noise ratio grad_mean / grad_std."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.grad_mean / self.grad_std

    @staticmethod
    def concatenate(parts: Sequence["EpochStatistics"]) -> "EpochStatistics":
        """Join statistics of consecutive epoch ranges."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return EpochStatistics(epochs=np.concatenate([p.epochs for p in parts]),
                               **{name: np.concatenate([getattr(p, name) for p in parts], axis=1)
                                  for name in ("grad_mean", "grad_std", "update_mean", "update_std",
                                               "weight_norm", "loss")})


@dataclass(frozen=True)
class WeightTrace:
    """Weights, per-step gradients and applied updates of every replica at chosen epochs.

    Attributes
    ----------
    epochs : numpy.ndarray of int, shape (S,)
        The traced epochs (1 = the first epoch of training).
    weights : numpy.ndarray, shape (R, S, W)
        The layers' weights (biases excluded; layer l's block of ``W`` in row-major
        order, layers one after another) at the start of each traced epoch.
    gradients, updates : numpy.ndarray, shape (R, S, n_b, W)
        The minibatch gradient of step b of the epoch (at the weights before the step)
        and the weight change the optimiser applied in that step.
    second_gradients : numpy.ndarray, shape (R, S, n_b, W), optional
        The gradient of a second, independent minibatch of the same size at the same
        weights (not applied): ``gradients - second_gradients`` has covariance 2 Cov_b g
        given the weights, the minibatch noise free of the ensemble's spread.
    """

    epochs: np.ndarray
    weights: np.ndarray
    gradients: np.ndarray
    updates: np.ndarray
    second_gradients: np.ndarray | None = None

    @staticmethod
    def concatenate(parts: Sequence["WeightTrace"]) -> "WeightTrace":
        """Join traces of consecutive epoch ranges (empty parts allowed)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        seconds = [p.second_gradients for p in parts]
        if any(s is None for s in seconds) and not all(s is None for s in seconds):
            raise ValueError("parts with and without `second_gradients` cannot be joined.")
        return WeightTrace(epochs=np.concatenate([p.epochs for p in parts]),
                           second_gradients=None if seconds[0] is None else np.concatenate(seconds, axis=1),
                           **{name: np.concatenate([getattr(p, name) for p in parts], axis=1)
                              for name in ("weights", "gradients", "updates")})


@dataclass(kw_only=True)
class Trainer:
    """Training state of R replicas on one training set (mutable; advanced by :meth:`run`).

    Parameters
    ----------
    arch : Architecture
    x : numpy.ndarray, shape (n, widths[0])
        Training inputs.
    y : numpy.ndarray of int, shape (n,)
        Class labels in [0, widths[-1]).
    replicas : int
        Networks trained side by side (R).
    seed : int
        Seeds the initial weights and the minibatch orders (see the module text).
    optimizer : {"adam", "sgd"}
    learning_rate : float
    batch_size : int
        Minibatch size; the last minibatch of an epoch holds the remainder.
    batches : {"reshuffled", "fixed", "iid", "subset"}
        Minibatch sampling (see :data:`SAMPLINGS`).
    beta1, beta2, eps : float
        Adam's constants (PyTorch's defaults).
    first_replica : int
        Index of this trainer's first replica in a larger study (its random streams).
    shared_initialization : bool
        Start every replica from the initial weights of replica 0 (the replicas then
        differ only in their minibatches).
    trace_epochs : sequence of int
        Epochs (1-based) at which :class:`WeightTrace` data are kept (see :meth:`trace`).
    trace_second_batch : bool
        At traced epochs also evaluate, before every step, the gradient of a second
        independent minibatch (its own random stream; i.i.d. rows under "iid", else a fresh
        subset) at the same weights; it is recorded, never applied. Traced epochs then
        cost about twice as much.
    threads : int, optional
    """

    arch: Architecture
    x: np.ndarray
    y: np.ndarray
    replicas: int = 1
    seed: int = 0
    optimizer: str = "adam"
    learning_rate: float = 4e-4
    batch_size: int = 512
    batches: str = "reshuffled"
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    first_replica: int = 0
    shared_initialization: bool = False
    trace_epochs: Sequence[int] = ()
    trace_second_batch: bool = False
    threads: int | None = None
    params: np.ndarray = field(init=False)
    adam_m: np.ndarray = field(init=False)
    adam_v: np.ndarray = field(init=False)
    steps: np.ndarray = field(init=False)
    epoch: int = field(init=False, default=0)
    last_run: EpochStatistics | None = field(init=False, default=None)
    _trace_parts: list[WeightTrace] = field(init=False, default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.arch, Architecture):
            raise TypeError(f"`arch` must be an Architecture, got {type(self.arch).__name__}.")
        x = np.ascontiguousarray(as_float_array(self.x, "x"))
        if x.ndim != 2 or x.shape[1] != self.arch.widths[0] or x.shape[0] < 1:
            raise ValueError(f"`x` must have shape (n >= 1, {self.arch.widths[0]}), got {x.shape}.")
        if not np.all(np.isfinite(x)):
            raise ValueError("`x` must be finite.")
        y = np.asarray(self.y)
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
            raise ValueError(f"`y` must be integers of shape ({x.shape[0]},), got {y.dtype} {y.shape}.")
        if y.min() < 0 or y.max() >= self.arch.widths[-1]:
            raise ValueError(f"`y` must lie in [0, {self.arch.widths[-1]}), got [{y.min()}, {y.max()}].")
        self.x, self.y = x, np.ascontiguousarray(y, dtype=np.int64)
        self.replicas = check_int_range(self.replicas, "replicas", 1, 2**31 - 1)
        self.first_replica = check_int_range(self.first_replica, "first_replica", 0, 2**31 - 1)
        check_choice(self.optimizer, "optimizer", sorted(OPTIMIZERS))
        check_choice(self.batches, "batches", BATCHES)
        self.learning_rate = check_finite_positive(self.learning_rate, "learning_rate")
        self.batch_size = check_int_range(self.batch_size, "batch_size", 1)
        # Parameters and Adam's two moments per replica, before anything is allocated.
        check_memory(3.0 * 8 * self.replicas * self.arch.n_params, f"{self.replicas:,} replicas of "
                     f"{self.arch.n_params} parameters", "replicas")
        if x.shape[0] + min(self.batch_size, x.shape[0]) > 2**21:
            # The minibatch draws' Philox counters hold a row index below 2**21 per epoch.
            raise ValueError(f"`x` may hold at most {2**20} training rows, got {x.shape[0]}.")
        for name in ("beta1", "beta2"):
            value = check_finite_scalar(getattr(self, name), name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value}.")
            setattr(self, name, value)
        self.eps = check_finite_positive(self.eps, "eps")
        self.shared_initialization = as_bool(self.shared_initialization, "shared_initialization")
        self.trace_epochs = _check_epochs(self.trace_epochs, "trace_epochs")
        self.trace_second_batch = as_bool(self.trace_second_batch, "trace_second_batch")
        self._threads = resolve_threads(self.threads)
        _, self._k0, self._k1 = philox_key(check_int_range(self.seed, "seed", 0))
        r0 = self.first_replica
        if self.shared_initialization:
            self.params = np.repeat(init_params(self.arch, self.seed, (0, 1)), self.replicas, axis=0)
        else:
            self.params = init_params(self.arch, self.seed, (r0, r0 + self.replicas))
        self._weight_index = np.concatenate(
            [np.arange(wo, wo + n_in * n_out) for n_in, n_out, wo, _ in self.arch.layers]).astype(np.int64)
        self.adam_m = np.zeros_like(self.params)
        self.adam_v = np.zeros_like(self.params)
        self.steps = np.zeros(self.replicas, dtype=np.int64)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.x.shape[0] // self.batch_size)

    def run(self, epochs: int) -> EpochStatistics:
        """Train every replica for ``epochs`` more epochs; statistics of those epochs.

        A Ctrl-C lets the running kernels finish these epochs for every replica (the
        state stays whole), stores their statistics in ``last_run`` and re-raises.
        """
        n_epochs = check_int_range(epochs, "epochs", 1, 10**9)
        # Five per-layer statistics and the loss per replica and epoch, before any training.
        check_memory(8.0 * self.replicas * n_epochs * (5 * self.arch.n_layers + 1),
                     f"statistics of {n_epochs:,} epochs of {self.replicas:,} replicas", "epochs")
        R, L = self.replicas, self.arch.n_layers
        out = {name: np.zeros((R, n_epochs, L)) for name in ("grad_mean", "grad_std", "update_mean",
                                                              "update_std", "weight_norm")}
        loss = np.zeros((R, n_epochs))
        first = self.epoch + 1
        traced = np.array([e for e in self.trace_epochs if first <= e < first + n_epochs], dtype=np.int64)
        slots = np.full(n_epochs, -1, dtype=np.int64)
        slots[traced - first] = np.arange(traced.size)
        W = self._weight_index.size
        n_b = self.batches_per_epoch
        per_step = 3 if self.trace_second_batch else 2
        needed = 8.0 * R * traced.size * W * (per_step * n_b + 1)
        if needed > 2.0**34:
            raise ValueError(f"`trace_epochs` would keep {needed / 2**30:.1f} GiB for {traced.size} epochs of "
                             f"{R} replicas (at most 16 GiB): trace fewer epochs or replicas.")
        trace = WeightTrace(epochs=traced, weights=np.zeros((R, traced.size, W)),
                            gradients=np.zeros((R, traced.size, n_b, W)), updates=np.zeros((R, traced.size, n_b, W)),
                            second_gradients=np.zeros((R, traced.size, n_b, W)) if self.trace_second_batch else None)
        work = partial(self._train_range, n_epochs, out, loss, slots, trace)
        with ThreadRunner(self._threads) as runner:
            interrupted = runner.run_all(work, 0, self.replicas)
        self.epoch += n_epochs
        self.last_run = EpochStatistics(epochs=np.arange(first, first + n_epochs), loss=loss, **out)
        if traced.size:
            self._trace_parts.append(trace)
        if interrupted is not None:
            # Every replica finished these epochs; the caller finds them in last_run.
            raise interrupted
        return self.last_run

    def _train_range(self, n_epochs: int, out: dict[str, np.ndarray], loss: np.ndarray, slots: np.ndarray,
                     trace: WeightTrace, a: int, b: int) -> None:
        # The flavour compiled without the code this run cannot execute (second-batch trace, step draws).
        train = _kernels.training_kernel(second_batch=self.trace_second_batch,
                                         step_draws=self.batches not in ("reshuffled", "fixed"))
        train(
            self.params, self.adam_m, self.adam_v, self.steps, self.x, self.y, self.arch.layers,
            ACTIVATIONS[self.arch.activation], OPTIMIZERS[self.optimizer], float(self.learning_rate),
            float(self.beta1), float(self.beta2), float(self.eps), int(self.batch_size), SAMPLINGS[self.batches],
            np.uint64(self._k0), np.uint64(self._k1), self.epoch, n_epochs, a, b, self.first_replica,
            out["grad_mean"], out["grad_std"], out["update_mean"], out["update_std"], out["weight_norm"], loss,
            slots, self._weight_index, trace.weights, trace.gradients, trace.updates,
            trace.second_gradients if trace.second_gradients is not None else np.zeros((0, 0, 0, 0)),
            *_kernels.epoch_scratch(self.arch.layers, self.x.shape[0], int(self.batch_size), self.arch.n_params))

    def trace(self) -> WeightTrace:
        """The :class:`WeightTrace` of every traced epoch trained so far (S may be 0)."""
        if not self._trace_parts:
            W = self._weight_index.size
            steps = np.zeros((self.replicas, 0, self.batches_per_epoch, W))
            return WeightTrace(epochs=np.zeros(0, np.int64), weights=np.zeros((self.replicas, 0, W)),
                               gradients=steps, updates=steps.copy(),
                               second_gradients=steps.copy() if self.trace_second_batch else None)
        return WeightTrace.concatenate(self._trace_parts)

    def per_sample_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Per replica and layer, over all training rows at the current weights: ‖mean g_i‖ and
        sqrt(tr Cov g_i) of the single-sample weight gradients, each (R, L).

        Their squared ratio is the gradient noise scale B_noise = tr Σ / |G|² (McCandlish et al.
        2018): minibatches of B rows have SNR near 1 where B ≈ B_noise.
        """
        R, L = self.replicas, self.arch.n_layers
        mean, std = np.zeros((R, L)), np.zeros((R, L))
        work = partial(_kernels.per_sample_moments, self.params, self.x, self.y, self.arch.layers,
                       ACTIVATIONS[self.arch.activation])

        def piece(a: int, b: int) -> None:
            work(a, b, mean, std, np.arange(self.x.shape[0]), *_kernels.gradient_scratch(self.arch.layers, 1),
                 np.zeros((3, self.arch.n_params)))

        with ThreadRunner(self._threads) as runner:
            interrupted = runner.run_all(piece, 0, R)
        if interrupted is not None:
            raise interrupted
        return mean, std

    def batch_order(self, replica: int, epoch: int) -> np.ndarray:
        """The order in which replica ``replica`` (of this trainer) sees the training rows in
        ``epoch`` (0-based), shape (n,); minibatches are consecutive slices of ``batch_size``.

        Only for epoch-wise sampling ("reshuffled", "fixed"); see :meth:`batch_indices`.
        """
        if self.batches not in ("reshuffled", "fixed"):
            raise ValueError(f"`batch_order` needs epoch-wise sampling; with batches={self.batches!r} "
                             "use `batch_indices`.")
        return np.concatenate(self.batch_indices(replica, epoch))

    def batch_indices(self, replica: int, epoch: int) -> list[np.ndarray]:
        """The training rows of every step of ``epoch`` (0-based) for replica ``replica`` of
        this trainer: a list of ``batches_per_epoch`` index arrays, in step order."""
        check_int_range(replica, "replica", 0, self.replicas - 1)
        check_int_range(epoch, "epoch", 0, 2**40)
        n = self.x.shape[0]
        global_replica = replica + self.first_replica
        order = np.zeros(n, np.int64)
        code = SAMPLINGS[self.batches]
        if self.batches in ("reshuffled", "fixed"):
            _kernels.shuffle_order(order, 0 if self.batches == "fixed" else epoch, global_replica,
                                   np.uint64(self._k0), np.uint64(self._k1))
        picks = np.zeros(min(self.batch_size, n), np.int64)
        out = []
        for b in range(self.batches_per_epoch):
            m = _kernels.fill_batch(order, picks, code, epoch, b, int(self.batch_size), global_replica,
                                    np.uint64(self._k0), np.uint64(self._k1))
            out.append(picks[:m].copy())
        return out

    def second_batch_indices(self, replica: int, epoch: int) -> list[np.ndarray]:
        """The rows of the second minibatch of every step of ``epoch`` (0-based) for replica
        ``replica`` (see ``trace_second_batch``), in step order."""
        check_int_range(replica, "replica", 0, self.replicas - 1)
        check_int_range(epoch, "epoch", 0, 2**40)
        n = self.x.shape[0]
        order = np.zeros(n, np.int64)
        picks = np.zeros(min(self.batch_size, n), np.int64)
        out = []
        for b in range(self.batches_per_epoch):
            m = _kernels.fill_second_batch(order, picks, SAMPLINGS[self.batches], epoch, b, int(self.batch_size),
                                           replica + self.first_replica, np.uint64(self._k0), np.uint64(self._k1))
            out.append(picks[:m].copy())
        return out

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every layer's outputs and pre-activations for inputs ``x`` (n, d), each (R, n, Σ widths[1:])."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        total = int(sum(self.arch.widths[1:]))
        outs = np.zeros((self.replicas, x.shape[0], total))
        pres = np.zeros_like(outs)
        idx = np.arange(x.shape[0])

        def piece(a: int, b: int) -> None:
            acts, pre = _kernels.gradient_scratch(self.arch.layers, max(1, min(x.shape[0], 512)))[:2]
            _kernels.forward_all(self.params, x, self.arch.layers, ACTIVATIONS[self.arch.activation], a, b, outs,
                                 pres, idx, acts, pre)

        with ThreadRunner(self._threads) as runner:
            runner.run(piece, 0, self.replicas)
        return outs, pres

    def layer_slices(self) -> list[slice]:
        """Columns of each layer in :meth:`outputs`."""
        edges = np.concatenate([[0], np.cumsum(self.arch.widths[1:])])
        return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]

    def state(self) -> dict[str, Any]:
        """Arrays and counters that restore this trainer (for checkpoints)."""
        state: dict[str, Any] = {"params": self.params.copy(), "adam_m": self.adam_m.copy(),
                                 "adam_v": self.adam_v.copy(), "steps": self.steps.copy(), "epoch": self.epoch}
        if self._trace_parts:
            trace = self.trace()
            state.update(trace_epochs=trace.epochs, trace_weights=trace.weights,
                         trace_gradients=trace.gradients, trace_updates=trace.updates)
            if trace.second_gradients is not None:
                state["trace_second_gradients"] = trace.second_gradients
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`state` returned."""
        for name in ("params", "adam_m", "adam_v", "steps"):
            arr = np.asarray(state[name])
            if arr.shape != getattr(self, name).shape:
                raise ValueError(f"checkpoint `{name}` has shape {arr.shape}, expected {getattr(self, name).shape}.")
            getattr(self, name)[...] = arr
        self.epoch = int(state["epoch"])
        self._trace_parts = []
        if "trace_epochs" in state and len(state["trace_epochs"]):
            self._trace_parts.append(WeightTrace(
                epochs=np.asarray(state["trace_epochs"], np.int64), weights=np.asarray(state["trace_weights"]),
                gradients=np.asarray(state["trace_gradients"]), updates=np.asarray(state["trace_updates"]),
                second_gradients=(np.asarray(state["trace_second_gradients"])
                                  if "trace_second_gradients" in state else None)))


def _check_epochs(value: Any, name: str) -> tuple[int, ...]:
    """A sorted tuple of distinct epoch numbers >= 1."""
    try:
        items = [v for v in np.atleast_1d(np.asarray(value, dtype=object)).tolist()] if value is not None else []
    except TypeError:
        raise TypeError(f"`{name}` must be a sequence of integers >= 1, got {value!r}.") from None
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"`{name}` must hold integers >= 1, got {v!r}.")
        if v < 1:
            raise ValueError(f"`{name}` must hold epochs >= 1, got {v}.")
        out.append(int(v))
    return tuple(sorted(set(out)))
