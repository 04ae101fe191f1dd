"""Where Brownian motion comes from: big disks kicked by many small ones, measured and fed to both engines.

The hard-disk gas (exact event-driven dynamics) gives the big disks' trajectories;
from them the MSD and velocity autocorrelation give D (two ways) and the friction.
The measured D then drives the particle engine (overdamped Langevin) and the
density engine (Fokker–Planck), and the big disks' displacement distribution at
matched lags is compared across the three views.

Output: ``brownian.h5`` (settings, the measured transport, tracer trajectories,
snapshots of all disks, MSD/VACF, the three views and their distances) and the
figures ``brownian_trails.png``, ``brownian_msd.png``, ``brownian_views.png`` and
``brownian.gif`` (and ``.mp4`` with ffmpeg).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats

from .. import io
from ._config import build_config
from .._validation import as_bool, check_finite_positive, check_int_range
from ..collisions.disks import MAX_DISKS, MAX_RANDOM_AREA_FRACTION
from ..collisions import fit_transport, mean_squared_displacement, random_disks, record, velocity_autocorrelation

__all__ = ["BrownianConfig", "run_brownian", "plot_brownian", "config_from_mapping"]


@dataclass(frozen=True, kw_only=True)
class BrownianConfig:
    """Settings of ``ib-physics brownian`` (defaults: the classic picture, about a minute on 2 cores).

    Lengths in small-disk radii, masses in small-disk masses, energies in kT. ``lags``: the
    displacement lags of the three-view comparison (default: duration / 100 and duration / 10).
    """

    n_big: int = 5
    n_small: int = 800
    radius_big: float = 5.0
    radius_small: float = 1.0
    mass_big: float = 25.0
    mass_small: float = 1.0
    area_fraction: float = 0.3
    periodic: bool = True
    kT: float = 1.0
    duration: float = 20000.0
    sample_dt: float = 1.0
    frames: int = 120
    lags: tuple[float, ...] | None = None
    particles: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        check_int_range(self.n_big, "n_big", 1, MAX_DISKS)
        check_int_range(self.n_small, "n_small", 0, MAX_DISKS - self.n_big)
        for name in ("radius_big", "radius_small", "mass_big", "mass_small", "kT", "duration", "sample_dt"):
            check_finite_positive(getattr(self, name), name)
        fraction = check_finite_positive(self.area_fraction, "area_fraction")
        if not fraction <= MAX_RANDOM_AREA_FRACTION:
            raise ValueError(f"`area_fraction` must be in (0, {MAX_RANDOM_AREA_FRACTION}], got {self.area_fraction}.")
        as_bool(self.periodic, "periodic")
        check_int_range(self.frames, "frames", 2, 10_000)
        check_int_range(self.particles, "particles", 100, 2**32 - 1)
        check_int_range(self.seed, "seed", 0)
        # Default: a hundredth and a tenth of the run (200 and 2000 at the default duration).
        lags = (self.duration / 100, self.duration / 10) if self.lags is None else tuple(float(v) for v in self.lags)
        if not lags or any(not (0 < v <= self.duration / 4) for v in lags):
            raise ValueError(f"`lags` must be > 0 and <= duration / 4 ({self.duration / 4:g}), got {self.lags}.")
        object.__setattr__(self, "lags", lags)
        if self.duration / self.sample_dt < 100:
            raise ValueError("`duration` must hold at least 100 samples of `sample_dt`.")


def config_from_mapping(values: dict[str, Any]) -> BrownianConfig:
    """A config from a mapping, refusing unknown keys by name."""
    return build_config(BrownianConfig, values)


def _displacements(positions: np.ndarray, lag_samples: int) -> np.ndarray:
    """All displacements over ``lag_samples`` along each axis, from every origin and tracer (1D sample)."""
    d = positions[lag_samples:] - positions[:-lag_samples]
    return d.reshape(-1)


def _check_duration(system: Any, c: BrownianConfig) -> None:
    """Refuse, before the run, a duration too short to fit D: the MSD is fitted beyond ten velocity
    relaxation times and up to the largest lag (duration / 4). The relaxation time comes from a pilot
    run on a copy of the system (at most 400 samples; the run itself is unchanged)."""
    import copy

    pilot = record(copy.deepcopy(system), duration=min(c.duration, 400.0 * c.sample_dt), sample_dt=c.sample_dt)
    lags, acf = velocity_autocorrelation(pilot)
    below = np.flatnonzero(acf < acf[0] / np.e)
    tau = float(lags[below[0]]) if below.size else float(lags[-1])  # else a lower bound
    need = 40.0 * tau + 8.0 * c.sample_dt
    if c.duration < need:
        raise ValueError(f"`duration` {c.duration:g} is too short to fit D: the big disks' velocities relax over "
                         f"{'about' if below.size else 'more than'} {tau:g} time units, and the MSD is fitted beyond "
                         f"ten relaxation times within the largest lag (duration / 4); use a duration >= "
                         f"{need:.0f}.")


def run_brownian(config: BrownianConfig | None = None, *, out: str | Path = "out",
                 progress: bool = True, log: Callable[[str], None] | None = None) -> tuple[Path, list[Path]]:
    """Run the three views, write ``brownian.h5`` and the figures into ``out``."""
    import ib_physics as ib

    c = BrownianConfig() if config is None else config
    say = log or (lambda _: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    system = random_disks(n_big=c.n_big, n_small=c.n_small, radius_big=c.radius_big, radius_small=c.radius_small,
                          mass_big=c.mass_big, mass_small=c.mass_small, area_fraction=c.area_fraction,
                          kT=c.kT, periodic=c.periodic, seed=c.seed)
    say(f"{system.n} disks in a {system.box[0]:.1f} x {system.box[1]:.1f} box "
        f"({'periodic' if c.periodic else 'walls'}), area fraction {c.area_fraction}")
    system.run(50.0 * c.sample_dt)  # let the placement's correlations relax
    _check_duration(system, c)
    n_samples = int(round(c.duration / c.sample_dt))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=c.duration, desc="collisions", unit="time", bar_format="{l_bar}{bar}| t = {n:.0f} of "
                   "{total:.0f} [{elapsed}<{remaining}]")
    traj = record(system, duration=c.duration, sample_dt=c.sample_dt, snapshot_every=max(1, n_samples // c.frames),
                  progress=(lambda done, total: bar.update(done - bar.n)) if bar is not None else None)
    if bar is not None:
        bar.close()
    fit = fit_transport(traj)
    say(f"{int(traj.collisions[-1] - traj.collisions[0]):,} collisions; D = {fit.diffusion_msd:.4g} (MSD), {fit.diffusion_vacf:.4g} "
        f"(VACF); friction {fit.friction:.4g} (VACF decay), {fit.friction_einstein:.4g} (kT/D)")
    lags_t, msd = mean_squared_displacement(traj)
    _, vacf = velocity_autocorrelation(traj)
    # Three views of the displacement over each lag: hard disks, Langevin particles, Fokker–Planck density.
    d = fit.diffusion_msd
    dyn = ib.Dynamics(diffusion=d)
    t_eval = np.array((0.0,) + c.lags)
    parts = ib.simulate(dyn, 0.0, (0.0, c.lags[-1]), dt=min(c.lags) / 200.0, n_particles=c.particles,
                        seed=c.seed, t_eval=t_eval)
    half = 6.0 * np.sqrt(2 * d * c.lags[-1])
    grid = ib.Grid(ib.Box(-half, half), 1200)
    sigma0 = 0.5 * grid.spacing[0]
    dens = ib.solve_fokker_planck(dyn, grid, ib.gaussian_density(grid, 0.0, sigma0), (0.0, c.lags[-1]),
                                  t_eval=t_eval)
    views = {}
    for k, lag in enumerate(c.lags):
        m = int(round(lag / c.sample_dt))
        md = _displacements(traj.positions, m)
        width = np.sqrt(2 * d * lag)
        edges = np.linspace(-4.5 * width, 4.5 * width, 61)
        h_md = np.histogram(md, bins=edges, density=True)[0]
        h_p = np.histogram(parts.positions[k + 1, :, 0], bins=edges, density=True)[0]
        cdf_d = np.concatenate([[0.0], np.cumsum(dens.p[k + 1] * grid.volumes())])
        p_on_edges = np.diff(np.interp(edges, grid.edges[0], cdf_d)) / np.diff(edges)
        views[f"lag_{k}"] = {
            "lag": lag, "edges": edges, "hard_disks": h_md, "particles": h_p, "density": p_on_edges,
            "ks_hard_disks_vs_gaussian": stats.kstest(md / width, "norm").statistic,
            "ks_particles_vs_gaussian": stats.kstest(parts.positions[k + 1, :, 0] / width, "norm").statistic,
            "var_hard_disks": float(np.var(md)), "var_particles": float(np.var(parts.positions[k + 1, :, 0])),
            "var_density": float(np.sum(dens.p[k + 1] * grid.volumes() * grid.centres[0] ** 2)),
            "samples_hard_disks": int(md.size),
        }
    energy_drift = float(np.max(np.abs(traj.kinetic_energy - traj.kinetic_energy[0])) / traj.kinetic_energy[0])
    momentum = np.sum(system.mass[:, None] * system.v, axis=0)
    # Velocities of every small disk at the end, in units of sqrt(kT/m): standard normal when relaxed.
    small = system.radius < system.radius.max()
    scaled = (system.v[small] / np.sqrt(traj.kT / system.mass[small])[:, None]).ravel()
    ks_mb = stats.kstest(scaled, "norm")
    say(f"energy drift {energy_drift:.1e}; velocities vs Maxwell–Boltzmann: KS p = {ks_mb.pvalue:.3f}")
    data = out / "brownian.h5"
    with io.atomic_h5(data) as f:
        f.attrs["experiment"] = "brownian"
        io.write_json_attr(f, "config", dataclasses.asdict(c))
        io.write_json_attr(f, "transport", dataclasses.asdict(fit))
        f.attrs["box"] = system.box
        f.attrs["radius"] = np.array([c.radius_big, c.radius_small])
        g = f.create_group("trajectory")
        io.write_arrays(g, {"t": traj.t, "positions": traj.positions, "velocities": traj.velocities,
                            "kinetic_energy": traj.kinetic_energy, "collisions": traj.collisions,
                            "snapshot_t": traj.snapshot_t, "snapshots": traj.snapshots.astype(np.float32),
                            "radius": system.radius, "tracers": traj.tracers})
        g.attrs["kT"] = traj.kT
        g.attrs["energy_drift"] = energy_drift
        g.attrs["final_momentum"] = momentum
        g.attrs["maxwell_boltzmann_ks_pvalue"] = float(ks_mb.pvalue)
        io.write_arrays(g, {"final_small_velocities": scaled})
        g.attrs["tracer_mass"] = traj.tracer_mass
        a = f.create_group("analysis")
        io.write_arrays(a, {"lags": lags_t, "msd": msd, "vacf": vacf})
        v = f.create_group("views")
        for name, view in views.items():
            h = v.create_group(name)
            for key, value in view.items():
                if isinstance(value, np.ndarray):
                    h.create_dataset(key, data=value)
                else:
                    h.attrs[key] = value
    figures = plot_brownian(data, out)
    return data, figures


def plot_brownian(data: str | Path, out: str | Path, *, animation: bool = True) -> list[Path]:
    """Draw every figure of ``brownian.h5`` into ``out``."""
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import EllipseCollection

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(data, "r") as f:
        io.check_schema(f, data)
        c = BrownianConfig(**io.read_json_attr(f, "config"))
        fit = io.read_json_attr(f, "transport")
        box = f.attrs["box"][()]
        g = f["trajectory"]
        t, pos = g["t"][()], g["positions"][()]
        snap_t, snaps, radius = g["snapshot_t"][()], g["snapshots"][()], g["radius"][()]
        kT, mass = float(g.attrs["kT"]), float(g.attrs["tracer_mass"])
        scaled_v = g["final_small_velocities"][()]
        ks_p, drift = float(g.attrs["maxwell_boltzmann_ks_pvalue"]), float(g.attrs["energy_drift"])
        n_coll = int(g["collisions"][-1] - g["collisions"][0])
        lags, msd, vacf = f["analysis/lags"][()], f["analysis/msd"][()], f["analysis/vacf"][()]
        views = [{k: (v[()] if not isinstance(v, h5py.Group) else None) for k, v in f["views"][name].items()}
                 | dict(f["views"][name].attrs) for name in sorted(f["views"])]
    tracers = np.flatnonzero(radius == radius.max())
    colours = plt.cm.tab10(np.arange(tracers.size) % 10)
    paths = []

    def draw_disks(ax: Any, x: np.ndarray) -> None:
        small = radius < radius.max()
        ax.add_collection(EllipseCollection(2 * radius[small], 2 * radius[small], 0, units="x",
                                            offsets=x[small], offset_transform=ax.transData, facecolors="#9fb7d4",
                                            edgecolors="none", alpha=0.55))
        ax.add_collection(EllipseCollection(2 * radius[tracers], 2 * radius[tracers], 0, units="x",
                                            offsets=x[tracers], offset_transform=ax.transData,
                                            facecolors=colours, edgecolors="k", linewidths=0.8))

    def trail_segments(p: np.ndarray) -> np.ndarray:
        """Wrapped trail with breaks where it crosses a periodic face."""
        w = np.mod(p, box) if c.periodic else p.copy()
        jumps = np.any(np.abs(np.diff(w, axis=0)) > 0.5 * box, axis=1)
        w = w.astype(float)
        w[1:][jumps] = np.nan
        return w

    # 1. Trails over the box.
    fig, ax = plt.subplots(figsize=(7.2, 7.2), constrained_layout=True)
    stop = max(2, min(int(0.25 * len(t)), int(np.searchsorted(t, 2000.0))))
    for k in range(tracers.size):
        seg = trail_segments(pos[:stop, k])
        ax.plot(seg[:, 0], seg[:, 1], color=colours[k], lw=0.9)
    frame = int(np.argmin(np.abs(snap_t - t[stop - 1])))
    draw_disks(ax, snaps[frame])
    ax.set_xlim(0, box[0])
    ax.set_ylim(0, box[1])
    ax.set_aspect("equal")
    ax.set_title(f"{tracers.size} big disks among {radius.size - tracers.size} small ones: trails over "
                 f"t = 0…{t[stop - 1]:.0f}\n({n_coll:,} collisions in the whole run; "
                 f"{'periodic box' if c.periodic else 'walls'} {box[0]:.1f} x {box[1]:.1f})", fontsize=10)
    paths.append(out / "brownian_trails.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # 2. MSD: ballistic to diffusive, against the Langevin (Ornstein–Uhlenbeck velocity) curve.
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True)
    d, tau = fit["diffusion_msd"], fit["diffusion_msd"] * mass / kT
    lt = lags[1:]
    ax.loglog(lt, msd[1:], "k.", ms=3, label="big disks (hard-disk dynamics)")
    ax.loglog(lt, 4 * d * (lt - tau * (1 - np.exp(-lt / tau))), "-", color="#c0392b",
              label=f"Langevin with measured D = {d:.3g}, M/ζ = {tau:.3g}")
    ax.loglog(lt, 2 * kT / mass * lt**2, "--", color="0.4", lw=1, label="ballistic 2kT t²/M")
    ax.loglog(lt, 4 * d * lt, ":", color="0.4", lw=1.2, label="diffusive 4Dt")
    ax.set_ylim(msd[1] / 3, msd[-1] * 3)
    ax.set_xlabel("lag t")
    ax.set_ylabel("mean squared displacement")
    ax.legend(fontsize=8)
    ax.set_title("From ballistic to diffusive")
    ax2.plot(lags, vacf / vacf[0], "k-", lw=1, label="⟨v(0)·v(t)⟩ / ⟨v²⟩")
    ax2.plot(lags, np.exp(-lags / tau), "--", color="#c0392b", label="exp(−t ζ/M), ζ = kT/D")
    ax2.axhline(0, color="0.6", lw=0.8)
    ax2.set_xlim(0, min(lags[-1], 15 * tau))
    ax2.set_xlabel("lag t")
    ax2.legend(fontsize=8)
    ax2.set_title(f"velocity autocorrelation: D = {fit['diffusion_vacf']:.3g} from its integral, "
                  f"{fit['diffusion_msd']:.3g} from the MSD", fontsize=10)
    grid_v = np.linspace(-4.5, 4.5, 200)
    ax3.hist(scaled_v, bins=60, range=(-4.5, 4.5), density=True, color="#9fb7d4", label="small disks, final")
    ax3.plot(grid_v, np.exp(-grid_v**2 / 2) / np.sqrt(2 * np.pi), color="#c0392b", label="Maxwell–Boltzmann")
    ax3.set_xlabel("velocity component / sqrt(kT/m)")
    ax3.legend(fontsize=8)
    ax3.set_title(f"velocities: KS p = {ks_p:.2f}; kinetic energy drift {drift:.0e}", fontsize=10)
    fig.suptitle(f"Measured in a {box[0]:.1f} x {box[1]:.1f} box (in 2D D depends on the box)")
    paths.append(out / "brownian_msd.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    # 3. Three views of the displacement distribution.
    fig, axes = plt.subplots(1, len(views), figsize=(6 * len(views), 4.6), constrained_layout=True, squeeze=False)
    for ax, view in zip(axes[0], views):
        e = view["edges"]
        mid = 0.5 * (e[1:] + e[:-1])
        ax.stairs(view["hard_disks"], e, color="k", lw=1.2, label=f"hard disks ({view['samples_hard_disks']:,} "
                  "displacements)")
        ax.stairs(view["particles"], e, color="#2c7fb8", lw=1.0, label="particle engine (Langevin, measured D)")
        ax.plot(mid, view["density"], color="#c0392b", lw=1.8, label="density engine (Fokker–Planck)")
        ax.set_title(f"lag {view['lag']:g}: variance {view['var_hard_disks']:.3g} (disks), "
                     f"{view['var_particles']:.3g} (particles), {view['var_density']:.3g} (density)", fontsize=9)
        ax.set_xlabel("displacement along an axis")
        ax.set_ylim(0, 1.35 * max(view["hard_disks"].max(), view["density"].max()))
        ax.legend(fontsize=8, loc="upper left")
    axes[0, 0].set_ylabel("probability density")
    fig.suptitle("Where Brownian motion comes from: three views of a big disk's displacement")
    paths.append(out / "brownian_views.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    if animation:
        from matplotlib import animation as anim

        fig, ax = plt.subplots(figsize=(5.5, 5.5), constrained_layout=True)
        ax.set_xlim(0, box[0])
        ax.set_ylim(0, box[1])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        title = ax.set_title("")
        snap_idx = np.searchsorted(t, snap_t)

        def draw(k: int) -> list[Any]:
            for coll in list(ax.collections):
                coll.remove()
            for line in list(ax.lines):
                line.remove()
            draw_disks(ax, snaps[k])
            for q in range(tracers.size):
                seg = trail_segments(pos[max(0, snap_idx[k] - 400):snap_idx[k] + 1, q])
                ax.plot(seg[:, 0], seg[:, 1], color=colours[q], lw=0.8)
            title.set_text(f"t = {snap_t[k]:.0f}")
            return []

        movie = anim.FuncAnimation(fig, draw, frames=len(snap_t))
        paths.append(out / "brownian.gif")
        movie.save(paths[-1], writer=anim.PillowWriter(fps=12), dpi=60)
        if shutil.which("ffmpeg") and anim.writers.is_available("ffmpeg"):
            paths.append(out / "brownian.mp4")
            movie.save(paths[-1], writer=anim.FFMpegWriter(fps=12), dpi=90)
        plt.close(fig)
    return paths
