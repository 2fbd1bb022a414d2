"""`xlt evaluate --task pos`: accuracy over syntactic words of real treebanks."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from xltransfer.cli import app
from xltransfer.data.ud import read_conllu


def test_gold_against_itself_is_perfect(shared_data):
    gold = shared_data / "ud/UD_Turkish-IMST/tr_imst-ud-test.conllu"
    result = CliRunner().invoke(
        app, ["evaluate", "--task", "pos", "--gold", str(gold), "--pred", str(gold), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"accuracy": 1.0}


def test_changed_tags_counted_over_syntactic_words(shared_data, tmp_path):
    gold = shared_data / "ud/UD_Turkish-IMST/tr_imst-ud-test.conllu"
    lines = gold.read_text(encoding="utf-8").splitlines()
    changed = 0
    for i, line in enumerate(lines):
        columns = line.split("\t")
        # change every NOUN of a word line (not a multiword-token range line) to VERB
        if len(columns) == 10 and columns[0].isdigit() and columns[3] == "NOUN":
            columns[3] = "VERB"
            lines[i] = "\t".join(columns)
            changed += 1
    pred = tmp_path / "pred.conllu"
    pred.write_text("\n".join(lines) + "\n", encoding="utf-8")
    words = sum(len(s.words) for s in read_conllu(gold))
    result = CliRunner().invoke(
        app, ["evaluate", "--task", "pos", "--gold", str(gold), "--pred", str(pred), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert abs(json.loads(result.stdout)["accuracy"] - (words - changed) / words) < 1e-12


def test_misaligned_prediction_file_is_exit_2(shared_data, tmp_path):
    gold = shared_data / "ud/UD_Turkish-IMST/tr_imst-ud-test.conllu"
    other = shared_data / "ud/UD_Turkish-IMST/tr_imst-ud-dev.conllu"
    result = CliRunner().invoke(app, ["evaluate", "--task", "pos", "--gold", str(gold), "--pred", str(other)])
    assert result.exit_code == 2
