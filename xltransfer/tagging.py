"""Word-level tagging on subword encoders (POS, NER): one label per word, on its first subword.

Tasks that tag words share everything but their inventory and how an example exposes its words
and tags; a word cut off by truncation gets the task's ``untagged`` label, so every sentence
keeps one prediction per word and scoring stays aligned with gold.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from xltransfer.data.subwords import (
    IGNORE,
    META_PREFIX,
    encode_words,
    model_inputs,
    pad_batch,
    word_predictions,
)
from xltransfer.errors import DataFormatError
from xltransfer.task import Task

WORD = f"{META_PREFIX}word"
N_WORDS = f"{META_PREFIX}n_words"  # the sentence's length, which truncation may hide from WORD


class WordTaggingTask(Task):
    untagged: ClassVar[str]  # the prediction for a word truncation removed
    fallback_tag: ClassVar[str | None] = None  # training label for a gold tag outside the inventory

    @abstractmethod
    def words_and_tags(self, example: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The example's words and gold tags."""

    @property
    def inventory(self) -> tuple[str, ...]:
        return self.metadata.labels

    def add_head(self, model, head_name: str) -> None:
        model.add_tagging_head(
            head_name, num_labels=len(self.inventory), id2label=dict(enumerate(self.inventory))
        )

    def _tag_id(self, tag: str) -> int:
        ids = {t: i for i, t in enumerate(self.inventory)}
        if tag in ids:
            return ids[tag]
        if self.fallback_tag is None:
            raise KeyError(f"{self.name}: tag '{tag}' is not in the inventory")
        return ids[self.fallback_tag]

    def encode(self, examples: list[Any], tokenizer, max_length: int) -> list[dict[str, Any]]:
        features = []
        for example in examples:
            words, tags = self.words_and_tags(example)
            ids, starts = encode_words(words, tokenizer, max_length)
            labels = [self._tag_id(tags[w]) if w >= 0 else IGNORE for w in starts]
            features.append({"input_ids": ids, "labels": labels, WORD: starts, N_WORDS: len(words)})
        return features

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        return pad_batch(features, tokenizer.pad_token_id)

    def read_predictions(self, path: Path) -> list[Any]:
        """A prediction file in the task's format (as a gold file, unless a task allows more)."""
        return self.read_file(path)

    def predictions_from_file(self, gold: list[Any], path: Path) -> list[list[str]]:
        """Tags of a prediction file in the task's own format, sentence by sentence aligned to gold."""
        predicted = self.read_predictions(path)
        if len(predicted) != len(gold):
            raise DataFormatError(path, None, f"{len(predicted)} sentences, gold has {len(gold)}")
        tags = []
        for p, g in zip(predicted, gold, strict=True):
            words, predicted_tags = self.words_and_tags(p)
            if words != self.words_and_tags(g)[0]:
                raise DataFormatError(path, p.line, f"words differ from the gold sentence at line {g.line}")
            tags.append(list(predicted_tags))
        return tags

    def predict(self, model, batch: dict[str, torch.Tensor]) -> list[list[str]]:
        inputs = model_inputs(batch)
        inputs.pop("labels", None)
        logits = model(**inputs).logits
        ids = word_predictions(logits, batch[WORD], batch[N_WORDS].tolist())
        return [[self.inventory[i] if i >= 0 else self.untagged for i in row] for row in ids]
