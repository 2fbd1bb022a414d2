"""Mixed-language multi-task partitions: each task–language pair trained in exactly one partition,
evaluated by the other; relatives share a partition."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_tiny_grid

from xltransfer.data.partitions import compute_partitions, explicit_partitions, split_by_family
from xltransfer.errors import GridError
from xltransfer.grid import load_grid

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"

FAMILIES = {
    "en": "IE",
    "de": "IE",
    "fo": "IE",
    "tr": "Turkic",
    "ug": "Turkic",
    "kk": "Turkic",
    "mt": "AA",
    "wo": "AC",
}


def test_families_are_never_split():
    first, second = split_by_family(sorted(FAMILIES), FAMILIES.get)
    assert set(first) | set(second) == set(FAMILIES) and not set(first) & set(second)
    for family in set(FAMILIES.values()):
        members = {lang for lang, f in FAMILIES.items() if f == family}
        assert members <= set(first) or members <= set(second)
    assert abs(len(first) - len(second)) <= 1


def test_every_pair_trained_once_and_evaluated_by_the_other_partition():
    tasks = ["pos", "ner", "nli"]
    others = sorted(set(FAMILIES) - {"en"})
    partitions = compute_partitions(tasks, others, FAMILIES.get, shared=("en",))
    trained = {}
    for name, by_task in partitions.train.items():
        for task, languages in by_task.items():
            assert languages[0] == "en"  # the source: every task, both partitions (Table 6: en^{a,b})
            for language in languages[1:]:
                assert (task, language) not in trained
                trained[(task, language)] = name
    assert set(trained) == {(t, lang) for t in tasks for lang in others}
    evaluated = {(task, target): model for model, task, target, _ in partitions.evaluations()}
    assert set(evaluated) == set(trained)  # English is never a zero-shot target
    for pair, model in evaluated.items():
        assert model != trained[pair]
    # each partition's model has seen every task and every language, just not these pairs together
    for by_task in partitions.train.values():
        assert set(by_task) == set(tasks)
        assert {lang for langs in by_task.values() for lang in langs} == set(FAMILIES)


def test_explicit_partitions_reject_a_pair_trained_twice():
    with pytest.raises(ValueError, match="pos/tr"):
        explicit_partitions({"A": {"pos": ["tr"]}, "B": {"pos": ["mt", "tr"]}})
    with pytest.raises(ValueError, match="'en' is shared"):
        explicit_partitions({"A": {"pos": ["en"]}, "B": {"pos": ["tr"]}}, shared=("en",))


def test_grid_expands_mixed_cells_by_synthetic_family(tmp_path):
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab, qad, qae]", extra="settings: [mixed]\n")
    grid = load_grid(grid_file, tmp_path / "w")
    cells = [c for c in grid.cells() if c.method == "full-ft"]
    # tiny suite: family 0 = qaa, qab, qac; family 1 = qad, qae. The source qaa trains in both
    # partitions and is no target; the targets split by family
    assert {(c.partition, c.target_language, c.source_languages) for c in cells} == {
        ("A", "qab", ("qaa", "qad", "qae")),
        ("B", "qad", ("qaa", "qab")),
        ("B", "qae", ("qaa", "qab")),
    }


HYPER_X_TABLE_6 = {  # the pairs each partition trains (Table 6's superscripts name the other one)
    "A": {
        "ner": ["ar", "is", "ta", "hsb", "fo", "mt", "ug"],
        "pos": ["br", "kk", "tr", "yo", "zh", "gn", "sa", "yue"],
    },
    "B": {
        "ner": ["br", "kk", "tr", "yo", "zh", "gn", "sa", "yue"],
        "pos": ["ar", "is", "ta", "hsb", "fo", "mt", "ug"],
    },
}


def test_hyper_x_grid_partitions_are_table_6_with_english_in_both(tmp_path):
    grid = load_grid(LEADERBOARDS / "hyper-x", tmp_path / "w")
    partitions = grid.mixed_partitions()
    assert partitions.shared == ("en",) and partitions.test_as_train
    expected = {
        p: {t: ("en", *langs) for t, langs in by_task.items()} for p, by_task in HYPER_X_TABLE_6.items()
    }
    assert partitions.train == expected
    mixed = [c for c in grid.cells() if c.setting == "mixed"]
    assert mixed and all(c.target_language != "en" and c.source_languages[0] == "en" for c in mixed)
    for cell in mixed:  # zero-shot: the model of the partition that does not train the pair
        assert cell.target_language in HYPER_X_TABLE_6[partitions.other(cell.partition)][cell.task]
        assert cell.target_language not in cell.source_languages


def test_family_partitions_keep_semitic_languages_together():
    """URIEL knows Arabic (lang2vec's ``ara``): it joins Maltese, as Appendix A groups relatives."""
    from xltransfer import languages

    targets = ["ar", "mt", "tr", "ug", "kk", "fo", "is", "zh", "yue"]
    languages.lineages(targets)  # one lang2vec call for all, as Grid.partitions makes it
    partitions = compute_partitions(["ner", "pos"], targets, languages.family, shared=("en",))
    for by_task in partitions.train.values():
        for langs in by_task.values():
            assert ("ar" in langs) == ("mt" in langs) and ("zh" in langs) == ("yue" in langs)


@pytest.mark.parametrize(
    ("partitions", "field", "message"),
    [
        ("{shared: [en], A: {pos: [en, qab]}, B: {pos: [qad]}}", "partitions.A.pos[0]", "'en' is shared"),
        ("{A: {pos: [qab]}, B: {pos: [qaa]}}", "partitions.B.pos[0]", "'qaa' is shared"),  # the source
        ("{A: {pos: [qab]}, B: {pos: [qad, qab]}}", "partitions.B.pos[1]", "trained in both A and B"),
        ("{shared: [qxx1], A: {pos: [qab]}, B: {pos: [qad]}}", "partitions.shared[0]", "not an ISO 639"),
        ("{by: family, A: {pos: [qab]}, B: {pos: [qad]}}", "partitions.by", "not both"),
    ],
)
def test_explicit_partitions_are_validated_with_the_field(tmp_path, partitions, field, message):
    grid_file = write_tiny_grid(
        tmp_path / "g", targets="[qab, qad]", extra=f"settings: [mixed]\npartitions: {partitions}\n"
    )
    with pytest.raises(GridError, match=message) as caught:
        load_grid(grid_file, tmp_path / "w")
    assert caught.value.field == field


def test_shared_languages_train_every_task_in_both_explicit_partitions(tmp_path):
    extra = "settings: [mixed]\npartitions: {shared: [qaa, qac], A: {pos: [qab]}, B: {pos: [qad]}}\n"
    grid = load_grid(write_tiny_grid(tmp_path / "g", targets="[qab, qad]", extra=extra), tmp_path / "w")
    assert grid.mixed_partitions().train == {
        "A": {"pos": ("qaa", "qac", "qab")},
        "B": {"pos": ("qaa", "qac", "qad")},
    }
    cells = [c for c in grid.cells() if c.method == "full-ft"]
    assert {(c.partition, c.target_language) for c in cells} == {("B", "qab"), ("A", "qad")}


def test_partitions_need_the_mixed_setting(tmp_path):
    grid_file = write_tiny_grid(tmp_path / "g", extra="partitions: family\n")
    with pytest.raises(GridError, match="partitions"):
        load_grid(grid_file, tmp_path / "w")


def test_mixed_cells_run_multi_source_and_record_their_partition(tmp_path, tiny_workdir):
    from xltransfer.execute.local import run_local
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.workspace import Workspace

    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab, qad]", extra="settings: [mixed]\n")
    workspace = Workspace.at(tiny_workdir)
    grid = load_grid(grid_file, workspace.root)
    plan = build_plan(grid, [c for c in grid.cells() if c.method != "mad-x"])
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    records = workspace.results.records(method="full-ft")
    assert {(r["partition"], r["target_language"], tuple(r["source_languages"])) for r in records} == {
        ("B", "qab", ("qaa", "qad")),
        ("A", "qad", ("qaa", "qab")),
    }


