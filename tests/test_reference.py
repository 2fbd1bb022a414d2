"""Published figures (``leaderboards/<name>/paper.yaml``): loading, validation, and the "Published vs
ours" report section."""

from __future__ import annotations

import random
import shutil
import textwrap
from pathlib import Path

import pytest

from xltransfer.errors import DataFormatError, XltError
from xltransfer.reporting.reference import (
    PaperEntry,
    Reference,
    load_reference,
    paper_scale,
    reference_markdown,
)

LEADERBOARDS = Path(__file__).resolve().parent.parent / "leaderboards"
PAPERS = ("hyper-x", "bad-x", "hyper-adapters")


def _record(label: str, task: str, target: str, metric: str, value: float, **extra) -> dict:
    method, _, variant = label.partition(":")
    return {
        "cell_id": f"{label}-{task}-{target}-{extra.get('seed', 1)}",
        "method": method,
        "variant": variant or "default",
        "task": task,
        "setting": extra.get("setting", "zero-shot"),
        "shots": extra.get("shots", 0),
        "source_languages": [extra.get("source", "en")],
        "target_language": target,
        "split": extra.get("split", "test"),
        "metric": metric,
        "value": value,
        "status": extra.get("status", "ok"),
        "seed": extra.get("seed", 1),
        "extra": extra.get("record_extra", {}),
    }


def _mt(label: str, source: str, target: str, value: float, **extra) -> dict:
    return _record(label, "mt", target, extra.pop("metric", "bleu"), value, source=source, **extra)


