"""Dependency parsing on Universal Dependencies: a biaffine head, tree decoding, UAS/LAS.

The head is the ``adapters`` library's biaffine parser (Dozat & Manning 2017, as in Glavaš & Vulić
2021): a word is the mean of its subwords, [CLS] stands for the root. It is trained on HEAD and the
universal part of DEPREL, so its size is fixed without data. Its own greedy argmax can give cycles
and several roots, so predictions are decoded into trees (``xltransfer.parsing``). Scores follow the
CoNLL 2018 shared-task evaluation on gold tokenization: every syntactic word (multiword tokens
expanded, empty nodes left out, punctuation counted), relation subtypes ignored.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xltransfer.data.subwords import META_PREFIX, encode_words, model_inputs, pad_batch, subword_counts
from xltransfer.data.ud import UdSentence, iter_conllu, read_conllu, write_conllu
from xltransfer.errors import DataFormatError
from xltransfer.parsing import decode_tree
from xltransfer.task import Task, TaskMetadata

# The 37 universal dependency relations of UD v2 (https://universaldependencies.org/u/dep/).
UD_RELATIONS = (
    "acl",
    "advcl",
    "advmod",
    "amod",
    "appos",
    "aux",
    "case",
    "cc",
    "ccomp",
    "clf",
    "compound",
    "conj",
    "cop",
    "csubj",
    "dep",
    "det",
    "discourse",
    "dislocated",
    "expl",
    "fixed",
    "flat",
    "goeswith",
    "iobj",
    "list",
    "mark",
    "nmod",
    "nsubj",
    "nummod",
    "obj",
    "obl",
    "orphan",
    "parataxis",
    "punct",
    "reparandum",
    "root",
    "vocative",
    "xcomp",
)
_RELATION_ID = {relation: i for i, relation in enumerate(UD_RELATIONS)}
_ROOT_ID = _RELATION_ID["root"]
_TRUNCATED_RELATION = "dep"  # for words cut by truncation, attached to the root word

# The head reads padding as its model config's pad_token_id; -1 is never a position or a HEAD.
_PAD = -1
_HEAD_KEYS = ("word_starts", "labels_arcs", "labels_rels")
_LABEL_KEYS = ("labels_arcs", "labels_rels")
_N_WORDS = f"{META_PREFIX}n_words"


def base_relation(deprel: str) -> str:
    """``nmod:poss`` -> ``nmod``: the universal part, which the head predicts and LAS compares."""
    return deprel.split(":", 1)[0]


@dataclass(frozen=True)
class Parse:
    """A predicted tree over a sentence's syntactic words: HEAD (0 = root) and DEPREL per word."""

    heads: tuple[int, ...]
    deprels: tuple[str, ...]


def attachment_scores(gold: Sequence[UdSentence], predictions: Sequence[Parse]) -> dict[str, float]:
    """UAS and LAS as fractions, as CoNLL 2018's ``conll18_ud_eval.py`` computes them on gold tokens.

    Every syntactic word counts (punctuation too); empty nodes are not words here; LAS compares
    relations without their subtypes on both sides.
    """
    attached = labelled = total = 0
    for sentence_attached, sentence_labelled, words in attachment_counts(gold, predictions):
        attached += sentence_attached
        labelled += sentence_labelled
        total += words
    return _attachment_fractions(attached, labelled, total)


def attachment_counts(gold: Sequence[UdSentence], predictions: Sequence[Parse]) -> list[list[int]]:
    """Per sentence, what ``attachment_scores`` sums: words with the gold HEAD, words with the gold
    HEAD and universal relation, syntactic words."""
    if len(gold) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(gold)} sentences")
    counts = []
    for sentence, parse in zip(gold, predictions, strict=True):
        if len(parse.heads) != len(sentence.heads) or len(parse.deprels) != len(sentence.deprels):
            words = f"{len(parse.heads)} predicted words, {len(sentence.heads)} in gold"
            raise ValueError(f"sentence {sentence.sent_id}: {words}")
        attached = labelled = 0
        pairs = zip(sentence.heads, sentence.deprels, parse.heads, parse.deprels, strict=True)
        for gold_head, gold_rel, head, rel in pairs:
            if head == gold_head:
                attached += 1
                labelled += base_relation(rel) == base_relation(gold_rel)
        counts.append([attached, labelled, len(sentence.heads)])
    return counts


def _attachment_fractions(attached: float, labelled: float, total: float) -> dict[str, float]:
    if not total:
        return {"uas": 0.0, "las": 0.0}
    return {"uas": attached / total, "las": labelled / total}


def _check_tree_annotation(path: Path | str, sentence: UdSentence) -> None:
    """Gold for parsing needs a HEAD and a universal relation on every word, and one root."""
    _check_one_root(path, sentence)
    for offset, (head, deprel) in enumerate(zip(sentence.heads, sentence.deprels, strict=True)):
        if head < 0:
            raise DataFormatError(path, sentence.word_line(offset), f"word {offset + 1}: no HEAD")
        if base_relation(deprel) not in _RELATION_ID:
            raise DataFormatError(
                path, sentence.word_line(offset), f"word {offset + 1}: unknown relation '{deprel}'"
            )


