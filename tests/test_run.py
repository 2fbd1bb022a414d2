"""End to end on a tiny grid: results in the schema, artifact reuse, one source LA for many cells."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from xltransfer.methods.mad_x import MadX

from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.plan import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.results import json_schema
from xltransfer.workspace import Workspace


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_prebuilt):
    """Run the tiny grid once (shared by the tests of this module), spying on MAD-X training."""
    from conftest import seeded_workdir, write_tiny_grid

    root = tmp_path_factory.mktemp("run")
    grid_file = write_tiny_grid(root / "tiny")
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, root / "work"))
    trained: list[str] = []
    original = MadX.train

    def spy(self, piece, ctx):
        trained.append(piece.label)
        return original(self, piece, ctx)

    MadX.train = spy
    try:
        plan = build_plan(load_grid(grid_file, workspace.root))
        summary = run_local(plan, workspace, SilentProgress())
    finally:
        MadX.train = original
    return grid_file, workspace, plan, summary, trained


def test_every_cell_recorded_in_schema(finished_run):
    _, workspace, plan, summary, _ = finished_run
    assert not summary.failures
    records = workspace.results.records(grid="tiny")
    schema = json_schema()
    for record in records:
        jsonschema.validate(record, schema)
    got = {(r["method"], r["target_language"]) for r in records if r["status"] == "ok"}
    assert got == {(m, t) for m in ("majority", "full-ft", "mad-x") for t in ("qab", "qac")}
    mad_x = [r for r in records if r["method"] == "mad-x"]
    assert all(r["trainable_params"] > 0 and r["train_seconds"] > 0 and r["batch_size"] == 16 for r in mad_x)


def test_source_language_adapter_trained_once(finished_run):
    _, _, plan, summary, trained = finished_run
    assert trained.count("mad-x:language-adapter[qaa]") == 1
    assert trained.count("mad-x:task-adapter[qaa]") == 1
    mad_x_cells = [c for c in plan.cells if c.method == "mad-x"]
    source_la = next(
        k
        for k, p in plan.pieces.items()
        if p.piece.languages == ("qaa",) and p.piece.kind == "language-adapter"
    )
    assert len(mad_x_cells) == 2 and all(source_la in plan.closure(c) for c in mad_x_cells)
    assert summary.counters["pieces_trained"] == len(plan.pieces)


def test_second_run_trains_and_evaluates_nothing(finished_run):
    grid_file, workspace, _, _, _ = finished_run
    before = workspace.results.records(grid="tiny")
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    assert summary.counters["pieces_trained"] == 0
    assert summary.counters["cells_evaluated"] == 0
    assert summary.counters["cells_skipped"] == len(plan.cells)
    assert workspace.results.records(grid="tiny") == before


def test_results_json_cli_validates(finished_run):
    _, workspace, _, _, _ = finished_run
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xltransfer.cli",
            "results",
            "--json",
            "--results",
            str(workspace.results_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    records = json.loads(result.stdout)
    assert records
    for record in records:
        jsonschema.validate(record, json_schema())


def test_report_separates_seen_and_unseen(finished_run):
    grid_file, workspace, _, _, _ = finished_run
    from xltransfer.backbone import seen_languages
    from xltransfer.report.markdown import leaderboard_markdown

    grid = load_grid(grid_file, workspace.root)
    text = leaderboard_markdown(
        grid.name, workspace.results.records(grid="tiny"), seen_languages(grid, workspace)
    )
    assert "qab (seen)" in text and "qac (unseen)" in text, text
    assert "**avg seen**" in text and "**avg unseen**" in text
    assert text == leaderboard_markdown(
        grid.name, workspace.results.records(grid="tiny"), seen_languages(grid, workspace)
    )


def test_a_diverging_method_fails_its_cells_and_the_grid_goes_on(tmp_path, tiny_prebuilt):
    """MAD-X with an absurd LA learning rate: its loss turns NaN, training stops there, its cells are
    recorded as failed with the reason, and the other methods' cells complete."""
    from conftest import seeded_workdir, write_tiny_grid

    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab]")
    grid_file.write_text(
        grid_file.read_text().replace("la_learning_rate: 1.0e-3", "la_learning_rate: 1.0e+30")
    )
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, tmp_path / "w"))
    summary = run_local(build_plan(load_grid(grid_file, workspace.root)), workspace, SilentProgress())
    failed = workspace.results.records(status="failed")
    assert [r["method"] for r in failed] == ["mad-x"]
    assert "loss is nan" in failed[0]["error"] or "loss is inf" in failed[0]["error"]
    assert "FloatingPointError" in failed[0]["error"]
    ok = {r["method"] for r in workspace.results.records(status="ok")}
    assert ok == {"majority", "full-ft"}
    assert len(summary.failures) == 1
