"""The one training loop every method uses: multi-stream sampling, schedule, evaluation, selection.

A method describes *what* to train (which parameters, which batches, which loss, how to score a
checkpoint); this module decides *how*: AdamW, warm-up and decay, periodic evaluation, and
keeping the best checkpoint of the trainable parameters (as the papers select on dev).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from xltransfer import precision
from xltransfer.progress import Progress, SilentProgress

Batch = dict[str, torch.Tensor]
EVAL_BATCH_SIZE = 32
FIRST_STREAMS = 24  # how much of the batch order a result keeps, to show a schedule was followed


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    learning_rate: float
    eval_every: int
    warmup_steps: int = 0
    # "linear" to zero at the last step, "constant", or "inverse_sqrt" (Vaswani et al. 2017: after
    # the warm-up, the rate falls as 1/sqrt(step), the fairseq schedule of the NMT papers)
    decay: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    batch_unit: str = "examples"  # or "tokens": batch_size is a padded-token budget (fairseq --max-tokens)

    def factor(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.decay == "constant":
            return 1.0
        if self.decay == "inverse_sqrt":
            return math.sqrt(max(1, self.warmup_steps) / (step + 1))
        remaining = self.steps - max(step, self.warmup_steps)
        return max(0.0, remaining / max(1, self.steps - self.warmup_steps))


@dataclass
class Stream:
    """One source of training batches (a task–language pair, an MLM language) with its loss."""

    name: str
    batches: Iterator[Batch]
    loss: Callable[[Any, Batch], torch.Tensor]


@dataclass
class FitResult:
    best_score: float | None
    best_step: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    stream_counts: dict[str, int] = field(default_factory=dict)
    first_streams: list[str] = field(default_factory=list)  # the first FIRST_STREAMS batches' streams


def batches_forever(
    features: Sequence[dict[str, Any]],
    collate: Callable[[list], Batch],
    batch_size: int,
    seed: int,
    bucket_batches: int = 50,
    max_tokens: int | None = None,
) -> Iterator[Batch]:
    """Shuffled mini-batches, epoch after epoch, in an order fixed by the seed.

    Examples are grouped with others of similar length (within windows of ``bucket_batches``
    batches) so little compute goes to padding; batch order stays random. With ``max_tokens``,
    a batch holds as many examples as fit that many padded tokens (the longer of input and
    labels counts, as fairseq counts source and target), so ``batch_size`` only sizes the windows.
    """
    if not features:
        raise ValueError("no training examples")
    rng = random.Random(seed)
    order = list(range(len(features)))
    window = batch_size * max(1, bucket_batches) if max_tokens is None else len(order)

    def length(i: int) -> int:
        labels = features[i].get("labels")
        target = len(labels) if max_tokens is not None and isinstance(labels, list) else 0
        return max(len(features[i]["input_ids"]), target)

    while True:
        rng.shuffle(order)
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=length)
            if max_tokens is None:
                batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
            else:
                batches.extend(_token_batches(chunk, length, max_tokens))
        rng.shuffle(batches)
        for members in batches:
            yield collate([features[i] for i in members])


def _token_batches(
    sorted_indices: list[int], length: Callable[[int], int], max_tokens: int
) -> list[list[int]]:
    """Consecutive runs of length-sorted examples whose padded size stays within ``max_tokens``
    (an example longer than the budget gets a batch of its own)."""
    batches: list[list[int]] = [[]]
    for i in sorted_indices:
        if batches[-1] and length(i) * (len(batches[-1]) + 1) > max_tokens:
            batches.append([])
        batches[-1].append(i)
    return batches


def round_robin(pattern: Sequence[int]) -> Callable[[int], int]:
    """Stream index per step from a repeating pattern, e.g. [0, 1, 1] for a 1:2 ratio."""
    return lambda step: pattern[step % len(pattern)]


def sampled(weights: Sequence[float], seed: int) -> Callable[[int], int]:
    rng = random.Random(seed)
    population = list(range(len(weights)))
    return lambda step: rng.choices(population, weights=weights)[0]


def to_device(batch: Batch, device) -> Batch:
    """The batch on ``device``; to a GPU through pinned memory, so the copy runs asynchronously."""
    if torch.device(device).type != "cuda":
        return {k: v.to(device) for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def fit(
    model,
    streams: Sequence[Stream],
    schedule: Schedule,
    evaluate: Callable[[], float] | None = None,
    higher_is_better: bool = True,
    choose_stream: Callable[[int], int] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    description: str = "train",
) -> FitResult:
    """Train the parameters that require grad; leave the model holding the best checkpoint."""
    progress = progress or SilentProgress()
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: no parameter requires grad")
    device = params[0].device
    mixed = precision.current()
    # fused AdamW (one kernel for every parameter) on CUDA; elsewhere the default, unchanged
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(
        params,
        lr=schedule.learning_rate,
        betas=schedule.betas,
        eps=schedule.eps,
        weight_decay=schedule.weight_decay,
        **fused,
    )
    scaler = mixed.grad_scaler()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
    choose_stream = choose_stream or round_robin(list(range(len(streams))))
    result = FitResult(best_score=None, best_step=0, steps=schedule.steps, seconds=0.0)
    best_state = None
    started = time.perf_counter()
    running = 0.0
    with progress.bar(description, schedule.steps) as advance:
        for step in range(schedule.steps):
            model.train()
            stream = streams[choose_stream(step)]
            result.stream_counts[stream.name] = result.stream_counts.get(stream.name, 0) + 1
            if step < FIRST_STREAMS:
                result.first_streams.append(stream.name)
            with mixed.autocast():
                loss = stream.loss(model, to_device(next(stream.batches), device))
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"{description}: loss is {value} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, schedule.max_grad_norm)
                optimizer.step()
            else:  # fp16: scaled backward, clipping on the true gradients, skipped on overflow
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, schedule.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
            running = 0.9 * running + 0.1 * value if step else value
            last = step + 1 == schedule.steps
            if evaluate is not None and ((step + 1) % schedule.eval_every == 0 or last):
                score = evaluate()
                result.history.append({"step": step + 1, "score": score, "loss": running})
                better = result.best_score is None or (
                    score > result.best_score if higher_is_better else score < result.best_score
                )
                if better:
                    result.best_score, result.best_step = score, step + 1
                    best_state = trainable_state(model)
                advance(1, loss=running, dev=score)
            else:
                advance(1, loss=running)
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    result.seconds = time.perf_counter() - started
    model.eval()
    return result


@torch.no_grad()
def mean_loss(model, loss: Callable[[Any, Batch], torch.Tensor], batches: Sequence[Batch]) -> float:
    """The average loss over fixed batches, in eval mode (no dropout)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with precision.current().autocast():
        total = sum(loss(model, to_device(batch, device)).item() for batch in batches)
    model.train(was_training)
    return total / max(1, len(batches))


