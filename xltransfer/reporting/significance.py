"""Paired bootstrap resampling over per-example statistics (Koehn 2004, "Statistical Significance
Tests for Machine Translation Evaluation", EMNLP).

Every evaluation keeps its per-example sufficient statistics (``Task.example_statistics``) in the
workspace, at ``predictions/<sha1 of grid and cell id>.json``; the result record's
``extra["example_statistics"]`` names that file relative to the workspace root. Two systems scored
on the same test set are compared by drawing test sets of the same size with replacement, the same
draws for both systems (paired), and rescoring each draw from its summed statistics, so corpus
metrics (F1, BLEU, chrF) are recomputed per draw rather than averaged over examples.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xltransfer.errors import DataFormatError

PREDICTIONS_DIR = "predictions"
ALPHA = 0.05
# resampled statistics summed at once: chunks of draws keep the gathered block under this many numbers
_CHUNK_NUMBERS = 1 << 22

Rows = Sequence[Sequence[float]]
ScoreStatistics = Callable[[Rows], Mapping[str, float]]


def example_statistics_path(grid: str, cell_id: str) -> str:
    """Where a cell's per-example statistics live, relative to the workspace root: one file per
    (grid, cell) like the results store's records, so a re-evaluation overwrites it."""
    return predictions_path(grid, cell_id, ".json")


def predictions_path(grid: str, cell_id: str, suffix: str) -> str:
    """A file of a cell's evaluation (statistics ``.json``, predictions in the task's format),
    relative to the workspace root."""
    digest = hashlib.sha1(f"{grid}\n{cell_id}".encode()).hexdigest()
    return f"{PREDICTIONS_DIR}/{digest}{suffix}"


def load_example_statistics(
    workspace_root: Path | str, record: Mapping[str, Any]
) -> list[list[float]] | None:
    """The per-example statistics behind a result record, or None when there are none to trust: a
    failed record, a task without statistics, a missing file, or a file a later evaluation of the
    cell overwrote (its run differs from the record's)."""
    if record.get("status") != "ok":
        return None
    relative = (record.get("extra") or {}).get("example_statistics")
    if not relative:
        return None
    path = Path(workspace_root) / relative
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFormatError(
            path,
            None,
            f"truncated or corrupt per-example statistics ({error}): delete it and evaluate the "
            "cell again, or restore it",
        ) from None
    same_evaluation = all(document.get(key) == record.get(key) for key in ("grid", "cell_id", "run_id"))
    if not same_evaluation or record.get("metric") not in document.get("metrics", []):
        return None
    return document["statistics"]


def paired_bootstrap(
    stats_a: Rows,
    stats_b: Rows,
    score_statistics: ScoreStatistics,
    metric: str,
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Paired bootstrap test of system A against system B on ``metric``.

    ``stats_a`` and ``stats_b`` hold one row of statistics per test example, in the same example
    order; ``score_statistics`` turns rows into the task's metrics (``Task.score_statistics``). It
    is called with a single row, the statistics already summed over a resampled test set, which is
    a valid input (a row's sum is itself) and costs one metric computation per draw.

    ``resamples`` draws of n example indices with replacement are made once (a numpy Generator
    seeded with ``seed``) and shared by both systems. ``difference`` is metric(A) − metric(B) on
    the whole test set. ``p_value`` is Koehn's: the share of draws in which the observed winner
    does not win, i.e. A − B ≤ 0 when the difference is positive, ≥ 0 when it is negative, and 1
    when there is no difference. Two-sided convention: the direction is not fixed in advance, so
    either system can come out significantly better, but ``p_value`` is the tail on the observed
    winner's side only (Koehn's "A is better in 95% of the draws"); ``p_value_two_sided``, twice
    that (at most 1), is the equal-tailed two-sided value. ``significant`` is ``p_value < alpha``
    with a non-zero difference.
    """
    a = _matrix(stats_a, "stats_a")
    b = _matrix(stats_b, "stats_b")
    if a.shape != b.shape:
        raise ValueError(f"paired statistics differ in shape: {a.shape} and {b.shape}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    n, width = a.shape

    def scored(totals: np.ndarray) -> float:
        scores = score_statistics([totals.tolist()])
        if metric not in scores:
            raise KeyError(f"metric '{metric}' not among {sorted(scores)}")
        return float(scores[metric])

    score_a, score_b = scored(a.sum(axis=0)), scored(b.sum(axis=0))
    observed = score_a - score_b

    rng = np.random.default_rng(seed)
    index_type = np.int32 if n <= np.iinfo(np.int32).max else np.int64
    indices = rng.integers(0, n, size=(resamples, n), dtype=index_type)  # all draws, made once
    differences = np.empty(resamples)
    chunk = max(1, _CHUNK_NUMBERS // (n * width))
    for start in range(0, resamples, chunk):
        drawn = indices[start : start + chunk]
        sums_a = a[drawn].sum(axis=1)  # (draws, width): each draw's statistics summed
        sums_b = b[drawn].sum(axis=1)
        for offset, (row_a, row_b) in enumerate(zip(sums_a, sums_b, strict=True)):
            differences[start + offset] = scored(row_a) - scored(row_b)

    if observed > 0:
        p_value = float(np.mean(differences <= 0))
    elif observed < 0:
        p_value = float(np.mean(differences >= 0))
    else:
        p_value = 1.0
    return {
        "metric": metric,
        "a": score_a,
        "b": score_b,
        "difference": observed,
        "p_value": p_value,
        "p_value_two_sided": min(1.0, 2.0 * p_value),
        "significant": bool(observed != 0 and p_value < alpha),
        "alpha": alpha,
        "resamples": resamples,
        "seed": seed,
        "examples": n,
    }


def _matrix(rows: Rows, name: str) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float64)
    if matrix.ndim != 2 or not matrix.shape[0]:
        raise ValueError(f"{name}: expected one row of statistics per example, got shape {matrix.shape}")
    return matrix
