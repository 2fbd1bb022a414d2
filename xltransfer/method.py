"""The method interface: what a registered method class provides to the harness.

A method declares its variants and paper defaults, the tasks and settings it supports, the
pieces a cell needs, how to train one piece and how to predict for a cell. It never reads
files or writes results: the harness hands it data through a context and stores what it returns.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from xltransfer.cell import Cell, Piece
from xltransfer.params import Params
from xltransfer.task import GRID_ENCODING, Encoding

TaskLookup = Callable[[str], Any]  # task name -> Task instance

if TYPE_CHECKING:
    import torch

    from xltransfer.context import RunContext


@dataclass
class TrainedPiece:
    """What training returns: the trained tensors and facts about the run (kept with the artifact)."""

    state: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)
    # files that are not tensors (a trained vocabulary), written into the artifact's folder
    write_files: Callable[[Path], None] | None = None


# End tasks whose name prefixes the method parameters that configure them alone (``mt_steps``,
# ``nli_ta_epochs``); ``mlm_packing`` is not one: every task's language adapters train by MLM.
TASK_PARAMETER_PREFIXES = ("pos", "dp", "ner", "nli", "mt")


def parameter_task(name: str) -> str | None:
    """The one task a method parameter configures (by its name's prefix), or None for every task."""
    prefix = name.split("_", 1)[0]
    return prefix if "_" in name and prefix in TASK_PARAMETER_PREFIXES else None


class Method(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    citation: ClassVar[str] = ""
    supported_tasks: ClassVar[frozenset[str]]
    supported_settings: ClassVar[frozenset[str]] = frozenset({"zero-shot"})
    defaults: ClassVar[dict[str, Any]]
    variants: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    # where each default comes from: parameter -> "paper, section (what it says)" or "ours: why"
    # (`xlt describe` prints it; every parameter of a registered method has one, a test checks)
    parameter_sources: ClassVar[dict[str, str]] = {}
    # a sanity floor (the majority baseline): reports never test it for significance
    reference_floor: ClassVar[bool] = False
    # parameters `xlt check-method` sets beyond its shrunken budgets (e.g. a required language list)
    check_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, variant: str = "default", params: Params | None = None):
        self.variant = variant
        self.params = params if params is not None else self.resolve_params(variant, {})

    @classmethod
    def parameter_source(cls, name: str) -> str | None:
        """The paper section (or our reason) behind a parameter's default; None when undeclared."""
        return cls.parameter_sources.get(name)

    @classmethod
    def resolve_params(cls, variant: str, overrides: dict[str, Any]) -> Params:
        """Paper defaults, then the variant's changes, then the grid's overrides."""
        return Params({**cls.defaults, **cls.variants[variant], **overrides})

    @abstractmethod
    def pieces(self, cell: Cell) -> list[Piece]:
        """The pieces the cell's predictions are made with (their ``needs`` are planned too)."""

    @abstractmethod
    def train(self, piece: Piece, ctx: RunContext) -> TrainedPiece:
        """Train one piece; its ``needs`` are available through ``ctx.load_piece``."""

    @abstractmethod
    def prepare_inference(self, model, cell: Cell, tasks: TaskLookup) -> None:
        """Set the model up as the cell is evaluated (modules added, the right ones active).

        Used with loaded weights by ``predict`` and on the meta device to count the parameters
        a deployed model carries (``extra_params``)."""

    def predict(self, cell: Cell, examples: list, ctx: RunContext) -> list:
        """Default: the inference model with every piece's tensors loaded, run by the task."""
        from xltransfer.modules.adapters import load_states
        from xltransfer.train import EVAL_BATCH_SIZE, fixed_batches, predict_all

        model = ctx.new_model(cell.task, params=cell.params)
        self.prepare_inference(model, cell, ctx.task)
        model.to(ctx.device)
        load_states(model, (self.deployed_state(cell, ctx.load_state(p)) for p in self.pieces(cell)))
        self.ready_for(model, cell, ctx)
        task = ctx.task(cell.task)
        tokenizer = ctx.tokenizer_for(cell.task)
        features = task.encode(examples, tokenizer, self.encoding(cell.task).length(ctx.grid, cell.task))
        batches = fixed_batches(features, lambda f: task.collate(f, tokenizer), EVAL_BATCH_SIZE)
        return predict_all(model, self.predictor(cell, task), batches)

    def encoding(self, task: str) -> Encoding:
        """How the method has a task's examples encoded where it departs from the grid (its length,
        long training examples left out: ``xltransfer.task.Encoding``). Default: the grid's way."""
        return GRID_ENCODING

    def predictor(self, cell: Cell, task) -> Callable[[Any, Any], list]:
        """What turns a batch into the cell's predictions: the task's ``predict`` by default (a
        method may choose among a task's options, e.g. greedy dependency decoding)."""
        return task.predict

    def deployed_state(self, cell: Cell, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The part of a trained piece's tensors the cell's inference model holds (e.g. one
        direction's adapters out of every direction's). Default: all of them."""
        return state

    def ready_for(self, model, cell: Cell, ctx: RunContext) -> None:
        """Last set-up once the pieces are loaded, before predicting (e.g. generate the cell's adapter)."""
        return None

    def source_cell(self, cell: Cell) -> Cell:
        """The cell whose model is also tested on the source language's test set, a sanity signal
        recorded with every cell (a broken adapter then shows in the source score as well).
        Default: the cell itself, or its zero-shot model for a few-shot cell."""
        return dataclasses.replace(cell, setting="zero-shot", shots=0) if cell.setting == "few-shot" else cell

    def export_adapter(
        self, ctx: RunContext, folder: Path, language: str, seed: int, task: str | None = None
    ) -> str:
        """Write the adapter the method uses for ``language`` as a standard ``adapters`` folder
        (``model.load_adapter(folder)`` loads it without this project); returns its name. ``task``:
        for a method whose adapters depend on the task too (Hyper-X: one per task and language)."""
        from xltransfer.errors import XltError

        raise XltError(f"method {self.name} generates no adapters: nothing to export")

    def language_embeddings(self, piece: Piece, state: dict[str, torch.Tensor]) -> dict[str, list[float]]:
        """The language embeddings a trained piece learned, by language (for the report's language
        map); none by default."""
        return {}

    def other_data(self, piece: Piece) -> list[tuple[str, str]]:
        """(task, language) data a piece trains on besides its own task's data for its languages
        (e.g. the MLM text Hyper-X learns target-language embeddings from): read up front and part
        of the piece's key."""
        return []

    def evaluation_data(self, cell: Cell) -> list[tuple[str, str]]:
        """(task, language) training data a method reads when it predicts, not through a piece (the
        majority baseline counts its source labels): read up front like every input, and part of
        the cell's fingerprint, so a changed file re-evaluates the cell."""
        return []

    def record_extra(self, cell: Cell) -> dict[str, Any]:
        """Facts about the cell the method knows and a reader of the results needs (e.g. whether a
        generated adapter's language was among the generator's training languages)."""
        return {}

    def external_parameters(self, piece: Piece, model) -> int:
        """Trainable parameters a piece keeps outside the model (a generator), counted by ``xlt plan``
        on the weightless model ``prepare_model`` set up."""
        return 0

    def planned_steps(self, piece: Piece) -> int | None:
        """Optimiser steps the piece will take, when known before reading data."""
        return None

    def planned_batch(self, piece: Piece) -> int | None:
        """Examples per optimiser step (for MT: the padded-token budget of a step), so ``xlt plan``
        can estimate the compute of a step; None when unknown."""
        return None

    def planned_epochs(self, piece: Piece) -> float | None:
        """For a piece trained for a number of passes over its data (``planned_steps`` None): how
        many; ``xlt plan`` turns them into steps when it can size the data offline."""
        return None

    def planned_evaluations(self, piece: Piece, steps: int) -> int | None:
        """How many times the piece's training evaluates its selection set (held-out text, a dev
        set) over ``steps`` steps, for ``xlt plan``'s estimate; None when it selects on nothing
        (or the method does not say)."""
        return None

    def training_batch_size(self, cell: Cell) -> int | None:
        """The batch size the cell's task training used (recorded: scores move with it)."""
        return None

    @abstractmethod
    def prepare_model(self, model, piece: Piece, tasks: TaskLookup) -> None:
        """Add the piece's modules (adapters, heads) to a fresh backbone and leave only its own
        parameters trainable. Training calls it on real weights; ``xlt plan`` calls it on the meta
        device to count trainable parameters, so counts and training cannot disagree."""
