"""Writing CoNLL-U back: only HEAD and DEPREL of syntactic words change; a gold round trip is lossless."""

from __future__ import annotations

from pathlib import Path

import pytest
from xltransfer.tasks.dp import DependencyParsing, Parse

from xltransfer.data.ud import read_conllu, write_conllu

SENTENCE = (
    "# newdoc id = d1\n"
    "# sent_id = fr-1\n"
    "# text = Il parle du chat.\n"
    "1\tIl\til\tPRON\t_\tPerson=3\t2\tnsubj\t2:nsubj\t_\n"
    "2\tparle\tparler\tVERB\t_\t_\t0\troot\t0:root\t_\n"
    "2.1\tparle\tparler\tVERB\t_\t_\t_\t_\t0:root\t_\n"
    "3-4\tdu\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "3\tde\tde\tADP\t_\t_\t5\tcase\t5:case\t_\n"
    "4\tle\tle\tDET\t_\tDefinite=Def\t5\tdet\t5:det\t_\n"
    "5\tchat\tchat\tNOUN\t_\t_\t2\tobl:arg\t2:obl:arg\tSpaceAfter=No\n"
    "6\t.\t.\tPUNCT\t_\t_\t2\tpunct\t2:punct\t_\n"
    "\n"
)


def _columns(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n")]


def test_only_head_and_deprel_of_words_change(tmp_path):
    gold = tmp_path / "gold.conllu"
    gold.write_text(SENTENCE, encoding="utf-8")
    sentences = read_conllu(gold)
    predicted = Parse((2, 0, 2, 3, 1, 5), ("nsubj", "root", "obl", "det", "nmod", "punct"))
    out = tmp_path / "pred.conllu"
    DependencyParsing().write_predictions(sentences, [predicted], out)
    before, after = _columns(gold), _columns(out)
    assert len(before) == len(after)
    words = 0
    for old, new in zip(before, after, strict=True):
        if old[0].isdigit():
            assert (new[6], new[7]) == (str(predicted.heads[words]), predicted.deprels[words])
            assert new[:6] + new[8:] == old[:6] + old[8:]
            words += 1
        else:  # comments, the multiword token, the empty node, blank lines
            assert new == old
    assert words == 6
    assert read_conllu(out)[0].heads == predicted.heads


def test_wrong_number_of_values_is_an_error(tmp_path):
    gold = tmp_path / "gold.conllu"
    gold.write_text(SENTENCE, encoding="utf-8")
    sentences = read_conllu(gold)
    with pytest.raises(ValueError, match="5 values for head, 6 words"):
        write_conllu(tmp_path / "out.conllu", sentences, [{"head": [0] * 5}])
    with pytest.raises(ValueError, match="2 predictions for 1 sentences"):
        write_conllu(tmp_path / "out.conllu", sentences, [{}, {}])


def test_other_columns_can_be_replaced(tmp_path):
    gold = tmp_path / "gold.conllu"
    gold.write_text(SENTENCE, encoding="utf-8")
    out = tmp_path / "pos.conllu"
    write_conllu(out, read_conllu(gold), [{"upos": ["X"] * 6}])
    (sentence,) = read_conllu(out)
    assert sentence.upos == ("X",) * 6 and sentence.heads == (2, 0, 5, 5, 2, 2)


def test_gold_round_trip_on_every_real_treebank(shared_data, tmp_path):
    """Read, write the gold trees as predictions: HEAD and DEPREL (indeed every byte) come back."""
    task = DependencyParsing()
    files = sorted((shared_data / "ud").glob("UD_*/*.conllu"))
    assert len(files) >= 27
    for path in files:
        sentences = task.read_file(path)
        out = tmp_path / path.name
        task.write_predictions(sentences, [Parse(s.heads, s.deprels) for s in sentences], out)
        if out.read_bytes() != path.read_bytes():  # name the first line whose HEAD or DEPREL differs
            pairs = zip(_columns(path), _columns(out), strict=True)
            for k, (old, new) in enumerate(pairs, start=1):
                assert old[6:8] == new[6:8], f"{path.name}:{k}"
            pytest.fail(f"{path.name}: a column other than HEAD and DEPREL changed")
