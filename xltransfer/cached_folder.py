"""A folder built once and reused: written into a staging folder and renamed into place, kept with
a sha256 manifest of its files, verified before use (each file hashed once per process for its size
and modification time: ``util.file_sha256``); a damaged folder is moved aside and rebuilt.

(The lead keeps one version of this module at merge: the backbone and the synthetic suite use the
same interface.)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from xltransfer.util import file_sha256

log = logging.getLogger(__name__)

MANIFEST = ".manifest.json"
STAGING = ".staging"
DAMAGED = ".damaged"


def cached_folder(root: Path, key: str, build: Callable[[Path], None], *, what: str) -> Path:
    """``root/key``, built by ``build`` (which writes into an empty staging folder renamed into
    place) or, when it is there, verified against its manifest; ``what`` names it in the log."""
    root = Path(root)
    final = root / key
    problem = _problem(final)
    if problem is None:
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{key}.lock"):
        problem = _problem(final)  # another process may have built it meanwhile
        if problem is None:
            return final
        if final.exists() or final.is_symlink():
            aside = _move_aside(root, key, final)
            log.warning("%s at %s is damaged (%s): moved to %s and rebuilt", what, final, problem, aside)
        staging_root = root / STAGING
        if staging_root.is_symlink():
            raise OSError(f"{staging_root} is a symbolic link: refusing to build {what} through it")
        for stale in staging_root.glob(f"{key}.*") if staging_root.is_dir() else []:
            shutil.rmtree(stale, ignore_errors=True)  # a killed build's; the lock says none runs now
        staging = staging_root / f"{key}.{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            build(staging)
            files = {
                p.relative_to(staging).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
                for p in sorted(staging.rglob("*"))
                if p.is_file() and p.name != MANIFEST
            }
            (staging / MANIFEST).write_text(json.dumps({"what": what, "files": files}, indent=1))
            os.rename(staging, final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return final


def _problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be used as built (None: it can)."""
    manifest = folder / MANIFEST
    if folder.is_symlink() or not folder.is_dir():
        return "missing" if not folder.exists() else "not a folder"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable manifest"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"] or file_sha256(path) != expected["sha256"]:
            return f"{name} does not match its sha256"
    return None


def _move_aside(root: Path, key: str, final: Path) -> Path:
    aside = root / DAMAGED / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}.{uuid.uuid4().hex[:8]}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.rename(final, aside)
    return aside


class _lock:
    """An exclusive lock on a file, between processes building the same folder."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.handle = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
