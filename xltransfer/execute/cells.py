"""The two units of work every executor runs: train a piece, evaluate a cell.

Both are idempotent against the stores: a stored piece is not retrained, a finished cell is
not re-evaluated. A cell's records (or its one failure record) are written in one transaction.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from xltransfer.cell import Cell
from xltransfer.context import RunContext
from xltransfer.convergence import convergence
from xltransfer.hardware import describe_hardware, load_average, under_load, usable_cores
from xltransfer.precision import using
from xltransfer.reporting.significance import example_statistics_path, predictions_path
from xltransfer.seeding import seed_everything
from xltransfer.software import software_record
from xltransfer.store import FINGERPRINT, SCHEMA_VERSION, now
from xltransfer.util import atomic_path, atomic_write_text
from xltransfer.version import __version__

log = logging.getLogger(__name__)


def ensure_piece(ctx: RunContext, key: str) -> bool:
    """Train the piece unless stored intact; True if it was trained now.

    Under the piece's OS lock, checked again once the lock is held: a second process (another
    ``xlt run`` on the workdir, a run split by ``--only``, a Ray worker) waits for the piece instead
    of training it too. A stored piece whose files no longer match their checksums is moved aside
    and trained again. A piece that failed to train or to be saved is not tried again in this run.
    """
    store = ctx.artifacts
    label = ctx.plan.pieces[key].piece.label
    if store.problem(key) is None:
        ctx.counters["pieces_reused"] += 1
        ctx.progress.piece_reused(key, label)
        return False
    if key in ctx.failed_pieces:  # do not retrain a failed piece for every cell that needs it
        raise RuntimeError(f"needed piece {label} failed: {ctx.failed_pieces[key]}")
    with store.lock(key):
        problem = store.problem(key)
        if problem is None:  # trained by another process while this one waited
            ctx.counters["pieces_reused"] += 1
            ctx.progress.piece_reused(key, label)
            return False
        store.set_aside(key, problem)
        try:
            info = _train_and_save(ctx, key)
        except Exception as error:
            ctx.failed_pieces[key] = f"{type(error).__name__}: {error}"
            ctx.progress.piece_failed(key, label, error)
            raise
    ctx.counters["pieces_trained"] += 1
    ctx.progress.piece_finished(key, label, info)
    return True


def _train_and_save(ctx: RunContext, key: str) -> dict[str, Any]:
    """Train the piece and store it with what describes it (the info returned)."""
    planned = ctx.plan.pieces[key]
    method = ctx.plan.trainers[key]
    piece = planned.piece
    ctx.progress.piece_started(key, piece.label, 0 if piece.task_owned else method.planned_steps(piece))
    cpu_started, load_started = time.process_time(), load_average()
    seed_everything(piece.seed)  # before anything of the piece is built: same grid, same bytes
    started = time.perf_counter()
    # the data the piece prepared (tokenised, packed), or "cached": its seconds are the piece's too
    with using(ctx.precision), ctx.reading_for_mixed(piece.mixed), ctx.data_prep.piece() as prep:
        if planned.piece.task_owned:
            trained = ctx.task(planned.piece.task).train_piece(planned.piece, ctx)
        else:
            trained = method.train(planned.piece, ctx)
    info = {
        "piece": planned.piece.label,
        "method": planned.piece.method,
        "kind": planned.piece.kind,
        "languages": list(planned.piece.languages),
        "task": planned.piece.task,
        "params": planned.piece.params.to_dict(),
        "seed": planned.piece.seed,
        "needs": planned.needs,
        "trainable_params": sum(t.numel() for t in trained.state.values()),
        "dtype": ctx.precision.dtype_name,
        "created_at": now(),
        "xltransfer_version": __version__,
        # beside the wall-clock train_seconds: CPU time of every thread of this process, and where
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
        "hardware": describe_hardware(ctx.device),
        # the one-minute load average at the start and end of training, and the cores: a report
        # marks seconds measured while other jobs shared the machine (load above the core count)
        "load_average": [load_started, load_average()],
        "cores": usable_cores(),
        **trained.info,
        "data_prep_seconds": prep["data_prep_seconds"],
        "data_cached": prep["data_cached"],
        # the piece's wall-clock time, its data's preparation included (read up front or not)
        "wall_seconds": round(time.perf_counter() - started + prep["earlier_seconds"], 3),
    }
    ctx.artifacts.save_state(key, trained.state, info, trained.write_files)
    return info


def _base_record(ctx: RunContext, cell: Cell, run_id: str) -> dict[str, Any]:
    grid = ctx.grid
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "grid": grid.name,
        **cell.to_dict(),
        "backbone": grid.backbone.name,
        "backbone_revision": grid.backbone.revision_label,
        "xltransfer_version": __version__,
        "created_at": now(),
        "trainable_params": None,
        "total_params": None,
        "train_seconds": None,
        "eval_seconds": None,
        "batch_size": None,
        "dtype": ctx.precision.dtype_name,
        "device": str(ctx.device),
        "extra": {},
    }


def evaluate_cell(ctx: RunContext, cell: Cell, run_id: str) -> list[dict[str, Any]]:
    """Train what the cell needs, predict the target's test split, and score it (in the run's
    precision: predictions and the per-example statistics kept with them come from one pass)."""
    with using(ctx.precision):
        return _evaluate_cell(ctx, cell, run_id)


def _evaluate_cell(ctx: RunContext, cell: Cell, run_id: str) -> list[dict[str, Any]]:
    for key in ctx.plan.closure(cell):
        ensure_piece(ctx, key)
    method = ctx.plan.method_for(cell)
    task = ctx.task(cell.task)
    test = ctx.test_examples(cell)
    started = time.perf_counter()
    seed_everything(cell.seed)  # whatever prediction draws (e.g. a module created before its weights load)
    with ctx.reading_for_mixed(cell.setting == "mixed"):  # e.g. the majority floor reads its sources
        predictions = method.predict(cell, test, ctx)
    scores = task.score(test, predictions)
    eval_seconds = time.perf_counter() - started
    statistics = _store_example_statistics(ctx, cell, run_id, task, test, predictions, scores)
    prediction_file = _store_predictions(ctx, cell, task, test, predictions)
    infos = [ctx.artifacts.info(key) for key in ctx.plan.closure(cell)]
    samples = [i["few_shot_sample"] for i in infos if "few_shot_sample" in i]
    trainable = sum(i["trainable_params"] for i in infos)
    counts = ctx.plan.parameter_counts(cell)
    base = _base_record(ctx, cell, run_id)
    base.update(
        trainable_params=trainable,
        total_params=counts["total_params"],
        train_seconds=round(sum(i.get("train_seconds", 0.0) for i in infos), 3),
        eval_seconds=round(eval_seconds, 3),
        batch_size=method.training_batch_size(cell),
        extra={
            FINGERPRINT: ctx.plan.cell_fingerprint(cell),
            "pieces": [i["key"] for i in infos],
            # per piece, so a report can count a piece shared by many cells once
            "piece_costs": {i["key"]: _piece_cost(i) for i in infos},
            # the machines the pieces trained on (the efficiency table's seconds are theirs)
            "hardware": sorted({i["hardware"] for i in infos if i.get("hardware")}),
            **_measured_under_load(infos),
            "software": software_record(cell.method, cell.task),
            "test_examples": len(test),
            **statistics,
            **prediction_file,
            **task.record_extra(),
            **method.record_extra(cell),
            **_sanity_signals(ctx, cell, infos),
            "convergence": convergence(infos),  # a piece that did not train flags the record
            **_relatedness_probe(ctx, cell, test, scores),
            **({"few_shot_sample": samples[-1]} if samples else {}),
        },
    )
    ctx.counters["cells_evaluated"] += 1
    return [
        {**base, "split": "test", "metric": metric, "value": float(value), "status": "ok", "error": None}
        for metric, value in scores.items()
    ]


def _measured_under_load(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """The pieces trained while the load average exceeded the cores: piece key -> [load at start,
    load at end, cores] (their seconds overstate the cost; the efficiency table marks them)."""
    loaded = {
        i["key"]: [*i["load_average"], i["cores"]]
        for i in infos
        if i.get("load_average") and under_load(i["load_average"], i["cores"])
    }
    return {"measured_under_load": loaded} if loaded else {}


def _piece_cost(info: dict[str, Any]) -> list[float | None]:
    """[trainable parameters, train seconds (wall, its checkpoint-selection evaluations included),
    CPU seconds when the piece recorded them, data preparation seconds when it recorded them (0.0:
    its data was cached)]; a piece from before either was recorded has the shorter list."""
    cost: list[float | None] = [info["trainable_params"], round(info.get("train_seconds", 0.0), 3)]
    prep = info.get("data_prep_seconds")
    if info.get("cpu_seconds") is not None or prep is not None:
        cost.append(info.get("cpu_seconds"))
    if prep is not None:
        cost.append(0.0 if info.get("data_cached", False) else round(float(prep), 3))
    return cost


def _store_example_statistics(
    ctx: RunContext, cell: Cell, run_id: str, task, test: list, predictions: list, scores: dict[str, float]
) -> dict[str, Any]:
    """Keep the evaluation's per-example statistics (``Task.example_statistics``) beside the results,
    for paired significance tests: ``<workspace>/predictions/<sha1 of grid and cell id>.json``,
    written atomically and overwritten by a re-evaluation; the record's ``extra`` names it."""
    if not task.has_example_statistics:
        return {}
    rows = task.example_statistics(test, predictions)
    relative = example_statistics_path(ctx.grid.name, cell.cell_id)
    document = {
        "grid": ctx.grid.name,
        "cell_id": cell.cell_id,
        "run_id": run_id,
        "task": task.name,
        "metrics": list(scores),
        "columns": list(task.statistics_names),
        "statistics": [[_compact(x) for x in row] for row in rows],
    }
    atomic_write_text(ctx.workspace.root / relative, json.dumps(document, separators=(",", ":")))
    return {"example_statistics": relative}


