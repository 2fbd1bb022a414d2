"""Grid specification: a leaderboard's ``grid.yaml``, validated up front and expanded into cells.

Every mistake a user can make in a grid (an unknown method, task, setting or language code, a
missing file, a wrong type) is reported here with the field's path, before anything trains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xltransfer import backbone as backbones
from xltransfer import grid_spec, languages, registry
from xltransfer.cell import Cell
from xltransfer.data.sources import (
    DataSource,
    FilesSource,
    HubSource,
    PerLanguageSource,
    SyntheticSource,
    UdFolderSource,
)
from xltransfer.errors import GridError, XltError
from xltransfer.grid_spec import PARTITION_OPTIONS, GridSpec, PartitionSpec
from xltransfer.options import MtModelOptions, SyntheticConfig, family_members, language_codes
from xltransfer.util import read_yaml

GRID_FILE = "grid.yaml"


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
    synthetic: SyntheticConfig
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
    mt: MtModelOptions | None = None  # the MT model every method of the grid trains
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
    """The grid file, validated against its declaration (``grid_spec``), as a :class:`Grid`."""
    path = grid_file(path)
    raw = read_yaml(path)
    spec = grid_spec.validate(raw, path, base=path.parent)
    try:
        return _build(spec, raw, path, workdir)
    except GridError as err:
        if err.source is None:
            raise GridError(err.field, str(err).split(": ", 1)[-1], path) from None
        raise


def _build(spec: GridSpec, raw: dict[str, Any], path: Path, workdir: Path) -> Grid:
    """A validated declaration -> the grid: the backbone resolved, the data sources built, and
    what needs the languages of the whole grid checked (partitions, groups, the MT probe)."""
    backbone_ref = backbones.resolve(
        spec.backbone, spec.backbone_revision, base_dir=path.parent, quickstart=spec.quickstart
    )
    positions = backbones.max_positions(backbone_ref)
    if positions is not None and spec.max_length > positions:
        raise GridError(
            "max_length",
            f"{spec.max_length} subword tokens do not fit the backbone '{spec.backbone}': "
            f"it has {positions} positions",
        )
    task_targets: dict[str, tuple[str, ...]] = {}
    if isinstance(spec.languages.target, dict):
        task_targets = {task: tuple(codes) for task, codes in spec.languages.target.items()}
    sources = {
        task: _source(task, source, f"data.{task}", workdir, spec.synthetic)
        for task, source in spec.data.items()
    }
    targets = spec.targets()
    _check_synthetic_languages(spec, sources, targets)
    grid = Grid(
        name=spec.name if spec.name is not None else path.parent.name,
        path=path,
        description=spec.description,
        backbone=backbone_ref,
        synthetic=spec.synthetic,
        sources=sources,
        methods=_methods(spec, raw["methods"]),
        tasks=list(spec.tasks),
        settings=list(spec.settings),
        source_languages=tuple(spec.languages.source),
        target_languages=targets,
        task_targets=task_targets,
        seeds=list(spec.seeds),
        shots=list(spec.shots),
        max_length=spec.max_length,
        device=spec.device,
        precision=spec.precision,
        partitions=_partitions(spec, raw.get("partitions")),
        few_shot_targets=tuple(dict.fromkeys(spec.languages.few_shot or ())),
        mt=spec.mt.options() if spec.mt is not None else MtModelOptions(),
        raw=raw,
    )
    _check_partitions(grid)
    grid.groups = _groups(spec.groups, grid.evaluated_languages())
    if "mt" in grid.tasks:
        grid.mt_probe = _mt_probe(spec.mt.probe if spec.mt is not None else None, grid.mt_directions())
    return grid


def _methods(spec: GridSpec, raw: list[Any]) -> list[MethodSpec]:
    """One per method and variant; the parameters as written (an int given for a float stays one,
    as the keys of the pieces it trained were computed from it)."""
    return [
        MethodSpec(
            entry.name,
            variant,
            dict(raw[i].get("params", {})) if isinstance(raw[i], dict) else {},
            f"methods[{i}]",
            _method_tasks(spec, entry),
        )
        for i, entry in enumerate(spec.methods)
        for variant in entry.variants
    ]


def _method_tasks(spec: GridSpec, entry: grid_spec.MethodEntry) -> tuple[str, ...]:
    """The grid's tasks a method runs: those its entry names, else every one it supports."""
    if entry.tasks is not None:
        return tuple(entry.tasks)
    supported = registry.methods.get(entry.name).supported_tasks
    return tuple(task for task in spec.tasks if task in supported)


