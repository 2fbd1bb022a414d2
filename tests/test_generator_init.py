"""Generated adapters start as small as in the authors' code: MAD-G / MAD-G-LS as CPGAdapters
initialises its generator, Hyper-X as ahmetustun/hyperx initialises its hypernetwork.

Each reference figure is the standard deviation of a generated parameter at initialisation, derived
from the initialisation in the authors' code (written out beside each figure); ours is measured
over several seeds (one draw of a 32-d language embedding alone varies by ~25%).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_adapter_model
from xltransfer.methods.hyper_x import HyperNetwork
from xltransfer.methods.mad_g import LanguageAdapterGenerator

from xltransfer import languages
from xltransfer.modules import adapters as ad
from xltransfer.modules import generator as gen

SEEDS = range(12)
TOLERANCE = 0.2  # within 20% of the reference


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The parameters of a real bottleneck adapter slot (the generator's output)."""
    model = tiny_adapter_model(tmp_path_factory.mktemp("bert"), vocab_size=50)
    ad.add_bottleneck_adapter(model, "slot", reduction_factor=2.0)
    return {name: p.shape for name, p in gen.adapter_parameters(model, "slot").items()}


def _generated_std(make, condition) -> float:
    """Root mean square of every generated parameter, over generators built with several seeds."""
    squares, count = 0.0, 0
    for seed in SEEDS:
        torch.manual_seed(seed)
        with torch.no_grad():
            weights = make()(*condition)
        flat = torch.cat([w.flatten() for w in weights.values()])
        squares += flat.pow(2).sum().item()
        count += flat.numel()
    return math.sqrt(squares / count)


def _cpg_reference(typology: torch.Tensor, layer_shared: bool) -> float:
    """CPGAdapters (src/transformers/cpg.py): λ = layer_1(t), an nn.Linear(289, 32) with torch's
    default initialisation (weights and bias ~ U(±1/√289), variance 1/(3·289) each), so
    E|λ|² = 32 (|t|² + 1) / (3·289); MAD-G-LS concatenates a layer embedding ~ N(0, (1/32)²)
    (Property: std 1/dim), E|e|² = 32/32² = 1/32; each generated parameter is W·c with
    W ~ N(0, (1/dim c)²) (CpgModule.init_params), so its std is sqrt(E|c|²) / dim c.
    For English (|t|² = 103): MAD-G 2.0/32 = 0.063, MAD-G-LS 2.0/64 = 0.031."""
    language_dim, layer_dim = 32, 32
    fan_in = typology.numel()
    language = language_dim * (typology.pow(2).sum().item() + 1) / (3 * fan_in)
    layer = layer_dim / layer_dim**2 if layer_shared else 0.0
    context_dim = language_dim + (layer_dim if layer_shared else 0)
    return math.sqrt(language + layer) / context_dim


@pytest.mark.parametrize("layer_shared", [False, True], ids=["mad-g", "mad-g-ls"])
def test_mad_g_generated_weights_start_as_in_cpg_adapters(shapes, layer_shared):
    typology = torch.tensor(languages.typology_vector("en"))
    reference = _cpg_reference(typology, layer_shared)
    ours = _generated_std(
        lambda: LanguageAdapterGenerator(shapes, typology.numel(), 32, layer_shared, 32), (typology,)
    )
    assert abs(ours - reference) <= TOLERANCE * reference, (ours, reference)


def test_mad_g_typology_projection_has_a_bias_and_the_generator_none(shapes):
    """λ = V t + b as CPGAdapters' typology projection (cpg.py UrielMlpProperty.layer_1, an
    nn.Linear(289, 32) with its bias); θ = W λ without one (CpgModule): θ is affine in t. Before,
    V had no bias."""
    torch.manual_seed(0)
    generator = LanguageAdapterGenerator(shapes, 289, 32, True, 32)
    biases = [name for name, _ in generator.named_parameters() if name.endswith("bias")]
    assert biases == ["language.bias"]
    generator_plain = LanguageAdapterGenerator(shapes, 289, 32, False, 32)
    typology = torch.tensor(languages.typology_vector("tr"))
    with torch.no_grad():
        once, twice = generator_plain(typology), generator_plain(2 * typology)
        zero = generator_plain(torch.zeros(289))
    for name in once:
        torch.testing.assert_close(twice[name] - zero[name], 2 * (once[name] - zero[name]))
        assert zero[name].any()


