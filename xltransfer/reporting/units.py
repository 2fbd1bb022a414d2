"""How numbers are shown, in one place: every command and report uses the same scale and units.

Records keep raw values (accuracy 0.3702, BLEU 37.02, perplexity 12.3). Display puts every
metric on the scale papers use: fractions (accuracy, F1, precision, recall, UAS, LAS) as
percentages, BLEU and chrF as sacrebleu gives them (already 0-100), perplexity and loss as they
are. So `xlt results`, `xlt evaluate` and `xlt report` show 37.02 / 37.0 for the same score.
Machine-readable output (``--json``, CSV, Parquet) keeps the raw values.
"""

from __future__ import annotations

import math

# stored as fractions, shown as percentages
PERCENT_METRICS = frozenset({"accuracy", "f1", "precision", "recall", "uas", "las"})


def metric_scale(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS else 1.0


def display_value(metric: str, value: float) -> float:
    """The value on the display scale."""
    return value * metric_scale(metric)


def format_score(metric: str, value: float | None, digits: int = 2) -> str:
    """``format_score("accuracy", 0.37021)`` -> "37.02"; BLEU 37.021 -> "37.02"; None -> "–"."""
    if value is None:
        return "–"
    return f"{display_value(metric, value):.{digits}f}"


def metric_label(metric: str) -> str:
    """The metric with its unit: "accuracy (%)", "bleu"."""
    return f"{metric} (%)" if metric in PERCENT_METRICS else metric


def format_count(count: float) -> str:
    """Parameter counts in adaptive units, three significant digits: 812, 5.2K, 38K, 1.34M, 178M,
    7.1B (never "0.01M" for five thousand)."""
    if count < 0:
        return "-" + format_count(-count)
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size * 0.9995:  # 999,600 is 1M, not 1e+03K
            return f"{count / size:.3g}{unit}"
    return f"{count:.0f}"


def format_seconds(seconds: float) -> str:
    """Seconds as a reader compares them: 42 s, 13.5 min, 2.4 h."""
    if not math.isfinite(seconds):
        return "–"
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 36_000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
