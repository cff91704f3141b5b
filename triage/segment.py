"""Chinese word segmentation with a private jieba tokenizer and the project's dictionary.

Never touches jieba's global tokenizer: each :class:`Segmenter` owns a ``jieba.Tokenizer``
with ``corpora/dict/domain_dict.txt`` loaded, so domain words (退一赔三, 刹车失灵, 12315)
stay whole. The jieba tokenizer holds a lock and cannot be pickled; a pickled Segmenter keeps
only its dictionary text and rebuilds the tokenizer on first use.

Loading jieba's dictionary takes about two seconds, so segmenters with the same dictionary
share one tokenizer within a process (it is only read once built): a reloaded bundle, or a
second bundle beside the first, segments at once.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from triage.paths import CORPORA
from triage.text import normalise

log = logging.getLogger(__name__)

DEFAULT_DICT = CORPORA / "dict" / "domain_dict.txt"
# Function words and particles carry no topic: left out of BM25 terms and of evidence
# (negators are kept).
STOPWORDS = frozenset("的 了 是 我 在 就 都 也 和 吗 呢 啊 吧 着 过 还 又 这 那 你 他 她 它 们 给 把 被 与 及 或 而 啦 呀 哦 嗯 么".split())
_SHARED: dict[str, object] = {}          # dictionary sha256 -> its built tokenizer
_SHARED_LOCK = threading.Lock()


class Segmenter:
    """``Segmenter().cut("刹车失灵去4S店")`` → ``["刹车失灵", "去", "4s店"]`` (normalised text)."""

    def __init__(self, user_dict: str | Path | None = DEFAULT_DICT, dict_text: str | None = None) -> None:
        if dict_text is None and user_dict is not None:
            dict_text = Path(user_dict).read_text(encoding="utf-8")
        self.dict_text = dict_text or ""
        self.dict_sha256 = hashlib.sha256(self.dict_text.encode("utf-8")).hexdigest()
        self._tok = None
        self._words: frozenset[str] | None = None
        self._lock = threading.Lock()

    def _tokenizer(self):
        if self._tok is None:
            with _SHARED_LOCK:
                tok = _SHARED.get(self.dict_sha256)
                if tok is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tok = jieba.Tokenizer()
                    tok.initialize()
                    for word, freq in self._entries():
                        tok.add_word(word, freq)
                    _SHARED[self.dict_sha256] = tok
                self._tok = tok
        return self._tok

    def _entries(self) -> list[tuple[str, int | None]]:
        """The dictionary's lines as (normalised word, frequency or None)."""
        entries = []
        for line in self.dict_text.splitlines():
            parts = line.split()
            if parts:
                entries.append((normalise(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None))
        return entries

    @property
    def words(self) -> frozenset[str]:
        """The dictionary's words, normalised as :meth:`cut` returns them."""
        if self._words is None:
            self._words = frozenset(word for word, _ in self._entries())
        return self._words

    def cut(self, text: str) -> list[str]:
        """Words of the normalised text, without whitespace tokens."""
        return [w for w in self._tokenizer().lcut(normalise(text), HMM=True) if w.strip()]

    def tokenize(self, norm: str) -> list[tuple[str, int, int]]:
        """``(word, start, end)`` for every non-blank word of an already normalised text (the
        same words :meth:`cut` gives, with their offsets)."""
        return [(w, s, e) for w, s, e in self._tokenizer().tokenize(norm, HMM=True) if w.strip()]

    def __getstate__(self) -> dict:
        return {"dict_text": self.dict_text, "dict_sha256": self.dict_sha256}

    def __setstate__(self, state: dict) -> None:
        self.dict_text = state["dict_text"]
        self.dict_sha256 = state["dict_sha256"]
        self._tok = None
        self._words = None
        self._lock = threading.Lock()
