"""The leaderboard as Markdown: per task, setting (and k for few-shot), target languages x methods.

Scores are means over seeds, with the standard deviation when there are several and the number
of seeds a cell is missing; the best method of each row is bold. Group averages follow: the
targets the backbone saw in pretraining and the ones it did not (what these methods are compared
on), and the grid's own ``groups:``. Everything is sorted and formatted the same way each time, so
rendering the same store twice gives the same bytes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xltransfer import registry

PERCENT_METRICS = frozenset({"accuracy", "f1", "uas", "las"})  # stored as fractions, shown as %

NO_RESULTS = "No results yet: run `xlt run` on this grid first."


def metric_scale(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS else 1.0


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

    @property
    def title(self) -> str:
        k = f" · k={self.shots}" if self.setting == "few-shot" else ""
        where = "directions" if self.by_direction else "source"
        return f"{self.task} · {self.setting}{k} · {self.metric} ({where}: {', '.join(self.sources)})"

    @property
    def higher_is_better(self) -> bool:
        return registry.tasks.get(self.task).metadata.higher_is_better

    def mean(self, row: str, method: str) -> float | None:
        found = self.values.get((row, method))
        return statistics.fmean(found) if found else None

    def group_mean(self, members: Iterable[str], method: str) -> float | None:
        """The average over the members' seed means; None unless every member has a score."""
        means = [self.mean(row, method) for row in members]
        return statistics.fmean(means) if means and None not in means else None  # type: ignore[arg-type]


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
        for r in sorted(rows, key=lambda r: (r["seed"], r["cell_id"])):
            values[(row_of(r), label(r))].append(r["value"])
            side = r["source_languages"][0] if r["target_language"] in hubs else r["target_language"]
            language_of[row_of(r)] = side
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
            )
        )
    return tables


