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

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xltransfer.util import file_sha256

log = logging.getLogger(__name__)

STATE_FILE = "state.safetensors"
INFO_FILE = "info.json"
STAGING_DIR = ".staging"
LOCKS_DIR = ".locks"
DAMAGED_DIR = ".damaged"

# keys whose lock this process holds (with a count): the lock is re-entrant within a process,
# since flock() on a second descriptor of the same file would wait for the process itself
_held: dict[str, int] = {}


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
        for name, expected in self._recorded_files(key).items():
            if file_sha256(self.path(key) / name) != expected["sha256"]:
                return f"{name} differs from the file that was stored (sha256 mismatch)"
        return None

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
        for name, expected in recorded.items():
            file = self.path(key) / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != expected["size"]:
                return f"{name} has {file.stat().st_size} bytes, {expected['size']} were stored"
        return None

    def write(self, key: str, fill: Callable[[Path], None], info: dict[str, Any]) -> Path:
        """Run ``fill(tmpdir)``, add info.json (with every file's checksum), and move the folder into
        place in one rename, holding the key's lock; a key another process stored meanwhile (e.g. the
        quickstart backbone, built by two runs at once) is not filled again."""
        final = self.path(key)
        with self.lock(key):
            if self.has(key):
                return final
            staging = self.root / STAGING_DIR / f"{key}.{uuid.uuid4().hex}"
            staging.mkdir(parents=True)
            try:
                fill(staging)
                files = {
                    file.relative_to(staging).as_posix(): {
                        "sha256": file_sha256(file),
                        "size": file.stat().st_size,
                    }
                    for file in sorted(staging.rglob("*"))
                    if file.is_file()
                }
                (staging / INFO_FILE).write_text(
                    json.dumps({"key": key, **info, "files": files}, indent=2, sort_keys=True, default=str)
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
        if not self.path(key).exists():
            return None
        aside = self.root / DAMAGED_DIR / f"{key}.{time.strftime('%Y%m%d-%H%M%S')}.{uuid.uuid4().hex[:6]}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.path(key), aside)
        log.warning("stored piece %s is damaged (%s): moved to %s; training it again", key, problem, aside)
        return aside

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the key's OS lock (``fcntl.flock``, released by the kernel when the process dies): a
        second process that needs the piece waits here and then finds it stored. The lock file holds
        the holder's pid, for a user who wonders what a run is waiting for."""
        if key in _held:
            _held[key] += 1
            try:
                yield
            finally:
                _held[key] -= 1
            return
        folder = self.root / LOCKS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{key}.lock", "a+") as handle:
            if not _try_flock(handle):
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                log.info("waiting for %s: process %s is writing it", key, holder)
                fcntl.flock(handle, fcntl.LOCK_EX)
            _held[key] = 1
            try:
                handle.truncate(0)
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                yield
            finally:
                del _held[key]
                handle.truncate(0)
                handle.flush()
                fcntl.flock(handle, fcntl.LOCK_UN)

    def clean_staging(self) -> list[Path]:
        """Remove what killed runs left half-written (a SIGKILL between staging and rename): every
        staged folder whose key no live process holds the lock of. Returns what was removed."""
        removed = []
        staging = self.root / STAGING_DIR
        for staged in sorted(staging.iterdir()) if staging.is_dir() else []:
            key = staged.name.split(".", 1)[0]
            if key in _held:
                continue
            (self.root / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
            with open(self.root / LOCKS_DIR / f"{key}.lock", "a+") as handle:
                if not _try_flock(handle):
                    continue  # a live process is writing it
                shutil.rmtree(staged, ignore_errors=True)
                removed.append(staged)
        return removed


class DamagedPieceError(RuntimeError):
    """A stored piece changed after it was stored (found when it is loaded)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"stored piece {path} is damaged: {problem}")


def _try_flock(handle) -> bool:
    """Take the exclusive lock without waiting; False when another process holds it. (Closing the
    handle releases it.)"""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


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
