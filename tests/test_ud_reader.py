"""Reading real UD treebanks: counts agree with the ``conllu`` package; errors name file and line."""

from __future__ import annotations

import conllu
import pytest
from xltransfer.tasks.pos import PosTagging

from xltransfer.data.ud import read_conllu
from xltransfer.errors import DataFormatError

# treebanks with multiword tokens (and EWT with empty nodes)
TREEBANKS = [
    "UD_English-EWT/en_ewt-ud-dev.conllu",
    "UD_Turkish-IMST/tr_imst-ud-test.conllu",
    "UD_Tamil-TTB/ta_ttb-ud-train.conllu",
    "UD_French-PUD/fr_pud-ud-test.conllu",
    "UD_Wolof-WTB/wo_wtb-ud-dev.conllu",
]


@pytest.mark.parametrize("relative", TREEBANKS)
def test_counts_match_conllu(shared_data, relative):
    path = shared_data / "ud" / relative
    with path.open(encoding="utf-8") as handle:
        reference = conllu.parse(handle.read())
    expected_words = sum(1 for sentence in reference for token in sentence if isinstance(token["id"], int))
    has_mwt = any(isinstance(token["id"], tuple) and token["id"][1] == "-" for s in reference for token in s)
    sentences = PosTagging().read_file(path)
    assert len(sentences) == len(reference)
    assert sum(len(s.words) for s in sentences) == expected_words
    assert has_mwt, "these treebanks were chosen for their multiword tokens"
    # a multiword token's surface line is not a word; its parts are
    surface_tokens = sum(
        1 for s in reference for t in s if not isinstance(t["id"], tuple) or t["id"][1] == "-"
    )
    assert expected_words != surface_tokens


def test_counts_match_manifest(shared_data):
    """The data README's own counts (sentences / syntactic words) for EWT dev."""
    sentences = read_conllu(shared_data / "ud/UD_English-EWT/en_ewt-ud-dev.conllu")
    assert (len(sentences), sum(len(s.words) for s in sentences)) == (2001, 25147)


def _write(tmp_path, text):
    path = tmp_path / "bad.conllu"
    path.write_text(text, encoding="utf-8")
    return path


def test_wrong_column_count_names_line(tmp_path):
    path = _write(tmp_path, "# sent_id = 1\n1\tA\ta\tNOUN\t_\t_\t0\troot\t_\t_\n2\tb\tb\tVERB\t_\t_\t1\n\n")
    with pytest.raises(DataFormatError) as info:
        read_conllu(path)
    assert (
        info.value.line == 3
        and "10 tab-separated columns" in str(info.value)
        and "bad.conllu:3" in str(info.value)
    )


def test_non_integer_head_names_line(tmp_path):
    good = "1\tA\ta\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
    path = _write(tmp_path, good + "1\tB\tb\tNOUN\t_\t_\tx\troot\t_\t_\n\n")
    with pytest.raises(DataFormatError) as info:
        read_conllu(path)
    assert info.value.line == 3 and "HEAD" in str(info.value)


def test_unknown_upos_is_an_error(tmp_path):
    path = _write(tmp_path, "1\tA\ta\tNOUNY\t_\t_\t0\troot\t_\t_\n\n")
    with pytest.raises(DataFormatError, match="unknown UPOS 'NOUNY'"):
        PosTagging().read_file(path)
