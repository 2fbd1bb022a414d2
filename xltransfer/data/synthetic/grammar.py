"""The latent grammar: sentences as structures of concepts, before any language realises them
(which makes the suite's UD data translations of each other and its MT data parallel)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace

from xltransfer.data.synthetic.inventory import _OBL_KEYS, _SLOT_ENTITIES, _Inventory

# --------------------------------------------------------------------------------------------
# Latent sentences

_NOUN, _PRON, _ENT = 0, 1, 2
_BARE, _DEF, _INDEF = 0, 1, 2
_PRES, _PAST, _FUT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _NP:
    kind: int
    ref: int
    definite: int = _BARE
    adjs: tuple[int, ...] = ()
    num: int | None = None
    plural: bool = False
    poss: _NP | None = None
    conj: _NP | None = None


@dataclass(frozen=True, slots=True)
class _Clause:
    verb: int
    tense: int
    neg: bool
    agent: _NP
    patient: _NP | None
    obls: tuple[tuple[str, _NP], ...]
    adv: int | None
    tmod: _NP | None
    conj: _Clause | None = None


class _Grammar:
    """Samples latent sentences; every language later realises exactly the same ones."""

    def __init__(self, inv: _Inventory) -> None:
        self.inv = inv
        self.entity_sizes = [len(words) for _, words in inv.entities]

    def np_bounds(self, np: _NP, marked: bool) -> tuple[int, int]:
        """(fewest, most) words any language can spend on this NP, for the sentence-length window."""
        if np.kind == _NOUN:
            lo = 1 + len(np.adjs) + (np.num is not None)
            hi = lo + (np.definite != _BARE) + marked
        else:
            lo = self.entity_sizes[np.ref] if np.kind == _ENT else 1
            hi = lo + marked
        if np.poss is not None:
            plo, phi = self.np_bounds(np.poss, True)
            lo, hi = lo + plo, hi + phi
        if np.conj is not None:
            clo, chi = self.np_bounds(np.conj, marked)
            lo, hi = lo + 1 + clo, hi + 1 + chi
        return lo, hi

    def bounds(self, cl: _Clause) -> tuple[int, int]:
        lo = hi = 2 + (cl.tense == _FUT) + cl.neg + (cl.adv is not None)  # verb + final punctuation
        parts = [(cl.agent, False)]
        if cl.patient is not None:
            parts.append((cl.patient, False))
        parts.extend((np, True) for _, np in cl.obls)
        if cl.tmod is not None:
            parts.append((cl.tmod, False))
        for np, marked in parts:
            plo, phi = self.np_bounds(np, marked)
            lo, hi = lo + plo, hi + phi
        if cl.conj is not None:
            clo, chi = self.bounds(cl.conj)
            lo, hi = lo + clo + 1, hi + chi + 1  # comma + conjunction, minus the second full stop
        return lo, hi

    def sentence(self, rng: random.Random, ent_rate: float, coord: bool = True, max_len: int = 25) -> _Clause:
        while True:
            cl = self.clause(rng, ent_rate)
            if coord and rng.random() < 0.12:
                cl = replace(cl, conj=self.clause(rng, ent_rate))
            lo, hi = self.bounds(cl)
            if lo >= 4 and hi <= max_len:
                return cl

    def clause(self, rng: random.Random, ent_rate: float) -> _Clause:
        inv = self.inv
        transitive = rng.random() < 0.7
        verb = (inv.transitive if transitive else inv.intransitive).pick(rng)
        r = rng.random()
        tense = _PRES if r < 0.5 else (_PAST if r < 0.85 else _FUT)
        neg = rng.random() < 0.12
        agent = self.participant(rng, "agent", ent_rate)
        patient = self.participant(rng, "patient", ent_rate) if transitive else None
        n_obl = rng.choices((0, 1, 2), cum_weights=(0.45, 0.85, 1.0))[0]
        keys = rng.sample(_OBL_KEYS, n_obl)
        obls = tuple((key, self.participant(rng, key, ent_rate)) for key in keys)
        adv = inv.adverbs.pick(rng) if rng.random() < 0.25 else None
        tmod = self.time_np(rng) if rng.random() < 0.08 else None
        if not transitive and not obls and adv is None:
            adv = inv.adverbs.pick(rng)  # "dog sleeps ." is too short for a language without articles
        return _Clause(verb, tense, neg, agent, patient, obls, adv, tmod)

    def time_np(self, rng: random.Random) -> _NP:
        return _NP(_NOUN, self.inv.noun_pools["time"].pick(rng))

    def adjectives(self, rng: random.Random, n: int, avoid: Iterable[int] = ()) -> tuple[int, ...]:
        banned = set(avoid)
        out: list[int] = []
        while len(out) < n:
            adj = self.inv.adjectives.pick(rng)
            if adj in banned or adj in out or (adj ^ 1) in out or (adj ^ 1) in banned:
                continue
            out.append(adj)
        return tuple(out)

    def noun_np(self, rng: random.Random, slot: str, mods: bool = True) -> _NP:
        inv = self.inv
        ref = inv.noun_pools[slot].pick(rng)
        r = rng.random()
        definite = _DEF if r < 0.5 else (_INDEF if r < 0.8 else _BARE)
        num = None
        plural = False
        if mods and rng.random() < 0.09:
            num = inv.numerals.pick(rng)
            plural = True
        elif rng.random() < 0.15:
            plural = True
        if plural and definite == _INDEF:
            definite = _BARE
        n_adj = rng.choices((0, 1, 2), cum_weights=(0.55, 0.88, 1.0))[0] if mods else 0
        return _NP(_NOUN, ref, definite, self.adjectives(rng, n_adj), num, plural)

    def participant(self, rng: random.Random, slot: str, ent_rate: float) -> _NP:
        inv = self.inv
        etypes = _SLOT_ENTITIES.get(slot)
        if etypes and rng.random() < ent_rate:
            np = _NP(_ENT, inv.entity_pools[rng.choice(etypes)].pick(rng))
        elif slot in ("agent", "patient") and rng.random() < (0.12 if slot == "agent" else 0.04):
            return _NP(_PRON, inv.pronouns.pick(rng))
        else:
            np = self.noun_np(rng, slot, mods=slot != "poss")
            if slot != "poss" and rng.random() < 0.1:
                np = replace(np, poss=self.participant(rng, "poss", ent_rate))
        if slot == "agent" and rng.random() < 0.07:
            other = self.participant(rng, "poss" if rng.random() < 0.5 else "agent", ent_rate)
            if other.kind != _PRON and other.conj is None:
                np = replace(np, conj=replace(other, poss=None))
        return np
