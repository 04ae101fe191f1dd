"""Training benchmark: seconds per network-epoch, ib_physics against PyTorch on CPU, one core.

The net and data of the information-bottleneck study: 12-10-7-5-4-3-2, tanh, softmax,
cross-entropy, Adam (lr 4e-4), minibatches of 512 reshuffled every epoch, 85 % of
the 4096 patterns (3482 samples, 7 minibatches per epoch), float64 in both. PyTorch
trains the same initial weights on the same minibatch orders (checked: the weights
agree after the run). ib_physics trains R networks per call (the replica axis);
PyTorch one network at a time in an ordinary training loop. Runs alternate
(A B A B ...) and the medians of the pairs are reported with their ratio.

A third row measures what the adapter's weight trace costs: the same training with every
epoch traced (weights, per-step gradients and updates kept) and, closer to use, with the
log-spaced blocks of ``ib-physics layers`` (16 blocks of 3 epochs in 1000); the last row
adds a second, independent minibatch gradient to every traced step of those blocks
(``trace_second_batch``, the input of the adapter's paired-batch noise).

    python benchmarks/training.py [--epochs 100] [--replicas 10] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def ours(epochs: int, replicas: int, trace: str = "none", second: bool = False) -> tuple[float, np.ndarray]:
    from ib_physics.experiments.layers import traced_epochs
    from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices

    data = ib_dataset()
    train, _ = split_indices(0.85, 0)
    if trace == "every":
        traced: tuple[int, ...] = tuple(range(1, epochs + 1))
    elif trace == "blocks":  # the share of epochs that `ib-physics layers` traces (48 of 1000)
        traced = tuple(int(e) for e in traced_epochs(epochs, max(3, 16 * epochs // 1000), 3))
    else:
        traced = ()
    trainer = Trainer(arch=Architecture(), x=data.x[train], y=data.y[train], replicas=replicas, seed=1, threads=1,
                      trace_epochs=traced, trace_second_batch=second)
    t0 = time.perf_counter()
    trainer.run(epochs)
    return (time.perf_counter() - t0) / (epochs * replicas), trainer.params[0]


def pytorch(epochs: int, networks: int) -> tuple[float, np.ndarray]:
    import torch

    from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices
    from ib_physics.learning.torch import to_torch

    torch.set_num_threads(1)
    data = ib_dataset()
    train, _ = split_indices(0.85, 0)
    arch = Architecture()
    ref = Trainer(arch=arch, x=data.x[train], y=data.y[train], replicas=networks, seed=1, threads=1)
    x, y = torch.tensor(ref.x), torch.tensor(ref.y)
    batches = [[[torch.tensor(ref.batch_order(r, e)[b:b + 512]) for b in range(0, train.size, 512)]
                for e in range(epochs)] for r in range(networks)]
    first = None
    elapsed = 0.0
    for r in range(networks):
        model = to_torch(arch, ref.params[r])
        opt = torch.optim.Adam(model.parameters(), lr=4e-4)
        t0 = time.perf_counter()
        for e in range(epochs):
            for idx in batches[r][e]:
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        elapsed += time.perf_counter() - t0
        if r == 0:
            first = np.concatenate([np.concatenate([m.weight.detach().numpy().T.ravel(), m.bias.detach().numpy()])
                                    for m in model if isinstance(m, torch.nn.Linear)])
    return elapsed / (epochs * networks), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--torch-networks", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    import torch

    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, one thread each")
    ours(2, 1)  # compile
    a, b, c, e, s = [], [], [], [], []
    for _ in range(args.pairs):
        t_ours, p_ours = ours(args.epochs, args.replicas)
        t_torch, p_torch = pytorch(args.epochs, args.torch_networks)
        t_every, p_every = ours(args.epochs, args.replicas, "every")
        t_blocks, _ = ours(args.epochs, args.replicas, "blocks")
        t_second, p_second = ours(args.epochs, args.replicas, "blocks", second=True)
        s.append(t_second)
        a.append(t_ours)
        b.append(t_torch)
        c.append(t_every)
        e.append(t_blocks)
    if not (np.array_equal(p_every, p_ours) and np.array_equal(p_second, p_ours)):
        raise AssertionError("tracing changed the training")
    agree = float(np.max(np.abs(p_ours - p_torch)))
    print(f"same weights after {args.epochs} epochs: max |difference| = {agree:.1e}")
    print("| method | ms per network-epoch (median) | ratio to PyTorch |")
    print("|---|---|---|")
    mo, mt = statistics.median(a), statistics.median(b)
    print(f"| ib_physics, {args.replicas} replicas per call | {1e3 * mo:.3f} | {mt / mo:.1f}x faster |")
    print(f"| PyTorch {torch.__version__} (CPU), one net at a time | {1e3 * mt:.3f} | 1.0 |")
    mc, me = statistics.median(c), statistics.median(e)
    print(f"| ib_physics, every epoch traced | {1e3 * mc:.3f} | {mt / mc:.1f}x faster; "
          f"trace cost +{100 * (mc / mo - 1):.0f} % |")
    print(f"| ib_physics, traced blocks as in `layers` | {1e3 * me:.3f} | {mt / me:.1f}x faster; "
          f"trace cost +{100 * (me / mo - 1):.0f} % |")
    ms = statistics.median(s)
    print(f"| ib_physics, traced blocks with a second minibatch | {1e3 * ms:.3f} | {mt / ms:.1f}x faster; "
          f"trace cost +{100 * (ms / mo - 1):.0f} % |")


if __name__ == "__main__":
    main()
