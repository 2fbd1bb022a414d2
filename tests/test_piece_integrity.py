"""Stored pieces are verified before use: a piece whose bytes changed, or that was truncated or
deleted, is moved aside (its new place named in a log line) and trained again; a half-written
staging folder left by a killed run is removed; a piece that failed to save is not retrained for
every cell that needs it."""

from __future__ import annotations

import errno
import fcntl
import logging
import shutil
from pathlib import Path

import pytest
from conftest import keep_methods, seeded_workdir, write_tiny_grid
from xltransfer.methods.full_ft import FullFineTuning

from xltransfer.artifacts import DAMAGED_DIR, LOCKS_DIR, STAGING_DIR, STATE_FILE, ArtifactStore
from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.workspace import Workspace


def _grid(folder: Path, targets: str, *methods: str) -> Path:
    return keep_methods(write_tiny_grid(folder, targets=targets), *methods)


def _run(grid: Path, workdir: Path):
    workspace = Workspace.at(workdir)
    return workspace, run_local(build_plan(load_grid(grid, workspace.root)), workspace, SilentProgress())


@pytest.fixture
def count_trainings(monkeypatch) -> list[str]:
    trained: list[str] = []
    original = FullFineTuning.train

    def spy(self, piece, ctx):
        trained.append(piece.label)
        return original(self, piece, ctx)

    monkeypatch.setattr(FullFineTuning, "train", spy)
    return trained


@pytest.fixture(scope="module")
def finetuned_workdir(tmp_path_factory, tiny_prebuilt) -> tuple[Path, str]:
    """A workdir holding the tiny grid's full-ft piece (trained once for this module), and its key."""
    root = tmp_path_factory.mktemp("integrity")
    workdir = seeded_workdir(tiny_prebuilt, root / "w")
    grid = _grid(root / "g", "[qab]", "full-ft")
    _, summary = _run(grid, workdir)
    assert summary.counters["pieces_trained"] == 1 and not summary.failures
    (key,) = build_plan(load_grid(grid, workdir)).pieces
    return workdir, key


def _randomise(state: Path) -> None:
    data = bytearray(state.read_bytes())
    middle = len(data) // 2  # inside the tensors, past the safetensors header: same size, other weights
    data[middle : middle + 256] = bytes(255 - b for b in data[middle : middle + 256])
    state.write_bytes(bytes(data))


def _truncate(state: Path) -> None:
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])


DAMAGES = {"randomised": _randomise, "truncated": _truncate, "deleted": Path.unlink}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_piece_is_moved_aside_and_trained_again(
    damage, tmp_path, finetuned_workdir, count_trainings, caplog
):
    workdir = tmp_path / "w"
    shutil.copytree(finetuned_workdir[0], workdir)
    key = finetuned_workdir[1]
    store = ArtifactStore(workdir / "artifacts")
    DAMAGES[damage](store.path(key) / STATE_FILE)
    assert store.problem(key) is not None

    caplog.set_level(logging.WARNING, logger="xltransfer.artifacts")
    # a new target needs the same finetuned model
    workspace, summary = _run(_grid(tmp_path / "g", "[qab, qac]", "full-ft"), workdir)
    assert not summary.failures, summary.failures
    assert count_trainings == ["full-ft:finetuned-model[qaa]"]
    assert store.problem(key) is None
    (aside,) = (workdir / "artifacts" / DAMAGED_DIR).iterdir()
    assert aside.name.startswith(key) and str(aside) in caplog.text
    assert {r["target_language"] for r in workspace.results.records(status="ok")} == {"qab", "qac"}


def test_a_staged_leftover_is_removed_unless_its_writer_lives(tmp_path, tiny_prebuilt):
    workdir = seeded_workdir(tiny_prebuilt, tmp_path / "w")
    staging = workdir / "artifacts" / STAGING_DIR
    dead, alive = staging / f"{'a' * 40}.0123abcd", staging / f"{'b' * 40}.4567ef01"
    for folder in (dead, alive):
        folder.mkdir(parents=True)
        (folder / STATE_FILE).write_bytes(b"half")
    locks = workdir / "artifacts" / LOCKS_DIR
    locks.mkdir(exist_ok=True)
    with open(locks / f"{'b' * 40}.lock", "a+") as held:  # a live writer of the second key
        fcntl.flock(held, fcntl.LOCK_EX)
        _run(_grid(tmp_path / "g", "[qab]", "majority"), workdir)
    assert not dead.exists() and alive.exists()


def test_a_piece_that_failed_to_save_is_not_trained_again_for_each_cell(
    tmp_path, tiny_prebuilt, count_trainings, monkeypatch
):
    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ArtifactStore, "save_state", full_disk)
    workdir = seeded_workdir(tiny_prebuilt, tmp_path / "w")
    workspace, summary = _run(_grid(tmp_path / "g", "[qab, qac]", "full-ft"), workdir)
    assert count_trainings == ["full-ft:finetuned-model[qaa]"]
    assert len(summary.failures) == 2
    assert all("No space left on device" in error for error in summary.failures.values())
