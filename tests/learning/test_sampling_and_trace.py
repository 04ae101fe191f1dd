"""Minibatch sampling modes of the trainer, shared initialisation and the weight trace."""

from __future__ import annotations

import numpy as np
import pytest

from ib_physics.learning import Architecture, Trainer, ib_dataset, split_indices
from ib_physics.learning import _kernels
from ib_physics.learning.network import ACTIVATIONS, SAMPLINGS

DATA = ib_dataset()
SMALL = Architecture(widths=(12, 5, 3, 2))


def _trainer(**kw):
    train, _ = split_indices(0.25, 1)
    base = dict(arch=SMALL, x=DATA.x[train], y=DATA.y[train], seed=3, batch_size=100, replicas=3)
    base.update(kw)
    return Trainer(**base)


def test_each_sampling_mode_draws_the_rows_it_promises():
    t = {mode: _trainer(batches=mode) for mode in SAMPLINGS}
    n = t["iid"].x.shape[0]
    for mode, trainer in t.items():
        batches = trainer.batch_indices(1, 5)
        sizes = [b.size for b in batches]
        assert sizes == [100] * (n // 100) + ([n % 100] if n % 100 else [])
        rows = np.concatenate(batches)
        assert rows.min() >= 0 and rows.max() < n
        if mode in ("reshuffled", "fixed"):
            np.testing.assert_array_equal(np.sort(rows), np.arange(n))  # a partition of the epoch
        if mode == "subset":
            assert all(np.unique(b).size == b.size for b in batches)
            assert np.unique(rows).size < n  # steps are independent: rows repeat across steps
        if mode == "iid":
            assert any(np.unique(b).size < b.size for b in batches)  # with replacement
    # fixed: the same order every epoch; the others change
    np.testing.assert_array_equal(t["fixed"].batch_order(0, 0), t["fixed"].batch_order(0, 7))
    for mode in ("reshuffled", "iid", "subset"):
        a, b = t[mode].batch_indices(0, 0), t[mode].batch_indices(0, 1)
        assert not np.array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="batch_indices"):
        t["iid"].batch_order(0, 0)


@pytest.mark.parametrize("mode", ["iid", "subset"])
def test_covariance_of_a_minibatch_mean_follows_the_sampling_law(mode):
    """Var of the mean of B values out of n: σ²/B (i.i.d.), σ²/B (n − B)/(n − 1) (subset)."""
    n, B, trials = 40, 10, 20000
    values = np.random.default_rng(0).standard_normal(n)
    sigma2 = values.var()
    order, picks = np.zeros(n, np.int64), np.zeros(B, np.int64)
    means = np.empty(trials)
    code = SAMPLINGS[mode]
    for k in range(trials):
        m = _kernels.fill_batch(order, picks, code, k, 0, B, 0, np.uint64(11), np.uint64(12))
        means[k] = values[picks[:m]].mean()
    expected = sigma2 / B * ((n - B) / (n - 1) if mode == "subset" else 1.0)
    se = expected * np.sqrt(2.0 / trials)
    assert abs(means.var() - expected) < 4 * se
    assert abs(means.mean() - values.mean()) < 4 * np.sqrt(expected / trials)
    # The two laws differ by 25 % here: the test tells them apart.
    other = sigma2 / B * (1.0 if mode == "subset" else (n - B) / (n - 1))
    assert abs(means.var() - other) > 4 * se


@pytest.mark.parametrize("mode", ["iid", "subset"])
def test_per_step_sampling_keeps_replicas_independent_of_grouping(mode):
    together = _trainer(batches=mode, replicas=3)
    together.run(3)
    alone = _trainer(batches=mode, replicas=1, first_replica=2)
    alone.run(2)
    alone.run(1)
    np.testing.assert_array_equal(together.params[2], alone.params[0])


def test_shared_initialisation_starts_every_replica_from_replica_zero():
    shared = _trainer(shared_initialization=True, replicas=4)
    independent = _trainer(replicas=4)
    for r in range(4):
        np.testing.assert_array_equal(shared.params[r], independent.params[0])
    assert not np.array_equal(independent.params[0], independent.params[1])
    shared.run(2)
    assert not np.array_equal(shared.params[0], shared.params[1])  # only the batches differ
    with pytest.raises(TypeError, match="shared_initialization"):
        _trainer(shared_initialization="yes")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_trace_holds_the_weights_gradients_and_updates_of_every_step(optimizer):
    trainer = _trainer(optimizer=optimizer, learning_rate=0.05, trace_epochs=[1, 3, 4], batches="iid")
    trainer.run(2)
    trainer.run(3)
    trace = trainer.trace()
    assert trace.epochs.tolist() == [1, 3, 4]
    n_b = trainer.batches_per_epoch
    W = sum(a * b for a, b in zip(SMALL.widths[:-1], SMALL.widths[1:]))
    assert trace.weights.shape == (3, 3, W) and trace.gradients.shape == (3, 3, n_b, W)
    # Replica 1 at the start of epoch 3, from a run of the first two epochs (biases included).
    replay = _trainer(optimizer=optimizer, learning_rate=0.05, batches="iid")
    replay.run(2)
    p = replay.params[1].copy()
    index = np.concatenate([np.arange(wo, wo + a * b) for a, b, wo, _ in SMALL.layers])
    np.testing.assert_array_equal(p[index], trace.weights[1, 1])
    # Its first step's gradient on the rows the trainer drew.
    rows = replay.batch_indices(1, 2)[0]
    g = np.zeros(SMALL.n_params)
    scratch = _kernels.gradient_scratch(SMALL.layers, trainer.batch_size)
    _kernels.batch_gradient(p, trainer.x, trainer.y, rows, 0, rows.size, SMALL.layers,
                            ACTIVATIONS[SMALL.activation], *scratch, g)
    np.testing.assert_allclose(trace.gradients[1, 1, 0], g[index], rtol=1e-12, atol=1e-15)
    if optimizer == "sgd":
        np.testing.assert_allclose(trace.updates[1, 1], -0.05 * trace.gradients[1, 1], rtol=1e-14)
    # Weights at the start of epoch 4 = start of epoch 3 + all traced updates of epoch 3.
    np.testing.assert_allclose(trace.weights[:, 2], trace.weights[:, 1] + trace.updates[:, 1].sum(axis=1),
                               rtol=0, atol=1e-13)
    # Chunking does not change the trace.
    whole = _trainer(optimizer=optimizer, learning_rate=0.05, trace_epochs=[1, 3, 4], batches="iid")
    whole.run(5)
    np.testing.assert_array_equal(whole.trace().gradients, trace.gradients)


def test_trace_survives_a_checkpoint_round_trip_and_refuses_bad_epochs():
    trainer = _trainer(trace_epochs=(2,))
    trainer.run(2)
    other = _trainer(trace_epochs=(2,))
    other.restore(trainer.state())
    np.testing.assert_array_equal(other.trace().updates, trainer.trace().updates)
    with pytest.raises(ValueError, match="trace_epochs"):
        _trainer(trace_epochs=[0])
    with pytest.raises(TypeError, match="trace_epochs"):
        _trainer(trace_epochs=["a"])
    with pytest.raises(ValueError, match="GiB"):
        _trainer(replicas=2000, trace_epochs=range(1, 2000)).run(1999)
