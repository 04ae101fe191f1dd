"""The command line and the examples, in smoke configurations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ib_physics.cli import main

ROOT = Path(__file__).resolve().parents[1]



def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("dye", "bottleneck", "brownian", "particles", "plot"):
        assert command in out


def test_particles_command_writes_data_and_figure_and_plot_redraws_it(tmp_path, capsys, assert_png):
    code = main(["particles", "--particles", "3000", "--duration", "1.0", "--seed", "5", "--out",
                 str(tmp_path), "--quiet"])
    assert code == 0
    data, figure = tmp_path / "double_well.h5", tmp_path / "double_well.png"
    assert data.exists() and figure.exists()
    assert_png(figure)
    with h5py.File(data) as f:
        g = f["particles"]
        assert g["histogram/counts"].shape[0] == 41
        assert int(g["histogram/counts"][-1].sum()) == 3000
        assert "seed" in g.attrs and "dynamics" in g.attrs
    assert main(["plot", str(data), "--out", str(tmp_path / "again")]) == 0
    redrawn = tmp_path / "again" / "double_well.png"
    assert_png(redrawn)
    # Same seed, same numbers.
    first = h5py.File(data)["particles/mean"][()]
    main(["particles", "--particles", "3000", "--duration", "1.0", "--seed", "5", "--out",
          str(tmp_path / "b"), "--quiet"])
    np.testing.assert_array_equal(first, h5py.File(tmp_path / "b" / "double_well.h5")["particles/mean"][()])


@pytest.mark.parametrize("argv,key", [(["--particles", "0"], "particles"), (["--duration", "-1"], "duration")])
def test_bad_flags_give_one_line_errors_and_write_nothing(tmp_path, capsys, argv, key):
    code = main(["particles", *argv, "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_run_in_smoke_mode(tmp_path, script, assert_png):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pngs = list(tmp_path.glob("*.png"))
    assert pngs
    for png in pngs:
        assert_png(png)


def _exit_2_naming(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert words in err, err


def test_cli_refuses_bad_files_and_directories_in_one_line(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    _exit_2_naming(capsys, ["plot", str(text)], "not an HDF5 file")
    _exit_2_naming(capsys, ["plot", str(tmp_path)], "is a directory")
    truncated = tmp_path / "cut.h5"
    with h5py.File(truncated, "w") as f:
        f.attrs["schema_version"] = 1
        f.attrs["experiment"] = "double_well"
    _exit_2_naming(capsys, ["plot", str(truncated)], "incomplete double_well file")
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    assert main(["plot", str(damaged)]) == 2
    capsys.readouterr()
    for out in ("/dev/null", "/proc/ib-physics-out"):
        _exit_2_naming(capsys, ["particles", "--out", out, "--quiet"], "--out")
    for toml, words in (("", "holds no settings"), ("run = 5\n", "[run]")):
        cfg = tmp_path / "c.toml"
        cfg.write_text(toml)
        _exit_2_naming(capsys, ["dye", "--config", str(cfg), "--particles", "10", "--out", str(tmp_path / "d")],
                       words)
    _exit_2_naming(capsys, ["dye", "--config", str(truncated), "--out", str(tmp_path / "d")], "TOML")
    assert not (tmp_path / "d").exists()


def test_cli_takes_negative_numbers_and_checks_sizes_before_writing(tmp_path, capsys):
    _exit_2_naming(capsys, ["bottleneck", "--learning-rate", "-1e-3", "--out", str(tmp_path / "b")],
                   "learning_rate")
    _exit_2_naming(capsys, ["bottleneck", "--threads", "0", "--out", str(tmp_path / "b")], "threads")
    _exit_2_naming(capsys, ["dye", "--particles", "4000000000", "--out", str(tmp_path / "b")], "run.particles")
    _exit_2_naming(capsys, ["particles", "--duration", "0.0001", "--out", str(tmp_path / "b")], "duration")
    # Too short to fit D: refused after a pilot on a copy of the system, before the run and any file.
    _exit_2_naming(capsys, ["brownian", "--duration", "100", "--out", str(tmp_path / "b"), "--quiet"],
                   "`duration` 100 is too short")
    assert not (tmp_path / "b").exists()
    from ib_physics.experiments.dye_config import config_from_mapping

    assert config_from_mapping({"particles": 3}).tracers == 3  # a tiny drop is valid: all its particles traced


def test_a_second_run_into_a_busy_directory_is_refused(tmp_path, capsys):
    import fcntl

    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".ib-physics.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _exit_2_naming(capsys, ["particles", "--particles", "100", "--duration", "0.1", "--out", str(out),
                                "--quiet"], "another ib-physics run")
    assert main(["particles", "--particles", "100", "--duration", "0.1", "--out", str(out), "--quiet"]) == 0
