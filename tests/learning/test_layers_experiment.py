"""``ib-physics layers`` end to end in a smoke configuration: file, figures, plot round trip, resume."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ib_physics.cli import main
from ib_physics.experiments.layers import LayersConfig, read_layers, run_layers, traced_epochs

SMOKE = dict(networks=8, epochs=30, widths=(12, 5, 3, 2), traced=4, block=2, weights_per_layer=1, particles=300,
             cells=2000, bootstrap=20, forward_until=8)
FLAGS = ["--networks", "8", "--epochs", "30", "--widths", "12,5,3,2", "--traced", "4", "--block", "2",
         "--particles", "300", "--cells", "2000", "--forward-until", "8", "--weights-per-layer", "1"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("layers")
    assert main(["layers", *FLAGS, "--out", str(out), "--quiet"]) == 0
    return out


def test_smoke_run_writes_the_file_and_the_figures(smoke, assert_png):
    with h5py.File(smoke / "layers.h5") as f:
        assert f.attrs["experiment"] == "layers"
        assert sorted(f["statistics"]) == ["iid", "reshuffled"]
        assert f["statistics/iid"].attrs["sampling"] == "iid" and "trace" not in f["statistics/iid"]
        g = f["predictions/reshuffled/linear/held-out"]
        assert g["metric_w1_density"].shape[0] == len(g.attrs["coordinates"])
    assert not (smoke / "layers_checkpoint.h5").exists()
    data = read_layers(smoke / "layers.h5")
    assert set(data["predictions"]) == {f"{s}/{c}/{k}" for s in ("reshuffled", "iid")
                                        for c in ("mean-field", "linear") for k in ("held-out", "forward")}
    # Every coordinate kind of every layer is there: norm, direction, one weight.
    pred = data["predictions"]["reshuffled/mean-field/held-out"]
    assert sorted(set(pred["kinds"])) == ["direction", "norm", "weight"] and len(pred["coordinates"]) == 9
    # The halves are disjoint and cover the ensemble.
    assert np.union1d(data["half_a"], data["half_b"]).size == 8 and np.intersect1d(data["half_a"], data["half_b"]).size == 0
    # Distances and floors are finite, non-negative, and the density predictions are normalised.
    for key in ("metric_w1_density", "metric_w1_floor", "metric_ks_density", "metric_var_density"):
        assert np.all(np.isfinite(pred[key][:, 1:])) and np.all(pred[key][:, 1:] >= 0), key
    # The figure densities integrate to about 1 over ± 6 predicted standard deviations.
    mass = np.trapezoid(pred["densities"], pred["density_x"], axis=2)
    np.testing.assert_allclose(mass, 1.0, atol=0.02)
    # Summary rows name their numbers and verdicts.
    rows = data["summary"]
    assert rows and {"w1_over_floor", "variance_ratio", "verdict", "phase"} <= set(rows[0])
    assert {r["verdict"] for r in rows} <= {"holds", "breaks"}
    for name in ("layers_gradients.png", "layers_distributions.png", "layers_distance.png", "layers_phase.png",
                 "layers_norms.png"):
        assert_png(smoke / name)


def test_plot_redraws_every_figure(smoke, tmp_path, assert_png):
    assert main(["plot", str(smoke / "layers.h5"), "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("layers_*.png"))) == 5


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path):
    config = LayersConfig(**SMOKE)
    whole = read_layers(run_layers(config, out=tmp_path / "whole", progress=False))
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_layers(config, out=tmp_path / "cut", progress=interrupt, checkpoint_interval=1e9)
    assert (tmp_path / "cut" / "layers_checkpoint.h5").exists() and not (tmp_path / "cut" / "layers.h5").exists()
    resumed = read_layers(run_layers(config, out=tmp_path / "cut", progress=False))
    for key, pred in whole["predictions"].items():
        for name in ("empirical", "metric_w1_density", "metric_var_density", "drift", "diffusion"):
            np.testing.assert_array_equal(resumed["predictions"][key][name], pred[name], err_msg=f"{key} {name}")
    with pytest.raises(ValueError, match="other settings"):
        other = LayersConfig(**(SMOKE | {"seed": 1}))
        (tmp_path / "cut" / "layers_checkpoint.h5").write_bytes((tmp_path / "whole" / "layers.h5").read_bytes())
        run_layers(other, out=tmp_path / "cut", progress=False)


def test_traced_blocks_are_log_spaced_runs_of_consecutive_epochs():
    epochs = traced_epochs(1000, 16, 3)
    assert epochs[0] == 1 and epochs[-1] <= 1000 and np.all(np.diff(epochs) >= 1)
    starts = epochs[::3]
    assert np.all(epochs.reshape(-1, 3) - starts[:, None] == np.arange(3))
    assert np.all(np.diff(np.log(starts))[5:] > 0.1)  # log-spaced once the blocks stop touching


@pytest.mark.parametrize("change, word", [
    ({"networks": 3}, "networks"), ({"fraction": 1.5}, "fraction"), ({"samplings": ("shuffled",)}, "samplings"),
    ({"forward_until": 10_000}, "forward_until"), ({"widths": (10, 2)}, "widths"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"time_unit": "hour"}, "time_unit"), ({"keep_trace": "no"}, "keep_trace"), ({"epochs": 3}, "epochs"),
])
def test_bad_settings_name_the_setting(change, word):
    with pytest.raises((ValueError, TypeError), match=word):
        LayersConfig(**(SMOKE | change))


def test_cli_refuses_bad_flags_before_writing(tmp_path, capsys):
    assert main(["layers", "--networks", "2", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "networks" in capsys.readouterr().err and not (tmp_path / "x").exists()
