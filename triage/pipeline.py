"""The triage model: one encode per batch, four heads, the cue layer and similar cases.

``TriageModel`` is composed, not subclassed: an encoder, one :class:`Head` per target with the
fitted :class:`FeatureBuilder` it was trained on (usually one builder shared by every head; a
head taken from a base bundle keeps its own), the :class:`Lexicons`, a :class:`HybridIndex` and
the config. A few-shot head trained with its own fine-tuned encoder (``head_encoders``) reads
that encoder's embedding of the batch — the one exception to a single encode per batch.
``triage(["刹车突然失灵，差点撞上前车"])`` returns one answer dict per text, in order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from triage.retrieval import HybridIndex
from triage.segment import STOPWORDS
from triage.config import TrainConfig
from triage.doc import Doc, Reader
from triage.encoder.base import Encoder
from triage.errors import InputError
from triage.features import FeatureBuilder
from triage.heads import Head
from triage.lexicon import Lexicons
from triage.severity import decide, most_severe_sentence
from triage.suggest import suggest_response
from triage.text import validate_text
from triage.vocab import EMOTIONS, GRADES, HEAD_NAMES, MAX_INTENSITY

log = logging.getLogger(__name__)


def _carries_meaning(word: str) -> bool:
    """A word evidence may show: it has a letter or a Chinese character (not only punctuation
    or digits) and is not a function word."""
    return any(ch.isalpha() for ch in word) and word not in STOPWORDS

DEFAULT_MAX_CHARS = 5000


@dataclass
class TriageModel:
    encoder: Encoder
    features: dict[str, FeatureBuilder]       # head name -> the builder its head was fitted on
    heads: dict[str, Head]
    lexicons: Lexicons
    cases: HybridIndex
    config: TrainConfig
    version: str = "unversioned"
    max_chars: int = DEFAULT_MAX_CHARS
    meta: dict = field(default_factory=dict)
    # Few-shot heads fine-tuned with their own copy of the encoder: head name -> that encoder.
    # Their feature rows use its embeddings, so such a bundle encodes a batch once more per
    # fine-tuned head (the one documented exception to one encode per batch); retrieval and
    # the other heads use the shared embedding.
    head_encoders: dict[str, Encoder] = field(default_factory=dict)

    # ------------------------------------------------------------------ predict
    def triage(self, texts: Sequence[str], ids: Sequence[str | None] | None = None,
               contexts: Sequence[dict | None] | None = None) -> list[dict]:
        """Grade a batch. ``contexts`` (optional, one per text) may give ``customer_name``,
        ``order_id`` and ``product`` for the reply draft. Raises :class:`InputError` for an
        empty or over-long text."""
        if isinstance(texts, str):
            raise InputError("TRIAGE_EXPECTS_LIST", "triage() takes a list of texts, got a single str")
        texts = [validate_text(t, self.max_chars, f"texts[{i}]") for i, t in enumerate(texts)]
        ids = list(ids) if ids is not None else [None] * len(texts)
        if len(ids) != len(texts):
            raise InputError("TRIAGE_IDS", f"got {len(texts)} texts but {len(ids)} ids")
        if not texts:
            return []
        docs = self.read(texts)
        emb, X = self._featurise(docs)
        probs = {name: head.predict_proba(X[name]) for name, head in self.heads.items()}
        contexts = list(contexts) if contexts is not None else [None] * len(texts)
        answers = []
        for i, doc in enumerate(docs):
            hits = self.cases.search(doc, emb[i], self.config.similar_k)
            answer = self._answer(i, doc, ids[i], X, probs, hits)
            answer["suggested_response"] = suggest_response(hits, contexts[i])
            answers.append(answer)
        return answers

    def read(self, texts: Sequence[str]) -> list[Doc]:
        """Each complaint read once (normalised, segmented, cut into clauses, cues and emotion
        words found) with the bundle's own segmenter and lexicons."""
        if "_reader" not in self.meta:
            self.meta["_reader"] = Reader(self.features["complaint_type"].segmenter, self.lexicons)
        return self.meta["_reader"].read(texts)

    def _featurise(self, docs: list[Doc]):
        """The batch's embedding (the one encode), and each head's feature matrix (computed
        once per distinct builder and encoder: a head with a fine-tuned encoder reads its own
        embedding of the batch)."""
        texts = [d.text for d in docs]
        emb = self.encoder.encode(texts, "query")
        signals = self.lexicons.signals(docs)
        by_builder: dict[tuple[int, int], object] = {}
        X = {}
        for name in self.heads:
            fb, own = self.features[name], self.head_encoders.get(name)
            key = (id(fb), id(own))
            if key not in by_builder:
                by_builder[key] = fb.transform(docs, emb if own is None else own.encode(texts, "query"), signals)
            X[name] = by_builder[key]
        return emb, X

    def predict_proba(self, texts: Sequence[str]) -> dict[str, tuple[list[str], np.ndarray]]:
        """Per head, ``(classes, (n, n_classes) calibrated probabilities)`` — for evaluation,
        without the decision rule, evidence or similar cases."""
        texts = [validate_text(t, self.max_chars, f"texts[{i}]") for i, t in enumerate(texts)]
        if not texts:
            return {n: ([str(c) for c in h.classes_], np.zeros((0, len(h.classes_)))) for n, h in self.heads.items()}
        _, X = self._featurise(self.read(texts))
        return {n: ([str(c) for c in h.classes_], h.predict_proba(X[n])) for n, h in self.heads.items()}

    def _answer(self, i: int, doc: Doc, id_, X, probs, hits) -> dict:
        cfg = self.config
        reasons: list[str] = []

        th = self.heads["complaint_type"]
        p = probs["complaint_type"][i]
        order = np.argsort(-p)
        candidates = [{"label": str(th.classes_[j]), "score": round(float(p[j]), 4)} for j in order[:3]]
        if candidates[0]["score"] < cfg.review.complaint_type:
            reasons.append(f"complaint_type confidence {candidates[0]['score']:.2f} < {cfg.review.complaint_type}")

        sh = self.heads["severity"]
        sp = {str(c): float(v) for c, v in zip(sh.classes_, probs["severity"][i])}
        sev_scores = {g: round(sp.get(g, 0.0), 4) for g in GRADES}
        decision = decide(sev_scores, doc.cues, cfg.severity_rule)
        if max(sev_scores.values()) < cfg.review.severity:
            reasons.append(f"severity confidence {max(sev_scores.values()):.2f} < {cfg.review.severity}")
        if decision.disagreement:
            reasons.append(f"severity: model says {decision.model_label}, cues say {decision.cue_label}")

        eh = self.heads["emotion"]
        ep = {str(c): float(v) for c, v in zip(eh.classes_, probs["emotion"][i])}
        emo_scores = {e: round(ep.get(e, 0.0), 4) for e in EMOTIONS}
        emo_label = max(emo_scores, key=emo_scores.get)
        if emo_scores[emo_label] < cfg.review.emotion:
            reasons.append(f"emotion confidence {emo_scores[emo_label]:.2f} < {cfg.review.emotion}")

        ih = self.heads["intensity"]
        levels = np.asarray([float(c) for c in ih.classes_])
        expected = float(probs["intensity"][i] @ levels)
        intensity = {"score": round(expected / MAX_INTENSITY, 4), "level": int(round(expected))}

        evidence = {
            "severity": [m.as_evidence() for m in doc.cues],
            "emotion": [m.as_evidence() for m in doc.emotions],
            "complaint_type": self._type_evidence(doc, X["complaint_type"][i], th, int(order[0])),
        }
        return {
            "id": id_,
            "complaint_type": candidates[0],
            "type_candidates": candidates,
            "severity": {"label": decision.label, "scores": sev_scores, "model_label": decision.model_label,
                         "cue_label": decision.cue_label, "cue_strength": decision.cue_strength,
                         "disagreement": decision.disagreement,
                         "clause": most_severe_sentence(doc, cfg.severity_rule)},
            "emotion": {"label": emo_label, "scores": emo_scores},
            "intensity": intensity,
            "similar_cases": hits,
            "evidence": evidence,
            "needs_review": bool(reasons),
            "review_reasons": reasons,
            "model_version": self.version,
        }

    def _type_evidence(self, doc: Doc, row, head: Head, class_index: int, top: int = 5) -> list[dict]:
        """The words and phrases that pushed the predicted type most, as a supervisor reads them.

        Each lexical feature's contribution to the class (its value × the head's weight) is
        spread over the jieba words it covers: a word n-gram over its words, a character
        n-gram over the words its occurrences overlap, in proportion to the overlap. Words that
        carry no meaning on their own (punctuation, bare numbers, function words) get nothing;
        the best words with a positive total are kept, neighbours among them are merged into
        one phrase (没 + 送到 → 没送到), and a single character left on its own is dropped."""
        fb = self.features["complaint_type"]
        row = row.tocsr()
        keep = row.indices < fb.n_lexical
        cols, vals = row.indices[keep], row.data[keep]
        if not len(cols) or not doc.tokens:
            return []
        contrib = vals * head.coef_for(class_index)[cols]
        names = self._lexical_names()
        words = doc.words_for(fb.segmenter)
        tokens = doc.tokens if words is doc.words or words == doc.words else []
        if not tokens:
            return []
        starts = np.asarray([s for _, s, _ in tokens])
        ends = np.asarray([e for _, _, e in tokens])
        # character n-grams: each occurrence spreads its contribution evenly over the characters
        # it covers that lie in a word; added up per character as a difference array, then
        # summed per word (prefix sums), so the cost is one step per occurrence
        covered = np.zeros(len(doc.norm) + 1)
        for a, b in zip(starts.tolist(), ends.tolist()):
            covered[a:b] = 1.0
        in_words = np.concatenate([[0.0], np.cumsum(covered)])
        delta = np.zeros(len(doc.norm) + 1)
        # word n-grams: where each run of words occurs, found once per complaint
        runs: dict[tuple[str, ...], list[int]] = {}
        score = np.zeros(len(tokens))
        for col, c in zip(cols.tolist(), contrib.tolist()):
            name = names[col]
            if name.startswith("w:"):
                gram = tuple(name[2:].split(" "))
                if gram not in runs:
                    n = len(gram)
                    runs[gram] = [j for j in range(len(tokens) - n + 1) if tuple(words[j:j + n]) == gram]
                for j in runs[gram]:
                    score[j:j + len(gram)] += c / len(gram)
            else:
                gram = name[2:]
                at = doc.norm.find(gram)
                while at >= 0:
                    k = in_words[at + len(gram)] - in_words[at]
                    if k:
                        delta[at] += c / k
                        delta[at + len(gram)] -= c / k
                    at = doc.norm.find(gram, at + 1)
        per_char = np.concatenate([[0.0], np.cumsum(np.cumsum(delta)[:-1] * covered[:-1])])
        score += per_char[ends] - per_char[starts]
        meaningful = np.asarray([_carries_meaning(w) for w in words])
        score[~meaningful] = 0.0
        chosen = sorted(j for j in np.argsort(-score)[:top] if score[j] > 0)
        phrases: list[list[int]] = []
        for j in chosen:
            if phrases and phrases[-1][-1] == j - 1 and ends[j - 1] == starts[j]:
                phrases[-1].append(j)
            else:
                phrases.append([j])
        out = []
        for ph in phrases:
            s0, e0 = int(starts[ph[0]]), int(ends[ph[-1]])
            if e0 - s0 < 2:
                continue                  # one character alone (个, 车) says nothing to a reader
            out.append({"text": doc.text[s0:e0], "start": s0, "end": e0, "signal": "type_phrase",
                        "weight": round(float(score[ph].sum()), 3)})
        return sorted(out, key=lambda d: -d["weight"])

    def _lexical_names(self) -> list[str]:
        if "_names" not in self.meta:
            self.meta["_names"] = self.features["complaint_type"].lexical_names()
        return self.meta["_names"]
