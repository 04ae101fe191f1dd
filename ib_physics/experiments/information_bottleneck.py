"""The information-bottleneck study: several training fractions, many networks each.

For every training fraction one :class:`~ib_physics.learning.Trainer` trains all
networks side by side on a seeded split (the rest of the 4096 patterns is the
test set). Network r starts from the same weights in every fraction, so the
fractions differ only in their data. Every epoch's gradient and update statistics
are kept; at log-spaced snapshot epochs every layer's representation of all 4096
patterns gives I(X;T) and I(T;Y) (binning or KDE) and the train/test accuracy.

The output file holds one group per run (``runs/<fraction>``) with its settings as
attributes. It is rewritten atomically at checkpoints (every
``checkpoint_interval`` seconds, after Ctrl-C and at the end) together with the
trainers' state, so an interrupted study resumes where it stopped and loses
nothing that was finished; ``attrs["complete"]`` tells whether it ran to the end.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import io
from .._validation import check_choice, check_finite_positive, check_int_range, check_memory
from ..learning.data import ib_dataset, split_indices
from ..learning.information import binned_information, kde_information
from ..learning.network import BATCHES, OPTIMIZERS, Architecture, EpochStatistics, Trainer
from ..learning.records import GradientStatistics, read_statistics, write_statistics
from ..learning.transition import transition_epochs
from ..parallel.threads import ThreadRunner, resolve_threads

__all__ = ["StudyConfig", "StudyRun", "run_study", "read_study", "snapshot_epochs", "ESTIMATORS"]

ESTIMATORS = ("binning", "kde")
#: Where the binning estimator's edges lie (see :class:`StudyConfig`).
BIN_RANGES = ("auto", "fixed", "layer")
_STAT_NAMES = ("grad_mean", "grad_std", "update_mean", "update_std", "weight_norm")


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Settings of ``ib-physics bottleneck`` (defaults: about 4 minutes on 2 cores).

    Parameters
    ----------
    fractions : tuple of float
        Training fractions of the 4096 patterns.
    networks : int
        Networks per fraction.
    epochs : int
    snapshots : int
        Log-spaced epochs (plus epoch 0) at which the information plane is measured.
    widths, activation : network (see :class:`~ib_physics.learning.Architecture`).
    optimizer, learning_rate, batch_size, batches : training (see :class:`~ib_physics.learning.Trainer`).
    estimator : {"binning", "kde"}
    bins : int
        Equal-width bin edges for the binning estimator (the original study: 30 on [-1, 1]).
    bin_range : {"auto", "fixed", "layer"}
        Where the edges lie: ``"fixed"`` on [-1, 1] (tanh outputs, the original study), ``"layer"``
        between each layer's least and largest activity at each snapshot, per network (what Saxe
        et al. 2018 do for unbounded ReLU units; with fixed edges every ReLU output above 1 falls
        into the top bin, and growing weights then look like compression). ``"auto"``: fixed for
        tanh outputs, per layer otherwise.
    binning_space : {"output", "preactivation"}
        Bin the layers' outputs (the original) or their pre-activations (Saxe et al.'s control).
    kde_noise_variance : float
    seed : int
        Seeds the splits, initial weights and minibatch orders.
    """

    fractions: tuple[float, ...] = (0.05, 0.45, 0.85)
    networks: int = 20
    epochs: int = 5000
    snapshots: int = 50
    widths: tuple[int, ...] = (12, 10, 7, 5, 4, 3, 2)
    activation: str = "tanh"
    optimizer: str = "adam"
    learning_rate: float = 4e-4
    batch_size: int = 512
    batches: str = "reshuffled"
    estimator: str = "binning"
    bins: int = 30
    bin_range: str = "auto"
    binning_space: str = "output"
    kde_noise_variance: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            fractions = tuple(float(f) for f in self.fractions)
        except (TypeError, ValueError):
            raise TypeError(f"`fractions` must be numbers, got {self.fractions!r}.") from None
        if not fractions or any(not 0.0 < f <= 1.0 for f in fractions) or len(set(fractions)) != len(fractions):
            raise ValueError(f"`fractions` must be distinct values in (0, 1], got {self.fractions!r}.")
        object.__setattr__(self, "fractions", fractions)
        object.__setattr__(self, "widths", tuple(Architecture(widths=self.widths).widths))
        Architecture(widths=self.widths, activation=self.activation)
        if self.widths[0] != 12 or self.widths[-1] != 2:
            raise ValueError(f"`widths` must start with 12 inputs and end with 2 classes, got {self.widths}.")
        check_int_range(self.networks, "networks", 1, 100_000)
        check_int_range(self.epochs, "epochs", 1, 10_000_000)
        check_int_range(self.snapshots, "snapshots", 2, 100_000)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}.")
        check_finite_positive(self.learning_rate, "learning_rate")
        check_int_range(self.batch_size, "batch_size", 1)
        if self.batches not in BATCHES:
            raise ValueError(f"`batches` must be one of {BATCHES}, got {self.batches!r}.")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"`estimator` must be one of {ESTIMATORS}, got {self.estimator!r}.")
        check_int_range(self.bins, "bins", 2, 10_000)
        check_choice(self.bin_range, "bin_range", BIN_RANGES)
        # Per-network statistics of every epoch (five per layer and the loss), before any training.
        check_memory(8.0 * len(fractions) * self.networks * self.epochs * (5 * (len(self.widths) - 1) + 1),
                     f"{len(fractions)} x {self.networks:,} networks x {self.epochs:,} epochs of statistics",
                     "epochs", hint=" or `networks`")
        if self.binning_space not in ("output", "preactivation"):
            raise ValueError(f"`binning_space` must be 'output' or 'preactivation', got {self.binning_space!r}.")
        check_finite_positive(self.kde_noise_variance, "kde_noise_variance")
        check_int_range(self.seed, "seed", 0)

    @property
    def arch(self) -> Architecture:
        return Architecture(widths=self.widths, activation=self.activation)

    @property
    def resolved_bin_range(self) -> str:
        """``bin_range`` with "auto" decided: fixed edges only for tanh outputs."""
        if self.bin_range != "auto":
            return self.bin_range
        return "fixed" if (self.activation == "tanh" and self.binning_space == "output") else "layer"

    def estimator_label(self) -> str:
        """What a figure says about how its information was measured."""
        if self.estimator == "binning":
            space = "outputs" if self.binning_space == "output" else "pre-activations"
            where = ("on [-1, 1]" if self.resolved_bin_range == "fixed"
                     else "between each layer's min and max")
            return f"binning of layer {space}, {self.bins} equal edges {where}"
        return f"KDE upper bound (Kolchinsky–Tracey), noise variance {self.kde_noise_variance:g}"


