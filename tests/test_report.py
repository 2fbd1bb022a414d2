"""The leaderboard Markdown: seeds, missing seeds, best per row, groups, determinism, provenance."""

from __future__ import annotations

import pytest

from xltransfer.reporting.markdown import leaderboard_markdown


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
    # the caption says what the numbers are: task, setting, metric and unit, split, sources, seeds
    assert (
        "*pos, zero-shot: accuracy (%) on each target's test split, trained on en; mean ± standard "
        "deviation over 2 seeds (1, 2)" in text
    )
    assert "|:---|---:|---:|" in text  # numbers right-aligned, bold or not
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
    from xltransfer.reporting.markdown import _best

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


def _with(record, **extra):
    return {**record, "extra": {**record["extra"], **extra}}


def test_significance_marks_carry_a_direction_and_skip_floors(records):
    """↑ better, ↓ worse than the baseline (a mark that looked the same both ways hid which), the
    footnote right under its table, and no mark on a sanity floor."""
    from xltransfer.reporting.markdown import Significance

    floor = [_record("majority", t, 0.2, seed=s) for t in ("de", "mt") for s in (1, 2)]
    direction = {("de", "mad-x"): -1, ("mt", "mad-x"): 1, ("de", "majority"): -1, ("mt", "majority"): -1}
    significance = Significance(
        "full-ft", lambda table, row, method: direction.get((row, method), 0), frozenset({"majority"})
    )
    text = leaderboard_markdown("g", records + floor, frozenset({"de"}), seeds=2, significance=significance)
    zero_shot = text[text.index("## pos · zero-shot") :]
    assert "| de (seen) | **79.0 ± 1.4** | 71.0 ± 1.4↓ | 20.0 ± 0.0 |" in zero_shot
    assert "| mt (unseen) | 40.0 (1/2 seeds) | **52.0 ± 2.8**↑ | 20.0 ± 0.0 |" in zero_shot
    table_end = zero_shot.index("| **avg unseen** (1)")
    note = zero_shot.index("↑ / ↓: significantly better / worse than full-ft")
    assert table_end < note < zero_shot.index("*Efficiency")  # under its own table, before the next
    assert "majority: a sanity floor, not tested." in zero_shot
    assert "*`" not in text and "`*`" not in text


def test_entries_that_did_not_converge_are_marked_and_never_ranked(records):
    """A record whose pieces did not converge (``extra.convergence``) is shown with a dagger, not
    bold even when it is the best, without a significance mark, and a footnote says why."""
    from xltransfer.reporting.markdown import Significance

    flagged = {"mad-x:task-adapter[en]": "dev loss never left its initial plateau"}
    changed = [
        _with(r, convergence={"converged": False, "flagged": flagged})
        if r["method"] == "mad-x" and r["target_language"] == "mt" and r["seed"] == 2
        else _with(r, convergence={"converged": True, "flagged": {}})
        for r in records
    ]
    significance = Significance("full-ft", lambda table, row, method: 1, frozenset())
    text = leaderboard_markdown("g", changed, frozenset({"de"}), seeds=2, significance=significance)
    zero_shot = text[text.index("## pos · zero-shot") :]
    # the row's best, but not ranked (and a single ranked score is bold for nobody)
    assert "| mt (unseen) | 40.0 (1/2 seeds) | 52.0 ± 2.8† |" in zero_shot
    assert "| **average** (2) | 59.5 | 61.5† |" in zero_shot  # an average over it: not ranked either
    assert "| de (seen) | **79.0 ± 1.4** | 71.0 ± 1.4↑ |" in zero_shot  # converged entries still are
    assert (
        "†: not converged, so not ranked (no bold, no significance mark): mad-x: "
        "mad-x:task-adapter[en]: dev loss never left its initial plateau." in zero_shot
    )


