"""Content-addressed store of trained pieces: one folder per key, written atomically.

A piece is written into a temporary folder and renamed into place, so a killed run leaves
either the whole piece or nothing; a key that exists is complete and is never trained again.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_FILE = "state.safetensors"
INFO_FILE = "info.json"


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / INFO_FILE).is_file()

    def write(self, key: str, fill: Callable[[Path], None], info: dict[str, Any]) -> Path:
        """Run ``fill(tmpdir)``, add info.json, and move the folder into place in one rename."""
        final = self.path(key)
        staging = self.root / ".staging" / f"{key}.{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            fill(staging)
            (staging / INFO_FILE).write_text(
                json.dumps({"key": key, **info}, indent=2, sort_keys=True, default=str)
            )
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not self.has(key):  # not a concurrent writer of the same key: a real failure
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return final

    def info(self, key: str) -> dict[str, Any]:
        return json.loads((self.path(key) / INFO_FILE).read_text())

    def save_state(
        self,
        key: str,
        state: dict,
        info: dict[str, Any],
        write_files: Callable[[Path], None] | None = None,
    ) -> Path:
        """Tensors as safetensors, plus any other files ``write_files(folder)`` adds, in one piece."""
        from safetensors.torch import save_file

        tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}

        def fill(folder: Path) -> None:
            save_file(tensors, str(folder / STATE_FILE))
            if write_files is not None:
                write_files(folder)

        return self.write(key, fill, info)

    def load_state(self, key: str) -> dict:
        from safetensors.torch import load_file

        return load_file(str(self.path(key) / STATE_FILE))

    def clean_staging(self) -> None:
        """Remove leftovers of killed runs (never a finished piece)."""
        shutil.rmtree(self.root / ".staging", ignore_errors=True)
