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
- Not counted: embedding lookups (no FLOPs), task heads, LayerNorms, MT adapter blocks, data
  loading and evaluation during training.

GPU-hours are FLOPs over a reference accelerator's dense BF16 peak times an assumed utilisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# NVIDIA A100 datasheet: 312 TFLOP/s dense BF16 tensor-core peak
REFERENCE_ACCELERATOR = "NVIDIA A100"
PEAK_FLOPS = 312e12
# the share of that peak training reaches (model FLOPs utilisation): assumed, not measured here
UTILISATION = 0.40

TRAINED, FROZEN, ATTENTION = 6, 4, 3  # FLOPs per parameter per token (attention: times its forward)
LANGUAGE_SIDE = ("language-adapter", "bilingual-adapter", "multilingual-adapter")


def assumptions() -> str:
    """The one line that says how every estimate was made."""
    return (
        f"GPU-hours on an {REFERENCE_ACCELERATOR} (dense BF16 peak {PEAK_FLOPS / 1e12:.0f} TFLOP/s) at "
        f"{UTILISATION:.0%} utilisation; training FLOPs 6 per trained and 4 per frozen weight per token "
        "(backward without weight gradients), attention 3x 4·s·d per layer, sequences at max_length "
        "(an upper bound), MLM head at masked positions only, generators once per step; heads, "
        "LayerNorms and evaluation not counted"
    )


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

    @property
    def gpu_hours(self) -> float | None:
        return gpu_hours(self.flops) if self.flops is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "steps_from": self.steps_from,
            "batch": self.batch,
            "tokens_per_step": self.tokens_per_step,
            "flops_per_step": self.flops_per_step,
            "flops": self.flops,
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


def piece_cost(plan, key: str, training_size=None) -> PieceCost:
    """The piece's steps (planned, or from its epochs over a data size ``training_size(piece)``
    returns, when it can), tokens and FLOPs per step."""
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
    per_token = TRAINED * profile.trained + FROZEN * profile.frozen + ATTENTION * 4 * length * width * blocks
    per_step = tokens * per_token + 3 * profile.generation
    flops = per_step * steps if steps is not None else None
    return PieceCost(steps, steps_from, batch, tokens, per_step, flops)


def local_training_size(plan):
    """``training_size`` for ``piece_cost``: the piece's training examples counted from files
    already on disk (a UD folder, explicit files, a synthetic suite already generated); None when
    any of its languages reads from the hub, which the plan does not touch."""
    from xltransfer import registry
    from xltransfer.data.sources import HubSource, PerLanguageSource, SyntheticSource

    counted: dict[tuple[str, str], int | None] = {}

    def count(task_name: str, language: str) -> int | None:
        if (task_name, language) not in counted:
            source = plan.grid.source_for(task_name)
            if isinstance(source, PerLanguageSource):
                source = source.source(language)
            task = registry.tasks.get(task_name)()
            path = None
            if not isinstance(source, HubSource) and not (
                isinstance(source, SyntheticSource) and not source.suite_dir.is_dir()
            ):
                path = source.locate(task.metadata.data_format, language, "train")
            counted[(task_name, language)] = len(task.read_file(path)) if path is not None else None
        return counted[(task_name, language)]

    def training_size(piece) -> int | None:
        sizes = [count(piece.task, language) for language in piece.languages]
        return None if any(size is None for size in sizes) else sum(sizes)

    return training_size
