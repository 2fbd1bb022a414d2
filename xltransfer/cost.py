"""What a grid will cost before it runs: training FLOPs per piece from the architecture and the
planned steps, as GPU-hours on a stated reference accelerator.

The model, in the words of the one line ``xlt plan`` prints with it (``ASSUMPTIONS``):

- A weight matrix of N parameters costs 2N FLOPs per token forward. Backward costs 2N again for
  the gradient of its input and 2N for the gradient of its weights (Kaplan et al. 2020, §2.1: ~6N
  per token for training). A frozen matrix that gradients pass through (the encoder under
  adapters, MAD-X §3) costs 4N: its activations need gradients, its weights get none.
- Attention scores (QKᵀ and the weighted sum of V) cost 4·s·d per token and layer forward and
  twice that backward, at the grid's ``max_length`` s: an upper bound, since batches are padded
  to their longest sequence only (length-grouped) and most sentences are shorter.
- MLM pieces run the frozen vocabulary projection (and its transform) at the masked 15% of
  positions only (``xltransfer.modules.mlm``).
- Generated adapters (MAD-G, Hyper-X, NMT hyper-adapters) cost what a stored adapter of their
  size costs per token, plus one generation per step: 6 FLOPs per generator parameter, once per
  layer for a generator shared across layers.
- MT: the step's token budget passes through the encoder and through the decoder with its output
  projection; attention at the grid's ``mt.max_tokens``.
- Evaluation during training (checkpoint selection): each pass the method plans
  (``Method.planned_evaluations``: step 0, every ``eval_every`` steps and the last) runs the forward
  pass (2 FLOPs per weight per token, attention's forward) over the selection set at max_length: a
  language's held-out MLM text at its cap (the source's ``held_out_sentences``, by default
  ``corpus.HELD_OUT_CAP``; or 5% of a corpus on disk that holds fewer than 20 times that, or the
  dev split the source gives), a task's dev set when it is on disk (one read from the hub is
  not counted: ``xlt plan`` reads nothing from the hub).
- Data preparation (CPU, not GPU): every MLM corpus a language-side piece reads is tokenised once
  (then cached for every piece and run) at ``TOKENIZE_RATE`` tokens per second per process; its
  size is the text on disk when it is there, else (a hub Wikipedia) the text its pieces' steps and
  held-out set read: a lower bound.
- Not counted: embedding lookups (no FLOPs), task heads, LayerNorms, MT adapter blocks, data
  loading, the preparation of task data (treebanks, NLI pairs: small beside the corpora), and that
  of MT's parallel text (read into pairs, sampled for the vocabulary, encoded: once per grid, CPU,
  ``bench/parallel_scale.py`` measures it; ML50 is read from the hub, which ``xlt plan`` never reads).

GPU-hours are FLOPs over a reference accelerator's dense BF16 peak times an assumed utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xltransfer.data.corpus import HELD_OUT_CAP

# NVIDIA A100 datasheet: 312 TFLOP/s dense BF16 tensor-core peak
REFERENCE_ACCELERATOR = "NVIDIA A100"
PEAK_FLOPS = 312e12
# the share of that peak training reaches (model FLOPs utilisation): assumed, not measured here
UTILISATION = 0.40

TRAINED, FROZEN, ATTENTION = 6, 4, 3  # FLOPs per parameter per token (attention: times its forward)
FORWARD = 2  # FLOPs per parameter per token of an evaluation pass

# tokens a fast (Rust) WordPiece tokenizer prepares per second in one process: measured 67K/s on
# the synthetic text on a loaded 2-core machine, and issue 19's ~100 s for a 20 MB corpus (~5M
# tokens, ~50K/s); stated as an assumption, 100K/s
TOKENIZE_RATE = 100_000
LANGUAGE_SIDE = ("language-adapter", "bilingual-adapter", "multilingual-adapter")


def assumptions() -> str:
    """The one line that says how every estimate was made."""
    return (
        f"GPU-hours on an {REFERENCE_ACCELERATOR} (dense BF16 peak {PEAK_FLOPS / 1e12:.0f} TFLOP/s) at "
        f"{UTILISATION:.0%} utilisation; training FLOPs 6 per trained and 4 per frozen weight per token "
        "(backward without weight gradients), attention 3x 4·s·d per layer, sequences at max_length "
        "(an upper bound), MLM head at masked positions only, generators once per step; plus "
        "evaluation: the selection passes each method plans x its selection set (held-out MLM text "
        f"at its cap, by default {HELD_OUT_CAP:,} sentences per language; dev sets on disk) at 2 FLOPs per "
        "weight per token; heads and LayerNorms not counted. Data preparation in CPU-hours: each MLM "
        f"corpus tokenised once (cached) at {TOKENIZE_RATE / 1000:.0f}K tokens/s per process, its size "
        "the text on disk, else the text its pieces read (a lower bound for a hub corpus); MT's "
        "parallel text (pairs, vocabulary sample, features) not counted"
    )


def evaluation_passes(steps: int, every: int) -> int:
    """How often ``train.fit`` evaluates over ``steps`` steps: before the first, every ``every``
    steps, and after the last."""
    every = max(1, every)
    return 1 + steps // every + (1 if steps % every else 0)


def gpu_hours(flops: float) -> float:
    return flops / (PEAK_FLOPS * UTILISATION) / 3600


@dataclass(frozen=True)
class PieceCost:
    steps: int | None  # optimiser steps; None when they depend on data the plan cannot see
    steps_from: str | None  # "schedule" (fixed), "data" (epochs over data counted offline), or None
    batch: int | None  # examples per step, or tokens per step for MT
    tokens_per_step: int | None
    flops_per_step: float | None
    flops: float | None  # steps x flops per step
    evaluations: int | None = None  # selection passes
    eval_examples: int | None = None  # selection examples per pass (None: not known offline)
    eval_flops: float = 0.0  # evaluations x examples x max_length x forward FLOPs per token

    @property
    def gpu_hours(self) -> float | None:
        """Training and its evaluations."""
        return gpu_hours(self.flops + self.eval_flops) if self.flops is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "steps_from": self.steps_from,
            "batch": self.batch,
            "tokens_per_step": self.tokens_per_step,
            "flops_per_step": self.flops_per_step,
            "flops": self.flops,
            "evaluations": self.evaluations,
            "eval_examples": self.eval_examples,
            "eval_flops": self.eval_flops,
            "eval_gpu_hours": gpu_hours(self.eval_flops),
            "gpu_hours": self.gpu_hours,
        }


# -- the architecture's shapes --------------------------------------------------------------------
_DENSE: dict[str, int] = {}


def dense_parameters(architecture) -> int:
    """Weights of the matrices every token passes through: each linear layer of the encoder (or of
    the encoder–decoder, with its output projection), read off a weightless model (once per
    architecture); the pooler runs once per sequence and is left out."""
    import torch

    from xltransfer.parameters import meta_model

    key = architecture.to_json_string()
    if key not in _DENSE:
        _DENSE[key] = sum(
            module.weight.numel()
            for name, module in meta_model(architecture).named_modules()
            if isinstance(module, torch.nn.Linear) and "pooler" not in name
        )
    return _DENSE[key]


def _attention_blocks(architecture) -> tuple[int, int]:
    """(attention blocks a token passes through, their width): a decoder layer has two."""
    if getattr(architecture, "is_encoder_decoder", False) and hasattr(architecture, "encoder"):
        encoder, decoder = architecture.encoder, architecture.decoder  # BERT2BERT
        return encoder.num_hidden_layers + 2 * decoder.num_hidden_layers, encoder.hidden_size
    if hasattr(architecture, "encoder_layers"):  # a Transformer (MarianConfig)
        return architecture.encoder_layers + 2 * architecture.decoder_layers, architecture.d_model
    return architecture.num_hidden_layers, architecture.hidden_size


def _layers_and_width(architecture) -> tuple[int, int]:
    if getattr(architecture, "is_encoder_decoder", False) and hasattr(architecture, "encoder"):
        return (
            architecture.encoder.num_hidden_layers + architecture.decoder.num_hidden_layers,
            architecture.encoder.hidden_size,
        )
    if hasattr(architecture, "encoder_layers"):
        return architecture.encoder_layers + architecture.decoder_layers, architecture.d_model
    return architecture.num_hidden_layers, architecture.hidden_size


def _mlm_head(architecture) -> int:
    """The MLM head's transform and vocabulary projection."""
    width = architecture.hidden_size
    return width * width + width * architecture.vocab_size


