"""The task interface: data format, head, encoding, prediction and the task's own scorer.

One class per task lives in ``tasks/``; it states what it reads, how it is scored and which
metric is its headline, in one validated metadata object.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from xltransfer.data.encoded import subset

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TaskMetadata:
    name: str
    description: str
    data_format: str  # file format a data source provides: "conllu", "bio", "nli-tsv", "parallel", "text"
    metrics: tuple[str, ...]
    main_metric: str
    labels: tuple[str, ...] = ()  # fixed label inventory, when the task has one
    higher_is_better: bool = True
    citation: str = ""

    def __post_init__(self) -> None:
        if self.main_metric not in self.metrics:
            raise ValueError(f"task {self.name}: main metric {self.main_metric} not in {self.metrics}")


@dataclass(frozen=True)
class Encoding:
    """How a method has a task's examples encoded where it departs from the grid (the defaults keep
    the grid's way): ``max_length`` subwords per example, special tokens included (0: the grid's,
    ``Grid.length_for``); training examples of ``drop_subwords`` subwords or more, special tokens not
    counted, left out of training (0: none left out, a long one is cut at ``max_length``)."""

    max_length: int = 0
    drop_subwords: int = 0

    def length(self, grid, task: str) -> int:
        """The subwords per example a task's data is encoded at under this encoding."""
        return self.max_length or grid.length_for(task)


GRID_ENCODING = Encoding()  # a task's data as the grid encodes it


