"""Hub datasets (parquet, ``datasets`` >= 4), loaded only when the hub is reachable or cached."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from xltransfer import hub
from xltransfer.errors import XltError


class DatasetUnavailable(XltError):
    pass


class MissingSplit(XltError):
    """The dataset has no split of that name; ``available`` lists those it has."""

    def __init__(self, dataset: str, config: str | None, split: str, available: str):
        self.available = available
        where = f"dataset '{dataset}' ({config or 'default'})"
        super().__init__(f"{where} has no split '{split}' (it has {available})")


# how `datasets` says a split does not exist (arrow_reader: "Unknown split"; builder: "Bad split")
_UNKNOWN_SPLIT = re.compile(
    r"(?:Unknown split \"[^\"]*\"\. Should be one of|Bad split: .*\. Available splits:) (\[.*\])"
)


@contextmanager
def _offline_mode():
    """Make the hub libraries answer from the local cache only (no retries against a dead network)."""
    import datasets
    import huggingface_hub.constants as hub_constants

    saved = (os.environ.get("HF_HUB_OFFLINE"), datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    os.environ["HF_HUB_OFFLINE"] = "1"
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved[0]
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved[1], saved[2]


def load_hub_split(dataset: str, config: str | None, split: str, revision: str | None):
    """A split of a hub dataset; offline, only a cached copy will do, and failing says what to do.
    A split the dataset does not have is a MissingSplit, online or cached."""
    import datasets

    def load():
        try:
            return datasets.load_dataset(dataset, config, split=split, revision=revision)
        except ValueError as error:
            unknown = _UNKNOWN_SPLIT.search(str(error))
            if unknown is None:
                raise
            raise MissingSplit(dataset, config, split, unknown.group(1)) from error

    if hub.hub_reachable():
        return load()
    try:
        with _offline_mode():
            return load()
    except MissingSplit:
        raise
    except Exception as cached_error:
        raise DatasetUnavailable(
            f"cannot load dataset '{dataset}' ({config or 'default'}, {split}): the Hugging Face Hub is not "
            "reachable and it is not cached. Point the grid at local files instead, e.g. "
            "`data: {pos: {type: ud, root: /path/to/ud-treebanks}}` or "
            "`{type: files, files: {LANG: {train: ...}}}`."
        ) from cached_error


def iter_ud_rows(dataset: str, config: str | None, split: str, revision: str | None) -> Iterator[Any]:
    """UD sentences from a parquet dataset with CoNLL-U-like columns (tokens, upos, head, deprel),
    read from its memory-mapped files as they are asked for; multiword-token surfaces and empty
    nodes (no HEAD) are dropped so words are syntactic words."""
    import conllu

    from xltransfer.data.ud import UdSentence, syntactic_words_only

    rows = load_hub_split(dataset, config, split, revision)
    upos_feature = getattr(rows.features.get("upos"), "feature", None)
    upos_names = getattr(upos_feature, "names", None)  # a ClassLabel sequence stores ids
    for index, row in enumerate(rows):
        words = tuple(row["tokens"])
        upos = tuple(upos_names[u] if upos_names and isinstance(u, int) else u for u in row["upos"])
        heads = tuple(int(h) if str(h).isdigit() else -1 for h in row.get("head", ["_"] * len(words)))
        deprels = tuple(row.get("deprel", ["_"] * len(words)))
        tokens = [
            {
                "id": i + 1,
                "form": w,
                "lemma": "_",
                "upos": u,
                "xpos": None,
                "feats": None,
                "head": h,
                "deprel": d,
                "deps": None,
                "misc": None,
            }
            for i, (w, u, h, d) in enumerate(zip(words, upos, heads, deprels, strict=True))
        ]
        sent_id = str(row.get("idx", row.get("sent_id", index)))
        sentence = UdSentence(
            sent_id, words, upos, heads, deprels, conllu.TokenList(tokens, {"sent_id": sent_id}), index + 1
        )
        yield syntactic_words_only(sentence)  # POS and DP score syntactic words only
