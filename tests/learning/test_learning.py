"""The information-bottleneck engine: data, gradients, replicas, estimators, transition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from ib_physics.learning import (Architecture, Trainer, binned_information, ib_dataset, icosahedron_vertices,
                                 kde_information, split_indices, transition_epoch)
from ib_physics.learning import _kernels
from ib_physics.learning.data import label
from ib_physics.learning.network import ACTIVATIONS

DATA = ib_dataset()


# --- data -----------------------------------------------------------------------------------------


def test_dataset_has_every_pattern_once_and_2118_positives():
    assert DATA.x.shape == (4096, 12)
    assert len({tuple(row) for row in DATA.x.astype(int)}) == 4096
    assert int(DATA.y.sum()) == 2118
    # Row i is i in binary, most significant bit first.
    assert DATA.x[1].tolist() == [0] * 11 + [1] and DATA.x[2048].tolist() == [1] + [0] * 11
    assert DATA.label_entropy == pytest.approx(0.99916, abs=1e-5)


def _vertex_permutation(matrix: np.ndarray) -> np.ndarray:
    v = icosahedron_vertices()
    moved = v @ matrix.T
    dist = np.linalg.norm(moved[:, None, :] - v[None, :, :], axis=2)
    perm = dist.argmin(axis=1)
    assert np.all(dist[np.arange(12), perm] < 1e-9) and len(set(perm)) == 12
    return perm


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def test_labels_are_invariant_under_the_icosahedral_symmetries():
    v = icosahedron_vertices()
    face = v[0] + v[np.argsort(np.linalg.norm(v - v[0], axis=1))[1]]
    face += v[np.argsort(np.linalg.norm(v - face / 2, axis=1))[2]]
    symmetries = [_rotation(v[0], 2 * np.pi / 5), _rotation(face, 2 * np.pi / 3), -np.eye(3),
                  _rotation(v[0] + v[np.argsort(np.linalg.norm(v - v[0], axis=1))[1]], np.pi)]
    for q in symmetries:
        perm = _vertex_permutation(q)
        moved = np.empty_like(DATA.x)
        moved[:, perm] = DATA.x  # vertex i's bit moves to vertex perm[i]
        np.testing.assert_array_equal(label(moved), DATA.y)
    # A permutation that is not a symmetry changes some labels (the test can fail).
    swap = np.arange(12)
    swap[[0, 5]] = swap[[5, 0]]
    if not np.allclose(np.abs(v[0] @ v[5]), 1.0):
        assert np.any(label(DATA.x[:, swap]) != DATA.y)


def test_splits_are_seeded_disjoint_and_cover_the_patterns():
    train, test = split_indices(0.85, 3)
    assert train.size == round(0.85 * 4096) and np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == 4096
    np.testing.assert_array_equal(train, split_indices(0.85, 3)[0])
    assert not np.array_equal(train, split_indices(0.85, 4)[0])
    with pytest.raises(ValueError, match="fraction"):
        split_indices(0.0, 1)


# --- the net -------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_minibatch_gradient_matches_finite_differences(activation):
    arch = Architecture(widths=(12, 6, 4, 3), activation=activation)
    trainer = Trainer(arch=arch, x=DATA.x, y=(DATA.y + DATA.x[:, 0].astype(int)) % 3, seed=4)
    p = trainer.params[0].copy()
    p[arch.layers[0, 3]:arch.layers[0, 3] + 6] = 0.3  # biases away from the ReLU kink
    idx = np.arange(0, 4096, 37)
    scratch = _kernels.gradient_scratch(arch.layers, idx.size)
    g = np.zeros(arch.n_params)

    def loss(q: np.ndarray) -> float:
        return _kernels.batch_gradient(q, trainer.x, trainer.y, idx, 0, idx.size, arch.layers,
                                       ACTIVATIONS[activation], *scratch, np.zeros_like(g)) / idx.size

    _kernels.batch_gradient(p, trainer.x, trainer.y, idx, 0, idx.size, arch.layers, ACTIVATIONS[activation],
                            *scratch, g)
    h = 1e-6
    fd = np.array([(loss(p + h * e) - loss(p - h * e)) / (2 * h) for e in np.eye(arch.n_params)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


def test_replica_axis_equals_separate_runs_and_any_thread_count():
    arch = Architecture()
    train, _ = split_indices(0.45, 0)
    kw = dict(arch=arch, x=DATA.x[train], y=DATA.y[train], seed=9, batch_size=256)
    together = Trainer(replicas=3, threads=2, **kw)
    stats = together.run(4)
    for r in range(3):
        alone = Trainer(replicas=1, first_replica=r, threads=1, **kw)
        s = alone.run(4)
        np.testing.assert_array_equal(alone.params[0], together.params[r])
        np.testing.assert_array_equal(s.grad_std[0], stats.grad_std[r])
    # Splitting the epochs into pieces changes nothing either.
    pieces = Trainer(replicas=3, threads=1, **kw)
    pieces.run(1)
    pieces.run(3)
    np.testing.assert_array_equal(pieces.params, together.params)
    # Different replicas start differently.
    assert not np.array_equal(together.params[0], together.params[1])


def test_statistics_follow_their_definitions_with_sgd():
    """With SGD the update is -lr x gradient: update statistics = lr x gradient statistics."""
    arch = Architecture(widths=(12, 5, 2))
    trainer = Trainer(arch=arch, x=DATA.x, y=DATA.y, optimizer="sgd", learning_rate=0.05, batch_size=1000, seed=2)
    s = trainer.run(3)
    np.testing.assert_allclose(s.update_mean, 0.05 * s.grad_mean, rtol=1e-9)
    np.testing.assert_allclose(s.update_std, 0.05 * s.grad_std, rtol=1e-6)
    # One batch per epoch covering everything: no minibatch noise at all.
    full = Trainer(arch=arch, x=DATA.x, y=DATA.y, optimizer="sgd", learning_rate=0.05, batch_size=4096, seed=2)
    assert np.all(full.run(2).grad_std < 1e-12)
    np.testing.assert_allclose(s.weight_norm[0, -1, 0], np.linalg.norm(arch.weights(trainer.params[0], 0)))


def test_fixed_batches_repeat_their_order_and_reshuffled_do_not():
    order_a, order_b = np.zeros(100, np.int64), np.zeros(100, np.int64)
    _kernels.shuffle_order(order_a, 1, 0, np.uint64(5), np.uint64(6))
    _kernels.shuffle_order(order_b, 2, 0, np.uint64(5), np.uint64(6))
    assert sorted(order_a) == list(range(100)) and not np.array_equal(order_a, order_b)
    arch = Architecture(widths=(12, 4, 2))
    kw = dict(arch=arch, x=DATA.x, y=DATA.y, optimizer="sgd", learning_rate=0.1, batch_size=512, seed=1)
    fixed = Trainer(batches="fixed", **kw)
    reshuffled = Trainer(batches="reshuffled", **kw)
    fixed.run(1), reshuffled.run(1)
    np.testing.assert_array_equal(fixed.params, reshuffled.params)  # epoch 0 shares its order
    fixed.run(1), reshuffled.run(1)
    assert not np.array_equal(fixed.params, reshuffled.params)


def test_adam_matches_pytorch_on_the_same_batches(replay_in_torch):
    torch = pytest.importorskip("torch")
    arch = Architecture(widths=(12, 10, 7, 2))
    train, _ = split_indices(0.85, 1)
    trainer = Trainer(arch=arch, x=DATA.x[train], y=DATA.y[train], seed=3, learning_rate=1e-2, batch_size=512)
    p0 = trainer.params[0].copy()
    trainer.run(2)
    from ib_physics.learning.torch import to_torch

    model = to_torch(arch, p0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    replay_in_torch(trainer, model, opt, 2)
    layers = [m for m in model if isinstance(m, torch.nn.Linear)]
    for l, lin in enumerate(layers):
        np.testing.assert_allclose(arch.weights(trainer.params[0], l), lin.weight.detach().numpy().T, atol=1e-10)


def test_training_fits_85_percent_and_the_output_snr_falls_below_one_after_its_peak():
    """The paper's settings (Adam, lr 4e-4, batches of 512): layers cross in order, output last."""
    train, _ = split_indices(0.85, 0)
    trainer = Trainer(arch=Architecture(), x=DATA.x[train], y=DATA.y[train], replicas=3, seed=1)
    stats = trainer.run(1000)
    outs, _ = trainer.outputs(trainer.x)
    accuracy = (outs[:, :, -2:].argmax(axis=2) == trainer.y).mean(axis=1)
    assert np.all(accuracy >= 0.95), accuracy
    crossings = np.array([[transition_epoch(stats.epochs, stats.snr[r, :, l]) for l in range(6)] for r in range(3)])
    finite = np.isfinite(crossings[:, -1])
    assert finite.sum() >= 2, crossings
    for r in np.flatnonzero(finite):
        assert crossings[r, -1] > stats.epochs[np.argmax(stats.snr[r, :, -1])]
    # Lower layers cross first: the median crossing epoch grows from W3 to the output layer.
    median = np.nanmedian(crossings, axis=0)
    assert np.all(np.diff(median[2:]) > 0), median


