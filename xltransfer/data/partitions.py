"""Mixed-language multi-task partitions (Hyper-X §4 and Appendix A).

The languages are split into two groups, relatives together (whole families go to one group);
each task is trained on one group in partition A and on the other group in partition B. Every
task–language pair is thus trained in exactly one partition and evaluated zero-shot by the
model of the other, which has seen that task and that language, but never together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

PARTITION_NAMES = ("A", "B")


@dataclass(frozen=True)
class Partitions:
    """partition name -> task -> languages trained on that task in that partition."""

    train: dict[str, dict[str, tuple[str, ...]]]
    test_as_train: bool = False  # a language without a train split trains on its test split (as Hyper-X did)

    def other(self, name: str) -> str:
        return next(p for p in self.train if p != name)

    def trained_in(self, task: str, language: str) -> str | None:
        return next((p for p, tasks in self.train.items() if language in tasks.get(task, ())), None)

    def evaluations(self) -> Iterable[tuple[str, str, str, tuple[str, ...]]]:
        """(model partition, task, target, sources): each trained pair, evaluated by the other model."""
        for name, tasks in self.train.items():
            for task, targets in sorted(tasks.items()):
                model = self.other(name)
                sources = self.train[model].get(task, ())
                for target in targets:
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
) -> Partitions:
    """Task i is trained on group i mod 2 in partition A and on the other group in partition B."""
    first, second = split_by_family(languages, family_of)
    if not first or not second:
        raise ValueError("mixed partitions need languages of at least two families")
    train: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in PARTITION_NAMES}
    for i, task in enumerate(sorted(tasks)):
        a, b = (first, second) if i % 2 == 0 else (second, first)
        train["A"][task] = tuple(a)
        train["B"][task] = tuple(b)
    return Partitions(train, test_as_train)


def explicit_partitions(spec: dict[str, dict[str, list[str]]], test_as_train: bool = False) -> Partitions:
    """Partitions written out in the grid; each task–language pair may be trained in only one."""
    if len(spec) != 2:
        raise ValueError(f"mixed needs exactly two partitions, got {len(spec)}")
    seen: dict[tuple[str, str], str] = {}
    for name, tasks in spec.items():
        for task, languages in tasks.items():
            for language in languages:
                if (task, language) in seen:
                    raise ValueError(
                        f"{task}/{language} is trained in both {seen[(task, language)]} and {name}"
                    )
                seen[(task, language)] = name
    return Partitions(
        {name: {t: tuple(ls) for t, ls in tasks.items()} for name, tasks in spec.items()}, test_as_train
    )
