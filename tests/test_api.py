"""The Python API is plain functions, and the README's "Python API" section runs as written (here on the
tiny grid, saved as `leaderboards/quickstart` in a scratch folder)."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
from conftest import keep_methods, write_tiny_grid

import xltransfer
from xltransfer.errors import XltError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_api_is_plain_functions_and_no_module_is_callable():
    import xltransfer.planning
    import xltransfer.store

    for name in ("plan", "run", "results", "records", "report"):
        function = getattr(xltransfer, name)
        assert isinstance(function, types.FunctionType) and function.__module__ == "xltransfer.api", name
    for module in (xltransfer.planning, xltransfer.store, xltransfer.api):
        assert type(module) is types.ModuleType and not callable(module)
    assert not hasattr(xltransfer.api, "make_callable")


def _python_api_section() -> str:
    section = README.read_text(encoding="utf-8").split("## The Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one example"
    return blocks[0]


def test_the_readme_python_api_section_runs_as_written(tmp_path, monkeypatch):
    grid = write_tiny_grid(tmp_path / "leaderboards" / "quickstart", backbone_steps=30)
    keep_methods(grid, "majority", "full-ft")
    grid.write_text(grid.read_text().replace("name: tiny", "name: quickstart"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XLT_WORKDIR", str(tmp_path / "w"))
    scope: dict = {}
    exec(compile(_python_api_section(), str(README), "exec"), scope)  # noqa: S102 - the README's own code
    assert scope["summary"].counters["cells_evaluated"] > 0 and not scope["summary"].failures
    assert set(scope["plan"]) >= {"cells", "pieces", "methods"}
    frame = scope["frame"]
    assert len(frame) and set(frame["grid"]) == {"quickstart"}
    assert set(frame["method"]) == {"majority", "full-ft"}


def test_bad_input_raises_the_clis_error(tmp_path):
    with pytest.raises(XltError, match="no such grid file"):
        xltransfer.plan(tmp_path / "nowhere")
