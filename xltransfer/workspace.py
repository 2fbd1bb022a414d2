"""The working directory of runs: results database, artifact store and caches (default ./.xlt)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from xltransfer.artifacts import ArtifactStore
from xltransfer.results import ResultStore

DEFAULT_WORKDIR = ".xlt"


@dataclass
class Workspace:
    root: Path
    results_path: Path

    @classmethod
    def at(cls, root: Path | str | None = None, results: Path | str | None = None) -> Workspace:
        root = Path(root or os.environ.get("XLT_WORKDIR", DEFAULT_WORKDIR)).expanduser()
        results = Path(results or os.environ.get("XLT_RESULTS", root / "results.sqlite")).expanduser()
        return cls(root, results)

    @property
    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.root / "artifacts")

    @property
    def results(self) -> ResultStore:
        return ResultStore(self.results_path)

    @property
    def cache(self) -> Path:
        return self.root / "cache"