def snapshot_epochs(epochs: int, count: int) -> np.ndarray:
    """Epoch 0, about ``count - 1`` log-spaced epochs and the last epoch (distinct, sorted)."""
    spaced = np.round(np.geomspace(1, epochs, max(count - 1, 1))).astype(int)
    return np.unique(np.concatenate([[0], spaced, [epochs]]))


@dataclass(frozen=True)
class StudyRun:
    """One training fraction's results (arrays: networks first).

    Attributes
    ----------
    fraction : float
    train_indices : numpy.ndarray
    stats : EpochStatistics
        (R, E, L) per epoch.
    snapshot_epochs : numpy.ndarray, shape (S,)
    i_xt, i_ty : numpy.ndarray, shape (R, S, L)
        Information in bits at the snapshots.
    train_accuracy, test_accuracy, train_loss, test_loss : numpy.ndarray, shape (R, S)
    sample_grad_mean, sample_grad_std : numpy.ndarray, shape (R, S, L)
        Per-sample gradient statistics over the training rows at the snapshots
        (:meth:`~ib_physics.learning.Trainer.per_sample_statistics`).
    transitions : numpy.ndarray, shape (R, L)
        Drift-to-diffusion transition epoch per network and layer (NaN: none).
    """

    fraction: float
    train_indices: np.ndarray
    stats: EpochStatistics
    snapshot_epochs: np.ndarray
    i_xt: np.ndarray
    i_ty: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    transitions: np.ndarray
    sample_grad_mean: np.ndarray
    sample_grad_std: np.ndarray

    @property
    def noise_scale(self) -> np.ndarray:
        """Gradient noise scale tr Σ / |G|² per network, snapshot and layer (in rows)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.sample_grad_std / self.sample_grad_mean) ** 2


class _RunState:
    """A fraction's trainer and what it has produced so far."""

    def __init__(self, config: StudyConfig, fraction: float, threads: int | None, first: int = 0,
                 count: int | None = None) -> None:
        data = ib_dataset()
        self.fraction = fraction
        self.train, self.test = split_indices(fraction, config.seed)
        self.trainer = Trainer(arch=config.arch, x=data.x[self.train], y=data.y[self.train],
                               replicas=config.networks if count is None else count, first_replica=first,
                               seed=config.seed, optimizer=config.optimizer,
                               learning_rate=config.learning_rate, batch_size=config.batch_size,
                               batches=config.batches, threads=threads)
        self.stats: list[EpochStatistics] = []
        self.snap_epochs: list[int] = []
        self.snaps: dict[str, list[np.ndarray]] = {k: [] for k in ("i_xt", "i_ty", "train_accuracy",
                                                                  "test_accuracy", "train_loss", "test_loss",
                                                                  "sample_grad_mean", "sample_grad_std")}


