"""The bottleneck study end to end, its file, resume after Ctrl-C, and the PyTorch recorder."""

from __future__ import annotations


import h5py
import numpy as np
import pytest

from ib_physics.cli import main
from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices
from ib_physics.experiments.information_bottleneck import StudyConfig, read_study, run_study, snapshot_epochs

SMOKE = ["--fractions", "0.05,0.85", "--networks", "2", "--epochs", "60", "--snapshots", "8", "--batch-size", "256"]



@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bottleneck")
    assert main(["bottleneck", *SMOKE, "--out", str(out), "--quiet"]) == 0
    return out


def test_smoke_study_writes_one_group_per_run_and_the_figures(smoke, assert_png):
    with h5py.File(smoke / "bottleneck.h5") as f:
        assert f.attrs["experiment"] == "bottleneck" and bool(f.attrs["complete"])
        runs = f["runs"]
        assert sorted(runs) == ["fraction_0.0500", "fraction_0.8500"]
        g = runs["fraction_0.8500"]
        assert float(g.attrs["fraction"]) == 0.85 and g.attrs["optimizer"] == "adam"
        assert int(g.attrs["batch_size"]) == 256 and "binning" in g.attrs["estimator_label"]
        assert g["statistics/grad_mean"].shape == (2, 60, 6) and g["statistics"].attrs["sampling"] == "reshuffled"
        assert g["i_xt"].shape == (2, len(snapshot_epochs(60, 8)), 6)
        assert g["train_indices"].shape == (round(0.85 * 4096),)
    config, runs, attrs = read_study(smoke / "bottleneck.h5")
    assert config.networks == 2 and attrs["complete"]
    run = runs[1]
    # The information plane is bounded: I(X;T) <= 12 bits, I(T;Y) <= H(Y); the data processing
    # inequality holds layer to layer for the binning estimator of a deterministic net at epoch 0.
    assert np.all(run.i_xt <= 12 + 1e-9) and np.all(run.i_ty <= ib_dataset().label_entropy + 1e-9)
    assert np.all(run.train_accuracy[:, -1] > 0.7)
    for name in ("bottleneck_information_plane.png", "bottleneck_gradients.png", "bottleneck_snr.png",
                 "bottleneck_noise_scale.png"):
        assert_png(smoke / name)


