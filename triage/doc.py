"""A complaint read once: the object every component of the pipeline takes.

:meth:`Reader.read` normalises the text, segments it with jieba, cuts it into clauses and
sentences and finds the lexicon matches (severity cues and emotion words), once. The feature
builder, the cue layer, the severity decision, similar-case search, evidence and the reply
composer read these fields instead of repeating the work — the way spaCy's ``Doc`` is made
once and read by every component. Offsets are the same in ``norm`` and ``text`` (see
:mod:`triage.text`), so every span points into what the customer wrote.

``Reader(segmenter, lexicons).read(["刹车突然失灵，差点撞上前车"])[0].words`` →
``["刹车突然失灵", "差点", "撞上", "前车"]``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from triage.segment import Segmenter
from triage.text import normalise

if TYPE_CHECKING:
    from triage.lexicon import Lexicons, Match

# Clause boundaries (the scope of negation and of a condition) and sentence boundaries (the
# unit the severity layer scores on its own).
CLAUSE_BREAK = re.compile(r"[。！？!?；;\n，,]")
SENTENCE_BREAK = re.compile(r"[。！？!?；;\n]+")


def spans(norm: str, breaks: re.Pattern[str]) -> list[tuple[int, int]]:
    """The non-blank stretches of ``norm`` between matches of ``breaks``, as ``(start, end)``."""
    out, start = [], 0
    for m in breaks.finditer(norm):
        if norm[start:m.start()].strip():
            out.append((start, m.start()))
        start = m.end()
    if norm[start:].strip():
        out.append((start, len(norm)))
    return out


@dataclass
class Doc:
    text: str                                     # as given
    norm: str                                     # normalise(text): same length, same offsets
    tokens: list[tuple[str, int, int]]            # jieba words with spans in norm (no blanks)
    segmenter_sha: str                            # which dictionary cut the tokens
    clauses: list[tuple[int, int]]                # cut at , ; 。 ! ? and newlines
    sentences: list[tuple[int, int]]              # cut at ; 。 ! ? and newlines
    cues: list[Match] = field(default_factory=list)       # severity cues (triage.lexicon)
    emotions: list[Match] = field(default_factory=list)   # emotion words

    @property
    def words(self) -> list[str]:
        return [w for w, _, _ in self.tokens]

    def words_for(self, segmenter: Segmenter) -> list[str]:
        """The words as ``segmenter`` cuts them: these tokens when it is the same dictionary."""
        return self.words if segmenter.dict_sha256 == self.segmenter_sha else segmenter.cut(self.text)

    def __len__(self) -> int:
        return len(self.text)


class Reader:
    """Makes :class:`Doc` objects with one segmenter and (optionally) one set of lexicons."""

    def __init__(self, segmenter: Segmenter, lexicons: Lexicons | None = None) -> None:
        self.segmenter, self.lexicons = segmenter, lexicons

    def read(self, texts: Sequence[str]) -> list[Doc]:
        return [self.read_one(t) for t in texts]

    def read_one(self, text: str) -> Doc:
        norm = normalise(text)
        doc = Doc(text, norm, self.segmenter.tokenize(norm), self.segmenter.dict_sha256,
                  spans(norm, CLAUSE_BREAK), spans(norm, SENTENCE_BREAK))
        if self.lexicons is not None:
            doc.cues = self.lexicons.severity_cues(doc)
            doc.emotions = self.lexicons.emotion_words(doc)
        return doc


def as_norm(item: str | Doc) -> str:
    """The normalised text of a text or a :class:`Doc` (a module function so it pickles)."""
    return item.norm if isinstance(item, Doc) else normalise(item)
