"""Well-formed dependency trees from arc scores: Chu–Liu/Edmonds with the single-root constraint.

A biaffine parser scores every (dependent, head) pair. Taking each word's best head on its own (the
greedy argmax the ``adapters`` head stops at) can give cycles or several words attached to the root,
which are not trees and which the official CoNLL 2018 scorer rejects. The maximum spanning
arborescence (Chu & Liu 1965; Edmonds 1967) is the best-scoring tree; UD also wants exactly one word
under the root, which the decoder enforces (Zmigrod, Vieira & Cotterell 2020, "Please Mind the Root").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def find_cycle(parents: Sequence[int]) -> list[int] | None:
    """The nodes of one cycle, or None: ``parents[v]`` is node v's parent, a negative value none.

    Shared by the CoNLL-U reader (gold HEADs must form no cycle) and the decoder, so both agree on
    what a tree is. Parents outside ``0..len(parents)-1`` end a path like a missing parent does.
    """
    size = len(parents)
    state = [0] * size  # 0: not seen, 1: on the path being followed, 2: known to reach no cycle
    for start in range(size):
        path = []
        node = start
        while 0 <= node < size and state[node] == 0:
            state[node] = 1
            path.append(node)
            node = parents[node]
        if 0 <= node < size and state[node] == 1:
            return path[path.index(node) :]
        for visited in path:
            state[visited] = 2
    return None


def decode_tree(scores: np.ndarray | Sequence[Sequence[float]]) -> list[int]:
    """HEADs (0 = the root, words numbered from 1) of the best tree with exactly one root word.

    ``scores[i, j]`` is the score of word ``i + 1`` taking head ``j`` (column 0: the root), the
    ``(n, n + 1)`` layout of the biaffine head's arc scores for one sentence.

    The single-root constraint is a penalty on every root arc larger than the gap between any two
    trees' scores: the best arborescence then has one root arc (one always exists), and every
    single-root tree pays the same penalty, so their order (hence the winner) is unchanged.
    """
    arcs = np.asarray(scores, dtype=np.float64)
    if arcs.ndim != 2 or arcs.shape[1] != arcs.shape[0] + 1 or arcs.shape[0] == 0:
        raise ValueError(f"arc scores must have shape (n, n + 1) with n >= 1, got {arcs.shape}")
    if not np.isfinite(arcs).all():
        raise ValueError("arc scores must be finite")
    n = arcs.shape[0]
    graph = np.full((n + 1, n + 1), -np.inf)  # graph[dependent, head]; the root (node 0) has no head
    graph[1:, :] = arcs
    graph[1:, 0] -= n * (arcs.max() - arcs.min()) + 1.0
    np.fill_diagonal(graph, -np.inf)
    return [int(h) for h in _max_arborescence(graph)[1:]]


def _max_arborescence(graph: np.ndarray) -> np.ndarray:
    """Parents of the maximum spanning arborescence rooted at node 0 (``parents[0]`` is -1)."""
    parents = graph.argmax(axis=1)
    parents[0] = -1
    cycle = find_cycle(parents.tolist())
    if cycle is None:
        return parents
    return _break_cycle(graph, parents, np.asarray(cycle))


def _break_cycle(graph: np.ndarray, parents: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """Contract the cycle into one node, solve the smaller graph, then open the cycle where it is entered.

    Entering the cycle at member v from head h gains ``graph[v, h] - graph[v, parents[v]]`` over
    keeping the cycle's arc into v; that gain is the contracted node's incoming score.
    """
    in_cycle = np.zeros(len(graph), dtype=bool)
    in_cycle[cycle] = True
    outside = np.flatnonzero(~in_cycle)  # starts with the root, which is never on a cycle
    merged = len(outside)
    small = np.full((merged + 1, merged + 1), -np.inf)
    small[:merged, :merged] = graph[np.ix_(outside, outside)]
    leaving = graph[np.ix_(outside, cycle)]
    small[:merged, merged] = leaving.max(axis=1)
    exit_head = cycle[leaving.argmax(axis=1)]
    entering = graph[np.ix_(cycle, outside)] - graph[cycle, parents[cycle]][:, None]
    small[merged, :merged] = entering.max(axis=0)
    entry_word = cycle[entering.argmax(axis=0)]

    solved = _max_arborescence(small)
    result = parents.copy()
    for index, node in enumerate(outside[1:], start=1):
        head = solved[index]
        result[node] = exit_head[index] if head == merged else outside[head]
    head = solved[merged]
    result[entry_word[head]] = outside[head]
    return result
