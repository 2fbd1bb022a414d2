"""`xlt report`: a grid's results store rendered as README.md, index.html, figures (PNG, PDF, SVG)
and, for a paper, LaTeX tables.

The Markdown is the leaderboard (``markdown.py``) with significance marks against a baseline
(``significance.py``), the paper's own figures beside ours (``reference.py``), the figures and the
provenance; the HTML page is the same Markdown with the figures embedded (``html.py``); the LaTeX
is the same tables (``latex.py``). Files go next to the grid, or to ``out``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xltransfer import registry
from xltransfer.errors import StoreError
from xltransfer.reporting.markdown import ScoreTable, Significance, Tabular

FORMATS = ("markdown", "latex")
LATEX_FILE = "leaderboard.tex"

log = logging.getLogger(__name__)


@dataclass
class Leaderboard:
    markdown: str
    html: str
    latex: str
    figures: list[Path]  # the PNGs (a PDF and an SVG of each lie beside it)
    folder: Path  # where README.md, index.html and leaderboard.tex go
    records: int = 0  # how many of the store's records it shows


@dataclass
class _Inputs:
    grid: Any
    records: list[dict[str, Any]]
    seen: dict[str, frozenset[str] | None]
    significance: Significance | None


def _inputs(grid_path: Path, workspace, baseline: str | None) -> _Inputs:
    """What every rendering of a grid's results starts from: its records (of cells the grid still
    has), the languages its backbone saw, and the significance test against the baseline."""
    from xltransfer.backbone import seen_languages
    from xltransfer.grid import load_grid

    grid = load_grid(grid_path, workspace.root)
    cells = grid.cells()
    records = _current_records(grid, cells, workspace)
    labels = sorted({cell.method_label for cell in cells})
    if baseline is None:
        baseline = "full-ft" if "full-ft" in labels else None
    elif baseline not in labels:
        from xltransfer.errors import XltError

        raise XltError(f"--baseline {baseline!r}: not a method of this grid ({', '.join(labels)})")
    significance = None
    if baseline:
        floors = frozenset(m for m in labels if _is_floor(m))
        significance = Significance(baseline, _significance_test(records, workspace.root, baseline), floors)
    seen = seen_languages(grid, workspace)
    # a translation model trained from scratch has seen nothing: no seen/unseen split for it
    scratch = {"mt"} if grid.mt is not None and grid.mt.trains_vocabulary else set()
    return _Inputs(grid, records, {t: None if t in scratch else seen for t in grid.tasks}, significance)


def _is_floor(label: str) -> bool:
    """A sanity floor (the majority baseline): never tested for significance."""
    name = label.split(":", 1)[0]
    return name in registry.methods and getattr(registry.methods.get(name), "reference_floor", False)


def render_leaderboard(
    grid_path: Path, workspace, baseline: str | None = None, out: Path | None = None
) -> Leaderboard:
    """Render the leaderboard of the grid at ``grid_path`` from ``workspace``'s store; the figures
    are written under ``out`` (default: the grid's folder) ``/figures``."""
    from xltransfer.reporting.figures import language_map, render_figures
    from xltransfer.reporting.html import render_html
    from xltransfer.reporting.latex import leaderboard_latex
    from xltransfer.reporting.markdown import leaderboard_markdown, leaderboard_sections
    from xltransfer.reporting.provenance import provenance_markdown
    from xltransfer.reporting.reference import load_reference, reference_markdown

    inputs = _inputs(grid_path, workspace, baseline)
    grid, records = inputs.grid, inputs.records
    folder = Path(out) if out is not None else grid.folder
    embeddings = _language_embeddings(grid, grid.cells(), workspace) if records else {}
    figures = render_figures(
        records,
        folder,
        main_metric_of=lambda task: registry.tasks.get(task).metadata.main_metric,
    )
    for method, table in sorted(embeddings.items()):
        families = {lang: grid.family_of(lang) or "unknown" for lang in table}
        safe = method.replace(":", "-")
        path = folder / "figures" / f"language-map-{safe}.png"
        figures.append(language_map(table, families, path, whose=method))
    sections = []
    reference = load_reference(grid.path)
    if reference is not None:
        sections.append(reference_markdown(reference, records))
    if figures:
        sections.append(_figures_markdown(figures, folder))
    sections.append(provenance_markdown(grid, records, grid_path))
    tables = leaderboard_sections(records, inputs.seen, grid.groups, len(grid.seeds), inputs.significance)
    text = leaderboard_markdown(
        grid.name,
        records,
        inputs.seen,
        grid.description,
        grid.groups,
        seeds=len(grid.seeds),
        sections=sections,
        significance=inputs.significance,
        tables=tables,
    )
    images = {p.relative_to(folder).as_posix(): p for p in figures}
    html = render_html(text, images, f"Leaderboard: {grid.name}")
    return Leaderboard(text, html, leaderboard_latex(grid.name, tables), figures, folder, len(records))


def _figures_markdown(figures: list[Path], folder: Path) -> str:
    """One image per paragraph, its alt text the figure's title; the PDF and SVG beside each PNG."""
    from xltransfer.reporting.html import figure_title

    lines = ["## Figures", "", "Each figure is also there as PDF and SVG (same name) for a paper.", ""]
    for path in figures:
        alt = figure_title(path).replace("[", "(").replace("]", ")")
        lines += [f"![{alt}]({path.relative_to(folder).as_posix()})", ""]
    return "\n".join(lines)


def write_leaderboard(
    grid_path: Path, workspace, baseline: str | None = None, out: Path | None = None, fmt: str = "markdown"
) -> Leaderboard:
    """Render, then write README.md and index.html (``fmt="markdown"``) or leaderboard.tex
    (``"latex"``) next to the grid or into ``out``; the figures are written already."""
    try:
        return _write_leaderboard(grid_path, workspace, baseline, out, fmt)
    except OSError as error:  # a read-only or full file system, a file where the folder belongs
        where = error.filename or out or Path(grid_path).parent
        raise StoreError(Path(where), f"cannot write the leaderboard ({error.strerror or error})") from None


def _write_leaderboard(
    grid_path: Path, workspace, baseline: str | None, out: Path | None, fmt: str
) -> Leaderboard:
    from xltransfer.reporting.markdown import NO_RESULTS
    from xltransfer.util import atomic_write_text

    board = render_leaderboard(grid_path, workspace, baseline, out)
    readme = board.folder / "README.md"
    shows_results = readme.is_file() and NO_RESULTS not in readme.read_text(encoding="utf-8")
    if fmt != "latex" and not board.records and shows_results:
        from xltransfer.errors import XltError

        raise XltError(
            f"{workspace.results_path}: no results of this grid in the store, so {readme}, which shows "
            "results, is left as it is (pass the --workdir or --results it was rendered from)"
        )
    if fmt == "latex":
        atomic_write_text(board.folder / LATEX_FILE, board.latex)
    else:
        atomic_write_text(board.folder / "README.md", board.markdown)
        atomic_write_text(board.folder / "index.html", board.html)
    return board


def _current_records(grid, cells, workspace) -> list[dict[str, Any]]:
    """The store's records of the grid as it is now: of its cells (records of cells the grid no
    longer has stay out), and no stale score (computed from other data, pieces or backbone than the
    grid's now: `xlt run` evaluates those cells again). The store is only read; none is no results."""
    from xltransfer.planning import build_plan, unfinished_cells

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


def score_summary(grid_path: Path, workspace, baseline: str | None = None) -> str:
    """The leaderboard's score tables alone (as `xlt report` computes them for the grid), for the
    end of `xlt run`: no figures, nothing written."""
    from xltransfer.reporting.markdown import leaderboard_sections, tabular_markdown

    inputs = _inputs(grid_path, workspace, baseline)
    parts = []
    failed = sorted({r["cell_id"] for r in inputs.records if r["status"] == "failed"})
    for title, tabulars in leaderboard_sections(
        inputs.records, inputs.seen, inputs.grid.groups, len(inputs.grid.seeds), inputs.significance
    ):
        parts.append(f"## {title}\n\n{tabular_markdown(tabulars[0])}")
    if failed:
        parts.append(f"{len(failed)} failed cells: `xlt results --status failed` shows why.")
    return "\n\n".join(parts) if parts else "No results for this grid yet."


def _significance_test(records: list[dict[str, Any]], root: Path, baseline: str):
    """+1 / -1 for a (row, method) whose score is significantly better / worse than the
    baseline's in every seed both have (seeds are paired; a seed without per-example statistics,
    or seeds that disagree in direction, give 0)."""
    from xltransfer.reporting.markdown import direction, label
    from xltransfer.reporting.significance import load_example_statistics, paired_bootstrap

    def test(table: ScoreTable, row: str, method: str) -> int:
        row_of = direction if table.by_direction else (lambda r: r["target_language"])
        mine = {r["seed"]: r for r in table.records if label(r) == method and row_of(r) == row}
        theirs = {r["seed"]: r for r in table.records if label(r) == baseline and row_of(r) == row}
        seeds = sorted(set(mine) & set(theirs))
        if not seeds:
            return 0
        task = registry.tasks.get(table.task)()
        signs = set()
        for seed in seeds:
            a, b = load_example_statistics(root, mine[seed]), load_example_statistics(root, theirs[seed])
            if a is None or b is None:
                return 0
            result = paired_bootstrap(a, b, task.score_statistics, table.metric, seed=seed)
            if not result["significant"]:
                return 0
            signs.add(1 if (result["difference"] > 0) == table.higher_is_better else -1)
        return signs.pop() if len(signs) == 1 else 0

    return test


def _language_embeddings(grid, cells, workspace) -> dict[str, dict[str, list[float]]]:
    """Learned language embeddings of the grid's trained pieces, by method label (first seed)."""
    from xltransfer.planning import build_plan

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


__all__ = ["FORMATS", "Leaderboard", "Tabular", "render_leaderboard", "score_summary", "write_leaderboard"]
