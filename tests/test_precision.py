"""Precision: the grid's ``precision:`` field, fp32 on a CPU unchanged, bf16/fp16 autocast in the one loop."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import seeded_workdir, tiny_adapter_model, write_tiny_grid
from typer.testing import CliRunner

from xltransfer import precision
from xltransfer.cli import app
from xltransfer.errors import GridError
from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.train import Schedule, Stream, fit
from xltransfer.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from reference_loop import hand_written_fit  # noqa: E402


@pytest.mark.parametrize(
    ("value", "message"),
    [("bf32", "unknown precision 'bf32'"), (16, "must be one of auto, fp32, bf16, fp16")],
)
def test_precision_field_is_validated_with_its_name(tmp_path, value, message):
    grid_file = write_tiny_grid(tmp_path / "g", extra=f"precision: {value}\n")
    with pytest.raises(GridError, match="field 'precision'") as error:
        load_grid(grid_file, tmp_path / "w")
    assert message in str(error.value) and str(grid_file) in str(error.value)
    result = CliRunner().invoke(app, ["plan", str(grid_file), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "precision" in result.output


def test_auto_is_fp32_on_a_cpu_and_a_named_precision_keys_the_pieces(tmp_path):
    assert precision.resolve("auto", "cpu") == precision.Precision("fp32", "cpu")
    assert precision.resolve("bf16", "cpu").dtype_name == "bfloat16"
    keys = {}
    for value in ("auto", "fp32", "bf16"):
        extra = "" if value == "auto" else f"precision: {value}\n"
        grid = load_grid(write_tiny_grid(tmp_path / value, extra=extra), tmp_path / "w")
        keys[value] = set(build_plan(grid).pieces)
    assert keys["auto"] != keys["bf16"] and keys["fp32"] != keys["bf16"]
    assert not keys["auto"] & keys["bf16"]  # no bf16 piece is ever served to an fp32 grid


def _tagging_batches(vocab_size: int, seed: int, count: int = 6):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        ids = torch.randint(5, vocab_size, (4, 9), generator=generator)
        yield {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids % 3}


def _tiny_tagger(tmp_path, name: str):
    model = tiny_adapter_model(tmp_path / name, vocab_size=50, seed=7)
    model.add_tagging_head("tags", num_labels=3)
    model.active_head = "tags"
    return model


def _loss(model, batch):
    return model(**batch).loss


def test_fit_in_fp32_on_a_cpu_is_bit_for_bit_a_plain_pytorch_loop(tmp_path):
    """The harness's loop with the run's precision fp32 trains exactly what a hand-written AdamW loop
    trains (same seed, dropout, schedule, clipping): nothing of the accelerator path touches a CPU run."""
    schedule = Schedule(6, 4, 1e-3, eval_every=100, warmup_steps=2)
    ours, reference = _tiny_tagger(tmp_path, "a"), _tiny_tagger(tmp_path, "b")
    with precision.using(precision.resolve("auto", "cpu")):
        fit(ours, [Stream("x", _tagging_batches(50, 1), _loss)], schedule, seed=3)
    hand_written_fit(reference, _loss, _tagging_batches(50, 1), 6, 1e-3, schedule.factor, seed=3)
    theirs = dict(reference.named_parameters())
    changed = 0
    for name, param in ours.named_parameters():
        assert torch.equal(param, theirs[name]), name
        changed += int(not torch.equal(param, _tiny_tagger(tmp_path, "c").state_dict()[name]))
    assert changed > 10  # the comparison is between trained weights, not two untouched models


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_fit_runs_the_loss_under_autocast_in_mixed_precision(tmp_path, name):
    model = _tiny_tagger(tmp_path, "m")
    seen = []

    query = next(module for module in model.modules() if isinstance(module, torch.nn.Linear))
    query.register_forward_hook(
        lambda _m, _i, out: seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
    )

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with precision.using(precision.Precision(name, "cpu")):
        result = fit(model, [Stream("x", _tagging_batches(50, 1), _loss)], Schedule(3, 4, 1e-3, 100))
    low = torch.bfloat16 if name == "bf16" else torch.float16
    assert seen == [(True, low)] * 3 and result.steps == 3
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert precision.current().name == "fp32"  # the block restored the default


STACKED = "la_batch_size: 8, la_eval_every: 2, ta_steps: 2, ta_batch_size: 8, ta_eval_every: 2"
EVERY_NLU_METHOD = f"""methods:
  - majority
  - {{name: full-ft, params: {{epochs: 0.05, batch_size: 16}}}}
  - {{name: mad-x, params: {{la_steps: 2, {STACKED}}}}}
  - {{name: bad-x, params: {{ba_steps: 2, {STACKED}}}}}
  - {{name: multilingual-adapter, params: {{ma_steps: 2, {STACKED}}}}}
  - {{name: mad-g, variants: [ls], params: {{train_languages: [qaa, qab], generator_steps: 2, {STACKED}}}}}
  - name: hyper-x
    params: {{steps: 2, batch_size: 8, warmup_steps: 1, eval_every: 2, embedding_dim: 8,
             projector_hidden: 16, bottleneck: 16}}
"""

EVERY_MT_METHOD = """
name: mt-bf16
backbone: quickstart  # not built: the Transformer is trained from scratch
precision: bf16
device: cpu
synthetic: {seed: 3, family_sizes: [3, 2], mt_train_sentences: 60, mt_dev_sentences: 4, mt_test_sentences: 4}
data: {mt: synthetic}
mt: {model: transformer-base, d_model: 32, layers: 1, ffn_dim: 64, heads: 2, vocab_size: 300}
methods:
  - {name: full-ft, params: &p {mt_steps: 2, mt_warmup_steps: 1, mt_batch_tokens: 400, mt_eval_every: 2}}
  - {name: lang-adapters, params: *p}
  - {name: pair-adapters, params: *p}
  - {name: hyper-adapters, variants: [tiny], params: *p}
tasks: [mt]
languages: {source: qaa, target: [qab]}
"""


def _run(grid_file: Path, workdir: Path):
    workspace = Workspace.at(workdir)
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    return plan, workspace


def test_bf16_autocast_on_a_cpu_trains_and_evaluates_every_method(tmp_path, tiny_prebuilt):
    """Every registered method takes its training steps and predicts under bf16 autocast on a CPU;
    records and stored pieces say bfloat16 (acceptance 3 of issue 13)."""
    grid_file = write_tiny_grid(
        tmp_path / "g",
        targets="[qab]",
        extra="precision: bf16\ndevice: cpu\n",
    )
    text = grid_file.read_text()
    grid_file.write_text(text[: text.index("methods:")] + EVERY_NLU_METHOD + text[text.index("tasks:") :])
    nlu_plan, nlu = _run(grid_file, seeded_workdir(tiny_prebuilt, tmp_path / "w"))
    mt_file = tmp_path / "mt" / "grid.yaml"
    mt_file.parent.mkdir()
    mt_file.write_text(EVERY_MT_METHOD)
    mt_plan, mt = _run(mt_file, tmp_path / "w-mt")

    from xltransfer import registry

    methods = set()
    for plan, workspace in ((nlu_plan, nlu), (mt_plan, mt)):
        records = workspace.results.records(status="ok")
        assert records and {r["dtype"] for r in records} == {"bfloat16"}
        methods |= {r["method"] for r in records}
        for key, planned in plan.pieces.items():
            if not planned.piece.task_owned:
                assert workspace.artifacts.info(key)["dtype"] == "bfloat16", planned.piece.label
    assert methods == set(registry.methods.names())
