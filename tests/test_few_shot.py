"""Few-shot: k target examples sampled with the cell's seed, continuing the zero-shot model."""

from __future__ import annotations

import pytest
from conftest import seeded_workdir, write_tiny_grid

from xltransfer.data.fewshot import sample_indices
from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
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


# A target whose POS data has only a test split (like br_keb, yo_ytb in the hyper-x grid): two
# well-formed sentences, enough to be read; nothing may train on them but the mixed setting's models.
TEST_ONLY = """# sent_id = qab-test-1
1\tqa\t_\tNOUN\t_\t_\t0\troot\t_\t_
2\tqe\t_\tVERB\t_\t_\t1\tdep\t_\t_

# sent_id = qab-test-2
1\tqi\t_\tNOUN\t_\t_\t0\troot\t_\t_

"""


def _leak_grid(folder, settings: str, few_shot: str = ""):
    """The tiny grid with qab's POS data test-only, mixed partitions that train on test splits."""
    grid_file = write_tiny_grid(
        folder,
        targets="[qab, qad]",
        extra=f"settings: {settings}\nshots: [2]\npartitions: {{test_as_train: true}}\n",
    )
    (folder / "qab-test.conllu").write_text(TEST_ONLY, encoding="utf-8")
    source = (
        "pos: {type: per-language, languages: {qab: {type: files, files: {qab: {test: qab-test.conllu}}}},"
        " default: synthetic}"
    )
    text = grid_file.read_text().replace("data: {pos: synthetic,", f"data: {{{source},")
    text = text.replace("  - majority\n", "")  # it has no few-shot setting
    if few_shot:
        text = text.replace("target: [qab, qad]", f"target: [qab, qad], few_shot: {few_shot}")
    grid_file.write_text(text)
    return grid_file


def test_few_shot_on_a_target_without_train_split_is_refused_before_anything_trains(tmp_path):
    """The leak: with mixed + test_as_train, qab (test-only) drew its k shots from the test split it
    is then scored on. Now the run stops up front, exit 2, naming the target."""
    from typer.testing import CliRunner

    from xltransfer.cli import app

    grid_file = _leak_grid(tmp_path / "g", "[zero-shot, few-shot, mixed]")
    result = CliRunner().invoke(app, ["run", str(grid_file), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    assert "languages.few_shot" in result.output and "few-shot on 'qab' (pos)" in result.output
    assert "no train split" in result.output
    assert not any((tmp_path / "w").rglob("info.json"))  # nothing trained, not even the backbone


def test_preflight_refuses_few_shot_from_a_test_split(tmp_path):
    from xltransfer.context import RunContext
    from xltransfer.errors import GridError

    workspace = Workspace.at(tmp_path / "w")
    grid = load_grid(_leak_grid(tmp_path / "g", "[few-shot, mixed]"), workspace.root)
    with pytest.raises(GridError, match="few-shot on 'qab'"):
        RunContext(build_plan(grid), workspace).preflight()
    # naming the targets that have a train split makes the grid valid: few-shot on qad only
    grid = load_grid(_leak_grid(tmp_path / "g2", "[few-shot, mixed]", few_shot="[qad]"), workspace.root)
    assert {c.target_language for c in grid.cells() if c.setting == "few-shot"} == {"qad"}
    RunContext(build_plan(grid), workspace).preflight()


def test_test_as_train_applies_to_mixed_pieces_only(tmp_path):
    """Zero- and few-shot pieces are keyed (and read) as without test_as_train; mixed pieces read the
    test split of a language without a train split, and are keyed by it."""
    from xltransfer.context import RunContext
    from xltransfer.errors import GridError

    workspace = Workspace.at(tmp_path / "w")
    grid_file = _leak_grid(tmp_path / "g", "[zero-shot, few-shot, mixed]", few_shot="[qad]")
    plain = tmp_path / "plain" / "grid.yaml"
    plain.parent.mkdir()
    plain.write_text(grid_file.read_text().replace("test_as_train: true", "test_as_train: false"))
    (plain.parent / "qab-test.conllu").write_text(TEST_ONLY, encoding="utf-8")
    with_test, without = (build_plan(load_grid(g, workspace.root)) for g in (grid_file, plain))

    def keys(plan, mixed):
        return {k for k, p in plan.pieces.items() if p.piece.mixed == mixed}

    assert keys(with_test, False) == keys(without, False)  # not mixed: the same pieces, the same keys
    assert keys(with_test, True).isdisjoint(keys(without, True))  # mixed: keyed by test data too
    ctx = RunContext(with_test, workspace)
    with ctx.reading_for_mixed(True):
        assert [s.words for s in ctx.examples("pos", "qab", "train")] == [("qa", "qe"), ("qi",)]
    with pytest.raises(GridError, match="no train data for language 'qab'"):
        ctx.examples("pos", "qab", "train")  # outside the mixed setting there is no train split
    plain_ctx = RunContext(without, workspace)  # and without test_as_train, not even there
    with plain_ctx.reading_for_mixed(True), pytest.raises(GridError):
        plain_ctx.examples("pos", "qab", "train")


def test_few_shot_targets_are_validated(tmp_path):
    from xltransfer.errors import GridError

    grid_file = _leak_grid(tmp_path / "g", "[zero-shot, few-shot]", few_shot="[qab, qac]")
    with pytest.raises(GridError, match="'qac' is not a target") as caught:
        load_grid(grid_file, tmp_path / "w")
    assert caught.value.field == "languages.few_shot[1]"
    grid_file = _leak_grid(tmp_path / "g2", "[zero-shot]", few_shot="[qab]")
    grid_file.write_text(grid_file.read_text().replace("partitions: {test_as_train: true}\n", ""))
    with pytest.raises(GridError, match="no 'few-shot'"):
        load_grid(grid_file, tmp_path / "w")