# --- estimators and the transition ---------------------------------------------------------------


def test_binning_of_the_identity_layer_gives_12_bits_and_of_a_constant_layer_zero():
    edges = np.array([0.5])
    ident = binned_information(DATA.x, DATA.y, edges=edges)
    assert ident.i_xt == pytest.approx(12.0, abs=1e-12)
    assert ident.i_ty == pytest.approx(DATA.label_entropy, abs=1e-12)
    const = binned_information(np.full((4096, 3), 0.2), DATA.y)
    assert const.i_xt == 0.0 and const.i_ty == 0.0
    # Labels themselves as the layer: I(X;T) = I(T;Y) = H(Y).
    lab = binned_information(DATA.y[:, None].astype(float), DATA.y, edges=edges)
    assert lab.i_xt == pytest.approx(DATA.label_entropy) and lab.i_ty == pytest.approx(DATA.label_entropy)


def _mixture_information(points: np.ndarray, var: float) -> float:
    """Exact I(X;T) in bits for T = h(X) + N(0, var), X uniform over 1D ``points``, by quadrature."""
    def density(t):
        return np.mean(np.exp(-(t - points) ** 2 / (2 * var))) / np.sqrt(2 * np.pi * var)

    lo, hi = points.min() - 12 * np.sqrt(var), points.max() + 12 * np.sqrt(var)
    h_t = integrate.quad(lambda t: -density(t) * np.log(max(density(t), 1e-300)), lo, hi, limit=400,
                         points=list(points))[0]
    h_noise = 0.5 * np.log(2 * np.pi * np.e * var)
    return (h_t - h_noise) / np.log(2)


