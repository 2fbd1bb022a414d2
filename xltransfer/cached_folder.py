"""Folders built once and verified before each use: the quickstart backbone, the synthetic suite,
prepared data, and (through the same pieces) every trained piece of the artifact store.

A folder ``root/key`` is built by ``build(staging)`` into ``root/.staging/KEY.RANDOM`` and renamed
into place in one step, under the key's OS lock (``root/.locks/KEY.lock``): readers see the whole
folder or none, and a second process that needs it waits and then uses it. Its manifest (the sha256
and size of every file it holds) is written last; before the folder is used the files are checked
against it, and a folder whose bytes changed, that lost or truncated a file, or that has no manifest
is moved aside under ``root/.damaged/`` with a logged warning and built again.

The housekeeping folders (``.staging``, ``.locks``, ``.damaged``) are refused when they are symbolic
links: staged leftovers are deleted and damaged folders moved there, and following a link would do
that to whatever folder it points at.

Cost of the check (``verified``): the first use of a folder in a process hashes every recorded file
(sha256); later uses in that process compare each file's size, inode and modification and change
times (``stat``) with what was hashed, and hash again only when one of them changed. A file that was
rewritten since, even with its old modification time put back, has a new change time, so the check
stays honest at the price of one ``stat`` per file and use; a new process hashes once again.
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

from xltransfer.errors import StoreError
from xltransfer.util import sha256_now

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
STAGING_DIR = ".staging"
LOCKS_DIR = ".locks"
DAMAGED_DIR = ".damaged"

# lock files this process holds (with a count): the lock is re-entrant within a process, since
# flock() on a second descriptor of the same file would wait for the process itself
_held: dict[str, int] = {}
# folder -> the stat signature of its recorded files when their checksums last matched
_verified: dict[str, tuple] = {}


def cached_folder(root: Path, key: str, build: Callable[[Path], None], *, what: str) -> Path:
    """``root/key``, verified against its manifest, or built by ``build(folder)`` when missing or
    damaged (a damaged one is moved aside, with a warning naming where). ``what`` names the folder
    in messages ("quickstart backbone")."""
    root = Path(root)
    final = root / key
    if _check(final) is None:
        return final
    with key_lock(root, key):
        problem = _check(final)  # built (or found damaged) by another process meanwhile
        if problem is None:
            return final
        if final.exists() or final.is_symlink():
            set_aside(root, key, problem, what)
        else:
            log.info("building the %s %s", what, final)

        def fill(staging: Path) -> None:
            build(staging)
            files = manifest(staging)
            (staging / MANIFEST_FILE).write_text(
                json.dumps({"what": what, "files": files}, indent=2, sort_keys=True)
            )

        publish(root, key, fill)
        _remember(final, json.loads((final / MANIFEST_FILE).read_text())["files"])
    return final


def _check(folder: Path) -> str | None:
    """Why the folder cannot be used ("not built", no manifest, a file missing, resized or
    altered), or None."""
    if not folder.exists():
        return "not built"
    try:
        recorded = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return f"{MANIFEST_FILE} is missing"
    except (OSError, ValueError) as error:
        return f"{MANIFEST_FILE} is unreadable ({error})"
    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return f"{MANIFEST_FILE} is not a manifest"
    return verified(folder, recorded["files"])


# -- the parts pieces share -----------------------------------------------------------------------
def manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``folder`` (relative path -> sha256 and size); the manifest is not in it."""
    return {
        file.relative_to(folder).as_posix(): {"sha256": sha256_now(file), "size": file.stat().st_size}
        for file in sorted(folder.rglob("*"))
        if file.is_file() and file.relative_to(folder).as_posix() != MANIFEST_FILE
    }


def files_problem(folder: Path, recorded: dict[str, dict[str, Any]]) -> str | None:
    """A recorded file missing or of another size than recorded (a cheap check), or None."""
    for name, expected in recorded.items():
        file = folder / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != expected["size"]:
            return f"{name} has {file.stat().st_size} bytes, {expected['size']} were recorded"
    return None


def verified(folder: Path, recorded: dict[str, dict[str, Any]]) -> str | None:
    """``files_problem``, then every recorded file's sha256: hashed on the folder's first check in
    this process, and again only when a file's stat changed since it last matched (see above)."""
    problem = files_problem(folder, recorded)
    if problem is not None:
        return problem
    if _verified.get(str(folder)) == tuple(_stat_signature(folder / name) for name in sorted(recorded)):
        return None
    for name, expected in recorded.items():
        if sha256_now(folder / name) != expected["sha256"]:
            _verified.pop(str(folder), None)
            return f"{name} does not match its sha256 (changed since it was recorded)"
    _remember(folder, recorded)
    return None


