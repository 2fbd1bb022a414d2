"""Grid specification: a leaderboard's ``grid.yaml``, validated up front and expanded into cells.

Every mistake a user can make in a grid (an unknown method, task, setting or language code, a
missing file, a wrong type) is reported here with the field's path, before anything trains.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xltransfer import backbone as backbones
from xltransfer import languages, registry
from xltransfer.cell import Cell
from xltransfer.data.sources import (
    DataSource,
    FilesSource,
    HubSource,
    PerLanguageSource,
    SyntheticSource,
    UdFolderSource,
)
from xltransfer.errors import GridError, UnknownNameError, XltError
from xltransfer.grid_schema import FIELDS, number_problem
from xltransfer.util import load_yaml

GRID_FILE = "grid.yaml"
# the options of ``partitions:``; its other keys name the two partitions
PARTITION_OPTIONS = ("by", "test_as_train", "shared")
TOP_LEVEL_FIELDS = set(FIELDS)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    variant: str
    overrides: dict[str, Any]
    field: str
    tasks: tuple[str, ...] = ()  # the grid's tasks this method runs (``tasks:`` of its entry; all by default)


@dataclass
class Grid:
    name: str
    path: Path  # the grid file
    description: str
    backbone: backbones.BackboneRef
    synthetic: Any  # SyntheticConfig
    sources: dict[str, DataSource]
    methods: list[MethodSpec]
    tasks: list[str]
    settings: list[str]
    source_languages: tuple[str, ...]
    target_languages: tuple[str, ...]  # every target, of any task
    seeds: list[int]
    shots: list[int]
    max_length: int = 128
    device: str = "auto"
    precision: str = "auto"  # xltransfer.precision.CHOICES; "auto": bf16 on a GPU, fp32 on a CPU
    partitions: dict[str, Any] | None = None
    # the few-shot setting's targets (``languages.few_shot``); empty: every target
    few_shot_targets: tuple[str, ...] = ()
    mt: Any = None  # MtModelOptions: the MT model every method of the grid trains
    task_targets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # when targets differ by task
    # named groups of targets, as papers average by group (MAD-G's genus groups, HIGH/MED/LOW)
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # mt.probe: source -> (similar, distant) for the relatedness probe (not part of any key)
    mt_probe: dict[str, tuple[str, str]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def source_for(self, task: str) -> DataSource:
        if task not in self.sources:
            raise GridError(
                "data", f"no data source for task '{task}' (add `data: {{{task}: ...}}`)", self.path
            )
        return self.sources[task]

    def targets_for(self, task: str) -> tuple[str, ...]:
        return self.task_targets.get(task, self.target_languages)

    def group_of(self, language: str) -> list[str]:
        """The groups (``groups:``) that list this language, in the grid's order; a language may
        be in several groups, or in none."""
        known = languages.lookup(language)
        code = known.code if known else language
        return [name for name, members in self.groups.items() if code in members]

    def evaluated_languages(self) -> tuple[str, ...]:
        """Every language some cell is tested on: each task's targets (for MT, every language of
        the grid's directions); with the mixed setting also the sources and the languages written
        into the partitions, which its partitions test too."""
        found: dict[str, None] = {}
        for task in self.tasks:
            if task == "mt":
                found.update(dict.fromkeys(code for pair in self.mt_directions() for code in pair))
            else:
                found.update(dict.fromkeys(self.targets_for(task)))
        if "mixed" in self.settings:
            found.update(dict.fromkeys(self.source_languages))
            for name, part in (self.partitions or {}).items():
                if name not in PARTITION_OPTIONS:
                    found.update(dict.fromkeys(code for codes in part.values() for code in codes))
        return tuple(found)

    def language_set(self, task: str) -> tuple[str, ...]:
        """The source languages and the task's targets: the set a multilingual adapter covers."""
        return tuple(sorted(set(self.source_languages) | set(self.targets_for(task))))

    def mt_directions(self) -> list[tuple[str, str]]:
        from xltransfer.data.parallel import grid_directions

        return grid_directions(self.source_languages, self.targets_for("mt"), self.mt.both_ways)

    def task_config(self, task: str, params=None):
        """The grid's options for a task's model (the ``mt:`` block, as a method's ``params`` adjust
        it: ``MtModelOptions.for_method``), or None."""
        if task != "mt" or self.mt is None:
            return None
        return self.mt.for_method(params)

    def length_for(self, task: str) -> int:
        """Subword tokens per example of a task: ``max_length``, except MT's ``mt.max_tokens`` (the
        paper's training filter, Baziotis et al. 2022 §4 "Data", so no training pair is cut)."""
        return self.mt.max_tokens if task == "mt" and self.mt is not None else self.max_length

    def task_options(self, task: str) -> dict[str, Any] | None:
        """The same, as a mapping: part of the keys of the task's pieces."""
        config = self.task_config(task)
        return dataclasses.asdict(config) if config is not None else None

    def cells(self) -> list[Cell]:
        from xltransfer.data.parallel import direction_unit

        mt_units = tuple(direction_unit(s, t) for s, t in self.mt_directions()) if "mt" in self.tasks else ()
        mixed = self.mixed_partitions() if "mixed" in self.settings else None
        cells = []
        for spec in self.methods:
            params = registry.methods.get(spec.name).resolve_params(spec.variant, spec.overrides)
            for setting in self.settings:
                for partition, task, sources, target, shots in self._evaluations(setting, mixed):
                    if task not in spec.tasks:
                        continue
                    for seed in self.seeds:
                        cells.append(
                            Cell(
                                method=spec.name,
                                variant=spec.variant,
                                params=params,
                                task=task,
                                setting=setting,
                                source_languages=sources,
                                target_language=target,
                                seed=seed,
                                shots=shots,
                                partition=partition,
                                language_set=self.language_set(task),
                                directions=mt_units if task == "mt" else (),
                                training_pairs=self._training_pairs(setting, partition, mixed),
                            )
                        )
        return cells

    def _training_pairs(
        self, setting: str, partition: str | None, mixed
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if setting == "mixed":
            trained = mixed.train[partition]
            return tuple((task, tuple(trained[task])) for task in sorted(trained) if task in self.tasks)
        return tuple((task, self.source_languages) for task in sorted(self.tasks) if task != "mt")

    def _evaluations(self, setting: str, mixed=None):
        """(partition, task, sources, target, shots) of one setting (``mixed``: the partitions)."""
        if setting == "mixed":
            for partition, task, target, sources in (mixed or self.mixed_partitions()).evaluations():
                if task in self.tasks and sources:
                    yield partition, task, sources, target, 0
            return
        for task in self.tasks:
            if task == "mt":  # one cell per direction, each scored on its own
                for source, target in self.mt_directions():
                    yield None, task, (source,), target, 0
                continue
            targets = self.few_shot_targets_for(task) if setting == "few-shot" else self.targets_for(task)
            for target in targets:
                for shots in self.shots if setting == "few-shot" else [0]:
                    yield None, task, self.source_languages, target, shots

    def few_shot_targets_for(self, task: str) -> tuple[str, ...]:
        """The task's targets the few-shot setting continues on (``languages.few_shot``, e.g. Hyper-X's
        five of Appendix D / Table 5), every target by default."""
        targets = self.targets_for(task)
        if not self.few_shot_targets:
            return targets
        return tuple(t for t in targets if t in self.few_shot_targets)

    def mixed_partitions(self):
        """The grid's partitions: written out, or computed from language families. The source
        languages (and ``shared:``) are trained on every task in both (Hyper-X Table 6: en^{a,b})."""
        from xltransfer.data import partitions as parts

        spec = self.partitions or {}
        test_as_train = bool(spec.get("test_as_train", False))
        shared = tuple(dict.fromkeys((*self.source_languages, *spec.get("shared", ()))))
        explicit = {k: v for k, v in spec.items() if k not in PARTITION_OPTIONS}
        if explicit:
            return parts.explicit_partitions(explicit, test_as_train, shared)
        codes = sorted(set(self.target_languages) - set(shared))
        # one URIEL lookup for all real languages (each lang2vec call reloads its feature file)
        languages.lineages([code for code in codes if not languages.is_local_use(code)])
        return parts.compute_partitions(self.tasks, codes, self.family_of, test_as_train, shared)

    def family_of(self, language: str) -> str | None:
        from xltransfer.data.synthetic import family_members

        if languages.is_local_use(language):
            return next(
                (
                    f"synthetic-{i}"
                    for i, members in enumerate(family_members(self.synthetic))
                    if language in members
                ),
                None,
            )
        return languages.family(language)

    def test_as_train(self) -> bool:
        """Whether the mixed setting's pieces may train on the test split of a language without a
        train split (``partitions: {test_as_train: true}``); no other piece ever does."""
        return bool((self.partitions or {}).get("test_as_train", False)) and "mixed" in self.settings


def grid_file(path: Path | str) -> Path:
    """A leaderboard folder or a grid file -> the grid file."""
    path = Path(path)
    if path.is_dir():
        path = path / GRID_FILE
    if not path.is_file():
        raise XltError(f"{path}: no such grid file (give a leaderboard folder or a {GRID_FILE})")
    return path


def load_grid(path: Path | str, workdir: Path) -> Grid:
    path = grid_file(path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise XltError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise XltError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from err
    if not isinstance(raw, dict):
        raise GridError("(top level)", "a grid is a mapping of fields", path)
    try:
        return _parse(raw, path, workdir)
    except GridError as err:
        if err.source is None:
            raise GridError(err.field, str(err).split(": ", 1)[-1], path) from None
        raise


def _expect(value: Any, kind: type | tuple[type, ...], field_name: str, what: str) -> Any:
    if isinstance(value, bool) and kind in (int, float):
        raise GridError(field_name, f"must be {what}, not a boolean")
    if not isinstance(value, kind):
        raise GridError(field_name, f"must be {what}, got {type(value).__name__} {value!r}")
    return value


def _str_list(value: Any, field_name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    _expect(value, list, field_name, "a list of strings")
    if not value:
        raise GridError(field_name, "must not be empty")
    return [_expect(v, str, f"{field_name}[{i}]", "a string") for i, v in enumerate(value)]


def _int_list(value: Any, field_name: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    _expect(value, list, field_name, "a list of integers")
    return [_expect(v, int, f"{field_name}[{i}]", "an integer") for i, v in enumerate(value)]


def _language(code: str, field_name: str) -> str:
    try:
        return languages.normalise(code)
    except ValueError as err:
        raise GridError(field_name, str(err)) from None


def _check_range(value: int, field_name: str, low: int, high: int | None, what: str) -> None:
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise GridError(field_name, f"{value} is not {what}: must be {bound}")


def _distinct(values: Any, field_name: str) -> Any:
    """A list given to be a set (seeds, shots, languages, tasks): a repeated value would evaluate
    the same cells twice, so it is an error naming where it repeats."""
    first: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value in first:
            also = f"{field_name}[{first[value]}]"
            raise GridError(f"{field_name}[{i}]", f"{value!r} is listed twice (also {also})")
        first[value] = i
    return values


def _device(value: Any) -> str:
    """``auto`` or a torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``); whether the
    machine has it is checked before anything trains (``RunContext.prepare``)."""
    device = _expect(value, str, "device", "'auto', 'cpu' or a torch device string like 'cuda:0'")
    if device != "auto":
        import torch

        try:
            torch.device(device)
        except (RuntimeError, ValueError):
            raise GridError(
                "device", f"unknown device {device!r} (use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps')"
            ) from None
    return device


def _check_number(value: Any, name: str, default: Any, field_name: str) -> None:
    """A number against ``grid_schema.NUMBER_RULES`` (by its name; its default always passes)."""
    problem = number_problem(value, name, default)
    if problem:
        raise GridError(field_name, f"{value!r} {problem}")


def _given(raw: dict[str, Any], name: str) -> Any:
    """A top-level field's value, or its ``FIELDS`` default."""
    return raw.get(name, FIELDS[name].default)


def _bounded(values: list[int], name: str) -> list[int]:
    """Each value of list field ``name`` within its ``FIELDS`` bounds, named ``name[i]``."""
    field = FIELDS[name]
    for i, value in enumerate(values):
        _check_range(value, f"{name}[{i}]", field.minimum, field.maximum, field.what)
    return values


def _parse(raw: dict[str, Any], path: Path, workdir: Path) -> Grid:
    unknown = sorted(set(raw) - TOP_LEVEL_FIELDS)
    if unknown:
        raise GridError(unknown[0], f"unknown field (known: {', '.join(sorted(TOP_LEVEL_FIELDS))})")
    name = _expect(raw.get("name", path.parent.name), str, "name", "a string")
    backbone_spec = _expect(_given(raw, "backbone"), str, "backbone", "a string")
    revision = raw.get("backbone_revision")
    if revision is not None:
        _expect(revision, str, "backbone_revision", "a string")
    quickstart = _options("quickstart", raw.get("quickstart", {}), _quickstart_class())
    if "quickstart" in raw and backbone_spec != backbones.QUICKSTART:
        raise GridError(
            "quickstart", "options for the quickstart backbone, but the grid's backbone is not 'quickstart'"
        )
    backbone_ref = backbones.resolve(backbone_spec, revision, base_dir=path.parent, quickstart=quickstart)

    synthetic = _synthetic_config(raw.get("synthetic", {}))
    tasks = _distinct(_str_list(raw.get("tasks"), "tasks") if "tasks" in raw else _missing("tasks"), "tasks")
    for i, task in enumerate(tasks):
        if task not in registry.tasks:
            raise GridError(f"tasks[{i}]", registry.tasks.unknown_message(task))
    settings = _distinct(_str_list(_given(raw, "settings"), "settings"), "settings")
    known_settings = FIELDS["settings"].choices or ()
    for i, setting in enumerate(settings):
        if setting not in known_settings:
            raise GridError(
                f"settings[{i}]", f"unknown setting '{setting}' (known: {', '.join(known_settings)})"
            )

    langs = _expect(raw.get("languages"), dict, "languages", "a mapping with 'source' and 'target'")
    extra = sorted(set(langs) - {"source", "target", "few_shot"})
    if extra:
        raise GridError(f"languages.{extra[0]}", "unknown field (known: source, target, few_shot)")
    sources_langs = _distinct(
        tuple(
            _language(c, f"languages.source[{i}]")
            for i, c in enumerate(_str_list(langs.get("source"), "languages.source"))
        ),
        "languages.source",
    )
    targets, task_targets = _targets(langs.get("target"), tasks)
    few_shot_targets = _few_shot_targets(langs.get("few_shot"), targets, settings)
    seeds = _bounded(_distinct(_int_list(_given(raw, "seeds"), "seeds"), "seeds"), "seeds")
    shots = _bounded(_distinct(_int_list(_given(raw, "shots"), "shots"), "shots"), "shots")
    if "few-shot" in settings and not shots:
        raise GridError("shots", "the few-shot setting needs a list of shots, e.g. [5, 10, 20, 50]")
    max_length = _expect(_given(raw, "max_length"), int, "max_length", "an integer")
    bounds = FIELDS["max_length"]
    _check_range(max_length, "max_length", bounds.minimum, bounds.maximum, bounds.what)
    device = _device(_given(raw, "device"))
    precision = _precision(_given(raw, "precision"))

    methods = _methods(raw.get("methods"), tasks, settings)
    mt = _mt_options(raw, tasks, settings)
    sources = _sources(raw.get("data", {}), path.parent, workdir, synthetic)
    needed_tasks = set(tasks) | {"mlm"}
    for task in sorted(needed_tasks):
        if task in sources and isinstance(sources[task], SyntheticSource):
            known = set(synthetic_codes(synthetic))
            for fname, codes in (("languages.source", sources_langs), ("languages.target", targets)):
                for i, code in enumerate(codes):
                    if code not in known:
                        raise GridError(
                            f"{fname}[{i}]",
                            f"'{code}' is not a language of the synthetic suite "
                            f"(it has {', '.join(sorted(known))})",
                        )
    for task in tasks:
        if task not in sources:
            raise GridError("data", f"no data source for task '{task}'")
    grid = Grid(
        name=name,
        path=path,
        description=str(raw.get("description", "")),
        backbone=backbone_ref,
        synthetic=synthetic,
        sources=sources,
        methods=methods,
        tasks=tasks,
        settings=settings,
        source_languages=sources_langs,
        target_languages=targets,
        task_targets=task_targets,
        seeds=seeds,
        shots=shots,
        max_length=max_length,
        device=device,
        precision=precision,
        partitions=_partitions(raw.get("partitions"), tasks, settings),
        few_shot_targets=few_shot_targets,
        mt=mt,
        raw=raw,
    )
    _check_partitions(grid)
    grid.groups = _groups(raw.get("groups"), grid.evaluated_languages())
    if "mt" in tasks:
        grid.mt_probe = _mt_probe(raw.get("mt", {}).get("probe"), grid.mt_directions())
    return grid


def _precision(raw: Any) -> str:
    choices = FIELDS["precision"].choices or ()
    value = _expect(raw, str, "precision", f"one of {', '.join(choices)}")
    if value not in choices:
        raise GridError(
            "precision",
            f"unknown precision '{value}' (choose {', '.join(choices)}: auto is bf16 autocast on a GPU "
            "that supports it, fp16 on one that does not, fp32 on a CPU)",
        )
    return value


def _mt_probe(raw: Any, directions: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``mt.probe: {source: {similar: L, distant: L}}``: the relatedness probe of Baziotis et al.
    2022, §6.1 — every direction out of ``source`` is also translated with the modules of a
    similar and of a distant source language instead of its own. Both must translate into the
    same targets in the grid, or they have no modules to lend."""
    if raw is None:
        return {}
    _expect(raw, dict, "mt.probe", "a mapping source language -> {similar: L, distant: L}")
    probe: dict[str, tuple[str, str]] = {}
    for key, spec in raw.items():
        where = f"mt.probe.{key}"
        source = _language(str(key), where)
        _expect(spec, dict, where, "a mapping {similar: L, distant: L}")
        if set(spec) != {"similar", "distant"}:
            raise GridError(where, "needs exactly 'similar' and 'distant'")
        pair = tuple(_language(str(spec[k]), f"{where}.{k}") for k in ("similar", "distant"))
        targets = {t for s, t in directions if s == source}
        if not targets:
            raise GridError(where, f"'{source}' is not the source of any direction of the grid")
        for kind, lang in zip(("similar", "distant"), pair, strict=True):
            missing = sorted(targets - {t for s, t in directions if s == lang})
            if lang == source or missing:
                raise GridError(
                    f"{where}.{kind}",
                    f"'{lang}' must be another source language translating into {', '.join(sorted(targets))}",
                )
        probe[source] = pair  # type: ignore[assignment]
    return probe


def _groups(raw: Any, evaluated: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``groups: {name: [languages]}``: named groups of the grid's targets (a language may be in
    several); each code normalised and checked against the languages the grid tests on."""
    if raw is None:
        return {}
    _expect(raw, dict, "groups", "a mapping group name -> list of target languages")
    groups: dict[str, tuple[str, ...]] = {}
    for name, codes in raw.items():
        where = f"groups.{name}"
        _expect(name, str, where, "a group name (a string)")
        members: list[str] = []
        for i, code in enumerate(_str_list(codes, where)):
            language = _language(code, f"{where}[{i}]")
            if language not in evaluated:
                raise GridError(
                    f"{where}[{i}]",
                    f"'{code}' is not a target language of the grid (targets: {', '.join(evaluated)})",
                )
            if language in members:
                raise GridError(f"{where}[{i}]", f"'{code}' is already in group '{name}'")
            members.append(language)
        groups[name] = tuple(members)
    return groups


def _targets(raw: Any, tasks: list[str]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``target: [..]`` for every task, or ``target: {task: [..], ...}`` naming each task's targets.
    Returns every target (in first-seen order) and the per-task lists."""
    if not isinstance(raw, dict):
        codes = _str_list(raw, "languages.target")
        every = tuple(_language(c, f"languages.target[{i}]") for i, c in enumerate(codes))
        return _distinct(every, "languages.target"), {}
    per_task: dict[str, tuple[str, ...]] = {}
    for task, codes in raw.items():
        where = f"languages.target.{task}"
        if task not in tasks:
            raise GridError(where, f"'{task}' is not one of the grid's tasks ({', '.join(tasks)})")
        per_task[task] = _distinct(
            tuple(_language(c, f"{where}[{i}]") for i, c in enumerate(_str_list(codes, where))), where
        )
    missing = [task for task in tasks if task not in per_task]
    if missing:
        raise GridError("languages.target", f"no targets for task '{missing[0]}'")
    every = tuple(dict.fromkeys(code for codes in per_task.values() for code in codes))
    return every, per_task


def _few_shot_targets(raw: Any, targets: tuple[str, ...], settings: list[str]) -> tuple[str, ...]:
    """``languages.few_shot: [..]``: the targets the few-shot setting continues on (Hyper-X App. D
    fine-tunes on five of its targets), each a target of the grid; absent: every target."""
    if raw is None:
        return ()
    if "few-shot" not in settings:
        raise GridError("languages.few_shot", "few-shot targets, but the grid's settings have no 'few-shot'")
    codes = []
    for i, code in enumerate(_str_list(raw, "languages.few_shot")):
        language = _language(code, f"languages.few_shot[{i}]")
        if language not in targets:
            raise GridError(
                f"languages.few_shot[{i}]",
                f"'{code}' is not a target language of the grid (targets: {', '.join(targets)})",
            )
        codes.append(language)
    return tuple(dict.fromkeys(codes))


def _mt_options(raw: dict[str, Any], tasks: list[str], settings: list[str]):
    from xltransfer.modules.seq2seq import MtModelOptions

    if "mt" in raw and "mt" not in tasks:
        raise GridError("mt", "options for the mt task, but the grid's tasks do not include mt")
    if "mt" in tasks:
        other = [s for s in settings if s != "zero-shot"]
        if other:
            raise GridError(
                f"settings[{settings.index(other[0])}]",
                f"task mt trains on every direction of the grid and is evaluated per direction: "
                f"use the zero-shot setting only, not '{other[0]}' (or put mt in a grid of its own)",
            )
    options = {k: v for k, v in _expect(raw.get("mt", {}), dict, "mt", "a mapping").items() if k != "probe"}
    return _options("mt", options, MtModelOptions)


def _partitions(raw: Any, tasks: list[str], settings: list[str]) -> dict[str, Any] | None:
    """``partitions: family`` (computed), ``{by: family, test_as_train: true}``, or two explicit
    partitions ``{A: {task: [languages]}, B: {...}}``. The grid's source languages are trained on
    every task in both partitions; ``shared: [..]`` names more languages trained so (the sources
    may be listed there too), and no partition may list a shared language."""
    if raw is None:
        return {"by": "family"} if "mixed" in settings else None
    if "mixed" not in settings:
        raise GridError("partitions", "partitions are only used by the 'mixed' setting")
    if raw == "family":
        return {"by": "family"}
    _expect(raw, dict, "partitions", "'family' or a mapping")
    spec = copy.deepcopy(raw)
    if "test_as_train" in spec:
        _expect(spec["test_as_train"], bool, "partitions.test_as_train", "true or false")
    if spec.get("by", "family") != "family":
        raise GridError("partitions.by", "partitions are computed 'by: family' (or written out)")
    if "shared" in spec:
        spec["shared"] = [
            _language(c, f"partitions.shared[{i}]")
            for i, c in enumerate(_str_list(spec["shared"], "partitions.shared"))
        ]
    explicit = {k: v for k, v in spec.items() if k not in PARTITION_OPTIONS}
    if explicit and "by" in spec:
        raise GridError("partitions.by", "partitions are computed 'by: family' or written out, not both")
    for name, part in explicit.items():
        _expect(part, dict, f"partitions.{name}", "a mapping task -> languages")
        for task, langs in part.items():
            if task not in tasks:
                raise GridError(f"partitions.{name}.{task}", f"task '{task}' is not in the grid's tasks")
            spec[name][task] = [
                _language(c, f"partitions.{name}.{task}[{i}]")
                for i, c in enumerate(_str_list(langs, f"partitions.{name}.{task}"))
            ]
    return spec


def _check_partitions(grid: Grid) -> None:
    """Explicit partitions against the grid's sources: two of them, each pair in one, no shared
    language (a source included) listed in either; the error names the entry."""
    from xltransfer.data.partitions import PartitionError

    if not any(name not in PARTITION_OPTIONS for name in grid.partitions or {}):
        return  # computed from families (it needs URIEL: done when the cells are)
    try:
        grid.mixed_partitions()
    except PartitionError as error:
        raise GridError(f"partitions.{error.where}" if error.where else "partitions", str(error)) from None


def _missing(field_name: str):
    raise GridError(field_name, "is required")


def synthetic_codes(config) -> list[str]:
    from xltransfer.data.synthetic import language_codes

    return language_codes(config)


def _quickstart_class():
    from xltransfer.pretrain import QuickstartConfig

    return QuickstartConfig


def _synthetic_config(raw: Any):
    from xltransfer.data.synthetic import SyntheticConfig

    return _options("synthetic", raw, SyntheticConfig)


def _options(where: str, raw: Any, config_class: type):
    """A frozen options dataclass from a grid mapping, each value type-checked against its default."""
    _expect(raw, dict, where, "a mapping of options")
    known = {f.name: f for f in dataclasses.fields(config_class)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise GridError(f"{where}.{key}", f"unknown option (known: {', '.join(known)})")
        default = known[key].default
        if isinstance(default, tuple):
            value = tuple(_int_list(value, f"{where}.{key}"))
        elif isinstance(default, float):
            value = float(_expect(value, (int, float), f"{where}.{key}", "a number"))
        else:
            _expect(value, type(default), f"{where}.{key}", type(default).__name__)
        _check_number(value, key, default, f"{where}.{key}")
        values[key] = value
    try:
        return config_class(**values)
    except ValueError as error:
        raise GridError(where, str(error)) from None


def _methods(raw: Any, tasks: list[str], settings: list[str]) -> list[MethodSpec]:
    _expect(raw, list, "methods", "a list of method names or {name, variants, params} mappings")
    specs = []
    for i, entry in enumerate(raw):
        where = f"methods[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        _expect(entry, dict, where, "a method name or a mapping")
        extra = sorted(set(entry) - {"name", "variants", "params", "tasks"})
        if extra:
            raise GridError(f"{where}.{extra[0]}", "unknown field (known: name, variants, params, tasks)")
        name = _expect(entry.get("name"), str, f"{where}.name", "a method name")
        try:
            method_cls = registry.methods.get(name)
        except UnknownNameError as err:
            raise GridError(f"{where}.name", str(err)) from None
        # a method runs the grid's tasks it supports, or those its entry names
        supported = ", ".join(sorted(method_cls.supported_tasks))
        if "tasks" in entry:
            method_tasks = _str_list(entry["tasks"], f"{where}.tasks")
            for j, task in enumerate(method_tasks):
                if task not in tasks:
                    raise GridError(
                        f"{where}.tasks[{j}]", f"'{task}' is not a task of the grid ({', '.join(tasks)})"
                    )
                if task not in method_cls.supported_tasks:
                    raise GridError(
                        f"{where}.tasks[{j}]",
                        f"{name} does not support task '{task}'; it supports {supported}",
                    )
        else:
            method_tasks = [task for task in tasks if task in method_cls.supported_tasks]
            if not method_tasks:
                raise GridError(
                    f"{where}.name",
                    f"{name} supports none of the grid's tasks ({', '.join(tasks)}); it supports {supported}",
                )
        for j, setting in enumerate(settings):
            if setting not in method_cls.supported_settings:
                raise GridError(
                    f"{where}.name", f"{name} does not support setting '{setting}' (settings[{j}])"
                )
        overrides = _expect(entry.get("params", {}), dict, f"{where}.params", "a mapping")
        for key, value in overrides.items():
            if key not in method_cls.defaults:
                raise GridError(
                    f"{where}.params.{key}",
                    f"unknown parameter of {name} (known: {', '.join(sorted(method_cls.defaults))})",
                )
            default = method_cls.defaults[key]
            kind = (int, float) if isinstance(default, float) else type(default)
            if default is not None:
                _expect(
                    value,
                    kind,
                    f"{where}.params.{key}",
                    f"{type(default).__name__} like the default {default!r}",
                )
            _check_number(value, key, default, f"{where}.params.{key}")
        variants = _str_list(entry.get("variants", ["default"]), f"{where}.variants")
        for variant in _distinct(variants, f"{where}.variants"):
            if variant not in method_cls.variants:
                raise GridError(
                    f"{where}.variants",
                    f"unknown variant '{variant}' of {name} (known: {', '.join(method_cls.variants)})",
                )
            try:  # a method may check its parameters (e.g. BAD-X's ratio)
                method_cls.resolve_params(variant, dict(overrides))
            except ValueError as error:
                raise GridError(f"{where}.params", str(error)) from None
            specs.append(MethodSpec(name, variant, dict(overrides), where, tuple(method_tasks)))
    if not specs:
        raise GridError("methods", "must not be empty")
    return specs


def _sources(raw: Any, base: Path, workdir: Path, synthetic) -> dict[str, DataSource]:
    _expect(raw, dict, "data", "a mapping of task name -> data source")
    sources: dict[str, DataSource] = {}
    for task, spec in raw.items():
        where = f"data.{task}"
        if task not in registry.tasks:
            raise GridError(where, registry.tasks.unknown_message(task))
        sources[task] = _source(task, spec, where, base, workdir, synthetic)
    return sources


def _source(
    task: str, spec: Any, where: str, base: Path, workdir: Path, synthetic, max_sentences: int | None = None
) -> DataSource:
    """One task's data source; ``type: per-language`` combines others (``languages``, ``default``).
    ``max_sentences`` (any source but the synthetic suite; a per-language source's applies to those
    of its sources that set none) keeps the first N examples of each split."""
    if spec == "synthetic":
        return SyntheticSource(synthetic, workdir / "cache", field=where)
    _expect(spec, dict, where, "'synthetic' or a mapping with a 'type' (ud, files, hub, per-language)")
    kind = spec.get("type")
    if "max_sentences" in spec:
        max_sentences = _expect(spec["max_sentences"], int, f"{where}.max_sentences", "a positive integer")
        if max_sentences < 1:
            raise GridError(f"{where}.max_sentences", f"must be a positive integer, not {max_sentences!r}")
    if kind == "per-language":
        extra = sorted(set(spec) - {"type", "languages", "default", "max_sentences"})
        if extra:
            raise GridError(
                f"{where}.{extra[0]}", "unknown field (known: type, languages, default, max_sentences)"
            )
        by_language = _expect(
            spec.get("languages", {}), dict, f"{where}.languages", "a mapping language -> source"
        )
        return PerLanguageSource(
            {
                _language(lang, f"{where}.languages.{lang}"): _source(
                    task, sub, f"{where}.languages.{lang}", base, workdir, synthetic, max_sentences
                )
                for lang, sub in by_language.items()
            },
            _source(task, spec["default"], f"{where}.default", base, workdir, synthetic, max_sentences)
            if "default" in spec
            else None,
            field=where,
        )
    if kind == "ud":
        root = _existing_dir(spec.get("root"), base, f"{where}.root")
        treebanks = _expect(
            spec.get("treebanks", {}), dict, f"{where}.treebanks", "a mapping language -> folder"
        )
        treebanks = {_language(k, f"{where}.treebanks.{k}"): str(v) for k, v in treebanks.items()}
        return UdFolderSource(root, treebanks, field=where, max_sentences=max_sentences)
    if kind == "files":
        files = _expect(spec.get("files"), dict, f"{where}.files", "a mapping language -> {split: path}")
        resolved: dict[str, dict[str, Path]] = {}
        for lang, splits in files.items():
            code = _files_key(task, lang, f"{where}.files.{lang}")
            _expect(splits, dict, f"{where}.files.{lang}", "a mapping split -> path")
            resolved[code] = {
                split: _existing_file(file, base, f"{where}.files.{lang}.{split}")
                for split, file in splits.items()
            }
        return FilesSource(resolved, field=where, max_sentences=max_sentences)
    if kind == "hub":
        dataset = _expect(spec.get("dataset"), str, f"{where}.dataset", "a hub dataset id")
        return HubSource(
            dataset,
            spec.get("config"),
            spec.get("revision"),
            dict(spec.get("splits", {})),
            field=where,
            max_sentences=max_sentences,
        )
    raise GridError(
        f"{where}.type",
        f"unknown data source type {kind!r} (known: ud, files, hub, per-language, or 'synthetic')",
    )


def _files_key(task: str, key: str, field_name: str) -> str:
    """A language code; for MT also a direction "SRC-TGT" (a TSV of pairs)."""
    if task == "mt" and isinstance(key, str) and key.count("-") == 1:
        source, target = key.split("-")
        return f"{_language(source, field_name)}-{_language(target, field_name)}"
    return _language(key, field_name)


def _resolve_path(value: Any, base: Path, field_name: str) -> Path:
    _expect(value, str, field_name, "a path")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _existing_dir(value: Any, base: Path, field_name: str) -> Path:
    path = _resolve_path(value, base, field_name)
    if not path.is_dir():
        raise GridError(field_name, f"folder {path} does not exist")
    return path.resolve()


def _existing_file(value: Any, base: Path, field_name: str) -> Path:
    path = _resolve_path(value, base, field_name)
    if not path.is_file():
        raise GridError(field_name, f"file {path} does not exist")
    return path.resolve()
