"""The MT Transformer as fairseq builds it (LayerNorm placement, initialisation) and the lengths MT
encodes at (Baziotis et al. 2022, §4: implemented in fairseq; pairs filtered at 250 subwords)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import fixed_vocab_tokenizer
from xltransfer.tasks.mt import MachineTranslation

from xltransfer.data.parallel import ParallelExample
from xltransfer.modules import seq2seq as s2s

D, FFN, HEADS = 64, 128, 4
FILES_GRID = (
    "backbone: quickstart\n"
    "data: {mt: {type: files, files: {en: {train: en.txt, test: en.txt},\n"
    "                                de: {train: de.txt, test: de.txt}}}}\n"
    "methods: [full-ft]\ntasks: [mt]\nlanguages: {source: en, target: [de]}\n"
)


def tiny(norm: str, seed: int = 1):
    config = s2s.transformer_config(
        "transformer-base", 600, norm, d_model=D, layers=2, ffn_dim=FFN, heads=HEADS
    )
    return s2s.new_transformer(config, seed)


# -- LayerNorm placement ----------------------------------------------------------------------------


def test_the_default_transformer_is_pre_norm_with_a_final_layer_norm_on_each_side():
    assert s2s.MtModelOptions().norm == s2s.DEFAULT_NORM == "pre"
    model = s2s.new_transformer(
        s2s.mt_architecture(s2s.MtModelOptions(d_model=D, layers=2, ffn_dim=FFN, heads=HEADS), None, 600)
    )
    assert isinstance(model.model.encoder.layer_norm, torch.nn.LayerNorm)
    assert isinstance(model.model.decoder.layer_norm, torch.nn.LayerNorm)
    post = tiny("post")
    assert getattr(post.model.encoder, "layer_norm", None) is None  # Vaswani et al.: none at the end
    # both keep fairseq's shared embedding matrix: encoder input, decoder input and output projection
    for model in (tiny("pre"), post):
        shared = model.get_input_embeddings().weight
        assert model.lm_head.weight is shared is model.model.decoder.embed_tokens.weight


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_where_the_layer_norm_sits(norm):
    """Post-norm: a layer's output is LayerNorm'd (per token mean 0, variance 1 at initialisation).
    Pre-norm: the residual stream passes through unnormalised, so a large input stays large."""
    layer = tiny(norm).model.encoder.layers[0].eval()
    hidden = 10.0 * torch.randn(1, 7, D)
    with torch.no_grad():
        out = layer(hidden, None, None)[0]
    per_token_std = out.std(dim=-1, unbiased=False)
    if norm == "post":
        assert torch.allclose(out.mean(dim=-1), torch.zeros(1, 7), atol=1e-4)
        assert torch.allclose(per_token_std, torch.ones(1, 7), atol=1e-3)
    else:
        assert (per_token_std > 5).all()


def test_norm_is_a_validated_mt_option_in_the_schema_and_the_keys(tmp_path):
    from xltransfer import registry
    from xltransfer.errors import GridError
    from xltransfer.grid import load_grid
    from xltransfer.grid_spec import grid_json_schema
    from xltransfer.planning import build_plan

    assert grid_json_schema(registry, builtin_only=True)["$defs"]["MtSpec"]["properties"]["norm"] == {
        "type": "string",
        "default": "pre",
        "enum": ["pre", "post"],
    }
    (tmp_path / "en.txt").write_text("one\ntwo\n")
    (tmp_path / "de.txt").write_text("eins\nzwei\n")
    base = FILES_GRID
    grid = tmp_path / "grid.yaml"
    keys = {}
    for norm in ("pre", "post"):
        grid.write_text(base + f"mt: {{norm: {norm}, vocab_size: 50}}\n")
        loaded = load_grid(grid, tmp_path / "w")
        assert loaded.mt.norm == norm
        keys[norm] = set(build_plan(loaded).pieces)
    assert keys["pre"].isdisjoint(keys["post"])  # every MT piece (the vocabulary too) is keyed by it
    grid.write_text(base + "mt: {norm: sandwich}\n")
    with pytest.raises(GridError, match=r"mt\.norm.*sandwich.*'pre' or 'post'"):
        load_grid(grid, tmp_path / "w")
    # a method may place them otherwise (mt_norm), so one grid compares both; checked up front too
    grid.write_text(base.replace("methods: [full-ft]", "methods: [{name: full-ft, params: {mt_norm: post}}]"))
    loaded = load_grid(grid, tmp_path / "w")
    cell = loaded.cells()[0]
    assert loaded.mt.norm == "pre" and loaded.task_config("mt", cell.params).norm == "post"
    grid.write_text(base.replace("methods: [full-ft]", "methods: [{name: full-ft, params: {mt_norm: mid}}]"))
    with pytest.raises(GridError, match="mt_norm.*mid"):
        load_grid(grid, tmp_path / "w")


# -- fairseq's initialisation -----------------------------------------------------------------------


def _uniform_std(bound: float) -> float:
    return bound / math.sqrt(3)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_fairseq_initialisation_statistics(norm):
    """fairseq transformer_base.py ``Embedding``: N(0, d^-1/2), padding row zero;
    multihead_attention.py ``reset_parameters``: q/k/v Xavier-uniform with gain 1/sqrt(2), output
    projection Xavier-uniform with a zero bias; fc1/fc2 ``nn.Linear``'s default U(+-1/sqrt(fan_in))."""
    model = tiny(norm)
    embedding = model.get_input_embeddings().weight
    assert embedding.std().item() == pytest.approx(D**-0.5, rel=0.05)  # not Marian's 0.02
    assert embedding.mean().abs().item() < 0.01
    assert not embedding[s2s.PAD_ID].any()
    xavier = math.sqrt(6 / (D + D))
    for layer in (*model.model.encoder.layers, *model.model.decoder.layers):
        attentions = [layer.self_attn] + ([layer.encoder_attn] if hasattr(layer, "encoder_attn") else [])
        for attention in attentions:
            for name in ("q_proj", "k_proj", "v_proj"):
                weight = getattr(attention, name).weight
                assert weight.abs().max().item() <= xavier / math.sqrt(2) + 1e-6
                assert weight.std().item() == pytest.approx(_uniform_std(xavier / math.sqrt(2)), rel=0.1)
            assert attention.out_proj.weight.abs().max().item() <= xavier + 1e-6
            assert attention.out_proj.weight.std().item() == pytest.approx(_uniform_std(xavier), rel=0.1)
            assert not attention.out_proj.bias.any()
        for fc, fan_in in ((layer.fc1, D), (layer.fc2, FFN)):
            assert fc.weight.abs().max().item() <= fan_in**-0.5 + 1e-6
            assert fc.weight.std().item() == pytest.approx(_uniform_std(fan_in**-0.5), rel=0.1)
        for norm_layer in (m for m in layer.modules() if isinstance(m, torch.nn.LayerNorm)):
            assert bool((norm_layer.weight == 1).all() and not norm_layer.bias.any())
    # the seed alone decides the weights, and the global RNG is left alone
    state = torch.random.get_rng_state()
    again = tiny(norm)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


