"""Information-plane estimators: the KDE bound against a vectorised NumPy/SciPy version, and the
cost of the information plane in a study (KDE beside binning, same run).

1. One layer's outputs for all 4096 patterns (10 units, a trained network): ``kde_information``
   (one Numba pass over the pairs) against the NumPy/SciPy code a strong user would write
   (``scipy.spatial.distance.pdist`` → ``exp`` → row sums for all patterns and within each class),
   both in bits, their agreement checked.
2. The study of the issue that asked for it: ``ib-physics bottleneck --activation relu --fractions
   0.85 --networks 6 --epochs 3000 --snapshots 24`` with ``--estimator kde`` and with binning, on the
   machine's threads.

    python benchmarks/information.py [--pairs 3] [--study-pairs 2] [--skip-study]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def numpy_kde(t: np.ndarray, y: np.ndarray, noise_variance: float) -> tuple[float, float]:
    """The Kolchinsky–Tracey upper bounds of I(X;T), I(T;Y) in bits, NumPy/SciPy style."""
    from scipy.spatial.distance import pdist, squareform

    kernel = np.exp(-squareform(pdist(t, "sqeuclidean")) / (2 * noise_variance))
    whole = -np.mean(np.log(kernel.mean(axis=1)))
    within = 0.0
    for label in np.unique(y):
        sel = y == label
        within += sel.mean() * -np.mean(np.log(kernel[np.ix_(sel, sel)].mean(axis=1)))
    return whole / np.log(2), (whole - within) / np.log(2)


def layer_outputs() -> tuple[np.ndarray, np.ndarray]:
    from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices

    data = ib_dataset()
    train, _ = split_indices(0.85, 0)
    trainer = Trainer(arch=Architecture(), x=data.x[train], y=data.y[train], replicas=1, seed=0)
    trainer.run(300)
    outs, _ = trainer.outputs(data.x)
    return np.ascontiguousarray(outs[0][:, trainer.layer_slices()[0]]), data.y


def main() -> None:
    from ib_physics.learning import kde_information

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--study-pairs", type=int, default=2)
    args = parser.parse_args()
    print(f"# {platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    t, y = layer_outputs()
    kde_information(t[:64], y[:64])  # compile
    ours, peer = [], []
    for _ in range(args.pairs):
        t0 = time.perf_counter()
        a = kde_information(t, y, noise_variance=0.1)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = numpy_kde(t, y, 0.1)
        peer.append(time.perf_counter() - t0)
    if abs(a.i_xt - b[0]) > 1e-6 or abs(a.i_ty - b[1]) > 1e-6:
        raise AssertionError(f"estimates differ: {a} vs {b}")
    mo, mp = statistics.median(ours), statistics.median(peer)
    gap = max(abs(a.i_xt - b[0]), abs(a.i_ty - b[1]))
    print(f"\none layer, {t.shape[0]} patterns x {t.shape[1]} units: I(X;T) = {a.i_xt:.4f} bits, I(T;Y) = "
          f"{a.i_ty:.4f} bits (single- vs double-precision kernel values: {gap:.1e} bits apart)")
    print("| estimator | s (median) | ratio |")
    print("|---|---|---|")
    print(f"| ib_physics `kde_information` (Numba, pairs once) | {mo:.3f} | {mp / mo:.1f}x faster |")
    print(f"| NumPy/SciPy pdist + exp + row means | {mp:.3f} | 1.0 |")
    if args.skip_study:
        return
    from ib_physics.experiments.information_bottleneck import StudyConfig, run_study
    import tempfile

    kw = dict(fractions=(0.85,), networks=6, epochs=3000, snapshots=24, activation="relu")
    rows: dict[str, list[float]] = {"binning": [], "kde": []}
    for _ in range(args.study_pairs):  # alternating, as the machine's load drifts
        for estimator in rows:
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                run_study(StudyConfig(**kw, estimator=estimator), out=out, progress=False)
                rows[estimator].append(time.perf_counter() - t0)
    print("\nReLU study, 85 %, 6 networks x 3000 epochs, 24 snapshots (training included):")
    print("| estimator | s (median) | all runs |")
    print("|---|---|---|")
    for estimator, seconds in rows.items():
        print(f"| {estimator} | {statistics.median(seconds):.1f} | {', '.join(f'{s:.1f}' for s in seconds)} |")


if __name__ == "__main__":
    main()
