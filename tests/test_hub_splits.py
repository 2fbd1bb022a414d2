"""Hub datasets read only the splits a grid declares, and a declared split the dataset lacks is an
error naming the field (the hub is unreachable here: a stand-in answers as `datasets` does)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_tiny_grid

from xltransfer.context import RunContext
from xltransfer.errors import GridError
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.workspace import Workspace

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"

# UD 2.7 (Hyper-X Table 4): the splits each POS treebank of the hyper-x grid has
UD_SPLITS = {
    **dict.fromkeys(["en", "ar", "zh", "ta", "tr", "mt", "ug"], {"train", "dev", "test"}),
    **dict.fromkeys(["br", "is", "yo", "fo", "gn", "sa", "yue"], {"test"}),
    **dict.fromkeys(["kk", "hsb"], {"train", "test"}),
}


def test_hyper_x_grid_declares_only_the_splits_ud_has(tmp_path):
    grid = load_grid(LEADERBOARDS / "hyper-x", tmp_path / "w")
    pos = grid.source_for("pos")
    assert {lang: set(pos.source(lang).split_names) for lang in UD_SPLITS} == UD_SPLITS


class StandInHub:
    """``datasets.load_dataset`` for a UD config that has only some splits (as UD's test-only treebanks)."""

    def __init__(self, splits: dict[str, str]):
        self.splits = splits  # split name -> "ok" | "missing"
        self.calls: list[str] = []

    def __call__(self, dataset, config, split, revision):
        import datasets

        self.calls.append(split)
        if self.splits.get(split) != "ok":
            have = [name for name, state in self.splits.items() if state == "ok"]
            raise ValueError(f'Unknown split "{split}". Should be one of {have}.')
        return datasets.Dataset.from_dict(
            {
                "tokens": [["qa", "qe"]],
                "upos": [["NOUN", "VERB"]],
                "head": [["0", "1"]],
                "deprel": [["root", "dep"]],
            }
        )


def _hub_grid(folder: Path, splits: str) -> Path:
    """The tiny grid with its source's POS data (qaa, trained on) from the hub."""
    grid_file = write_tiny_grid(folder, targets="[qab]")
    hub = f"{{type: hub, dataset: stand-in/ud, config: qaa_x, splits: {splits}}}"
    source = f"pos: {{type: per-language, languages: {{qaa: {hub}}}, default: synthetic}}"
    grid_file.write_text(grid_file.read_text().replace("data: {pos: synthetic,", f"data: {{{source},"))
    return grid_file


@pytest.fixture
def stand_in(monkeypatch):
    def install(splits: dict[str, str]) -> StandInHub:
        hub = StandInHub(splits)
        monkeypatch.setattr("xltransfer.hub.hub_reachable", lambda: True)
        monkeypatch.setattr(
            "datasets.load_dataset",
            lambda dataset, config, split, revision: hub(dataset, config, split, revision),
        )
        return hub

    return install


def test_a_declared_split_the_dataset_lacks_is_an_error_naming_the_field(tmp_path, stand_in):
    hub = stand_in({"test": "ok", "train": "missing"})
    workspace = Workspace.at(tmp_path / "w")
    grid = load_grid(_hub_grid(tmp_path / "g", "{train: train, test: test}"), workspace.root)
    with pytest.raises(GridError) as caught:
        RunContext(build_plan(grid), workspace).preflight()
    assert caught.value.field == "data.pos.languages.qaa.splits.train"
    assert "'stand-in/ud' (qaa_x) has no split 'train'" in str(caught.value) and "['test']" in str(
        caught.value
    )
    assert "train" in hub.calls


def test_a_declared_dev_split_that_is_missing_is_not_silently_skipped(tmp_path, stand_in):
    stand_in({"train": "ok", "test": "ok", "validation": "missing"})
    workspace = Workspace.at(tmp_path / "w")
    grid = load_grid(_hub_grid(tmp_path / "g", "{train: train, dev: validation, test: test}"), workspace.root)
    with pytest.raises(GridError, match="has no split 'validation'") as caught:
        RunContext(build_plan(grid), workspace).preflight()
    assert caught.value.field == "data.pos.languages.qaa.splits.dev"


def test_undeclared_splits_are_never_read(tmp_path, stand_in):
    hub = stand_in({"train": "ok", "test": "ok"})
    workspace = Workspace.at(tmp_path / "w")
    grid = load_grid(_hub_grid(tmp_path / "g", "{train: train, test: test}"), workspace.root)
    ctx = RunContext(build_plan(grid), workspace)
    ctx.preflight()  # declared and present: fine, and the dev split was not asked for
    assert "validation" not in hub.calls and "dev" not in hub.calls
    with pytest.raises(GridError, match="no dev split declared for 'qaa'") as caught:
        grid.source_for("pos").read(ctx.task("pos"), "qaa", "dev")
    assert caught.value.field == "data.pos.languages.qaa.splits"
