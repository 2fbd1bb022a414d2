"""Progress reporting: rich bars on a terminal, nothing in tests or when output is piped to a file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Advance(Protocol):
    def __call__(self, steps: int = 1, **fields: object) -> None: ...


class Progress(Protocol):
    def bar(self, description: str, total: int) -> contextmanager[Advance]: ...  # type: ignore[valid-type]

    def log(self, message: str) -> None: ...


class SilentProgress:
    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Advance]:
        yield lambda steps=1, **fields: None

    def log(self, message: str) -> None:
        pass


class RichProgress:
    """One rich live display for the whole grid; each training/eval loop adds a transient bar."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichBars

        self.console = console or Console(stderr=True)
        self._bars = RichBars(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Advance]:
        task_id = self._bars.add_task(description, total=total, status="")

        def advance(steps: int = 1, **fields: object) -> None:
            status = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
            )
            self._bars.update(task_id, advance=steps, **({"status": status} if fields else {}))

        try:
            yield advance
        finally:
            self._bars.remove_task(task_id)

    def log(self, message: str) -> None:
        self._bars.console.log(message)
