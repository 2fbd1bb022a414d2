"""What the grid's declaration (xltransfer/grid_spec.py) refuses beyond tests/test_grid_validation.py:
values a hostile probe found running or crashing. Each stops `xlt plan` and `xlt run` with exit code 2
and one line naming the field, before anything trains."""

from __future__ import annotations

import pytest
import yaml
from conftest import write_tiny_grid
from test_grid_validation import _grid
from typer.testing import CliRunner

from xltransfer.cli import app
from xltransfer.errors import GridError
from xltransfer.grid_spec import validate
from xltransfer.util import MAX_YAML_VALUES, load_yaml

FULL_FT = "methods[1].params"
FILES = "data: {pos: {type: files, files: {qaa: {train: train.conllu, dve: dev.conllu}}}, mlm: synthetic}"
# case -> (changes to the tiny grid, what the one-line error says)
REFUSED = {
    "epochs true": ({"epochs: 1.0": "epochs: true"}, f"{FULL_FT}.epochs"),
    "learning_rate true": ({"rate: 5.0e-4": "rate: true"}, f"{FULL_FT}.learning_rate"),
    "key twice on one line": ({"epochs: 1.0": "epochs: 0.2, epochs: 5.0"}, "key 'epochs' appears twice"),
    "misspelt split": ({"data: {pos: synthetic, mlm: synthetic}": FILES}, "data.pos.files.qaa.dve"),
    "device meta": ({"+": "device: meta\n"}, "field 'device'"),
    "max_length over the positions": ({"+": "max_length: 129\n"}, "field 'max_length'"),
    "no seeds": ({"seeds: [1]": "seeds: []"}, "field 'seeds'"),
    "unknown top-level field": ({"+": "seed: 3\n"}, "field 'seed'"),
}


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("command", ["plan", "run"])
def test_the_declaration_refuses_it_naming_the_field(case, command, tmp_path):
    changes, says = REFUSED[case]
    grid = _grid(tmp_path, changes)
    for name in ("train.conllu", "dev.conllu"):  # the misspelt split's files exist: only its key is wrong
        (grid.parent / name).write_text("1\tA\ta\tNOUN\t_\t_\t0\troot\t_\t_\n\n")
    result = _cli(
        command, str(grid), "--workdir", str(tmp_path / "w"), *(["--quiet"] if command == "run" else [])
    )
    assert result.exit_code == 2, result.output
    assert says in result.output, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_misspelt_key_gets_a_close_name(tmp_path):
    grid = _grid(tmp_path, {"data: {pos: synthetic, mlm: synthetic}": FILES})
    (grid.parent / "train.conllu").write_text("")
    (grid.parent / "dev.conllu").write_text("")
    with pytest.raises(GridError, match=r"unknown split 'dve' .*did you mean 'dev'"):
        validate(load_yaml(grid.read_text()), grid, grid.parent)
    with pytest.raises(GridError, match=r"field 'sede'.*did you mean 'seeds'"):
        validate({**yaml.safe_load(grid.read_text()), "sede": [1]})


def test_a_boolean_is_never_a_number_but_an_int_is_a_float():
    raw = yaml.safe_load(write_tiny_grid_text())
    raw["methods"][1]["params"]["epochs"] = 2  # an int for a float parameter, as grids write it
    assert validate(raw).methods[1].params["epochs"] == 2
    raw["methods"][1]["params"]["batch_size"] = True
    with pytest.raises(
        GridError, match=r"methods\[1\]\.params\.batch_size': must be an integer, not a boolean"
    ):
        validate(raw)


def write_tiny_grid_text() -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return write_tiny_grid(Path(folder) / "g").read_text()


def test_a_yaml_alias_bomb_is_refused_before_it_is_built(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    grid = tmp_path / "grid.yaml"
    grid.write_text("\n".join(lines) + "\nmethods: *a8\n")
    assert len(grid.read_bytes()) < 1000  # 10**9 values once expanded
    with pytest.raises(yaml.YAMLError, match="aliases expand"):
        load_yaml(grid.read_text())
    result = _cli("plan", str(grid), "--workdir", str(tmp_path / "w"))
    assert result.exit_code == 2 and "not valid YAML" in result.output, result.output
    assert str(grid) in result.output and len(result.output.strip().splitlines()) == 1
    # a grid's own anchors and aliases, far below the cap, load as before
    shared = "pos: &s {type: hub, dataset: d}\ndp: *s\n"
    assert load_yaml(shared) == {
        "pos": {"type": "hub", "dataset": "d"},
        "dp": {"type": "hub", "dataset": "d"},
    }
    assert MAX_YAML_VALUES < 10**9


def test_a_yaml_tag_in_a_check_method_param_is_one_line(tmp_path):
    result = _cli(
        "check-method",
        "full-ft",
        "--param",
        "epochs=!!python/object/apply:os.system [true]",
        "--workdir",
        str(tmp_path / "w"),
    )
    assert result.exit_code == 2, result.output
    assert "--param" in result.output and "not a plain YAML value" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "w" / "artifacts").exists()


def test_the_grid_is_declared_below_the_model_code():
    """Reading and validating a grid loads no model code: the option blocks live in options.py."""
    import subprocess
    import sys

    code = (
        "import sys, xltransfer.grid, xltransfer.grid_spec, xltransfer.options\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'adapters', 'xltransfer.modules.seq2seq',"
        " 'xltransfer.pretrain', 'xltransfer.data.synthetic') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_declared_mt_models_are_the_implemented_ones():
    from typing import get_args

    from xltransfer.modules.seq2seq import TRANSFORMER_PRESETS
    from xltransfer.options import BERT2BERT, TRANSFORMER_MODELS, MtModel

    assert tuple(TRANSFORMER_PRESETS) == TRANSFORMER_MODELS
    assert get_args(MtModel) == (*TRANSFORMER_MODELS, BERT2BERT)
