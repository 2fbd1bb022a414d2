"""CoNLL-U reading with line-precise errors, on top of the ``conllu`` package.

``conllu`` parses leniently and reports no line numbers, so each sentence block is checked
first (ten tab-separated columns, ID forms, integer heads) and errors name the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import conllu

from xltransfer.errors import DataFormatError

_WORD_ID = re.compile(r"^[1-9][0-9]*$")
_RANGE_ID = re.compile(r"^[1-9][0-9]*-[1-9][0-9]*$")
_EMPTY_ID = re.compile(r"^[0-9]+\.[1-9][0-9]*$")


@dataclass(frozen=True)
class UdSentence:
    """A sentence as POS and DP see it: syntactic words (MWT parts, no empty nodes)."""

    sent_id: str
    words: tuple[str, ...]
    upos: tuple[str, ...]
    heads: tuple[int, ...]
    deprels: tuple[str, ...]
    tokenlist: conllu.TokenList  # the full parse, for writing predictions back as CoNLL-U
    line: int  # 1-based line where the sentence starts in its file


def _check_token_line(path: Path, line_no: int, line: str) -> None:
    columns = line.split("\t")
    if len(columns) != 10:
        raise DataFormatError(path, line_no, f"expected 10 tab-separated columns, found {len(columns)}")
    token_id, form, _, upos, _, _, head = columns[:7]
    if not (_WORD_ID.match(token_id) or _RANGE_ID.match(token_id) or _EMPTY_ID.match(token_id)):
        raise DataFormatError(path, line_no, f"invalid ID '{token_id}'")
    if not form:
        raise DataFormatError(path, line_no, "empty FORM")
    if _WORD_ID.match(token_id):
        if not (head == "_" or head.isdigit()):
            raise DataFormatError(path, line_no, f"HEAD must be an integer, found '{head}'")
        if not upos:
            raise DataFormatError(path, line_no, "empty UPOS")


def _blocks(path: Path, text: str):
    block: list[str] = []
    start = 1
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip() == "":
            if block:
                yield start, block
            block, start = [], line_no + 1
            continue
        if not block:
            start = line_no
        if not line.startswith("#"):
            _check_token_line(path, line_no, line)
        block.append(line)
    if block:
        yield start, block


def read_conllu(path: Path | str) -> list[UdSentence]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"not UTF-8 ({err})") from err
    sentences = []
    for start, block in _blocks(path, text):
        try:
            (tokenlist,) = conllu.parse("\n".join(block) + "\n\n")
        except Exception as err:  # conllu raises several exception types; all mean a malformed block
            raise DataFormatError(path, start, f"cannot parse sentence: {err}") from err
        words = [t for t in tokenlist if isinstance(t["id"], int)]
        if not words:
            raise DataFormatError(path, start, "sentence has no syntactic words")
        n = len(words)
        for offset, word in enumerate(words):
            if word["id"] != offset + 1:
                raise DataFormatError(
                    path, start, f"word IDs must run 1..{n} without gaps (found {word['id']})"
                )
            head = word["head"]
            if head is not None and not 0 <= head <= n:
                raise DataFormatError(path, start, f"word {word['id']}: HEAD {head} outside the sentence")
        sentences.append(
            UdSentence(
                sent_id=str(tokenlist.metadata.get("sent_id", f"{path.name}:{start}")),
                words=tuple(w["form"] for w in words),
                upos=tuple(w["upos"] for w in words),
                heads=tuple(w["head"] if w["head"] is not None else -1 for w in words),
                deprels=tuple(w["deprel"] or "_" for w in words),
                tokenlist=tokenlist,
                line=start,
            )
        )
    if not sentences:
        raise DataFormatError(path, None, "no sentences")
    return sentences
