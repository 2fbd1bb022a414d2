"""`xlt check-method NAME`: a method end to end on a tiny synthetic grid, in seconds.

A plugin author's first command (as MTEB's mock run is a task author's): before spending GPU
hours, check that the harness can plan the method's pieces, count their parameters on a weightless
model, train them, predict, score, store records in the schema, write predictions, and resume
without retraining. The grid is the tests' tiny grid: the synthetic suite on a 2-layer backbone
built locally once (kept in ``WORKDIR/check-method``, a minute or two on a laptop CPU); budgets
shrink to a few steps by name (``*steps`` 12, ``*warmup_steps`` 2, ``*eval_every`` 6, ``*epochs``
1, ``*batch_size`` 8, ``*batch_tokens`` 800), then the method's ``check_params`` and the user's
``--param`` overrides apply. Scores mean nothing at this size; that the pipeline runs does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from xltransfer.errors import XltError
from xltransfer.util import yaml_value

TASK_ORDER = ("pos", "ner", "dp", "nli", "mt")  # the first one the method supports is checked
SOURCE, TARGET = "qaa", "qab"
# the tests' tiny grid (tests/conftest.py): a backbone built for one serves the other
TINY_BACKBONE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 1500,
    "steps": 150,
    "batch_size": 32,
    "eval_every": 100,
    "warmup_steps": 20,
}
TINY_SUITE = {
    "seed": 3,
    "family_sizes": [3, 2],
    "train_sentences": 300,
    "dev_sentences": 60,
    "test_sentences": 60,
    "text_sentences": 600,
    "nli_train_pairs": 30,
    "nli_dev_pairs": 30,
    "nli_test_pairs": 30,
    "mt_train_sentences": 30,
    "mt_dev_sentences": 30,
    "mt_test_sentences": 30,
}
TINY_MT = {
    "model": "transformer-base",
    "d_model": 32,
    "layers": 1,
    "ffn_dim": 64,
    "heads": 2,
    "vocab_size": 300,
}
# (name ending, ceiling): budgets a check needs no more of
SHRINK = (
    ("warmup_steps", 2),
    ("steps", 12),
    ("eval_every", 6),
    ("epochs", 1),
    ("batch_size", 8),
    ("batch_tokens", 800),
)


class CheckFailed(Exception):
    """A check's own finding (its message says it all)."""


@dataclasses.dataclass
class CheckReport:
    lines: list[str]
    ok: bool


def shrunk_params(defaults: dict[str, Any]) -> dict[str, Any]:
    """The parameters a budget names, cut to a check's size (a numeric default only)."""
    small = {}
    for name, value in defaults.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        for ending, ceiling in SHRINK:
            if name.endswith(ending):
                if value > ceiling:
                    small[name] = type(value)(ceiling)
                break
    return small


def _overrides(items: list[str]) -> dict[str, Any]:
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise XltError(f"--param {item!r}: expected KEY=VALUE")
        found[key] = yaml_value(value, f"--param {item!r}")
    return found


def check_grid(method_cls, variant: str, task: str, params: dict[str, Any]) -> dict[str, Any]:
    """The tiny grid (as YAML data) that runs ``method_cls`` on ``task``."""
    grid: dict[str, Any] = {
        "name": f"check-{method_cls.name}",
        "backbone": "quickstart",
        "quickstart": TINY_BACKBONE,
        "synthetic": TINY_SUITE,
        "data": {task: "synthetic", "mlm": "synthetic"},
        "methods": [{"name": method_cls.name, "variants": [variant], "params": params}],
        "tasks": [task],
        "settings": ["zero-shot"],
        "languages": {"source": SOURCE, "target": [TARGET]},
        "seeds": [1],
    }
    if task == "mt":
        grid["mt"] = TINY_MT
    return grid


def check_method(
    name: str,
    variant: str = "default",
    task: str | None = None,
    params: list[str] | None = None,
    workdir: Path | None = None,
    progress=None,
) -> CheckReport:
    """Run the checks; every line of the report says what passed or what failed and why."""
    from xltransfer import registry
    from xltransfer.errors import UnknownNameError

    try:
        cls = registry.methods.get(name)
    except UnknownNameError as error:
        raise XltError(str(error)) from None
    if variant not in cls.variants:
        raise XltError(f"--variant {variant!r}: {name} has {', '.join(cls.variants)}")
    supported = [t for t in TASK_ORDER if t in cls.supported_tasks]
    if task is None:
        if not supported:
            raise XltError(f"{name} supports none of {', '.join(TASK_ORDER)}: pass --task")
        task = supported[0]
    elif task not in cls.supported_tasks:
        raise XltError(f"--task {task!r}: {name} supports {', '.join(sorted(cls.supported_tasks))}")
    chosen = {**shrunk_params(cls.defaults), **cls.check_params, **_overrides(params or [])}
    if workdir is None:  # beside the runs' store: the tiny backbone is built once, then reused
        from xltransfer.workspace import Workspace

        workdir = Workspace.at().root / "check-method"
    return _check(cls, variant, task, chosen, Path(workdir), progress)


