"""The leaderboard's tables: per task, setting (and k for few-shot), target languages x methods.

Scores are means over seeds, with the standard deviation when there are several and the number
of seeds a cell is missing; the best method of each row is bold. Group averages follow: the
targets the backbone saw in pretraining and the ones it did not (what these methods are compared
on), and the grid's own ``groups:``. Each table has a caption (metric, split, sources, seeds) and
its footnotes under it: significance against the baseline (↑ better, ↓ worse) and entries whose
pieces did not converge (†, never ranked: no bold, no significance mark).

The tables are built once (:class:`Tabular`) and written as Markdown here, as LaTeX by
``latex.py``; the HTML page is this Markdown. Everything is sorted and formatted the same way
each time, so rendering the same store twice gives the same bytes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xltransfer import hardware, registry
from xltransfer.reporting.units import PERCENT_METRICS, format_count, metric_label, metric_scale

__all__ = ["PERCENT_METRICS", "metric_scale", "label", "direction", "leaderboard_markdown"]

BETTER, WORSE = "↑", "↓"  # significantly better / worse than the baseline
NOT_CONVERGED = "†"
NO_RESULTS = "No results yet: run `xlt run` on this grid first."


def label(record: dict[str, Any]) -> str:
    """The method label a grid and a leaderboard use: ``method`` or ``method:variant``."""
    return record["method"] if record["variant"] == "default" else f"{record['method']}:{record['variant']}"


def direction(record: dict[str, Any]) -> str:
    return f"{'+'.join(record['source_languages'])}→{record['target_language']}"


@dataclass
class ScoreTable:
    """One leaderboard table: rows (targets, or MT directions) x methods, on the main metric."""

    task: str
    setting: str
    shots: int
    metric: str
    sources: list[str]
    by_direction: bool
    methods: list[str]
    rows: list[str]
    language_of: dict[str, str]  # row -> the language it is about (a direction's non-hub side)
    values: dict[tuple[str, str], list[float]]  # (row, method) -> one value per seed
    records: list[dict[str, Any]] = field(default_factory=list)
    # (row, method) -> {piece label: why} for entries with a record that did not converge
    unconverged: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        k = f" · k={self.shots}" if self.setting == "few-shot" else ""
        where = "directions" if self.by_direction else "source"
        return f"{self.task} · {self.setting}{k} · {self.metric} ({where}: {', '.join(self.sources)})"

    @property
    def higher_is_better(self) -> bool:
        return registry.tasks.get(self.task).metadata.higher_is_better

    @property
    def seeds(self) -> list[int]:
        return sorted({r["seed"] for r in self.records})

    def mean(self, row: str, method: str) -> float | None:
        found = self.values.get((row, method))
        return statistics.fmean(found) if found else None

    def group_mean(self, members: Iterable[str], method: str) -> float | None:
        """The average over the members' seed means; None unless every member has a score."""
        means = [self.mean(row, method) for row in members]
        return statistics.fmean(means) if means and None not in means else None  # type: ignore[arg-type]

    def converged(self, rows: Iterable[str], method: str) -> bool:
        return not any((row, method) in self.unconverged for row in rows)


@dataclass
class Entry:
    """One cell of a rendered table: its text, whether it is the row's best, marks after it."""

    text: str
    bold: bool = False
    marks: str = ""


@dataclass
class Tabular:
    """A table as every output shows it: Markdown (GitHub, the HTML page) and LaTeX (booktabs)."""

    header: list[str]
    rows: list[list[Entry]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)  # footnotes, under the table
    summary_rows: int = 0  # the last rows are averages (their label is bold, they do not sort)
    label_columns: int = 1  # the leading columns of text; the others hold numbers

    @property
    def numeric(self) -> list[bool]:
        """Columns of numbers (right-aligned): every column after the label columns."""
        return [j >= self.label_columns for j in range(len(self.header))]


@dataclass
class Significance:
    """Paired significance against ``baseline``: ``test(table, row, method)`` is +1 (significantly
    better), -1 (worse) or 0; ``floors`` are sanity floors, never tested (a floor below every
    method says nothing about them)."""

    baseline: str
    test: Callable[[ScoreTable, str, str], int]
    floors: frozenset[str] = frozenset()


