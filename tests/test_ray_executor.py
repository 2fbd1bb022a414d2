"""The Ray executor: pieces as Ray tasks in dependency order, then cells; resumable like local."""

from __future__ import annotations

import pytest
from conftest import write_tiny_grid

from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
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


def test_a_worker_killed_mid_piece_is_retried_and_every_record_written_once(tmp_path, tiny_workdir):
    """SIGKILL to the Ray worker training a piece (its pid is in the piece's lock file): Ray runs the
    task again (bounded retries), the piece is trained, and each cell has its records once."""
    import os
    import signal
    import threading
    import time

    from conftest import keep_methods

    from xltransfer.artifacts import LOCKS_DIR
    from xltransfer.execute.ray import run_ray

    grid_file = keep_methods(write_tiny_grid(tmp_path / "g", targets="[qab]", la_steps=200), "mad-x")
    workspace = Workspace.at(tiny_workdir)
    plan = build_plan(load_grid(grid_file, workspace.root))
    killed: list[tuple[str, int]] = []

    def kill_a_trainer() -> None:
        deadline = time.time() + 600
        while not killed and time.time() < deadline:
            for lock in (workspace.root / "artifacts" / LOCKS_DIR).glob("*.lock"):
                holder = lock.read_text().strip()
                if holder and int(holder) != os.getpid() and lock.stem in plan.pieces:
                    os.kill(int(holder), signal.SIGKILL)
                    killed.append((lock.stem, int(holder)))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_trainer, daemon=True)
    killer.start()
    try:
        summary = run_ray(plan, workspace, SilentProgress())
    finally:
        ray.shutdown()
    killer.join(timeout=5)
    assert killed, "no worker was seen training a piece"
    assert not summary.failures, summary.failures
    assert all(workspace.artifacts.problem(key) is None for key in plan.pieces)
    records = workspace.results.records(grid="tiny")
    assert sorted(r["cell_id"] for r in records) == sorted(c.cell_id for c in plan.cells)
    assert all(r["status"] == "ok" for r in records)
