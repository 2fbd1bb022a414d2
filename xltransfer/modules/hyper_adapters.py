"""The hyper-network of NMT hyper-adapters (Baziotis et al. 2022, §3): adapters generated from
(source, target, layer) embeddings for every encoder and decoder layer of a translation model.

Source and target share one language table, encoder and decoder layers one layer table (§3
"Input"); [s || t || l] goes through W_in and a ReLU to h (d_h), then N residual blocks
h + W2 ReLU(W1 LN(h)) (§3 "Encoder"), then one projection head per adapter tensor (§3
"Projections"). The heads' outputs are scaled by 1/sqrt(d_h) (§3.1, the fix that lets large d_h
train; ``rescale=False`` is the ablation) and the generated LayerNorm scale is offset by +1
(Appendix B.2). The generated block is the ``adapters`` bottleneck of ``mt_adapters``, which has
biases in its projections: they get heads of their own (d_h x d_b and d_h x d_z, a 0.5% addition).

Which languages the encoder's and the decoder's adapters see is the ``inputs`` variant (§6.4,
Table 5): "st-t" (encoder (s, t), decoder (t), the default), "st-st", "s-t". A language left out
is masked: its slot of the input is zeros. Dropout, when set, acts inside the hyper-network (after
W_in and in the residual blocks), never on the generated weights (§6.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from xltransfer.modules.generator import Generator
from xltransfer.modules.mt_adapters import ROLES

# §6.4, Table 5: which languages condition the encoder's and the decoder's adapters
INPUTS = {"st-t": ("st", "t"), "st-st": ("st", "st"), "s-t": ("s", "t")}


class ResidualBlock(nn.Module):
    def __init__(self, size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(size)
        self.inner = nn.Linear(size, size)
        self.outer = nn.Linear(size, size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.outer(self.dropout(torch.relu(self.inner(self.norm(h)))))


class HyperAdapterNetwork(Generator):
    """(source, target) -> every layer's adapter tensors, by the model's full parameter names.

    ``slots`` lists, per layer (encoder layers first, then decoder layers), the full names of the
    adapter's tensors by role (``mt_adapters.block_parameters``); ``encoder_layers`` says where the
    decoder's begin. Head weights start Xavier-uniform (fairseq's default for a Linear, the toolkit
    of the paper), so without the rescaling the generated weights' spread grows with d_h (§3.1).
    """

    def __init__(
        self,
        languages: Sequence[str],
        slots: Sequence[dict[str, str]],
        encoder_layers: int,
        width: int,
        bottleneck: int,
        hidden: int,
        embedding_dim: int = 50,
        blocks: int = 2,
        dropout: float = 0.0,
        rescale: bool = True,
        inputs: str = "st-t",
    ):
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"unknown hyper-network inputs '{inputs}' (known: {', '.join(INPUTS)})")
        self.languages = list(languages)
        self.index = {lang: i for i, lang in enumerate(self.languages)}
        self.slots = [dict(slot) for slot in slots]
        self.encoder_layers = encoder_layers
        self.inputs = INPUTS[inputs]
        self.scale = 1.0 / math.sqrt(hidden) if rescale else 1.0
        self.language = nn.Embedding(len(self.languages), embedding_dim)
        self.layer = nn.Embedding(len(self.slots), embedding_dim)
        self.input = nn.Linear(3 * embedding_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(ResidualBlock(hidden, dropout) for _ in range(blocks))
        self.shapes = {
            "ln_weight": (width,),
            "ln_bias": (width,),
            "down_weight": (bottleneck, width),
            "down_bias": (bottleneck,),
            "up_weight": (width, bottleneck),
            "up_bias": (width,),
        }
        self.heads = nn.ModuleDict({role: nn.Linear(hidden, math.prod(self.shapes[role])) for role in ROLES})
        for head in self.heads.values():
            nn.init.xavier_uniform_(head.weight)
            nn.init.zeros_(head.bias)

    def language_id(self, language: str) -> int:
        if language not in self.index:
            raise KeyError(f"the hyper-network has no embedding for language '{language}'")
        return self.index[language]

    def hidden(self, source: str, target: str) -> torch.Tensor:
        """h for every layer (rows: encoder layers, then decoder layers)."""
        s = self.language.weight[self.language_id(source)]
        t = self.language.weight[self.language_id(target)]
        zero = torch.zeros_like(s)
        rows = []
        for position in range(len(self.slots)):
            seen = self.inputs[0] if position < self.encoder_layers else self.inputs[1]
            rows.append(torch.cat([s if "s" in seen else zero, t if "t" in seen else zero]))
        inputs = torch.cat([torch.stack(rows), self.layer.weight], dim=1)
        h = self.dropout(torch.relu(self.input(inputs)))
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, condition: tuple[str, str]) -> dict[str, torch.Tensor]:
        source, target = condition
        h = self.hidden(source, target)
        out: dict[str, torch.Tensor] = {}
        for role, head in self.heads.items():
            generated = head(h) * self.scale  # (layers, numel)
            if role == "ln_weight":
                generated = generated + 1.0  # Appendix B.2: LN(z | gamma + 1, beta)
            for position, slot in enumerate(self.slots):
                out[slot[role]] = generated[position].view(self.shapes[role])
        return out