# -- lengths -------------------------------------------------------------------------------------------

WORDS = [f"w{i}" for i in range(10)]


def _tokenizer():
    tokenizer = fixed_vocab_tokenizer(WORDS)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<2de>"]})
    return tokenizer


def _pair(source_words: int, target_words: int) -> ParallelExample:
    source = " ".join(WORDS[i % 10] for i in range(source_words))
    target = " ".join(WORDS[(i + 3) % 10] for i in range(target_words))
    return ParallelExample("en", "de", source, target, "1")


def test_mt_encodes_at_the_papers_filter_not_the_grids_max_length(tmp_path):
    """Baziotis et al. 2022, §4: pairs over 250 subwords are filtered out; a kept pair is trained
    whole, its target ending with the end token (the grid's 128 for encoder tasks would cut it)."""
    from xltransfer.grid import load_grid

    (tmp_path / "en.txt").write_text("one\n")
    (tmp_path / "de.txt").write_text("eins\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(FILES_GRID)
    loaded = load_grid(grid, tmp_path / "w")
    assert loaded.max_length == 128 and loaded.length_for("mt") == s2s.MtModelOptions().max_tokens == 250
    tokenizer = _tokenizer()
    feature = MachineTranslation().encode([_pair(240, 240)], tokenizer, loaded.length_for("mt"))[0]
    assert len(feature["labels"]) == 241 and feature["labels"][-1] == tokenizer.sep_token_id
    assert len(feature["input_ids"]) == 243  # [CLS], the tag, 240 subwords, [SEP]


def test_a_cut_target_gets_no_end_token():
    tokenizer = _tokenizer()
    feature = MachineTranslation().encode([_pair(4, 10)], tokenizer, max_length=5)[0]
    target = tokenizer(_pair(4, 10).target, add_special_tokens=False)["input_ids"]
    tag = tokenizer.convert_tokens_to_ids("<2de>")
    assert feature["labels"] == target[:5] and tokenizer.sep_token_id not in feature["labels"]
    assert feature["decoder_input_ids"] == [tag, *target[:4]]  # each label is the next subword
    whole = MachineTranslation().encode([_pair(4, 5)], tokenizer, max_length=5)[0]
    assert whole["labels"][-1] == tokenizer.sep_token_id and len(whole["labels"]) == 6


def test_a_test_source_is_cut_only_at_the_models_maximum():
    """A 300-subword test source is translated whole (it was cut at 128 tokens); only the model's
    maximum cuts: fairseq's 1,024 positions for a Transformer, the backbone's for BERT2BERT."""
    from transformers import BertConfig

    tokenizer = _tokenizer()
    task = MachineTranslation()
    assert len(task.encode([_pair(300, 3)], tokenizer, max_length=128)[0]["input_ids"]) == 303
    assert len(task.encode([_pair(1100, 3)], tokenizer, max_length=128)[0]["input_ids"]) == s2s.MAX_POSITIONS
    bert = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=40,
    )  # fmt: skip
    tokenizer = fixed_vocab_tokenizer(WORDS)
    s2s.bert2bert(bert, tokenizer=tokenizer, languages=["de"])
    task = MachineTranslation(options=s2s.MtModelOptions(model=s2s.BERT2BERT))
    feature = task.encode([_pair(100, 100)], tokenizer, max_length=250)[0]
    assert len(feature["input_ids"]) == 40
    assert len(feature["decoder_input_ids"]) == len(feature["labels"]) == 39  # cut, so no end token
    assert tokenizer.sep_token_id not in feature["labels"]


