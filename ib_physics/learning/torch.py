"""Gradient statistics from users' own PyTorch models (extra ``torch``).

Attach a :class:`GradientRecorder` to a model and its optimiser; it hooks the
optimiser's ``step`` and records, per layer and epoch, the same statistics as the
built-in trainer (PHYSICS.md §5): the norm of the mean minibatch gradient, the
square root of the trace of its covariance over the epoch's minibatches
(population), the same for the weight updates actually applied, and the weight
norm; at chosen ``trace_epochs`` also the weights at the epoch's start and every step's
gradient and update (the adapter's per-weight input). Call
:meth:`GradientRecorder.end_epoch` after each epoch; :meth:`GradientRecorder.statistics`
returns a :class:`~ib_physics.learning.records.GradientStatistics` and
:meth:`GradientRecorder.save` writes it in the package's one statistics layout, which
:func:`~ib_physics.learning.records.read_gradient_statistics` and the adapter read.

Example
-------
>>> rec = GradientRecorder(model, optimizer)          # doctest: +SKIP
>>> for epoch in range(n_epochs):                      # doctest: +SKIP
...     for xb, yb in loader:
...         loss = loss_fn(model(xb), yb)
...         optimizer.zero_grad(); loss.backward(); optimizer.step()
...         rec.record_loss(loss.item(), len(xb))
...     rec.end_epoch()
>>> stats = rec.statistics(learning_rate=1e-3, batch_size=64, n_train=60000,
...                        sampling="reshuffled")     # doctest: +SKIP
>>> rec.save("my_run.h5", learning_rate=1e-3, batch_size=64, n_train=60000,
...          sampling="reshuffled")                   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .network import EpochStatistics, WeightTrace, _check_epochs
from .records import GradientStatistics

__all__ = ["GradientRecorder", "to_torch"]


def to_torch(arch: Any, params: np.ndarray) -> Any:
    """A ``torch.nn.Sequential`` (float64) with the weights of one parameter row of ``arch``.

    Linear layers with the architecture's activation between them and logits at the
    end (PyTorch's cross-entropy applies the softmax).
    """
    import torch

    row = np.asarray(params, dtype=float)
    if row.shape != (arch.n_params,):
        raise ValueError(f"`params` must be one row of {arch.n_params} parameters, got shape {row.shape}.")
    modules = []
    for l, (n_in, n_out) in enumerate(zip(arch.widths[:-1], arch.widths[1:])):
        lin = torch.nn.Linear(int(n_in), int(n_out), dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(arch.weights(row, l).T))
            lin.bias.copy_(torch.tensor(arch.biases(row, l)))
        modules.append(lin)
        if l < arch.n_layers - 1:
            modules.append(torch.nn.Tanh() if arch.activation == "tanh" else torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


class GradientRecorder:
    """Per-layer gradient and update statistics of a PyTorch training loop.

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer
        Must support step hooks (PyTorch >= 2.0).
    layers : mapping of str to torch.nn.Parameter, optional
        What counts as a layer; default: the ``weight`` of every ``torch.nn.Linear``
        and convolution in ``model.named_modules()`` order (biases excluded, as in
        the built-in statistics).
    trace_epochs : sequence of int
        Epochs (1-based) at which weights, per-step gradients and updates are kept.
    second_loss : callable, optional
        ``second_loss()`` returns the loss (a scalar tensor) of the model on a second,
        independent minibatch, drawn as the loader draws its batches. At traced epochs
        the recorder calls it before every optimiser step and keeps its gradient at the
        step's weights (``torch.autograd.grad``: nothing is accumulated into ``.grad``
        and nothing is applied), the input of the adapter's ``noise="pairs"``.
    """

    def __init__(self, model: Any, optimizer: Any, *, layers: Mapping[str, Any] | None = None,
                 trace_epochs: Any = (), second_loss: Callable[[], Any] | None = None) -> None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
        if layers is None:
            kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
            layers = {name or "layer": m.weight for name, m in model.named_modules() if isinstance(m, kinds)}
        if not layers:
            raise ValueError("`layers` is empty: the model has no Linear or convolution layers; pass `layers`.")
        self.names = tuple(layers)
        self._params = tuple(layers.values())
        self.trace_epochs = _check_epochs(trace_epochs, "trace_epochs")
        if second_loss is not None and not callable(second_loss):
            raise TypeError(f"`second_loss` must be a callable returning a loss, got {type(second_loss).__name__}.")
        self._second_loss = second_loss
        self._before: list[np.ndarray] = []
        self._epochs: list[dict[str, np.ndarray]] = []
        self._trace: dict[str, list[Any]] = {"epochs": [], "weights": [], "gradients": [], "updates": [],
                                             "second_gradients": []}
        self._reset()
        self._optimizer = optimizer
        self._steps_per_epoch = 1
        self._hooks = [optimizer.register_step_pre_hook(self._pre_step),
                       optimizer.register_step_post_hook(self._post_step)]

    def _reset(self) -> None:
        sizes = [int(p.numel()) for p in self._params]
        self._count = 0
        self._g_mean = [np.zeros(s) for s in sizes]
        self._g_m2 = [np.zeros(s) for s in sizes]
        self._u_mean = [np.zeros(s) for s in sizes]
        self._u_m2 = [np.zeros(s) for s in sizes]
        self._loss_sum = 0.0
        self._loss_n = 0
        self._tracing = (len(self._epochs) + 1) in self.trace_epochs
        self._step_gradients: list[np.ndarray] = []
        self._step_updates: list[np.ndarray] = []
        self._step_second: list[np.ndarray] = []
        self._start_weights: np.ndarray | None = None

    def _pre_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._count += 1
        k = self._count
        self._before = []
        grads = []
        for j, p in enumerate(self._params):
            if p.grad is None:
                raise RuntimeError(f"layer {self.names[j]!r} has no gradient at optimizer.step().")
            g = p.grad.detach().to("cpu").double().numpy().ravel()
            d = g - self._g_mean[j]
            self._g_mean[j] += d / k
            self._g_m2[j] += d * (g - self._g_mean[j])
            self._before.append(p.detach().to("cpu").double().numpy().ravel().copy())
            grads.append(g.copy())
        if self._tracing:
            if self._start_weights is None:
                self._start_weights = np.concatenate(self._before)
            self._step_gradients.append(np.concatenate(grads))
            if self._second_loss is not None:
                self._step_second.append(self._second_gradient())

    def _second_gradient(self) -> np.ndarray:
        import torch

        loss = self._second_loss()
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"`second_loss()` must return a scalar tensor, got {type(loss).__name__}.")
        grads = torch.autograd.grad(loss, self._params, allow_unused=True)
        return np.concatenate([np.zeros(int(p.numel())) if g is None else g.detach().to("cpu").double().numpy().ravel()
                               for g, p in zip(grads, self._params)])

    def _post_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        k = self._count
        steps = []
        for j, p in enumerate(self._params):
            du = p.detach().to("cpu").double().numpy().ravel() - self._before[j]
            d = du - self._u_mean[j]
            self._u_mean[j] += d / k
            self._u_m2[j] += d * (du - self._u_mean[j])
            steps.append(du)
        if self._tracing:
            self._step_updates.append(np.concatenate(steps))

    def record_loss(self, loss: float, batch_size: int = 1) -> None:
        """Add a minibatch's mean loss (weighted by its size) to the epoch's mean loss."""
        self._loss_sum += float(loss) * int(batch_size)
        self._loss_n += int(batch_size)

    def end_epoch(self) -> None:
        """Close the current epoch's statistics (needs at least one optimiser step)."""
        if self._count == 0:
            raise RuntimeError("no optimizer.step() since the last end_epoch().")
        n = self._count
        row = {
            "grad_mean": np.array([np.linalg.norm(m) for m in self._g_mean]),
            "grad_std": np.array([np.sqrt(m2.sum() / n) for m2 in self._g_m2]),
            "update_mean": np.array([np.linalg.norm(m) for m in self._u_mean]),
            "update_std": np.array([np.sqrt(m2.sum() / n) for m2 in self._u_m2]),
            "weight_norm": np.array([float(p.detach().double().norm()) for p in self._params]),
            "loss": np.array(self._loss_sum / self._loss_n if self._loss_n else np.nan),
        }
        if self._tracing:
            if self._trace["gradients"] and len(self._step_gradients) != len(self._trace["gradients"][0]):
                raise RuntimeError(f"traced epoch {len(self._epochs) + 1} took {len(self._step_gradients)} steps, "
                                   f"an earlier one {len(self._trace['gradients'][0])}: traced epochs need "
                                   "equal numbers of steps.")
            self._trace["epochs"].append(len(self._epochs) + 1)
            self._trace["weights"].append(self._start_weights)
            self._trace["gradients"].append(np.array(self._step_gradients))
            self._trace["updates"].append(np.array(self._step_updates))
            if self._second_loss is not None:
                self._trace["second_gradients"].append(np.array(self._step_second))
        self._epochs.append(row)
        self._steps_per_epoch = n
        self._reset()

    def epoch_statistics(self) -> EpochStatistics:
        """Everything recorded so far, as one replica: arrays (1, E, L), loss (1, E)."""
        if not self._epochs:
            raise RuntimeError("no epoch recorded yet: call end_epoch() after each epoch.")
        stack = {k: np.array([e[k] for e in self._epochs])[None] for k in self._epochs[0]}
        return EpochStatistics(epochs=np.arange(1, len(self._epochs) + 1), **stack)

    def statistics(self, *, learning_rate: float, batch_size: int, n_train: int, sampling: str,
                   optimizer: str | None = None, seed: int | None = None) -> GradientStatistics:
        """The recording as :class:`~ib_physics.learning.records.GradientStatistics` (one replica).

        The settings that decide how statistics become drift and diffusion are the
        user's to state: the step size, the batch size, the training rows and how the
        minibatches were drawn (``"reshuffled"`` for a shuffling ``DataLoader``,
        ``"iid"`` for a ``RandomSampler(replacement=True)``, ...).
        """
        stats = self.epoch_statistics()
        trace = None
        if self._trace["epochs"]:
            trace = WeightTrace(epochs=np.array(self._trace["epochs"], np.int64),
                                weights=np.array(self._trace["weights"])[None],
                                gradients=np.array(self._trace["gradients"])[None],
                                updates=np.array(self._trace["updates"])[None],
                                second_gradients=(np.array(self._trace["second_gradients"])[None]
                                                  if self._trace["second_gradients"] else None))
            steps = trace.gradients.shape[2]
        else:
            steps = self._steps_per_epoch
        return GradientStatistics(
            layer_names=self.names, layer_sizes=[int(p.numel()) for p in self._params], learning_rate=learning_rate,
            batch_size=batch_size, n_train=n_train, steps_per_epoch=steps, sampling=sampling,
            optimizer=optimizer or type(self._optimizer).__name__.lower(), stats=stats, trace=trace, seed=seed,
            producer="torch")

    def save(self, path: str | Path, *, learning_rate: float, batch_size: int, n_train: int, sampling: str,
             optimizer: str | None = None, seed: int | None = None,
             settings: Mapping[str, Any] | None = None) -> Path:
        """Write :meth:`statistics` as a stand-alone statistics file, atomically."""
        stats = self.statistics(learning_rate=learning_rate, batch_size=batch_size, n_train=n_train,
                                sampling=sampling, optimizer=optimizer, seed=seed)
        return stats.save(path, settings=settings)

    def close(self) -> None:
        """Remove the optimiser hooks."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
