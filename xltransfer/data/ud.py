"""CoNLL-U reading with line-precise errors, and writing back.

``conllu`` parses leniently and reports no line numbers, so each sentence block is checked
here (ten tab-separated columns, ID forms, integer heads in range, no cycle) and errors name the
file and line; the words' columns come from that check, the full ``conllu`` parse on demand.
Each sentence keeps its lines as read, so predictions are written back with everything else
(comments, multiword tokens, empty nodes, other columns) untouched, as the official scorer wants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import conllu
from conllu.parser import parse_comment_line

from xltransfer.data.lines import at_least_one, utf8_lines
from xltransfer.errors import DataFormatError
from xltransfer.parsing import find_cycle

_WORD_ID = re.compile(r"^[1-9][0-9]*$")
_RANGE_ID = re.compile(r"^[1-9][0-9]*-[1-9][0-9]*$")
_EMPTY_ID = re.compile(r"^[0-9]+\.[1-9][0-9]*$")

# 0-based CoNLL-U columns that predictions replace
WORD_COLUMNS = {"upos": 3, "head": 6, "deprel": 7}


@dataclass(frozen=True)
class UdSentence:
    """A sentence as POS and DP see it: syntactic words (MWT parts, no empty nodes).

    ``tokenlist`` (the ``conllu`` parse of the whole block) is built on first use from ``lines``:
    tasks need only the word columns, and parsing every field of every token triples reading time.
    """

    sent_id: str
    words: tuple[str, ...]
    upos: tuple[str, ...]
    heads: tuple[int, ...]  # -1 where HEAD is "_"
    deprels: tuple[str, ...]
    _tokenlist: conllu.TokenList | None  # given when built elsewhere (hub rows); None: parsed from lines
    line: int  # 1-based line where the sentence starts in its file
    word_lines: tuple[int, ...] = ()  # 1-based line of each syntactic word; empty when not read from a file
    lines: tuple[str, ...] = ()  # the block as read, for writing predictions back; empty when not from a file

    @cached_property
    def tokenlist(self) -> conllu.TokenList:
        if self._tokenlist is not None:
            return self._tokenlist
        return conllu.parse("\n".join(self.lines) + "\n\n")[0]

    def word_line(self, offset: int) -> int:
        """Where to point an error about the word at ``offset`` (the sentence when lines are unknown)."""
        return self.word_lines[offset] if self.word_lines else self.line


def _is_word_line(line: str) -> bool:
    return not line.startswith("#") and bool(_WORD_ID.match(line.split("\t", 1)[0]))


def _token_columns(path: Path, line_no: int, line: str) -> list[str]:
    columns = line.split("\t")
    if len(columns) != 10:
        raise DataFormatError(path, line_no, f"expected 10 tab-separated columns, found {len(columns)}")
    token_id, form, _, upos, _, _, head = columns[:7]
    if not (_WORD_ID.match(token_id) or _RANGE_ID.match(token_id) or _EMPTY_ID.match(token_id)):
        raise DataFormatError(path, line_no, f"invalid ID '{token_id}'")
    if not form:
        raise DataFormatError(path, line_no, "empty FORM")
    if not (head == "_" or head.isdecimal() and head.isascii()):  # on every token line, as conllu parses it
        raise DataFormatError(path, line_no, f"HEAD must be an integer, found '{head}'")
    if _WORD_ID.match(token_id):
        if not upos:
            raise DataFormatError(path, line_no, "empty UPOS")
    return columns


def _blocks(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) per sentence; a block's lines are consecutive in the file.

    Lines end at LF only (CoNLL-U; the file is read with ``newline="\n"``): ``str.splitlines``
    would also split at characters such as U+2028 or U+0085 that may occur inside a FORM.
    """
    block: list[str] = []
    start = 1
    for line_no, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\n").removesuffix("\r")
        if line.strip() == "":
            if block:
                yield start, block
            block, start = [], line_no + 1
            continue
        if not block:
            start = line_no
        block.append(line)
    if block:
        yield start, block


def _words(path: Path, start: int, block: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, columns) of each syntactic word, every token line checked on the way."""
    words = []
    ranges: list[tuple[int, int, int]] = []  # (line number, first word, last word) of multiword tokens
    for k, line in enumerate(block):
        if line.startswith("#"):
            continue
        columns = _token_columns(path, start + k, line)
        if _WORD_ID.match(columns[0]):
            words.append((start + k, columns))
        elif _RANGE_ID.match(columns[0]):
            ranges.append(_multiword_range(path, start + k, columns[0], len(words), ranges))
    if not words:
        raise DataFormatError(path, start, "sentence has no syntactic words")
    for line_no, _, last in ranges:
        if last > len(words):
            raise DataFormatError(
                path, line_no, f"multiword token ends at word {last}, past the sentence's {len(words)}"
            )
    return words


def _multiword_range(
    path: Path, line_no: int, token_id: str, words_before: int, earlier: list[tuple[int, int, int]]
) -> tuple[int, int, int]:
    """A multiword token's range as the CoNLL 2018 scorer reads it: the words right after its line,
    at least two of them, and none of another token's."""
    first, last = (int(part) for part in token_id.split("-"))
    if last <= first:
        raise DataFormatError(path, line_no, f"multiword token '{token_id}' must span two words or more")
    if earlier and first <= earlier[-1][2]:
        raise DataFormatError(
            path, line_no, f"multiword token '{token_id}' overlaps the one on line {earlier[-1][0]}"
        )
    if first != words_before + 1:
        raise DataFormatError(
            path, line_no, f"multiword token '{token_id}' must come right before word {first}, its first"
        )
    return line_no, first, last


