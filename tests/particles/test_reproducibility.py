"""Bitwise reproducibility across threads, chunking, time splitting and resume (PHYSICS.md §4)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import ib_physics as ib
from ib_physics.potentials import DoubleWell, Harmonic

CASES = {
    "affine_box": (ib.Dynamics(potential=Harmonic([1.0, 3.0]), diffusion=[0.5, 1.0]), [0.1, 0.2],
                   ib.Box([-1, -1], [1, 1], boundaries=[("reflecting", "absorbing"), "periodic"]), "euler_maruyama"),
    "general_free": (ib.Dynamics(potential=DoubleWell(1.0, 1.0) + Harmonic([0.0, 1.0, 1.0]), diffusion=0.7),
                     [0.5, 0.0, 0.0], None, "sra1"),
    # Most particles are absorbed within the run: the general kernel packs the living ones into fewer
    # lanes as others die, so groups of other compositions (chunks, threads) reorder them differently.
    "affine_absorbing": (ib.Dynamics(diffusion=1.0), [0.1], ib.Box(-0.5, 0.5, boundaries="absorbing"),
                         "euler_maruyama"),
    "general_absorbing": (ib.Dynamics(potential=DoubleWell(0.3), diffusion=0.8), [-0.2],
                          ib.Box(-2.0, 0.4, boundaries=[("reflecting", "absorbing")]), "euler_maruyama"),
    "general_absorbing_sra1": (ib.Dynamics(potential=DoubleWell(0.5) + Harmonic([0.0, 2.0]), diffusion=0.6),
                               [0.2, 0.0], ib.Box([-0.8, -1.0], [0.8, 1.0], boundaries="absorbing"), "sra1"),
}


def _run(name, **kw):
    dyn, x0, domain, scheme = CASES[name]
    kw.setdefault("n_particles", 3001)
    return ib.simulate(dyn, x0, (0.0, 1.0), dt=0.01, domain=domain, seed=17, scheme=scheme,
                       t_eval=[0.25, 0.5, 1.0], tracers=kw.pop("tracers", [3, 70]), trail_every=7,
                       histogram_edges=[np.linspace(-2, 2, 9)] * len(x0), **kw)


def _assert_identical(a, b):
    for field in ("positions", "final_positions", "mean", "covariance", "msd", "survival", "trails",
                  "first_passage_time", "exit_face"):
        va, vb = getattr(a, field), getattr(b, field)
        if va is None:
            assert vb is None
            continue
        np.testing.assert_array_equal(va, vb, err_msg=field)
    np.testing.assert_array_equal(a.histogram.counts, b.histogram.counts)


@pytest.mark.parametrize("name", sorted(CASES))
def test_identical_for_any_thread_count_and_chunk_size(name):
    reference = _run(name, threads=1, chunk_size=1 << 20)
    _assert_identical(reference, _run(name, threads=2, chunk_size=1 << 20))
    _assert_identical(reference, _run(name, threads=2, chunk_size=37))
    _assert_identical(reference, _run(name, threads=3, chunk_size=1000))


def test_identical_under_numba_thread_setting():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run("affine_box")
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _run("affine_box")
    finally:
        numba.set_num_threads(before)
    assert one.diagnostics["threads"] == 1
    _assert_identical(one, two)


def test_particle_paths_do_not_depend_on_the_ensemble_size():
    """Particle i's path depends only on (seed, i): a larger run contains the smaller one."""
    small = _run("general_free", n_particles=100)
    large = _run("general_free", n_particles=2500, tracers=[3, 70, 2000])
    np.testing.assert_array_equal(small.positions, large.positions[:, :100])
    np.testing.assert_array_equal(small.trails, large.trails[:2])


def test_different_seeds_give_different_paths():
    dyn, x0, domain, scheme = CASES["affine_box"]
    a = ib.simulate(dyn, x0, (0.0, 0.1), dt=0.01, n_particles=10, seed=1)
    b = ib.simulate(dyn, x0, (0.0, 0.1), dt=0.01, n_particles=10, seed=2)
    assert not np.array_equal(a.final_positions, b.final_positions)


def test_interrupted_run_resumes_from_its_checkpoint_to_the_same_result(tmp_path):
    reference = _run("affine_box", threads=2)
    path = tmp_path / "run.ckpt.h5"

    class Stop(KeyboardInterrupt):
        pass

    calls = {"n": 0}

    def interrupt_midway(done, total):
        calls["n"] += 1
        if done > total // 2:
            raise Stop

    with pytest.raises(Stop):
        _run("affine_box", threads=2, chunk_size=500, checkpoint=path, progress=interrupt_midway)
    assert path.exists()
    resumed = _run("affine_box", threads=1, checkpoint=path)
    _assert_identical(reference, resumed)
    # A checkpoint of other inputs is refused rather than silently mixed in.
    with pytest.raises(ValueError, match="checkpoint"):
        dyn, x0, domain, scheme = CASES["affine_box"]
        ib.simulate(dyn, x0, (0.0, 1.0), dt=0.01, n_particles=3001, domain=domain, seed=18, checkpoint=path)


