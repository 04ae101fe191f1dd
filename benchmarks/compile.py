"""What a newcomer waits for: the first call of each engine path in a fresh environment (Numba
compiles its kernels) and the same call in a second process (kernels loaded from the cache).

Each measurement is a new Python process with its own empty Numba cache directory, so nothing
compiled by an earlier run (or by the package's own cache) is reused; the second process shares
that directory. Import time is reported apart from the first call.

    python benchmarks/compile.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

PATHS = {
    "particles, affine in free space (OU + gravity, 3D)": """
        import ib_physics as ib
        from ib_physics.potentials import ConstantForce, Harmonic
        dyn = ib.Dynamics(potential=Harmonic(1.0) + ConstantForce([0, 0, -1.0]), diffusion=1.0)
        ib.simulate(dyn, [1.0, 0.0, 0.0], (0, 0.01), dt=1e-3, n_particles=100, seed=1)
    """,
    "particles, affine in a box (absorbing face, bridge)": """
        import ib_physics as ib
        from ib_physics.potentials import Harmonic
        box = ib.Box(-2.0, 1.0, boundaries=[("reflecting", "absorbing")])
        ib.simulate(ib.Dynamics(potential=Harmonic(1.0), diffusion=0.5), [-1.0], (0, 0.01), dt=1e-3,
                    n_particles=100, seed=1, domain=box)
    """,
    "particles, general in free space (2D double well)": """
        import ib_physics as ib
        from ib_physics.potentials import DoubleWell, Harmonic
        dyn = ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 4.0]), diffusion=0.5)
        ib.simulate(dyn, [1.0, 0.0], (0, 0.01), dt=1e-3, n_particles=100, seed=1)
    """,
    "particles, general (double well, box, bridge)": """
        import ib_physics as ib
        from ib_physics.potentials import DoubleWell
        dyn = ib.Dynamics(potential=DoubleWell(1.0), diffusion=0.5)
        box = ib.Box(-2.0, 1.0, boundaries=[("reflecting", "absorbing")])
        ib.simulate(dyn, [-1.0], (0, 0.01), dt=1e-3, n_particles=100, seed=1, domain=box)
    """,
    "density, 1D (exact in time)": """
        import ib_physics as ib
        from ib_physics.potentials import DoubleWell
        grid = ib.Grid(ib.Box(-2.0, 2.0), 200)
        ib.solve_fokker_planck(ib.Dynamics(potential=DoubleWell(1.0), diffusion=0.5), grid,
                               ib.gaussian_density(grid, 0.5, 0.2), (0, 1.0))
    """,
    "density, coupled 2D (BDF2, split solver)": """
        import numpy as np
        import ib_physics as ib
        from ib_physics.potentials import Tabulated
        g = np.linspace(-2.5, 2.5, 65)
        x, y = np.meshgrid(g, g, indexing="ij")
        dyn = ib.Dynamics(potential=Tabulated((x**2 - 1)**2 + y**2 + 0.8*x*y, [-2.5]*2, [2.5]*2), diffusion=0.5)
        grid = ib.Grid(ib.Box([-2.5]*2, [2.5]*2), (160, 160))
        ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, [0.5, 0.0], [0.3, 0.3]), (0, 0.05))
    """,
    "training (Trainer, 2 replicas, 3 epochs)": """
        from ib_physics.learning import Architecture, Trainer, ib_dataset
        data = ib_dataset()
        Trainer(arch=Architecture(), x=data.x, y=data.y, replicas=2, seed=0).run(3)
    """,
    "information (binning and KDE)": """
        import numpy as np
        from ib_physics.learning import binned_information, kde_information
        t = np.random.default_rng(0).uniform(-1, 1, (200, 4)); y = np.arange(200) % 2
        binned_information(t, y); kde_information(t, y)
    """,
}

_DRIVER = """
import time
t0 = time.perf_counter()
import ib_physics
t1 = time.perf_counter()
{body}
t2 = time.perf_counter()
print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}}")
"""


def _run(body: str, cache: str) -> tuple[float, float]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONDONTWRITEBYTECODE="1")
    code = _DRIVER.format(body=textwrap.indent(textwrap.dedent(body), ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    imported, call = (float(v) for v in out.stdout.split()[-2:])
    return imported, call


def main() -> None:
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; wall seconds, each a fresh process")
    print("| path | import s | first call, empty cache, s | same call from the cache, s |")
    print("|---|---|---|---|")
    for name, body in PATHS.items():
        with tempfile.TemporaryDirectory() as cache:
            imported, fresh = _run(body, cache)
            _, cached = _run(body, cache)
        print(f"| {name} | {imported:.2f} | {fresh:.1f} | {cached:.2f} |")


if __name__ == "__main__":
    main()