def leaderboard_markdown(
    grid_name: str,
    records: list[dict[str, Any]],
    seen: frozenset[str] | dict[str, frozenset[str] | None] | None,
    description: str = "",
    groups: dict[str, tuple[str, ...]] | None = None,
    seeds: int | None = None,
    sections: Iterable[str] = (),
    marks: Callable[[ScoreTable, str, str], str] | None = None,
) -> str:
    """The README of a leaderboard. ``groups`` (the grid's ``groups:``) add an average row each (an
    MT direction belongs to the groups of its non-hub language); ``seeds`` is how many seeds the
    grid runs (a cell with fewer says so); ``seen`` is the backbone's pretraining languages, or
    those per task (None for a task whose model is not the backbone, e.g. MT from scratch);
    ``marks(table, row, method)`` adds a marker to a score (significance); ``sections`` are
    appended (paper figures, figures, provenance)."""
    lines = [f"# Leaderboard: {grid_name}", ""]
    if description:
        lines += [description.strip(), ""]
    tables = score_tables(records)
    if not tables:
        lines += [NO_RESULTS, ""]
    for table in tables:
        lines += [f"## {table.title}", ""]
        seen_here = seen.get(table.task) if isinstance(seen, dict) else seen
        lines += _score_table(table, seen_here, groups or {}, seeds, marks)
        lines.append("")
        probe = relatedness_probe(table)
        if probe:
            lines += [probe, ""]
        lines += [efficiency(table), ""]
    failed = sorted({r["cell_id"] for r in records if r["status"] == "failed"})
    if failed:
        lines += [f"Failed cells ({len(failed)}):", ""] + [f"- `{c}`" for c in failed] + [""]
    for section in sections:
        if section:
            lines += [section.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _score_table(
    table: ScoreTable,
    seen: frozenset[str] | None,
    groups: dict[str, tuple[str, ...]],
    seeds: int | None,
    marks: Callable[[ScoreTable, str, str], str] | None,
) -> list[str]:
    scale = metric_scale(table.metric)
    counts = {len(v) for v in table.values.values()}
    note = f"Mean over {max(counts)} seeds ± standard deviation. " if max(counts) > 1 else ""
    lines = [f"{note}Best per row in bold.", ""] if len(table.methods) > 1 else []
    lines.append(
        ("| direction | " if table.by_direction else "| target | ") + " | ".join(table.methods) + " |"
    )
    lines.append("|---|" + "---|" * len(table.methods))
    for row in table.rows:
        language = table.language_of[row]
        tag = "" if seen is None else (" (seen)" if language in seen else " (unseen)")
        best = _best({m: table.mean(row, m) for m in table.methods}, table.higher_is_better)
        cells = []
        for m in table.methods:
            found = table.values.get((row, m), [])
            text = _fmt(found, scale, seeds)
            if found and marks is not None:
                text += marks(table, row, m)
            cells.append(f"**{text}**" if m in best else text)
        lines.append(f"| {row}{tag} | " + " | ".join(cells) + " |")
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
    for name, members in group_defs:
        if not members:
            continue
        means = {m: table.group_mean(members, m) for m in table.methods}
        best = _best(means, table.higher_is_better)
        cells = [
            "–"
            if means[m] is None
            else (f"**{means[m] * scale:.1f}**" if m in best else f"{means[m] * scale:.1f}")
            for m in table.methods
        ]
        lines.append(f"| **{name}** ({len(members)}) | " + " | ".join(cells) + " |")
    return lines


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


def relatedness_probe(table: ScoreTable) -> str:
    """Baziotis et al. 2022, Table 3: a direction translated with its own source language's
    modules (Org), a similar language's (Sim) and a distant one's (Dist); Sim/Org is how much of
    the original score related modules recover."""
    probes: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in table.records:
        probe = (r.get("extra") or {}).get("relatedness_probe")
        if probe:
            probes[(label(r), direction(r))].append(probe)
    if not probes:
        return ""
    metric = table.metric
    lines = [
        f"Relatedness probe ({metric}; Baziotis et al. 2022, §6.1): the source's own modules (Org), a "
        "similar language's (Sim), a distant one's (Dist).",
        "",
        "| method | direction | Org | Sim | Dist | Sim/Org |",
        "|---|---|---|---|---|---|",
    ]
    for (method, where), runs in sorted(probes.items()):
        first = runs[0]
        org, sim, dist = (
            statistics.fmean(p[k][metric] for p in runs) for k in ("original", "similar", "distant")
        )
        ratio = f"{sim / org:.2f}" if org else "–"
        lines.append(
            f"| {method} | {where} | {org:.1f} | {sim:.1f} ({first['similar']['language']}) | "
            f"{dist:.1f} ({first['distant']['language']}) | {ratio} |"
        )
    return "\n".join(lines)


def efficiency(table: ScoreTable) -> str:
    """Per cell (what one prediction needs) and for the whole table, where a piece shared by many
    cells (a source LA, a BA serving POS and DP) is counted once."""
    lines = [
        "| method | trainable params per cell | trainable params, all cells | train seconds, all cells |",
        "|---|---|---|---|",
    ]
    for m in table.methods:
        params, seconds, per_cell = method_costs([r for r in table.records if label(r) == m])
        lines.append(f"| {m} | {per_cell / 1e6:.2f}M | {params / 1e6:.2f}M | {seconds:.0f} |")
    return "\n".join(lines)


def method_costs(records: list[dict[str, Any]]) -> tuple[int, float, int]:
    """(trainable parameters, training seconds) over the records' pieces, each piece once, and the
    largest per-cell trainable count."""
    shared: dict[str, list[float]] = {}
    for r in records:
        shared.update((r.get("extra") or {}).get("piece_costs", {}))
    per_cell = max(((r["trainable_params"] or 0) for r in records), default=0)
    return (
        int(sum(cost[0] for cost in shared.values())),
        float(sum(cost[1] for cost in shared.values())),
        per_cell,
    )
