"""Generated adapters: a generator trained through a real ``adapters`` adapter slot, generation
once per condition at inference, and MAD-G giving an adapter to a language it never saw."""

from __future__ import annotations

import pytest
import torch
from adapters.composition import Stack
from conftest import seeded_workdir, tiny_adapter_model, write_tiny_grid

from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.modules import adapters as ad
from xltransfer.modules import generator as gen
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.workspace import Workspace


@pytest.fixture
def slot_model(tmp_path):
    model = tiny_adapter_model(tmp_path / "bert", vocab_size=50)
    ad.add_bottleneck_adapter(model, "slot", reduction_factor=4.0)
    model.active_adapters = Stack("slot")
    ad.train_only(model)
    return model


def _generator(model, shared_layers=False):
    shapes = {n: p.shape for n, p in gen.adapter_parameters(model, "slot").items()}
    torch.manual_seed(0)
    return gen.WeightGenerator(shapes, condition_dim=6, shared_layers=shared_layers, layer_dim=3)


def _hidden(model, input_ids):
    return model.base_model(input_ids=input_ids).last_hidden_state


@pytest.mark.parametrize("shared_layers", [False, True])
def test_gradients_reach_the_generator_and_not_the_encoder(slot_model, shared_layers):
    generator = _generator(slot_model, shared_layers)
    weights = generator(torch.randn(6))
    assert set(weights) == set(gen.adapter_parameters(slot_model, "slot"))
    ids = torch.randint(5, 50, (2, 7))
    loss = gen.call_with(slot_model, weights, _hidden, ids).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert all(p.grad is None for p in slot_model.parameters())


def test_generated_once_per_condition_and_cached_weights_equal_fresh_ones(slot_model):
    generator = _generator(slot_model)
    conditions = {"xx": torch.randn(6), "yy": torch.randn(6)}
    cache = gen.GeneratedWeights(lambda c: generator(conditions[c]))
    ids = torch.randint(5, 50, (3, 9))
    slot_model.eval()
    for condition in ("xx", "yy", "xx", "yy", "xx"):
        gen.install(slot_model, cache.get(condition))
        with torch.no_grad():
            cached = _hidden(slot_model, ids)
            fresh = gen.call_with(slot_model, generator(conditions[condition]), _hidden, ids)
        torch.testing.assert_close(cached, fresh)
    assert cache.generations == 2  # one per condition, however often each is used
    with torch.no_grad():  # and the two conditions do give different adapters
        gen.install(slot_model, cache.get("yy"))
        assert not torch.allclose(_hidden(slot_model, ids), cached)


MAD_G = """methods:
  - name: mad-g
    variants: [default, ls]
    params: {train_languages: [qaa, qab], generator_steps: 30, la_batch_size: 16, la_learning_rate: 1.0e-3,
             la_eval_every: 15, ta_steps: 40, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 40}
"""