def _heads(path: Path, words: list[tuple[int, list[str]]]) -> tuple[int, ...]:
    n = len(words)
    heads = []
    for offset, (line_no, columns) in enumerate(words):
        if int(columns[0]) != offset + 1:
            raise DataFormatError(
                path, line_no, f"word IDs must run 1..{n} without gaps (found {columns[0]})"
            )
        head = -1 if columns[6] == "_" else int(columns[6])
        if head > n:
            raise DataFormatError(path, line_no, f"word {offset + 1}: HEAD {head} outside the sentence")
        heads.append(head)
    return tuple(heads)


def _comment(lines: Sequence[str], name: str) -> str | None:
    """A ``# name = value`` comment of the sentence (its ``sent_id``, its ``text``)."""
    for line in lines:
        if line.startswith("#"):
            for key, value in parse_comment_line(line):
                if key == name:
                    return value
    return None


def sentence_text(sentence: UdSentence) -> str:
    """The sentence's ``# text``, else its words joined by spaces (read from the lines as read, so a
    file needs no full ``conllu`` parse to give its text)."""
    found = _comment(sentence.lines, "text") if sentence.lines else sentence.tokenlist.metadata.get("text")
    return found or " ".join(sentence.words)


def _sentence(path: Path, start: int, block: list[str]) -> UdSentence:
    words = _words(path, start, block)
    heads = _heads(path, words)
    cycle = find_cycle((-1, *heads))
    if cycle is not None:  # several roots or none are left to the task: some treebanks have them
        raise DataFormatError(path, start, f"HEAD cycle through words {', '.join(map(str, sorted(cycle)))}")
    return UdSentence(
        sent_id=_comment(block, "sent_id") or f"{path.name}:{start}",
        words=tuple(columns[1] for _, columns in words),
        upos=tuple(columns[3] for _, columns in words),
        heads=heads,
        deprels=tuple(columns[7] for _, columns in words),
        _tokenlist=None,
        line=start,
        word_lines=tuple(line_no for line_no, _ in words),
        lines=tuple(block),
    )


def read_conllu(path: Path | str) -> list[UdSentence]:
    return list(iter_conllu(path))


def iter_conllu(path: Path | str) -> Iterator[UdSentence]:
    """``read_conllu``'s sentences one at a time, the file read a line at a time."""
    path = Path(path)
    blocks = _blocks(path, utf8_lines(path, newline="\n"))
    return at_least_one((_sentence(path, start, block) for start, block in blocks), path, "sentences")


def syntactic_words_only(sentence: UdSentence) -> UdSentence:
    """The sentence without the tokens that have no HEAD, its words renumbered 1..n.

    Hub copies of UD (one token per listed word, as ``hub.iter_ud_rows`` builds them) list multiword-token
    surfaces and empty nodes among the words, with no HEAD; HEADs count syntactic words only, so those
    tokens must go before the tree lines up.
    """
    keep = [i for i, head in enumerate(sentence.heads) if head >= 0]
    if len(keep) == len(sentence.heads) or not keep:  # nothing to drop, or a copy without HEADs at all
        return sentence
    tokens = [{**sentence.tokenlist[i], "id": k + 1} for k, i in enumerate(keep)]
    return replace(
        sentence,
        words=tuple(sentence.words[i] for i in keep),
        upos=tuple(sentence.upos[i] for i in keep),
        heads=tuple(sentence.heads[i] for i in keep),
        deprels=tuple(sentence.deprels[i] for i in keep),
        _tokenlist=conllu.TokenList(tokens, sentence.tokenlist.metadata),
        word_lines=(),
        lines=(),
    )


def _replaced_lines(sentence: UdSentence, columns: Mapping[str, Sequence[object]]) -> list[str]:
    lines = list(sentence.lines) or [line for line in sentence.tokenlist.serialize().split("\n") if line]
    for name, values in columns.items():
        if len(values) != len(sentence.words):
            raise ValueError(
                f"sentence {sentence.sent_id}: {len(values)} values for {name}, {len(sentence.words)} words"
            )
    word = 0
    for k, line in enumerate(lines):
        if not _is_word_line(line):
            continue
        fields = line.split("\t")
        for name, values in columns.items():
            fields[WORD_COLUMNS[name]] = str(values[word])
        lines[k] = "\t".join(fields)
        word += 1
    return lines


def write_conllu(
    path: Path | str, sentences: Sequence[UdSentence], word_columns: Sequence[Mapping[str, Sequence[object]]]
) -> None:
    """Write sentences as read, with some columns of their syntactic words replaced.

    ``word_columns`` has, per sentence, a column name of ``WORD_COLUMNS`` mapped to one value per
    syntactic word. Nothing else changes, so the file aligns with gold for ``xlt evaluate`` and
    for the official scorer.
    """
    if len(sentences) != len(word_columns):
        raise ValueError(f"{len(word_columns)} predictions for {len(sentences)} sentences")
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for sentence, columns in zip(sentences, word_columns, strict=True):
            out.write("\n".join(_replaced_lines(sentence, columns)) + "\n\n")
