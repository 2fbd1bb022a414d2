"""End to end on a tiny grid: `xlt run`'s log and final table, results in the schema, artifact reuse,
one source LA for many cells, predictions on disk, flat exports and the Python API."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest
from xltransfer.methods.mad_x import MadX

from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.store import json_schema
from xltransfer.workspace import Workspace


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_prebuilt):
    """Run the tiny grid once with `xlt run` (in-process, output captured: not a terminal), spying
    on MAD-X training; shared by the tests of this module."""
    from conftest import seeded_workdir, with_trained_language_adapters, write_tiny_grid
    from typer.testing import CliRunner

    from xltransfer.cli import app

    root = tmp_path_factory.mktemp("run")
    grid_file = with_trained_language_adapters(write_tiny_grid(root / "tiny"))
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, root / "work"))
    trained: list[str] = []
    original = MadX.train

    def spy(self, piece, ctx):
        trained.append(piece.label)
        return original(self, piece, ctx)

    # MonkeyPatch undoes by deleting: assigning the inherited method back would leave MadX its own
    # `train`, which hides later patches of StackedAdapterMethod.train (tests/test_adapter_methods.py)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MadX, "train", spy)
        result = CliRunner().invoke(app, ["run", str(grid_file), "--workdir", str(workspace.root)])
    assert result.exit_code == 0, result.output
    plan = build_plan(load_grid(grid_file, workspace.root))
    return grid_file, workspace, plan, result, trained


def _counters(output: str) -> dict[str, int]:
    """The counts of `xlt run`'s summary line."""
    found = re.search(
        r"(\d+) evaluated, (\d+) already done, (\d+) failed; "
        r"pieces (\d+) trained, (\d+) loads of stored ones",
        output,
    )
    assert found, output
    names = ("cells_evaluated", "cells_skipped", "cells_failed", "pieces_trained", "pieces_reused")
    return dict(zip(names, map(int, found.groups()), strict=True))


def test_every_cell_recorded_in_schema(finished_run):
    _, workspace, plan, result, _ = finished_run
    assert _counters(result.stderr)["cells_failed"] == 0
    records = workspace.results.records(grid="tiny")
    schema = json_schema()
    for record in records:
        jsonschema.validate(record, schema)
    got = {(r["method"], r["target_language"]) for r in records if r["status"] == "ok"}
    assert got == {(m, t) for m in ("majority", "full-ft", "mad-x") for t in ("qab", "qac")}
    mad_x = [r for r in records if r["method"] == "mad-x"]
    assert all(r["trainable_params"] > 0 and r["train_seconds"] > 0 and r["batch_size"] == 16 for r in mad_x)


def test_source_language_adapter_trained_once(finished_run):
    _, _, plan, result, trained = finished_run
    assert trained.count("mad-x:language-adapter[qaa]") == 1
    assert trained.count("mad-x:task-adapter[qaa]") == 1
    mad_x_cells = [c for c in plan.cells if c.method == "mad-x"]
    source_la = next(
        k
        for k, p in plan.pieces.items()
        if p.piece.languages == ("qaa",) and p.piece.kind == "language-adapter"
    )
    assert len(mad_x_cells) == 2 and all(source_la in plan.closure(c) for c in mad_x_cells)
    assert _counters(result.stderr)["pieces_trained"] == len(plan.pieces)


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
    from xltransfer.reporting.markdown import leaderboard_markdown

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


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d (INFO|WARNING|DEBUG) ")


def test_run_logs_every_piece_and_cell_and_ends_with_the_scores(finished_run):
    """Off a terminal (nohup, SLURM, CI, pipes): a timestamped line per piece started and finished
    (time, best dev score, pieces k/n, ETA) and per cell scored; then the score table, last."""
    _, workspace, plan, result, _ = finished_run
    lines = result.stderr.splitlines()
    logged = [line for line in lines if LOG_LINE.match(line)]
    for planned in plan.pieces.values():
        label = re.escape(planned.piece.label)
        assert any(re.search(rf"piece \d+/{len(plan.pieces)} started: {label} \(", x) for x in logged), label
        done = [x for x in logged if re.search(rf"piece \d+/{len(plan.pieces)} done: {label} in ", x)]
        assert done and (
            "best dev_" in done[0] or planned.piece.kind == "finetuned-model" or "best " in done[0]
        )
        assert re.search(r"(ETA \d+:\d\d:\d\d for [\d,]+ steps|nothing left to train)", done[0]), done[0]
    for cell in plan.cells:
        assert any(f"scored: {cell.cell_id}: accuracy " in x for x in logged), cell.cell_id
    assert any(re.search(rf"cell {len(plan.cells)}/{len(plan.cells)} scored", x) for x in logged)
    assert not any("progress.py" in line for line in lines)  # no source-location column
    assert f"results: {workspace.results_path}" in result.stderr
    table = result.stdout.rstrip().splitlines()
    assert table[0] == "## pos · zero-shot · accuracy (source: qaa)"
    rows = [line for line in table if line.startswith("|")]
    assert rows[-1].startswith("| **avg unseen** (1) |")  # the output ends with the table (and its notes)
    assert table[-1].startswith("↑ / ↓: significantly better / worse than full-ft")
    assert not any(LOG_LINE.match(line) for line in table)
    assert any(line.startswith("| qab (seen) |") for line in table)


