"""Word-level labels on subword encoders: the first subword of a word carries its label."""

from __future__ import annotations

from typing import Any

import torch

IGNORE = -100
META_PREFIX = "meta_"  # batch keys that are not model inputs


def encode_words(
    words: list[str] | tuple[str, ...], tokenizer, max_length: int
) -> tuple[list[int], list[int]]:
    """Token ids and, per token, the index of the word it starts (-1 elsewhere).

    A word the tokenizer maps to nothing (some control or zero-width characters) is replaced by
    the unknown token so that every word keeps a position to be labelled and scored at.
    """
    enc = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = enc.word_ids()
    present = {w for w in word_ids if w is not None}
    if len(present) < len(words) and max(present, default=-1) == len(words) - 1:
        patched = [w if i in present else tokenizer.unk_token for i, w in enumerate(words)]
        enc = tokenizer(patched, is_split_into_words=True, truncation=True, max_length=max_length)
        word_ids = enc.word_ids()
    starts, previous = [], None
    for w in word_ids:
        starts.append(w if (w is not None and w != previous) else -1)
        previous = w
    return list(enc["input_ids"]), starts


def subword_counts(sentences: list[list[str] | tuple[str, ...]], tokenizer) -> list[int]:
    """Per sentence of words, its subwords without special tokens, each word tokenized on its own
    (a word the tokenizer maps to nothing counts none)."""
    if not sentences:
        return []
    words = [list(sentence) for sentence in sentences]
    encoded = tokenizer(words, is_split_into_words=True, add_special_tokens=False)
    return [len(ids) for ids in encoded["input_ids"]]


def pad_batch(features: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad every list-valued feature to the batch's longest (ids with pad_id, labels with -100, meta
    features with -1); per-example scalars become a vector."""
    length = max(len(f["input_ids"]) for f in features)
    batch: dict[str, torch.Tensor] = {}
    for key in features[0]:
        if isinstance(features[0][key], int):  # a per-example scalar (e.g. a sentence's word count)
            batch[key] = torch.tensor([f[key] for f in features])
            continue
        fill = pad_id if key == "input_ids" else (-1 if key.startswith(META_PREFIX) else IGNORE)
        batch[key] = torch.tensor([list(f[key]) + [fill] * (length - len(f[key])) for f in features])
    batch["attention_mask"] = (
        torch.arange(length)[None, :] < torch.tensor([len(f["input_ids"]) for f in features])[:, None]
    ).long()
    return batch


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if not k.startswith(META_PREFIX)}


def word_predictions(logits: torch.Tensor, word_index: torch.Tensor, n_words: list[int]) -> list[list[int]]:
    """Per example, the argmax label of each word's first subword (-1 for a word cut by truncation)."""
    best = logits.argmax(-1).tolist()
    index = word_index.tolist()
    out = []
    for row, positions, n in zip(best, index, n_words, strict=True):
        labels = [-1] * n
        for label, w in zip(row, positions, strict=True):
            if w >= 0:
                labels[w] = label
        out.append(labels)
    return out
