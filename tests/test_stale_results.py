"""A finished cell is finished only while its record's fingerprint (its pieces' keys, its test data,
its backbone) is the plan's: changed data or a changed backbone re-evaluate it, and `xlt plan`
says so before `xlt run` does it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.reporting.leaderboard import render_leaderboard
from xltransfer.reporting.plan import plan_summary
from xltransfer.workspace import Workspace


def _majority_grid(folder: Path, prebuilt: Path) -> tuple[Path, Path, Path]:
    """A grid on copies of the tiny suite's files and backbone, which the test may change."""
    suite = next(p for p in (prebuilt / "cache" / "synthetic").iterdir() if not p.name.startswith("."))
    backbone = next((prebuilt / "artifacts").glob("backbone-*"))
    shutil.copytree(backbone, folder / "backbone")
    test = folder / "qab-test.conllu"
    shutil.copy(suite / "ud" / "qaa" / "qaa_synth-ud-train.conllu", folder / "qaa-train.conllu")
    shutil.copy(suite / "ud" / "qab" / "qab_synth-ud-test.conllu", test)
    grid = folder / "grid.yaml"
    grid.write_text(
        "name: stale\nbackbone: backbone\n"
        "data: {pos: {type: files, files: {qaa: {train: qaa-train.conllu}, qab: {test: qab-test.conllu}}}}\n"
        "methods: [majority]\ntasks: [pos]\nlanguages: {source: qaa, target: [qab]}\n"
    )
    return grid, test, folder / "backbone"


def _run(grid: Path, workspace: Workspace):
    plan = build_plan(load_grid(grid, workspace.root))
    planned = plan_summary(plan, workspace)["cells"]
    summary = run_local(plan, workspace, SilentProgress())
    return [c["finished"] for c in planned], summary.counters


def _examples(workspace: Workspace) -> int:
    (record,) = workspace.results.records(grid="stale", metric="accuracy")
    return record["extra"]["test_examples"]


def test_changed_test_data_or_backbone_re_evaluates_the_cell(tmp_path, tiny_prebuilt):
    grid, test, backbone = _majority_grid(tmp_path / "g", tiny_prebuilt)
    workspace = Workspace.at(tmp_path / "w")
    assert _run(grid, workspace) == ([False], {**_counts(evaluated=1)})
    assert _run(grid, workspace) == ([True], _counts(skipped=1))
    before = _examples(workspace)

    # the test file loses its last sentence: the old score is stale
    blocks = test.read_text(encoding="utf-8").strip("\n").split("\n\n")
    test.write_text("\n\n".join(blocks[:-1]) + "\n\n", encoding="utf-8")
    assert render_leaderboard(grid, workspace).records == 0  # a stale score is not reported
    assert _run(grid, workspace) == ([False], _counts(evaluated=1))
    assert _examples(workspace) == before - 1 == len(blocks) - 1

    # another backbone (one byte of its weights): the cell is evaluated again
    weights = backbone / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert _run(grid, workspace) == ([False], _counts(evaluated=1))
    assert _run(grid, workspace) == ([True], _counts(skipped=1))
    assert len(workspace.results.records(grid="stale")) == 1  # replaced, never duplicated


def test_a_record_without_fingerprint_is_evaluated_again(tmp_path, tiny_prebuilt):
    """Records written before fingerprints were recorded cannot be checked: their cells run again."""
    grid, _, _ = _majority_grid(tmp_path / "g", tiny_prebuilt)
    workspace = Workspace.at(tmp_path / "w")
    _run(grid, workspace)
    with sqlite3.connect(workspace.results_path) as conn:
        (extra,) = conn.execute("SELECT extra FROM results").fetchone()
        legacy = {k: v for k, v in json.loads(extra).items() if k != "fingerprint"}
        conn.execute("UPDATE results SET extra = ?", (json.dumps(legacy),))
    assert _run(grid, workspace) == ([False], _counts(evaluated=1))
    assert "fingerprint" in workspace.results.records(grid="stale")[0]["extra"]


def _counts(evaluated: int = 0, skipped: int = 0) -> dict[str, int]:
    return {
        "pieces_trained": 0,
        "pieces_reused": 0,
        "cells_evaluated": evaluated,
        "cells_skipped": skipped,
        "cells_failed": 0,
    }
