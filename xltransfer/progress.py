"""What a run tells the person who started it: pieces k/n, cells k/n, an honest ETA.

Two readers. Someone at a terminal gets rich bars (the run's training steps with the ETA, the
current loop's steps) and one persistent line per finished piece and scored cell. A log file
(nohup, SLURM, CI, ``| tee``) gets the same lines as plain timestamped ``logging`` records, and a
heartbeat line from a long training loop, so a cluster job shows that it lives.

The ETA counts what is left to train, not cells: the planned optimiser steps of the pieces still
to train (``Method.planned_steps``) times the seconds a piece's step has taken so far in this run
(any step, before the first piece: the quickstart backbone's are slower than an adapter's). A piece
whose steps depend on its data (``planned_steps`` is None) counts once its loop starts; until then
the ETA says how many such pieces it leaves out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol

from xltransfer.convergence import selected

log = logging.getLogger("xltransfer.run")

HEARTBEAT_SECONDS = 60.0  # a log line from a loop at most this often (off a terminal)
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class Advance(Protocol):
    def __call__(self, steps: int = 1, **fields: object) -> None: ...


class Progress:
    """The run's counts and ETA, reported as ``logging`` lines; training loops report through
    ``bar`` (no display here: ``RichProgress`` draws bars on a terminal)."""

    def __init__(self) -> None:
        self.pieces_total = self.pieces_done = 0
        self.cells_total = self.cells_done = 0
        self._planned: dict[str, int | None] = {}  # pieces to train, not started: key -> steps
        self._current: tuple[str, int | None] | None = None  # (key, planned steps) of the piece training
        self._current_steps = 0
        self._bars: list[list[int]] = []  # [total, done] of the open loops
        self.steps_done = 0
        self.step_seconds = 0.0
        # the pieces' own steps: their pace predicts the pieces left better than, say, the backbone's
        self.piece_steps = 0
        self.piece_seconds = 0.0

    # -- the run --------------------------------------------------------------------------------
    def start_run(self, grid: str, pieces: Mapping[str, int | None], cells: int, skipped: int) -> None:
        """``pieces``: key -> planned steps of every piece this run will train."""
        self._planned = dict(pieces)
        self.pieces_total, self.cells_total = len(pieces), cells
        known = sum(s for s in pieces.values() if s is not None)
        unknown = sum(s is None for s in pieces.values())
        self.log(
            f"grid {grid}: {cells} cells to evaluate ({skipped} already done), {len(pieces)} pieces to "
            f"train ({known:,} planned steps{_unknown(unknown)})"
        )

    def piece_started(self, key: str, label: str, planned_steps: int | None) -> None:
        self._planned.pop(key, None)
        self._current, self._current_steps = (key, planned_steps), 0
        steps = f"{planned_steps:,} steps" if planned_steps is not None else "steps from its data"
        self.log(f"piece {self.pieces_done + 1}/{self.pieces_total} started: {label} ({steps})")

    def piece_finished(self, key: str, label: str, info: Mapping[str, Any]) -> None:
        self._current = None
        self.pieces_done += 1
        cpu = f", CPU {info['cpu_seconds']:.1f}s" if info.get("cpu_seconds") is not None else ""
        self.log(
            f"piece {self.pieces_done}/{self.pieces_total} done: {label} in "
            f"{info.get('train_seconds', 0.0):.1f}s{cpu}{_data_prep(info)}{_best_dev(info)} · {self.eta()}"
        )

    def piece_reused(self, key: str, label: str) -> None:
        """A stored piece: counted here only when this run planned to train it (another process,
        a second ``xlt run`` on the workdir, stored it meanwhile)."""
        if key not in self._planned:
            return
        del self._planned[key]
        self.pieces_done += 1
        self.log(f"piece {self.pieces_done}/{self.pieces_total} trained by another run meanwhile: {label}")

    def piece_failed(self, key: str, label: str, error: BaseException) -> None:
        self._current = None
        self.pieces_done += 1
        log.warning(
            "piece %d/%d failed: %s: %s: %s",
            self.pieces_done,
            self.pieces_total,
            label,
            type(error).__name__,
            error,
        )

    def cell_finished(self, cell_id: str, records: list[dict[str, Any]]) -> None:
        self.cells_done += 1
        where = f"cell {self.cells_done}/{self.cells_total}"
        if records and records[0]["status"] == "failed":
            log.warning("%s failed: %s: %s", where, cell_id, records[0]["error"])
            return
        from xltransfer.reporting.units import format_score

        scores = ", ".join(f"{r['metric']} {format_score(r['metric'], r['value'])}" for r in records)
        self.log(f"{where} scored: {cell_id}: {scores} · pieces {self.pieces_done}/{self.pieces_total}")

    def cell_skipped(self, cell_id: str) -> None:
        """A cell another process (a second ``xlt run`` on the workdir) evaluated meanwhile."""
        self.cells_done += 1
        self.log(f"cell {self.cells_done}/{self.cells_total} evaluated by another run meanwhile: {cell_id}")

    def eta(self) -> str:
        """Time left to train, from the steps still planned and this run's seconds per step."""
        remaining = sum(s for s in self._planned.values() if s is not None)
        unknown = sum(s is None for s in self._planned.values())
        if self._current is not None and self._current[1] is not None:
            remaining += max(0, self._current[1] - self._current_steps)
        elif self._bars:  # a loop outside a planned piece (the quickstart backbone) or of unknown length
            remaining += max(0, self._bars[-1][0] - self._bars[-1][1])
        if not remaining:
            return _unknown(unknown).replace(" + ", "left: ", 1) if unknown else "nothing left to train"
        if not self.steps_done:
            return f"{remaining:,} steps left{_unknown(unknown)}"
        if self.piece_steps:
            seconds = remaining * self.piece_seconds / self.piece_steps
        else:
            seconds = remaining * self.step_seconds / self.steps_done
        return f"ETA {timedelta(seconds=round(seconds))} for {remaining:,} steps{_unknown(unknown)}"

    def log(self, message: str) -> None:
        """A persistent line (a terminal shows it above the bars)."""
        log.info(message)

    # -- training loops -------------------------------------------------------------------------
    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Advance]:
        """One loop of ``total`` steps; ``advance(n, **fields)`` after each (fields: loss, dev...)."""
        state = [total, 0]
        self._bars.append(state)
        last = [time.perf_counter(), time.perf_counter()]  # last step, last heartbeat line

        def advance(steps: int = 1, **fields: object) -> None:
            now = time.perf_counter()
            state[1] += steps
            self.steps_done += steps
            self._current_steps += steps
            self.step_seconds += now - last[0]
            if self._current is not None:
                self.piece_steps += steps
                self.piece_seconds += now - last[0]
            last[0] = now
            status = _fields(fields)
            self._show(description, steps, status)
            if "dev" in fields:
                log.debug("%s: step %d/%d %s", description, state[1], total, status)
            if now - last[1] >= HEARTBEAT_SECONDS and state[1] < total:
                last[1] = now
                self.heartbeat(f"{description}: step {state[1]:,}/{total:,} {status} · {self.eta()}")

        try:
            with self._open(description, total):
                yield advance
        finally:
            self._bars.remove(state)

    def heartbeat(self, message: str) -> None:
        """A long loop's periodic line: in the log (a terminal has its bar instead)."""
        log.info(message)

    @contextmanager
    def _open(self, description: str, total: int) -> Iterator[None]:
        yield

    def _show(self, description: str, steps: int, status: str) -> None:
        """Display hook for a step (none here)."""