@torch.no_grad()
def predict_all(model, predict: Callable[[Any, Batch], list], batches: Sequence[Batch]) -> list:
    """Predictions over fixed batches in eval mode, in the examples' order (``fixed_batches``
    groups them by length; this puts each prediction back where its example was)."""
    was_training = model.training
    model.eval()
    out: list = []
    device = next(model.parameters()).device
    with precision.current().autocast():
        for batch in batches:
            out.extend(predict(model, to_device(batch, device)))
    model.train(was_training)
    return batches.restore(out) if isinstance(batches, LengthGrouped) else out


class LengthGrouped(list):
    """Evaluation batches of examples sorted by length; ``order[i]`` is the position, among the
    original examples, of the i-th example in the batches."""

    def __init__(self, batches: list[Batch], order: list[int]):
        super().__init__(batches)
        self.order = order

    def restore(self, outputs: list) -> list:
        """Per-example outputs in the batches' order -> in the examples' order."""
        if len(outputs) != len(self.order):
            raise ValueError(f"{len(outputs)} predictions for {len(self.order)} examples")
        restored: list = [None] * len(outputs)
        for position, output in zip(self.order, outputs, strict=True):
            restored[position] = output
        return restored


def fixed_batches(
    features: Sequence[dict[str, Any]], collate: Callable[[list], Batch], batch_size: int
) -> LengthGrouped:
    """Evaluation batches of examples of similar length, so little compute goes to padding; the
    predictions ``predict_all`` returns are in the examples' order all the same. (Anything else
    that consumes these batches sees them in length order: fine for sums, such as perplexity.)"""
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    batches = [
        collate([features[i] for i in order[start : start + batch_size]])
        for start in range(0, len(order), batch_size)
    ]
    return LengthGrouped(batches, order)


def epoch_steps(examples: int, batch_size: int, epochs: float) -> int:
    """Optimiser steps of ``epochs`` passes over ``examples`` in batches (at least one step)."""
    return max(1, round(epochs * max(1, math.ceil(examples / batch_size))))


def few_shot_steps(shots: int, batch_size: int, epochs: int) -> int:
    """Steps of few-shot finetuning on k examples (fewer when the pool is smaller than k)."""
    return epochs * math.ceil(shots / batch_size)