def score_tables(records: list[dict[str, Any]]) -> list[ScoreTable]:
    """The tables of the ok test records, sorted by task, setting and k."""
    ok = [r for r in records if r["status"] == "ok" and r["split"] == "test"]
    by_table: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        by_table[(r["task"], r["setting"], r["shots"] or 0)].append(r)
    tables = []
    for (task, setting, shots), found in sorted(by_table.items()):
        metric = registry.tasks.get(task).metadata.main_metric
        rows = [r for r in found if r["metric"] == metric]
        sources = sorted({"+".join(r["source_languages"]) for r in rows})
        by_direction = len(sources) > 1 and task == "mt"  # MT: a row per direction
        hubs = _hubs(rows) if by_direction else set(sources)
        row_of: Callable[[dict[str, Any]], str] = (
            direction if by_direction else (lambda r: r["target_language"])
        )
        language_of: dict[str, str] = {}
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        unconverged: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        for r in sorted(rows, key=lambda r: (r["seed"], r["cell_id"])):
            values[(row_of(r), label(r))].append(r["value"])
            side = r["source_languages"][0] if r["target_language"] in hubs else r["target_language"]
            language_of[row_of(r)] = side
            convergence = (r.get("extra") or {}).get("convergence")
            if isinstance(convergence, dict) and convergence.get("converged") is False:
                flagged = convergence.get("flagged") or {"a piece": "flagged as not converged"}
                unconverged[(row_of(r), label(r))].update(flagged)
        tables.append(
            ScoreTable(
                task,
                setting,
                shots,
                metric,
                sources,
                by_direction,
                sorted({label(r) for r in rows}),
                sorted(language_of, key=lambda row: (language_of[row], row)),
                language_of,
                dict(values),
                rows,
                dict(unconverged),
            )
        )
    return tables


def leaderboard_sections(
    records: list[dict[str, Any]],
    seen: frozenset[str] | dict[str, frozenset[str] | None] | None,
    groups: dict[str, tuple[str, ...]] | None = None,
    seeds: int | None = None,
    significance: Significance | None = None,
) -> list[tuple[str, list[Tabular]]]:
    """Per score table: its title and its tables (scores, then the relatedness probe where MT has
    one, then efficiency)."""
    sections = []
    for table in score_tables(records):
        seen_here = seen.get(table.task) if isinstance(seen, dict) else seen
        tabulars = [score_tabular(table, seen_here, groups or {}, seeds, significance)]
        probe = relatedness_probe(table)
        if probe is not None:
            tabulars.append(probe)
        tabulars.append(efficiency(table))
        sections.append((table.title, tabulars))
    return sections


