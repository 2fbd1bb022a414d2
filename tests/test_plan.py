"""`xlt plan`: parameter counts from architecture presets, without weights; shared pieces once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import write_tiny_grid
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


# an LA trains mBERT's MLM head transform (768² + 768, LayerNorm 2 x 768) and output bias (119,547)
MBERT_MLM_HEAD = 768 * 768 + 768 + 2 * 768 + 119_547


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
    pieces = _pieces(mbert_summary, "language-adapter")
    las = {p["key"]: p["trainable_params"] - MBERT_MLM_HEAD for p in pieces}
    la_256 = [n for n in las.values() if n < 5e6]
    assert la_256 and all(abs(n - 4.73e6) / 4.73e6 < 0.01 for n in la_256)
    ta = _pieces(mbert_summary, "task-adapter")
    head = 768 * 17 + 17  # the UPOS tagging head, trained with the task adapter
    assert ta and all(abs(p["trainable_params"] - head - 0.89e6) / 0.89e6 < 0.02 for p in ta)
    full = _pieces(mbert_summary, "finetuned-model")
    assert len(full) == 1 and abs(full[0]["trainable_params"] - 177.9e6) / 177.9e6 < 0.001
    # MAD-X default: reduction factor 2 with the invertible adapter, ~7.39M per language (issue 4 figure)
    la_default = [n for n in las.values() if n > 5e6]
    assert la_default and all(abs(n - 7.39e6) / 7.39e6 < 0.01 for n in la_default)
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
        "shares_pieces_with",
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
        assert piece["trainable_params"] - MBERT_MLM_HEAD == pytest.approx(7.39e6, rel=0.01)
    pos_ta = next(p for p in of("mad-x", "task-adapter") if p["task"] == "pos")
    assert pos_ta["trainable_params"] - 13_073 == pytest.approx(0.89e6, rel=0.01)  # TA + UPOS head
    # the authors' DP filter and NLI length (hgiyt, parovicm/badx run_anli.py) key their tasks' TAs only
    for ta in of("mad-x", "task-adapter") + of("bad-x", "task-adapter"):
        assert ta["params"].get("dp_ta_drop_subwords") == (254 if ta["task"] == "dp" else None)
        assert ta["params"].get("nli_ta_max_length") == (128 if ta["task"] == "nli" else None)


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
    # the MLM head trains with the hypernetwork (ahmetustun/hyperx train.py), beside Table 3's count
    assert methods["hyper-x:base"]["trainable_params"] - MBERT_MLM_HEAD == pytest.approx(76e6, rel=0.02)
    assert methods["hyper-x:small"]["trainable_params"] - MBERT_MLM_HEAD == pytest.approx(13e6, rel=0.04)
    # deployed, both are mBERT plus the generated 256-bottleneck adapter (as MAD-X's LA 256) with its
    # post-adapter LayerNorm (12 x 2 x 768, ahmetustun/hyperx default.sh) and the head
    assert (
        methods["hyper-x:base"]["extra_params"]
        == methods["hyper-x:small"]["extra_params"]
        == 4_730_880 + 12 * 2 * 768 + 13_073
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
    seeds = len({c["seed"] for c in summary["cells"]})
    assert seeds == 3  # the paper's tables average 3 runs
    assert kinds == {
        ("hyper-x", "hypernetwork"): 4 * seeds,  # 2 partitions x (d_p 192, d_p 32), per seed
        ("full-ft", "multi-task-model"): 2 * seeds,  # one model per partition
        ("mad-x", "task-adapter"): 4 * seeds,  # MAD-X MS: per partition and task
    }
    for piece in mixed:
        if piece["kind"] != "task-adapter":  # both tasks, English first in each (Table 6: en^{a,b})
            assert [task for task, _ in piece["params"]["pairs"]] == ["ner", "pos"]
            assert all(langs[0] == "en" for _, langs in piece["params"]["pairs"])
    cells = Counter(
        (c["variant"], c["partition"], c["seed"]) for c in mixed_cells if c["method"] == "hyper-x"
    )
    shared_by = sorted(
        cells[(one, part, seed)] + cells[(other, part, seed)]
        for one, other in (("base", "multi-task"), ("small", "small-multi-task"))
        for part in ("A", "B")
        for seed in (1, 2, 3)
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
        # selection: before step 1, every 500 steps and after the last, on the held-out text (the UD
        # dev split here, read from disk), forward only: 2 per weight per token and attention once
        assert la["evaluations"] == 1 + 25_000 // 500
        per_token = 2 * (la["trainable_params"] + MBERT_ENCODER + head) + 4 * 128 * 768 * 12
        assert la["eval_flops"] == pytest.approx(la["evaluations"] * la["eval_examples"] * 128 * per_token)
        if la["languages"] == ["tr"]:
            assert la["eval_examples"] == 1_100  # UD_Turkish-IMST's dev sentences
        assert la["gpu_hours"] == pytest.approx((la["flops"] + la["eval_flops"]) / (312e12 * 0.40) / 3600)
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


@pytest.mark.parametrize("leaderboard", ["mad-g", "bad-x"])
def test_paper_plans_count_selection_evaluations_and_data_preparation(leaderboard, tmp_path, monkeypatch):
    """Issue 19, acceptance 3: the papers' grids read whole Wikipedias from the hub; their estimate
    counts the selection passes over held-out text at its cap (10,000 sentences per language, every
    500 steps; MAD-G's generator and MAD-G-ft's adapters after their last step only, as CPGAdapters
    selects nothing) and the corpora's tokenisation, and the assumptions line says so."""
    from xltransfer import cost
    from xltransfer.data import corpus

    summary = _plan_offline(tmp_path, monkeypatch, leaderboard)
    total = summary["cost"]
    assert "selection passes" in total["assumptions"] and "Data preparation" in total["assumptions"]
    assert f"{corpus.HELD_OUT_CAP:,} sentences per language" in total["assumptions"]
    assert 0 < total["eval_gpu_hours"] < total["gpu_hours"]
    assert total["data_prep_tokens"] > 0 and total["data_prep_cpu_hours"] > 0
    language_side = [p for p in summary["pieces"] if p["task"] == "mlm" and p["steps"]]
    assert language_side
    for piece in language_side:  # hub text: the held-out set is at its cap for each language
        assert piece["eval_examples"] == corpus.HELD_OUT_CAP * len(piece["languages"])
        every = piece["steps"] if piece["method"].startswith("mad-g") else 500
        assert piece["evaluations"] == cost.evaluation_passes(piece["steps"], every)
        assert piece["eval_flops"] > 0
        assert piece["gpu_hours"] == pytest.approx(cost.gpu_hours(piece["flops"] + piece["eval_flops"]))
    if leaderboard == "mad-g":  # one generator over 98 languages: step 0 and its last, 98 x 10K sentences
        (generator, *_) = [p for p in language_side if p["kind"] == "generator"]
        assert generator["evaluations"] == 2 and len(generator["languages"]) == 98
    # and the text of `xlt plan` says it in its totals line
    grid = Path(__file__).parent.parent / "leaderboards" / leaderboard
    text = CliRunner().invoke(app, ["plan", str(grid), "--workdir", str(tmp_path / "w")])
    assert text.exit_code == 0, text.output
    (line,) = [line for line in text.stdout.splitlines() if line.startswith("estimated compute: ")]
    assert "selection evaluations" in line and "data preparation" in line and "CPU-hours" in line