def finetune_few_shot(
    model,
    ctx,
    piece,
    batch_size: int,
    learning_rate: float,
    epochs: int,
    activate: Callable[[Any, str], None] | None = None,
    loss: Callable[[Any, Batch], torch.Tensor] | None = None,
) -> tuple[FitResult, dict[str, Any]]:
    """Continue training on k target examples (Hyper-X Appendix D: same hyper-parameters, a fixed
    number of epochs, no learning-rate decay, no model selection: there is no target dev set).
    ``loss`` replaces the task's own (e.g. to run the model with generated adapter weights)."""
    from xltransfer.data.fewshot import describe_sample, sample_indices

    task_name, language, shots, seed = piece.task, piece.languages[0], piece.params["shots"], piece.seed
    task = ctx.task(task_name)
    examples = ctx.training_examples(task_name, language)
    indices = sample_indices(len(examples), shots, seed)
    pool = ctx.features(task_name, language, "train")
    features = [pool[i] for i in indices]
    steps = few_shot_steps(len(features), batch_size, epochs)
    schedule = Schedule(steps, batch_size, learning_rate, eval_every=steps, decay="constant")

    task_loss = loss or task.loss

    def step_loss(m, batch):
        if activate is not None:
            activate(m, language)
        return task_loss(m, batch)

    tokenizer = ctx.tokenizer_for(task_name)
    stream = Stream(
        language, batches_forever(features, lambda f: task.collate(f, tokenizer), batch_size, seed), step_loss
    )
    description = f"{piece.label} k={shots}"
    result = fit(
        model, [stream], schedule, None, task.metadata.higher_is_better, None, seed, ctx.progress, description
    )
    return result, describe_sample(examples, indices)


def train_on_task(
    model,
    ctx,
    task_name: str,
    languages: Sequence[str],
    schedule: Schedule,
    seed: int,
    activate: Callable[[Any, str], None] | None = None,
    description: str = "train",
    eval_batch_size: int = EVAL_BATCH_SIZE,
    temperature: float | None = None,
    loss: Callable[[Any, Batch, str], torch.Tensor] | None = None,
) -> FitResult:
    """Supervised training on one task from one or more source languages (or MT directions).

    Each step draws one source language (multi-source training, one language per batch):
    uniformly, or with ``temperature`` in proportion to (n_l/N)^(1/T) of the training sizes;
    ``activate(model, language)`` switches language-specific modules (e.g. the source
    language adapter) before that language's batch; ``loss(model, batch, language)`` replaces
    the task's loss (e.g. to run the model with weights generated for the language). Checkpoints
    are selected on the average main metric of the sources' dev sets, or their average loss for a
    task that selects by loss (train sets when a source has no dev split, if the task selects on
    them; with nothing to select on, the last checkpoint is kept).
    """
    task = ctx.task(task_name)

    def unit_loss(m, batch, lang):
        if activate is not None:
            activate(m, lang)
        return loss(m, batch, lang) if loss is not None else task.loss(m, batch)

    def collate(features):
        return task.collate(features, ctx.tokenizer_for(task_name))

    streams = []
    for i, lang in enumerate(languages):

        def stream_loss(m, batch, lang=lang):
            return unit_loss(m, batch, lang)

        streams.append(
            Stream(
                lang,
                batches_forever(
                    ctx.features(task_name, lang, "train"),
                    collate,
                    schedule.batch_size,
                    seed + i,
                    max_tokens=schedule.batch_size if schedule.batch_unit == "tokens" else None,
                ),
                stream_loss,
            )
        )
    dev_sets = []
    for lang in languages:
        split = "dev" if ctx.has_split(task_name, lang, "dev") else "train"
        if split == "train" and not task.select_on_train:
            continue
        dev_sets.append(
            (
                lang,
                ctx.examples(task_name, lang, split),
                fixed_batches(ctx.features(task_name, lang, split), collate, eval_batch_size),
            )
        )

    def evaluate() -> float:
        scores = []
        for lang, examples, batches in dev_sets:
            if task.select_by_loss:  # negated: fit keeps the highest score
                scores.append(-mean_loss(model, lambda m, b, lang=lang: unit_loss(m, b, lang), batches))
                continue
            if activate is not None:
                activate(model, lang)
            scores.append(
                task.score(examples, predict_all(model, task.predict, batches))[task.metadata.main_metric]
            )
        return sum(scores) / len(scores)

    if temperature is not None:
        from xltransfer.data.parallel import temperature_weights

        sizes = {lang: len(ctx.features(task_name, lang, "train")) for lang in languages}
        shares = temperature_weights(sizes, temperature)
        weights = [shares.get(lang, 0.0) for lang in languages]
    else:
        weights = [1.0] * len(streams)
    choose = sampled(weights, seed) if len(streams) > 1 else None
    return fit(
        model,
        streams,
        schedule,
        evaluate if dev_sets else None,
        True if task.select_by_loss else task.metadata.higher_is_better,
        choose,
        seed,
        ctx.progress,
        description,
    )
