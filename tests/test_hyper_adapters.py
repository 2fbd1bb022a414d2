"""NMT hyper-adapters and their baselines on a tiny translation model: the rescaling fix, generation
once per direction at inference, adapters in the right place, gradients to the hyper-network."""

from __future__ import annotations

import pytest
import torch
from xltransfer.methods.hyper_adapters import SLOT, HyperAdapters
from xltransfer.methods.translation_adapters import LanguageAdapters, PairAdapters

from xltransfer.cell import Piece
from xltransfer.modules import generator as gen
from xltransfer.modules import mt_adapters, seq2seq
from xltransfer.modules.hyper_adapters import HyperAdapterNetwork

DIRECTIONS = ("en>de", "en>nl", "de>en", "nl>en")


def _tiny_model(seed=0):
    config = seq2seq.transformer_config("transformer-base", 60, d_model=32, layers=2, ffn_dim=64, heads=4)
    return seq2seq.new_transformer(config, seed)


def _piece(method):
    return Piece(method.name, "translation-model", DIRECTIONS, "mt", method.params, 1)


def _logits(model, batch):
    return model(**batch).logits


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(4, 60, (3, 7), generator=generator),
        "attention_mask": torch.ones(3, 7, dtype=torch.long),
        "labels": torch.randint(4, 60, (3, 5), generator=generator),
    }


def _generated_std(hidden: int, rescale: bool) -> float:
    """The spread of generated down-projections at initialisation (Transformer-Base sizes)."""
    slots = [{role: f"{position}.{role}" for role in mt_adapters.ROLES} for position in range(12)]
    torch.manual_seed(0)
    network = HyperAdapterNetwork(["en", "de", "fr"], slots, 6, 512, 128, hidden, rescale=rescale)
    with torch.no_grad():
        weights = network(("de", "en"))
    return torch.stack([weights[f"{p}.down_weight"] for p in range(12)]).std().item()


def test_rescaling_keeps_the_generated_weights_spread_as_d_h_grows():
    """Baziotis et al. §3.1: without the fix the generated weights' spread grows with d_h; with
    1/sqrt(d_h) a base hyper-network (612) generates on the scale of a tiny one (102)."""
    fixed = {d: _generated_std(d, rescale=True) for d in (102, 204, 612)}
    unfixed = {d: _generated_std(d, rescale=False) for d in (102, 204, 612)}
    assert 0.5 < fixed[612] / fixed[102] < 2.0, fixed
    assert unfixed[102] < unfixed[204] < unfixed[612], unfixed
    assert unfixed[612] / unfixed[102] > 2.0, unfixed  # about sqrt(612/102) = 2.45


def _hyper_model(variant="tiny"):
    method = HyperAdapters(variant)
    model = _tiny_model()
    method.prepare_model(model, _piece(method), None)
    return method, model


def test_hyper_adapters_train_the_model_and_the_hyper_network_not_the_generated_blocks(batch):
    method, model = _hyper_model()
    slot = {
        id(p)
        for layer in sum(mt_adapters.layers(model).values(), [])
        for p in layer.xlt_adapters.parameters()
    }
    assert all(not p.requires_grad for n, p in model.named_parameters() if id(p) in slot)
    task = _MtLoss()
    loss = method.direction_loss(model, batch, "de>en", task)
    loss.backward()
    network = model.xlt_hypernetwork
    assert all(p.grad is not None for p in network.heads.parameters())
    assert network.language.weight.grad[network.language_id("de")].abs().sum() > 0
    assert network.language.weight.grad[network.language_id("nl")].abs().sum() == 0  # not in this batch
    assert model.model.encoder.layers[0].fc1.weight.grad is not None  # trained jointly


class _MtLoss:
    def loss(self, model, batch):
        return model(**batch).loss


def test_hyper_adapters_generate_once_per_direction_and_cached_weights_equal_fresh_ones(batch):
    _, model = _hyper_model()
    model.eval()
    network = model.xlt_hypernetwork
    with torch.no_grad():  # a trained-looking hyper-network: directions differ clearly
        for param in network.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    cache = gen.GeneratedWeights(network)
    outputs = {}
    for direction in (("de", "en"), ("nl", "en"), ("de", "en"), ("nl", "en"), ("de", "en")):
        gen.install(model, cache.get(direction))
        with torch.no_grad():
            cached = _logits(model, batch)
            fresh = gen.call_with(model, network(direction), _logits, batch)
        torch.testing.assert_close(cached, fresh)
        outputs.setdefault(direction, cached)
    assert cache.generations == 2  # once per direction
    assert not torch.allclose(outputs[("de", "en")], outputs[("nl", "en")])


