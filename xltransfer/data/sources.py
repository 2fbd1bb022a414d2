"""Where a task's data comes from: the synthetic suite, a UD release folder, explicit files, or the hub.

A source answers two questions for (format, language, split): where the file is (or how to
load it) and what its content fingerprint is, so artifacts are keyed by the data they saw.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xltransfer.data.corpus import HELD_OUT_CAP
from xltransfer.errors import GridError
from xltransfer.util import file_sha256

SPLITS = ("train", "dev", "test")


class DeclaredSplitMissing(GridError):
    """A split the grid declares for a dataset that the dataset does not have (always an error)."""


def file_fingerprint(path: Path) -> str:
    return file_sha256(path)


class DataSource(ABC):
    field: str  # the grid field it came from, for error messages
    # keep only the first N examples (sentences) of each split: Hyper-X's "100K Wikipedia sentences
    # per language" (§4); None reads everything (BAD-X and MAD-G train on whole Wikipedias)
    max_sentences: int | None = None
    # the most sentences of a language's held-out MLM text (the selection set cut from its train
    # text when there is no dev split); None: corpus.HELD_OUT_CAP, where the default's source is cited
    held_out_sentences: int | None = None

    @abstractmethod
    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        """The local file, or None when this source has no such split."""

    def has(self, data_format: str, language: str, split: str) -> bool:
        return self.locate(data_format, language, split) is not None

    def fingerprint(self, data_format: str, language: str, split: str) -> str | None:
        path = self.locate(data_format, language, split)
        return self.capped_fingerprint(file_fingerprint(path)) if path is not None else None

    def read(self, task, language: str, split: str) -> list[Any]:
        path = self.locate(task.metadata.data_format, language, split)
        if path is None:
            raise GridError(self.field, f"no {split} data for language '{language}'")
        examples = task.read_file(path)
        return examples if self.max_sentences is None else examples[: self.max_sentences]

    def iter_read(self, task, language: str, split: str, extra: int = 0) -> Iterator[Any]:
        """The split's examples streamed (a task with ``iter_file``: MLM text), the first
        ``max_sentences`` + ``extra`` of them under a cap (``extra``: held-out text read on top)."""
        path = self.locate(task.metadata.data_format, language, split)
        if path is None:
            raise GridError(self.field, f"no {split} data for language '{language}'")
        return self._capped(task.iter_file(path), extra)

    def _capped(self, examples: Iterator[Any], extra: int) -> Iterator[Any]:
        if self.max_sentences is None:
            return examples
        return itertools.islice(examples, self.max_sentences + extra)

    def cap(self, language: str) -> int | None:
        """The ``max_sentences`` that applies to ``language``."""
        return self.max_sentences

    def held_out_cap(self, language: str) -> int:
        """The most held-out MLM sentences ``language`` is selected on."""
        return self.held_out_sentences or HELD_OUT_CAP

    def where(self, data_format: str, language: str, split: str) -> str:
        """The file (or hub dataset) a split is read from, for messages."""
        path = self.locate(data_format, language, split)
        return str(path) if path is not None else f"{self.field} ({language}, {split})"

    def capped_fingerprint(self, fingerprint: str) -> str:
        """A split's fingerprint with the cap: the first N sentences are other data than all of them."""
        return fingerprint if self.max_sentences is None else f"{fingerprint}:first-{self.max_sentences}"

    def cap_description(self) -> dict[str, Any]:
        caps = {"max_sentences": self.max_sentences, "held_out_sentences": self.held_out_sentences}
        return {name: value for name, value in caps.items() if value is not None}

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__}


@dataclass
class SyntheticSource(DataSource):
    """The built-in synthetic suite: generated on first use into the workspace cache."""

    config: Any  # SyntheticConfig
    cache_dir: Path
    field: str = "data"

    @property
    def suite_dir(self) -> Path:
        return self.cache_dir / "synthetic" / self.config.fingerprint()[:16]

    def materialise(self) -> Path:
        from xltransfer.data.synthetic import generate_suite

        return generate_suite(self.config, self.suite_dir)

    def languages(self) -> list[str]:
        from xltransfer.data.synthetic import load_languages

        return [lang.code for lang in load_languages(self.materialise())]

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        root = self.materialise()
        layout = {
            "conllu": root / "ud" / language / f"{language}_synth-ud-{split}.conllu",
            "bio": root / "ner" / language / f"{split}.txt",
            "nli-tsv": root / "nli" / split / f"{language}.tsv",
            "parallel": root / "mt" / split / f"{language}.txt",
            "text": root / "text" / language / f"{split}.txt",
        }
        path = layout[data_format]
        return path if path.is_file() else None

    def fingerprint(self, data_format: str, language: str, split: str) -> str | None:
        # the suite is a pure function of its config: no need to generate it to key artifacts
        return f"synthetic:{self.config.fingerprint()}:{data_format}:{language}:{split}"

    def describe(self) -> dict[str, Any]:
        return {"type": "synthetic", "fingerprint": self.config.fingerprint()}


