"""`xlt plan`: parameter counts from architecture presets, without weights; shared pieces once."""

from __future__ import annotations

import json
import textwrap

import pytest

from xltransfer.grid import load_grid
from xltransfer.plan import build_plan
from xltransfer.report.plan import plan_summary
from xltransfer.workspace import Workspace

MBERT_GRID = """
    name: mbert-counts
    backbone: mbert
    data:
      pos: {{type: ud, root: {ud}, treebanks: {{tr: UD_Turkish-IMST}}}}
      mlm: {{type: ud, root: {ud}, treebanks: {{tr: UD_Turkish-IMST}}}}
    methods:
      - name: mad-x
        variants: [no-inv]
        params: {{la_bottleneck: 256, ta_bottleneck: 48}}
      - mad-x
      - full-ft
    tasks: [pos]
    languages: {{source: tr, target: [mt, ug]}}
"""


@pytest.fixture
def mbert_summary(tmp_path, shared_data):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(textwrap.dedent(MBERT_GRID.format(ud=shared_data / "ud")))
    workspace = Workspace.at(tmp_path / "work")
    plan = build_plan(load_grid(grid_file, workspace.root))
    return plan_summary(plan, workspace)


def _pieces(summary, method_kind, **match):
    return [
        p for p in summary["pieces"] if p["kind"] == method_kind and all(p[k] == v for k, v in match.items())
    ]


def test_mbert_counts_match_hyper_x_table_3(mbert_summary):
    # Hyper-X Table 3: MAD-X LA (bottleneck 256) 4.73M per language, TA (bottleneck 48) 0.89M
    la_256 = [
        p for p in mbert_summary["pieces"] if p["kind"] == "language-adapter" and p["trainable_params"] < 5e6
    ]
    assert la_256 and all(abs(p["trainable_params"] - 4.73e6) / 4.73e6 < 0.01 for p in la_256)
    ta = _pieces(mbert_summary, "task-adapter")
    head = 768 * 17 + 17  # the UPOS tagging head, trained with the task adapter
    assert ta and all(abs(p["trainable_params"] - head - 0.89e6) / 0.89e6 < 0.02 for p in ta)
    full = _pieces(mbert_summary, "finetuned-model")
    assert len(full) == 1 and abs(full[0]["trainable_params"] - 177.9e6) / 177.9e6 < 0.001
    # MAD-X default: reduction factor 2 with the invertible adapter, ~7.39M per language (issue 4 figure)
    la_default = [
        p for p in mbert_summary["pieces"] if p["kind"] == "language-adapter" and p["trainable_params"] > 5e6
    ]
    assert la_default and all(abs(p["trainable_params"] - 7.39e6) / 7.39e6 < 0.01 for p in la_default)
    assert mbert_summary["methods"]["full-ft"]["base_params"] == 177_853_440


def test_shared_pieces_counted_once(mbert_summary):
    # per MAD-X variant: LAs for tr, mt, ug and one TA on tr, though two cells need the tr pieces
    las = [p for p in mbert_summary["pieces"] if p["kind"] == "language-adapter"]
    assert len(las) == 6  # tr, mt, ug for each of the two MAD-X variants
    source_la = [
        p for p in mbert_summary["pieces"] if p["kind"] == "language-adapter" and p["languages"] == ["tr"]
    ]
    assert all(p["used_by_cells"] == 2 for p in source_la)
    assert len(mbert_summary["cells"]) == 6


def test_plan_json_cli_without_weights(tmp_path, shared_data, monkeypatch):
    """The CLI prints one JSON object of the documented shape, offline, with no model files anywhere."""
    from typer.testing import CliRunner

    from xltransfer.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(textwrap.dedent(MBERT_GRID.format(ud=shared_data / "ud")))
    result = CliRunner().invoke(app, ["plan", str(grid_file), "--json", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"cells", "pieces", "methods"}
    assert set(data["pieces"][0]) >= {"key", "method", "kind", "languages", "trainable_params", "steps"}
    assert set(data["methods"]["mad-x"]) == {"trainable_params", "base_params", "extra_params"}
    assert not (tmp_path / "empty-hf-home").exists()
