"""The lexical baseline the issues compare against: TF-IDF over jieba word 1–2-grams with
logistic regression, its C chosen by stratified cross-validation on the training data only
(macro-F1 over ``C_GRID``), so the baseline is as strong as a careful user would make it."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from triage.features import _WordAnalyzer
from triage.segment import Segmenter

C_GRID = (1.0, 4.0, 16.0, 64.0)


class TfidfBaseline:
    def __init__(self, seed: int = 13, folds: int = 3, n_jobs: int = 2) -> None:
        self.seed, self.folds, self.n_jobs = seed, folds, n_jobs

    def _fit_once(self, texts: Sequence[str], y: Sequence[str], C: float):
        vec = TfidfVectorizer(analyzer=_WordAnalyzer(Segmenter(), 2), sublinear_tf=True, dtype=np.float32)
        X = vec.fit_transform(texts)
        return vec, LogisticRegression(C=C, max_iter=3000, random_state=self.seed).fit(X, y)

    def _score(self, texts, y, C, tr, te) -> float:
        vec, m = self._fit_once([texts[i] for i in tr], y[tr], C)
        return float(f1_score(y[te], m.predict(vec.transform([texts[i] for i in te])), average="macro"))

    def fit(self, texts: Sequence[str], y: Sequence[str]) -> "TfidfBaseline":
        texts, y = list(texts), np.asarray(y)
        folds = int(min(self.folds, np.unique(y, return_counts=True)[1].min()))
        scores = {}
        if folds >= 2:
            from joblib import Parallel, delayed

            skf = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
            jobs = [(C, tr, te) for C in C_GRID for tr, te in skf.split(texts, y)]
            f1s = Parallel(n_jobs=self.n_jobs)(delayed(self._score)(texts, y, C, tr, te) for C, tr, te in jobs)
            for (C, _, _), f in zip(jobs, f1s):
                scores.setdefault(C, []).append(f)
            scores = {C: float(np.mean(v)) for C, v in scores.items()}
        self.C_ = max(scores, key=scores.get) if scores else 1.0
        self.vec_, self.model_ = self._fit_once(texts, y, self.C_)
        return self

    def predict(self, texts: Sequence[str]) -> list[str]:
        return list(self.model_.predict(self.vec_.transform(list(texts))))
