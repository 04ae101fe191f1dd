"""``ib-physics layers``: does a layer-wise Fokker–Planck equation predict an ensemble of training runs?

M networks of the information-bottleneck task start from one shared initialisation and differ
only in their minibatches; one ensemble draws reshuffled epochs, a second one i.i.d. rows
(so that the effect of reshuffling is measured, not assumed). Every layer's coordinates
(its norm ρ = ‖W‖_F, the displacement along the ensemble's mean-update direction, and chosen
single weights) are traced at log-spaced epochs. The adapter (:mod:`ib_physics.adapter`)
calibrates one 1D Dynamics per coordinate on half of the replicas ("A"), on all traced epochs
("held-out") or on epochs <= ``forward_until`` only ("forward"); both engines solve it from the
shared starting point, and the prediction is compared with the other half ("B") at every traced
epoch: Kolmogorov–Smirnov statistic with its 5 % critical value, W1 with a bootstrap interval,
mean and variance with standard errors. The floor is the ensemble's own: the same distances
between half A and half B. A ratio near 1 means the equation predicts half B as well as an
independent half of real runs does.

One file ``layers.h5``: settings, seeds, the statistics of both ensembles (with their traces),
the calibrated coefficients, predictions and metrics, and a summary table (layer x phase x
closure x sampling, phase = before / after the layer's drift-to-diffusion transition). Training
checkpoints every ``checkpoint_interval`` seconds and on Ctrl-C (``layers_checkpoint.h5``); the
same command resumes to bitwise the same numbers.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats as sps

from .. import io
from .._validation import check_finite_positive, check_int_range
from ..adapter import CLOSURES, CoordinateModel, consecutive_pieces, layer_dynamics, step_duration
from ..density import Grid, gaussian_density, solve_fokker_planck
from ..domains import Box
from ..learning.data import ib_dataset, split_indices
from ..learning.network import OPTIMIZERS, SAMPLINGS, Architecture, EpochStatistics, Trainer
from ..learning.records import GradientStatistics, read_statistics, write_statistics
from ..learning.transition import transition_epochs
from ..particles import simulate

__all__ = ["LayersConfig", "run_layers", "read_layers", "traced_epochs", "CALIBRATIONS"]

#: Calibrations: on half A at every traced epoch, or on half A up to ``forward_until``.
CALIBRATIONS = ("held-out", "forward")
_FILE = "layers.h5"
_CHECKPOINT = "layers_checkpoint.h5"
_METRICS = ("ks_density", "ks_particles", "ks_floor", "w1_density", "w1_low", "w1_high", "w1_particles",
            "w1_floor", "mean_empirical", "mean_se", "var_empirical", "var_se", "mean_density", "var_density",
            "mean_particles", "var_particles", "mean_predicted")


@dataclass(frozen=True, kw_only=True)
class LayersConfig:
    """Settings of ``ib-physics layers`` (defaults: about 3 minutes on 2 cores).

    Parameters
    ----------
    networks : int
        Replicas per ensemble M (split in halves A and B).
    epochs : int
    fraction : float
        Training fraction of the 4096 patterns.
    widths, activation : the network (see :class:`~ib_physics.learning.Architecture`).
    optimizer, learning_rate, batch_size : training.
    samplings : tuple of str
        One ensemble per minibatch sampling (default reshuffled and i.i.d.).
    traced : int
        Log-spaced traced blocks (the pieces of the schedules; their first epochs are the
        comparison epochs).
    block : int
        Consecutive epochs per traced block: the steps over which the noise's autocorrelation
        is summed (Adam's momentum makes successive updates correlated).
    noise_lags : int, optional
        Green–Kubo lags in steps (default (block − 1) steps per epoch; see
        :func:`~ib_physics.adapter.layer_dynamics`).
    weights_per_layer : int
        Single-weight coordinates per layer (evenly spaced indices).
    forward_until : int, optional
        Last calibrated epoch of the forward prediction (default epochs // 10).
    time_unit, source : the adapter's (see :func:`~ib_physics.adapter.layer_dynamics`).
    particles : int
        Particles per coordinate for the particle engine.
    cells : int
        Finite volumes per coordinate for the density engine (the spread grows by orders of
        magnitude over training, and one grid must resolve it early and hold it late; 1D
        problems are solved exactly in time, so cells are cheap).
    bootstrap : int
        Resamples of half B for the W1 interval.
    keep_trace : bool
        Keep the per-step weight trace in ``layers.h5`` (about 140 MB at the defaults), so that
        the adapter can be rerun on the file; the predictions and comparisons are kept either way.
    seed : int
        Seeds the split, the shared initial weights, the minibatches, the halves and the particles.
    """

    networks: int = 50
    epochs: int = 1000
    fraction: float = 0.85
    widths: tuple[int, ...] = (12, 10, 7, 5, 4, 3, 2)
    activation: str = "tanh"
    optimizer: str = "adam"
    learning_rate: float = 4e-4
    batch_size: int = 512
    samplings: tuple[str, ...] = ("reshuffled", "iid")
    traced: int = 16
    block: int = 3
    noise_lags: int | None = None
    weights_per_layer: int = 2
    forward_until: int | None = None
    time_unit: str = "epoch"
    source: str = "updates"
    particles: int = 4000
    cells: int = 8000
    bootstrap: int = 200
    keep_trace: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_int_range(self.networks, "networks", 6, 100_000)
        check_int_range(self.epochs, "epochs", 4, 10_000_000)
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < float(f) <= 1.0:
            raise ValueError(f"`fraction` must be in (0, 1], got {f!r}.")
        object.__setattr__(self, "fraction", float(f))
        object.__setattr__(self, "widths", tuple(Architecture(widths=self.widths, activation=self.activation).widths))
        if self.widths[0] != 12 or self.widths[-1] != 2:
            raise ValueError(f"`widths` must start with 12 inputs and end with 2 classes, got {self.widths}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}.")
        check_finite_positive(self.learning_rate, "learning_rate")
        check_int_range(self.batch_size, "batch_size", 1)
        samplings = (self.samplings,) if isinstance(self.samplings, str) else tuple(self.samplings)
        if not samplings or len(set(samplings)) != len(samplings) or any(s not in SAMPLINGS for s in samplings):
            raise ValueError(f"`samplings` must be distinct values of {tuple(SAMPLINGS)}, got {self.samplings!r}.")
        object.__setattr__(self, "samplings", samplings)
        check_int_range(self.traced, "traced", 3, 10_000)
        check_int_range(self.block, "block", 1, 100)
        if self.noise_lags is not None:
            check_int_range(self.noise_lags, "noise_lags", 0, 100_000)
        if self.epochs < 3 * self.block:
            raise ValueError(f"`epochs` must hold at least three traced blocks of {self.block} epochs, got {self.epochs}.")
        check_int_range(self.weights_per_layer, "weights_per_layer", 0, 1000)
        until = self.forward_until if self.forward_until is not None else max(2, self.epochs // 10)
        check_int_range(until, "forward_until", 2, self.epochs - 1)
        object.__setattr__(self, "forward_until", int(until))
        if self.time_unit not in ("step", "sme", "epoch"):
            raise ValueError(f"`time_unit` must be 'step', 'sme' or 'epoch', got {self.time_unit!r}.")
        if self.source not in ("updates", "gradients"):
            raise ValueError(f"`source` must be 'updates' or 'gradients', got {self.source!r}.")
        check_int_range(self.particles, "particles", 100, 10_000_000)
        check_int_range(self.cells, "cells", 50, 100_000)
        check_int_range(self.bootstrap, "bootstrap", 10, 100_000)
        if not isinstance(self.keep_trace, (bool, np.bool_)):
            raise TypeError(f"`keep_trace` must be True or False, got {self.keep_trace!r}.")
        check_int_range(self.seed, "seed", 0)

    @property
    def arch(self) -> Architecture:
        return Architecture(widths=self.widths, activation=self.activation)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LayersConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})


def traced_epochs(epochs: int, count: int, block: int = 1) -> np.ndarray:
    """Runs of ``block`` consecutive epochs starting at about ``count`` log-spaced epochs in
    [1, epochs - block + 1] (starts at least ``block`` apart), concatenated, shape (<= count * block,)."""
    check_int_range(epochs, "epochs", 1)
    check_int_range(count, "count", 2)
    check_int_range(block, "block", 1, epochs)
    last = epochs - block + 1
    starts: list[int] = []
    for s in np.round(np.geomspace(1, last, count)).astype(np.int64):
        s = max(int(s), starts[-1] + block if starts else 1)
        if s <= last:
            starts.append(s)
    return np.array([s + k for s in starts for k in range(block)], dtype=np.int64)


# --- training ------------------------------------------------------------------------------------


class _Ensemble:
    """One sampling's trainer and its statistics so far."""

    def __init__(self, config: LayersConfig, sampling: str, threads: int | None) -> None:
        data = ib_dataset()
        train, _ = split_indices(config.fraction, config.seed)
        self.sampling = sampling
        self.trainer = Trainer(arch=config.arch, x=data.x[train], y=data.y[train], replicas=config.networks,
                               seed=config.seed, optimizer=config.optimizer, learning_rate=config.learning_rate,
                               batch_size=config.batch_size, batches=sampling, shared_initialization=True,
                               trace_epochs=tuple(int(e) for e in traced_epochs(config.epochs, config.traced,
                                                                                config.block)),
                               threads=threads)
        self.stats: list[EpochStatistics] = []

    def statistics(self) -> GradientStatistics:
        stats = EpochStatistics.concatenate(self.stats)
        return GradientStatistics.from_trainer(self.trainer, stats)


def _write_checkpoint(path: Path, config: LayersConfig, ensembles: list[_Ensemble]) -> None:
    with io.atomic_h5(path) as f:
        f.attrs["experiment"] = "layers_checkpoint"
        io.write_json_attr(f, "config", config.to_dict())
        for ens in ensembles:
            g = f.create_group(ens.sampling)
            state = ens.trainer.state()
            g.attrs["epoch"] = state.pop("epoch")
            io.write_arrays(g.create_group("state"), state)
            if ens.stats:  # the trace is part of the trainer's state
                write_statistics(g.create_group("statistics"), ens.statistics(), trace=False)


def _resume(path: Path, config: LayersConfig, ensembles: list[_Ensemble]) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        io.check_schema(f, path)
        if LayersConfig.from_dict(io.read_json_attr(f, "config")) != config:
            raise ValueError(f"{path} holds a run with other settings; remove it or choose another --out.")
        for ens in ensembles:
            g = f[ens.sampling]
            state = {k: g["state"][k][()] for k in g["state"]} | {"epoch": int(g.attrs["epoch"])}
            ens.trainer.restore(state)
            ens.stats = [read_statistics(g["statistics"]).stats] if "statistics" in g else []


def _train(config: LayersConfig, out: Path, threads: int | None, progress: bool | Callable[[int, int], None],
           checkpoint_interval: float, say: Callable[[str], None]) -> list[GradientStatistics]:
    ensembles = [_Ensemble(config, s, threads) for s in config.samplings]
    checkpoint = out / _CHECKPOINT
    if checkpoint.exists():
        _resume(checkpoint, config, ensembles)
        say(f"resuming training at epoch {min(e.trainer.epoch for e in ensembles)} of {config.epochs}")
    total = config.epochs * len(ensembles)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=sum(e.trainer.epoch for e in ensembles), desc="training", unit="epoch")
    chunk = int(np.clip(2_000_000 // (config.networks * ensembles[0].trainer.x.shape[0] // 64 + 1), 5, 200))
    last = time.perf_counter()
    try:
        while any(e.trainer.epoch < config.epochs for e in ensembles):
            for ens in ensembles:
                todo = min(chunk, config.epochs - ens.trainer.epoch)
                if todo > 0:
                    ens.stats.append(ens.trainer.run(todo))
            done = sum(e.trainer.epoch for e in ensembles)
            if bar is not None:
                bar.update(done - bar.n)
            elif callable(progress):
                progress(done, total)
            if time.perf_counter() - last > checkpoint_interval:
                _write_checkpoint(checkpoint, config, ensembles)
                last = time.perf_counter()
    except KeyboardInterrupt:
        for ens in ensembles:  # epochs that finished while the interrupt was pending
            run = ens.trainer.last_run
            if run is not None and (not ens.stats or ens.stats[-1] is not run):
                ens.stats.append(run)
        _write_checkpoint(checkpoint, config, ensembles)
        raise
    finally:
        if bar is not None:
            bar.close()
    _write_checkpoint(checkpoint, config, ensembles)
    return [e.statistics() for e in ensembles]


def _train_on(executor: Any, config: LayersConfig, out: Path, progress: bool,
              say: Callable[[str], None]) -> list[GradientStatistics]:
    """Both ensembles' training as replica ranges on an executor (same numbers as :func:`_train`)."""
    from ..parallel import train_replicas

    ensembles = [_Ensemble(config, s, 1) for s in config.samplings]
    for ens in ensembles:
        t = ens.trainer
        say(f"training the {ens.sampling} ensemble on the executor")
        run = train_replicas(t.arch, t.x, t.y, replicas=config.networks, epochs=config.epochs, executor=executor,
                             checkpoint=out / f".layers-{ens.sampling}-tasks.h5", progress=progress,
                             seed=config.seed, optimizer=config.optimizer, learning_rate=config.learning_rate,
                             batch_size=config.batch_size, batches=ens.sampling, shared_initialization=True,
                             trace_epochs=t.trace_epochs)
        state = {"params": run.params, "adam_m": run.adam_m, "adam_v": run.adam_v, "steps": run.steps,
                 "epoch": config.epochs}
        if run.trace is not None:
            state.update(trace_epochs=run.trace.epochs, trace_weights=run.trace.weights,
                         trace_gradients=run.trace.gradients, trace_updates=run.trace.updates)
        t.restore(state)
        ens.stats = [run.stats]
    _write_checkpoint(out / _CHECKPOINT, config, ensembles)
    return [e.statistics() for e in ensembles]


# --- prediction and comparison -------------------------------------------------------------------


def _coordinate_spec(config: LayersConfig, stats: GradientStatistics) -> dict[str, Any]:
    weights = {}
    for name, size in zip(stats.layer_names, stats.layer_sizes):
        k = min(config.weights_per_layer, size)
        if k:
            weights[name] = [int(i) for i in np.unique(np.linspace(0, size - 1, k + 2)[1:-1].round().astype(int))]
    spec: dict[str, Any] = {"norm": None, "direction": None}
    if weights:
        spec["weights"] = weights
    return spec


def _halves(config: LayersConfig) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(7,))).permutation(config.networks)
    half = config.networks // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _w1_to_cdf(samples: np.ndarray, edges: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """W1 = ∫ |F_n − F| dx of each row of ``samples`` (K, n) against a CDF given at ``edges``."""
    s = np.sort(np.atleast_2d(samples), axis=-1)
    K, n = s.shape
    # One searchsorted for all rows: shift row r by r * span so that rows do not interleave.
    lo = min(s.min(), edges[0])
    span = max(s.max(), edges[-1]) - lo + 1.0
    shift = (np.arange(K) * span)[:, None]
    flat = ((s - lo) + shift).ravel()
    fn = (np.searchsorted(flat, ((edges - lo) + shift).ravel(), side="right").reshape(K, -1)
          - (np.arange(K) * n)[:, None]) / n
    gap = np.abs(fn - cdf)
    return np.sum(0.5 * (gap[:, 1:] + gap[:, :-1]) * np.diff(edges), axis=1)


def _ks_to_cdf(sample: np.ndarray, edges: np.ndarray, cdf: np.ndarray) -> float:
    """Kolmogorov–Smirnov statistic of a sample against a CDF linear between ``edges``."""
    s = np.sort(sample)
    n = s.size
    f = np.interp(s, edges, cdf)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def _variance_se(x: np.ndarray) -> float:
    n = x.size
    d = x - x.mean()
    m2, m4 = np.mean(d**2), np.mean(d**4)
    return float(np.sqrt(max(m4 - (n - 3) / (n - 1) * m2**2, 0.0) / n))


def _integrated_mean(model: CoordinateModel, t_eval: np.ndarray, x0: float, piece: float) -> np.ndarray:
    """x0 + ∫ ā dt, the measured mean drift interpolated linearly between the pieces' centres
    (held beyond the first and last): the mean-field mean."""
    t = np.linspace(t_eval[0], t_eval[-1], max(2001, 20 * t_eval.size))
    drift = np.interp(t, model.starts + piece / 2, model.drift)
    path = x0 + np.concatenate([[0.0], np.cumsum(0.5 * (drift[1:] + drift[:-1]) * np.diff(t))])
    return np.interp(t_eval, t, path)


def _solve(model: CoordinateModel, t_eval: np.ndarray, x0: float, spread0: float, cells: int,
           particles: int, seed: int, with_particles: bool, dt: float) -> dict[str, Any]:
    """Density (and particles) of one coordinate model at ``t_eval`` from the ensemble's start
    (``x0`` is 0 in the centred frame)."""
    domain = Box(model.lower, model.upper)
    grid = Grid(domain, cells)
    if spread0 > (grid.edges[0][1] - grid.edges[0][0]) ** 2:
        p0 = gaussian_density(grid, x0, np.sqrt(spread0))
    else:  # the shared initialisation: every replica at one point
        p0 = np.zeros(cells)
        i = int(np.clip(np.searchsorted(grid.edges[0], x0, side="right") - 1, 0, cells - 1))
        p0[i] = 1.0 / (grid.edges[0][i + 1] - grid.edges[0][i])
    t0, t1 = float(model.t0), float(t_eval[-1])
    dens = solve_fokker_planck(model.dynamics, grid, p0, (t0, t1), t_eval=t_eval)
    out: dict[str, Any] = {"grid": grid, "p": dens.p}
    if with_particles:
        res = simulate(model.dynamics, x0, (t0, t1), dt=dt, n_particles=particles, seed=seed, domain=domain,
                       t_eval=t_eval, store_positions=True, brownian_bridge=False)
        out["positions"] = res.positions[:, :, 0]
    return out


def _particle_step(models: list[CoordinateModel], unit_epoch: float) -> float:
    """A step that resolves every piece's relaxation (k dt <= 0.2) and divides one epoch."""
    k = max(m.dynamics.stiffness_bound(1) for m in models)
    q = max(1, int(np.ceil(k * unit_epoch / 0.2)))
    return unit_epoch / q


def _predict(config: LayersConfig, stats: GradientStatistics, closure: str, calibration: str,
             halves: tuple[np.ndarray, np.ndarray], seed_index: int, say: Callable[[str], None]) -> dict[str, Any]:
    a, b = halves
    until = config.forward_until if calibration == "forward" else None
    trace = stats.trace
    unit_epoch = stats.steps_per_epoch * step_duration(stats, config.time_unit)
    lags = (config.block - 1) * stats.steps_per_epoch if config.noise_lags is None else config.noise_lags
    lay = layer_dynamics(stats, coordinates=_coordinate_spec(config, stats), time_unit=config.time_unit,
                         source=config.source, closure=closure, until=until, replicas=a,
                         horizon=float((trace.epochs[-1] - 1) * unit_epoch), frame="centred", noise_lags=lags,
                         piece_epochs=config.block)
    # Compare at the first epoch of every traced block.
    first = np.array([piece[0] for piece in consecutive_pieces(trace.epochs, config.block)])
    epochs = trace.epochs[first]
    weights_at = trace.weights[:, first]
    t_eval = (epochs - 1) * unit_epoch
    models = list(lay.coordinates)
    dt = _particle_step(models, unit_epoch)
    C, T = len(models), epochs.size
    metrics = {k: np.full((C, T), np.nan) for k in _METRICS}
    empirical = np.zeros((C, T, stats.replicas))
    densities, grids, samples = [], [], []
    figure_epochs = _figure_epochs(epochs)
    with_particles = calibration == "held-out"
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(8, seed_index)))
    for c, model in enumerate(models):
        sl = stats.layer_slice(model.layer)
        values = model.values(weights_at, sl)  # (R, T)
        empirical[c] = values.T
        start = float(values[a, 0].mean())
        mean_predicted = _integrated_mean(model, t_eval, start, config.block * unit_epoch)
        # Spread and shape: each half centred on its own mean (the mean is compared separately).
        spread0 = float(values[a, 0].var())
        sol = _solve(model, t_eval, 0.0, spread0, config.cells, config.particles,
                     config.seed * 1000 + seed_index * 97 + c, with_particles, dt)
        grid = sol["grid"]
        edges, centres, h = grid.edges[0], grid.centres[0], np.diff(grid.edges[0])
        for j in range(T):
            p = np.clip(sol["p"][j], 0.0, None)
            mass = p * h
            total = mass.sum()
            cdf = np.concatenate([[0.0], np.cumsum(mass)]) / total
            # Distances use the CDF at about 2000 of the edges (exact there, linear between): the
            # bootstrap then costs little, and the error is far below the sampling noise of a half.
            stride = max(1, edges.size // 2000)
            coarse, cdf_coarse = edges[::stride], cdf[::stride]
            if coarse[-1] != edges[-1]:
                coarse, cdf_coarse = np.append(coarse, edges[-1]), np.append(cdf_coarse, cdf[-1])
            mean_d = float(np.sum(mass * centres) / total)
            var_d = float(np.sum(mass * (centres - mean_d) ** 2) / total + np.sum(mass * h**2) / (12 * total))
            xa, xb = values[a, j] - values[a, j].mean(), values[b, j] - values[b, j].mean()
            boot = xb[rng.integers(0, xb.size, (config.bootstrap, xb.size))]
            w1_boot = _w1_to_cdf(boot, coarse, cdf_coarse)
            row = {"ks_density": _ks_to_cdf(xb, edges, cdf),
                   "w1_density": float(_w1_to_cdf(xb, coarse, cdf_coarse)[0]),
                   "w1_low": float(np.quantile(w1_boot, 0.05)), "w1_high": float(np.quantile(w1_boot, 0.95)),
                   "ks_floor": float(sps.ks_2samp(xa, xb).statistic) if np.ptp(np.r_[xa, xb]) > 0 else 0.0,
                   "w1_floor": float(sps.wasserstein_distance(xa, xb)), "mean_empirical": float(values[b, j].mean()),
                   "mean_predicted": float(mean_predicted[j]),
                   "mean_se": float(xb.std(ddof=1) / np.sqrt(xb.size)), "var_empirical": float(xb.var(ddof=1)),
                   "var_se": _variance_se(xb), "mean_density": mean_d, "var_density": var_d}
            if with_particles:
                xp = sol["positions"][j]
                row.update(ks_particles=float(sps.ks_2samp(xp, xb).statistic) if np.ptp(np.r_[xp, xb]) > 0 else 0.0,
                           w1_particles=float(sps.wasserstein_distance(xp, xb)), mean_particles=float(xp.mean()),
                           var_particles=float(xp.var(ddof=1)))
            for k, v in row.items():
                metrics[k][c, j] = v
        # For the figures: the density on 201 points spanning ± 6 predicted standard deviations.
        x_fig, p_fig = [], []
        for j in figure_epochs:
            sd = np.sqrt(max(metrics["var_density"][c, j], 1e-300))
            x = np.linspace(-6 * sd, 6 * sd, 201)
            x_fig.append(x)
            p_fig.append(np.interp(x, centres, np.clip(sol["p"][j], 0.0, None), left=0.0, right=0.0))
        densities.append(np.array(p_fig))
        grids.append(np.array(x_fig))
        if with_particles:
            samples.append(sol["positions"][figure_epochs][:, :2000])
    say(f"  {stats.sampling}, {closure}, {calibration}: {C} coordinates solved")
    return {"lay": lay, "models": models, "metrics": metrics, "empirical": empirical, "epochs": epochs,
            "t_eval": t_eval, "figure_epochs": epochs[figure_epochs], "densities": np.array(densities),
            "density_x": np.array(grids), "particles": np.array(samples) if samples else None, "dt": dt}


def _figure_epochs(epochs: np.ndarray) -> np.ndarray:
    """Indices of four traced epochs from the drift phase to the end, log-spaced."""
    targets = np.geomspace(max(epochs[1], 2), epochs[-1], 4)
    return np.unique([int(np.argmin(np.abs(np.log(epochs) - np.log(t)))) for t in targets])


def _phase_table(config: LayersConfig, stats: GradientStatistics, prediction: dict[str, Any],
                 transitions: np.ndarray, calibration: str) -> list[dict[str, Any]]:
    """Rows (layer, phase) of median distance / floor over the layer's coordinates and epochs."""
    m = prediction["metrics"]
    epochs = prediction["epochs"]
    rows = []
    for l, layer in enumerate(stats.layer_names):
        idx = [c for c, mod in enumerate(prediction["models"]) if mod.layer == layer]
        tau = transitions[l]
        valid = epochs > epochs[0]
        if calibration == "forward":
            valid &= epochs > config.forward_until
        for phase, mask in (("drift", valid & ~(epochs >= tau)), ("diffusion", valid & (epochs >= tau))):
            if not np.any(mask):
                continue
            ratio = m["w1_density"][np.ix_(idx, mask)] / np.maximum(m["w1_floor"][np.ix_(idx, mask)], 1e-300)
            ks_ratio = m["ks_density"][np.ix_(idx, mask)] / np.maximum(m["ks_floor"][np.ix_(idx, mask)], 1e-300)
            var_ratio = m["var_density"][np.ix_(idx, mask)] / np.maximum(m["var_empirical"][np.ix_(idx, mask)], 1e-300)
            mean_z = np.abs(m["mean_predicted"] - m["mean_empirical"])[np.ix_(idx, mask)] / np.maximum(
                m["mean_se"][np.ix_(idx, mask)], 1e-300)
            n_half_b = int(np.size(prediction["empirical"], 2) - np.size(prediction["empirical"], 2) // 2)
            pieces = np.isin(prediction["lay"].epochs, epochs[mask])
            kurtosis = np.array([mod.kurtosis[pieces] for mod in prediction["models"]])[idx]
            rows.append({"sampling": stats.sampling, "closure": prediction["lay"].settings["closure"],
                         "calibration": calibration, "layer": layer, "phase": phase,
                         "epochs": [int(epochs[mask][0]), int(epochs[mask][-1])],
                         "w1_over_floor": float(np.median(ratio)), "ks_over_floor": float(np.median(ks_ratio)),
                         "variance_ratio": float(np.median(var_ratio)), "mean_z": float(np.median(mean_z)),
                         "ks_density": float(np.median(m["ks_density"][np.ix_(idx, mask)])),
                         "ks_critical": float(1.358 / np.sqrt(n_half_b)),  # 5 %, asymptotic
                         "excess_kurtosis": float(np.median(kurtosis)) if kurtosis.size else float("nan"),
                         "verdict": _verdict(float(np.median(ratio)), float(np.median(var_ratio)))})
    return rows


def _verdict(w1_over_floor: float, variance_ratio: float) -> str:
    """"holds" when half B is predicted within twice the split-half floor and its variance within
    a factor of 2; "breaks" otherwise."""
    return "holds" if w1_over_floor <= 2.0 and 0.5 <= variance_ratio <= 2.0 else "breaks"


def run_layers(config: LayersConfig | None = None, *, out: str | Path = "out", threads: int | None = None,
               progress: bool | Callable[[int, int], None] = True, checkpoint_interval: float = 60.0,
               log: Callable[[str], None] | None = None, executor: Any = None) -> Path:
    """Run (or resume) the experiment; write ``layers.h5`` in ``out`` and return its path.

    With an ``executor`` (a ``concurrent.futures.Executor``, a ``dask.distributed.Client`` or a
    number of local worker processes) each ensemble's networks train there in replica ranges
    (:func:`~ib_physics.parallel.train_replicas`; finished ranges are kept beside the output and
    a rerun resumes), bitwise as in one process.
    """
    config = LayersConfig() if config is None else config
    if not isinstance(config, LayersConfig):
        raise TypeError(f"`config` must be a LayersConfig, got {type(config).__name__}.")
    check_finite_positive(checkpoint_interval, "checkpoint_interval")
    say = log or (lambda _: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if executor is None:
        all_stats = _train(config, out, threads, progress, checkpoint_interval, say)
    else:
        all_stats = _train_on(executor, config, out, progress is True, say)
    trained = time.perf_counter() - started
    halves = _halves(config)
    results, table = {}, []
    for s_index, stats in enumerate(all_stats):
        trans = transition_epochs(stats.stats.epochs, stats.stats.snr)
        with np.errstate(all="ignore"):
            median_trans = np.array([np.nanmedian(col) if np.any(np.isfinite(col)) else np.inf for col in trans.T])
        for c_index, closure in enumerate(CLOSURES):
            for k_index, calibration in enumerate(CALIBRATIONS):
                key = f"{stats.sampling}/{closure}/{calibration}"
                pred = _predict(config, stats, closure, calibration, halves,
                                (s_index * len(CLOSURES) + c_index) * len(CALIBRATIONS) + k_index, say)
                pred["transitions"] = trans
                pred["median_transitions"] = median_trans
                results[key] = pred
                table += _phase_table(config, stats, pred, median_trans, calibration)
    seconds = {"training": trained, "total": time.perf_counter() - started}
    path = out / _FILE
    _write(path, config, all_stats, results, table, halves, seconds)
    (out / _CHECKPOINT).unlink(missing_ok=True)
    return path


def _write(path: Path, config: LayersConfig, all_stats: list[GradientStatistics], results: dict[str, Any],
           table: list[dict[str, Any]], halves: tuple[np.ndarray, np.ndarray], seconds: dict[str, float]) -> None:
    with io.atomic_h5(path) as f:
        f.attrs["experiment"] = "layers"
        io.write_json_attr(f, "config", config.to_dict())
        io.write_json_attr(f, "summary", table)
        io.write_json_attr(f, "timings", seconds)
        f.attrs["seed"] = config.seed
        io.write_arrays(f, {"half_a": halves[0], "half_b": halves[1]})
        for stats in all_stats:
            write_statistics(f.create_group(f"statistics/{stats.sampling}"), stats, trace=config.keep_trace)
        for key, pred in results.items():
            g = f.create_group(f"predictions/{key}")
            lay = pred["lay"]
            io.write_json_attr(g, "settings", lay.settings)
            io.write_json_attr(g, "notes", list(lay.notes))
            g.attrs["coordinates"] = np.array([m.name for m in pred["models"]], dtype="S")
            g.attrs["layers"] = np.array([m.layer for m in pred["models"]], dtype="S")
            g.attrs["kinds"] = np.array([m.kind for m in pred["models"]], dtype="S")
            g.attrs["particle_dt"] = pred["dt"]
            models = pred["models"]
            coeff = {name: np.array([getattr(m, name) for m in models])
                     for name in ("drift", "stiffness", "measured_stiffness", "diffusion", "centre", "spread",
                                  "noise_growth", "kurtosis", "peclet", "measured_diffusion")}
            io.write_arrays(g, {"epochs": pred["epochs"], "t_eval": pred["t_eval"],
                                "calibrated_epochs": lay.epochs, "figure_epochs": pred["figure_epochs"],
                                "empirical": pred["empirical"], "densities": pred["densities"],
                                "density_x": pred["density_x"], "particles": pred["particles"],
                                "transitions": pred["transitions"], "median_transitions": pred["median_transitions"],
                                "snr": lay.snr, "direction_peclet": lay.direction_peclet,
                                "isotropic_peclet": lay.isotropic_peclet, "cross_layer": lay.cross_layer,
                                "cross_layer_floor": lay.cross_layer_floor, **coeff,
                                **{f"metric_{k}": v for k, v in pred["metrics"].items()}})


def read_layers(path: str | Path) -> dict[str, Any]:
    """Everything ``layers.h5`` holds, as plain arrays and dictionaries."""
    import h5py

    with h5py.File(path, "r") as f:
        io.check_schema(f, path)
        if f.attrs.get("experiment") not in ("layers", b"layers"):
            raise ValueError(f"{path} is not a layers file.")
        data: dict[str, Any] = {"config": LayersConfig.from_dict(io.read_json_attr(f, "config")),
                                "summary": io.read_json_attr(f, "summary"), "timings": io.read_json_attr(f, "timings"),
                                "half_a": f["half_a"][()], "half_b": f["half_b"][()],
                                "statistics": {k: read_statistics(f["statistics"][k]) for k in f["statistics"]},
                                "predictions": {}}
        for sampling in f["predictions"]:
            for closure in f["predictions"][sampling]:
                for calibration in f["predictions"][sampling][closure]:
                    g = f["predictions"][sampling][closure][calibration]
                    item = {k: g[k][()] for k in g}
                    item["settings"] = io.read_json_attr(g, "settings")
                    item["notes"] = io.read_json_attr(g, "notes")
                    for name in ("coordinates", "layers", "kinds"):
                        item[name] = [v.decode() for v in g.attrs[name]]
                    data["predictions"][f"{sampling}/{closure}/{calibration}"] = item
    return data