def _check_synthetic_languages(
    spec: GridSpec, sources: dict[str, DataSource], targets: tuple[str, ...]
) -> None:
    if not any(isinstance(sources.get(task), SyntheticSource) for task in (*spec.tasks, "mlm")):
        return
    known = set(language_codes(spec.synthetic))
    for name, codes in (("languages.source", spec.languages.source), ("languages.target", targets)):
        for i, code in enumerate(codes):
            if code not in known:
                raise GridError(
                    f"{name}[{i}]",
                    f"'{code}' is not a language of the synthetic suite (it has {', '.join(sorted(known))})",
                )


def _partitions(spec: GridSpec, raw: Any) -> dict[str, Any] | None:
    """``partitions:`` as the grid's mapping: ``{by: family}`` (computed; the default of the mixed
    setting), or the written-out partitions with their codes normalised. The grid's source
    languages are trained on every task in both partitions; ``shared: [..]`` names more."""
    if spec.partitions is None:
        return {"by": "family"} if "mixed" in spec.settings else None
    if not isinstance(spec.partitions, PartitionSpec):
        return {"by": "family"}
    written = spec.partitions.model_extra or {}
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "shared":
            result[key] = list(spec.partitions.shared or ())
        elif key in written:
            result[key] = {task: list(codes) for task, codes in written[key].items()}
        else:
            result[key] = value
    return result


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


def _mt_probe(
    probe: dict[str, grid_spec.Probe] | None, directions: list[tuple[str, str]]
) -> dict[str, tuple[str, str]]:
    """``mt.probe: {source: {similar: L, distant: L}}``: the relatedness probe of Baziotis et al.
    2022, §6.1 — every direction out of ``source`` is also translated with the modules of a
    similar and of a distant source language instead of its own. Both must translate into the
    same targets in the grid, or they have no modules to lend."""
    found: dict[str, tuple[str, str]] = {}
    for source, spec in (probe or {}).items():
        where = f"mt.probe.{source}"
        targets = {t for s, t in directions if s == source}
        if not targets:
            raise GridError(where, f"'{source}' is not the source of any direction of the grid")
        for kind, lang in (("similar", spec.similar), ("distant", spec.distant)):
            missing = sorted(targets - {t for s, t in directions if s == lang})
            if lang == source or missing:
                raise GridError(
                    f"{where}.{kind}",
                    f"'{lang}' must be another source language translating into {', '.join(sorted(targets))}",
                )
        found[source] = (spec.similar, spec.distant)
    return found


def _groups(groups: dict[str, list[str]] | None, evaluated: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``groups: {name: [languages]}``: named groups of the languages the grid tests on (a
    language may be in several)."""
    for name, codes in (groups or {}).items():
        for i, code in enumerate(codes):
            if code not in evaluated:
                raise GridError(
                    f"groups.{name}[{i}]",
                    f"'{code}' is not a target language of the grid (targets: {', '.join(evaluated)})",
                )
    return {name: tuple(codes) for name, codes in (groups or {}).items()}


def _source(
    task: str, spec: Any, where: str, workdir: Path, synthetic, caps: dict[str, int | None] | None = None
) -> DataSource:
    """One task's validated data source as a reader. ``caps`` (any source but the synthetic suite;
    a per-language source's apply to those of its sources that set none): ``max_sentences`` keeps the
    first N examples of each split, ``held_out_sentences`` caps a held-out MLM selection set."""
    if spec == "synthetic":
        return SyntheticSource(synthetic, workdir / "cache", field=where)
    caps = dict(caps or {})
    for name in ("max_sentences", "held_out_sentences"):
        if getattr(spec, name) is not None:
            caps[name] = getattr(spec, name)
    if isinstance(spec, grid_spec.PerLanguageSpec):
        return PerLanguageSource(
            {
                lang: _source(task, sub, f"{where}.languages.{lang}", workdir, synthetic, caps)
                for lang, sub in spec.languages.items()
            },
            _source(task, spec.default, f"{where}.default", workdir, synthetic, caps)
            if spec.default is not None
            else None,
            field=where,
        )
    if isinstance(spec, grid_spec.UdSpec):
        return UdFolderSource(spec.root, dict(spec.treebanks), field=where, **caps)
    if isinstance(spec, grid_spec.FilesSpec):
        files = {
            _files_key(task, lang, f"{where}.files.{lang}"): dict(splits)
            for lang, splits in spec.files.items()
        }
        return FilesSource(files, field=where, **caps)
    return HubSource(spec.dataset, spec.config, spec.revision, dict(spec.splits), field=where, **caps)


def _files_key(task: str, key: str, field_name: str) -> str:
    """A language code; for MT also a direction "SRC-TGT" (a TSV of pairs)."""
    if task == "mt" and key.count("-") == 1:
        source, target = key.split("-")
        return f"{_language(source, field_name)}-{_language(target, field_name)}"
    return _language(key, field_name)


def _language(code: str, field_name: str) -> str:
    try:
        return languages.normalise(code)
    except ValueError as err:
        raise GridError(field_name, str(err)) from None
