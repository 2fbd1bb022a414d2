"""MLM text without a dev split: 5% of it is held out for language-adapter selection (BAD-X §3.1)."""

from __future__ import annotations

import textwrap

from xltransfer.context import RunContext
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.workspace import Workspace


def test_held_out_five_percent(tmp_path):
    for lang in ("qaa", "qab"):
        (tmp_path / f"{lang}.txt").write_text("".join(f"{lang} sentence {i}\n" for i in range(200)))
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        textwrap.dedent("""
        backbone: quickstart
        data:
          pos: synthetic
          mlm: {type: files, files: {qaa: {train: qaa.txt}, qab: {train: qab.txt}}}
        methods: [mad-x]
        tasks: [pos]
        languages: {source: qaa, target: [qab]}
    """)
    )
    workspace = Workspace.at(tmp_path / "w")
    ctx = RunContext(build_plan(load_grid(grid_file, workspace.root)), workspace)
    ctx.preflight()
    train, dev = ctx.examples("mlm", "qab", "train"), ctx.examples("mlm", "qab", "dev")
    assert len(dev) == 10 and len(train) == 190 and not set(train) & set(dev)
    assert ctx.has_split("mlm", "qab", "dev") and not ctx.has_split("pos", "qab", "nonexistent")
