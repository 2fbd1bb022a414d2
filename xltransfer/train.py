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
from xltransfer.data.subwords import IGNORE
from xltransfer.progress import Progress, SilentProgress
from xltransfer.task import GRID_ENCODING, Encoding

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
    max_grad_norm: float = 1.0  # 0: no clipping
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
    # made ahead in a background thread while the model steps (``Prefetched``): for streams whose
    # batches draw from no shared state (their own seeded generators only), e.g. MLM streams
    prefetch: bool = False


class MicroBatches(list):
    """One optimiser step's batches from several streams, as ``(stream name, batch, loss)``: ``fit``
    sums their gradients (gradient accumulation), each loss weighted by its share of the step's
    target tokens, so the step's loss is the mean over all its tokens as in one large batch."""


def accumulated_stream(
    streams: Sequence[Stream], choose: Callable[[int], int], per_step: int, name: str = "mixed"
) -> Stream:
    """One stream whose every batch is ``per_step`` batches of the streams ``choose`` picks, one
    draw after another (a multilingual step that holds several languages or directions)."""

    def steps() -> Iterator[Batch]:
        draw = 0
        while True:
            parts = MicroBatches()
            for _ in range(per_step):
                stream = streams[choose(draw)]
                parts.append((stream.name, next(stream.batches), stream.loss))
                draw += 1
            yield parts

    return Stream(name, steps(), _unused_loss)


def _unused_loss(model, batch):
    raise TypeError("an accumulated stream's batches carry their own losses")


def _step_parts(stream: Stream, batch) -> list[tuple[str, Batch, Callable, float]]:
    """(stream name, batch, loss, weight) for each part of one optimiser step."""
    if not isinstance(batch, MicroBatches):
        return [(stream.name, batch, stream.loss, 1.0)]
    tokens = [_target_tokens(part) for _, part, _ in batch]
    return [(name, part, loss, n / sum(tokens)) for (name, part, loss), n in zip(batch, tokens, strict=True)]


def _target_tokens(batch: Batch) -> int:
    """Labelled positions of a batch (examples when it has no token labels): its weight in a step."""
    labels = batch.get("labels")
    if labels is None or labels.dim() < 2:
        return len(next(iter(batch.values())))
    return max(1, int((labels != IGNORE).sum()))


@dataclass
class FitResult:
    best_score: float | None
    best_step: int
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    stream_counts: dict[str, int] = field(default_factory=dict)
    first_streams: list[str] = field(default_factory=list)  # the first FIRST_STREAMS batches' streams
    higher_is_better: bool = True  # the direction best_score was selected in
    batch_wait_seconds: float = 0.0  # time the steps waited for their batches
    eval_seconds: float = 0.0  # time spent evaluating (step 0 included), within ``seconds``


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
    known = getattr(features, "lengths", None)  # features on disk know their lengths

    def length(i: int) -> int:
        if known is not None:
            return int(known[i])
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
            yield collate(rows(features, members))


def batches_in_order(
    features: Sequence[dict[str, Any]], collate: Callable[[list], Batch], batch_size: int
) -> Iterator[Batch]:
    """Batches of consecutive examples from the first, never shuffled, starting again from the
    first when the examples run out (a batch may span the end and the start), as a DataLoader
    reads an IterableDataset that restarts its iterator."""
    if not features:
        raise ValueError("no training examples")
    count, start = len(features), 0
    while True:
        yield collate(rows(features, [(start + i) % count for i in range(batch_size)]))
        start = (start + batch_size) % count


def rows(features: Sequence[dict[str, Any]], indices: Sequence[int]) -> list[dict[str, Any]]:
    """The features at ``indices``: read by index (one gather for features on disk)."""
    take = getattr(features, "take", None)
    return take(indices) if take is not None else [features[i] for i in indices]


