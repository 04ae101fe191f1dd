"""Ensembles and training replicas split into ranges: exact merges, pickling, executors and Dask.

Every comparison is bitwise (digests of all numbers a run produced), against one serial run.
"""

from __future__ import annotations

import logging
import pickle
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ib_physics as ib
from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices
from ib_physics.parallel import ReplicaRun, TaskRunner, ensemble_ranges, simulate_ensemble, train_replicas
from ib_physics.particles import REDUCTION_BLOCK, merge_particle_results
from ib_physics.potentials import Harmonic

import _parallel_tasks

BLOCK = REDUCTION_BLOCK
N = 5 * BLOCK + 123
# Drift towards an absorbing lower face, a reflecting upper one: survival, first passages and exit
# faces all change over the run.
DYN = ib.Dynamics(potential=Harmonic(0.5, centre=-0.5), diffusion=0.4)
BOX = ib.Box([-1.0], [1.5], boundaries=[("absorbing", "reflecting")])
OPTIONS = dict(dt=5e-3, domain=BOX, t_eval=np.linspace(0.0, 1.0, 6), seed=11,
               histogram_edges=[np.linspace(-1.0, 1.5, 11)], tracers=[2, BLOCK + 7, 4 * BLOCK + 1])


@pytest.fixture(scope="module")
def whole():
    return ib.simulate(DYN, [0.2], (0.0, 1.0), n_particles=N, **OPTIONS)


def _ranges(cuts):
    return list(zip(cuts[:-1], cuts[1:]))


def test_ranges_of_an_ensemble_merge_into_the_single_run_bit_for_bit(whole):
    assert 0.2 < whole.survival[-1] < 0.9  # absorption happens: the merge of every statistic is exercised
    assert np.all(whole.exit_face[~whole.alive] == 0)
    cuts = [0, BLOCK, 3 * BLOCK, N]
    parts = [ib.simulate(DYN, [0.2], (0.0, 1.0), n_particles=N, particles=r, **OPTIONS) for r in _ranges(cuts)]
    assert [p.particle_range for p in parts] == _ranges(cuts) and all(p.ensemble_size == N for p in parts)
    np.testing.assert_array_equal(parts[1].final_positions, whole.final_positions[BLOCK:3 * BLOCK])
    shuffled = parts[:]
    random.Random(3).shuffle(shuffled)
    merged = merge_particle_results(shuffled)
    assert merged.digest() == whole.digest()
    for name in ("mean", "covariance", "msd", "survival", "first_passage_time", "exit_face", "trails"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name), err_msg=name)
    np.testing.assert_array_equal(merged.histogram.counts, whole.histogram.counts)
    assert merged.tracer_indices.tolist() == [2, BLOCK + 7, 4 * BLOCK + 1]
    # Merged results merge further; reduced parts give the reduced single run.
    again = merge_particle_results([merge_particle_results(parts[:2]), parts[2]])
    assert again.digest() == whole.digest()
    reduced = merge_particle_results([p.reduced() for p in parts])
    assert reduced.final_positions is None and reduced.digest() == whole.reduced().digest()
    # The digest sees a changed number.
    assert merge_particle_results(parts[:2]).digest() != whole.digest()


def test_the_merge_refuses_what_would_not_be_exact(whole):
    parts = [ib.simulate(DYN, [0.2], (0.0, 1.0), n_particles=N, particles=r, **OPTIONS)
             for r in _ranges([0, 100, N])]
    with pytest.raises(ValueError, match=f"multiples of {BLOCK}"):
        merge_particle_results(parts)
    gap = [ib.simulate(DYN, [0.2], (0.0, 1.0), n_particles=N, particles=r, **OPTIONS)
           for r in [(0, BLOCK), (2 * BLOCK, N)]]
    with pytest.raises(ValueError, match="adjacent"):
        merge_particle_results(gap)
    other_seed = ib.simulate(DYN, [0.2], (0.0, 1.0), n_particles=N, particles=(BLOCK, N), **{**OPTIONS, "seed": 12})
    with pytest.raises(ValueError, match="seed"):
        merge_particle_results([gap[0], other_seed])
    with pytest.raises(ValueError, match="block moments"):
        merge_particle_results([whole])
    with pytest.raises(ValueError, match="reduce all or none"):
        a, b = (ib.simulate(DYN, [0.2], (0.0, 1.0), n_particles=N, particles=r, **OPTIONS)
                for r in [(0, BLOCK), (BLOCK, N)])
        merge_particle_results([a, b.reduced()])


