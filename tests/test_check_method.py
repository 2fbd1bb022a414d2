"""`xlt check-method NAME`: a method end to end on the tiny synthetic grid, a plugin author's first
command; it passes for a working method and names the step that fails for a broken one."""

from __future__ import annotations

import pytest
from conftest import seeded_workdir
from typer.testing import CliRunner
from xltransfer.methods.mad_x import MadX

from xltransfer import registry
from xltransfer.cli import app


def _backbones(workdir):
    return sorted(p.name for p in (workdir / "artifacts").glob("backbone-*"))


def test_check_method_runs_mad_x_end_to_end(tmp_path, tiny_prebuilt):
    work = seeded_workdir(tiny_prebuilt, tmp_path / "check" / "work")
    before = _backbones(work)
    result = CliRunner().invoke(app, ["check-method", "mad-x", "--workdir", str(tmp_path / "check")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for step in (
        f"interface: {len(MadX.defaults)} parameters, each with its source",
        "plan and parameter counts",
        "train, predict, score, store: 3 pieces trained",
        "planned steps: 3 pieces took the steps they planned",
        "records and predictions",
        "resume trains and evaluates nothing",
    ):
        assert any(line.startswith(f"ok   {step}") for line in lines), (step, result.stdout)
    assert lines[-1] == "all checks passed"
    assert _backbones(work) == before  # the tests' tiny backbone served: the same grid


class BrokenTaskAdapter(MadX):
    """MAD-X that cannot train (what a plugin author's first bug looks like)."""

    name = "broken-mad-x"

    def train(self, piece, ctx):
        raise RuntimeError("forgot to add the head")


@pytest.fixture
def broken_method():
    registry.methods.register(BrokenTaskAdapter.name, BrokenTaskAdapter)
    yield BrokenTaskAdapter.name
    registry.methods.unregister(BrokenTaskAdapter.name)


def test_check_method_names_what_fails(tmp_path, tiny_prebuilt, broken_method):
    seeded_workdir(tiny_prebuilt, tmp_path / "check" / "work")
    result = CliRunner().invoke(app, ["check-method", broken_method, "--workdir", str(tmp_path / "check")])
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL train, predict, score, store: RuntimeError: forgot to add the head"], (
        result.stdout
    )


def test_budgets_shrink_by_name():
    from xltransfer.check import shrunk_params

    small = shrunk_params(
        {"la_steps": 25000, "warmup_steps": 4000, "eval_every": 500, "fs_epochs": 50, "epochs": 20.0}
        | {"batch_size": 32, "mt_batch_tokens": 256_000, "learning_rate": 1e-4, "la_invertible": True}
    )
    assert small == {
        "la_steps": 12,
        "warmup_steps": 2,
        "eval_every": 6,
        "fs_epochs": 1,
        "epochs": 1.0,
        "batch_size": 8,
        "mt_batch_tokens": 800,
    }