def _hyperx_reference(projection_dim: int) -> float:
    """ahmetustun/hyperx: task, language and layer embeddings ~ N(0, 1), 64 each
    (init_x_embeddings), so |s|² ≈ 192; the projector Linear(192, 192) -> ReLU -> Linear(192, d_p)
    and the generator Linear(d_p, size) all have weights ~ N(0, 0.01²) and zero biases
    (linear_layer). Then h ~ N(0, 1e-4·192), E|ReLU(h)|² = 192 · 1e-4·192 / 2, p ~ N(0, 1e-4 ·
    E|ReLU(h)|²) per dimension, and a generated parameter ~ N(0, 1e-4 · d_p · 1e-4 · E|ReLU(h)|²):
    std 1.88e-3 for base (d_p 192), 7.7e-4 for small (d_p 32)."""
    relu_energy = 192 * (1e-4 * 192) / 2
    return math.sqrt(1e-4 * projection_dim * 1e-4 * relu_energy)


@pytest.mark.parametrize("projection_dim", [192, 32], ids=["base", "small"])
def test_hyper_x_generated_weights_start_as_in_the_authors_code(shapes, projection_dim):
    reference = _hyperx_reference(projection_dim)
    ours = _generated_std(
        lambda: HyperNetwork(shapes, ["mlm", "pos"], ["en", "tr"], 64, (192, projection_dim)), ("pos", "tr")
    )
    assert abs(ours - reference) <= TOLERANCE * reference, (ours, reference)


@pytest.mark.parametrize("before_residual_ln", [True, False], ids=["hyper-x", "pfeiffer"])
def test_an_adapter_reads_where_its_config_says(tmp_path, before_residual_ln):
    """Hyper-X's adapter reads the FFN's output f before the layer's residual and LayerNorm, which
    apply once: LN(f + LN_a(A(f)) + x) (ahmetustun/hyperx BertOutput.forward, MetaAdapterController).
    Pfeiffer's reads LN(f + x) and keeps f as its residual: LN(f + x + LN_a(A(LN(f + x)))). Checked
    against the formula on a one-layer BERT with random adapter weights."""
    model = tiny_adapter_model(tmp_path, vocab_size=50)
    ad.add_bottleneck_adapter(
        model, "slot", reduction_factor=2.0, ln_after=True, before_residual_ln=before_residual_ln
    )
    model.set_active_adapters("slot")
    torch.manual_seed(1)
    with torch.no_grad():
        for param in gen.adapter_parameters(model, "slot").values():
            param.normal_(0, 0.5)
    model.eval()
    layer = model.base_model.encoder.layer[0]
    seen = {}
    layer.output.dense.register_forward_hook(lambda m, i, o: seen.__setitem__("f", o))
    layer.output.register_forward_hook(lambda m, i, o: seen.update(x=i[1], out=o))
    with torch.no_grad():
        model.base_model(input_ids=torch.randint(5, 50, (2, 7)))
    f, x, norm = seen["f"], seen["x"], layer.output.LayerNorm
    adapter = layer.output.adapters["slot"]

    def bottleneck(h):
        return adapter.adapter_norm_after(adapter.adapter_up(adapter.adapter_down(h)))

    expected = norm(f + bottleneck(f) + x) if before_residual_ln else norm(f + x + bottleneck(norm(f + x)))
    assert torch.allclose(seen["out"], expected, atol=1e-5)
    other = norm(f + x + bottleneck(norm(f + x))) if before_residual_ln else norm(f + bottleneck(f) + x)
    assert not torch.allclose(seen["out"], other, atol=1e-3)  # the two positions differ here