# -- the synthetic MT board ---------------------------------------------------------------------------


def test_the_synthetic_mt_board_shows_the_rescaling_ablation_on_both_norms(tmp_path):
    """leaderboards/generated-synthetic: hyper-adapters with and without §3.1's rescaling, in the
    default pre-norm Transformer and in a post-norm one, all the same size; the description says
    the comparison with language adapters is not at matched size."""
    from pathlib import Path

    from xltransfer.grid import load_grid
    from xltransfer.planning import build_plan

    grid = load_grid(Path(__file__).resolve().parents[1] / "leaderboards" / "generated-synthetic", tmp_path)
    plan = build_plan(grid)
    seen = {}
    for cell in grid.cells():
        if cell.method == "hyper-adapters":
            norm = grid.task_config("mt", cell.params).norm
            seen[(cell.params["hn_rescale"], norm)] = (cell.method_label, cell.params["hn_hidden"])
            expected = s2s.mt_architecture(s2s.MtModelOptions(norm=norm), None).__class__
            assert isinstance(plan.architecture_for("mt", cell.params), expected)
    assert set(seen) == {(True, "pre"), (False, "pre"), (True, "post"), (False, "post")}
    assert {size for _, size in seen.values()} == {102}
    assert len({label for label, _ in seen.values()}) == 4  # four rows of the board
    assert grid.mt.norm == "pre" and "matched size" in grid.description


# -- xlt describe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["hyper-adapters", "lang-adapters", "pair-adapters", "full-ft"])
def test_describe_an_mt_method_cites_the_mt_models_defaults(method):
    import dataclasses

    from typer.testing import CliRunner

    from xltransfer.cli import app

    fields = [f.name for f in dataclasses.fields(s2s.MtModelOptions)]
    assert sorted(s2s.MT_OPTION_SOURCES) == sorted(fields)  # every option of the mt: block
    result = CliRunner().invoke(app, ["describe", method], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells
        for line in result.stdout.splitlines()
        if line.startswith("│ ") and len(cells := [c.strip() for c in line.strip("│").split("│")]) == 3
    }
    for name in fields:
        assert rows[name][2] == s2s.MT_OPTION_SOURCES[name], name
    assert rows["norm"][1] == '"pre"' and "--encoder-normalize-before" in rows["norm"][2]
    assert rows["max_tokens"][1] == "250" and "§4" in rows["max_tokens"][2]
    assert "transformer_base.py" in result.stdout and "mt_norm" in result.stdout
