"""The software behind a result, recorded with it: the project's git commit, the libraries that
move numbers, and the packages that registered the cell's method and task (a plugin's version is
part of what produced a score). A report's "Reproduce" block is written from these facts."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "adapters", "sacrebleu", "seqeval")
HARNESS = "xltransfer"


@functools.cache
def code_commit() -> dict[str, Any] | None:
    """The git commit of the checkout xltransfer runs from (an editable install), and whether it
    had uncommitted changes; None when it is not a git checkout."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


@functools.cache
def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def plugin_packages(method: str, task: str) -> dict[str, str]:
    """Packages other than xltransfer that register the method or the task: {package: version}."""
    from xltransfer import registry

    found = {}
    for reg, name in ((registry.methods, method), (registry.tasks, task)):
        dist = reg.distribution(name)
        if dist is not None and dist[0] != HARNESS:
            found[dist[0]] = dist[1]
    return found


def software_record(method: str, task: str) -> dict[str, Any]:
    """What a result record keeps under ``extra["software"]``."""
    record: dict[str, Any] = {"libraries": library_versions()}
    commit = code_commit()
    if commit is not None:
        record["code"] = commit
    plugins = plugin_packages(method, task)
    if plugins:
        record["plugins"] = plugins
    return record