def test_particle_ranges_take_the_ensembles_rows_or_their_own_and_refuse_bad_ranges():
    x0 = np.linspace(-0.5, 0.5, 300)[:, None]
    whole = ib.simulate(DYN, x0, (0.0, 0.1), dt=0.01, seed=1)
    from_all = ib.simulate(DYN, x0, (0.0, 0.1), dt=0.01, seed=1, particles=(100, 300))
    own = ib.simulate(DYN, x0[100:], (0.0, 0.1), dt=0.01, seed=1, particles=(100, 300), n_particles=300)
    np.testing.assert_array_equal(from_all.final_positions, whole.final_positions[100:])
    np.testing.assert_array_equal(own.final_positions, whole.final_positions[100:])
    for bad, error in (((5, 5), ValueError), ((0, 301), ValueError), ((-1, 3), ValueError), (7, TypeError),
                       ((0.5, 3), TypeError)):
        with pytest.raises(error, match="particles"):
            ib.simulate(DYN, x0, (0.0, 0.1), dt=0.01, particles=bad)
    with pytest.raises(ValueError, match="rows"):
        ib.simulate(DYN, x0[:50], (0.0, 0.1), dt=0.01, particles=(100, 300), n_particles=300)
    with pytest.raises(ValueError, match="n_particles"):
        ib.simulate(DYN, [0.0], (0.0, 0.1), dt=0.01, particles=(0, 10))


def test_results_of_both_engines_pickle_to_equal_objects(whole):
    back = pickle.loads(pickle.dumps(whole))
    assert back.digest() == whole.digest() and dict(back.diagnostics) == dict(whole.diagnostics)
    with pytest.raises(TypeError):
        back.diagnostics["n_steps"] = 0  # still read-only
    grid = ib.Grid(ib.Box([-1.0], [1.5]), 64)
    density = ib.solve_fokker_planck(DYN, grid, ib.gaussian_density(grid, [0.2], 0.1), (0.0, 0.2),
                                     t_eval=[0.0, 0.1, 0.2])
    copy = pickle.loads(pickle.dumps(density))
    assert copy.digest() == density.digest() and dict(copy.diagnostics) == dict(density.diagnostics)
    np.testing.assert_array_equal(copy.p, density.p)


def test_ensemble_on_executors_equals_one_run_for_any_block_size(whole):
    serial = whole.reduced().digest()
    with ThreadPoolExecutor(3) as pool:
        for block in (BLOCK, 2 * BLOCK):
            got = simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=pool, block_particles=block,
                                    **OPTIONS)
            assert got.digest() == serial and got.diagnostics["merged_parts"] == len(ensemble_ranges(N, block))
    full = simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=2, per_particle=True,
                             store_positions=True, **OPTIONS)
    assert full.digest() == whole.digest()
    with pytest.raises(ValueError, match="multiple of"):
        simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=1, block_particles=1000, **OPTIONS)
    with pytest.raises(ValueError, match="`dt`"):
        simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=1, **{**OPTIONS, "dt": -1.0})


def test_an_interrupted_ensemble_resumes_from_its_checkpoint(tmp_path, whole, monkeypatch):
    import h5py

    from ib_physics.parallel import ensemble as ensemble_module
    from ib_physics.parallel.store import TaskStore

    path = tmp_path / "ensemble.h5"
    n_ranges = len(ensemble_ranges(N, BLOCK))
    real_add = TaskStore.add

    def add_then_stop(self, name, writer):
        real_add(self, name, writer)
        if len(self.done) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C after the second finished range

    monkeypatch.setattr(TaskStore, "add", add_then_stop)
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(KeyboardInterrupt):
            simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=pool, block_particles=BLOCK,
                              checkpoint=path, **OPTIONS)
        with h5py.File(path) as f:
            assert len(f["tasks"]) == 2
        monkeypatch.setattr(TaskStore, "add", real_add)
        ran = []
        real_range = ensemble_module._simulate_range

        def counted(*args):
            ran.append(args[4])
            return real_range(*args)

        monkeypatch.setattr(ensemble_module, "_simulate_range", counted)
        resumed = simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=pool, block_particles=BLOCK,
                                    checkpoint=path, **OPTIONS)
        assert len(ran) == n_ranges - 2  # the finished ranges were not run again
        assert resumed.digest() == whole.reduced().digest()
        with pytest.raises(ValueError, match="other inputs"):
            simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=pool, block_particles=BLOCK,
                              checkpoint=path, **{**OPTIONS, "seed": 99})


def _training_data():
    data = ib_dataset()
    train, _ = split_indices(0.3, 0)
    return Architecture(widths=(12, 6, 2)), data.x[train], data.y[train]


def _single_training_run(**options) -> ReplicaRun:
    arch, x, y = _training_data()
    trainer = Trainer(arch=arch, x=x, y=y, replicas=7, **options)
    stats = trainer.run(3)
    return ReplicaRun(stats=stats, params=trainer.params, adam_m=trainer.adam_m, adam_v=trainer.adam_v,
                      steps=trainer.steps, trace=trainer.trace() if trainer.trace_epochs else None)


