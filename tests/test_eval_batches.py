"""Evaluation batches grouped by length: less padding, and predictions in the examples' order."""

from __future__ import annotations

import pytest
import torch
from conftest import character_tokenizer, tiny_adapter_model

from xltransfer import registry
from xltransfer.train import LengthGrouped, fixed_batches, predict_all


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, shared_data):
    """A random 1-layer BERT with character subwords and a POS head, and a real UD test file."""
    task = registry.tasks.get("pos")()
    sentences = task.read_file(shared_data / "ud/UD_Turkish-IMST/tr_imst-ud-test.conllu")[:300]
    folder = tmp_path_factory.mktemp("tagger")
    tokenizer = character_tokenizer([w for s in sentences for w in s.words], folder)
    model = tiny_adapter_model(folder, len(tokenizer))
    task.add_head(model, "task_pos")
    model.active_head = "task_pos"
    return task, model, tokenizer, sentences


def test_grouped_batches_pad_less_and_predict_exactly_what_arrival_order_does(tagger):
    task, model, tokenizer, sentences = tagger
    features = task.encode(sentences, tokenizer, 128)

    def collate(chunk):
        return task.collate(chunk, tokenizer)

    arrival = [collate(features[i : i + 32]) for i in range(0, len(features), 32)]
    grouped = fixed_batches(features, collate, 32)
    assert isinstance(grouped, LengthGrouped) and len(grouped) == len(arrival)
    padded = sum(b["input_ids"].numel() for b in grouped)
    assert padded < 0.8 * sum(b["input_ids"].numel() for b in arrival)
    expected = predict_all(model, task.predict, arrival)
    predictions = predict_all(model, task.predict, grouped)
    assert predictions == expected  # each prediction back at its own example
    assert [len(p) for p in predictions] == [len(s.words) for s in sentences]
    assert task.score(sentences, predictions) == task.score(sentences, expected)


def test_restore_puts_outputs_back_and_refuses_a_wrong_count():
    features = [{"input_ids": [0] * n} for n in (5, 2, 9, 2, 1)]

    def collate(chunk):
        return {"n": torch.tensor([len(f["input_ids"]) for f in chunk])}

    batches = fixed_batches(features, collate, 2)
    assert [b["n"].tolist() for b in batches] == [[1, 2], [2, 5], [9]]
    lengths = [n for b in batches for n in b["n"].tolist()]
    assert batches.restore(lengths) == [5, 2, 9, 2, 1]
    with pytest.raises(ValueError, match="4 predictions for 5 examples"):
        batches.restore(lengths[:4])
