"""The adapter: gradient statistics -> per-coordinate Dynamics (PHYSICS.md §5)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import ib_physics as ib
from ib_physics.adapter import isotropic_coefficients, layer_dynamics, step_duration
from ib_physics.learning.least_squares import LeastSquares, sampling_weights, train_least_squares
from ib_physics.learning.records import GradientStatistics, read_gradient_statistics


# --- synthetic statistics ---------------------------------------------------------------------


def _synthetic(*, R=400, S=3, n_b=8, sizes=(3, 2), eta=0.1, mu=(0.5, -1.0, 2.0, 0.3, 0.0), sigma=None,
               update_mean=None, update_sd=None, seed=0, sampling="iid", correlated=False):
    """A trace whose gradients are mu + sigma * N(0, 1) i.i.d. per replica and step (weights fixed).

    Updates are -eta g unless ``update_mean``/``update_sd`` give them their own Gaussian law.
    """
    rng = np.random.default_rng(seed)
    W = sum(sizes)
    mu = np.asarray(mu, float)[:W]
    sigma = np.linspace(0.5, 1.5, W) if sigma is None else np.asarray(sigma, float)
    noise = rng.standard_normal((R, S, n_b, W))
    if correlated:  # the first weight of layer 2 copies the first of layer 1
        noise[..., sizes[0]] = noise[..., 0]
    grads = mu + sigma * noise
    if update_mean is None:
        updates = -eta * grads
    else:
        updates = np.asarray(update_mean) + np.asarray(update_sd) * rng.standard_normal((R, S, n_b, W))
    weights = np.broadcast_to(np.linspace(-1, 1, W), (R, S, W)).copy()
    E = 2 * S
    L = len(sizes)
    return GradientStatistics.from_arrays(
        layer_names=[f"W{l + 1}" for l in range(L)], layer_sizes=sizes, learning_rate=eta, batch_size=16,
        n_train=16 * n_b, steps_per_epoch=n_b, sampling=sampling, optimizer="sgd", epochs=np.arange(1, E + 1),
        grad_mean=np.ones((R, E, L)), grad_std=np.ones((R, E, L)), trace_epochs=np.arange(1, 2 * S, 2),
        trace_weights=weights, trace_gradients=grads, trace_updates=updates, shared_initialization=True)


def test_table_rows_of_physics_md_for_every_time_unit():
    """|a| and the isotropic D from the per-epoch norms: PHYSICS.md §5's three rows, exactly."""
    eta, n_b, sizes = 0.05, 7, (120, 14)
    gm = np.array([[[2.0, 0.5]]])
    gs = np.array([[[3.0, 1.5]]])
    s = GradientStatistics.from_arrays(layer_names=["W1", "W2"], layer_sizes=sizes, learning_rate=eta,
                                       batch_size=512, n_train=3482, steps_per_epoch=n_b, sampling="reshuffled",
                                       optimizer="sgd", epochs=[1], grad_mean=gm, grad_std=gs)
    d = np.array(sizes, float)
    rows = {"step": (eta * gm, eta**2 * gs**2 / (2 * d)),
            "sme": (gm, eta * gs**2 / (2 * d)),
            "epoch": (eta * n_b * gm, eta**2 * n_b * gs**2 / (2 * d))}
    for unit, (drift, diffusion) in rows.items():
        a, D = isotropic_coefficients(s, time_unit=unit, source="gradients")
        np.testing.assert_allclose(a, drift, rtol=1e-15)
        np.testing.assert_allclose(D, diffusion, rtol=1e-15)
    assert step_duration(s, "sme") == eta and step_duration(s, "epoch") == 1 / n_b


@pytest.mark.parametrize("unit", ["step", "sme", "epoch"])
@pytest.mark.parametrize("source", ["gradients", "updates"])
def test_random_streams_give_back_their_drift_and_diffusion(unit, source):
    eta, n_b, R, S = 0.1, 8, 400, 3
    mu = np.array([0.5, -1.0, 2.0, 0.3, 0.0])
    sigma = np.linspace(0.5, 1.5, 5)
    um, us = np.array([0.01, 0.02, -0.03, 0.0, 0.05]), np.array([0.02, 0.01, 0.03, 0.04, 0.02])
    s = _synthetic(R=R, S=S, n_b=n_b, eta=eta, mu=mu, sigma=sigma, update_mean=um, update_sd=us)
    lay = layer_dynamics(s, coordinates="weights", time_unit=unit, source=source)
    dt = {"step": 1.0, "sme": eta, "epoch": 1.0 / n_b}[unit]
    mean_step, sd_step = ((-eta * mu, eta * sigma) if source == "gradients" else (um, us))
    count = R * n_b
    for i, c in enumerate(lay.coordinates):
        assert c.name == ("W1" if i < 3 else "W2") + f"[{i if i < 3 else i - 3}]"
        for j in range(S):
            se_a = sd_step[i] / np.sqrt(count) / dt
            assert abs(c.drift[j] - mean_step[i] / dt) < 4 * se_a
            exact_d = sd_step[i] ** 2 / 2 / dt
            assert abs(c.diffusion[j] - exact_d) < 4 * exact_d * np.sqrt(2 / count)
        # The Dynamics carries the same numbers in its schedules.
        np.testing.assert_allclose(c.dynamics.force.values, c.drift)
        np.testing.assert_allclose(c.dynamics.diffusion.values, c.diffusion)
        assert abs(c.kurtosis).max() < 0.5
    assert lay.settings["time_unit"] == unit and lay.settings["source"] == source


