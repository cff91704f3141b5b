"""Cue and emotion lexicons, applied with negation, hypotheticals, degree adverbs and amounts.

Files (formats in ``corpora/lexicons/README.md``):

- ``severity_cues.tsv``  phrase, signal, grade (重点/危机), weight 0–1
- ``emotion_lexicon.tsv`` word, emotion, strength 1–5
- ``degree_adverbs.tsv`` word, multiplier
- ``negators.txt``, ``hypothetical_markers.txt`` one per line
- ``cue_exclusions.txt`` phrases that contain a cue but do not mean it (报警灯 ⊃ 报警); optional

Scope rules: text is cut into clauses at sentence punctuation. A negator within
``NEG_WINDOW`` characters before a cue, in the same clause, negates it ("没有受伤"); a
hypothetical marker anywhere earlier in the same clause makes it a threat or a supposition
("如果再不处理我就曝光"). A degree adverb within ``DEGREE_WINDOW`` characters before an emotion
word scales it ("非常失望"). Matches are found on the normalised text, whose offsets equal the
original's (see :mod:`triage.text`).
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from triage.doc import CLAUSE_BREAK, SENTENCE_BREAK, Doc, spans
from triage.errors import DataError
from triage.paths import CORPORA
from triage.text import normalise
from triage.vocab import EMOTIONS

NEG_WINDOW = 6
DEGREE_WINDOW = 3
# Words that contain a negator character but do not negate what follows (无法刹车 *is* the
# hazard); they are masked before the negation scope is checked.
FALSE_NEGATORS = ("无法", "没法", "不得不", "不停", "不断", "不少", "无数", "没完没了", "不管", "不仅",
                  "不但", "无论", "别人", "别的", "非常", "非要", "未来", "不然", "不行了", "不上", "不到")
# A hypothetical 危机 cue is a threat: these signals then point to 重点 ("如果再不处理我就曝光").
THREAT_TO_MAJOR = ("media", "group", "legal_action", "police", "data_leak")
# Threats of self-harm or violence are crises in themselves and are never discounted.
NEVER_DISCOUNTED = ("self_harm", "violence")
# A condition governs the next clause too when that clause goes on to say what will follow
# ("如果三天内不处理，我就去曝光", "否则，我会找媒体"): the markers that open a condition, and the
# words of the consequence clause that complete it.
CONDITIONALS = ("如果", "要是", "假如", "假若", "倘若", "若是", "如若", "若再", "万一", "一旦", "再不",
                "否则", "不然", "要不然")
CONSEQUENCE = ("就", "将", "会", "要")

EXCLUSIONS = "cue_exclusions.txt"
FRAMES = "severity_frames.tsv"
CONTEXT = "context_markers.tsv"
DEFAULT_DIR = CORPORA / "lexicons"


@dataclass(frozen=True)
class Match:
    text: str
    start: int
    end: int
    signal: str          # a severity signal (safety, media, …) or an emotion name
    weight: float        # effective contribution after negation / degree / hypothetical
    status: str = "asserted"    # asserted | negated | hypothetical | settled
    grade: str | None = None    # for severity cues: the grade the cue points to

    def as_evidence(self) -> dict:
        d = asdict(self)
        d["weight"] = round(self.weight, 3)
        if d["grade"] is None:
            del d["grade"]
        return d


def _read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError("LEXICON_MISSING", f"lexicon file {path} does not exist")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if reader.fieldnames is None or any(c not in reader.fieldnames for c in columns):
            raise DataError("LEXICON_BAD_HEADER", f"{path}: expected columns {columns}, got {reader.fieldnames}")
        return [row for row in reader if (row.get(columns[0]) or "").strip()]


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("LEXICON_MISSING", f"lexicon file {path} does not exist")
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.strip() and not ln.startswith("#")]


def _find_all(text: str, phrases: dict[str, object]) -> list[tuple[int, int, str]]:
    """Non-overlapping occurrences of any phrase, longest first. A phrase that starts or ends
    with a digit matches only where no other digit touches it (12315, not 1231567)."""
    hits = []
    for phrase in phrases:
        i = text.find(phrase)
        while i >= 0:
            e = i + len(phrase)
            if not ((phrase[0].isdigit() and i > 0 and text[i - 1].isdigit())
                    or (phrase[-1].isdigit() and e < len(text) and text[e].isdigit())):
                hits.append((i, e, phrase))
            i = text.find(phrase, i + 1)
    hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
    taken = np.zeros(len(text) + 1, dtype=bool)
    out = []
    for s, e, p in hits:
        if not taken[s:e].any():
            taken[s:e] = True
            out.append((s, e, p))
    return sorted(out)


def _clause_start(text: str, pos: int) -> int:
    for i in range(pos - 1, -1, -1):
        if CLAUSE_BREAK.match(text[i]):
            return i + 1
    return 0


def _text_and_norm(item: str | Doc) -> tuple[str, str]:
    return (item.text, item.norm) if isinstance(item, Doc) else (item, normalise(item))


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
AMOUNT = re.compile(r"(?P<num>\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿]+)\s*(?P<unit>万|千|k|w|亿)?\s*(?P<cur>元|块|rmb|人民币)")
AMOUNT_BARE_WAN = re.compile(r"(?P<num>\d+(?:\.\d+)?|[一二两三四五六七八九十几]+)\s*(?P<unit>万|千)(?:多|来)?(?!元|块)")


def chinese_number(s: str) -> float | None:
    """``chinese_number("三万五千")`` → 35000.0; digits pass through."""
    try:
        return float(s)
    except ValueError:
        pass
    total, section, digit = 0, 0, 0
    for ch in s:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if unit >= 10_000:
                section = (section + digit) * unit
                total += section
                section = 0
            else:
                section += (digit or 1) * unit
            digit = 0
        else:
            return None
    return float(total + section + digit)


def find_amounts(text: str) -> list[tuple[int, int, float]]:
    """Money amounts in yuan with their spans: "3万元" → 30000, "3元" → 3, "两千块" → 2000."""
    out = []
    for m in AMOUNT.finditer(text):
        value = chinese_number(m.group("num"))
        if value is None:
            continue
        unit = m.group("unit")
        value *= {"万": 1e4, "w": 1e4, "千": 1e3, "k": 1e3, "亿": 1e8}.get(unit or "", 1)
        out.append((m.start(), m.end(), value))
    taken = {i for s, e, _ in out for i in range(s, e)}
    for m in AMOUNT_BARE_WAN.finditer(text):
        if m.start() in taken:
            continue
        value = chinese_number(m.group("num").replace("几", "三"))
        if value is not None:
            out.append((m.start(), m.end(), value * (1e4 if m.group("unit") == "万" else 1e3)))
    return sorted(out)


REPEAT = re.compile(r"(第[二三四五六七八九十\d]+次|[三四五六七八九十\d]+次(?:打|来电|联系|投诉|反映|找|去)|多次|屡次|反复|好几次|无数次|"
                    r"一直没(?:有)?(?:解决|处理|人管|回复)|拖了(?:[一二两三四五六七八九十几\d]+|好几)个?(?:月|星期|周))")


# Groups of people counted in the text: "三百多户", "十几个人", "11名工人", "几十户". A group is
# beyond one household: at least GROUP_MIN_HOUSEHOLDS households or GROUP_MIN_PEOPLE people;
# GROUP_MANY or more counts as many.
GROUP_MIN_HOUSEHOLDS, GROUP_MIN_PEOPLE, GROUP_MANY = 3, 5, 20
_PEOPLE = ("业主|村民|居民|住户|群众|职工|工人|农民工|员工|工友|同事|学生|孩子|小孩|幼儿|家长|车主|老人|商户|摊主|摊贩|"
           "教师|老师|医生|护士|司机|乘客|用户|客户|消费者|会员|受害者|受害人|农户|贫困户|人家|人")
GROUP_COUNT = re.compile(r"(?P<num>\d+|[一二两三四五六七八九十百千万几]+)(?P<more>多|余|来)?"
                         r"(?:(?P<unit>户|家|名|位|个|口)(?P<who1>" + _PEOPLE + r")?|(?P<who2>" + _PEOPLE + r"))")


def find_groups(norm: str) -> list[tuple[int, int, float]]:
    """Counted groups of people: ``(start, end, how many people)``; households count as three."""
    out = []
    for m in GROUP_COUNT.finditer(norm):
        if m.start() and norm[m.start() - 1].isascii() and norm[m.start() - 1].isalnum():
            continue                      # part of a code or a model name (l5车主, 编号5041客户)
        unit, who = m.group("unit"), m.group("who1") or m.group("who2")
        if unit in (None, "个", "名", "位", "口") and who is None:
            continue                      # 三个月, 两名 …: no people named
        if unit == "家" and who is None and not norm[m.end():m.end() + 2].startswith(("人", "住")):
            continue                      # 三家公司, 两家店: not households
        value = chinese_number(m.group("num").replace("几", "三"))
        if value is None:
            continue
        if m.group("more") or "几" in m.group("num"):
            value += 1
        households = unit in ("户", "家") or who in ("住户", "农户", "贫困户", "人家")
        people = value * 3 if households else value
        if (households and value >= GROUP_MIN_HOUSEHOLDS) or (not households and value >= GROUP_MIN_PEOPLE):
            out.append((m.start(), m.end(), people))
    return out


@dataclass(frozen=True)
class Frame:
    """A hazard told in plain words: an ``anchor`` (a part, a place, a substance) and a
    ``condition`` (its failure or state) within ``window`` characters of each other in one
    sentence — 方向盘 … 打不动, 楼道 … 堆满, 燃气 … 闻到味."""
    name: str
    signal: str
    grade: str
    weight: float
    anchors: tuple[str, ...]
    conditions: tuple[str, ...]
    window: int


class Frames:
    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames

    @classmethod
    def read(cls, path: Path) -> "Frames":
        rows = _read_tsv(path, ("frame", "signal", "grade", "weight", "anchors", "conditions", "window"))
        frames = []
        for row in rows:
            if row["grade"].strip() not in ("重点", "危机"):
                raise DataError("LEXICON_BAD_VALUE", f"{path.name}: grade must be 重点 or 危机, got {row['grade']!r}")
            frames.append(Frame(row["frame"].strip(), row["signal"].strip(), row["grade"].strip(),
                                float(row["weight"]), tuple(normalise(a) for a in row["anchors"].split("|") if a),
                                tuple(normalise(c) for c in row["conditions"].split("|") if c), int(row["window"])))
        return cls(frames)

    def find(self, norm: str, sentences: list[tuple[int, int]]) -> list[tuple[Frame, int, int, int]]:
        """``(frame, start, end, where the condition starts)`` for each frame found, one per frame
        and sentence (the closest anchor and condition)."""
        out = []
        for s0, e0 in sentences:
            sentence = norm[s0:e0]
            for frame in self.frames:
                anchors = [(i, i + len(a)) for a in frame.anchors for i in _positions(sentence, a)]
                if not anchors:
                    continue
                best = None
                for c in frame.conditions:
                    for i in _positions(sentence, c):
                        for a0, a1 in anchors:
                            gap = i - a1 if i >= a1 else a0 - (i + len(c))
                            if 0 <= gap <= frame.window and (best is None or gap < best[0]):
                                best = (gap, min(a0, i), max(a1, i + len(c)), i)
                if best is not None:
                    out.append((frame, s0 + best[1], s0 + best[2], s0 + best[3]))
        return out


def _positions(text: str, phrase: str) -> list[int]:
    out, i = [], text.find(phrase)
    while i >= 0:
        out.append(i)
        i = text.find(phrase, i + 1)
    return out


class Context:
    """Sentence context that changes what a cue means (``context_markers.tsv``): ``in_use``
    markers (行驶中, 高速上, 开着开着) raise a safety cue in their sentence to at least
    ``IN_USE_WEIGHT``, since a part failing while in use is a present danger; ``settled``
    markers (已结案, 调解结束, 多年前) turn a lawsuit or police cue of their sentence into a 重点
    signal at reduced weight, since the law is no longer in motion."""

    IN_USE_WEIGHT = 0.8
    SETTLED_FACTOR = 0.6

    def __init__(self, markers: dict[str, tuple[str, ...]]) -> None:
        self.markers = markers

    @classmethod
    def read(cls, path: Path) -> "Context":
        rows = _read_tsv(path, ("marker", "kind"))
        markers: dict[str, list[str]] = {"in_use": [], "settled": []}
        for row in rows:
            kind = row["kind"].strip()
            if kind not in markers:
                raise DataError("LEXICON_BAD_VALUE", f"{path.name}: kind must be one of {sorted(markers)}, got {kind!r}")
            markers[kind].append(normalise(row["marker"].strip()))
        return cls({k: tuple(v) for k, v in markers.items()})

    def apply(self, matches: list[Match], norm: str, sentences: list[tuple[int, int]]) -> list[Match]:
        out = []
        for m in matches:
            s0, e0 = next(((a, b) for a, b in sentences if a <= m.start < b), (0, len(norm)))
            sentence = norm[s0:e0]
            if m.status == "asserted" and m.signal == "safety" and m.grade == "危机" \
                    and m.weight < self.IN_USE_WEIGHT and any(w in sentence for w in self.markers["in_use"]):
                m = replace(m, weight=self.IN_USE_WEIGHT)
            elif m.signal in ("legal_action", "police") and m.status == "asserted" \
                    and any(w in sentence for w in self.markers["settled"]):
                m = replace(m, weight=m.weight * self.SETTLED_FACTOR, status="settled", grade="重点")
            out.append(m)
        return out


class Lexicons:
    """All lexicon resources, loaded from a folder (the project's ``corpora/lexicons`` or a
    bundle's copy). ``severity_cues(text)`` and ``emotion_words(text)`` return matches."""

    def __init__(self, folder: str | Path = DEFAULT_DIR, money_major: float = 5000.0,
                 money_large: float = 100_000.0) -> None:
        folder = Path(folder)
        self.folder = folder
        self.cues = {}
        for row in _read_tsv(folder / "severity_cues.tsv", ("phrase", "signal", "grade", "weight")):
            grade = row["grade"].strip()
            if grade not in ("重点", "危机"):
                raise DataError("LEXICON_BAD_VALUE", f"severity_cues.tsv: grade must be 重点 or 危机, got {grade!r}")
            self.cues[normalise(row["phrase"].strip())] = (row["signal"].strip(), grade, float(row["weight"]))
        self.emotion = {}
        for row in _read_tsv(folder / "emotion_lexicon.tsv", ("word", "emotion", "strength")):
            emo = row["emotion"].strip()
            if emo not in EMOTIONS:
                raise DataError("LEXICON_BAD_VALUE", f"emotion_lexicon.tsv: emotion must be one of {EMOTIONS}, got {emo!r}")
            self.emotion[normalise(row["word"].strip())] = (emo, float(row["strength"]))
        self.degree = {normalise(r["word"].strip()): float(r["multiplier"])
                       for r in _read_tsv(folder / "degree_adverbs.tsv", ("word", "multiplier"))}
        self.negators = sorted({normalise(w) for w in _read_list(folder / "negators.txt")}, key=len, reverse=True)
        self.hypothetical = sorted({normalise(w) for w in _read_list(folder / "hypothetical_markers.txt")},
                                   key=len, reverse=True)
        self.exclusions = {normalise(w): None for w in _read_list(folder / EXCLUSIONS)}
        self.money_major, self.money_large = money_major, money_large
        self.frames = Frames.read(folder / FRAMES)
        self.context = Context.read(folder / CONTEXT)

    # ------------------------------------------------------------------ helpers
    def _negated(self, text: str, start: int, clause: int, width: int = NEG_WINDOW) -> bool:
        window = text[max(clause, start - width):start]
        for word in (*FALSE_NEGATORS, *self.hypothetical):     # 再不…就 is a condition, not a negation
            window = window.replace(word, "\0" * len(word))
        return any(n in window for n in self.negators)

    def _hypothetical(self, text: str, start: int, clause: int) -> bool:
        before = text[clause:start]
        if any(h in before for h in self.hypothetical):
            return True
        # the extension needs a consequence word and no sign the act is done (已经报警了)
        if clause == 0 or "已" in before or not any(w in before for w in CONSEQUENCE):
            return False
        previous = text[_clause_start(text, clause - 1):clause - 1]      # one clause back, no further
        return any(c in previous for c in CONDITIONALS)

    # ------------------------------------------------------------------ severity
    def _qualified(self, text: str, norm: str, s: int, e: int, signal: str, grade: str, weight: float,
                   scope: int | None = None) -> Match:
        """A cue found at ``[s, e)`` with its status: negated, hypothetical (a condition, a
        threat, a rumour or a question) or asserted. ``scope`` is where the cue's governing word
        sits when that is not ``s`` (a frame's condition: "刹车突然失灵" negates at 失灵)."""
        at = s if scope is None else scope
        clause = _clause_start(norm, at)
        negated = self._negated(norm, at, clause)
        if self._hypothetical(norm, s, _clause_start(norm, s)) and not negated:
            if signal in NEVER_DISCOUNTED:
                return Match(text[s:e], s, e, signal, weight, "hypothetical", grade)
            if signal in THREAT_TO_MAJOR or grade == "重点":
                # A threat ("如果再不处理我就曝光") is a 重点 signal, not the event itself.
                return Match(text[s:e], s, e, signal, weight * 0.8, "hypothetical", "重点")
            # a supposed hazard ("万一刹车失灵") counts, at half strength
            return Match(text[s:e], s, e, signal, weight * 0.5, "hypothetical", grade)
        if negated:
            return Match(text[s:e], s, e, signal, 0.0, "negated", grade)
        return Match(text[s:e], s, e, signal, weight, "asserted", grade)

    def severity_cues(self, item: str | Doc) -> list[Match]:
        """Every severity cue of one complaint, with its status and effective weight: the
        phrases of ``severity_cues.tsv``, the frames of ``severity_frames.tsv`` (a part and its
        failure, a place and its hazard, in one sentence), counted groups of people, money
        amounts and repeat contacts. Context in the same sentence then adjusts them: a part
        failing while the vehicle is in use (``in_use`` markers) weighs more; a lawsuit or police
        case that is over (``settled`` markers) points to 重点 only."""
        text, norm = _text_and_norm(item)
        sentences = item.sentences if isinstance(item, Doc) else spans(norm, SENTENCE_BREAK)
        out: list[Match] = []
        for s, e, phrase in _find_all(norm, {**self.cues, **self.exclusions}):
            if phrase in self.exclusions:       # the longer, harmless phrase covers the cue
                continue
            signal, grade, weight = self.cues[phrase]
            out.append(self._qualified(text, norm, s, e, signal, grade, weight))

        def overlaps(s: int, e: int, signal: str) -> bool:
            return any(m.signal == signal and m.start < e and s < m.end for m in out)

        for frame, s, e, cond in self.frames.find(norm, sentences):
            if not overlaps(s, e, frame.signal):
                out.append(self._qualified(text, norm, s, e, frame.signal, frame.grade, frame.weight, scope=cond))
        for s, e, people in find_groups(norm):
            if not overlaps(s, e, "group"):
                w = 0.75 if people >= GROUP_MANY else 0.65
                out.append(self._qualified(text, norm, s, e, "group", "危机", w))
        for s, e, value in find_amounts(norm):
            if value >= self.money_major:
                w = 0.7 if value >= self.money_large else 0.55
                out = [m for m in out if not (m.signal == "money" and m.start < e and s < m.end)]
                out.append(Match(text[s:e], s, e, "money", w, "asserted", "重点"))
        for m in REPEAT.finditer(norm):
            if not overlaps(m.start(), m.end(), "repeat"):
                out.append(Match(text[m.start():m.end()], m.start(), m.end(), "repeat", 0.55, "asserted", "重点"))
        return sorted(self.context.apply(out, norm, sentences), key=lambda m: m.start)

    @staticmethod
    def cue_strength(matches: list[Match]) -> dict[str, float]:
        """Strength per grade: the strongest non-negated cue of each signal, combined across
        signals by noisy-or, 1 − Π(1 − w) (two variants of one cue do not add up)."""
        strength = {}
        for grade in ("重点", "危机"):
            best: dict[str, float] = {}
            for m in matches:
                if m.grade == grade and m.status != "negated":
                    best[m.signal] = max(best.get(m.signal, 0.0), min(max(m.weight, 0.0), 1.0))
            p = 1.0
            for w in best.values():
                p *= 1.0 - w
            strength[grade] = 1.0 - p
        return strength

    # ------------------------------------------------------------------ emotion
    def emotion_words(self, item: str | Doc) -> list[Match]:
        text, norm = _text_and_norm(item)
        out = []
        for s, e, word in _find_all(norm, self.emotion):
            emo, strength = self.emotion[word]
            clause = _clause_start(norm, s)
            window = norm[max(clause, s - DEGREE_WINDOW):s]
            mult = max((m for d, m in self.degree.items() if d in window), default=1.0)
            negated = self._negated(norm, s, clause, width=3)
            if negated and emo == "happy":       # 不满意 / 不开心: dissatisfaction
                out.append(Match(text[s:e], s, e, "angry", strength * 0.6 * mult, "negated"))
            elif negated:
                out.append(Match(text[s:e], s, e, emo, 0.0, "negated"))
            else:
                out.append(Match(text[s:e], s, e, emo, strength * mult))
        return out

    def signal_vector(self, item: str | Doc) -> np.ndarray:
        """A small dense feature vector for the heads: cue strengths by grade and signal
        family, emotion-lexicon sums, punctuation and emoji counts (all squashed to ~0–1)."""
        if isinstance(item, Doc):
            text, cues, emotions = item.text, item.cues, item.emotions
        else:
            text, cues, emotions = item, self.severity_cues(item), self.emotion_words(item)
        strength = self.cue_strength(cues)
        emo = {k: 0.0 for k in EMOTIONS}
        for m in emotions:
            emo[m.signal] += m.weight
        peak = max((m.weight for m in emotions), default=0.0)
        exclaim = text.count("!") + text.count("！")
        question = text.count("?") + text.count("？")
        emoji = sum(1 for ch in text if ord(ch) >= 0x1F300)
        hypothetical = sum(1 for m in cues if m.status == "hypothetical")
        negated = sum(1 for m in cues if m.status == "negated")
        vec = [strength["重点"], strength["危机"], math.tanh(hypothetical / 2), math.tanh(negated / 2)]
        vec += [math.tanh(emo[k] / 4) for k in EMOTIONS]
        vec += [math.tanh(peak / 4), math.tanh(exclaim / 3), math.tanh(question / 3), math.tanh(emoji / 2),
                math.tanh(len(text) / 300)]
        return np.asarray(vec, dtype=np.float32)

    SIGNAL_DIM = 15

    def signals(self, docs: list[Doc]) -> np.ndarray:
        """The ``(n, SIGNAL_DIM)`` signal matrix of a batch of read complaints (their cue and
        emotion matches were found when they were read)."""
        return np.stack([self.signal_vector(d) for d in docs]) if docs else np.zeros((0, self.SIGNAL_DIM), np.float32)

    def files(self) -> list[Path]:
        names = ["severity_cues.tsv", "emotion_lexicon.tsv", "degree_adverbs.tsv", "negators.txt",
                 "hypothetical_markers.txt", EXCLUSIONS, FRAMES, CONTEXT]
        return [self.folder / n for n in names]
