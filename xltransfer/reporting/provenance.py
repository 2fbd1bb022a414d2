"""Where a leaderboard's numbers come from: backbone and revision, data sources, software (the
project's commit, libraries, plugin packages), hardware, runs and dates, and commands that
reproduce it when pasted into a shell — rendered from the grid and the records only, so the section
is the same every time the same store is rendered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPRODUCE_WORKDIR = "xlt-reproduce"  # a fresh working directory: nothing stored is reused


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
    software = _software(ok)
    versions = sorted({r["xltransfer_version"] for r in ok})
    if versions:
        commits = ", ".join(f"`{c}`" for c in software["described_commits"]) or "not recorded"
        lines.append(f"- xltransfer: {', '.join(versions)}; commit {commits}")
    if software["libraries"]:
        lines.append("- Libraries: " + ", ".join(f"{n} {v}" for n, v in software["libraries"]))
    if software["plugins"]:
        lines.append("- Plugin packages: " + ", ".join(f"{n} {v}" for n, v in software["plugins"]))
    devices = sorted({f"{r['device']} ({r['dtype']})" for r in ok})
    if devices:
        lines.append(f"- Devices: {', '.join(devices)}")
    hardware = sorted({h for r in ok for h in (r.get("extra") or {}).get("hardware", [])})
    if hardware:
        lines.append(f"- Hardware that trained the pieces: {'; '.join(hardware)}")
    runs = sorted({r["run_id"] for r in ok})
    if runs:
        dates = sorted(r["created_at"] for r in ok)
        lines.append(
            f"- Runs: {', '.join(f'`{run}`' for run in runs)}; results from {dates[0]} to {dates[-1]}"
        )
        lines.append(
            f"- Cells: {len({r['cell_id'] for r in ok})} evaluated, seeds {sorted({r['seed'] for r in ok})}"
        )
    lines += ["", "Reproduce (same data revisions and backbone) in a clone of the xltransfer repository:", ""]
    lines += ["```sh", *reproduce_commands(grid_path, software), "```"]
    return "\n".join(lines)


def reproduce_commands(grid_path: Path, software: dict[str, Any]) -> list[str]:
    """Shell lines that reproduce the board: the commit, torch first (pip would otherwise pick a
    build for you), the project from the checkout (it is not on PyPI), the plugins at their
    versions, the run into a fresh working directory, and the report written beside it."""
    commits = software["commits"]
    torch = dict(software["libraries"]).get("torch", "").split("+")[0]
    grid = _grid_argument(grid_path)
    lines = []
    if len(commits) == 1:
        lines.append(f"git checkout {commits[0]}")
    elif commits:
        lines.append(f"# results come from several commits: {', '.join(commits)}")
    lines += [
        "python -m venv .venv && . .venv/bin/activate",
        f"pip install torch{'==' + torch if torch else ''}  # first: the CPU or CUDA build for this machine",
        "pip install -e .",
    ]
    lines += [f"pip install '{name}=={version}'" for name, version in software["plugins"]]
    lines += [
        f"xlt run {grid} --workdir {REPRODUCE_WORKDIR}",
        f"xlt report {grid} --workdir {REPRODUCE_WORKDIR} --out {REPRODUCE_WORKDIR}/report",
    ]
    return lines


def _software(records: list[dict[str, Any]]) -> dict[str, Any]:
    commits, libraries, plugins = set(), set(), set()
    for r in records:
        software = (r.get("extra") or {}).get("software") or {}
        code = software.get("code")
        if code:
            commits.add(code["commit"] + (" (with uncommitted changes)" if code.get("dirty") else ""))
        libraries.update((software.get("libraries") or {}).items())
        plugins.update((software.get("plugins") or {}).items())
    clean = sorted({c.split(" ")[0] for c in commits})
    return {
        "commits": clean,
        "described_commits": sorted(commits),
        "libraries": sorted(libraries),
        "plugins": sorted(plugins),
    }


def _grid_argument(grid_path: Path) -> str:
    """How the reproducing user names the grid: ``leaderboards/<name>`` for a leaderboard of the
    repository, else the path as given."""
    path = Path(grid_path)
    folder = path.parent if path.suffix in (".yaml", ".yml") else path
    if folder.parent.name == "leaderboards":
        name = f"leaderboards/{folder.name}"
        return name if folder == path else f"{name}/{path.name}"
    return str(grid_path)
