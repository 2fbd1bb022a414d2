"""The Ray executor: pieces as Ray tasks in dependency order, then cells; resumable like local."""

from __future__ import annotations

import pytest
from conftest import write_tiny_grid

from xltransfer.grid import load_grid
from xltransfer.plan import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.workspace import Workspace

ray = pytest.importorskip("ray", reason="Ray is the optional extra xltransfer[ray]")


def test_ray_runs_the_grid_and_a_rerun_does_nothing(tmp_path, tiny_workdir):
    from xltransfer.execute.ray import run_ray

    grid_file = write_tiny_grid(tmp_path / "g")
    workspace = Workspace.at(tiny_workdir)
    plan = build_plan(load_grid(grid_file, workspace.root))
    try:
        summary = run_ray(plan, workspace, SilentProgress())
        assert not summary.failures, summary.failures
        assert summary.counters["pieces_trained"] == len(plan.pieces)
        records = workspace.results.records(grid="tiny", status="ok")
        assert {r["cell_id"] for r in records} == {c.cell_id for c in plan.cells}
        again = run_ray(build_plan(load_grid(grid_file, workspace.root)), workspace, SilentProgress())
        assert again.counters["cells_skipped"] == len(plan.cells) and again.counters["pieces_trained"] == 0
    finally:
        ray.shutdown()