def leaderboard_markdown(
    grid_name: str,
    records: list[dict[str, Any]],
    seen: frozenset[str] | dict[str, frozenset[str] | None] | None,
    description: str = "",
    groups: dict[str, tuple[str, ...]] | None = None,
    seeds: int | None = None,
    sections: Iterable[str] = (),
    significance: Significance | None = None,
    tables: list[tuple[str, list[Tabular]]] | None = None,
) -> str:
    """The README of a leaderboard. ``groups`` (the grid's ``groups:``) add an average row each (an
    MT direction belongs to the groups of its non-hub language); ``seeds`` is how many seeds the
    grid runs (a cell with fewer says so); ``seen`` is the backbone's pretraining languages, or
    those per task (None for a task whose model is not the backbone, e.g. MT from scratch);
    ``significance`` marks scores against a baseline; ``sections`` are appended (paper figures,
    figures, provenance); ``tables``: ``leaderboard_sections`` of the same arguments, when the
    caller has them already."""
    lines = [f"# Leaderboard: {grid_name}", ""]
    if description:
        lines += [description.strip(), ""]
    if tables is None:
        tables = leaderboard_sections(records, seen, groups, seeds, significance)
    if not tables:
        lines += [NO_RESULTS, ""]
    for title, tabulars in tables:
        lines += [f"## {title}", ""]
        for tabular in tabulars:
            lines += [tabular_markdown(tabular), ""]
    failed = sorted({r["cell_id"] for r in records if r["status"] == "failed"})
    if failed:
        lines += [f"Failed cells ({len(failed)}):", ""] + [f"- `{c}`" for c in failed] + [""]
    for section in sections:
        if section:
            lines += [section.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def tabular_markdown(tabular: Tabular) -> str:
    """A pipe table with its caption above and its notes below; number columns right-aligned."""
    lines = [f"*{tabular.caption}*", ""] if tabular.caption else []
    lines.append("| " + " | ".join(_escape(h) for h in tabular.header) + " |")
    lines.append("|" + "|".join("---:" if n else ":---" for n in tabular.numeric) + "|")
    first_summary = len(tabular.rows) - tabular.summary_rows
    for i, row in enumerate(tabular.rows):
        cells = []
        for j, entry in enumerate(row):
            text = _escape(entry.text)
            if j == 0 and i >= first_summary:
                name, _, rest = text.partition(" (")
                text = f"**{name}**" + (f" ({rest}" if rest else "")
            elif entry.bold:
                text = f"**{text}**"
            cells.append(text + entry.marks)
        lines.append("| " + " | ".join(cells) + " |")
    for note in tabular.notes:
        lines += ["", note]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def score_tabular(
    table: ScoreTable,
    seen: frozenset[str] | None,
    groups: dict[str, tuple[str, ...]],
    seeds: int | None,
    significance: Significance | None,
) -> Tabular:
    scale = metric_scale(table.metric)
    rows: list[list[Entry]] = []
    marked: set[str] = set()
    for row in table.rows:
        language = table.language_of[row]
        tag = "" if seen is None else (" (seen)" if language in seen else " (unseen)")
        ranked = {m: table.mean(row, m) for m in table.methods if table.converged([row], m)}
        best = _best(ranked, table.higher_is_better)
        entries = [Entry(f"{row}{tag}")]
        for m in table.methods:
            found = table.values.get((row, m), [])
            entry = Entry(_fmt(found, scale, seeds), bold=m in best)
            if found and not table.converged([row], m):
                entry.marks = NOT_CONVERGED
            elif found and significance is not None and _tested(significance, m):
                entry.marks = {1: BETTER, -1: WORSE}.get(significance.test(table, row, m), "")
            marked.update(entry.marks)
            entries.append(entry)
        rows.append(entries)
    summaries = _summary_rows(table, seen, groups, scale)
    for summary in summaries:
        marked.update(e.marks for e in summary)
    notes = []
    if significance is not None and significance.baseline in table.methods and len(table.methods) > 1:
        notes.append(_significance_note(significance, table))
    if NOT_CONVERGED in marked:
        notes.append(_convergence_note(table))
    return Tabular(
        [("direction" if table.by_direction else "target"), *table.methods],
        rows + summaries,
        caption=_caption(table, seeds),
        notes=notes,
        summary_rows=len(summaries),
    )


def _tested(significance: Significance, method: str) -> bool:
    return method != significance.baseline and method not in significance.floors


def _caption(table: ScoreTable, seeds: int | None) -> str:
    split = "each direction's" if table.by_direction else "each target's"
    sources = "" if table.by_direction else f", trained on {', '.join(table.sources)}"
    k = f" with k={table.shots} target examples" if table.setting == "few-shot" else ""
    seed_list = ", ".join(str(s) for s in table.seeds)
    counts = {len(v) for v in table.values.values()}
    if max(counts) > 1:
        spread = f"mean ± standard deviation over {max(counts)} seeds ({seed_list})"
    else:
        spread = f"one seed ({seed_list})"
    if seeds is not None and min(counts) < seeds:
        spread += f"; a cell with fewer than the grid's {seeds} seeds says how many it has"
    best = "; best per row in bold" if len(table.methods) > 1 else ""
    return (
        f"{table.task}, {table.setting}{k}: {metric_label(table.metric)} on {split} test split"
        f"{sources}; {spread}{best}."
    )


def _significance_note(significance: Significance, table: ScoreTable) -> str:
    untested = sorted(significance.floors & set(table.methods))
    floors = f" {', '.join(untested)}: a sanity floor, not tested." if untested else ""
    return (
        f"{BETTER} / {WORSE}: significantly better / worse than {significance.baseline} on that row at "
        "p < 0.05 in every seed both ran (paired bootstrap over test examples, 1,000 resamples; "
        f"Koehn 2004).{floors}"
    )


def _convergence_note(table: ScoreTable) -> str:
    reasons = sorted(
        {
            (method, piece, why)
            for (_, method), flagged in table.unconverged.items()
            for piece, why in flagged.items()
        }
    )
    listed = "; ".join(f"{method}: {piece}: {why}" for method, piece, why in reasons)
    return f"{NOT_CONVERGED}: not converged, so not ranked (no bold, no significance mark): {listed}."


def _summary_rows(
    table: ScoreTable, seen: frozenset[str] | None, groups: dict[str, tuple[str, ...]], scale: float
) -> list[list[Entry]]:
    group_defs = [("average", table.rows)]
    if seen is not None:
        group_defs += [
            ("avg seen", [r for r in table.rows if table.language_of[r] in seen]),
            ("avg unseen", [r for r in table.rows if table.language_of[r] not in seen]),
        ]
    group_defs += [
        (f"avg {name}", [r for r in table.rows if table.language_of[r] in members])
        for name, members in groups.items()
    ]
    if table.by_direction:  # MT: each group out of the hub and into it (En→X, X→En)
        hub = "+".join(
            sorted({side for r in table.rows for side in r.split("→")} - set(table.language_of.values()))
        )
        hub = hub or "hub"
        group_defs = [
            (f"{name} {sense.replace('hub', hub)}", [r for r in members if _sense(r, table) == sense])
            for name, members in group_defs
            for sense in ("hub→X", "X→hub")
        ]
    rows = []
    for name, members in group_defs:
        if not members:
            continue
        means = {m: table.group_mean(members, m) for m in table.methods}
        ranked = {m: v for m, v in means.items() if table.converged(members, m)}
        best = _best(ranked, table.higher_is_better)
        entries = [Entry(f"{name} ({len(members)})")]
        for m in table.methods:
            if means[m] is None:
                entries.append(Entry("–"))
                continue
            marks = "" if table.converged(members, m) else NOT_CONVERGED
            entries.append(Entry(f"{means[m] * scale:.1f}", bold=m in best, marks=marks))
        rows.append(entries)
    return rows


def _sense(row: str, table: ScoreTable) -> str:
    """Whether an MT row translates out of the hub language (En→X) or into it (X→En)."""
    return "X→hub" if row.startswith(f"{table.language_of[row]}→") else "hub→X"


def _fmt(values: list[float], scale: float, seeds: int | None) -> str:
    if not values:
        return "–"
    text = f"{statistics.fmean(values) * scale:.1f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values) * scale:.1f}"
    if seeds is not None and len(values) < seeds:
        text += f" ({len(values)}/{seeds} seeds)"
    return text


def _best(means: dict[str, float | None], higher_is_better: bool) -> set[str]:
    """The methods with the best mean (ties all bold); none when fewer than two have a score."""
    scored = {m: round(v, 10) for m, v in means.items() if v is not None}
    if len(scored) < 2:
        return set()
    best = max(scored.values()) if higher_is_better else min(scored.values())
    return {m for m, v in scored.items() if v == best}


def _hubs(rows: list[dict[str, Any]]) -> set[str]:
    """The languages on one side of every direction (English in an English-centric grid)."""
    directions = [{r["source_languages"][0], r["target_language"]} for r in rows]
    return set.intersection(*directions) if directions else set()


def relatedness_probe(table: ScoreTable) -> Tabular | None:
    """Baziotis et al. 2022, Table 3: a direction translated with its own source language's
    modules (Org), a similar language's (Sim) and a distant one's (Dist); Sim/Org is how much of
    the original score related modules recover."""
    probes: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in table.records:
        probe = (r.get("extra") or {}).get("relatedness_probe")
        if probe:
            probes[(label(r), direction(r))].append(probe)
    if not probes:
        return None
    metric = table.metric
    rows = []
    for (method, where), runs in sorted(probes.items()):
        first = runs[0]
        org, sim, dist = (
            statistics.fmean(p[k][metric] for p in runs) for k in ("original", "similar", "distant")
        )
        rows.append(
            [
                Entry(method),
                Entry(where),
                Entry(f"{org:.1f}"),
                Entry(f"{sim:.1f} ({first['similar']['language']})"),
                Entry(f"{dist:.1f} ({first['distant']['language']})"),
                Entry(f"{sim / org:.2f}" if org else "–"),
            ]
        )
    return Tabular(
        ["method", "direction", "Org", "Sim", "Dist", "Sim/Org"],
        rows,
        caption=f"Relatedness probe ({metric}; Baziotis et al. 2022, §6.1): the source's own modules "
        "(Org), a similar language's (Sim), a distant one's (Dist).",
        label_columns=2,
    )


def efficiency(table: ScoreTable) -> Tabular:
    """Per cell (what one prediction needs) and for the whole table, where a piece shared by many
    cells (a source LA, a BA serving POS and DP) is counted once; training time as wall clock and
    as CPU time (every thread of the training process), on the hardware named under the table."""
    rows, any_loaded = [], False
    for m in table.methods:
        cost = method_costs([r for r in table.records if label(r) == m])
        loaded = LOADED if cost.under_load else ""
        any_loaded = any_loaded or cost.under_load
        rows.append(
            [
                Entry(m),
                Entry(format_count(cost.per_cell)),
                Entry(format_count(cost.params)),
                Entry(f"{cost.seconds:.0f}", marks=loaded),
                Entry("–" if cost.data_prep_seconds is None else f"{cost.data_prep_seconds:.0f}"),
                Entry("–" if cost.cpu_seconds is None else f"{cost.cpu_seconds:.0f}"),
            ]
        )
    machines = sorted({h for r in table.records for h in (r.get("extra") or {}).get("hardware", [])})
    where = "; ".join(machines) if machines else "not recorded (results from before hardware was recorded)"
    notes = [f"Training time measured on: {where}."]
    if any_loaded:
        notes.append(
            f"{LOADED}: some of these pieces trained while the machine's load average exceeded "
            f"{hardware.BUSY_LOAD_PER_CORE:g} times its core count (other jobs shared the cores): their "
            "wall-clock seconds overstate the cost; compare CPU seconds."
        )
    return Tabular(
        ["method", "params per cell", "params, all cells", "train s", "data s", "CPU s"],
        rows,
        caption="Efficiency: trainable parameters per cell and over all cells, and training time over "
        "all cells in wall-clock seconds (the checkpoint-selection evaluations during training "
        "included) and CPU seconds (every thread of the training process); data s: wall-clock seconds "
        "preparing the pieces' data (tokenising, packing; 0 where a piece found it cached, – where a "
        "piece did not record it); a piece shared by cells counted once.",
        notes=notes,
    )


LOADED = "ℓ"  # the efficiency table's mark on seconds measured under load


@dataclass(frozen=True)
class MethodCosts:
    params: int  # trainable parameters over the records' pieces, each piece once
    seconds: float  # their wall-clock training seconds
    cpu_seconds: float | None  # their CPU seconds (None when a piece did not record them)
    per_cell: int  # the largest per-cell trainable count
    data_prep_seconds: float | None = None  # their data preparation seconds (None: not recorded)
    under_load: bool = False  # a piece trained under load (hardware.under_load)


def method_costs(records: list[dict[str, Any]]) -> MethodCosts:
    """What a method's records cost to train, every shared piece counted once (``piece_costs``:
    piece key -> [trainable parameters, train seconds, CPU seconds, data preparation seconds])."""
    shared: dict[str, list[float]] = {}
    loaded: set[str] = set()
    for r in records:
        shared.update((r.get("extra") or {}).get("piece_costs", {}))
        # [load at start, load at end, cores] per piece, judged by today's rule (records hold it)
        measured = (r.get("extra") or {}).get("measured_under_load", {})
        loaded.update(key for key, (*loads, cores) in measured.items() if hardware.under_load(loads, cores))
    cpu = [cost[2] if len(cost) > 2 else None for cost in shared.values()]
    prep = [cost[3] if len(cost) > 3 else None for cost in shared.values()]
    return MethodCosts(
        int(sum(cost[0] for cost in shared.values())),
        float(sum(cost[1] for cost in shared.values())),
        None if None in cpu else float(sum(cpu)),  # type: ignore[arg-type]
        max(((r["trainable_params"] or 0) for r in records), default=0),
        None if None in prep else float(sum(prep)),  # type: ignore[arg-type]
        bool(loaded),
    )
