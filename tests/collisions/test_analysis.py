"""Brownian motion measured in the hard-disk gas: MSD, VACF, D two ways."""

from __future__ import annotations

import numpy as np
import pytest

from ib_physics.collisions import (Trajectory, fit_transport, local_slope, mean_squared_displacement, random_disks,
                                   record, velocity_autocorrelation)


def _fake(positions, velocities, dt=1.0):
    s = positions.shape[0]
    return Trajectory(t=dt * np.arange(s), positions=positions, velocities=velocities, kinetic_energy=np.ones(s),
                      collisions=np.zeros(s, int), tracers=np.arange(positions.shape[1]), box=np.array([1.0, 1.0]),
                      tracer_mass=1.0, kT=1.0)


def test_fft_lag_averages_equal_direct_sums():
    rng = np.random.default_rng(0)
    pos = np.cumsum(rng.normal(size=(300, 3, 2)), axis=0) + 1000.0
    vel = rng.normal(size=(300, 3, 2))
    traj = _fake(pos, vel)
    lags, msd = mean_squared_displacement(traj, max_lag=40)
    _, acf = velocity_autocorrelation(traj, max_lag=40)
    for k in (0, 1, 7, 40):
        d = pos[k:] - pos[:pos.shape[0] - k]
        assert msd[k] == pytest.approx(np.mean(np.sum(d**2, axis=2)), rel=1e-9, abs=1e-9)
        assert acf[k] == pytest.approx(np.mean(np.sum(vel[k:] * vel[:vel.shape[0] - k], axis=2)), rel=1e-9)
    # Random walks of unit steps per axis: MSD = 2 t in expectation (100 walkers).
    many = _fake(np.cumsum(rng.normal(size=(300, 100, 2)), axis=0), rng.normal(size=(300, 100, 2)))
    assert mean_squared_displacement(many, max_lag=40)[1][40] == pytest.approx(80.0, rel=0.1)


def test_big_disks_go_from_ballistic_to_diffusive_and_both_estimates_of_d_agree():
    system = random_disks(n_big=5, n_small=400, radius_big=3.0, mass_big=9.0, area_fraction=0.3, periodic=True,
                          seed=3)
    e0 = system.kinetic_energy()
    traj = record(system, duration=4000.0, sample_dt=0.5)
    assert abs(traj.kinetic_energy[-1] - e0) / e0 < 1e-10
    lags, msd = mean_squared_displacement(traj)
    slope = local_slope(lags, msd)
    assert slope[0] > 1.8  # ballistic: MSD ~ t^2 below the velocity relaxation time
    assert abs(np.median(slope[-100:]) - 1.0) < 0.15  # diffusive: MSD ~ t
    fit = fit_transport(traj)
    assert fit.diffusion_msd == pytest.approx(fit.diffusion_vacf, rel=0.2)
    # Equipartition at short lags: <v(0)·v(0)> = 2 kT / M for the tracers (time average over 5 disks).
    _, acf = velocity_autocorrelation(traj)
    assert acf[0] == pytest.approx(2 * traj.kT / traj.tracer_mass, rel=0.25)
    assert fit.box == (pytest.approx(system.box[0]), pytest.approx(system.box[1]))
