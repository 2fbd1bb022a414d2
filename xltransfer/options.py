"""The options a grid names, declared below the code that uses them: no torch, no model code.

``grid.yaml``'s ``quickstart:``, ``synthetic:`` and ``mt:`` blocks are these typed dataclasses
(pydantic validates them, ``dataclasses`` still reads them: their fingerprints are ``asdict``);
``precision:`` and ``device:`` are the choices below. ``grid_spec`` builds the grid's declaration
from them, and the implementations (``pretrain``, ``data.synthetic``, ``modules.seq2seq``,
``precision``) import them from here, so validating a grid loads no model.

A number's bounds are declared where the number is, with :class:`Bounded`, which both checks a
value and writes the JSON Schema keywords: one declaration gives both.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, replace
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict
from pydantic.dataclasses import dataclass
from pydantic_core import PydanticCustomError

from xltransfer.declaring import (  # noqa: F401 - the value types options and grids are declared with
    Bool,
    Bounded,
    Fraction,
    Int,
    NonNegative,
    Number,
    Positive,
    PositiveNumber,
    Str,
)

# -- values ----------------------------------------------------------------------------------------

# A method's parameters are declared by their defaults (``Method.defaults``); a number's bounds by
# its name: a count, a size, a step budget or a rate must be positive, a dropout below 1, a ratio
# or a fraction at most 1, every number finite and non-negative.
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


def number_bounds(name: str, default: Any = None) -> Bounded:
    """The bounds of a number named ``name`` (its default passes as itself: some are sentinels)."""
    bounds: dict[str, float] = {"ge": 0}
    if name.endswith(_POSITIVE_ENDINGS) and "warmup" not in name:
        bounds = {"gt": 0}
    if name.endswith("dropout"):
        bounds["lt"] = 1
    if name.endswith(("warmup_ratio", "fraction")):
        bounds["le"] = 1
    sentinel = default if isinstance(default, int | float) and not Bounded(**bounds).holds(default) else None
    return Bounded(**bounds, sentinel=sentinel)


def parameter_type(name: str, default: Any) -> Any:
    """The declared type of a method parameter, from its default (a float takes an int; a bool
    is never a number) and, for a number, its name."""
    if isinstance(default, bool):
        return Bool
    if isinstance(default, int):
        return Annotated[int, Strict(), number_bounds(name, default)]
    if isinstance(default, float):
        return Annotated[float, Strict(), Field(allow_inf_nan=False), number_bounds(name, default)]
    if isinstance(default, str):
        return Str
    if isinstance(default, list | tuple):
        return Annotated[list, Strict()]
    if isinstance(default, dict):
        return Annotated[dict, Strict()]
    return Any


OPTIONS = ConfigDict(extra="forbid")

# -- precision and device ------------------------------------------------------------------------

# auto: bf16 autocast on a GPU that supports it, fp16 on one that does not, fp32 on a CPU
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
Precision = Literal["auto", "fp32", "bf16", "fp16"]
# the devices a grid may name: whether the machine has it is checked before anything trains
# (``RunContext.prepare``); torch knows more strings (meta, xla, ...), none of which trains here
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:[0-9]+)?)$"


def check_device(value: str) -> str:
    if not re.match(DEVICE_PATTERN, value):
        raise PydanticCustomError(
            "device",
            "unknown device {device!r} (use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps')",
            {"device": value},
        )
    return value


Device = Annotated[str, Strict(), Field(pattern=DEVICE_PATTERN)]

# -- the quickstart backbone ------------------------------------------------------------------------


@dataclass(frozen=True, config=OPTIONS)
class QuickstartConfig:
    """The quickstart backbone (``xltransfer.pretrain``): a small BERT pretrained by MLM here."""

    vocab_size: Positive = 4000
    hidden_size: Positive = 128
    num_hidden_layers: Positive = 4
    num_attention_heads: Positive = 4
    intermediate_size: Positive = 512
    max_position_embeddings: Positive = 128
    steps: Positive = 1200
    batch_size: Positive = 64
    learning_rate: PositiveNumber = 1e-3
    warmup_steps: NonNegative = 200
    eval_every: Positive = 500
    seen_fraction: Fraction = 0.5  # of each family, the first ceil(fraction * size) members are seen
    seed: NonNegative = 0

    def fingerprint(self, synthetic) -> str:
        from xltransfer.params import stable_hash

        return stable_hash(
            {"version": QUICKSTART_VERSION, "config": asdict(self), "synthetic": synthetic.fingerprint()}
        )

    def seen_languages(self, synthetic: SyntheticConfig) -> list[str]:
        seen = []
        for members in family_members(synthetic):
            seen.extend(members[: math.ceil(self.seen_fraction * len(members))])
        return seen


# 3: the vocabulary is learned by SentencePiece (the same in every process; see pretrain.train_wordpiece)
QUICKSTART_VERSION = 3

# -- the synthetic suite ----------------------------------------------------------------------------

# Bump whenever the suite's output for a given config changes: it is part of the fingerprint, so
# cached suites generated by an older generator (``xltransfer.data.synthetic``) are rebuilt.
GENERATOR_VERSION = "1"
# ISO 639-3 reserves qaa-qtz for local use: 20 * 26 codes.
MAX_SYNTHETIC_LANGUAGES = 20 * 26


@dataclass(frozen=True, config=OPTIONS)
class SyntheticConfig:
    """Everything that determines the suite's bytes; its fingerprint names the cache entry."""

    seed: NonNegative = 0
    family_sizes: Annotated[tuple[Positive, ...], Field(min_length=1)] = (4, 3, 2)  # a list is taken
    train_sentences: Positive = 2000
    dev_sentences: Positive = 200
    test_sentences: Positive = 200
    text_sentences: Positive = 4000
    nli_train_pairs: Positive = 2000
    nli_dev_pairs: Positive = 300
    nli_test_pairs: Positive = 300
    mt_train_sentences: Positive = 2000
    mt_dev_sentences: Positive = 200
    mt_test_sentences: Positive = 200

    def __post_init__(self) -> None:
        if sum(self.family_sizes) > MAX_SYNTHETIC_LANGUAGES:
            raise ValueError(f"at most {MAX_SYNTHETIC_LANGUAGES} languages fit the qaa-qtz local-use range")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["family_sizes"] = list(self.family_sizes)
        return data

    def fingerprint(self) -> str:
        payload = json.dumps(
            {"generator_version": GENERATOR_VERSION, "config": self.to_dict()}, sort_keys=True
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def language_code(index: int) -> str:
    """The suite's ``index``-th language: qaa, qab, ... (ISO 639-3's local-use range)."""
    return "q" + chr(ord("a") + index // 26) + chr(ord("a") + index % 26)


def language_codes(config: SyntheticConfig) -> list[str]:
    """The suite's language codes, known without generating it (grids are validated up front)."""
    return [language_code(i) for i in range(sum(config.family_sizes))]


def family_members(config: SyntheticConfig) -> list[list[str]]:
    """Language codes grouped by family, in generation order."""
    codes = iter(language_codes(config))
    return [[next(codes) for _ in range(size)] for size in config.family_sizes]


# -- the MT model ------------------------------------------------------------------------------------

BERT2BERT = "bert2bert"
# the Transformer presets of ``modules.seq2seq.TRANSFORMER_PRESETS`` (a test keeps the two equal)
TRANSFORMER_MODELS = ("transformer-base", "transformer-big")
MtModel = Literal[(*TRANSFORMER_MODELS, BERT2BERT)]  # type: ignore[valid-type]
# Baziotis et al. 2022, §4 "Data": a joint SentencePiece vocabulary of 90k symbols (for ML50's 51 languages).
VOCAB_SIZE = 90_000
SPECIAL_TOKEN_COUNT = 4  # <pad> <unk> <s> </s>: ids 0..3 of every trained vocabulary


MAX_POSITIONS = 1024  # fairseq's max_source_positions; training pairs are filtered to 250 tokens
# Where the LayerNorms sit (Baziotis et al. 2022 do not say): "pre" by default, because fairseq's ML50
# recipe (examples/multilingual, the paper's data) trains with --encoder-normalize-before
# --decoder-normalize-before, and the paper's case for rescaling (§3.1, Figure 4: activations grow "to
# extreme values" without it) is about a residual stream that no LayerNorm bounds, which is pre-norm.
# That recipe's --layernorm-embedding is not taken: §4 names Transformer-Base, which has none.
NORMS = ("pre", "post")
DEFAULT_NORM = "pre"
MtNorm = Literal["pre", "post"]


@dataclass(frozen=True, config=OPTIONS)
class MtModelOptions:
    """The grid's ``mt:`` block: which encoder–decoder every MT method of the grid trains, and its
    evaluation directions. Part of every MT piece's key (it decides the weights, as a backbone does).

    ``model`` is a Transformer preset (trained from scratch on a vocabulary learned from the
    grid's training data) or "bert2bert" (initialised from the grid's backbone, on its vocabulary).
    ``d_model``/``layers``/``ffn_dim``/``heads`` of 0 and ``dropout`` below 0 keep the preset's.
    ``norm`` places a preset's LayerNorms ("pre" or "post", see ``DEFAULT_NORM``); BERT2BERT keeps
    BERT's post-norm layers whatever it says. ``max_tokens`` is both the training filter and the
    length MT encodes at: a training pair is never cut (see ``MachineTranslation.encode``).
    The grid's directions are source -> target for every source and target language, and also
    target -> source with ``both_ways``: English-centric with ``source: [en]``, many-to-many when
    sources and targets list the same languages. One model is trained on all of them.
    """

    model: MtModel = "transformer-base"
    vocab_size: Annotated[int, Strict(), Bounded(gt=SPECIAL_TOKEN_COUNT)] = VOCAB_SIZE
    d_model: Annotated[int, Strict(), Bounded(gt=0, sentinel=0)] = 0
    layers: Annotated[int, Strict(), Bounded(gt=0, sentinel=0)] = 0
    ffn_dim: Annotated[int, Strict(), Bounded(gt=0, sentinel=0)] = 0
    heads: Annotated[int, Strict(), Bounded(gt=0, sentinel=0)] = 0
    dropout: Annotated[float, Strict(), Field(allow_inf_nan=False), Bounded(ge=0, lt=1, sentinel=-1.0)] = -1.0
    norm: MtNorm = DEFAULT_NORM  # see DEFAULT_NORM: fairseq's ML50 recipe, Baziotis et al. 2022 §3.1
    both_ways: Bool = True
    # Baziotis et al. 2022, §4 "Data": pairs over 250 tokens or with a length ratio over 2.5 are
    # dropped; MT also encodes at this length, so a training pair is never cut
    max_tokens: Positive = 250
    max_length_ratio: PositiveNumber = 2.5

    def for_method(self, params) -> MtModelOptions:
        """These options as a method's pieces use them: its ``mt_norm`` parameter, when set, places
        the LayerNorms instead of ``norm`` (so one grid compares both placements)."""
        norm = (params or {}).get("mt_norm") or self.norm
        return self if norm == self.norm else replace(self, norm=norm)

    def max_positions(self, tokenizer) -> int:
        """The longest sequence the model takes: fairseq's ``max_source_positions`` for a preset,
        the backbone's maximum for BERT2BERT (its tokenizer's ``model_max_length``)."""
        if self.trains_vocabulary:
            return MAX_POSITIONS
        return min(MAX_POSITIONS, tokenizer.model_max_length)

    @property
    def trains_vocabulary(self) -> bool:
        return self.model != BERT2BERT

    def preset_overrides(self) -> dict:
        sizes = {"d_model": self.d_model, "layers": self.layers, "ffn_dim": self.ffn_dim, "heads": self.heads}
        overrides = {name: value for name, value in sizes.items() if value > 0}
        if self.dropout >= 0:
            overrides["dropout"] = self.dropout
        return overrides
