"""Run a plan on a Ray cluster: pieces as tasks in dependency order, then cells.

Workers rebuild the plan from the grid file and share the workspace (results database and
artifact store) through a common filesystem, so a piece is trained once and any worker reuses it;
a cell whose piece failed is recorded as failed and the others go on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from xltransfer.errors import XltError
from xltransfer.execute.local import RunSummary, new_run_id, open_for_run
from xltransfer.planning import Plan, unfinished_cells
from xltransfer.progress import Progress
from xltransfer.workspace import Workspace

RETRIES = 2  # attempts after the first when a worker process dies (a Python exception is not retried)


def _worker_context(grid_path: str, workdir: str, results: str, cell_ids: list[str] | None):
    from xltransfer.context import RunContext
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress

    workspace = Workspace(Path(workdir), Path(results))
    grid = load_grid(grid_path, workspace.root)
    cells = grid.cells()
    if cell_ids is not None:
        cells = [c for c in cells if c.cell_id in set(cell_ids)]
    return RunContext(build_plan(grid, cells), workspace, SilentProgress())


def _train_piece(
    grid_path: str, workdir: str, results: str, cell_ids: list[str], key: str, *needs: str
) -> str:
    from xltransfer.execute.cells import ensure_piece

    ensure_piece(_worker_context(grid_path, workdir, results, cell_ids), key)
    return key


def _run_cell(grid_path: str, workdir: str, results: str, cell_id: str, run_id: str, *pieces: str) -> dict:
    from xltransfer.execute.cells import evaluate_cell, failure_record

    ctx = _worker_context(grid_path, workdir, results, [cell_id])
    cell = ctx.plan.cells[0]
    try:
        records = evaluate_cell(ctx, cell, run_id)
    except Exception as error:  # noqa: BLE001 - recorded as a failed cell
        records = [failure_record(ctx, cell, run_id, error)]
    ctx.workspace.results.write_cell(ctx.grid.name, cell_id, records)
    return {"status": records[0]["status"], "error": records[0]["error"], **ctx.counters}


def run_ray(plan: Plan, workspace: Workspace, progress: Progress, run_id: str | None = None) -> RunSummary:
    try:
        import ray
    except ImportError as error:
        raise XltError("the ray executor needs Ray: pip install 'xltransfer[ray]'") from error
    from xltransfer.context import RunContext
    from xltransfer.execute.cells import failure_record

    run_id = run_id or new_run_id()
    started = time.perf_counter()
    results = open_for_run(workspace)
    todo = unfinished_cells(plan, results)
    ctx = RunContext(plan, workspace, progress)
    ctx.counters["cells_skipped"] = len(plan.cells) - len(todo)
    failures: dict[str, str] = {}
    if not todo:
        return RunSummary(run_id, len(plan.cells), ctx.counters, time.perf_counter() - started)
    ctx.prepare()  # before any worker starts

    ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
    # a worker that dies mid-piece (killed, out of memory) is retried, a bounded number of times; the
    # piece's lock dies with it, and its half-written staging folder is removed by the next run
    train_piece = ray.remote(max_retries=RETRIES)(_train_piece)
    run_cell = ray.remote(max_retries=RETRIES)(_run_cell)
    args = (str(plan.grid.path), str(workspace.root.resolve()), str(workspace.results_path.resolve()))
    todo_ids = [c.cell_id for c in todo]
    refs: dict[str, object] = {}
    needed = {key for cell in todo for key in plan.closure(cell)}
    for key, planned in plan.pieces.items():  # dependency order
        if key in needed and not workspace.artifacts.has(key):
            refs[key] = train_piece.remote(
                *args, todo_ids, key, *(refs[k] for k in planned.needs if k in refs)
            )
        elif key in needed:
            ctx.counters["pieces_reused"] += 1
    cell_refs = {
        run_cell.remote(
            *args, cell.cell_id, run_id, *(refs[k] for k in plan.closure(cell) if k in refs)
        ): cell
        for cell in todo
    }
    with progress.bar(f"grid {plan.grid.name} (ray)", len(cell_refs)) as advance:
        pending = list(cell_refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            cell = cell_refs[done[0]]
            try:
                outcome = ray.get(done[0])
            except Exception as error:  # noqa: BLE001 - a piece it needed failed in its worker
                record = failure_record(ctx, cell, run_id, error)
                results.write_cell(plan.grid.name, cell.cell_id, [record])
                outcome = {"status": "failed", "error": record["error"]}
            if outcome["status"] == "failed":
                failures[cell.cell_id] = outcome["error"]
            else:
                ctx.counters["cells_evaluated"] += 1
            advance(1)
    ctx.counters["cells_failed"] = len(failures)
    ctx.counters["pieces_trained"] = sum(workspace.artifacts.has(key) for key in refs)
    return RunSummary(run_id, len(plan.cells), ctx.counters, time.perf_counter() - started, failures)
