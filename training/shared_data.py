"""Where ``../shared/data`` is, and which built-in import config reads each labelled file.

The row counts are the ones the data README states; the import reports ``read`` must equal
them (records may then be dropped, each with a reason). Code that needs this data skips with a
clear message when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

from triage.errors import DataError

ROOT = Path(__file__).resolve().parents[1]

# (path under shared/data, built-in import config, rows per the data README)
SHARED_FILES: tuple[tuple[str, str, int], ...] = (
    ("heimao/train.csv", "heimao", 4081),
    ("heimao/dev.csv", "heimao", 511),
    ("car_complaints/car_complaints_train.csv", "car_complaints", 3733),
    ("gov_messages/messages_with_replies.xlsx", "gov_replies", 2816),
    ("gov_messages/messages_with_votes.xlsx", "gov_votes", 4326),
    ("smp2020_ewect/train.csv", "smp2020_train", 34869),
    ("smp2020_ewect/usual_eval_labeled.json", "smp2020_eval", 2000),
    ("smp2020_ewect/virus_eval_labeled.json", "smp2020_eval", 2000),
    ("cluemotion/valid.jsonl", "cluemotion", 3966),
    ("reviews/online_shopping_10_cats.csv", "reviews_shopping", 62774),
    ("reviews/ChnSentiCorp_htl_all.csv", "reviews_hotel", 7766),
    ("english_severity/xci.csv", "english_severity", 3448),
)


def shared_data_dir(explicit: str | Path | None = None, required: bool = True) -> Path | None:
    """``explicit``, else ``$TRIAGE_SHARED_DATA``, else ``../shared/data`` beside the project."""
    path = Path(explicit or os.environ.get("TRIAGE_SHARED_DATA") or ROOT.parent / "shared" / "data")
    if path.is_dir():
        return path
    if required:
        raise DataError("SHARED_DATA_MISSING", f"the public data folder {path} is not there; give "
                        "--data-root or set TRIAGE_SHARED_DATA")
    return None
