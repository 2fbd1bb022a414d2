"""Where a leaderboard's numbers come from: backbone and revision, data sources, software versions,
runs and dates, and the commands that reproduce it — rendered from the grid and the records only,
so the section is the same every time the same store is rendered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def provenance_markdown(grid, records: list[dict[str, Any]], grid_path: Path) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    lines = ["## Provenance", ""]
    backbones = sorted({(r["backbone"], r["backbone_revision"] or "–") for r in ok})
    if backbones:
        lines.append("- Backbone: " + "; ".join(f"`{name}` (revision `{rev}`)" for name, rev in backbones))
    else:
        lines.append(f"- Backbone: `{grid.backbone.name}` (revision `{grid.backbone.revision_label}`)")
    for task in sorted(grid.sources):
        described = json.dumps(grid.sources[task].describe(), sort_keys=True, default=str)
        lines.append(f"- Data for `{task}`: `{described}`")
    if grid.synthetic is not None and any(
        s.describe().get("type") == "synthetic" for s in grid.sources.values()
    ):
        lines.append(f"- Synthetic suite: `{json.dumps(grid.synthetic.to_dict(), sort_keys=True)}`")
    versions = sorted({r["xltransfer_version"] for r in ok})
    if versions:
        lines.append(f"- xltransfer: {', '.join(versions)}")
    devices = sorted({f"{r['device']} ({r['dtype']})" for r in ok})
    if devices:
        lines.append(f"- Devices: {', '.join(devices)}")
    runs = sorted({r["run_id"] for r in ok})
    if runs:
        dates = sorted(r["created_at"] for r in ok)
        lines.append(
            f"- Runs: {', '.join(f'`{run}`' for run in runs)}; results from {dates[0]} to {dates[-1]}"
        )
        lines.append(
            f"- Cells: {len({r['cell_id'] for r in ok})} evaluated, seeds {sorted({r['seed'] for r in ok})}"
        )
    lines += [
        "",
        "Reproduce (same data revisions and backbone):",
        "",
        "```",
        f"pip install 'xltransfer=={versions[-1] if versions else '<version>'}'",
        f"xlt run {grid_path}",
        f"xlt report {grid_path}",
        "```",
    ]
    return "\n".join(lines)
