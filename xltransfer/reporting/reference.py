"""Published figures beside a leaderboard (``paper.yaml``) and a report section comparing ours to them.

``leaderboards/<name>/paper.yaml`` holds the figures a paper prints, each tied to what this grid
runs::

    source: "Author et al. (2022): Title. Venue."
    groups: {seen: [ar, tr], unseen: [mt, ug]}    # optional: the paper's own language groups
    entries:
      - {table: Table 6, method: mad-x:no-inv, task: pos, language: tr, metric: accuracy, value: 73.2}
      - {table: Table 1, method: hyper-adapters:base, task: mt, group: high, direction: en-x, metric: bleu,
         value: 22.2}

An entry names one figure: ``table`` (and ``page`` where known), ``method`` (a label of the grid,
``name`` or ``name:variant``), ``task`` (pos, dp, ner, nli, mt), ``metric`` (accuracy, f1, uas, las,
bleu, chrf), ``value`` (on the paper's scale: percentages for accuracy, F1, UAS and LAS), ``setting``
(zero-shot, the default; few-shot with ``shots``; mixed) and what it is about, one of:

- ``language``: a target language (normalised as the grid's codes are); for MT one direction
  ``en>de`` as the harness names directions;
- ``group``: an average over a group of targets — ``all`` (every target of the task in the grid),
  a group of the file's ``groups:`` or of the grid's ``groups:``; for MT with ``direction: en-x``
  (English into each member) or ``x-en`` (each member into English);
- ``probe``: ``org``, ``sim`` or ``dist`` of the relatedness probe (Baziotis et al. 2022, Table 3;
  the grid's ``mt.probe``), averaged over the probe's source languages, with ``direction: x-en``.

``baseline: <label>`` makes the value a difference, ``method`` minus ``baseline`` (papers that
print gains rather than scores). ``note`` is shown under the table.

Every mistake is a :class:`~xltransfer.errors.DataFormatError` naming the file, the YAML line and
the field (``entries[3].metric``): the CLI turns it into one line and exit code 2.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from xltransfer import languages
from xltransfer.cell import SETTINGS
from xltransfer.data.parallel import direction_unit, parse_direction
from xltransfer.errors import DataFormatError
from xltransfer.reporting.markdown import label, metric_scale

PAPER_FILE = "paper.yaml"
GRID_FILE = "grid.yaml"
TASKS = ("pos", "dp", "ner", "nli", "mt")
METRICS = ("accuracy", "f1", "uas", "las", "bleu", "chrf")
PROBES = {"org": "original", "sim": "similar", "dist": "distant"}  # paper.yaml name -> record key
ALL = "all"
TOP_FIELDS = ("source", "groups", "entries")
ENTRY_FIELDS = (
    "table",
    "page",
    "method",
    "task",
    "language",
    "group",
    "direction",
    "probe",
    "metric",
    "value",
    "setting",
    "shots",
    "baseline",
    "note",
)
_DIRECTION = re.compile(r"^(?:(?P<hub_out>[a-z]{2,3})-x|x-(?P<hub_in>[a-z]{2,3}))$")


@dataclass(frozen=True)
class PaperEntry:
    """One published figure and what of ours it compares with."""

    table: str
    method: str  # a label of the grid: name, or name:variant
    task: str
    metric: str
    value: float  # on the paper's scale
    setting: str = "zero-shot"
    shots: int | None = None  # few-shot only
    language: str | None = None  # a target; for MT a direction "en>de"
    group: str | None = None  # "all", or a group of the file's or the grid's ``groups:``
    direction: str | None = None  # MT groups and probes: "en-x" or "x-en"
    probe: str | None = None  # org | sim | dist
    baseline: str | None = None  # the value is method minus baseline
    page: int | None = None
    note: str | None = None
    decimals: int = 1  # as the paper prints the value
    field: str = ""  # entries[i]
    line: int | None = None


@dataclass(frozen=True)
class GridInfo:
    """What the reference needs of the grid beside it, read from its YAML (``grid.py`` validates it)."""

    methods: tuple[str, ...] = ()  # labels, in the grid's order
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    targets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per task
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    directions: tuple[str, ...] = ()  # MT: "en>de", ...
    probe_sources: tuple[str, ...] = ()  # mt.probe's source languages


@dataclass(frozen=True)
class Reference:
    path: Path  # the paper.yaml
    source: str  # the full citation
    entries: tuple[PaperEntry, ...]
    groups: dict[str, tuple[str, ...]]  # the file's groups, then the grid's (the file's win)
    grid: GridInfo | None = None  # None: no readable grid.yaml beside it

    def members(self, task: str, group: str) -> tuple[str, ...] | None:
        """The languages a group averages over; None for ``all`` without a grid (then: whatever
        targets the records have)."""
        if group != ALL:
            return self.groups[group]
        if self.grid is None or task not in self.grid.targets:
            return None
        return self.grid.targets[task]


def load_reference(grid_folder: Path | str) -> Reference | None:
    """The published figures of a grid, validated; None when it has none. A leaderboard folder
    reads its ``paper.yaml`` against its ``grid.yaml``; a grid file ``grid<name>.yaml`` reads
    ``paper<name>.yaml`` beside it (``grid-big.yaml`` -> ``paper-big.yaml``: one folder, two set-ups
    of one paper); any other grid file, the folder's ``paper.yaml``."""
    path = Path(grid_folder)
    grid = path / GRID_FILE if path.is_dir() else path
    stem, suffix = Path(GRID_FILE).stem, Path(GRID_FILE).suffix
    if grid.name.startswith(stem) and grid.name.endswith(suffix):
        paper = grid.with_name(Path(PAPER_FILE).stem + grid.name[len(stem) :])
    else:
        paper, grid = grid.parent / PAPER_FILE, grid.parent / GRID_FILE
    if not paper.is_file():
        return None
    return parse_reference(paper.read_text(encoding="utf-8"), paper, _grid_info(grid))