def _check_one_root(path: Path | str, sentence: UdSentence) -> None:
    """Exactly one word attached to the root (HEAD 0), as the CoNLL 2018 scorer demands of gold and
    predictions alike: it refuses a file with a sentence of several roots."""
    roots = [offset for offset, head in enumerate(sentence.heads) if head == 0]
    if len(roots) > 1:
        words = ", ".join(str(offset + 1) for offset in roots)
        raise DataFormatError(
            path, sentence.word_line(roots[1]), f"several roots (words {words} have HEAD 0): a tree has one"
        )


def _word_bounds(ids: list[int], starts: list[int], closing: set[int]) -> list[int]:
    """The head's ``word_starts``: where each word's subwords start, then where the last word ends.

    The head numbers words by position, so words are kept up to the first one without a subword
    (cut by truncation); the last word ends at the next word or at the closing special token.
    """
    first: dict[int, int] = {}
    for position, word in enumerate(starts):
        if word >= 0:
            first.setdefault(word, position)
    bounds: list[int] = []
    while len(bounds) in first:
        bounds.append(first[len(bounds)])
    if not bounds:
        raise ValueError("max_length leaves no room for a word")
    end = bounds[-1] + 1
    while end < len(ids) and starts[end] < 0 and ids[end] not in closing:
        end += 1
    return bounds + [end]


def _arc_labels(sentence: UdSentence, kept: int) -> tuple[list[int], list[int]]:
    """Gold HEAD and relation id per kept word; padding where a HEAD falls outside the kept words."""
    arcs, rels = [], []
    for head, deprel in zip(sentence.heads[:kept], sentence.deprels[:kept], strict=True):
        rel = _RELATION_ID.get(base_relation(deprel))
        known = 0 <= head <= kept and rel is not None
        arcs.append(head if known else _PAD)
        rels.append(rel if known else _PAD)
    return arcs, rels


DECODINGS = ("mst", "greedy")


def _decode(arc_scores: torch.Tensor, rel_scores: torch.Tensor, n_words: int, decoding: str = "mst") -> Parse:
    """The best tree over the kept words, each word's best relation for its head ("mst"); or each
    word's best head and relation on its own ("greedy", as the authors of hgiyt and BAD-X decode:
    cycles and several roots possible). Truncated words attach to the root word."""
    if decoding == "greedy":
        heads = arc_scores.detach().float().cpu().argmax(-1).tolist()
    else:
        heads = decode_tree(arc_scores.detach().float().cpu().numpy())
    kept = len(heads)
    rels = rel_scores.detach().float().cpu()[torch.arange(kept), torch.tensor(heads)]
    if decoding != "greedy":  # UD: the relation is "root" exactly when the head is the root
        rels[:, _ROOT_ID] = torch.where(torch.tensor(heads) == 0, torch.inf, -torch.inf)
    deprels = [UD_RELATIONS[i] for i in rels.argmax(-1).tolist()]
    root_word = heads.index(0) + 1 if 0 in heads else 1
    missing = n_words - kept
    return Parse(tuple(heads + [root_word] * missing), tuple(deprels + [_TRUNCATED_RELATION] * missing))


def _aligned_parse(path: Path, predicted: UdSentence, gold: UdSentence) -> Parse:
    """The tree of a predicted sentence, which must have gold's words and a HEAD on each."""
    if len(predicted.words) != len(gold.words):
        raise DataFormatError(
            path,
            predicted.line,
            f"{len(predicted.words)} words, gold sentence {gold.sent_id} has {len(gold.words)}",
        )
    for offset, (word, gold_word, head) in enumerate(
        zip(predicted.words, gold.words, predicted.heads, strict=True)
    ):
        if word != gold_word:
            raise DataFormatError(
                path,
                predicted.word_line(offset),
                f"word '{word}' differs from gold '{gold_word}' ({gold.sent_id})",
            )
        if head < 0:
            raise DataFormatError(path, predicted.word_line(offset), f"word {offset + 1}: no HEAD")
    _check_one_root(path, predicted)
    return Parse(predicted.heads, predicted.deprels)


