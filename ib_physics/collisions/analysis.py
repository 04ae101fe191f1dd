"""Measuring Brownian motion in a hard-disk gas: trajectories, MSD, velocity autocorrelation, D, friction.

PHYSICS.md §7: D and the friction are measured from the simulation, never taken
from a formula; in 2D the velocity autocorrelation has a long tail and D depends on
the box, so results carry the box size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .._validation import check_finite_positive, check_int_range, check_memory
from .disks import HardDisks

__all__ = ["Trajectory", "record", "mean_squared_displacement", "velocity_autocorrelation", "TransportFit",
           "fit_transport", "local_slope"]


@dataclass(frozen=True)
class Trajectory:
    """Tracer disks sampled at equal times.

    Attributes
    ----------
    t : numpy.ndarray, shape (S,)
    positions : numpy.ndarray, shape (S, n_tracers, 2)
        Unwrapped positions (periodic images undone).
    velocities : numpy.ndarray, shape (S, n_tracers, 2)
    kinetic_energy : numpy.ndarray, shape (S,)
        Of the whole system.
    collisions : numpy.ndarray, shape (S,)
        Cumulative collisions.
    tracers : numpy.ndarray, shape (n_tracers,)
    box : numpy.ndarray, shape (2,)
    tracer_mass : float
    kT : float
        Temperature from the system's kinetic energy (2D: E = N kT).
    """

    t: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    kinetic_energy: np.ndarray
    collisions: np.ndarray
    tracers: np.ndarray
    box: np.ndarray
    tracer_mass: float
    kT: float
    snapshot_t: np.ndarray | None = None
    snapshots: np.ndarray | None = None


def record(system: HardDisks, *, duration: float, sample_dt: float, tracers: Sequence[int] | None = None,
           snapshot_every: int = 0, progress: Callable[[float, float], None] | None = None) -> Trajectory:
    """Run ``system`` for ``duration`` and sample tracers every ``sample_dt``.

    Parameters
    ----------
    tracers : sequence of int, optional
        Disk indices (default: the disks with the largest radius).
    snapshot_every : int
        Keep every disk's (wrapped) position at every ``snapshot_every``-th sample (0: none),
        for pictures and animations: ``snapshots`` (F, N, 2) at ``snapshot_t``.
    progress : callable, optional
        ``progress(done, total)`` in simulated time after each sample.
    """
    if not isinstance(system, HardDisks):
        raise TypeError(f"`system` must be a HardDisks, got {type(system).__name__}.")
    duration = check_finite_positive(duration, "duration")
    sample_dt = check_finite_positive(sample_dt, "sample_dt")
    ratio = duration / sample_dt
    if not ratio < 1e18:
        raise ValueError(f"`duration` / `sample_dt` = {ratio:.3g} samples; raise `sample_dt`.")
    n_samples = int(round(ratio))
    if n_samples < 2:
        raise ValueError("`duration` must hold at least two samples of `sample_dt`.")
    if tracers is None:
        idx = np.flatnonzero(system.radius == system.radius.max())
    else:
        try:
            flat = np.ndim(tracers) == 1
        except ValueError:  # ragged
            flat = False
        if isinstance(tracers, (str, bytes)) or not flat:
            raise TypeError(f"`tracers` must be a sequence of disk indices, got {tracers!r}.")
        idx = np.array([check_int_range(i, "tracers[i]", 0, system.n - 1) for i in tracers], dtype=np.int64)
        if idx.size == 0:
            raise ValueError("`tracers` must name at least one disk.")
        if np.unique(idx).size != idx.size:
            raise ValueError("`tracers` must be distinct disk indices.")
    if np.ptp(system.mass[idx]) > 0:
        raise ValueError("`tracers` must share one mass (their MSD and velocity statistics are pooled).")
    every = check_int_range(snapshot_every, "snapshot_every", 0)
    # Samples of the tracers (positions and velocities) and snapshots of every disk, before the run.
    frames = (n_samples // every + 1) if every else 0
    check_memory(8.0 * (n_samples + 1) * (4 * idx.size + 3) + 16.0 * frames * system.n,
                 f"{n_samples + 1:,} samples", "duration / sample_dt")
    pos = np.empty((n_samples + 1, idx.size, 2))
    vel = np.empty_like(pos)
    energy = np.empty(n_samples + 1)
    coll = np.empty(n_samples + 1, np.int64)
    times = np.empty(n_samples + 1)
    snaps, snap_t = [], []
    for k in range(n_samples + 1):
        if k:
            system.run(sample_dt)
            if progress is not None:
                progress(k * sample_dt, n_samples * sample_dt)
        times[k] = system.t
        pos[k] = system.unwrapped[idx]
        vel[k] = system.v[idx]
        energy[k] = system.kinetic_energy()
        coll[k] = system.collisions
        if every and k % every == 0:
            snaps.append(system.x.copy())
            snap_t.append(system.t)
    mass = system.mass[idx]
    return Trajectory(t=times - times[0], positions=pos, velocities=vel, kinetic_energy=energy, collisions=coll,
                      tracers=idx, box=system.box.copy(), tracer_mass=float(mass[0]),
                      kT=float(energy[0] / system.n),
                      snapshot_t=np.array(snap_t) - times[0] if every else None,
                      snapshots=np.array(snaps) if every else None)


def _lag_average(a: np.ndarray, max_lag: int, kind: str) -> np.ndarray:
    """Average over time origins and tracers of |a(t + τ) - a(t)|² ("msd") or a(t)·a(t + τ) ("acf"),
    for τ = 0..max_lag samples, by FFT (O(S log S) per tracer and axis)."""
    s = a.shape[0]
    size = 1 << int(np.ceil(np.log2(2 * s)))
    f = np.fft.rfft(a, n=size, axis=0)
    corr = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:max_lag + 1]  # Σ_t a(t) a(t + τ)
    counts = (s - np.arange(max_lag + 1))[:, None, None]
    acf = corr / counts
    if kind == "acf":
        return acf.sum(axis=2).mean(axis=1)
    # MSD(τ) = mean a(t+τ)² + mean a(t)² − 2 mean a(t) a(t+τ), with the running sums of squares.
    sq = a**2
    cum = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(sq, axis=0)])
    lags = np.arange(max_lag + 1)
    head = (cum[s - lags] - cum[0]) / counts  # t from 0 .. s-τ-1
    tail = (cum[s] - cum[lags]) / counts  # t + τ from τ .. s-1
    return (head + tail - 2 * acf).sum(axis=2).mean(axis=1)


def mean_squared_displacement(traj: Trajectory, *, max_lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MSD over tracers and time origins: lags (times) and ⟨|Δr|²⟩ (both axes), shape (L + 1,)."""
    s = traj.t.size
    max_lag = check_int_range(max_lag if max_lag is not None else s // 4, "max_lag", 1, s - 1)
    # Displacements from the start keep the numbers small (the MSD does not see a constant shift).
    msd = _lag_average(traj.positions - traj.positions[:1], max_lag, "msd")
    dt = traj.t[1] - traj.t[0]
    return dt * np.arange(max_lag + 1), msd


def velocity_autocorrelation(traj: Trajectory, *, max_lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """⟨v(0)·v(τ)⟩ over tracers and origins: lags and values, shape (L + 1,)."""
    s = traj.t.size
    max_lag = check_int_range(max_lag if max_lag is not None else s // 4, "max_lag", 1, s - 1)
    acf = _lag_average(traj.velocities, max_lag, "acf")
    dt = traj.t[1] - traj.t[0]
    return dt * np.arange(max_lag + 1), acf


def local_slope(lags: np.ndarray, msd: np.ndarray) -> np.ndarray:
    """d log MSD / d log t at the lags > 0 (2: ballistic, 1: diffusive)."""
    lt, lm = np.log(lags[1:]), np.log(msd[1:])
    return np.gradient(lm, lt)


@dataclass(frozen=True)
class TransportFit:
    """Diffusion and friction of the tracers, measured.

    Attributes
    ----------
    diffusion_msd : float
        D from the slope of the MSD over the fitted range (MSD = 4 D t + c in 2D).
    diffusion_vacf : float
        D = (1/2) ∫ ⟨v(0)·v(τ)⟩ dτ up to the cutoff.
    velocity_relaxation_time : float
        τ_v where the normalised VACF first falls below 1/e.
    friction : float
        ζ = M / τ_v (Langevin: VACF = (2kT/M) exp(−t ζ / M)).
    friction_einstein : float
        kT / D_msd, what the fluctuation–dissipation relation says the friction must be.
    fit_range : (float, float)
    box : (float, float)
    """

    diffusion_msd: float
    diffusion_vacf: float
    velocity_relaxation_time: float
    friction: float
    friction_einstein: float
    fit_range: tuple[float, float]
    box: tuple[float, float]


def fit_transport(traj: Trajectory, *, fit_from: float | None = None, max_lag: int | None = None) -> TransportFit:
    """Measure D (two ways) and the friction from a trajectory.

    The MSD is fitted linearly from ``fit_from`` (default 10 velocity relaxation
    times) to the largest lag; the VACF integral is cut at the same lag.
    """
    lags, acf = velocity_autocorrelation(traj, max_lag=max_lag)
    below = np.flatnonzero(acf < acf[0] / np.e)
    tau_v = float(lags[below[0]]) if below.size else float("nan")
    lags_m, msd = mean_squared_displacement(traj, max_lag=max_lag)
    start = fit_from if fit_from is not None else 10 * tau_v
    sel = lags_m >= start
    if sel.sum() < 3:
        raise ValueError("too few lags beyond `fit_from` to fit the MSD: record longer or lower `fit_from`.")
    slope = float(np.polyfit(lags_m[sel], msd[sel], 1)[0])
    d_msd = slope / 4.0
    d_vacf = 0.5 * float(np.trapezoid(acf, lags))
    return TransportFit(diffusion_msd=d_msd, diffusion_vacf=d_vacf, velocity_relaxation_time=tau_v,
                        friction=traj.tracer_mass / tau_v, friction_einstein=traj.kT / d_msd,
                        fit_range=(float(lags_m[sel][0]), float(lags_m[-1])), box=(float(traj.box[0]),
                                                                                   float(traj.box[1])))
