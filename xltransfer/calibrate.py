"""`xlt plan --calibrate`: seconds per training step measured on this machine's device, beside the
FLOP-based estimate.

For each (method, kind) of piece the plan trains, a few real optimiser steps of one of its pieces:
the grid's architecture with randomly initialised weights (not the trained or downloaded backbone:
the step costs the same, and nothing is read or built), set up by the method's own
``prepare_model`` (its adapters, heads and trainable parameters, as training sets them up), on a
batch of random token ids of the planned batch size at the grid's ``max_length``, with AdamW. MLM
pieces take the masked-LM loss at 15% of the positions, as training does; other tasks the mean of
their active head's output (the head's own loss needs the task's labels; the encoder's forward and
backward, the bulk of a step, are the same). Not timed: weight generation of generators (MAD-G,
Hyper-X: a lower bound for them), MT pieces, data loading and evaluation passes. The first step
warms up and is not counted; the others are timed with the device synchronised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from xltransfer.modules.mlm import MASK_PROBABILITY

WARMUP_STEPS = 1
TIMED_STEPS = 3


@dataclass(frozen=True)
class Calibration:
    method: str
    kind: str
    pieces: int
    steps: int | None  # planned steps over all the group's pieces (None when one is not known)
    batch: int | None
    seconds_per_step: float | None  # None: not timed (``reason``)
    estimated_gpu_hours: float | None  # the FLOP-based estimate of the same pieces
    reason: str | None = None

    @property
    def measured_hours(self) -> float | None:
        if self.seconds_per_step is None or self.steps is None:
            return None
        return self.seconds_per_step * self.steps / 3600

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "kind": self.kind,
            "pieces": self.pieces,
            "steps": self.steps,
            "batch": self.batch,
            "seconds_per_step": self.seconds_per_step,
            "measured_hours": self.measured_hours,
            "estimated_gpu_hours": self.estimated_gpu_hours,
            "reason": self.reason,
        }


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} torch threads)"


def calibrate(plan, summary: dict[str, Any], timed_steps: int = TIMED_STEPS) -> list[Calibration]:
    """One ``Calibration`` per (method label, kind) of the summary's pieces, in plan order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for piece in summary["pieces"]:
        groups.setdefault((piece["method_label"], piece["kind"]), []).append(piece)
    results = []
    for (label, kind), members in groups.items():
        steps = [p["steps"] for p in members]
        hours = [p["gpu_hours"] for p in members]
        first = members[0]
        seconds, reason = None, None
        if first["batch"] is None:
            reason = "the method declares no batch"
        elif first["task"] == "mt":
            reason = "MT pieces are not calibrated"
        elif not any(steps):
            reason = "no steps to take" if all(s == 0 for s in steps) else None
        if reason is None and first["batch"] is not None:
            seconds = seconds_per_step(plan, first["key"], first["batch"], timed_steps)
        results.append(
            Calibration(
                label,
                kind,
                len(members),
                None if None in steps else sum(steps),
                first["batch"],
                seconds,
                None if None in hours else sum(hours),
                reason,
            )
        )
    return results


def seconds_per_step(plan, key: str, batch_size: int, timed_steps: int = TIMED_STEPS) -> float:
    """Mean wall-clock seconds of ``timed_steps`` optimiser steps of the piece (after a warm-up)."""
    import torch

    from xltransfer import registry
    from xltransfer.modules.mlm import masked_lm_loss

    piece = plan.pieces[key].piece
    architecture = plan.architecture_for(piece.task)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tasks: dict[str, Any] = {}

    def task_lookup(name: str):
        if name not in tasks:
            tasks[name] = registry.tasks.get(name)()
        return tasks[name]

    torch.manual_seed(0)
    model = _random_model(architecture)
    plan.trainers[key].prepare_model(model, piece, task_lookup)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    length = plan.grid.max_length
    low = 5  # past BERT's special tokens
    ids = torch.randint(low, architecture.vocab_size, (batch_size, length), device=device)
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    masked = torch.rand(ids.shape, device=device) < MASK_PROBABILITY
    labels[masked] = ids[masked]

    def step() -> None:
        if piece.task == "mlm":
            loss = masked_lm_loss(model, ids, mask, labels)
        else:
            outputs = model(input_ids=ids, attention_mask=mask)
            logits = outputs.logits if getattr(outputs, "logits", None) is not None else outputs[0]
            loss = logits.float().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def synchronise() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(WARMUP_STEPS):
        step()
    synchronise()
    started = time.perf_counter()
    for _ in range(timed_steps):
        step()
    synchronise()
    return (time.perf_counter() - started) / timed_steps


def _random_model(architecture):
    """The architecture with randomly initialised weights, as a flexible-head ``adapters`` model."""
    import transformers
    from adapters import AutoAdapterModel

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return AutoAdapterModel.from_config(architecture)
    finally:
        transformers.logging.set_verbosity(verbosity)
