"""Named entity recognition on WikiANN: entity-level micro F1 (seqeval, conlleval-compatible).

The head predicts WikiANN's fixed inventory (PER, ORG, LOC in IOB2), so parameter counts are
known without data. Gold files may hold other types (MasakhaNER has DATE): reading keeps them
and scoring runs on the gold as it is, so an entity type the model cannot predict counts as
missed. For training, a tag outside the inventory becomes ``O`` — the model is not taught a
type it has no output for; ``tags_outside_inventory`` counts those tags so a run can log them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xltransfer.data.bio import BioSentence, iter_bio, iter_bio_rows, read_bio, write_bio
from xltransfer.tagging import WordTaggingTask
from xltransfer.task import TaskMetadata

log = logging.getLogger(__name__)

# WikiANN's tag set (Pan et al. 2017), in the order of its hub ClassLabel.
WIKIANN_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
OUTSIDE = "O"


def tags_outside_inventory(sentences: list[BioSentence]) -> Counter[str]:
    """How often each tag the head cannot predict occurs; training sees these as ``O``."""
    return Counter(tag for s in sentences for tag in s.tags if tag not in WIKIANN_TAGS)


def _check_aligned(gold: list[BioSentence], predictions: list[list[str]]) -> None:
    if len(predictions) != len(gold):
        raise ValueError(f"{len(predictions)} predicted sentences, gold has {len(gold)}")
    for sentence, predicted in zip(gold, predictions, strict=True):
        if len(predicted) != len(sentence.tags):
            raise ValueError(
                f"sentence at line {sentence.line}: {len(predicted)} tags for {len(sentence.tags)} tokens"
            )


class NamedEntityRecognition(WordTaggingTask):
    untagged = "O"  # a word cut off by truncation is predicted outside any entity
    fallback_tag = "O"  # training sees a tag outside the inventory (e.g. DATE) as O
    metadata = TaskMetadata(
        name="ner",
        description="NER on WikiANN (Rahimi et al. 2019 splits), IOB2; label on a word's first subword",
        data_format="bio",
        metrics=("f1", "precision", "recall"),
        main_metric="f1",
        labels=WIKIANN_TAGS,
        citation="Pan et al. 2017, Cross-lingual Name Tagging and Linking for 282 Languages, ACL; "
        "Rahimi et al. 2019, Massively Multilingual Transfer for NER, ACL",
    )
    statistics_names = ("correct_entities", "predicted_entities", "gold_entities")
    prediction_suffix = ".bio"  # token TAG lines, a blank line between sentences

    def read_file(self, path: Path) -> list[BioSentence]:
        return read_bio(path)

    def iter_file(self, path: Path) -> Iterator[BioSentence]:
        return iter_bio(path)

    def iter_hub(
        self, dataset: str, config: str | None, split: str, revision: str | None
    ) -> Iterator[BioSentence]:
        return iter_bio_rows(dataset, config, split, revision)

    def words_and_tags(self, example: BioSentence) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return tuple(example.tokens), tuple(example.tags)

    def encode(self, examples: list[BioSentence], tokenizer, max_length: int) -> list[dict[str, Any]]:
        outside = tags_outside_inventory(examples)
        if outside:
            log.warning(
                "ner: %d tags outside the head's inventory %s encoded as O: %s",
                sum(outside.values()),
                WIKIANN_TAGS,
                dict(outside),
            )
        return super().encode(examples, tokenizer, max_length)

    def score(self, gold: list[BioSentence], predictions: list[list[str]]) -> dict[str, float]:
        from seqeval.metrics import f1_score, precision_score, recall_score

        _check_aligned(gold, predictions)
        y_true = [list(s.tags) for s in gold]
        y_pred = [list(p) for p in predictions]
        # seqeval's default mode is conlleval's: an I- tag after O or another type opens an entity
        return {
            "f1": float(f1_score(y_true, y_pred, zero_division=0)),
            "precision": float(precision_score(y_true, y_pred, zero_division=0)),
            "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        }

    def example_statistics(self, gold: list[BioSentence], predictions: list[list[str]]) -> list[list[float]]:
        """Per sentence: entities found exactly (type and span), entities predicted, gold entities.

        seqeval reads a corpus as its sentences joined with an ``O`` after each, so no entity crosses
        a sentence and its micro counts are the sums of these (same chunking, same entity types).
        """
        from seqeval.metrics.sequence_labeling import get_entities

        _check_aligned(gold, predictions)
        rows = []
        for sentence, predicted in zip(gold, predictions, strict=True):
            true = set(get_entities([list(sentence.tags)]))
            found = set(get_entities([list(predicted)]))
            rows.append([len(true & found), len(found), len(true)])
        return rows

    def score_totals(self, totals) -> dict[str, float]:
        """Micro precision, recall and F1 as seqeval computes them (``zero_division=0``)."""
        correct, predicted, true = totals
        precision = correct / predicted if predicted else 0.0
        recall = correct / true if true else 0.0
        denominator = precision + recall
        f1 = 2.0 * precision * recall / denominator if denominator else 0.0
        return {"f1": float(f1), "precision": float(precision), "recall": float(recall)}

    def write_predictions(
        self, examples: list[BioSentence], predictions: list[list[str]], path: Path
    ) -> None:
        write_bio(path, [s.tokens for s in examples], predictions)

    def majority_predictions(self, train: list[BioSentence], test: list[BioSentence]) -> list[list[str]]:
        """Every token ``O``: the majority tag of any NER corpus, and an entity F1 of zero."""
        return [[OUTSIDE] * len(s.tokens) for s in test]
