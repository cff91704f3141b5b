"""The fixed vocabularies of what the service predicts and records (``../shared/guides/LABELS.md``).

Every other module — the heads, the cue layer, training, importers, the API's ``Literal``
types — takes its values from here. Complaint *types* are a deployment's own: the default
taxonomy below is what the shipped bundle learns, and a bundle's labels are the authority for
the types it serves.
"""
from __future__ import annotations

from typing import Literal, get_args

Grade = Literal["一般", "重点", "危机"]
Emotion = Literal["angry", "sad", "fear", "surprise", "happy", "neutral"]
Outcome = Literal["satisfied", "not_satisfied", "complained_again"]
HeadName = Literal["complaint_type", "severity", "emotion", "intensity"]
# Who may call what (docs/deployment.md): each role may do everything the roles before it may.
Role = Literal["intake", "supervisor", "admin"]

GRADES: tuple[str, ...] = get_args(Grade)            # ordinal: index order is severity order
EMOTIONS: tuple[str, ...] = get_args(Emotion)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
HEAD_NAMES: tuple[str, ...] = get_args(HeadName)
ROLES: tuple[str, ...] = get_args(Role)              # ordinal: a later role includes the earlier ones
INTENSITY_LEVELS: tuple[int, ...] = (0, 1, 2, 3, 4)
MAX_INTENSITY = INTENSITY_LEVELS[-1]

# The default taxonomy (LABELS.md §3); a deployment retrains on its own.
DEFAULT_TYPES: tuple[str, ...] = ("产品质量", "售后维修", "物流配送", "退款退货", "价格收费", "虚假宣传",
                                  "合同纠纷", "服务态度", "催收骚扰", "隐私安全", "其他")

# The label values a record may carry for the heads whose domain is fixed (as strings, the way
# they appear in data files); complaint types are open.
LABEL_DOMAINS: dict[str, tuple[str, ...]] = {
    "severity": GRADES, "emotion": EMOTIONS, "intensity": tuple(str(v) for v in INTENSITY_LEVELS)}


def grade_rank(grade: str) -> int:
    """``grade_rank("危机")`` → 2: grades compare by this rank (crisis-first rules take the higher)."""
    return GRADES.index(grade)


def role_allows(role: str, needed: str) -> bool:
    """``role_allows("admin", "supervisor")`` → True: roles are ordered, a higher one includes the lower."""
    return ROLES.index(role) >= ROLES.index(needed)