def test_every_cell_has_its_predictions_on_disk_and_evaluate_rescores_them(finished_run):
    """Each cell's predictions in the task's format, named by its records; `xlt evaluate` on that
    file and the gold test file gives the stored value."""
    from typer.testing import CliRunner

    from xltransfer.cli import app
    from xltransfer.context import RunContext

    _, workspace, plan, _, _ = finished_run
    records = [r for r in workspace.results.records(grid="tiny") if r["status"] == "ok"]
    assert {r["cell_id"] for r in records} == {c.cell_id for c in plan.cells}
    ctx = RunContext(plan, workspace)
    for record in records:
        predictions = workspace.root / record["extra"]["predictions"]
        assert predictions.is_file() and predictions.suffix == ".conllu"
        assert predictions.stat().st_mode & 0o777 == 0o644 & ~_umask()
        cell = next(c for c in plan.cells if c.cell_id == record["cell_id"])
        gold = ctx.grid.source_for("pos").locate("conllu", cell.target_language, "test")
        result = CliRunner().invoke(
            app, ["evaluate", "--task", "pos", "--gold", str(gold), "--pred", str(predictions), "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["accuracy"] == pytest.approx(record["value"], abs=1e-12)
    shown = CliRunner().invoke(app, ["evaluate", "--task", "pos", "--gold", str(gold), "--pred", str(gold)])
    assert shown.stdout.strip() == "accuracy (%): 100.00"  # the reports' scale, not 1.0000


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_results_flat_columns_and_the_python_api(finished_run):
    """`xlt results --format csv` gives the source-test score and the adapters' perplexity their own
    columns; `xltransfer.results()` is the same table as a DataFrame, `xltransfer.plan()` is
    `xlt plan --json`, and the results table shows the reports' scale."""
    import csv
    import io

    from typer.testing import CliRunner

    import xltransfer
    from xltransfer.cli import app

    grid_file, workspace, _, _, _ = finished_run
    args = ["results", "--workdir", str(workspace.root), "--metric", "accuracy"]
    text = CliRunner().invoke(app, [*args, "--format", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    mad_x = next(r for r in rows if r["method"] == "mad-x" and r["target_language"] == "qab")
    assert (
        0 < float(mad_x["extra.source_test.accuracy"]) <= 1 and mad_x["extra.source_test.language"] == "qaa"
    )
    assert float(mad_x["extra.adapter_perplexity.target"]) > 1  # the qab LA
    assert float(mad_x["extra.adapter_perplexity.source"]) > 1  # the qaa LA
    assert mad_x["params.la_steps"] == "120" and "extra" not in rows[0] and "method_params" not in rows[0]

    frame = xltransfer.results(workdir=workspace.root, metric="accuracy")
    assert list(frame.columns) == list(rows[0]) and len(frame) == len(rows)
    assert frame["extra.source_test.accuracy"].notna().all()

    planned = xltransfer.plan(grid_file, workdir=workspace.root)
    printed = CliRunner().invoke(app, ["plan", str(grid_file), "--json", "--workdir", str(workspace.root)])
    assert json.loads(printed.stdout) == planned
    assert all(piece["stored"] for piece in planned["pieces"])

    table = CliRunner().invoke(app, args).stdout
    value = next(
        r["value"] for r in workspace.results.records(grid="tiny", method="mad-x", target_language="qab")
    )
    assert f"{value * 100:.2f}" in table  # 37.02, as the report shows it, not 0.3702


def test_results_filters_are_checked_and_an_empty_match_warns(finished_run):
    from typer.testing import CliRunner

    from xltransfer.cli import app

    _, workspace, _, _, _ = finished_run
    base = ["results", "--workdir", str(workspace.root)]
    bad = CliRunner().invoke(app, [*base, "--status", "done"])
    assert bad.exit_code == 2 and "--status 'done': choose ok or failed" in bad.output
    empty = CliRunner().invoke(app, [*base, "--method", "mad-y"])
    assert empty.exit_code == 0 and empty.stdout == ""  # a warning, no empty table
    assert (
        "warning: no records match --method mad-y" in empty.stderr
        and "methods full-ft, mad-x" in empty.stderr
    )


def test_every_trained_piece_records_the_load_average_at_its_start_and_end(finished_run):
    _, workspace, plan, _, _ = finished_run
    for key in plan.pieces:
        info = workspace.artifacts.info(key)
        assert len(info["load_average"]) == 2 and all(v is None or v >= 0 for v in info["load_average"])
        assert info["cores"] >= 1
