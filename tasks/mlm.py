"""Masked language modelling on unlabelled text: the auxiliary task adapters are trained on.

Scored by pseudo-perplexity on held-out text with a fixed masking, so two adapters of one
language are compared on the same corrupted tokens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from xltransfer.data.corpus import HELD_OUT_FRACTION, TextCorpus, packed_blocks, packing_markers, tokenized
from xltransfer.data.lines import at_least_one, utf8_lines
from xltransfer.data.subwords import pad_batch
from xltransfer.errors import DataFormatError
from xltransfer.modules.mlm import mask_tokens, masked_lm_loss
from xltransfer.task import Task, TaskMetadata

# A sentence ends at . ! ? or the danda followed by whitespace, and at the full stops of scripts
# written without spaces (。！？ and the half-width ｡, with any closing quotes or brackets after
# them) whether or not whitespace follows: Chinese and Cantonese Wikipedia put none there.
_SPACED_END = re.compile(r"(?<=[.!?।])\s+")
_UNSPACED_END = re.compile(r"([。！？｡]+[」』”’）)】〉》]*)\s*")
# Characters of scripts written without spaces between words (Han, kana): each counts as a word.
_UNSPACED_CHARACTER = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)
_WORD_CHARACTER = re.compile(r"\w")
MIN_WORDS = 3  # a hub text's "sentence" shorter than this is a heading, a caption or debris


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of a paragraph, spaced and unspaced scripts alike."""
    sentences = []
    for part in _SPACED_END.split(paragraph):
        pieces = _UNSPACED_END.split(part)  # text, end, text, end, ..., text
        for text, end in zip(pieces[0::2], [*pieces[1::2], ""], strict=True):
            sentence = (text + end).strip()
            if sentence:
                sentences.append(sentence)
    return sentences


def word_count(sentence: str) -> int:
    """Words of a sentence: whitespace-separated tokens with a letter or digit, where every Han or
    kana character counts as a word of its own (those scripts put no spaces between words)."""
    count = 0
    for token in sentence.split():
        unspaced = len(_UNSPACED_CHARACTER.findall(token))
        count += unspaced + bool(_WORD_CHARACTER.search(_UNSPACED_CHARACTER.sub("", token)))
    return count


_PREDICTION_HEADER = "nll\tmasked_tokens\tsentence"