# -- what a step of each kind of piece runs -------------------------------------------------------
@dataclass(frozen=True)
class _Profile:
    trained: float  # weights per token that get gradients (generated ones included)
    frozen: float  # weights per token that gradients pass through without weight gradients
    generation: float = 0.0  # forward FLOPs of generating the step's adapters, once per step


def _generated_adapter(architecture, bottleneck: int) -> int:
    """A bottleneck adapter in every layer (down and up projection)."""
    layers, width = _layers_and_width(architecture)
    return layers * 2 * width * bottleneck


def _profile(plan, key: str) -> _Profile:
    """Per kind of piece, which weights a token meets and which of them train (see the module
    docstring). A kind this table does not know is costed as full fine-tuning (an upper bound)."""
    from xltransfer.modules.mlm import MASK_PROBABILITY

    piece = plan.pieces[key].piece
    method = plan.trainers[key].params
    architecture = plan.architecture_for(piece.task, piece.params)
    dense = dense_parameters(architecture)
    added = plan.piece_added_parameters(key)
    layers, width = _layers_and_width(architecture)
    if piece.task == "mt":
        generation = 2 * added * layers if piece.method == "hyper-adapters" else 0.0
        return _Profile(dense, 0, generation)
    masked_head = MASK_PROBABILITY * _mlm_head(architecture) if piece.task == "mlm" else 0.0
    if piece.kind in LANGUAGE_SIDE:  # MAD-X LA, BA, MA, MAD-G-ft: an adapter under a frozen encoder
        return _Profile(added, dense + masked_head)
    if piece.kind in ("task-adapter", "few-shot-task-adapter"):
        under = sum(
            plan.piece_added_parameters(need)
            for need in plan.pieces[key].needs
            if plan.pieces[need].piece.kind in LANGUAGE_SIDE
        )
        return _Profile(added, dense + under)
    if piece.kind == "generator":  # MAD-G: one generated LA per step
        bottleneck = method["la_bottleneck"] or round(width / method["la_reduction_factor"])
        calls = layers if method["layer_shared"] else 1
        return _Profile(_generated_adapter(architecture, bottleneck), dense + masked_head, 2 * added * calls)
    if piece.kind in ("hypernetwork", "few-shot-hypernetwork"):  # Hyper-X: one (task, language) per step
        adapter = _generated_adapter(architecture, method["bottleneck"])
        return _Profile(adapter, dense, 2 * added * layers)
    return _Profile(dense + added, 0)  # full fine-tuning, and kinds unknown to this table


