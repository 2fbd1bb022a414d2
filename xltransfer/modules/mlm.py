"""Masked language modelling, with the vocabulary projection computed at masked positions only.

mBERT's decoder (768 x 119,547) costs more per token than the whole encoder, and only 15% of
positions carry a loss. Gathering the masked hidden states before the head gives the same loss
at a fraction of the cost. Every MLM-trained piece (language, bilingual, multilingual adapters,
the quickstart backbone) goes through this one function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xltransfer.data.subwords import IGNORE

# Devlin et al. 2019, §3.1: mask 15% of tokens; of those 80% [MASK], 10% random, 10% unchanged.
MASK_PROBABILITY = 0.15
EVAL_MASK_SEED = 1234  # held-out text is corrupted the same way for every model compared on it


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    tokenizer,
    generator: torch.Generator,
    probability: float = MASK_PROBABILITY,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 corruption; returns (corrupted ids, labels with -100 where not masked)."""
    labels = input_ids.clone()
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    for token_id in tokenizer.all_special_ids:
        special |= input_ids == token_id
    candidates = attention_mask.bool() & ~special
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & candidates
    # guarantee at least one masked token per sequence that has a candidate, so no row is wasted
    none = ~chosen.any(dim=1) & candidates.any(dim=1)
    if none.any():
        scores = torch.rand(input_ids.shape, generator=generator).masked_fill(~candidates, -1.0)
        first = scores.argmax(dim=1)
        chosen[none, first[none]] = True
    labels[~chosen] = IGNORE
    corrupted = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=generator)
    corrupted[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    random_positions = chosen & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(len(tokenizer), input_ids.shape, generator=generator)
    corrupted[random_positions] = random_ids[random_positions]
    return corrupted, labels


def mlm_logits_at(model, hidden: torch.Tensor, head_name: str = "default") -> torch.Tensor:
    """The MLM head of an ``adapters`` flexible-head model applied to some hidden states.

    Mirrors the library's BertStyleMaskedLMHead: transform layers, then the inverse of the
    active invertible adapter (MAD-X), then the tied vocabulary projection.
    """
    head = model.heads[head_name]
    layers = list(head)
    x = hidden
    for layer in layers[:-1]:
        x = layer(x)
    get_inv = getattr(model.base_model, "get_invertible_adapter", None)
    inv = get_inv() if get_inv is not None else None
    if inv is not None:  # the library's invertible adapters split (batch, length, hidden) tensors
        x = inv(x.unsqueeze(0), rev=True).squeeze(0) if x.dim() == 2 else inv(x, rev=True)
    return layers[-1](x)


def masked_lm_loss(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    head_name: str = "default",
    reduction: str = "mean",
    all_positions: bool = False,
) -> torch.Tensor:
    """Cross-entropy over masked positions. ``all_positions`` is the usual (slow) head, kept
    only so the benchmark can compare the two in one run."""
    hidden = _encoder_states(model, input_ids, attention_mask)
    if all_positions:
        logits = mlm_logits_at(model, hidden, head_name)
        return F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction=reduction
        )
    positions = labels != IGNORE
    logits = mlm_logits_at(model, hidden[positions], head_name)
    return F.cross_entropy(logits, labels[positions], reduction=reduction)


def _encoder_states(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return model.base_model(
        input_ids=input_ids, attention_mask=attention_mask, return_dict=True
    ).last_hidden_state


def mlm_features(
    ctx,
    language: str,
    split: str,
    packed: bool,
    max_length: int | None = None,
    line_markers: bool = False,
) -> list:
    """A language's MLM examples as a method trains on them: one per sentence (Hyper-X), or the
    text packed into ``max_length`` blocks (adapter MLM: MAD-X, BAD-X, MAD-G; ``line_markers``: each
    sentence keeps its markers inside the blocks, see ``corpus.packing_markers``), computed once per
    run. ``max_length``: the examples' length when it is not the grid's (the LAs' 512-token blocks).
    Held-out perplexity is computed on the same kind of examples as training."""
    length = max_length or ctx.grid.max_length
    if not packed and length == ctx.grid.max_length:
        return ctx.features("mlm", language, split)
    kind = ("mlm-line-packed" if line_markers else "mlm-packed") if packed else "mlm-sentences"
    key = (kind, language, split, length)
    if key not in ctx.memo:
        mlm = ctx.task("mlm")
        examples = ctx.examples("mlm", language, split)
        if packed:
            ctx.memo[key] = mlm.encode_packed(examples, ctx.tokenizer, length, line_markers)
        else:
            ctx.memo[key] = mlm.encode(examples, ctx.tokenizer, length)
    return ctx.memo[key]


def mlm_stream(
    name: str,
    mlm_task,
    features,
    tokenizer,
    batch_size: int,
    seed: int,
    prepare=None,
    in_order: bool = False,
):
    """An endless stream of freshly corrupted MLM batches of one language's text: shuffled epoch
    after epoch, or (``in_order``) the examples in their order, cycled (``train.batches_in_order``)."""
    from xltransfer.train import Stream, batches_forever, batches_in_order

    generator = torch.Generator().manual_seed(seed)
    collate = lambda f: mlm_task.collate(f, tokenizer)  # noqa: E731
    batches = (
        batches_in_order(features, collate, batch_size)
        if in_order
        else batches_forever(features, collate, batch_size, seed)
    )
    corrupted = (mlm_task.corrupt(b, tokenizer, generator) for b in batches)

    def loss(model, batch):
        if prepare is not None:
            prepare(model)
        return mlm_task.loss(model, batch)

    return Stream(name, corrupted, loss, prefetch=True)  # its own seeded generators only


def mlm_eval_batches(mlm_task, features, tokenizer, batch_size: int = 64) -> list:
    """Held-out batches corrupted once with a fixed seed, so checkpoints are compared fairly."""
    from xltransfer.train import fixed_batches

    generator = torch.Generator().manual_seed(EVAL_MASK_SEED)
    return [
        mlm_task.corrupt(b, tokenizer, generator)
        for b in fixed_batches(features, lambda f: mlm_task.collate(f, tokenizer), batch_size)
    ]


def perplexity(model, mlm_task, batches) -> float:
    from xltransfer.train import predict_all

    return mlm_task.score([], predict_all(model, mlm_task.predict, batches))["perplexity"]
