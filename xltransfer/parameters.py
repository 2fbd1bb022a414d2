"""Parameter counts from architecture configs, on PyTorch's meta device (no weights, no memory).

Methods set models up through ``prepare_model`` / ``prepare_inference``; counting runs the
same code on a meta-device backbone, so the plan's numbers are the numbers training uses.
"""

from __future__ import annotations

from functools import cache

from xltransfer import registry
from xltransfer.cell import Cell, Piece
from xltransfer.method import Method

_PRISTINE: dict[str, object] = {}


def meta_model(architecture):
    """A weightless model, built once per architecture and copied after (building one runs every
    weight initialiser, even on the meta device: seconds per model for mBERT). The copy holds its
    own config, which ``adapters`` records heads and adapters in."""
    import copy

    key = architecture.to_json_string()
    if key not in _PRISTINE:
        _PRISTINE[key] = _build_meta_model(copy.deepcopy(architecture))
    return copy.deepcopy(_PRISTINE[key])


def _build_meta_model(architecture):
    import torch
    import transformers
    from adapters import AutoAdapterModel

    from xltransfer.modules import seq2seq

    if seq2seq.is_translation_config(architecture):
        return seq2seq.meta_model(architecture)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        with torch.device("meta"):
            return AutoAdapterModel.from_config(architecture)
    finally:
        transformers.logging.set_verbosity(verbosity)


def _tasks(name: str):
    return _task_instance(name)


@cache
def _task_instance(name: str):
    return registry.tasks.get(name)()


def count(module, trainable_only: bool = False) -> int:
    """Distinct parameters of a module (tied ones once; fixed sinusoidal tables not at all)."""
    from xltransfer.modules.seq2seq import fixed_parameters

    seen: set[int] = fixed_parameters(module)
    total = 0
    for param in module.parameters():  # parameters() already skips tied duplicates
        if (trainable_only and not param.requires_grad) or id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
    return total


def piece_parameters(method: Method, piece: Piece, architecture) -> tuple[int, int]:
    """(trainable, added): the parameters a piece trains, and of those the ones the method adds to
    the backbone (adapters, generators, heads; what the papers call "extra" parameters), as
    opposed to backbone parameters it trains too (full fine-tuning, Hyper-X's LayerNorms, an MT
    model trained jointly with its adapters)."""
    import torch

    model = meta_model(architecture)
    backbone = {id(p) for p in model.parameters()}
    with torch.device("meta"):
        method.prepare_model(model, piece, _tasks)
        external = method.external_parameters(piece, model)
    added = sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in backbone)
    return count(model, trainable_only=True) + external, added + external


def inference_parameters(method: Method, cell: Cell, architecture) -> dict[str, int]:
    """Backbone parameters and what the method adds to the deployed model (generated adapters count
    as the adapters they are; the generator itself is not deployed)."""
    import torch

    model = meta_model(architecture)
    base = count(model.base_model)
    with torch.device("meta"):
        method.prepare_inference(model, cell, _tasks)
    extra = count(model) - base - _generators(model)
    heads = getattr(model, "heads", {})  # encoder–decoders have no flexible heads
    if "default" in heads:  # the backbone's own MLM head is not the method's
        extra -= count(model.heads["default"]) - _shared_with_base(model, model.heads["default"])
    return {"base_params": base, "extra_params": extra, "total_params": base + extra}


def _generators(model) -> int:
    """Parameters of weight generators: at inference their output is cached, they are not deployed."""
    from xltransfer.modules.generator import Generator

    return sum(count(module) for module in model.modules() if isinstance(module, Generator))


def _shared_with_base(model, head) -> int:
    base_ids = {id(p) for p in model.base_model.parameters()}
    return sum(p.numel() for p in head.parameters() if id(p) in base_ids)