class _Memo:
    """The part of a run context ``ready_for`` uses: a fresh memo, as a new process has."""

    def __init__(self):
        self.memo = {}

    def key_of(self, piece):
        return piece.label


def test_test_time_adapters_are_generated_with_the_hyper_network_in_eval_mode():
    """With dropout inside the hyper-network (Table 5: hn_dropout 0.2), the adapters installed for a
    direction are the same every time, though the model is still in train mode when they are."""
    from xltransfer.cell import Cell

    method = HyperAdapters("tiny", HyperAdapters.resolve_params("tiny", {"hn_dropout": 0.2}))
    cell = Cell(
        method.name, "tiny", method.params, "mt", "zero-shot", ("de",), "en", 1, directions=DIRECTIONS
    )
    model = _tiny_model()
    method.prepare_inference(model, cell, None)
    model.train()
    installed = []
    for _ in range(2):  # as two processes evaluating the cell (or its relatedness probe) would
        method.ready_for(model, cell, _Memo())
        installed.append({k: v.clone() for k, v in model.named_parameters() if f".blocks.{SLOT}." in k})
        assert model.xlt_hypernetwork.training  # left as it was
    assert installed[0] and all(torch.equal(installed[0][k], installed[1][k]) for k in installed[0])
    with torch.no_grad():  # the dropout is real: in train mode two generations differ
        network = model.xlt_hypernetwork
        assert not all(
            torch.equal(a, b)
            for a, b in zip(network(("de", "en")).values(), network(("de", "en")).values(), strict=True)
        )


def test_input_variants_mask_the_languages_each_side_does_not_see():
    """§6.4: "st-t" gives the decoder the same adapters for any source; "st-st" does not."""
    for inputs, decoder_depends_on_source in (("st-t", False), ("st-st", True), ("s-t", False)):
        method = HyperAdapters("default", HyperAdapters.resolve_params("tiny", {"hn_inputs": inputs}))
        model = _tiny_model()
        method.prepare_model(model, _piece(method), None)
        with torch.no_grad():
            one, other = model.xlt_hypernetwork(("de", "en")), model.xlt_hypernetwork(("nl", "en"))
        decoder = [n for n in one if ".decoder." in n]
        encoder = [n for n in one if ".encoder." in n]
        same_decoder = all(torch.equal(one[n], other[n]) for n in decoder)
        assert same_decoder is not decoder_depends_on_source, inputs
        assert not all(torch.equal(one[n], other[n]) for n in encoder)  # the source always counts there


@pytest.mark.parametrize(
    ("method_class", "encoder", "decoder"),
    [(LanguageAdapters, "lang_de", "lang_en"), (PairAdapters, "pair_de_en", "pair_de_en")],
)
def test_regular_adapters_sit_after_every_layer_and_switch_per_direction(
    method_class, encoder, decoder, batch
):
    method = method_class()
    model = _tiny_model()
    plain = _logits(model.eval(), batch)
    method.prepare_model(model, _piece(method), None)
    blocks = {
        side: [set(layer.xlt_adapters.blocks) for layer in layers]
        for side, layers in mt_adapters.layers(model).items()
    }
    if method_class is LanguageAdapters:
        assert blocks["encoder"][0] == {"lang_en", "lang_de", "lang_nl"} == blocks["decoder"][1]
    else:
        assert blocks["encoder"][1] == {f"pair_{d.replace('>', '_')}" for d in DIRECTIONS}
    method.activate_direction(model, "de>en")
    for side, name in (("encoder", encoder), ("decoder", decoder)):
        assert all(layer.xlt_adapters.active == name for layer in mt_adapters.layers(model)[side])
    with torch.no_grad():  # "bert" init: the block starts close to, not exactly at, the identity
        adapted = _logits(model.eval(), batch)
    assert not torch.equal(adapted, plain)
    # a cell's deployed model holds its direction's blocks only
    state = {n: p for n, p in model.state_dict().items()}
    cell = type("C", (), {"source_languages": ("de",), "target_language": "en"})()
    kept = {mt_adapters.block_of(n) for n in method.deployed_state(cell, state)} - {None}
    assert kept == {encoder, decoder}


