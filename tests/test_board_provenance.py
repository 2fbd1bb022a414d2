"""Every committed leaderboard was rendered from a clean commit whose grid is today's grid.

A board's provenance (``xltransfer/report/provenance.py``) names the commit(s) its results were
produced at, flagged "(with uncommitted changes)" when the checkout was dirty. A board rendered from
uncommitted code, or from a commit whose grid.yaml differs from the committed one, shows numbers
nobody can reproduce from the repository: re-run it from a clean commit and re-render it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "leaderboards"
RENDERED = ("README.md", "index.html")
_COMMITS_LINE = re.compile(r"xltransfer: [^\n]*?; commit (?P<commits>[^\n]*)")
_COMMIT = re.compile(r"(?P<sha>[0-9a-f]{40})(?P<dirty> \(with uncommitted changes\))?")
_GRID_ARGUMENT = re.compile(r"xlt run (?P<grid>\S+) --workdir")


def _rendered_boards() -> list[Path]:
    return sorted(path for name in RENDERED for path in BOARDS.glob(f"*/{name}"))


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=False, timeout=60)


def _in_a_git_checkout() -> bool:
    try:
        return _git("rev-parse", "--is-inside-work-tree").returncode == 0
    except FileNotFoundError:  # no git on the machine
        return False


def board_problems(rendered: Path) -> list[str]:
    """What is wrong with one rendered board's provenance (empty: nothing)."""
    text = rendered.read_text(encoding="utf-8")
    line = _COMMITS_LINE.search(text)
    if line is None:
        return ["its provenance names no xltransfer commit"]
    commits = list(_COMMIT.finditer(line.group("commits")))
    if not commits:
        return [f"its provenance names no commit ({line.group('commits').strip()[:80]})"]
    grid = _grid_file(rendered, text)
    relative = grid.relative_to(ROOT).as_posix()
    today = grid.read_bytes() if grid.is_file() else None
    problems = []
    for commit in commits:
        sha = commit.group("sha")
        if commit.group("dirty"):
            problems.append(f"rendered from {sha} with uncommitted changes")
        if _git("cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
            problems.append(f"names commit {sha}, which this clone's history does not hold")
            continue
        then = _git("show", f"{sha}:{relative}")
        if then.returncode != 0:
            problems.append(f"names commit {sha}, which has no {relative}")
        elif then.stdout != today:
            problems.append(f"names commit {sha}, whose {relative} differs from today's")
    return problems


def _grid_file(rendered: Path, text: str) -> Path:
    """The grid the board reproduces with (its ``xlt run`` line), else the folder's grid.yaml."""
    found = _GRID_ARGUMENT.search(text)
    if found is not None:
        path = ROOT / found.group("grid")
        return path / "grid.yaml" if path.suffix not in (".yaml", ".yml") else path
    return rendered.parent / "grid.yaml"


@pytest.mark.parametrize(
    "rendered", _rendered_boards(), ids=lambda p: f"{p.parent.name}/{p.name}"
)  # fmt: skip
def test_a_committed_board_was_rendered_from_a_clean_commit_of_todays_grid(rendered):
    if not _in_a_git_checkout():
        pytest.skip("not a git checkout: a board's commit cannot be looked up")
    problems = board_problems(rendered)
    board = rendered.parent.relative_to(ROOT).as_posix()
    assert not problems, (
        f"{board} ({rendered.name}): " + "; ".join(problems) + f" - re-run {board} from a clean "
        "commit of today's grid and re-render it (xlt run, then xlt report)"
    )


def test_the_check_flags_uncommitted_changes_and_a_changed_grid(tmp_path):
    """The check itself, on boards written here: clean and current passes; dirty, changed or
    unknown commits are named."""
    if not _in_a_git_checkout():
        pytest.skip("not a git checkout")
    head = _git("rev-parse", "HEAD").stdout.decode().strip()
    board = "quickstart"
    grid = BOARDS / board / "grid.yaml"
    last = _git("log", "-1", "--format=%H", "--", grid.relative_to(ROOT).as_posix()).stdout.decode().strip()
    before = _git("rev-parse", f"{last}~1").stdout.decode().strip()

    def write(commits: str) -> Path:
        path = tmp_path / "README.md"
        path.write_text(
            f"## Provenance\n\n- xltransfer: 0.1.0; commit {commits}\n\n```sh\n"
            f"xlt run leaderboards/{board} --workdir xlt-reproduce\n```\n",
            encoding="utf-8",
        )
        return path

    # board_problems reads the grid the xlt run line names, relative to the repository
    assert board_problems(write(f"`{head}`")) == [] or _dirty_grid(grid)
    dirty = board_problems(write(f"`{head} (with uncommitted changes)`"))
    assert any("uncommitted changes" in p for p in dirty)
    if _git("show", f"{before}:{grid.relative_to(ROOT).as_posix()}").returncode == 0:
        changed = board_problems(write(f"`{before}`"))
        assert changed and "differs from today's" in changed[0]
    unknown = board_problems(write("`" + "0" * 40 + "`"))
    assert unknown and "does not hold" in unknown[0]
    assert board_problems(write("not recorded")) == ["its provenance names no commit (not recorded)"]


def _dirty_grid(grid: Path) -> bool:
    """The grid differs from HEAD in this working tree (then HEAD cannot pass)."""
    return _git("diff", "--quiet", "HEAD", "--", grid.relative_to(ROOT).as_posix()).returncode != 0
