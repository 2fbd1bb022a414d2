"""`xlt plan` as data: cells, unique pieces (shared ones once) and parameters per method."""

from __future__ import annotations

from collections import Counter
from typing import Any

from xltransfer.plan import Plan


def plan_summary(plan: Plan, workspace) -> dict[str, Any]:
    store = workspace.artifacts
    finished = finished_cell_ids(plan, workspace)
    used_by: Counter[str] = Counter()
    for cell in plan.cells:
        for key in plan.closure(cell):
            used_by[key] += 1
    trainable = {key: plan.piece_parameters(key) for key in plan.pieces}
    pieces = []
    for key, planned in plan.pieces.items():
        piece = planned.piece
        pieces.append(
            {
                "key": key,
                "method": piece.method,
                "kind": piece.kind,
                "languages": list(piece.languages),
                "task": piece.task,
                "params": piece.params.to_dict(),
                "trainable_params": trainable[key],
                "steps": plan.trainers[key].planned_steps(piece),
                "needs": planned.needs,
                "used_by_cells": used_by[key],
                "stored": store.has(key),
            }
        )
    methods: dict[str, dict[str, int]] = {}
    for cell in plan.cells:
        if cell.method_label in methods:
            continue
        counts = plan.parameter_counts(cell)
        methods[cell.method_label] = {
            "trainable_params": sum(trainable[k] for k in plan.closure(cell)),
            # trained parameters beyond the backbone's: the papers' "extra" parameters
            "added_params": sum(plan.piece_added_parameters(k) for k in plan.closure(cell)),
            "base_params": counts["base_params"],
            "extra_params": counts["extra_params"],
        }
    return {
        "grid": plan.grid.name,
        "backbone": plan.grid.backbone.name,
        "cells": [{**cell.to_dict(), "finished": cell.cell_id in finished} for cell in plan.cells],
        "pieces": pieces,
        "methods": methods,
    }


def finished_cell_ids(plan: Plan, workspace) -> set[str]:
    """Cells with current records, as `xlt run` decides it (a stale record does not count); the
    store is only read, and a workdir without one has none."""
    from xltransfer.execute.local import unfinished_cells

    if not workspace.results_path.exists():
        return set()
    pending = {cell.cell_id for cell in unfinished_cells(plan, workspace.read_results())}
    return {cell.cell_id for cell in plan.cells} - pending
