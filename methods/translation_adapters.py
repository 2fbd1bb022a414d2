"""Language adapters and language-pair adapters in a multilingual translation model (Baziotis et
al. 2022, §2.1 and §4 "Baselines"), and the base every MT adapter method shares.

An adapter block follows every encoder and decoder layer (``xltransfer.modules.mt_adapters``).
``lang-adapters`` (Philip et al. 2020): translating xx -> yy, the encoder runs xx's adapters and the
decoder yy's. ``pair-adapters`` (Bapna & Firat 2019): one adapter per direction on both sides.
Unlike the papers they follow, both are trained jointly with the translation model from scratch
(§2.1: better than finetuning them afterwards), on every direction of the grid with the same
recipe as the plain model (temperature T = 2, Adam, inverse square root, label smoothing 0.1).
"""

from __future__ import annotations

from collections.abc import Iterable

from xltransfer import translation
from xltransfer.cell import Cell, Piece
from xltransfer.data.parallel import parse_direction
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import mt_adapters
from xltransfer.modules.seq2seq import train_everything

# Baziotis et al. 2022, §4 "Baselines" and "Large-Scale Models": bottleneck 128 with Transformer-Base
# (d_model 512) and 256 with Transformer-Big (1024); other widths keep the ratio d_model / 4
BOTTLENECK_BY_WIDTH = {512: 128, 1024: 256}


class TranslationAdapterMethod(Method):
    """A translation model with direction-specific modules after its layers, trained jointly with it.

    Subclasses say which blocks a piece adds (``blocks``) and which are active for a direction
    (``active``); generated blocks override ``direction_loss`` and ``ready_for``. The relatedness
    probe (§6.1) re-runs a cell with another source language's modules (``probe_cell``).
    """

    supported_tasks = frozenset({"mt"})
    defaults = {**translation.TRAINING_DEFAULTS, "bottleneck": 0}  # 0: by the model's width, as above
    parameter_sources = {
        **translation.TRAINING_SOURCES,
        "bottleneck": 'Baziotis et al. 2022 §4 "Baselines" (128 on Transformer-Base, 256 on Big; '
        "0: by the model's width)",
    }
    swaps_source_modules = True  # the relatedness probe applies

    @classmethod
    def resolve_params(cls, variant: str, overrides: dict):
        params = super().resolve_params(variant, overrides)
        translation.check_params(params)  # a bad mt_norm is a grid error, before anything trains
        return params

    def pieces(self, cell: Cell) -> list[Piece]:
        return [translation.model_piece(self.name, "translation-model", cell, self.params)]

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["mt_batch_tokens"]

    def planned_steps(self, piece: Piece) -> int:
        return self.params["mt_steps"]

    def planned_batch(self, piece: Piece) -> int:
        return self.params["mt_batch_tokens"]

    def bottleneck(self, model) -> int:
        if self.params["bottleneck"]:
            return self.params["bottleneck"]
        width = mt_adapters.width(model)
        return BOTTLENECK_BY_WIDTH.get(width, max(1, width // 4))

    # -- which blocks -----------------------------------------------------------------------------------
    def blocks(self, directions: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
        """Block names after the encoder layers and after the decoder layers."""
        raise NotImplementedError

    def active(self, source: str, target: str) -> tuple[str, str]:
        """The encoder's and the decoder's block for a direction."""
        raise NotImplementedError

    # -- set-up -----------------------------------------------------------------------------------------
    def prepare_model(self, model, piece: Piece, tasks) -> None:
        """Every block of every direction, trained with the whole model."""
        directions = [parse_direction(unit) for unit in piece.languages]
        encoder, decoder = self.blocks(directions)
        mt_adapters.add_blocks(model, encoder, decoder, self.bottleneck(model))
        train_everything(model)

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        """What translating the cell's direction deploys: the model and its direction's blocks."""
        source, target = cell.source_languages[0], cell.target_language
        encoder, decoder = self.active(source, target)
        mt_adapters.add_blocks(model, [encoder], [decoder], self.bottleneck(model))

    def deployed_state(self, cell: Cell, state):
        """The model's tensors and those of the cell's direction's blocks, not the other directions'."""
        keep = dict(
            zip(mt_adapters.SIDES, self.active(cell.source_languages[0], cell.target_language), strict=True)
        )
        return {
            name: tensor
            for name, tensor in state.items()
            if mt_adapters.block_of(name) in (None, keep[mt_adapters.side_of(name)])
        }

    def ready_for(self, model, cell: Cell, ctx) -> None:
        mt_adapters.activate(model, *self.active(cell.source_languages[0], cell.target_language))

    def probe_cell(self, cell: Cell, source: str) -> Cell:
        """The cell, run with ``source``'s modules in place of its own source language's."""
        import dataclasses

        return dataclasses.replace(cell, source_languages=(source,))

    # -- training ---------------------------------------------------------------------------------------
    def activate_direction(self, model, unit: str) -> None:
        mt_adapters.activate(model, *self.active(*parse_direction(unit)))

    def direction_loss(self, model, batch, unit: str, task):
        """The loss of a batch of one direction (its blocks are active)."""
        return task.loss(model, batch)

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        model = ctx.new_model("mt", seed=piece.seed, params=piece.params)
        self.prepare_model(model, piece, ctx.task)
        model.to(ctx.device)
        task = ctx.task("mt")
        result = translation.train_model(
            model,
            ctx,
            piece,
            self.params,
            f"{self.name}:{self.variant} mt",
            activate=self.activate_direction,
            loss=lambda m, batch, unit: self.direction_loss(m, batch, unit, task),
        )
        return translation.trained(model, result)


class LanguageAdapters(TranslationAdapterMethod):
    name = "lang-adapters"
    summary = (
        "one adapter per language after every layer: the source's in the encoder, the target's in the decoder"
    )
    citation = (
        "Philip et al. 2020, Monolingual adapters for zero-shot NMT; as a baseline of Baziotis et al. 2022"
    )

    def blocks(self, directions):
        sources = dict.fromkeys(mt_adapters.language_block(s) for s, _ in directions)
        targets = dict.fromkeys(mt_adapters.language_block(t) for _, t in directions)
        return list(sources), list(targets)

    def active(self, source, target):
        return mt_adapters.language_block(source), mt_adapters.language_block(target)


class PairAdapters(TranslationAdapterMethod):
    name = "pair-adapters"
    summary = "one adapter per translation direction after every encoder and decoder layer"
    citation = (
        "Bapna & Firat 2019, Simple, scalable adaptation for NMT; as a baseline of Baziotis et al. 2022"
    )

    def blocks(self, directions):
        names = [mt_adapters.pair_block(s, t) for s, t in directions]
        return names, names

    def active(self, source, target):
        name = mt_adapters.pair_block(source, target)
        return name, name
