"""The Python API: the CLI's commands as functions, for notebooks and scripts.

``xltransfer.plan``, ``xltransfer.run``, ``xltransfer.results`` and ``xltransfer.report`` do what
``xlt plan``, ``xlt run``, ``xlt results`` and ``xlt report`` do (the CLI calls them), and return
data instead of printing it::

    import xltransfer

    xltransfer.plan("leaderboards/quickstart")["methods"]        # parameters per method
    summary = xltransfer.run("leaderboards/quickstart")           # trains, evaluates, resumes
    frame = xltransfer.results(grid="quickstart")                 # a pandas DataFrame, flat columns
    frame.groupby(["method", "target_language"])["value"].mean()

Bad input raises :class:`xltransfer.errors.XltError` (the CLI's exit code 2) with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xltransfer.errors import XltError

if TYPE_CHECKING:
    import pandas

    from xltransfer.execute.local import RunSummary
    from xltransfer.grid import Grid
    from xltransfer.planning import Plan
    from xltransfer.progress import Progress
    from xltransfer.reporting.leaderboard import Leaderboard
    from xltransfer.workspace import Workspace

PathLike = str | Path


CELL_FILTERS = ("method", "variant", "task", "setting", "target", "source", "seed", "shots")
STATUSES = ("ok", "failed")


def workspace(workdir: PathLike | None = None, results: PathLike | None = None) -> Workspace:
    """Where results and artifacts live: ``workdir`` (default ``$XLT_WORKDIR`` or ``./.xlt``)."""
    from xltransfer.workspace import Workspace

    return Workspace.at(workdir, results)


def parse_filters(only: list[str] | Mapping[str, Any] | None) -> dict[str, str]:
    """``--only`` filters: ``["method=mad-x", "seed=1"]`` or ``{"method": "mad-x"}``."""
    if isinstance(only, Mapping):
        items = [f"{k}={v}" for k, v in only.items()]
    else:
        items = list(only or [])
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in CELL_FILTERS:
            raise XltError(
                f"--only {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(CELL_FILTERS))}"
            )
        filters[key] = value
    return filters


def select_cells(cells, filters: dict[str, str]) -> list:
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


def load(
    grid: PathLike,
    workdir: PathLike | None = None,
    results: PathLike | None = None,
    only: list[str] | Mapping[str, Any] | None = None,
) -> tuple[Grid, Plan, Workspace]:
    """The grid, its plan (for the cells ``only`` selects) and the workspace."""
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan

    where = workspace(workdir, results)
    the_grid = load_grid(Path(grid), where.root)
    cells = select_cells(the_grid.cells(), parse_filters(only))
    return the_grid, build_plan(the_grid, cells), where


def plan(
    grid: PathLike, *, only: list[str] | Mapping[str, Any] | None = None, workdir: PathLike | None = None
) -> dict[str, Any]:
    """What ``xlt plan --json`` prints: cells, pieces to train (each once), parameters per method;
    no weights are loaded."""
    from xltransfer.reporting.plan import plan_summary

    _, the_plan, where = load(grid, workdir, None, only)
    return plan_summary(the_plan, where)


def run(
    grid: PathLike,
    *,
    executor: str = "local",
    only: list[str] | Mapping[str, Any] | None = None,
    workdir: PathLike | None = None,
    results: PathLike | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Train the pieces the grid's cells lack, evaluate the unfinished cells, store the records;
    resumable. ``progress``: what reports it (default: ``logging`` lines, as ``xlt run`` writes them
    off a terminal; ``xltransfer.progress.SilentProgress()`` for none)."""
    from xltransfer.execute import EXECUTORS
    from xltransfer.progress import Progress

    if executor not in EXECUTORS:
        raise XltError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    _, the_plan, where = load(grid, workdir, results, only)
    if not the_plan.cells:
        chosen = " ".join(f"--only {k}={v}" for k, v in parse_filters(only).items()) or "the grid"
        raise XltError(f"{chosen}: selects no cell of {grid}, nothing to run")
    progress = progress if progress is not None else Progress()
    if executor == "ray":
        from xltransfer.execute.ray import run_ray

        return run_ray(the_plan, where, progress)
    from xltransfer.execute.local import run_local

    return run_local(the_plan, where, progress)


def records(
    *,
    workdir: PathLike | None = None,
    results: PathLike | None = None,
    grid: str | None = None,
    method: str | None = None,
    task: str | None = None,
    target: str | None = None,
    metric: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """The stored records matching every filter given (``xlt results --json``)."""
    if status is not None and status not in STATUSES:
        raise XltError(f"--status {status!r}: choose ok or failed")
    return (
        workspace(workdir, results)
        .read_results()
        .records(grid=grid, method=method, task=task, target_language=target, metric=metric, status=status)
    )


def results(
    *,
    workdir: PathLike | None = None,
    results: PathLike | None = None,
    grid: str | None = None,
    method: str | None = None,
    task: str | None = None,
    target: str | None = None,
    metric: str | None = None,
    status: str | None = None,
) -> pandas.DataFrame:
    """The records as a DataFrame with flat columns (``xlt results --format csv``): the record's
    fields, ``params.*`` and ``extra.*`` (``extra.source_test.accuracy``,
    ``extra.adapter_perplexity.target``...). Values are raw (accuracy 0.37, BLEU 37.0)."""
    from xltransfer.reporting.tabular import records_frame

    found = records(
        workdir=workdir,
        results=results,
        grid=grid,
        method=method,
        task=task,
        target=target,
        metric=metric,
        status=status,
    )
    return records_frame(found)


def report(
    grid: PathLike,
    *,
    workdir: PathLike | None = None,
    results: PathLike | None = None,
    baseline: str | None = None,
    out: PathLike | None = None,
    fmt: str = "markdown",
) -> Leaderboard:
    """Render and write the leaderboard (``xlt report``): README.md and index.html, or
    leaderboard.tex with ``fmt="latex"``, and the figures, next to the grid or into ``out``."""
    from xltransfer.reporting.leaderboard import FORMATS, write_leaderboard

    if fmt not in FORMATS:
        raise XltError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return write_leaderboard(
        Path(grid), workspace(workdir, results), baseline, Path(out) if out is not None else None, fmt
    )
