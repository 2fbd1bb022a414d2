"""What a ``grid.yaml`` may hold, declared once: ``grid.py`` validates grids with it (and keeps its
error messages, which name the field), and ``grid_json_schema`` turns it into the JSON Schema editors
use to complete and check grid files (``xlt schema``; ``xltransfer/schema/grid.schema.json``).

The declaration: ``FIELDS`` (the top-level fields: kind, default, bounds, choices, help),
``NUMBER_RULES`` (what a number named like ``*_steps`` or ``*dropout`` must be, wherever it appears:
a method's params, the ``mt:``, ``quickstart:`` and ``synthetic:`` blocks), the registry (method
names, their parameters with defaults and variants, task names) and the option dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xltransfer.cell import SETTINGS
from xltransfer.precision import CHOICES as PRECISIONS

SCHEMA_ID = "https://xltransfer.invalid/schema/grid.schema.json"
# numpy's legacy seeding (np.random.seed, which the executor seeds with the piece's seed beside
# torch and random) takes 0 <= seed < 2**32; SQLite's integers end at 2**63.
MAX_SEED = 2**32 - 1
SOURCE_TYPES = ("ud", "files", "hub", "per-language")


@dataclass(frozen=True)
class Field:
    """One top-level field. ``kind``: string, integer, mapping, list (of ``item``), or one of
    ``choices``; ``minimum``/``maximum`` bound an integer or each integer of a list (``what`` names
    such a value in the error); ``unique`` lists hold a set (a repeat would evaluate cells twice)."""

    kind: str
    help: str
    default: Any = None
    item: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    what: str = ""
    unique: bool = False
    choices: tuple[str, ...] | None = None
    required: bool = False


FIELDS: dict[str, Field] = {
    "name": Field("string", "The grid's name (default: its folder's name)."),
    "description": Field("string", "One line on what the grid compares; shown atop its leaderboard.", ""),
    "backbone": Field(
        "string", "A preset (mbert, xlm-r, small-bert, quickstart, ...), a hub id or a local folder.", "mbert"
    ),
    "backbone_revision": Field("string", "The hub revision (commit) of the backbone."),
    "quickstart": Field(
        "mapping", "Options of the quickstart backbone (pretrained here on the synthetic suite)."
    ),
    "synthetic": Field("mapping", "The synthetic suite: seed, family sizes, split sizes."),
    "data": Field(
        "mapping", "Task -> data source: 'synthetic' or a mapping with a type (ud, files, hub, per-language)."
    ),
    "methods": Field("list", "Method names, or {name, variants, params, tasks} mappings.", required=True),
    "tasks": Field(
        "list", "Tasks of the grid (pos, dp, ner, nli, mt).", item="string", unique=True, required=True
    ),
    "settings": Field(
        "list", "Transfer settings.", ["zero-shot"], item="string", unique=True, choices=SETTINGS
    ),
    "languages": Field(
        "mapping",
        "source: [..], target: [..] (or task -> [..]), few_shot: [..] (targets few-shot runs on).",
        required=True,
    ),
    "seeds": Field(
        "list",
        "One run per seed.",
        [1],
        item="integer",
        minimum=0,
        maximum=MAX_SEED,
        what="a seed",
        unique=True,
    ),
    "shots": Field(
        "list",
        "Few-shot sizes k (target examples).",
        [],
        item="integer",
        minimum=1,
        what="a number of target examples",
        unique=True,
    ),
    "max_length": Field(
        "integer", "Subword tokens per example.", 128, minimum=1, what="a length in subword tokens"
    ),
    "device": Field("string", "auto, cpu, cuda, cuda:N or mps; checked before anything trains.", "auto"),
    "precision": Field(
        "choice",
        "auto: bf16 autocast on a GPU that supports it, fp16 on one that does not, fp32 on a CPU.",
        "auto",
        choices=PRECISIONS,
    ),
    "mt": Field(
        "mapping", "Options of the MT model every MT method shares, and probe: {source: {similar, distant}}."
    ),
    "partitions": Field(
        "mapping",
        "Mixed setting: 'family', {by: family}, or two written-out partitions {A: {task: [..]}, B: ...}, "
        "with shared: [..] and test_as_train.",
    ),
    "groups": Field("mapping", "Named groups of evaluated languages, averaged in the leaderboard."),
}


# What a number given in a grid must be, by its name. A value equal to the default always passes:
# some defaults are sentinels (0 = "the preset's size", -1 = "the preset's dropout", 0 = "no
# temperature"). Each rule is a bound, so it checks a grid and becomes JSON Schema alike.
_POSITIVE_ENDINGS = (
    "batch_size",
    "batch_tokens",
    "learning_rate",
    "epochs",
    "eval_every",
    "evals_per_epoch",
    "steps",
    "_dim",
    "hidden",
    "_blocks",
    "vocab_size",
    "hidden_size",
    "layers",
    "heads",
    "intermediate_size",
    "max_position_embeddings",
    "max_tokens",
    "max_length_ratio",
    "temperature",
    "reduction_factor",
    "_per_step",
)


@dataclass(frozen=True)
class Bound:
    """``value <op> limit`` with op one of >=, >, <, <= (JSON Schema's minimum, exclusiveMinimum,
    exclusiveMaximum, maximum)."""

    op: str
    limit: float

    def holds(self, value: float) -> bool:
        return {
            ">=": value >= self.limit,
            ">": value > self.limit,
            "<": value < self.limit,
            "<=": value <= self.limit,
        }[self.op]

    def json(self) -> dict[str, float]:
        keyword = {">=": "minimum", ">": "exclusiveMinimum", "<": "exclusiveMaximum", "<=": "maximum"}[
            self.op
        ]
        return {keyword: self.limit}


NUMBER_RULES: tuple[tuple[Callable[[str], bool], Bound, str], ...] = (
    (lambda name: True, Bound(">=", 0), "must be a finite, non-negative number"),
    (
        lambda name: name.endswith(_POSITIVE_ENDINGS) and "warmup" not in name,
        Bound(">", 0),
        "must be positive (a count, a size, a step budget or a rate)",
    ),
    (lambda name: name.endswith("dropout"), Bound("<", 1), "is a dropout probability: below 1"),
    (lambda name: name.endswith(("warmup_ratio", "fraction")), Bound("<=", 1), "is a fraction: at most 1"),
)


def number_problem(value: Any, name: str, default: Any) -> str | None:
    """What is wrong with a number named ``name`` (None: nothing, or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value == default:
        return None
    if not math.isfinite(value):
        return NUMBER_RULES[0][2]
    for applies, bound, message in NUMBER_RULES:
        if applies(name) and not bound.holds(value):
            return message
    return None


# -- JSON Schema -----------------------------------------------------------------------------------


def _value_schema(name: str, default: Any) -> dict[str, Any]:
    """The schema of a parameter or option, from its default's type and the number rules."""
    if default is None:
        return {}
    if isinstance(default, bool):
        return {"type": "boolean"}
    if isinstance(default, str):
        return {"type": "string"}
    if isinstance(default, tuple | list):
        return {"type": "array"}
    if isinstance(default, dict):
        return {"type": "object"}
    schema: dict[str, Any] = {"type": "integer" if isinstance(default, int) else "number"}
    for applies, bound, _ in NUMBER_RULES:
        if applies(name):
            schema.update(bound.json())
    if isinstance(default, int | float) and any(
        applies(name) and not bound.holds(default) for applies, bound, _ in NUMBER_RULES
    ):  # a sentinel default (e.g. -1: "the preset's dropout") is allowed as itself
        return {"anyOf": [{"const": default}, schema]}
    return schema


def _with_default(schema: dict[str, Any], default: Any) -> dict[str, Any]:
    if default is not None and not isinstance(default, tuple):
        schema = {**schema, "default": default}
    return schema


def _options_schema(config_class: type, help_text: str) -> dict[str, Any]:
    properties = {
        f.name: _with_default(_value_schema(f.name, f.default), f.default)
        for f in dataclasses.fields(config_class)
        if f.default is not dataclasses.MISSING
    }
    return {
        "type": "object",
        "description": help_text,
        "properties": properties,
        "additionalProperties": False,
    }


def _list_schema(item: dict[str, Any], unique: bool) -> dict[str, Any]:
    array = {"type": "array", "items": item, "minItems": 1, **({"uniqueItems": True} if unique else {})}
    return {"anyOf": [item, array]}  # a single value stands for a list of one


def _method_schema(registry, names: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"enum": names},
            "variants": _list_schema({"type": "string"}, True),
            "params": {"type": "object"},
            "tasks": _list_schema({"type": "string"}, True),
        },
        "allOf": [],
    }
    for name in names:
        method = registry.methods.get(name)
        params = {
            key: _with_default(_value_schema(key, value), value) for key, value in method.defaults.items()
        }
        entry["allOf"].append(
            {
                "if": {"properties": {"name": {"const": name}}},
                "then": {
                    "description": getattr(method, "summary", ""),
                    "properties": {
                        "variants": _list_schema({"enum": sorted(method.variants)}, True),
                        "params": {"type": "object", "properties": params, "additionalProperties": False},
                    },
                },
            }
        )
    return {"type": "array", "minItems": 1, "items": {"anyOf": [{"enum": names}, entry]}}


