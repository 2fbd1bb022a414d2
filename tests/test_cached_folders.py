"""Every cache is verified like a piece (issue 19): the quickstart backbone, the synthetic suite and
any ``cached_folder`` (prepared data) are checked against their sha256 manifest before use; a
changed byte or a truncated file is found, the folder moved aside under ``.damaged/`` with a
warning naming where, and built again (no "Directory not empty"); a ``.staging`` folder that is a
symbolic link is refused, its target left as it was."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import shutil
import struct
import time
from pathlib import Path

import pytest
from conftest import keep_methods, seeded_workdir, write_tiny_grid
from typer.testing import CliRunner

from xltransfer import cached_folder as folders
from xltransfer.artifacts import ArtifactStore
from xltransfer.cached_folder import DAMAGED_DIR, MANIFEST_FILE, STAGING_DIR, cached_folder
from xltransfer.cli import app
from xltransfer.errors import StoreError


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _change_a_byte(file: Path) -> None:
    """One byte other, same size, and the modification time put back (a careful vandal)."""
    stat = file.stat()
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _truncate(file: Path, size: int | None = None) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2 if size is None else size])


# -- the generic folder (what prepared data uses) -------------------------------------------------
class Builder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, folder: Path) -> None:
        self.calls += 1
        (folder / "sub").mkdir()
        (folder / "data.bin").write_bytes(bytes(range(256)) * 64)
        (folder / "sub" / "index.txt").write_text("0\n1\n2\n")


def test_a_cached_folder_is_built_once_then_reused(tmp_path):
    build = Builder()
    first = cached_folder(tmp_path, "k1", build, what="prepared data")
    assert first == tmp_path / "k1" and build.calls == 1
    assert set((tmp_path / "k1").iterdir()) == {first / "sub", first / "data.bin", first / MANIFEST_FILE}
    folders._verified.clear()  # as a new process would find it
    assert cached_folder(tmp_path, "k1", build, what="prepared data") == first
    assert build.calls == 1
    assert not list((tmp_path / STAGING_DIR).iterdir())


@pytest.mark.parametrize("new_process", [False, True])
@pytest.mark.parametrize(
    "damage",
    ["changed byte", "truncated", "deleted", "manifest deleted"],
)
def test_a_damaged_cached_folder_is_moved_aside_and_rebuilt(damage, new_process, tmp_path, caplog):
    build = Builder()
    folder = cached_folder(tmp_path, "k1", build, what="prepared data")
    original = _sha(folder / "data.bin")
    {
        "changed byte": lambda: _change_a_byte(folder / "data.bin"),
        "truncated": lambda: _truncate(folder / "data.bin"),
        "deleted": lambda: (folder / "sub" / "index.txt").unlink(),
        "manifest deleted": lambda: (folder / MANIFEST_FILE).unlink(),
    }[damage]()
    if new_process:
        folders._verified.clear()
    caplog.set_level(logging.WARNING)
    assert cached_folder(tmp_path, "k1", build, what="prepared data") == folder
    assert build.calls == 2
    assert _sha(folder / "data.bin") == original and (folder / "sub" / "index.txt").is_file()
    (aside,) = (tmp_path / DAMAGED_DIR).iterdir()
    assert aside.name.startswith("k1.")
    assert "prepared data k1 cannot be used" in caplog.text and str(aside) in caplog.text
    assert "Directory not empty" not in caplog.text
    assert not list((tmp_path / STAGING_DIR).iterdir())
    # and the rebuilt one is used as it is
    assert cached_folder(tmp_path, "k1", build, what="prepared data") == folder and build.calls == 2


def test_a_failed_build_leaves_nothing_under_the_key(tmp_path):
    def broken(folder: Path) -> None:
        (folder / "half.bin").write_bytes(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        cached_folder(tmp_path, "k1", broken, what="prepared data")
    assert not (tmp_path / "k1").exists() and not list((tmp_path / STAGING_DIR).iterdir())


def _build_slowly(args) -> str:
    root, log = args
    from xltransfer.cached_folder import cached_folder as build_cached

    def build(folder: Path) -> None:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (folder / "data.bin").write_bytes(b"x" * 1000)

    return str(build_cached(Path(root), "k1", build, what="prepared data"))


def test_concurrent_builders_build_once_and_both_use_it(tmp_path):
    log = tmp_path / "builds.log"
    with multiprocessing.get_context("fork").Pool(2) as pool:
        paths = pool.map(_build_slowly, [(str(tmp_path / "root"), str(log))] * 2)
    assert paths == [str(tmp_path / "root" / "k1")] * 2
    assert len(log.read_text().splitlines()) == 1
    assert (tmp_path / "root" / "k1" / "data.bin").read_bytes() == b"x" * 1000


def _symlinked_staging(root: Path, target: Path, key: str) -> Path:
    """``root/.staging`` -> ``target``, which holds a folder named like a staged leftover of ``key``."""
    victim = target / f"{key}.0123abcd" / "keep"
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("do not delete")
    root.mkdir(parents=True, exist_ok=True)
    if (root / STAGING_DIR).is_dir():
        (root / STAGING_DIR).rmdir()  # empty: what an earlier build left
    (root / STAGING_DIR).symlink_to(target, target_is_directory=True)
    return victim


def _untouched(target: Path, key: str) -> bool:
    return [p.relative_to(target).as_posix() for p in sorted(target.rglob("*"))] == [
        f"{key}.0123abcd",
        f"{key}.0123abcd/keep",
        f"{key}.0123abcd/keep/precious.txt",
    ]


def test_a_symlinked_staging_folder_is_refused_never_followed(tmp_path):
    target = tmp_path / "elsewhere"
    _symlinked_staging(tmp_path / "root", target, "k1")
    with pytest.raises(StoreError, match=r"\.staging: is a symbolic link"):
        cached_folder(tmp_path / "root", "k1", Builder(), what="prepared data")
    assert _untouched(target, "k1") and not (tmp_path / "root" / "k1").exists()
    with pytest.raises(StoreError, match="symbolic link"):
        ArtifactStore(tmp_path / "root").clean_staging()
    assert _untouched(target, "k1")


# -- the artifact store's staging (pieces), through `xlt run` ---------------------------------------
def test_a_run_refuses_a_symlinked_staging_folder_with_exit_2(tmp_path, tiny_prebuilt):
    workdir = seeded_workdir(tiny_prebuilt, tmp_path / "w")
    target = tmp_path / "elsewhere"
    key = "a" * 40
    _symlinked_staging(workdir / "artifacts", target, key)
    grid = keep_methods(write_tiny_grid(tmp_path / "g", targets="[qab]"), "majority")
    result = CliRunner().invoke(app, ["run", str(grid), "--workdir", str(workdir), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "is a symbolic link" in result.output and ".staging" in result.output
    assert _untouched(target, key)


# -- the quickstart backbone ------------------------------------------------------------------------
def _flip_signs(safetensors: Path, count: int = 1024) -> None:
    """Negate ``count`` float32 weights of the largest tensor (the issue's damage), keeping size and
    modification time."""
    import json

    stat = safetensors.stat()
    data = bytearray(safetensors.read_bytes())
    header_length = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_length])
    name, tensor = max(
        ((k, v) for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32"),
        key=lambda item: item[1]["data_offsets"][1] - item[1]["data_offsets"][0],
    )
    start = 8 + header_length + tensor["data_offsets"][0]
    for i in range(count):
        data[start + 4 * i + 3] ^= 0x80  # the sign bit of a little-endian float32
    safetensors.write_bytes(bytes(data))
    os.utime(safetensors, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _backbone_dir(grid: Path, workdir: Path) -> Path:
    from xltransfer.context import RunContext
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.workspace import Workspace

    workspace = Workspace.at(workdir)
    return RunContext(build_plan(load_grid(grid, workspace.root)), workspace, SilentProgress()).backbone_dir


@pytest.mark.parametrize("damage", ["1024 sign-flipped floats", "cut to 5,000 bytes"])
def test_a_damaged_quickstart_backbone_is_moved_aside_and_rebuilt(damage, tmp_path, tiny_prebuilt, caplog):
    workdir = seeded_workdir(tiny_prebuilt, tmp_path / "w")  # its synthetic suite
    grid = write_tiny_grid(tmp_path / "g", backbone_steps=4)  # a backbone of its own, built in seconds
    backbone = _backbone_dir(grid, workdir)
    assert backbone.parent == workdir / "artifacts" and backbone.name.startswith("backbone-")
    weights = backbone / "model.safetensors"
    original = _sha(weights)
    folders._verified.clear()
    if damage.startswith("1024"):
        _flip_signs(weights)
    else:
        _truncate(weights, 5000)
    assert _sha(weights) != original
    caplog.set_level(logging.WARNING)
    assert _backbone_dir(grid, workdir) == backbone
    assert _sha(weights) == original  # rebuilt: the same bytes (the build is reproducible)
    (aside,) = (workdir / "artifacts" / DAMAGED_DIR).iterdir()
    assert aside.name.startswith(backbone.name)
    assert "quickstart backbone" in caplog.text and str(aside) in caplog.text
    assert "model.safetensors" in caplog.text


# -- the synthetic suite ----------------------------------------------------------------------------
def _upos_to_x(conllu: Path, count: int = 60) -> None:
    lines = conllu.read_text(encoding="utf-8").splitlines(keepends=True)
    changed = 0
    for i, line in enumerate(lines):
        columns = line.split("\t")
        if changed < count and len(columns) == 10 and columns[3] != "X":
            columns[3] = "X"
            lines[i] = "\t".join(columns)
            changed += 1
    assert changed == count
    conllu.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize("damage", ["60 UPOS tags set to X", "truncated"])
def test_a_damaged_synthetic_suite_is_moved_aside_and_generated_again(
    damage, tmp_path, tiny_prebuilt, caplog
):
    from xltransfer.data.sources import SyntheticSource
    from xltransfer.grid import load_grid

    workdir = seeded_workdir(tiny_prebuilt, tmp_path / "w")
    source = SyntheticSource(load_grid(write_tiny_grid(tmp_path / "g"), workdir).synthetic, workdir / "cache")
    test_file = source.locate("conllu", "qab", "test")
    assert test_file is not None
    original = _sha(test_file)
    (_upos_to_x if damage.startswith("60") else _truncate)(test_file)
    caplog.set_level(logging.WARNING)
    assert source.locate("conllu", "qab", "test") == test_file
    assert _sha(test_file) == original
    (aside,) = (source.suite_dir.parent / DAMAGED_DIR).iterdir()
    assert aside.name.startswith(source.suite_dir.name) and str(aside) in caplog.text
    assert "synthetic suite" in caplog.text and "qab_synth-ud-test.conllu" in caplog.text
    shutil.rmtree(aside)