def test_units_scale_exactly_and_sgd_sources_agree_to_round_off():
    s = _synthetic()
    step = layer_dynamics(s, coordinates="weights", time_unit="step")
    for unit, dt in (("sme", 0.1), ("epoch", 1 / 8)):
        other = layer_dynamics(s, coordinates="weights", time_unit=unit)
        for a, b in zip(step.coordinates, other.coordinates):
            np.testing.assert_allclose(b.drift, a.drift / dt, rtol=1e-12)
            np.testing.assert_allclose(b.diffusion, a.diffusion / dt, rtol=1e-12)
            np.testing.assert_allclose(b.starts, a.starts * dt, rtol=1e-12)
    grads = layer_dynamics(s, coordinates="weights", source="gradients", time_unit="step")
    for a, b in zip(step.coordinates, grads.coordinates):
        np.testing.assert_allclose(b.diffusion, a.diffusion, rtol=1e-12)
        np.testing.assert_allclose(b.drift, a.drift, rtol=1e-12)
    for key, ratio in step.source_ratio.items():
        np.testing.assert_allclose(ratio, 1.0, rtol=1e-12, err_msg=key)


def test_single_run_uses_the_batch_noise_and_refuses_the_linear_closure():
    s = _synthetic(R=1, n_b=4000, S=1)
    lay = layer_dynamics(s, coordinates="weights", time_unit="step", source="gradients")
    assert lay.settings["noise"] == "batches"
    sigma = np.linspace(0.5, 1.5, 5)
    for i, c in enumerate(lay.coordinates):
        exact = (0.1 * sigma[i]) ** 2 / 2
        assert abs(c.diffusion[0] - exact) < 4 * exact * np.sqrt(2 / 4000)
    with pytest.raises(ValueError, match="noise='ensemble'"):
        layer_dynamics(s, coordinates="weights", closure="linear")


def test_cross_layer_blocks_show_correlated_noise_and_stay_at_the_floor_without_it():
    independent = layer_dynamics(_synthetic(R=200), coordinates="norm")
    correlated = layer_dynamics(_synthetic(R=200, correlated=True), coordinates="norm")
    ratio_i = independent.cross_layer[:, 0, 1] / independent.cross_layer_floor[:, 0, 1]
    ratio_c = correlated.cross_layer[:, 0, 1] / correlated.cross_layer_floor[:, 0, 1]
    assert np.all(ratio_i < 2.0) and np.all(ratio_c > 5.0)
    np.testing.assert_array_equal(np.diagonal(correlated.cross_layer, axis1=1, axis2=2), 1.0)


# --- least squares: the exact SGD oracle -----------------------------------------------------


def _problem(d=2, n=48, seed=1):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(1.0, 0.6, n)] + [rng.normal(0.0, 1.0, n) for _ in range(d - 1)])
    y = x @ np.linspace(1.5, -0.7, d) + rng.normal(0.0, 0.8, n)
    return LeastSquares(x, y)


def test_sampling_weights_reduce_to_the_full_batch_and_to_one_row():
    assert sampling_weights(10, 10, "subset") == (0.0, 1.0)  # the whole set: H_B = H exactly
    assert sampling_weights(10, 1, "subset") == (1.0, 0.0)
    assert sampling_weights(10, 4, "iid") == (0.25, 0.75)
    with pytest.raises(ValueError, match="sampling"):
        sampling_weights(10, 4, "reshuffled")