@pytest.mark.parametrize("spacing", [0.05, 0.3, 1.0, 3.0])
def test_kde_bounds_bracket_the_exact_information_of_gaussian_mixtures(spacing):
    points = spacing * np.arange(8.0)
    y = (np.arange(8) % 2).astype(int)
    exact = _mixture_information(points, 0.1)
    upper = kde_information(points[:, None], y, noise_variance=0.1).i_xt
    lower = kde_information(points[:, None], y, noise_variance=0.1, bound="lower").i_xt
    assert lower - 1e-9 <= exact <= upper + 1e-9
    if spacing >= 3.0:  # well separated: all three are log2(8) = 3 bits
        assert upper == pytest.approx(3.0, abs=1e-6) and lower == pytest.approx(3.0, abs=1e-3)


def _double_precision_kde(t: np.ndarray, y: np.ndarray, scale: float) -> tuple[float, float]:
    """I(X;T), I(T;Y) in bits from the full double-precision kernel matrix (no pair skipped)."""
    kernel = np.exp(-((t[:, None, :] - t[None, :, :]) ** 2).sum(axis=2) / scale)
    whole = -np.mean(np.log(kernel.mean(axis=1)))
    within = sum((y == c).mean() * -np.mean(np.log(kernel[np.ix_(y == c, y == c)].mean(axis=1)))
                 for c in np.unique(y))
    return whole / np.log(2), (whole - within) / np.log(2)


@pytest.mark.parametrize("spread, offset", [(0.2, 0.0), (1.0, 0.0), (6.0, 0.0), (1.0, 1e4)])
def test_kde_kernel_agrees_with_the_double_precision_matrix(spread, offset):
    """The single-precision pair kernel, its cutoff (most pairs skipped at spread 6) and the sorting
    give the double-precision estimate of every pair within 1e-6 bits, also far from the origin and
    with three unbalanced classes."""
    rng = np.random.default_rng(7)
    t = offset + spread * rng.standard_normal((700, 3)) * np.array([1.0, 0.5, 2.0])
    y = rng.choice(3, size=700, p=[0.5, 0.3, 0.2])
    for bound, scale in (("upper", 0.2), ("lower", 0.8)):
        est = kde_information(t, y, noise_variance=0.1, bound=bound)
        i_xt, i_ty = _double_precision_kde(t, y, scale)
        assert abs(est.i_xt - i_xt) < 1e-6 and abs(est.i_ty - i_ty) < 1e-6


def test_transition_is_the_lasting_crossing_after_the_peak_not_the_first_noisy_dip():
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 3001, dtype=float)
    # SNR rises to a peak at epoch 20, then decays as a power law through 1 at epoch 300.
    snr = np.where(epochs < 20, 0.5 * (epochs / 20) ** 1.5 * 10, 10 * (epochs / 20) ** (-np.log(10) / np.log(15)))
    noisy = snr * np.exp(0.3 * rng.standard_normal(epochs.size))
    naive = epochs[np.argmax(noisy < 1)]
    assert naive < 20
    t = transition_epoch(epochs, noisy)
    assert 300 / 1.15 < t < 300 * 1.15
    assert np.isnan(transition_epoch(epochs, np.full(epochs.size, 5.0)))


