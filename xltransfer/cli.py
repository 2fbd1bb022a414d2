"""`xlt`: list, plan, run, report, results, evaluate.

Exit codes: 0 ok, 1 a cell failed, 2 bad input (grid, data, arguments).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from xltransfer.errors import XltError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True, soft_wrap=True)

WorkdirOption = Annotated[
    Path | None,
    typer.Option("--workdir", help="Where results and artifacts live (default ./.xlt or $XLT_WORKDIR)."),
]
ResultsOption = Annotated[
    Path | None, typer.Option("--results", help="SQLite results file (default WORKDIR/results.sqlite).")
]


def user_errors(command):
    """Bad input becomes one clear line on stderr and exit code 2, never a traceback wall."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except XltError as error:
            err.print(f"[bold red]error:[/bold red] {error}", highlight=False, markup=True)
            raise typer.Exit(2) from None

    return wrapper


def _workspace(workdir: Path | None, results: Path | None):
    from xltransfer.workspace import Workspace

    return Workspace.at(workdir, results)


@app.command("list")
@user_errors
def list_(what: Annotated[str, typer.Argument(help="methods | tasks | leaderboards")]) -> None:
    """List registered methods or tasks, or the leaderboards in ./leaderboards."""
    from xltransfer import registry

    if what in ("methods", "tasks"):
        reg = registry.methods if what == "methods" else registry.tasks
        table = Table(title=what)
        table.add_column("name")
        table.add_column("from")
        for name in reg.names():
            table.add_row(name, reg.origin(name))
        out.print(table)
    elif what == "leaderboards":
        for grid in sorted(Path("leaderboards").glob("*/grid.yaml")):
            out.print(grid.parent.name)
    else:
        raise XltError(f"cannot list '{what}': choose methods, tasks or leaderboards")


def _filters(only: list[str] | None) -> dict[str, str]:
    allowed = {"method", "variant", "task", "setting", "target", "source", "seed", "shots"}
    filters = {}
    for item in only or []:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise XltError(
                f"--only {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(allowed))}"
            )
        filters[key] = value
    return filters


def _select(cells, filters: dict[str, str]):
    def keep(cell) -> bool:
        values = {
            "method": cell.method,
            "variant": cell.variant,
            "task": cell.task,
            "setting": cell.setting,
            "target": cell.target_language,
            "source": "+".join(cell.source_languages),
            "seed": str(cell.seed),
            "shots": str(cell.shots),
        }
        return all(values[k] == v for k, v in filters.items())

    return [c for c in cells if keep(c)]


def _load(grid_path: Path, workdir: Path | None, results: Path | None, only: list[str] | None = None):
    from xltransfer.grid import load_grid
    from xltransfer.plan import build_plan

    workspace = _workspace(workdir, results)
    grid = load_grid(grid_path, workspace.root)
    cells = _select(grid.cells(), _filters(only))
    return grid, build_plan(grid, cells), workspace


