"""Figures of the dye experiment, drawn only from its HDF5 file.

* ``dye_picture.png``: (A) the drop, (B) drifting and spreading, (C) the late
  state, (D) a magnified region where single particles' paths show.
* ``dye_overlay.png``: particles on the density, per time, with the distance.
* ``dye_continuity.png``: a closed contour, the probability current, and d/dt of
  the mass inside against the flux through the contour.
* ``dye_convergence.png``: distance against N with the N^(-1/2) line.
* ``dye.gif`` (and ``dye.mp4`` when ffmpeg exists): both views in time.

The glass is drawn as the eye sees it from the side: light through the glass is
attenuated by the dye along the line of sight (Beer–Lambert), so the picture's
colour follows the column density C(x, z) = ∫ p dy. Particles give C by binning
their (x, z); the density gives it exactly from its rings
(:func:`ib_physics.compare.column_density`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import io
from ..compare import column_density
from ..density.result import DensityResult, read_density_result
from .dye_config import DyeConfig

__all__ = ["DyeData", "load_dye", "plot_dye", "dye_colours"]

#: Absorbance per unit of (column density / column density of the well-mixed glass),
#: per colour channel: a red dye absorbs green and blue light.
_ABSORBANCE = np.array([0.02, 0.75, 0.6])
_WATER = np.array([0.94, 0.97, 1.0])


@dataclass(frozen=True)
class DyeData:
    """Everything in a ``dye.h5`` file (arrays have frames as the first axis)."""

    config: DyeConfig
    physics: dict[str, float]
    timings: dict[str, Any]
    t: np.ndarray
    survival: np.ndarray
    rz_counts: np.ndarray
    side_counts: np.ndarray
    side_x_edges: np.ndarray
    side_z_edges: np.ndarray
    sample: np.ndarray
    trail_t: np.ndarray
    trails: np.ndarray | None
    inside_region: np.ndarray
    density: DensityResult
    metrics: dict[str, np.ndarray]
    convergence_slope: float
    continuity: dict[str, np.ndarray]
    region: np.ndarray

    @property
    def n_particles(self) -> int:
        return self.config.particles

    def particle_column(self, k: int) -> np.ndarray:
        """Column density from the particles at frame k, shape (n_x, n_z)."""
        area = np.outer(np.diff(self.side_x_edges), np.diff(self.side_z_edges))
        return self.side_counts[k] / (self.n_particles * area)

    def density_column(self, k: int) -> np.ndarray:
        """Column density from the density at frame k, averaged over the same (x, z) bins."""
        c = column_density(self.density.grid, self.density.p[k], self.side_x_edges)
        # Average the density's z cells onto the picture's z bins (both uniform on [0, H]).
        z_d = self.density.grid.edges[1]
        cum = np.concatenate([np.zeros((c.shape[0], 1)), np.cumsum(c * np.diff(z_d), axis=1)], axis=1)
        at = np.array([np.interp(self.side_z_edges, z_d, row) for row in cum])
        return np.diff(at, axis=1) / np.diff(self.side_z_edges)

    def mixed_column(self) -> float:
        """Column density through the middle of a well-mixed glass (the colour scale's unit)."""
        c = self.config
        return 2 * c.glass_radius_um / (np.pi * c.glass_radius_um**2 * c.glass_height_um)


def load_dye(path: str | Path) -> DyeData:
    """Read a file written by :func:`ib_physics.experiments.dye.run_dye`."""
    import h5py

    with h5py.File(path, "r") as f:
        io.check_schema(f, path)
        if f.attrs.get("experiment") not in ("dye", b"dye"):
            raise ValueError(f"{path} is not a dye experiment file.")
        g = f["particles"]
        arrays = io.read_arrays(g, ["t", "survival", "rz_counts", "side_counts", "side_x_edges", "side_z_edges",
                                    "sample", "trail_t", "trails", "inside_region"])
        metrics = {k: f["metrics"][k][()] for k in f["metrics"]}
        continuity = {k: f["continuity"][k][()] for k in f["continuity"]}
        return DyeData(config=DyeConfig(**io.read_json_attr(f, "config")), physics=io.read_json_attr(f, "physics"),
                       timings=io.read_json_attr(f, "timings", {}), **arrays,
                       density=read_density_result(f["density"]), metrics=metrics,
                       convergence_slope=float(f["metrics"].attrs["convergence_slope"]), continuity=continuity,
                       region=np.asarray(f["continuity"].attrs["region"]))


def dye_colours(column: np.ndarray, unit: float) -> np.ndarray:
    """RGB image (n_z, n_x, 3) of light through the glass: water colour x exp(-absorbance x C / unit)."""
    a = np.clip(column.T, 0, None)[..., None] / unit
    return _WATER * np.exp(-a * _ABSORBANCE)


def _frame_near(d: DyeData, t: float) -> int:
    return int(np.argmin(np.abs(d.t - t)))


def _glass(ax: Any, c: DyeConfig) -> None:
    r, h = c.glass_radius_um, c.glass_height_um
    ax.plot([-r, -r, r, r], [h * 1.04, 0, 0, h * 1.04], color="0.35", lw=2.0, solid_capstyle="round")
    ax.plot([-r, r], [h, h], color="#5a8fc8", lw=0.9, ls="--" if c.glass_top == "reflecting" else ":")
    ax.set_xlim(-1.08 * r, 1.08 * r)
    ax.set_ylim(-0.04 * h, 1.08 * h)
    ax.set_aspect("equal")


def _picture(ax: Any, d: DyeData, column: np.ndarray) -> None:
    c = d.config
    ax.imshow(dye_colours(column, d.mixed_column()), origin="lower", interpolation="bilinear",
              extent=(-c.glass_radius_um, c.glass_radius_um, 0, c.glass_height_um))
    _glass(ax, c)


def plot_dye(data: str | Path, out: str | Path, *, animation: bool = True) -> list[Path]:
    """Draw every figure of a dye file into ``out``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    d = load_dye(data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [_picture_figure(d, out / "dye_picture.png"), _overlay_figure(d, out / "dye_overlay.png"),
             _continuity_figure(d, out / "dye_continuity.png"), _convergence_figure(d, out / "dye_convergence.png")]
    if animation:
        paths.extend(_animation(d, out))
    return paths


def _picture_figure(d: DyeData, path: Path) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    c = d.config
    # B: when the centre of the dye has come half way from the drop to the late state.
    height = d.metrics["mean_density"][:, 1]
    k_b = int(np.argmin(np.abs(height - 0.5 * (height[0] + height[-1]))))
    k_b = min(max(k_b, 1), len(d.t) - 1)
    k_c = len(d.t) - 1
    fig, axes = plt.subplots(1, 4, figsize=(16, 5.0), constrained_layout=True)
    for ax, k, label in zip(axes[:3], (0, k_b, k_c), ("A  the drop", "B  drifting and spreading", "C  the late state")):
        _picture(ax, d, d.particle_column(k))
        ax.set_title(f"{label}\nt = {d.t[k]:.0f} s")
        ax.set_xlabel("x (µm)")
    axes[0].set_ylabel("height z (µm)")
    # D: a window around the first tracer at B's time, with its last minute of steps.
    ax = axes[3]
    half = max(3.0, min(c.glass_radius_um, c.glass_height_um) * 0.1)
    if d.trails is not None and d.trails.shape[0] > 0 and np.any(np.isfinite(d.trails[:, :, 0])):
        j_b = int(np.argmin(np.abs(d.trail_t - d.t[k_b])))
        # Follow the tracer nearest the cloud's centre, where the dots are dense.
        cloud = np.nanmean(d.sample[k_b][:, [0, 2]], axis=0)
        at_b = d.trails[:, j_b][:, [0, 2]]
        lead = int(np.nanargmin(np.hypot(*(at_b - cloud).T)))
        centre = at_b[lead]
        window = max(2, int(round(40.0 / c.dt_s)))
        j_a = max(0, j_b - window)
        sample = d.sample[k_b]
        near = (np.abs(sample[:, 0] - centre[0]) < 1.4 * half) & (np.abs(sample[:, 2] - centre[1]) < 1.4 * half)
        ax.set_facecolor(_WATER)
        ax.scatter(sample[near, 0], sample[near, 2], s=9, color="#a0122a", alpha=0.55, lw=0,
                   label=f"dye particles (1 in {max(1, d.n_particles // len(sample))})")
        colours = plt.cm.viridis(np.linspace(0.0, 0.85, d.trails.shape[0]))
        for i in [lead, *[i for i in range(d.trails.shape[0]) if i != lead]]:
            path_i = d.trails[i, j_a:j_b + 1]
            if np.any((np.abs(path_i[:, 0] - centre[0]) < half) & (np.abs(path_i[:, 2] - centre[1]) < half)):
                ax.plot(path_i[:, 0], path_i[:, 2], "-", color=colours[i], lw=0.9, marker=".", ms=2.5,
                        label=f"one particle, {d.trail_t[j_b] - d.trail_t[j_a]:.0f} s of steps" if i == lead else None)
                ax.plot(*path_i[-1, [0, 2]], "o", color=colours[i], ms=5, mec="k", mew=0.6)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_aspect("equal")
        ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
        axes[1].add_patch(Rectangle((centre[0] - half, centre[1] - half), 2 * half, 2 * half, fill=False,
                                    ec="k", lw=1.0))
        axes[1].annotate("D", (centre[0] + half, centre[1] + half), xytext=(3, 3), textcoords="offset points")
        ax.set_title(f"D  magnified ({2 * half:.0f} µm wide)\nrandom paths of single particles")
        ax.set_xlabel("x (µm)")
    else:
        ax.text(0.5, 0.5, "no tracers stored", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ph = d.physics
    fig.suptitle(f"A drop of dye in water, seen from the side ({d.n_particles:,} particles): "
                 f"D = {ph['diffusion']:.3g} µm²/s, settling {ph['settling_velocity']:.3g} µm/s, "
                 f"Péclet {ph['peclet']:.2g}")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _overlay_figure(d: DyeData, path: Path) -> Path:
    import matplotlib.pyplot as plt

    c = d.config
    picks = sorted({_frame_near(d, f * c.duration_s) for f in (0.0, 0.05, 0.2, 0.5, 1.0)})
    fig, axes = plt.subplots(2, len(picks), figsize=(3.4 * len(picks), 7.4), constrained_layout=True,
                             gridspec_kw={"height_ratios": [2.2, 1.0]}, squeeze=False)
    grid = d.density.grid
    z_c = grid.centres[1]
    dz = np.diff(grid.edges[1])
    m = d.metrics
    for col, k in enumerate(picks):
        ax = axes[0, col]
        dens = d.density_column(k)
        ax.imshow(dens.T, origin="lower", cmap="Reds", vmin=0, vmax=float(dens.max()),
                  extent=(-c.glass_radius_um, c.glass_radius_um, 0, c.glass_height_um))
        s = d.sample[k]
        s = s[np.all(np.isfinite(s), axis=1)]
        ax.scatter(s[:, 0], s[:, 2], s=0.6, color="k", alpha=0.35, lw=0)
        _glass(ax, c)
        ratio = m["l1"][k] / m["l1_floor"][k]
        ax.set_title(f"t = {d.t[k]:.0f} s\nL1 = {m['l1'][k]:.3f} (floor {m['l1_floor'][k]:.3f}, {ratio:.2f}x)",
                     fontsize=10)
        ax.set_xlabel("x (µm)")
        ax2 = axes[1, col]
        hist = d.rz_counts[k].sum(axis=0) / (d.n_particles * dz)
        dens_z = (d.density.p[k] * grid.volumes()).sum(axis=0) / dz
        ax2.stairs(hist, grid.edges[1], color="k", lw=0.9, label="particles")
        ax2.plot(z_c, dens_z, color="#c0392b", lw=1.6, label="density")
        ax2.set_xlabel("height z (µm)")
        if col == 0:
            ax.set_ylabel("height z (µm)")
            ax2.set_ylabel("probability per µm of height")
            ax2.legend(fontsize=8)
    fig.suptitle(f"Particles (dots, {len(d.sample[0]):,} of {d.n_particles:,}) on the density's side view; "
                 "below, the height marginals. L1 over the r-z cells vs the floor expected from N samples")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _continuity_figure(d: DyeData, path: Path) -> Path:
    import matplotlib.pyplot as plt

    c = d.config
    r_c, z_lo, z_hi = d.region
    k = _frame_near(d, 0.05 * c.duration_s) if len(d.t) > 2 else len(d.t) - 1
    grid = d.density.grid
    r_e, z_e = grid.edges
    r_mid, z_mid = grid.centres
    p = d.density.p[k]
    # Current at cell centres: the mean of the two faces of each cell.
    j_r = 0.5 * (d.density.current[0][k][:-1] + d.density.current[0][k][1:])
    j_z = 0.5 * (d.density.current[1][k][:, :-1] + d.density.current[1][k][:, 1:])
    fig = plt.figure(figsize=(14, 6.2), constrained_layout=True)
    gs = fig.add_gridspec(2, 2, width_ratios=[1.0, 1.35])
    ax = fig.add_subplot(gs[:, 0])
    x_edges = np.concatenate([-r_e[::-1], r_e[1:]])
    full = np.concatenate([p[::-1], p], axis=0)
    ax.pcolormesh(x_edges, z_e, full.T, cmap="Reds", shading="flat")
    step_r = max(1, grid.shape[0] // 10)
    step_z = max(1, grid.shape[1] // 16)
    rr, zz = np.meshgrid(r_mid[step_r // 2::step_r], z_mid[step_z // 2::step_z], indexing="ij")
    jr = j_r[step_r // 2::step_r, step_z // 2::step_z]
    jz = j_z[step_r // 2::step_r, step_z // 2::step_z]
    scale = float(np.max(np.hypot(jr, jz))) or 1.0
    for sign in (1, -1):
        ax.quiver(sign * rr, zz, sign * jr / scale, jz / scale, color="#1f3b73", angles="xy", scale=18, width=0.004)
    ax.plot([-r_c, r_c, r_c, -r_c, -r_c], [z_lo, z_lo, z_hi, z_hi, z_lo], color="k", lw=1.6, ls="--",
            label="closed contour (a cylinder around the drop)")
    _glass(ax, c)
    ax.set_title(f"slice through the axis at t = {d.t[k]:.0f} s:\n"
                 "density (colour) and probability current J (arrows)")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("height z (µm)")
    ax.legend(loc="lower center", fontsize=8)

    cont = d.continuity
    t = cont["t"]
    frac = d.inside_region / d.n_particles
    err = np.sqrt(np.clip(frac * (1 - frac), 0, None) / d.n_particles)
    a1 = fig.add_subplot(gs[0, 1])
    a1.plot(t, cont["mass_in"], color="#c0392b", lw=1.6, label="density")
    a1.errorbar(d.t, frac, yerr=2 * err, fmt="o", ms=3, color="k", lw=0.8, label="particles (±2 s.e.)")
    # Show the time over which the mass inside changes (to 1 % of the largest rate).
    rate = np.abs(cont["flux_out"])
    late = np.flatnonzero((rate > 0.01 * rate.max()) & (t >= t[np.argmax(rate)]))
    if late.size:
        a1.set_xlim(t[0], min(t[-1], 1.6 * t[late[-1]] + (t[1] - t[0])))
    a1.set_ylabel("probability inside")
    a1.legend(fontsize=8)
    a1.set_title("mass inside the contour")
    a2 = fig.add_subplot(gs[1, 1], sharex=a1)
    a2.plot(t, cont["dmass_dt"], color="#c0392b", lw=2.6, alpha=0.45, label="d/dt mass inside (density)")
    a2.plot(t, -cont["flux_out"], color="#1f3b73", lw=1.0, ls="--", label="− flux out through the contour")
    t_mid = 0.5 * (d.t[1:] + d.t[:-1])
    a2.plot(t_mid, np.diff(frac) / np.diff(d.t), "o", ms=3, color="k", label="d/dt fraction inside (particles)")
    inner = slice(2, -2) if t.size > 8 else slice(None)
    resid = np.max(np.abs(cont["dmass_dt"][inner] + cont["flux_out"][inner]))
    a2.set_title(f"continuity: d/dt M = −∮ J·n dA (largest gap {resid:.1e} /s, from the time difference)")
    a2.set_xlabel("time (s)")
    a2.set_ylabel("per second")
    a2.legend(fontsize=8)
    fig.suptitle("Continuity on the glass: what leaves the contour is the flux of the current through it")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _convergence_figure(d: DyeData, path: Path) -> Path:
    import matplotlib.pyplot as plt

    m = d.metrics
    n, l1, floor = m["convergence_sizes"], m["convergence_l1"], m["convergence_floor"]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), constrained_layout=True)
    ax.loglog(n, l1, "o-", color="k", label=f"L1 particles vs density (slope {d.convergence_slope:.2f})")
    ax.loglog(n, floor, "s--", color="0.5", ms=4, label="expected floor for N exact samples")
    if n.size:
        ax.loglog(n, l1[0] * (n / n[0]) ** -0.5, ":", color="#c0392b", lw=1.5, label="N^(-1/2)")
    ax.set_xlabel("particles N (the first N of the ensemble)")
    ax.set_ylabel(f"L1 distance at t = {d.t[-1]:.0f} s")
    ax.set_title("Distance between the views shrinks as N^(-1/2)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _animation(d: DyeData, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    from matplotlib import animation

    c = d.config
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 4.6), constrained_layout=True)
    ext = (-c.glass_radius_um, c.glass_radius_um, 0, c.glass_height_um)
    unit = d.mixed_column()
    ims = []
    for ax, title in zip(axes, ("particles", "density")):
        ims.append(ax.imshow(np.zeros((2, 2, 3)), origin="lower", interpolation="bilinear", extent=ext))
        _glass(ax, c)
        ax.set_title(title)
        ax.set_xlabel("x (µm)")
    axes[0].set_ylabel("height z (µm)")
    heading = fig.suptitle("")
    m = d.metrics

    def draw(k: int) -> list[Any]:
        ims[0].set_data(dye_colours(d.particle_column(k), unit))
        ims[1].set_data(dye_colours(d.density_column(k), unit))
        heading.set_text(f"t = {d.t[k]:6.0f} s    L1 = {m['l1'][k]:.3f} (floor {m['l1_floor'][k]:.3f})")
        return [*ims, heading]

    anim = animation.FuncAnimation(fig, draw, frames=len(d.t), blit=False)
    paths = [out / "dye.gif"]
    anim.save(paths[0], writer=animation.PillowWriter(fps=8), dpi=72)
    if shutil.which("ffmpeg") and animation.writers.is_available("ffmpeg"):
        paths.append(out / "dye.mp4")
        anim.save(paths[1], writer=animation.FFMpegWriter(fps=8), dpi=100)
    plt.close(fig)
    return paths
