"""The working directory of runs: results database, artifact store and caches (default ./.xlt)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xltransfer.artifacts import ArtifactStore
from xltransfer.errors import StoreError
from xltransfer.store import ResultStore

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
        """The store, opened for writing (created when missing)."""
        return ResultStore(self.results_path)

    def read_results(self) -> ResultStore:
        """The store, opened read-only: readers work on a store they cannot write and never create one."""
        return ResultStore(self.results_path, read_only=True)

    def check_writable(self) -> None:
        """Before a run trains anything: the working directory (and the store's folder) are folders
        this process can write, else one line naming the path."""
        for folder in dict.fromkeys((self.root, self.results_path.parent)):
            if folder.exists() and not folder.is_dir():
                raise StoreError(folder, "is a file, not a folder: pass another --workdir (or --results)")
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError as error:
                raise StoreError(
                    folder, f"cannot write here ({error.strerror or error}): pass a writable --workdir"
                ) from None

    @property
    def cache(self) -> Path:
        return self.root / "cache"
