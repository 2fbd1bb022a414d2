"""What a ``grid.yaml`` may hold, declared once as typed models.

From this declaration come the grid's validation (each error names its field's path, with a
"did you mean" for a misspelt key or name), its defaults, and the JSON Schema editors use to
complete and check grid files (``xlt schema``; ``xltransfer/schema/grid.schema.json``). Checks that
need the registry (methods, their parameters and variants, tasks) or the machine (files and
folders, resolved against the grid's folder given as validation context) are validators on it; the
option blocks are the dataclasses of ``xltransfer.options``. ``grid.py`` turns a validated
:class:`GridSpec` into a :class:`~xltransfer.grid.Grid`.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from xltransfer import languages, registry
from xltransfer.cell import SETTINGS
from xltransfer.declaring import (
    Choice,
    Declared,
    OneOrMany,
    OptionKeys,
    SchemaGenerator,
    close_name,
    message_of,
    one_or_many_schema,
    path_of,
)
from xltransfer.errors import GridError, UnknownNameError
from xltransfer.options import (
    DEVICE_PATTERN,
    OPTIONS,
    PRECISIONS,
    Bool,
    Bounded,
    MtModelOptions,
    Positive,
    QuickstartConfig,
    Str,
    SyntheticConfig,
    check_device,
    parameter_type,
)

SCHEMA_ID = "https://xltransfer.invalid/schema/grid.schema.json"
# numpy's legacy seeding (np.random.seed, which the executor seeds with the piece's seed beside
# torch and random) takes 0 <= seed < 2**32; SQLite's integers end at 2**63.
MAX_SEED = 2**32 - 1
SPLITS = ("train", "dev", "test")
SOURCE_TYPES = ("ud", "files", "hub", "per-language")
# the options of ``partitions:``; its other keys name the two partitions
PARTITION_OPTIONS = ("by", "test_as_train", "shared")

# the members of an untagged union: "partitions" is 'family' or a PartitionSpec
_UNTAGGED = ("literal['family']", "PartitionSpec")

# -- values -----------------------------------------------------------------------------------------


class RegistryChoice(Choice):
    """A name the registry knows (its message: the registry's own, with close names)."""

    def __init__(self, what: str, kind: str):
        super().__init__(what)
        self.kind = kind

    def options(self) -> tuple[str, ...]:
        return tuple(sorted(getattr(registry, self.kind).names()))

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError(
                "name_type",
                "must be a {what} name, got {kind} {value!r}",
                {"what": self.what, "kind": type(value).__name__, "value": value},
            )
        try:
            getattr(registry, self.kind).get(value) if self.kind == "methods" else None
        except UnknownNameError as error:
            raise PydanticCustomError("unknown_name", "{message}", {"message": str(error)}) from None
        if self.kind == "tasks" and value not in registry.tasks:
            raise PydanticCustomError(
                "unknown_name", "{message}", {"message": registry.tasks.unknown_message(value)}
            )
        return value


def _language(value: Any) -> Any:
    try:
        return languages.normalise(value)
    except ValueError as error:
        raise PydanticCustomError("language", "{message}", {"message": str(error)}) from None


def _exists(kind: str):
    """A path that must exist (resolved against the grid's folder: validation context ``base``)."""

    def check(value: str, info: ValidationInfo) -> Path:
        path = Path(value).expanduser()
        base = (info.context or {}).get("base")
        if base is None:
            return path
        path = path if path.is_absolute() else Path(base) / path
        if not (path.is_dir() if kind == "folder" else path.is_file()):
            raise PydanticCustomError(
                "missing_path", "{kind} {path} does not exist", {"kind": kind, "path": str(path)}
            )
        return path.resolve()

    return AfterValidator(check)


Language = Annotated[str, Strict(), Field(min_length=2), AfterValidator(_language)]
Languages = Annotated[list[Language], OneOrMany()]
Task = Annotated[str, RegistryChoice("task", "tasks")]
MethodName = Annotated[str, RegistryChoice("method", "methods")]
Split = Annotated[str, Choice("split", SPLITS)]
Setting = Annotated[str, Choice("setting", SETTINGS)]
Seed = Annotated[int, Strict(), Bounded(ge=0, le=MAX_SEED, what="a seed")]
Shots = Annotated[int, Strict(), Bounded(ge=1, what="a number of target examples")]
ExistingFile = Annotated[str, Strict(), _exists("file")]
ExistingFolder = Annotated[str, Strict(), _exists("folder")]
Device = Annotated[
    str,
    Strict(),
    AfterValidator(check_device),
    Field(json_schema_extra={"pattern": DEVICE_PATTERN}),
]


# -- data sources -----------------------------------------------------------------------------------


class _SourceSpec(Declared):
    # keep the first N examples of each split (any source but the synthetic suite)
    max_sentences: Positive | None = None
    # MLM text: the most sentences of a language's held-out selection set, cut from its train text
    # when the source has no dev split (default: xltransfer.data.corpus.HELD_OUT_CAP)
    held_out_sentences: Positive | None = None


class UdSpec(_SourceSpec):
    """A UD release folder; ``treebanks`` picks a treebank per language."""

    type: Literal["ud"]
    root: ExistingFolder
    treebanks: dict[Language, Str] = {}


class FilesSpec(_SourceSpec):
    """Files per language (for MT also per direction ``src-tgt``) and split."""

    type: Literal["files"]
    files: dict[Str, dict[Split, ExistingFile]]


class HubSpec(_SourceSpec):
    """A Hugging Face dataset; ``config`` may hold ``{lang}``; ``splits`` maps ours to its names."""

    type: Literal["hub"]
    dataset: Str
    config: Str | None = None
    revision: Str | None = None
    splits: dict[Split, Str] = {}


class PerLanguageSpec(_SourceSpec):
    """A source per language, and a ``default`` for the others."""

    type: Literal["per-language"]
    languages: dict[Language, Source] = {}
    default: Source | None = None


def _source_kind(value: Any) -> str | None:
    if value == "synthetic":
        return "<synthetic>"
    if isinstance(value, dict):
        kind = value.get("type")
        if kind not in SOURCE_TYPES:
            raise PydanticCustomError(
                "source_type",
                "unknown data source type {kind!r} (known: {known}, or 'synthetic'){hint}",
                {
                    "kind": kind,
                    "known": ", ".join(SOURCE_TYPES),
                    "at": ".type",
                    "hint": close_name(str(kind), SOURCE_TYPES),
                },
            )
        return f"<{kind}>"
    return None


Source = Annotated[
    Annotated[Literal["synthetic"], Tag("<synthetic>")]
    | Annotated[UdSpec, Tag("<ud>")]
    | Annotated[FilesSpec, Tag("<files>")]
    | Annotated[HubSpec, Tag("<hub>")]
    | Annotated[PerLanguageSpec, Tag("<per-language>")],
    Discriminator(
        _source_kind,
        custom_error_type="source",
        custom_error_message="must be 'synthetic' or a mapping with a 'type' (ud, files, hub, per-language)",
    ),
]
PerLanguageSpec.model_rebuild()

# -- methods ----------------------------------------------------------------------------------------


@cache
def parameters_model(method_name: str) -> type[BaseModel]:
    """A method's parameters, declared by its defaults (``Method.defaults``): each value has its
    default's type and, for a number, the bounds of its name (``options.number_bounds``)."""
    method = registry.methods.get(method_name)
    fields = {name: (parameter_type(name, default), default) for name, default in method.defaults.items()}
    model = create_model(f"{method_name} parameters", __base__=Declared, **fields)
    model.__doc__ = getattr(method, "summary", "") or None
    return model


class MethodEntry(Declared):
    """A method of the grid: ``name``, or ``{name, variants, params, tasks}``."""

    name: MethodName
    variants: Annotated[list[Str], OneOrMany()] = ["default"]
    params: dict[Str, Any] = {}
    # the grid's tasks this method runs; default: every task of the grid it supports
    tasks: Annotated[list[Task], OneOrMany()] | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_name_alone(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _declared_by_the_method(self) -> MethodEntry:
        method = registry.methods.get(self.name)
        for i, variant in enumerate(self.variants):
            if variant not in method.variants:
                raise PydanticCustomError(
                    "variant",
                    "unknown variant '{variant}' of {name} (known: {known}){hint}",
                    {
                        "variant": variant,
                        "name": self.name,
                        "known": ", ".join(method.variants),
                        "hint": close_name(variant, method.variants),
                        "at": f".variants[{i}]",
                    },
                )
        try:
            parameters_model(self.name).model_validate(self.params)
        except ValidationError as error:
            first = error.errors()[0]
            raise PydanticCustomError(
                "parameter",
                "{message}",
                {"message": message_of(first), "at": ".params" + path_of(first, _UNTAGGED)},
            ) from None
        return self


# -- the grid ---------------------------------------------------------------------------------------


class Probe(Declared):
    """A source's relatedness probe (Baziotis et al. 2022, §6.1)."""

    similar: Language
    distant: Language


@dataclass(frozen=True, config=OPTIONS)
class MtSpec(MtModelOptions):
    """The ``mt:`` block: the MT model's options, and the relatedness probe."""

    probe: dict[Language, Probe] | None = None

    def options(self) -> MtModelOptions:
        return MtModelOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(MtModelOptions)})


