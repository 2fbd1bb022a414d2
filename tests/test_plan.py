"""`xlt plan`: parameter counts from architecture presets, without weights; shared pieces once."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from xltransfer.cli import app
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.reporting.plan import plan_summary
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
    assert set(data["methods"]["mad-x"]) == {
        "trainable_params",
        "added_params",
        "base_params",
        "extra_params",
        "gpu_hours",
        "uncosted_pieces",
    }
    assert set(data["pieces"][0]) >= {"seed", "shots", "flops_per_step", "flops", "gpu_hours"}
    assert data["cost"]["accelerator"] and data["cost"]["gpu_hours"] > 0
    assert not (tmp_path / "empty-hf-home").exists()


def _plan_offline(tmp_path, monkeypatch, leaderboard: str, *options: str) -> dict:
    """`xlt plan leaderboards/<leaderboard> --json`, offline, with an empty Hugging Face cache."""
    from pathlib import Path

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grid = Path(__file__).parent.parent / "leaderboards" / leaderboard
    result = CliRunner().invoke(
        app, ["plan", str(grid), "--json", *options, "--workdir", str(tmp_path / "w")]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_bad_x_leaderboard_plans_offline_with_the_papers_sharing(tmp_path, monkeypatch):
    """`xlt plan leaderboards/bad-x --json`, offline and without weights: MAD-X trains 1 English LA
    and 20 target LAs (POS and DP share theirs), BAD-X 100 BAs (20 pairs x 5 ratios), the
    multilingual adapter one per language set; counts as in the papers (±1%)."""
    pieces = _plan_offline(tmp_path, monkeypatch, "bad-x")["pieces"]

    def of(method, kind):
        return [p for p in pieces if p["method"] == method and p["kind"] == kind]

    las = of("mad-x", "language-adapter")
    assert len(las) == 21 and sum(p["languages"] == ["en"] for p in las) == 1
    english = next(p for p in las if p["languages"] == ["en"])
    assert english["used_by_cells"] == 30  # every task and every target
    ud_la = next(p for p in las if p["languages"] == ["wo"])
    assert ud_la["used_by_cells"] == 2  # POS and DP
    bas = of("bad-x", "bilingual-adapter")
    assert len(bas) == 100 and len({(tuple(p["languages"]), json.dumps(p["params"])) for p in bas}) == 100
    mas = of("multilingual-adapter", "multilingual-adapter")
    assert sorted(len(p["languages"]) for p in mas) == [11, 11]
    for piece in las + bas + mas:
        assert piece["trainable_params"] == pytest.approx(7.39e6, rel=0.01)
    pos_ta = next(p for p in of("mad-x", "task-adapter") if p["task"] == "pos")
    assert pos_ta["trainable_params"] - 13_073 == pytest.approx(0.89e6, rel=0.01)  # TA + UPOS head


def test_hyper_x_leaderboard_plans_offline_at_the_papers_sizes(tmp_path, monkeypatch):
    """Hyper-X Table 3: base (d_p 192) 76M and small (d_p 32) 13M trainable parameters on mBERT."""
    from pathlib import Path

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grid = Path(__file__).parent.parent / "leaderboards" / "hyper-x"
    only = ["--only", "setting=zero-shot", "--only", "task=pos"]  # the sizes do not depend on the cell
    result = CliRunner().invoke(app, ["plan", str(grid), "--json", *only, "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    methods = json.loads(result.stdout)["methods"]
    assert methods["hyper-x:base"]["trainable_params"] == pytest.approx(76e6, rel=0.02)
    assert methods["hyper-x:small"]["trainable_params"] == pytest.approx(13e6, rel=0.04)
    # deployed, both are mBERT plus the generated 256-bottleneck adapter and the head (as MAD-X's LA 256)
    assert (
        methods["hyper-x:base"]["extra_params"]
        == methods["hyper-x:small"]["extra_params"]
        == 4_730_880 + 13_073
    )


def test_hyper_x_plan_json_mixed_pieces_once_english_in_both_few_shot_on_five(tmp_path, monkeypatch):
    """`xlt plan leaderboards/hyper-x --json`: each mixed piece once (Hyper-X base and multi-task share
    a partition's hypernetwork, so do small and small-multi-task; full-ft has one multi-task model per
    partition), English trained in both partitions and never a mixed target, few-shot only on the
    five languages of Appendix D / Table 5."""
    from collections import Counter

    summary = _plan_offline(tmp_path, monkeypatch, "hyper-x")
    mixed_cells = [c for c in summary["cells"] if c["setting"] == "mixed"]
    assert mixed_cells and all(c["target_language"] != "en" for c in mixed_cells)
    assert all(c["source_languages"][0] == "en" for c in mixed_cells)
    few_shot = {c["target_language"] for c in summary["cells"] if c["setting"] == "few-shot"}
    assert few_shot == {"ar", "tr", "zh", "mt", "ug"}

    def trained_for_mixed(piece) -> bool:  # trains on other languages than the source
        if piece["kind"] in ("hypernetwork", "multi-task-model"):
            return any(langs != ["en"] for _, langs in piece["params"]["pairs"])
        return piece["kind"] == "task-adapter" and piece["languages"] != ["en"]

    mixed = [p for p in summary["pieces"] if trained_for_mixed(p)]
    kinds = Counter((p["method"], p["kind"]) for p in mixed)
    assert kinds == {
        ("hyper-x", "hypernetwork"): 4,  # 2 partitions x (d_p 192, d_p 32)
        ("full-ft", "multi-task-model"): 2,  # one model per partition
        ("mad-x", "task-adapter"): 4,  # MAD-X MS: per partition and task
    }
    for piece in mixed:
        if piece["kind"] != "task-adapter":  # both tasks, English first in each (Table 6: en^{a,b})
            assert [task for task, _ in piece["params"]["pairs"]] == ["ner", "pos"]
            assert all(langs[0] == "en" for _, langs in piece["params"]["pairs"])
    cells = Counter((c["variant"], c["partition"]) for c in mixed_cells if c["method"] == "hyper-x")
    shared_by = sorted(
        cells[(one, part)] + cells[(other, part)]
        for one, other in (("base", "multi-task"), ("small", "small-multi-task"))
        for part in ("A", "B")
    )
    assert sorted(p["used_by_cells"] for p in mixed if p["kind"] == "hypernetwork") == shared_by


def test_mad_g_leaderboard_plans_offline_with_one_generator_per_variant(tmp_path, monkeypatch):
    """`xlt plan leaderboards/mad-g --json`, offline and without weights: each MAD-G variant's
    generator is one piece that every cell of the variant shares (MAD-G-ft finetunes the adapters
    the default generator generates, so the two share it; MAD-G-LS has its own), and every target
    is in exactly one of the paper's three genus groups."""
    from collections import Counter
    from pathlib import Path

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = Path(__file__).parent.parent / "leaderboards" / "mad-g"
    result = CliRunner().invoke(app, ["plan", str(folder), "--json", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    grid = load_grid(folder, tmp_path / "w")
    train_languages = next(s for s in grid.methods if s.name == "mad-g").overrides["train_languages"]

    cells = Counter(c["variant"] for c in summary["cells"] if c["method"] == "mad-g")
    per_variant = 2 * len(grid.target_languages)  # POS and DP, every target
    assert cells == {"default": per_variant, "ls": per_variant, "ft": per_variant}
    generators = [p for p in summary["pieces"] if p["method"] == "mad-g" and p["kind"] == "generator"]
    assert len(generators) == 2
    assert all(p["languages"] == train_languages for p in generators)
    by_layer_sharing = {p["params"]["layer_shared"]: p for p in generators}
    assert by_layer_sharing[True]["used_by_cells"] == cells["ls"]
    assert by_layer_sharing[False]["used_by_cells"] == cells["default"] + cells["ft"]
    # the generated adapters all hang off a generator; none is trained on its own
    adapters = [p for p in summary["pieces"] if p["method"] == "mad-g" and p["kind"] == "language-adapter"]
    generator_keys = {p["key"] for p in generators}
    assert adapters and all(set(p["needs"]) & generator_keys for p in adapters)

    assert list(grid.groups) == ["mad-g-seen", "mbert-genus", "mad-g-genus", "unseen-genus"]
    for target in grid.target_languages:
        assert len(grid.group_of(target)) == 1, (target, grid.group_of(target))
    assert sum(len(members) for members in grid.groups.values()) == len(grid.target_languages)
    # MAD-G-seen: exactly the targets among the generator's training languages, as in the paper
    assert set(grid.groups["mad-g-seen"]) == set(grid.target_languages) & set(train_languages)
    assert "olo" in grid.target_languages  # URIEL has Livvi's vector


# The authors' generator languages: adapter-hub/CPGAdapters, src/transformers/adapter_config.py,
# UrielCpgConfig.languages (98 languages, in their order)
CPG_LANGUAGES = """en ceb vi ja arz zh ko fi tr eu ce ka th ta ht sw qu mn nv nci ab ay gn atj fr km ha new
    hu tt lez xmf shn te yo bxr kbd ru war sat kab my mrj uz av lo tcy nso xal fa id so bo se cv lbe za ml sn
    hy ms ar nan myv sah inh kn zu el min om kv azb ln la mg he wuu et kk ig cy tl am cdo mhr ug rw sq jv mt
    hak smn tyv kbp sv su ary""".split()


def test_mad_g_leaderboard_plans_the_authors_98_language_generator(tmp_path, monkeypatch):
    """`xlt plan leaderboards/mad-g`, offline: the generator trains on CPGAdapters' 98 languages, each
    with a URIEL typology vector and MLM text in the grid (Wikipedia)."""
    from pathlib import Path

    from xltransfer import languages

    summary = _plan_offline(tmp_path, monkeypatch, "mad-g", "--only", "method=mad-g")
    generators = [p for p in summary["pieces"] if p["kind"] == "generator"]
    assert len(generators) == 2 and all(p["languages"] == CPG_LANGUAGES for p in generators)
    grid = load_grid(Path(__file__).parent.parent / "leaderboards" / "mad-g", tmp_path / "w")
    assert len(languages.typology_vectors(CPG_LANGUAGES)) == 98
    mlm = grid.source_for("mlm")
    configs = {lang: mlm.source(lang).config.format(lang=lang) for lang in CPG_LANGUAGES}
    assert configs["nan"] == "20231101.zh-min-nan" and configs["ar"] == "20231101.ar"
    assert all(mlm.source(lang).split_names == {"train": "train"} for lang in CPG_LANGUAGES)


# Baziotis et al. 2022: base model and extra parameters (millions), Table 1 (Transformer-Base, bottleneck
# 128) and Table 2 (Transformer-Big, bottleneck 256)
HYPER_ADAPTER_TABLES = {
    "grid.yaml": {
        "full-ft": 90,
        "lang-adapters": 81,
        "pair-adapters": 159,
        "hyper-adapters:tiny": 14,
        "hyper-adapters:small": 27,
        "hyper-adapters:base": 83,
    },
    "grid-big.yaml": {
        "full-ft": 269,
        "lang-adapters": 323,
        "pair-adapters": 633,
        "hyper-adapters:tiny": 54,
        "hyper-adapters:small": 108,
        "hyper-adapters:base": 325,
    },
}


@pytest.mark.parametrize("grid_file", sorted(HYPER_ADAPTER_TABLES))
def test_hyper_adapters_leaderboard_plans_offline_with_the_papers_parameter_counts(
    grid_file, tmp_path, monkeypatch
):
    """`xlt plan leaderboards/hyper-adapters`, offline: ML50 (51 languages, 100 directions) with the
    paper's model sizes; the base model and every method's added parameters within 3% of its tables."""
    from pathlib import Path

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grid = Path(__file__).parent.parent / "leaderboards" / "hyper-adapters" / grid_file
    result = CliRunner().invoke(app, ["plan", str(grid), "--json", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["cells"]) == 6 * 100  # six methods, 50 languages to and from English
    languages = {lang for c in summary["cells"] for lang in (*c["source_languages"], c["target_language"])}
    assert len(languages) == 51
    methods = summary["methods"]
    table = HYPER_ADAPTER_TABLES[grid_file]
    assert methods["full-ft"]["base_params"] / 1e6 == pytest.approx(table["full-ft"], rel=0.03)
    for method, millions in table.items():
        if method != "full-ft":
            assert methods[method]["added_params"] / 1e6 == pytest.approx(millions, rel=0.03), method
    # at test time every variant deploys the same adapters: one block per layer for one direction
    assert len({m["extra_params"] for name, m in methods.items() if name != "full-ft"}) == 1
    # one vocabulary for all methods; one model per method, shared by its 100 direction cells
    kinds = [p["kind"] for p in summary["pieces"]]
    assert kinds.count("vocabulary") == 1 and kinds.count("translation-model") == 6


MBERT_ENCODER = 12 * (4 * 768 * 768 + 2 * 768 * 3072)  # the weight matrices a token passes through


def test_cost_model_prices_a_step_from_the_architecture(mbert_summary):
    """FLOPs per step: 6 per trained and 4 per frozen weight per token, attention 3 x 4·s·d per layer,
    the MLM head at masked positions only; steps x FLOPs on the reference accelerator."""
    from xltransfer import cost
    from xltransfer.backbone import PRESETS

    assert cost.dense_parameters(PRESETS["mbert"].transformers_config()) == MBERT_ENCODER
    tokens, attention = 64 * 128, 3 * 4 * 128 * 768 * 12
    head = 0.15 * (768 * 768 + 768 * 119547)
    for la in _pieces(mbert_summary, "language-adapter"):
        frozen = 4 * (MBERT_ENCODER + head)
        trained = 6 * la["trainable_params"]
        assert la["flops_per_step"] == pytest.approx(tokens * (trained + frozen + attention))
        assert la["steps"] == 25_000 and la["flops"] == pytest.approx(la["steps"] * la["flops_per_step"])
        assert la["gpu_hours"] == pytest.approx(la["flops"] / (312e12 * 0.40) / 3600)
    # full fine-tuning trains the encoder: its steps cost more than a task adapter's on the same batch
    full = _pieces(mbert_summary, "finetuned-model")[0]
    assert full["flops_per_step"] == pytest.approx(
        32 * 128 * (6 * (MBERT_ENCODER + full["trainable_params"] - 177_853_440) + attention)
    )
    ta = _pieces(mbert_summary, "task-adapter")[0]
    per_example = full["flops_per_step"] / 32, ta["flops_per_step"] / 8
    assert 1.3 < per_example[0] / per_example[1] < 1.6


def test_epochs_become_steps_from_data_on_disk_and_few_shot_steps_from_k(tmp_path, shared_data):
    """full-ft trains 20 epochs: on a local treebank the plan counts its sentences (Turkish-IMST train:
    3,435, batch 32: 20 x 108 steps); few-shot pieces take fs_epochs x ceil(k / batch) steps."""
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        textwrap.dedent(MBERT_GRID.format(ud=shared_data / "ud")) + "settings: [few-shot]\nshots: [10, 50]\n"
    )
    workspace = Workspace.at(tmp_path / "work")
    summary = plan_summary(build_plan(load_grid(grid_file, workspace.root)), workspace)
    full = _pieces(summary, "finetuned-model")[0]
    assert (full["steps"], full["steps_from"]) == (20 * 108, "data")
    few = {p["shots"]: p for p in _pieces(summary, "few-shot-model")}
    assert {k: p["steps"] for k, p in few.items()} == {10: 50, 50: 100}  # batch 32, 50 epochs
    few_ta = {p["shots"]: p["steps"] for p in _pieces(summary, "few-shot-task-adapter")}
    assert few_ta == {10: 50 * 2, 50: 50 * 7}  # batch 8
    assert summary["cost"]["uncosted_pieces"] == 0 and summary["methods"]["full-ft"]["gpu_hours"] > 0


def test_plan_prints_a_grouped_summary_with_gpu_hours_and_lists_pieces_when_verbose(tmp_path, shared_data):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        textwrap.dedent(MBERT_GRID.format(ud=shared_data / "ud")) + "settings: [few-shot]\nshots: [10, 50]\n"
    )
    work = ["--workdir", str(tmp_path / "w")]
    result = CliRunner().invoke(app, ["plan", str(grid_file), *work])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) <= 40
    assert any(line.startswith("mad-x:no-inv ") and "language-adapter" in line for line in lines)
    assert any(line.startswith("estimated compute: ") and "GPU-hours in all" in line for line in lines)
    assert any(line.startswith("assumptions: GPU-hours on an NVIDIA A100") for line in lines)
    assert "few-shot-model" in result.stdout and " 50 " not in result.stdout  # no per-piece rows

    only = ["--only", "method=full-ft"]
    verbose = CliRunner().invoke(app, ["plan", str(grid_file), "--verbose", *only, *work])
    assert verbose.exit_code == 0, verbose.output
    rows = [line.split() for line in verbose.stdout.splitlines() if line.startswith("full-ft ")]
    few_shot = [row for row in rows if row[1] == "few-shot-model" and len(row) == 11]  # not the summary
    # method, kind, task, languages, seed, k: one row per piece
    assert sorted((row[2], row[3], row[4], row[5]) for row in few_shot) == [
        ("pos", lang, "1", k) for lang in ("mt", "ug") for k in ("10", "50")
    ]


def test_plan_warns_when_only_matches_no_cell(tmp_path, shared_data):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(textwrap.dedent(MBERT_GRID.format(ud=shared_data / "ud")))
    result = CliRunner().invoke(
        app, ["plan", str(grid_file), "--only", "target=zz", "--workdir", str(tmp_path / "w")]
    )
    assert result.exit_code == 0
    assert "warning: --only target=zz matches none of the grid's 6 cells" in result.stderr