def _remember(folder: Path, recorded: dict[str, dict[str, Any]]) -> None:
    """A folder this process just hashed and renamed into place (under its lock) counts as checked."""
    _verified[str(folder)] = tuple(_stat_signature(folder / name) for name in sorted(recorded))


def _stat_signature(file: Path) -> tuple:
    stat = file.stat()
    return (stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)


def own_folder(root: Path, name: str) -> Path:
    """``root/name`` (``.staging``, ``.locks``, ``.damaged``), created if missing; a symbolic link
    there is refused (exit 2), never followed: what is deleted or moved there would be the files of
    the folder it points at."""
    folder = Path(root) / name
    if folder.is_symlink():
        raise StoreError(
            folder,
            f"is a symbolic link (to {os.readlink(folder)}): refusing to write or delete through it; "
            "remove the link (a real folder is made in its place)",
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def publish(root: Path, key: str, fill: Callable[[Path], None], final: Path | None = None) -> Path:
    """Run ``fill(staging)`` in a fresh staging folder and rename it to ``final`` (``root/key``
    unless given; the caller holds the key's lock and has moved any damaged folder aside). Leftovers
    of a killed writer of the key are removed first; the staging folder is removed whatever happens."""
    final = Path(root) / key if final is None else final
    staging_root = own_folder(root, STAGING_DIR)
    for leftover in staging_root.glob(f"{key}.*"):  # under the key's lock: no live writer
        _remove(leftover)
    staging = staging_root / f"{key}.{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        fill(staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)
    finally:
        if staging.exists():
            _remove(staging)
    return final


def _remove(path: Path) -> None:
    """Delete a staged folder (a link is unlinked, never followed)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def set_aside(root: Path, key: str, problem: str, what: str, final: Path | None = None) -> Path | None:
    """Move a damaged ``final`` (``root/key`` unless given) out of the way, into ``root/.damaged``
    (kept for inspection, never used again), with a warning naming where; None when nothing was there."""
    final = Path(root) / key if final is None else final
    if not (final.exists() or final.is_symlink()):
        return None
    aside = own_folder(root, DAMAGED_DIR) / f"{key}.{time.strftime('%Y%m%d-%H%M%S')}.{uuid.uuid4().hex[:6]}"
    os.rename(final, aside)
    _verified.pop(str(final), None)
    log.warning("%s %s cannot be used (%s): moved to %s; building it again", what, key, problem, aside)
    return aside


def _lock_path(root: Path, key: str) -> Path:
    return Path(root) / LOCKS_DIR / f"{key}.lock"


def held(root: Path, key: str) -> bool:
    """Whether this process holds the key's lock."""
    return str(_lock_path(root, key)) in _held


@contextmanager
def key_lock(root: Path, key: str) -> Iterator[None]:
    """Hold the key's OS lock (``fcntl.flock``, released by the kernel when the process dies): a
    second process that needs the folder waits here and then finds it built. The lock file holds the
    holder's pid, for a user who wonders what a run is waiting for."""
    path = str(_lock_path(root, key))
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    own_folder(root, LOCKS_DIR)
    with open(path, "a+") as handle:
        if not try_flock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            log.info("waiting for %s: process %s is writing it", key, holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held[path] = 1
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            del _held[path]
            handle.truncate(0)
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def try_flock(handle) -> bool:
    """Take the exclusive lock without waiting; False when another process holds it. (Closing the
    handle releases it.)"""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def clean_staging(root: Path) -> list[Path]:
    """Remove what killed writers left half-written under ``root/.staging`` (a SIGKILL between
    staging and rename): every staged folder whose key no live process holds the lock of."""
    removed = []
    staging = Path(root) / STAGING_DIR
    if not (staging.exists() or staging.is_symlink()):
        return removed
    staging = own_folder(root, STAGING_DIR)  # refuses a link before anything under it is deleted
    for staged in sorted(staging.iterdir()):
        key = staged.name.split(".", 1)[0]
        if held(root, key):
            continue
        own_folder(root, LOCKS_DIR)
        with open(_lock_path(root, key), "a+") as handle:
            if not try_flock(handle):
                continue  # a live process is writing it
            _remove(staged)
            removed.append(staged)
    return removed
