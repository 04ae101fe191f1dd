"""HDF5 round trips, atomic files, and property tests over random domains and dynamics."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ib_physics as ib
from ib_physics.particles import load_particle_result
from ib_physics.potentials import ConstantForce, DoubleWell, Harmonic


def test_result_round_trips_through_hdf5(tmp_path):
    dyn = ib.Dynamics(potential=Harmonic([1.0, 2.0]) + DoubleWell(0.5, 1.0),
                      diffusion=ib.Schedule([0.5], [[0.5, 0.5], [1.0, 0.2]]), force=[0.1, 0.0])
    res = ib.simulate(dyn, [0.1, 0.2], (0.0, 1.0), dt=0.01, n_particles=500, seed=3, tracers=2,
                      domain=ib.Box([-1, -1], [1, 1], boundaries=[("absorbing", "reflecting"), "periodic"]),
                      histogram_edges=[np.linspace(-1, 1, 5), np.linspace(-1, 1, 3)], t_eval=[0.5, 1.0])
    path = tmp_path / "run.h5"
    res.save(path)
    back = load_particle_result(path)
    for name in ("t", "positions", "unwrapped_positions", "final_positions", "alive", "survival", "mean",
                 "covariance", "msd", "first_passage_time", "exit_face", "trails", "trail_t"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name), err_msg=name)
    np.testing.assert_array_equal(back.histogram.counts, res.histogram.counts)
    assert back.seed == res.seed and back.scheme == res.scheme and back.dt == res.dt
    assert back.dynamics.to_dict() == res.dynamics.to_dict()
    assert back.domain.to_dict() == res.domain.to_dict()
    assert back.diagnostics["n_steps"] == 100
    # The stored seed and inputs reproduce the run.
    again = ib.simulate(back.dynamics, [0.1, 0.2], (0.0, 1.0), dt=back.dt, n_particles=500,
                        seed=eval(back.seed)["entropy"], tracers=2, domain=back.domain,
                        histogram_edges=back.histogram.edges, t_eval=[0.5, 1.0])
    np.testing.assert_array_equal(again.final_positions, res.final_positions)


def test_failed_write_leaves_no_file_behind(tmp_path):
    res = ib.simulate(ib.Dynamics(), 0.0, (0.0, 0.1), dt=0.01, n_particles=5, seed=1)
    path = tmp_path / "out.h5"
    res.save(path)
    before = path.read_bytes()

    class Boom(Exception):
        pass

    from ib_physics import io

    with pytest.raises(Boom):
        with io.atomic_h5(path) as f:
            f.create_dataset("x", data=np.arange(3))
            raise Boom
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]
    with h5py.File(path) as f:
        assert f.attrs["schema_version"] == io.SCHEMA_VERSION


kinds = st.sampled_from(["reflecting", "absorbing", "periodic"])


@st.composite
def boxes(draw):
    dim = draw(st.integers(1, 3))
    lower = np.array(draw(st.lists(st.floats(-2, 0), min_size=dim, max_size=dim)))
    size = np.array(draw(st.lists(st.floats(0.2, 3), min_size=dim, max_size=dim)))
    faces = []
    for _ in range(dim):
        lo = draw(kinds)
        hi = "periodic" if lo == "periodic" else draw(st.sampled_from(["reflecting", "absorbing"]))
        faces.append((lo, hi))
    return ib.Box(lower, lower + size, boundaries=faces)


@given(box=boxes(), d_coef=st.floats(0.01, 3.0), force=st.floats(-5, 5), k=st.floats(0, 5),
       seed=st.integers(0, 2**31), steps=st.integers(1, 60))
def test_particles_respect_every_wall_and_are_accounted_for(box, d_coef, force, k, seed, steps):
    dim = box.dim
    dyn = ib.Dynamics(potential=Harmonic(k, centre=box.lower) + ConstantForce(np.full(dim, force)), diffusion=d_coef)
    rng = np.random.default_rng(seed)
    x0 = box.lower + rng.random((200, dim)) * (box.upper - box.lower)
    dt = 0.01
    res = ib.simulate(dyn, x0, (0.0, steps * dt), dt=dt, seed=seed, domain=box, t_eval=None)
    alive = res.alive
    final = res.final_positions[alive]
    assert np.all(final >= box.lower) and np.all(final <= box.upper)
    assert np.all(np.diff(res.survival) <= 0)
    assert res.count[-1] == alive.sum()
    if box.has("absorbing"):
        fpt, face = res.first_passage_time, res.exit_face
        assert np.all(np.isnan(fpt[alive])) and np.all(face[alive] == -1)
        assert np.all((fpt[~alive] > 0) & (fpt[~alive] <= steps * dt + 1e-12))
        # Particles leave only through absorbing faces.
        absorbing = {i for i, kind in enumerate(box.face_kinds) if kind == "absorbing"}
        assert set(face[~alive].tolist()) <= absorbing
    else:
        assert alive.all()
