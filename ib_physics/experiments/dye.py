"""A drop of dye in a glass of water: particles and density tell the same story.

Dye particles sink (Stokes) and spread (Stokes–Einstein) in a glass with a
reflecting side wall and bottom. The particle view moves N particles in 3D; the
density view solves the axisymmetric Fokker–Planck equation in (r, z). Both start
from the same drop (a ball on the axis: uniform positions, exact cell averages)
and are compared at common output times (:func:`ib_physics.compare`). One HDF5
file holds the inputs, the derived physics, both views (reduced to what the
figures need) and the metrics; :func:`ib_physics.experiments.dye_plots.plot_dye`
redraws every figure from it.

Random numbers: the paths use the seed's main key (particle ``i``'s path depends
only on ``(seed, i)``); the drop's shape uses the independent key of
``SeedSequence(seed, spawn_key=(1,))``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.special import ndtr

from .. import io
from ..compare import compare, compare_sample, grid_coordinates
from ..density import Grid, solve_fokker_planck
from ..density.result import DensityResult, write_density_result
from ..domains import Cylinder
from ..dynamics import Dynamics
from ..particles import ParticleResult, simulate
from ..random import standard_normals
from .dye_config import DyeConfig, DyePhysics

__all__ = ["DyeOutput", "run_dye", "drop_positions", "drop_density", "dye_dynamics", "continuity_region",
           "SIDE_VIEW_BINS", "SAMPLE_SIZE"]

#: Bins across the glass in the side views (the picture's resolution).
SIDE_VIEW_BINS = 160
#: Particles whose positions are stored at every frame (dots in the figures).
SAMPLE_SIZE = 5000
#: Ensemble sizes of the convergence figure: this many, geometric from 300 to N.
CONVERGENCE_SIZES = 9


@dataclass(frozen=True)
class DyeOutput:
    """What :func:`run_dye` wrote and measured."""

    data: Path
    figures: tuple[Path, ...]
    final_l1: float
    final_floor: float
    seconds: float


def glass_of(config: DyeConfig) -> Cylinder:
    return Cylinder(config.glass_radius_um, config.glass_height_um, top=config.glass_top)


def dye_dynamics(config: DyeConfig, physics: DyePhysics | None = None) -> Dynamics:
    """Overdamped Langevin dynamics of one dye particle: buoyant weight, Stokes mobility, D = μ k T."""
    ph = physics or config.physics()
    return Dynamics(force=[0.0, 0.0, -ph.buoyant_weight], mobility=ph.mobility, diffusion=ph.diffusion)


def drop_positions(config: DyeConfig) -> np.ndarray:
    """Uniform positions in the drop, shape (N, 3), from the seed's spawned key.

    Direction from three normals, radius from the fourth through the normal CDF
    (u^(1/3) makes the ball uniform).
    """
    sequence = np.random.SeedSequence(config.seed, spawn_key=(1,))
    g = standard_normals(sequence, particles=config.particles, draws=4)
    direction = g[:, :3] / np.linalg.norm(g[:, :3], axis=1)[:, None]
    radius = config.drop_radius_um * np.cbrt(ndtr(g[:, 3]))
    x = direction * radius[:, None]
    x[:, 2] += config.drop_height_um
    return x


def drop_density(grid: Grid, centre_height: float, radius: float) -> np.ndarray:
    """Cell averages of a uniform ball on the glass's axis (unit mass), shape ``grid.shape``.

    The ball's section at height z is a disk of radius² ρ² = a² − (z − z0)²; ring
    [r0, r1] holds π (clip(ρ², r0², r1²) − r0²) of it. Between the heights where ρ
    crosses a ring edge that is a quadratic in z, so 3-point Gauss–Legendre on
    those pieces integrates it exactly.
    """
    r_e, z_e = grid.edges
    nodes, weights = np.polynomial.legendre.leggauss(3)
    inside = np.zeros(grid.shape)
    half_chords = np.sqrt(np.clip(radius**2 - r_e**2, 0.0, None))
    kinks = np.concatenate([centre_height - half_chords, centre_height + half_chords])
    for j in range(grid.shape[1]):
        za, zb = max(z_e[j], centre_height - radius), min(z_e[j + 1], centre_height + radius)
        if zb <= za:
            continue
        cuts = np.unique(np.concatenate([[za, zb], kinks[(kinks > za) & (kinks < zb)]]))
        lo, hi = cuts[:-1, None], cuts[1:, None]
        z = (0.5 * (lo + hi) + 0.5 * (hi - lo) * nodes).ravel()
        w = (0.5 * (hi - lo) * weights).ravel()
        rho2 = np.maximum(radius**2 - (z - centre_height) ** 2, 0.0)
        area = np.pi * (np.clip(rho2[None, :], r_e[:-1, None] ** 2, r_e[1:, None] ** 2) - r_e[:-1, None] ** 2)
        inside[:, j] = area @ w
    p = inside / grid.volumes()
    return p / grid.integrate(p)


def continuity_region(config: DyeConfig, grid: Grid) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The closed contour of the continuity picture: a cylinder r < r_c, z_lo < z < z_hi around the drop,
    snapped to cell faces. Returns the cell mask and (r_c, z_lo, z_hi)."""
    r_e, z_e = grid.edges
    a, z0 = config.drop_radius_um, config.drop_height_um
    i_r = int(np.clip(np.argmin(np.abs(r_e - 2 * a)), 1, grid.shape[0]))
    j_lo = int(np.clip(np.argmin(np.abs(z_e - (z0 - 2 * a))), 0, grid.shape[1] - 1))
    j_hi = int(np.clip(np.argmin(np.abs(z_e - (z0 + 2 * a))), j_lo + 1, grid.shape[1]))
    mask = np.zeros(grid.shape, dtype=bool)
    mask[:i_r, j_lo:j_hi] = True
    return mask, (float(r_e[i_r]), float(z_e[j_lo]), float(z_e[j_hi]))


