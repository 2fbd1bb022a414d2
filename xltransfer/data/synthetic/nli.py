"""NLI: hypotheses derived from a premise by label-specific edits (entailment, neutral,
contradiction), realised in every language alike."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from xltransfer.data.synthetic.grammar import _ENT, _NOUN, _NP, _Clause, _Grammar
from xltransfer.data.synthetic.inventory import _HYPERNYM_CATEGORIES, _N_ADJECTIVES, _OBL_KEYS

# --------------------------------------------------------------------------------------------
# NLI: hypotheses derived from the premise by label-specific edits

_Path = tuple[Any, ...]


def _np_paths(cl: _Clause) -> list[tuple[_Path, _NP]]:
    paths: list[tuple[_Path, _NP]] = [(("agent",), cl.agent)]
    if cl.patient is not None:
        paths.append((("patient",), cl.patient))
    paths.extend((("obl", i), np) for i, (_, np) in enumerate(cl.obls))
    return paths


def _set_np(cl: _Clause, path: _Path, np: _NP) -> _Clause:
    if path[0] == "agent":
        return replace(cl, agent=np)
    if path[0] == "patient":
        return replace(cl, patient=np)
    obls = list(cl.obls)
    obls[path[1]] = (obls[path[1]][0], np)
    return replace(cl, obls=tuple(obls))


def _adjectives_of(cl: _Clause) -> set[int]:
    return {a for _, np in _np_paths(cl) for a in np.adjs}


class _NliBuilder:
    """Premise/hypothesis pairs whose label follows from the edit that produced the hypothesis.

    entailment: drop a modifier, a conjunct or a possessor, or replace a noun by its hypernym;
    contradiction: negate, swap an adjective for its antonym, change the predicate or agent;
    neutral: add an adjective/oblique/adverb/time phrase absent from the premise, or replace a
    hypernym by a hyponym. Any label may additionally drop one modifier first, so that length
    and word overlap alone do not give the label away.
    """

    def __init__(self, grammar: _Grammar) -> None:
        self.grammar = grammar
        self.inv = grammar.inv

    def drops(self, cl: _Clause) -> list[tuple[Any, ...]]:
        ops: list[tuple[Any, ...]] = []
        for path, np in _np_paths(cl):
            ops.extend(("drop_adj", path, j) for j in range(len(np.adjs)))
            if np.num is not None:
                ops.append(("drop_num", path))
            if np.poss is not None:
                ops.append(("drop_poss", path))
        ops.extend(("drop_obl", i) for i in range(len(cl.obls)))
        if cl.adv is not None:
            ops.append(("drop_adv",))
        if cl.tmod is not None:
            ops.append(("drop_tmod",))
        if cl.agent.conj is not None:
            ops.append(("drop_conj",))
        return ops

    def label_ops(self, cl: _Clause, premise: _Clause, label: str) -> list[tuple[Any, ...]]:
        inv = self.inv
        if label == "entailment":
            ops = self.drops(cl)
            for path, np in _np_paths(cl):
                cat = inv.noun_cat[np.ref] if np.kind == _NOUN else ""
                if cat in _HYPERNYM_CATEGORIES and np.ref != inv.cat_head[cat]:
                    ops.append(("hyper", path))
            return ops
        if label == "contradiction":
            ops = [("negate",), ("verb",)]
            for path, np in _np_paths(cl):
                ops.extend(("antonym", path, j) for j in range(len(np.adjs)))
            agent = cl.agent
            # a hypernym agent ("the animal") swapped for a hyponym would be neutral, not a contradiction
            specific = agent.kind == _ENT or (
                agent.kind == _NOUN and agent.ref != inv.cat_head[inv.noun_cat[agent.ref]]
            )
            if agent.conj is None and specific:
                ops.append(("agent",))
            return ops
        ops = []
        premise_adjs = _adjectives_of(premise)
        if len(premise_adjs) < _N_ADJECTIVES // 2:
            for path, np in _np_paths(cl):
                if np.kind == _NOUN and len(np.adjs) < 2:
                    ops.append(("add_adj", path))
                cat = inv.noun_cat[np.ref] if np.kind == _NOUN else ""
                if cat in _HYPERNYM_CATEGORIES and np.ref == inv.cat_head[cat]:
                    ops.append(("hypo", path))
        if len(premise.obls) < 2:
            ops.append(("add_obl",))
        if premise.adv is None:
            ops.append(("add_adv",))
        if premise.tmod is None:
            ops.append(("add_tmod",))
        return ops

    def apply(self, rng: random.Random, cl: _Clause, premise: _Clause, op: tuple[Any, ...]) -> _Clause:
        inv = self.inv
        kind = op[0]
        nps = dict(_np_paths(cl))
        if kind == "drop_adj" or kind == "antonym":
            np = nps[op[1]]
            adjs = list(np.adjs)
            if kind == "drop_adj":
                del adjs[op[2]]
            else:
                adjs[op[2]] ^= 1
            return _set_np(cl, op[1], replace(np, adjs=tuple(adjs)))
        if kind == "drop_num":
            return _set_np(cl, op[1], replace(nps[op[1]], num=None))
        if kind == "drop_poss":
            return _set_np(cl, op[1], replace(nps[op[1]], poss=None))
        if kind == "drop_obl":
            return replace(cl, obls=cl.obls[: op[1]] + cl.obls[op[1] + 1 :])
        if kind == "drop_adv":
            return replace(cl, adv=None)
        if kind == "drop_tmod":
            return replace(cl, tmod=None)
        if kind == "drop_conj":
            return replace(cl, agent=replace(cl.agent, conj=None))
        if kind == "hyper":
            np = nps[op[1]]
            return _set_np(cl, op[1], replace(np, ref=inv.cat_head[inv.noun_cat[np.ref]]))
        if kind == "hypo":
            np = nps[op[1]]
            cat = inv.noun_cat[np.ref]
            return _set_np(cl, op[1], replace(np, ref=rng.choice(inv.cat_nouns[cat][1:])))
        if kind == "negate":
            return replace(cl, neg=not cl.neg)
        if kind == "verb":
            pool = inv.transitive if cl.patient is not None else inv.intransitive
            verb = cl.verb
            while verb == cl.verb:
                verb = pool.pick(rng)
            return replace(cl, verb=verb)
        if kind == "agent":
            agent = cl.agent
            ref = agent.ref
            if agent.kind == _ENT:
                same = [i for i, e in enumerate(inv.entities) if e[0] == inv.entities[ref][0] and i != ref]
            else:
                cat = inv.noun_cat[ref]
                same = [i for i in inv.cat_nouns[cat][1:] if i != ref]
            return replace(cl, agent=replace(agent, ref=rng.choice(same)))
        if kind == "add_adj":
            np = nps[op[1]]
            new = self.grammar.adjectives(rng, 1, avoid=_adjectives_of(premise) | set(np.adjs))
            return _set_np(cl, op[1], replace(np, adjs=np.adjs + new))
        if kind == "add_obl":
            used = {key for key, _ in premise.obls} | {key for key, _ in cl.obls}
            key = rng.choice([k for k in _OBL_KEYS if k not in used])
            return replace(cl, obls=cl.obls + ((key, self.grammar.participant(rng, key, 0.2)),))
        if kind == "add_adv":
            return replace(cl, adv=inv.adverbs.pick(rng))
        if kind == "add_tmod":
            return replace(cl, tmod=self.grammar.time_np(rng))
        raise ValueError(f"unknown NLI edit {kind}")

    def pair(self, rng: random.Random, label: str) -> tuple[_Clause, _Clause]:
        while True:
            premise = replace(self.grammar.sentence(rng, 0.2, coord=False, max_len=20), neg=False)
            hyp = premise
            drops = self.drops(hyp)
            if drops and rng.random() < 0.4:
                hyp = self.apply(rng, hyp, premise, rng.choice(drops))
            ops = self.label_ops(hyp, premise, label)
            if not ops:
                continue
            hyp = self.apply(rng, hyp, premise, rng.choice(ops))
            if hyp != premise:
                return premise, hyp
