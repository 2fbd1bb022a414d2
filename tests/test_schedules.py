"""Schedules from the papers: Hyper-X's baselines (§4.2: TAs and mBERT for 20 epochs, batch 32,
linear decay after 4,000 warm-up steps; LAs with batch 32) are expressible and set in its grid,
and MAD-X 2.0 drops the last layer's adapters at inference only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from adapters.composition import Stack
from transformers import BertConfig, BertForMaskedLM
from xltransfer.methods.full_ft import FullFineTuning
from xltransfer.methods.mad_x import MadX

from xltransfer import registry
from xltransfer.backbone import load_adapter_model
from xltransfer.cell import Cell
from xltransfer.grid import load_grid
from xltransfer.params import Params

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


class _Data:
    """Just enough of a run context for a schedule: the training sizes of the sources."""

    def __init__(self, sizes: dict[str, int], model=None):
        self.sizes = sizes
        self.model = model

    def training_examples(self, task: str, language: str) -> list:
        return [None] * self.sizes[language]

    examples = lambda self, task, language, split: self.training_examples(task, language)  # noqa: E731

    def task(self, name: str):
        return registry.tasks.get(name)()

    def new_model(self):
        return self.model


def _cell(method: MadX, task: str = "pos", sources: tuple[str, ...] = ("en",)) -> Cell:
    return Cell(method.name, method.variant, method.params, task, "zero-shot", sources, "tr", 1)


def test_task_adapters_train_for_epochs_with_warm_up():
    madx = MadX(
        "default",
        MadX.resolve_params("default", {"ta_epochs": 20, "ta_batch_size": 32, "ta_warmup_steps": 4000}),
    )
    piece = madx.task_adapter(_cell(madx, sources=("en", "de")))
    schedule = madx._ta_schedule(piece, _Data({"en": 12_543, "de": 1_000}))
    assert schedule.steps == 20 * -(-13_543 // 32) and schedule.batch_size == 32
    assert schedule.warmup_steps == 4000 and schedule.decay == "linear"
    assert schedule.factor(1999) == pytest.approx(0.5) and schedule.factor(schedule.steps - 1) < 1e-3
    assert madx.planned_steps(piece) is None  # known once the data is read
    # the BAD-X default is unchanged: 15k steps, no warm-up
    default = MadX()
    schedule = default._ta_schedule(default.task_adapter(_cell(default)), _Data({"en": 100}))
    assert (schedule.steps, schedule.warmup_steps) == (15_000, 0)


def test_full_finetuning_warms_up(monkeypatch, tmp_path):
    captured = {}

    def train_on_task(model, ctx, task, languages, schedule, seed, **kwargs):
        captured["schedule"] = schedule
        raise RuntimeError("captured")

    monkeypatch.setattr("xltransfer.methods.full_ft.train_on_task", train_on_task)
    method = FullFineTuning("default", FullFineTuning.resolve_params("default", {"warmup_steps": 4000}))
    piece = method.pieces(_cell(method))[0]
    with pytest.raises(RuntimeError, match="captured"):
        method.train(piece, _Data({"en": 320}, _tiny_model(tmp_path, layers=1)))
    assert captured["schedule"].warmup_steps == 4000
    assert captured["schedule"].steps == 20 * 10  # 20 epochs of 320 examples in batches of 32


def test_hyper_x_grid_trains_its_baselines_as_the_paper():
    grid = load_grid(LEADERBOARDS / "hyper-x" / "grid.yaml", Path("/nonexistent-workdir"))
    params = {
        spec.name: registry.methods.get(spec.name).resolve_params(spec.variant, spec.overrides)
        for spec in grid.methods
        if spec.name in ("full-ft", "mad-x")
    }
    assert {k: params["full-ft"][k] for k in ("epochs", "batch_size", "learning_rate", "warmup_steps")} == {
        "epochs": 20.0,
        "batch_size": 32,
        "learning_rate": 1e-5,
        "warmup_steps": 4000,
    }
    madx = params["mad-x"]
    assert (madx["ta_epochs"], madx["ta_batch_size"], madx["ta_learning_rate"], madx["ta_warmup_steps"]) == (
        20,
        32,
        1e-4,
        4000,
    )
    assert (madx["la_batch_size"], madx["la_steps"], madx["la_bottleneck"]) == (32, 100_000, 256)
    mlm = grid.source_for("mlm")
    assert {mlm.source(lang).max_sentences for lang in ("en", "yue", "mt")} == {100_000}


def _tiny_model(folder: Path, layers: int):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=32
    )
    BertForMaskedLM(config).save_pretrained(folder / f"bert{layers}")
    return load_adapter_model(folder / f"bert{layers}")


def test_mad_x_2_trains_every_layer_and_drops_the_last_at_inference(tmp_path):
    tasks = lambda name: registry.tasks.get(name)()  # noqa: E731
    madx2 = MadX("2.0")
    cell = _cell(madx2)
    la = madx2.language_adapter("en", 1)
    assert la == MadX().language_adapter("en", 1), "MAD-X 2.0 and MAD-X share their language adapters"

    trained = _tiny_model(tmp_path, layers=2)
    madx2.prepare_model(trained, la, tasks)
    layers = {
        int(n.split(".layer.")[1].split(".")[0])
        for n, p in trained.named_parameters()
        if p.requires_grad and ".layer." in n
    }
    assert layers == {0, 1}, "the LA is trained in every layer, the last included"

    ids = torch.randint(5, 60, (2, 7))
    outputs = {}
    for variant in ("default", "2.0"):
        method = MadX(variant)
        model = _tiny_model(tmp_path, layers=2)
        method.prepare_inference(model, _cell(method), tasks)
        model.eval()
        with torch.no_grad():
            for name, param in model.named_parameters():
                if ".adapters." in name:
                    param.normal_(0, 0.3)
            before = model(input_ids=ids).logits
            for name, param in model.named_parameters():
                if ".adapters." in name and ".layer.1." in name:  # the last layer's LA and TA
                    param.normal_(0, 0.3)
            outputs[variant] = (before, model(input_ids=ids).logits)
        assert isinstance(model.active_adapters, Stack)
    before, after = outputs["2.0"]
    torch.testing.assert_close(before, after)  # the last layer's adapters play no part
    before, after = outputs["default"]
    assert not torch.allclose(before, after)
    assert cell.params["drop_last_layer_at_inference"] and not MadX().params["drop_last_layer_at_inference"]


def test_mad_x_2_is_keyed_by_no_piece():
    """An inference-only parameter: the 2.0 cells reuse the default variant's LAs and TAs."""
    madx, madx2 = MadX(), MadX("2.0")
    assert madx.pieces(_cell(madx)) == madx2.pieces(_cell(madx2))
    assert Params(madx.params) != Params(madx2.params)  # but the cells (and records) differ