class DependencyParsing(Task):
    metadata = TaskMetadata(
        name="dp",
        description=(
            "dependency parsing (Universal Dependencies 2.x): biaffine head, MST decoding, "
            "UAS/LAS over syntactic words, relation subtypes ignored"
        ),
        data_format="conllu",
        metrics=("uas", "las"),
        main_metric="las",
        labels=UD_RELATIONS,
        citation=(
            "Dozat & Manning 2017, Deep Biaffine Attention for Neural Dependency Parsing, ICLR; "
            "Zeman et al. 2018, CoNLL 2018 Shared Task (evaluation)"
        ),
    )
    statistics_names = ("attached", "labelled", "words")
    prediction_suffix = ".conllu"  # the gold file with predicted HEAD and DEPREL

    def read_file(self, path: Path) -> list[UdSentence]:
        return list(self.iter_file(path))

    def iter_file(self, path: Path) -> Iterator[UdSentence]:
        for sentence in iter_conllu(path):
            _check_tree_annotation(path, sentence)
            yield sentence

    def iter_hub(
        self, dataset: str, config: str | None, split: str, revision: str | None
    ) -> Iterator[UdSentence]:
        from xltransfer.data.hub import iter_ud_rows

        where = f"{dataset}:{config or 'default'}:{split}"
        for sentence in iter_ud_rows(dataset, config, split, revision):
            _check_tree_annotation(where, sentence)
            yield sentence

    def add_head(self, model, head_name: str) -> None:
        model.add_dependency_parsing_head(
            head_name, num_labels=len(UD_RELATIONS), id2label=dict(enumerate(UD_RELATIONS))
        )
        # The head masks `word_starts` and `labels_arcs` where they equal model_config.pad_token_id.
        # BERT's 0 would drop every root arc (HEAD 0) from the loss, XLM-R's 1 the first word, so the
        # head gets its own copy of the config padded with -1 (the library's UD example does the same
        # on the model's config); the encoder's config is left alone.
        head = model.heads[head_name]
        head.model_config = copy.copy(model.config)
        head.model_config.pad_token_id = _PAD

    def encode(self, examples: list[UdSentence], tokenizer, max_length: int) -> list[dict[str, Any]]:
        closing = {tokenizer.sep_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        features = []
        for sentence in examples:
            ids, starts = encode_words(sentence.words, tokenizer, max_length)
            bounds = _word_bounds(ids, starts, closing)
            arcs, rels = _arc_labels(sentence, len(bounds) - 1)
            features.append(
                {
                    "input_ids": ids,
                    "word_starts": bounds,
                    "labels_arcs": arcs,
                    "labels_rels": rels,
                    _N_WORDS: len(sentence.words),
                }
            )
        return features

    def subword_lengths(self, examples: list[UdSentence], tokenizer) -> list[int]:
        """Subwords per sentence, special tokens not counted: with ``Encoding.drop_subwords`` 254 the
        authors' filter at max_seq_length 256 (hgiyt ud_dataset.py, adapters' dependency-parsing
        preprocessing.py that parovicm/badx run_udp.py uses: ``len(subwords) >= max_seq_length - 2``)."""
        return subword_counts([s.words for s in examples], tokenizer)

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        batch = pad_batch([{"input_ids": f["input_ids"]} for f in features], tokenizer.pad_token_id)
        length = batch["input_ids"].shape[1]  # the head scores as many words as there are subwords
        for key in _HEAD_KEYS:
            batch[key] = torch.tensor([list(f[key]) + [_PAD] * (length - len(f[key])) for f in features])
        batch[_N_WORDS] = torch.tensor([f[_N_WORDS] for f in features])
        return batch

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**model_inputs(batch)).loss

    def predict(self, model, batch: dict[str, torch.Tensor], decoding: str = "mst") -> list[Parse]:
        """Trees by MST decoding (the default), or ``decoding="greedy"``: each word's argmax head."""
        inputs = {k: v for k, v in model_inputs(batch).items() if k not in _LABEL_KEYS}
        output = model(**inputs)
        kept = ((batch["word_starts"] >= 0).sum(-1) - 1).tolist()
        return [
            _decode(arcs[:n, : n + 1], rels[:n, : n + 1], total, decoding)
            for arcs, rels, n, total in zip(
                output.arc_preds, output.rel_preds, kept, batch[_N_WORDS].tolist(), strict=True
            )
        ]

    def score(self, gold: list[UdSentence], predictions: list[Parse]) -> dict[str, float]:
        return attachment_scores(gold, predictions)

    def example_statistics(self, gold: list[UdSentence], predictions: list[Parse]) -> list[list[float]]:
        """Per sentence: words attached to the gold HEAD, those with the gold relation too, words."""
        return attachment_counts(gold, predictions)

    def score_totals(self, totals) -> dict[str, float]:
        attached, labelled, total = totals
        return _attachment_fractions(attached, labelled, total)

    def predictions_from_file(self, gold: list[UdSentence], path: Path) -> list[Parse]:
        predicted = read_conllu(path)
        if len(predicted) != len(gold):
            raise DataFormatError(path, None, f"{len(predicted)} sentences, gold has {len(gold)}")
        return [_aligned_parse(path, p, g) for p, g in zip(predicted, gold, strict=True)]

    def write_predictions(self, examples: list[UdSentence], predictions: list[Parse], path: Path) -> None:
        write_conllu(path, examples, [{"head": p.heads, "deprel": p.deprels} for p in predictions])

    def majority_predictions(self, train: list[UdSentence], test: list[UdSentence]) -> list[Parse]:
        """A floor: the first word is the root, every other word attaches to the word before it with
        the training data's most frequent non-root relation (a chain, always a tree)."""
        counts = Counter(
            base_relation(r) for s in train for h, r in zip(s.heads, s.deprels, strict=True) if h > 0
        )
        relation = counts.most_common(1)[0][0] if counts else _TRUNCATED_RELATION
        return [Parse(tuple(range(len(s.words))), ("root",) + (relation,) * (len(s.words) - 1)) for s in test]
