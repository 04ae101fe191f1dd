"""Collision benchmark: hard-disk collisions per second on one core, and how the rate scales with N.

5 big disks (radius 5, mass 25) among 800 small ones (radius 1, mass 1), area fraction 0.3, periodic,
kT = 1; then the same 16 times larger (80 + 12 800) at the same density. Each run warms up for
20 000 collisions, then times 300 000 collisions (median of 3). Also prints the largest overlap and
the relative energy change over the timed stretch.

    python benchmarks/collisions.py [--collisions 300000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")


def rate(n_big: int, n_small: int, collisions: int) -> tuple[float, float, float]:
    from ib_physics.collisions import random_disks

    system = random_disks(n_big=n_big, n_small=n_small, area_fraction=0.3, periodic=True, seed=0)
    system.run(1e12, max_events=20_000)
    e0 = system.kinetic_energy()
    t0 = time.process_time()
    counts, _ = system.run(1e12, max_events=collisions)
    cpu = time.process_time() - t0
    return counts.collisions / cpu, abs(system.kinetic_energy() - e0) / e0, system.overlap() if system.n < 3000 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collisions", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.machine()}, Python {platform.python_version()}, one core, CPU seconds")
    rate(5, 800, 1000)  # compile
    print("| disks | collisions per CPU-second (median) | energy drift | largest overlap |")
    print("|---|---|---|---|")
    for n_big, n_small in ((5, 800), (80, 12_800)):
        runs = [rate(n_big, n_small, args.collisions) for _ in range(args.repeats)]
        r = statistics.median(x[0] for x in runs)
        print(f"| {n_big} + {n_small} | {r:,.0f} | {max(x[1] for x in runs):.1e} | {max(x[2] for x in runs):.1e} |")


if __name__ == "__main__":
    main()
