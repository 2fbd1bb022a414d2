"""A piece's key holds every parameter that shapes it, by a naming rule a subclass inherits; a
parameter outside the rule is refused up front; the reuse the harness promises still holds."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from xltransfer.methods.bad_x import BadX
from xltransfer.methods.mad_g import MadG
from xltransfer.methods.mad_x import MadX
from xltransfer.methods.multilingual_adapter import MultilingualAdapter

from xltransfer.cell import Cell
from xltransfer.errors import GridError
from xltransfer.grid import load_grid
from xltransfer.registry import methods


class LoraMadX(MadX):
    """A subclass with a new language-side parameter (its adapter code does not matter here)."""

    name = "mad-x-lora-keys"
    defaults = {**MadX.defaults, "la_lora_r": 8}


def _cell(method, task: str = "pos", target: str = "tr") -> Cell:
    return Cell(method.name, method.variant, method.params, task, "zero-shot", ("en",), target, 1)


def _with(cls, variant: str = "default", **params):
    return cls(variant, cls.resolve_params(variant, params))


@pytest.mark.parametrize("cls", [MadX, BadX, MultilingualAdapter, LoraMadX])
def test_a_language_side_parameter_changes_the_language_side_key_only(cls):
    name = "la_lora_r" if cls is LoraMadX else "la_batch_size"
    one, other = _with(cls, **{name: 4}), _with(cls, **{name: 16})
    adapter_one, ta_one = one.pieces(_cell(one))
    adapter_other, ta_other = other.pieces(_cell(other))
    assert adapter_one != adapter_other and ta_one != ta_other  # the TA is trained on the new adapter


@pytest.mark.parametrize("cls", [MadX, BadX, MultilingualAdapter, LoraMadX])
def test_a_task_side_parameter_leaves_the_language_side_pieces_alone(cls):
    one, other = _with(cls, ta_steps=100), _with(cls, ta_steps=200)
    adapter_one, ta_one = one.pieces(_cell(one))
    adapter_other, ta_other = other.pieces(_cell(other))
    assert adapter_one == adapter_other and ta_one != ta_other
    # and an NLI task adapter, whose schedule is nli_ta_*, is not retrained either
    assert one.pieces(_cell(one, "nli")) == other.pieces(_cell(other, "nli"))


def test_one_language_adapter_serves_every_task_and_target():
    madx = MadX()
    pos_tr, ner_tr, pos_de = (
        madx.pieces(_cell(madx, t, g)) for t, g in (("pos", "tr"), ("ner", "tr"), ("pos", "de"))
    )
    assert pos_tr[1].needs == ner_tr[1].needs == pos_de[1].needs  # the English LA under every TA
    assert pos_tr[0] == ner_tr[0] != pos_de[0]


def test_mad_g_generator_is_shared_by_its_finetuned_variant():
    plain = _with(MadG, "default", train_languages=["en", "tr"])
    finetuned = _with(MadG, "ft", train_languages=["en", "tr"], ft_steps=300)
    assert plain.generator_piece(1) == finetuned.generator_piece(1)
    assert plain.test_adapter(_cell(plain)) != finetuned.test_adapter(_cell(finetuned))
    assert "ft_steps" not in plain.test_adapter(_cell(plain)).params  # not finetuned: not keyed by it
    other = _with(MadG, "default", train_languages=["en", "tr"], la_learning_rate=1e-3)
    assert plain.generator_piece(1) != other.generator_piece(1)


class Unkeyed(MadX):
    name = "mad-x-unkeyed"
    defaults = {**MadX.defaults, "lora_rank": 8}


def test_a_parameter_outside_the_naming_rule_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lora_rank would be in no piece's key"):
        Unkeyed.resolve_params("default", {})
    methods.register(Unkeyed.name, Unkeyed)
    try:
        grid = tmp_path / "grid.yaml"
        grid.write_text(
            textwrap.dedent("""
            backbone: quickstart
            data: {pos: synthetic, mlm: synthetic}
            methods: [mad-x-unkeyed]
            tasks: [pos]
            languages: {source: qaa, target: [qab]}
            """)
        )
        with pytest.raises(GridError, match=r"methods\[0\]\.params.*lora_rank"):
            load_grid(grid, tmp_path / "w")
    finally:
        methods.unregister(Unkeyed.name)


def test_the_multilingual_adapter_is_selected_on_its_targets_not_on_english():
    """parovicm/badx run_bi_mlm.py scores held-out perplexity on the training files less "en"; before,
    the checkpoint was chosen on the mean over every language of the set, English included."""
    import dataclasses

    ma = MultilingualAdapter()
    cell = dataclasses.replace(_cell(ma), language_set=("en", "tr", "mt"))
    (adapter, _) = ma.pieces(cell)
    steps, pattern, selected = ma.mlm_plan(adapter)
    assert adapter.languages == ("en", "tr", "mt") and pattern == [0, 1, 2]
    assert selected == ("tr", "mt")
    every = _with(MultilingualAdapter, ma_selection="all")
    (adapter_all, _) = every.pieces(dataclasses.replace(_cell(every), language_set=("en", "tr", "mt")))
    assert every.mlm_plan(adapter_all)[2] == ("en", "tr", "mt") and adapter_all != adapter
    with pytest.raises(ValueError, match="ma_selection"):
        _with(MultilingualAdapter, ma_selection="english")


@pytest.mark.parametrize(
    ("name", "value", "task"), [("dp_ta_drop_subwords", 254, "dp"), ("nli_ta_max_length", 128, "nli")]
)
def test_a_tasks_own_encoding_keys_that_tasks_adapters_only_and_only_when_set(name, value, task):
    """The authors' DP filter and NLI length (hgiyt; parovicm/badx run_anli.py): at their defaults
    the task adapters keep the keys they had before the parameters existed; set, only that task's
    task adapter is another piece (the language adapters and the other tasks' TAs are shared)."""
    from xltransfer.params import Params

    default, authors = MadX(), _with(MadX, **{name: value})
    before = MadX("default", Params({k: v for k, v in MadX.defaults.items() if k != name}))
    for t in ("pos", "dp", "nli"):  # the same pieces as MAD-X without the parameter
        assert before.pieces(_cell(before, t)) == default.pieces(_cell(default, t))
    for cls in (MadX, BadX, MultilingualAdapter):
        for t in ("pos", "dp", "nli"):
            assert name not in _with(cls).task_adapter(_cell(_with(cls), t)).params
    for t in ("pos", "dp", "ner", "nli"):
        adapter_default, ta_default = default.pieces(_cell(default, t))
        adapter_authors, ta_authors = authors.pieces(_cell(authors, t))
        assert adapter_default == adapter_authors
        assert (ta_default != ta_authors) is (t == task), t
        assert ta_authors.params.get(name) == (value if t == task else None)
    few_shot = dataclasses.replace(_cell(authors, task), setting="few-shot", shots=10)
    assert authors.few_shot_task_adapter(few_shot).params[name] == value
