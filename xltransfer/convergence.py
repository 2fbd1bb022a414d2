"""Did a trained piece learn? A convergence verdict from its dev history, carried by every record.

A score from a model that never trained is not a result: a report marks it and never ranks it.
Every piece trained with model selection keeps its dev history in its info (``fit``: step 0 is the
untrained model, then each evaluation); its selected value is the ``dev_*`` key of its info
(``dev_score``, a task adapter's ``dev_accuracy``, ``dev_las``, ``dev_f1``...; ``dev_loss``,
``dev_perplexity``), better when higher unless the info says ``higher_is_better: false`` or the key
is a loss or perplexity (``selected``). Two rules read it:

- **no progress**: the selected dev value is not clearly better than the untrained model's
  (``MIN_PROGRESS`` of the way, relative; a score, higher-is-better, also by ``MIN_SCORE_GAIN``
  points). A run whose optimiser did nothing, or diverged and never came back, stays where it
  started.
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
# a selection score (a fraction: accuracy, LAS, F1, their average) must also rise by 2 points: 1%
# of a chance-level start is noise. The synthetic suite's NLI task adapters went from 0.32 to 0.327
# on 300 dev pairs (two of them; a standard error there is 2.7 points) and were ranked
MIN_SCORE_GAIN = 0.02
# translation: the mismatched-source dev loss must exceed the dev loss by 10% at the selected step.
# On the synthetic suite a model on its language-model plateau scores within 1% of it; one that
# translates scores 2-4 times higher with the wrong source
MIN_SOURCE_GAIN = 0.10
LOWER_IS_BETTER = frozenset({"dev_loss", "dev_perplexity"})


def selected(info: Mapping[str, Any]) -> tuple[str, float, bool] | None:
    """The dev value a piece's checkpoint was selected on: (key, value, higher is better), or None
    when it selected on nothing. A trainer names it ``dev_<what>``; pieces stored before trainers
    wrote ``higher_is_better`` take the direction from the name."""
    for name, value in info.items():
        if name.startswith("dev_") and isinstance(value, (int, float)) and not isinstance(value, bool):
            higher = info.get("higher_is_better")
            return name, float(value), higher if isinstance(higher, bool) else name not in LOWER_IS_BETTER
    return None


def piece_flag(info: Mapping[str, Any]) -> str | None:
    """Why a piece (its info.json) did not train, or None when it did or cannot tell."""
    history = info.get("history") or []
    chosen = selected(info)
    if chosen is None or not history or history[0].get("step") != 0:
        return None
    trained = [h for h in history if h.get("step", 0) > 0]
    if not trained:
        return None
    name, _, direction = chosen
    best = max(trained, key=lambda h: h["score"]) if direction else min(trained, key=lambda h: h["score"])
    start = history[0]["score"]
    margin = _margin(start, direction)
    if not (best["score"] > start + margin if direction else best["score"] < start - margin):
        return (
            f"{name.replace('_', ' ')} {best['score']:.4g} (step {best['step']}) is not {margin:.3g} "
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


def _margin(start: float, higher_is_better: bool) -> float:
    """How much better than the untrained model's value the selected one must be."""
    relative = MIN_PROGRESS * abs(start)
    return max(relative, MIN_SCORE_GAIN) if higher_is_better else relative


def convergence(infos: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The record's ``extra["convergence"]``: converged unless a piece it used is flagged, and why
    (by piece label)."""
    flagged = {}
    for info in infos:
        why = piece_flag(info)
        if why is not None:
            flagged[str(info.get("piece", info.get("key", "?")))] = why
    return {"converged": not flagged, "flagged": flagged}
