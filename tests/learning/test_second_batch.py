"""The traced second minibatch: an independent gradient at the same weights, and the adapter's
paired-batch noise estimate built on it."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import ib_physics as ib
from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices
from ib_physics.learning import _kernels
from ib_physics.learning.network import ACTIVATIONS
from ib_physics.learning.records import GradientStatistics, read_statistics, write_statistics

DATA = ib_dataset()
SMALL = Architecture(widths=(12, 5, 3, 2))
INDEX = np.concatenate([np.arange(wo, wo + a * b) for a, b, wo, _ in SMALL.layers])


def _trainer(**kw):
    train, _ = split_indices(0.25, 1)
    base = dict(arch=SMALL, x=DATA.x[train], y=DATA.y[train], seed=5, batch_size=100, replicas=3,
                trace_second_batch=True, trace_epochs=[2])
    base.update(kw)
    return Trainer(**base)


def _gradient(trainer: Trainer, p: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The mean gradient of every parameter over ``rows`` at parameters ``p``."""
    g = np.zeros(SMALL.n_params)
    scratch = _kernels.gradient_scratch(SMALL.layers, max(rows.size, 1))
    _kernels.batch_gradient(p, trainer.x, trainer.y, rows, 0, rows.size, SMALL.layers,
                            ACTIVATIONS[SMALL.activation], *scratch, g)
    return g


