"""Figures of ``ib-physics layers``, drawn from ``layers.h5`` only.

* ``layers_gradients.png``: Shwartz-Ziv & Tishby's gradient figure extended. Left: per layer,
  the norm of the mean minibatch gradient and the square root of the trace of its covariance
  (ensemble mean, log-log), each layer's drift-to-diffusion transition marked. Right: the
  spread of the runs along each layer's mean-update direction against the spread the
  layer-wise equation predicts (both closures), held-out half.
* ``layers_distributions.png``: per layer (rows) and epoch (columns), the runs' deviation from
  their mean along the mean-update direction (histogram of all runs), the density engine's
  prediction for both closures and the particle engine's (linear closure).
* ``layers_distance.png``: W1 between prediction and half B over W1 between the two halves, per
  layer over epochs, per closure and sampling; 1 = as good as an independent half of runs.
* ``layers_phase.png``: the per-layer phase diagram: Tishby's SNR and the Péclet number along
  the mean-update direction over epochs, with the transition marked.
* ``layers_norms.png``: layer-norm growth: mean and spread of ‖W_l‖ over the runs against the
  prediction (mean-field mean; spread of both closures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .layers import read_layers

__all__ = ["plot_layers"]

_CLOSURE_STYLE = {"mean-field": ("tab:blue", "--"), "linear": ("tab:red", ":")}
_SAMPLING_STYLE = {"reshuffled": "-", "iid": "--", "subset": "-.", "fixed": ":"}


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _colours(n: int) -> Any:
    import matplotlib.pyplot as plt

    return plt.cm.plasma(np.linspace(0.05, 0.85, n))


def _key(data: dict[str, Any], sampling: str, closure: str, calibration: str = "held-out") -> dict[str, Any]:
    return data["predictions"][f"{sampling}/{closure}/{calibration}"]


def _coordinate_index(pred: dict[str, Any], layer: str, kind: str) -> int:
    for i, (l, k) in enumerate(zip(pred["layers"], pred["kinds"])):
        if l == layer and k == kind:
            return i
    raise ValueError(f"no {kind} coordinate of {layer}")


def _mark_transition(ax: Any, epoch: float, colour: Any) -> None:
    if np.isfinite(epoch):
        ax.axvline(epoch, color=colour, lw=0.8, alpha=0.6)


def plot_layers(data: str | Path, out: str | Path) -> list[Path]:
    """Draw every figure of a ``layers.h5`` file into ``out``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    d = read_layers(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return [_gradients(d, out / "layers_gradients.png"), _distributions(d, out / "layers_distributions.png"),
            _distance(d, out / "layers_distance.png"), _phase(d, out / "layers_phase.png"),
            _norms(d, out / "layers_norms.png")]


def _main_sampling(d: dict[str, Any]) -> str:
    return d["config"].samplings[0]


def _gradients(d: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    sampling = _main_sampling(d)
    stats = d["statistics"][sampling]
    names = stats.layer_names
    colours = _colours(len(names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    epochs = stats.stats.epochs
    pred = {c: _key(d, sampling, c) for c in _CLOSURE_STYLE}
    trans = pred["mean-field"]["median_transitions"]
    for l, name in enumerate(names):
        mean = np.mean(stats.stats.grad_mean[:, :, l], axis=0)
        std = np.mean(stats.stats.grad_std[:, :, l], axis=0)
        left.loglog(epochs, mean, color=colours[l], lw=1.2, label=f"{name} mean")
        left.loglog(epochs, std, color=colours[l], lw=1.0, ls="--")
        if np.isfinite(trans[l]):
            k = int(np.clip(np.searchsorted(epochs, trans[l]), 0, epochs.size - 1))
            left.plot(epochs[k], mean[k], "o", color="tab:green", ms=6, zorder=5)
        p = pred["mean-field"]
        c = _coordinate_index(p, name, "direction")
        ep = p["epochs"]
        emp = np.std(p["empirical"][c], axis=1, ddof=1)
        ok = ep > ep[0]
        right.loglog(ep[ok], emp[ok], "o-", color=colours[l], ms=3, lw=1.0, label=name)
        for closure, (col, ls) in _CLOSURE_STYLE.items():
            right.loglog(ep[ok], np.sqrt(pred[closure]["metric_var_density"][c][ok]), color=colours[l], ls=ls, lw=1.2)
    left.set_xlabel("epoch")
    left.set_ylabel("gradient norm")
    left.set_title("‖mean g‖ (solid) and sqrt(tr Cov g) (dashed); green: transition")
    left.legend(fontsize=7, ncol=2)
    right.set_xlabel("epoch")
    right.set_ylabel("spread across runs along û")
    right.set_title("runs (dots) vs prediction: mean-field (--), linear (:)")
    right.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{sampling} minibatches, {d['config'].networks} runs from one initialisation, "
                 f"{d['config'].optimizer} lr {d['config'].learning_rate:g}")
    return _save(fig, path)


def _distributions(d: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    sampling = _main_sampling(d)
    stats = d["statistics"][sampling]
    names = stats.layer_names
    pred = {c: _key(d, sampling, c) for c in _CLOSURE_STYLE}
    p0 = pred["linear"]
    fig_epochs = p0["figure_epochs"]
    fig, axes = plt.subplots(len(names), fig_epochs.size, figsize=(3.1 * fig_epochs.size, 1.9 * len(names)),
                             constrained_layout=True, squeeze=False)
    for l, name in enumerate(names):
        c = _coordinate_index(p0, name, "direction")
        for k, epoch in enumerate(fig_epochs):
            ax = axes[l, k]
            j = int(np.flatnonzero(p0["epochs"] == epoch)[0])
            runs = p0["empirical"][c, j]
            runs = runs - runs.mean()
            scale = max(np.std(runs), 1e-300)
            bins = np.linspace(-4 * scale, 4 * scale, 16)
            heights, _, _ = ax.hist(runs, bins=bins, density=True, color="0.75", label="runs")
            for closure, (col, ls) in _CLOSURE_STYLE.items():
                q = pred[closure]
                ax.plot(q["density_x"][c, k], q["densities"][c, k], color=col, ls="-", lw=1.2,
                        label=f"density, {closure}")
            if p0.get("particles") is not None:
                ax.hist(p0["particles"][c, k], bins=bins, density=True, histtype="step", color="k", lw=0.8,
                        label="particles, linear")
            ax.set_xlim(bins[0], bins[-1])
            # A prediction much narrower than the runs would flatten the histogram: clip it.
            ax.set_ylim(0, 2.0 * max(float(np.max(heights)), 1e-300))
            ax.set_yticks([])
            if l == 0:
                ax.set_title(f"epoch {int(epoch)}", fontsize=9)
            if k == 0:
                ax.set_ylabel(name)
    axes[0, -1].legend(fontsize=6, loc="upper right")
    fig.suptitle(f"deviation from the runs' mean along the mean-update direction ({sampling}; predictions "
                 "calibrated on half A; curves clipped at twice the tallest bar)")
    return _save(fig, path)


def _distance(d: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    config = d["config"]
    any_pred = _key(d, config.samplings[0], "mean-field")
    names = list(dict.fromkeys(any_pred["layers"]))
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.0 * rows), constrained_layout=True, squeeze=False,
                             sharey=True)
    for l, name in enumerate(names):
        ax = axes[l // cols, l % cols]
        for sampling in config.samplings:
            for closure, (col, _) in _CLOSURE_STYLE.items():
                p = _key(d, sampling, closure)
                idx = [i for i, layer in enumerate(p["layers"]) if layer == name]
                ep = p["epochs"]
                ratio = p["metric_w1_density"][idx] / np.maximum(p["metric_w1_floor"][idx], 1e-300)
                ok = ep > ep[0]
                ax.semilogx(ep[ok], np.median(ratio[:, ok], axis=0), color=col, ls=_SAMPLING_STYLE[sampling],
                            lw=1.3, label=f"{closure}, {sampling}")
                _mark_transition(ax, p["median_transitions"][l], "tab:green")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(2.0, color="k", lw=0.6, ls=":")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if l % cols == 0:
            ax.set_ylabel("W1 / split-half floor")
    for l in range(len(names), rows * cols):
        axes[l // cols, l % cols].axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("prediction vs held-out half B, relative to half A vs half B (median over the layer's "
                 "coordinates); green: transition")
    return _save(fig, path)


def _phase(d: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    sampling = _main_sampling(d)
    p = _key(d, sampling, "mean-field")
    names = list(dict.fromkeys(p["layers"]))
    colours = _colours(len(names))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    ep = p["calibrated_epochs"]
    for l, name in enumerate(names):
        a.loglog(ep, p["snr"][:, l], "o-", ms=3, color=colours[l], label=name)
        b.loglog(ep, p["direction_peclet"][:, l], "o-", ms=3, color=colours[l], label=f"{name} along û")
        b.loglog(ep, p["isotropic_peclet"][:, l], ":", color=colours[l])
        for ax in (a, b):
            _mark_transition(ax, p["median_transitions"][l], colours[l])
    a.axhline(1.0, color="k", lw=0.8)
    a.set_title("Tishby's SNR ‖mean g‖ / sqrt(tr Cov g)")
    b.axhline(1.0, color="k", lw=0.8)
    b.set_title("Péclet number per step: along û (o), isotropic noise (:)")
    for ax in (a, b):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"phase diagram per layer ({sampling}); vertical lines: transition (SNR stays below 1)")
    return _save(fig, path)


def _norms(d: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    sampling = _main_sampling(d)
    pred = {c: _key(d, sampling, c) for c in _CLOSURE_STYLE}
    p = pred["mean-field"]
    names = list(dict.fromkeys(p["layers"]))
    colours = _colours(len(names))
    fig, (top, bottom) = plt.subplots(1, 2, figsize=(11, 4.3), constrained_layout=True)
    for l, name in enumerate(names):
        c = _coordinate_index(p, name, "norm")
        ep = p["epochs"]
        runs = p["empirical"][c]
        top.semilogx(ep, runs.mean(axis=1), "o", ms=3, color=colours[l], label=name)
        top.semilogx(ep, p["metric_mean_predicted"][c], "-", color=colours[l], lw=1.0)
        ok = ep > ep[0]
        bottom.loglog(ep[ok], runs.std(axis=1, ddof=1)[ok], "o", ms=3, color=colours[l], label=name)
        for closure, (_, ls) in _CLOSURE_STYLE.items():
            bottom.loglog(ep[ok], np.sqrt(pred[closure]["metric_var_density"][c][ok]), ls=ls, color=colours[l])
    top.set_title("mean ‖W‖ over runs (o) and the integrated mean drift (line)")
    bottom.set_title("spread of ‖W‖ over runs (o); mean-field (--), linear (:)")
    for ax in (top, bottom):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, ncol=2)
    fig.suptitle(f"layer-norm growth ({sampling}, held-out half)")
    return _save(fig, path)