class Task(ABC):
    metadata: ClassVar[TaskMetadata]
    # when the data has no dev split, hold out this fraction of train (every k-th example) for selection
    held_out_fraction: ClassVar[float] = 0.0
    # when a source has no dev split either, select checkpoints on its train split (else keep the last)
    select_on_train: ClassVar[bool] = True
    # checkpoints are chosen on the dev loss (lower is better) instead of the main metric
    select_by_loss: ClassVar[bool] = False
    # the columns of ``example_statistics``; empty for a task without per-example statistics
    statistics_names: ClassVar[tuple[str, ...]] = ()
    # the file name ending of ``write_predictions``' format (a cell's predictions are kept under it)
    prediction_suffix: ClassVar[str] = ".txt"

    @property
    def name(self) -> str:
        return self.metadata.name

    @abstractmethod
    def read_file(self, path: Path) -> list[Any]:
        """Examples from a local file; malformed input raises DataFormatError naming file and line."""

    def iter_file(self, path: Path) -> Iterator[Any]:
        """The file's examples one at a time; a task whose reader can stream overrides this."""
        yield from self.read_file(path)

    def read_hub(self, dataset: str, config: str | None, split: str, revision: str | None) -> list[Any]:
        """The hub split's examples as a list: ``iter_hub``'s. A task overrides one of the two."""
        return list(self.iter_hub(dataset, config, split, revision))

    def iter_hub(self, dataset: str, config: str | None, split: str, revision: str | None) -> Iterator[Any]:
        """The hub split's examples one at a time (read when the first is asked for, so a source can
        name the split a dataset lacks): ``read_hub``'s, unless the task streams its rows."""
        if type(self).read_hub is Task.read_hub:
            raise NotImplementedError(f"task {self.name} has no hub reader")
        yield from self.read_hub(dataset, config, split, revision)

    def read_hub_first(
        self, dataset: str, config: str | None, split: str, revision: str | None, count: int
    ) -> list[Any]:
        """The first ``count`` examples (a source's ``max_sentences``), reading no further."""
        return list(itertools.islice(self.iter_hub(dataset, config, split, revision), count))

    # -- data units: a language for most tasks; a direction ("en>de") for MT ------------------------
    def has_data(self, source, unit: str, split: str) -> bool:
        return source.has(self.metadata.data_format, unit, split)

    def read_data(self, source, unit: str, split: str) -> list[Any]:
        return source.read(self, unit, split)

    def iter_data(self, source, unit: str, split: str) -> Iterator[Any]:
        """``read_data``'s examples one at a time (what a train split on disk is written from); a task
        that overrides ``read_data`` overrides this too."""
        return source.iter_read(self, unit, split)

    def data_fingerprint(self, source, unit: str, split: str) -> str | None:
        return source.fingerprint(self.metadata.data_format, unit, split)

    def test_unit(self, cell) -> str:
        """The data a cell is tested on."""
        return cell.target_language

    def training_examples(self, examples: list[Any], tokenizer) -> list[Any]:
        """The training examples actually trained on (MT drops over-long and ill-proportioned pairs)."""
        return examples

    def subword_lengths(self, examples: list[Any], tokenizer) -> list[int]:
        """Per example, its subwords without special tokens (what ``Encoding.drop_subwords`` compares)."""
        raise NotImplementedError(f"task {self.name} does not count its examples' subwords")

    def without_long(self, examples: list[Any], tokenizer, drop_subwords: int) -> list[Any]:
        """The examples of fewer than ``drop_subwords`` subwords (all of them for 0)."""
        if not drop_subwords:
            return examples
        lengths = self.subword_lengths(examples, tokenizer)
        return subset(examples, [i for i, n in enumerate(lengths) if n < drop_subwords])

    def train_piece(self, piece, ctx):
        """Train a piece the task owns (``piece.task_owned``), e.g. MT's subword vocabulary."""
        raise NotImplementedError(f"task {self.name} owns no pieces (asked for {piece.label})")

    def record_extra(self) -> dict[str, Any]:
        """Facts about the last ``score`` that belong in the result record (e.g. sacrebleu signatures)."""
        return {}

    @abstractmethod
    def add_head(self, model, head_name: str) -> None:
        """Add this task's prediction head (an ``adapters`` flexible head) to the model."""

    @abstractmethod
    def encode(self, examples: list[Any], tokenizer, max_length: int) -> list[dict[str, Any]]:
        """Model features per example (token ids, label ids aligned to subwords)."""

    @abstractmethod
    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        """A padded batch, with labels when the features have them."""

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch).loss

    def mismatched_inputs(self, features: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """The features with every example's input taken from another example (outputs kept), or
        None. A model's dev loss on them, beside its loss on the real features, shows whether it
        uses its input at all: a sequence-to-sequence model that learned only the output language
        scores both alike (``xltransfer.convergence``). None: the task has no such check."""
        return None

    @abstractmethod
    def predict(self, model, batch: dict[str, torch.Tensor]) -> list[Any]:
        """One prediction per example of the batch, in the format ``score`` takes."""

    @abstractmethod
    def score(self, gold: list[Any], predictions: list[Any]) -> dict[str, float]:
        """The task's metrics, as the field's reference scorer computes them."""

    # -- per-example sufficient statistics (paired bootstrap, Koehn 2004) ---------------------------
    def example_statistics(self, gold: list[Any], predictions: list[Any]) -> list[list[float]]:
        """One row of numbers per test example (columns: ``statistics_names``) whose column sums
        determine every metric of ``score``: ``score_statistics(example_statistics(g, p))`` equals
        ``score(g, p)``. Resampling rows is what a paired bootstrap needs."""
        raise NotImplementedError(f"task {self.name} has no per-example statistics")

    def score_totals(self, totals: Sequence[float]) -> dict[str, float]:
        """The task's metrics from one row of statistics already summed over the examples (the fast
        path of a bootstrap, which sums resampled rows itself)."""
        raise NotImplementedError(f"task {self.name} has no per-example statistics")

    def score_statistics(self, rows: Sequence[Sequence[float]]) -> dict[str, float]:
        """The task's metrics from per-example statistics: their column sums, scored."""
        width = len(rows[0]) if len(rows) else len(self.statistics_names)
        totals = [0.0] * width
        for row in rows:
            if len(row) != width:
                raise ValueError(f"task {self.name}: a statistics row of {len(row)} numbers, not {width}")
            for column, value in enumerate(row):
                totals[column] += value
        return self.score_totals(totals)

    @property
    def has_example_statistics(self) -> bool:
        return bool(self.statistics_names)

    @abstractmethod
    def predictions_from_file(self, gold: list[Any], path: Path) -> list[Any]:
        """Read a prediction file (same format as gold) for ``xlt evaluate``, aligned to gold."""

    def write_predictions(self, examples: list[Any], predictions: list[Any], path: Path) -> None:
        """Write predictions in the task's file format (what ``predictions_from_file`` reads back);
        every evaluated cell keeps its predictions so (``extra["predictions"]`` of its records)."""
        raise NotImplementedError(f"task {self.name} does not write prediction files")

    @property
    def writes_predictions(self) -> bool:
        return type(self).write_predictions is not Task.write_predictions

    def majority_predictions(self, train: list[Any], test: list[Any]) -> list[Any]:
        """Predictions that always give the most frequent training label (a sanity floor)."""
        raise NotImplementedError(f"task {self.name} has no majority baseline")
