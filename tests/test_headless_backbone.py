"""A backbone saved without an MLM head (an encoder-only checkpoint, as sentence-transformers ship
BERTs: the MiniLM of bench/corpus_scale.py): language adapters train a new MLM head beside their
adapter, and the task adapter stacked on them loads the adapters alone; the other methods that train
by MLM (BAD-X, the multilingual adapter, MAD-G's generator, Hyper-X's MLM streams) do as well."""

from __future__ import annotations

import string
import textwrap

from conftest import character_tokenizer


def test_mlm_methods_train_and_score_on_a_backbone_without_an_mlm_head(tmp_path):
    from transformers import BertConfig, BertModel

    from xltransfer.execute.local import run_local
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.workspace import Workspace

    backbone = tmp_path / "encoder-only"
    backbone.mkdir()
    tokenizer = character_tokenizer([string.ascii_letters + string.digits + ".,"], backbone)
    tokenizer.save_pretrained(backbone)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256,
    )  # fmt: skip
    BertModel(config).save_pretrained(backbone)  # no MLM head in the checkpoint
    grid = tmp_path / "g" / "grid.yaml"
    grid.parent.mkdir()
    grid.write_text(
        textwrap.dedent(f"""
        backbone: {backbone}
        max_length: 64
        synthetic: {{seed: 3, family_sizes: [2], train_sentences: 60, dev_sentences: 20, test_sentences: 20,
                    text_sentences: 120}}
        data: {{pos: synthetic, mlm: synthetic}}
        methods:
          - name: mad-x
            params: {{la_steps: 4, la_batch_size: 4, la_eval_every: 4, ta_steps: 4, ta_batch_size: 8,
                     ta_eval_every: 4}}
          - name: bad-x
            params: {{ba_steps: 4, la_batch_size: 4, la_eval_every: 4, ta_steps: 4, ta_batch_size: 8,
                     ta_eval_every: 4}}
          - name: multilingual-adapter
            params: {{ma_steps: 4, la_batch_size: 4, la_eval_every: 4, ta_steps: 4, ta_batch_size: 8,
                     ta_eval_every: 4}}
          - name: mad-g
            params: {{train_languages: [qaa, qab], generator_steps: 4, la_batch_size: 4, la_eval_every: 4,
                     ta_steps: 4, ta_batch_size: 8, ta_eval_every: 4}}
          - name: hyper-x
            params: {{steps: 4, batch_size: 4, warmup_steps: 1, eval_every: 4}}
        tasks: [pos]
        languages: {{source: qaa, target: [qab]}}
        """)
    )
    workspace = Workspace.at(tmp_path / "w")
    summary = run_local(build_plan(load_grid(grid, workspace.root)), workspace, SilentProgress())
    assert not summary.failures, summary.failures
    records = workspace.results.records(status="ok", metric="accuracy")
    assert {r["method"] for r in records} == {"mad-x", "bad-x", "multilingual-adapter", "mad-g", "hyper-x"}
    assert all(0.0 <= r["value"] <= 1.0 for r in records)
