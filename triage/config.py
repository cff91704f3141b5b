"""Typed configuration. Hyper-parameters live in ``training/configs/*.json`` and are saved
into each bundle's manifest; decision thresholds can be overridden at serving time."""
from __future__ import annotations

import json
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from triage.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureParams(_Strict):
    word_ngram_max: int = Field(2, ge=1, le=3)
    char_ngram_min: int = Field(1, ge=1, le=3)
    char_ngram_max: int = Field(3, ge=1, le=5)
    min_df: int = Field(2, ge=1)
    max_word_features: int = Field(200_000, ge=100)
    max_char_features: int = Field(300_000, ge=100)
    # Block weights (a linear head's regularisation sees the blocks through them): characters
    # carry most of the lexical signal, jieba words add a little, and the dense embedding is
    # up-weighted so the handful of its dimensions can compete with ~10^5 sparse n-grams.
    word_weight: float = Field(0.5, ge=0)
    char_weight: float = Field(1.0, ge=0)
    embedding_weight: float = Field(2.0, ge=0)
    signal_weight: float = Field(0.5, ge=0)


class HeadParams(_Strict):
    # "svm": a linear SVM (one-vs-rest), "logreg": logistic regression; either way the scores
    # become probabilities by temperature scaling fitted on out-of-fold predictions.
    kind: Literal["svm", "logreg"] = "svm"
    C: float = Field(0.3, gt=0)
    class_weight: str | None = "balanced"
    max_iter: int = Field(2000, ge=10)
    calibrate: bool = True
    # Few-shot: when the median class has at most this many examples (0: never), the head also
    # scores each text against class prototypes (mean embedding of the class's examples, mixed
    # with the embedding of the class name) and blends that with the linear scores; the mix is
    # chosen by cross-validation on the training rows (see ``triage/heads.py``).
    few_shot_median: int = Field(64, ge=0)


class FineTuneParams(_Strict):
    """Contrastive fine-tuning of the encoder for few-shot heads (``training/finetune.py``).

    When a head named in ``heads`` is few-shot (``HeadParams.few_shot_median``) and has at most
    ``max_texts`` labelled texts, training fine-tunes its own copy of the encoder on them with a
    supervised contrastive loss (texts of one class pulled together, other classes pushed apart,
    in-batch) and the head is fitted on that copy's embeddings; the bundle stores the copy's
    weights and the service encodes a batch a second time with it, for that head only. Measured
    on 车质网's 19 coarse categories at 16 examples per class (five draws): macro-F1 0.309 with
    the frozen encoder, 0.334 fine-tuned with one view of each batch, 0.345 with two (TF-IDF + LR
    0.237). Two views cost about 8 minutes of
    training per 300 texts on 2 cores, hence ``max_steps``. The encoder must be fine-tunable (the e5 encoder is;
    the tiny test encoder is not, and its few-shot heads stay on frozen embeddings)."""
    heads: list[str] = Field(default_factory=lambda: ["complaint_type"])   # [] turns it off
    max_texts: int = Field(2000, ge=0)
    epochs: int = Field(5, ge=1, le=50)
    max_steps: int = Field(60, ge=1)          # optimiser steps at most (time bound: ~10 s a step, two views)
    batch_size: int = Field(32, ge=4, le=256)
    views: int = Field(2, ge=1, le=4)         # dropout views of each batch (a text's other view is its positive)
    learning_rate: float = Field(3e-5, gt=0, lt=1)
    temperature: float = Field(0.07, gt=0, le=1)
    max_tokens: int = Field(128, ge=16, le=512)   # training reads this many tokens; serving reads all


class SeverityRule(_Strict):
    """Crisis-first, ordinal decision rule (see ``docs`` in ``triage/severity.py``)."""
    crisis_threshold: float = Field(0.35, gt=0, lt=1)     # P(危机) at which the model alone says 危机
    # Training sets crisis_threshold to the largest value at which the served decision's
    # out-of-fold 危机 recall on the training records is at least this (None: keep the value above).
    target_recall: float | None = Field(0.90, gt=0, le=1)
    # P(重点)+P(危机) at which the model says ≥ 重点; training sets it (with target_recall) to the
    # value of best out-of-fold macro-F1 once the crisis threshold is fixed
    major_threshold: float = Field(0.45, gt=0, lt=1)
    cue_crisis: float = Field(0.6, gt=0, le=1)            # asserted 危机-cue strength that forces 危机
    cue_major: float = Field(0.5, gt=0, le=1)             # asserted 重点-cue strength that forces ≥ 重点


class ReviewThresholds(_Strict):
    """``needs_review`` is set when a head's top probability is below its threshold."""
    complaint_type: float = Field(0.45, ge=0, le=1)
    severity: float = Field(0.55, ge=0, le=1)
    emotion: float = Field(0.40, ge=0, le=1)


class TrainConfig(_Strict):
    seed: int = 13
    n_jobs: int = Field(2, ge=1, le=64)       # parallel cross-validation folds (2 cores here)
    features: FeatureParams = FeatureParams()
    heads: dict[str, HeadParams] = Field(default_factory=lambda: {
        # the severity head is regularised more strongly (C 0.03, chosen on the development set)
        "complaint_type": HeadParams(), "severity": HeadParams(C=0.03),
        "emotion": HeadParams(), "intensity": HeadParams()})
    severity_rule: SeverityRule = SeverityRule()
    # Records that come with a run beside its data files — annotated real complaints
    # (corpora/annotations) and supervisors' corrections — are the service's own kind of text;
    # each weighs this many times a record of the data files in every head's loss (weights are
    # then scaled to average 1, so C keeps its meaning; a run of one kind only is unweighted).
    # 2 was chosen by out-of-fold macro-F1 on the real rows (see training/train.py).
    real_weight: float = Field(2.0, gt=0)
    review: ReviewThresholds = ReviewThresholds()
    fine_tune: FineTuneParams = FineTuneParams()
    similar_k: int = Field(3, ge=0, le=50)
    similar_min_score: float = Field(0.80, ge=0, le=1)


def load_config(path: str | Path | None) -> TrainConfig:
    if path is None:
        return TrainConfig()
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("CONFIG_UNREADABLE", f"cannot read config {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError("CONFIG_BAD_JSON", f"config {path} is not valid JSON: {exc}") from exc
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("CONFIG_INVALID", f"config {path} is invalid: {exc}") from exc
