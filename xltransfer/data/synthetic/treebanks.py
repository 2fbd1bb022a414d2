"""Realisation: a latent sentence in one language as syntactic words with heads, features and
entity tags: the suite's treebanks (CoNLL-U), NER (BIO) and the surface text of all the rest."""

from __future__ import annotations

from functools import cache

from xltransfer.data.synthetic.grammar import _BARE, _DEF, _ENT, _FUT, _NP, _PAST, _PRON, _Clause
from xltransfer.data.synthetic.inventory import _CASE_NAMES, _PERSON_FEATS, _THIRD_PL, _THIRD_SG, _Inventory
from xltransfer.data.synthetic.lexicon import _Lang

# --------------------------------------------------------------------------------------------
# Realisation: latent sentence -> syntactic words with heads


@cache
def _feats(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return "_"
    return "|".join(f"{k}={v}" for k, v in sorted(pairs, key=lambda kv: kv[0].lower()))


class _Tok:
    __slots__ = ("form", "lemma", "upos", "feats", "deprel", "head", "tag", "fused", "idx")

    def __init__(
        self, form: str, lemma: str, upos: str, feats: str, deprel: str, head: _Tok | None, tag: str = "O"
    ) -> None:
        self.form = form
        self.lemma = lemma
        self.upos = upos
        self.feats = feats
        self.deprel = deprel
        self.head = head
        self.tag = tag
        self.fused: str | None = None  # surface form of an MWT starting at this word
        self.idx = 0


class _Realizer:
    """Turns latent sentences into one language's words, honouring its typology."""

    def __init__(self, lang: _Lang, inv: _Inventory) -> None:
        t = lang.info.typology
        self.code = lang.info.code
        self.order = "SVO" if t["S_SVO"] else ("SOV" if t["S_SOV"] else "VSO")
        self.adj_before = bool(t["S_ADJ_BEFORE_NOUN"])
        self.prep = bool(t["S_PREPOSITIONS"])
        self.case = bool(t["S_CASE_SUFFIXES"])
        self.det = bool(t["S_DETERMINERS"])
        self.agr = bool(t["S_VERB_AGREEMENT"])
        self.plural = bool(t["S_PLURAL_SUFFIX"])
        self.neg_before = bool(t["S_NEG_BEFORE_VERB"])
        self.nouns = lang.words["n"]
        self.verbs = lang.words["v"]
        self.adjs = lang.words["a"]
        self.advs = lang.words["r"]
        self.nums = lang.words["num"]
        self.prons = lang.words["pron"]
        self.fn = lang.function
        self.sfx = lang.suffixes
        self.fused = lang.fused
        self.entities = inv.entities

    def sentence(self, cl: _Clause) -> list[_Tok]:
        root, toks = self._clause(cl)
        root.deprel = "root"
        if cl.conj is not None:
            croot, ctoks = self._clause(cl.conj)
            croot.deprel = "conj"
            croot.head = root
            cc = self.fn["cc"]
            toks.append(_Tok(",", ",", "PUNCT", "_", "punct", croot))
            toks.append(_Tok(cc, cc, "CCONJ", "_", "cc", croot))
            toks.extend(ctoks)
        toks.append(_Tok(".", ".", "PUNCT", "_", "punct", root))
        return toks

    def _person(self, np: _NP) -> int:
        if np.kind == _PRON:
            return np.ref
        return _THIRD_PL if (np.plural or np.conj is not None) else _THIRD_SG

    def _clause(self, cl: _Clause) -> tuple[_Tok, list[_Tok]]:
        person = self._person(cl.agent)
        number, pers = _PERSON_FEATS[person]
        agr_feats = (("Number", number), ("Person", pers)) if self.agr else ()
        agr = self.sfx[f"agr:{person}"] if self.agr else ""
        stem = self.verbs[cl.verb]
        aux = None
        if cl.tense == _FUT:
            verb = _Tok(stem, stem, "VERB", "VerbForm=Inf", "root", None)
            lemma = self.fn["aux"]
            feats = _feats((("Tense", "Fut"), ("VerbForm", "Fin"), *agr_feats))
            aux = _Tok(lemma + agr, lemma, "AUX", feats, "aux", verb)
        else:
            past = cl.tense == _PAST
            form = stem + (self.sfx["sfx:past"] if past else "") + agr
            feats = _feats((("Tense", "Past" if past else "Pres"), ("VerbForm", "Fin"), *agr_feats))
            verb = _Tok(form, stem, "VERB", feats, "root", None)
        group = [verb]
        if aux is not None:
            group = [verb, aux] if self.order == "SOV" else [aux, verb]
        if cl.neg:
            neg = _Tok(self.fn["neg"], self.fn["neg"], "PART", "Polarity=Neg", "advmod", verb)
            group = [neg, *group] if self.neg_before else [*group, neg]
        subj = self._np(cl.agent, None, "nsubj", verb)
        obj = self._np(cl.patient, "acc", "obj", verb) if cl.patient is not None else []
        obls: list[_Tok] = []
        for key, np in cl.obls:
            obls.extend(self._np(np, key, "obl", verb))
        adv = []
        if cl.adv is not None:
            form = self.advs[cl.adv]
            adv.append(_Tok(form, form, "ADV", "_", "advmod", verb))
        toks = self._np(cl.tmod, None, "obl:tmod", verb) if cl.tmod is not None else []
        if self.order == "SVO":
            toks += subj + group + obj + obls + adv
        elif self.order == "SOV":
            toks += subj + obls + obj + adv + group
        else:
            toks += group + subj + obj + obls + adv
        return verb, toks

    def _np(self, np: _NP, case: str | None, deprel: str, head: _Tok) -> list[_Tok]:
        """Words of one NP in surface order; ``case`` is None (nominative), 'acc', 'gen' or oblique."""
        suffix_case = self.case and case is not None
        case_pair: tuple[tuple[str, str], ...] = ()
        if self.case:
            case_pair = (("Case", _CASE_NAMES[case or "nom"]),)
        first_det: _Tok | None = None
        if np.kind == _ENT:
            etype, names = self.entities[np.ref]
            h = _Tok(names[0], names[0], "PROPN", "Number=Sing", deprel, head, "B-" + etype)
            toks = [h]
            for name in names[1:]:
                toks.append(_Tok(name, name, "PROPN", "Number=Sing", "flat:name", h, "I-" + etype))
            last = toks[-1]
            if suffix_case:
                # Turkish-style apostrophe keeps the shared name intact as a subword anchor
                last.form = last.form + "'" + self.sfx[f"sfx:{case}"]
            last.feats = _feats((*case_pair, ("Number", "Sing")))
        elif np.kind == _PRON:
            number, pers = _PERSON_FEATS[np.ref]
            lemma = self.prons[np.ref]
            form = lemma + (self.sfx[f"sfx:{case}"] if suffix_case else "")
            feats = _feats((*case_pair, ("Number", number), ("Person", pers), ("PronType", "Prs")))
            h = _Tok(form, lemma, "PRON", feats, deprel, head)
            toks = [h]
        else:
            lemma = self.nouns[np.ref]
            form = lemma
            pairs = case_pair
            if self.plural:
                pairs = (*pairs, ("Number", "Plur" if np.plural else "Sing"))
                if np.plural:
                    form += self.sfx["sfx:pl"]
            if suffix_case:
                form += self.sfx[f"sfx:{case}"]
            h = _Tok(form, lemma, "NOUN", _feats(pairs), deprel, head)
            left: list[_Tok] = []
            right: list[_Tok] = []
            if self.det and np.definite != _BARE:
                key, val = ("det_def", "Def") if np.definite == _DEF else ("det_indef", "Ind")
                first_det = _Tok(self.fn[key], self.fn[key], "DET", f"Definite={val}|PronType=Art", "det", h)
                left.append(first_det)
            if np.num is not None:
                num = self.nums[np.num]
                left.append(_Tok(num, num, "NUM", "NumType=Card", "nummod", h))
            if np.adjs:
                adjs = [_Tok(self.adjs[a], self.adjs[a], "ADJ", "Degree=Pos", "amod", h) for a in np.adjs]
                if self.adj_before:
                    left.extend(adjs)
                else:
                    right.extend(adjs)
            if np.poss is not None:
                poss = self._np(np.poss, "gen", "nmod:poss", h)
                if self.prep:
                    right.extend(poss)  # "the dog of the king"
                else:
                    left = poss + left  # "king-GEN the dog"
            toks = [*left, h, *right]
        if np.conj is not None:
            conj = self._np(np.conj, case, "conj", h)
            cc = self.fn["cc"]
            # UD attaches the conjunction to the conjunct it introduces
            toks.append(_Tok(cc, cc, "CCONJ", "_", "cc", next(t for t in conj if t.head is h)))
            toks.extend(conj)
        if case is not None and case != "acc" and not self.case:
            form = self.fn[f"adp:{case}"]
            adp = _Tok(form, form, "ADP", "_", "case", h)
            if self.prep:
                if toks[0] is first_det and np.definite == _DEF and case in self.fused:
                    adp.fused = self.fused[case]
                toks.insert(0, adp)
            else:
                toks.append(adp)
        return toks


def _surface_tokens(toks: list[_Tok]) -> list[tuple[str, str]]:
    """Orthographic tokens with their NER tags: an MWT is one token, as in running text."""
    out: list[tuple[str, str]] = []
    skip = False
    for tok in toks:
        if skip:
            skip = False
            continue
        if tok.fused is not None:
            out.append((tok.fused, "O"))
            skip = True
        else:
            out.append((tok.form, tok.tag))
    return out


def _surface(toks: list[_Tok]) -> str:
    parts: list[str] = []
    for form, _ in _surface_tokens(toks):
        if parts and form in (".", ","):
            parts[-1] += form
        else:
            parts.append(form)
    return " ".join(parts)


def _conllu_block(sent_id: str, toks: list[_Tok]) -> str:
    for i, tok in enumerate(toks, 1):
        tok.idx = i
    lines = [f"# sent_id = {sent_id}", f"# text = {_surface(toks)}"]
    n = len(toks)
    i = 0
    while i < n:
        tok = toks[i]
        if tok.fused is not None:
            nxt_punct = i + 2 < n and toks[i + 2].upos == "PUNCT"
            misc = "SpaceAfter=No" if nxt_punct else "_"
            lines.append(f"{i + 1}-{i + 2}\t{tok.fused}\t_\t_\t_\t_\t_\t_\t_\t{misc}")
            for word in (tok, toks[i + 1]):
                lines.append(_conllu_word(word, "_"))
            i += 2
            continue
        misc = "SpaceAfter=No" if i + 1 < n and toks[i + 1].upos == "PUNCT" else "_"
        lines.append(_conllu_word(tok, misc))
        i += 1
    return "\n".join(lines) + "\n"


def _conllu_word(tok: _Tok, misc: str) -> str:
    head = tok.head.idx if tok.head is not None else 0
    return f"{tok.idx}\t{tok.form}\t{tok.lemma}\t{tok.upos}\t_\t{tok.feats}\t{head}\t{tok.deprel}\t_\t{misc}"