@pytest.mark.parametrize("sampling", ["iid", "subset"])
def test_sgd_ensemble_follows_the_exact_moment_recursion(sampling):
    prob = _problem()
    R, eta, B, epochs = 20000, 0.3, 8, 3
    theta0 = [4.0, 2.0]
    theta, _ = train_least_squares(prob, theta0, learning_rate=eta, batch_size=B, epochs=epochs, replicas=R,
                                   sampling=sampling, seed=2)
    mean, cov = prob.moments(theta0, learning_rate=eta, batch_size=B, sampling=sampling, steps=epochs * 6)
    dev = theta - theta.mean(axis=0)
    emp = np.cov(theta.T)
    for i in range(2):
        assert abs(theta[:, i].mean() - mean[-1, i]) < 3 * np.sqrt(cov[-1, i, i] / R)
        for j in range(2):
            prod = dev[:, i] * dev[:, j]
            assert abs(emp[i, j] - cov[-1, i, j]) < 3 * prod.std() / np.sqrt(R), (i, j)
    # The other sampling's recursion is rejected by the same ensemble (the test can fail).
    other = prob.moments(theta0, learning_rate=eta, batch_size=B, steps=epochs * 6,
                         sampling="subset" if sampling == "iid" else "iid")[1]
    assert abs(emp[0, 0] - other[-1, 0, 0]) > 3 * (dev[:, 0] ** 2).std() / np.sqrt(R)


@pytest.mark.parametrize("sampling", ["iid", "subset"])
def test_linear_closure_misses_the_stationary_variance_by_2_over_2_minus_eta_h_and_the_correction_fixes_it(sampling):
    prob = _problem(d=1, n=64)
    h = prob.hessian[0, 0]
    eta = 0.5 / h  # ηh = 0.5: the SDE's variance is 3/4 of the map's
    theta, s = train_least_squares(prob, [4.0], learning_rate=eta, batch_size=8, epochs=30, replicas=10000,
                                   sampling=sampling, seed=3, trace_epochs=range(15, 31))
    exact = prob.stationary_covariance(learning_rate=eta, batch_size=8, sampling=sampling)[0, 0]
    groups = np.array_split(np.arange(10000), 10)
    plain, corrected = [], []
    for g in groups:
        for flag, out in ((False, plain), (True, corrected)):
            lay = layer_dynamics(s, coordinates={"weights": {"theta": [0]}}, closure="linear", time_unit="step",
                                 discrete_correction=flag, replicas=g)
            c = lay.coordinates[0]
            out.append(np.mean(c.diffusion / c.stiffness))
    for values, target in ((plain, exact * (2 - eta * h) / 2), (corrected, exact)):
        se = np.std(values, ddof=1) / np.sqrt(len(values))
        assert abs(np.mean(values) - target) < 3 * se + 1e-3 * target, (np.mean(values), target, se)
    assert abs(np.mean(plain) - exact) > 10 * np.std(plain, ddof=1) / np.sqrt(10)
    # The stiffness is the curvature times the step: the regression finds ηh.
    lay = layer_dynamics(s, coordinates="weights", closure="linear", time_unit="step")
    assert abs(lay.coordinates[0].stiffness.mean() - eta * h) < 0.01
    # The empirical ensemble agrees with the exact recursion too.
    assert abs(theta[:, 0].var() - exact) < 4 * exact * np.sqrt(2 / 10000) * 1.5


def test_discrete_correction_refuses_overshooting_maps_and_the_mean_field_closure():
    prob = _problem(d=1, n=64)
    eta = 1.2 / prob.hessian[0, 0]
    _, s = train_least_squares(prob, [4.0], learning_rate=eta, batch_size=8, epochs=6, replicas=500,
                               sampling="iid", seed=4, trace_epochs=[5])
    with pytest.raises(ValueError, match="discrete_correction"):
        layer_dynamics(s, coordinates="weights", closure="linear", time_unit="step", discrete_correction=True)
    with pytest.raises(ValueError, match="closure='linear'"):
        layer_dynamics(s, coordinates="weights", discrete_correction=True)


# --- the layer norm -------------------------------------------------------------------------


