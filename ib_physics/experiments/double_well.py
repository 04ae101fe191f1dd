"""Brownian particles hopping between the wells of a 2D double-well potential.

The particle engine's demonstration: particles start in the left well of
U = h((x/m)^2 - 1)^2 + k y^2 / 2, spread, and hop over the barrier until the
x-marginal reaches the Boltzmann density exp(-U/D) (mobility 1). Output: one
HDF5 file (the full :class:`~ib_physics.ParticleResult` plus the configuration)
and one figure with trails over the potential, marginals against the exact
stationary density, and the right-well occupation against time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ._config import build_config
from .._validation import check_finite_positive, check_int_range
from ..dynamics import Dynamics
from ..particles import ParticleResult, simulate
from ..particles.result import read_particle_result, write_particle_result
from ..potentials import DoubleWell, Harmonic

__all__ = ["DoubleWellConfig", "DoubleWellOutput", "run_double_well", "plot_double_well"]


@dataclass(frozen=True, kw_only=True)
class DoubleWellConfig:
    """Settings of the double-well demonstration (defaults: about a minute on 2 cores).

    Parameters
    ----------
    particles : int
        Ensemble size.
    barrier, minimum : float
        Barrier height h and well position m.
    stiffness_y : float
        Harmonic confinement across the wells.
    diffusion : float
        D (= k T at mobility 1).
    duration, dt : float
        Simulated time and step.
    outputs : int
        Output times (evenly spaced, including 0).
    tracers : int
        Particles whose trails are kept.
    seed : int
    """

    particles: int = 100_000
    barrier: float = 1.0
    minimum: float = 1.0
    stiffness_y: float = 4.0
    diffusion: float = 0.5
    duration: float = 16.0
    dt: float = 5e-3
    outputs: int = 41
    tracers: int = 3
    seed: int = 2024

    def __post_init__(self) -> None:
        check_int_range(self.particles, "particles", 1, 2**32 - 1)
        for name in ("barrier", "minimum", "stiffness_y", "diffusion", "duration", "dt"):
            check_finite_positive(getattr(self, name), name)
        check_int_range(self.outputs, "outputs", 2)
        check_int_range(self.tracers, "tracers", 0, self.particles)
        check_int_range(self.seed, "seed", 0)
        steps = self.duration / self.dt
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps) or round(steps) < 1:
            raise ValueError(f"`duration` must be a whole number of steps dt={self.dt}, got {self.duration}.")

    def output_times(self) -> np.ndarray:
        """``outputs`` times from 0 to ``duration``, as evenly spaced as the step grid allows (distinct)."""
        steps = int(round(self.duration / self.dt))
        return np.unique(np.round(np.linspace(0, steps, self.outputs)).astype(np.int64)) * self.dt

    def dynamics(self) -> Dynamics:
        return Dynamics(potential=DoubleWell(self.barrier, self.minimum) + Harmonic([0.0, self.stiffness_y]),
                        diffusion=self.diffusion)

    def boltzmann_x(self, x: np.ndarray) -> np.ndarray:
        """Exact stationary x-marginal exp(-U(x)/D), normalised."""
        grid = np.linspace(-4 * self.minimum, 4 * self.minimum, 8001)
        u = DoubleWell(self.barrier, self.minimum).value(grid[:, None])
        w = np.exp(-(u - u.min()) / self.diffusion)
        z = np.trapezoid(w, grid)
        xu = DoubleWell(self.barrier, self.minimum).value(np.asarray(x, float)[:, None])
        return np.exp(-(xu - u.min()) / self.diffusion) / z


@dataclass(frozen=True)
class DoubleWellOutput:
    """Paths of what :func:`run_double_well` wrote, and the result."""

    data: Path
    figure: Path
    result: ParticleResult


def run_double_well(config: DoubleWellConfig = DoubleWellConfig(), *, out: str | Path = "out",
                    progress: bool = True, executor: Any = None) -> DoubleWellOutput:
    """Simulate, write ``double_well.h5`` and ``double_well.png`` into ``out``.

    With an ``executor`` (a ``concurrent.futures.Executor``, a ``dask.distributed.Client`` or a
    number of local worker processes) the ensemble runs in ranges there and only its reductions
    travel back (:func:`~ib_physics.parallel.simulate_ensemble`): the same numbers as in one process.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c = config
    edges = [np.linspace(-2.5 * c.minimum, 2.5 * c.minimum, 101), np.linspace(-2.0, 2.0, 41)]
    options = dict(dt=c.dt, n_particles=c.particles, seed=c.seed, t_eval=c.output_times(),
                   store_positions=False, histogram_edges=edges, tracers=c.tracers, trail_every=8, progress=progress)
    if executor is None:
        result = simulate(c.dynamics(), [-c.minimum, 0.0], (0.0, c.duration), **options)
    else:
        from ..parallel import simulate_ensemble

        result = simulate_ensemble(c.dynamics(), [-c.minimum, 0.0], (0.0, c.duration), executor=executor, **options)
    data = out / "double_well.h5"
    with io.atomic_h5(data) as f:
        f.attrs["experiment"] = "double_well"
        io.write_json_attr(f, "config", dataclasses.asdict(c))
        write_particle_result(f.create_group("particles"), result)
    figure = plot_double_well(data, out / "double_well.png")
    return DoubleWellOutput(data=data, figure=figure, result=result)