class Prefetched:
    """A stream's batches made ahead by a background thread (``depth`` of them waiting), so a step
    does not wait for Python to read, collate and corrupt its batch; the same batches in the same
    order as the stream alone (one thread draws them all). ``close`` stops the thread and waits."""

    def __init__(self, batches: Iterator[Batch], depth: int = 4):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(batches,), daemon=True)
        self._thread.start()

    def _fill(self, batches: Iterator[Batch]) -> None:
        import queue

        while not self._stop.is_set():
            try:
                item = (True, next(batches))
            except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
                item = (False, error)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if not item[0]:
                return

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> Batch:
        ok, value = self._queue.get()
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Stop the thread and wait for it: one still inside torch when the interpreter exits
        aborts the process ("terminate called without an active exception") after a finished run."""
        self._stop.set()
        self._thread.join()


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
    evaluate: Callable[[], float | tuple[float, dict[str, float]]] | None = None,
    higher_is_better: bool = True,
    choose_stream: Callable[[int], int] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    description: str = "train",
) -> FitResult:
    """Train the parameters that require grad; leave the model holding the best checkpoint.

    ``evaluate`` returns the dev score, or (score, other dev figures kept in the history). The
    untrained model is evaluated too (history step 0, never selected): how far a run got from
    where it started is what ``xltransfer.convergence`` reads."""
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
    result = FitResult(
        best_score=None, best_step=0, steps=schedule.steps, seconds=0.0, higher_is_better=higher_is_better
    )
    started = time.perf_counter()
    prefetched = {id(s): Prefetched(s.batches) for s in streams if s.prefetch}
    best_state = None
    try:
        if evaluate is not None:
            result.history.append({"step": 0, **_evaluation(evaluate, result), "loss": None})
        running = 0.0
        model.train()
        with progress.bar(description, schedule.steps) as advance:
            for step in range(schedule.steps):
                if not model.training:  # back from an evaluation (a walk over every module: not each step)
                    model.train()
                stream = streams[choose_stream(step)]
                waited = time.perf_counter()
                batch = next(prefetched.get(id(stream), stream.batches))
                result.batch_wait_seconds += time.perf_counter() - waited
                parts = _step_parts(stream, batch)
                for name, *_ in parts:
                    result.stream_counts[name] = result.stream_counts.get(name, 0) + 1
                if step < FIRST_STREAMS:
                    result.first_streams.append("+".join(name for name, *_ in parts))
                optimizer.zero_grad(set_to_none=True)
                value = 0.0
                for _, batch, part_loss, weight in parts:  # one part, or micro-batches whose gradients add up
                    with mixed.autocast():
                        loss = part_loss(model, to_device(batch, device)) * weight
                    part_value = loss.item()
                    if not math.isfinite(part_value):
                        raise FloatingPointError(f"{description}: loss is {part_value} at step {step}")
                    (loss if scaler is None else scaler.scale(loss)).backward()
                    value += part_value
                if scaler is not None:  # fp16: clipping on the true gradients, the step skipped on overflow
                    scaler.unscale_(optimizer)
                if schedule.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, schedule.max_grad_norm)
                if scaler is None:
                    optimizer.step()
                else:
                    scaler.step(optimizer)
                    scaler.update()
                scheduler.step()
                running = 0.9 * running + 0.1 * value if step else value
                last = step + 1 == schedule.steps
                if evaluate is not None and ((step + 1) % schedule.eval_every == 0 or last):
                    evaluation = _evaluation(evaluate, result)
                    score = evaluation["score"]
                    result.history.append({"step": step + 1, **evaluation, "loss": running})
                    better = result.best_score is None or (
                        score > result.best_score if higher_is_better else score < result.best_score
                    )
                    if better:
                        result.best_score, result.best_step = score, step + 1
                        best_state = trainable_state(model)
                    advance(1, loss=running, dev=score)
                else:
                    advance(1, loss=running)
    finally:
        for feeder in prefetched.values():
            feeder.close()
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    result.seconds = time.perf_counter() - started
    model.eval()
    return result


def _evaluation(
    evaluate: Callable[[], float | tuple[float, dict[str, float]]], result: FitResult
) -> dict[str, float]:
    """The dev score and other dev figures of one evaluation, its seconds added to ``result``."""
    began = time.perf_counter()
    outcome = evaluate()
    result.eval_seconds += time.perf_counter() - began
    score, details = outcome if isinstance(outcome, tuple) else (outcome, {})
    return {"score": score, **details}


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
    known = getattr(features, "lengths", None)  # features on disk know their lengths
    order = sorted(
        range(len(features)),
        key=(lambda i: int(known[i])) if known is not None else (lambda i: len(features[i]["input_ids"])),
    )
    batches = [
        collate(rows(features, order[start : start + batch_size]))
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
    encoding: Encoding = GRID_ENCODING,
) -> tuple[FitResult, dict[str, Any]]:
    """Continue training on k target examples (Hyper-X Appendix D: same hyper-parameters, a fixed
    number of epochs, no learning-rate decay, no model selection: there is no target dev set).
    ``loss`` replaces the task's own (e.g. to run the model with generated adapter weights);
    ``encoding``: the method's, where it departs from the grid's (``xltransfer.task.Encoding``)."""
    from xltransfer.data.fewshot import describe_sample, sample_indices

    task_name, language, shots, seed = piece.task, piece.languages[0], piece.params["shots"], piece.seed
    task = ctx.task(task_name)
    examples = ctx.training_examples(task_name, language, encoding)
    indices = sample_indices(len(examples), shots, seed)
    pool = ctx.features(task_name, language, "train", encoding)
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


def selection_splits(ctx, pairs: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, str, str]]:
    """(task, language, split) a checkpoint is scored on, for (task, languages trained on it) pairs:
    the dev split of each pair that has one and trains on its own train split, as ahmetustun/hyperx
    (train.py) scores it. A pair without a dev split (kk_ktb, hsb_ufal) or trained on its test split
    (``test_as_train``) is not scored: selecting on the data a model trains on rewards memorising it.
    Only when no pair has a dev split do the pairs' own train splits stand in (a task that selects on
    train), never a test split read as train. One rule for every trainer: a multi-source task
    adapter (one task) and a multi-task model (``xltransfer.multitask``) alike."""
    every = [(task, language) for task, languages in pairs for language in languages]
    trained = [(task, language) for task, language in every if ctx.has_split(task, language, "train")]
    scored = [(task, language, "dev") for task, language in trained if ctx.has_split(task, language, "dev")]
    if scored:
        return scored
    return [(task, language, "train") for task, language in trained if ctx.task(task).select_on_train]


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
    batches_per_step: int = 1,
    encoding: Encoding = GRID_ENCODING,
) -> FitResult:
    """Supervised training on one task from one or more source languages (or MT directions).

    Each batch holds one source language (multi-source training, one language per batch), drawn
    uniformly, or with ``temperature`` in proportion to (n_l/N)^(1/T) of the training sizes; with
    ``batches_per_step`` > 1 an optimiser step accumulates that many such batches, each a share of
    ``schedule.batch_size``, so one step holds several languages. ``activate(model, language)``
    switches language-specific modules (e.g. the source language adapter) before that language's
    batch; ``loss(model, batch, language)`` replaces the task's loss (e.g. to run the model with
    weights generated for the language). Checkpoints are selected on the average main metric of
    the sources' dev sets, or their average loss for a task that selects by loss (train sets when a
    source has no dev split, ``selection_splits``; with nothing to select on, the last
    checkpoint is kept); a task with ``mismatched_inputs`` has that dev loss recorded beside it.
    ``encoding``: how the method has the task's data encoded, where it departs from the grid's
    (``xltransfer.task.Encoding``: its length, long training examples left out).
    """
    task = ctx.task(task_name)

    def unit_loss(m, batch, lang):
        if activate is not None:
            activate(m, lang)
        return loss(m, batch, lang) if loss is not None else task.loss(m, batch)

    def collate(features):
        return task.collate(features, ctx.tokenizer_for(task_name))

    share = max(1, schedule.batch_size // batches_per_step)
    streams = []
    for i, lang in enumerate(languages):

        def stream_loss(m, batch, lang=lang):
            return unit_loss(m, batch, lang)

        streams.append(
            Stream(
                lang,
                batches_forever(
                    ctx.features(task_name, lang, "train", encoding),
                    collate,
                    share,
                    seed + i,
                    max_tokens=share if schedule.batch_unit == "tokens" else None,
                ),
                stream_loss,
            )
        )
    dev_sets = []
    for _, lang, split in selection_splits(ctx, ((task_name, languages),)):
        features = ctx.features(task_name, lang, split, encoding)
        mismatched = task.mismatched_inputs(features) if task.select_by_loss else None
        dev_sets.append(
            (
                lang,
                ctx.examples(task_name, lang, split),
                fixed_batches(features, collate, eval_batch_size),
                fixed_batches(mismatched, collate, eval_batch_size) if mismatched else None,
            )
        )

    def evaluate() -> float | tuple[float, dict[str, float]]:
        scores, mismatched_losses = [], []
        for lang, examples, batches, mismatched in dev_sets:
            if task.select_by_loss:  # negated: fit keeps the highest score
                scores.append(-mean_loss(model, lambda m, b, lang=lang: unit_loss(m, b, lang), batches))
                if mismatched is not None:
                    mismatched_losses.append(
                        mean_loss(model, lambda m, b, lang=lang: unit_loss(m, b, lang), mismatched)
                    )
                continue
            if activate is not None:
                activate(model, lang)
            scores.append(
                task.score(examples, predict_all(model, task.predict, batches))[task.metadata.main_metric]
            )
        score = sum(scores) / len(scores)
        if not mismatched_losses:
            return score
        return score, {"mismatched_loss": sum(mismatched_losses) / len(mismatched_losses)}

    if temperature is not None:
        from xltransfer.data.parallel import temperature_weights

        sizes = {lang: len(ctx.features(task_name, lang, "train", encoding)) for lang in languages}
        shares = temperature_weights(sizes, temperature)
        weights = [shares.get(lang, 0.0) for lang in languages]
    else:
        weights = [1.0] * len(streams)
    choose = sampled(weights, seed) if len(streams) > 1 else None
    if batches_per_step > 1:
        streams = [accumulated_stream(streams, choose or round_robin([0]), batches_per_step)]
        choose = None
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