def _measure(state: _RunState, config: StudyConfig, x: np.ndarray, y: np.ndarray) -> None:
    outs, pres = state.trainer.outputs(x)
    slices = state.trainer.layer_slices()
    R, L = state.trainer.replicas, config.arch.n_layers
    i_xt, i_ty = np.zeros((R, L)), np.zeros((R, L))
    fixed = np.linspace(-1.0, 1.0, config.bins)
    space = outs if config.binning_space == "output" else pres
    per_layer = config.resolved_bin_range == "layer"

    def measure(a: int, b: int) -> None:
        for r in range(a, b):
            for l, sl in enumerate(slices):
                if config.estimator == "binning":
                    t = space[r][:, sl]
                    edges = fixed
                    if per_layer:  # Saxe et al.: equal bins between the layer's least and largest activity now
                        lo, hi = float(t.min()), float(t.max())
                        edges = np.linspace(lo, hi, config.bins) if hi > lo else np.array([lo])
                    est = binned_information(t, y, edges=edges)
                else:
                    est = kde_information(outs[r][:, sl], y, noise_variance=config.kde_noise_variance)
                i_xt[r, l], i_ty[r, l] = est.i_xt, est.i_ty

    # Networks on threads: the estimators' kernels release the GIL, and each network's numbers are its own.
    with ThreadRunner(resolve_threads(state.trainer.threads)) as runner:
        runner.run(measure, 0, R)
    probs = outs[:, :, slices[-1]]
    pred = probs.argmax(axis=2)
    nll = -np.log(np.maximum(np.take_along_axis(probs, y[None, :, None], axis=2)[..., 0], 1e-300))
    s = state.snaps
    sample_mean, sample_std = state.trainer.per_sample_statistics()
    s["sample_grad_mean"].append(sample_mean)
    s["sample_grad_std"].append(sample_std)
    s["i_xt"].append(i_xt)
    s["i_ty"].append(i_ty)
    for part, idx in (("train", state.train), ("test", state.test)):
        if idx.size:
            s[f"{part}_accuracy"].append((pred[:, idx] == y[idx]).mean(axis=1))
            # One contiguous row per network: its sum does not depend on how many networks share the array.
            s[f"{part}_loss"].append(np.array([np.ascontiguousarray(row).mean() for row in nll[:, idx]]))
        else:
            s[f"{part}_accuracy"].append(np.full(R, np.nan))
            s[f"{part}_loss"].append(np.full(R, np.nan))
    state.snap_epochs.append(state.trainer.epoch)


def _run_of(state: _RunState) -> StudyRun:
    stats = EpochStatistics.concatenate(state.stats) if state.stats else None
    snaps = {k: np.stack(v, axis=1) for k, v in state.snaps.items()}
    if stats is None:
        R, L = state.trainer.replicas, state.trainer.arch.n_layers
        stats = EpochStatistics(epochs=np.zeros(0, int), loss=np.zeros((R, 0)),
                                **{k: np.zeros((R, 0, L)) for k in _STAT_NAMES})
        trans = np.full((R, L), np.nan)
    else:
        trans = transition_epochs(stats.epochs, stats.snr)
    return StudyRun(fraction=state.fraction, train_indices=state.train, stats=stats,
                    snapshot_epochs=np.array(state.snap_epochs), transitions=trans, **snaps)


