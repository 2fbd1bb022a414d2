"""Schedules from the papers: Hyper-X's baselines (§4.2: TAs and mBERT for 20 epochs, batch 32,
linear decay after 4,000 warm-up steps; LAs with batch 32) are expressible and set in its grid,
and MAD-X 2.0 trains, selects and tests its task adapter without the last layer's adapters."""

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

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


class _Data:
    """Just enough of a run context for a schedule: the training sizes of the sources."""

    def __init__(self, sizes: dict[str, int], model=None):
        self.sizes = sizes
        self.model = model

    def training_examples(self, task: str, language: str, encoding=None) -> list:
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


def test_mad_g_keeps_its_last_generator_as_the_authors_do():
    """CPGAdapters trains the generator without an eval set and saves its last weights: by default
    MAD-G evaluates after the last step only (step 0 aside), however many steps a grid sets; a grid
    that sets la_eval_every selects as it says. MAD-X keeps BAD-X's selection every 500 steps."""
    from xltransfer.methods.mad_g import MadG

    languages = {"train_languages": ["en", "de"]}
    for overrides, every in [
        ({}, 50_000),
        ({"generator_steps": 120_000}, 120_000),
        ({"generator_steps": 200}, 200),
        ({"generator_steps": 200, "finetune": True}, 1000),  # MAD-G-ft's last finetuning step too
        ({"la_eval_every": 500}, 500),
    ]:
        params = MadG.resolve_params("default", {**languages, **overrides})
        assert params["la_eval_every"] == every, overrides
    generator = MadG("default", MadG.resolve_params("default", languages)).generator_piece(1)
    assert (
        MadG("default", MadG.resolve_params("default", languages)).planned_evaluations(generator, 50_000) == 2
    )
    assert MadX.resolve_params("default", {})["la_eval_every"] == 500


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


def _adapter_layers(model, trainable_only: bool = False) -> dict[str, set[int]]:
    """Per adapter name, the encoder layers it has parameters in."""
    layers: dict[str, set[int]] = {}
    for name, param in model.named_parameters():
        if ".adapters." in name and ".layer." in name and (param.requires_grad or not trainable_only):
            adapter = name.split(".adapters.")[1].split(".")[0]
            layers.setdefault(adapter, set()).add(int(name.split(".layer.")[1].split(".")[0]))
    return layers


def test_mad_x_2_trains_its_task_adapter_without_the_last_layers_adapters(tmp_path):
    """parovicm/badx run_udp.py (leave_out_twelvth): the 2.0 TA is trained, selected and tested with
    leave_out [11] for LA and TA; its LA is MAD-X's, trained in every layer. Before, the 2.0 TA was
    the default one (trained with the last layer's LA and TA) and only inference skipped the layer."""
    tasks = lambda name: registry.tasks.get(name)()  # noqa: E731
    madx, madx2 = MadX(), MadX("2.0")
    la = madx2.language_adapter("en", 1)
    assert la == madx.language_adapter("en", 1), "MAD-X 2.0 and MAD-X share their language adapters"
    ta, ta2 = madx.task_adapter(_cell(madx)), madx2.task_adapter(_cell(madx2))
    assert ta2 != ta and ta2.params["ta_leave_out_last_layer"], "the 2.0 TA is a piece of its own"

    model = _tiny_model(tmp_path, layers=2)
    madx2.prepare_model(model, la, tasks)
    assert _adapter_layers(model, trainable_only=True) == {"lang_en": {0, 1}}, "the LA: every layer"
    la_state = {n: p.detach().clone() for n, p in model.named_parameters() if ".lang_en." in n}

    model = _tiny_model(tmp_path, layers=2)
    madx2.prepare_model(model, ta2, tasks)
    assert _adapter_layers(model) == {"lang_en": {0}, "task_pos": {0}}, "training: no layer-2 adapters"
    assert _adapter_layers(model, trainable_only=True) == {"task_pos": {0}}

    model = _tiny_model(tmp_path, layers=2)
    madx.prepare_model(model, ta, tasks)
    assert _adapter_layers(model) == {"lang_en": {0, 1}, "task_pos": {0, 1}}, "the default TA: every layer"

    for method, layers in ((madx2, {0}), (madx, {0, 1})):
        model = _tiny_model(tmp_path, layers=2)
        cell = _cell(method)
        method.prepare_inference(model, cell, tasks)
        assert _adapter_layers(model) == {"lang_tr": layers, "task_pos": layers}, method.variant
        assert isinstance(model.active_adapters, Stack)
        # the LA trained in every layer loads into the inference model (less its last layer for 2.0)
        state = {n.replace(".lang_en.", ".lang_tr."): t for n, t in la_state.items()}
        from xltransfer.modules.adapters import load_states

        load_states(model, [method.deployed_state(cell, state)])


def test_a_language_adapter_trains_the_mlm_heads_transform_and_bias_with_it(tmp_path):
    """parovicm/badx run_bi_mlm.py and adapters' run_mlm.py freeze the encoder only: the MLM head's
    transform and output bias train with the LA (its output weights are the frozen, tied input
    embeddings); the LA piece keeps them. Before, the whole head was frozen."""
    from xltransfer.methods.bad_x import BadX
    from xltransfer.methods.mad_g import MadG

    tasks = lambda name: registry.tasks.get(name)()  # noqa: E731
    for method in (MadX(), BadX()):
        model = _tiny_model(tmp_path, layers=2)
        piece = method.pieces(_cell(method))[0]
        method.prepare_model(model, piece, tasks)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad and n.startswith("heads.")}
        head = model.heads["default"]
        tied = model.get_input_embeddings().weight
        transform = {
            f"heads.default.{n}" for n, p in head.named_parameters() if p.dim() == 2 and p is not tied
        }
        assert transform and transform <= trainable, "the head's transform trains"
        biases = [p for n, p in model.named_parameters() if n in trainable and n.endswith(".bias")]
        assert any(p.numel() == 60 for p in biases), "the output bias (one per vocabulary entry) trains"
        assert not model.get_input_embeddings().weight.requires_grad, "tied output weights stay frozen"
        state = method._mlm_state(model, method.adapter_name(piece))
        assert {n for n in state if n.startswith("heads.")} == trainable
    madg = MadG("default", MadG.resolve_params("default", {"train_languages": ["en", "tr"]}))
    assert not madg.params["la_train_mlm_head"]  # MAD-G trains its generator only (§3)


