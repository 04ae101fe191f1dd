"""Figures. Functions take ``ax=None`` (a new figure when missing) and return the axes.

Plotting never computes physics beyond normalising what the engines returned.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["plot_trails", "plot_marginals", "plot_well_occupation", "new_axes"]


def new_axes(ax: Any = None, **subplot_kw: Any) -> Any:
    """``ax`` or the axes of a new figure."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(subplot_kw=subplot_kw)
    return ax


def plot_trails(result: Any, *, axes: tuple[int, int] = (0, 1), ax: Any = None,
                background: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                max_tracers: int = 8) -> Any:
    """Tracer trails of a :class:`~ib_physics.ParticleResult` in the plane of two axes.

    Parameters
    ----------
    result : ParticleResult
        Must hold trails (``tracers`` > 0).
    axes : (int, int)
        Coordinates to draw (for 1D results the second is time).
    background : (X, Y, U), optional
        A field drawn as filled contours under the trails (a potential).
    """
    ax = new_axes(ax)
    if result.trails is None:
        raise ValueError("the result holds no trails; simulate with `tracers` > 0.")
    if background is not None:
        gx, gy, gu = background
        cs = ax.contourf(gx, gy, gu, levels=20, cmap="Greys", alpha=0.6)
        ax.figure.colorbar(cs, ax=ax, label="U")
    colours = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:cyan"]
    for k, trail in enumerate(result.trails[:max_tracers]):
        if result.dim == 1:
            ax.plot(result.trail_t, trail[:, 0], lw=0.6, color=colours[k % len(colours)])
        else:
            ax.plot(trail[:, axes[0]], trail[:, axes[1]], lw=0.5, color=colours[k % len(colours)])
            ax.plot(trail[0, axes[0]], trail[0, axes[1]], "o", ms=3, color=colours[k % len(colours)])
    names = "xyz"
    if result.dim == 1:
        ax.set_xlabel("t")
        ax.set_ylabel("x")
    else:
        ax.set_xlabel(names[axes[0]])
        ax.set_ylabel(names[axes[1]])
    return ax


def plot_marginals(result: Any, *, axis: int = 0, times: Sequence[int] | None = None, ax: Any = None,
                   reference: Callable[[np.ndarray], np.ndarray] | None = None,
                   reference_label: str = "exact") -> Any:
    """Histogram densities along one axis at chosen output indices, with an optional exact curve.

    Needs ``histogram_edges`` in the run; the density is normalised by the number of particles
    started, so absorbed mass is missing from it.
    """
    ax = new_axes(ax)
    hist = result.histogram
    if hist is None:
        raise ValueError("the result holds no histogram; simulate with `histogram_edges`.")
    idx = list(range(len(result.t))) if times is None else list(times)
    other = tuple(k for k in range(result.dim) if k != axis)
    edges = hist.edges[axis]
    widths = np.diff(edges)
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    for j, k in enumerate(idx):
        counts = hist.counts[k].sum(axis=tuple(o for o in other)) if other else hist.counts[k]
        dens = counts / (hist.n_particles * widths)
        ax.stairs(dens, edges, color=cmap(j / max(1, len(idx) - 1)), label=f"t = {result.t[k]:.3g}")
    if reference is not None:
        grid = np.linspace(edges[0], edges[-1], 400)
        ax.plot(grid, reference(grid), "k--", lw=1.2, label=reference_label)
    ax.set_xlabel("xyz"[axis])
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return ax


def plot_well_occupation(t: np.ndarray, fraction: np.ndarray, *, ax: Any = None,
                         equilibrium: float | None = None, label: str = "particles") -> Any:
    """Fraction of particles in a region against time, with its equilibrium value."""
    ax = new_axes(ax)
    ax.plot(t, fraction, "o-", ms=3, label=label)
    if equilibrium is not None:
        ax.axhline(equilibrium, color="k", ls="--", lw=1, label="equilibrium")
    ax.set_xlabel("t")
    ax.set_ylabel("fraction in the right well")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return ax
