"""Gradient-statistics records: the one layout that the trainer, the PyTorch recorder, the
studies and the adapter share, and its HDF5 reader and writer.

A :class:`GradientStatistics` holds, for R replicas of one training setup:

* per epoch and layer, the norms of PHYSICS.md §5 (an :class:`EpochStatistics`):
  ‖mean_b g_b‖_F, sqrt(tr Cov_b g), the same for the applied updates, ‖W‖_F, the loss;
* optionally, at chosen epochs, a :class:`WeightTrace`: every replica's weights at the
  epoch's start and every step's weight gradient and applied update, which is what the
  adapter needs for per-weight, per-direction and cross-layer quantities;
* the settings that decide how those numbers map to drift and diffusion: the step size,
  the batch size, the number of training rows, the steps per epoch, the optimiser and
  the minibatch sampling (``"reshuffled"``, ``"fixed"``, ``"iid"``, ``"subset"``).

File layout (group ``statistics`` of a file, or any group passed to
:func:`write_statistics`)::

    attrs:  layer_names (S), layer_sizes (int), learning_rate, batch_size, n_train,
            steps_per_epoch, optimizer, sampling, shared_initialization, seed (-1: none),
            producer
    epochs (E,)  grad_mean grad_std update_mean update_std weight_norm (R, E, L)  loss (R, E)
    trace/ (optional)  epochs (S,)  weights (R, S, W)  gradients updates (R, S, n_b, W)
                       second_gradients (R, S, n_b, W) (optional: a second minibatch per step)

W = Σ_l layer_sizes[l]: layer l's weights are the block after the earlier layers'.
Any tool can write such a file from plain arrays (:meth:`GradientStatistics.from_arrays`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import io
from .._validation import check_finite_positive, check_int_range
from .network import SAMPLINGS, EpochStatistics, Trainer, WeightTrace

__all__ = ["GradientStatistics", "write_statistics", "read_statistics", "read_gradient_statistics",
           "STAT_NAMES", "EXPERIMENT_NAME"]

#: The per-epoch, per-layer arrays of :class:`EpochStatistics`.
STAT_NAMES = ("grad_mean", "grad_std", "update_mean", "update_std", "weight_norm")
#: Root attribute ``experiment`` of a stand-alone statistics file.
EXPERIMENT_NAME = "gradient_statistics"


@dataclass(frozen=True, kw_only=True, eq=False)
class GradientStatistics:
    """Gradient and update statistics of R replicas of one training setup.

    Parameters
    ----------
    layer_names : sequence of str, length L
    layer_sizes : sequence of int, length L
        Weights per layer d_l (the trace's columns, layer after layer).
    learning_rate : float
        η of the optimiser (for Adam its ``lr``).
    batch_size : int
        B, rows per minibatch.
    n_train : int
        Training rows n.
    steps_per_epoch : int
        Optimiser steps per epoch n_b.
    sampling : {"reshuffled", "fixed", "iid", "subset"}
        How the minibatches were drawn (PHYSICS.md §5).
    optimizer : str
        ``"sgd"``, ``"adam"`` or the name of another optimiser.
    stats : EpochStatistics
        Per-epoch norms, arrays (R, E, L).
    trace : WeightTrace, optional
        Weights, per-step gradients and updates at chosen epochs.
    shared_initialization : bool
        Whether every replica started from the same weights.
    seed : int, optional
        The seed that produced the runs.
    producer : str
        What wrote the statistics (``"ib_physics.Trainer"``, ``"torch"``, ``"arrays"``, ...).
    """

    layer_names: Sequence[str]
    layer_sizes: Sequence[int]
    learning_rate: float
    batch_size: int
    n_train: int
    steps_per_epoch: int
    sampling: str
    optimizer: str
    stats: EpochStatistics
    trace: WeightTrace | None = None
    shared_initialization: bool = False
    seed: int | None = None
    producer: str = "arrays"

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.layer_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"`layer_names` must be distinct names of >= 1 layer, got {self.layer_names!r}.")
        try:
            sizes = tuple(check_int_range(s, f"layer_sizes[{i}]", 1) for i, s in enumerate(self.layer_sizes))
        except TypeError:
            raise TypeError(f"`layer_sizes` must be integers >= 1, got {self.layer_sizes!r}.") from None
        if len(sizes) != len(names):
            raise ValueError(f"`layer_sizes` has {len(sizes)} entries for {len(names)} `layer_names`.")
        object.__setattr__(self, "layer_names", names)
        object.__setattr__(self, "layer_sizes", sizes)
        object.__setattr__(self, "learning_rate", check_finite_positive(self.learning_rate, "learning_rate"))
        check_int_range(self.batch_size, "batch_size", 1)
        check_int_range(self.n_train, "n_train", 1)
        check_int_range(self.steps_per_epoch, "steps_per_epoch", 1)
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"`sampling` must be one of {tuple(SAMPLINGS)}, got {self.sampling!r}.")
        if not isinstance(self.optimizer, str) or not self.optimizer:
            raise TypeError(f"`optimizer` must be a non-empty string, got {self.optimizer!r}.")
        if not isinstance(self.shared_initialization, (bool, np.bool_)):
            raise TypeError(f"`shared_initialization` must be True or False, got {self.shared_initialization!r}.")
        if self.seed is not None:
            check_int_range(self.seed, "seed", 0)
        self._check_stats()
        self._check_trace()

    # --- validation ---------------------------------------------------------------------------

    def _check_stats(self) -> None:
        s = self.stats
        if not isinstance(s, EpochStatistics):
            raise TypeError(f"`stats` must be an EpochStatistics, got {type(s).__name__}.")
        epochs = _epoch_axis(s.epochs, "stats.epochs")
        E, L = epochs.size, len(self.layer_names)
        R = np.asarray(s.grad_mean).shape[0] if np.ndim(s.grad_mean) == 3 else -1
        for name in STAT_NAMES:
            arr = np.asarray(getattr(s, name), dtype=float)
            if arr.shape != (R, E, L) or R < 1:
                raise ValueError(f"`stats.{name}` must have shape (replicas, {E} epochs, {L} layers), got {arr.shape}.")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"`stats.{name}` must be finite and >= 0.")
        loss = np.asarray(s.loss, dtype=float)
        if loss.shape != (R, E):
            raise ValueError(f"`stats.loss` must have shape ({R}, {E}), got {loss.shape}.")

    def _check_trace(self) -> None:
        t = self.trace
        if t is None:
            return
        if not isinstance(t, WeightTrace):
            raise TypeError(f"`trace` must be a WeightTrace or None, got {type(t).__name__}.")
        epochs = _epoch_axis(t.epochs, "trace.epochs")
        R, S, W, n_b = self.replicas, epochs.size, sum(self.layer_sizes), self.steps_per_epoch
        shapes = {"weights": (R, S, W), "gradients": (R, S, n_b, W), "updates": (R, S, n_b, W)}
        if t.second_gradients is not None:
            shapes["second_gradients"] = (R, S, n_b, W)
        for name, shape in shapes.items():
            arr = np.asarray(getattr(t, name))
            if arr.shape != shape:
                raise ValueError(f"`trace.{name}` must have shape {shape} (replicas, epochs, [steps,] weights), "
                                 f"got {arr.shape}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"`trace.{name}` must be finite.")

    # --- shape --------------------------------------------------------------------------------

    @property
    def replicas(self) -> int:
        return int(np.asarray(self.stats.grad_mean).shape[0])

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)

    def layer_slice(self, layer: int | str) -> slice:
        """Columns of ``layer`` (index or name) in the trace's weight axis."""
        index = self.layer_index(layer)
        start = int(sum(self.layer_sizes[:index]))
        return slice(start, start + self.layer_sizes[index])

    def layer_index(self, layer: int | str) -> int:
        """Index of a layer given by name or index."""
        if isinstance(layer, str):
            if layer not in self.layer_names:
                raise ValueError(f"`layer` must be one of {self.layer_names}, got {layer!r}.")
            return self.layer_names.index(layer)
        return check_int_range(layer, "layer", 0, self.n_layers - 1)

    def select_replicas(self, replicas: Any) -> "GradientStatistics":
        """The same statistics for a subset of replicas (indices or a boolean mask)."""
        idx = np.arange(self.replicas)[replicas]
        if np.ndim(idx) != 1 or idx.size < 1:
            raise ValueError("`replicas` must select at least one replica.")
        s = self.stats
        stats = EpochStatistics(epochs=s.epochs, loss=np.asarray(s.loss)[idx],
                                **{k: np.asarray(getattr(s, k))[idx] for k in STAT_NAMES})
        trace = None
        if self.trace is not None:
            t = self.trace
            trace = WeightTrace(epochs=t.epochs, weights=t.weights[idx], gradients=t.gradients[idx],
                                updates=t.updates[idx],
                                second_gradients=None if t.second_gradients is None else t.second_gradients[idx])
        return self._with(stats=stats, trace=trace)

    def _with(self, **changes: Any) -> "GradientStatistics":
        fields = {k: getattr(self, k) for k in ("layer_names", "layer_sizes", "learning_rate", "batch_size",
                                                "n_train", "steps_per_epoch", "sampling", "optimizer", "stats",
                                                "trace", "shared_initialization", "seed", "producer")}
        return GradientStatistics(**(fields | changes))

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def from_trainer(cls, trainer: Trainer, stats: EpochStatistics) -> "GradientStatistics":
        """What a :class:`~ib_physics.learning.Trainer` recorded: ``stats`` (the concatenated
        results of its :meth:`~ib_physics.learning.Trainer.run` calls) and its trace."""
        if not isinstance(trainer, Trainer):
            raise TypeError(f"`trainer` must be a Trainer, got {type(trainer).__name__}.")
        trace = trainer.trace()
        arch = trainer.arch
        return cls(layer_names=arch.layer_names,
                   layer_sizes=[int(a * b) for a, b in zip(arch.widths[:-1], arch.widths[1:])],
                   learning_rate=trainer.learning_rate, batch_size=trainer.batch_size, n_train=trainer.x.shape[0],
                   steps_per_epoch=trainer.batches_per_epoch, sampling=trainer.batches, optimizer=trainer.optimizer,
                   stats=stats, trace=trace if trace.epochs.size else None,
                   shared_initialization=bool(trainer.shared_initialization), seed=trainer.seed,
                   producer="ib_physics.Trainer")

    @classmethod
    def from_arrays(cls, *, layer_names: Sequence[str], layer_sizes: Sequence[int], learning_rate: float,
                    batch_size: int, n_train: int, steps_per_epoch: int, sampling: str, optimizer: str,
                    epochs: Any, grad_mean: Any, grad_std: Any, update_mean: Any | None = None,
                    update_std: Any | None = None, weight_norm: Any | None = None, loss: Any | None = None,
                    trace_epochs: Any | None = None, trace_weights: Any | None = None,
                    trace_gradients: Any | None = None, trace_updates: Any | None = None,
                    trace_second_gradients: Any | None = None, shared_initialization: bool = False, seed: int | None = None,
                    producer: str = "arrays") -> "GradientStatistics":
        """Statistics from plain arrays (any training tool).

        Per-epoch arrays have shape (R, E, L), or (E, L) for one replica. Missing update
        statistics default to η times the gradient ones (plain SGD), a missing weight norm or
        loss to zeros. Trace arrays as in :class:`WeightTrace` (all four or none, and
        optionally ``trace_second_gradients``).
        """
        def per_epoch(value: Any, name: str) -> np.ndarray:
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise TypeError(f"`{name}` must be an array of numbers.") from None
            return arr[None] if arr.ndim == 2 else arr

        gm, gs = per_epoch(grad_mean, "grad_mean"), per_epoch(grad_std, "grad_std")
        eta = check_finite_positive(learning_rate, "learning_rate")
        um = per_epoch(update_mean, "update_mean") if update_mean is not None else eta * gm
        us = per_epoch(update_std, "update_std") if update_std is not None else eta * gs
        wn = per_epoch(weight_norm, "weight_norm") if weight_norm is not None else np.zeros_like(gm)
        ls = np.asarray(loss, dtype=float) if loss is not None else np.zeros(gm.shape[:2])
        ls = ls[None] if ls.ndim == 1 else ls
        ep = np.asarray(epochs)
        if not np.issubdtype(ep.dtype, np.integer):
            raise TypeError(f"`epochs` must be integers, got {ep.dtype}.")
        stats = EpochStatistics(epochs=ep.astype(np.int64), grad_mean=gm, grad_std=gs, update_mean=um,
                                update_std=us, weight_norm=wn, loss=ls)
        trace = None
        parts = (trace_epochs, trace_weights, trace_gradients, trace_updates)
        if any(p is not None for p in parts):
            if any(p is None for p in parts):
                raise ValueError("a trace needs all of `trace_epochs`, `trace_weights`, `trace_gradients`, "
                                 "`trace_updates`.")
            te = np.asarray(trace_epochs)
            if not np.issubdtype(te.dtype, np.integer):
                raise TypeError(f"`trace_epochs` must be integers, got {te.dtype}.")
            trace = WeightTrace(epochs=te.astype(np.int64), weights=np.asarray(trace_weights, dtype=float),
                                gradients=np.asarray(trace_gradients, dtype=float),
                                updates=np.asarray(trace_updates, dtype=float),
                                second_gradients=(None if trace_second_gradients is None
                                                  else np.asarray(trace_second_gradients, dtype=float)))
        elif trace_second_gradients is not None:
            raise ValueError("`trace_second_gradients` needs the rest of the trace (`trace_epochs`, ...).")
        return cls(layer_names=layer_names, layer_sizes=layer_sizes, learning_rate=eta, batch_size=batch_size,
                   n_train=n_train, steps_per_epoch=steps_per_epoch, sampling=sampling, optimizer=optimizer,
                   stats=stats, trace=trace, shared_initialization=shared_initialization, seed=seed,
                   producer=producer)

    # --- files --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, settings: Mapping[str, Any] | None = None) -> Path:
        """Write a stand-alone statistics file (atomically); ``settings`` as a JSON attribute."""
        path = Path(path)
        with io.atomic_h5(path) as f:
            f.attrs["experiment"] = EXPERIMENT_NAME
            io.write_json_attr(f, "settings", dict(settings or {}))
            write_statistics(f.create_group("statistics"), self)
        return path


def _epoch_axis(value: Any, name: str) -> np.ndarray:
    """Strictly increasing integer epochs >= 1, shape (E,)."""
    epochs = np.asarray(value)
    if epochs.ndim != 1 or not np.issubdtype(epochs.dtype, np.integer) or np.any(epochs < 1) \
            or np.any(np.diff(epochs) <= 0):
        raise ValueError(f"`{name}` must be strictly increasing integers >= 1.")
    return epochs


def write_statistics(group: Any, statistics: GradientStatistics, *, trace: bool = True) -> None:
    """Write ``statistics`` into an open HDF5 group (see the module text for the layout); with
    ``trace=False`` without its weight trace (which may be large)."""
    if not isinstance(statistics, GradientStatistics):
        raise TypeError(f"`statistics` must be a GradientStatistics, got {type(statistics).__name__}.")
    s = statistics
    group.attrs["layer_names"] = np.array(s.layer_names, dtype="S")
    group.attrs["layer_sizes"] = np.array(s.layer_sizes, dtype=np.int64)
    for key in ("learning_rate", "batch_size", "n_train", "steps_per_epoch", "optimizer", "sampling", "producer"):
        group.attrs[key] = getattr(s, key)
    group.attrs["shared_initialization"] = bool(s.shared_initialization)
    group.attrs["seed"] = -1 if s.seed is None else int(s.seed)
    io.write_arrays(group, {"epochs": s.stats.epochs, "loss": s.stats.loss,
                            **{k: getattr(s.stats, k) for k in STAT_NAMES}})
    if s.trace is not None and trace:
        t = group.create_group("trace")
        io.write_arrays(t, {"epochs": s.trace.epochs, "weights": s.trace.weights, "gradients": s.trace.gradients,
                            "updates": s.trace.updates})
        if s.trace.second_gradients is not None:
            io.write_arrays(t, {"second_gradients": s.trace.second_gradients})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_statistics(group: Any) -> GradientStatistics:
    """Read what :func:`write_statistics` wrote (or a study run group with the same arrays)."""
    a = group.attrs
    missing = [k for k in ("layer_names", "learning_rate", "batch_size") if k not in a]
    if missing or "epochs" not in group:
        raise ValueError(f"group {group.name} holds no gradient statistics (missing {missing or ['epochs']}).")
    names = [_text(n) for n in a["layer_names"]]
    stats = EpochStatistics(epochs=group["epochs"][()].astype(np.int64), loss=group["loss"][()],
                            **{k: group[k][()] for k in STAT_NAMES})
    trace = None
    if "trace" in group:
        t = group["trace"]
        trace = WeightTrace(epochs=t["epochs"][()].astype(np.int64), weights=t["weights"][()],
                            gradients=t["gradients"][()], updates=t["updates"][()],
                            second_gradients=t["second_gradients"][()] if "second_gradients" in t else None)
    seed = int(a.get("seed", -1))
    return GradientStatistics(
        layer_names=names, layer_sizes=[int(v) for v in a["layer_sizes"]], learning_rate=float(a["learning_rate"]),
        batch_size=int(a["batch_size"]), n_train=int(a["n_train"]), steps_per_epoch=int(a["steps_per_epoch"]),
        sampling=_text(a["sampling"]), optimizer=_text(a["optimizer"]), stats=stats, trace=trace,
        shared_initialization=bool(a.get("shared_initialization", False)), seed=None if seed < 0 else seed,
        producer=_text(a.get("producer", "unknown")))


def read_gradient_statistics(path: str | os.PathLike[str], group: str = "statistics") -> GradientStatistics:
    """Read a statistics file written by :meth:`GradientStatistics.save` (or any group of an
    ib_physics file that holds the layout, e.g. ``"runs/fraction_0.8500/statistics"``)."""
    return io.read_group(path, group, read_statistics, "gradient statistics")
