"""Every NLU task trains and evaluates end to end with full-ft and MAD-X, zero-shot and few-shot:
on the synthetic suite (all tasks generated there) and on the real samples of ../shared/data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import seeded_workdir, write_tiny_grid

from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.workspace import Workspace

NLU_TASKS = ("pos", "dp", "ner", "nli")
MAIN_METRIC = {"pos": "accuracy", "dp": "las", "ner": "f1", "nli": "accuracy"}
ADAPTER_BUDGET = (
    "la_batch_size: 16, la_learning_rate: 1.0e-3, la_eval_every: 20, ta_steps: 60, ta_batch_size: 16,\n"
    "             ta_learning_rate: 1.0e-3, ta_eval_every: 30, nli_ta_epochs: 2.0, nli_ta_batch_size: 16,\n"
    "             nli_ta_learning_rate: 1.0e-3, nli_ta_eval_every: 30"
)
# BAD-X and the multilingual adapter beside the tiny grid's full-ft and MAD-X
MORE_METHODS = f"""  - name: bad-x
    params: {{ba_steps: 40, {ADAPTER_BUDGET}}}
  - name: multilingual-adapter
    params: {{ma_steps: 40, {ADAPTER_BUDGET}}}
"""
ALL_METHODS = ("full-ft", "mad-x", "bad-x", "multilingual-adapter")


def _with_every_method(grid_file: Path, tasks: tuple[str, ...]) -> None:
    text = grid_file.read_text().replace("tasks: [pos]", f"tasks: [{', '.join(tasks)}]")
    text = text.replace("  - majority\n", "").replace("tasks:", MORE_METHODS + "tasks:", 1)
    sources = ", ".join(f"{task}: synthetic" for task in (*tasks, "mlm"))
    grid_file.write_text(text.replace("data: {pos: synthetic, mlm: synthetic}", f"data: {{{sources}}}"))


def _run(grid_file: Path, workdir: Path):
    workspace = Workspace.at(workdir)
    grid = load_grid(grid_file, workspace.root)
    cells = [c for c in grid.cells() if c.method != "majority"]
    summary = run_local(build_plan(grid, cells), workspace, SilentProgress())
    return workspace, summary, cells


def test_synthetic_suite_all_nlu_tasks(tmp_path, tiny_workdir):
    grid_file = write_tiny_grid(
        tmp_path / "g",
        targets="[qab]",
        extra="settings: [zero-shot, few-shot]\nshots: [4]\n",
    )
    _with_every_method(grid_file, NLU_TASKS)
    workspace, summary, cells = _run(grid_file, tiny_workdir)
    assert not summary.failures, summary.failures
    records = workspace.results.records(status="ok")
    got = {(r["method"], r["task"], r["setting"]) for r in records if r["metric"] == MAIN_METRIC[r["task"]]}
    assert got == {(m, t, s) for m in ALL_METHODS for t in NLU_TASKS for s in ("zero-shot", "few-shot")}
    # one language adapter per language serves all four tasks and both settings; so does a BA per pair
    plan = build_plan(load_grid(grid_file, workspace.root), cells)
    las = [p.piece.languages for p in plan.pieces.values() if p.piece.kind == "language-adapter"]
    assert sorted(las) == [("qaa",), ("qab",)]
    bas = [p.piece.languages for p in plan.pieces.values() if p.piece.kind == "bilingual-adapter"]
    assert bas == [("qaa", "qab")]
    assert summary.counters["pieces_trained"] == len(plan.pieces)


def test_synthetic_suite_mixed_setting_every_method(tmp_path, tiny_workdir):
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab, qad]", extra="settings: [mixed]\n")
    _with_every_method(grid_file, ("pos", "ner"))
    workspace, summary, _ = _run(grid_file, tiny_workdir)
    assert not summary.failures, summary.failures
    records = workspace.results.records(status="ok")
    got = {(r["method"], r["task"], r["partition"]) for r in records if r["metric"] == MAIN_METRIC[r["task"]]}
    assert got == {(m, t, part) for m in ALL_METHODS for t in ("pos", "ner") for part in ("A", "B")}


def _text_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def real_backbone(tmp_path_factory, shared_data):
    """A tiny BERT with a WordPiece vocabulary trained on the shared data's text (random weights:
    these tests check that real formats flow through training and scoring, not accuracy)."""
    from transformers import BertConfig, BertForMaskedLM

    from xltransfer.data.ud import read_conllu
    from xltransfer.pretrain import train_wordpiece

    folder = tmp_path_factory.mktemp("real-bert")
    corpus = []
    for path in sorted((shared_data / "ud").glob("*/*-train.conllu")):
        corpus += [" ".join(s.words) for s in read_conllu(path)]
    tokenizer = train_wordpiece(corpus, vocab_size=3000, model_max_length=256)
    config = BertConfig(
        vocab_size=3000,
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        max_position_embeddings=256,
    )
    BertForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_real_samples_all_nlu_tasks(tmp_path, shared_data, real_backbone):
    ud, ner, nli = (
        shared_data / "ud",
        shared_data / "ner" / "wikiann_panx",
        shared_data / "nli" / "americasnli",
    )
    texts = {}
    for lang in ("sw", "yo"):  # MLM text for the NER languages: their sentences
        tokens = [
            line.split()[0]
            for line in (ner / {"sw": "swa", "yo": "yor"}[lang] / "train.txt").read_text().splitlines()
            if line.strip()
        ]
        texts[lang] = _text_file(
            tmp_path / f"{lang}.txt", [" ".join(tokens[i : i + 12]) for i in range(0, len(tokens), 12)]
        )
    for lang in ("ay", "gn"):
        path = nli / "dev" / ("aym.tsv" if lang == "ay" else "gn.tsv")
        texts[lang] = _text_file(
            tmp_path / f"{lang}.txt", [line.split("\t")[2] for line in path.read_text().splitlines()[1:]]
        )
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        textwrap.dedent(f"""
        name: real-samples
        backbone: {real_backbone}
        max_length: 96
        data:
          pos: {{type: ud, root: {ud}, treebanks: {{tr: UD_Turkish-IMST, mt: UD_Maltese-MUDT}}}}
          dp: {{type: ud, root: {ud}, treebanks: {{tr: UD_Turkish-IMST, mt: UD_Maltese-MUDT}}}}
          ner: {{type: files, files: {{sw: {{train: {ner}/swa/train.txt, dev: {ner}/swa/dev.txt}},
                                        yo: {{train: {ner}/yor/train.txt, test: {ner}/yor/test.txt}}}}}}
          nli: {{type: files, files: {{ay: {{train: {nli}/dev/aym.tsv}}, gn: {{train: {nli}/dev/gn.tsv,
                                        test: {nli}/test/gn.tsv}}}}}}
          mlm:
            type: files
            files:
              tr: {{train: {ud}/UD_Turkish-IMST/tr_imst-ud-train.conllu}}
              mt: {{train: {ud}/UD_Maltese-MUDT/mt_mudt-ud-train.conllu}}
              sw: {{train: {texts["sw"]}}}
              yo: {{train: {texts["yo"]}}}
              ay: {{train: {texts["ay"]}}}
              gn: {{train: {texts["gn"]}}}
        methods:
          - name: full-ft
            params: {{epochs: 0.05, batch_size: 16, learning_rate: 1.0e-3, fs_epochs: 2}}
          - name: mad-x
            params: {{la_steps: 10, la_batch_size: 16, la_eval_every: 10, ta_steps: 10, ta_batch_size: 16,
                      ta_eval_every: 10, fs_epochs: 2}}
        tasks: [pos, dp]
        settings: [zero-shot, few-shot]
        shots: [5]
        languages: {{source: tr, target: [mt]}}
    """)
    )
    workspace, summary, _ = _run(grid_file, tmp_path / "w")
    assert not summary.failures, summary.failures
    # NER and NLI on their own language pairs
    for task, source, target in (("ner", "sw", "yo"), ("nli", "ay", "gn")):
        text = grid_file.read_text().replace("tasks: [pos, dp]", f"tasks: [{task}]")
        text = text.replace(
            "languages: {source: tr, target: [mt]}", f"languages: {{source: {source}, target: [{target}]}}"
        )
        text = text.replace("name: real-samples", f"name: real-{task}")
        other = tmp_path / f"grid-{task}.yaml"
        other.write_text(text)
        _, task_summary, _ = _run(other, tmp_path / "w")
        assert not task_summary.failures, task_summary.failures
    records = workspace.results.records(status="ok")
    got = {(r["method"], r["task"], r["setting"]) for r in records if r["metric"] == MAIN_METRIC[r["task"]]}
    assert got == {
        (m, t, s) for m in ("full-ft", "mad-x") for t in NLU_TASKS for s in ("zero-shot", "few-shot")
    }


# -- machine translation: the whole encoder–decoder, trained from a grid ----------------------------------

# A recipe that leaves the language-model plateau on any machine: each step sums four batches of one
# direction each (both directions in most steps); one direction per step, the same model only began
# to translate after ~650 steps, on some machines only after the 700 it had (summation order decides)
SYNTHETIC_MT_GRID = """
    name: mt-synthetic
    backbone: quickstart  # not built: a Transformer trained from scratch needs no encoder
    synthetic: {{seed: 3, family_sizes: [3, 2], mt_train_sentences: 1000, mt_dev_sentences: 40,
                mt_test_sentences: 40}}
    data: {{mt: synthetic}}
    mt: {{model: transformer-base, d_model: 64, layers: 2, ffn_dim: 128, heads: 4, vocab_size: 400}}
    methods:
      - name: full-ft
        params: {{mt_steps: 500, mt_learning_rate: 5.0e-3, mt_warmup_steps: 100, mt_batch_tokens: 1200,
                 mt_batches_per_step: 2, mt_eval_every: 500}}
    tasks: [mt]
    languages: {{source: qaa, target: [qab]}}
    seeds: [{seed}]
