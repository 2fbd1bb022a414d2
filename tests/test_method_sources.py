"""Every default of every registered method says where it comes from (`xlt describe` prints it)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from xltransfer import registry
from xltransfer.cli import app


@pytest.mark.parametrize("name", registry.methods.names())
def test_every_parameter_of_every_method_has_a_source(name):
    method = registry.methods.get(name)
    missing = [p for p in method.defaults if not method.parameter_source(p)]
    assert not missing, f"{name}: no parameter_sources entry for {missing}"
    stray = sorted(set(method.parameter_sources) - set(method.defaults))
    assert not stray, f"{name}: sources for parameters it does not have: {stray}"


def test_describe_lists_every_parameter_with_default_variants_and_source():
    from xltransfer.methods.mad_x import MadX

    result = CliRunner().invoke(app, ["describe", "mad-x"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name, value in MadX.defaults.items():
        row = next((line for line in lines if line.startswith(f"│ {name} ")), None)
        assert row is not None, name
        cells = [cell.strip() for cell in row.strip("│").split("│")]
        if isinstance(value, bool):
            assert cells[1] == str(value).lower()
        else:  # strings are shown quoted
            assert cells[1] == (f'"{value}"' if isinstance(value, str) else str(value))
        assert cells[-1] == MadX.parameter_source(name)
    invertible = next(line for line in lines if line.startswith("│ la_invertible "))
    assert [c.strip() for c in invertible.strip("│").split("│")][2] == "false"  # the no-inv variant
    assert "Pfeiffer, Vulić, Gurevych, Ruder 2020" in result.stdout


def test_describe_an_unknown_method_is_one_line_and_exit_2():
    result = CliRunner().invoke(app, ["describe", "madx"])
    assert result.exit_code == 2 and "did you mean 'mad-x'" in result.output
    assert "Traceback" not in result.output


# issue 20: each default changed or added, and the authors' file (or the statement) its source names
CHANGED_DEFAULTS = {
    "mad-x": {
        "ta_leave_out_last_layer": "run_udp.py",
        "la_train_mlm_head": "run_bi_mlm.py",
        "la_max_length": "--max_seq_len 512",
        "dp_decoding": "utils_udp.py",
        "nli_ta_pooler": "run_anli.py",
        "nli_ta_max_length": "run_anli.py",
        "dp_ta_drop_subwords": "preprocessing.py",
    },
    "bad-x": {
        "la_train_mlm_head": "run_bi_mlm.py",
        "dp_decoding": "utils_udp.py",
        "nli_ta_max_length": "max_seq_length 128",
        "dp_ta_drop_subwords": "max_seq_length - 2",
    },
    "multilingual-adapter": {"ma_selection": "run_bi_mlm.py", "la_train_mlm_head": "run_bi_mlm.py"},
    "mad-g": {
        "generator_steps": "not published",
        "generator_warmup_steps": "not published",
        "sampling_alpha": "not published",
        "la_batch_size": "not published",
        "la_learning_rate": "not published",
        "la_train_mlm_head": "MAD-G §3",
    },
    "hyper-x": {"post_adapter_layer_norm": "default.sh", "mlm_head_trainable": "train.py"},
}


@pytest.mark.parametrize("name", sorted(CHANGED_DEFAULTS))
def test_describe_cites_the_source_of_each_changed_default(name):
    method = registry.methods.get(name)
    result = CliRunner().invoke(app, ["describe", name], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for parameter, cited in CHANGED_DEFAULTS[name].items():
        source = method.parameter_source(parameter)
        assert source and cited in source, (parameter, source)
        row = next((line for line in result.stdout.splitlines() if line.startswith(f"│ {parameter} ")), None)
        assert row is not None and row.strip("│ ").endswith(source), (parameter, row)