def _tables(markdown: str) -> dict[str, dict[str, dict[str, str]]]:
    """heading -> row label -> column title -> cell, for every table of the section."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    heading, columns = None, []
    for line in markdown.splitlines():
        if line.startswith("### "):
            heading, columns = line[4:], []
            tables[heading] = {}
        elif heading and line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not columns:
                columns = cells[1:]
            else:
                tables[heading][cells[0]] = dict(zip(columns, cells[1:], strict=True))
    return tables


def _heading(entry: PaperEntry) -> str:
    page = f", p. {entry.page}" if entry.page else ""
    shots = f" ({entry.shots} shots)" if entry.shots else ""
    return f"{entry.table}{page} · {entry.task} · {entry.setting}{shots} · {entry.metric}"


def _row(entry: PaperEntry) -> str:
    if entry.language:
        return entry.language.replace(">", "→")
    side = f" ({entry.direction.replace('-', '→')})" if entry.direction else ""
    return f"avg {entry.group}{side}" if entry.group else f"probe {entry.probe}{side}"


def _column(entry: PaperEntry) -> str:
    return f"{entry.method} − {entry.baseline}" if entry.baseline else entry.method


def _paper(entry: PaperEntry) -> str:
    return f"{entry.value:.{entry.decimals}f}"


@pytest.mark.parametrize("name", PAPERS)
def test_paper_files_load_and_match_their_grids(name):
    reference = load_reference(LEADERBOARDS / name)
    assert isinstance(reference, Reference)
    assert reference.path == LEADERBOARDS / name / "paper.yaml"
    assert reference.grid is not None and reference.source
    assert reference.entries, f"{name}: no figures"
    for entry in reference.entries:
        assert entry.method in reference.grid.methods
        assert entry.baseline is None or entry.baseline in reference.grid.methods
        assert entry.task in reference.grid.tasks
        assert entry.line is not None


def test_table_2_is_paired_with_the_transformer_big_grid():
    """Table 2 (Transformer-Big) belongs to grid-big.yaml: its own paper file, validated against that
    grid; the Transformer-Base grid (the folder's grid.yaml) keeps Tables 1 and 3."""
    folder = LEADERBOARDS / "hyper-adapters"
    big = load_reference(folder / "grid-big.yaml")
    assert big.path == folder / "paper-big.yaml" and {e.table for e in big.entries} == {"Table 2"}
    assert big.grid is not None and set(big.grid.methods) == {e.method for e in big.entries}
    assert len(big.entries) == 6 * 8  # six models, All/High/Med/Low in both directions
    base = load_reference(folder / "grid.yaml")
    assert base.path == folder / "paper.yaml" and {e.table for e in base.entries} == {"Table 1", "Table 3"}
    assert load_reference(folder).path == base.path

    def value(method, group, direction):
        (entry,) = [e for e in big.entries if (e.method, e.group, e.direction) == (method, group, direction)]
        return entry.value

    # checked by hand against Table 2 of the paper
    assert value("full-ft", "all", "en-x") == 18.5 and value("full-ft", "low", "x-en") == 25.7
    assert value("lang-adapters", "med", "en-x") == 17.0 and value("pair-adapters", "high", "x-en") == 28.2
    assert value("hyper-adapters:tiny", "low", "x-en") == 27.6
    assert (
        value("hyper-adapters:base", "all", "en-x") == 20.3
        and value("hyper-adapters:base", "med", "x-en") == 27.1
    )


def test_paper_figures_are_the_papers():
    """A few figures checked by hand against the papers' tables."""

    def value(name: str, **where) -> float:
        found = [
            e
            for e in load_reference(LEADERBOARDS / name).entries
            if all(getattr(e, k) == v for k, v in where.items())
        ]
        assert len(found) == 1, where
        return found[0].value

    # Hyper-X Table 6: POS, English single-task, MAD-X on Turkish; NER mixed Hyper-X Base on Maltese
    table6 = {"table": "Table 6", "task": "pos", "language": "tr", "setting": "zero-shot"}
    assert value("hyper-x", method="mad-x:no-inv", **table6) == 73.2
    table6 = {"table": "Table 6", "task": "ner", "language": "mt", "setting": "mixed"}
    assert value("hyper-x", method="hyper-x:base", **table6) == 77.8
    # Table 2: English multi-task Hyper-X Base, POS unseen; Table 5: MAD-X NER with 10 shots on Maltese
    assert value("hyper-x", table="Table 2", method="hyper-x:multi-task", task="pos", group="unseen") == 59.7
    assert (
        value("hyper-x", table="Table 5", method="mad-x:no-inv", task="ner", language="mt", shots=10) == 76.1
    )
    # Hyper-adapters Table 1 and Table 3
    assert value("hyper-adapters", method="hyper-adapters:base", group="high", direction="en-x") == 22.2
    assert value("hyper-adapters", method="full-ft", group="low", direction="x-en") == 23.6
    assert value("hyper-adapters", method="pair-adapters", probe="sim") == 18.0
    # BAD-X §3.2 prose: gains over MAD-X
    assert value("bad-x", task="pos", metric="accuracy", baseline="mad-x") == 1.06
    assert value("bad-x", task="nli", language="hch") == 6.67


def test_no_paper_file_is_none(tmp_path):
    assert load_reference(tmp_path) is None
    assert reference_markdown(None, []) == ""


GRID = """\
name: tiny
tasks: [pos, mt]
methods: [full-ft, {name: mad-x, variants: [no-inv]}]
languages: {source: en, target: {pos: [tr, mt], mt: [de, tr]}}
"""


def _folder(tmp_path: Path, paper: str) -> Path:
    (tmp_path / "grid.yaml").write_text(GRID, encoding="utf-8")
    (tmp_path / "paper.yaml").write_text(textwrap.dedent(paper), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("body", "field", "line", "says"),
    [
        (  # a metric this harness does not know
            """\
            entries:
              - {table: T1, method: full-ft, task: pos, language: tr, metric: accuracy, value: 70.1}
              - {table: T1, method: full-ft, task: pos, language: mt,
                 metric: blue, value: 40.2}
            """,
            "entries[1].metric",
            5,
            "unknown metric 'blue'",
        ),
        (  # no value
            """\
            entries:
              - table: T1
                method: full-ft
                task: pos
                language: tr
                metric: accuracy
            """,
            "entries[0].value",
            3,
            "is required",
        ),
        (  # a label the grid does not have
            """\
            entries:
              - {table: T1, method: mad-x, task: pos, language: tr, metric: accuracy, value: 70.1}
            """,
            "entries[0].method",
            3,
            "not a method of the grid",
        ),
        (  # a language the grid does not test
            """\
            entries:
              - {table: T1, method: full-ft, task: pos, language: de, metric: accuracy, value: 70.1}
            """,
            "entries[0].language",
            3,
            "not a pos target",
        ),
        (  # an MT direction written the wrong way
            """\
            entries:
              - {table: T1, method: full-ft, task: mt, language: en-de, metric: bleu, value: 20.1}
            """,
            "entries[0].language",
            3,
            "SRC>TGT",
        ),
        (  # an MT group without its direction
            """\
            entries:
              - {table: T1, method: full-ft, task: mt, group: all, metric: bleu, value: 20.1}
            """,
            "entries[0].direction",
            3,
            "en-x or x-en",
        ),
        (  # few-shot without shots
            """\
            entries:
              - {table: T1, method: full-ft, task: pos, language: tr, metric: accuracy, value: 70.1,
                 setting: few-shot}
            """,
            "entries[0].shots",
            3,
            "positive number of shots",
        ),
        (  # the same figure twice
            """\
            entries:
              - {table: T1, method: full-ft, task: pos, language: tr, metric: accuracy, value: 70.1}
              - {table: T1, method: full-ft, task: pos, language: tur, metric: accuracy, value: 70.2}
            """,
            "entries[1]",
            4,
            "the same figure as entries[0]",
        ),
    ],
)
def test_malformed_paper_names_file_line_and_field(tmp_path, body, field, line, says):
    folder = _folder(tmp_path, 'source: "A. Author (2022). A paper."\n' + textwrap.dedent(body))
    with pytest.raises(DataFormatError) as caught:
        load_reference(folder)
    error = caught.value
    assert isinstance(error, XltError)  # the CLI's exit code 2
    assert error.path == folder / "paper.yaml"
    assert error.line == line
    assert str(error).startswith(f"{folder / 'paper.yaml'}:{line}: {field}: ")
    assert says in str(error)


def test_malformed_top_level(tmp_path):
    with pytest.raises(DataFormatError, match=r"paper\.yaml:\d+: source: is required"):
        load_reference(_folder(tmp_path, "entries: []\n"))
    with pytest.raises(DataFormatError, match=r"paper\.yaml:\d+: not valid YAML"):
        load_reference(_folder(tmp_path, "source: x\nentries: [\n  - {a: 1\n"))
    with pytest.raises(DataFormatError, match=r"paper\.yaml:2: groups\.high\[1\]: 'fr' is not a target"):
        load_reference(_folder(tmp_path, "source: x\ngroups: {high: [tr, fr]}\nentries: []\n"))


@pytest.mark.parametrize("name", PAPERS)
def test_no_records_shows_every_figure_with_ours_missing(name):
    reference = load_reference(LEADERBOARDS / name)
    markdown = reference_markdown(reference, [])
    assert markdown.startswith("## Published vs ours\n")
    tables = _tables(markdown)
    for entry in reference.entries:
        cell = tables[_heading(entry)][_row(entry)][_column(entry)]
        assert cell == f"{_paper(entry)} / – / –", entry
    assert markdown.count(" / – / –") == len(reference.entries)
    assert markdown == reference_markdown(reference, [])


def test_ours_next_to_theirs_scaled_to_percent():
    reference = load_reference(LEADERBOARDS / "hyper-x")
    records = [
        # Table 6, POS, MAD-X (no invertible adapters) on Turkish: 73.2; ours 0.70 and 0.74 -> 72.0
        _record("mad-x:no-inv", "pos", "tr", "accuracy", 0.70, seed=1),
        _record("mad-x:no-inv", "pos", "tr", "accuracy", 0.74, seed=2),
        # never counted: a failed cell, a dev score, another setting, another method
        _record("mad-x:no-inv", "pos", "tr", "accuracy", 0.10, seed=3, status="failed"),
        _record("mad-x:no-inv", "pos", "tr", "accuracy", 0.99, split="dev"),
        _record("mad-x:no-inv", "pos", "tr", "accuracy", 0.99, setting="mixed"),
        _record("mad-x", "pos", "tr", "accuracy", 0.99),
        # Table 5: NER with 10 shots on Maltese, 76.1; ours 0.8 (the 5-shot record is another figure)
        _record("mad-x:no-inv", "ner", "mt", "f1", 0.80, setting="few-shot", shots=10),
        _record("mad-x:no-inv", "ner", "mt", "f1", 0.50, setting="few-shot", shots=5),
    ]
    random.Random(0).shuffle(records)
    markdown = reference_markdown(reference, records)
    tables = _tables(markdown)
    assert tables["Table 6 · pos · zero-shot · accuracy"]["tr"]["mad-x:no-inv"] == "73.2 / 72.0 / -1.2"
    assert tables["Table 6 · pos · zero-shot · accuracy"]["tr"]["full-ft"] == "72.0 / – / –"
    assert tables["Table 6 · pos · mixed · accuracy"]["tr"]["mad-x:no-inv"] == "75.1 / 99.0 / +23.9"
    assert tables["Table 5 · ner · few-shot (10 shots) · f1"]["mt"]["mad-x:no-inv"] == "76.1 / 80.0 / +3.9"
    assert tables["Table 5 · ner · few-shot (5 shots) · f1"]["mt"]["mad-x:no-inv"] == "67.3 / 50.0 / -17.3"
    # Table 2's seen average (8 languages): one of them so far, so no Δ
    table2 = tables["Table 2 · pos · zero-shot · accuracy"]
    assert table2["avg seen"]["mad-x:no-inv"] == "67.7 / 72.0 (1/8) / –"
    assert table2["avg unseen"]["mad-x:no-inv"] == "62.6 / – / –"
    # deterministic, whatever the order of the records
    assert reference_markdown(reference, list(reversed(records))) == markdown
    # another scale: ours as stored
    scaled = _tables(reference_markdown(reference, records, scale={"accuracy": 1.0}))
    assert scaled["Table 6 · pos · zero-shot · accuracy"]["tr"]["mad-x:no-inv"] == "73.2 / 0.7 / -72.5"
    assert paper_scale("las") == 100.0 and paper_scale("bleu") == 1.0


def test_group_averages_complete_and_partial():
    reference = load_reference(LEADERBOARDS / "hyper-x")
    seen = ["ar", "br", "is", "kk", "ta", "tr", "yo", "zh"]
    records = [_record("full-ft", "ner", code, "f1", 0.5) for code in seen]
    records.append(_record("full-ft", "ner", "tr", "f1", 0.9, seed=2))  # tr: 0.7 over two seeds
    table = _tables(reference_markdown(reference, records))["Table 2 · ner · zero-shot · f1"]
    # (7 * 50 + 70) / 8 = 52.5 against 53.4
    assert table["avg seen"]["full-ft"] == "53.4 / 52.5 / -0.9"
    assert table["avg all"]["full-ft"] == "47.3 / 52.5 (8/15) / –"


def test_mt_groups_average_directions_over_the_grids_groups():
    reference = load_reference(LEADERBOARDS / "hyper-adapters")
    high = reference.groups["high"]
    assert len(high) == 14 and "de" in high
    records = [_mt("hyper-adapters:base", "en", code, 20.0) for code in high if code != "de"]
    records += [
        _mt("hyper-adapters:base", "en", "de", 30.0, seed=1),
        _mt("hyper-adapters:base", "en", "de", 34.0, seed=2),
        _mt("hyper-adapters:base", "en", "de", 90.0, metric="chrf"),  # another metric
        _mt("hyper-adapters:base", "af", "en", 25.0),  # X->En, low
    ]
    probes = {"af": 30.0, "pt": 32.0, "gl": 34.0, "uk": 36.0}
    for source, org in probes.items():
        probe = {
            "original": {"language": source, "bleu": org},
            "similar": {"language": "es", "bleu": org / 2},
            "distant": {"language": "zh", "bleu": 5.0},
        }
        for metric in ("bleu", "chrf"):  # the probe rides on every record of the cell: counted once
            extra = {"relatedness_probe": probe}
            records.append(_mt("lang-adapters", source, "en", org, metric=metric, record_extra=extra))
    tables = _tables(reference_markdown(reference, records))
    table1 = tables["Table 1 · mt · zero-shot · bleu"]
    # en>de: (30 + 34) / 2 = 32; the high average (13 * 20 + 32) / 14 = 20.857 against 22.2
    assert table1["avg high (en→x)"]["hyper-adapters:base"] == "22.2 / 20.9 / -1.3"
    assert table1["avg high (x→en)"]["hyper-adapters:base"] == "26.9 / – / –"
    assert table1["avg low (x→en)"]["hyper-adapters:base"] == "25.0 / 25.0 (1/19) / –"
    assert table1["avg all (en→x)"]["hyper-adapters:base"] == "19.0 / 20.9 (14/50) / –"
    assert table1["avg high (en→x)"]["lang-adapters"] == "21.0 / – / –"
    table3 = tables["Table 3 · mt · zero-shot · bleu"]
    assert table3["probe org (x→en)"]["lang-adapters"] == "34.1 / 33.0 / -1.1"
    assert table3["probe sim (x→en)"]["lang-adapters"] == "19.0 / 16.5 / -2.5"
    assert table3["probe dist (x→en)"]["lang-adapters"] == "6.5 / 5.0 / -1.5"
    assert table3["probe org (x→en)"]["hyper-adapters:base"] == "34.8 / – / –"


def test_mt_single_direction_and_differences(tmp_path):
    folder = _folder(
        tmp_path,
        """\
        source: "A. Author (2022). A paper."
        entries:
          - {table: T1, page: 3, method: full-ft, task: mt, language: de>en, metric: bleu, value: 30.1}
          - {table: T1, page: 3, method: mad-x:no-inv, task: mt, language: en>de, metric: bleu, value: 25}
          - {table: T2, method: mad-x:no-inv, baseline: full-ft, task: pos, group: all, metric: accuracy,
             value: 1.06, note: a gain in the text}
        """,
    )
    reference = load_reference(folder)
    records = [
        _mt("full-ft", "de", "en", 31.0),
        _mt("full-ft", "en", "de", 99.0),  # the other direction
        _mt("mad-x:no-inv", "en", "de", 24.3),
        _record("mad-x:no-inv", "pos", "tr", "accuracy", 0.71),
        _record("mad-x:no-inv", "pos", "mt", "accuracy", 0.51),
        _record("full-ft", "pos", "tr", "accuracy", 0.70),
    ]
    markdown = reference_markdown(reference, records)
    tables = _tables(markdown)
    table1 = tables["T1, p. 3 · mt · zero-shot · bleu"]
    assert table1["de→en"] == {"full-ft": "30.1 / 31.0 / +0.9", "mad-x:no-inv": ""}
    assert table1["en→de"]["mad-x:no-inv"] == "25 / 24.3 / -0.7"
    # the gain needs both methods on every target: full-ft lacks mt
    assert tables["T2 · pos · zero-shot · accuracy"]["avg all"]["mad-x:no-inv − full-ft"] == "1.06 / – / –"
    records.append(_record("full-ft", "pos", "mt", "accuracy", 0.50))
    tables = _tables(reference_markdown(reference, records))
    # (71 + 51) / 2 - (70 + 50) / 2 = 1.00
    gain = tables["T2 · pos · zero-shot · accuracy"]["avg all"]["mad-x:no-inv − full-ft"]
    assert gain == "1.06 / 1.00 / -0.06"
    assert "- a gain in the text (mad-x:no-inv − full-ft, avg all)" in markdown


def test_reference_without_a_grid_still_renders(tmp_path):
    shutil.copy(LEADERBOARDS / "hyper-adapters" / "paper.yaml", tmp_path / "paper.yaml")
    with pytest.raises(DataFormatError, match=r"entries\[1\]\.group: unknown group 'high' \(known: all\)"):
        load_reference(tmp_path)  # without its grid, no high/med/low
    (tmp_path / "paper.yaml").write_text(
        'source: "x"\nentries:\n'
        "  - {table: T, method: m, task: mt, group: all, direction: en-x, metric: bleu, value: 10.0}\n",
        encoding="utf-8",
    )
    reference = load_reference(tmp_path)
    assert reference.grid is None
    records = [_mt("m", "en", "de", 12.0), _mt("m", "en", "fr", 14.0)]
    table = _tables(reference_markdown(reference, records))["T · mt · zero-shot · bleu"]
    assert table["avg all (en→x)"]["m"] == "10.0 / 13.0 / +3.0"
