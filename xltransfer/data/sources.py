"""Where a task's data comes from: the synthetic suite, a UD release folder, explicit files, or the hub.

A source answers two questions for (format, language, split): where the file is (or how to
load it) and what its content fingerprint is, so artifacts are keyed by the data they saw.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xltransfer.errors import GridError
from xltransfer.util import file_sha256

SPLITS = ("train", "dev", "test")


def file_fingerprint(path: Path) -> str:
    return file_sha256(path)


class DataSource(ABC):
    field: str  # the grid field it came from, for error messages

    @abstractmethod
    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        """The local file, or None when this source has no such split."""

    def has(self, data_format: str, language: str, split: str) -> bool:
        return self.locate(data_format, language, split) is not None

    def fingerprint(self, data_format: str, language: str, split: str) -> str | None:
        path = self.locate(data_format, language, split)
        return file_fingerprint(path) if path is not None else None

    def read(self, task, language: str, split: str) -> list[Any]:
        path = self.locate(task.metadata.data_format, language, split)
        if path is None:
            raise GridError(self.field, f"no {split} data for language '{language}'")
        return task.read_file(path)

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
        return {"type": "ud", "root": str(self.root), "treebanks": dict(self.treebanks)}


@dataclass
class FilesSource(DataSource):
    """Explicit files per language and split, in the task's own format."""

    files: dict[str, dict[str, Path]]
    field: str = "data"

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        return self.files.get(language, {}).get(split)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "files",
            "files": {k: {s: str(p) for s, p in v.items()} for k, v in self.files.items()},
        }


@dataclass
class HubSource(DataSource):
    """A parquet dataset on the Hugging Face Hub; ``config`` may contain ``{lang}``."""

    dataset: str
    config: str | None
    revision: str | None
    split_names: dict[str, str]
    field: str = "data"

    def locate(self, data_format: str, language: str, split: str) -> Path | None:
        return None

    def has(self, data_format: str, language: str, split: str) -> bool:
        """With ``splits`` named in the grid, exactly those; else any (reading tells, online)."""
        return not self.split_names or split in self.split_names

    def fingerprint(self, data_format: str, language: str, split: str) -> str | None:
        split_name = self.split_names.get(split, split)
        return f"hub:{self.dataset}:{self._config(language)}:{self.revision or 'main'}:{split_name}"

    def _config(self, language: str) -> str | None:
        return self.config.format(lang=language) if self.config else None

    def read(self, task, language: str, split: str) -> list[Any]:
        return task.read_hub(
            self.dataset, self._config(language), self.split_names.get(split, split), self.revision
        )

    def describe(self) -> dict[str, Any]:
        return {"type": "hub", "dataset": self.dataset, "config": self.config, "revision": self.revision}


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

    def describe(self) -> dict[str, Any]:
        return {
            "type": "per-language",
            "languages": {lang: src.describe() for lang, src in self.by_language.items()},
            "default": self.default.describe() if self.default is not None else None,
        }
