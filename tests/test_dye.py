"""The dye experiment: inputs and units, the drop, the side view, and smoke runs end to end."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from scipy import integrate, stats

import ib_physics as ib
from ib_physics.cli import main
from ib_physics.compare import column_density, compare_sample
from ib_physics.experiments.dye import drop_density, drop_positions, dye_dynamics, run_dye
from ib_physics.experiments.dye_config import DyeConfig, config_from_mapping, config_from_toml
from ib_physics.experiments.dye_plots import load_dye

SMOKE = dict(particles=6000, duration_s=600.0, dt_s=2.0, frames=7, density_per_frame=6, grid_r=16, grid_z=24,
             tracers=3)
SMOKE_TOML = """
[glass]
radius_um = 60.0
height_um = 100.0

[run]
particles = 6000
duration_s = 600.0
dt_s = 2.0
frames = 7
density_per_frame = 6
grid_r = 16
grid_z = 24
tracers = 3
"""



# --- inputs and derived physics ------------------------------------------------------------------


def test_stokes_einstein_and_stokes_settling_in_si_units():
    c = DyeConfig(dye_radius_um=0.5, water_temperature_K=300.0, water_viscosity_Pa_s=1e-3,
                  dye_density_kg_m3=1500.0, water_density_kg_m3=1000.0, water_gravity_m_s2=9.8)
    ph = c.physics()
    d_si = 1.380649e-23 * 300.0 / (6 * math.pi * 1e-3 * 0.5e-6)  # m²/s
    v_si = 2 / 9 * 500.0 * 9.8 * (0.5e-6) ** 2 / 1e-3  # m/s
    assert ph.diffusion == pytest.approx(d_si * 1e12, rel=1e-12)
    assert ph.settling_velocity == pytest.approx(v_si * 1e6, rel=1e-12)
    assert ph.peclet == pytest.approx(v_si * 100e-6 / d_si, rel=1e-12)
    assert ph.sedimentation_length == pytest.approx(d_si / v_si * 1e6, rel=1e-12)
    # Einstein's relation holds for the dynamics the engines get: drift = mobility x weight.
    dyn = dye_dynamics(c)
    assert dyn.mobility * ph.thermal_energy == pytest.approx(ph.diffusion, rel=1e-12)
    assert dyn.mobility * ph.buoyant_weight == pytest.approx(ph.settling_velocity, rel=1e-12)


def test_a_dye_lighter_than_water_rises():
    ph = DyeConfig(dye_density_kg_m3=900.0).physics()
    assert ph.settling_velocity < 0 and ph.peclet < 0


def test_toml_sections_round_trip_and_flags_override(tmp_path):
    c = DyeConfig(glass_radius_um=45.0, drop_radius_um=5.0, glass_top="absorbing", particles=1234)
    path = tmp_path / "c.toml"
    path.write_text(c.to_toml())
    assert config_from_toml(path) == c
    assert config_from_toml(path, {"seed": 7}).seed == 7
    assert config_from_mapping({"glass": {"height_um": 80.0}, "drop": {"height_um": 40.0}}).glass_height_um == 80.0


@pytest.mark.parametrize("data,key", [
    ({"glass": {"radius_mm": 1.0}}, "glass.radius_mm"),
    ({"colour": "red"}, "colour"),
    ({"glass": {"radius_um": -1.0}}, "glass.radius_um"),
    ({"water": {"temperature_K": -5.0}}, "water.temperature_K"),
    ({"dye": {"radius_um": 0.0}}, "dye.radius_um"),
    ({"drop": {"height_um": 99.0}}, "drop"),
    ({"drop": {"radius_um": 70.0}}, "drop"),
    ({"run": {"particles": 0}}, "run.particles"),
    ({"run": {"dt_s": 7.0}}, "run.duration_s"),
    ({"run": {"particles": 2.5}}, "run.particles"),
])
def test_bad_settings_name_the_key(data, key):
    with pytest.raises((ValueError, TypeError), match=key.replace(".", r"\.")):
        config_from_mapping(data)


@pytest.mark.parametrize("toml,argv,key", [
    ("[glass]\nradius_um = -3.0\n", [], "glass.radius_um"),
    ("[water]\ntemperature_K = -1.0\n", [], "water.temperature_K"),
    ("[drop]\nheight_um = -20.0\n", [], "drop"),
    ("[glass]\nshape = 'round'\n", [], "glass.shape"),
    ("[run]\nseed = 1\n", ["--particles", "0"], "run.particles"),
    ("", [], "holds no settings"),
    ("[run\n", [], "TOML"),
])
def test_bad_input_on_the_command_line_is_one_line_exit_2_nothing_written(tmp_path, capsys, toml, argv, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    out = tmp_path / "o"
    code = main(["dye", "--config", str(cfg), *argv, "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "Traceback" not in err
    assert not out.exists()


# --- the drop and the side view -----------------------------------------------------------------


def test_drop_positions_are_uniform_in_the_ball_and_match_its_cell_averages():
    c = DyeConfig(particles=80_000, seed=11)
    x = drop_positions(c)
    rel = x - [0.0, 0.0, c.drop_height_um]
    u = (np.linalg.norm(rel, axis=1) / c.drop_radius_um) ** 3  # uniform in a ball <=> u ~ U(0, 1)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert stats.kstest(rel[:, 2] / np.linalg.norm(rel, axis=1), "uniform", args=(-1, 2)).pvalue > 1e-3
    grid = ib.Grid(ib.Cylinder(c.glass_radius_um, c.glass_height_um), (60, 100))
    p = drop_density(grid, c.drop_height_um, c.drop_radius_um)
    assert grid.integrate(p) == pytest.approx(1.0, abs=1e-12)
    s = compare_sample(x, grid, p)
    assert s.l1 / s.l1_floor < 1.25
    # A different seed gives a different drop; the same seed the same one.
    np.testing.assert_array_equal(x, drop_positions(c))
    assert not np.array_equal(x, drop_positions(DyeConfig(particles=80_000, seed=12)))


def test_drop_cell_averages_are_exact_volume_fractions():
    glass = ib.Cylinder(10.0, 10.0)
    grid = ib.Grid(glass, (10, 10))
    p = drop_density(grid, 5.0, 3.0)
    ball = 4 / 3 * math.pi * 27.0
    # The part of the ball below z = 5 (the lower half) and inside r < 2 (a capped cylinder).
    below = (p * grid.volumes())[:, :5].sum()
    assert below == pytest.approx(0.5, abs=1e-12)
    # {r < 2} inside a ball of radius 3: a cylinder of half height h plus two caps of height 3 - h
    # (each cap's base has radius 2, so it lies wholly inside r < 2).
    h = math.sqrt(9 - 4)
    cap = math.pi * (3 - h) ** 2 * (3 * 3 - (3 - h)) / 3
    assert (p * grid.volumes())[:2].sum() == pytest.approx((math.pi * 4 * 2 * h + 2 * cap) / ball, rel=1e-12)


def test_column_density_of_a_uniform_glass_is_the_chord_length():
    glass = ib.Cylinder(2.0, 3.0)
    grid = ib.Grid(glass, (17, 5))
    p = np.full(grid.shape, 0.7)
    edges = np.linspace(-2.4, 2.4, 13)
    col = column_density(grid, p, edges)
    chord = lambda x: 2 * math.sqrt(max(4 - x * x, 0.0))  # noqa: E731
    expected = [integrate.quad(chord, a, b, points=[-2, 2])[0] / (b - a) * 0.7 for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(col[:, 0], expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(col, np.repeat(col[:, :1], col.shape[1], axis=1), rtol=1e-12)
    # Mass: the picture integrates to the glass's content.
    assert float((col * np.diff(edges)[:, None] * np.diff(grid.edges[1])).sum()) == pytest.approx(grid.integrate(p))


def test_column_density_matches_the_side_view_of_particles():
    glass = ib.Cylinder(1.0, 1.0)
    grid = ib.Grid(glass, (40, 4))
    rng = np.random.default_rng(2)
    n = 400_000
    pts = rng.normal(0.0, 0.35, size=(n, 3))
    pts[:, 2] = rng.uniform(0, 1, n)
    pts = pts[glass.contains(pts)]
    p = ib.density_from_particles(grid, pts)
    edges = np.linspace(-1, 1, 21)
    col = column_density(grid, p, edges)
    counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 2], bins=(edges, grid.edges[1]))
    seen = counts / (len(pts) * np.outer(np.diff(edges), np.diff(grid.edges[1])))
    err = np.sqrt(np.maximum(counts, 1)) / (len(pts) * np.outer(np.diff(edges), np.diff(grid.edges[1])))
    assert np.max(np.abs(seen - col) / err) < 5.0


def test_late_state_is_barometric_in_both_views():
    """Reflecting bottom and top: p(z) -> exp(-z / l) with l = D / v, in density and in particles."""
    c = DyeConfig(glass_radius_um=20.0, glass_height_um=40.0, drop_height_um=30.0, drop_radius_um=5.0,
                  dye_radius_um=0.35, particles=20_000, duration_s=6000.0, dt_s=2.0, frames=2)
    ph = c.physics()
    ell, h = ph.sedimentation_length, c.glass_height_um
    assert ph.relaxation_time * 6 < c.duration_s
    grid = ib.Grid(ib.Cylinder(c.glass_radius_um, h), (8, 60))
    dyn = dye_dynamics(c)
    dens = ib.solve_fokker_planck(dyn, grid, drop_density(grid, c.drop_height_um, c.drop_radius_um),
                                  (0.0, c.duration_s))
    z = grid.edges[1]
    exact = -np.diff(np.exp(-z / ell)) / (1 - np.exp(-h / ell))
    got = (dens.p[-1] * grid.volumes()).sum(axis=0)
    np.testing.assert_allclose(got, exact, atol=5e-5)
    parts = ib.simulate(dyn, drop_positions(c), (0.0, c.duration_s), dt=c.dt_s, seed=3,
                        domain=ib.Cylinder(c.glass_radius_um, h), store_positions=False)
    mean_exact = ell - h / math.expm1(h / ell)
    var_exact = ell**2 - h**2 * math.exp(h / ell) / math.expm1(h / ell) ** 2
    se = math.sqrt(var_exact / c.particles)
    assert abs(parts.mean[-1, 2] - mean_exact) < 4 * se


# --- the experiment end to end ------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dye")
    cfg = out / "smoke.toml"
    cfg.write_text(SMOKE_TOML)
    code = main(["dye", "--config", str(cfg), "--seed", "5", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_smoke_run_writes_one_file_with_everything_and_the_figures(smoke_run, assert_png):
    data = smoke_run / "dye.h5"
    with h5py.File(data) as f:
        assert f.attrs["experiment"] == "dye" and int(f.attrs["seed"]) == 5
        for group in ("particles", "density", "metrics", "continuity"):
            assert group in f
        assert "versions" in f.attrs and "physics" in f.attrs and "config" in f.attrs
        assert f["particles/rz_counts"].shape == (7, 16, 24)
        assert int(f["particles/rz_counts"][0].sum()) == 6000
        assert f["density/p"].shape == (7, 16, 24)
    d = load_dye(data)
    assert d.config.seed == 5 and d.config.particles == 6000
    for name in ("dye_picture.png", "dye_overlay.png", "dye_continuity.png", "dye_convergence.png"):
        assert_png(smoke_run / name)
    from PIL import Image

    with Image.open(smoke_run / "dye.gif") as gif:
        assert gif.n_frames == 7
    assert not list(smoke_run.glob(".dye-*.checkpoint.h5"))


def test_smoke_run_views_agree_at_the_sampling_floor(smoke_run):
    d = load_dye(smoke_run / "dye.h5")
    m = d.metrics
    assert m["l1"][-1] < 3 * m["l1_floor"][-1]
    assert np.all(m["l1"] < 3 * m["l1_floor"])
    # Mean height of the particles within 4 standard errors of the density's.
    gap = np.abs(m["mean_particles"][:, 1] - m["mean_density"][:, 1]) / m["mean_standard_error"][:, 1]
    assert np.all(gap[1:] < 4.0)
    assert -0.7 < d.convergence_slope < -0.3
    # Continuity of the density: d/dt of the mass inside the contour equals minus the flux out.
    c = d.continuity
    inner = slice(3, -3)
    scale = np.max(np.abs(c["flux_out"]))
    assert np.max(np.abs(c["dmass_dt"][inner] + c["flux_out"][inner])) < 0.1 * scale


def test_plot_redraws_every_figure_from_the_file(smoke_run, tmp_path, assert_png):
    assert main(["plot", str(smoke_run / "dye.h5"), "--out", str(tmp_path), "--no-animation"]) == 0
    for name in ("dye_picture.png", "dye_overlay.png", "dye_continuity.png", "dye_convergence.png"):
        assert_png(tmp_path / name)


def test_same_seed_same_numbers_and_ctrl_c_resumes_to_them(smoke_run, tmp_path):
    config = config_from_toml(smoke_run / "smoke.toml", {"seed": 5})
    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_dye(config, out=out, progress=interrupt, figures=False)
    assert not (out / "dye.h5").exists()
    [checkpoint] = list(out.glob(".dye-*.checkpoint.h5"))
    with h5py.File(checkpoint) as f:  # a valid, readable file
        assert "particle_checkpoint" in f
    run_dye(config, out=out, progress=False, figures=False)
    assert not checkpoint.exists()
    with h5py.File(smoke_run / "dye.h5") as a, h5py.File(out / "dye.h5") as b:
        for name in ("particles/rz_counts", "particles/side_counts", "particles/sample", "particles/mean",
                     "particles/trails", "metrics/l1", "metrics/ks_statistic", "density/p", "continuity/mass_in"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
