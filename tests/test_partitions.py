"""Mixed-language multi-task partitions: each task–language pair trained in exactly one partition,
evaluated by the other; relatives share a partition."""

from __future__ import annotations

import pytest
from conftest import write_tiny_grid

from xltransfer.data.partitions import compute_partitions, explicit_partitions, split_by_family
from xltransfer.errors import GridError
from xltransfer.grid import load_grid

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
    partitions = compute_partitions(tasks, sorted(FAMILIES), FAMILIES.get)
    trained = {}
    for name, by_task in partitions.train.items():
        for task, languages in by_task.items():
            for language in languages:
                assert (task, language) not in trained
                trained[(task, language)] = name
    assert set(trained) == {(t, lang) for t in tasks for lang in FAMILIES}
    evaluated = {(task, target): model for model, task, target, _ in partitions.evaluations()}
    assert set(evaluated) == set(trained)
    for pair, model in evaluated.items():
        assert model != trained[pair]
    # each partition's model has seen every task and every language, just not these pairs together
    for by_task in partitions.train.values():
        assert set(by_task) == set(tasks)
        assert {lang for langs in by_task.values() for lang in langs} == set(FAMILIES)


def test_explicit_partitions_reject_a_pair_trained_twice():
    with pytest.raises(ValueError, match="pos/en"):
        explicit_partitions({"A": {"pos": ["en"]}, "B": {"pos": ["en", "tr"]}})


def test_grid_expands_mixed_cells_by_synthetic_family(tmp_path):
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab, qad, qae]", extra="settings: [mixed]\n")
    grid = load_grid(grid_file, tmp_path / "w")
    cells = [c for c in grid.cells() if c.method == "full-ft"]
    # tiny suite: family 0 = qaa, qab, qac; family 1 = qad, qae (qac is not in the grid)
    assert {(c.partition, c.target_language, c.source_languages) for c in cells} == {
        ("B", "qaa", ("qad", "qae")),
        ("B", "qab", ("qad", "qae")),
        ("A", "qad", ("qaa", "qab")),
        ("A", "qae", ("qaa", "qab")),
    }


def test_partitions_need_the_mixed_setting(tmp_path):
    grid_file = write_tiny_grid(tmp_path / "g", extra="partitions: family\n")
    with pytest.raises(GridError, match="partitions"):
        load_grid(grid_file, tmp_path / "w")


def test_mixed_cells_run_multi_source_and_record_their_partition(tmp_path, tiny_workdir):
    from xltransfer.execute.local import run_local
    from xltransfer.plan import build_plan
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
        ("B", "qaa", ("qad",)),
        ("B", "qab", ("qad",)),
        ("A", "qad", ("qaa", "qab")),
    }


def test_grid_with_two_tasks_trains_each_pair_in_one_partition(tmp_path):
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab, qac, qad, qae]", extra="settings: [mixed]\n")
    text = grid_file.read_text().replace("tasks: [pos]", "tasks: [pos, ner]")
    grid_file.write_text(text.replace("data: {pos: synthetic,", "data: {ner: synthetic, pos: synthetic,"))
    grid = load_grid(grid_file, tmp_path / "w")
    partitions = grid.mixed_partitions()
    cells = [c for c in grid.cells() if c.method == "full-ft"]
    languages = {"qaa", "qab", "qac", "qad", "qae"}
    assert {(c.task, c.target_language) for c in cells} == {
        (t, lang) for t in ("pos", "ner") for lang in languages
    }
    for cell in cells:
        trained_in = partitions.trained_in(cell.task, cell.target_language)
        assert trained_in is not None and cell.partition != trained_in
        assert cell.target_language not in cell.source_languages
        assert set(cell.source_languages) == set(partitions.train[cell.partition][cell.task])
    for name in ("A", "B"):  # relatives together: each partition trains a task on whole families
        for languages_trained in partitions.train[name].values():
            families = {grid.family_of(lang) for lang in languages_trained}
            members = {lang for lang in languages if grid.family_of(lang) in families}
            assert set(languages_trained) == members
    assert partitions.train["A"]["pos"] == partitions.train["B"]["ner"]  # tasks alternate groups
