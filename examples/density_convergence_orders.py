"""How the density engine's error falls with the grid and the tolerance, against an exact Gaussian.

2D Ornstein–Uhlenbeck (stiffness 1 and 2, D = 1 and 0.5) from N((1, -0.5), 0.4²) to t = 0.7,
whose exact density is a Gaussian with known mean and variance per axis. Left: L1 error of the
cell averages against the grid spacing for the Scharfetter–Gummel scheme (second order) and the
fourth-order finite volumes, both integrated exactly in time (the operator is separable).
Right: the time error alone — adaptive BDF2 on a 64² grid at a range of tolerances against the
exact-in-time solution on the same grid — falls as tol^(2/3).

Run ``python examples/density_convergence_orders.py`` (a few seconds) or with ``--smoke``.
Writes ``density_convergence_orders.png`` into ``--out`` (default ``out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import ib_physics as ib
from ib_physics.potentials import Harmonic

STIFFNESS = np.array([1.0, 2.0])
DIFFUSION = np.array([1.0, 0.5])
MEAN0, STD0, T_END = np.array([1.0, -0.5]), 0.4, 0.7


def exact_density(grid: ib.Grid) -> np.ndarray:
    decay = np.exp(-STIFFNESS * T_END)
    std = np.sqrt(STD0**2 * decay**2 + DIFFUSION / STIFFNESS * (1 - decay**2))
    return ib.gaussian_density(grid, MEAN0 * decay, std)


def solve(n: int, **options) -> tuple[np.ndarray, ib.Grid]:
    dyn = ib.Dynamics(potential=Harmonic(STIFFNESS), diffusion=DIFFUSION)
    # Wide enough that the Gaussian's mass beyond the walls (which reflect) is below 1e-12.
    grid = ib.Grid(ib.Box([-7.0, -4.0], [7.0, 4.0]), (n, n))
    res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, MEAN0, STD0), (0.0, T_END), **options)
    return res.p[-1], grid


def l1(p: np.ndarray, q: np.ndarray, grid: ib.Grid) -> float:
    return float(np.sum(np.abs(p - q) * grid.volumes()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="fewer grids and tolerances")
    parser.add_argument("--out", default="out")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [16, 32, 64] if args.smoke else [16, 32, 64, 128, 256]
    tols = [1e-4, 1e-6, 1e-8] if args.smoke else [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    h = 14.0 / np.array(sizes)
    print("cells per axis | L1, 2nd order | L1, 4th order")
    errors = {}
    for order, marker in ((2, "o"), (4, "s")):
        found = []
        for n in sizes:
            p, grid = solve(n, spatial_order=order)
            found.append(l1(p, exact_density(grid), grid))
        errors[order] = np.array(found)
        slope = np.polyfit(np.log(h), np.log(errors[order]), 1)[0]
        left.loglog(h, errors[order], marker + "-", label=f"spatial_order={order} (slope {slope:.2f})")
        ref = errors[order][0] * (h / h[0]) ** order
        left.loglog(h, ref, ":", color="grey", lw=0.8)
    for n, e2, e4 in zip(sizes, errors[2], errors[4]):
        print(f"{n:14d} | {e2:13.2e} | {e4:13.2e}")
    left.set(xlabel="cell width h (x axis; y is 8/14 of it)", ylabel="L1 error at t = 0.7",
             title="space: exact time integration, grey lines h² and h⁴")
    left.legend()

    print("BDF2 tolerance | L1 to the exact-in-time solution (64²) | steps")
    semi_exact, grid = solve(64)
    spatial = l1(semi_exact, exact_density(grid), grid)
    bdf2 = []
    for tol in tols:
        dyn = ib.Dynamics(potential=Harmonic(STIFFNESS), diffusion=DIFFUSION)
        res = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, MEAN0, STD0), (0.0, T_END),
                                     time_integration="bdf2", tol=tol)
        bdf2.append(l1(res.p[-1], semi_exact, grid))
        print(f"{tol:14.0e} | {bdf2[-1]:36.2e} | {res.diagnostics['steps']}")
    right.loglog(tols, bdf2, "o-", label="adaptive BDF2 minus exact-in-time")
    right.axhline(spatial, color="k", ls="--", lw=1, label="spatial error of the 64² grid (2nd order)")
    right.loglog(tols, bdf2[0] * (np.array(tols) / tols[0]) ** (2 / 3), ":", color="grey", lw=0.8,
                 label="tol^(2/3)")
    right.set(xlabel="tol (local error per step, L1)", ylabel="L1 time error at t = 0.7", title="time: 64² grid")
    right.invert_xaxis()
    right.legend()
    path = out / "density_convergence_orders.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
