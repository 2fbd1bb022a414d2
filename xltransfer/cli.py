"""`xlt`: the cross-lingual transfer benchmark harness.

Commands: list, describe, plan, run, report, results, evaluate, export, check-method.
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
from xltransfer.version import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
out = Console()
out.soft_wrap = not out.is_terminal  # a file or a pipe gets whole lines (rich would wrap at 80 columns)
err = Console(stderr=True, soft_wrap=True)
OFF_TERMINAL_WIDTH = 100_000  # wider than any table: off a terminal a table takes the width it needs

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


def _version(value: bool) -> None:
    if value:
        print(f"xlt (xltransfer) {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """The cross-lingual transfer benchmark harness."""


def _workspace(workdir: Path | None, results: Path | None):
    from xltransfer.api import workspace

    return workspace(workdir, results)


LEADERBOARDS = Path("leaderboards")


def print_table(table: Table) -> None:
    """A table on a terminal fits the window; off one (a file, a pipe, a log) it keeps its natural
    width, so no word is broken and no value cut (rich would squeeze it into 80 columns)."""
    (out if out.is_terminal else Console(width=OFF_TERMINAL_WIDTH)).print(table)


@app.command("list")
@user_errors
def list_(what: Annotated[str, typer.Argument(help="methods | tasks | leaderboards")]) -> None:
    """List registered methods or tasks, or the leaderboards in ./leaderboards.

    Methods show their summary, tasks, settings, variants and citation."""
    from xltransfer import registry

    if what == "methods":
        _print_methods()
    elif what == "tasks":
        table = Table(title="tasks", show_lines=True)
        for column in ("name", "description", "metrics (main first)", "format", "from"):
            table.add_column(column)
        for name in registry.tasks.names():
            meta = registry.tasks.get(name).metadata
            metrics = [meta.main_metric, *(m for m in meta.metrics if m != meta.main_metric)]
            table.add_row(
                name, meta.description, ", ".join(metrics), meta.data_format, registry.tasks.origin(name)
            )
        print_table(table)
    elif what == "leaderboards":
        folder = LEADERBOARDS.resolve()
        grids = sorted(LEADERBOARDS.glob("*/grid.yaml"))
        err.print(f"leaderboards in {folder} (folders with a grid.yaml): {len(grids)}", highlight=False)
        for grid in grids:
            out.print(grid.parent.name, highlight=False)
    else:
        raise XltError(f"cannot list '{what}': choose methods, tasks or leaderboards")


def _print_methods() -> None:
    """One block per method (plain lines: nothing truncated, readable in a pipe)."""
    from xltransfer import registry

    for name in registry.methods.names():
        method = registry.methods.get(name)
        variants = [v for v in method.variants if v != "default"]
        for line in (
            f"{name}  ({registry.methods.origin(name)})",
            f"  {method.summary}",
            f"  tasks: {', '.join(sorted(method.supported_tasks))}; "
            f"settings: {', '.join(sorted(method.supported_settings))}",
            f"  variants: {', '.join(variants) or '–'}",
            f"  citation: {method.citation or '–'}",
        ):
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    err.print("`xlt describe NAME` lists a method's parameters, defaults and sources", highlight=False)


@app.command()
@user_errors
def describe(method: Annotated[str, typer.Argument(help="a registered method, e.g. mad-x")]) -> None:
    """A method's parameters: defaults, what each variant changes, and their sources.

    Also its summary, citation, tasks and settings; each default names the paper section (or our
    reason) it comes from."""
    from xltransfer import registry
    from xltransfer.errors import UnknownNameError

    try:
        cls = registry.methods.get(method)
    except UnknownNameError as error:
        raise XltError(str(error)) from None
    out.print(f"[bold]{cls.name}[/bold]: {cls.summary}", highlight=False)
    if cls.citation:
        out.print(f"citation: {cls.citation}", highlight=False)
    tasks, settings = ", ".join(sorted(cls.supported_tasks)), ", ".join(sorted(cls.supported_settings))
    out.print(f"tasks: {tasks}; settings: {settings}", highlight=False)
    variants = {v: changes for v, changes in cls.variants.items() if v != "default"}
    table = Table(title=f"{len(cls.defaults)} parameters", show_lines=False)
    for column in ("parameter", "default", *variants, "source"):
        table.add_column(column, overflow="fold")
    for name, value in cls.defaults.items():
        changed = [json.dumps(changes[name]) if name in changes else "" for changes in variants.values()]
        source = cls.parameter_source(name) or "[red](no source declared)[/red]"
        table.add_row(name, json.dumps(value), *changed, source)
    print_table(table)
    if variants:
        out.print("Variants change only the parameters shown in their column.", highlight=False)
    if "mt" in cls.supported_tasks:
        _describe_mt_model()


def _describe_mt_model() -> None:
    """The grid's ``mt:`` block: the model every MT method trains, its defaults and their sources."""
    import dataclasses

    from xltransfer.modules.seq2seq import INIT_SOURCE, MT_OPTION_SOURCES, MtModelOptions

    table = Table(title="MT model (the grid's mt: block, shared by every MT method)", show_lines=False)
    for column in ("option", "default", "source"):
        table.add_column(column, overflow="fold")
    for option in dataclasses.fields(MtModelOptions):
        source = MT_OPTION_SOURCES.get(option.name) or "[red](no source declared)[/red]"
        table.add_row(option.name, json.dumps(option.default), source)
    print_table(table)
    out.print(f"initialisation of a Transformer preset: {INIT_SOURCE}", highlight=False)


