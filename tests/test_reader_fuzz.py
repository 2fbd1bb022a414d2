"""Every reader of a data or prediction file, fed random and truncated input, returns data or raises
the project's own input error (DataFormatError, naming the file): never another exception."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from xltransfer.tasks.dp import DependencyParsing
from xltransfer.tasks.mlm import MaskedLanguageModelling
from xltransfer.tasks.mt import MachineTranslation
from xltransfer.tasks.ner import NamedEntityRecognition
from xltransfer.tasks.nli import NaturalLanguageInference
from xltransfer.tasks.pos import PosTagging

from xltransfer.data.parallel import read_aligned
from xltransfer.errors import DataFormatError

CONLLU = (
    "# sent_id = a\n# text = Its owner's left\n"
    "1\tIts\tits\tPRON\t_\t_\t2\tnmod:poss\t_\t_\n"
    "2-3\towner's\t_\t_\t_\t_\t_\t_\t_\t_\n"
    "2\towner\towner\tNOUN\t_\t_\t4\tnsubj\t_\t_\n"
    "3\t's\t's\tPART\t_\t_\t2\tcase\t_\t_\n"
    "3.1\tz\tz\tNOUN\t_\t_\t_\t_\t2:dep\t_\n"
    "4\tleft\tleave\tVERB\t_\t_\t0\troot\t_\t_\n\n"
    "# sent_id = b\n1\tGo\tgo\tVERB\t_\t_\t0\troot\t_\t_\n2\t!\t!\tPUNCT\t_\t_\t1\tpunct\t_\t_\n\n"
)
BIO = "-DOCSTART- O\n\nen:Paris B-LOC\nen:is O\nen:big O\n\nen:Ada B-PER\nen:Lovelace I-PER\n"
NLI_TSV = (
    "id\tpremise\thypothesis\tlabel\n"
    "1\tA man sleeps.\tA man rests.\tentailment\n2\tIt rains.\tIt is dry.\tcontradictory\n"
)
NLI_JSONL = (
    '{"pairID": "1", "sentence1": "A b.", "sentence2": "C d.", "gold_label": "neutral"}\n'
    '{"pairID": "2", "sentence1": "E f.", "sentence2": "G h.", "gold_label": "-"}\n'
)
MT_TSV = "en\tde\nA sentence.\tEin Satz.\nAnother one.\tNoch einer.\n"
LINES = "A sentence.\nAnother one.\n"

# reader -> (file name, a valid file, a function of the path that reads it)
READERS = {
    "pos": ("a.conllu", CONLLU, PosTagging().read_file),
    "dp": ("a.conllu", CONLLU, DependencyParsing().read_file),
    "mlm conllu": ("a.conllu", CONLLU, MaskedLanguageModelling().read_file),
    "mlm text": ("a.txt", LINES, MaskedLanguageModelling().read_file),
    "ner": ("a.txt", BIO, NamedEntityRecognition().read_file),
    "nli tsv": ("a.tsv", NLI_TSV, NaturalLanguageInference().read_file),
    "nli jsonl": ("a.jsonl", NLI_JSONL, NaturalLanguageInference().read_file),
    "mt tsv": ("en-de.tsv", MT_TSV, MachineTranslation().read_file),
    "mt references": ("a.txt", LINES, MachineTranslation().read_file),
    "mt aligned": ("a.txt", LINES, lambda path: read_aligned(path, path.with_name("b.txt"), "en", "de")),
}
GOLD = {  # reader -> (task, gold file): predictions are read against it
    "pos": (PosTagging(), "a.conllu", CONLLU),
    "dp": (DependencyParsing(), "a.conllu", CONLLU),
    "ner": (NamedEntityRecognition(), "a.txt", BIO),
    "nli": (NaturalLanguageInference(), "a.tsv", NLI_TSV),
    "mt": (MachineTranslation(), "a.txt", LINES),
}

# inputs that once crashed a reader, tried on every reader before the random ones: a HEAD that is not
# a number on a multiword token's line (the conllu parse of the MLM reader), a HEAD of digits that
# int() does not take (a superscript two)
REGRESSIONS = [
    CONLLU.replace("2-3\towner's\t_\t_\t_\t_\t_", "2-3\towner's\t_\t_\t_\t_\t0_").encode(),
    CONLLU.replace("\t4\tnsubj", "\t\u00b2\tnsubj").encode(),
]

# characters the formats give meaning to, so random text often looks almost right
_MEANINGFUL = "\t\n\r -_.#=:{}[]\",'0123456789\ufeffBIO"


def _mutated(valid: str) -> st.SearchStrategy[bytes]:
    """The valid file truncated, with a piece replaced, or random text; sometimes not UTF-8."""
    noise = st.text(alphabet=st.sampled_from(_MEANINGFUL) | st.characters(codec="utf-8"), max_size=40)
    truncated = st.integers(0, len(valid)).map(lambda n: valid[:n])
    replaced = st.tuples(st.integers(0, len(valid)), st.integers(0, 12), noise).map(
        lambda t: valid[: t[0]] + t[2] + valid[t[0] + t[1] :]
    )
    text = st.one_of(truncated, replaced, noise)
    return st.one_of(
        text.map(lambda s: s.encode("utf-8")), st.binary(max_size=60).map(lambda b: valid[:20].encode() + b)
    )


FUZZ = settings(
    max_examples=int(os.environ.get("XLT_FUZZ_EXAMPLES", 40)),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _outcome(read, path: Path):
    try:
        return read(path)
    except DataFormatError as error:
        assert str(path.name) in str(error)
        return None


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_reader_returns_data_or_a_data_format_error(reader, tmp_path):
    name, valid, read = READERS[reader]
    path = tmp_path / name
    (tmp_path / "b.txt").write_text(LINES, encoding="utf-8")  # the other side of "mt aligned"
    assert _outcome(read, _write(path, valid.encode())), "the valid sample must read"

    @FUZZ
    @given(_mutated(valid))
    @example(REGRESSIONS[0])
    @example(REGRESSIONS[1])
    def fuzz(content: bytes) -> None:
        _outcome(read, _write(path, content))

    fuzz()


@pytest.mark.parametrize("task_name", sorted(GOLD))
def test_reading_predictions_against_gold_returns_them_or_a_data_format_error(task_name, tmp_path):
    task, name, valid = GOLD[task_name]
    gold = task.read_file(_write(tmp_path / "gold" / name, valid.encode()))
    path = tmp_path / "pred" / name

    @FUZZ
    @given(_mutated(valid))
    @example(REGRESSIONS[0])
    @example(REGRESSIONS[1])
    def fuzz(content: bytes) -> None:
        _outcome(lambda p: task.predictions_from_file(gold, p), _write(path, content))

    fuzz()


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path
