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
