"""A double well in a rotating medium: a stationary state that is not Boltzmann, with a steady current.

U = (x² - 1)² + y², D = 0.5, in the box [-2.5, 2.5] x [-2, 2]; the medium rotates rigidly about
the origin at omega = 1.5 (a ``Rotation`` flow, u = omega (-y, x)). Without the flow the
stationary density is exp(-U/D) and no probability moves; with it the density is dragged round
and a current J = a p - D grad p circulates through both wells, crossing the barrier at x = 0
to the right below the axis and to the left above it. Left: the Boltzmann density; middle: the
stirred stationary density with the streamlines of J; right: the current through the barrier,
J_x(0, y), from the density engine and from particles started in the stationary density (the net
signed crossings of x = 0 per unit time and height: exact for the net current however coarsely
the paths are sampled, since every extra crossing comes back).

Run ``python examples/stirred_double_well_current.py`` (about a minute) or with ``--smoke``.
Writes ``stirred_double_well_current.png`` into ``--out`` (default ``out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import ib_physics as ib
from ib_physics.flows import Rotation
from ib_physics.potentials import DoubleWell, Harmonic

OMEGA, DIFFUSION = 1.5, 0.5
BOX = ib.Box([-2.5, -2.0], [2.5, 2.0])


def dynamics(omega: float) -> ib.Dynamics:
    return ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 2.0]), diffusion=DIFFUSION,
                       flow=Rotation(omega) if omega else None)


def sample_density(grid: ib.Grid, p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points distributed as the cell averages ``p`` (uniform within each cell)."""
    weights = (p * grid.volumes()).ravel()
    cells = rng.choice(weights.size, size=n, p=weights / weights.sum())
    index = np.unravel_index(cells, grid.shape)
    lower = np.column_stack([grid.edges[a][index[a]] for a in range(2)])
    return lower + rng.random((n, 2)) * grid.spacing


def particle_current(grid: ib.Grid, p: np.ndarray, y_edges: np.ndarray, *, n: int, t_end: float,
                     every: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """J_x(0, y) in bins of y, and its standard error, from particles started in ``p``."""
    start = sample_density(grid, p, n, np.random.default_rng(seed))
    t_eval = np.arange(0.0, t_end + 0.5 * every, every)
    res = ib.simulate(dynamics(OMEGA), start, (0.0, t_end), dt=1e-3, seed=seed, domain=BOX, t_eval=t_eval)
    x = res.positions  # (n_t, n, 2)
    before, after = x[:-1], x[1:]
    sign = np.sign(after[..., 0]) - np.sign(before[..., 0])  # +2 rightwards, -2 leftwards
    crossed = sign != 0
    # The height of a crossing: where the chord between the two samples meets x = 0.
    frac = before[..., 0] / (before[..., 0] - after[..., 0] + 1e-300)
    y_cross = before[..., 1] + frac * (after[..., 1] - before[..., 1])
    per_particle = np.zeros((n, y_edges.size - 1))
    bins = np.clip(np.digitize(y_cross[crossed], y_edges) - 1, 0, y_edges.size - 2)
    particle = np.nonzero(crossed)[1]
    np.add.at(per_particle, (particle, bins), 0.5 * sign[crossed])
    scale = 1.0 / (t_end * np.diff(y_edges))
    flux = per_particle.mean(axis=0) * scale
    # Crossings of different particles are independent: the spread over particles gives the error.
    error = per_particle.std(axis=0, ddof=1) / np.sqrt(n) * scale
    return flux, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a coarse grid and few particles")
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape = (50, 40) if args.smoke else (150, 120)
    n_particles, t_end = (4000, 1.0) if args.smoke else (40_000, 4.0)
    grid = ib.Grid(BOX, shape)
    still = ib.stationary_density(dynamics(0.0), grid)
    stirred = ib.stationary_density(dynamics(OMEGA), grid)
    # The current of the stationary state: one short solve started there reports J on the faces.
    res = ib.solve_fokker_planck(dynamics(OMEGA), grid, stirred, (0.0, 0.01), t_eval=[0.01], tol=1e-8)
    jx_faces, jy_faces = res.current[0][-1], res.current[1][-1]
    jx = 0.5 * (jx_faces[1:] + jx_faces[:-1])
    jy = 0.5 * (jy_faces[:, 1:] + jy_faces[:, :-1])
    xc, yc = grid.centres
    mid = shape[0] // 2  # the face at x = 0
    barrier_density = jx_faces[mid]
    y_edges = np.linspace(-2.0, 2.0, 17)
    flux, error = particle_current(grid, stirred, y_edges, n=n_particles, t_end=t_end, every=0.02, seed=5)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [1, 1, 0.8]},
                             layout="constrained")
    extent = [BOX.lower[0], BOX.upper[0], BOX.lower[1], BOX.upper[1]]
    top = max(still.max(), stirred.max())
    for ax, p, title in ((axes[0], still, "no flow: Boltzmann exp(-U/D), J = 0"),
                         (axes[1], stirred, f"rotating medium, omega = {OMEGA}: p and J")):
        im = ax.imshow(p.T, origin="lower", extent=extent, cmap="viridis", vmin=0.0, vmax=top, aspect="equal")
        ax.set_title(title)
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    speed = np.hypot(jx, jy)
    axes[1].streamplot(xc, yc, jx.T, jy.T, color="white", density=1.1,
                       linewidth=0.4 + 2.0 * speed.T / speed.max(), arrowsize=0.8)
    axes[1].set_xlim(extent[:2])
    axes[1].set_ylim(extent[2:])
    fig.colorbar(im, ax=axes[1], shrink=0.85, label="p(x, y)")
    right = axes[2]
    right.axhline(0.0, color="0.6", lw=0.8)
    right.plot(yc, barrier_density, color="C0", label="density engine, J_x(0, y)")
    centres = 0.5 * (y_edges[1:] + y_edges[:-1])
    right.errorbar(centres, flux, yerr=2 * error, fmt="o", ms=4, color="C3", capsize=2,
                   label=f"particles ({n_particles:,}, t = {t_end:g}), ±2 s.e.")
    right.set_xlabel("y")
    right.set_ylabel("current through the barrier x = 0")
    right.set_title("the current crosses the barrier in a loop")
    right.legend(fontsize=8, loc="upper right")
    path = out / "stirred_double_well_current.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    print(f"wrote {path}; net current through x = 0: {barrier_density.sum() * grid.spacing[1]:.2e} "
          f"(density), {np.sum(flux * np.diff(y_edges)):.2e} (particles)")


if __name__ == "__main__":
    main()