def _store_predictions(ctx: RunContext, cell: Cell, task, test: list, predictions: list) -> dict[str, Any]:
    """The cell's predictions in the task's own file format (``xlt evaluate --pred`` reads them, as
    does the field's own scorer), from the same pass as the statistics, beside them:
    ``<workspace>/predictions/<sha1 of grid and cell id><task's suffix>``; the record's ``extra``
    names it."""
    if not task.writes_predictions:  # a plugin task without a file format
        return {}
    relative = predictions_path(ctx.grid.name, cell.cell_id, task.prediction_suffix)
    with atomic_path(ctx.workspace.root / relative) as tmp:
        task.write_predictions(test, predictions, tmp)
    return {"predictions": relative}


def _compact(value: float) -> float | int:
    """Counts as integers (most statistics are): a smaller file, the same numbers."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _relatedness_probe(ctx: RunContext, cell: Cell, test: list, scores: dict[str, float]) -> dict[str, Any]:
    """Baziotis et al. 2022, §6.1: the cell's test set translated again with the modules of a
    similar and of a distant source language (``mt.probe``), for methods with source-specific
    modules; BLEU for the original, similar and distant language and Sim/Org, the share of the
    original BLEU a related language's modules recover."""
    method = ctx.plan.method_for(cell)
    source = cell.source_languages[0]
    if source not in ctx.grid.mt_probe or not getattr(method, "swaps_source_modules", False):
        return {}
    task = ctx.task(cell.task)
    main = task.metadata.main_metric
    probe: dict[str, Any] = {"original": {"language": source, main: float(scores[main])}}
    for kind, language in zip(("similar", "distant"), ctx.grid.mt_probe[source], strict=True):
        swapped = task.score(test, method.predict(method.probe_cell(cell, language), test, ctx))
        probe[kind] = {"language": language, main: float(swapped[main])}
    original = probe["original"][main]
    probe["sim_over_org"] = probe["similar"][main] / original if original else None
    return {"relatedness_probe": probe}


