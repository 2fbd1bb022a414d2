"""MAD-X (Pfeiffer et al. 2020): language adapters by MLM, a task adapter stacked on the source's.

Train a language adapter (LA) per language on unlabelled text with the encoder frozen; train a
task adapter (TA) on the source language with ``Stack(LA_source, TA)``; test on a target with
``Stack(LA_target, TA)``. One LA serves every task and every cell of its language.
"""

from __future__ import annotations

import dataclasses

from xltransfer.methods.stacked import STACKED_DEFAULTS, STACKED_SOURCES, StackedAdapterMethod

from xltransfer.cell import Cell, Piece
from xltransfer.modules import adapters as ad


class MadX(StackedAdapterMethod):
    name = "mad-x"
    summary = "language adapter per language (MLM) + task adapter on Stack(LA, TA); swap the LA at test"
    citation = "Pfeiffer, Vulić, Gurevych, Ruder 2020, MAD-X, EMNLP"
    defaults = {
        **STACKED_DEFAULTS,
        # LA training: BAD-X §3.1 (25k steps; batch, lr and evaluation in STACKED_DEFAULTS)
        "la_steps": 25000,
    }
    parameter_sources = {**STACKED_SOURCES, "la_steps": "BAD-X §3.1 (MAD-X language adapters: 25k steps)"}
    variants = {
        "default": {},
        "no-inv": {"la_invertible": False},
        # MAD-X 2.0 (Pfeiffer et al. 2021): the TA trained, selected and tested without the last
        # layer's LA and TA (parovicm/badx run_udp.py, leave_out_twelvth); a TA piece of its own,
        # on the default variant's LAs (trained in every layer, loaded without the last)
        "2.0": {"ta_leave_out_last_layer": True},
    }

    def language_adapter(self, language: str, seed: int) -> Piece:
        return self.adapter_piece((language,), seed)

    def training_adapter(self, cell: Cell, source: str) -> Piece:
        return self.language_adapter(source, cell.seed)

    def test_adapter(self, cell: Cell) -> Piece:
        return self.language_adapter(cell.target_language, cell.seed)

    def adapter_name(self, piece: Piece) -> str:
        return ad.language_adapter_name(piece.languages[0])

    def mlm_plan(self, piece: Piece) -> tuple[int, list[int], tuple[str, ...]]:
        return self.params["la_steps"], [0], piece.languages

    def source_cell(self, cell: Cell) -> Cell:
        """The source is tested with its own LA under the TA (the swap MAD-X makes for a target)."""
        return dataclasses.replace(super().source_cell(cell), target_language=cell.source_languages[0])
