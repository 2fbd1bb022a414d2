"""Few-shot: k target examples sampled with the cell's seed, continuing the zero-shot model."""

from __future__ import annotations

import pytest
from conftest import seeded_workdir, write_tiny_grid

from xltransfer.data.fewshot import sample_indices
from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.plan import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.workspace import Workspace


def test_sampling_is_seeded_and_capped_by_the_pool():
    assert sample_indices(100, 5, seed=1) == sample_indices(100, 5, seed=1)
    assert sample_indices(100, 5, seed=1) != sample_indices(100, 5, seed=2)
    assert len(set(sample_indices(100, 50, seed=1))) == 50
    assert sample_indices(31, 50, seed=1) == list(range(31))  # Kazakh-KTB: fewer than k sentences
    with pytest.raises(ValueError):
        sample_indices(10, 0, seed=1)


@pytest.fixture(scope="module")
def few_shot_run(tmp_path_factory, tiny_prebuilt):
    root = tmp_path_factory.mktemp("few")
    grid_file = write_tiny_grid(
        root / "g", targets="[qab]", extra="settings: [zero-shot, few-shot]\nshots: [3, 5]\n"
    )
    grid_file.write_text(grid_file.read_text().replace("  - majority\n", ""))
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, root / "w"))
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    return plan, workspace, summary


def test_few_shot_cells_record_their_sample(few_shot_run):
    plan, workspace, summary = few_shot_run
    assert not summary.failures, summary.failures
    records = workspace.results.records(setting="few-shot")
    assert {(r["method"], r["shots"]) for r in records} == {
        (m, k) for m in ("full-ft", "mad-x") for k in (3, 5)
    }
    for record in records:
        sample = record["extra"]["few_shot_sample"]
        assert sample["shots"] == record["shots"] == len(sample["ids"])
        assert all(i.startswith("qab-train-") for i in sample["ids"])  # sentence ids of the target's train
    by_method = {}
    for record in records:
        by_method.setdefault(record["shots"], set()).add(tuple(record["extra"]["few_shot_sample"]["ids"]))
    assert all(len(samples) == 1 for samples in by_method.values()), "methods must see the same k examples"


def test_few_shot_continues_the_zero_shot_pieces(few_shot_run):
    plan, _, summary = few_shot_run
    few = [p for p in plan.pieces.values() if p.piece.kind.startswith("few-shot")]
    assert len(few) == 4  # two methods x two values of k
    for planned in few:
        kinds = {plan.pieces[k].piece.kind for k in planned.needs}
        assert kinds & {"task-adapter", "finetuned-model"}
    # each zero-shot piece is trained once though three cells (zero-shot, k=3, k=5) need it
    assert summary.counters["pieces_trained"] == len(plan.pieces)