def test_hyper_x_generates_a_post_adapter_layer_norm_and_trains_the_mlm_head(tmp_path):
    """ahmetustun/hyperx scripts/default.sh: --add_layer_norm_after_adapter --conditional_layer_norm
    (a LayerNorm on each adapter's output, its weights generated), and train.py freezes the encoder
    only, so the MLM head trains. Before, neither."""
    from xltransfer.methods.hyper_x import SLOT, HyperX

    from xltransfer.modules import generator as gen

    tasks = lambda name: registry.tasks.get(name)()  # noqa: E731
    hyperx = HyperX()
    (piece,) = hyperx.pieces(
        Cell(hyperx.name, "default", hyperx.params, "pos", "zero-shot", ("en",), "tr", 1)
    )
    model = _tiny_model(tmp_path, layers=2)
    hyperx.prepare_model(model, piece, tasks)
    generated = gen.adapter_parameters(model, SLOT)
    norms = [name for name in generated if "adapter_norm_after" in name]
    assert len(norms) == 2 * 2 and set(model.hyperx.weights.names) == set(generated)
    assert not any(generated[name].requires_grad for name in norms), "generated, not trained"
    head = {n for n, p in model.named_parameters() if p.requires_grad and n.startswith("heads.default.")}
    assert "heads.default.0.weight" in head and "heads.default.3.bias" in head
    assert not model.get_input_embeddings().weight.requires_grad


def test_the_nli_head_can_be_the_frozen_pretrained_pooler_and_one_linear_layer(tmp_path):
    """parovicm/badx run_anli.py classifies with the encoder's pretrained pooler (frozen) and one
    linear layer (``nli_ta_pooler``, set in the bad-x grid); the default stays a two-layer head."""
    tasks = lambda name: registry.tasks.get(name)()  # noqa: E731
    for pooler, linear_layers in ((True, 1), (False, 2)):
        madx = MadX("default", MadX.resolve_params("default", {"nli_ta_pooler": pooler}))
        model = _tiny_model(tmp_path, layers=2)
        madx.prepare_model(model, madx.task_adapter(_cell(madx, task="nli")), tasks)
        head = model.heads["task_nli"]
        assert head.config["use_pooler"] is pooler
        assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == linear_layers
        assert all(p.requires_grad for p in head.parameters())
        assert not any(p.requires_grad for p in model.base_model.pooler.parameters())


def test_a_task_adapter_trains_on_its_methods_encoding(monkeypatch, tmp_path):
    """The authors' NLI length and DP filter (``nli_ta_max_length``, ``dp_ta_drop_subwords``) reach
    the training loop: a stacked method hands its task's encoding to train_on_task (which encodes
    the training and selection data with it); POS keeps the grid's."""
    from xltransfer.task import GRID_ENCODING, Encoding

    captured = {}

    def train_on_task(model, ctx, task, languages, schedule, seed, *args, **kwargs):
        captured[task] = kwargs.get("encoding")
        raise RuntimeError("captured")

    class _Loaded(_Data):
        def load_state(self, piece):
            return {}

    monkeypatch.setattr("xltransfer.methods.stacked.train_on_task", train_on_task)
    authors = MadX(
        "default", MadX.resolve_params("default", {"nli_ta_max_length": 128, "dp_ta_drop_subwords": 254})
    )
    for task in ("nli", "dp", "pos"):
        with pytest.raises(RuntimeError, match="captured"):
            authors.train(
                authors.task_adapter(_cell(authors, task)), _Loaded({"en": 64}, _tiny_model(tmp_path, 1))
            )
    assert captured == {
        "nli": Encoding(max_length=128),
        "dp": Encoding(drop_subwords=254),
        "pos": GRID_ENCODING,
    }


def test_a_cell_is_tested_at_its_methods_nli_length(monkeypatch, tmp_path):
    """run_anli.py evaluates at max_seq_length 128 too: under ``nli_ta_max_length`` the test set is
    encoded at 128, by default at the grid's max_length."""
    lengths = []

    class _Predicting(_Data):
        grid = load_grid(LEADERBOARDS / "bad-x" / "grid.yaml", tmp_path / "w")  # max_length 256

        def new_model(self, task=None, seed=0, params=None):
            return self.model

        def load_state(self, piece):
            return {}

        def tokenizer_for(self, task):
            return None

        device = torch.device("cpu")

    monkeypatch.setattr(
        registry.tasks.get("nli"),
        "encode",
        lambda self, examples, tokenizer, max_length: lengths.append(max_length) or [],
    )
    for params, length in (({}, 256), ({"nli_ta_max_length": 128}, 128)):
        method = MadX("default", MadX.resolve_params("default", params))
        assert method.predict(_cell(method, "nli"), [], _Predicting({}, _tiny_model(tmp_path, 1))) == []
        assert lengths[-1] == length