@pytest.mark.parametrize("dyn, scheme", [
    (ib.Dynamics(potential=Harmonic([1.0, 2.0]), diffusion=0.5), "euler_maruyama"),
    (ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 3.0]), diffusion=0.5), "milstein"),
    (ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 3.0]), diffusion=0.5), "sra1"),
])
def test_free_space_variants_move_particles_as_the_full_kernels_do(dyn, scheme):
    # Without a domain and tracers the engine takes the kernels compiled without wall, bridge and
    # trail code; with one tracer the full kernels run. Every path must be the same, bit for bit.
    kw = dict(n_particles=517, seed=23, dt=0.01, scheme=scheme, t_eval=[0.3, 1.0], threads=1)
    lean = ib.simulate(dyn, [0.4, -0.2], (0.0, 1.0), **kw)
    full = ib.simulate(dyn, [0.4, -0.2], (0.0, 1.0), tracers=[5], **kw)
    np.testing.assert_array_equal(lean.positions, full.positions)
    np.testing.assert_array_equal(lean.final_positions, full.final_positions)


@pytest.mark.parametrize("dyn, scheme", [
    (ib.Dynamics(potential=Harmonic([1.0, 2.0]), diffusion=0.5), "euler_maruyama"),
    (ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 3.0]), diffusion=0.5), "milstein"),
    (ib.Dynamics(potential=DoubleWell(1.0) + Harmonic([0.0, 3.0]), diffusion=0.5), "sra1"),
])
def test_box_flavour_moves_particles_as_the_full_kernels_do(dyn, scheme):
    # In a box without tracers the engine takes kernels compiled without glass and trail code; with
    # one tracer the full kernels run. Absorbing faces (with the bridge test) and a periodic axis
    # exercise every wall branch; deaths, exit faces and paths must be the same, bit for bit.
    box = ib.Box([-1.0, -1.2], [0.9, 1.2], boundaries=[("reflecting", "absorbing"), "periodic"])
    kw = dict(n_particles=517, seed=31, dt=0.01, scheme=scheme, t_eval=[0.3, 1.0], threads=1, domain=box)
    lean = ib.simulate(dyn, [0.4, -0.2], (0.0, 1.0), **kw)
    full = ib.simulate(dyn, [0.4, -0.2], (0.0, 1.0), tracers=[5], **kw)
    assert 0.1 < lean.survival[-1] < 0.9  # both walls matter in this run
    for field in ("positions", "final_positions", "first_passage_time", "exit_face", "survival"):
        np.testing.assert_array_equal(getattr(lean, field), getattr(full, field), err_msg=field)


def test_flavours_are_chosen_by_what_a_run_can_execute():
    from ib_physics.particles import _kernels

    def name(**kw):
        flags = dict(affine=False, free_space=False, boxes_only=True, tracers=False, tables=False)
        return _kernels.particle_kernel(**{**flags, **kw}).py_func.__name__

    assert name(free_space=True) == "advance_general__tables_off_trails_off_walls_off"
    assert name(free_space=True, tracers=True) == "advance_general__tables_off"
    assert name() == "advance_general__cylinder_off_tables_off_trails_off"
    assert name(tables=True) == "advance_general__cylinder_off_trails_off"
    assert name(boxes_only=False, tables=True) == "advance_general"
    assert name(affine=True, tables=True) == "advance_affine__cylinder_off_trails_off"
    assert name(affine=True, boxes_only=False) == "advance_affine"
    # Flavours that agree on what a helper depends on share its compiled copy.
    drift, _ = _kernels.lane_helpers(False)
    box_kernel = _kernels.particle_kernel(affine=False, free_space=False, boxes_only=True, tracers=False,
                                          tables=False)
    step = box_kernel.py_func.__globals__["_step_lanes"]
    assert step.py_func.__globals__["drift_lanes"] is drift


@pytest.mark.parametrize("domain", [None, ib.Box([-2.0, -2.0], [2.0, 2.0])])
def test_analytic_variants_move_particles_as_the_table_kernels_do(domain):
    # Without a Tabulated potential or a DiffusionField the general kernel takes lane helpers compiled
    # without table code. A flat table (zero force) sends the same problem through the table kernels:
    # every path must be the same, bit for bit.
    from ib_physics.potentials import Tabulated

    flat = Tabulated(np.zeros((5, 5)), [-3.0, -3.0], [3.0, 3.0])
    base = DoubleWell(1.0) + Harmonic([0.0, 3.0])
    kw = dict(n_particles=517, seed=29, dt=0.01, t_eval=[0.3, 1.0], threads=1, domain=domain)
    lean = ib.simulate(ib.Dynamics(potential=base, diffusion=0.5), [0.4, -0.2], (0.0, 1.0), **kw)
    full = ib.simulate(ib.Dynamics(potential=base + flat, diffusion=0.5), [0.4, -0.2], (0.0, 1.0), **kw)
    np.testing.assert_array_equal(lean.positions, full.positions)