class PartitionSpec(Declared):
    """Computed ``{by: family}``, or two written out ``{A: {task: [..]}, B: {...}}``; ``shared``:
    more languages trained on every task in both (the sources always are)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[Str, Annotated[list[Language], OneOrMany(unique=False)]]]

    by: Literal["family"] | None = None
    test_as_train: Bool = False
    shared: Annotated[list[Language], OneOrMany(unique=False)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        return data  # the other keys name partitions


def _partitions_kind(value: Any) -> str:
    """'family' or a mapping: tagged, so an error inside a mapping names its own field."""
    return "<spec>" if isinstance(value, dict) else "<family>"


def _targets_kind(value: Any) -> str:
    return "<per task>" if isinstance(value, dict) else "<all>"


class LanguagesSpec(Declared):
    """``source: [..]``, ``target: [..]`` (or ``{task: [..]}``), ``few_shot: [..]`` (the targets
    the few-shot setting runs on; default: every target)."""

    source: Languages
    target: Annotated[
        Annotated[Languages, Tag("<all>")] | Annotated[dict[Str, Languages], Tag("<per task>")],
        Discriminator(_targets_kind),
    ]
    few_shot: Languages | None = None


PRECISION = Choice(
    "precision",
    PRECISIONS,
    "auto is bf16 autocast on a GPU that supports it, fp16 on one that does not, fp32 on a CPU",
)


class GridSpec(Declared):
    """A grid of methods x tasks x settings x languages x seeds (``xlt run GRID``)."""

    name: Str | None = Field(None, description="The grid's name (default: its folder's name).")
    description: Str = Field(
        "", description="One line on what the grid compares; shown atop its leaderboard."
    )
    backbone: Str = Field(
        "mbert",
        description="A preset (mbert, xlm-r, small-bert, quickstart, ...), a hub id or a local folder.",
    )
    backbone_revision: Str | None = Field(None, description="The hub revision (commit) of the backbone.")
    quickstart: Annotated[QuickstartConfig, OptionKeys(QuickstartConfig)] | None = Field(
        None, description="Options of the quickstart backbone (pretrained here on the synthetic suite)."
    )
    synthetic: Annotated[SyntheticConfig, OptionKeys(SyntheticConfig)] = Field(
        SyntheticConfig(), description="The synthetic suite: seed, family sizes, split sizes."
    )
    data: dict[Task, Source] = Field(
        {},
        description="Task -> data source: 'synthetic' or a mapping with a type "
        "(ud, files, hub, per-language).",
    )
    methods: Annotated[list[MethodEntry], Field(min_length=1)] = Field(
        description="Method names, or {name, variants, params, tasks} mappings."
    )
    tasks: Annotated[list[Task], OneOrMany()] = Field(
        description="Tasks of the grid (pos, dp, ner, nli, mt)."
    )
    settings: Annotated[list[Setting], OneOrMany()] = Field(["zero-shot"], description="Transfer settings.")
    languages: LanguagesSpec = Field(
        description="source: [..], target: [..] (or task -> [..]), few_shot: [..] (targets few-shot runs on)."
    )
    seeds: Annotated[list[Seed], OneOrMany()] = Field([1], description="One run per seed.")
    shots: Annotated[list[Shots], OneOrMany(min_items=0)] = Field(
        [], description="Few-shot sizes k (target examples)."
    )
    max_length: Annotated[int, Strict(), Bounded(ge=1, what="a length in subword tokens")] = Field(
        128, description="Subword tokens per example (at most the backbone's positions)."
    )
    device: Device = Field(
        "auto", description="auto, cpu, cuda, cuda:N or mps; checked before anything trains."
    )
    precision: Annotated[str, PRECISION] = Field("auto", description=PRECISION.explain + ".")
    mt: Annotated[MtSpec, OptionKeys(MtSpec)] | None = Field(
        None,
        description="Options of the MT model every MT method shares, "
        "and probe: {source: {similar, distant}}.",
    )
    partitions: (
        Annotated[
            Annotated[Literal["family"], Tag("<family>")] | Annotated[PartitionSpec, Tag("<spec>")],
            Discriminator(_partitions_kind),
        ]
        | None
    ) = Field(
        None,
        description="Mixed setting: 'family', {by: family}, or two written-out partitions {A: {task: [..]}, "
        "B: ...}, with shared: [..] and test_as_train.",
    )
    groups: dict[Str, Languages] | None = Field(
        None, description="Named groups of evaluated languages, averaged in the leaderboard."
    )

    @model_validator(mode="after")
    def _fields_agree(self) -> GridSpec:
        """What one field says about another; each error names the field to change."""
        if self.quickstart is not None and self.backbone != "quickstart":
            raise GridError(
                "quickstart",
                "options for the quickstart backbone, but the grid's backbone is not 'quickstart'",
            )
        if "few-shot" in self.settings and not self.shots:
            raise GridError("shots", "the few-shot setting needs a list of shots, e.g. [5, 10, 20, 50]")
        self._check_targets()
        for i, entry in enumerate(self.methods):
            self._check_method(i, entry)
        self._check_mt()
        for task in self.tasks:
            if task not in self.data:
                raise GridError("data", f"no data source for task '{task}'")
        self._check_partitions()
        return self

    def _check_targets(self) -> None:
        target = self.languages.target
        if isinstance(target, dict):
            for task in target:
                if task not in self.tasks:
                    raise GridError(
                        f"languages.target.{task}",
                        f"'{task}' is not one of the grid's tasks ({', '.join(self.tasks)})",
                    )
            missing = [task for task in self.tasks if task not in target]
            if missing:
                raise GridError("languages.target", f"no targets for task '{missing[0]}'")
        few_shot = self.languages.few_shot
        if few_shot is not None:
            if "few-shot" not in self.settings:
                raise GridError(
                    "languages.few_shot", "few-shot targets, but the grid's settings have no 'few-shot'"
                )
            targets = self.targets()
            for i, code in enumerate(few_shot):
                if code not in targets:
                    raise GridError(
                        f"languages.few_shot[{i}]",
                        f"'{code}' is not a target language of the grid (targets: {', '.join(targets)})",
                    )

    def targets(self) -> tuple[str, ...]:
        """Every target, of any task, in first-seen order."""
        target = self.languages.target
        if isinstance(target, dict):
            return tuple(dict.fromkeys(code for codes in target.values() for code in codes))
        return tuple(target)

    def _check_method(self, i: int, entry: MethodEntry) -> None:
        where = f"methods[{i}]"
        method = registry.methods.get(entry.name)
        supported = ", ".join(sorted(method.supported_tasks))
        if entry.tasks is not None:
            for j, task in enumerate(entry.tasks):
                if task not in self.tasks:
                    raise GridError(
                        f"{where}.tasks[{j}]", f"'{task}' is not a task of the grid ({', '.join(self.tasks)})"
                    )
                if task not in method.supported_tasks:
                    raise GridError(
                        f"{where}.tasks[{j}]",
                        f"{entry.name} does not support task '{task}'; it supports {supported}",
                    )
        elif not any(task in method.supported_tasks for task in self.tasks):
            raise GridError(
                f"{where}.name",
                f"{entry.name} supports none of the grid's tasks ({', '.join(self.tasks)}); "
                f"it supports {supported}",
            )
        for j, setting in enumerate(self.settings):
            if setting not in method.supported_settings:
                raise GridError(
                    f"{where}.name", f"{entry.name} does not support setting '{setting}' (settings[{j}])"
                )
        for variant in entry.variants:
            try:  # a method may check its parameters together (e.g. BAD-X's ratio)
                method.resolve_params(variant, dict(entry.params))
            except ValueError as error:
                raise GridError(f"{where}.params", str(error)) from None

    def _check_mt(self) -> None:
        if self.mt is not None and "mt" not in self.tasks:
            raise GridError("mt", "options for the mt task, but the grid's tasks do not include mt")
        if "mt" in self.tasks:
            other = [s for s in self.settings if s != "zero-shot"]
            if other:
                raise GridError(
                    f"settings[{self.settings.index(other[0])}]",
                    f"task mt trains on every direction of the grid and is evaluated per direction: "
                    f"use the zero-shot setting only, not '{other[0]}' (or put mt in a grid of its own)",
                )

    def _check_partitions(self) -> None:
        if self.partitions is None:
            return
        if "mixed" not in self.settings:
            raise GridError("partitions", "partitions are only used by the 'mixed' setting")
        if isinstance(self.partitions, PartitionSpec):
            explicit = self.partitions.model_extra or {}
            if explicit and self.partitions.by is not None:
                raise GridError(
                    "partitions.by", "partitions are computed 'by: family' or written out, not both"
                )
            for name, part in explicit.items():
                for task in part:
                    if task not in self.tasks:
                        raise GridError(
                            f"partitions.{name}.{task}", f"task '{task}' is not in the grid's tasks"
                        )


# -- errors -----------------------------------------------------------------------------------------


def validate(raw: Any, source: Path | str | None = None, base: Path | None = None) -> GridSpec:
    """The grid's declaration, validated; its first fault as a :class:`GridError` naming the field."""
    if not isinstance(raw, dict):
        raise GridError("(top level)", "a grid is a mapping of fields", source)
    try:
        return GridSpec.model_validate(raw, context={"base": base} if base is not None else None)
    except ValidationError as error:
        first = error.errors()[0]
        raise GridError(
            path_of(first, _UNTAGGED).lstrip(".") or "(top level)", message_of(first), source
        ) from None
    except GridError as error:
        if error.source is None and source is not None:
            raise GridError(error.field, str(error).split(": ", 1)[-1], source) from None
        raise


