"""MAD-X, BAD-X and the multilingual adapter on the tiny grid: the BA batch schedule, which
adapters are active when each target is tested, sharing of pieces, and the sanity signals."""

from __future__ import annotations

from collections import defaultdict

import pytest
from conftest import seeded_workdir, write_tiny_grid
from xltransfer.methods.bad_x import ratio_pattern
from xltransfer.methods.stacked import StackedAdapterMethod

from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.method import Method
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.tagging import WordTaggingTask
from xltransfer.workspace import Workspace

ADAPTER_METHODS = """
methods:
  - name: mad-x
    params: {la_steps: 12, la_batch_size: 16, la_learning_rate: 1.0e-3, la_eval_every: 6,
             ta_steps: 30, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 30}
  - name: bad-x
    variants: ["5:1"]
    params: {ba_steps: 12, la_batch_size: 16, la_learning_rate: 1.0e-3, la_eval_every: 6,
             ta_steps: 30, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 30}
  - name: multilingual-adapter
    params: {ma_steps: 12, la_batch_size: 16, la_learning_rate: 1.0e-3, la_eval_every: 6,
             ta_steps: 30, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 30}
"""


@pytest.fixture(scope="module")
def adapter_run(tmp_path_factory, tiny_prebuilt):
    """The three adapter methods, POS, qaa -> qab and qac, recording the active adapters whenever
    a batch is trained on or predicted."""
    root = tmp_path_factory.mktemp("adapters")
    grid_file = write_tiny_grid(root / "g")
    text = grid_file.read_text()
    text = text[: text.index("methods:")] + ADAPTER_METHODS + text[text.index("tasks:") :]
    grid_file.write_text(text)
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, root / "w"))

    current: list[tuple] = []
    active: dict[tuple, set[str]] = defaultdict(set)
    originals = (Method.predict, StackedAdapterMethod.train, WordTaggingTask.predict, WordTaggingTask.loss)

    def method_predict(self, cell, examples, ctx):
        current.append(("test", self.name, cell.target_language))
        return originals[0](self, cell, examples, ctx)

    def method_train(self, piece, ctx):
        current.append(("train", self.name, piece.kind, piece.languages))
        return originals[1](self, piece, ctx)

    def task_predict(self, model, batch):
        active[current[-1]].add(str(model.active_adapters))
        return originals[2](self, model, batch)

    def task_loss(self, model, batch):
        active[current[-1]].add(str(model.active_adapters))
        return originals[3](self, model, batch)

    with pytest.MonkeyPatch.context() as patch:  # undone by deleting what a subclass only inherits
        patch.setattr(Method, "predict", method_predict)
        patch.setattr(StackedAdapterMethod, "train", method_train)
        patch.setattr(WordTaggingTask, "predict", task_predict)
        patch.setattr(WordTaggingTask, "loss", task_loss)
        plan = build_plan(load_grid(grid_file, workspace.root))
        summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    return workspace, plan, active


def _info(workspace, plan, kind: str) -> list[dict]:
    return [workspace.artifacts.info(k) for k, p in plan.pieces.items() if p.piece.kind == kind]


def test_ratio_patterns():
    assert ratio_pattern("1:1") == [0, 1]
    assert ratio_pattern("1:5") == [0, 1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="SOURCE:TARGET"):
        ratio_pattern("5-1")


def test_bad_x_5_to_1_schedule_and_budget(adapter_run):
    workspace, plan, _ = adapter_run
    infos = _info(workspace, plan, "bilingual-adapter")
    assert sorted(tuple(i["languages"]) for i in infos) == [("qaa", "qab"), ("qaa", "qac")]
    for info in infos:
        source, target = info["languages"]
        assert info["first_batches"][:12] == [source] * 5 + [target] + [source] * 5 + [target]
        assert info["steps"] == 12 and info["batches_per_language"] == {source: 10, target: 2}


def test_mad_x_swaps_the_language_adapter_and_bad_x_keeps_its_pair(adapter_run):
    _, _, active = adapter_run
    for target in ("qab", "qac"):
        assert active[("test", "mad-x", target)] == {f"Stack[lang_{target}, task_pos]"}
        # the target test and the source sanity test both run on the pair's BA
        assert active[("test", "bad-x", target)] == {f"Stack[pair_qaa_{target}, task_pos]"}
        trained = active[("train", "bad-x", "task-adapter", ("qaa",))]
        assert f"Stack[pair_qaa_{target}, task_pos]" in trained
    assert active[("train", "mad-x", "task-adapter", ("qaa",))] == {"Stack[lang_qaa, task_pos]"}
    assert active[("test", "mad-x", "qaa")] == {"Stack[lang_qaa, task_pos]"}  # the source sanity test


def test_pieces_are_shared_as_the_papers_share_them(adapter_run):
    workspace, plan, _ = adapter_run
    kinds = defaultdict(list)
    for planned in plan.pieces.values():
        kinds[(planned.piece.method, planned.piece.kind)].append(planned.piece.languages)
    assert sorted(kinds[("mad-x", "language-adapter")]) == [("qaa",), ("qab",), ("qac",)]
    assert len(kinds[("mad-x", "task-adapter")]) == 1  # the source TA serves both targets
    assert len(kinds[("bad-x", "task-adapter")]) == 2  # a TA per BA
    assert kinds[("multilingual-adapter", "multilingual-adapter")] == [("qaa", "qab", "qac")]
    (ma,) = _info(workspace, plan, "multilingual-adapter")
    assert ma["first_batches"][:6] == ["qaa", "qab", "qac"] * 2


def test_every_cell_records_its_sanity_signals(adapter_run):
    workspace, _, _ = adapter_run
    records = [r for r in workspace.results.records(status="ok") if r["metric"] == "accuracy"]
    assert len(records) == 6
    for record in records:
        extra = record["extra"]
        assert extra["source_test"]["language"] == "qaa" and 0 < extra["source_test"]["accuracy"] <= 100
        assert extra["adapter_perplexity"] and all(v > 1 for v in extra["adapter_perplexity"].values())
