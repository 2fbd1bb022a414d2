"""Natural language inference: 3-way accuracy on XNLI / AmericasNLI, trained on MultiNLI.

Premise and hypothesis are encoded as one sentence pair ([CLS] p [SEP] h [SEP]) and classified
from the [CLS] position by a classification head, as in the XNLI baselines of mBERT.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from xltransfer.data.nli import (
    NLI_LABELS,
    NliPair,
    iter_nli,
    iter_nli_rows,
    read_nli,
    same_text,
    write_nli_tsv,
)
from xltransfer.errors import DataFormatError
from xltransfer.task import Task, TaskMetadata

_LABEL_ID = {label: i for i, label in enumerate(NLI_LABELS)}


class NaturalLanguageInference(Task):
    metadata = TaskMetadata(
        name="nli",
        description="3-way NLI (entailment/neutral/contradiction) on sentence pairs; TSV or JSONL",
        data_format="nli-tsv",
        metrics=("accuracy",),
        main_metric="accuracy",
        labels=NLI_LABELS,
        citation="Conneau et al. 2018, XNLI, EMNLP; Williams et al. 2018, MultiNLI, NAACL; "
        "Ebrahimi et al. 2022, AmericasNLI, ACL",
    )
    statistics_names = ("correct", "pairs")
    prediction_suffix = ".tsv"  # id, premise, hypothesis, predicted label

    def read_file(self, path: Path) -> list[NliPair]:
        return read_nli(path)

    def iter_file(self, path: Path) -> Iterator[NliPair]:
        return iter_nli(path)

    def iter_hub(
        self, dataset: str, config: str | None, split: str, revision: str | None
    ) -> Iterator[NliPair]:
        return iter_nli_rows(dataset, config, split, revision)

    def add_head(self, model, head_name: str, pooler: bool = False) -> None:
        """A two-layer head on [CLS]; ``pooler``: the encoder's pretrained pooler (frozen with the
        encoder) and one linear layer, as parovicm/badx run_anli.py classifies."""
        options = {"layers": 1, "use_pooler": True} if pooler else {}
        model.add_classification_head(
            head_name, num_labels=len(NLI_LABELS), id2label=dict(enumerate(NLI_LABELS)), **options
        )

    def encode(self, examples: list[NliPair], tokenizer, max_length: int) -> list[dict[str, Any]]:
        encoded = tokenizer(
            [p.premise for p in examples],
            [p.hypothesis for p in examples],
            truncation=True,
            max_length=max_length,
        )
        return [
            {**{key: values[i] for key, values in encoded.items()}, "labels": _LABEL_ID[pair.label]}
            for i, pair in enumerate(examples)
        ]

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        # the tokenizer pads each input with its own value (token type ids with 0, not -100)
        return dict(tokenizer.pad(features, return_tensors="pt"))

    def predict(self, model, batch: dict[str, torch.Tensor]) -> list[str]:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return [NLI_LABELS[i] for i in model(**inputs).logits.argmax(-1).tolist()]

    def score(self, gold: list[NliPair], predictions: list[str]) -> dict[str, float]:
        if len(predictions) != len(gold):
            raise ValueError(f"{len(predictions)} predictions, gold has {len(gold)} pairs")
        correct = sum(p == g.label for p, g in zip(predictions, gold, strict=True))
        return {"accuracy": correct / len(gold) if gold else 0.0}

    def example_statistics(self, gold: list[NliPair], predictions: list[str]) -> list[list[float]]:
        """Per pair: 1 when the label is right, else 0; and 1 (the pair)."""
        if len(predictions) != len(gold):
            raise ValueError(f"{len(predictions)} predictions, gold has {len(gold)} pairs")
        return [[int(p == g.label), 1] for p, g in zip(predictions, gold, strict=True)]

    def score_totals(self, totals) -> dict[str, float]:
        correct, pairs = totals
        return {"accuracy": correct / pairs if pairs else 0.0}

    def predictions_from_file(self, gold: list[NliPair], path: Path) -> list[str]:
        """Predictions aligned to gold by row; rows must name the same pair (by id when both files
        have ids, else by premise and hypothesis)."""
        predicted = read_nli(path)
        if len(predicted) != len(gold):
            raise DataFormatError(path, None, f"{len(predicted)} pairs, gold has {len(gold)}")
        for p, g in zip(predicted, gold, strict=True):
            if p.id is not None and g.id is not None:
                if p.id != g.id:
                    raise DataFormatError(path, p.line, f"id {p.id} where gold (line {g.line}) has {g.id}")
            elif not (same_text(p.premise, g.premise) and same_text(p.hypothesis, g.hypothesis)):
                raise DataFormatError(path, p.line, f"pair differs from the gold pair at line {g.line}")
        return [p.label for p in predicted]

    def write_predictions(self, examples: list[NliPair], predictions: list[str], path: Path) -> None:
        write_nli_tsv(path, examples, predictions)

    def majority_predictions(self, train: list[NliPair], test: list[NliPair]) -> list[str]:
        counts = Counter(p.label for p in train)
        label = max(NLI_LABELS, key=lambda name: counts[name])  # ties: the first in NLI_LABELS
        return [label] * len(test)
