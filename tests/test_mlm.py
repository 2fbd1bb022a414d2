"""MLM: the masked-positions-only head gives the library head's loss; masking follows BERT's rule."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from xltransfer.backbone import load_adapter_model
from xltransfer.modules.mlm import mask_tokens, masked_lm_loss


@pytest.fixture(scope="module")
def model_with_la(tmp_path_factory):
    from adapters import SeqBnInvConfig
    from adapters.composition import Stack

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertForMaskedLM(config).save_pretrained(folder)
    model = load_adapter_model(folder)
    model.add_adapter("lang_xx", config=SeqBnInvConfig(reduction_factor=2))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lang_xx." in name:
                param.normal_(0, 0.2)  # so the adapter (and its inverse before the head) matters
    model.active_adapters = Stack("lang_xx")
    model.active_head = "default"
    model.eval()
    return model


def test_masked_only_equals_library_head(model_with_la):
    ids = torch.randint(5, 300, (4, 11))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    labels[2, 7] = ids[2, 7]
    reference = model_with_la(input_ids=ids, attention_mask=mask, labels=labels).loss
    fast = masked_lm_loss(model_with_la, ids, mask, labels)
    slow = masked_lm_loss(model_with_la, ids, mask, labels, all_positions=True)
    assert torch.allclose(fast, reference, atol=1e-5) and torch.allclose(slow, reference, atol=1e-5)
    model_with_la.active_adapters = None
    try:
        assert not torch.allclose(masked_lm_loss(model_with_la, ids, mask, labels), reference, atol=1e-4)
    finally:
        from adapters.composition import Stack

        model_with_la.active_adapters = Stack("lang_xx")


def test_pretrained_decoder_bias_is_restored(tmp_path):
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    static = BertForMaskedLM(config)
    with torch.no_grad():
        static.cls.predictions.bias.normal_()
    static.save_pretrained(tmp_path)
    model = load_adapter_model(tmp_path)
    assert torch.allclose(list(model.heads["default"])[-1].bias, static.cls.predictions.bias)


class _Tokenizer:
    all_special_ids = [0, 1, 2]
    mask_token_id = 3

    def __len__(self) -> int:
        return 1000


def test_masking_rate_and_80_10_10():
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (400, 100))
    ids[:, 0] = 1
    attention = torch.ones_like(ids)
    corrupted, labels = mask_tokens(ids, attention, _Tokenizer(), generator)
    chosen = labels != -100
    assert not chosen[:, 0].any(), "special tokens are never masked"
    rate = chosen.float().mean().item()
    assert 0.14 < rate < 0.16
    as_mask = (corrupted[chosen] == 3).float().mean().item()
    unchanged = (corrupted[chosen] == ids[chosen]).float().mean().item()
    assert 0.78 < as_mask < 0.82 and 0.08 < unchanged < 0.12
    assert torch.equal(labels[chosen], ids[chosen])


def test_mlm_predictions_file_rescores_to_the_same_perplexity(tmp_path):
    """A cell's MLM predictions (per sentence: the masked tokens' summed NLL and their count) round
    trip through the file `xlt evaluate --task mlm` reads."""
    from xltransfer import registry

    mlm = registry.tasks.get("mlm")()
    sentences = ["a b c", "d\te f", "g"]
    predictions = [(3.25, 2), (0.5, 1), (7.0, 3)]
    mlm.write_predictions(sentences, predictions, tmp_path / "p.tsv")
    assert mlm.predictions_from_file(sentences, tmp_path / "p.tsv") == predictions
    assert mlm.score(sentences, mlm.predictions_from_file(sentences, tmp_path / "p.tsv")) == mlm.score(
        sentences, predictions
    )
