"""Part-of-speech tagging on Universal Dependencies: UPOS accuracy over syntactic words."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from xltransfer.data.ud import UdSentence, iter_conllu, write_conllu
from xltransfer.errors import DataFormatError
from xltransfer.tagging import WordTaggingTask
from xltransfer.task import TaskMetadata

# The 17 universal POS tags of UD v2 (https://universaldependencies.org/u/pos/).
UPOS = (
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
)
_UPOS_ID = {tag: i for i, tag in enumerate(UPOS)}


def _correct_words(sentence: UdSentence, predicted: list[str]) -> int:
    if len(predicted) != len(sentence.upos):
        raise ValueError(
            f"sentence {sentence.sent_id}: {len(predicted)} predictions, {len(sentence.upos)} words"
        )
    return sum(p == g for p, g in zip(predicted, sentence.upos, strict=True))


class PosTagging(WordTaggingTask):
    untagged = "_"  # a word truncation removed is scored as wrong
    metadata = TaskMetadata(
        name="pos",
        description="UPOS tagging (Universal Dependencies 2.x); label on a word's first subword",
        data_format="conllu",
        metrics=("accuracy",),
        main_metric="accuracy",
        labels=UPOS,
        citation="de Marneffe et al. 2021, Universal Dependencies, Computational Linguistics 47(2)",
    )
    statistics_names = ("correct", "words")
    prediction_suffix = ".conllu"

    def read_file(self, path: Path) -> list[UdSentence]:
        return list(self.iter_file(path))

    def iter_file(self, path: Path) -> Iterator[UdSentence]:
        return self._checked(path, _UPOS_ID)

    def _checked(self, path: Path, allowed) -> Iterator[UdSentence]:
        for sentence in iter_conllu(path):
            for offset, tag in enumerate(sentence.upos):
                if tag not in allowed:
                    raise DataFormatError(path, sentence.line, f"word {offset + 1}: unknown UPOS '{tag}'")
            yield sentence

    def read_predictions(self, path: Path) -> list[UdSentence]:
        """A prediction file may hold ``_`` for a word truncation cut off (scored as wrong)."""
        return list(self._checked(path, {*_UPOS_ID, self.untagged}))

    def write_predictions(self, examples: list[UdSentence], predictions: list[list[str]], path: Path) -> None:
        """The gold CoNLL-U with the predicted UPOS in column 4: aligned with gold for ``xlt evaluate``
        and the official scorer."""
        write_conllu(path, examples, [{"upos": tags} for tags in predictions])

    def iter_hub(
        self, dataset: str, config: str | None, split: str, revision: str | None
    ) -> Iterator[UdSentence]:
        from xltransfer.data.hub import iter_ud_rows

        return iter_ud_rows(dataset, config, split, revision)

    def words_and_tags(self, example: UdSentence) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return example.words, example.upos

    def score(self, gold: list[UdSentence], predictions: list[list[str]]) -> dict[str, float]:
        correct = total = 0
        for sentence, predicted in zip(gold, predictions, strict=True):
            correct += _correct_words(sentence, predicted)
            total += len(sentence.upos)
        return {"accuracy": correct / total if total else 0.0}

    def example_statistics(self, gold: list[UdSentence], predictions: list[list[str]]) -> list[list[float]]:
        """Per sentence: words tagged correctly, words."""
        return [
            [_correct_words(sentence, predicted), len(sentence.upos)]
            for sentence, predicted in zip(gold, predictions, strict=True)
        ]

    def score_totals(self, totals) -> dict[str, float]:
        correct, total = totals
        return {"accuracy": correct / total if total else 0.0}

    def majority_predictions(self, train: list[UdSentence], test: list[UdSentence]) -> list[list[str]]:
        tag = Counter(t for s in train for t in s.upos).most_common(1)[0][0]
        return [[tag] * len(s.upos) for s in test]