def test_norm_equation_predicts_the_law_of_the_norm_of_isotropic_diffusion():
    """dW = sqrt(2D) dB in d = 8: ρ = |W| obeys dρ = (d - 1) D / ρ dt + sqrt(2D) dB (Bessel)."""
    rng = np.random.default_rng(5)
    d, D, R, n_b, E = 8, 0.002, 3000, 4, 10
    w = np.zeros((R, d))
    w[:, 0] = 1.0
    weights, updates = np.zeros((R, E, d)), np.zeros((R, E, n_b, d))
    for e in range(E):
        weights[:, e] = w
        for b in range(n_b):
            step = np.sqrt(2 * D) * rng.standard_normal((R, d))
            updates[:, e, b] = step
            w = w + step
    s = GradientStatistics.from_arrays(
        layer_names=["W"], layer_sizes=[d], learning_rate=1.0, batch_size=1, n_train=n_b, steps_per_epoch=n_b,
        sampling="iid", optimizer="sgd", epochs=np.arange(1, E + 1), grad_mean=np.zeros((R, E, 1)),
        grad_std=np.zeros((R, E, 1)), trace_epochs=np.arange(1, E + 1), trace_weights=weights,
        trace_gradients=-updates, trace_updates=updates, shared_initialization=True)
    model = layer_dynamics(s, coordinates="norm", time_unit="step").coordinate("|W|")
    np.testing.assert_allclose(model.noise_growth, (d - 1) * D, rtol=0.05)
    np.testing.assert_allclose(model.diffusion, D, rtol=0.1)
    domain = ib.Box(model.lower, model.upper)
    res = ib.simulate(model.dynamics, 1.0, (0.0, n_b * E), dt=0.05, n_particles=20000, seed=6, domain=domain,
                      store_positions=False, brownian_bridge=False)
    # An independent direct simulation of the d-dimensional walk (not the calibration ensemble).
    fresh = np.zeros((20000, d))
    fresh[:, 0] = 1.0
    fresh += np.sqrt(2 * D * n_b * E) * rng.standard_normal((20000, d))
    direct = np.linalg.norm(fresh, axis=1)
    assert stats.ks_2samp(res.final_positions[:, 0], direct).pvalue > 1e-3
    # Without the noise-driven growth term the prediction fails: the test can fail.
    flat = ib.Dynamics(force=ib.Schedule(model.starts[1:], model.drift), diffusion=model.dynamics.diffusion)
    wrong = ib.simulate(flat, 1.0, (0.0, n_b * E), dt=0.05, n_particles=20000, seed=6, store_positions=False)
    assert stats.ks_2samp(wrong.final_positions[:, 0], direct).pvalue < 1e-4


# --- bad input ------------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    s = _synthetic(R=10)
    cases = [
        (dict(time_unit="hour"), "time_unit"), (dict(source="weights"), "source"),
        (dict(closure="cubic"), "closure"), (dict(noise="white"), "noise"),
        (dict(sampling="reshuffled"), "sampling"), (dict(coordinates="angles"), "coordinates"),
        (dict(coordinates={"weights": {"W1": [7]}}), "weight index"), (dict(layers=["W9"]), "layer"),
        (dict(until=0), "until"), (dict(discrete_correction="yes"), "discrete_correction"),
        (dict(coordinates=5), "coordinates"),
    ]
    for kwargs, word in cases:
        with pytest.raises((ValueError, TypeError), match=word):
            layer_dynamics(s, **kwargs)
    with pytest.raises(TypeError, match="statistics"):
        layer_dynamics({"grad_mean": 1})
    no_trace = GradientStatistics.from_arrays(layer_names=["W1"], layer_sizes=[3], learning_rate=0.1, batch_size=4,
                                              n_train=8, steps_per_epoch=2, sampling="iid", optimizer="sgd",
                                              epochs=[1, 2], grad_mean=np.ones((2, 1)), grad_std=np.ones((2, 1)))
    with pytest.raises(ValueError, match="trace"):
        layer_dynamics(no_trace)
    independent = _synthetic(R=10)
    object.__setattr__(independent, "shared_initialization", False)
    with pytest.raises(ValueError, match="shared initialisation"):
        layer_dynamics(independent, coordinates="weights")


