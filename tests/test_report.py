"""The leaderboard Markdown: seeds, missing seeds, best per row, groups, determinism, provenance."""

from __future__ import annotations

import pytest

from xltransfer.report.markdown import leaderboard_markdown


def _record(method, target, value, seed=1, variant="default", task="pos", setting="zero-shot", shots=0):
    return {
        "cell_id": f"{method}/{task}/{setting}/en->{target}/seed{seed}/k{shots}",
        "run_id": "r1",
        "method": method,
        "variant": variant,
        "task": task,
        "setting": setting,
        "shots": shots,
        "source_languages": ["en"],
        "target_language": target,
        "split": "test",
        "metric": "accuracy",
        "value": value,
        "seed": seed,
        "status": "ok",
        "trainable_params": 1000,
        "extra": {"piece_costs": {f"{method}-piece": [1000, 2.0]}},
    }


@pytest.fixture
def records():
    return [
        _record("mad-x", "de", 0.70, seed=1),
        _record("mad-x", "de", 0.72, seed=2),
        _record("mad-x", "mt", 0.50, seed=1),
        _record("mad-x", "mt", 0.54, seed=2),
        _record("full-ft", "de", 0.80, seed=1),
        _record("full-ft", "de", 0.78, seed=2),
        _record("full-ft", "mt", 0.40, seed=1),  # seed 2 missing
        _record("mad-x", "de", 0.60, setting="few-shot", shots=5),
        _record("mad-x", "de", 0.65, setting="few-shot", shots=10),
    ]


def test_mean_std_seed_counts_and_best_per_row(records):
    text = leaderboard_markdown("g", records, frozenset({"de"}), seeds=2, groups={"far": ("mt",)})
    assert "Mean over 2 seeds ± standard deviation." in text
    assert "| de (seen) | **79.0 ± 1.4** | 71.0 ± 1.4 |" in text
    assert "| mt (unseen) | 40.0 (1/2 seeds) | **52.0 ± 2.8** |" in text
    assert "| **average** (2) | **59.5** | 61.5 |" not in text  # full-ft's average is over seed means
    assert "| **average** (2) | 59.5 | **61.5** |" in text
    assert "| **avg far** (1) | 40.0 | **52.0** |" in text
    # few-shot tables are one per k, never averaged across k
    assert "## pos · few-shot · k=5 · accuracy" in text and "## pos · few-shot · k=10 · accuracy" in text


def test_rendering_is_deterministic_whatever_the_record_order(records):
    once = leaderboard_markdown("g", records, None, seeds=2)
    again = leaderboard_markdown("g", list(reversed(records)), None, seeds=2)
    assert once == again


def test_no_results_renders_a_page_not_an_error():
    text = leaderboard_markdown("g", [], None, sections=["## Provenance\n\n- nothing yet"])
    assert "No results yet" in text and text.endswith("- nothing yet\n")


def test_best_is_the_minimum_when_lower_is_better_and_ties_are_all_bold():
    from xltransfer.report.markdown import _best

    assert _best({"a": 3.0, "b": 1.0, "c": None}, higher_is_better=False) == {"b"}
    assert _best({"a": 2.0, "b": 2.0}, higher_is_better=True) == {"a", "b"}
    assert _best({"a": 2.0, "b": None}, higher_is_better=True) == set()  # one score: nothing to compare


@pytest.mark.parametrize("board", ["hyper-x", "bad-x", "hyper-adapters"])
def test_a_paper_leaderboard_without_results_shows_the_papers_figures(board, tmp_path, monkeypatch):
    """`xlt report` before any run, offline: the published figures with ours marked missing."""
    import shutil
    from pathlib import Path

    from typer.testing import CliRunner

    from xltransfer.cli import app

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / board
    shutil.copytree(Path(__file__).parent.parent / "leaderboards" / board, folder)
    result = CliRunner().invoke(app, ["report", str(folder), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    readme = (folder / "README.md").read_text()
    assert "No results yet" in readme and "Published vs ours" in readme
    assert "/ – / –" in readme  # paper / ours / difference, ours missing
    assert (folder / "index.html").is_file()
