"""Bottleneck adapters from the ``adapters`` library, named by role so pieces load into any model.

A language adapter for Turkish is always ``lang_tr`` and a POS task adapter ``task_pos``, so a
piece trained in one model loads by parameter name into another (e.g. at test time, the target
language adapter under the task adapter trained on the source's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch


def language_adapter_name(language: str) -> str:
    return f"lang_{language}"


def task_adapter_name(task: str) -> str:
    return f"task_{task}"


def bottleneck_config(
    hidden_size: int,
    *,
    reduction_factor: float,
    bottleneck: int | None = None,
    invertible: bool = False,
    leave_out: Iterable[int] = (),
    ln_after: bool = False,
    before_residual_ln: bool = False,
):
    """A sequential bottleneck config after each layer's feed-forward block, in every layer but those
    of ``leave_out``; ``bottleneck`` overrides the reduction factor; ``ln_after`` puts a LayerNorm on
    the adapter's output before its residual is added (Hyper-X's post-adapter LayerNorm).

    Where the adapter reads: by default Pfeiffer's position, the layer's LayerNorm-ed sum
    LN(f + x) of the block's output f and its input x, giving LN(f + x + A(LN(f + x))) (the adapter's
    own residual is f). ``before_residual_ln``: the block's output f itself, before the layer's
    residual and LayerNorm, which then apply once: LN(f + A(f) + x), Hyper-X's position
    (ahmetustun/hyperx src/hg_utils/bert/modeling_bert.py, BertOutput.forward calls the generated
    adapter on dense(h) before LayerNorm(h + input_tensor))."""
    from adapters import SeqBnConfig, SeqBnInvConfig

    factor = hidden_size / bottleneck if bottleneck else reduction_factor
    config_class = SeqBnInvConfig if invertible else SeqBnConfig
    extra: dict[str, Any] = {"ln_after": True, "adapter_residual_before_ln": False} if ln_after else {}
    if before_residual_ln:
        extra["original_ln_before"] = False
    return config_class(reduction_factor=factor, leave_out=sorted(leave_out), **extra)


def add_bottleneck_adapter(model, name: str, **options: Any) -> str:
    """Add (once) a bottleneck adapter sized for this model's hidden size."""
    if name not in model.adapters_config:
        config = model.config
        model.add_adapter(name, config=bottleneck_config(config.hidden_size, **options))
    return name


def without_layers(state: Mapping[str, Any], layers: Iterable[int]) -> dict[str, Any]:
    """A piece's tensors less those inside the given encoder layers (an adapter trained in every
    layer, loaded into a model where it leaves some out: MAD-X 2.0's language adapter)."""
    markers = tuple(f".layer.{layer}." for layer in layers)
    return {name: tensor for name, tensor in state.items() if not any(m in name for m in markers)}


def without_heads(state: Mapping[str, Any], heads: Iterable[str]) -> dict[str, Any]:
    """A piece's tensors less those of the given heads (a language adapter's MLM head, which a task
    adapter stacked on it never uses and a backbone saved without an MLM head has no place for)."""
    prefixes = tuple(f"heads.{head}." for head in heads)
    return {name: tensor for name, tensor in state.items() if not name.startswith(prefixes)}


def train_only(model, adapter: str | None = None, heads: Iterable[str] = ()) -> None:
    """Freeze everything, then unfreeze one adapter (with its invertible part) and some heads."""
    for param in model.parameters():
        param.requires_grad = False
    if adapter is not None:
        marker = f".{adapter}."
        for name, param in model.named_parameters():
            if marker in name:
                param.requires_grad = True
    for head in heads:
        for param in model.heads[head].parameters():
            param.requires_grad = True


def train_mlm_head(model, head: str = "default") -> None:
    """Unfreeze an MLM head's transform and output bias; its output weights, tied to the frozen input
    embeddings, stay frozen (``named_parameters`` lists a tied tensor once, under the embeddings)."""
    for param in model.heads[head].parameters():
        if param is not model.get_input_embeddings().weight:
            param.requires_grad = True


def state_of(model, adapters: Iterable[str] = (), heads: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """The tensors of some adapters and heads, by parameter name."""
    markers = [f".{a}." for a in adapters]
    prefixes = [f"heads.{h}." for h in heads]
    return {
        name: param.detach().cpu().clone()
        for name, param in model.named_parameters()
        if any(m in name for m in markers) or any(name.startswith(p) for p in prefixes)
    }


def load_states(model, states: Iterable[Mapping[str, Any]]) -> None:
    """Load piece states by name; a tensor the model has no place for is an error, not ignored."""
    for state in states:
        result = model.load_state_dict(dict(state), strict=False)
        if result.unexpected_keys:
            raise KeyError(f"piece does not fit the model: unexpected {result.unexpected_keys[:5]}")