@app.command()
@user_errors
def plan(
    grid: Annotated[Path, typer.Argument(help="leaderboard folder or grid file")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list every piece")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="KEY=VALUE cell filter")] = None,
    workdir: WorkdirOption = None,
) -> None:
    """Cells, pieces to train, parameters and estimated GPU-hours per method, without loading weights."""
    from xltransfer.report.plan import plan_summary

    the_grid, the_plan, workspace = _load(grid, workdir, None, only)
    if only and not the_plan.cells:
        err.print(
            f"[yellow]warning:[/yellow] --only {' '.join(only)} matches none of the grid's "
            f"{len(the_grid.cells())} cells: nothing to plan",
            highlight=False,
        )
    summary = plan_summary(the_plan, workspace)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    _print_plan(summary, verbose)


def _count(n: float) -> str:
    """5.2K, 7.39M, 178M: parameter and step counts at a glance."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            value = n / size
            return f"{value:.3g}{unit}" if value < 1000 else f"{value:,.0f}{unit}"
    return f"{n:g}"


def _hours(hours: float | None) -> str:
    if hours is None:
        return "?"
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.1f}" if hours >= 10 else f"{hours:.2f}"


def _print_plan(summary: dict, verbose: bool) -> None:
    """The grouped summary (method x kind, then per method), with every piece under ``--verbose``."""
    from rich import box

    from xltransfer.report.plan import grouped_pieces, uncosted_line

    pieces = summary["pieces"]
    stored = sum(p["stored"] for p in pieces)
    out.print(
        f"{summary['grid']}: {len(summary['cells'])} cells, {len(pieces)} pieces to train "
        f"({stored} already stored), backbone {summary['backbone']}",
        highlight=False,
    )
    if verbose:  # one row per piece: wide, so a log or a pipe gets whole rows too
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in ("method", "kind", "task", "languages", "seed", "k"):
            table.add_column(column, no_wrap=True)
        for column in ("trainable", "steps", "GPU-h", "cells"):
            table.add_column(column, justify="right", no_wrap=True)
        table.add_column("stored")
        for p in pieces:
            table.add_row(
                p["method_label"],
                p["kind"],
                p["task"],
                "+".join(p["languages"]),
                str(p["seed"]),
                str(p["shots"]) if p["shots"] is not None else "-",
                _count(p["trainable_params"]),
                _count(p["steps"]) if p["steps"] is not None else "?",
                _hours(p["gpu_hours"]),
                str(p["used_by_cells"]),
                "yes" if p["stored"] else "no",
            )
        (out if out.is_terminal else Console(width=200, soft_wrap=True)).print(table)
    compact = {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "padding": (0, 1)}
    groups = Table(title="pieces by method and kind", **compact)
    groups.add_column("method", no_wrap=True)
    groups.add_column("kind", no_wrap=True)
    for column in ("pieces", "trainable", "steps", "GPU-h"):
        groups.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for g in grouped_pieces(summary):
        low, high = (_count(n) for n in g["trainable_params"])
        unknown = "+?" if g["uncosted"] else ""  # some pieces' steps are not known offline
        groups.add_row(
            g["method"],
            g["kind"],
            str(g["pieces"]),
            low if low == high else f"{low}-{high}",
            (_count(g["steps"]) if g["steps"] else "") + unknown,
            (_hours(g["gpu_hours"]) if g["steps"] else "") + unknown,
        )
    # a log or a pipe gets whole rows (rich would cut them at 80 columns)
    console = out if out.is_terminal else Console(width=110)
    console.print(groups)
    methods = Table(title="per method (one cell)", **compact)
    methods.add_column("method", no_wrap=True)
    for column in ("trainable", "added", "backbone", "deployed extra", "GPU-h"):
        methods.add_column(column, justify="right", no_wrap=True)
    for name, m in summary["methods"].items():
        counts = ("trainable_params", "added_params", "base_params", "extra_params")
        hours = _hours(m["gpu_hours"]) + ("+?" if m["uncosted_pieces"] else "")
        methods.add_row(name, *(_count(m[c]) for c in counts), hours)
    console.print(methods)
    total = summary["cost"]
    remaining = f" ({_hours(total['gpu_hours_to_train'])} still to train)" if stored else ""
    out.print(f"estimated compute: {_hours(total['gpu_hours'])} GPU-hours in all{remaining}", highlight=False)
    out.print(f"assumptions: {total['assumptions']}", highlight=False, soft_wrap=True)
    missing = uncosted_line(summary)
    if missing:
        out.print(missing, highlight=False, soft_wrap=True)


@app.command()
@user_errors
def run(
    grid: Annotated[Path, typer.Argument(help="leaderboard folder or grid file")],
    executor: Annotated[str, typer.Option(help="local | ray")] = "local",
    only: Annotated[
        list[str] | None, typer.Option("--only", help="KEY=VALUE cell filter, repeatable")
    ] = None,
    workdir: WorkdirOption = None,
    results: ResultsOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Run the grid: train missing pieces once, evaluate unfinished cells; resumable."""
    from xltransfer.execute import EXECUTORS
    from xltransfer.progress import RichProgress, SilentProgress

    if executor not in EXECUTORS:
        raise XltError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    _, the_plan, workspace = _load(grid, workdir, results, only)
    if not the_plan.cells:
        chosen = " ".join(f"--only {item}" for item in only) if only else "the grid"
        raise XltError(f"{chosen}: selects no cell of {grid}, nothing to run")
    progress = SilentProgress() if quiet or not sys.stderr.isatty() else RichProgress(err)
    if isinstance(progress, RichProgress):
        with progress:
            summary = _execute(executor, the_plan, workspace, progress)
    else:
        summary = _execute(executor, the_plan, workspace, progress)
    c = summary.counters
    err.print(
        f"run {summary.run_id}: {summary.cells} cells — {c['cells_evaluated']} evaluated, "
        f"{c['cells_skipped']} already done, {c['cells_failed']} failed; "
        f"pieces {c['pieces_trained']} trained, {c['pieces_reused']} reused; "
        f"{summary.seconds:.1f}s"
    )
    if summary.failures:
        raise typer.Exit(1)


def _execute(executor: str, the_plan, workspace, progress):
    if executor == "ray":
        from xltransfer.execute.ray import run_ray

        return run_ray(the_plan, workspace, progress)
    from xltransfer.execute.local import run_local

    return run_local(the_plan, workspace, progress)


@app.command()
@user_errors
def export(
    grid: Annotated[Path, typer.Argument(help="leaderboard folder or grid file")],
    method: Annotated[str, typer.Option(help="method label as in the grid, e.g. mad-g or mad-g:ls")],
    language: Annotated[str, typer.Option(help="the language to materialise an adapter for")],
    out: Annotated[Path, typer.Option(help="folder to write the adapter to")],
    seed: Annotated[
        int | None, typer.Option(help="the grid seed whose pieces to use (default: first)")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="the task to generate the adapter for (hyper-x: one per task and language)"),
    ] = None,
    workdir: WorkdirOption = None,
) -> None:
    """Materialise a generated adapter as a standard `adapters` folder (load it with load_adapter)."""
    from xltransfer.context import RunContext
    from xltransfer.languages import normalise

    the_grid, the_plan, workspace = _load(grid, workdir, None)
    cells = [c for c in the_plan.cells if c.method_label == method]
    if not cells:
        labels = sorted({c.method_label for c in the_plan.cells})
        raise XltError(f"--method {method!r}: not a method of this grid ({', '.join(labels)})")
    try:
        code = normalise(language)
    except ValueError as error:
        raise XltError(f"--language: {error}") from None
    if task is not None and task not in the_grid.tasks:
        raise XltError(f"--task {task!r}: not a task of this grid ({', '.join(the_grid.tasks)})")
    ctx = RunContext(the_plan, workspace)
    chosen_seed = seed if seed is not None else the_grid.seeds[0]
    name = the_plan.method_for(cells[0]).export_adapter(ctx, out, code, chosen_seed, task=task)
    err.print(f"wrote adapter '{name}' for {code}{f' ({task})' if task else ''} to {out}")