def test_grid_with_two_tasks_trains_each_pair_in_one_partition(tmp_path):
    grid_file = _two_task_grid(tmp_path / "g", "[qab, qac, qad, qae]")
    grid = load_grid(grid_file, tmp_path / "w")
    partitions = grid.mixed_partitions()
    cells = [c for c in grid.cells() if c.method == "full-ft"]
    targets = {"qab", "qac", "qad", "qae"}
    assert {(c.task, c.target_language) for c in cells} == {
        (t, lang) for t in ("pos", "ner") for lang in targets
    }
    for cell in cells:
        trained_in = partitions.trained_in(cell.task, cell.target_language)
        assert trained_in is not None and cell.partition != trained_in
        assert cell.target_language not in cell.source_languages
        assert set(cell.source_languages) == set(partitions.train[cell.partition][cell.task])
    for name in ("A", "B"):  # the source in both; relatives together: whole families per task
        for languages_trained in partitions.train[name].values():
            assert languages_trained[0] == "qaa"
            families = {grid.family_of(lang) for lang in languages_trained[1:]}
            members = {lang for lang in targets if grid.family_of(lang) in families}
            assert set(languages_trained[1:]) == members
    assert partitions.train["A"]["pos"] == partitions.train["B"]["ner"]  # tasks alternate groups