# -- JSON Schema ------------------------------------------------------------------------------------


def _method_schemas(names: list[str]) -> dict[str, Any]:
    """The ``methods`` items: a name, or an entry whose variants and parameters are the method's."""
    entry = GridSpec.model_json_schema(schema_generator=SchemaGenerator)["$defs"]["MethodEntry"]
    entry["required"] = ["name"]
    entry["properties"]["name"] = {"enum": names}
    entry["allOf"] = []
    for name in names:
        method = registry.methods.get(name)
        params = parameters_model(name).model_json_schema(schema_generator=SchemaGenerator)
        params.pop("description", None)
        entry["allOf"].append(
            {
                "if": {"properties": {"name": {"const": name}}},
                "then": {
                    "description": getattr(method, "summary", ""),
                    "properties": {
                        "variants": one_or_many_schema({"enum": sorted(method.variants)}),
                        "params": params,
                    },
                },
            }
        )
    return {"type": "array", "minItems": 1, "items": {"anyOf": [{"enum": names}, entry]}}


def grid_json_schema(names=registry, builtin_only: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of grid.yaml for the methods and tasks ``names`` (the registry)
    knows (with ``builtin_only``, those xltransfer itself registers: the committed schema file)."""

    def known(of) -> list[str]:
        found = of.names()
        if builtin_only:
            found = [n for n in found if (of.distribution(n) or ("",))[0] == "xltransfer"]
        return sorted(found)

    schema = GridSpec.model_json_schema(schema_generator=SchemaGenerator)
    tasks = known(names.tasks)
    _replace_enum(schema, RegistryChoice("task", "tasks").options(), tasks)
    methods = schema["properties"]["methods"]
    schema["properties"]["methods"] = {
        "description": methods.get("description", ""),
        **_method_schemas(known(names.methods)),
    }
    schema["$defs"].pop("MethodEntry", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "xltransfer grid",
        **schema,
    }


def _replace_enum(node: Any, old: tuple[str, ...], new: list[str]) -> None:
    """The registry's names as of the schema (``builtin_only``: xltransfer's own)."""
    if isinstance(node, dict):
        if node.get("enum") == list(old):
            node["enum"] = new
        for value in node.values():
            _replace_enum(value, old, new)
    elif isinstance(node, list):
        for value in node:
            _replace_enum(value, old, new)
