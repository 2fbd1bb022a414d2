"""`xlt plan` as data: cells, unique pieces (shared ones once), parameters and estimated compute
per method, and the grouped summary the CLI prints by default."""

from __future__ import annotations

from collections import Counter
from typing import Any

from xltransfer import cost
from xltransfer.planning import Plan


def plan_summary(plan: Plan, workspace) -> dict[str, Any]:
    store = workspace.artifacts
    finished = finished_cell_ids(plan, workspace)
    used_by: Counter[str] = Counter()
    owner: dict[str, str] = {}  # piece key -> the method label of the first cell that uses it
    for cell in plan.cells:
        for key in plan.closure(cell):
            used_by[key] += 1
            owner.setdefault(key, cell.method_label)
    trainable = {key: plan.piece_parameters(key) for key in plan.pieces}
    local = cost.LocalData(plan)
    costs = {
        key: cost.piece_cost(plan, key, local.training_size, local.selection_size) for key in plan.pieces
    }
    pieces = []
    for key, planned in plan.pieces.items():
        piece = planned.piece
        pieces.append(
            {
                "key": key,
                "method": piece.method,
                "method_label": owner.get(key, piece.method),
                "kind": piece.kind,
                "languages": list(piece.languages),
                "task": piece.task,
                "seed": piece.seed,
                "shots": piece.params.get("shots"),
                "params": piece.params.to_dict(),
                "trainable_params": trainable[key],
                **costs[key].to_dict(),
                "needs": planned.needs,
                "used_by_cells": used_by[key],
                "stored": store.has(key),
            }
        )
    methods: dict[str, dict[str, Any]] = {}
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
            # its trainable count includes these methods' pieces (listed once, under them): mad-g:ft
            # counts the generator and task adapter it shares with mad-g
            "shares_pieces_with": sorted(
                {owner[k] for k in plan.closure(cell) if owner[k] != cell.method_label}
            ),
            **_compute(p for p in pieces if p["method_label"] == cell.method_label),
        }
    compute = _compute(pieces)
    # every MLM corpus a piece still to train reads, tokenised once (a stored piece's was prepared)
    prep_tokens = local.preparation_tokens({p["key"]: costs[p["key"]] for p in pieces if not p["stored"]})
    return {
        "grid": plan.grid.name,
        "backbone": plan.grid.backbone.name,
        "cells": [{**cell.to_dict(), "finished": cell.cell_id in finished} for cell in plan.cells],
        "pieces": pieces,
        "methods": methods,
        "cost": {
            "accelerator": cost.REFERENCE_ACCELERATOR,
            "peak_flops": cost.PEAK_FLOPS,
            "utilisation": cost.UTILISATION,
            "assumptions": cost.assumptions(),
            **compute,
            "gpu_hours_to_train": sum(p["gpu_hours"] or 0.0 for p in pieces if not p["stored"]),
            "eval_gpu_hours": sum(p["eval_gpu_hours"] for p in pieces),
            "data_prep_tokens": prep_tokens,
            "data_prep_cpu_hours": cost.data_preparation_hours(prep_tokens),
        },
    }


def _compute(pieces) -> dict[str, Any]:
    """Estimated GPU-hours of the pieces that could be costed, and how many could not."""
    pieces = list(pieces)
    return {
        "gpu_hours": sum(p["gpu_hours"] for p in pieces if p["gpu_hours"] is not None),
        "uncosted_pieces": sum(p["gpu_hours"] is None for p in pieces),
    }


def grouped_pieces(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Pieces by (method, kind), in plan order: how many (and how many stored), trainable
    parameters per piece, total steps and estimated compute of the pieces whose are known, and how
    many pieces have none (``uncosted``)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for piece in summary["pieces"]:
        groups.setdefault((piece["method_label"], piece["kind"]), []).append(piece)
    rows = []
    for (label, kind), members in groups.items():
        sizes = sorted({p["trainable_params"] for p in members})
        steps = [p["steps"] for p in members]
        hours = [p["gpu_hours"] for p in members]
        rows.append(
            {
                "method": label,
                "kind": kind,
                "pieces": len(members),
                "stored": sum(p["stored"] for p in members),
                "trainable_params": (sizes[0], sizes[-1]),
                "steps": sum(s for s in steps if s is not None),
                "gpu_hours": sum(h for h in hours if h is not None),
                "uncosted": sum(h is None for h in hours),
            }
        )
    return rows


def uncosted_line(summary: dict[str, Any]) -> str | None:
    """Which pieces have no estimate, and why: their steps are epochs over data the plan does not
    read (hub datasets), or their method declares no ``planned_steps`` / ``planned_batch``."""
    missing = [p for p in summary["pieces"] if p["gpu_hours"] is None]
    if not missing:
        return None
    epochs = sorted({f"{p['method_label']} {p['kind']}" for p in missing if p["batch"] is not None})
    undeclared = sorted({f"{p['method_label']} {p['kind']}" for p in missing if p["batch"] is None})
    reasons = []
    if epochs:
        reasons.append(
            f"{', '.join(epochs)}: epochs over data `xlt plan` does not read (hub datasets, "
            "a synthetic suite not generated yet)"
        )
    if undeclared:
        reasons.append(f"{', '.join(undeclared)}: the method declares no planned steps or batch")
    return f"not costed: {len(missing)} piece(s) ({'; '.join(reasons)})"


def finished_cell_ids(plan: Plan, workspace) -> set[str]:
    """Cells with current records, as `xlt run` decides it (a stale record does not count); the
    store is only read, and a workdir without one has none."""
    from xltransfer.planning import unfinished_cells

    if not workspace.results_path.exists():
        return set()
    pending = {cell.cell_id for cell in unfinished_cells(plan, workspace.read_results())}
    return {cell.cell_id for cell in plan.cells} - pending