def test_the_generated_block_has_the_regular_blocks_parameter_count():
    """Same architecture, same FLOPs: a generated block is an `adapters` bottleneck like theirs."""
    _, hyper = _hyper_model()
    lang = _tiny_model()
    LanguageAdapters().prepare_model(lang, _piece(LanguageAdapters()), None)
    layer = mt_adapters.layers(hyper)["encoder"][0].xlt_adapters
    other = mt_adapters.layers(lang)["encoder"][0].xlt_adapters
    count = sum(p.numel() for p in layer.blocks[SLOT].parameters())
    assert count == sum(p.numel() for p in other.blocks["lang_de"].parameters())
    assert count == 2 * 32 * 8 + 8 + 32 + 2 * 32  # down, up (bottleneck d/4), biases, LayerNorm


MT_GRID = """
name: mt-adapters
backbone: quickstart  # not built: the Transformer is trained from scratch
synthetic:
  {seed: 3, family_sizes: [3, 2], mt_train_sentences: 400, mt_dev_sentences: 8, mt_test_sentences: 8}
data: {mt: synthetic}
mt:
  {model: transformer-base, d_model: 32, layers: 1, ffn_dim: 64, heads: 2, vocab_size: 300,
   probe: {qab: {similar: qac, distant: qad}}}
methods:
  - {name: lang-adapters, params: &p {mt_steps: 40, mt_learning_rate: 5.0e-3, mt_warmup_steps: 10,
                                      mt_batch_tokens: 600, mt_batches_per_step: 2, mt_eval_every: 20}}
  - {name: pair-adapters, params: *p}
  - {name: hyper-adapters, variants: [tiny], params: *p}
tasks: [mt]
languages: {source: qaa, target: [qab, qac, qad]}
"""


def test_mt_adapter_methods_run_from_a_grid_with_the_relatedness_probe(tmp_path):
    """Every MT adapter method trains one model on the grid's six directions and is scored per
    direction; qab -> qaa is also translated with qac's and qad's modules; `xlt report` tables the
    probe and `xlt plan` predicted every stored model's size."""
    from typer.testing import CliRunner

    from xltransfer.cli import app
    from xltransfer.execute.local import run_local
    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan
    from xltransfer.progress import SilentProgress
    from xltransfer.workspace import Workspace

    grid_file = tmp_path / "g" / "grid.yaml"
    grid_file.parent.mkdir()
    grid_file.write_text(MT_GRID)
    workspace = Workspace.at(tmp_path / "w")
    plan = build_plan(load_grid(grid_file, workspace.root))
    summary = run_local(plan, workspace, SilentProgress())
    assert not summary.failures, summary.failures
    records = workspace.results.records(status="ok")
    assert {r["method"] for r in records} == {"lang-adapters", "pair-adapters", "hyper-adapters"}
    bleu = [r for r in records if r["metric"] == "bleu"]
    assert len(bleu) == 3 * 6 and all(r["value"] >= 0 for r in bleu)
    probed = [r for r in bleu if r["extra"].get("relatedness_probe")]
    assert {(r["method"], r["source_languages"][0], r["target_language"]) for r in probed} == {
        (m, "qab", "qaa") for m in ("lang-adapters", "pair-adapters", "hyper-adapters")
    }
    for record in probed:
        probe = record["extra"]["relatedness_probe"]
        assert probe["original"] == {"language": "qab", "bleu": record["value"]}
        assert probe["similar"]["language"] == "qac" and probe["distant"]["language"] == "qad"
    for key, planned in plan.pieces.items():
        if planned.piece.kind == "translation-model":
            assert workspace.artifacts.info(key)["trainable_params"] == plan.piece_parameters(key)
    result = CliRunner().invoke(app, ["report", str(grid_file), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    readme = (grid_file.parent / "README.md").read_text()
    assert "| method | direction | Org | Sim | Dist | Sim/Org |" in readme
    assert "| hyper-adapters:tiny | qab→qaa |" in readme
    assert "| qab→qaa" in readme  # MT rows are directions: qab->qaa is not averaged with qac->qaa
