"""Every Python snippet of the README runs as written (in order, in one namespace, as a reader would
paste them); the default suite shrinks the ensembles and runs, the slow one runs them at full size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
#: Sizes the default suite scales down (same code paths, seconds instead of minutes).
SMOKE = {"n_particles=1_000_000": "n_particles=20_000", "n_particles=2_000_000": "n_particles=20_000",
         "trainer.run(2000)": "trainer.run(20)", "duration=5000.0": "duration=1000.0"}


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _run(tmp_path, monkeypatch, smoke: bool) -> None:
    monkeypatch.chdir(tmp_path)  # snippets write files (ou.h5, my_runs.h5, ...)
    namespace: dict = {}
    blocks = _snippets()
    assert len(blocks) >= 6
    for k, code in enumerate(blocks):
        if smoke:
            for old, new in SMOKE.items():
                code = code.replace(old, new)
        exec(compile(code, f"README.md snippet {k + 1}", "exec"), namespace)  # noqa: S102


def test_readme_snippets_run(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    _run(tmp_path, monkeypatch, smoke=True)
    assert (tmp_path / "ou.h5").exists() and (tmp_path / "my_runs.h5").exists()


@pytest.mark.slow
def test_readme_snippets_run_at_full_size(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    _run(tmp_path, monkeypatch, smoke=False)