def _sanity_signals(ctx: RunContext, cell: Cell, infos: list[dict[str, Any]]) -> dict[str, Any]:
    """What shows a broken piece even when the target score alone would not: the held-out MLM
    perplexity of every adapter the cell used, and the same model's score on the source's test set
    (computed once per model, not once per target)."""
    signals: dict[str, Any] = {}
    perplexities = {i["piece"]: i["dev_perplexity"] for i in infos if i.get("dev_perplexity") is not None}
    if perplexities:
        signals["adapter_perplexity"] = perplexities
    source = cell.source_languages[0]
    if cell.directions or not ctx.has_split(cell.task, source, "test"):
        return signals  # MT cells are directions: their source side is another cell
    method = ctx.plan.method_for(cell)
    source_cell = method.source_cell(cell)
    memo_key = ("source-test", tuple(ctx.key_of(p) for p in method.pieces(source_cell)), source)
    if memo_key not in ctx.memo:
        examples = ctx.examples(cell.task, source, "test")
        scores = ctx.task(cell.task).score(examples, method.predict(source_cell, examples, ctx))
        ctx.memo[memo_key] = {"language": source, **{k: float(v) for k, v in scores.items()}}
    signals["source_test"] = ctx.memo[memo_key]
    return signals


def failure_record(ctx: RunContext, cell: Cell, run_id: str, error: BaseException) -> dict[str, Any]:
    ctx.counters["cells_failed"] += 1
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    log.debug("cell %s failed", cell.cell_id, exc_info=error)
    return {
        **_base_record(ctx, cell, run_id),
        "split": "-",
        "metric": "-",
        "value": None,
        "status": "failed",
        "error": summary[-2000:],
    }