def parse_reference(text: str, path: Path | str, grid: GridInfo | None = None) -> Reference:
    """A paper.yaml's text, checked against the grid's methods, tasks, languages and groups."""
    path = Path(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DataFormatError(path, line, f"not valid YAML ({getattr(err, 'problem', None) or err})") from err
    return _Parser(path, root, grid).parse(raw)


def paper_scale(metric: str) -> float:
    """Our stored value times this is on papers' scale: accuracy, F1, UAS and LAS are stored as
    fractions and printed as percentages; BLEU and chrF are 0-100 in both."""
    return metric_scale(metric)


class _Parser:
    def __init__(self, path: Path, root: yaml.Node | None, grid: GridInfo | None):
        self.path = path
        self.root = root
        self.grid = grid

    def fail(self, where: tuple[str | int, ...], message: str) -> NoReturn:
        raise DataFormatError(self.path, self.line(where), f"{_dotted(where)}: {message}")

    def line(self, where: tuple[str | int, ...]) -> int | None:
        """The 1-based line of the node at ``where`` (or of the deepest part of it that exists)."""
        node = self.root
        if node is None:
            return None
        for part in where:
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                child = node.value[part]
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def scalar_text(self, where: tuple[str | int, ...]) -> str:
        node = self.root
        try:
            for part in where:
                if isinstance(node, yaml.MappingNode):
                    node = next(v for k, v in node.value if getattr(k, "value", None) == part)
                else:
                    node = node.value[part]
        except (StopIteration, IndexError, TypeError, AttributeError):  # e.g. a value from a merge key
            return ""
        return node.value if isinstance(node, yaml.ScalarNode) else ""

    def parse(self, raw: Any) -> Reference:
        if not isinstance(raw, dict):
            self.fail(("(top level)",), "a paper.yaml is a mapping with 'source' and 'entries'")
        unknown = sorted(str(k) for k in raw if k not in TOP_FIELDS)
        if unknown:
            self.fail((unknown[0],), f"unknown field (known: {', '.join(TOP_FIELDS)})")
        source = raw.get("source")
        if not isinstance(source, str) or not source.strip():
            self.fail(("source",), "is required: the paper's full citation")
        groups = self.groups(raw.get("groups"))
        if self.grid is not None:
            groups = {**groups, **{k: v for k, v in self.grid.groups.items() if k not in groups}}
        entries = raw.get("entries")
        if entries is None:
            self.fail(("entries",), "is required: a list of published figures (may be empty: [])")
        if not isinstance(entries, list):
            self.fail(("entries",), f"must be a list of mappings, got {type(entries).__name__}")
        parsed = [self.entry(i, spec, groups) for i, spec in enumerate(entries)]
        seen: dict[tuple, str] = {}
        for i, entry in enumerate(parsed):
            key = _identity(entry)
            if key in seen:
                self.fail(("entries", i), f"the same figure as {seen[key]}")
            seen[key] = entry.field
        return Reference(self.path, source.strip(), tuple(parsed), groups, self.grid)

    def groups(self, raw: Any) -> dict[str, tuple[str, ...]]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.fail(("groups",), "must be a mapping group name -> list of languages")
        groups: dict[str, tuple[str, ...]] = {}
        evaluated = self.evaluated()
        for name, codes in raw.items():
            where = ("groups", name)
            if not isinstance(name, str) or name == ALL:
                self.fail(where, f"a group name must be a string other than '{ALL}' (built in: every target)")
            if not isinstance(codes, list) or not codes:
                self.fail(where, "must be a non-empty list of language codes")
            members = []
            for i, code in enumerate(codes):
                language = self.language(code, (*where, i))
                if evaluated is not None and language not in evaluated:
                    self.fail((*where, i), f"'{language}' is not a target language of the grid")
                members.append(language)
            groups[name] = tuple(members)
        return groups

    def evaluated(self) -> set[str] | None:
        if self.grid is None:
            return None
        found = {code for codes in self.grid.targets.values() for code in codes}
        return found | {code for unit in self.grid.directions for code in parse_direction(unit)}

    def language(self, code: Any, where: tuple[str | int, ...]) -> str:
        if not isinstance(code, str):
            self.fail(where, f"must be a language code, got {type(code).__name__} {code!r}")
        try:
            return languages.normalise(code)
        except ValueError as err:
            problem = str(err)
        self.fail(where, problem)

    def entry(self, i: int, spec: Any, groups: dict[str, tuple[str, ...]]) -> PaperEntry:
        at = ("entries", i)
        if not isinstance(spec, dict):
            self.fail(
                at, f"must be a mapping (table, method, task, language, metric, value, ...), got {spec!r}"
            )
        unknown = sorted(str(k) for k in spec if k not in ENTRY_FIELDS)
        if unknown:
            self.fail((*at, unknown[0]), f"unknown field (known: {', '.join(ENTRY_FIELDS)})")
        for name in ("table", "method", "task", "metric", "value"):
            if spec.get(name) is None:
                self.fail((*at, name), "is required")
        table = self.text(spec, at, "table")
        method = self.method(spec, at, "method")
        baseline = self.method(spec, at, "baseline") if spec.get("baseline") is not None else None
        if baseline == method:
            self.fail((*at, "baseline"), "must differ from the method")
        task = self.choice(spec, at, "task", TASKS)
        if self.grid is not None and task not in self.grid.tasks:
            self.fail((*at, "task"), f"'{task}' is not a task of the grid ({', '.join(self.grid.tasks)})")
        metric = self.choice(spec, at, "metric", METRICS)
        value = spec["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail((*at, "value"), f"must be a number as the paper prints it, got {value!r}")
        printed = re.search(r"\.(\d+)", self.scalar_text((*at, "value")))
        decimals = len(printed[1]) if printed else 0
        setting = self.choice(spec, at, "setting", SETTINGS, default="zero-shot")
        shots = spec.get("shots")
        if setting == "few-shot":
            if isinstance(shots, bool) or not isinstance(shots, int) or shots <= 0:
                self.fail(
                    (*at, "shots"), f"the few-shot setting needs a positive number of shots, got {shots!r}"
                )
        elif shots is not None:
            self.fail((*at, "shots"), f"only for the few-shot setting, not {setting}")
        page = spec.get("page")
        if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page <= 0):
            self.fail((*at, "page"), f"must be a page number, got {page!r}")
        note = self.text(spec, at, "note") if spec.get("note") is not None else None
        about = [name for name in ("language", "group", "probe") if spec.get(name) is not None]
        if len(about) != 1:
            self.fail(
                (*at, about[1] if len(about) > 1 else "language"),
                "give exactly one of language, group (with direction for mt) or probe (mt)",
            )
        language = group = direction = probe = None
        if about[0] == "language":
            if spec.get("direction") is not None:
                self.fail(
                    (*at, "direction"), "only for a group or a probe (a language entry names its direction)"
                )
            language = self.target(spec["language"], task, (*at, "language"))
        else:
            if about[0] == "group":
                group = spec["group"]
                known = [ALL, *groups]
                if group not in known:
                    self.fail((*at, "group"), f"unknown group {group!r} (known: {', '.join(known)})")
            else:
                probe = self.choice(spec, at, "probe", tuple(PROBES))
                if task != "mt":
                    self.fail((*at, "probe"), "the relatedness probe is a task mt figure")
            direction = self.direction(spec.get("direction"), task, (*at, "direction"))
        return PaperEntry(
            table=table,
            method=method,
            task=task,
            metric=metric,
            value=float(value),
            setting=setting,
            shots=shots,
            language=language,
            group=group,
            direction=direction,
            probe=probe,
            baseline=baseline,
            page=page,
            note=note,
            decimals=decimals,
            field=_dotted(at),
            line=self.line(at),
        )

    def text(self, spec: dict, at: tuple, name: str) -> str:
        value = spec[name]
        if not isinstance(value, str) or not value.strip():
            self.fail((*at, name), f"must be a non-empty string, got {value!r}")
        return value.strip()

    def choice(
        self, spec: dict, at: tuple, name: str, known: Iterable[str], default: str | None = None
    ) -> str:
        value = spec.get(name, default)
        if value not in known:
            self.fail((*at, name), f"unknown {name} {value!r} (known: {', '.join(known)})")
        return value

    def method(self, spec: dict, at: tuple, name: str) -> str:
        label = self.text(spec, at, name)
        if self.grid is not None and label not in self.grid.methods:
            self.fail(
                (*at, name), f"'{label}' is not a method of the grid (labels: {', '.join(self.grid.methods)})"
            )
        return label

    def target(self, raw: Any, task: str, where: tuple) -> str:
        if task != "mt":
            language = self.language(raw, where)
            targets = self.grid.targets.get(task, ()) if self.grid is not None else None
            if targets is not None and language not in targets:
                self.fail(where, f"'{language}' is not a {task} target of the grid ({', '.join(targets)})")
            return language
        try:
            source, target = parse_direction(raw) if isinstance(raw, str) else parse_direction("")
        except ValueError:
            self.fail(where, f"an mt figure names a direction SRC>TGT (e.g. en>de), got {raw!r}")
        unit = direction_unit(self.language(source, where), self.language(target, where))
        if self.grid is not None and unit not in self.grid.directions:
            self.fail(where, f"'{unit}' is not a direction of the grid")
        return unit

    def direction(self, raw: Any, task: str, where: tuple) -> str | None:
        if task != "mt":
            if raw is not None:
                self.fail(where, "only for task mt (en-x / x-en)")
            return None
        found = _DIRECTION.match(raw) if isinstance(raw, str) else None
        if found is None:
            self.fail(where, f"an mt group or probe needs a direction en-x or x-en, got {raw!r}")
        hub = self.language(found["hub_out"] or found["hub_in"], where)
        if self.grid is not None and hub not in self.grid.sources:
            self.fail(where, f"'{hub}' is not a source language of the grid ({', '.join(self.grid.sources)})")
        return f"{hub}-x" if found["hub_out"] else f"x-{hub}"


def _identity(entry: PaperEntry) -> tuple:
    return (
        entry.table,
        entry.method,
        entry.task,
        entry.metric,
        entry.setting,
        entry.shots,
        entry.language,
        entry.group,
        entry.direction,
        entry.probe,
        entry.baseline,
    )


def _dotted(where: tuple[str | int, ...]) -> str:
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _grid_info(path: Path) -> GridInfo | None:
    """The grid's labels, tasks, languages and groups from its YAML; None when there is no readable
    grid (grid.py reports what is wrong with one)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(raw, dict):
        return None

    def codes(value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        return tuple(_normalised(str(code)) for code in items)

    labels: list[str] = []
    for entry in raw.get("methods") or []:
        spec = {"name": entry} if isinstance(entry, str) else entry if isinstance(entry, dict) else {}
        variants = spec.get("variants", ["default"])
        for variant in [variants] if isinstance(variants, str) else variants:
            if isinstance(spec.get("name"), str):
                labels.append(spec["name"] if variant == "default" else f"{spec['name']}:{variant}")
    listed = raw.get("tasks")
    tasks = tuple(
        str(t) for t in ([listed] if isinstance(listed, str) else listed if isinstance(listed, list) else [])
    )
    langs = raw.get("languages") if isinstance(raw.get("languages"), dict) else {}
    sources = codes(langs.get("source"))
    target = langs.get("target")
    if isinstance(target, dict):
        targets = {str(task): codes(value) for task, value in target.items()}
    else:
        targets = dict.fromkeys(tasks, codes(target))
    mt = raw.get("mt") if isinstance(raw.get("mt"), dict) else {}
    directions: tuple[str, ...] = ()
    if "mt" in tasks:
        pairs = [(s, t) for s in sources for t in targets.get("mt", ()) if s != t]
        if mt.get("both_ways", True):
            pairs += [(t, s) for s, t in pairs]
        directions = tuple(dict.fromkeys(direction_unit(s, t) for s, t in pairs))
    probe = mt.get("probe") if isinstance(mt.get("probe"), dict) else {}
    groups = raw.get("groups") if isinstance(raw.get("groups"), dict) else {}
    return GridInfo(
        methods=tuple(labels),
        tasks=tasks,
        sources=sources,
        targets=targets,
        groups={str(name): codes(members) for name, members in groups.items()},
        directions=directions,
        probe_sources=tuple(_normalised(str(code)) for code in probe),
    )


def _normalised(code: str) -> str:
    try:
        return languages.normalise(code)
    except ValueError:
        return code


# --- the report section ---------------------------------------------------------------------------


def reference_markdown(
    reference: Reference | None,
    records: list[dict[str, Any]],
    scale: Mapping[str, float] | Callable[[str], float] | None = None,
) -> str:
    """A "Published vs ours" section: per (table, task, setting, metric) a table with a row per
    language (direction, group, probe figure) and a column per method, each cell ``paper / ours /
    Δ``. Ours is the mean over seeds of our ok test records on the paper's scale: ``scale`` maps a
    metric to the factor from our stored value (a mapping or a function; by default
    :func:`paper_scale`: ×100 for accuracy, F1, UAS, LAS). "–" where we have no result yet."""
    if reference is None:
        return ""
    factor = _factor(scale)
    ours = _Ours(reference, records)
    lines = [
        "## Published vs ours",
        "",
        f"Source: {reference.source}",
        "",
        "Each cell: the paper's figure / ours / Δ (ours − paper), on the paper's scale. Ours is the mean "
        "over seeds of our test results; a group row averages our per-language (for MT per-direction) "
        "means over the group's members and shows `(k/n)` while only k of its n members have results. "
        "A column `method − baseline` holds differences (gains over the baseline), as the paper gives them. "
        '"–": no result of ours yet.',
    ]
    if not reference.entries:
        lines += ["", "The paper file lists no figures."]
    sections: dict[tuple, list[PaperEntry]] = defaultdict(list)
    for entry in reference.entries:
        key = (entry.table, entry.task, entry.setting, entry.shots or 0, entry.metric)
        sections[key].append(entry)
    for key in sorted(sections, key=lambda k: (_natural(k[0]), k[1], SETTINGS.index(k[2]), *k[3:])):
        lines += ["", *_section(reference, sections[key], ours, factor(key[4]))]
    return "\n".join(lines).rstrip() + "\n"


def _factor(scale: Mapping[str, float] | Callable[[str], float] | None) -> Callable[[str], float]:
    if scale is None:
        return paper_scale
    if callable(scale):
        return scale
    return lambda metric: float(scale[metric]) if metric in scale else paper_scale(metric)


def _natural(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _section(reference: Reference, entries: list[PaperEntry], ours: _Ours, factor: float) -> list[str]:
    first = entries[0]
    pages = sorted({e.page for e in entries if e.page is not None})
    where = f", p. {pages[0]}" if len(pages) == 1 else f", pp. {', '.join(map(str, pages))}" if pages else ""
    setting = first.setting + (f" ({first.shots} shots)" if first.shots else "")
    lines = [f"### {first.table}{where} · {first.task} · {setting} · {first.metric}", ""]
    order = {label: i for i, label in enumerate(reference.grid.methods if reference.grid else ())}
    columns = sorted(
        {(e.method, e.baseline or "") for e in entries},
        key=lambda c: (order.get(c[0], len(order)), c[0], order.get(c[1], -1), c[1]),
    )
    titles = [f"{method} − {baseline}" if baseline else method for method, baseline in columns]
    group_order = {name: i for i, name in enumerate([*reference.groups, ALL])}
    rows: dict[tuple, dict[tuple[str, str], PaperEntry]] = defaultdict(dict)
    for entry in entries:
        rows[_row_key(entry, group_order)][(entry.method, entry.baseline or "")] = entry
    head = "direction" if first.task == "mt" else "language"
    lines.append(f"| {head} | " + " | ".join(titles) + " |")
    lines.append("|---|" + "---|" * len(columns))
    notes: dict[str, list[str]] = defaultdict(list)
    for key in sorted(rows):
        cells = []
        for column, title in zip(columns, titles, strict=True):
            entry = rows[key].get(column)
            cells.append(_cell(entry, ours, factor) if entry else "")
            if entry and entry.note:
                notes[entry.note].append(f"{title}, {_row_label(entry)}")
        lines.append(f"| {_row_label(next(iter(rows[key].values())))} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines += [f"- {note} ({'; '.join(where)})" for note, where in sorted(notes.items())]
    return lines


def _row_key(entry: PaperEntry, group_order: dict[str, int]) -> tuple:
    direction = entry.direction or ""
    if entry.language is not None:
        return (0, "", 0, entry.language)
    if entry.group is not None:
        return (1, direction, group_order.get(entry.group, len(group_order)), entry.group)
    return (2, direction, list(PROBES).index(entry.probe or "org"), entry.probe or "")


def _row_label(entry: PaperEntry) -> str:
    if entry.language is not None:
        return entry.language.replace(">", "→")
    side = ""
    if entry.direction:
        side = " (" + entry.direction.replace("-", "→") + ")"
    if entry.group is not None:
        return f"avg {entry.group}{side}"
    return f"probe {entry.probe}{side}"


def _cell(entry: PaperEntry, ours: _Ours, factor: float) -> str:
    digits = max(entry.decimals, 1)
    paper = f"{entry.value:.{entry.decimals}f}"
    value, found, needed = ours.value(entry, entry.method)
    if entry.baseline is not None and value is not None:
        base, base_found, base_needed = ours.value(entry, entry.baseline)
        if base is None or found < needed or base_found < base_needed:
            value = None
        else:
            value -= base
            found = needed
    if value is None:
        return f"{paper} / – / –"
    mine = f"{value * factor:.{digits}f}"
    if found < needed:
        return f"{paper} / {mine} ({found}/{needed}) / –"
    delta = round(value * factor - entry.value, digits) + 0.0  # no "-0.0"
    return f"{paper} / {mine} / {delta:+.{digits}f}"


class _Ours:
    """Our ok test records, by what a paper figure is about."""

    def __init__(self, reference: Reference, records: list[dict[str, Any]]):
        self.reference = reference
        self.values: dict[tuple, list[float]] = defaultdict(list)
        self.probes: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        self.targets: dict[str, set[str]] = defaultdict(set)
        for r in records:
            if r.get("status") != "ok" or r.get("split") != "test":
                continue
            task = r["task"]
            source = r["source_languages"][0] if task == "mt" and r.get("source_languages") else None
            shots = r.get("shots") if r["setting"] == "few-shot" else None
            key = (label(r), task, r["setting"], shots, r["metric"], source, r["target_language"])
            self.values[key].append(float(r["value"]))
            self.targets[task].add(r["target_language"])
            probe = (r.get("extra") or {}).get("relatedness_probe")
            if probe:
                self.probes[key].append(probe)

    def units(self, entry: PaperEntry) -> list[tuple[str | None, str]]:
        """The (source, target) pairs a figure averages over: one for a language."""
        if entry.language is not None:
            if entry.task == "mt":
                source, target = parse_direction(entry.language)
                return [(source, target)]
            return [(None, entry.language)]
        if entry.probe is not None:
            grid = self.reference.grid
            members = grid.probe_sources if grid and grid.probe_sources else sorted(self._probed(entry))
        else:
            members = self.reference.members(entry.task, entry.group or ALL)
            if members is None:
                members = tuple(sorted(self.targets.get(entry.task, ())))
        if entry.task != "mt":
            return [(None, language) for language in members]
        direction = entry.direction or ""
        if direction.endswith("-x"):
            hub = direction[: -len("-x")]
            return [(hub, language) for language in members if language != hub]
        hub = direction[len("x-") :]
        return [(language, hub) for language in members if language != hub]

    def _probed(self, entry: PaperEntry) -> set[str]:
        return {key[5] for key in self.probes if key[1] == entry.task and key[5] is not None}

    def value(self, entry: PaperEntry, method: str) -> tuple[float | None, int, int]:
        """(our mean, how many of the figure's languages or directions we have, how many it needs)."""
        units = self.units(entry)
        means = []
        for source, target in units:
            key = (method, entry.task, entry.setting, entry.shots, entry.metric, source, target)
            if entry.probe is not None:
                kind = PROBES[entry.probe]
                found = [
                    p[kind][entry.metric] for p in self.probes.get(key, []) if entry.metric in p.get(kind, {})
                ]
            else:
                found = self.values.get(key, [])
            if found:
                means.append(statistics.fmean(found))
        if not means:
            return None, 0, len(units)
        return statistics.fmean(means), len(means), len(units)
