"""NER: BIO reading (counts, strict tags, language prefixes), seqeval scoring via the CLI, head I/O."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import fixed_vocab_tokenizer, overfit_one_batch, tiny_adapter_model
from seqeval.metrics import f1_score, precision_score, recall_score
from typer.testing import CliRunner
from xltransfer.tasks.ner import WIKIANN_TAGS, NamedEntityRecognition, tags_outside_inventory

from xltransfer.cli import app
from xltransfer.data.bio import BioSentence, read_bio
from xltransfer.errors import DataFormatError

# sentences, tokens and entities by type (B- tags), from ../shared/data/README.md
README_COUNTS = {
    "wikiann_panx/swa/train.txt": (1000, 5597, {"LOC": 447, "ORG": 319, "PER": 445}),
    "wikiann_panx/swa/test.txt": (1000, 5786, {"LOC": 388, "ORG": 374, "PER": 432}),
    "wikiann_panx/yor/dev.txt": (100, 489, {"LOC": 36, "ORG": 35, "PER": 36}),
    "masakhaner2/wol/dev.txt": (656, 19676, {"DATE": 79, "LOC": 245, "ORG": 186, "PER": 264}),
    "masakhaner2/yor/test.txt": (1964, 45653, {"DATE": 312, "LOC": 528, "ORG": 402, "PER": 766}),
}


def evaluate(gold: Path, pred: Path):
    return CliRunner().invoke(
        app, ["evaluate", "--task", "ner", "--gold", str(gold), "--pred", str(pred), "--json"]
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(README_COUNTS))
def test_reading_counts_match_the_data_readme(shared_data, name):
    sentences = read_bio(shared_data / "ner" / name)
    n_sentences, n_tokens, entities = README_COUNTS[name]
    assert len(sentences) == n_sentences
    assert sum(len(s.tokens) for s in sentences) == n_tokens
    assert Counter(t[2:] for s in sentences for t in s.tags if t.startswith("B-")) == entities


def perturb(lines: list[str]) -> list[str]:
    """Deterministic, valid-tag changes: retype some entities, drop some, invent some."""
    out = []
    for i, line in enumerate(lines):
        if line.strip():
            token, tag = line.split()
            if tag == "B-PER" and i % 3 == 0:
                tag = "B-ORG"
            elif tag.startswith("I-") and i % 4 == 0:
                tag = "O"
            elif tag == "O" and i % 11 == 0:
                tag = "B-LOC"
            line = f"{token} {tag}"
        out.append(line)
    return out


def test_cli_scores_equal_seqeval(shared_data, tmp_path):
    gold = shared_data / "ner/wikiann_panx/swa/test.txt"
    lines = gold.read_text(encoding="utf-8").split("\n")
    pred = write(tmp_path / "pred.txt", "\n".join(perturb(lines)))

    def tag_sequences(text: str) -> list[list[str]]:
        blocks = [b for b in text.split("\n\n") if b.strip()]
        return [[line.split()[-1] for line in b.strip().split("\n")] for b in blocks]

    y_true = tag_sequences(gold.read_text(encoding="utf-8"))
    y_pred = tag_sequences(pred.read_text(encoding="utf-8"))
    result = evaluate(gold, pred)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["f1"] == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
    assert scores["precision"] == pytest.approx(precision_score(y_true, y_pred), abs=1e-12)
    assert scores["recall"] == pytest.approx(recall_score(y_true, y_pred), abs=1e-12)
    assert 0.3 < scores["f1"] < 0.95 and scores["precision"] != scores["recall"]


def test_gold_types_outside_the_inventory_are_scored_as_they_are(shared_data, tmp_path):
    gold = shared_data / "ner/masakhaner2/wol/dev.txt"
    result = evaluate(gold, gold)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"f1": 1.0, "precision": 1.0, "recall": 1.0}
    # a model can only say PER/ORG/LOC: DATE entities count as missed, not as absent
    task = NamedEntityRecognition()
    sentences = task.read_file(gold)
    no_dates = [[t if "DATE" not in t else "O" for t in s.tags] for s in sentences]
    recall = task.score(sentences, no_dates)["recall"]
    assert recall == pytest.approx((264 + 245 + 186) / (264 + 245 + 186 + 79))
    assert tags_outside_inventory(sentences) == Counter({"B-DATE": 79, "I-DATE": 189})


def test_invalid_tag_is_exit_2_naming_file_and_line(tmp_path):
    gold = write(tmp_path / "gold.txt", "Kenyatta B-PER\nalifika O\n\nNairobi B_LOC\n")
    result = evaluate(gold, gold)
    assert result.exit_code == 2
    assert f"{gold}:4" in result.output and "B_LOC" in result.output


@pytest.mark.parametrize("bad", ["Nairobi", "Nairobi S-LOC", "Nairobi B-", "Nairobi LOC"])
def test_malformed_lines_name_their_line(tmp_path, bad):
    path = write(tmp_path / "bad.txt", f"-DOCSTART- O\n\nKenyatta B-PER\n{bad}\n")
    with pytest.raises(DataFormatError) as error:
        read_bio(path)
    assert error.value.line == 4


def test_misaligned_prediction_file_is_exit_2(shared_data):
    gold = shared_data / "ner/wikiann_panx/swa/test.txt"
    result = evaluate(gold, shared_data / "ner/wikiann_panx/swa/dev.txt")
    assert result.exit_code == 2


def test_language_prefix_stripped_only_when_every_token_has_the_same_code(tmp_path):
    prefixed = write(tmp_path / "yo.txt", "yo:Èkó B-LOC\nyo:ni O\n\nyo:10:30 O\nyo:Ade B-PER\n")
    sentences = read_bio(prefixed)
    assert [s.tokens for s in sentences] == [("Èkó", "ni"), ("10:30", "Ade")]
    assert [s.line for s in sentences] == [1, 4]
    cantonese = write(tmp_path / "yue.txt", "zh-yue:香港 B-LOC\nzh-yue:: O\n")
    assert read_bio(cantonese)[0].tokens == ("香港", ":")
    for text in (
        "10:30 O\nhttp://x.org O\n",  # not language codes
        "yo:Èkó B-LOC\nsw:ni O\n",  # two different codes
        "yo:Èkó B-LOC\nni O\n",  # not every token
        "zz:Èkó B-LOC\nzz:ni O\n",  # the same prefix, but no ISO 639 code
    ):
        path = write(tmp_path / "keep.txt", text)
        assert [t for s in read_bio(path) for t in s.tokens] == [
            line.split()[0] for line in text.splitlines()
        ]


def test_write_predictions_round_trips_and_majority_is_all_outside(shared_data, tmp_path):
    task = NamedEntityRecognition()
    gold = task.read_file(shared_data / "ner/wikiann_panx/yor/test.txt")
    majority = task.majority_predictions(task.read_file(shared_data / "ner/wikiann_panx/yor/train.txt"), gold)
    assert {t for tags in majority for t in tags} == {"O"}
    assert task.score(gold, majority)["f1"] == 0.0
    shifted = [list(s.tags[1:]) + ["O"] for s in gold]
    task.write_predictions(gold, shifted, tmp_path / "pred.txt")
    assert task.predictions_from_file(gold, tmp_path / "pred.txt") == shifted


def test_hub_rows_map_tag_ids_through_the_feature_names(monkeypatch):
    import datasets

    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"]  # not WIKIANN_TAGS' order
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = datasets.Dataset.from_dict({"tokens": [["Ade", "Èkó"]], "ner_tags": [[3, 1]]}, features=features)
    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", lambda *args: rows)
    (sentence,) = NamedEntityRecognition().read_hub("unimelb-nlp/wikiann", "yo", "train", None)
    assert sentence.tags == ("B-PER", "B-LOC")


# -- the head on a tiny model -----------------------------------------------------------------------

WORDS = ["Rais", "Kenyatta", "alitembelea", "Nai", "##robi", "jana", "na", "Equity", "Bank"]
SENTENCES = [
    BioSentence(
        ("Rais", "Kenyatta", "alitembelea", "Nairobi", "jana"), ("O", "B-PER", "O", "B-LOC", "B-DATE"), 1
    ),
    BioSentence(("Equity", "Bank", "na", "Kenyatta"), ("B-ORG", "I-ORG", "O", "B-PER"), 7),
    BioSentence(("Nairobi", "na", "Rais"), ("B-LOC", "O", "O"), 12),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tokenizer = fixed_vocab_tokenizer(WORDS)
    model = tiny_adapter_model(tmp_path_factory.mktemp("tiny-bert"), len(tokenizer))
    NamedEntityRecognition().add_head(model, "ner")
    model.active_head = "ner"
    return model, tokenizer


def test_labels_sit_on_first_subwords_and_unknown_types_become_outside(tiny, caplog):
    _, tokenizer = tiny
    with caplog.at_level("WARNING"):
        (feature,) = NamedEntityRecognition().encode(SENTENCES[:1], tokenizer, 32)
    tag = {t: i for i, t in enumerate(WIKIANN_TAGS)}
    # [CLS] Rais Kenyatta alitembelea Nai ##robi jana [SEP]
    assert feature["labels"] == [-100, tag["O"], tag["B-PER"], tag["O"], tag["B-LOC"], -100, tag["O"], -100]
    assert feature["meta_word"] == [-1, 0, 1, 2, 3, -1, 4, -1]
    assert "B-DATE" in caplog.text


def test_collate_loss_and_predict(tiny):
    model, tokenizer = tiny
    task = NamedEntityRecognition()
    batch = task.collate(task.encode(SENTENCES, tokenizer, 32), tokenizer)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape == (3, 8)
    assert batch["meta_n_words"].tolist() == [5, 4, 3]
    first, last = overfit_one_batch(model, task, batch, learning_rate=3e-3)
    assert last < first / 10
    with torch.no_grad():
        predicted = task.predict(model, batch)
    expected = [[t if t in WIKIANN_TAGS else "O" for t in s.tags] for s in SENTENCES]
    assert predicted == expected
    assert task.score(SENTENCES, predicted)["precision"] == 1.0


def test_words_cut_by_truncation_are_predicted_outside(tiny):
    model, tokenizer = tiny
    task = NamedEntityRecognition()
    batch = task.collate(task.encode(SENTENCES[:1], tokenizer, 4), tokenizer)  # [CLS] Rais Kenyatta [SEP]
    with torch.no_grad():
        (predicted,) = task.predict(model, batch)
    assert len(predicted) == 5 and predicted[2:] == ["O", "O", "O"]
