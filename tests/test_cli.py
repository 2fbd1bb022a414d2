"""The CLI's polish: --version, the top help, where `list leaderboards` looks, and `xlt report`'s
output (--out, --format latex, files readable by others, Markdown on stdout as written)."""

from __future__ import annotations

import os
import re
import stat

import pytest
from conftest import write_tiny_grid
from typer.testing import CliRunner

from xltransfer import __version__
from xltransfer.cli import app
from xltransfer.store import FIELDS, SCHEMA_VERSION
from xltransfer.workspace import Workspace


def test_version_and_every_command_in_the_top_help():
    assert CliRunner().invoke(app, ["--version"]).stdout.strip() == f"xlt (xltransfer) {__version__}"
    top = CliRunner().invoke(app, ["--help"]).stdout
    for command in (
        "list",
        "describe",
        "plan",
        "run",
        "report",
        "results",
        "evaluate",
        "export",
        "check-method",
    ):
        assert re.search(rf"│ {re.escape(command)}\s", top), command


def test_list_leaderboards_says_where_it_looked(tmp_path, monkeypatch):
    (tmp_path / "leaderboards" / "mine").mkdir(parents=True)
    (tmp_path / "leaderboards" / "mine" / "grid.yaml").write_text("name: mine\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["list", "leaderboards"])
    assert result.exit_code == 0
    assert result.stdout.split() == ["mine"]
    assert f"leaderboards in {tmp_path / 'leaderboards'}" in result.stderr


def test_list_methods_shows_summary_tasks_settings_variants_and_citation():
    result = CliRunner().invoke(app, ["list", "methods"])
    block = result.stdout[result.stdout.index("mad-x  (") :].split("\n")[:5]
    assert block[1].strip().startswith("language adapter per language")
    assert block[2].strip() == "tasks: dp, ner, nli, pos; settings: few-shot, mixed, zero-shot"
    assert block[3].strip() == "variants: no-inv, 2.0"
    assert block[4].strip() == "citation: Pfeiffer, Vulić, Gurevych, Ruder 2020, MAD-X, EMNLP"


@pytest.fixture(scope="module")
def stored_board(tmp_path_factory):
    """The tiny grid with hand-made results (no training): what `xlt report` renders."""
    root = tmp_path_factory.mktemp("board")
    grid_file = write_tiny_grid(root / "leaderboards" / "tiny")
    workspace = Workspace.at(root / "w")
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.store import FINGERPRINT

    grid = load_grid(grid_file, workspace.root)
    plan = build_plan(grid)  # records carry their cell's fingerprint, else a report leaves them out as stale
    values = {"majority": 0.2, "full-ft": 0.6, "mad-x": 0.7}
    for cell in grid.cells():
        record = {field: None for field in FIELDS}
        record.update(cell.to_dict())
        record.update(
            schema_version=SCHEMA_VERSION,
            run_id="r1",
            grid=grid.name,
            split="test",
            metric="accuracy",
            value=values[cell.method] + (0.05 if cell.target_language == "qac" else 0.0),
            status="ok",
            backbone="quickstart",
            backbone_revision="local",
            trainable_params=5_200,
            xltransfer_version=__version__,
            created_at="2026-01-01T00:00:00+00:00",
            dtype="float32",
            device="cpu",
            extra={
                FINGERPRINT: plan.cell_fingerprint(cell),
                "piece_costs": {f"{cell.method}-{cell.target_language}": [5_200, 10.0, 19.0, 3.0]},
                "hardware": ["CPU Test Processor, 2 cores, 2 torch threads"],
                "software": {
                    "code": {"commit": "0123456789abcdef", "dirty": False},
                    "libraries": {"torch": "2.13.0+cpu", "adapters": "1.3.0"},
                    "plugins": {"xlt-demo-plugin": "0.1.0"},
                },
            },
        )
        workspace.results.write_cell(grid.name, cell.cell_id, [record])
    return grid_file, workspace


def test_report_out_latex_permissions_and_stdout_as_written(stored_board, tmp_path):
    grid_file, workspace = stored_board
    before = {p: p.stat().st_mtime_ns for p in grid_file.parent.rglob("*")}
    out = tmp_path / "elsewhere"
    args = ["report", str(grid_file.parent), "--workdir", str(workspace.root), "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    readme = (out / "README.md").read_text()
    assert result.stdout == readme  # not reflowed to the terminal's width
    assert {
        p: p.stat().st_mtime_ns for p in grid_file.parent.rglob("*")
    } == before  # the grid's folder untouched
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert "bars-pos-zero-shot.png" in figures and "bars-pos-zero-shot.pdf" in figures
    assert "bars-pos-zero-shot.svg" in figures
    mode = 0o666 & ~_umask()
    for path in [out / "README.md", out / "index.html", *(out / "figures").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path  # not mkstemp's 0600
    # the reproduce block works when pasted: the commit, torch first, the project from the checkout,
    # plugins at their versions, the grid into a fresh working directory
    block = readme[readme.index("```sh\n") + 6 :]
    block = block[: block.index("```")].splitlines()
    assert block[0] == "git checkout 0123456789abcdef"
    assert block[2].startswith("pip install torch==2.13.0 ") and block[3] == "pip install -e ."
    assert block[4] == "pip install 'xlt-demo-plugin==0.1.0'"
    assert block[5] == "xlt run leaderboards/tiny --workdir xlt-reproduce"
    assert "pip install 'xltransfer==" not in readme
    assert "- Plugin packages: xlt-demo-plugin 0.1.0" in readme
    # adaptive units, wall seconds, data preparation seconds, CPU seconds
    assert "| mad-x | 5.2K | 10.4K | 20 | 6 | 38 |" in readme

    latex = CliRunner().invoke(app, [*args, "--format", "latex"])
    assert latex.exit_code == 0, latex.output
    tex = (out / "leaderboard.tex").read_text()
    assert latex.stdout == tex and r"\toprule" in tex and r"\bottomrule" in tex and r"\caption{" in tex


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_atomic_writes_leave_files_readable_by_others(tmp_path):
    from xltransfer.util import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary left behind


def test_unreadable_report_format_is_exit_2(stored_board, tmp_path):
    grid_file, workspace = stored_board
    args = ["report", str(grid_file.parent), "--workdir", str(workspace.root), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--format", "docx"])
    assert result.exit_code == 2 and "--format 'docx'" in result.output


def test_progress_eta_counts_planned_steps_not_cells():
    """The ETA is the steps still planned times this run's seconds per step; a piece whose steps
    depend on its data is named, not guessed; pieces k/n count."""
    import logging

    from xltransfer.progress import Progress

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Capture()
    logger = logging.getLogger("xltransfer.run")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        progress = Progress()
        progress.start_run("g", {"a": 100, "b": 300, "c": None}, cells=6, skipped=2)
        assert "3 pieces to train (400 planned steps + 1 piece whose steps depend on data)" in lines[-1]
        progress.piece_started("a", "m:la[x]", 100)
        with progress.bar("m:la[x]", 100) as advance:
            for _ in range(100):
                advance(1)
        assert progress.piece_steps == 100  # the piece's own pace, apart from loops outside pieces
        progress.piece_steps, progress.piece_seconds = 100, 50.0  # 0.5 s a step, whatever the clock said
        progress.piece_finished(
            "a", "m:la[x]", {"train_seconds": 50.0, "cpu_seconds": 90.0, "dev_perplexity": 12.0}
        )
        assert lines[-1].startswith("piece 1/3 done: m:la[x] in 50.0s, CPU 90.0s, best dev_perplexity 12")
        assert lines[-1].endswith("ETA 0:02:30 for 300 steps + 1 piece whose steps depend on data")
        progress.cell_finished("m/pos/x", [{"status": "ok", "metric": "accuracy", "value": 0.37021}])
        assert lines[-1] == "cell 1/6 scored: m/pos/x: accuracy 37.02 · pieces 1/3"
    finally:
        logger.removeHandler(handler)


def test_rich_progress_on_a_terminal_prints_lines_above_the_bars():
    """On a terminal: bars for the run (pieces k/n, cells k/n) and the loop, the same persistent
    lines as the log, and no source-location column (rich's console.log adds one)."""
    import io

    from rich.console import Console

    from xltransfer.progress import RichProgress, run_logging

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    with run_logging(0, console=console), RichProgress(console) as progress:
        progress.start_run("g", {"a": 10, "b": None}, cells=1, skipped=0)
        progress.piece_started("a", "m:la[x]", 10)
        with progress.bar("m:la[x]", 10) as advance:
            for _ in range(10):
                advance(1, loss=1.0)
        progress.piece_finished("a", "m:la[x]", {"train_seconds": 1.0, "dev_accuracy": 0.5})
        assert progress.eta() == "left: 1 piece whose steps depend on data"
        progress.cell_finished("c1", [{"status": "ok", "metric": "accuracy", "value": 0.5}])
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    assert "piece 1/2 done: m:la[x] in 1.0s, best dev_accuracy 0.5" in plain
    assert "cell 1/1 scored: c1: accuracy 50.00" in plain and "pieces 0/2 · cells 0/1" in plain
    assert "progress.py" not in plain


def test_a_piece_cost_carries_its_data_preparation_seconds():
    """Issue 19: the efficiency table counts data preparation (0 for data found cached); a piece
    from before it was recorded leaves it unknown (the table's "–")."""
    from xltransfer.execute.cells import _piece_cost
    from xltransfer.reporting.markdown import method_costs

    old = {"trainable_params": 10, "train_seconds": 2.0, "cpu_seconds": 3.0}
    prepared = {**old, "data_prep_seconds": 4.5, "data_cached": False}
    cached = {**old, "train_seconds": 1.0, "data_prep_seconds": 0.0, "data_cached": True}
    assert _piece_cost(old) == [10, 2.0, 3.0]
    assert _piece_cost(prepared) == [10, 2.0, 3.0, 4.5]
    assert _piece_cost({**prepared, "cpu_seconds": None}) == [10, 2.0, None, 4.5]
    record = {
        "trainable_params": 10,
        "extra": {"piece_costs": {"a": _piece_cost(prepared), "b": _piece_cost(cached)}},
    }
    costs = method_costs([record])
    assert (costs.seconds, costs.data_prep_seconds, costs.cpu_seconds) == (3.0, 4.5, 6.0)
    assert (
        method_costs([{**record, "extra": {"piece_costs": {"a": _piece_cost(old)}}}]).data_prep_seconds
        is None
    )