def _two_task_grid(folder, targets: str, extra: str = ""):
    grid_file = write_tiny_grid(folder, targets=targets, extra="settings: [mixed]\n" + extra)
    text = grid_file.read_text().replace("tasks: [pos]", "tasks: [pos, ner]")
    grid_file.write_text(text.replace("data: {pos: synthetic,", "data: {ner: synthetic, pos: synthetic,"))
    return grid_file


def test_full_ft_mixed_trains_one_multi_task_model_per_partition(tmp_path, tiny_workdir):
    """Hyper-X's mBERT baseline in the mixed setting: per partition ONE encoder with a head per task,
    trained on all the partition's (task, language) pairs, shared by the partition's POS and NER cells."""
    from xltransfer.execute.local import run_local
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.workspace import Workspace

    grid_file = _two_task_grid(tmp_path / "g", "[qab, qad]")
    grid_file.write_text(grid_file.read_text().replace("epochs: 1.0", "epochs: 0.25"))  # a few steps do
    workspace = Workspace.at(tiny_workdir)
    grid = load_grid(grid_file, workspace.root)
    plan = build_plan(grid, [c for c in grid.cells() if c.method == "full-ft"])
    pieces = [p.piece for p in plan.pieces.values()]
    assert [p.kind for p in pieces] == ["multi-task-model", "multi-task-model"]
    partitions = grid.mixed_partitions()
    assert sorted(dict(p.params["pairs"])["pos"] for p in pieces) == sorted(
        partitions.train[name]["pos"] for name in ("A", "B")
    )
    for cell in plan.cells:  # both tasks' cells of a partition use its one model
        (key,) = plan.cell_pieces[cell.cell_id]
        assert dict(plan.pieces[key].piece.params["pairs"]) == partitions.train[cell.partition]
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    assert summary.counters["pieces_trained"] == 2
    for key, planned in plan.pieces.items():
        state = workspace.artifacts.load_state(key)
        heads = {name.split(".")[1] for name in state if name.startswith("heads.")}
        assert heads == {"task_pos", "task_ner"}
        assert any(name.startswith("bert.encoder.") for name in state)  # the whole encoder trains
        pairs = planned.piece.params["pairs"]  # every pair of the partition had batches
        streams = workspace.artifacts.info(key)["batches_per_stream"]
        assert set(streams) == {f"{task}/{lang}" for task, langs in pairs for lang in langs}
    records = workspace.results.records(method="full-ft", status="ok")
    assert {(r["task"], r["partition"]) for r in records} == {
        ("pos", "A"),
        ("pos", "B"),
        ("ner", "A"),
        ("ner", "B"),
    }