@app.command()
@user_errors
def schema(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write it to this file instead of printing it")
    ] = None,
) -> None:
    """The JSON Schema of grid.yaml, for editors to complete and check grid files.

    Generated from the declaration grids are validated with (xltransfer/grid_spec.py) and the
    methods and tasks installed, plugins included; xltransfer/schema/grid.schema.json is the same
    for the built-in ones. `xlt run` still checks what a schema cannot (files exist, languages,
    partitions), with the same field names in its errors."""
    from xltransfer import registry
    from xltransfer.grid_spec import grid_json_schema
    from xltransfer.util import atomic_write_text

    text = json.dumps(grid_json_schema(registry), indent=2) + "\n"
    if out_file is None:
        print(text, end="")
        return
    atomic_write_text(out_file, text)
    err.print(f"wrote {out_file}", highlight=False)


def _load(grid_path: Path, workdir: Path | None, results: Path | None, only: list[str] | None = None):
    from xltransfer.api import load

    return load(grid_path, workdir, results, only)


@app.command()
@user_errors
def plan(
    grid: Annotated[Path, typer.Argument(help="leaderboard folder or grid file")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list every piece")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="KEY=VALUE cell filter")] = None,
    workdir: WorkdirOption = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="also time a few real steps of each piece kind on this machine's device (random "
            "weights of the grid's architecture, its batch and max_length) and print seconds per step "
            "x planned steps beside the estimate",
        ),
    ] = False,
) -> None:
    """Cells, pieces to train, parameters and estimated GPU-hours per method, without loading weights."""
    from xltransfer.reporting.plan import plan_summary

    the_grid, the_plan, workspace = _load(grid, workdir, None, only)
    if only and not the_plan.cells:
        err.print(
            f"[yellow]warning:[/yellow] --only {' '.join(only)} matches none of the grid's "
            f"{len(the_grid.cells())} cells: nothing to plan",
            highlight=False,
        )
    summary = plan_summary(the_plan, workspace)
    calibrations = None
    if calibrate:
        from xltransfer.calibrate import calibrate as measure
        from xltransfer.calibrate import device_name

        calibrations = measure(the_plan, summary)
        summary["calibration"] = {"device": device_name(), "groups": [c.to_dict() for c in calibrations]}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    _print_plan(summary, verbose)
    if calibrations is not None:
        _print_calibration(summary["calibration"])


