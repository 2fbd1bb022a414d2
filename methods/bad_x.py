"""BAD-X (Parović et al. 2022): one bilingual adapter per source–target pair, kept at test.

The bilingual adapter (BA) is trained by MLM on alternating batches of the source and the target
language; ``N:M`` means N source batches, then M target batches, repeated. Its budget matches
two MAD-X language adapters, and the checkpoint with the lowest target-language held-out
perplexity is kept. The task adapter is trained on the source's data on ``Stack(BA, TA)`` and
the target is tested with the same BA.
"""

from __future__ import annotations

import re

from xltransfer.methods.stacked import (
    IN_ORDER_DEFAULTS,
    IN_ORDER_SOURCES,
    STACKED_DEFAULTS,
    STACKED_SOURCES,
    StackedAdapterMethod,
)

from xltransfer.cell import Cell, Piece

_RATIO = re.compile(r"^([1-9][0-9]*):([1-9][0-9]*)$")
RATIOS = ("1:1", "1:2", "2:1", "1:5", "5:1")  # BAD-X §3.1 "BA Variants"


def ratio_pattern(ratio: str) -> list[int]:
    """Stream indices of one cycle: ``5:1`` -> five source batches (0) then one target batch (1)."""
    match = _RATIO.match(ratio)
    if match is None:
        raise ValueError(f"ratio '{ratio}' must be SOURCE:TARGET batch counts, e.g. 1:1 or 5:1")
    source, target = int(match.group(1)), int(match.group(2))
    return [0] * source + [1] * target


class BadX(StackedAdapterMethod):
    name = "bad-x"
    summary = "bilingual adapter per source-target pair (MLM on alternating batches) + TA on Stack(BA, TA)"
    citation = "Parović, Glavaš, Vulić, Korhonen 2022, BAD-X, NAACL"
    adapter_kind = "bilingual-adapter"
    defaults = {
        **STACKED_DEFAULTS,
        # BAD-X §3.1: "Balanced" BAD-X alternates one source and one target batch for 50,000
        # iterations, matching two 25k-step MAD-X LAs; other hyper-parameters as MAD-X LA training
        "ba_steps": 50000,
        "ratio": "1:1",
        **IN_ORDER_DEFAULTS,
    }
    parameter_sources = {
        **STACKED_SOURCES,
        "ba_steps": "BAD-X §3.1 (50,000 iterations, matching two 25k-step MAD-X LAs)",
        "ratio": 'BAD-X §3.1 ("Balanced" 1:1 source:target batches; variants 1:2, 2:1, 1:5, 5:1)',
        **IN_ORDER_SOURCES,
    }
    variants = {"default": {}, **{ratio: {"ratio": ratio} for ratio in RATIOS}}
    language_side_params = ("ba_steps", "ratio", "mlm_in_order")

    @classmethod
    def resolve_params(cls, variant: str, overrides: dict):
        params = super().resolve_params(variant, overrides)
        ratio_pattern(params["ratio"])  # a bad ratio is a grid error, before anything trains
        return params

    def bilingual_adapter(self, source: str, target: str, seed: int) -> Piece:
        return self.adapter_piece((source, target), seed)

    def training_adapter(self, cell: Cell, source: str) -> Piece:
        return self.bilingual_adapter(source, cell.target_language, cell.seed)

    def test_adapter(self, cell: Cell) -> Piece:
        """With several sources, the target is tested with the first source's BA."""
        return self.bilingual_adapter(cell.source_languages[0], cell.target_language, cell.seed)

    def adapter_name(self, piece: Piece) -> str:
        source, target = piece.languages
        return f"pair_{source}_{target}"

    def mlm_plan(self, piece: Piece) -> tuple[int, list[int], tuple[str, ...]]:
        return self.params["ba_steps"], ratio_pattern(self.params["ratio"]), piece.languages[1:]
