"""The experiments on executors give the numbers of the run in one process; the CLI's cluster flags."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

from ib_physics.cli import main
from ib_physics.experiments.information_bottleneck import StudyConfig, run_study
from ib_physics.experiments.layers import LayersConfig, _train, _train_on
from ib_physics.particles.result import read_particle_result

STUDY = StudyConfig(fractions=(0.05, 0.85), networks=3, epochs=40, snapshots=6, batch_size=256)


def test_bottleneck_study_on_an_executor_equals_the_serial_study_and_resumes(tmp_path, monkeypatch):
    _, serial = run_study(STUDY, out=tmp_path / "serial", progress=False)
    from ib_physics.parallel.store import TaskStore

    real_add = TaskStore.add

    def add_then_stop(self, name, writer):
        real_add(self, name, writer)
        raise KeyboardInterrupt  # after the first finished task

    monkeypatch.setattr(TaskStore, "add", add_then_stop)
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(KeyboardInterrupt):
            run_study(STUDY, out=tmp_path / "pool", progress=False, executor=pool)
        assert not (tmp_path / "pool" / "bottleneck.h5").exists()
        monkeypatch.setattr(TaskStore, "add", real_add)
        lines = []
        path, runs = run_study(STUDY, out=tmp_path / "pool", progress=False, executor=pool, log=lines.append)
    assert any("resuming: 1 of" in line for line in lines)
    for a, b in zip(serial, runs):
        for name in ("i_xt", "i_ty", "train_accuracy", "test_loss", "sample_grad_std", "snapshot_epochs",
                     "transitions"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        for name in ("grad_mean", "grad_std", "update_std", "weight_norm", "loss"):
            np.testing.assert_array_equal(getattr(a.stats, name), getattr(b.stats, name), err_msg=name)
    with h5py.File(tmp_path / "serial" / "bottleneck.h5") as f, h5py.File(path) as g:
        for run in f["runs"]:
            np.testing.assert_array_equal(f["runs"][run]["trainer_state"]["params"][()],
                                          g["runs"][run]["trainer_state"]["params"][()])
        assert bool(g.attrs["complete"])


def test_layer_ensembles_trained_on_an_executor_equal_the_serial_training(tmp_path):
    config = LayersConfig(networks=6, epochs=12, widths=(12, 5, 3, 2), traced=3, block=2, weights_per_layer=1,
                          particles=300, cells=400)
    serial = _train(config, tmp_path, 1, False, 60.0, lambda _: None)
    (tmp_path / "pool").mkdir()
    with ThreadPoolExecutor(2) as pool:
        pooled = _train_on(pool, config, tmp_path / "pool", False, lambda _: None)
    for a, b in zip(serial, pooled):
        assert a.sampling == b.sampling
        np.testing.assert_array_equal(a.stats.grad_std, b.stats.grad_std)
        for name in ("weights", "gradients", "updates"):
            np.testing.assert_array_equal(getattr(a.trace, name), getattr(b.trace, name), err_msg=name)


def test_cli_runs_particles_on_a_local_cluster_with_the_serial_numbers(tmp_path, capsys):
    pytest.importorskip("distributed")
    args = ["particles", "--particles", "9000", "--duration", "0.5", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    with h5py.File(tmp_path / "one" / "double_well.h5") as f, h5py.File(tmp_path / "two" / "double_well.h5") as g:
        one, two = read_particle_result(f["particles"]), read_particle_result(g["particles"])
    assert two.final_positions is None and two.diagnostics["merged_parts"] >= 2
    assert two.digest() == one.reduced().digest()
    assert main([*args, "--out", str(tmp_path / "bad"), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])


@pytest.mark.slow
def test_the_dye_on_an_executor_writes_the_numbers_of_one_process(tmp_path):
    from ib_physics.experiments.dye import run_dye
    from ib_physics.experiments.dye_config import config_from_mapping

    config = config_from_mapping({"particles": 5000, "seed": 3, "duration_s": 300.0, "dt_s": 2.0, "frames": 4,
                                  "density_per_frame": 3, "grid_r": 12, "grid_z": 16})
    run_dye(config, out=tmp_path / "one", progress=False, figures=False)
    with ThreadPoolExecutor(2) as pool:
        run_dye(config, out=tmp_path / "two", progress=False, figures=False, executor=pool)
    assert not list((tmp_path / "two").glob(".dye-*"))
    with h5py.File(tmp_path / "one" / "dye.h5") as a, h5py.File(tmp_path / "two" / "dye.h5") as b:
        for name in ("particles/rz_counts", "particles/side_counts", "particles/sample", "particles/mean",
                     "particles/trails", "metrics/l1", "metrics/ks_statistic"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