def _check(cls, variant: str, task: str, params: dict[str, Any], root: Path, progress) -> CheckReport:
    from xltransfer.util import atomic_write_text

    lines = [f"checking {cls.name}:{variant} on {task}, zero-shot {SOURCE} -> {TARGET} (tiny synthetic grid)"]
    ok = True

    def step(title: str, work: Callable[[], str]) -> bool:
        nonlocal ok
        try:
            detail = work()
        except Exception as error:  # noqa: BLE001 - a check reports what failed and stops
            why = str(error) if isinstance(error, CheckFailed) else f"{type(error).__name__}: {error}"
            lines.append(f"FAIL {title}: {why}")
            ok = False
            return False
        lines.append(f"ok   {title}" + (f": {detail}" if detail else ""))
        return True

    step("interface", lambda: _interface(cls))
    grid_file = root / "grid" / "grid.yaml"
    atomic_write_text(grid_file, yaml.safe_dump(check_grid(cls, variant, task, params), sort_keys=False))
    state: dict[str, Any] = {}
    if not step("plan and parameter counts", lambda: _plan(grid_file, root / "work", state)):
        return CheckReport(lines, False)
    if not step("train, predict, score, store", lambda: _run(grid_file, root / "work", state, progress)):
        return CheckReport(lines, False)
    step("planned steps", lambda: _planned_steps(state))
    step("records and predictions", lambda: _records(state))
    step("resume trains and evaluates nothing", lambda: _resume(grid_file, root / "work"))
    lines.append("all checks passed" if ok else "some checks failed")
    return CheckReport(lines, ok)


def _interface(cls) -> str:
    from xltransfer import registry

    problems = []
    for attribute in ("name", "summary", "supported_tasks"):
        if not getattr(cls, attribute, None):
            problems.append(f"no {attribute}")
    unknown_tasks = sorted(set(cls.supported_tasks) - set(registry.tasks.names()))
    if unknown_tasks:
        problems.append(f"supported_tasks names unregistered tasks: {', '.join(unknown_tasks)}")
    for variant, changes in cls.variants.items():
        extra = sorted(set(changes) - set(cls.defaults))
        if extra:
            problems.append(f"variant {variant} sets parameters without a default: {', '.join(extra)}")
    if problems:
        raise CheckFailed("; ".join(problems))
    unsourced = [p for p in cls.defaults if not cls.parameter_source(p)]
    if unsourced:
        return f"warning: no parameter_sources entry for {', '.join(unsourced)} (`xlt describe` shows them)"
    return f"{len(cls.defaults)} parameters, each with its source"


def _plan(grid_file: Path, workdir: Path, state: dict[str, Any]) -> str:
    from xltransfer import api

    summary = api.plan(grid_file, workdir=workdir)
    state["summary"] = summary
    (counts,) = summary["methods"].values()
    return (
        f"{len(summary['cells'])} cell, {len(summary['pieces'])} pieces; trainable per cell "
        f"{counts['trainable_params']:,}, added to the backbone {counts['added_params']:,}"
    )


def _run(grid_file: Path, workdir: Path, state: dict[str, Any], progress) -> str:
    from xltransfer import api

    summary = api.run(grid_file, workdir=workdir, progress=progress)
    if summary.failures:
        (error,) = summary.failures.values()
        raise CheckFailed(error)
    state["workspace"] = api.workspace(workdir)
    state["grid"] = yaml.safe_load(grid_file.read_text())["name"]
    return f"{summary.counters['pieces_trained']} pieces trained in {summary.seconds:.1f}s"


def _planned_steps(state: dict[str, Any]) -> str:
    """A piece that announces its steps (``planned_steps``) must take that many: progress and cost
    estimates are computed from them."""
    artifacts = state["workspace"].artifacts
    checked, wrong = 0, []
    for piece in state["summary"]["pieces"]:
        if piece["steps"] is None or not artifacts.has(piece["key"]):
            continue
        taken = artifacts.info(piece["key"]).get("steps")
        if taken is None:
            continue
        checked += 1
        if taken != piece["steps"]:
            wrong.append(f"{piece['method']}:{piece['kind']} planned {piece['steps']}, took {taken}")
    if wrong:
        raise CheckFailed("; ".join(wrong))
    unknown = sum(p["steps"] is None for p in state["summary"]["pieces"])
    note = f" ({unknown} pieces plan no steps: progress counts them once they start)" if unknown else ""
    return f"{checked} pieces took the steps they planned{note}"


def _records(state: dict[str, Any]) -> str:
    import jsonschema

    from xltransfer.store import json_schema

    workspace = state["workspace"]
    records = workspace.results.records(grid=state["grid"])
    if not records:
        raise CheckFailed("no records stored")
    for record in records:
        jsonschema.validate(record, json_schema())
    written = {(record.get("extra") or {}).get("predictions") for record in records}
    missing = [p for p in written if not p or not (workspace.root / p).is_file()]
    if missing:
        raise CheckFailed("a record names no prediction file, or its file is missing")
    scores = ", ".join(f"{r['metric']} {r['value']:.4g}" for r in records)
    return f"{len(records)} records in the schema ({scores}); predictions at {sorted(written)[0]}"


def _resume(grid_file: Path, workdir: Path) -> str:
    from xltransfer import api
    from xltransfer.progress import SilentProgress

    again = api.run(grid_file, workdir=workdir, progress=SilentProgress())
    counters = again.counters
    if counters["pieces_trained"] or counters["cells_evaluated"]:
        raise CheckFailed(
            f"a second run trained {counters['pieces_trained']} pieces and evaluated "
            f"{counters['cells_evaluated']} cells: a piece's key changes between runs"
        )
    return ""
