"""Training one model on several (task, language) pairs at once: the mixed setting's multi-task models.

Each pair is a stream of homogeneous batches (one task, one language), drawn with temperature
sampling over the pairs' training sizes (Hyper-X, Appendix B.1), and a checkpoint is scored by the
average main metric over the pairs' dev sets (Hyper-X §4: "the average validation score"). A
method says what runs a pair's batch (which head, which generated adapter); this module builds
the streams and the selection score, for Hyper-X's hypernetwork and full fine-tuning's mBERT alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xltransfer.train import (
    EVAL_BATCH_SIZE,
    Batch,
    Stream,
    batches_forever,
    fixed_batches,
    predict_all,
    sampled,
    selection_splits,  # the one rule for single- and multi-task trainers
)

Pairs = Sequence[tuple[str, Sequence[str]]]  # (task, languages trained on it)
# (task, language) -> the loss of one of the pair's batches, run the way the method runs that pair
PairLoss = Callable[[str, str, Callable[[Any, Batch], Any]], Callable[[Any, Batch], Any]]


@dataclass
class PairDevSet:
    task: Any  # the Task
    language: str
    examples: list
    batches: list[Batch]


def pair_streams(
    ctx, pairs: Pairs, batch_size: int, seed: int, loss_for: PairLoss
) -> tuple[list[Stream], dict[str, int]]:
    """One stream per pair, named "task/language", and the pairs' training sizes (for sampling)."""
    streams, sizes = [], {}
    for task_name, languages in pairs:
        task, tokenizer = ctx.task(task_name), ctx.tokenizer_for(task_name)
        for i, language in enumerate(languages):
            features = ctx.features(task_name, language, "train")
            batches = batches_forever(
                features, lambda f, t=task, k=tokenizer: t.collate(f, k), batch_size, seed + i
            )
            name = f"{task_name}/{language}"
            streams.append(Stream(name, batches, loss_for(task_name, language, task.loss)))
            sizes[name] = len(features)
    return streams, sizes


def temperature_sampler(streams: Sequence[Stream], sizes: dict, temperature: float, seed: int):
    """Which stream each step draws from: probability ∝ (n_pair / N)^(1/T)."""
    from xltransfer.data.parallel import temperature_weights

    shares = temperature_weights(sizes, temperature)
    return sampled([shares.get(stream.name, 0.0) for stream in streams], seed)


def pair_dev_sets(ctx, pairs: Pairs) -> list[PairDevSet]:
    """The sets a checkpoint is scored on (``selection_splits``), encoded once."""
    dev_sets = []
    for task_name, language, split in selection_splits(ctx, pairs):
        task, tokenizer = ctx.task(task_name), ctx.tokenizer_for(task_name)
        batches = fixed_batches(
            ctx.features(task_name, language, split),
            lambda f, t=task, k=tokenizer: t.collate(f, k),
            EVAL_BATCH_SIZE,
        )
        dev_sets.append(PairDevSet(task, language, ctx.examples(task_name, language, split), batches))
    return dev_sets


def average_dev_score(model, dev_sets: Sequence[PairDevSet], ready: Callable[[Any, str, str], None]) -> float:
    """The average main metric over the pairs (all higher-is-better: accuracy, F1, LAS);
    ``ready(model, task, language)`` sets the model up for a pair before it is scored."""
    scores = []
    for dev in dev_sets:
        ready(model, dev.task.name, dev.language)
        predictions = predict_all(model, dev.task.predict, dev.batches)
        scores.append(dev.task.score(dev.examples, predictions)[dev.task.metadata.main_metric])
    return sum(scores) / len(scores)