def piece_cost(plan, key: str, training_size=None, selection_size=None) -> PieceCost:
    """The piece's steps (planned, or from its epochs over a data size ``training_size(piece)``
    returns, when it can), tokens and FLOPs per step, and its evaluations over the selection set of
    ``selection_size(piece)`` examples."""
    piece = plan.pieces[key].piece
    method = plan.trainers[key]
    if piece.task_owned:  # a vocabulary: no network trains
        return PieceCost(0, "schedule", None, None, 0.0, 0.0)
    batch = method.planned_batch(piece)
    steps, steps_from = method.planned_steps(piece), "schedule"
    if steps is None:
        epochs = method.planned_epochs(piece)
        examples = training_size(piece) if training_size is not None and epochs is not None else None
        steps_from = None
        if examples is not None and batch:
            from xltransfer.train import epoch_steps

            steps, steps_from = epoch_steps(examples, batch, epochs), "data"
    if batch is None:
        return PieceCost(steps, steps_from if steps is not None else None, None, None, None, None)
    architecture = plan.architecture_for(piece.task, piece.params)
    if piece.task == "mt":
        tokens, length = batch, plan.grid.mt.max_tokens
    else:
        tokens, length = batch * plan.grid.max_length, plan.grid.max_length
    blocks, width = _attention_blocks(architecture)
    profile = _profile(plan, key)
    attention = 4 * length * width * blocks
    per_token = TRAINED * profile.trained + FROZEN * profile.frozen + ATTENTION * attention
    per_step = tokens * per_token + 3 * profile.generation
    flops = per_step * steps if steps is not None else None
    evaluations = method.planned_evaluations(piece, steps) if steps else None
    examples = selection_size(piece) if selection_size is not None and evaluations else None
    eval_flops = 0.0
    if evaluations and examples and piece.task != "mt":
        eval_flops = (
            evaluations * examples * length * (FORWARD * (profile.trained + profile.frozen) + attention)
        )
    return PieceCost(steps, steps_from, batch, tokens, per_step, flops, evaluations, examples, eval_flops)