def right_well_fraction(result: ParticleResult) -> np.ndarray:
    """Fraction of particles with x > 0 at each output time, from the histogram."""
    hist = result.histogram
    centres = hist.centres[0]
    counts = hist.counts.sum(axis=2)
    return counts[:, centres > 0].sum(axis=1) / hist.n_particles


def plot_double_well(data: str | Path, figure: str | Path) -> Path:
    """Draw the demonstration's figure from its HDF5 file."""
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotting import plot_marginals, plot_trails, plot_well_occupation

    with h5py.File(data, "r") as f:
        io.check_schema(f, data)
        config = DoubleWellConfig(**io.read_json_attr(f, "config"))
        result = read_particle_result(f["particles"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), constrained_layout=True)
    gx, gy = np.meshgrid(np.linspace(-2.2, 2.2, 200), np.linspace(-1.5, 1.5, 150))
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    gu = config.dynamics().potential.value(pts).reshape(gx.shape)
    plot_trails(result, ax=axes[0], background=(gx, gy, np.minimum(gu, 3 * config.barrier)))
    axes[0].set_title(f"{len(result.tracer_indices)} particle trails over U(x, y)")
    axes[0].set_aspect("equal")
    picks = np.unique(np.geomspace(1, len(result.t) - 1, 6).astype(int))
    plot_marginals(result, axis=0, times=picks, ax=axes[1], reference=config.boltzmann_x,
                   reference_label="exp(-U/D), exact")
    peak = float(config.boltzmann_x(np.array([config.minimum]))[0])
    axes[1].set_ylim(0, 2.6 * peak)
    axes[1].set_title(f"x-marginal of {result.n_particles:,} particles")
    frac = right_well_fraction(result)
    plot_well_occupation(result.t, frac, ax=axes[2], equilibrium=0.5)
    axes[2].set_title("hopping over the barrier")
    fig.suptitle(f"Double well: h = {config.barrier}, D = {config.diffusion}, "
                 f"dt = {config.dt}, {result.diagnostics['particle_steps_per_s'] / 1e6:.1f} M particle-steps/s")
    figure = Path(figure)
    fig.savefig(figure, dpi=110)
    plt.close(fig)
    return figure


def config_from_mapping(values: dict[str, Any]) -> DoubleWellConfig:
    """A config from a mapping, refusing unknown keys by name."""
    return build_config(DoubleWellConfig, values)
