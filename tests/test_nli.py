"""NLI: TSV/JSONL reading (columns by name, labels by name), accuracy via the CLI, the pair head."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import fixed_vocab_tokenizer, overfit_one_batch, tiny_adapter_model
from typer.testing import CliRunner
from xltransfer.tasks.nli import NaturalLanguageInference

from xltransfer.cli import app
from xltransfer.data.nli import NLI_LABELS, NliPair, read_nli
from xltransfer.errors import DataFormatError

# pairs and label counts (contradiction, entailment, neutral), from ../shared/data/README.md
README_COUNTS = {
    "dev/aym.tsv": (743, 248, 248, 247),
    "dev/gn.tsv": (743, 248, 248, 247),
    "dev/nah.tsv": (585, 195, 193, 197),
    "dev/quy.tsv": (743, 248, 248, 247),
    "test/aym.tsv": (750, 250, 250, 250),
    "test/gn.tsv": (750, 250, 250, 250),
    "test/nah.tsv": (738, 245, 246, 247),
    "test/quy.tsv": (750, 250, 250, 250),
}


def evaluate(gold: Path, pred: Path):
    return CliRunner().invoke(
        app, ["evaluate", "--task", "nli", "--gold", str(gold), "--pred", str(pred), "--json"]
    )


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def jsonl(path: Path, records: list[dict]) -> Path:
    return write(path, [json.dumps(r, ensure_ascii=False) for r in records])


@pytest.mark.parametrize("name", sorted(README_COUNTS))
def test_americasnli_counts_match_the_data_readme(shared_data, name):
    path = shared_data / "nli/americasnli" / name
    pairs = read_nli(path)
    n, con, ent, neu = README_COUNTS[name]
    assert len(pairs) == n
    assert Counter(p.label for p in pairs) == {"contradiction": con, "entailment": ent, "neutral": neu}
    # unbalanced quotes do not swallow lines: record i sits on line i + 1 (the header is line 1)
    assert [p.line for p in pairs] == list(range(2, n + 2))


def test_americasnli_against_itself_and_a_shuffled_copy(shared_data, tmp_path):
    gold = shared_data / "nli/americasnli/test/nah.tsv"
    result = evaluate(gold, gold)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"accuracy": 1.0}
    header, *rows = gold.read_text(encoding="utf-8").rstrip("\n").split("\n")
    cycle = {"entailment": "neutral", "neutral": "contradiction", "contradiction": "entailment"}

    def wrong_label(row: str) -> str:
        rest, label = row.rsplit("\t", 1)
        return f"{rest}\t{cycle[label]}"

    changed = [wrong_label(row) if i % 4 == 0 else row for i, row in enumerate(rows)]
    result = evaluate(gold, write(tmp_path / "pred.tsv", [header, *changed]))
    assert result.exit_code == 0, result.output
    wrong = len(range(0, 738, 4))
    assert json.loads(result.stdout)["accuracy"] == pytest.approx((738 - wrong) / 738)


def test_tsv_columns_by_header_name_and_label_aliases(tmp_path):
    # XNLI-style column names in another order, the `contradictory` alias of XNLI-MT files
    gold = write(
        tmp_path / "gold.tsv",
        [
            "pairID\tgold_label\tsentence2\tsentence1",
            '1\tentailment\tA man "sleeps.\tA man sleeps on a sofa.',
            "2\tcontradictory\tNobody sleeps.\tA man sleeps on a sofa.",
            "3\tneutral\tThe sofa is red.\tA man sleeps on a sofa.",
            "4\tcontradiction\tThe man runs.\tA man sleeps on a sofa.",
        ],
    )
    pairs = read_nli(gold)
    assert [p.label for p in pairs] == ["entailment", "contradiction", "neutral", "contradiction"]
    assert pairs[0] == NliPair("A man sleeps on a sofa.", 'A man "sleeps.', "entailment", "1", 2)
    pred = write(
        tmp_path / "pred.tsv",
        ["id\tpremise\thypothesis\tlabel"]
        + [
            f"{p.id}\t{p.premise}\t{p.hypothesis}\t{label}"
            for p, label in zip(
                pairs, ["entailment", "contradiction", "entailment", "entailment"], strict=True
            )
        ],
    )
    result = evaluate(gold, pred)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"accuracy": 0.5}


def test_jsonl_multinli_fields_skip_pairs_without_gold_label(tmp_path):
    records = [
        {"pairID": "a", "sentence1": "P one", "sentence2": "H one", "gold_label": "neutral"},
        {"pairID": "b", "sentence1": "P two", "sentence2": "H two", "gold_label": "-"},
        {"pairID": "c", "sentence1": "P three", "sentence2": "H three", "gold_label": "entailment"},
        {"pairID": "d", "sentence1": "P four", "sentence2": "H four", "gold_label": "contradiction"},
    ]
    gold = jsonl(tmp_path / "gold.jsonl", records)
    assert [(p.id, p.line) for p in read_nli(gold)] == [("a", 1), ("c", 3), ("d", 4)]
    predictions = ["neutral", "entailment", "neutral"]
    kept = [r for r in records if r["gold_label"] != "-"]
    pred = jsonl(
        tmp_path / "pred.jsonl",
        [
            {"premise": r["sentence1"], "hypothesis": r["sentence2"], "label": p}
            for r, p in zip(kept, predictions, strict=True)
        ],
    )
    result = evaluate(gold, pred)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("label", ["-", "Entailment", "entail", "0", ""])
def test_invalid_label_is_exit_2_naming_file_and_line(tmp_path, label):
    gold = write(
        tmp_path / "gold.tsv",
        ["premise\thypothesis\tlabel", "P one\tH one\tneutral", f"P two\tH two\t{label}", "P3\tH3\tneutral"],
    )
    result = evaluate(gold, gold)
    assert result.exit_code == 2
    assert f"{gold}:3" in result.output


def test_numeric_labels_are_not_read_by_position(tmp_path):
    gold = jsonl(tmp_path / "gold.jsonl", [{"premise": "P", "hypothesis": "H", "label": 0}])
    with pytest.raises(DataFormatError) as error:
        read_nli(gold)
    assert error.value.line == 1


@pytest.mark.parametrize(
    ("lines", "line"),
    [
        (["premise\thypothesis", "P\tH"], 1),  # no label column
        (["premise\thypothesis\tlabel", "P\tH\tneutral", "P\tH\tneutral\textra"], 3),
        (["premise\thypothesis\tlabel", "P\tH"], 2),
    ],
)
def test_malformed_tsv_names_its_line(tmp_path, lines, line):
    with pytest.raises(DataFormatError) as error:
        read_nli(write(tmp_path / "bad.tsv", lines))
    assert error.value.line == line


def test_misaligned_prediction_file_is_exit_2(shared_data):
    gold = shared_data / "nli/americasnli/test/aym.tsv"
    result = evaluate(gold, shared_data / "nli/americasnli/test/gn.tsv")  # same ids: aligned
    assert result.exit_code == 0, result.output
    result = evaluate(gold, shared_data / "nli/americasnli/dev/aym.tsv")
    assert result.exit_code == 2


def test_write_predictions_round_trips_and_majority(tmp_path):
    task = NaturalLanguageInference()
    test = [NliPair("P\twith a tab", "H", "neutral", None, 1), NliPair("P2", "H2", "entailment", "x", 2)]
    task.write_predictions(test, ["contradiction", "neutral"], tmp_path / "pred.tsv")
    assert task.predictions_from_file(test, tmp_path / "pred.tsv") == ["contradiction", "neutral"]
    train = [NliPair("p", "h", label, None, 1) for label in ("neutral", "contradiction", "neutral")]
    assert task.majority_predictions(train, test) == ["neutral", "neutral"]


def test_hub_rows_map_labels_by_feature_names(monkeypatch):
    import datasets

    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["contradiction", "entailment", "neutral"]),  # not NLI order
        }
    )
    rows = datasets.Dataset.from_dict(
        {"premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [1, -1, 0]}, features=features
    )
    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", lambda *args: rows)
    pairs = NaturalLanguageInference().read_hub("facebook/xnli", "sw", "test", None)
    assert [(p.premise, p.label, p.line) for p in pairs] == [
        ("a", "entailment", 1),
        ("c", "contradiction", 3),
    ]


# -- the head on a tiny model -----------------------------------------------------------------------

WORDS = ["a", "man", "sleeps", "nobody", "runs", "the", "sofa", "is", "red", "sle", "##eps"]
PAIRS = [
    NliPair("a man sleeps", "a man sleeps", "entailment", "1", 2),
    NliPair("a man sleeps", "nobody sleeps", "contradiction", "2", 3),
    NliPair("a man sleeps", "the sofa is red", "neutral", "3", 4),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tokenizer = fixed_vocab_tokenizer(WORDS)
    model = tiny_adapter_model(tmp_path_factory.mktemp("tiny-bert"), len(tokenizer))
    NaturalLanguageInference().add_head(model, "nli")
    model.active_head = "nli"
    return model, tokenizer


def test_pairs_are_encoded_as_one_sequence_with_segments(tiny):
    _, tokenizer = tiny
    features = NaturalLanguageInference().encode(PAIRS, tokenizer, 32)
    tokens = tokenizer.convert_ids_to_tokens(features[1]["input_ids"])
    assert tokens == ["[CLS]", "a", "man", "sleeps", "[SEP]", "nobody", "sleeps", "[SEP]"]
    assert features[1]["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert [f["labels"] for f in features] == [0, 2, 1]
    truncated = NaturalLanguageInference().encode(PAIRS[2:], tokenizer, 6)[0]
    assert len(truncated["input_ids"]) == 6 and truncated["token_type_ids"][-1] == 1


def test_collate_loss_and_predict(tiny):
    model, tokenizer = tiny
    task = NaturalLanguageInference()
    batch = task.collate(task.encode(PAIRS, tokenizer, 32), tokenizer)
    assert batch["input_ids"].shape == batch["token_type_ids"].shape == (3, 10)
    assert batch["labels"].tolist() == [0, 2, 1]
    assert batch["attention_mask"].sum(dim=1).tolist() == [9, 8, 10]
    assert (batch["token_type_ids"] >= 0).all()  # padded with the tokenizer's value, not -100
    first, last = overfit_one_batch(model, task, batch, learning_rate=1e-2)
    assert last < first / 10
    with torch.no_grad():
        predicted = task.predict(model, batch)
    assert predicted == ["entailment", "contradiction", "neutral"]
    assert task.score(PAIRS, predicted) == {"accuracy": 1.0}


def test_nli_is_encoded_at_128_under_the_authors_length_and_at_the_grids_by_default(tmp_path):
    """parovicm/badx run_anli.py trains and evaluates at max_seq_length 128 (``nli_ta_max_length``,
    set in the bad-x grid); by default the grid's max_length (256 here) holds. The features of each
    length are cached apart."""
    from conftest import files_task_context
    from xltransfer.methods.mad_x import MadX

    long_text = " ".join(["a"] * 300)
    rows = "premise\thypothesis\tlabel\n" + "".join(f"{long_text}\ta a\t{lab}\n" for lab in NLI_LABELS)
    for name in ("train", "dev", "test"):
        (tmp_path / f"{name}.tsv").write_text(rows)
    files = "{qaa: {train: train.tsv, dev: dev.tsv}, qab: {test: test.tsv}}"
    ctx = files_task_context(tmp_path, "nli", files)
    authors = MadX("default", MadX.resolve_params("default", {"nli_ta_max_length": 128}))
    for method, length in ((MadX(), 256), (authors, 128)):
        encoding = method.encoding("nli")
        assert encoding.length(ctx.grid, "nli") == length  # what Method.predict encodes the test set at
        for split in ("train", "dev"):
            features = ctx.features("nli", "qaa", split, encoding)
            assert {len(f["input_ids"]) for f in features} == {length}
    assert {len(f["input_ids"]) for f in ctx.features("nli", "qaa", "train")} == {256}
    # POS and DP keep the grid's length under the NLI setting
    assert authors.encoding("pos").length(ctx.grid, "pos") == 256
    with pytest.raises(ValueError, match="nli_ta_max_length"):
        MadX.resolve_params("default", {"nli_ta_max_length": -128})
