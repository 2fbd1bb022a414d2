"""Run a plan in this process: cell after cell, each training the pieces it lacks, results as they come."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from xltransfer.context import RunContext
from xltransfer.execute.cells import evaluate_cell, failure_record
from xltransfer.planning import Plan, unfinished_cells
from xltransfer.progress import Progress
from xltransfer.store import ResultStore
from xltransfer.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: str
    cells: int
    counters: dict[str, int]
    seconds: float
    failures: dict[str, str] = field(default_factory=dict)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def open_for_run(workspace: Workspace) -> ResultStore:
    """Before anything trains: the workdir is writable (else one line naming it), what killed runs
    left in the artifact store's staging area is removed, and the results store opens."""
    workspace.check_writable()
    for leftover in workspace.artifacts.clean_staging():
        log.info("removed %s, left half-written by a run that was killed", leftover)
    return workspace.results


def run_local(plan: Plan, workspace: Workspace, progress: Progress, run_id: str | None = None) -> RunSummary:
    run_id = run_id or new_run_id()
    started = time.perf_counter()
    results = open_for_run(workspace)
    todo = unfinished_cells(plan, results)
    ctx = RunContext(plan, workspace, progress)
    ctx.counters["cells_skipped"] = len(plan.cells) - len(todo)
    failures: dict[str, str] = {}
    if todo:
        skipped = ctx.counters["cells_skipped"]
        progress.start_run(plan.grid.name, pieces_to_train(plan, todo, ctx), len(todo), skipped)
        ctx.prepare()
        for cell in todo:
            if not unfinished_cells(plan, results, [cell]):  # another process did it meanwhile
                ctx.counters["cells_skipped"] += 1
                progress.cell_skipped(cell.cell_id)
                continue
            try:
                records = evaluate_cell(ctx, cell, run_id)
            except Exception as error:  # noqa: BLE001 - a failed cell is recorded and the grid goes on
                record = failure_record(ctx, cell, run_id, error)
                failures[cell.cell_id] = record["error"]
                records = [record]
            results.write_cell(plan.grid.name, cell.cell_id, records)
            progress.cell_finished(cell.cell_id, records)
    return RunSummary(run_id, len(plan.cells), ctx.counters, time.perf_counter() - started, failures)


def pieces_to_train(plan: Plan, cells: list, ctx: RunContext) -> dict[str, int | None]:
    """The pieces the cells need that are not stored yet, with their planned steps (the ETA's basis)."""
    needed = dict.fromkeys(key for cell in cells for key in plan.closure(cell))
    steps = {}
    for key in needed:
        piece = plan.pieces[key].piece
        if not ctx.artifacts.has(key):  # a task's own piece (MT's vocabulary) takes no optimiser steps
            steps[key] = 0 if piece.task_owned else plan.trainers[key].planned_steps(piece)
    return steps
