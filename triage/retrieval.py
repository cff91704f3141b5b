"""Hybrid similar-case search over the knowledge base: dense e5 + BM25 over jieba tokens.

Scoring, per query:

1. **Candidates**: among the cases that pass the filters, the ``candidates`` best by dense
   cosine (complaint ``query:`` vector against case ``passage:`` vectors) and the
   ``candidates`` best by BM25 (Lucene-style BM25 over jieba tokens of the normalised text, kept
   as a sparse term × case matrix). Below ``exact_below`` cases the dense scan is exact; from
   there on an HNSW graph (:class:`triage.ann.DenseANN`, kept in step with every upsert and
   delete) proposes the ``ann_candidates`` nearest cases and they are rescored exactly, so the
   search no longer grows with the knowledge base. A filter that leaves few cases (at most
   ``exact_below``) is scanned exactly over those cases; a broader one is passed to the graph,
   which only returns cases that pass it.
2. **Fusion** (``fusion``): ``linear`` (default) scores the union of candidates by
   ``alpha · dense + (1 − alpha) · bm25``, each min-max scaled over the candidates; ``rrf``
   uses reciprocal ranks, ``w_dense / (rrf_k + rank_dense) + w_bm25 / (rrf_k + rank_bm25)``,
   with tied scores sharing a rank. On a tuning split of 车质网 (seed 5; not the split the
   benchmark reports) P@5 was: dense 0.274, BM25 0.246, rrf 0.287, linear α=0.8 0.294.
   BM25 terms leave out punctuation and function words (``STOPWORDS``). On the query side a
   term counts as often as the complaint repeats it (``bm25_query_tf``) and a word of the domain
   dictionary counts ``bm25_domain_weight`` times: complaints name the part or the practice at
   fault with such words (刹车失灵, 退一赔三), and they say more about the topic than ordinary
   words of the same rarity. On the tuning split below (raw P@5, no duplicate collapsing) BM25
   alone went from 0.238 to 0.270 and the hybrid from 0.299 to 0.300.
   **Neighbourhood smoothing** (linear fusion, ``smooth_neighbours`` > 0): each candidate's
   fused score gains ``smooth_weight`` × the mean fused score of its ``smooth_neighbours``
   nearest candidates (case-to-case cosine of their vectors), and the sum is divided by
   ``1 + smooth_weight`` so scores stay between 0 and 1. A case whose close neighbours also
   match the query — in words or in meaning — is more likely on topic than an isolated case that
   matches one channel by accident; this is where the two channels help each other most, since
   a case's neighbours carry lexical evidence its own text may lack. Near duplicates of a
   candidate (cosine ≥ ``duplicate_cosine``) do not count as its neighbours: a copy is not
   corroboration. It needs no stored graph: the candidates (≤ 2 × ``candidates`` rows) are
   compared with each other at query time (well under a millisecond).
   Tuned on 500 车质网 complaints that are not among the benchmark's queries, searched against
   the benchmark's other 1,680 cases (``python -m benchmarks.retrieval --tuning-split``), in
   process through ``search`` (duplicates collapsed), P@5: dense
   0.259, BM25 0.230, linear α=0.8 without smoothing 0.272, α=0.7 with 10 neighbours at weight
   2 0.291. Neighbour counts 5–20, weights 1–3 and α 0.6–0.8 all gave 0.278–0.292. (Those figures
   predate the query-term weights; with them, through the API: BM25 0.263, hybrid 0.293.)
   **Type agreement** (linear fusion, ``type_top`` > 0): the knowledge base's own labels are a
   third signal. Among the ``type_top`` best candidates after smoothing, each complaint type
   holds a share of their summed score; every candidate gains ``type_weight`` × its own type's
   share, and the sum is divided by ``1 + type_weight``. When most of the best matches are, say,
   虚假宣传 cases, a 产品质量 case that matches about as well is probably about something else.
   A case without a type gets the share a typed case gets on average (the sum of the squared
   shares); with a ``complaint_type`` filter, or no typed cases, every candidate gains the same
   and the order is unchanged. It uses the cases' types, never the query's. On the tuning split,
   in process, P@5 (duplicates collapsed): hybrid 0.290 without it; with 10 candidates at weight
   0.1 / 0.2 / 0.3, 0.306 / 0.312 / 0.312; with 5 or 20 at 0.2, 0.309 / 0.311. The signal needs
   the fused, smoothed score to work on: dense with type agreement alone gave 0.271, BM25 with
   it 0.271.
3. **Outcome boost**: the fused score is multiplied by ``1 + outcome_boost[outcome]``, so among
   cases that are about equally similar, a resolution that satisfied the customer ranks above
   one that led to a repeat complaint. The default ±0.5 % reorders near-ties only (with
   ``rrf``, neighbouring ranks differ by about 1.6 %) and never lets a weak match with a good
   outcome overtake a clearly better match; raise it to favour outcomes more.
4. **Relevance floor**: a hit whose dense cosine is below ``min_similarity`` is not returned
   (in every mode), so "nothing similar" is an empty list, not an unrelated case.
5. **Near duplicates** are collapsed: a hit whose text is the same after normalisation, or
   whose vector has cosine ≥ ``duplicate_cosine`` with a better hit, is folded into it
   (its id is listed under ``duplicates``).

Filters: ``complaint_type``, ``severity``, ``industry`` (a value or a list), ``metadata``
(key → value or list of values, exact match), ``date_from`` / ``date_to`` (ISO dates,
inclusive). The index is in memory and updated in place; :mod:`triage.store` makes it durable.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from triage.doc import Doc
from triage.ann import DenseANN
from triage.errors import InputError
from triage.segment import STOPWORDS, Segmenter
from triage.text import normalise

Mode = Literal["hybrid", "dense", "bm25"]
CASE_FIELDS = ("case_id", "text", "complaint_type", "severity", "finding", "resolution",
               "response", "outcome", "industry", "metadata", "date", "approved")


class RetrievalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidates: int = Field(100, ge=1, le=10_000)
    fusion: Literal["rrf", "linear"] = "linear"
    rrf_k: float = Field(60.0, gt=0)
    linear_alpha: float = Field(0.7, ge=0, le=1)   # linear: alpha·dense + (1−alpha)·bm25, each scaled to [0, 1]
    # Linear fusion only: add smooth_weight × the mean fused score of each candidate's
    # smooth_neighbours nearest candidates (0 neighbours: off). Chosen with linear_alpha on a
    # tuning split of 车质网 whose queries are not the benchmark's (see benchmarks/retrieval.py).
    smooth_neighbours: int = Field(10, ge=0, le=100)
    smooth_weight: float = Field(2.0, ge=0)
    # Linear fusion only: add type_weight × the share of the fused score of the best type_top
    # candidates that falls on candidates of the case's own complaint type (0: off).
    type_top: int = Field(10, ge=0, le=1000)
    type_weight: float = Field(0.2, ge=0)
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    outcome_boost: dict[str, float] = Field(default_factory=lambda: {
        "satisfied": 0.005, "not_satisfied": 0.0, "complained_again": -0.005})
    min_similarity: float = Field(0.80, ge=-1, le=1)
    duplicate_cosine: float = Field(0.97, gt=0, le=1)
    bm25_bigrams: bool = False                    # add character bigrams of Chinese runs to BM25 terms
    # Query-side term weights: a term the complaint repeats n times weighs n ** bm25_query_tf
    # (0: each distinct term once), and a word of the domain dictionary (corpora/dict) weighs
    # bm25_domain_weight times as much as an ordinary word.
    bm25_query_tf: float = Field(1.0, ge=0, le=1)
    bm25_domain_weight: float = Field(2.0, ge=0)
    bm25_k1: float = Field(1.5, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    exact_below: int = Field(20_000, ge=0)        # below this many cases the dense scan is exact
    # From exact_below cases on: an HNSW graph proposes ann_candidates rows (its search beam is
    # at least that wide), rescored exactly; recall@100 of the exact top 100 rises with it.
    ann_candidates: int = Field(800, ge=10)
    ann_connectivity: int = Field(32, ge=4, le=128)      # graph edges per node (HNSW's M)
    ann_expansion_add: int = Field(80, ge=16)            # beam width while inserting
    ann_expansion_search: int = Field(128, ge=16)        # beam width while searching


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complaint_type: str | list[str] | None = None
    severity: str | list[str] | None = None
    industry: str | list[str] | None = None
    metadata: dict[str, str | list[str]] | None = None
    date_from: date | None = None
    date_to: date | None = None


_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


def lexical_terms(words: list[str], text: str, bigrams: bool) -> list[str]:
    """BM25 terms: jieba words without punctuation and function words, plus (optionally)
    character bigrams of the Chinese runs of the normalised text."""
    terms = [w for w in words if w not in STOPWORDS and any(ch.isalnum() for ch in w)]
    if bigrams:
        for run in _CJK_RUN.findall(normalise(text)):
            terms += [run[i:i + 2] for i in range(len(run) - 1)]
    return terms


def _as_set(v: str | list[str] | None) -> set[str] | None:
    return None if v is None else ({v} if isinstance(v, str) else set(v))


def _ordinal(value) -> int:
    try:
        return date.fromisoformat(str(value)[:10]).toordinal()
    except (TypeError, ValueError):
        return -1


@dataclass
class HybridIndex:
    segmenter: Segmenter
    dim: int
    params: RetrievalParams = field(default_factory=RetrievalParams)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._cases: list[dict | None] = []          # row -> case (None when deleted)
        self._rows: dict[str, int] = {}               # case_id -> row
        self._emb = np.zeros((0, self.dim), dtype=np.float32)
        self._tokens: list[list[str]] = []
        self._norm: list[str] = []
        self._dates = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._fields: dict[str, np.ndarray] = {}      # complaint_type/severity/industry per row
        self._lexical = None             # (vocabulary, term × row BM25 weights), built lazily
        self._ann: DenseANN | None = None  # HNSW over the live rows, from exact_below cases on

    # ------------------------------------------------------------------ updates
    def __len__(self) -> int:
        return len(self._rows)

    def get(self, case_id: str) -> dict | None:
        with self._lock:
            row = self._rows.get(case_id)
            return None if row is None else dict(self._cases[row])

    def upsert(self, cases: Sequence[dict], embeddings: NDArray[np.float32]) -> tuple[int, int]:
        """Add or replace cases (by ``case_id``); returns ``(created, updated)``."""
        if len(cases) != embeddings.shape[0]:
            raise InputError("CASES_SHAPE", f"{len(cases)} cases but {embeddings.shape[0]} embeddings")
        tokens = [lexical_terms(self.segmenter.cut(c["text"]), c["text"], self.params.bm25_bigrams) for c in cases]
        created = updated = 0
        with self._lock:
            new_rows = []
            for c, emb, tok in zip(cases, embeddings, tokens):
                case = {k: c[k] for k in CASE_FIELDS if c.get(k) is not None}
                row = self._rows.get(case["case_id"])
                if row is None:
                    row = len(self._cases)
                    self._cases.append(case)
                    self._tokens.append(tok)
                    self._norm.append("".join(normalise(case["text"]).split()))
                    self._rows[case["case_id"]] = row
                    new_rows.append(emb)
                    created += 1
                else:
                    self._cases[row] = case
                    self._tokens[row] = tok
                    self._norm[row] = "".join(normalise(case["text"]).split())
                    self._emb[row] = emb
                    updated += 1
            if new_rows:
                self._emb = np.concatenate([self._emb, np.asarray(new_rows, dtype=np.float32)])
            self._refresh_arrays()
            self._lexical = None        # rebuilt on the next search
            self._sync_ann([self._rows[c["case_id"]] for c in cases])
        return created, updated

    def _sync_ann(self, touched: list[int]) -> None:
        """Keep the HNSW graph in step after an upsert: built over every live row once the index
        reaches ``exact_below`` cases, then each added or changed row is (re)inserted."""
        p = self.params
        if self._ann is not None and self._ann.worn():
            self._ann = None                            # mostly retired nodes: rebuild from the live rows
        if self._ann is None:
            if len(self._cases) < p.exact_below:
                return
            self._ann = DenseANN(self.dim, p.ann_connectivity, p.ann_expansion_add, p.ann_expansion_search)
            touched = np.flatnonzero(self._alive).tolist()
        rows = np.unique(np.asarray(touched, dtype=np.int64))
        if len(rows):
            self._ann.add(rows, self._emb[rows])

    def remove(self, case_id: str) -> bool:
        with self._lock:
            row = self._rows.pop(case_id, None)
            if row is None:
                return False
            self._cases[row] = None
            self._tokens[row] = []
            self._emb[row] = 0.0
            self._alive[row] = False
            self._lexical = None
            if self._ann is not None:
                self._ann.remove(np.array([row]))
                if self._ann.worn():
                    self._ann = None
                    self._sync_ann([])
            return True

    def _refresh_arrays(self) -> None:
        self._dates = np.array([_ordinal(c.get("date")) if c else -1 for c in self._cases], dtype=np.int64)
        self._alive = np.array([c is not None for c in self._cases], dtype=bool)
        self._fields = {key: np.array([(c or {}).get(key) or "" for c in self._cases], dtype=object)
                        for key in ("complaint_type", "severity", "industry")}

    def _lexical_index(self):
        """Vocabulary and a CSR matrix of BM25 weights, one row per term, one column per row."""
        if self._lexical is None:
            import scipy.sparse as sp

            p = self.params
            vocab: dict[str, int] = {}
            rows, cols, tfs = [], [], []
            lengths = np.zeros(len(self._cases), dtype=np.float64)
            for r, toks in enumerate(self._tokens):
                if self._cases[r] is None:
                    continue
                lengths[r] = len(toks)
                counts: dict[int, int] = {}
                for t in toks:
                    term = vocab.setdefault(t, len(vocab))
                    counts[term] = counts.get(term, 0) + 1
                rows += counts.keys()
                cols += [r] * len(counts)
                tfs += counts.values()
            n_docs = max(int(self._alive.sum()), 1)
            avgdl = max(lengths[self._alive].mean() if self._alive.any() else 1.0, 1e-9)
            rows_a, cols_a, tf = np.asarray(rows), np.asarray(cols), np.asarray(tfs, dtype=np.float64)
            df = np.bincount(rows_a, minlength=len(vocab)) if len(rows_a) else np.zeros(len(vocab))
            idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            norm = p.bm25_k1 * (1.0 - p.bm25_b + p.bm25_b * lengths[cols_a] / avgdl) if len(cols_a) else tf
            weights = idf[rows_a] * tf * (p.bm25_k1 + 1.0) / (tf + norm) if len(rows_a) else tf
            matrix = sp.csr_matrix((weights.astype(np.float32), (rows_a, cols_a)),
                                   shape=(len(vocab), len(self._cases)))
            self._lexical = (vocab, matrix)
        return self._lexical

    def _bm25_scores(self, tokens: list[str]) -> NDArray[np.float32]:
        """Each case's BM25 score for the query terms ``tokens``; a term weighs
        ``count ** bm25_query_tf``, times ``bm25_domain_weight`` when it is a domain word."""
        vocab, matrix = self._lexical_index()
        counts = Counter(t for t in tokens if t in vocab)
        if not counts:
            return np.zeros(len(self._cases), dtype=np.float32)
        p = self.params
        domain = self.segmenter.words
        terms = sorted(counts, key=vocab.__getitem__)
        weights = np.array([counts[t] ** p.bm25_query_tf * (p.bm25_domain_weight if t in domain else 1.0)
                            for t in terms], dtype=np.float32)
        return np.asarray(matrix[[vocab[t] for t in terms]].T @ weights).ravel().astype(np.float32)

    def _linear_fusion(self, rows: list[int], vector: NDArray[np.float32], bm25: NDArray) -> dict[int, float]:
        """``alpha · dense + (1 − alpha) · bm25`` over the candidates, each min-max scaled."""
        idx = np.asarray(rows)
        vectors = self._emb[idx]                 # the candidates' vectors, for both scores below
        d = vectors @ vector
        b = bm25[idx].astype(np.float64)

        def scale(x: NDArray) -> NDArray:
            span = x.max() - x.min()
            return (x - x.min()) / span if span > 0 else np.zeros_like(x)
        p = self.params
        a = p.linear_alpha
        combined = a * scale(d.astype(np.float64)) + (1 - a) * scale(b)
        m = min(p.smooth_neighbours, len(idx) - 1)
        if m > 0 and p.smooth_weight > 0:
            sims = vectors @ vectors.T
            # a case is not its own neighbour, nor is its near duplicate (no independent evidence)
            sims[sims >= p.duplicate_cosine] = -np.inf
            np.fill_diagonal(sims, -np.inf)
            near = np.argpartition(-sims, m - 1, axis=1)[:, :m]
            counted = np.isfinite(np.take_along_axis(sims, near, axis=1))    # fewer than m eligible: the rest
            mean = (combined[near] * counted).sum(axis=1) / np.maximum(counted.sum(axis=1), 1)
            # divided by (1 + weight), so a fused score stays between 0 and 1
            combined = (combined + p.smooth_weight * mean) / (1.0 + p.smooth_weight)
        if p.type_top > 0 and p.type_weight > 0:
            combined = (combined + p.type_weight * self._type_agreement(idx, combined)) / (1.0 + p.type_weight)
        return dict(zip(rows, (combined + 1e-9).tolist()))

    def _type_agreement(self, idx: NDArray[np.int64], scores: NDArray) -> NDArray:
        """For each candidate (rows ``idx``, fused ``scores``): the share of the summed score of
        the typed candidates among the best ``type_top`` that candidates of its complaint type
        hold. A case without a type gets the share a typed case would get on average (the sum of
        the squared shares), so it is neither favoured nor penalised; with no typed case among
        the best, 0."""
        types = self._fields["complaint_type"][idx]
        top = np.argsort(-scores, kind="stable")[:self.params.type_top]
        top = top[types[top] != ""]
        total = float(scores[top].sum())
        if not len(top) or total <= 0:
            return np.zeros(len(idx))
        share: dict[str, float] = {}
        for t, s in zip(types[top].tolist(), scores[top].tolist()):
            share[t] = share.get(t, 0.0) + s / total
        expected = sum(v * v for v in share.values())
        return np.array([share.get(t, 0.0) if t else expected for t in types.tolist()])

    def _dense_candidates(self, vector: NDArray[np.float32],
                          mask: NDArray[np.bool_] | None) -> tuple[NDArray[np.int64], NDArray]:
        """Rows of the best ``candidates`` dense matches among ``mask`` (None: every row), best
        first, with their scores."""
        p = self.params

        if self._ann is None:
            scores = self._emb @ vector
            scores = scores if mask is None else np.where(mask, scores, -np.inf)
            top = _top(scores, p.candidates, all_finite=mask is None)
            return top, scores[top]
        want = max(p.ann_candidates, p.candidates)
        if mask is not None and int(mask.sum()) <= max(p.exact_below, want):
            return self._exact_among(np.flatnonzero(mask), vector)     # a narrow filter: scan its rows
        return self._exact_among(self._ann.search(vector, want, mask), vector)

    def _exact_among(self, rows: NDArray[np.int64], vector: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray]:
        """The best ``candidates`` of ``rows`` by exact dense score, best first, with the scores."""
        scores = self._emb[rows] @ vector
        top = _top(scores, self.params.candidates, all_finite=True)
        return rows[top], scores[top]

    # ------------------------------------------------------------------ search
    def _mask(self, filters: Filters | None) -> NDArray[np.bool_]:
        mask = self._alive.copy()
        if filters is None:
            return mask
        for key in ("complaint_type", "severity", "industry"):
            allowed = _as_set(getattr(filters, key))
            if allowed is not None:
                mask &= np.isin(self._fields[key], list(allowed))
        for key, value in (filters.metadata or {}).items():
            allowed = _as_set(value)
            mask &= np.array([c is not None and str((c.get("metadata") or {}).get(key)) in allowed
                              for c in self._cases], dtype=bool)
        if filters.date_from is not None:
            mask &= self._dates >= filters.date_from.toordinal()
        if filters.date_to is not None:
            mask &= (self._dates <= filters.date_to.toordinal()) & (self._dates >= 0)
        return mask

    def search(self, query: str | Doc, vector: NDArray[np.float32], k: int = 5, filters: Filters | None = None,
               mode: Mode = "hybrid") -> list[dict]:
        """Up to ``k`` hits for one complaint (a text, or a :class:`~triage.doc.Doc` whose jieba
        words are reused), best first (see the module docstring)."""
        if k < 1:
            return []
        p = self.params
        if isinstance(query, Doc):
            q_tokens = lexical_terms(query.words_for(self.segmenter), query.norm, p.bm25_bigrams)
        else:
            q_tokens = lexical_terms(self.segmenter.cut(query), query, p.bm25_bigrams)
        with self._lock:
            if not self._rows:
                return []
            mask = self._mask(filters)
            if not mask.any():
                return []
            dense_mask = None if mask.all() else mask        # fast path: nothing to exclude
            vector = vector.astype(np.float32)
            fused: dict[int, float] = {}
            bm25_scores = None
            if mode in ("hybrid", "dense"):
                rows_d, scores_d = self._dense_candidates(vector, dense_mask)
                for r, rank in zip(rows_d.tolist(), _ranks(scores_d).tolist()):
                    fused[r] = fused.get(r, 0.0) + p.dense_weight / (p.rrf_k + rank)
            if mode in ("hybrid", "bm25"):
                bm25_scores = self._bm25_scores(q_tokens)
                hit = np.flatnonzero(bm25_scores > 0 if dense_mask is None else mask & (bm25_scores > 0))
                top_b = hit[_top(bm25_scores[hit], p.candidates, all_finite=True)]
                for r, rank in zip(top_b.tolist(), _ranks(bm25_scores[top_b]).tolist()):
                    fused[r] = fused.get(r, 0.0) + p.bm25_weight / (p.rrf_k + rank)
            if not fused:
                return []
            if p.fusion == "linear" and mode == "hybrid":
                fused = self._linear_fusion(list(fused), vector, bm25_scores)
            rows = np.fromiter(fused, dtype=np.int64, count=len(fused))
            dense = dict(zip(rows.tolist(), (self._emb[rows] @ vector).tolist()))
            rows = rows[np.array([dense[r] >= p.min_similarity for r in rows.tolist()], dtype=bool)]
            boost = np.array([1.0 + p.outcome_boost.get(self._cases[r].get("outcome", ""), 0.0) for r in rows])
            final = np.array([fused[r] for r in rows.tolist()]) * boost
            order = rows[np.argsort(-final, kind="stable")]
            final_by_row = dict(zip(rows.tolist(), final.tolist()))
            hits: list[dict] = []
            kept: list[int] = []
            q_set = set(q_tokens)
            for r in order:
                dup_of = next((h for h, kr in zip(hits, kept) if self._norm[kr] == self._norm[r]
                               or float(self._emb[kr] @ self._emb[r]) >= p.duplicate_cosine), None)
                if dup_of is not None:
                    dup_of.setdefault("duplicates", []).append(self._cases[r]["case_id"])
                    continue
                matched = sorted(q_set & set(self._tokens[r]), key=len, reverse=True)
                hits.append({**self._cases[r], "score": round(final_by_row[int(r)], 6),
                             "dense_score": round(dense[int(r)], 4),
                             "bm25_score": round(float(bm25_scores[r]), 4) if bm25_scores is not None else None,
                             "matched": {"terms": [t for t in matched if len(t.strip()) > 1][:10]}})
                kept.append(int(r))
                if len(hits) >= k:
                    break
            return hits

    def snapshot(self) -> tuple[list[dict], NDArray[np.float32]]:
        """The live cases and their vectors (for saving)."""
        with self._lock:
            rows = [r for r, c in enumerate(self._cases) if c is not None]
            return [dict(self._cases[r]) for r in rows], self._emb[rows].copy()


def _ranks(sorted_scores: NDArray) -> NDArray[np.int64]:
    """Competition ranks (1, 2, 2, 4…) of scores sorted best first: equal scores (to 1e-6) share
    a rank, so a tie stays a tie after fusion and the outcome boost can order it."""
    keys = -np.round(sorted_scores.astype(np.float64), 6)
    return np.searchsorted(keys, keys, side="left") + 1


def _top(scores: NDArray, n: int, all_finite: bool = False) -> NDArray[np.int64]:
    """Indices of the ``n`` largest finite scores, best first (``all_finite`` skips the check)."""
    count = len(scores) if all_finite else int(np.isfinite(scores).sum())
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    n = min(n, count)
    idx = np.argpartition(-scores, n - 1)[:n]          # -inf sorts last, so masked rows lose
    return idx[np.argsort(-scores[idx], kind="stable")]