class LocalData:
    """Sizes ``xlt plan`` can know without the hub: examples counted from files already on disk (a
    UD folder, explicit files, a synthetic suite already generated), None for anything else."""

    def __init__(self, plan):
        self.plan = plan
        self._counted: dict[tuple[str, str, str], int | None] = {}

    def count(self, task_name: str, language: str, split: str) -> int | None:
        from xltransfer import registry
        from xltransfer.data.sources import HubSource, PerLanguageSource, SyntheticSource

        if (task_name, language, split) not in self._counted:
            source = self.plan.grid.source_for(task_name)
            if isinstance(source, PerLanguageSource):
                source = source.source(language)
            task = registry.tasks.get(task_name)()
            path = None
            if not isinstance(source, HubSource) and not (
                isinstance(source, SyntheticSource) and not source.suite_dir.is_dir()
            ):
                path = source.locate(task.metadata.data_format, language, split)
            found = len(task.read_file(path)) if path is not None else None
            if found is not None and source.max_sentences is not None:
                found = min(found, source.max_sentences)
            self._counted[(task_name, language, split)] = found
        return self._counted[(task_name, language, split)]

    def training_size(self, piece) -> int | None:
        """``training_size`` for ``piece_cost``: the piece's training examples."""
        sizes = [self.count(piece.task, language, "train") for language in piece.languages]
        return None if any(size is None for size in sizes) else sum(sizes)

    def held_out(self, language: str) -> int:
        """A language's held-out MLM sentences as training reads them: its dev split when the source
        gives one, else 5% of its text on disk, at least one, at most the source's cap; the cap for
        text `xlt plan` does not see (a hub corpus, at the papers' scale)."""
        from xltransfer import registry

        dev = self.count("mlm", language, "dev")
        if dev is not None:
            return dev
        cap = self.plan.grid.source_for("mlm").held_out_cap(language)
        lines = self.count("mlm", language, "train")
        if lines is None:
            return cap
        return max(1, min(cap, int(lines * registry.tasks.get("mlm").held_out_fraction)))

    def selection_size(self, piece) -> int | None:
        """``selection_size`` for ``piece_cost``: examples of one evaluation pass, over the piece's
        languages (held-out MLM text, or the task's dev set when it is on disk)."""
        if piece.task == "mlm":
            return sum(self.held_out(language) for language in piece.languages)
        sizes = [self.count(piece.task, language, "dev") for language in piece.languages]
        return None if any(size is None for size in sizes) else sum(sizes)

    def preparation_tokens(self, costs: dict[str, PieceCost]) -> int:
        """Tokens to prepare: each MLM corpus its pieces read, once (see the module docstring)."""
        max_length = self.plan.grid.max_length
        read: dict[str, int] = {}
        for key, cost in costs.items():
            piece = self.plan.pieces[key].piece
            if piece.task != "mlm" or not cost.steps or not cost.batch:
                continue
            per_language = cost.steps * cost.batch * max_length // max(1, len(piece.languages))
            for language in piece.languages:
                read[language] = max(read.get(language, 0), per_language)
        total = 0
        for language, tokens in read.items():
            lines = self.count("mlm", language, "train")
            held_out = self.held_out(language) * max_length
            total += lines * max_length if lines is not None else tokens + held_out
        return total


def data_preparation_hours(tokens: int) -> float:
    """CPU-hours (one process) to tokenise ``tokens``."""
    return tokens / TOKENIZE_RATE / 3600


def local_training_size(plan):
    """``training_size`` for ``piece_cost``: ``LocalData.training_size``."""
    return LocalData(plan).training_size
