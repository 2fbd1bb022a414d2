"""A minimal hand-written PyTorch training loop: the baseline the harness's loop is measured against.

It does what ``xltransfer.train.fit`` does for one stream and nothing more (AdamW, the schedule's
learning-rate factor, gradient clipping, dropout on), so with the same seed, model and batches it
produces the same weights bit for bit on a CPU: ``tests/test_precision.py`` checks that, so the
overhead benchmark compares equal work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def hand_written_fit(
    model,
    loss: Callable,
    batches: Iterable[dict[str, torch.Tensor]],
    steps: int,
    learning_rate: float,
    factor: Callable[[int], float],
    max_grad_norm: float = 1.0,
    weight_decay: float = 0.0,
    seed: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> None:
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    model.train()
    batches = iter(batches)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * factor(step)
        value = loss(model, next(batches))
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        if on_step is not None:
            on_step(step)
    model.eval()