def test_binning_kernel_matches_numpy_digitize_and_unique_rows_on_edge_values():
    from ib_physics.learning.information import _pack, entropy_bits

    rng = np.random.default_rng(0)
    for t in (np.tanh(2 * rng.normal(size=(4096, 7))), np.round(rng.normal(size=(4096, 3)), 1)):
        for edges in (np.linspace(-1, 1, 30), np.array([-0.5, 0.1, 0.3, 0.9]), np.array([0.0])):
            got = binned_information(t, DATA.y, edges=edges)
            rows = np.digitize(t, edges)
            h = entropy_bits(rows)  # unique rows, no packing
            h_y = sum((DATA.y == c).mean() * entropy_bits(rows[DATA.y == c]) for c in (0, 1))
            assert got.i_xt == pytest.approx(h, abs=1e-12) and got.i_ty == pytest.approx(h - h_y, abs=1e-12)
            assert entropy_bits(_pack(rows, edges.size + 1)) == pytest.approx(h, abs=1e-12)


def test_per_sample_statistics_equal_minibatch_statistics_of_single_rows_when_weights_stand_still():
    """Batches of one row, SGD with a vanishing step: the epoch's minibatches are the rows themselves."""
    arch = Architecture(widths=(12, 5, 3, 2))
    train, _ = split_indices(0.45, 1)
    trainer = Trainer(arch=arch, x=DATA.x[train], y=DATA.y[train], optimizer="sgd", learning_rate=1e-300,
                      batch_size=1, seed=3, replicas=2)
    mean, std = trainer.per_sample_statistics()
    stats = trainer.run(1)
    np.testing.assert_allclose(stats.grad_mean[:, 0], mean, rtol=1e-9)
    np.testing.assert_allclose(stats.grad_std[:, 0], std, rtol=1e-9)
    # Minibatches of B rows drawn without replacement: Var(mean of B) = Var(row) / B x (n - B) / (n - 1);
    # the k = n / B batches of an epoch estimate it with the population variance, (k - 1) / k of that.
    n, b = train.size, 97
    assert n % b == 0
    coarse = Trainer(arch=arch, x=DATA.x[train], y=DATA.y[train], optimizer="sgd", learning_rate=1e-300,
                     batch_size=b, seed=3, replicas=2)
    s = coarse.run(30)
    k = n // b
    predicted = std**2 / b * (n - b) / (n - 1) * (k - 1) / k
    measured = np.mean(s.grad_std**2, axis=1)  # average over epochs of the between-batch variance
    np.testing.assert_allclose(measured, predicted, rtol=0.2)


def test_kde_information_is_in_bits_where_the_value_is_known():
    """Classes far apart and each class at one point: T identifies Y, so I(T;Y) = H(Y) exactly (1 bit
    for balanced labels, 0.811 bits for 3:1), and I(X;T) = H(Y) as well."""
    for labels, h_y in (([0] * 20 + [1] * 20, 1.0), ([0] * 30 + [1] * 10, 0.8112781244591328)):
        y = np.array(labels)
        t = np.where(y[:, None] == 0, 0.0, 100.0) * np.ones((1, 3))
        for bound in ("upper", "lower"):
            est = kde_information(t, y, noise_variance=0.1, bound=bound)
            assert est.i_ty == pytest.approx(h_y, abs=1e-12) and est.i_xt == pytest.approx(h_y, abs=1e-12)


def test_binning_of_wide_layers_weights_each_class_by_its_probability():
    """Layers too wide for the packed kernel (13 units) take the unique-rows path: distinct rows identify
    the pattern, so I(T;Y) = H(Y) with unbalanced labels (a missing p(y) weight gives another number),
    and both paths agree on the 12 units they share."""
    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 10)
    t12 = rng.uniform(-0.99, 0.99, (40, 12))
    t13 = np.column_stack([t12, np.full(40, 0.3)])  # a 13th, constant unit
    h_y = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    narrow, wide = binned_information(t12, y), binned_information(t13, y)
    assert wide.i_ty == pytest.approx(h_y, abs=1e-12) and narrow.i_ty == pytest.approx(h_y, abs=1e-12)
    assert wide.i_xt == pytest.approx(np.log2(40), abs=1e-12) == narrow.i_xt


def test_kde_refuses_empty_layers_and_activities_beyond_single_precision():
    y = np.zeros(5, dtype=int)
    for t in (np.zeros((5, 0)), np.zeros((0, 3))):
        with pytest.raises(ValueError, match="`t` must have at least one row"):
            kde_information(t, y[: t.shape[0]])
    with pytest.raises(ValueError, match="`t` must lie within 1e\\+18 of its mean"):
        kde_information(np.array([[0.0], [1e19], [0.0], [0.0], [0.0]]), y)
    assert kde_information(np.full((5, 2), 1e17), y).i_xt == 0.0  # far from the origin, all equal: 0 bits
