"""A minimal leaderboard: per task and setting, target languages x methods on the main metric.

Averages over seeds; group averages split targets the backbone saw in pretraining from the
ones it did not, since transfer to unseen languages is what these methods are compared on.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from xltransfer import registry


def _fmt(values: list[float], scale: float) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values) * scale
    if len(values) > 1:
        return f"{mean:.1f} ± {statistics.stdev(values) * scale:.1f}"
    return f"{mean:.1f}"


def leaderboard_markdown(
    grid_name: str, records: list[dict[str, Any]], seen: frozenset[str] | None, description: str = ""
) -> str:
    lines = [f"# Leaderboard: {grid_name}", ""]
    if description:
        lines += [description.strip(), ""]
    ok = [r for r in records if r["status"] == "ok" and r["split"] == "test"]
    failed = sorted({r["cell_id"] for r in records if r["status"] == "failed"})
    if not ok:
        lines.append("No results yet: run `xlt run` on this grid first.")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        groups[(r["task"], r["setting"])].append(r)
    for (task, setting), rows in sorted(groups.items()):
        meta = registry.tasks.get(task).metadata
        metric = meta.main_metric
        scale = 100.0 if metric in {"accuracy", "f1", "uas", "las"} else 1.0
        rows = [r for r in rows if r["metric"] == metric]
        methods = sorted({_label(r) for r in rows})
        targets = sorted({r["target_language"] for r in rows})
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in rows:
            values[(r["target_language"], _label(r))].append(r["value"])
        sources = sorted({"+".join(r["source_languages"]) for r in rows})
        lines += [f"## {task} · {setting} · {metric} (source: {', '.join(sources)})", ""]
        lines.append("| target | " + " | ".join(methods) + " |")
        lines.append("|---|" + "---|" * len(methods))
        for target in targets:
            tag = "" if seen is None else (" (seen)" if target in seen else " (unseen)")
            cells = [_fmt(values.get((target, m), []), scale) for m in methods]
            lines.append(f"| {target}{tag} | " + " | ".join(cells) + " |")
        group_defs = [("average", targets)]
        if seen is not None:
            group_defs += [
                ("avg seen", [t for t in targets if t in seen]),
                ("avg unseen", [t for t in targets if t not in seen]),
            ]
        for name, members in group_defs:
            if not members:
                continue
            cells = []
            for m in methods:
                per_target = [statistics.fmean(values[(t, m)]) for t in members if values.get((t, m))]
                complete = len(per_target) == len(members)
                cells.append(f"{statistics.fmean(per_target) * scale:.1f}" if complete else "–")
            lines.append(f"| **{name}** | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(_efficiency(rows, methods))
    if failed:
        lines += ["", f"Failed cells ({len(failed)}):", ""] + [f"- `{c}`" for c in failed]
    return "\n".join(lines).rstrip() + "\n"


def _label(record: dict[str, Any]) -> str:
    return record["method"] if record["variant"] == "default" else f"{record['method']}:{record['variant']}"


def _efficiency(rows: list[dict[str, Any]], methods: list[str]) -> str:
    """Per cell (what one prediction needs) and for the whole table, where a piece shared by many
    cells (a source LA, a BA serving POS and DP) is counted once."""
    lines = [
        "| method | trainable params per cell | trainable params, all cells | train seconds, all cells |",
        "|---|---|---|---|",
    ]
    for m in methods:
        mine = [r for r in rows if _label(r) == m]
        per_cell = max((r["trainable_params"] or 0) for r in mine)
        shared: dict[str, list[float]] = {}
        for r in mine:
            shared.update((r.get("extra") or {}).get("piece_costs", {}))
        total_params = sum(cost[0] for cost in shared.values())
        total_seconds = sum(cost[1] for cost in shared.values())
        lines.append(f"| {m} | {per_cell / 1e6:.2f}M | {total_params / 1e6:.2f}M | {total_seconds:.0f} |")
    return "\n".join(lines) + "\n"
