"""PNG figures for a leaderboard, from the same result records as its Markdown tables.

Deterministic: the same records give byte-identical files (fixed figure sizes and dpi, sorted
inputs, matplotlib's default style whatever the local matplotlibrc says, no timestamp or version
in the PNG). Rendered with the Agg canvas directly, so nothing needs a display and pyplot's global
state is never touched.

Figures (under ``<folder>/figures/``, each skipped when it has no data):

* ``bars-<task>-<setting>[-k<shots>].png``: per task and setting, the main metric per target
  language and method (mean over seeds, error bars: standard deviation when 2+ seeds);
* ``efficiency.png``: per task and setting, each method's trainable parameters (a piece shared by
  many cells counted once, as in the Markdown's "all cells" column) against its average score;
* ``few-shot-<task>.png``: average score against the number of shots k (k=0: the zero-shot cells);
* ``language-map.png`` (only through :func:`language_map` or when ``render_figures`` is given
  embeddings): a 2-D PCA of language vectors, coloured by family.
"""

from __future__ import annotations

import contextlib
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.colors
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter

from xltransfer.cell import SETTINGS
from xltransfer.reporting.markdown import label
from xltransfer.reporting.units import format_count, metric_label, metric_scale

DPI = 100
# what leaderboard_markdown shows ×100 (fractions there, percentages in the tables)
PNG_METADATA = {"Software": None}  # no matplotlib version in the file; PNGs carry no timestamp
# the vector copies, without creation dates or versions (the same records give the same bytes)
VECTOR_METADATA = {
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


def render_figures(
    records: list[dict[str, Any]],
    folder: Path,
    main_metric_of: Callable[[str], str],
    *,
    language_embeddings: dict[str, list[float]] | None = None,
    families: dict[str, str] | None = None,
) -> list[Path]:
    """Write every figure that has data under ``folder/figures/``; returns the files written, in a
    fixed order (bar charts, efficiency, few-shot curves, language map). ``main_metric_of(task)``
    names the metric plotted for a task. Only ``status == "ok"`` test-split records count.
    Files of earlier renders that this one does not write are left alone."""
    with _style():
        out = Path(folder) / "figures"
        return _render_figures(records, out, main_metric_of, language_embeddings, families)


def _render_figures(
    records: list[dict[str, Any]],
    out: Path,
    main_metric_of: Callable[[str], str],
    language_embeddings: dict[str, list[float]] | None,
    families: dict[str, str] | None,
) -> list[Path]:
    ok = [r for r in records if r.get("status") == "ok" and r.get("split") == "test" and _is_number(r)]
    metric_of = {task: main_metric_of(task) for task in sorted({r["task"] for r in ok})}
    ok = [r for r in ok if r["metric"] == metric_of[r["task"]]]
    colours = _colours(sorted({label(r) for r in ok}))
    tables: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        tables[_table_key(r)].append(r)
    written: list[Path] = []
    for key in sorted(tables, key=_table_order):
        shots = f"-k{key[2]}" if key[1] == "few-shot" else ""
        path = out / f"bars-{_slug(key[0])}-{_slug(key[1])}{shots}.png"
        if _bar_chart(tables[key], key, colours, path):
            written.append(path)
    if _efficiency(tables, colours, out / "efficiency.png"):
        written.append(out / "efficiency.png")
    for task in sorted({r["task"] for r in ok if r["setting"] == "few-shot"}):
        path = out / f"few-shot-{_slug(task)}.png"
        if _few_shot_curve([r for r in ok if r["task"] == task], task, colours, path):
            written.append(path)
    if language_embeddings:
        written.append(language_map(language_embeddings, families or {}, out / "language-map.png"))
    return written


def language_map(
    embeddings: dict[str, list[float]], families: dict[str, str], path: Path, whose: str = ""
) -> Path:
    """A 2-D PCA of ``{language: vector}`` (e.g. lang2vec features, or the language embeddings a
    method learned: ``whose`` names it in the title), one point per language, coloured by
    ``families[language]`` ("unknown" when missing), each point labelled with its code. Needs at
    least one language; vectors must share one length."""
    with _style():
        return _language_map(embeddings, families, Path(path), whose)


def _language_map(
    embeddings: dict[str, list[float]], families: dict[str, str], path: Path, whose: str
) -> Path:
    from sklearn.decomposition import PCA  # scikit-learn is slow to import; only this figure needs it

    if not embeddings:
        raise ValueError("language_map needs at least one language vector")
    languages = sorted(embeddings)
    matrix = np.asarray([embeddings[lang] for lang in languages], dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError("language vectors must all have the same length")
    components = min(2, matrix.shape[0], matrix.shape[1])
    if components >= 1 and matrix.shape[0] >= 2:
        pca = PCA(n_components=components, svd_solver="full")
        with np.errstate(divide="ignore", invalid="ignore"):  # identical vectors: no variance at all
            points = pca.fit_transform(matrix)
            variance = pca.explained_variance_ratio_
    else:  # one language: nothing to project
        points, variance = np.zeros((matrix.shape[0], 0)), np.zeros(0)
    points = np.hstack([points, np.zeros((points.shape[0], 2 - points.shape[1]))])  # pad to 2-D
    family_of = {lang: families.get(lang, "unknown") for lang in languages}
    colours = _colours(sorted(set(family_of.values())))
    fig, ax = _figure((8.0, 6.0))
    for family in sorted(colours):
        idx = [i for i, lang in enumerate(languages) if family_of[lang] == family]
        ax.scatter(points[idx, 0], points[idx, 1], color=colours[family], label=family, s=40, zorder=3)
    for i, lang in enumerate(languages):
        ax.annotate(lang, (points[i, 0], points[i, 1]), xytext=(4, 3), textcoords="offset points", fontsize=8)
    explained = [f" ({v * 100:.0f}% variance)" if math.isfinite(v) else "" for v in variance]
    axis = [f"PC{i + 1}" + (explained[i] if i < len(explained) else "") for i in (0, 1)]
    title = f"{whose}: languages" if whose else "Languages"
    ax.set(title=f"{title}, PCA of {matrix.shape[1]}-dim vectors", xlabel=axis[0], ylabel=axis[1])
    ax.grid(True, alpha=0.3)
    fig.legend(title="family", loc="outside right upper")
    return _save(fig, path)


# --- the figures ---------------------------------------------------------------------------------

NOT_CONVERGED_MARK = "†"  # as in the tables: a method whose pieces did not all converge
NOT_CONVERGED_HATCH = "//"


def _unconverged(rows: list[dict[str, Any]]) -> set[str]:
    """The methods with a record whose pieces did not converge (the tables' †: not ranked)."""
    return {
        label(r) for r in rows if ((r.get("extra") or {}).get("convergence") or {}).get("converged") is False
    }


def _legend_name(method: str, unconverged: set[str]) -> str:
    return f"{method} {NOT_CONVERGED_MARK} not converged" if method in unconverged else method


def _bar_chart(
    rows: list[dict[str, Any]], key: tuple[str, str, int], colours: dict[str, str], path: Path
) -> bool:
    task, setting, shots = key
    metric, scale = rows[0]["metric"], metric_scale(rows[0]["metric"])
    values = _values(rows)
    if not values:
        return False
    targets = sorted({target for target, _ in values})
    methods = sorted({method for _, method in values})
    several_seeds = any(len(v) > 1 for v in values.values())
    width = 0.8 / len(methods)
    unconverged = _unconverged(rows)
    fig, ax = _figure((min(20.0, max(8.0, 1.5 + 0.25 * len(targets) * (len(methods) + 1))), 5.0))
    for j, method in enumerate(methods):
        xs, means, errs = [], [], []
        for i, target in enumerate(targets):
            runs = values.get((target, method))
            if runs:
                xs.append(i - 0.4 + width * (j + 0.5))
                means.append(statistics.fmean(runs) * scale)
                errs.append(statistics.stdev(runs) * scale if len(runs) > 1 else math.nan)
        hatch = NOT_CONVERGED_HATCH if method in unconverged else None  # shown, but not to be ranked
        ax.bar(
            xs, means, width, label=_legend_name(method, unconverged), color=colours[method], hatch=hatch,
            edgecolor="white" if hatch else None, zorder=3,
        )  # fmt: skip
        if several_seeds:
            ax.errorbar(xs, means, yerr=errs, fmt="none", ecolor="black", elinewidth=1, capsize=2, zorder=4)
    rotate = len(targets) > 8
    ax.set_xticks(
        range(len(targets)), targets, rotation=45 if rotate else 0, ha="right" if rotate else "center"
    )
    shots_note = f" · k={shots}" if setting == "few-shot" else ""
    seeds_note = " (mean ± std over seeds)" if several_seeds else ""
    ax.set(
        title=f"{task} · {setting}{shots_note} · source: {_sources(rows)}{seeds_note}",
        xlabel="direction" if _by_direction(rows) else "target language",
        ylabel=metric_label(metric),
    )
    ax.grid(True, axis="y", alpha=0.3, zorder=0)
    fig.legend(title="method", loc="outside right upper")
    _save(fig, path)
    return True


def linear_limits(xs: list[float]) -> tuple[float, float]:
    """A linear parameter axis that starts at 0 with room left of it, so a method with no trainable
    parameters (the majority floor) shows a whole dot at x = 0, not half of one cut by the frame."""
    right = max(max(xs) * 1.15, 1.0)
    return -0.04 * right, right


def _efficiency(
    tables: dict[tuple[str, str, int], list[dict[str, Any]]], colours: dict[str, str], path: Path
) -> bool:
    """One panel per table: x = the method's trainable parameters over the table's cells (shared
    pieces once), y = its average over the table's targets (only when it covers them all)."""
    panels = []
    for key in sorted(tables, key=_table_order):
        rows = tables[key]
        if not any("piece_costs" in (r.get("extra") or {}) for r in rows):
            continue
        values = _values(rows)
        targets = sorted({target for target, _ in values})
        points = []
        for method in sorted({m for _, m in values}):
            mine = [r for r in rows if label(r) == method]
            if not all(values.get((t, method)) for t in targets):
                continue
            shared: dict[str, Any] = {}
            for r in sorted(mine, key=_record_order):
                shared.update((r.get("extra") or {}).get("piece_costs") or {})
            params = sum(float(cost[0]) for cost in shared.values())
            score = statistics.fmean(statistics.fmean(values[(t, method)]) for t in targets)
            points.append((method, params, score * metric_scale(rows[0]["metric"])))
        if points:
            panels.append((key, rows[0]["metric"], points, _unconverged(rows)))
    if not panels:
        return False
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure((5.0 * ncols + 2.0, 4.2 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    shown: dict[str, Any] = {}
    flagged: set[str] = set()
    labelled: list[tuple[Any, list[tuple[float, float]], list[str]]] = []
    for ax, ((task, setting, shots), metric, points, unconverged) in zip(axes.flat, panels, strict=False):
        flagged |= {method for method, _, _ in points if method in unconverged}
        for method, params, score in points:
            hollow = method in unconverged  # not converged: shown, not to be ranked
            shown[method] = ax.scatter(
                params, score, s=50, zorder=3, linewidths=1.5, edgecolors=colours[method],
                facecolors="none" if hollow else colours[method],
            )  # fmt: skip
        ax.margins(y=0.12)  # room above the highest dot for its label, inside the frame
        xs = [p[1] for p in points]
        if min(xs) > 0 and max(xs) / min(xs) > 50:
            ax.set_xscale("log")
        else:  # a linear axis from 0, so distances read as parameter ratios
            ax.set_xlim(*linear_limits(xs))
        names = [f"{m} {NOT_CONVERGED_MARK}" if m in unconverged else m for m, _, _ in points]
        labelled.append((ax, [(p, s) for _, p, s in points], names))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_count(x) if x >= 0 else ""))
        shots_note = f" · k={shots}" if setting == "few-shot" else ""
        ax.set(
            title=f"{task} · {setting}{shots_note}",
            xlabel="trainable parameters, all cells",
            ylabel=f"average {metric_label(metric)}",
        )
        ax.grid(True, alpha=0.3, zorder=0)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    fig.suptitle("Efficiency vs performance (shared pieces counted once)")
    # below the panels: at the upper right a legend runs into the title
    fig.legend(
        [shown[m] for m in sorted(shown)],
        [_legend_name(m, flagged) for m in sorted(shown)],
        title="method",
        loc="outside lower center",
        ncols=min(4, len(shown)),
    )
    fig.draw_without_rendering()  # the layout settles first: the labels are placed in points on the page
    for ax, dots, names in labelled:
        _annotate_apart(ax, dots, names)
    _save(fig, path)
    return True


LABEL_POINTS = 7  # the dots' labels' font size, in points
DOT_POINTS = 4.5  # a dot's radius with its edge (s=50, linewidth 1.5), in points


def _annotate_apart(ax, points: list[tuple[float, float]], names: list[str]) -> None:
    """Label each dot on its right, just above it or else just below, or on its left where the
    right would cover another dot or a label or leave the axes; where a label still meets one placed
    before (methods of nearly the same size and score), it moves down below that one, so each stays
    readable. Positions are worked out in points on the page, once the layout and the axes' limits
    are settled."""
    ax.get_xlim(), ax.get_ylim()  # settles autoscaling, so the dots' positions are final
    to_points = 72.0 / ax.figure.dpi
    dots = [(x * to_points, y * to_points) for x, y in ax.transData.transform(points)]
    frame = ax.get_window_extent()
    low, high = frame.x0 * to_points, frame.x1 * to_points
    placed: list[tuple[float, float, float]] = []  # (left, bottom, width) of each placed label
    renderer, font = ax.figure.canvas.get_renderer(), FontProperties(size=LABEL_POINTS)

    def meets(left: float, bottom: float, width: float, other: tuple[float, float, float]) -> bool:
        other_left, other_bottom, other_width = other
        apart = left >= other_left + other_width or other_left >= left + width
        return not apart and abs(bottom - other_bottom) < LABEL_POINTS + 1

    def free(i: int, left: float, bottom: float, width: float) -> bool:
        covers = any(
            left - DOT_POINTS < dx < left + width + DOT_POINTS
            and bottom - DOT_POINTS < dy < bottom + LABEL_POINTS + DOT_POINTS
            for j, (dx, dy) in enumerate(dots)
            if j != i
        )
        inside = low <= left and left + width <= high
        return inside and not covers and not any(meets(left, bottom, width, p) for p in placed)

    order = sorted(range(len(points)), key=lambda i: (-points[i][1], points[i][0]))
    for i in order:
        x, y = dots[i]
        width = renderer.get_text_width_height_descent(names[i], font, ismath=False)[0] * to_points
        right, left_side = x + 4, x - 4 - width
        above, below = y + 3, y - 3 - LABEL_POINTS
        candidates = [(right, above), (right, below), (left_side, above), (left_side, below)]
        fitting = right if right + width <= high or left_side < low else left_side
        left, bottom = next(((a, b) for a, b in candidates if free(i, a, b, width)), (fitting, above))
        for other in sorted(placed, key=lambda p: -p[1]):
            if meets(left, bottom, width, other):
                bottom = other[1] - (LABEL_POINTS + 1)
        placed.append((left, bottom, width))
        ax.annotate(
            names[i], points[i], xytext=(left - x, bottom - y), textcoords="offset points",
            fontsize=LABEL_POINTS, arrowprops={"arrowstyle": "-", "lw": 0.5} if bottom < y - 3 else None,
        )  # fmt: skip


def _few_shot_curve(rows: list[dict[str, Any]], task: str, colours: dict[str, str], path: Path) -> bool:
    """Average over the few-shot targets per k; k=0 from the zero-shot cells on those targets. A
    point needs every target (as the Markdown's average row does)."""
    few = [r for r in rows if r["setting"] == "few-shot"]
    targets = sorted({_row(r, few) for r in few})
    ks = sorted({int(r.get("shots") or 0) for r in few})
    zero = [r for r in rows if r["setting"] == "zero-shot"]
    per_k: dict[int, dict[tuple[str, str], list[float]]] = {0: _values(zero, few)} if zero else {}
    for k in ks:
        per_k[k] = _values([r for r in few if int(r.get("shots") or 0) == k], few)
    ks = sorted(per_k)
    methods = sorted({m for values in per_k.values() for _, m in values})
    metric = few[0]["metric"]
    fig, ax = _figure((8.0, 5.0))
    drawn = False
    for method in methods:
        xs, ys = [], []
        for i, k in enumerate(ks):
            values = per_k[k]
            if targets and all(values.get((t, method)) for t in targets):
                xs.append(i)
                ys.append(statistics.fmean(statistics.fmean(values[(t, method)]) for t in targets))
        if xs:
            drawn = True
            ys = [y * metric_scale(metric) for y in ys]
            ax.plot(xs, ys, marker="o", color=colours[method], label=method, zorder=3)
    if not drawn:
        return False
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set(
        title=f"{task} · few-shot: average over {len(targets)} targets (source: {_sources(few)})",
        xlabel="shots k (0: zero-shot)",
        ylabel=f"average {metric_label(metric)}",
    )
    ax.grid(True, alpha=0.3, zorder=0)
    fig.legend(title="method", loc="outside right upper")
    _save(fig, path)
    return True


# --- helpers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _style():
    """matplotlib's defaults, whatever a local matplotlibrc or an earlier rcParams change says; SVG
    element ids from a fixed salt instead of a random one."""
    with matplotlib.style.context("default"), matplotlib.rc_context({"svg.hashsalt": "xltransfer"}):
        yield


def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _figure(size: tuple[float, float]) -> tuple[Figure, Any]:
    fig = _new_figure(size)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    """The PNG, and beside it the same figure as PDF and SVG (vector, for a paper); cropped to
    what is drawn (``bbox_inches="tight"``: titles and outside legends stay whole). The PNG's
    ``Title`` text chunk is the figure's title (the HTML page's alt text). Returns the PNG."""
    from xltransfer.util import atomic_path

    path = Path(path)
    suptitle = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    title = suptitle or (fig.axes[0].get_title() if fig.axes else "")
    for fmt, base in {"png": PNG_METADATA, **VECTOR_METADATA}.items():
        metadata = {**base, **({"Title": title} if title else {})}
        with atomic_path(path.with_suffix(f".{fmt}")) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata, facecolor="white", bbox_inches="tight")
    return path


def _colours(names: list[str]) -> dict[str, str]:
    """A stable colour per name (by sorted position), the same in every figure of one render."""
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def _values(
    rows: Iterable[dict[str, Any]], direction_context: list[dict[str, Any]] | None = None
) -> dict[tuple[str, str], list[float]]:
    """(row, method) -> values over seeds, in seed order."""
    rows = sorted(rows, key=_record_order)
    context = direction_context if direction_context is not None else rows
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        values[(_row(r, context), label(r))].append(float(r["value"]))
    return dict(values)


def _row(record: dict[str, Any], context: list[dict[str, Any]]) -> str:
    """The target language, or ``src→tgt`` where the table has several source sets (MT)."""
    if _by_direction(context):
        return f"{'+'.join(record['source_languages'])}→{record['target_language']}"
    return record["target_language"]


def _by_direction(rows: list[dict[str, Any]]) -> bool:
    return len({tuple(r["source_languages"]) for r in rows}) > 1


def _sources(rows: list[dict[str, Any]]) -> str:
    return ", ".join(sorted({"+".join(r["source_languages"]) for r in rows}))


def _record_order(r: dict[str, Any]) -> tuple:
    return (
        label(r),
        r["target_language"],
        tuple(r["source_languages"]),
        int(r.get("shots") or 0),
        str(r.get("partition") or ""),
        r.get("seed") or 0,
        str(r.get("cell_id") or ""),
        float(r["value"]),
    )


def _table_order(key: tuple[str, str, int]) -> tuple:
    """Task, then settings in the harness's order (zero-shot, few-shot, mixed), then k."""
    task, setting, shots = key
    order = SETTINGS.index(setting) if setting in SETTINGS else len(SETTINGS)
    return (task, order, setting, shots)


def _table_key(r: dict[str, Any]) -> tuple[str, str, int]:
    return (r["task"], r["setting"], int(r.get("shots") or 0) if r["setting"] == "few-shot" else 0)


def _is_number(r: dict[str, Any]) -> bool:
    value = r.get("value")
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"