def _print_calibration(calibration: dict) -> None:
    """Measured seconds per step x planned steps, beside the FLOP-based estimate, per (method, kind)."""
    from rich import box

    table = Table(
        title=f"calibrated on {calibration['device']}",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
    )
    table.add_column("method", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for column in ("steps", "batch", "s/step", "measured h", "estimated GPU-h"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("note")
    for g in calibration["groups"]:
        table.add_row(
            g["method"],
            g["kind"],
            _count(g["steps"]) if g["steps"] is not None else "?",
            str(g["batch"]) if g["batch"] is not None else "?",
            f"{g['seconds_per_step']:.3g}" if g["seconds_per_step"] is not None else "-",
            _hours(g["measured_hours"]) if g["measured_hours"] is not None else "?",
            _hours(g["estimated_gpu_hours"]),
            g["reason"] or "",
        )
    print_table(table)
    out.print(
        "calibration: random weights of the grid's architecture set up by each method "
        "(adapters, heads, trainable parameters), random token ids at the planned batch x max_length, "
        "AdamW; MLM loss at 15% of positions, other tasks the mean of the head's output; "
        "generators' weight generation, data loading and evaluation not timed",
        highlight=False,
        soft_wrap=True,
    )


def _count(n: float) -> str:
    """5.2K, 7.39M, 178M: parameter and step counts at a glance, as the reports show them."""
    from xltransfer.reporting.units import format_count

    return format_count(n)


def _hours(hours: float | None) -> str:
    if hours is None:
        return "?"
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.1f}" if hours >= 10 else f"{hours:.2f}"


def _print_plan(summary: dict, verbose: bool) -> None:
    """The grouped summary (method x kind, then per method), with every piece under ``--verbose``."""
    from rich import box

    from xltransfer.reporting.plan import grouped_pieces, uncosted_line

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
        print_table(table)
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
    print_table(groups)
    methods = Table(title="per method (one cell)", **compact)
    methods.add_column("method", no_wrap=True)
    for column in ("trainable", "added", "backbone", "deployed extra", "GPU-h"):
        methods.add_column(column, justify="right", no_wrap=True)
    for name, m in summary["methods"].items():
        counts = ("trainable_params", "added_params", "base_params", "extra_params")
        hours = _hours(m["gpu_hours"]) + ("+?" if m["uncosted_pieces"] else "")
        methods.add_row(name, *(_count(m[c]) for c in counts), hours)
    print_table(methods)
    for name, m in summary["methods"].items():
        if m["shares_pieces_with"]:
            shared = ", ".join(m["shares_pieces_with"])
            out.print(f"{name}: trainable includes the pieces it shares with {shared} (listed there)")
    total = summary["cost"]
    remaining = f" ({_hours(total['gpu_hours_to_train'])} still to train)" if stored else ""
    uncosted = total["uncosted_pieces"]
    not_counted = f", not counting {uncosted} piece(s) marked +?" if uncosted else ""
    out.print(
        f"estimated compute: {_hours(total['gpu_hours'])} GPU-hours in all{not_counted}{remaining}, "
        f"{_hours(total['eval_gpu_hours'])} of them selection evaluations; data preparation "
        f"{_hours(total['data_prep_cpu_hours'])} CPU-hours ({_count(total['data_prep_tokens'])} tokens, "
        "once)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"assumptions: {total['assumptions']}", highlight=False, soft_wrap=True)
    missing = uncosted_line(summary)
    if missing:
        out.print(missing, highlight=False, soft_wrap=True)


VerboseOption = Annotated[
    int,
    typer.Option("--verbose", "-v", count=True, help="More log lines (every evaluation during training)."),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Warnings and the final table only; no bars.")
]


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
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Run the grid: train missing pieces once, evaluate unfinished cells; resumable.

    Off a terminal it logs timestamped lines (pieces, cells, ETA); it ends with the score table (as
    `xlt report` computes it) and where the results are."""
    from xltransfer import api
    from xltransfer.reporting.leaderboard import score_summary

    summary = _with_progress(
        lambda progress: api.run(
            grid, executor=executor, only=only, workdir=workdir, results=results, progress=progress
        ),
        verbose,
        quiet,
    )
    c = summary.counters
    workspace = _workspace(workdir, results)
    err.print(
        f"run {summary.run_id}: {summary.cells} cells — {c['cells_evaluated']} evaluated, "
        f"{c['cells_skipped']} already done, {c['cells_failed']} failed; "
        f"pieces {c['pieces_trained']} trained, {c['pieces_reused']} loads of stored ones; "
        f"{summary.seconds:.1f}s",
        highlight=False,
    )
    err.print(
        f"results: {workspace.results_path} (predictions and pieces under {workspace.root}); "
        f"`xlt results`, `xlt report {grid}`",
        highlight=False,
    )
    sys.stderr.flush()
    print(score_summary(grid, workspace), flush=True)
    if summary.failures:
        raise typer.Exit(1)


def _with_progress(work, verbose: int, quiet: bool):
    """Run ``work(progress)`` with the run's reporting: rich bars and lines on a terminal, plain
    timestamped log lines otherwise (nohup, SLURM, CI, pipes)."""
    from xltransfer.progress import Progress, RichProgress, run_logging

    verbosity = -1 if quiet else verbose
    if quiet or not err.is_terminal:
        with run_logging(verbosity):
            return work(Progress())
    with run_logging(verbosity, console=err), RichProgress(err) as progress:
        return work(progress)


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
    """Materialise a generated adapter as a standard `adapters` folder.

    Weights are safetensors: load them with `model.load_adapter(FOLDER, use_safetensors=True)`."""
    from xltransfer.context import RunContext
    from xltransfer.languages import normalise, typology_dimensions

    the_grid, the_plan, workspace = _load(grid, workdir, None)
    cells = [c for c in the_plan.cells if c.method_label == method]
    if not cells:
        labels = sorted({c.method_label for c in the_plan.cells})
        raise XltError(f"--method {method!r}: not a method of this grid ({', '.join(labels)})")
    try:
        code = normalise(language)
    except ValueError as error:
        raise XltError(f"--language: {error}") from None
    grid_languages = sorted({lang for c in cells for lang in (*c.source_languages, c.target_language)})
    if typology_dimensions([code]) != typology_dimensions(grid_languages):
        raise XltError(
            f"--language {code}: its typology vector is not in the space of this grid's languages "
            f"({', '.join(grid_languages)}), which the generator was trained on"
        )
    if task is not None and task not in the_grid.tasks:
        raise XltError(f"--task {task!r}: not a task of this grid ({', '.join(the_grid.tasks)})")
    ctx = RunContext(the_plan, workspace)
    chosen_seed = seed if seed is not None else the_grid.seeds[0]
    name = the_plan.method_for(cells[0]).export_adapter(ctx, out, code, chosen_seed, task=task)
    err.print(f"wrote adapter '{name}' for {code}{f' ({task})' if task else ''} to {out}", highlight=False)


@app.command()
@user_errors
def report(
    grid: Annotated[Path, typer.Argument(help="leaderboard folder or grid file")],
    baseline: Annotated[
        str | None, typer.Option(help="method the significance marks compare with (default: full-ft)")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="write here instead of next to the grid")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="markdown (README.md + index.html) | latex (leaderboard.tex)")
    ] = "markdown",
    workdir: WorkdirOption = None,
    results: ResultsOption = None,
) -> None:
    """Render the leaderboard next to the grid (or in --out).

    README.md and index.html (or leaderboard.tex: booktabs tables) and figures/ (PNG, PDF, SVG);
    the Markdown (or LaTeX) also on stdout."""
    from xltransfer import api
    from xltransfer.reporting.leaderboard import LATEX_FILE

    board = api.report(grid, workdir=workdir, results=results, baseline=baseline, out=out_dir, fmt=fmt)
    sys.stdout.write(board.latex if fmt == "latex" else board.markdown)  # as written: no reflow
    sys.stdout.flush()
    written = [LATEX_FILE] if fmt == "latex" else ["README.md", "index.html"]
    err.print(
        f"wrote {', '.join(str(board.folder / name) for name in written)} and {len(board.figures)} figures "
        f"(PNG, PDF, SVG) in {board.folder / 'figures'}",
        highlight=False,
    )


RESULT_COLUMNS = (
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
)


@app.command()
@user_errors
def results(
    as_json: Annotated[
        bool, typer.Option("--json", help="print a JSON array of records (raw values)")
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl | csv | parquet: one row per record, flat columns, raw values"),
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
    """Query the results store.

    The table shows scores on the reports' scale (accuracy, F1, UAS, LAS as percentages; BLEU, chrF
    as they are); --json and --format keep the raw values."""
    from xltransfer import api

    filters = {
        "grid": grid,
        "method": method,
        "task": task,
        "target": target,
        "metric": metric,
        "status": status,
    }
    records = api.records(workdir=workdir, results=results_path, **filters)
    if not records and any(v is not None for v in filters.values()):
        given = " ".join(f"--{k} {v}" for k, v in filters.items() if v is not None)
        err.print(f"[yellow]warning:[/yellow] no records match {given}{_store_hint(workdir, results_path)}")
    if fmt is not None:
        from xltransfer.reporting.tabular import FORMATS, records_text, write_records

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
    if not records:
        return  # the warning above, or an empty store: no empty table
    from xltransfer.reporting.units import format_score

    table = Table()
    for column in RESULT_COLUMNS:
        table.add_column(column, justify="right" if column == "value" else "left")
    for r in records:
        table.add_row(
            r["grid"],
            r["method"] if r["variant"] == "default" else f"{r['method']}:{r['variant']}",
            r["task"],
            r["setting"],
            "+".join(r["source_languages"]),
            r["target_language"],
            r["split"],
            r["metric"],
            "" if r["value"] is None else format_score(r["metric"], r["value"]),
            r["status"],
        )
    print_table(table)


def _store_hint(workdir: Path | None, results_path: Path | None) -> str:
    """What the store holds, so an empty filter says which values would match."""
    try:
        stored = _workspace(workdir, results_path).read_results().records()
    except Exception:  # noqa: BLE001 - only a hint
        return ""
    grids = sorted({r["grid"] for r in stored})
    methods = sorted({r["method"] for r in stored})
    return f" (the store has grids {', '.join(grids) or 'none'}; methods {', '.join(methods) or 'none'})"


@app.command()
@user_errors
def evaluate(
    task: Annotated[str, typer.Option(help="task name, e.g. pos")],
    gold: Annotated[Path, typer.Option(help="gold file in the task's format")],
    pred: Annotated[Path, typer.Option(help="predictions in the same format")],
    as_json: Annotated[bool, typer.Option("--json", help="raw values (accuracy 0.97, BLEU 37.2)")] = False,
) -> None:
    """Score a prediction file against a gold file with the task's scorer.

    A cell's predictions are under WORKDIR/predictions/ (its record's extra.predictions). Shown on
    the reports' scale (percentages for accuracy, F1, UAS, LAS); --json gives raw values."""
    from xltransfer import registry
    from xltransfer.errors import UnknownNameError
    from xltransfer.reporting.units import format_score, metric_label

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
            out.print(f"{metric_label(name)}: {format_score(name, value)}", highlight=False)


@app.command("check-method")
@user_errors
def check_method(
    name: Annotated[str, typer.Argument(help="a registered method (yours, after pip install)")],
    variant: Annotated[str, typer.Option(help="the variant to run")] = "default",
    task: Annotated[str | None, typer.Option(help="the task to run (default: the first it supports)")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="KEY=VALUE (YAML value) parameter override, repeatable"),
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir", help="where the tiny backbone is kept between checks (default: WORKDIR/check-method)"
        ),
    ] = None,
    verbose: VerboseOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Run a method end to end on a tiny synthetic grid, in seconds.

    A 2-layer backbone, a few hundred sentences, a few steps per piece: the method must plan, train,
    predict, score, write records in the schema and resume without retraining. A plugin author's
    first command."""
    from xltransfer.check import check_method as run_check

    report = _with_progress(
        lambda progress: run_check(name, variant, task, param or [], workdir, progress), verbose, quiet
    )
    for line in report.lines:
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