@dataclass
class UdFolderSource(DataSource):
    """A UD release (or any folder of UD_* treebank folders) with the standard file names."""

    root: Path
    treebanks: dict[str, str]
    field: str = "data"
    max_sentences: int | None = None
    held_out_sentences: int | None = None

    def _treebank_files(self, language: str) -> list[Path]:
        if language in self.treebanks:
            folder = self.root / self.treebanks[language]
            if not folder.is_dir():
                raise GridError(f"{self.field}.treebanks.{language}", f"folder {folder} does not exist")
            return sorted(folder.glob("*.conllu"))
        return sorted(self.root.glob(f"*/{language}_*-ud-*.conllu"))

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        if data_format not in ("conllu", "text"):  # text: the treebank's sentences, for MLM
            raise GridError(self.field, f"a UD folder provides CoNLL-U (or its text), not {data_format}")
        matches = [p for p in self._treebank_files(language) if p.name.endswith(f"-ud-{split}.conllu")]
        folders = sorted({p.parent.name for p in matches})
        if len(folders) > 1:
            raise GridError(
                f"{self.field}.treebanks.{language}",
                f"several treebanks for '{language}' ({', '.join(folders)}): name one",
            )
        return matches[0] if matches else None

    def describe(self) -> dict[str, Any]:
        return {
            "type": "ud",
            "root": str(self.root),
            "treebanks": dict(self.treebanks),
            **self.cap_description(),
        }


@dataclass
class FilesSource(DataSource):
    """Explicit files per language and split, in the task's own format."""

    files: dict[str, dict[str, Path]]
    field: str = "data"
    max_sentences: int | None = None
    held_out_sentences: int | None = None

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        return self.files.get(language, {}).get(split)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "files",
            "files": {k: {s: str(p) for s, p in v.items()} for k, v in self.files.items()},
            **self.cap_description(),
        }


@dataclass
class HubSource(DataSource):
    """A parquet dataset on the Hugging Face Hub; ``config`` may contain ``{lang}``."""

    dataset: str
    config: str | None
    revision: str | None
    split_names: dict[str, str]
    field: str = "data"
    max_sentences: int | None = None
    held_out_sentences: int | None = None

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        return None

    def has(self, data_format: str, language: str, split: str) -> bool:
        """With ``splits`` named in the grid, exactly those; else any (reading tells, online)."""
        return not self.split_names or split in self.split_names

    def fingerprint(self, data_format: str, language: str, split: str) -> str | None:
        split_name = self.split_names.get(split, split)
        return self.capped_fingerprint(
            f"hub:{self.dataset}:{self._config(language)}:{self.revision or 'main'}:{split_name}"
        )

    def _config(self, language: str) -> str | None:
        return self.config.format(lang=language) if self.config else None

    def read(self, task, language: str, split: str) -> list[Any]:
        """A split the grid's ``splits`` does not declare is not read; one it declares but the
        dataset lacks is a DeclaredSplitMissing naming the field."""
        from xltransfer.data.hub import MissingSplit

        self._check_declared(task, language, split)
        try:
            where = (self.dataset, self._config(language), self.split_names.get(split, split), self.revision)
            if self.max_sentences is None:
                return task.read_hub(*where)
            return task.read_hub_first(*where, self.max_sentences)
        except MissingSplit as error:
            raise self._declared_missing(split, language, error) from None

    def _check_declared(self, task, language: str, split: str) -> None:
        if not self.has(task.metadata.data_format, language, split):
            raise GridError(
                f"{self.field}.splits",
                f"no {split} split declared for '{language}' (declared: {', '.join(self.split_names)})",
            )

    def iter_read(self, task, language: str, split: str, extra: int = 0) -> Iterator[Any]:
        self._check_declared(task, language, split)
        where = (self.dataset, self._config(language), self.split_names.get(split, split), self.revision)
        return self._capped(self._missing_split_named(task.iter_hub(*where), split, language), extra)

    def _missing_split_named(self, examples: Iterator[Any], split: str, language: str) -> Iterator[Any]:
        from xltransfer.data.hub import MissingSplit

        try:
            yield from examples
        except MissingSplit as error:
            raise self._declared_missing(split, language, error) from None

    def _declared_missing(self, split: str, language: str, error: Exception) -> DeclaredSplitMissing:
        return DeclaredSplitMissing(
            f"{self.field}.splits.{split}",
            f"declares a {split} split for '{language}', but {error}: declare only the splits it has",
        )

    def where(self, data_format: str, language: str, split: str) -> str:
        return f"{self.dataset} ({self._config(language)}, {self.split_names.get(split, split)})"

    def describe(self) -> dict[str, Any]:
        return {
            "type": "hub",
            "dataset": self.dataset,
            "config": self.config,
            "revision": self.revision,
            **self.cap_description(),
        }


@dataclass
class PerLanguageSource(DataSource):
    """Different sources for different languages of one task: e.g. English MultiNLI for the source
    and AmericasNLI for the targets, or one hub config per UD treebank."""

    by_language: dict[str, DataSource]
    default: DataSource | None
    field: str = "data"

    def source(self, language: str) -> DataSource:
        found = self.by_language.get(language, self.default)
        if found is None:
            raise GridError(f"{self.field}.languages", f"no data source for language '{language}'")
        return found

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        return self.source(language).locate(data_format, language, split)

    def has(self, data_format: str, language: str, split: str) -> bool:
        return self.source(language).has(data_format, language, split)

    def fingerprint(self, data_format: str, language: str, split: str) -> str | None:
        return self.source(language).fingerprint(data_format, language, split)

    def read(self, task, language: str, split: str) -> list[Any]:
        return self.source(language).read(task, language, split)

    def iter_read(self, task, language: str, split: str, extra: int = 0) -> Iterator[Any]:
        return self.source(language).iter_read(task, language, split, extra)

    def cap(self, language: str) -> int | None:
        return self.source(language).cap(language)

    def held_out_cap(self, language: str) -> int:
        return self.source(language).held_out_cap(language)

    def where(self, data_format: str, language: str, split: str) -> str:
        return self.source(language).where(data_format, language, split)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "per-language",
            "languages": {lang: src.describe() for lang, src in self.by_language.items()},
            "default": self.default.describe() if self.default is not None else None,
        }