def test_statistics_records_refuse_bad_arrays_and_round_trip(tmp_path):
    base = dict(layer_names=["W1", "W2"], layer_sizes=[3, 2], learning_rate=0.1, batch_size=4, n_train=8,
                steps_per_epoch=2, sampling="iid", optimizer="sgd", epochs=[1, 2],
                grad_mean=np.ones((2, 2)), grad_std=np.ones((2, 2)))
    bad = [
        (dict(grad_mean=-np.ones((2, 2))), "grad_mean"), (dict(grad_std=np.full((2, 2), np.nan)), "grad_std"),
        (dict(grad_mean=np.ones((3, 2))), "grad_mean"), (dict(epochs=[2, 1]), "epochs"),
        (dict(epochs=[1.0, 2.0]), "epochs"), (dict(layer_names=["W1"]), "layer_sizes"),
        (dict(layer_names=["W1", "W1"]), "layer_names"), (dict(sampling="shuffled"), "sampling"),
        (dict(learning_rate=-1.0), "learning_rate"), (dict(layer_sizes=[3, 0]), "layer_sizes"),
        (dict(trace_epochs=[1]), "trace"), (dict(batch_size=0), "batch_size"),
        (dict(trace_epochs=[1], trace_weights=np.zeros((1, 1, 5)), trace_gradients=np.zeros((1, 1, 3, 5)),
              trace_updates=np.zeros((1, 1, 2, 5))), "trace.gradients"),
    ]
    for change, word in bad:
        with pytest.raises((ValueError, TypeError), match=word):
            GradientStatistics.from_arrays(**(base | change))
    s = _synthetic(R=5)
    path = s.save(tmp_path / "stats.h5", settings={"note": "synthetic"})
    back = read_gradient_statistics(path)
    for name in ("weights", "gradients", "updates", "epochs"):
        np.testing.assert_array_equal(getattr(back.trace, name), getattr(s.trace, name))
    assert back.sampling == "iid" and back.layer_sizes == (3, 2) and back.shared_initialization
    half = s.select_replicas([0, 2])
    assert half.replicas == 2 and np.array_equal(half.trace.weights, s.trace.weights[[0, 2]])
    with pytest.raises(ValueError, match="no gradient statistics"):
        read_gradient_statistics(path, group="/")


def test_green_kubo_lags_recover_the_long_time_diffusion_of_correlated_steps():
    """Momentum-like increments u_b = (1 - β) Σ_j β^j ξ_{b-j}: single steps see (1-β)/(1+β) of the noise."""
    rng = np.random.default_rng(8)
    R, blocks, n_b, beta, sigma = 2000, 3, 10, 0.5, 0.2
    epochs_per_block = 4
    steps = epochs_per_block * n_b
    trace_epochs = np.concatenate([np.arange(1, 1 + epochs_per_block) + 10 * k for k in range(blocks)])
    updates = np.zeros((R, trace_epochs.size, n_b, 1))
    for k in range(blocks):
        xi = sigma * rng.standard_normal((R, steps + 200))
        u = np.zeros_like(xi)
        for t in range(1, xi.shape[1]):
            u[:, t] = beta * u[:, t - 1] + (1 - beta) * xi[:, t]
        updates[:, k * epochs_per_block:(k + 1) * epochs_per_block, :, 0] = u[:, 200:].reshape(R, epochs_per_block, n_b)
    weights = np.zeros((R, trace_epochs.size, 1))
    for e in range(trace_epochs.size):  # consecutive traced epochs must chain
        if e % epochs_per_block:
            weights[:, e] = weights[:, e - 1] + updates[:, e - 1].sum(axis=1)
    E = int(trace_epochs[-1])
    s = GradientStatistics.from_arrays(
        layer_names=["W"], layer_sizes=[1], learning_rate=1.0, batch_size=1, n_train=n_b, steps_per_epoch=n_b,
        sampling="iid", optimizer="sgd", epochs=np.arange(1, E + 1), grad_mean=np.zeros((R, E, 1)),
        grad_std=np.zeros((R, E, 1)), trace_epochs=trace_epochs, trace_weights=weights, trace_gradients=-updates,
        trace_updates=updates, shared_initialization=True)
    single = layer_dynamics(s, coordinates="weights", time_unit="step").coordinates[0]
    kubo = layer_dynamics(s, coordinates="weights", time_unit="step", noise_lags=12).coordinates[0]
    assert single.epochs.tolist() == [1, 11, 21]  # runs of consecutive epochs are one piece each
    long_time = sigma**2 / 2
    np.testing.assert_allclose(single.diffusion, long_time * (1 - beta) / (1 + beta), rtol=0.1)
    np.testing.assert_allclose(kubo.diffusion, long_time, rtol=0.15)
    capped = layer_dynamics(s, coordinates="weights", time_unit="step", noise_lags=steps)
    assert any("noise_lags" in note for note in capped.notes)
    with pytest.raises(ValueError, match="noise_lags"):
        layer_dynamics(s, coordinates="weights", noise_lags=-1)


def test_centred_frame_describes_the_spread_around_the_ensemble_mean():
    s = _synthetic(R=50)
    absolute = layer_dynamics(s, coordinates="weights", time_unit="step")
    centred = layer_dynamics(s, coordinates="weights", time_unit="step", frame="centred")
    for a, c in zip(absolute.coordinates, centred.coordinates):
        np.testing.assert_allclose(c.diffusion, a.diffusion)
        drift = c.dynamics.drift(np.array([[0.3]]), t=float(c.starts[1]))
        assert drift[0, 0] == 0.0 and c.lower == -c.upper and c.frame == "centred"
    with pytest.raises(ValueError, match="frame"):
        layer_dynamics(s, frame="moving")
