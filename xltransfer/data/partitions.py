"""Mixed-language multi-task partitions (Hyper-X §4, Appendix A and Table 6).

Two partitions, A and B, each train one model on every task. The shared languages (the grid's
sources: English, "en^{a,b}" in Table 6) are trained for every task in both. Every other
task–language pair is trained in exactly one partition and evaluated zero-shot by the model of
the other, which has seen that task and that language, but never together. Computed partitions
split the other languages into two groups, relatives together (whole families go to one group,
Appendix A); each task is trained on one group in A and on the other group in B.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

PARTITION_NAMES = ("A", "B")


class PartitionError(ValueError):
    """Explicit partitions that break the rules; ``where`` is the offending entry ("A.pos[2]")."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class Partitions:
    """partition name -> task -> languages trained on that task in that partition, the shared
    languages first (they are in every list)."""

    train: dict[str, dict[str, tuple[str, ...]]]
    test_as_train: bool = False  # a language without a train split trains on its test split (as Hyper-X did)
    shared: tuple[str, ...] = ()  # trained for every task in both partitions, never a zero-shot target

    def other(self, name: str) -> str:
        return next(p for p in self.train if p != name)

    def trained_in(self, task: str, language: str) -> str | None:
        """The partition that trains this pair (None for a shared language: both do)."""
        if language in self.shared:
            return None
        return next((p for p, tasks in self.train.items() if language in tasks.get(task, ())), None)

    def evaluations(self) -> Iterable[tuple[str, str, str, tuple[str, ...]]]:
        """(model partition, task, target, sources): each pair trained in one partition, evaluated by
        the other's model; shared languages are trained by both, so neither tests them zero-shot."""
        for name, tasks in self.train.items():
            for task, languages in sorted(tasks.items()):
                model = self.other(name)
                sources = self.train[model].get(task, ())
                for target in languages:
                    if target not in self.shared:
                        yield model, task, target, sources


def split_by_family(
    languages: list[str], family_of: Callable[[str], str | None]
) -> tuple[list[str], list[str]]:
    """Two groups of about equal size; a family never straddles them (largest families first)."""
    families: dict[str, list[str]] = {}
    for language in languages:
        families.setdefault(family_of(language) or f"isolate:{language}", []).append(language)
    groups: tuple[list[str], list[str]] = ([], [])
    for _, members in sorted(families.items(), key=lambda item: (-len(item[1]), item[0])):
        smaller = groups[0] if len(groups[0]) <= len(groups[1]) else groups[1]
        smaller.extend(members)
    return sorted(groups[0]), sorted(groups[1])


def compute_partitions(
    tasks: list[str],
    languages: list[str],
    family_of: Callable[[str], str | None],
    test_as_train: bool = False,
    shared: tuple[str, ...] = (),
) -> Partitions:
    """Task i is trained on group i mod 2 in partition A and on the other group in partition B;
    the shared languages on every task in both."""
    first, second = split_by_family([lang for lang in languages if lang not in shared], family_of)
    if not first or not second:
        raise ValueError("mixed partitions need languages of at least two families besides the shared ones")
    train: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in PARTITION_NAMES}
    for i, task in enumerate(sorted(tasks)):
        a, b = (first, second) if i % 2 == 0 else (second, first)
        train["A"][task] = (*shared, *a)
        train["B"][task] = (*shared, *b)
    return Partitions(train, test_as_train, tuple(shared))


def explicit_partitions(
    spec: dict[str, dict[str, list[str]]], test_as_train: bool = False, shared: tuple[str, ...] = ()
) -> Partitions:
    """Partitions written out in the grid: each task–language pair trained in only one of them,
    except the shared languages, which both train on every task of the grid (``tasks``: those the
    partitions name)."""
    if len(spec) != 2:
        raise PartitionError(f"mixed needs exactly two partitions, got {len(spec)}")
    seen: dict[tuple[str, str], str] = {}
    for name, tasks in spec.items():
        for task, languages in tasks.items():
            for i, language in enumerate(languages):
                where = f"{name}.{task}[{i}]"
                if language in shared:
                    raise PartitionError(
                        f"{task}/{language} is listed in {name}, but '{language}' is shared: both "
                        f"partitions train it on every task (leave it out of {name})",
                        where,
                    )
                if (task, language) in seen:
                    raise PartitionError(
                        f"{task}/{language} is trained in both {seen[(task, language)]} and {name}", where
                    )
                seen[(task, language)] = name
    tasks = sorted({task for by_task in spec.values() for task in by_task})
    train = {
        name: {task: (*shared, *by_task.get(task, ())) for task in tasks} for name, by_task in spec.items()
    }
    return Partitions(train, test_as_train, tuple(shared))
