"""Content-addressed store of trained pieces: one folder per key, written atomically, verified on use.

A piece is written into a staging folder and renamed into place, so a killed run leaves either
the whole piece or nothing under its key (and a staged leftover that the next run removes).
``info.json`` records the sha256 and size of every file of the piece: a piece whose files were
truncated, deleted or altered after it was stored is found before it is used, moved aside under
``.damaged/`` (the path is logged) and trained again, instead of failing every cell forever or,
worse, scoring with altered weights. One OS lock per key (``.locks/``) lets one process train a
piece while any other that needs it waits and then reuses it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xltransfer import cached_folder as folders
from xltransfer.cached_folder import DAMAGED_DIR, LOCKS_DIR, STAGING_DIR  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

STATE_FILE = "state.safetensors"
INFO_FILE = "info.json"


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        """Stored with every recorded file present at its recorded size (a cheap check: ``problem``
        also compares checksums)."""
        return self._files_problem(key) is None

    def problem(self, key: str) -> str | None:
        """Why the stored piece cannot be used ("not stored", a missing, truncated or altered file),
        or None when every file has the checksum recorded when it was stored."""
        found = self._files_problem(key)
        if found is not None:
            return found
        return folders.verified(self.path(key), self._recorded_files(key))

    def _recorded_files(self, key: str) -> dict[str, dict[str, Any]]:
        return self.info(key).get("files", {})

    def _files_problem(self, key: str) -> str | None:
        if not (self.path(key) / INFO_FILE).is_file():
            return "not stored" if not self.path(key).exists() else f"{INFO_FILE} is missing"
        try:
            recorded = self._recorded_files(key)
        except (OSError, ValueError) as error:
            return f"{INFO_FILE} is unreadable ({error})"
        if not recorded:  # stored before checksums were recorded: only its state file can be checked
            return _legacy_state_problem(self.path(key) / STATE_FILE, self.info(key))
        return folders.files_problem(self.path(key), recorded)

    def write(self, key: str, fill: Callable[[Path], None], info: dict[str, Any]) -> Path:
        """Run ``fill(tmpdir)``, add info.json (with every file's checksum), and move the folder into
        place in one rename, holding the key's lock; a key another process stored meanwhile is not
        filled again, and a damaged one in its place is moved aside first."""
        final = self.path(key)
        with self.lock(key):
            if self.has(key):
                return final
            problem = self._files_problem(key)
            if problem is not None and problem != "not stored":
                self.set_aside(key, problem)

            def fill_and_record(staging: Path) -> None:
                fill(staging)
                record = {"key": key, **info, "files": folders.manifest(staging)}
                (staging / INFO_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))

            folders.publish(self.root, key, fill_and_record, final)
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
        """The piece's tensors, after checking them against their recorded checksum."""
        from safetensors.torch import load_file

        problem = self.problem(key)
        if problem is not None:
            raise DamagedPieceError(self.path(key), problem)
        return load_file(str(self.path(key) / STATE_FILE))

    # -- damaged pieces, locks and leftovers ------------------------------------------------------
    def set_aside(self, key: str, problem: str) -> Path | None:
        """Move a damaged piece out of the way (kept for inspection, never used again) so it can be
        trained again; returns where it went (None if nothing was stored under the key)."""
        return folders.set_aside(self.root, key, problem, "stored piece", self.path(key))

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the key's OS lock (see ``cached_folder.key_lock``): a second process that needs the
        piece waits here and then finds it stored."""
        with folders.key_lock(self.root, key):
            yield

    def clean_staging(self) -> list[Path]:
        """Remove what killed runs left half-written (a SIGKILL between staging and rename): every
        staged folder whose key no live process holds the lock of. Returns what was removed."""
        return folders.clean_staging(self.root)


class DamagedPieceError(RuntimeError):
    """A stored piece changed after it was stored (found when it is loaded)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"stored piece {path} is damaged: {problem}")


def _legacy_state_problem(state: Path, info: dict[str, Any]) -> str | None:
    """A piece stored without checksums: its state file (every piece but a backbone has one) must at
    least be whole, its safetensors header readable and its length what the header promises."""
    if not state.exists():
        return None if info.get("kind") == "backbone" else f"{STATE_FILE} is missing"
    try:
        with open(state, "rb") as handle:
            header_length = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(header_length))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{STATE_FILE} is unreadable ({error})"
    if state.stat().st_size != 8 + header_length + end:
        return f"{STATE_FILE} is truncated"
    return None
