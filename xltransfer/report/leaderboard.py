"""`xlt report`: a grid's results store rendered as README.md, index.html and PNG figures.

The Markdown is the leaderboard (``markdown.py``) with significance marks against a baseline
(``significance.py``), the paper's own figures beside ours (``reference.py``), the figures and the
provenance; the HTML page is the same Markdown with the figures embedded (``html.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xltransfer import registry

log = logging.getLogger(__name__)

SIGNIFICANCE_MARK = "*"


@dataclass
class Leaderboard:
    markdown: str
    html: str
    figures: list[Path]
    folder: Path  # the leaderboard's folder, where README.md and index.html go
    records: int = 0  # how many of the store's records it shows


def render_leaderboard(grid_path: Path, workspace, baseline: str | None = None) -> Leaderboard:
    """Render (not write) the leaderboard of the grid at ``grid_path`` from ``workspace``'s store."""
    from xltransfer.backbone import seen_languages
    from xltransfer.grid import load_grid
    from xltransfer.report.figures import render_figures
    from xltransfer.report.html import render_html
    from xltransfer.report.markdown import leaderboard_markdown
    from xltransfer.report.provenance import provenance_markdown
    from xltransfer.report.reference import load_reference, reference_markdown

    grid = load_grid(grid_path, workspace.root)
    cells = grid.cells()
    records = _current_records(grid, cells, workspace)
    labels = sorted({cell.method_label for cell in cells})
    if baseline is None:
        baseline = "full-ft" if "full-ft" in labels else None
    elif baseline not in labels:
        from xltransfer.errors import XltError

        raise XltError(f"--baseline {baseline!r}: not a method of this grid ({', '.join(labels)})")
    marks = _significance_marks(records, workspace.root, baseline) if baseline else None
    embeddings = _language_embeddings(grid, cells, workspace) if records else {}
    figures = render_figures(
        records,
        grid.folder,
        main_metric_of=lambda task: registry.tasks.get(task).metadata.main_metric,
    )
    for method, table in sorted(embeddings.items()):
        from xltransfer.report.figures import language_map

        families = {lang: grid.family_of(lang) or "unknown" for lang in table}
        safe = method.replace(":", "-")
        figures.append(language_map(table, families, grid.folder / "figures" / f"language-map-{safe}.png"))
    sections = []
    if marks is not None:
        sections.append(
            f"`{SIGNIFICANCE_MARK}`: different from {baseline} on that language at p < 0.05 in every seed "
            "both ran (paired bootstrap over test examples, 1,000 resamples; Koehn 2004)."
        )
    reference = load_reference(grid.folder)
    if reference is not None:
        sections.append(reference_markdown(reference, records))
    if figures:
        sections.append(
            "## Figures\n\n"
            + "\n".join(f"![{p.stem}]({p.relative_to(grid.folder).as_posix()})" for p in figures)
        )
    sections.append(provenance_markdown(grid, records, grid_path))
    seen = seen_languages(grid, workspace)
    # a translation model trained from scratch has seen nothing: no seen/unseen split for it
    scratch = {"mt"} if grid.mt is not None and grid.mt.trains_vocabulary else set()
    text = leaderboard_markdown(
        grid.name,
        records,
        {task: None if task in scratch else seen for task in grid.tasks},
        grid.description,
        grid.groups,
        seeds=len(grid.seeds),
        sections=sections,
        marks=marks,
    )
    html = render_html(text, figures, f"Leaderboard: {grid.name}")
    return Leaderboard(text, html, figures, grid.folder, len(records))


def _current_records(grid, cells, workspace) -> list[dict[str, Any]]:
    """The store's records of the grid as it is now: of its cells (records of cells the grid no
    longer has stay out), and no stale score (computed from other data, pieces or backbone than the
    grid's now: `xlt run` evaluates those cells again). The store is only read; none is no results."""
    from xltransfer.execute.local import unfinished_cells
    from xltransfer.plan import build_plan

    if not workspace.results_path.exists():
        return []
    store = workspace.read_results()
    current = {cell.cell_id for cell in cells}
    stale = {cell.cell_id for cell in unfinished_cells(build_plan(grid, cells), store)}
    records = [r for r in store.records(grid=grid.name) if r["cell_id"] in current]
    kept = [r for r in records if r["status"] != "ok" or r["cell_id"] not in stale]
    if len(kept) < len(records):
        log.warning(
            "left out %d stale records of %s (their cells' data, pieces or backbone changed: "
            "run `xlt run` again)",
            len(records) - len(kept),
            grid.name,
        )
    return kept


def write_leaderboard(grid_path: Path, workspace, baseline: str | None = None) -> Leaderboard:
    """Render, then write README.md and index.html next to the grid (the figures are written already)."""
    from xltransfer.report.markdown import NO_RESULTS
    from xltransfer.util import atomic_write_text

    board = render_leaderboard(grid_path, workspace, baseline)
    readme = board.folder / "README.md"
    if not board.records and readme.is_file() and NO_RESULTS not in readme.read_text(encoding="utf-8"):
        from xltransfer.errors import XltError

        raise XltError(
            f"{workspace.results_path}: no results of this grid in the store, so {readme}, which shows "
            "results, is left as it is (pass the --workdir or --results it was rendered from)"
        )
    atomic_write_text(board.folder / "README.md", board.markdown)
    atomic_write_text(board.folder / "index.html", board.html)
    return board


def _significance_marks(
    records: list[dict[str, Any]], root: Path, baseline: str
) -> Callable[[Any, str, str], str]:
    """A mark for a (row, method) whose score differs significantly from the baseline's in every
    seed both have (seeds are paired; a seed without per-example statistics leaves no mark)."""
    from xltransfer.report.markdown import direction, label
    from xltransfer.report.significance import load_example_statistics, paired_bootstrap

    def mark(table, row: str, method: str) -> str:
        if method == baseline:
            return ""
        row_of = direction if table.by_direction else (lambda r: r["target_language"])
        mine = {r["seed"]: r for r in table.records if label(r) == method and row_of(r) == row}
        theirs = {r["seed"]: r for r in table.records if label(r) == baseline and row_of(r) == row}
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            return ""
        task = registry.tasks.get(table.task)()
        for seed in seeds:
            a, b = load_example_statistics(root, mine[seed]), load_example_statistics(root, theirs[seed])
            if a is None or b is None:
                return ""
            if not paired_bootstrap(a, b, task.score_statistics, table.metric, seed=seed)["significant"]:
                return ""
        return SIGNIFICANCE_MARK

    return mark


def _language_embeddings(grid, cells, workspace) -> dict[str, dict[str, list[float]]]:
    """Learned language embeddings of the grid's trained pieces, by method label (first seed)."""
    from xltransfer.plan import build_plan

    plan = build_plan(grid, cells)
    found: dict[str, dict[str, list[float]]] = {}
    for cell in sorted(plan.cells, key=lambda c: (c.method_label, c.seed, c.cell_id)):
        if cell.method_label in found:
            continue
        method = plan.method_for(cell)
        for key in plan.closure(cell):
            if workspace.artifacts.problem(key) is not None:  # not trained, or damaged
                continue
            table = method.language_embeddings(plan.pieces[key].piece, workspace.artifacts.load_state(key))
            if table:
                found[cell.method_label] = table
                break
    return found
