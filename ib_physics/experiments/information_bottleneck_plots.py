"""Figures of the information-bottleneck study, drawn from its HDF5 file only.

* ``bottleneck_information_plane.png``: one panel per training fraction; per layer
  the network-averaged (I(X;T), I(T;Y)) trajectory over the snapshots, points
  coloured by epoch (log scale), a green marker where the layer passes its
  drift-to-diffusion transition (median over networks). The estimator is named.
* ``bottleneck_gradients.png``: per layer, mean and standard deviation of the
  minibatch gradients (divided by ‖W‖ as in the original figure) on log-log axes,
  each layer's transition marked.
* ``bottleneck_snr.png``: the SNR per layer with the line SNR = 1.
* ``bottleneck_noise_scale.png``: the per-sample gradient noise scale per layer against the batch size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .information_bottleneck import StudyRun, read_study
from ..learning.transition import smooth_log

__all__ = ["plot_study"]


def _layer_colours(n: int) -> Any:
    import matplotlib.pyplot as plt

    return plt.cm.plasma(np.linspace(0.05, 0.85, n))


def _geomean(values: np.ndarray) -> np.ndarray:
    """Geometric mean over networks (axis 0), ignoring zeros and non-finite values."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v > 0)
    logs = np.where(ok, np.log(np.where(ok, v, 1.0)), 0.0)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.exp(logs.sum(axis=0) / np.maximum(count, 1)), np.nan)


def _single_batch(run: StudyRun) -> bool:
    """One minibatch per epoch: no minibatch noise, the SNR is undefined."""
    return bool(np.all(run.stats.grad_std == 0.0))


def _fraction_panels(runs: list[StudyRun], height: float) -> tuple[Any, Any]:
    """One log-log panel per training fraction, sharing the y axis."""
    import matplotlib.pyplot as plt

    return plt.subplots(1, len(runs), figsize=(5.2 * len(runs), height), constrained_layout=True, squeeze=False,
                        sharey=True)


def _fraction_title(run: StudyRun) -> str:
    return f"{100 * run.fraction:.0f} % of the data for training"


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _transition_median(run: StudyRun) -> np.ndarray:
    t = run.transitions
    out = np.full(t.shape[1], np.nan)
    for l in range(t.shape[1]):
        finite = t[:, l][np.isfinite(t[:, l])]
        if finite.size * 2 >= t.shape[0]:  # a majority of networks crossed
            out[l] = np.median(finite)
    return out


def plot_study(data: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure of a study file into ``out``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    config, runs, attrs = read_study(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    note = "" if attrs["complete"] else " (interrupted study: partial)"
    return [_information_plane(config, runs, out / "bottleneck_information_plane.png", note),
            _gradients(config, runs, out / "bottleneck_gradients.png", note),
            _snr(config, runs, out / "bottleneck_snr.png", note),
            _noise_scale(config, runs, out / "bottleneck_noise_scale.png", note)]


def _information_plane(config: Any, runs: list[StudyRun], path: Path, note: str) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    names = config.arch.layer_names
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs) + 1.2, 4.8), constrained_layout=True,
                             squeeze=False, sharey=True)
    last_epoch = max(1, max(int(r.snapshot_epochs[-1]) if r.snapshot_epochs.size else 1 for r in runs))
    norm = LogNorm(vmin=1, vmax=last_epoch)
    scatter = None
    for ax, run in zip(axes[0], runs):
        if run.snapshot_epochs.size == 0:
            ax.text(0.5, 0.5, "no snapshot yet", ha="center", transform=ax.transAxes)
            continue
        x, y = run.i_xt.mean(axis=0), run.i_ty.mean(axis=0)  # (S, L)
        ep = np.maximum(run.snapshot_epochs, 1)
        trans = _transition_median(run)
        for l in range(x.shape[1]):
            ax.plot(x[:, l], y[:, l], "-", color="0.6", lw=0.8, zorder=1)
            scatter = ax.scatter(x[:, l], y[:, l], c=ep, cmap="viridis", norm=norm, s=16, zorder=2, lw=0)
            ax.annotate(names[l], (x[-1, l], y[-1, l]), xytext=(4, -8), textcoords="offset points", fontsize=8)
            if np.isfinite(trans[l]) and trans[l] <= run.snapshot_epochs[-1]:
                tx = np.interp(np.log(trans[l]), np.log(ep), x[:, l])
                ty = np.interp(np.log(trans[l]), np.log(ep), y[:, l])
                ax.plot(tx, ty, "o", ms=9, mfc="none", mec="#1a9e3a", mew=2.2, zorder=3)
        acc = np.nanmean(run.test_accuracy[:, -1]) if run.test_accuracy.size else np.nan
        ax.set_title(f"{100 * run.fraction:.0f} % of the data for training\n"
                     f"test accuracy {acc:.3f} at epoch {run.snapshot_epochs[-1]}", fontsize=10)
        ax.set_xlabel("I(X;T) (bits)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("I(T;Y) (bits)")
    axes[0, 0].plot([], [], "o", ms=9, mfc="none", mec="#1a9e3a", mew=2.2, label="drift → diffusion transition")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes[0, -1], label="epoch")
    # The estimator on its own line: narrow (one-fraction) figures would cut a single long title.
    fig.suptitle(f"Information plane, mean of {config.networks} networks {config.widths} "
                 f"({config.activation}, {config.optimizer})\n{config.estimator_label()}{note}", fontsize=10)
    return _save(fig, path)


