"""Two `xlt run` on one workdir at once, split by --only: every piece they share is trained by one of
them while the other waits for it, and every cell is recorded once."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import keep_methods, write_tiny_grid

from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.workspace import Workspace


def test_runs_split_by_only_train_each_piece_once(tmp_path, tiny_workdir):
    grid = keep_methods(write_tiny_grid(tmp_path / "g", targets="[qab, qac]"), "mad-x")
    plan = build_plan(load_grid(grid, tiny_workdir))
    assert len(plan.pieces) == 4  # the source LA and the TA are shared; one LA per target
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "xltransfer.cli", "run", str(grid), "--workdir", str(tiny_workdir)]
            + ["--quiet", "--only", f"target={target}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for target in ("qab", "qac")
    ]
    outputs = [run.communicate(timeout=900)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    trained = [int(re.search(r"pieces (\d+) trained", out).group(1)) for out in outputs]
    assert sum(trained) == len(plan.pieces), outputs
    records = Workspace.at(tiny_workdir).results.records(grid="tiny")
    assert sorted(r["cell_id"] for r in records if r["metric"] == "accuracy") == sorted(
        c.cell_id for c in plan.cells
    )
    assert all(r["status"] == "ok" for r in records)
