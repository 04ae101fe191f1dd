"""One Dynamics, two views: particle histograms against the Fokker–Planck density.

Particles start at x = -1 in a 1D double well between reflecting walls; the same
Dynamics is solved as a density from the same start (a narrow Gaussian). At each
output time the histogram of the particles and the density agree to within the
sampling noise of N particles, which is printed next to the L1 distance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import ib_physics as ib
from ib_physics.potentials import DoubleWell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    n = 20_000 if args.smoke else 400_000
    dyn = ib.Dynamics(potential=DoubleWell(1.0, 1.0), diffusion=0.5)
    box = ib.Box(-2.5, 2.5)
    t_eval = [0.2, 1.0, 3.0, 10.0]
    grid = ib.Grid(box, 250)
    start = ib.gaussian_density(grid, -1.0, 0.02)
    density = ib.solve_fokker_planck(dyn, grid, start, (0.0, t_eval[-1]), t_eval=t_eval, tol=1e-8)
    rng = np.random.default_rng(0)
    x0 = np.clip(rng.normal(-1.0, 0.02, size=(n, 1)), -2.5, 2.5)
    particles = ib.simulate(dyn, x0, (0.0, t_eval[-1]), dt=2e-3, seed=1, domain=box, t_eval=t_eval,
                            store_positions=False, histogram_edges=[grid.edges[0]])
    fig, axes = plt.subplots(1, len(t_eval), figsize=(16, 3.6), constrained_layout=True, sharey=True)
    centres = grid.centres[0]
    width = np.diff(grid.edges[0])
    for k, ax in enumerate(axes):
        hist = particles.histogram.counts[k] / (n * width)
        l1 = float(np.sum(np.abs(hist - density.p[k]) * width))
        # Expected L1 distance of a histogram of n samples from its law: sum sqrt(2 p w / (pi n)).
        floor = float(np.sum(np.sqrt(2 * density.p[k] * width / (np.pi * n))))
        ax.stairs(hist, grid.edges[0], color="tab:red", label=f"{n:,} particles")
        ax.plot(centres, density.p[k], "k-", lw=1, label="Fokker–Planck")
        ax.set_title(f"t = {t_eval[k]}: L1 = {l1:.3f} (noise {floor:.3f})", fontsize=9)
        ax.set_xlabel("x")
        print(f"t = {t_eval[k]:5}: L1(particles, density) = {l1:.4f}; sampling floor {floor:.4f}")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "particles_and_density.png", dpi=110)
    print(f"wrote {out / 'particles_and_density.png'}")


if __name__ == "__main__":
    main()
