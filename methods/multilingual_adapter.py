"""The multilingual adapter (BAD-X §3.1, "Multilingual Adapter"): one adapter for the source and
every target of a language set, trained by MLM on one batch of each language in turn, kept at test.

A grid trains one per distinct language set (its source languages plus the task's targets), so
a grid with UD targets for POS/DP and AmericasNLI targets for NLI trains two, as the paper did.
"""

from __future__ import annotations

from xltransfer.methods.stacked import STACKED_DEFAULTS, STACKED_SOURCES, StackedAdapterMethod

from xltransfer.cell import Cell, Piece
from xltransfer.params import stable_hash


class MultilingualAdapter(StackedAdapterMethod):
    name = "multilingual-adapter"
    summary = "one adapter for the source and all targets (MLM, one batch per language in turn) + TA"
    citation = "Parović, Glavaš, Vulić, Korhonen 2022, BAD-X (multilingual adapter baseline), NAACL"
    adapter_kind = "multilingual-adapter"
    defaults = {
        **STACKED_DEFAULTS,
        # BAD-X §3.1: alternating one batch of English and one of each target for 50,000 iterations
        "ma_steps": 50000,
    }
    language_side_params = ("ma_steps",)
    parameter_sources = {
        **STACKED_SOURCES,
        "ma_steps": "BAD-X §3.1 (50,000 iterations, one batch of the source and of each target in turn)",
    }

    def language_set(self, cell: Cell) -> tuple[str, ...]:
        """The source(s) first, then the other languages of the cell's language set, each once."""
        others = [lang for lang in cell.language_set if lang not in cell.source_languages]
        extra = [] if cell.target_language in cell.language_set else [cell.target_language]
        return (*cell.source_languages, *others, *extra)

    def multilingual_adapter(self, cell: Cell) -> Piece:
        return self.adapter_piece(self.language_set(cell), cell.seed)

    def training_adapter(self, cell: Cell, source: str) -> Piece:
        return self.multilingual_adapter(cell)

    def test_adapter(self, cell: Cell) -> Piece:
        return self.multilingual_adapter(cell)

    def adapter_name(self, piece: Piece) -> str:
        return f"multi_{stable_hash(piece.languages, 10)}"

    def mlm_plan(self, piece: Piece) -> tuple[int, list[int], tuple[str, ...]]:
        """Every language in turn; the checkpoint with the lowest mean perplexity over them all."""
        return self.params["ma_steps"], list(range(len(piece.languages))), piece.languages