def _gradients(config: Any, runs: list[StudyRun], path: Path, note: str) -> Path:

    names = config.arch.layer_names
    colours = _layer_colours(len(names))
    fig, axes = _fraction_panels(runs, 4.6)
    for ax, run in zip(axes[0], runs):
        s = run.stats
        if s.epochs.size == 0:
            continue
        trans = _transition_median(run)
        for l, name in enumerate(names):
            wn = s.weight_norm[:, :, l]
            mean = _geomean(s.grad_mean[:, :, l] / wn)
            std = _geomean(s.grad_std[:, :, l] / wn)
            ax.loglog(s.epochs, np.exp(smooth_log(s.epochs, mean, width=0.05)), "-", color=colours[l], lw=1.3,
                      label=f"{name} mean" if l == 0 else name)
            ax.loglog(s.epochs, np.exp(smooth_log(s.epochs, std, width=0.05)), "--", color=colours[l], lw=1.0,
                      label="std (dashed)" if l == 0 else None)
            if np.isfinite(trans[l]):
                ax.axvline(trans[l], color=colours[l], lw=0.8, ls=":")
        title = _fraction_title(run)
        ax.set_title(title + ("\n(one minibatch per epoch: std = 0)" if _single_batch(run) else ""), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("‖mean g‖ / ‖W‖ (solid), ‖std g‖ / ‖W‖ (dashed)")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Minibatch gradients per layer (geometric mean over {config.networks} networks); "
                 f"dotted lines: each layer's transition{note}", fontsize=11)
    return _save(fig, path)


def _snr(config: Any, runs: list[StudyRun], path: Path, note: str) -> Path:

    names = config.arch.layer_names
    colours = _layer_colours(len(names))
    fig, axes = _fraction_panels(runs, 4.4)
    for ax, run in zip(axes[0], runs):
        s = run.stats
        if s.epochs.size == 0:
            continue
        trans = _transition_median(run)
        if _single_batch(run):
            ax.text(0.5, 0.5, "one minibatch per epoch:\nno minibatch noise, SNR undefined", ha="center",
                    va="center", transform=ax.transAxes)
            ax.set_title(_fraction_title(run), fontsize=10)
            ax.set_xticks([])
            continue
        snr = _geomean(s.snr)
        for l, name in enumerate(names):
            finite = run.transitions[:, l][np.isfinite(run.transitions[:, l])]
            if np.isfinite(trans[l]):
                q1, q3 = np.percentile(finite, [25, 75])
                label = f"{name}: {trans[l]:.0f} (IQR {q1:.0f}–{q3:.0f}, {finite.size}/{run.transitions.shape[0]})"
            else:
                label = f"{name}: no lasting crossing"
            ax.loglog(s.epochs, np.exp(smooth_log(s.epochs, snr[:, l])), color=colours[l], lw=1.3, label=label)
            if np.isfinite(trans[l]):
                ax.plot(trans[l], 1.0, "o", color=colours[l], ms=6, mec="k", mew=0.5)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title(_fraction_title(run), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("gradient SNR = ‖mean g‖ / ‖std g‖")
    fig.suptitle(f"Signal-to-noise ratio per layer (smoothed; transition = lasting crossing of 1 after the peak, "
                 f"median over {config.networks} networks){note}", fontsize=11)
    return _save(fig, path)


def _noise_scale(config: Any, runs: list[StudyRun], path: Path, note: str) -> Path:

    names = config.arch.layer_names
    colours = _layer_colours(len(names))
    fig, axes = _fraction_panels(runs, 4.4)
    for ax, run in zip(axes[0], runs):
        ep = np.maximum(run.snapshot_epochs, 1)
        scale = _geomean(run.noise_scale)
        for l, name in enumerate(names):
            ax.loglog(ep, scale[:, l], "o-", ms=2.5, lw=1.1, color=colours[l], label=name)
        ax.axhline(config.batch_size, color="k", lw=0.8, ls="--")
        ax.annotate(f"batch size {config.batch_size}", (ep[1] if ep.size > 1 else ep[0], config.batch_size),
                    xytext=(2, 3), textcoords="offset points", fontsize=8)
        n_train = run.train_indices.size
        ax.axhline(n_train, color="0.5", lw=0.8, ls=":")
        ax.set_title(f"{100 * run.fraction:.0f} % of the data ({n_train} rows, dotted)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("gradient noise scale tr Σ / |G|² (rows)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Per-sample gradient noise per layer (McCandlish et al. 2018): minibatch SNR ≈ 1 where the "
                 f"noise scale reaches the batch size{note}", fontsize=11)
    return _save(fig, path)