TRAIN_OPTIONS = dict(seed=3, batches="iid", trace_epochs=[2], trace_second_batch=True)


def test_training_replicas_in_ranges_equal_one_trainer(tmp_path):
    arch, x, y = _training_data()
    ref = _single_training_run(**TRAIN_OPTIONS).digest()
    with ThreadPoolExecutor(2) as pool:
        for block in (1, 3):
            got = train_replicas(arch, x, y, replicas=7, epochs=3, executor=pool, block_replicas=block, **TRAIN_OPTIONS)
            assert got.digest() == ref
        path = tmp_path / "replicas.h5"
        first = train_replicas(arch, x, y, replicas=7, epochs=3, executor=pool, block_replicas=2, checkpoint=path,
                               **TRAIN_OPTIONS)
        again = train_replicas(arch, x, y, replicas=7, epochs=3, executor=pool, block_replicas=2, checkpoint=path,
                               **TRAIN_OPTIONS)
        assert first.digest() == again.digest() == ref
        with pytest.raises(TypeError, match="first_replica|replicas"):
            train_replicas(arch, x, y, replicas=7, epochs=3, executor=pool, **{**TRAIN_OPTIONS, "replicas": 2})
        with pytest.raises(ValueError, match="learning_rate"):
            train_replicas(arch, x, y, replicas=7, epochs=3, executor=pool, learning_rate=-1.0)


@pytest.mark.slow
def test_a_process_pool_survives_a_killed_worker(tmp_path, whole):
    args = {f"{a}-{b}": (str(tmp_path / f"marker-{a}"), DYN, np.array([0.2]), (0.0, 1.0), N, (a, b),
                         {**OPTIONS, "store_positions": False, "progress": False}, False)
            for a, b in ensemble_ranges(N, 2 * BLOCK)}
    # Only the second range kills its worker (once); the others find their marker.
    for name, task in args.items():
        if not name.startswith(f"{2 * BLOCK}-"):
            (tmp_path / f"marker-{name.split('-')[0]}").write_text("")
    with TaskRunner(2, retries=1) as runner:
        parts = dict(runner.run(_parallel_tasks.dies_once, args))
    assert (tmp_path / f"marker-{2 * BLOCK}").read_text() == "killed"
    assert merge_particle_results(list(parts.values())).digest() == whole.reduced().digest()
    with TaskRunner(1) as runner, pytest.raises(ArithmeticError, match="task 4 fails"):
        list(runner.run(_parallel_tasks.fails, {"a": (4,)}))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client


def test_dask_cluster_gives_the_single_run_for_ensembles_and_replicas(dask_client, whole):
    serial = whole.reduced().digest()
    for block in (BLOCK, 3 * BLOCK):
        got = simulate_ensemble(DYN, [0.2], (0.0, 1.0), n_particles=N, executor=dask_client, block_particles=block,
                                **OPTIONS)
        assert got.digest() == serial
    arch, x, y = _training_data()
    got = train_replicas(arch, x, y, replicas=7, epochs=3, executor=dask_client, block_replicas=2, **TRAIN_OPTIONS)
    assert got.digest() == _single_training_run(**TRAIN_OPTIONS).digest()


def test_dask_reschedules_the_task_of_a_lost_worker(dask_client, tmp_path, whole):
    args = {f"{a}-{b}": (str(tmp_path / f"marker-{a}"), DYN, np.array([0.2]), (0.0, 1.0), N, (a, b),
                         {**OPTIONS, "store_positions": False, "progress": False}, False)
            for a, b in ensemble_ranges(N, 2 * BLOCK)}
    for name in args:
        if not name.startswith("0-"):
            (tmp_path / f"marker-{name.split('-')[0]}").write_text("")
    parts = dict(TaskRunner(dask_client).run(_parallel_tasks.dies_once, args))
    assert (tmp_path / "marker-0").read_text() == "killed"
    assert merge_particle_results(list(parts.values())).digest() == whole.reduced().digest()
    assert dict(TaskRunner(dask_client).run(_parallel_tasks.square, {k: (k,) for k in range(5)})) == {
        k: k * k for k in range(5)}


