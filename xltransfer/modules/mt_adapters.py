"""Adapters after every encoder and decoder layer of a translation model, one of them active per side.

Baziotis et al. (2022, §2.1, after Bapna & Firat 2019 and Philip et al. 2020) put one adapter block
after each Transformer layer's output z: ``U(ReLU(D LN(z))) + z``. Each block here is the
``adapters`` library's own bottleneck module (``Adapter`` with a ``BnConfig``: its own LayerNorm
before the down-projection, ReLU, a residual, none of the layer's LayerNorms), so its parameters
and FLOPs are those of any ``adapters`` bottleneck of that size. ``adapters`` cannot place modules
in a Marian model, so a forward hook on each layer applies the layer's active block to the
layer's output (for BERT2BERT the same hook goes on the BERT layers).

Blocks are named: a language (``lang_de``: source language in the encoder, target in the decoder),
a direction (``pair_de_en``), or one shared slot whose weights a hyper-network writes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

SIDES = ("encoder", "decoder")
ROLES = ("ln_weight", "ln_bias", "down_weight", "down_bias", "up_weight", "up_bias")
_ROLE_OF = {  # parameter names inside an ``adapters`` Adapter built with ln_before=True
    "adapter_norm_before.weight": "ln_weight",
    "adapter_norm_before.bias": "ln_bias",
    "adapter_down.1.weight": "down_weight",
    "adapter_down.1.bias": "down_bias",
    "adapter_up.weight": "up_weight",
    "adapter_up.bias": "up_bias",
}


def block_of(parameter: str) -> str | None:
    """The block a parameter name belongs to, or None for the model's own parameters."""
    marker = ".xlt_adapters.blocks."
    if marker not in parameter:
        return None
    return parameter.split(marker, 1)[1].split(".", 1)[0]


def side_of(parameter: str) -> str:
    """ "encoder" or "decoder": the half of the model a parameter is in (Marian or BERT2BERT)."""
    return "decoder" if parameter.startswith(("model.decoder.", "decoder.")) else "encoder"


def language_block(language: str) -> str:
    return f"lang_{language}"


def pair_block(source: str, target: str) -> str:
    return f"pair_{source}_{target}"


def block_config():
    """The paper's block as an ``adapters`` config: LN -> down -> ReLU -> up, plus the layer output."""
    from adapters import BnConfig

    return BnConfig(
        mh_adapter=False,
        output_adapter=True,
        reduction_factor=1,  # the bottleneck is passed explicitly
        non_linearity="relu",
        ln_before=True,
        original_ln_before=False,
        original_ln_after=False,
        residual_before_ln=True,
        init_weights="bert",
    )


class LayerAdapters(nn.Module):
    """The blocks after one layer; ``active`` names the one applied (None: the layer is unchanged)."""

    def __init__(self, width: int, bottleneck: int):
        super().__init__()
        self.width, self.bottleneck = width, bottleneck
        self.blocks = nn.ModuleDict()
        self.active: str | None = None

    def add(self, name: str) -> None:
        from adapters.methods.modeling import Adapter

        if name not in self.blocks:
            self.blocks[name] = Adapter(name, self.width, self.bottleneck, block_config())

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.active is None:
            return hidden
        return self.blocks[self.active](hidden, residual_input=hidden)[0]


def _after_layer(layer: nn.Module, args, output):
    hidden = layer.xlt_adapters(output[0])
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def layers(model) -> dict[str, list[nn.Module]]:
    """The encoder's and the decoder's layers, in order (Marian or BERT2BERT)."""
    from transformers import EncoderDecoderModel

    if isinstance(model, EncoderDecoderModel):
        return {
            "encoder": list(model.encoder.encoder.layer),
            "decoder": list(model.decoder.base_model.encoder.layer),
        }
    return {"encoder": list(model.model.encoder.layers), "decoder": list(model.model.decoder.layers)}


def width(model) -> int:
    config = model.config
    return config.encoder.hidden_size if hasattr(config, "encoder") else config.d_model


def add_blocks(model, encoder: Iterable[str], decoder: Iterable[str], bottleneck: int) -> None:
    """Add named blocks after every encoder layer (``encoder``) and every decoder layer (``decoder``)."""
    names = {"encoder": list(encoder), "decoder": list(decoder)}
    for side, side_layers in layers(model).items():
        for layer in side_layers:
            if not hasattr(layer, "xlt_adapters"):
                layer.xlt_adapters = LayerAdapters(width(model), bottleneck)
                layer.register_forward_hook(_after_layer)
            for name in names[side]:
                layer.xlt_adapters.add(name)


def activate(model, encoder: str | None, decoder: str | None) -> None:
    """Make ``encoder``'s blocks active after the encoder layers and ``decoder``'s after the decoder's."""
    for side, side_layers in layers(model).items():
        name = encoder if side == "encoder" else decoder
        for layer in side_layers:
            if name is not None and name not in layer.xlt_adapters.blocks:
                raise KeyError(f"no adapter '{name}' in the {side}")
            layer.xlt_adapters.active = name


def block_parameters(model, name: str) -> list[dict[str, str]]:
    """Full parameter names of block ``name``, one {role: name} per layer: encoder layers, then decoder."""
    full = {id(p): n for n, p in model.named_parameters()}
    out = []
    for side_layers in layers(model).values():
        for layer in side_layers:
            block = layer.xlt_adapters.blocks[name]
            out.append({_ROLE_OF[n]: full[id(p)] for n, p in block.named_parameters() if n in _ROLE_OF})
    return out


def freeze_blocks(model, name: str) -> None:
    """Block ``name`` holds generated weights: none of its own parameters train."""
    for side_layers in layers(model).values():
        for layer in side_layers:
            for param in layer.xlt_adapters.blocks[name].parameters():
                param.requires_grad = False