def _checkpoint_path(out: Path, config: DyeConfig) -> Path:
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:12]
    return out / f".dye-{digest}.checkpoint.h5"


def _ranges_path(checkpoint: Path) -> Path:
    """Finished particle ranges of a run on an executor, beside the checkpoint."""
    return checkpoint.with_name(checkpoint.name.replace(".checkpoint", ".ranges"))


def _side_edges(config: DyeConfig) -> tuple[np.ndarray, np.ndarray]:
    r, h = config.glass_radius_um, config.glass_height_um
    n_z = max(8, int(round(SIDE_VIEW_BINS * h / (2 * r))))
    return np.linspace(-r, r, SIDE_VIEW_BINS + 1), np.linspace(0.0, h, n_z + 1)


def run_dye(config: DyeConfig | None = None, *, out: str | Path = "out",
            progress: bool | Callable[[int, int], None] = True, figures: bool = True, animation: bool = True,
            log: Callable[[str], None] | None = None, executor: Any = None,
            checkpoint_interval: float = 60.0) -> DyeOutput:
    """Run both views, compare them, write ``dye.h5`` and the figures into ``out``.

    Parameters
    ----------
    config : DyeConfig, optional
        Settings (default: ``DyeConfig()``).
    out : path
        Output directory (created).
    progress : bool or callable
        Progress bars, or ``progress(done, total)`` for the particle run.
    figures, animation : bool
        Draw the figures / the animation after writing the data.
    log : callable, optional
        Receives one line per stage (default: nothing).
    checkpoint_interval : float
        Seconds between checkpoints of the particle run (a killed run loses at most this much).
    executor : concurrent.futures.Executor, dask.distributed.Client or int, optional
        Run the particles in ranges there (:func:`~ib_physics.parallel.simulate_ensemble`): the
        same numbers as in one process. Default: this process's threads.

    Ctrl-C during the particle run saves a checkpoint beside the output (named by
    the settings' hash) and re-raises; running again with the same settings
    resumes from it and gives bitwise the same numbers. ``dye.h5`` is written
    atomically: an interrupted run leaves the previous file or none.
    """
    config = DyeConfig() if config is None else config
    if not isinstance(config, DyeConfig):
        raise TypeError(f"`config` must be a DyeConfig, got {type(config).__name__}.")
    say = log or (lambda _: None)
    started = time.perf_counter()
    out = Path(out)
    c = config
    physics = c.physics()
    say(physics.summary())
    glass = glass_of(c)
    dynamics = dye_dynamics(c, physics)
    n_dense = (c.frames - 1) * c.density_per_frame + 1
    t_dense = np.linspace(0.0, c.duration_s, n_dense)
    frame_idx = np.arange(c.frames) * c.density_per_frame
    t_frames = t_dense[frame_idx]
    out.mkdir(parents=True, exist_ok=True)

    x0 = drop_positions(c)
    checkpoint = _checkpoint_path(out, c)
    say(f"particles: {c.particles:,} in 3D, {int(round(c.duration_s / c.dt_s)):,} steps of {c.dt_s:g} s")
    t_p = time.perf_counter()
    if executor is None:
        parts = simulate(dynamics, x0, (0.0, c.duration_s), dt=c.dt_s, domain=glass, t_eval=t_frames, seed=c.seed,
                         store_positions=True, tracers=c.tracers, trail_every=1, checkpoint=checkpoint,
                         checkpoint_interval=checkpoint_interval, progress=progress)
    else:
        from ..parallel import simulate_ensemble

        parts = simulate_ensemble(dynamics, x0, (0.0, c.duration_s), dt=c.dt_s, domain=glass, t_eval=t_frames,
                                  seed=c.seed, store_positions=True, per_particle=True, tracers=c.tracers,
                                  trail_every=1, executor=executor,
                                  checkpoint=_ranges_path(checkpoint),
                                  progress=bool(progress))
    particle_seconds = time.perf_counter() - t_p

    say(f"density: {c.grid_r} x {c.grid_z} axisymmetric cells")
    grid = Grid(glass, (c.grid_r, c.grid_z))
    t_d = time.perf_counter()
    p0 = drop_density(grid, c.drop_height_um, c.drop_radius_um)
    dense = solve_fokker_planck(dynamics, grid, p0, (0.0, c.duration_s), t_eval=t_dense,
                                progress=bool(progress) and not callable(progress))
    density_seconds = time.perf_counter() - t_d
    density = dense.select(frame_idx)

    say("comparing the views")
    cmp = compare(parts, density)
    if cmp.t.size != c.frames:
        raise RuntimeError("particle and density output times disagree; this is a bug.")
    sizes, l1_n, floor_n, slope = _convergence(parts, density)
    region, (r_c, z_lo, z_hi) = continuity_region(c, grid)
    mass_dense = dense.mass_in(region)
    flux_dense = dense.flux_out_of(region)
    coords = [grid_coordinates(grid, x) for x in parts.positions]
    inside_counts = np.array([np.count_nonzero((rz[:, 0] < r_c) & (rz[:, 1] > z_lo) & (rz[:, 1] < z_hi))
                              for rz in coords])
    rz_counts = np.array([np.histogramdd(rz[np.all(np.isfinite(rz), axis=1)], bins=grid.edges)[0]
                          for rz in coords]).astype(np.int32)
    x_edges, z_edges = _side_edges(c)
    side_counts = np.array([np.histogram2d(x[:, 0], x[:, 2], bins=(x_edges, z_edges))[0]
                            for x in parts.positions]).astype(np.int32)
    n_sample = min(SAMPLE_SIZE, c.particles)

    data = out / "dye.h5"
    with io.atomic_h5(data) as f:
        f.attrs["experiment"] = "dye"
        io.write_json_attr(f, "config", dataclasses.asdict(c))
        io.write_json_attr(f, "physics", dataclasses.asdict(physics))
        io.write_json_attr(f, "timings", {"particles_s": particle_seconds, "density_s": density_seconds,
                                          "particle_steps_per_s": parts.diagnostics.get("particle_steps_per_s")})
        f.attrs["seed"] = c.seed
        g = f.create_group("particles")
        io.write_json_attr(g, "seed", parts.seed)
        io.write_arrays(g, {
            "t": parts.t, "survival": parts.survival, "count": parts.count, "mean": parts.mean,
            "covariance": parts.covariance, "rz_counts": rz_counts, "side_counts": side_counts,
            "side_x_edges": x_edges, "side_z_edges": z_edges,
            "sample": parts.positions[:, :n_sample].astype(np.float32), "initial_sample": x0[:n_sample],
            "tracer_indices": parts.tracer_indices, "trail_t": parts.trail_t, "trails": parts.trails,
            "inside_region": inside_counts,
        })
        write_density_result(f.create_group("density"), density)
        m = f.create_group("metrics")
        io.write_arrays(m, {
            "t": cmp.t, "l1": cmp.l1, "l1_floor": cmp.l1_floor, "ks_statistic": cmp.ks_statistic,
            "ks_pvalue": cmp.ks_pvalue, "wasserstein": cmp.wasserstein, "mean_particles": cmp.mean_particles,
            "mean_standard_error": cmp.mean_standard_error, "mean_density": cmp.mean_density,
            "convergence_sizes": sizes, "convergence_l1": l1_n, "convergence_floor": floor_n,
        })
        m.attrs["convergence_slope"] = slope
        k = f.create_group("continuity")
        k.attrs["region"] = np.array([r_c, z_lo, z_hi])
        io.write_arrays(k, {"t": t_dense, "mass_in": mass_dense, "flux_out": flux_dense,
                            "dmass_dt": np.gradient(mass_dense, t_dense), "region_mask": region})
    checkpoint.unlink(missing_ok=True)
    _ranges_path(checkpoint).unlink(missing_ok=True)
    say(f"wrote {data}: distance at t = {cmp.t[-1]:g} s is {cmp.l1[-1]:.4f} "
        f"(sampling floor {cmp.l1_floor[-1]:.4f}, ratio {cmp.ratio_to_floor[-1]:.2f})")
    drawn: tuple[Path, ...] = ()
    if figures:
        from .dye_plots import plot_dye

        drawn = tuple(plot_dye(data, out, animation=animation))
    return DyeOutput(data=data, figures=drawn, final_l1=float(cmp.l1[-1]), final_floor=float(cmp.l1_floor[-1]),
                     seconds=time.perf_counter() - started)


def _convergence(parts: ParticleResult, density: DensityResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Distance at the last time for the first n particles (independent samples of size n)."""
    n = parts.n_particles
    low = min(300, n)
    sizes = np.unique(np.geomspace(low, n, CONVERGENCE_SIZES).round().astype(np.int64))
    grid = density.grid
    mass0 = float(density.mass[0] + density.absorbed[0].sum())
    rows = [compare_sample(parts.positions[-1][:s], grid, density.p[-1], n_started=int(s), mass0=mass0)
            for s in sizes]
    l1 = np.array([r.l1 for r in rows])
    floor = np.array([r.l1_floor for r in rows])
    slope = float(np.polyfit(np.log(sizes), np.log(l1), 1)[0]) if sizes.size >= 2 else float("nan")
    return sizes, l1, floor, slope
