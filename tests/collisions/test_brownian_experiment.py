"""`ib-physics brownian` in a smoke configuration: file, figures, the three views."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ib_physics.cli import main
from ib_physics.experiments.brownian import BrownianConfig, config_from_mapping



@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("brownian")
    assert main(["brownian", "--small", "250", "--big", "3", "--duration", "1200", "--out", str(out),
                 "--quiet"]) == 0
    return out


def test_smoke_run_writes_the_file_and_figures(smoke, assert_png):
    with h5py.File(smoke / "brownian.h5") as f:
        assert f.attrs["experiment"] == "brownian"
        assert f["trajectory/positions"].shape[1:] == (3, 2)
        assert f["trajectory/snapshots"].shape[1:] == (253, 2)
        assert f["trajectory"].attrs["energy_drift"] < 1e-10
        assert f["trajectory"].attrs["maxwell_boltzmann_ks_pvalue"] > 1e-4
        energy = f["trajectory/kinetic_energy"][()]
        assert np.ptp(energy) / energy[0] < 1e-10
        views = [f["views"][k] for k in sorted(f["views"])]
        for v in views:
            # Particle engine and density engine see the same Gaussian: variances within 2 %.
            assert v.attrs["var_particles"] == pytest.approx(v.attrs["var_density"], rel=0.02)
            assert v.attrs["ks_particles_vs_gaussian"] < 0.01
        # At the longest lag (many velocity relaxation times) the hard disks' displacements have the
        # variance 2 D t that D was measured from (loosely: three tracers, a short run).
        last = views[-1]
        assert 0.5 < last.attrs["var_hard_disks"] / last.attrs["var_density"] < 1.5
    for name in ("brownian_trails.png", "brownian_msd.png", "brownian_views.png"):
        assert_png(smoke / name)
    assert (smoke / "brownian.gif").stat().st_size > 10_000


def test_plot_redraws_it(smoke, tmp_path):
    assert main(["plot", str(smoke / "brownian.h5"), "--out", str(tmp_path), "--no-animation"]) == 0
    assert len(list(tmp_path.glob("brownian_*.png"))) == 3


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="lags"):
        BrownianConfig(duration=1000.0, lags=(500.0,))
    with pytest.raises(ValueError, match="unknown"):
        config_from_mapping({"colour": 1})
    with pytest.raises(ValueError, match="n_big"):
        BrownianConfig(n_big=0)