def _group_name(fraction: float) -> str:
    return f"fraction_{fraction:.4f}"


def _write(path: Path, config: StudyConfig, states: list[_RunState], complete: bool, seconds: float) -> None:
    with io.atomic_h5(path) as f:
        f.attrs["experiment"] = "bottleneck"
        f.attrs["complete"] = complete
        io.write_json_attr(f, "config", dataclasses.asdict(config))
        io.write_json_attr(f, "timings", {"seconds": seconds})
        runs = f.create_group("runs")
        for st in states:
            run = _run_of(st)
            g = runs.create_group(_group_name(st.fraction))
            settings = dataclasses.asdict(config) | {"fraction": st.fraction}
            settings.pop("fractions")
            for key, value in settings.items():
                g.attrs[key] = np.array(value) if isinstance(value, tuple) else value
            g.attrs["estimator_label"] = config.estimator_label()
            g.attrs["layer_names"] = np.array(config.arch.layer_names, dtype="S")
            write_statistics(g.create_group("statistics"), GradientStatistics.from_trainer(st.trainer, run.stats))
            io.write_arrays(g, {
                "train_indices": run.train_indices,
                "snapshot_epochs": run.snapshot_epochs, "i_xt": run.i_xt, "i_ty": run.i_ty,
                "train_accuracy": run.train_accuracy, "test_accuracy": run.test_accuracy,
                "train_loss": run.train_loss, "test_loss": run.test_loss, "transitions": run.transitions,
                "sample_grad_mean": run.sample_grad_mean, "sample_grad_std": run.sample_grad_std,
            })
            state = st.trainer.state()
            s = g.create_group("trainer_state")
            s.attrs["epoch"] = state.pop("epoch")
            io.write_arrays(s, state)


def _read_run_statistics(g: Any) -> EpochStatistics:
    """A run's per-epoch statistics: the shared layout (``statistics`` group) or, in files of
    earlier versions, the same arrays in the run group itself."""
    if "statistics" in g:
        return read_statistics(g["statistics"]).stats
    return EpochStatistics(epochs=g["epochs"][()], loss=g["loss"][()], **{k: g[k][()] for k in _STAT_NAMES})


def _resume(path: Path, config: StudyConfig, states: list[_RunState]) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        io.check_schema(f, path)
        if f.attrs.get("experiment") not in ("bottleneck", b"bottleneck"):
            raise ValueError(f"{path} is not a bottleneck study file; choose another output directory.")
        stored = io.read_json_attr(f, "config")
        if StudyConfig(**stored) != config:
            raise ValueError(f"{path} holds a study with other settings; remove it or choose another --out.")
        for st in states:
            g = f["runs"][_group_name(st.fraction)]
            s = g["trainer_state"]
            st.trainer.restore({k: s[k][()] for k in ("params", "adam_m", "adam_v", "steps")}
                               | {"epoch": int(s.attrs["epoch"])})
            stats = _read_run_statistics(g)
            if stats.epochs.size:
                st.stats = [stats]
            st.snap_epochs = [int(e) for e in g["snapshot_epochs"][()]]
            for k in st.snaps:
                arr = g[k][()]
                st.snaps[k] = [arr[:, j] for j in range(arr.shape[1])]


