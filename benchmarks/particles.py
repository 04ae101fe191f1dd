"""Benchmark S1 (BENCHMARKS.md): 3D overdamped Langevin in a harmonic trap with gravity, and S2: the
general (nonlinear) paths.

S1: dx = (-k x + (0, 0, -g)) dt + sqrt(2 D) dW, k = g = D = 1, x0 = (1, -0.5, 2), 1000 steps of
dt = 1e-3, final positions only, float64. Prints particle-steps per CPU-second on one core for
ib_physics and for each peer measured in the same run (alternating A B A B, median of pairs), the
ratio to the NumPy in-place PCG64 loop, and each method's error against the exact moments at T = 1.

S2 (the problems every nonlinear potential takes), each beside the NumPy loop of the same update
(PCG64 normals, the force evaluated in NumPy, in place): the 2D double well U = (x² - 1)² + 2y²
(D = 0.5, 2·10⁵ particles × 500 steps); the same well in a medium rotating at omega = 2 (flow
u = omega (-y, x), a drift that is not a gradient, 2·10⁵ × 500); the coupled tabulated potential U = (x² - 1)² + y² + 0.8xy on
129² nodes in a reflecting box [-2.5, 2.5]² (bilinear force, 10⁵ × 500); a Kramers escape in 1D
(U = (x² - 1)², D = 0.5, reflecting at -3, absorbing at 1 with the Brownian-bridge test, until
t = 40; the NumPy loop drops absorbed particles every step). Rates count living particle-steps;
"per normal" compares each with S1's affine path per normal drawn.

    python benchmarks/particles.py [--particles 100000] [--pairs 3] [--skip-s1] [--skip-s2]
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


# --- S2: the general paths -------------------------------------------------------------------------

S2_DT = 1e-3
TAB_LO, TAB_HI, TAB_NODES = -2.5, 2.5, 129


def _tabulated_values() -> np.ndarray:
    g = np.linspace(TAB_LO, TAB_HI, TAB_NODES)
    x, y = np.meshgrid(g, g, indexing="ij")
    return (x**2 - 1) ** 2 + y**2 + 0.8 * x * y


def s2_double_well(engine: bool, n: int, steps: int = 500) -> tuple[np.ndarray, int]:
    d, x0 = 0.5, np.array([1.0, 0.0])
    if engine:
        import ib_physics as ib
        from ib_physics.potentials import DoubleWell, Harmonic

        dyn = ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 4.0]), diffusion=d)
        res = ib.simulate(dyn, x0, (0.0, steps * S2_DT), dt=S2_DT, n_particles=n, seed=1, threads=1,
                          store_positions=False)
        return res.final_positions, n * steps
    rng = np.random.Generator(np.random.PCG64(1))
    x = np.tile(x0, (n, 1))
    noise = np.empty((n, 2))
    cube = np.empty(n)
    s = np.sqrt(2 * d * S2_DT)
    for _ in range(steps):
        rng.standard_normal(out=noise)
        noise *= s
        u = x[:, 0]
        np.multiply(u, u, out=cube)
        cube -= 1.0
        cube *= u
        cube *= -4.0 * S2_DT  # -dU/dx dt = -4 (x² - 1) x dt
        u += cube
        x[:, 1] *= 1.0 - 4.0 * S2_DT
        x += noise
    return x, n * steps


def s2_stirred(engine: bool, n: int, steps: int = 500) -> tuple[np.ndarray, int]:
    """The 2D double well in a medium rotating at omega = 2 (a drift that is not a gradient)."""
    d, x0, omega = 0.5, np.array([1.0, 0.0]), 2.0
    if engine:
        import ib_physics as ib
        from ib_physics.flows import Rotation
        from ib_physics.potentials import DoubleWell, Harmonic

        dyn = ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 4.0]), diffusion=d, flow=Rotation(omega))
        res = ib.simulate(dyn, x0, (0.0, steps * S2_DT), dt=S2_DT, n_particles=n, seed=1, threads=1,
                          store_positions=False)
        return res.final_positions, n * steps
    rng = np.random.Generator(np.random.PCG64(1))
    x = np.tile(x0, (n, 1))
    noise = np.empty((n, 2))
    fx = np.empty(n)
    fy = np.empty(n)
    s = np.sqrt(2 * d * S2_DT)
    for _ in range(steps):
        rng.standard_normal(out=noise)
        noise *= s
        u, v = x[:, 0], x[:, 1]
        np.multiply(u, u, out=fx)
        fx -= 1.0
        fx *= u
        fx *= -4.0  # -dU/dx = -4 (x² - 1) x
        fx -= omega * v  # the flow's x component, -omega y
        np.multiply(v, -4.0, out=fy)
        fy += omega * u
        fx *= S2_DT
        fy *= S2_DT
        u += fx
        v += fy
        x += noise
    return x, n * steps


def s2_tabulated(engine: bool, n: int, steps: int = 500) -> tuple[np.ndarray, int]:
    d, x0 = 0.5, np.array([1.0, -0.5])
    values = _tabulated_values()
    if engine:
        import ib_physics as ib
        from ib_physics.domains import Box
        from ib_physics.potentials import Tabulated

        pot = Tabulated(values, [TAB_LO] * 2, [TAB_HI] * 2)
        res = ib.simulate(ib.Dynamics(potential=pot, diffusion=d), x0, (0.0, steps * S2_DT), dt=S2_DT,
                          n_particles=n, seed=1, threads=1, store_positions=False,
                          domain=Box([TAB_LO] * 2, [TAB_HI] * 2))
        return res.final_positions, n * steps
    h = (TAB_HI - TAB_LO) / (TAB_NODES - 1)
    force = -np.stack(np.gradient(values, h, h, edge_order=2))  # the engine's tables: -grad U at the nodes
    fx, fy = force[0].ravel(), force[1].ravel()
    rng = np.random.Generator(np.random.PCG64(1))
    x = np.tile(x0, (n, 1))
    noise = np.empty((n, 2))
    s = np.sqrt(2 * d * S2_DT)
    for _ in range(steps):
        rng.standard_normal(out=noise)
        cell = (x - TAB_LO) / h
        i = np.clip(np.floor(cell).astype(np.int64), 0, TAB_NODES - 2)
        w = np.clip(cell - i, 0.0, 1.0)
        k = i[:, 0] * TAB_NODES + i[:, 1]
        w0, w1 = w[:, 0], w[:, 1]
        c00, c01, c10, c11 = (1 - w0) * (1 - w1), (1 - w0) * w1, w0 * (1 - w1), w0 * w1
        for col, table in ((0, fx), (1, fy)):
            f = c00 * table[k] + c01 * table[k + 1] + c10 * table[k + TAB_NODES] + c11 * table[k + TAB_NODES + 1]
            x[:, col] += f * S2_DT + s * noise[:, col]
        np.abs(x - TAB_LO, out=x)  # mirror at the lower faces, then at the upper ones
        x += TAB_LO
        np.subtract(2 * TAB_HI, x, out=cell)
        np.minimum(x, cell, out=x)
    return x, n * steps


def s2_kramers(engine: bool, n: int, t_end: float = 40.0) -> tuple[np.ndarray, int]:
    d, lo, hi, steps = 0.5, -3.0, 1.0, int(round(t_end / S2_DT))
    if engine:
        import ib_physics as ib
        from ib_physics.domains import Box
        from ib_physics.potentials import DoubleWell

        res = ib.simulate(ib.Dynamics(potential=DoubleWell(1.0), diffusion=d), np.array([-1.0]), (0.0, t_end),
                          dt=S2_DT, n_particles=n, seed=1, threads=1, store_positions=False,
                          domain=Box(lo, hi, boundaries=[("reflecting", "absorbing")]))
        fpt = res.first_passage_time
        exits = fpt[np.isfinite(fpt)]
        work = int(np.round(exits / S2_DT + 0.5).sum()) + int(res.alive.sum()) * steps
        return exits, work
    rng = np.random.Generator(np.random.PCG64(1))
    x = np.full(n, -1.0)
    s = np.sqrt(2 * d * S2_DT)
    exits, work = [], 0
    for k in range(steps):
        if x.size == 0:
            break
        work += x.size
        new = x - 4.0 * (x * x - 1.0) * x * S2_DT + s * rng.standard_normal(x.size)
        new = np.where(new < lo, 2 * lo - new, new)
        # Absorbed: crossed the face, or (Brownian bridge) crossed and came back within the step.
        gone = (new >= hi) | (rng.random(x.size) < np.exp(-np.maximum((hi - x) * (hi - new), 0.0) / (d * S2_DT)))
        exits.append(np.full(int(gone.sum()), (k + 0.5) * S2_DT))
        x = new[~gone]
    return np.concatenate(exits), work


S2_PROBLEMS = {
    "2D double well (DoubleWell + Harmonic)": (s2_double_well, 200_000, 2),
    "2D double well in a rotating medium (+ Rotation)": (s2_stirred, 200_000, 2),
    "2D tabulated, coupled, reflecting box": (s2_tabulated, 100_000, 2),
    "1D Kramers escape, absorbing face + bridge": (s2_kramers, 5_000, 1),
}


def s2(pairs: int, affine_per_normal: float | None) -> None:
    print("\nS2, general paths, one core, alternating pairs (median):")
    print("| problem | N | ib_physics M/s | NumPy loop M/s | vs NumPy | ib_physics per normal vs S1 affine | "
          "check |")
    print("|---|---|---|---|---|---|---|")
    for name, (fn, n, normals) in S2_PROBLEMS.items():
        fn(True, 128, 10)  # compile (or load from the cache) before timing
        ours, peer = [], []
        for _ in range(pairs):
            cpu, (a, work_a) = _cpu(lambda m: fn(True, m), n)
            ours.append(work_a / cpu)
            cpu, (b, work_b) = _cpu(lambda m: fn(False, m), n)
            peer.append(work_b / cpu)
        if a.ndim == 2:
            check = f"mean x {a[:, 0].mean():.3f} / {b[:, 0].mean():.3f}, var x {a[:, 0].var():.3f} / {b[:, 0].var():.3f}"
        else:
            check = f"MFPT {a.mean():.3f} / {b.mean():.3f} ({a.size} / {b.size} exits)"
        r, q = statistics.median(ours), statistics.median(peer)
        rel = f"{affine_per_normal / (r * normals):.2f}x the cost" if affine_per_normal else "n/a"
        print(f"| {name} | {n:,} | {r / 1e6:.1f} | {q / 1e6:.1f} | {r / q:.2f}x | {rel} | {check} |")


def _cpu(fn: Callable[[int], object], n: int) -> tuple[float, object]:
    t0 = time.process_time()
    out = fn(n)
    return time.process_time() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--skip-s1", action="store_true")
    parser.add_argument("--skip-s2", action="store_true")
    args = parser.parse_args()
    affine_per_normal = s1(args) if not args.skip_s1 else None
    if not args.skip_s2:
        s2(args.pairs, affine_per_normal)


def s1(args: argparse.Namespace) -> float:
    """S1 with every peer; returns ib_physics' normals per CPU-second (3 per particle-step)."""
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
    return 3 * ours


if __name__ == "__main__":
    main()
