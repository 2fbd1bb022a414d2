"""Masked language modelling on unlabelled text: the auxiliary task adapters are trained on.

Scored by pseudo-perplexity on held-out text with a fixed masking, so two adapters of one
language are compared on the same corrupted tokens.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from xltransfer.data.subwords import pad_batch
from xltransfer.errors import DataFormatError
from xltransfer.modules.mlm import mask_tokens, masked_lm_loss
from xltransfer.task import Task, TaskMetadata

MAX_HUB_SENTENCES = 100_000  # Hyper-X: at most 100K Wikipedia sentences per language
_SENTENCE_END = re.compile(r"(?<=[.!?।。])\s+")


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
    # language-adapter selection on the held-out 5% of the language's text (BAD-X §3.1)
    held_out_fraction = 0.05
    prediction_suffix = ".tsv"  # per sentence: masked-token NLL, their count, the sentence

    def read_file(self, path: Path) -> list[str]:
        """One sentence per line; a CoNLL-U file gives its sentences' text."""
        if Path(path).suffix == ".conllu":
            from xltransfer.data.ud import read_conllu, sentence_text

            return [sentence_text(s) for s in read_conllu(path)]
        try:
            lines = [line.strip() for line in Path(path).read_text(encoding="utf-8-sig").splitlines()]
        except UnicodeDecodeError as err:
            raise DataFormatError(path, None, f"not UTF-8 ({err})") from err
        lines = [line for line in lines if line]
        if not lines:
            raise DataFormatError(path, None, "no text")
        return lines

    def read_hub(self, dataset: str, config: str | None, split: str, revision: str | None) -> list[str]:
        """Sentences of a hub text dataset (e.g. ``wikimedia/wikipedia``, config ``20231101.mt``),
        capped at 100K per language as Hyper-X did (§4, Appendix B.1)."""
        from xltransfer.data.hub import load_hub_split

        rows = load_hub_split(dataset, config, split, revision)
        sentences: dict[str, None] = {}  # each distinct sentence once, in order
        for row in rows:
            # a text dataset's "text"; otherwise every text field (e.g. an NLI set's premise and
            # hypothesis, the only unlabelled text some AmericasNLI languages have on the hub)
            texts = [row["text"]] if "text" in row else [v for v in row.values() if isinstance(v, str)]
            for paragraph in (line for text in texts for line in str(text).splitlines()):
                for sentence in _SENTENCE_END.split(paragraph):
                    if len(sentence.split()) >= 3:
                        sentences.setdefault(sentence.strip())
                if len(sentences) >= MAX_HUB_SENTENCES:
                    return list(sentences)[:MAX_HUB_SENTENCES]
        return list(sentences)

    def add_head(self, model, head_name: str) -> None:
        model.add_masked_lm_head(head_name)

    def encode(self, examples: list[str], tokenizer, max_length: int) -> list[dict[str, Any]]:
        enc = tokenizer(examples, truncation=True, max_length=max_length)
        return [{"input_ids": ids} for ids in enc["input_ids"]]

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