def _conllu(prefix: str, sentences: int) -> str:
    return "".join(
        f"# sent_id = {prefix}-{i}\n1\tqa\t_\tNOUN\t_\t_\t0\troot\t_\t_\n\n" for i in range(sentences)
    )


def _mixed_context(tmp_path):
    """A mixed-setting run context over the tiny grid where qab has only a test split (it trains on
    it: ``test_as_train``) and qad a train and a test split but no dev; qaa has all three."""
    from xltransfer.context import RunContext
    from xltransfer.planning import build_plan
    from xltransfer.workspace import Workspace

    folder = tmp_path / "g"
    grid_file = write_tiny_grid(
        folder, targets="[qab, qad]", extra="settings: [mixed]\npartitions: {test_as_train: true}\n"
    )
    (folder / "qab-test.conllu").write_text(_conllu("qab-test", 2), encoding="utf-8")
    (folder / "qad-train.conllu").write_text(_conllu("qad-train", 3), encoding="utf-8")
    (folder / "qad-test.conllu").write_text(_conllu("qad-test", 2), encoding="utf-8")
    source = (
        "pos: {type: per-language, default: synthetic, languages: {"
        "qab: {type: files, files: {qab: {test: qab-test.conllu}}}, "
        "qad: {type: files, files: {qad: {train: qad-train.conllu, test: qad-test.conllu}}}}}"
    )
    grid_file.write_text(grid_file.read_text().replace("data: {pos: synthetic,", f"data: {{{source},"))
    workspace = Workspace.at(tmp_path / "w")
    return RunContext(build_plan(load_grid(grid_file, workspace.root)), workspace)


def test_mixed_checkpoints_are_selected_on_real_dev_splits_only(tmp_path):
    """As ahmetustun/hyperx scores a checkpoint: the dev sets of pairs that have one and train on their
    own train split. A test-only treebank trained on its test split (br_keb) and one without dev
    (kk_ktb) are not scored; before, the first was scored on its test split, the second on its train."""
    from xltransfer.multitask import selection_splits

    ctx = _mixed_context(tmp_path)
    pairs = (("pos", ("qaa", "qab", "qad")),)
    with ctx.reading_for_mixed(True):
        assert ctx.resolve_split("pos", "qab", "train") == "test"  # qab trains on its test split
        assert selection_splits(ctx, pairs) == [("pos", "qaa", "dev")]
        # no pair with a dev split: their own train splits stand in (the single-task trainers' rule),
        # never qab's test split read as train
        assert selection_splits(ctx, (("pos", ("qab", "qad")),)) == [("pos", "qad", "train")]


def test_a_multi_source_task_adapter_selects_as_a_multi_task_model_does(tmp_path):
    """One rule for MAD-X's multi-source task adapter and the multi-task models: each source's dev
    split; a source without one (qad, as kk_ktb or hsb_ufal) is not scored while another source has
    a dev split (before, the TA scored qad's train split, the data it trains on), and qab, trained on
    its test split, never is."""
    from xltransfer import multitask
    from xltransfer.train import selection_splits

    ctx = _mixed_context(tmp_path)
    assert multitask.selection_splits is selection_splits
    with ctx.reading_for_mixed(True):
        assert selection_splits(ctx, (("pos", ("qaa", "qab", "qad")),)) == [("pos", "qaa", "dev")]
        assert selection_splits(ctx, (("pos", ("qab", "qad")),)) == [("pos", "qad", "train")]
    with ctx.reading_for_mixed(False):  # outside the mixed setting qab has no train split to read
        assert selection_splits(ctx, (("pos", ("qab",)),)) == []
