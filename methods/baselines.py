"""Reference floors that train no network: a score a real method must beat to mean anything."""

from __future__ import annotations

from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece


class MajorityLabel(Method):
    name = "majority"
    summary = "predict the source training data's most frequent label everywhere (a sanity floor)"
    supported_tasks = frozenset({"pos", "dp", "ner", "nli"})
    supported_settings = frozenset({"zero-shot", "mixed"})
    defaults: dict = {}
    reference_floor = True

    def pieces(self, cell: Cell) -> list[Piece]:
        return []

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        raise TypeError("the majority baseline trains no piece")

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        """Nothing is added: the floor uses no model."""

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        raise TypeError("the majority baseline trains no piece")

    def evaluation_data(self, cell: Cell) -> list[tuple[str, str]]:
        return [(cell.task, language) for language in cell.source_languages]

    def predict(self, cell: Cell, examples: list, ctx) -> list:
        task = ctx.task(cell.task)
        train = (ex for task, lang in self.evaluation_data(cell) for ex in ctx.examples(task, lang, "train"))
        return task.majority_predictions(train, examples)  # counts the training labels in one pass