def test_plot_redraws_the_study(smoke, tmp_path):
    assert main(["plot", str(smoke / "bottleneck.h5"), "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("bottleneck_*.png"))) == 4


@pytest.mark.parametrize("argv,key", [(["--networks", "0"], "networks"), (["--fractions", "0.5,1.5"], "fractions"),
                                      (["--widths", "12,5,3"], "widths"), (["--epochs", "-3"], "epochs")])
def test_bad_flags_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, argv, key):
    out = tmp_path / "o"
    assert main(["bottleneck", *argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err
    assert not out.exists()


def test_interrupted_study_resumes_to_the_same_numbers(tmp_path):
    config = StudyConfig(fractions=(0.45,), networks=2, epochs=40, snapshots=6, batch_size=256)
    _, whole = run_study(config, out=tmp_path / "whole", progress=False)
    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(config, out=tmp_path / "cut", progress=interrupt)
    _, _, attrs = read_study(tmp_path / "cut" / "bottleneck.h5")
    assert not attrs["complete"]
    _, resumed = run_study(config, out=tmp_path / "cut", progress=False)
    a, b = whole[0], resumed[0]
    np.testing.assert_array_equal(a.stats.epochs, b.stats.epochs)
    for name in ("grad_mean", "grad_std", "update_std", "weight_norm", "loss"):
        np.testing.assert_array_equal(getattr(a.stats, name), getattr(b.stats, name), err_msg=name)
    np.testing.assert_array_equal(a.snapshot_epochs, b.snapshot_epochs)
    np.testing.assert_array_equal(a.i_xt, b.i_xt)
    # Another study's settings in the same directory are refused, not mixed in.
    with pytest.raises(ValueError, match="other settings"):
        run_study(StudyConfig(fractions=(0.45,), networks=3, epochs=40), out=tmp_path / "cut", progress=False)


def test_torch_recorder_matches_the_built_in_statistics(tmp_path, replay_in_torch):
    torch = pytest.importorskip("torch")
    from ib_physics.learning.records import read_gradient_statistics
    from ib_physics.learning.torch import GradientRecorder, to_torch

    data = ib_dataset()
    arch = Architecture(widths=(12, 10, 7, 2))
    train, _ = split_indices(0.85, 2)
    trainer = Trainer(arch=arch, x=data.x[train], y=data.y[train], seed=5, learning_rate=1e-2, batch_size=512,
                      trace_epochs=(2,))
    p0 = trainer.params[0].copy()
    stats = trainer.run(3)
    model = to_torch(arch, p0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rec = GradientRecorder(model, opt, trace_epochs=(2,))
    replay_in_torch(trainer, model, opt, 3, recorder=rec)
    got = rec.epoch_statistics()
    assert rec.names == ("0", "2", "4")
    for name in ("grad_mean", "grad_std", "update_mean", "update_std", "weight_norm", "loss"):
        np.testing.assert_allclose(getattr(got, name), getattr(stats, name), rtol=1e-7, err_msg=name)
    # The trace in torch's layout (weight (n_out, n_in)) against the trainer's (n_in, n_out), per layer.
    full = rec.statistics(learning_rate=1e-2, batch_size=512, n_train=train.size, sampling="reshuffled")
    mine = trainer.trace()
    offset = 0
    for n_in, n_out in zip(arch.widths[:-1], arch.widths[1:]):
        size = n_in * n_out
        theirs = full.trace.gradients[0, 0, :, offset:offset + size].reshape(-1, n_out, n_in).transpose(0, 2, 1)
        np.testing.assert_allclose(theirs.reshape(-1, size), mine.gradients[0, 0, :, offset:offset + size],
                                   rtol=1e-7, atol=1e-12)
        offset += size
    path = rec.save(tmp_path / "torch.h5", learning_rate=1e-2, batch_size=512, n_train=train.size,
                    sampling="reshuffled", settings={"model": "12-10-7-2"})
    back = read_gradient_statistics(path)
    assert back.producer == "torch" and back.optimizer == "adam" and back.steps_per_epoch == trainer.batches_per_epoch
    np.testing.assert_array_equal(back.stats.grad_std, got.grad_std)
    np.testing.assert_array_equal(back.trace.updates, full.trace.updates)
    with h5py.File(path) as f:
        assert f["statistics/grad_std"].shape == (1, 3, 3)
    rec.close()


def test_kde_study_runs_and_stays_within_the_bounds(tmp_path):
    config = StudyConfig(fractions=(0.85,), networks=1, epochs=4, snapshots=2, widths=(12, 3, 2), estimator="kde")
    _, [run] = run_study(config, out=tmp_path, progress=False)
    assert run.i_xt.shape == (1, 3, 2)  # epochs 0, 1 and 4
    assert np.all(run.i_xt >= 0) and np.all(run.i_xt <= 12 + 1e-9)
    # Pairwise bounds: I(T;Y) <= I(X;T), and I(T;Y) <= H(Y) since a class holds p(y) of the kernel mass.
    assert np.all(run.i_ty <= run.i_xt + 1e-9)
    assert np.all(run.i_ty <= ib_dataset().label_entropy + 1e-9)


def test_relu_layers_are_binned_over_their_range_and_the_figure_says_so():
    relu = StudyConfig(activation="relu")
    assert relu.resolved_bin_range == "layer" and "min and max" in relu.estimator_label()
    assert StudyConfig().resolved_bin_range == "fixed" and "[-1, 1]" in StudyConfig().estimator_label()
    with pytest.raises(ValueError, match="bin_range"):
        StudyConfig(bin_range="everywhere")


@pytest.mark.slow
def test_relu_networks_do_not_compress_where_tanh_networks_do(tmp_path):
    """Saxe et al. (ICLR 2018): with tanh units the hidden layers' I(X;T) rises, then falls
    (compression, under binning on [-1, 1]); with ReLU units it does not fall under KDE nor under
    binning over each layer's range, while binning ReLU outputs on [-1, 1] fakes a compression.
    6 networks, 85 %, 3000 epochs, 24 snapshots (measured: tanh W5 falls 2.29 bits, W4 0.51; ReLU KDE
    falls at most 0.01 bits in any hidden layer; range binning at most 0.03 in W1–W4 — W5, three
    units, loses 1.0 bit as its range widens — and [-1, 1] binning of ReLU fakes 1.9 bits in W5)."""
    base = dict(fractions=(0.85,), networks=6, epochs=3000, snapshots=24)

    def drops(**kw):
        _, [run] = run_study(StudyConfig(**base, **kw), out=tmp_path / str(len(list(tmp_path.iterdir()))),
                             progress=False)
        mean = run.i_xt.mean(axis=0)[:, :-1]  # hidden layers
        return mean.max(axis=0) - mean[-1]

    tanh = drops(activation="tanh")
    assert tanh[4] > 1.0 and tanh[3] > 0.3
    assert np.all(drops(activation="relu", estimator="kde") < 0.1)
    assert np.all(drops(activation="relu", bin_range="layer")[:4] < 0.1)
    assert drops(activation="relu", bin_range="fixed")[4] > 1.0
