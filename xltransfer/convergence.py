"""Did a trained piece learn? A convergence verdict from its dev history, carried by every record.

A score from a model that never trained is not a result: a report marks it and never ranks it.
Every piece trained with model selection keeps its dev history in its info (``fit``: step 0 is the
untrained model, then each evaluation); the key of its selected value says which way is better
(``dev_score``: higher; ``dev_loss``, ``dev_perplexity``: lower). Two rules read it:

- **no progress**: the selected dev value is not clearly better than the untrained model's
  (``MIN_PROGRESS`` of the way, relative). A run whose optimiser did nothing, or diverged and
  never came back, stays where it started.
- **source ignored** (translation): a Transformer trained from scratch first learns a language
  model of the targets, a plateau where its dev loss is flat and its output does not depend on
  the source, and only later to translate (the plateau the synthetic MT grids showed at a dev loss
  of about 3.4). Each evaluation also measures the dev loss with every target paired with another
  sentence's source (``Task.mismatched_inputs``); a model that translates does far worse on them,
  one on the plateau does just as well. Flagged when, at the selected step, the mismatched loss is
  not at least ``MIN_SOURCE_GAIN`` above the dev loss.

A piece without a history (the majority baseline, generated adapters, few-shot pieces that select
nothing, the vocabulary) is not flagged; neither is one trained before histories began at step 0
(nothing to compare with).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# how much better than the untrained model the selected dev value must be: 1% of the way (relative
# to the untrained value); a loss that went from 6.4 to 6.35 did not train
MIN_PROGRESS = 0.01
# translation: the mismatched-source dev loss must exceed the dev loss by 10% at the selected step.
# On the synthetic suite a model on its language-model plateau scores within 1% of it; one that
# translates scores 2-4 times higher with the wrong source
MIN_SOURCE_GAIN = 0.10
SELECTED = {"dev_score": True, "dev_loss": False, "dev_perplexity": False}  # key -> higher is better


def piece_flag(info: Mapping[str, Any]) -> str | None:
    """Why a piece (its info.json) did not train, or None when it did or cannot tell."""
    history = info.get("history") or []
    direction = next((higher for key, higher in SELECTED.items() if info.get(key) is not None), None)
    if direction is None or not history or history[0].get("step") != 0:
        return None
    trained = [h for h in history if h.get("step", 0) > 0]
    if not trained:
        return None
    name = next(key for key in SELECTED if info.get(key) is not None)
    best = max(trained, key=lambda h: h["score"]) if direction else min(trained, key=lambda h: h["score"])
    start = history[0]["score"]
    if not _progressed(start, best["score"], direction):
        return (
            f"{name.replace('_', ' ')} {best['score']:.4g} (step {best['step']}) is not {MIN_PROGRESS:.0%} "
            f"better than the untrained model's {start:.4g}: the piece did not train"
        )
    mismatched = best.get("mismatched_loss")
    if mismatched is not None and mismatched < best["score"] * (1 + MIN_SOURCE_GAIN):
        return (
            f"dev loss {best['score']:.4g} (step {best['step']}) is within {MIN_SOURCE_GAIN:.0%} of the dev "
            f"loss with mismatched sources ({mismatched:.4g}): the model ignores its source "
            "(a language-model plateau)"
        )
    return None


def _progressed(start: float, best: float, higher_is_better: bool) -> bool:
    margin = MIN_PROGRESS * abs(start)
    return best > start + margin if higher_is_better else best < start - margin


def convergence(infos: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The record's ``extra["convergence"]``: converged unless a piece it used is flagged, and why
    (by piece label)."""
    flagged = {}
    for info in infos:
        why = piece_flag(info)
        if why is not None:
            flagged[str(info.get("piece", info.get("key", "?")))] = why
    return {"converged": not flagged, "flagged": flagged}