def test_mad_g_generates_an_adapter_for_a_language_it_never_trained_on(tmp_path, tiny_prebuilt):
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab, qac]")
    text = grid_file.read_text()
    grid_file.write_text(text[: text.index("methods:")] + MAD_G + text[text.index("tasks:") :])
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, tmp_path / "w"))
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    records = [r for r in workspace.results.records(status="ok") if r["metric"] == "accuracy"]
    seen = {(r["variant"], r["target_language"]): r["extra"]["target_in_generator_training"] for r in records}
    assert seen == {
        ("default", "qab"): True,
        ("default", "qac"): False,
        ("ls", "qab"): True,
        ("ls", "qac"): False,
    }
    generators = [k for k, p in plan.pieces.items() if p.piece.kind == "generator"]
    assert len(generators) == 2  # one per variant, each shared by both targets
    for key in generators:  # what `xlt plan` promised is what was trained
        assert workspace.artifacts.info(key)["trainable_params"] == plan.piece_parameters(key)
    unseen = next(
        workspace.artifacts.info(k)
        for k, p in plan.pieces.items()
        if p.piece.kind == "language-adapter" and p.piece.languages == ("qac",)
    )
    assert unseen["generated"] and unseen["dev_perplexity"] > 1

    # export: the unseen language's adapter as a plain `adapters` folder, loaded without xltransfer
    from adapters import AutoAdapterModel
    from typer.testing import CliRunner

    from xltransfer.cli import app
    from xltransfer.context import RunContext

    out = tmp_path / "exported-qac"
    result = CliRunner().invoke(
        app,
        [
            "export",
            str(grid_file),
            "--method",
            "mad-g:ls",
            "--language",
            "qac",
            "--out",
            str(out),
            "--workdir",
            str(workspace.root),
        ],
    )
    assert result.exit_code == 0, result.output
    # a real language on a grid of synthetic languages: its typology is not the generator's space
    refused = CliRunner().invoke(
        app,
        ["export", str(grid_file), "--method", "mad-g", "--language", "zu", "--out", str(tmp_path / "zu")]
        + ["--workdir", str(workspace.root)],
    )
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1 and "--language zu" in refused.output
    ctx = RunContext(plan, workspace)
    fresh = AutoAdapterModel.from_pretrained(ctx.backbone_dir)
    assert (out / "adapter.safetensors").is_file() and not list(out.glob("*.bin"))  # no pickles
    name = fresh.load_adapter(str(out), use_safetensors=True)
    fresh.active_adapters = Stack(name)
    ours = ctx.new_model()
    method = next(m for m in plan.methods.values() if m.variant == "ls")
    adapter = method.generated_adapter("qac", 1, finetune=False)
    ad.add_bottleneck_adapter(ours, name, reduction_factor=64 / 48)
    ad.load_states(ours, [ctx.artifacts.load_state(plan.key_of(adapter))])
    ours.active_adapters = Stack(name)
    ids = torch.randint(5, 1500, (2, 11))
    fresh.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(_hidden(fresh, ids), _hidden(ours, ids))


HYPER_X = """methods:
  - name: hyper-x
    variants: [default, typology]
    params: {steps: 30, batch_size: 16, learning_rate: 1.0e-3, warmup_steps: 5, eval_every: 30, fs_epochs: 2,
             embedding_dim: 8, projector_hidden: 24, bottleneck: 16}
"""


def test_hyper_x_generates_adapters_for_task_language_pairs_it_never_trained(tmp_path, tiny_prebuilt):
    """Trained on POS of qaa and MLM of qaa and qab, tested on POS of qab (an unseen pair), also few-shot;
    the adapter for a pair is generated once at prediction."""
    grid_file = write_tiny_grid(
        tmp_path / "g", targets="[qab]", extra="settings: [zero-shot, few-shot]\nshots: [4]\n"
    )
    text = grid_file.read_text()
    grid_file.write_text(text[: text.index("methods:")] + HYPER_X + text[text.index("tasks:") :])
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, tmp_path / "w"))
    plan = build_plan(load_grid(grid_file, workspace.root))
    calls = []
    original = gen.install

    def counting_install(model, weights):
        calls.append(1)
        return original(model, weights)

    gen.install = counting_install
    try:
        summary = run_local(plan, workspace, SilentProgress())
    finally:
        gen.install = original
    assert not summary.failures, summary.failures
    records = [r for r in workspace.results.records(status="ok") if r["metric"] == "accuracy"]
    assert {(r["variant"], r["setting"], r["extra"]["task_language_pair_trained"]) for r in records} == {
        (v, s, s == "few-shot") for v in ("default", "typology") for s in ("zero-shot", "few-shot")
    }
    hypernetworks = [k for k, p in plan.pieces.items() if p.piece.kind == "hypernetwork"]
    for key in hypernetworks:
        info = workspace.artifacts.info(key)
        assert info["trainable_params"] == plan.piece_parameters(key)
        assert set(info["batches_per_stream"]) <= {"pos/qaa", "mlm/qaa", "mlm/qab"}
        assert info["batches_per_stream"].get("pos/qaa", 0) > 0
    # one generation per prediction run, not per batch: each cell's target, each zero-shot model's
    # source sanity test (shared by its few-shot cells), each dev evaluation while training
    dev_checks = sum(len(workspace.artifacts.info(k)["history"]) for k in hypernetworks)
    assert len(calls) == len(records) + len(hypernetworks) + dev_checks