def test_efficiency_in_adaptive_units_with_cpu_time_and_hardware():
    from xltransfer.reporting.units import format_count

    assert [format_count(n) for n in (812, 5_200, 38_000, 1_340_000, 178_000_000, 7_100_000_000)] == [
        "812",
        "5.2K",
        "38K",
        "1.34M",
        "178M",
        "7.1B",
    ]
    records = [
        _with(
            {**_record("mad-x", t, 0.5), "trainable_params": 5_200},
            piece_costs={"la-en": [2_600, 30.0, 55.5], f"la-{t}": [2_600, 20.0, 41.0]},
            hardware=["CPU Test Processor, 2 cores, 2 torch threads"],
        )
        for t in ("de", "mt")
    ]
    text = leaderboard_markdown("g", records, None)
    assert "| mad-x | 5.2K | 7.8K | 70 | – | 138 |" in text  # shared LA once; no data prep recorded
    assert "0.01M" not in text
    assert "Training time measured on: CPU Test Processor, 2 cores, 2 torch threads." in text


def test_latex_tables_are_booktabs_with_captions_marks_and_notes(records):
    from xltransfer.reporting.latex import leaderboard_latex
    from xltransfer.reporting.markdown import Significance, leaderboard_sections

    significance = Significance("full-ft", lambda table, row, method: -1, frozenset())
    latex = leaderboard_latex("g", leaderboard_sections(records, frozenset({"de"}), None, 2, significance))
    table = latex[latex.rindex(r"\begin{table}", 0, latex.index("pos, zero-shot")) :]
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrr}", r"\caption{"):
        assert command in table
    assert r"\textbf{79.0 $\pm$ 1.4}" in table and r"71.0 $\pm$ 1.4$^{\downarrow}$" in table
    assert r"\textbf{average (2)}" in table  # averages under their own rule, labels bold
    body = table[table.index(r"\midrule") + len(r"\midrule") : table.index(r"\bottomrule")]
    assert r"\midrule" in body  # a rule between the targets and the averages
    assert r"significantly better / worse than full-ft" in table
    assert "**" not in latex and "|" not in latex.replace("\\textbar", "")


def test_efficiency_marks_seconds_measured_with_the_load_above_one_and_a_half_times_the_cores():
    """A piece trained while other jobs shared the machine (`measured_under_load`, from the load
    average at its start and end) marks its method's wall-clock seconds, in Markdown and HTML."""
    from xltransfer.execute.cells import _measured_under_load
    from xltransfer.reporting.html import markdown_to_html
    from xltransfer.reporting.markdown import LOADED

    infos = [
        {"key": "la-en", "load_average": [0.4, 3.6], "cores": 2},  # busy by the end
        {"key": "la-de", "load_average": [2.3, 2.7], "cores": 2},  # the run's own two threads: idle
        {"key": "old", "trainable_params": 1},  # recorded before loads were
    ]
    loaded = _measured_under_load(infos)
    assert loaded == {"measured_under_load": {"la-en": [0.4, 3.6, 2]}}
    costs = {"la-en": [2_600, 30.0, 55.5], "la-de": [2_600, 20.0, 41.0]}
    busy = _with({**_record("mad-x", "de", 0.5), "trainable_params": 5_200}, piece_costs=costs, **loaded)
    calm_costs = {"ft": [9_000, 5.0]}
    calm = _with({**_record("full-ft", "de", 0.4), "trainable_params": 9_000}, piece_costs=calm_costs)
    text = leaderboard_markdown("g", [busy, calm], None)
    assert f"| mad-x | 5.2K | 5.2K | 50{LOADED} | – | 96 |" in text  # data s: not recorded
    assert "| full-ft | 9K | 9K | 5 | – | – |" in text  # no mark where the machine was not busy
    assert f"{LOADED}: some of these pieces trained while the machine's load average exceeded" in text
    html = markdown_to_html(text)
    assert f"50{LOADED}" in html and "load average exceeded 1.5 times its core count" in html
    assert LOADED not in leaderboard_markdown("g", [calm], None)
    # a record flagged under the rule of before (load above the core count) is judged by today's
    earlier = _with(
        {**_record("mad-x", "de", 0.5), "trainable_params": 5_200},
        piece_costs=costs,
        measured_under_load={"la-de": [2.3, 2.7, 2]},
    )
    assert LOADED not in leaderboard_markdown("g", [earlier, calm], None)