"""


def _mt_grid(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    grid_file = folder / "grid.yaml"
    grid_file.write_text(textwrap.dedent(SYNTHETIC_MT_GRID.format(seed=seed)))
    return grid_file


@pytest.fixture(scope="module")
def mt_prebuilt(tmp_path_factory) -> Path:
    """The grid's synthetic suite and subword vocabulary (the same for every seed), built once."""
    from xltransfer.context import RunContext
    from xltransfer.execute.cells import ensure_piece

    root = tmp_path_factory.mktemp("mt-prebuilt")
    workspace = Workspace.at(root / "w")
    plan = build_plan(load_grid(_mt_grid(root / "g", seed=1), workspace.root))
    ctx = RunContext(plan, workspace)
    ctx.prepare()
    (vocabulary,) = [k for k, p in plan.pieces.items() if p.piece.kind == "vocabulary"]
    ensure_piece(ctx, vocabulary)
    return workspace.root


@pytest.mark.parametrize(("seed", "threads"), [(1, 1), (2, 2)])
def test_synthetic_mt_full_ft_trains_one_model_for_both_directions(tmp_path, mt_prebuilt, seed, threads):
    """The model translates whatever the seed and the thread count (float sums in another order)."""
    import torch

    grid_file = _mt_grid(tmp_path / "g", seed)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        workspace, summary, cells = _run(grid_file, seeded_workdir(mt_prebuilt, tmp_path / "w"))
    finally:
        torch.set_num_threads(before)
    assert not summary.failures, summary.failures
    assert {(c.source_languages, c.target_language) for c in cells} == {(("qaa",), "qab"), (("qab",), "qaa")}
    plan = build_plan(load_grid(grid_file, workspace.root), cells)
    kinds = sorted(p.piece.kind for p in plan.pieces.values())
    assert kinds == ["translation-model", "vocabulary"]  # one vocabulary, one model: shared by both cells
    assert summary.counters["pieces_trained"] == 1  # the model (the vocabulary was there already)
    assert len(list(workspace.artifacts.root.glob("*/*/info.json"))) == 2  # the vocabulary and the model
    assert not list(workspace.artifacts.root.glob("backbone-*"))  # no backbone was pretrained
    records = workspace.results.records(status="ok")
    scores = {(r["source_languages"][0], r["metric"]): r for r in records}
    for direction in ("qaa", "qab"):
        bleu, chrf = scores[(direction, "bleu")], scores[(direction, "chrf")]
        # a model that learned nothing scores ~0 BLEU on these 40 sentences; this one translates
        assert bleu["value"] > 8 and chrf["value"] > 35, (
            seed,
            threads,
            direction,
            bleu["value"],
            chrf["value"],
        )
        assert bleu["extra"]["convergence"] == {"converged": True, "flagged": {}}
        assert bleu["extra"]["signatures"]["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
        assert "chrf" in chrf["extra"]["signatures"]
        # the record's trainable parameters are the stored model's, which `xlt plan` predicted
        model_key = next(k for k, p in plan.pieces.items() if p.piece.kind == "translation-model")
        assert bleu["trainable_params"] == plan.piece_parameters(model_key)


def test_real_pud_mt_with_an_mbert_style_encoder_decoder(tmp_path, shared_data, real_backbone):
    """PUD's parallel sentences (English-German) through a BERT2BERT model from a local encoder."""
    pud = shared_data / "mt" / "pud"
    files = {}
    for lang in ("en", "de"):
        lines = (pud / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
        files[lang] = {
            "train": _text_file(tmp_path / f"train.{lang}.txt", lines[:300]),
            "test": _text_file(tmp_path / f"test.{lang}.txt", lines[-12:]),
        }
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        textwrap.dedent(f"""
        name: real-mt
        backbone: {real_backbone}
        max_length: 96
        data:
          mt: {{type: files, files: {{en: {{train: {files["en"]["train"]}, test: {files["en"]["test"]}}},
                                      de: {{train: {files["de"]["train"]}, test: {files["de"]["test"]}}}}}}}
        mt: {{model: bert2bert, both_ways: false}}
        methods:
          - name: full-ft
            params: {{mt_steps: 8, mt_learning_rate: 1.0e-3, mt_warmup_steps: 2, mt_batch_tokens: 800,
                      mt_batches_per_step: 2, mt_eval_every: 8}}
        tasks: [mt]
        languages: {{source: en, target: [de]}}
    """)
    )
    workspace, summary, cells = _run(grid_file, tmp_path / "w")
    assert not summary.failures, summary.failures
    assert [(c.source_languages, c.target_language) for c in cells] == [(("en",), "de")]
    records = {r["metric"]: r for r in workspace.results.records(status="ok")}
    assert set(records) == {"bleu", "chrf"}
    assert records["bleu"]["extra"]["test_examples"] == 12
    assert 0 <= records["chrf"]["value"] <= 100
