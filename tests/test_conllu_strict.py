"""CoNLL-U as the CoNLL 2018 scorer reads it: malformed multiword ranges and trees with several roots
are refused, naming file and line; a UTF-8 byte-order mark is dropped by every reader alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner
from xltransfer.tasks.dp import DependencyParsing
from xltransfer.tasks.mlm import MaskedLanguageModelling
from xltransfer.tasks.mt import MachineTranslation
from xltransfer.tasks.ner import NamedEntityRecognition
from xltransfer.tasks.nli import NaturalLanguageInference

from xltransfer.cli import app
from xltransfer.data.ud import read_conllu
from xltransfer.errors import DataFormatError


def _word(i: int, form: str, head: int) -> str:
    return f"{i}\t{form}\t{form.lower()}\tNOUN\t_\t_\t{head}\t{'root' if head == 0 else 'nmod'}\t_\t_"


def _range(span: str, form: str = "Xy") -> str:
    return f"{span}\t{form}\t_\t_\t_\t_\t_\t_\t_\t_"


W1, W2, W3 = _word(1, "A", 0), _word(2, "b", 1), _word(3, "c", 1)

MALFORMED = {  # lines of the sentence, index of the faulty one, the error
    "backwards": ([_range("2-1"), W1, W2, W3], 0, "two words or more"),
    "one word": ([W1, _range("2-2"), W2, W3], 1, "two words or more"),
    "past the sentence": ([_range("1-9"), W1, W2, W3], 0, "past the sentence"),
    "overlapping": ([_range("1-2"), W1, _range("2-3"), W2, W3], 2, "overlaps"),
    "after its words": ([W1, W2, _range("1-2"), W3], 2, "right before word 1"),
}


def _write(tmp_path: Path, lines: list[str], name: str = "s.conllu") -> Path:
    path = tmp_path / name
    path.write_text("# sent_id = s1\n" + "\n".join(lines) + "\n\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_multiword_range_is_refused(case, tmp_path):
    lines, index, message = MALFORMED[case]
    with pytest.raises(DataFormatError, match=message) as info:
        read_conllu(_write(tmp_path, lines))
    assert info.value.line == index + 2  # after the comment line, 1-based


def test_well_formed_ranges_read_with_empty_nodes_among_their_words(tmp_path):
    empty = "1.1\tz\tz\tNOUN\t_\t_\t_\t_\t1:dep\t_"
    sentence = read_conllu(
        _write(tmp_path, [_range("1-2"), W1, empty, W2, _range("3-4"), W3, _word(4, "d", 3)])
    )
    assert sentence[0].words == ("A", "b", "c", "d")


def _udeval_refuses(path: Path) -> str:
    """The official scorer's error for a file (udtools: a test dependency)."""
    try:
        from udtools import udeval
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("udtools (the official CoNLL 2018 scorer) is not installed")
    with pytest.raises(udeval.UDError) as info:
        udeval.load_conllu_file(str(path))
    return str(info.value)


def test_several_roots_are_refused_in_gold_and_predictions_as_the_scorer_does(tmp_path):
    one_root = _write(tmp_path, [W1, W2, W3], "one-root.conllu")
    two_roots = _write(tmp_path, [W1, W2, _word(3, "c", 0)], "two-roots.conllu")
    assert "multiple roots" in _udeval_refuses(two_roots)
    with pytest.raises(DataFormatError, match="several roots") as info:
        DependencyParsing().read_file(two_roots)
    assert info.value.line == 4
    for gold, pred in ((one_root, two_roots), (two_roots, one_root)):  # predictions, then gold
        args = ["evaluate", "--task", "dp", "--gold", str(gold), "--pred", str(pred)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "two-roots.conllu:4: several roots" in result.output


BOM_FILES = {
    "conllu": (DependencyParsing, "s.conllu", "# sent_id = s1\n" + "\n".join([W1, W2, W3]) + "\n\n"),
    "bio": (NamedEntityRecognition, "s.txt", "Paris B-LOC\nis O\n\n"),
    "nli": (NaturalLanguageInference, "s.tsv", "premise\thypothesis\tlabel\nA b.\tB a.\tneutral\n"),
    "mt": (MachineTranslation, "s.txt", "Ein Satz.\nNoch einer.\n"),
    "mlm": (MaskedLanguageModelling, "s.txt", "A sentence.\nAnother.\n"),
}


@pytest.mark.parametrize("reader", sorted(BOM_FILES))
def test_a_byte_order_mark_is_dropped_by_every_reader(reader, tmp_path):
    task, name, text = BOM_FILES[reader]
    plain, marked = tmp_path / "plain" / name, tmp_path / "bom" / name
    for path, prefix in ((plain, ""), (marked, "\ufeff")):
        path.parent.mkdir()
        path.write_text(prefix + text, encoding="utf-8")
    assert repr(task().read_file(marked)).replace("bom", "plain") == repr(task().read_file(plain))
