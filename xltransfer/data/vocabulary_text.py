"""The text a joint subword vocabulary is learned from: each language's distinct sentences (both
sides of every direction), re-sized by temperature to a capped total.

Below the cap the sample is drawn from each language's sentences held as a list. Above it (ML50:
~230M sentences) nothing grows with the corpus: a first pass over the pairs on disk estimates each
language's count of distinct sentences from the smallest hashes it sees, a second keeps, for each
language, the sentences of smallest (seeded) hash up to its share of the cap. A sentence repeated in
several directions has one hash, so it is one sentence, as in the list; the memory is the sample's.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Iterable, Mapping, Sequence

from xltransfer.data.parallel import ParallelExample, temperature_weights

# The most sentences a subword vocabulary is learned from (ours): fairseq's ML50 recipe
# (examples/multilingual, preprocess_ML50_v1.sh) encodes with mBART-50's released SentencePiece model
# and trains none, and the hyper-adapters paper (§4) gives no sample size; SentencePiece holds its
# whole input in memory (its `input_sentence_size` caps it), so ML50's ~230M sentences are sampled.
VOCABULARY_SAMPLE_CAP = 2_000_000
# smallest hashes kept per language to estimate its count of distinct sentences above the cap:
# the estimate's relative error is about 1/sqrt(4096), under 2% (Bar-Yossef et al. 2002's k-th
# minimum value); a language with fewer distinct sentences is counted exactly
DISTINCT_SKETCH = 4096
_HASH_SPACE = 2**64


def texts_by_language(examples: Iterable[ParallelExample]) -> dict[str, list[str]]:
    """Each language's distinct sentences (both sides), in first-seen order: what a joint subword
    vocabulary is trained on; multi-way data repeats a sentence once per direction."""
    seen: dict[str, dict[str, None]] = {}
    for lang, text in _sides(examples):
        seen.setdefault(lang, {})[text] = None
    return {lang: list(texts) for lang, texts in seen.items()}


def temperature_sample(
    texts: Mapping[str, Sequence[str]], temperature: float, seed: int = 0, cap: int = VOCABULARY_SAMPLE_CAP
) -> dict[str, list[str]]:
    """Each language's sentences re-sized to its temperature share of the total (at most ``cap``
    sentences in all): whole passes over the language's data, then a seeded subset for the remainder
    (equal sizes under the cap give the data back)."""
    sizes = {lang: len(lines) for lang, lines in texts.items()}
    rng = random.Random(seed)
    out = {}
    for lang, wanted in _shares(sizes, temperature, cap).items():
        lines = list(texts[lang])
        passes, remainder = divmod(wanted, len(lines))
        out[lang] = lines * passes + rng.sample(lines, remainder)
    return out


def vocabulary_sample(
    corpora: Sequence[Sequence[ParallelExample]],
    temperature: float,
    seed: int = 0,
    cap: int = VOCABULARY_SAMPLE_CAP,
) -> dict[str, list[str]]:
    """``temperature_sample`` of the directions' ``corpora`` (each a sequence of pairs, on disk or
    not), holding at most about ``cap`` sentences whatever the corpora's size.

    When every side of every pair fits under the cap, the sentences are listed and sampled as
    ``temperature_sample`` samples them. Otherwise two passes over the pairs: distinct counts per
    language (exact up to ``DISTINCT_SKETCH`` sentences, estimated above), then each language's
    share, the sentences of smallest seeded hash: a uniform sample of its distinct sentences without
    replacement, the same for the same data and seed on any machine, whatever the order of pairs."""
    if sum(2 * len(corpus) for corpus in corpora) <= cap:
        return temperature_sample(texts_by_language(_pairs(corpora)), temperature, seed, cap)
    salt = f"vocabulary-{seed}".encode()[:16]
    sketches: dict[str, _SmallestHashes] = {}
    for lang, text in _sides(_pairs(corpora)):
        sketches.setdefault(lang, _SmallestHashes(DISTINCT_SKETCH)).add(_hash(text, salt), None)
    shares = _shares({lang: sketch.distinct() for lang, sketch in sketches.items()}, temperature, cap)
    kept = {lang: _SmallestHashes(wanted) for lang, wanted in shares.items() if wanted > 0}
    for lang, text in _sides(_pairs(corpora)):
        if lang in kept:
            kept[lang].add(_hash(text, salt), text)
    out = {}
    for lang, smallest in sorted(kept.items()):
        lines = smallest.values()
        passes, remainder = divmod(shares[lang], len(lines))
        out[lang] = lines * passes + lines[:remainder]
    return out


def _shares(sizes: Mapping[str, int], temperature: float, cap: int) -> dict[str, int]:
    """How many sentences each language gets: its temperature weight of the (capped) total."""
    weights = temperature_weights(sizes, temperature)
    total = min(sum(sizes.values()), cap)
    return {lang: round(weights[lang] * total) for lang in sorted(weights)}


class _SmallestHashes:
    """The ``size`` distinct smallest hashes added (with a value each), in memory of ``size``."""

    def __init__(self, size: int):
        self.size = size
        self._heap: list[int] = []  # negated: the largest kept hash on top
        self._values: dict[int, str | None] = {}

    def add(self, value_hash: int, value: str | None) -> None:
        if value_hash in self._values:
            return
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, -value_hash)
        elif value_hash < -self._heap[0]:
            del self._values[-heapq.heapreplace(self._heap, -value_hash)]
        else:
            return
        self._values[value_hash] = value

    def distinct(self) -> int:
        """How many distinct hashes were added: exact while under ``size``, else estimated."""
        if len(self._heap) < self.size:
            return len(self._heap)
        return max(self.size, round((self.size - 1) * _HASH_SPACE / -self._heap[0]))

    def values(self) -> list[str]:
        """The kept values, in the order of their hashes (a seeded random order)."""
        return [self._values[h] for h in sorted(self._values)]  # type: ignore[misc]


def _hash(text: str, salt: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8, salt=salt).digest(), "big")


def _pairs(corpora: Sequence[Iterable[ParallelExample]]) -> Iterable[ParallelExample]:
    return (example for corpus in corpora for example in corpus)


def _sides(examples: Iterable[ParallelExample]) -> Iterable[tuple[str, str]]:
    for example in examples:
        for lang, text in ((example.source_lang, example.source), (example.target_lang, example.target)):
            if lang is not None and text is not None:
                yield lang, text