def test_hyper_x_multi_task_trains_one_hypernetwork_for_every_task(tmp_path, tiny_prebuilt):
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab]")
    text = grid_file.read_text().replace("tasks: [pos]", "tasks: [pos, ner]")
    text = text.replace(
        "data: {pos: synthetic, mlm: synthetic}", "data: {pos: synthetic, ner: synthetic, mlm: synthetic}"
    )
    methods = HYPER_X.replace("variants: [default, typology]", "variants: [default]").replace(
        "bottleneck: 16}", "bottleneck: 16, multi_task: true}"
    )
    grid_file.write_text(text[: text.index("methods:")] + methods + text[text.index("tasks:") :])
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, tmp_path / "w"))
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    (key,) = [k for k, p in plan.pieces.items() if p.piece.kind == "hypernetwork"]
    assert all(plan.cell_pieces[c.cell_id] == [key] for c in plan.cells)  # POS and NER cells share it
    streams = workspace.artifacts.info(key)["batches_per_stream"]
    assert streams.get("pos/qaa", 0) > 0 and streams.get("ner/qaa", 0) > 0
    assert {r["task"] for r in workspace.results.records(status="ok")} == {"pos", "ner"}


def test_hyper_x_export_gives_a_plain_model_the_pairs_outputs(tmp_path, tiny_prebuilt):
    """`xlt export --task pos`: the adapter generated for (pos, qab) with its head as an `adapters`
    folder, plus the LayerNorms trained with the hypernetwork, give a plain backbone the same logits
    as the project's own model for that pair; missing or unknown inputs are clear errors (exit 2)."""
    from adapters import AutoAdapterModel
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from xltransfer.cli import app
    from xltransfer.context import RunContext

    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab]")
    text = grid_file.read_text()
    methods = HYPER_X.replace("variants: [default, typology]", "variants: [default]")
    grid_file.write_text(text[: text.index("methods:")] + methods + text[text.index("tasks:") :])
    workspace = Workspace.at(seeded_workdir(tiny_prebuilt, tmp_path / "w"))
    out = tmp_path / "exported-pos-qab"

    def export(*options: str):
        args = ["export", str(grid_file), "--method", "hyper-x", "--out", str(out), *options]
        return CliRunner().invoke(app, [*args, "--workdir", str(workspace.root)])

    not_yet = export("--task", "pos", "--language", "qab")
    assert not_yet.exit_code == 2 and "not trained yet" in not_yet.output, not_yet.output
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    no_task = export("--language", "qab")
    assert no_task.exit_code == 2 and "--task" in no_task.output and "(one of pos)" in no_task.output
    other_task = export("--task", "ner", "--language", "qab")
    assert other_task.exit_code == 2 and "not a task of this grid (pos)" in other_task.output
    no_embedding = export("--task", "pos", "--language", "qac")
    assert no_embedding.exit_code == 2 and "no embedding for 'qac'" in no_embedding.output
    assert not out.exists()

    result = export("--task", "pos", "--language", "qab")
    assert result.exit_code == 0, result.output
    assert (out / "README.md").is_file()
    assert {"adapter.safetensors", "model_head.safetensors"} <= {p.name for p in out.iterdir()}
    assert not list(out.glob("*.bin"))  # safetensors only: nothing unpickled on load

    # the project's own forward pass for (pos, qab): the cell's model as Method.predict sets it up
    ctx = RunContext(plan, workspace)
    (cell,) = plan.cells
    method = plan.method_for(cell)
    ours = ctx.new_model(cell.task)
    method.prepare_inference(ours, cell, ctx.task)
    ad.load_states(ours, (ctx.load_state(p) for p in method.pieces(cell)))
    method.ready_for(ours, cell, ctx)

    fresh = AutoAdapterModel.from_pretrained(ctx.backbone_dir)
    name = fresh.load_adapter(str(out), use_safetensors=True)
    assert name == "hyperx_pos_qab"
    fresh.set_active_adapters(name)
    fresh.active_head = name
    ids = torch.randint(5, 1500, (2, 11))
    fresh.eval(), ours.eval()
    with torch.no_grad():
        expected = ours(input_ids=ids).logits
        without_norms = fresh(input_ids=ids).logits
        loaded = fresh.load_state_dict(load_file(out / "layer_norms.safetensors"), strict=False)
        assert loaded.unexpected_keys == []
        exported = fresh(input_ids=ids).logits
    torch.testing.assert_close(exported, expected)
    assert not torch.allclose(without_norms, expected)  # the trained LayerNorms are part of the adapter