@app.command()
@user_errors
def report(
    grid: Annotated[Path, typer.Argument(help="leaderboard folder or grid file")],
    baseline: Annotated[
        str | None, typer.Option(help="method the significance marks compare with (default: full-ft)")
    ] = None,
    workdir: WorkdirOption = None,
    results: ResultsOption = None,
) -> None:
    """Render the leaderboard next to the grid: README.md, index.html and figures/*.png."""
    from xltransfer.report.leaderboard import write_leaderboard

    workspace = _workspace(workdir, results)
    board = write_leaderboard(grid, workspace, baseline)
    out.print(board.markdown, markup=False, highlight=False)
    err.print(
        f"wrote {board.folder / 'README.md'}, {board.folder / 'index.html'} and {len(board.figures)} figures"
    )


@app.command()
@user_errors
def results(
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON array of records")] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl | csv | parquet: one row per record, for pandas")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write to this file (required for parquet)")
    ] = None,
    grid: Annotated[str | None, typer.Option(help="grid name")] = None,
    method: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    target: Annotated[str | None, typer.Option(help="target language")] = None,
    metric: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="ok | failed")] = None,
    workdir: WorkdirOption = None,
    results_path: ResultsOption = None,
) -> None:
    """Query the results store."""
    workspace = _workspace(workdir, results_path)
    records = workspace.read_results().records(
        grid=grid, method=method, task=task, target_language=target, metric=metric, status=status
    )
    if fmt is not None:
        from xltransfer.report.tabular import FORMATS, records_text, write_records

        if fmt not in FORMATS:
            raise XltError(f"--format: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        if out_file is not None:
            write_records(records, fmt, out_file)
            err.print(f"wrote {len(records)} records to {out_file}")
        elif fmt == "parquet":
            raise XltError("--format parquet is binary: pass --out FILE")
        else:
            sys.stdout.write(records_text(records, fmt))
        return
    if as_json:
        print(json.dumps(records, indent=2, sort_keys=True))
        return
    table = Table()
    for column in (
        "grid",
        "method",
        "task",
        "setting",
        "source",
        "target",
        "split",
        "metric",
        "value",
        "status",
    ):
        table.add_column(column)
    for r in records:
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        table.add_row(
            r["grid"],
            r["method"] if r["variant"] == "default" else f"{r['method']}:{r['variant']}",
            r["task"],
            r["setting"],
            "+".join(r["source_languages"]),
            r["target_language"],
            r["split"],
            r["metric"],
            value,
            r["status"],
        )
    out.print(table)


@app.command()
@user_errors
def evaluate(
    task: Annotated[str, typer.Option(help="task name, e.g. pos")],
    gold: Annotated[Path, typer.Option(help="gold file in the task's format")],
    pred: Annotated[Path, typer.Option(help="predictions in the same format")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score a prediction file against a gold file with the task's scorer."""
    from xltransfer import registry
    from xltransfer.errors import UnknownNameError

    for path in (gold, pred):
        if not path.is_file():
            raise XltError(f"{path}: no such file")
    try:
        the_task = registry.tasks.get(task)()
    except UnknownNameError as error:
        raise XltError(str(error)) from None
    examples = the_task.read_file(gold)
    scores = the_task.score(examples, the_task.predictions_from_file(examples, pred))
    if as_json:
        print(json.dumps(scores, indent=2, sort_keys=True))
    else:
        for name, value in scores.items():
            out.print(f"{name}: {value:.4f}")


def main() -> None:
    import logging

    # the adapters library warns on every forward pass of a model that holds inactive adapters,
    # which the harness does on purpose (pieces for other languages stay loaded but inactive)
    logging.getLogger("adapters.model_mixin").setLevel(logging.ERROR)
    app()


if __name__ == "__main__":
    main()