def test_a_parameter_sweep_records_one_seed_per_run_and_resumes_from_its_file(tmp_path, monkeypatch):
    from ib_physics.parallel import simulate_sweep
    from ib_physics.parallel.store import TaskStore

    runs = {f"D={d}": dict(dynamics=ib.Dynamics(potential=Harmonic(1.0), diffusion=d), x0=[0.5], t_span=(0.0, 2.0),
                           dt=0.01, n_particles=3000, t_eval=[0.0, 1.0, 2.0]) for d in (0.1, 0.4, 1.6)}
    runs["fixed seed"] = {**runs["D=0.4"], "seed": 5}
    path = tmp_path / "sweep.h5"
    real_add = TaskStore.add

    def add_then_stop(self, name, writer):
        real_add(self, name, writer)
        if len(self.done) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(TaskStore, "add", add_then_stop)
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(KeyboardInterrupt):
            simulate_sweep(runs, executor=pool, seed=21, path=path)
        monkeypatch.setattr(TaskStore, "add", real_add)
        got = simulate_sweep(runs, executor=pool, seed=21, path=path)
    assert list(got) == list(runs)
    # Each run is the simulate call with its recorded seed; the stationary variance is D (stiffness 1).
    for name, res in got.items():
        seed = 5 if name == "fixed seed" else np.random.SeedSequence(21).spawn(4)[list(runs).index(name)]
        alone = ib.simulate(**{k: v for k, v in runs[name].items() if k != "seed"}, seed=seed, store_positions=False)
        assert res.digest() == alone.reduced().digest() and res.seed == alone.seed
    d = [0.1, 0.4, 1.6]
    for value, key in zip(d, ("D=0.1", "D=0.4", "D=1.6")):
        assert got[key].variance[-1, 0] == pytest.approx(value * (1 - np.exp(-4.0)), rel=0.08)
    with pytest.raises(ValueError, match="'bad'.*dt"):
        simulate_sweep({"bad": {**runs["D=0.1"], "dt": -1.0}}, executor=1)
    with pytest.raises(ValueError, match="set by the sweep"):
        simulate_sweep({"bad": {**runs["D=0.1"], "threads": 2}}, executor=1)


def test_flavour_probes_name_one_particle_of_each_kernel_flavour_the_ranges_still_need():
    from ib_physics.particles.simulate import flavour_probes

    ranges = [(0, 10), (10, 20), (20, 25)]
    # Tracers only in the second range: particle 0 compiled the flavour without trails.
    assert flavour_probes([12, 14], 25, ranges, 0) == [12]
    # Every range traced, particle 3 among the tracers: nothing more.
    assert flavour_probes([3, 11, 22], 25, ranges, 3) == []
    # Particle 0 traced, the later ranges are not: a particle of the first untraced range.
    assert flavour_probes(2, 25, ranges, 0) == [10]
    assert flavour_probes(0, 25, ranges, 0) == []
    # A sweep's single range: a traced run whose particle 0 is not a tracer.
    assert flavour_probes([7], 25, [(0, 25)], 0) == [7]
    with pytest.raises(ValueError, match="tracers"):
        flavour_probes([30], 25, ranges, 0)


def test_an_ensemble_compiles_both_kernel_flavours_before_it_fans_out(monkeypatch):
    from ib_physics.parallel import ensemble as ensemble_module

    calls = []
    real = ensemble_module.simulate

    def recording(*args, **kwargs):
        calls.append(kwargs["particles"])
        return real(*args, **kwargs)

    monkeypatch.setattr(ensemble_module, "simulate", recording)
    # Tracers in the third range only: particle 0 validates (no trails), the tracer compiles the rest.
    options = {**OPTIONS, "t_eval": [0.0, 0.1], "tracers": [2 * BLOCK + 5]}
    with ThreadPoolExecutor(2) as pool:
        got = simulate_ensemble(DYN, [0.2], (0.0, 0.1), n_particles=3 * BLOCK, executor=pool,
                                block_particles=BLOCK, per_particle=True, store_positions=True, **options)
    assert calls[:2] == [(0, 1), (2 * BLOCK + 5, 2 * BLOCK + 6)]
    assert sorted(calls[2:]) == [(0, BLOCK), (BLOCK, 2 * BLOCK), (2 * BLOCK, 3 * BLOCK)]
    assert got.digest() == ib.simulate(DYN, [0.2], (0.0, 0.1), n_particles=3 * BLOCK, **options).digest()


def test_a_traced_sweep_run_is_validated_on_a_tracer(monkeypatch):
    from ib_physics.parallel import simulate_sweep
    from ib_physics.parallel import sweep as sweep_module

    calls = []
    real = sweep_module.simulate

    def recording(*args, **kwargs):
        calls.append(kwargs.get("particles"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "simulate", recording)
    base = dict(dynamics=DYN, x0=[0.2], t_span=(0.0, 0.1), dt=0.01, n_particles=50, domain=BOX)
    with ThreadPoolExecutor(1) as pool:
        got = simulate_sweep({"traced": {**base, "tracers": [9, 7]}, "plain": base}, executor=pool, seed=4,
                             per_particle=True)
    # One validating run per run, on the run's first tracer (the flavour with trails), else particle 0.
    assert calls[:2] == [(7, 8), (0, 1)]
    assert got["traced"].tracer_indices.tolist() == [7, 9] and got["plain"].trails is None
