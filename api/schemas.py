"""Request and response schemas (separate from the library's internal objects)."""
from __future__ import annotations

import datetime
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr
from pydantic_core import PydanticCustomError

from triage.errors import InputError
from triage.retrieval import Filters
from triage.text import check_visible
from triage.vocab import Emotion as EmotionLabel, Grade, Outcome

# A list the routes bound with a setting (TRIAGE_MAX_BATCH, TRIAGE_MAX_CASES_PER_CALL) is capped
# here only at the settings' own upper bound, so a setting can be raised without a schema change.
LIST_CEILING = 10_000


def _text(v: str) -> str:
    """A complaint or case text: at least one visible character and valid Unicode (its length
    limit is a setting, checked in the routes)."""
    try:
        return check_visible(v)
    except InputError as exc:
        raise PydanticCustomError(exc.code.lower(), exc.message) from None


Text = Annotated[StrictStr, AfterValidator(_text)]


def _case_id(v: str) -> str:
    """Case ids are compared after NFKC normalisation (``ｋｂ-a-0001`` is ``kb-a-0001``)."""
    v = unicodedata.normalize("NFKC", v)
    if not v or len(v) > 200 or any(ch.isspace() or ch == "/" for ch in v):
        raise PydanticCustomError("invalid_value", "a case_id is 1-200 characters without spaces or '/' "
                                  "(after NFKC normalisation)")
    return v


CaseId = Annotated[StrictStr, AfterValidator(_case_id)]
# Case fields that reach answers and reply drafts: capped by TRIAGE_MAX_CASE_FIELD_CHARS in the
# route; the schema holds the setting's own upper bound.
CaseField = Annotated[StrictStr, Field(max_length=100_000)]


class TriageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"text": "刹车突然失灵，差点撞上前车，4S店说检测不出问题", "id": "T-1001", "channel": "phone"}]})

    text: Text = Field(..., description="the complaint text (non-empty; at most TRIAGE_MAX_TEXT_CHARS)")
    id: StrictStr | None = Field(None, max_length=200)
    channel: StrictStr | None = Field(None, max_length=50)
    customer_id: StrictStr | None = Field(None, max_length=200)
    customer_name: StrictStr | None = Field(None, max_length=100, description="fills {customer_name} in the reply draft")
    order_id: StrictStr | None = Field(None, max_length=200, description="fills {order_id} in the reply draft")
    product: StrictStr | None = Field(None, max_length=200, description="fills {product} in the reply draft")

    def context(self) -> dict:
        return {"customer_name": self.customer_name, "order_id": self.order_id, "product": self.product}


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[TriageRequest] = Field(..., min_length=1, max_length=LIST_CEILING,
                                       description="1 to TRIAGE_MAX_BATCH complaints, answered in order")


class Label(BaseModel):
    label: str
    score: float


class Severity(BaseModel):
    label: str = Field(..., description="一般 | 重点 | 危机 (the crisis-first decision)")
    scores: dict[str, float]
    model_label: str
    cue_label: str | None
    cue_strength: dict[str, float]
    disagreement: bool
    clause: dict | None = Field(None, description="the sentence whose cues point highest: text, start, end, grade")


class Emotion(BaseModel):
    label: str
    scores: dict[str, float]


class Intensity(BaseModel):
    score: float = Field(..., ge=0, le=1)
    level: int = Field(..., ge=0, le=4)


class EvidenceItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str
    start: int
    end: int
    signal: str
    weight: float


class TriageResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None
    prediction_id: str = Field(..., description="the recorded prediction; send it with POST /v1/feedback")
    complaint_type: Label
    type_candidates: list[Label]
    severity: Severity
    emotion: Emotion
    intensity: Intensity
    similar_cases: list[dict]
    evidence: dict[str, list[EvidenceItem]]
    needs_review: bool
    review_reasons: list[str]
    model_version: str


class BatchResponse(BaseModel):
    results: list[TriageResponse]


class ErrorResponse(BaseModel):
    code: str = Field(..., description="a stable code from the error catalogue (docs/api.md)")
    message: str
    details: list | None = None


# Every route documents the same error body; the statuses a route can answer are listed with it.
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse}
                                           for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: CaseId = Field(..., description="1-200 characters without spaces or '/'; NFKC-normalised")
    text: Text
    complaint_type: StrictStr | None = Field(None, max_length=100)
    severity: Grade | None = None
    finding: CaseField | None = None
    resolution: CaseField | None = None
    response: CaseField | None = Field(None, description="the reply; links and contact details are taken out of "
                                       "reply drafts unless the case is approved")
    outcome: Outcome | None = None
    industry: StrictStr | None = Field(None, max_length=100)
    metadata: dict[str, Any] | None = Field(None, description="at most TRIAGE_MAX_CASE_FIELD_CHARS as JSON")
    date: datetime.date | None = None
    approved: bool | None = Field(None, description="a person checked the reply: its links and contact details "
                                  "may pass into reply drafts")


class CasesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cases: list[CaseIn] = Field(..., min_length=1, max_length=LIST_CEILING,
                                description="1 to TRIAGE_MAX_CASES_PER_CALL cases to add or update")


class CasesResponse(BaseModel):
    created: int
    updated: int
    case_ids: list[str]
    total: int


class SimilarRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Text
    k: int = Field(5, ge=1, le=50)
    filters: Filters | None = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class SimilarResponse(BaseModel):
    hits: list[dict]
    suggested_response: dict


class Corrections(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complaint_type: StrictStr | None = Field(None, min_length=1, max_length=100,
                                             description="any type name (a deployment may bring its own taxonomy)")
    severity: Grade | None = None
    emotion: EmotionLabel | None = None
    intensity: int | None = Field(None, ge=0, le=4)


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"prediction_id": "p-3f2c…", "corrections": {"severity": "危机"}, "reason": "刹车失灵发生在高速上"}]})
    prediction_id: StrictStr = Field(..., min_length=1, max_length=40)
    corrections: Corrections
    reason: StrictStr | None = Field(None, max_length=2000)


class FeedbackResponse(BaseModel):
    feedback_id: str
    prediction_id: str
    created_at: str
    reviewer: str
    reason: str | None
    corrections: dict[str, Any]
    prediction: dict[str, Any] = Field(..., description="what the model answered (kept unchanged)")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle: StrictStr | None = Field(None, max_length=200, pattern=r"^[^/\\]*[^/\\.][^/\\]*$",
                                     description="a bundle folder name in the models folder; default: models/CURRENT")