def _source_schema() -> dict[str, Any]:
    return {
        "anyOf": [
            {"const": "synthetic"},
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": list(SOURCE_TYPES)},
                    "max_sentences": {"type": "integer", "minimum": 1},
                },
            },
        ]
    }


def _field_schema(field: Field) -> dict[str, Any]:
    if field.kind == "choice":
        schema: dict[str, Any] = {"enum": list(field.choices or ())}
    elif field.kind == "list" and field.item is not None:
        item: dict[str, Any] = {"type": field.item}
        if field.choices:
            item = {"enum": list(field.choices)}
        if field.minimum is not None:
            item["minimum"] = field.minimum
        if field.maximum is not None:
            item["maximum"] = field.maximum
        schema = _list_schema(item, field.unique)
    elif field.kind == "integer":
        schema = {"type": "integer"}
        if field.minimum is not None:
            schema["minimum"] = field.minimum
    elif field.kind == "mapping":
        schema = {"type": "object"}
    else:
        schema = {"type": field.kind}
    return _with_default({"description": field.help, **schema}, field.default)


def grid_json_schema(registry, builtin_only: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of grid.yaml for the methods and tasks ``registry`` knows (with
    ``builtin_only``, those xltransfer itself registers: the committed schema file)."""

    def known(names: list[str], of) -> list[str]:
        if not builtin_only:
            return sorted(names)
        return sorted(n for n in names if (of.distribution(n) or ("",))[0] == "xltransfer")

    from xltransfer.data.synthetic import SyntheticConfig
    from xltransfer.modules.seq2seq import NORMS, MtModelOptions
    from xltransfer.pretrain import QuickstartConfig

    tasks = known(registry.tasks.names(), registry.tasks)
    properties = {name: _field_schema(field) for name, field in FIELDS.items()}
    properties["tasks"] = {**properties["tasks"], **_list_schema({"enum": tasks}, True)}
    properties["methods"] = {
        "description": FIELDS["methods"].help,
        **_method_schema(registry, known(registry.methods.names(), registry.methods)),
    }
    properties["data"] = {
        "description": FIELDS["data"].help,
        "type": "object",
        "propertyNames": {"enum": tasks},
        "additionalProperties": _source_schema(),
    }
    languages = {"type": "string", "minLength": 2}
    properties["languages"] = {
        "description": FIELDS["languages"].help,
        "type": "object",
        "required": ["source", "target"],
        "additionalProperties": False,
        "properties": {
            "source": _list_schema(languages, True),
            "target": {"anyOf": [_list_schema(languages, True), {"type": "object"}]},
            "few_shot": _list_schema(languages, True),
        },
    }
    properties["quickstart"] = _options_schema(QuickstartConfig, FIELDS["quickstart"].help)
    properties["synthetic"] = _options_schema(SyntheticConfig, FIELDS["synthetic"].help)
    mt = _options_schema(MtModelOptions, FIELDS["mt"].help)
    mt["properties"]["norm"]["enum"] = list(NORMS)
    mt["properties"]["probe"] = {"type": "object", "description": "source -> {similar: L, distant: L}"}
    properties["mt"] = mt
    properties["partitions"] = {
        "description": FIELDS["partitions"].help,
        "anyOf": [{"const": "family"}, {"type": "object"}],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "xltransfer grid",
        "description": "A grid of methods x tasks x settings x languages x seeds (xlt run GRID).",
        "type": "object",
        "required": [name for name, field in FIELDS.items() if field.required],
        "additionalProperties": False,
        "properties": properties,
    }