def run_study(config: StudyConfig | None = None, *, out: str | Path = "out", threads: int | None = None,
              progress: bool | Callable[[int, int], None] = True, checkpoint_interval: float = 60.0,
              log: Callable[[str], None] | None = None, executor: Any = None) -> tuple[Path, list[StudyRun]]:
    """Run (or resume) the study; write ``bottleneck.h5`` in ``out``.

    With an ``executor`` (a ``concurrent.futures.Executor``, a ``dask.distributed.Client`` or a
    number of local worker processes) every fraction's networks run as tasks of a few networks
    each, the whole schedule of epochs and snapshots per task; finished tasks are kept in
    ``.bottleneck-tasks.h5`` beside the output, so an interrupted run resumes without redoing
    them. The numbers are bitwise those of the run in one process (each network's weights,
    batches and measurements depend only on the seed and its index).

    Returns
    -------
    path : Path
    runs : list of StudyRun, one per fraction
    """
    config = StudyConfig() if config is None else config
    if not isinstance(config, StudyConfig):
        raise TypeError(f"`config` must be a StudyConfig, got {type(config).__name__}.")
    check_finite_positive(checkpoint_interval, "checkpoint_interval")
    say = log or (lambda _: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bottleneck.h5"
    data = ib_dataset()
    if executor is not None:
        return _run_study_tasks(config, out, path, executor, progress, say)
    states = [_RunState(config, f, threads) for f in config.fractions]
    if path.exists():
        _resume(path, config, states)
        say(f"resuming {path} at epoch {states[0].trainer.epoch} of {config.epochs}")
    snaps = snapshot_epochs(config.epochs, config.snapshots)
    per_epoch = sum(st.train.size for st in states) * config.networks
    total = per_epoch * config.epochs
    done = per_epoch * states[0].trainer.epoch
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=done, desc="training", unit="sample-epoch", unit_scale=True)
    started = time.perf_counter()
    last_write = started
    try:
        for st in states:
            if not st.snap_epochs or st.snap_epochs[-1] != st.trainer.epoch:
                if st.trainer.epoch in snaps:
                    _measure(st, config, data.x, data.y.astype(np.int64))
        snap_set = set(int(e) for e in snaps)
        # Epochs per kernel call: about 5 million sample-passes, so Ctrl-C and progress respond in seconds.
        chunk_cap = int(np.clip(5_000_000 // max(per_epoch, 1), 1, 500))
        while True:
            now_epoch = min(st.trainer.epoch for st in states)
            if now_epoch >= config.epochs:
                break
            target = min(int(snaps[snaps > now_epoch][0]), now_epoch + chunk_cap)
            for st in states:
                if st.trainer.epoch < target:
                    st.stats.append(st.trainer.run(target - st.trainer.epoch))
                    if st.trainer.epoch in snap_set:
                        _measure(st, config, data.x, data.y.astype(np.int64))
            done = per_epoch * target
            if bar is not None:
                bar.update(done - bar.n)
            elif callable(progress):
                progress(done, total)
            if time.perf_counter() - last_write > checkpoint_interval:
                _write(path, config, states, False, time.perf_counter() - started)
                last_write = time.perf_counter()
    except KeyboardInterrupt:
        for st in states:  # epochs that finished while the interrupt was pending
            last = st.trainer.last_run
            if last is not None and (not st.stats or st.stats[-1] is not last):
                st.stats.append(last)
        _write(path, config, states, False, time.perf_counter() - started)
        raise
    finally:
        if bar is not None:
            bar.close()
    _write(path, config, states, True, time.perf_counter() - started)
    return path, [_run_of(st) for st in states]


def _train_state(state: _RunState, config: StudyConfig) -> _RunState:
    """Train one state through every epoch, measuring at the snapshot epochs (one task)."""
    data = ib_dataset()
    y = data.y.astype(np.int64)
    snaps = snapshot_epochs(config.epochs, config.snapshots)
    if 0 in set(int(e) for e in snaps):
        _measure(state, config, data.x, y)
    for target in (int(e) for e in snaps[snaps > 0]):
        state.stats.append(state.trainer.run(target - state.trainer.epoch))
        _measure(state, config, data.x, y)
    if state.trainer.epoch < config.epochs:
        state.stats.append(state.trainer.run(config.epochs - state.trainer.epoch))
    return state


def _study_task(config: StudyConfig, fraction: float, first: int, count: int) -> dict[str, Any]:
    """Networks [first, first + count) of one fraction through the whole study: its arrays."""
    state = _train_state(_RunState(config, fraction, 1, first, count), config)
    run = _run_of(state)
    trainer = state.trainer.state()
    return {"stats": run.stats, "snapshot_epochs": run.snapshot_epochs,
            "snaps": {k: getattr(run, k) for k in state.snaps},
            "trainer": {k: trainer[k] for k in ("params", "adam_m", "adam_v", "steps")}}


def _write_task(g: Any, task: dict[str, Any]) -> None:
    s = task["stats"]
    io.write_arrays(g, {"epochs": s.epochs, "loss": s.loss, **{k: getattr(s, k) for k in _STAT_NAMES},
                        "snapshot_epochs": task["snapshot_epochs"], **task["snaps"],
                        **{f"trainer_{k}": v for k, v in task["trainer"].items()}})


def _read_task(g: Any) -> dict[str, Any]:
    stats = EpochStatistics(epochs=g["epochs"][()], loss=g["loss"][()], **{k: g[k][()] for k in _STAT_NAMES})
    snaps = {k: g[k][()] for k in ("i_xt", "i_ty", "train_accuracy", "test_accuracy", "train_loss", "test_loss",
                                   "sample_grad_mean", "sample_grad_std")}
    return {"stats": stats, "snapshot_epochs": g["snapshot_epochs"][()], "snaps": snaps,
            "trainer": {k: g[f"trainer_{k}"][()] for k in ("params", "adam_m", "adam_v", "steps")}}


def _run_study_tasks(config: StudyConfig, out: Path, path: Path, executor: Any,
                     progress: bool | Callable[[int, int], None], say: Callable[[str], None]) -> tuple[Path, list[StudyRun]]:
    """The study as (fraction, network range) tasks on an executor, joined into one file."""
    import hashlib

    from ..parallel import TaskRunner, TaskStore

    started = time.perf_counter()
    fingerprint = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()
    store = TaskStore(out / ".bottleneck-tasks.h5", fingerprint)
    with TaskRunner(executor) as runner:
        per_fraction = max(1, -(-2 * runner.workers // len(config.fractions)))
        size = max(1, -(-config.networks // per_fraction))
        tasks = {f"{k}:{a}": (config, fraction, a, min(config.networks, a + size) - a)
                 for k, fraction in enumerate(config.fractions) for a in range(0, config.networks, size)}
        done = {name: store.read(name, _read_task) for name in store.done if name in tasks}
        if done:
            say(f"resuming: {len(done)} of {len(tasks)} tasks already finished")
        done = runner.collect(_study_task, tasks, done=done, store=store, write=_write_task, progress=progress,
                              desc="training", unit="task")
    states = []
    for k, fraction in enumerate(config.fractions):
        parts = [done[name] for name in sorted((n for n in tasks if n.startswith(f"{k}:")),
                                               key=lambda n: int(n.split(":")[1]))]
        state = _RunState(config, fraction, 1)
        state.trainer.restore({key: np.concatenate([p["trainer"][key] for p in parts])
                               for key in ("params", "adam_m", "adam_v", "steps")} | {"epoch": config.epochs})
        stats = [p["stats"] for p in parts]
        state.stats = [EpochStatistics(epochs=stats[0].epochs,
                                       **{key: np.concatenate([getattr(part, key) for part in stats])
                                          for key in ("loss", *_STAT_NAMES)})]
        state.snap_epochs = [int(e) for e in parts[0]["snapshot_epochs"]]
        for key in state.snaps:
            joined = np.concatenate([p["snaps"][key] for p in parts])
            state.snaps[key] = [joined[:, j] for j in range(joined.shape[1])]
        states.append(state)
    _write(path, config, states, True, time.perf_counter() - started)
    return path, [_run_of(st) for st in states]


def read_study(path: str | Path) -> tuple[StudyConfig, list[StudyRun], dict[str, Any]]:
    """Read a study file: its settings, one StudyRun per fraction, and file attributes."""
    import h5py

    with h5py.File(path, "r") as f:
        io.check_schema(f, path)
        if f.attrs.get("experiment") not in ("bottleneck", b"bottleneck"):
            raise ValueError(f"{path} is not a bottleneck study file.")
        config = StudyConfig(**io.read_json_attr(f, "config"))
        runs = []
        for fraction in config.fractions:
            g = f["runs"][_group_name(fraction)]
            stats = _read_run_statistics(g)
            runs.append(StudyRun(fraction=fraction, train_indices=g["train_indices"][()], stats=stats,
                                 snapshot_epochs=g["snapshot_epochs"][()], i_xt=g["i_xt"][()], i_ty=g["i_ty"][()],
                                 train_accuracy=g["train_accuracy"][()], test_accuracy=g["test_accuracy"][()],
                                 train_loss=g["train_loss"][()], test_loss=g["test_loss"][()],
                                 transitions=g["transitions"][()], sample_grad_mean=g["sample_grad_mean"][()],
                                 sample_grad_std=g["sample_grad_std"][()]))
        attrs = {"complete": bool(f.attrs["complete"]), "timings": io.read_json_attr(f, "timings", {})}
    return config, runs, attrs
