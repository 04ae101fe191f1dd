"""Executor benchmark: what running an ensemble in ranges on other processes costs and gains.

In one run, on the same problem (a 3D Ornstein–Uhlenbeck ensemble, the engine's affine
kernel, store_positions=False, moments only):

1. overhead of the executor path at one worker against a direct ``simulate`` call on one
   thread, for a task of a few seconds: a started local process pool and a started Dask
   LocalCluster (their start-up is reported apart: a session pays it once);
2. scaling from one to two workers (eight ranges);
3. a streaming ensemble of 10^8 particles on two workers: particle-steps per second, and the
   peak memory of the coordinating process and of a worker.

Every distributed result is checked bitwise against the serial one where both are run (digests).

    python benchmarks/parallel.py [--particles 2000000] [--steps 200] [--big 100000000] [--big-steps 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def problem():
    import ib_physics as ib
    from ib_physics.potentials import Harmonic

    return ib.Dynamics(potential=Harmonic([1.0, 2.0, 0.5]), diffusion=0.5)


def direct(n: int, steps: int) -> tuple[float, str]:
    import ib_physics as ib

    t0 = time.perf_counter()
    r = ib.simulate(problem(), [0.5, 0.0, -0.5], (0.0, steps * 1e-3), dt=1e-3, n_particles=n, seed=1,
                    store_positions=False, threads=1)
    return time.perf_counter() - t0, r.reduced().digest()


def on(executor, n: int, steps: int, block: int) -> tuple[float, str, dict]:
    from ib_physics.parallel import simulate_ensemble

    t0 = time.perf_counter()
    r = simulate_ensemble(problem(), [0.5, 0.0, -0.5], (0.0, steps * 1e-3), dt=1e-3, n_particles=n, seed=1,
                          executor=executor, block_particles=block)
    return time.perf_counter() - t0, r.digest(), dict(r.diagnostics)


def main() -> None:
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    import distributed

    from ib_physics.particles import REDUCTION_BLOCK
    from ib_physics.parallel.executors import _init_worker

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--particles", type=int, default=2_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--big", type=int, default=100_000_000)
    parser.add_argument("--big-steps", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    n, steps = args.particles, args.steps
    whole = -(-n // REDUCTION_BLOCK) * REDUCTION_BLOCK
    eighth = -(-n // (8 * REDUCTION_BLOCK)) * REDUCTION_BLOCK
    print(f"# {platform.machine()}, Python {platform.python_version()}, dask {distributed.__version__}, "
          f"{os.cpu_count()} CPUs; {n:,} particles x {steps} steps in 3D")
    direct(10_000, 2)  # compile (and fill the on-disk cache the workers load)
    spawn = multiprocessing.get_context("spawn")

    t0 = time.perf_counter()
    pool1 = ProcessPoolExecutor(1, mp_context=spawn, initializer=_init_worker, initargs=(1,))
    pool1.submit(int, 0).result()
    pool_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster1 = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    client1 = distributed.Client(cluster1)
    dask_start = time.perf_counter() - t0
    on(pool1, 10_000, 2, REDUCTION_BLOCK * 4)  # the workers import the package and load the kernels once
    on(client1, 10_000, 2, REDUCTION_BLOCK * 4)
    rows = {"direct": [], "pool": [], "dask": []}
    digests = set()
    for _ in range(args.pairs):
        t, d = direct(n, steps)
        rows["direct"].append(t)
        digests.add(d)
        t, d, _ = on(pool1, n, steps, whole)
        rows["pool"].append(t)
        digests.add(d)
        t, d, _ = on(client1, n, steps, whole)
        rows["dask"].append(t)
        digests.add(d)
    client1.close()
    cluster1.close()
    pool1.shutdown()
    if len(digests) != 1:
        raise AssertionError("a distributed result differs from the serial one")
    base = statistics.median(rows["direct"])
    print("\n| path, one worker, one task | s (median) | overhead |")
    print("|---|---|---|")
    print(f"| direct `simulate(threads=1)` | {base:.2f} | — |")
    for key, label in (("pool", "local process pool (started)"), ("dask", "Dask LocalCluster (started)")):
        m = statistics.median(rows[key])
        print(f"| {label} | {m:.2f} | {100 * (m / base - 1):+.0f} % |")
    print(f"\nstart-up: process pool {pool_start:.1f} s, LocalCluster {dask_start:.1f} s (once per session)")

    scale = {}
    for workers in (1, 2):
        pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker, initargs=(1,))
        on(pool, 10_000, 2, REDUCTION_BLOCK * 4)
        times = []
        for _ in range(args.pairs):
            t, d, _ = on(pool, n, steps, eighth)
            times.append(t)
            digests.add(d)
        pool.shutdown()
        scale[workers] = statistics.median(times)
    if len(digests) != 1:
        raise AssertionError("a distributed result differs from the serial one")
    print("\n| workers (8 ranges, process pool) | s (median) | M particle-steps/s | speed-up |")
    print("|---|---|---|---|")
    for workers, t in scale.items():
        print(f"| {workers} | {t:.2f} | {n * steps / t / 1e6:.1f} | {scale[1] / t:.2f}x |")

    big, big_steps = args.big, args.big_steps
    block = 1 << 22
    pool = ProcessPoolExecutor(2, mp_context=spawn, initializer=_init_worker, initargs=(1,))
    on(pool, 10_000, 2, REDUCTION_BLOCK * 4)
    t, _, diag = on(pool, big, big_steps, block)
    pool.shutdown()
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"\n{big:,} particles x {big_steps} steps on 2 workers in {-(-big // block)} ranges of {block:,}: "
          f"{t:.1f} s, {big * big_steps / t / 1e6:.1f} M particle-steps/s; peak memory: coordinating process "
          f"{parent:.2f} GiB, largest worker {child:.2f} GiB")
    per_core = big * big_steps / t / 2
    print(f"per core {per_core / 1e6:.1f} M particle-steps/s: 10^9 particles x 1000 steps on 100 such cores "
          f"~ {1e9 * 1000 / (100 * per_core):.0f} s")


if __name__ == "__main__":
    main()