class SilentProgress(Progress):
    """Counts and nothing else: tests, Ray workers, ``xltransfer.run(..., progress=SilentProgress())``."""

    def log(self, message: str) -> None:
        log.debug(message)

    def heartbeat(self, message: str) -> None:
        pass


class RichProgress(Progress):
    """On a terminal: a bar for the run's steps (pieces k/n, ETA) and one for the current loop;
    persistent lines come through ``logging`` (``run_logging`` prints them on the same
    console, above the bars, without a source-location column)."""

    def __init__(self, console=None):
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBars

        self.console = console or Console(stderr=True)
        self._rich = RichBars(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._run_bar = None
        self._loop_bars: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._rich.stop()

    def heartbeat(self, message: str) -> None:
        pass  # the bars show it

    def start_run(self, grid: str, pieces: Mapping[str, int | None], cells: int, skipped: int) -> None:
        super().start_run(grid, pieces, cells, skipped)
        known = sum(s for s in pieces.values() if s is not None)
        self._run_bar = self._rich.add_task(self._run_description(), total=known or None, status="")

    def piece_started(self, key: str, label: str, planned_steps: int | None) -> None:
        super().piece_started(key, label, planned_steps)
        self._refresh_run_bar()

    def piece_finished(self, key: str, label: str, info: Mapping[str, Any]) -> None:
        super().piece_finished(key, label, info)
        self._refresh_run_bar()

    def piece_reused(self, key: str, label: str) -> None:
        super().piece_reused(key, label)
        self._refresh_run_bar()

    def cell_finished(self, cell_id: str, records: list[dict[str, Any]]) -> None:
        super().cell_finished(cell_id, records)
        self._refresh_run_bar()

    def cell_skipped(self, cell_id: str) -> None:
        super().cell_skipped(cell_id)
        self._refresh_run_bar()

    def _run_description(self) -> str:
        return f"pieces {self.pieces_done}/{self.pieces_total} · cells {self.cells_done}/{self.cells_total}"

    def _refresh_run_bar(self) -> None:
        if self._run_bar is None:
            return
        left = sum(s for s in self._planned.values() if s is not None)
        current = self._current[1] if self._current is not None and self._current[1] is not None else 0
        loop = self._bars[-1][0] if self._bars and not current else 0
        self._rich.update(
            self._run_bar,
            total=max(1, self.steps_done - self._current_steps + current + loop + left),
            completed=self.steps_done,
            description=self._run_description(),
            status=self.eta(),
        )

    @contextmanager
    def _open(self, description: str, total: int) -> Iterator[None]:
        task_id = self._rich.add_task(description, total=total, status="")
        self._loop_bars[description] = task_id
        self._refresh_run_bar()
        try:
            yield
        finally:
            self._loop_bars.pop(description, None)
            self._rich.remove_task(task_id)

    def _show(self, description: str, steps: int, status: str) -> None:
        task_id = self._loop_bars.get(description)
        if task_id is not None:
            self._rich.update(task_id, advance=steps, status=status)
        self._refresh_run_bar()


@contextmanager
def run_logging(verbosity: int = 0, console=None) -> Iterator[None]:
    """``xlt``'s logging while a command runs: INFO (``-v``: DEBUG, ``-q``: warnings only) from the
    harness, as plain timestamped lines on stderr, or, given a rich ``console`` (a terminal),
    printed on it so the lines stay above the live bars (no source-location column). Libraries
    stay at WARNING. The previous set-up is back afterwards (the CLI also runs in-process)."""
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    if console is not None:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=console, show_path=False, show_level=False, markup=False, log_time_format="[%X]"
        )
    else:
        import sys

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    root = logging.getLogger("xltransfer")
    before = (root.level, root.propagate)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        root.propagate = before[1]


def _fields(fields: Mapping[str, object]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())


def _unknown(count: int) -> str:
    return f" + {count} piece{'s' if count != 1 else ''} whose steps depend on data" if count else ""


def _data_prep(info: Mapping[str, Any]) -> str:
    """How long the piece's data took to prepare, or that it was cached."""
    if "data_cached" not in info:
        return ""
    return ", data cached" if info["data_cached"] else f", data prepared in {info['data_prep_seconds']:.1f}s"


def _best_dev(info: Mapping[str, Any]) -> str:
    """The piece's selection score as its trainer named it (dev_perplexity, dev_accuracy, dev_score)."""
    chosen = selected(info)
    if chosen is None:
        return ""
    name, value, _ = chosen
    step = f" at step {info['best_step']:,}" if isinstance(info.get("best_step"), int) else ""
    return f", best {name} {value:.4g}{step}"