def test_calibrate_times_real_steps_of_each_piece_kind_on_this_device(tmp_path, tiny_grid, monkeypatch):
    """Issue 19: `xlt plan GRID --calibrate` (on CPU here) times optimiser steps of each (method, kind)
    on random weights of the grid's architecture, set up by the method, at its batch and max_length,
    and prints measured seconds per step x planned steps beside the FLOP-based estimate."""
    import torch

    from xltransfer import calibrate

    optimiser_steps: list[int] = []
    original = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        optimiser_steps.append(sum(p.numel() for group in self.param_groups for p in group["params"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    work = ["--workdir", str(tmp_path / "w")]
    result = CliRunner().invoke(app, ["plan", str(tiny_grid), "--calibrate", "--json", *work])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["calibration"]["device"].startswith("cpu")
    groups = {(g["method"], g["kind"]): g for g in summary["calibration"]["groups"]}
    assert set(groups) == {
        ("mad-x", "language-adapter"),
        ("mad-x", "task-adapter"),
        ("full-ft", "finetuned-model"),
    }
    for g in groups.values():
        assert g["seconds_per_step"] > 0 and g["reason"] is None
    la = groups[("mad-x", "language-adapter")]
    las = [p for p in summary["pieces"] if p["kind"] == "language-adapter"]
    assert la["pieces"] == len(las) and la["steps"] == sum(p["steps"] for p in las) == 3 * 40
    assert la["measured_hours"] == pytest.approx(la["seconds_per_step"] * la["steps"] / 3600)
    assert la["estimated_gpu_hours"] == pytest.approx(sum(p["gpu_hours"] for p in las))
    # every group took its warm-up and timed steps, each on the trainable parameters the plan counts
    per_group = calibrate.WARMUP_STEPS + calibrate.TIMED_STEPS
    assert len(optimiser_steps) == per_group * len(groups)
    trainable = {(p["method_label"], p["kind"]): p["trainable_params"] for p in summary["pieces"]}
    expected = [trainable[key] for key in groups for _ in range(per_group)]
    assert optimiser_steps == expected

    text = CliRunner().invoke(app, ["plan", str(tiny_grid), "--calibrate", *work])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert any(line.strip().startswith("calibrated on cpu") for line in lines)
    header = next(line for line in lines if "s/step" in line)
    assert "measured h" in header and "estimated GPU-h" in header
    assert any(line.startswith("mad-x") and "language-adapter" in line and "120" in line for line in lines)


def test_plan_of_mad_x_and_mad_x_2_has_two_task_adapters_per_source_and_shares_the_las(tmp_path, shared_data):
    """MAD-X 2.0 trains its own task adapter (leave_out [11], parovicm/badx run_udp.py); before, its
    cells reused the default variant's TA and the plan listed one TA per source."""
    grid_file = tmp_path / "grid.yaml"
    text = textwrap.dedent(MBERT_GRID.format(ud=shared_data / "ud"))
    methods = text[text.index("methods:") : text.index("tasks:")]
    grid_file.write_text(text.replace(methods, "methods:\n  - {name: mad-x, variants: [default, '2.0']}\n"))
    result = CliRunner().invoke(app, ["plan", str(grid_file), "--json", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    pieces = json.loads(result.stdout)["pieces"]
    task_adapters = [p for p in pieces if p["kind"] == "task-adapter"]
    assert [p["languages"] for p in task_adapters] == [["tr"], ["tr"]]
    assert len({p["key"] for p in task_adapters}) == 2
    language_adapters = [p for p in pieces if p["kind"] == "language-adapter"]
    assert sorted(lang for p in language_adapters for lang in p["languages"]) == ["mt", "tr", "ug"]


def test_plan_totals_say_what_they_leave_out_and_whose_pieces_a_method_counts(tmp_path):
    """The total names the pieces it could not cost (their rows say "+?"); a method variant whose
    cells reuse another's pieces (mad-x:2.0 reuses mad-x's language adapters) counts
    them in its per-cell trainable parameters, and the plan says so."""
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab]")
    text = grid_file.read_text().replace("- name: mad-x\n", "- name: mad-x\n    variants: [default, '2.0']\n")
    grid_file.write_text(text)
    result = CliRunner().invoke(app, ["plan", str(grid_file), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    summary = plan_summary(build_plan(load_grid(grid_file, tmp_path / "w")), Workspace.at(tmp_path / "w"))
    shared = summary["methods"]["mad-x:2.0"]
    assert shared["shares_pieces_with"] == ["mad-x"]
    # it shares mad-x's language adapters and trains its own task adapter without the last layer's
    # adapters (leave_out [11]): fewer trainable parameters per cell than mad-x, still counted in full
    assert 0 < shared["trainable_params"] < summary["methods"]["mad-x"]["trainable_params"]
    assert summary["methods"]["mad-x"]["shares_pieces_with"] == []
    assert "mad-x:2.0: trainable includes the pieces it shares with mad-x" in result.stdout
    uncosted = summary["cost"]["uncosted_pieces"]
    assert uncosted >= 1  # full-ft's epochs over a synthetic suite not generated yet
    assert f"GPU-hours in all, not counting {uncosted} piece(s) marked +?" in result.stdout
