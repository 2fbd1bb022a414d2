"""CoNLL/BIO column files (WikiANN, MasakhaNER, CoNLL-2003 style) with line-precise errors.

One token per line, whitespace-separated columns, the token first and the tag last, a blank
line between sentences. Tags are validated strictly (``O``, ``B-X``, ``I-X``) but their entity
types are kept as they are: scoring runs on the gold file unchanged, and mapping types onto a
model's label inventory is the task's business, not the reader's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xltransfer.data.lines import at_least_one, utf8_lines
from xltransfer.errors import DataFormatError
from xltransfer.languages import lookup

_TAG = re.compile(r"^(O|[BI]-\S+)$")
# Rahimi et al. (2019)'s WikiANN dumps write every token as "<wiki code>:<token>", e.g. "yo:Èkó",
# "zh-yue:..." (a wiki code is a language code, sometimes with a variant after a hyphen)
_LANG_PREFIX = re.compile(r"^([a-z]{2,3}(?:-[a-z]+)*):(.+)$")
_DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separator: a boundary, not a sentence


@dataclass(frozen=True)
class BioSentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int  # 1-based line where the sentence starts in its file (row number for hub data)


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.match(tag))


def read_bio(path: Path | str) -> list[BioSentence]:
    """Sentences of a BIO file; ``-DOCSTART-`` lines only separate sentences."""
    return list(iter_bio(path))


def iter_bio(path: Path | str) -> Iterator[BioSentence]:
    """``read_bio``'s sentences a line at a time: one pass decides the language prefix (which needs
    every token, ``language_prefix``), a second yields the sentences; neither holds the file."""
    path = Path(path)

    def sentences() -> Iterator[BioSentence]:
        for start, rows in _sentence_rows(path, utf8_lines(path)):
            yield BioSentence(tuple(t for t, _ in rows), tuple(tag for _, tag in rows), start)

    yield from _prefix_dropped(lambda: at_least_one(sentences(), path, "sentences"))


def _sentence_rows(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    rows: list[tuple[str, str]] = []
    start = 1
    for line_no, line in enumerate(lines, start=1):
        columns = line.split()
        if not columns or columns[0] == _DOCSTART:
            if rows:
                yield start, rows
            rows = []
            continue
        if len(columns) < 2:
            raise DataFormatError(path, line_no, f"expected 'token ... TAG' columns, found '{line.strip()}'")
        if not is_valid_tag(columns[-1]):
            raise DataFormatError(
                path, line_no, f"invalid tag '{columns[-1]}' (expected O, B-TYPE or I-TYPE)"
            )
        if not rows:
            start = line_no
        rows.append((columns[0], columns[-1]))
    if rows:
        yield start, rows


def language_prefix(sentences: Iterable[BioSentence]) -> int:
    """How many characters of ``xx:`` prefix to drop from every token: none unless every token of
    the file carries the same language code (tokens like URLs or times, "10:30", must survive, and
    one prefix-like token is no evidence that the file was written with prefixes). Holds no
    sentence; stops at the first token that rules a prefix out."""
    codes: set[str] = set()
    for sentence in sentences:
        for token in sentence.tokens:
            match = _LANG_PREFIX.match(token)
            if match is None:
                return 0
            codes.add(match.group(1))
            if len(codes) > 1:
                return 0
    if not codes:
        return 0
    (code,) = codes
    return len(code) + 1 if lookup(code.split("-")[0]) is not None else 0


def _prefix_dropped(sentences: Callable[[], Iterable[BioSentence]]) -> Iterator[BioSentence]:
    """The sentences ``sentences()`` gives, read twice: once for ``language_prefix``, then each with
    that prefix dropped from its tokens."""
    cut = language_prefix(sentences())
    for sentence in sentences():
        yield (
            sentence
            if not cut
            else BioSentence(tuple(t[cut:] for t in sentence.tokens), sentence.tags, sentence.line)
        )


def write_bio(path: Path | str, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> None:
    blocks = [
        "\n".join(f"{token} {tag}" for token, tag in zip(words, labels, strict=True))
        for words, labels in zip(tokens, tags, strict=True)
    ]
    Path(path).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def iter_bio_rows(
    dataset: str, config: str | None, split: str, revision: str | None
) -> Iterator[BioSentence]:
    """Sentences from a parquet NER dataset (``tokens`` + ``ner_tags``, e.g. ``unimelb-nlp/wikiann``),
    read from its memory-mapped files twice (the language prefix, then the sentences), held never.

    ``ner_tags`` is usually a ClassLabel sequence that stores ids; they are mapped through the
    feature's own names, never through an assumed order.
    """
    from xltransfer.data.hub import load_hub_split

    rows = load_hub_split(dataset, config, split, revision)
    tag_feature = getattr(rows.features.get("ner_tags"), "feature", None)
    names = getattr(tag_feature, "names", None)
    where = f"{dataset}/{config or 'default'}/{split}"

    def sentences() -> Iterator[BioSentence]:
        for index, row in enumerate(rows, start=1):
            tags = tuple(
                names[t] if names is not None and isinstance(t, int) else str(t) for t in row["ner_tags"]
            )
            if len(tags) != len(row["tokens"]):
                raise DataFormatError(where, index, f"{len(row['tokens'])} tokens but {len(tags)} tags")
            for tag in tags:
                if not is_valid_tag(tag):
                    raise DataFormatError(where, index, f"invalid tag '{tag}'")
            yield BioSentence(tuple(row["tokens"]), tags, index)

    yield from _prefix_dropped(sentences)
