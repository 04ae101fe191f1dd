"""Benchmark S1 (BENCHMARKS.md): 3D overdamped Langevin in a harmonic trap with gravity.

dx = (-k x + (0, 0, -g)) dt + sqrt(2 D) dW, k = g = D = 1, x0 = (1, -0.5, 2), 1000 steps of
dt = 1e-3, final positions only, float64. Prints particle-steps per CPU-second on one core for
ib_physics and for each peer measured in the same run (alternating A B A B, median of pairs), the
ratio to the NumPy in-place PCG64 loop, and each method's error against the exact moments at T = 1.

    python benchmarks/particles.py [--particles 100000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

K, G, D, DT, STEPS = 1.0, 1.0, 1.0, 1e-3, 1000
X0 = np.array([1.0, -0.5, 2.0])
E = np.exp(-1.0)
EXACT_MEAN = np.array([E, -0.5 * E, 2 * E - (1 - E)])
EXACT_VAR = D / K * (1 - np.exp(-2.0))
FORCE = np.array([0.0, 0.0, -G])


def ib_physics_engine(n: int) -> np.ndarray:
    import ib_physics as ib
    from ib_physics.potentials import ConstantForce, Harmonic

    dyn = ib.Dynamics(potential=Harmonic(K) + ConstantForce(FORCE), diffusion=D)
    res = ib.simulate(dyn, X0, (0.0, STEPS * DT), dt=DT, n_particles=n, seed=1, threads=1,
                      store_positions=False)
    return res.final_positions


def numpy_loop(n: int) -> np.ndarray:
    """The baseline a user writes: in-place updates, one PCG64 normal array per step."""
    rng = np.random.Generator(np.random.PCG64(1))
    x = np.tile(X0, (n, 1))
    noise = np.empty((n, 3))
    s = np.sqrt(2 * D * DT)
    for _ in range(STEPS):
        rng.standard_normal(out=noise)
        noise *= s
        x *= 1 - K * DT
        x[:, 2] -= G * DT
        x += noise
    return x


def sdeint_peer(n: int) -> np.ndarray:
    import sdeint

    tspan = np.linspace(0.0, STEPS * DT, STEPS + 1)
    b = np.sqrt(2 * D) * np.eye(3)
    out = np.empty((n, 3))
    for i in range(n):  # sdeint integrates one path per call
        out[i] = sdeint.itoEuler(lambda x, t: -K * x + FORCE, lambda x, t: b, X0, tspan)[-1]
    return out


def torchsde_peer(n: int) -> np.ndarray:
    import torch
    import torchsde

    torch.set_num_threads(1)

    class SDE(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return -K * y + torch.tensor(FORCE, dtype=y.dtype)

        def g(self, t, y):
            return torch.full_like(y, np.sqrt(2 * D))

    y0 = torch.tensor(np.tile(X0, (n, 1)), dtype=torch.float64)
    ts = torch.tensor([0.0, STEPS * DT], dtype=torch.float64)
    with torch.no_grad():
        ys = torchsde.sdeint(SDE(), y0, ts, method="euler", dt=DT)
    return ys[-1].numpy()


def diffrax_peer(n: int) -> np.ndarray:
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    drift = diffrax.ODETerm(lambda t, y, args: -K * y + jnp.asarray(FORCE))

    def one(key):
        bm = diffrax.UnsafeBrownianPath(shape=(3,), key=key)
        terms = diffrax.MultiTerm(drift, diffrax.ControlTerm(lambda t, y, args: jnp.sqrt(2 * D) * jnp.eye(3), bm))
        sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, STEPS * DT, DT, jnp.asarray(X0),
                                  saveat=diffrax.SaveAt(t1=True), max_steps=STEPS + 1,
                                  adjoint=diffrax.ForwardMode())
        return sol.ys[-1]

    keys = jax.random.split(jax.random.PRNGKey(1), n)
    return np.asarray(jax.jit(jax.vmap(one))(keys))


def generator_only(n: int) -> None:
    """ib_physics' generator alone: 3 normals per particle-step, no SDE arithmetic."""
    from ib_physics.random import normals_checksum
    from ib_physics.particles._kernels import LANES

    normals_checksum(np.uint64(12345), np.uint64(678), n, 3 * STEPS, LANES)


PEERS: dict[str, tuple[Callable[[int], np.ndarray | None], float]] = {
    # name: (function, fraction of N it is run on: slow peers get smaller ensembles)
    "ib_physics (fused numba kernel, Philox + ziggurat)": (ib_physics_engine, 1.0),
    "numpy in-place loop, PCG64": (numpy_loop, 1.0),
    "torchsde (euler, diagonal)": (torchsde_peer, 0.1),
    "diffrax (Euler, vmap, UnsafeBrownianPath)": (diffrax_peer, 0.1),
    "sdeint (itoEuler, one path per call)": (sdeint_peer, 0.001),
}


def _cpu(fn: Callable[[int], object], n: int) -> tuple[float, object]:
    t0 = time.process_time()
    out = fn(n)
    return time.process_time() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    n = args.particles
    print(f"S1, N = {n:,}, {STEPS} steps, float64, one core; machine: {platform.machine()} "
          f"{platform.processor() or ''} {os.cpu_count()} logical CPUs, Python {platform.python_version()}")
    available = {}
    for name, (fn, frac) in PEERS.items():
        m = max(1, int(n * frac))
        try:
            t0 = time.perf_counter()
            fn(min(m, 16))  # warm-up: imports and compilation, reported separately
            available[name] = (fn, m, time.perf_counter() - t0)
        except ImportError as exc:
            print(f"  skipped {name}: {exc.name or exc} not installed (pip install '.[bench]')")
        except Exception as exc:  # a peer that fails on this machine is reported, not fatal
            print(f"  skipped {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    baseline = "numpy in-place loop, PCG64"
    rates: dict[str, list[float]] = {name: [] for name in available}
    errors: dict[str, tuple[float, float]] = {}
    gen_rates = []
    for _ in range(args.pairs):
        for name, (fn, m, _) in available.items():
            cpu, out = _cpu(fn, m)
            rates[name].append(m * STEPS / cpu)
            x = np.asarray(out)
            errors[name] = (float(np.max(np.abs(x.mean(0) - EXACT_MEAN))), float(np.max(np.abs(x.var(0) - EXACT_VAR))))
        cpu, _ = _cpu(generator_only, n)
        gen_rates.append(n * 3 * STEPS / cpu)
    base = statistics.median(rates[baseline])
    print("\n| method | N | M particle-steps / CPU-s | vs numpy | max error mean | max error var | warm-up s |")
    print("|---|---|---|---|---|---|---|")
    for name, (_, m, warm) in available.items():
        r = statistics.median(rates[name])
        em, ev = errors[name]
        print(f"| {name} | {m:,} | {r / 1e6:.2f} | {r / base:.2f}x | {em:.1e} | {ev:.1e} | {warm:.1f} |")
    gen = statistics.median(gen_rates)
    ours = statistics.median(rates[next(iter(available))])
    print(f"\ngenerator alone: {gen / 1e6:.1f} M normals / CPU-s -> ceiling {gen / 3e6:.1f} M particle-steps/s in 3D; "
          f"the engine reaches {ours / (gen / 3):.0%} of it.")
    print(f"sampling error of the mean at N = {n:,}: ~{np.sqrt(EXACT_VAR / n):.1e}")


if __name__ == "__main__":
    main()
