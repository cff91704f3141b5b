"""Real complaints from ``../shared/data`` for the speed benchmarks: 黑猫 (financial, short to
medium) and 车质网 (car, medium to long) texts, so a sample has the mixed lengths an intake
desk sees. Read with pandas; never written anywhere."""
from __future__ import annotations

import random

from triage.paths import shared_data_dir


def real_complaints(n: int | None = None, seed: int = 7, max_chars: int = 5000) -> list[str]:
    """``n`` distinct non-empty complaints (all when ``None``), shuffled under ``seed``.
    Exits with a clear message when ``../shared/data`` is absent."""
    import pandas as pd

    root = shared_data_dir(required=False)
    if root is None:
        raise SystemExit("this benchmark needs the real complaints in ../shared/data (see its README)")
    texts: list[str] = []
    for name in ("train.csv", "dev.csv"):
        texts += pd.read_csv(root / "heimao" / name, header=None, names=["text", "label"], dtype=str)["text"].tolist()
    cars = pd.read_csv(root / "car_complaints" / "car_complaints_train.csv", dtype=str)
    texts += cars["投诉简述"].tolist()
    seen: set[str] = set()
    out = []
    for t in texts:
        t = (t or "").strip() if isinstance(t, str) else ""
        if t and t not in seen and len(t) <= max_chars:
            seen.add(t)
            out.append(t)
    random.Random(seed).shuffle(out)
    return out if n is None else out[:n]