@pytest.mark.parametrize("mode", ["reshuffled", "subset", "iid"])
def test_second_gradient_is_the_gradient_of_its_own_rows_at_the_steps_weights(mode):
    trainer = _trainer(batches=mode, optimizer="sgd", learning_rate=0.05)
    trainer.run(3)
    trace = trainer.trace()
    assert trace.second_gradients.shape == trace.gradients.shape
    replay = _trainer(batches=mode, optimizer="sgd", learning_rate=0.05, trace_second_batch=False, trace_epochs=())
    replay.run(1)
    p = replay.params[2].copy()  # replica 2 at the start of epoch 2
    first, second = replay.batch_indices(2, 1), replay.second_batch_indices(2, 1)
    assert [b.size for b in second] == [b.size for b in first]
    for b in (0, 1):
        np.testing.assert_allclose(trace.second_gradients[2, 0, b], _gradient(replay, p, second[b])[INDEX],
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(trace.gradients[2, 0, b], _gradient(replay, p, first[b])[INDEX],
                                   rtol=1e-12, atol=1e-15)
        assert not np.array_equal(np.sort(first[b]), np.sort(second[b]))  # its own stream
        if mode != "iid":
            assert np.unique(second[b]).size == second[b].size
        p = p - 0.05 * _gradient(replay, p, first[b])  # the step applies the first batch only


def test_a_second_batch_of_the_whole_set_repeats_the_full_gradient():
    n = _trainer().x.shape[0]
    for mode, equal in (("reshuffled", True), ("subset", True), ("iid", False)):
        trainer = _trainer(batches=mode, batch_size=n)
        trainer.run(2)
        t = trainer.trace()
        diff = np.abs(t.gradients - t.second_gradients).max()
        assert (diff < 1e-13) == equal, (mode, diff)


@pytest.mark.parametrize("mode", ["iid", "subset"])
def test_paired_batches_measure_the_minibatch_covariance_of_their_sampling_law(mode):
    """At frozen weights E[(g − g')²]/2 = Σ/B (i.i.d.) or Σ/B (n − B)/(n − 1) (fresh subset);
    the adapter's "pairs" diffusion per step is η²/2 times that, and the two laws are told apart."""
    train, _ = split_indices(0.25, 1)
    x, y = DATA.x[train][:40], DATA.y[train][:40]
    n, B, eta = 40, 10, 1e-9
    trainer = Trainer(arch=SMALL, x=x, y=y, seed=1, batch_size=B, replicas=600, batches=mode, optimizer="sgd",
                      learning_rate=eta, shared_initialization=True, trace_epochs=[1], trace_second_batch=True)
    p0 = trainer.params[0].copy()
    run = trainer.run(1)
    per_sample = np.array([_gradient(trainer, p0, np.array([i]))[INDEX] for i in range(n)])
    sigma = per_sample.var(axis=0)  # population variance over the n rows, per weight
    laws = {"iid": sigma / B, "subset": sigma / B * (n - B) / (n - 1)}
    t = trainer.trace()
    half = (t.gradients - t.second_gradients) ** 2 / 2.0
    estimate = half.mean(axis=(0, 1, 2)).sum()
    se = half.sum(axis=-1).std() / np.sqrt(half[..., 0].size)
    assert abs(estimate - laws[mode].sum()) < 3.5 * se
    other = laws["subset" if mode == "iid" else "iid"].sum()
    assert abs(estimate - other) > 3.5 * se
    stats = GradientStatistics.from_trainer(trainer, run)
    chosen = [int(i) for i in np.argsort(sigma[:stats.layer_sizes[0]])[-2:]]  # the noisiest weights of layer 1
    assert sigma[chosen].min() > 0
    model = ib.layer_dynamics(stats, coordinates={"weights": {stats.layer_names[0]: chosen}}, time_unit="step",
                              noise="pairs", source="updates")
    for c, i in zip(model.coordinates, chosen):
        assert c.measured_diffusion[0] == pytest.approx(eta**2 / 2 * laws[mode][i], rel=0.15)


def test_pairs_noise_is_refused_where_it_does_not_apply_and_round_trips_in_files(tmp_path):
    trainer = _trainer(optimizer="adam", learning_rate=1e-3, trace_epochs=[1, 2])
    stats = GradientStatistics.from_trainer(trainer, trainer.run(2))
    with pytest.raises(ValueError, match="SGD"):
        ib.layer_dynamics(stats, coordinates="norm", noise="pairs", source="updates")
    with pytest.raises(ValueError, match="noise_lags"):
        ib.layer_dynamics(stats, coordinates="norm", noise="pairs", source="gradients", noise_lags=2)
    model = ib.layer_dynamics(stats, coordinates="norm", noise="pairs", source="gradients")
    assert model.settings["noise"] == "pairs"
    plain = _trainer(trace_second_batch=False)
    stats_plain = GradientStatistics.from_trainer(plain, plain.run(2))
    with pytest.raises(ValueError, match="trace_second_batch"):
        ib.layer_dynamics(stats_plain, coordinates="norm", noise="pairs", source="gradients")
    with pytest.raises(TypeError, match="trace_second_batch"):
        _trainer(trace_second_batch="yes")
    with h5py.File(tmp_path / "s.h5", "w") as f:
        write_statistics(f.create_group("statistics"), stats)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        back = read_statistics(f["statistics"])
    np.testing.assert_array_equal(back.trace.second_gradients, stats.trace.second_gradients)
    np.testing.assert_array_equal(stats.select_replicas([2]).trace.second_gradients[0],
                                  stats.trace.second_gradients[2])
    other = _trainer(optimizer="adam", learning_rate=1e-3, trace_epochs=[1, 2])
    other.restore(trainer.state())
    np.testing.assert_array_equal(other.trace().second_gradients, trainer.trace().second_gradients)


def test_torch_recorder_keeps_the_second_minibatch_gradient_of_the_trainer(replay_in_torch):
    torch = pytest.importorskip("torch")
    from ib_physics.learning.torch import GradientRecorder, to_torch

    arch = Architecture(widths=(12, 6, 2))
    train, _ = split_indices(0.3, 2)
    trainer = Trainer(arch=arch, x=DATA.x[train], y=DATA.y[train], seed=4, learning_rate=1e-2, batch_size=256,
                      trace_epochs=(2,), trace_second_batch=True)
    p0 = trainer.params[0].copy()
    trainer.run(2)
    model = to_torch(arch, p0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.tensor(trainer.x), torch.tensor(trainer.y)
    queue = iter(trainer.second_batch_indices(0, 1))  # traced epoch 2 is 0-based epoch 1

    def second_loss():
        idx = torch.tensor(next(queue))
        return torch.nn.functional.cross_entropy(model(x[idx]), y[idx])

    rec = GradientRecorder(model, opt, trace_epochs=(2,), second_loss=second_loss)
    replay_in_torch(trainer, model, opt, 2, recorder=rec)
    theirs = rec.statistics(learning_rate=1e-2, batch_size=256, n_train=train.size,
                            sampling="reshuffled").trace.second_gradients
    mine = trainer.trace().second_gradients
    offset = 0
    for n_in, n_out in zip(arch.widths[:-1], arch.widths[1:]):
        size = n_in * n_out
        block = theirs[0, 0, :, offset:offset + size].reshape(-1, n_out, n_in).transpose(0, 2, 1).reshape(-1, size)
        np.testing.assert_allclose(block, mine[0, 0, :, offset:offset + size], rtol=1e-7, atol=1e-12)
        offset += size
    assert np.abs(theirs - rec.statistics(learning_rate=1e-2, batch_size=256, n_train=train.size,
                                          sampling="reshuffled").trace.gradients).max() > 1e-6
    with pytest.raises(TypeError, match="second_loss"):
        GradientRecorder(model, opt, second_loss=3)
    rec.close()


@pytest.mark.parametrize("mode", ["reshuffled", "fixed", "iid"])
def test_training_flavours_train_as_the_full_kernel_does(mode, monkeypatch):
    # Runs without a second-batch trace, and runs with epoch-wise sampling, take flavours of the
    # training kernel compiled without that code; the full kernel must give the same bits.
    def run(trainer):
        trainer.run(3)
        return trainer.params.copy(), trainer.last_run, trainer.trace()

    lean = run(_trainer(batches=mode, trace_second_batch=False))
    monkeypatch.setattr(_kernels, "training_kernel", lambda **kw: _kernels.train_epochs)
    full = run(_trainer(batches=mode, trace_second_batch=False))
    paired = run(_trainer(batches=mode, trace_second_batch=True))
    np.testing.assert_array_equal(lean[0], full[0])
    np.testing.assert_array_equal(lean[0], paired[0])  # the second batch never moves the weights
    for field in ("loss", "grad_mean", "grad_std", "update_mean", "update_std", "weight_norm"):
        np.testing.assert_array_equal(getattr(lean[1], field), getattr(full[1], field), err_msg=field)
    np.testing.assert_array_equal(lean[2].gradients, full[2].gradients)
    assert paired[2].second_gradients is not None and np.any(paired[2].second_gradients != 0.0)
