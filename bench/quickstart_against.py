#!/usr/bin/env python
"""The quickstart grid's time under two versions of xltransfer, run alternately on one machine.

    nice python bench/quickstart_against.py --base-python OLD/venv/bin/python [--python NEW/...] [--rounds 1]

Each side is an environment with xltransfer installed editable from its own checkout (a git worktree
at the commit to compare, ``pip install --no-deps -e`` into a copy of the project's venv): its
``xlt`` runs ``leaderboards/quickstart`` of its own checkout in a fresh workdir, in a fresh process,
base then new, ``--rounds`` times. Prints each run's wall and CPU seconds (the process and its
children, from ``wait4``), the new / base ratios of the medians (target <= 1: "the quickstart is no
slower", issue 19), and each version's piece wall seconds by kind, where a difference is spent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


def checkout_of(python: Path) -> tuple[Path, str]:
    """The checkout an environment's xltransfer is installed from, and its commit."""
    locate = "import xltransfer, pathlib; print(pathlib.Path(xltransfer.__file__).parents[1])"
    # from "/": run from a checkout, `python -c` would import that checkout's xltransfer instead
    where = subprocess.run(
        [str(python), "-c", locate], cwd="/", capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "-C", where, "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(where), commit


def run_quickstart(python: Path, checkout: Path, workdir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``xlt run leaderboards/quickstart`` in a fresh process."""
    xlt = python.with_name("xlt")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with open(workdir.with_suffix(".log"), "w") as log:
        process = subprocess.Popen(
            [str(xlt), "run", "leaderboards/quickstart", "--workdir", str(workdir)],
            cwd=checkout,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{xlt} run failed ({status}): see {workdir.with_suffix('.log')}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def piece_seconds(workdir: Path) -> dict[str, float]:
    """Wall seconds of the run's pieces, summed by kind."""
    by_kind: dict[str, float] = defaultdict(float)
    for info_file in workdir.rglob("info.json"):
        info = json.loads(info_file.read_text())
        seconds = info.get("wall_seconds", info.get("train_seconds"))  # older versions: train_seconds
        if seconds is not None:
            by_kind[info.get("kind", "?")] += seconds
    return dict(sorted(by_kind.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-python", type=Path, required=True, help="the base version's python")
    parser.add_argument("--python", type=Path, default=Path(sys.executable), help="the new version's python")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the workdirs here (<side>-<round>) to report from")
    args = parser.parse_args()
    sides = {"base": args.base_python, "new": args.python}
    checkouts = {name: checkout_of(python) for name, python in sides.items()}
    for name, (where, commit) in checkouts.items():
        print(f"{name}: {where} at {commit}", flush=True)
    print(f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    walls: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    pieces: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base_dir = args.keep or Path(tmp)
        base_dir.mkdir(parents=True, exist_ok=True)
        for round_ in range(args.rounds):
            for name, python in sides.items():
                workdir = base_dir / f"{name}-{round_}"
                wall, cpu = run_quickstart(python, checkouts[name][0], workdir)
                walls[name].append(wall)
                cpus[name].append(cpu)
                pieces[name] = piece_seconds(workdir)
                print(f"round {round_ + 1} {name}: {wall:.0f} s wall, {cpu:.0f} CPU s", flush=True)
    print()
    for what, figures in (("wall", walls), ("CPU", cpus)):
        base, new = statistics.median(figures["base"]), statistics.median(figures["new"])
        ratio = new / base
        print(f"quickstart {what} s, new / base: {ratio:.2f} (target <= 1): {new:.0f} s vs {base:.0f} s")
    kinds = sorted(set(pieces["base"]) | set(pieces["new"]))
    print("piece wall seconds by kind (last round), base -> new:")
    for kind in kinds:
        print(f"  {kind}: {pieces['base'].get(kind, 0):.0f} -> {pieces['new'].get(kind, 0):.0f}")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