class MaskedLanguageModelling(Task):
    metadata = TaskMetadata(
        name="mlm",
        description="masked language modelling on plain text, one sentence per line (BERT 80/10/10 masking)",
        data_format="text",
        metrics=("perplexity", "loss"),
        main_metric="perplexity",
        higher_is_better=False,
        citation="Devlin et al. 2019, BERT, §3.1",
    )
    # language-adapter selection on held-out text: 5% of the language's text (BAD-X §3.1), a
    # contiguous slice of at most the source's held_out_sentences (default corpus.HELD_OUT_CAP;
    # xltransfer.data.corpus.held_out_ranges)
    held_out_fraction = HELD_OUT_FRACTION
    reads_corpus = True  # read into a memory-mapped corpus on disk, never into a list
    prediction_suffix = ".tsv"  # per sentence: masked-token NLL, their count, the sentence

    def read_file(self, path: Path) -> list[str]:
        """One sentence per line; a CoNLL-U file gives its sentences' text."""
        return list(self.iter_file(path))

    def iter_file(self, path: Path) -> Iterator[str]:
        """The file's sentences (non-empty lines, stripped), read as they are needed: a corpus is
        streamed into its Arrow file, never held whole (``xltransfer.data.corpus``)."""
        if Path(path).suffix == ".conllu":
            from xltransfer.data.ud import iter_conllu, sentence_text

            yield from (sentence_text(s) for s in iter_conllu(path))
            return
        lines = (line.strip() for line in utf8_lines(Path(path)))
        yield from at_least_one((line for line in lines if line), Path(path), "text")

    @staticmethod
    def iter_hub(dataset: str, config: str | None, split: str, revision: str | None) -> Iterator[str]:
        """Sentences of a hub text dataset (e.g. ``wikimedia/wikipedia``, config ``20231101.mt``):
        every sentence of at least MIN_WORDS words, in order, streamed row by row. Not de-duplicated:
        none of the authors' pipelines de-duplicates its text (parovicm/badx run_bi_mlm.py reads the
        files with ``load_dataset("text")``; ahmetustun/hyperx preprocess.py convert_to_mlm_features
        takes every line), and a set of every sentence of a Wikipedia would not fit in memory."""
        from xltransfer.data.hub import load_hub_split

        for row in load_hub_split(dataset, config, split, revision):
            # a text dataset's "text"; otherwise every text field (e.g. an NLI set's premise and
            # hypothesis, the only unlabelled text some AmericasNLI languages have on the hub)
            texts = [row["text"]] if "text" in row else [v for v in row.values() if isinstance(v, str)]
            for paragraph in (line for text in texts for line in str(text).splitlines()):
                for sentence in split_sentences(paragraph):
                    if word_count(sentence) >= MIN_WORDS:
                        yield sentence

    def data_fingerprint(self, source, unit: str, split: str) -> str | None:
        """The source's fingerprint, with the held-out rule for the splits it can divide (a piece
        trained before the rule changed is not one trained on today's split)."""
        found = super().data_fingerprint(source, unit, split)
        if found is None or split == "test":
            return found
        return f"{found}:held-out-v2-{source.held_out_cap(unit)}"

    def add_head(self, model, head_name: str) -> None:
        model.add_masked_lm_head(head_name)

    def encode(self, examples: Sequence[str], tokenizer, max_length: int) -> Sequence[dict[str, Any]]:
        """One example per sentence, truncated to ``max_length`` (Hyper-X's MLM streams); a corpus on
        disk gives its tokens on disk, prepared once (``xltransfer.data.corpus.tokenized``)."""
        if isinstance(examples, TextCorpus):
            return tokenized(examples, tokenizer, max_length, packed=False)
        enc = tokenizer(list(examples), truncation=True, max_length=max_length)
        return [{"input_ids": ids} for ids in enc["input_ids"]]

    def encode_packed(
        self, examples: Sequence[str], tokenizer, max_length: int, line_markers: bool = False
    ) -> Sequence[dict[str, Any]]:
        """The text concatenated and cut into blocks of ``max_length`` tokens, no padding: each block
        between the encoder's sentence markers, as ``transformers``' TextDataset builds them
        (CPGAdapters' MAD-G), or (``line_markers``) each line keeping its own, as run_mlm.py's
        group_texts does (parovicm/badx, adapters' examples): see ``corpus.packing_markers``. The
        last, shorter block is dropped as both drop it, unless it is the only one. A corpus on disk
        gives its blocks on disk, prepared once."""
        if isinstance(examples, TextCorpus):
            return tokenized(examples, tokenizer, max_length, packed=True, line_markers=line_markers)
        packing_markers(tokenizer, max_length, line_markers)
        pieces = tokenizer(list(examples), add_special_tokens=line_markers)["input_ids"]
        return [
            {"input_ids": row.tolist()}
            for rows in packed_blocks(pieces, tokenizer, max_length, line_markers)
            for row in rows
        ]

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        return pad_batch(features, tokenizer.pad_token_id)

    def corrupt(
        self, batch: dict[str, torch.Tensor], tokenizer, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        ids, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], tokenizer, generator)
        return {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])

    def predict(self, model, batch: dict[str, torch.Tensor]) -> list[tuple[float, int]]:
        """Per sentence: summed negative log-likelihood of its masked tokens and their count."""
        if "labels" not in batch:
            raise ValueError("mlm.predict needs a corrupted batch (see MaskedLanguageModelling.corrupt)")
        masked = batch["labels"] != -100
        losses = masked_lm_loss(
            model, batch["input_ids"], batch["attention_mask"], batch["labels"], reduction="none"
        )
        rows = masked.nonzero()[:, 0]
        sums = torch.zeros(masked.shape[0], dtype=losses.dtype).index_add_(0, rows, losses.detach())
        return list(zip(sums.tolist(), masked.sum(dim=1).tolist(), strict=True))

    def score(self, gold: list[str], predictions: list[tuple[float, int]]) -> dict[str, float]:
        nll = sum(p[0] for p in predictions)
        count = sum(p[1] for p in predictions)
        loss = nll / max(count, 1)
        return {"perplexity": math.exp(min(loss, 50.0)), "loss": loss}

    def predictions_from_file(self, gold: list[str], path: Path) -> list[Any]:
        """Per sentence, the summed negative log-likelihood of its masked tokens and their count, as
        ``write_predictions`` writes them (perplexity needs the model: nothing else can be scored)."""
        rows = []
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        if not lines or lines[0] != _PREDICTION_HEADER:
            raise DataFormatError(path, 1, f"expected the header {_PREDICTION_HEADER!r}")
        for number, line in enumerate(lines[1:], start=2):
            fields = line.split("\t")
            try:
                rows.append((float(fields[0]), int(fields[1])))
            except (ValueError, IndexError):
                raise DataFormatError(path, number, "expected NLL<TAB>masked tokens<TAB>sentence") from None
        if len(rows) != len(gold):
            raise DataFormatError(path, None, f"{len(rows)} sentences, gold has {len(gold)}")
        return rows

    def write_predictions(
        self, examples: list[str], predictions: list[tuple[float, int]], path: Path
    ) -> None:
        lines = [_PREDICTION_HEADER]
        for sentence, (nll, count) in zip(examples, predictions, strict=True):
            lines.append(f"{nll!r}\t{count}\t{' '.join(sentence.split())}")
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
