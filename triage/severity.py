"""Crisis-first, ordinal severity decision: the learned head combined with the cue layer.

Rule (thresholds in :class:`triage.config.SeverityRule`):

1. The model's grade: 危机 if P(危机) ≥ ``crisis_threshold``; else 重点 if P(重点)+P(危机) ≥
   ``major_threshold``; else 一般. (Ordinal: probability mass above a grade counts for it.)
2. The cues' grade: 危机 if the asserted 危机 cues' noisy-or strength ≥ ``cue_crisis``; else
   重点 if the 重点 cues (threats and hypothetical 危机 cues count here) reach ``cue_major``;
   else none.
3. The answer is the higher of the two. A strong 危机 signal is never down-graded; when the
   model and the cues disagree the answer says so (``disagreement``) and asks for review.
"""
from __future__ import annotations

from dataclasses import dataclass

from triage.config import SeverityRule
from triage.lexicon import Lexicons, Match
from triage.vocab import grade_rank


@dataclass
class SeverityDecision:
    label: str
    model_label: str
    cue_label: str | None
    cue_strength: dict[str, float]
    disagreement: bool


def decide(probs: dict[str, float], cues: list[Match], rule: SeverityRule) -> SeverityDecision:
    p_crisis = probs.get("危机", 0.0)
    p_major = probs.get("重点", 0.0)
    if p_crisis >= rule.crisis_threshold:
        model_label = "危机"
    elif p_major + p_crisis >= rule.major_threshold:
        model_label = "重点"
    else:
        model_label = "一般"
    strength = Lexicons.cue_strength(cues)
    cue_label = None
    if strength["危机"] >= rule.cue_crisis:
        cue_label = "危机"
    elif max(strength["重点"], strength["危机"]) >= rule.cue_major:
        cue_label = "重点"
    label = model_label
    if cue_label is not None and grade_rank(cue_label) > grade_rank(model_label):
        label = cue_label
    disagreement = cue_label is not None and cue_label != model_label
    return SeverityDecision(label, model_label, cue_label,
                            {k: round(v, 3) for k, v in strength.items()}, disagreement)
